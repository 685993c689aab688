"""A score for generated faces: how many a face detector finds, their contrast and grain, how varied they are and
how new, each beside the same figure for real faces, as the digit score does.

No model can be fetched from a hub here, so the judge is one that ships inside a registry package: OpenCV's Haar
frontal-face cascade (opencv-python-headless 4.x; 5.0 dropped the cascades). A 28x28 face is too small for its
24x24 window to find with any margin, so each image is enlarged 4x first; on scikit-image's lfw_subset shrunk to
28x28 this finds 90 of its 100 faces and none of its 100 non-faces (tests/test_face_score.py). A detector alone
rewards one average face drawn a thousand times, and neither it nor the distances below see contrast or fine
noise, so four figures go beside it:
- contrast: the median spread of a face's grey values (0-255), which a generator fed the wrong range of real
  images gets wrong (batches not doubled: about half the real faces');
- grain: the median mean difference of a face's pixels, in every channel, from the mean of their 3x3
  neighbourhood (0-255): speckle and colour noise where the faces are smooth (no batch normalization in the
  generator: 1.7 times the real faces'; bench/face_score_check.py);
- variety: the median distance between two of the faces (generated, or real), where 0 is one face repeated;
- novelty: the median distance from each generated face to its nearest training face, beside the same from each
  real face to its nearest other one; 0 is a generator that hands back its training faces.
Distances are between faces as 14x14 grey images (2x2 averages of the 28x28 ones), each standardized to zero mean
and unit spread so that brightness and contrast do not count, as the root mean square of their difference: 0 for
the same face, about 1.4 for two unrelated ones.
"""
import functools
import os

import cv2
import numpy as np
import scipy.ndimage

DETECTOR_SIDE = 112     # 28x28 faces enlarged 4x for the detector
SCALE_FACTOR = 1.05     # the detector's steps between window sizes
MIN_NEIGHBOURS = 3      # overlapping detections a face needs
SMALLEST_FACE = 0.4     # of the side: a face must fill at least this much of the image
FEATURE_SIDE = 14
REFERENCE_FACES = 1000  # real faces the real figures are measured on (a seeded choice, for a large dataset)
CHUNK = 8192            # training faces compared at a time
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R 601, as PIL's convert('L')
TENSORBOARD_NAMES = {'face_share': 'found'}  # faces/found, faces/contrast, ... beside each progress grid


class FaceScorer:
    """
    A face detector's verdict, the contrast, grain, variety and novelty of generated faces, each beside the same for
    real faces
    :param training_images: The faces trained on, uint8 (n, 28, 28, channels) as Dataset.images holds them (a
                            memory map is read in chunks, never copied whole)
    :param seed: Which real faces the real figures use, where there are more than REFERENCE_FACES
    """

    def __init__(self, training_images, seed=0):
        self._training = training_images
        self._training_features = np.concatenate([
            features(training_images[start:start + CHUNK].astype(np.float32))
            for start in range(0, len(training_images), CHUNK)])
        n = len(training_images)
        self._reference = np.sort(np.random.default_rng(seed).permutation(n)[:REFERENCE_FACES])
        self._real = None

    def real_figures(self):
        """The figures of real faces (a seeded choice of REFERENCE_FACES training faces), computed once."""
        if self._real is None:
            reference = np.asarray(self._training[self._reference], dtype=np.float32)
            reference_features = self._training_features[self._reference]
            self._real = {'face_share': face_share(reference), 'contrast': contrast(reference),
                          'grain': grain(reference), 'variety': variety(reference_features),
                          'novelty': float(np.median(nearest_distances(
                              reference_features, self._training_features, exclude=self._reference)))}
        return self._real

    def score(self, images):
        """
        Score generated faces against the real ones
        :param images: Generated faces, (n, 28, 28, channels), floats in [-1, 1] (what train's samples hold)
        :return: dict with face_share, contrast, grain, variety and novelty, and real_face_share, real_contrast,
                 real_grain, real_variety and real_novelty, the same figures for real faces
        """
        generated = self.figures(images)
        return {**generated, **{f'real_{name}': value for name, value in self.real_figures().items()}}

    def figures(self, images):
        """The five figures of generated faces (floats in [-1, 1]) alone, without the real faces'."""
        pixels = to_pixels(images)
        generated = features(pixels)
        return {'face_share': face_share(pixels), 'contrast': contrast(pixels), 'grain': grain(pixels),
                'variety': variety(generated),
                'novelty': float(np.median(nearest_distances(generated, self._training_features)))}

    def grid_figures(self, images):
        """The five figures of a progress grid's images, named for TensorBoard (TrainingRun's grid_score)."""
        return {f'faces/{TENSORBOARD_NAMES.get(name, name)}': value for name, value in self.figures(images).items()}


def describe_faces(score):
    """The score as five lines a learner reads."""
    return (f"Faces a face detector finds: {score['face_share']:.1%} (real faces: {score['real_face_share']:.1%})\n"
            f"Contrast, the median spread of a face's grey values: {score['contrast']:.1f} (real: "
            f"{score['real_contrast']:.1f})\n"
            f"Grain, the median difference of a pixel from the mean around it: {score['grain']:.1f} (real: "
            f"{score['real_grain']:.1f})\n"
            f"Variety, the median distance between two faces: {score['variety']:.2f} (real: "
            f"{score['real_variety']:.2f}; 0 is one face repeated)\n"
            f"Novelty, the median distance to the nearest training face: {score['novelty']:.2f} (real faces to their "
            f"nearest other: {score['real_novelty']:.2f}; 0 is a copy)")


def to_pixels(images):
    """Generated images in [-1, 1] as 0-255 floats, the training faces' range."""
    return (np.clip(np.asarray(images, dtype=np.float32), -1, 1) + 1) * 127.5


def grey(pixels):
    """(n, 28, 28[, channels]) -> (n, 28, 28), the luma of colour images."""
    pixels = np.asarray(pixels, dtype=np.float32)
    if pixels.ndim == 4:
        pixels = pixels[..., 0] if pixels.shape[-1] == 1 else pixels @ LUMA
    return pixels


def features(pixels):
    """Each face as FEATURE_SIDE^2 standardized grey values, scaled so that distances are root mean squares."""
    faces = grey(pixels)
    n, height, width = faces.shape
    pooled = faces.reshape(n, FEATURE_SIDE, height // FEATURE_SIDE, FEATURE_SIDE, width // FEATURE_SIDE)
    flat = pooled.mean(axis=(2, 4)).reshape(n, -1)
    flat = flat - flat.mean(axis=1, keepdims=True)
    spread = flat.std(axis=1, keepdims=True)
    return (flat / np.where(spread > 0, spread, 1) / np.sqrt(flat.shape[1])).astype(np.float32)


def contrast(pixels):
    """The median over faces of the standard deviation of each face's grey values (0-255)."""
    return float(np.median(grey(pixels).reshape(len(pixels), -1).std(axis=1)))


def grain(pixels):
    """The median over faces of the mean absolute difference of each pixel, in every channel, from the mean of its
    3x3 neighbourhood (0-255)."""
    pixels = np.asarray(pixels, dtype=np.float32)
    if pixels.ndim == 3:
        pixels = pixels[..., np.newaxis]
    local_mean = scipy.ndimage.uniform_filter(pixels, size=(1, 3, 3, 1), mode='nearest')
    return float(np.median(np.abs(pixels - local_mean).mean(axis=(1, 2, 3))))


def pairwise_distances(a, b):
    """Euclidean distances between the rows of a and b, in float64: in float32 the expansion below loses about
    3e-4 to cancellation between near copies, an amount that changed with the CPU's matrix kernel."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    squared = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T
    return np.sqrt(np.maximum(squared, 0))


def variety(face_features):
    """The median distance between two different faces of a set."""
    distances = pairwise_distances(face_features, face_features)
    return float(np.median(distances[np.triu_indices(len(face_features), k=1)]))


def nearest_distances(face_features, training_features, exclude=None):
    """Each face's distance to its nearest training face; exclude[i]: the index of face i among the training faces,
    left out (a real face is not its own neighbour)."""
    nearest = np.full(len(face_features), np.inf, dtype=np.float32)
    for start in range(0, len(training_features), CHUNK):
        distances = pairwise_distances(face_features, training_features[start:start + CHUNK])
        if exclude is not None:
            rows = np.flatnonzero((exclude >= start) & (exclude < start + CHUNK))
            distances[rows, exclude[rows] - start] = np.inf
        nearest = np.minimum(nearest, distances.min(axis=1))
    return nearest


def face_share(pixels):
    """The share of images in which OpenCV's frontal-face cascade finds a face, each enlarged to DETECTOR_SIDE."""
    cascade = _cascade()
    smallest = (round(DETECTOR_SIDE * SMALLEST_FACE),) * 2
    found = 0
    for face in np.clip(grey(pixels), 0, 255).round().astype(np.uint8):
        enlarged = cv2.resize(face, (DETECTOR_SIDE, DETECTOR_SIDE), interpolation=cv2.INTER_LINEAR)
        found += len(cascade.detectMultiScale(enlarged, scaleFactor=SCALE_FACTOR, minNeighbors=MIN_NEIGHBOURS,
                                              minSize=smallest)) > 0
    return found / len(pixels)


@functools.cache
def _cascade():
    """OpenCV's default frontal-face cascade, loaded once per process (a failed load is not kept)."""
    path = os.path.join(cv2.data.haarcascades, 'haarcascade_frontalface_default.xml')
    cascade = cv2.CascadeClassifier(path)
    if cascade.empty():
        raise OSError(f'OpenCV could not load its face detector from {path}: opencv-python-headless 4.x ships it '
                      f'(5.0 no longer does). Install the version in requirements.txt.')
    return cascade

"""The data the Face Generation notebook calls: the 2017 helper's API, and what the notebook uses besides.

The 2017 API:
- download_extract(database_name, data_path): MNIST and CelebA into data_path, verified, or the offline sample
- get_image / get_batch: images read, CelebA's cropped to the face, resized; images_square_grid: a grid of them
- Dataset(dataset_name, data_files): .shape, .image_mode, .images and .get_batches(batch_size), values in
  [-0.5, 0.5]
- DLProgress: a tqdm bar that is also urlretrieve's reporthook

What the notebook uses besides: mnist_labels (the digits of MNIST's files), TrainingRun (what train keeps and shows
besides training) and plot_losses, saved_samples, last_checkpoint and noise_input (a run read back), DigitScorer
(the digits' score), FaceScorer and describe_faces (the faces' score). Also here: load_image_cache, what
Dataset.images is made with (the images decoded once).

The machinery lives in the facegen package (its __init__ lists the sub-packages); this module is the only part of
it a learner needs to read. The training names are loaded when first used, so that the data cells run before
TensorFlow is imported. Names that earlier editions of this module exported (the datasets' table, the errors, the
settings' names) still resolve here, from facegen.data, where they live.
"""
import importlib
import math
import os

import numpy as np
from PIL import Image

from facegen.data import cache as _cache
from facegen.data.errors import BatchSizeError, EmptyDatasetError, ImageTooSmallError
from facegen.data.install import download_extract
from facegen.data.progress import DLProgress
from facegen.data.registry import CELEBA_FACE_SIZE, CELEBA_PICTURE_SIZE, IMAGE_MAX_VALUE, IMAGE_SIZE, LABELS_NAME, \
    channels, dataset_info
from facegen.images import images_square_grid

__all__ = ['download_extract', 'get_image', 'get_batch', 'images_square_grid', 'Dataset', 'DLProgress',
           'mnist_labels', 'TrainingRun', 'plot_losses', 'saved_samples', 'last_checkpoint', 'noise_input',
           'DigitScorer', 'FaceScorer', 'describe_faces']

AUTO_CROP = 'auto'  # get_image's default: crop CelebA's pictures to the face, use other images whole
# uint8 -> float32 in [-0.5, 0.5] by table lookup, the same values as x / 255 - 0.5.
_TO_UNIT_RANGE = (np.arange(IMAGE_MAX_VALUE + 1, dtype=np.float32) / IMAGE_MAX_VALUE - 0.5)


def get_image(image_path, width, height, mode, crop_size=AUTO_CROP):
    """
    Read image from image_path
    :param image_path: Path of image
    :param width: Width of image
    :param height: Height of image
    :param mode: Mode of image, 'L' or 'RGB'
    :param crop_size: Side of the centred square to keep before resizing, or None to use the whole image.
                      AUTO_CROP (the default) does what the 2017 helper did: CelebA's 178x218 pictures are cropped
                      to their CELEBA_FACE_SIZE face, other images are used whole.
    :return: Image data, uint8, (height, width) for 'L' or (height, width, 3) for 'RGB'
    """
    with Image.open(image_path) as image:
        full_width, full_height = image.size
        if crop_size == AUTO_CROP:
            crop_size = CELEBA_FACE_SIZE if image.size == CELEBA_PICTURE_SIZE else None
        if crop_size is not None and (full_width < crop_size or full_height < crop_size):
            raise ImageTooSmallError(f'{image_path} is {full_width}x{full_height}; images cropped to the face must '
                                     f'be at least {crop_size}x{crop_size}')
        # A JPEG can be decoded at 1/2, 1/4 or 1/8 scale, several times faster; ask for the smallest scale
        # that still leaves the region to be resized (the crop, or the whole image) at least width x height.
        if crop_size is None:
            image.draft(image.mode, (width, height))
            box = None
        else:
            image.draft(image.mode, (math.ceil(full_width * width / crop_size),
                                     math.ceil(full_height * height / crop_size)))
            # The original's centre square, in the coordinates of the decoded scale.
            left, top = (full_width - crop_size) // 2, (full_height - crop_size) // 2
            sx, sy = image.size[0] / full_width, image.size[1] / full_height
            box = (left * sx, top * sy, (left + crop_size) * sx, (top + crop_size) * sy)
            # Crop to whole pixels first, so resizing never blends in pixels from outside the square.
            outer = (math.floor(box[0]), math.floor(box[1]), math.ceil(box[2]), math.ceil(box[3]))
            image = image.crop(outer)
            box = (box[0] - outer[0], box[1] - outer[1], box[2] - outer[0], box[3] - outer[1])
        if box is not None or image.size != (width, height):
            image = image.resize((width, height), Image.BILINEAR, box=box)
        return np.array(image.convert(mode))


def get_batch(image_files, width, height, mode, crop_size=AUTO_CROP):
    """
    Read a batch of images
    :param image_files: Paths of the images
    :param width, height, mode, crop_size: As for get_image
    :return: float32 array (n, height, width, channels) with values 0-255
    """
    batch = np.array([get_image(f, width, height, mode, crop_size) for f in image_files], dtype=np.float32)
    return batch.reshape(batch.shape[:3] + (-1,))  # 'L' images gain their channel axis


def load_image_cache(files, width, height, mode, crop_size=None, workers=None, cache_dir=None):
    """
    The images as get_image makes them, as a read-only memory-mapped uint8 array (n, height, width, channels),
    decoded once (facegen.data.cache) and rebuilt whenever the files change
    :param files: Paths of the images
    :param width, height, mode, crop_size: As for get_image
    :param workers: Decoding threads for a build (default: one per core this process may run on)
    :param cache_dir: Where caches go (see cache_folder)
    :return: numpy memmap
    """
    return _cache.load_image_cache(files, width, height, mode, crop_size,
                                   lambda path: get_image(path, width, height, mode, crop_size), workers, cache_dir)


def mnist_labels(image_files):
    """
    The digit of each MNIST image file
    :param image_files: Paths of image_{i}.jpg files written by download_extract
    :return: int array, one label per file, read from labels.npy beside them; None when there is no labels.npy
             (a 2017 folder adopted while no mirror answered)
    """
    path = os.path.join(os.path.dirname(image_files[0]), LABELS_NAME)
    if not os.path.exists(path):
        return None
    return np.load(path)[[int(os.path.basename(f)[len('image_'):-len('.jpg')]) for f in image_files]]


class Dataset(object):
    """
    A dataset's images, preprocessed once, served as shuffled batches
    """
    def __init__(self, dataset_name, data_files, seed=None, cache_dir=None):
        """
        Initialize the class
        :param dataset_name: Database name, 'mnist' or 'celeba'
        :param data_files: List of image files in the dataset
        :param seed: Seed of the per-epoch shuffle (None: a different order every run)
        :param cache_dir: Where the preprocessed images are cached (see cache_folder)
        """
        info = dataset_info(dataset_name)
        self.data_files = list(data_files)
        if not self.data_files:
            raise EmptyDatasetError(f'No images given for {dataset_name}. Run helper.download_extract('
                                    f"'{dataset_name}', './data') first, then pass the files it wrote.")
        self.image_mode = info.image_mode
        self.crop_size = info.crop_size
        self.shape = (len(self.data_files), IMAGE_SIZE, IMAGE_SIZE, channels(info.image_mode))
        self.cache_dir = cache_dir
        self._rng = np.random.default_rng(seed)
        self._images = None

    @property
    def images(self):
        """All images, preprocessed, as a memory-mapped uint8 array (built on first use)."""
        if self._images is None:
            self._images = load_image_cache(self.data_files, IMAGE_SIZE, IMAGE_SIZE, self.image_mode,
                                            self.crop_size, cache_dir=self.cache_dir)
        return self._images

    def get_batches(self, batch_size):
        """
        Generate batches, in a new random order every epoch
        :param batch_size: Batch Size, a whole number from 1 to the number of images
        :return: Batches of data, float32 (batch_size, 28, 28, channels) in [-0.5, 0.5]
        """
        n_images = len(self.data_files)
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
                or not 1 <= batch_size <= n_images:
            raise BatchSizeError(f'batch_size must be a whole number from 1 to {n_images:,} (the number of images '
                                 f'in this dataset); got {batch_size!r}. Choose a batch_size in that range, or use '
                                 f'more images (max_images).')
        return self._batches(batch_size)

    def _batches(self, batch_size):
        """The batches of one epoch (the last incomplete one dropped)."""
        images = self.images
        order = self._rng.permutation(len(images))
        for start in range(0, len(order) - batch_size + 1, batch_size):
            # Sorted indices read the memory map front to back; the batch's members stay random.
            yield _TO_UNIT_RANGE[images[np.sort(order[start:start + batch_size])]]


def __getattr__(name):
    """A training name of the notebook's, or one an earlier edition of this module exported: from the module of
    facegen that owns it, imported on first use."""
    if name in _ELSEWHERE:
        return getattr(importlib.import_module(_ELSEWHERE[name]), name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')


_ELSEWHERE = {name: f'facegen.{module}' for module, names in {
    'runs.training': 'TrainingRun plot_losses',
    'runs.results': 'saved_samples last_checkpoint noise_input',
    'scores.digits': 'DigitScorer',
    'scores.faces': 'FaceScorer describe_faces',
    # the rest of what earlier editions exported (the names this module imports above resolve without this)
    'data': 'DATASETS DatasetInfo RemoteFile MNIST_MAGIC_IMAGES MNIST_MAGIC_LABELS DATA_SOURCE_ENV DATA_SOURCES '
            'MIRROR_ENV CACHE_ENV CACHE_DIR_NAME cache_folder MARKER_NAME SET_ASIDE_SUFFIX STALE_STAGING_S '
            'CHUNK_BYTES DEADLINE_ENV DOWNLOAD_DEADLINE_S DOWNLOAD_MIN_RATE DOWNLOAD_TIMEOUT_S download_deadline_s '
            'BadArchiveError CorruptArchiveError DataFolderNotWritableError DownloadError FolderChangedError '
            'IncompleteExtractionError NotEnoughSpaceError TruncatedArchiveError UnknownDataSourceError '
            'UnknownDatasetError UnreadableImageError UnsafeArchiveError',
    'images': 'NON_FINITE_COLOURS'}.items() for name in names.split()}

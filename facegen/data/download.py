"""One archive fetched from its mirrors into a folder: resumed with a Range request where the server allows it,
given a deadline, refused when a server sends HTML or the wrong bytes, verified by size and SHA-256. No business
logic: which archives a dataset needs, and what becomes of them, is install's."""
import hashlib
import http.client
import math
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from .errors import CorruptArchiveError, DownloadError
from .files import is_disk_error, remove, replaced_when_done
from .progress import DLProgress

CHUNK_BYTES = 1 << 20
DOWNLOAD_TIMEOUT_S = 30      # the longest silence of a server before the next mirror is tried
DOWNLOAD_DEADLINE_S = 120    # every file may take this long, or as long as it needs at 100 kB/s
DOWNLOAD_MIN_RATE = 100e3    # bytes per second
DEADLINE_ENV = 'FACEGEN_DOWNLOAD_DEADLINE_S'   # a longer floor for DOWNLOAD_DEADLINE_S


class _MirrorFailed(Exception):
    """One mirror failed; the next one may work (and may resume its partial download)."""


class _CorruptDownload(_MirrorFailed):
    """A mirror delivered wrong bytes: its partial download is worthless."""


def sha256_of(path, limit=None):
    """SHA-256 of a file (of its first `limit` bytes), read in chunks so a 1.4 GB archive never sits in memory."""
    digest, left = hashlib.sha256(), math.inf if limit is None else limit
    with open(path, 'rb') as f:
        while left > 0 and (chunk := f.read(int(min(CHUNK_BYTES, left)))):
            digest.update(chunk)
            left -= len(chunk)
    return digest


def mismatch(path, remote):
    """How the file at path differs from `remote` (its size, else its SHA-256), or None when it is a true copy."""
    size = os.path.getsize(path)
    if size != remote.size:
        return f'{size:,} bytes, expected {remote.size:,}'
    got = sha256_of(path).hexdigest()
    return None if got == remote.sha256 else f'sha256 {got}, expected {remote.sha256}'


def archive_at_hand(remote, folder, verify=True):
    """
    A copy of `remote` placed in folder by hand, under its name or an alias
    :param verify: Check its size and SHA-256, raising CorruptArchiveError when they are wrong
    :return: Its path, or None when there is none
    """
    path = next((path for name in (remote.name,) + remote.aliases
                 if os.path.isfile(path := os.path.join(folder, name))), None)
    problem = path and verify and mismatch(path, remote)
    if problem:
        raise CorruptArchiveError(f'{path} is corrupted or incomplete ({problem}). Delete it and run this cell '
                                  f'again.')
    return path


def download_deadline_s(size):
    """How long one file's download may take in all: DOWNLOAD_DEADLINE_S (or FACEGEN_DOWNLOAD_DEADLINE_S if
    longer), or the time it needs at DOWNLOAD_MIN_RATE."""
    floor = max(DOWNLOAD_DEADLINE_S, float(os.environ.get(DEADLINE_ENV) or 0))
    return max(floor, size / DOWNLOAD_MIN_RATE)


def mirror_urls(remote, mirror):
    """The URLs to try for remote: the user's own mirror (a base URL or a folder) first, then the public ones."""
    if not mirror:
        return remote.urls
    if '://' in mirror:
        own = urllib.parse.urljoin(mirror.rstrip('/') + '/', remote.name)
    else:
        own = Path(mirror, remote.name).resolve().as_uri()
    return (own,) + remote.urls


def download(remote, folder, mirror=None):
    """
    Download `remote` into folder from the first mirror that delivers it intact. The caller holds the folder's lock
    for it: <name>.part is this archive's one partial download, kept for the next try to resume.
    :param remote: A RemoteFile
    :param folder: Where the archive goes, under its own name
    :param mirror: A base URL or a folder tried before the public mirrors
    :return: The archive's path
    """
    final_path = os.path.join(folder, remote.name)
    part_path = final_path + '.part'
    failures = []
    for url in mirror_urls(remote, mirror):
        try:
            with replaced_when_done(final_path, part_path, keep_part=True):
                _fetch(url, part_path, remote)
            return final_path
        except (OSError, _MirrorFailed, http.client.HTTPException, ValueError) as error:
            if is_disk_error(error):
                raise
            if isinstance(error, _CorruptDownload):
                remove(part_path)
            failures.append(f'{url}: {error}')
            print(f'Failed to download {failures[-1]}')
    raise DownloadError(f'Could not download {remote.name} from any mirror:\n  ' + '\n  '.join(failures))


def _request(url, offset):
    """Open url, asking for the bytes from `offset` on; return (response, offset the answer starts at)."""
    headers = {'User-Agent': 'face-generation-helper'}
    if offset:
        headers['Range'] = f'bytes={offset}-'
    response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=DOWNLOAD_TIMEOUT_S)
    resumed = (offset and getattr(response, 'status', None) == 206
               and response.headers.get('Content-Range', '').startswith(f'bytes {offset}-'))
    return response, offset if resumed else 0


def _looks_like_html(chunk):
    return chunk.lstrip()[:15].lower().startswith((b'<!doctype html', b'<html'))


def _fetch(url, part_path, remote):
    """Write one URL's answer into part_path, going on from a partial download where the server allows it; raise
    _MirrorFailed on a bad answer. The whole file is hashed, resumed or not."""
    kept = os.path.getsize(part_path) if os.path.exists(part_path) else 0
    response, offset = _request(url, kept if kept < remote.size else 0)
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
        digest = sha256_of(part_path, offset) if offset else hashlib.sha256()
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

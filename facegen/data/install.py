"""The policy of download_extract: what a dataset folder needs, and doing it. The full data when a mirror or an
archive at hand has it, else the offline sample (FACEGEN_DATA chooses); a complete folder is read without a lock,
anything that writes holds the dataset's lock; a damaged folder is rebuilt from what is at hand or named in an
error, a 2017 folder adopted, anything else in the way set aside. How to download, extract, build a sample or
move a folder into place is left to the modules for each."""
import os

import numpy as np

from . import download as fetch
from .errors import DataFolderNotWritableError, DownloadError, FolderChangedError, UnknownDataSourceError
from .extract import EXTRACTORS, read_mnist_labels
from .files import count_images, is_disk_error, locked
from .folders import (MARKER_NAME, build_folder, installed, remove_stale_staging, serves, set_aside,
                      why_not_a_2017_folder, write_marker)
from .registry import LABELS_NAME, dataset_info
from .sample import LAYOUT as SAMPLE_LAYOUT, SAMPLERS

DATA_SOURCE_ENV = 'FACEGEN_DATA'
DATA_SOURCES = ('auto', 'full', 'sample')
MIRROR_ENV = 'FACEGEN_MIRROR'  # a URL or folder tried before the public mirrors


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
    source = data_source(source)
    mirror = mirror or os.environ.get(MIRROR_ENV)
    folder = os.path.join(data_path, info.folder)
    found, marker = installed(folder)
    if serves(_current(found, marker), source):
        print(_in_place(database_name, found, 'Found'))  # complete data is read without a lock
        return found
    if marker is None and os.path.isdir(folder) and not os.access(data_path, os.W_OK) \
            and why_not_a_2017_folder(folder, info) is None:
        print(f'{folder} is read-only: used as the 2017 helper left it, without a marker.')
        print(_in_place(database_name, 'full', 'Found'))
        return 'full'
    try:
        os.makedirs(data_path, exist_ok=True)
        with locked(os.path.join(data_path, f'.{database_name}.lock'), f'installing {database_name} in {data_path}'):
            found, verb = _prepare_under_lock(database_name, data_path, source, mirror)
    except OSError as error:
        if not is_disk_error(error):
            raise
        if found == 'sample':  # a read-only folder, a full disk: the sample in place still serves, in any layout
            print(f'Cannot look for the full {database_name} data ({error.strerror} in {data_path}).')
            print(_in_place(database_name, found, 'Found'))
            return found
        raise DataFolderNotWritableError(
            error.errno, f'Cannot write the {database_name} data to {data_path} ({error.strerror}). Free some disk '
                         f'space or choose a writable folder, then run this again; nothing half-written was kept.'
        ) from error
    print(_in_place(database_name, found, verb))
    return found


def data_source(source):
    """The data source asked for: the argument, else FACEGEN_DATA, else 'auto'."""
    source = source or os.environ.get(DATA_SOURCE_ENV) or 'auto'
    if source not in DATA_SOURCES:
        raise UnknownDataSourceError(f"Unknown data source {source!r} (from {DATA_SOURCE_ENV} or the source "
                                     f"argument); expected one of: {', '.join(DATA_SOURCES)}")
    return source


def _prepare_under_lock(database_name, data_path, source, mirror):
    """The work of download_extract that writes to the data folder, under the dataset's lock: (source, verb)."""
    info = dataset_info(database_name)
    folder = os.path.join(data_path, info.folder)
    remove_stale_staging(data_path, database_name)
    found, marker = installed(folder)  # again: another process may have done the work while this one waited
    current = _current(found, marker)
    if serves(current, source):
        return found, 'Found'
    if found == 'sample' and current is None:
        print(f'{folder} holds the offline sample in an older order (layout {marker.get("layout", 1)}, now '
              f'{SAMPLE_LAYOUT}): it is built again.')
        return _fetch_or_build_sample(database_name, data_path, source, mirror, found=None)
    if marker is not None and found is None:  # ours, but its images changed
        found = _repair(folder, marker, database_name, data_path)
        if found == 'full' or source == 'sample':
            return found, 'Repaired'
    elif marker is None and os.path.isdir(folder):  # not ours: adopted when the 2017 helper left it whole
        problem = why_not_a_2017_folder(folder, info)
        if problem is None:
            _adopt_2017_folder(folder, database_name, data_path, mirror)
            return 'full', 'Adopted'
        print(f'{folder} has no completion marker and is not a complete {database_name} folder ({problem}): '
              f'moved it to {set_aside(folder)}.')
    return _fetch_or_build_sample(database_name, data_path, source, mirror, found)


def _fetch_or_build_sample(database_name, data_path, source, mirror, found):
    """The full data unless the source is 'sample'; the sample where that is asked for or no mirror answered."""
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
    if found == 'sample':
        return 'sample', 'Found'
    _build_sample(database_name, data_path)
    return 'sample', 'Built'


def _current(found, marker):
    """The source installed, or None for the offline sample written in an older layout: it is the project's own,
    marked as such, so it is rebuilt without asking (a full dataset, a learner's, is never rewritten)."""
    if found == 'sample' and marker.get('layout', 1) != SAMPLE_LAYOUT:
        return None
    return found


def _build_sample(database_name, data_path):
    info = dataset_info(database_name)
    build_folder(database_name, info, data_path, 'sample', info.sample_note, SAMPLERS[database_name],
                 layout=SAMPLE_LAYOUT)


def _fetch_full(database_name, data_path, mirror):
    """Install the full dataset from archives at hand or downloaded; raise DownloadError if none comes."""
    info = dataset_info(database_name)
    archives, downloaded = [], []
    for remote in info.files:  # a verified archive is kept on failure: the next call skips its download
        path = fetch.archive_at_hand(remote, data_path)
        if path is None:
            path = fetch.download(remote, data_path, mirror)
            downloaded.append(path)
        archives.append(path)
    origin = [f'{os.path.basename(path)} (sha256 {remote.sha256})' for path, remote in zip(archives, info.files)]
    build_folder(database_name, info, data_path, 'full', origin,
                 lambda target, info: EXTRACTORS[database_name](archives, target, info))
    for path in downloaded:  # the original deletes the archive once extracted; a user's own copy is kept
        os.remove(path)


def _repair(folder, marker, database_name, data_path):
    """A marked folder whose image count no longer matches its marker: rebuild it from what is at hand, or say
    what is wrong. Return the source now installed."""
    info = dataset_info(database_name)
    n_images = count_images(folder)
    counts = f'{folder} holds {n_images:,} images, its marker says {marker["images"]:,}'
    if marker.get('source') == 'sample':
        print(f'{counts}: building the sample again.')
        _build_sample(database_name, data_path)
        return 'sample'
    if all(fetch.archive_at_hand(remote, data_path, verify=False) for remote in info.files):  # verified once, next
        print(f'{counts}: extracting it again from the archives at hand.')
        _fetch_full(database_name, data_path, None)
        return 'full'
    raise FolderChangedError(f'{folder} holds {n_images:,} images, but its marker ({MARKER_NAME}) says '
                             f'{marker["images"]:,}: images are missing or were added. Put them back, or delete '
                             f'{os.path.join(folder, MARKER_NAME)} so that the next call sets the folder aside and '
                             f'fetches the dataset again.')


def _adopt_2017_folder(folder, database_name, data_path, mirror):
    """Mark a complete folder of the 2017 helper as ours, with MNIST's labels where they can be had."""
    info = dataset_info(database_name)
    if database_name == 'mnist' and not os.path.exists(os.path.join(folder, LABELS_NAME)):
        _write_labels(folder, info, data_path, mirror)
    write_marker(folder, database_name, 'full', "adopted: the 2017 helper's layout", info.n_images)


def _write_labels(folder, info, data_path, mirror):
    """Write labels.npy into an adopted MNIST folder from the (verified) labels archive; say so if none comes."""
    remote = info.files[1]
    try:
        archive = fetch.archive_at_hand(remote, data_path) or fetch.download(remote, data_path, mirror)
    except DownloadError as error:
        print(f'No digit labels for {folder}: the digit score will be skipped ({error.args[0].splitlines()[0]}).')
        return
    np.save(os.path.join(folder, LABELS_NAME), read_mnist_labels(archive, info))


def _in_place(database_name, source, verb):
    """The line that says what data is in place; the offline sample's always says that it is one."""
    note = '' if source == 'full' else f': offline, using {dataset_info(database_name).sample_note}'
    return f'{verb} {database_name} Data{note}'

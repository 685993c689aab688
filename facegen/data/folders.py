"""The dataset folders in a data folder: the marker written last into a complete folder (its source, origin and
image count), a folder built in a staging folder of this process and moved into place whole, one in the way set
aside rather than deleted, and the test of a folder the 2017 helper left. Deciding what a folder needs is
install's."""
import json
import os
import tempfile
import time
from glob import glob

from PIL import Image

from .errors import IncompleteExtractionError
from .files import count_images, remove, replaced_when_done

MARKER_NAME = '.complete.json'
SET_ASIDE_SUFFIX = '.set-aside-'
STALE_STAGING_S = 300  # a staging folder this old whose lock is free belongs to a process that died


def read_marker(folder):
    """The completion marker of an extracted dataset folder, or None if it has none."""
    try:
        with open(os.path.join(folder, MARKER_NAME)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def write_marker(folder, database_name, source, origin, n_images, layout=None):
    """Mark a complete folder: its dataset, source ('full' or 'sample'), origin, image count and, for a sample, the
    layout it was written in."""
    marker = {'dataset': database_name, 'source': source, 'origin': origin, 'images': n_images}
    if layout is not None:
        marker['layout'] = layout
    with open(os.path.join(folder, MARKER_NAME), 'w') as f:
        json.dump(marker, f)


def installed(folder):
    """(source, marker) of a marked folder whose image count matches its marker, (None, marker) otherwise."""
    marker = read_marker(folder)
    if marker is None or count_images(folder) != marker.get('images'):
        return None, marker
    return marker.get('source'), marker


def serves(found, source):
    """True when the data installed ('full', 'sample' or None) is what the source asked for needs: the full data
    serves every source, the sample only 'sample'."""
    return found == 'full' or (found == 'sample' and source == 'sample')


def set_aside(folder):
    """Move a folder the helper did not write out of the way, under a name that says so; return the new name."""
    aside = f'{folder}{SET_ASIDE_SUFFIX}{time.strftime("%Y%m%d-%H%M%S")}'
    os.replace(folder, aside)
    return aside


def build_folder(database_name, info, data_path, source, origin, write_contents, layout=None):
    """
    Build a dataset folder with write_contents(target, info) in a staging folder of this process, mark it (with
    its layout, for a sample), then move it into place. The caller holds the dataset's lock; what stands in the way
    is ours (marked, so replaced) or set aside, never deleted.
    """
    staging = tempfile.mkdtemp(prefix=f'.tmp-{database_name}-', dir=data_path)
    final = os.path.join(data_path, info.folder)
    try:
        with replaced_when_done(final, os.path.join(staging, info.folder)) as target:
            write_contents(target, info)
            n_images = count_images(target)
            if source == 'full' and n_images != info.n_images:
                raise IncompleteExtractionError(f'Extracted {n_images:,} {database_name} images, expected '
                                                f'{info.n_images:,}. Delete the archive and run this cell again.')
            write_marker(target, database_name, source, origin, n_images, layout)
            if os.path.exists(final):
                if read_marker(final) is None:
                    print(f'Moved {final} to {set_aside(final)}: it has no completion marker.')
                else:
                    remove(final)  # a folder this helper wrote (the sample, or a damaged copy being repaired)
    finally:
        remove(staging)


def remove_stale_staging(data_path, database_name):
    """Remove the staging folders of extractions that died: called under the dataset's lock, so none is in use,
    and only those older than STALE_STAGING_S, in case a clock or a mount plays tricks."""
    for staging in glob(os.path.join(data_path, f'.tmp-{database_name}-*')):
        if time.time() - os.path.getmtime(staging) > STALE_STAGING_S:
            remove(staging)
            print(f'Removed {staging}, left by an extraction that did not finish.')


def why_not_a_2017_folder(folder, info):
    """Why a folder without a marker is not a complete dataset as the 2017 helper left it, or None if it is one.
    A cheap check: the image count and three images decoded."""
    n_images = count_images(folder)
    if n_images != info.n_images:
        return f'{n_images:,} images, expected {info.n_images:,}'
    files = sorted(glob(os.path.join(folder, '*.jpg')))
    for path in (files[0], files[len(files) // 2], files[-1]):
        try:
            with Image.open(path) as image:
                image.load()
        except OSError as error:
            return f'{path} cannot be read ({error})'
        if image.size != info.image_size:
            return f'{path} is {image.size[0]}x{image.size[1]}, expected {info.image_size[0]}x{info.image_size[1]}'
    return None

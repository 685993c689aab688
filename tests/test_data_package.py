"""helper.py is the notebook's face over facegen_data: every name it offered still works from it, each failure has a
class of its own that old code still catches, and a notebook run headless keeps one line a progress bar."""
import io

import pytest
from PIL import Image

import helper
from conftest import mnist_archives, use_mnist_mirrors
from facegen.data import errors, extract, files, progress

# The public names of helper.py before the machinery moved out (ad7eef7): a notebook may use any of them.
PUBLIC_BEFORE = [
    'AUTO_CROP', 'CACHE_DIR_NAME', 'CACHE_ENV', 'CELEBA_FACE_SIZE', 'CELEBA_PICTURE_SIZE', 'CHUNK_BYTES', 'DATASETS',
    'DATA_SOURCES', 'DATA_SOURCE_ENV', 'DEADLINE_ENV', 'DLProgress', 'DOWNLOAD_DEADLINE_S', 'DOWNLOAD_MIN_RATE',
    'DOWNLOAD_TIMEOUT_S', 'Dataset', 'DatasetInfo', 'DownloadError', 'IMAGE_MAX_VALUE', 'IMAGE_SIZE', 'LABELS_NAME',
    'MARKER_NAME', 'MIRROR_ENV', 'MNIST_MAGIC_IMAGES', 'MNIST_MAGIC_LABELS', 'NON_FINITE_COLOURS', 'RemoteFile',
    'SET_ASIDE_SUFFIX', 'STALE_STAGING_S', 'cache_folder', 'dataset_info', 'download_deadline_s', 'download_extract',
    'get_batch', 'get_image', 'images_square_grid', 'load_image_cache', 'mnist_labels']


def test_every_public_name_helper_had_still_works_from_it():
    assert [name for name in PUBLIC_BEFORE if not hasattr(helper, name)] == []
    assert helper.DATASETS['celeba'].crop_size == helper.CELEBA_FACE_SIZE == 108


def test_helper_reads_in_one_sitting():
    with open(helper.__file__) as f:
        assert len(f.read().splitlines()) < 300


@pytest.mark.parametrize('name, base', [
    ('DownloadError', OSError), ('CorruptArchiveError', OSError), ('BadArchiveError', OSError),
    ('TruncatedArchiveError', OSError), ('UnsafeArchiveError', OSError), ('IncompleteExtractionError', OSError),
    ('FolderChangedError', OSError), ('DataFolderNotWritableError', OSError), ('NotEnoughSpaceError', OSError),
    ('UnreadableImageError', OSError), ('EmptyDatasetError', FileNotFoundError), ('UnknownDatasetError', ValueError),
    ('UnknownDataSourceError', ValueError), ('ImageTooSmallError', ValueError), ('BatchSizeError', ValueError),
])
def test_each_failure_has_its_own_class_that_catching_the_old_one_still_catches(name, base):
    error = getattr(errors, name)
    assert issubclass(error, base) and error.__doc__ and getattr(helper, name) is error


def test_a_cut_gzip_names_the_archive(tmp_path):
    images, _ = mnist_archives()
    cut = tmp_path / 'train-images-idx3-ubyte.gz'
    cut.write_bytes(images[:len(images) // 2])
    with pytest.raises(errors.TruncatedArchiveError, match=rf'^{cut} is cut short or damaged \(.*\). Delete it'):
        extract.read_idx(str(cut), helper.MNIST_MAGIC_IMAGES, 10 ** 6)


def test_a_cut_archive_at_hand_that_matches_its_checksum_is_named_by_download_extract(monkeypatch, tmp_path):
    """The registry's checksum of a cut archive (a mistaken copy): extraction, not the download, finds it."""
    images, labels = mnist_archives()
    cut = images[:len(images) // 2]
    use_mnist_mirrors(monkeypatch, cut, labels, [], [])
    (tmp_path / 'train-images-idx3-ubyte.gz').write_bytes(cut)
    (tmp_path / 'train-labels-idx1-ubyte.gz').write_bytes(labels)
    with pytest.raises(OSError, match='train-images-idx3-ubyte.gz is cut short or damaged'):
        helper.download_extract('mnist', str(tmp_path), source='full')
    assert not (tmp_path / 'mnist').exists()


@pytest.mark.parametrize('n_bytes, said', [(100, '1 kB'), (3000, '3 kB'), (150_528, '147 kB'),
                                           (5 * 2 ** 20, '5.0 MB'), (65_856_000, '63 MB'), (3 * 2 ** 30, '3.0 GB')])
def test_sizes_are_said_in_the_unit_that_keeps_the_number_above_zero(n_bytes, said):
    assert files.amount(n_bytes) == said


def bar_output(monkeypatch, final_only, updates=1000):
    if final_only:
        monkeypatch.setenv(progress.PROGRESS_ENV, progress.FINAL_ONLY)
    else:
        monkeypatch.delenv(progress.PROGRESS_ENV, raising=False)
    out = io.StringIO()
    for _ in progress.DLProgress(range(updates), desc='Caching preprocessed images', file=out, mininterval=0):
        pass
    return out.getvalue()


def test_a_bar_in_a_notebook_run_headless_writes_its_final_line_only(monkeypatch):
    headless = bar_output(monkeypatch, final_only=True)
    assert headless.count('Caching preprocessed images') == 1 and '1000/1000' in headless
    live = bar_output(monkeypatch, final_only=False)
    assert live.count('Caching preprocessed images') > 2 and '0/1000' in live, 'a terminal or Jupyter: tqdm as is'


def test_a_long_bar_headless_writes_a_line_a_minute(monkeypatch):
    clock = iter(range(0, 10 ** 6, 25))  # 25 s between updates
    monkeypatch.setattr(progress.time, 'monotonic', lambda: next(clock))
    headless = bar_output(monkeypatch, final_only=True, updates=10)  # 250 s in all
    assert 4 <= headless.count('Caching preprocessed images') <= 6


def test_the_offline_faces_are_celeba_sized_pictures_with_the_face_where_celebas_crop_takes_it(tmp_path, no_network):
    assert helper.download_extract('celeba', str(tmp_path), source='sample') == 'sample'
    path = str(tmp_path / 'img_align_celeba' / 'image_0.jpg')
    with Image.open(path) as picture:
        assert picture.size == helper.CELEBA_PICTURE_SIZE
    whole = helper.get_image(path, 178, 218, 'L', crop_size=None).astype(float)
    above, face, below = whole[:55], whole[55:163, 35:143], whole[163:]  # CelebA's crop: the central 108x108
    assert above.std(axis=0).max() < 5 and below.std(axis=0).max() < 5, 'the face\'s edge drawn out, column by column'
    assert face.std(axis=0).mean() > 10, 'the face itself, where the crop takes it'

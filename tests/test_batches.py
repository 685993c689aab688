"""helper's images, batches, cache and grids."""
import os
import time

import numpy as np
import pytest
from PIL import Image

import helper
import facegen.data
import facegen.images
from bench import reference_2017
from conftest import write_pngs


def face_in_frame():
    """A 178x218 RGB image: black border, white 108x108 centre, as CelebA's crop expects."""
    image = np.zeros((218, 178, 3), dtype=np.uint8)
    top, left = (218 - 108) // 2, (178 - 108) // 2
    image[top:top + 108, left:left + 108] = 255
    return image


def test_get_image_crops_the_centre_before_resizing(tmp_path):
    [path] = write_pngs(tmp_path, [face_in_frame()])

    face = helper.get_image(path, 28, 28, 'RGB', facegen.data.CELEBA_FACE_SIZE)
    whole = helper.get_image(path, 28, 28, 'RGB', crop_size=None)

    assert face.shape == (28, 28, 3) and face.dtype == np.uint8
    assert face.min() == 255, 'only the centre square is kept'
    assert whole.min() == 0, 'crop_size=None keeps the border in the picture'


def test_the_2017_call_crops_celeba_pictures_by_itself(tmp_path):
    """helper.get_batch(files, 28, 28, 'RGB'), the original notebook's own call, gave 108x108-centre faces."""
    celeba = write_pngs(tmp_path / 'celeba', [face_in_frame()] * 2)
    other = np.zeros((200, 200, 3), dtype=np.uint8)
    other[50:150, 50:150] = 255
    [square] = write_pngs(tmp_path / 'other', [other])

    assert helper.get_batch(celeba, 28, 28, 'RGB').min() == 255, 'the face alone, as in 2017'
    assert np.array_equal(helper.get_image(celeba[0], 28, 28, 'RGB'),
                          helper.get_image(celeba[0], 28, 28, 'RGB', facegen.data.CELEBA_FACE_SIZE))
    assert helper.get_image(square, 28, 28, 'RGB').min() == 0, 'only CelebA\'s picture size is cropped'


def test_get_image_of_a_jpeg_matches_a_full_size_decode(tmp_path):
    """get_image lets libjpeg decode at a reduced scale; the result must match the original pipeline closely."""
    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, (28, 23, 3), dtype=np.uint8)
    path = tmp_path / 'face.jpg'
    Image.fromarray(small).resize((178, 218), Image.BICUBIC).save(path, quality=95)

    full = reference_2017.get_image(str(path), 28, 28, 'RGB')  # full decode, crop 108x108, bilinear resize

    fast = helper.get_image(str(path), 28, 28, 'RGB', facegen.data.CELEBA_FACE_SIZE)
    assert fast.shape == full.shape
    assert np.abs(fast.astype(int) - full).mean() < 3


def test_get_image_refuses_an_image_smaller_than_the_crop(tmp_path):
    [path] = write_pngs(tmp_path, [np.zeros((25, 25, 3), dtype=np.uint8)])
    with pytest.raises(ValueError, match=r'is 25x25; .* at least 108x108'):
        helper.get_image(path, 28, 28, 'RGB', facegen.data.CELEBA_FACE_SIZE)


@pytest.mark.parametrize('mode, channels', [('L', 1), ('RGB', 3)])
def test_get_batch_is_float32_and_always_4d(tmp_path, mode, channels):
    paths = write_pngs(tmp_path, [np.full((28, 28, 3), 200, dtype=np.uint8)] * 3)
    batch = helper.get_batch(paths, 28, 28, mode)
    assert batch.shape == (3, 28, 28, channels) and batch.dtype == np.float32
    assert batch.max() == 200


def mnist_like(tmp_path, n, seed=0):
    rng = np.random.default_rng(seed)
    return write_pngs(tmp_path / 'mnist', rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))


def test_get_batches_yields_unit_range_float32_batches(tmp_path):
    dataset = helper.Dataset('mnist', mnist_like(tmp_path, 12), seed=0)
    batches = list(dataset.get_batches(4))

    assert dataset.shape == (12, 28, 28, 1) and dataset.image_mode == 'L'
    assert len(batches) == 3
    for batch in batches:
        assert batch.shape == (4, 28, 28, 1) and batch.dtype == np.float32
        assert -0.5 <= batch.min() and batch.max() <= 0.5


def test_get_batches_matches_the_original_scaling(tmp_path):
    paths = mnist_like(tmp_path, 8)
    [batch] = helper.Dataset('mnist', paths, seed=0).get_batches(8)
    expected = helper.get_batch(paths, 28, 28, 'L') / 255 - 0.5
    # The batch is shuffled: compare as sets of images.
    assert np.allclose(np.sort(batch.reshape(8, -1), axis=0), np.sort(expected.reshape(8, -1), axis=0))


def test_get_batches_drops_incomplete_batch(tmp_path):
    dataset = helper.Dataset('mnist', mnist_like(tmp_path, 10), seed=0)
    assert [len(b) for b in dataset.get_batches(4)] == [4, 4]


def test_get_batches_shuffles_each_epoch_reproducibly(tmp_path):
    paths = mnist_like(tmp_path, 32)

    def epochs(seed):
        dataset = helper.Dataset('mnist', paths, seed=seed)
        return [np.concatenate(list(dataset.get_batches(8))) for _ in range(2)]

    first, second = epochs(seed=7)
    assert not np.array_equal(first, second), 'each epoch has a new order'
    assert np.array_equal(np.sort(first, axis=0), np.sort(second, axis=0)), 'every image once per epoch'
    assert all(np.array_equal(a, b) for a, b in zip(epochs(seed=7), (first, second))), 'same seed, same order'
    assert not np.array_equal(epochs(seed=8)[0], first)


def test_cache_is_rebuilt_when_a_file_changes(tmp_path):
    paths = write_pngs(tmp_path / 'mnist', [np.zeros((28, 28), dtype=np.uint8)] * 4)
    assert helper.Dataset('mnist', paths).images.max() == 0

    Image.fromarray(np.full((28, 28), 255, dtype=np.uint8)).save(paths[2])
    os.utime(paths[2], ns=(time.time_ns(), time.time_ns() + 10 ** 9))  # a new mtime even on coarse clocks

    assert helper.Dataset('mnist', paths).images.max() == 255
    cached = os.listdir(facegen.data.cache_folder(tmp_path / 'mnist'))
    assert len([name for name in cached if name.endswith(('.npy', '.crc32'))]) == 2, 'the stale cache is removed'


def test_cache_is_reused_while_files_are_unchanged(tmp_path, monkeypatch):
    paths = mnist_like(tmp_path, 4)
    helper.Dataset('mnist', paths).images
    monkeypatch.setattr(helper, 'get_image', lambda *a: pytest.fail('decoded again'))
    assert helper.Dataset('mnist', paths).images.shape == (4, 28, 28, 1)


def test_parallel_cache_build_equals_serial_decode(tmp_path):
    paths = write_pngs(tmp_path / 'celeba', [np.roll(face_in_frame(), i, axis=1) for i in range(600)])

    cache = helper.load_image_cache(paths, 28, 28, 'RGB', facegen.data.CELEBA_FACE_SIZE, workers=2)

    assert cache.shape == (600, 28, 28, 3)
    assert np.array_equal(cache[[0, 599]], helper.get_batch([paths[0], paths[599]], 28, 28, 'RGB',
                                                            facegen.data.CELEBA_FACE_SIZE).astype(np.uint8))


def test_dataset_without_files_says_what_to_run():
    with pytest.raises(FileNotFoundError, match=r"Run helper.download_extract\('celeba', './data'\) first"):
        helper.Dataset('celeba', [])


def test_grid_of_constant_batch_has_no_nan():
    grid = helper.images_square_grid(np.zeros((4, 28, 28, 1), dtype=np.float32), 'L')
    assert grid.size == (56, 56) and np.array(grid).max() == 0


def test_grid_of_non_square_images_tiles_rows_and_columns():
    images = np.zeros((9, 3, 5, 3), dtype=np.float32)  # 3 high, 5 wide
    images[4] = 1.0                                      # the centre tile
    grid = helper.images_square_grid(images, 'RGB')
    assert grid.mode == 'RGB' and grid.size == (15, 9)   # PIL sizes are (width, height)
    pixels = np.array(grid)
    assert pixels[3:6, 5:10].min() == 255 and pixels[:3].max() == 0


def test_grid_uses_floor_sqrt_images_and_rescales():
    images = np.linspace(-1, 1, 10 * 4 * 4).reshape(10, 4, 4)
    grid = np.array(helper.images_square_grid(images, 'L'))
    assert grid.shape == (12, 12) and grid.dtype == np.uint8
    assert grid.min() == 0 and grid.max() < 255  # images 10 (the brightest) is left out of a 3x3 grid


def test_grid_refuses_unknown_mode():
    with pytest.raises(ValueError, match="Unknown image mode 'RGBA'"):
        helper.images_square_grid(np.zeros((4, 2, 2, 3)), 'RGBA')


@pytest.mark.parametrize('batch_size', [0, -1, 2.5, '4', True, 11])
def test_get_batches_refuses_a_batch_size_it_cannot_serve(tmp_path, batch_size):
    dataset = helper.Dataset('mnist', mnist_like(tmp_path, 10), seed=0)
    with pytest.raises(ValueError, match=rf"batch_size must be a whole number from 1 to 10 .*got {batch_size!r}\. "
                                         r"Choose a batch_size in that range, or use more images"):
        dataset.get_batches(batch_size)


def test_get_batches_takes_the_whole_dataset_as_one_batch(tmp_path):
    dataset = helper.Dataset('mnist', mnist_like(tmp_path, 10), seed=0)
    assert [len(b) for b in dataset.get_batches(np.int64(10))] == [10]


def test_grid_with_nan_pixels_scales_the_rest_and_paints_them(recwarn):
    images = np.tile(np.linspace(-1, 1, 16, dtype=np.float32).reshape(1, 4, 4, 1), (4, 1, 1, 1))
    images[1, 0, 0, 0], images[2, 3, 3, 0] = np.nan, np.inf

    with pytest.warns(UserWarning, match=r'2 of 64 pixels are NaN or infinite'):
        grey = np.array(helper.images_square_grid(images, 'L'))
    with pytest.warns(UserWarning, match=r'2 of 64 pixels'):
        colour = np.array(helper.images_square_grid(images, 'RGB'))

    assert grey[0, 0] == 0 and grey[3, 3] == 255, 'the finite pixels keep their full range'
    assert grey[0, 4] == facegen.images.NON_FINITE_COLOURS['L'] and grey[7, 3] == facegen.images.NON_FINITE_COLOURS['L']
    assert tuple(colour[0, 4]) == facegen.images.NON_FINITE_COLOURS['RGB'] and tuple(colour[0, 0]) == (0, 0, 0)


def test_grid_of_finite_images_does_not_warn(recwarn):
    helper.images_square_grid(np.random.default_rng(0).uniform(-1, 1, (4, 5, 5, 3)), 'RGB')
    assert not [w for w in recwarn if 'NaN' in str(w.message)]


def test_progress_bars_write_to_stdout_not_stderr(tmp_path, capsys):
    """Jupyter shows stderr on a red background: the data layer's bars must not look like errors."""
    files = write_pngs(tmp_path / 'mnist', np.zeros((8, 28, 28), np.uint8))
    next(helper.Dataset('mnist', files).get_batches(4))
    captured = capsys.readouterr()
    assert 'Caching preprocessed images' in captured.out and captured.err == ''

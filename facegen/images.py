"""Image grids: a batch of images tiled into one square picture, as the notebook shows them and the runs keep
them (helper.images_square_grid is this function, the 2017 API)."""
import math
import warnings

import numpy as np
from PIL import Image

from .data.registry import IMAGE_MAX_VALUE

NON_FINITE_COLOURS = {'L': 128, 'RGB': (255, 0, 255)}  # how images_square_grid paints NaN and infinite pixels


def images_square_grid(images, mode):
    """
    Tile images into a square grid
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

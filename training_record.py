"""What a training run keeps in its folder: losses, progress grids, samples and checkpoints."""
import os
import shutil
from glob import glob

import numpy as np
from PIL import Image

from helper import images_square_grid


class TrainingRecord:
    """
    What a training run keeps in its folder, so that nothing is lost when it stops, however it stops:
    the loss history (losses.csv, losses.png), the fixed noise and the grids drawn from it (grids/, progress.gif),
    the final samples (samples.npy, samples.png) and the TensorFlow checkpoints (checkpoints/)
    :param run_dir: The run's folder, created if needed
    :param image_mode: 'L' or 'RGB', for the grids
    :param resume: Keep what run_dir holds and go on from it (False: clear it first)
    """
    LOSS_HEADER = 'step,d_loss,g_loss'

    def __init__(self, run_dir, image_mode, resume=False):
        self.run_dir, self.image_mode = run_dir, image_mode
        self.checkpoint_dir = os.path.join(run_dir, 'checkpoints')
        self.checkpoint_prefix = os.path.join(self.checkpoint_dir, 'model')
        if not resume and os.path.isdir(run_dir):
            shutil.rmtree(run_dir)  # a fresh run: no grid, loss or checkpoint of an earlier one mixes in
        os.makedirs(os.path.join(run_dir, 'grids'), exist_ok=True)
        os.makedirs(self.checkpoint_dir, exist_ok=True)
        self.losses = self._read_losses()

    def _path(self, name):
        return os.path.join(self.run_dir, name)

    def _read_losses(self):
        try:
            table = np.loadtxt(self._path('losses.csv'), delimiter=',', skiprows=1, ndmin=2)
        except (OSError, ValueError):
            return []
        return [(int(step), float(d), float(g)) for step, d, g in table]

    def truncate_losses(self, step):
        """Forget losses recorded after `step` (a resumed run repeats the steps after its last checkpoint)."""
        self.losses = [row for row in self.losses if row[0] <= step]

    def fixed_noise(self, n_images, z_dim, seed=None):
        """The z vectors every progress grid of this run is drawn from (kept, so a resumed run shows the same)."""
        path = self._path('fixed_z.npy')
        if os.path.exists(path):
            noise = np.load(path)
            if noise.shape == (n_images, z_dim):
                return noise
        noise = np.random.default_rng(seed).uniform(-1, 1, size=(n_images, z_dim)).astype(np.float32)
        np.save(path, noise)
        return noise

    def save_grid(self, images, step):
        """Save a progress grid as grids/step_NNNNNN.png; return its path."""
        path = os.path.join(self.run_dir, 'grids', f'step_{step:06d}.png')
        images_square_grid(images, self.image_mode).save(path)
        return path

    def save(self):
        """Write the loss history, its plot and the progress GIF, each replacing its file whole."""
        _write_atomically(self._path('losses.csv'), lambda f: np.savetxt(
            f, np.array(self.losses, dtype=np.float64).reshape(-1, 3), delimiter=',', fmt=['%d', '%.6f', '%.6f'],
            header=self.LOSS_HEADER, comments=''))
        if self.losses:
            _write_atomically(self._path('losses.png'), lambda f: plot_losses(self.losses).savefig(f, format='png'))
        frames = [Image.open(path) for path in sorted(glob(os.path.join(self.run_dir, 'grids', 'step_*.png')))]
        if frames:
            _write_atomically(self._path('progress.gif'), lambda f: frames[0].save(
                f, format='GIF', save_all=True, append_images=frames[1:], duration=400, loop=0))

    def save_samples(self, images):
        """Keep the final generated images: samples.npy (floats in [-1, 1]) and samples.png (a grid)."""
        np.save(self._path('samples.npy'), np.asarray(images, dtype=np.float32))
        images_square_grid(images, self.image_mode).save(self._path('samples.png'))


def _write_atomically(path, write):
    """Write a file through a temporary name, so a stop half-way never leaves it half-written."""
    part = path + '.part'
    with open(part, 'wb') as f:
        write(f)
    os.replace(part, path)


def smooth(values, window=50):
    """Moving average over the last `window` values (fewer at the start)."""
    values = np.asarray(values, dtype=np.float64)
    sums = np.cumsum(np.insert(values, 0, 0.0))
    counts = np.minimum(np.arange(1, len(values) + 1), window)
    return (sums[1:] - sums[np.arange(1, len(values) + 1) - counts]) / counts


def plot_losses(losses):
    """A matplotlib figure of the discriminator and generator losses, raw and smoothed."""
    from matplotlib.figure import Figure
    steps, d_loss, g_loss = np.array(losses, dtype=np.float64).T
    figure = Figure(figsize=(8, 4))
    axes = figure.subplots()
    for values, name, colour in ((d_loss, 'Discriminator', 'tab:blue'), (g_loss, 'Generator', 'tab:orange')):
        axes.plot(steps, values, color=colour, alpha=0.25, linewidth=0.8)
        axes.plot(steps, smooth(values), color=colour, label=f'{name} (moving average)')
    axes.set_xlabel('step')
    axes.set_ylabel('loss')
    axes.legend()
    figure.tight_layout()
    return figure

"""Everything `train` keeps and shows besides the training itself: a TrainingRun.

Each run has a folder of its own under its training's folder (run_folders): the checkpoints, the loss history,
the progress grids, the final samples and TensorBoard's event files (run_events), so that nothing is lost when a
run stops, however it stops, and no run deletes another. Its session restores the newest intact checkpoint on
resume (checkpoints); it counts the steps, stops at max_steps, refuses a loss that is no longer a number and shows
a progress bar.
"""
import contextlib
import itertools
import os
import time
from glob import glob

import numpy as np
from PIL import Image

import tensorflow.compat.v1 as tf
from tqdm import tqdm

from .. import tf_settings
from ..images import images_square_grid
from . import checkpoints, folders as run_folders
from .events import RunEvents

FIRST_GRID_STEP = 50         # an early grid: on 2 CPU cores it appears within the first minute
TEXT_PROGRESS_EVERY_S = 60   # how often the text progress line is printed
PROGRESS_STYLES = ('widget', 'text', None)


class TrainingRun:
    """
    A training run's folder, session, step count and progress bar
    :param runs_dir: The training's folder: each run gets a folder of its own in it (run_dir), named when it
                     starts, for checkpoints/, losses.csv and losses.png, grids/ and progress.gif, samples.npy and
                     samples.png, and TensorBoard's event files; no run removes another
    :param title: Which data this is, for the grids' titles and the progress bar
    :param resume: Go on from the newest run's newest intact checkpoint (False: start a new run)
    :param max_steps: Stop after N batches in all (None: run all epochs)
    :param bfloat16: Train in mixed bfloat16 (see tf_settings.session_config)
    :param print_every: How often train prints the losses, in batches
    :param show_every: How often train shows a grid, in batches (and once at FIRST_GRID_STEP)
    :param checkpoint_every: How often to save a checkpoint, in batches
    :param progress: 'widget' (a Jupyter progress bar), 'text' (a line every TEXT_PROGRESS_EVERY_S seconds, for a
                     console or an HTML copy) or None
    :param hyperparameters: {name: number or text} of the run, for TensorBoard's hyperparameters view
    :param grid_score: A function of a progress grid's images (floats in [-1, 1]) that returns {tag: number}, written
                       to TensorBoard beside the grid (e.g. helper.FaceScorer(...).grid_figures); None: no score
    """
    LOSS_HEADER = 'step,d_loss,g_loss'

    def __init__(self, runs_dir='./output/run', title='', resume=False, max_steps=None, bfloat16=False,
                 print_every=100, show_every=500, checkpoint_every=500, progress='text', hyperparameters=None,
                 grid_score=None):
        if progress not in PROGRESS_STYLES:
            raise ValueError(f'Unknown progress {progress!r}; expected one of: {", ".join(map(repr, PROGRESS_STYLES))}')
        newest = run_folders.newest_run(runs_dir) if resume else None
        if resume and newest is None:
            print(f'No run to resume in {runs_dir}: starting a new one.')
        self.runs_dir, self.run_dir = runs_dir, newest or run_folders.new_run(runs_dir)
        self.title, self.resume, self.hyperparameters = title, newest is not None, hyperparameters
        self.max_steps, self.bfloat16 = max_steps, bfloat16
        self.print_every, self.show_every, self.checkpoint_every = print_every, show_every, checkpoint_every
        self.progress, self.grid_score = progress, grid_score
        self.checkpoint_dir = os.path.join(self.run_dir, run_folders.CHECKPOINTS)
        self.step, self.total_steps, self.losses, self._first_step = 0, 0, [], 0
        self._sess = self._saver = self._bar = self._events = None
        self._started = self._last_report = time.time()  # for the text progress line's rate and its next print

    def _path(self, name):
        return os.path.join(self.run_dir, name)

    @contextlib.contextmanager
    def session(self, total_steps):
        """
        A session for total_steps batches (fewer with max_steps), its variables initialized or restored from the
        last checkpoint. On leaving it the run is kept: after an interrupt with a checkpoint of the step reached,
        after a loss that is no longer a number without one (its weights are broken), else with a final checkpoint.
        """
        self.total_steps = min(total_steps, self.max_steps or total_steps)
        self._prepare_folder()
        self._saver = tf.train.Saver(max_to_keep=2, allow_empty=True)  # a train not written yet has no variables
        with tf.Session(config=tf_settings.session_config(self.bfloat16)) as sess, self._progress_bar(), \
                self._event_files():
            self._sess = sess
            sess.run(tf.global_variables_initializer())
            self._restore()
            self._events = RunEvents(self.run_dir, self.step, self.hyperparameters)
            try:
                yield sess
            except KeyboardInterrupt:
                self._keep()
                print(f'Interrupted at step {self.step}: checkpoint, losses and grids kept in {self.run_dir} '
                      f'(resume=True goes on).')
                raise
            except FloatingPointError:
                self.save()
                raise
            self._keep()

    @contextlib.contextmanager
    def _event_files(self):
        try:
            yield
        finally:
            if self._events:
                self._events.close()
            self._events = None

    def _prepare_folder(self):
        os.makedirs(os.path.join(self.run_dir, 'grids'), exist_ok=True)
        os.makedirs(self.checkpoint_dir, exist_ok=True)
        self.losses = self._read_losses()

    def _restore(self):
        checkpoint = checkpoints.newest_intact(self.checkpoint_dir) if self.resume else None
        self.step = 0
        if checkpoint:
            checkpoints.check_fits(checkpoint, tf.global_variables())
            self._saver.restore(self._sess, checkpoint)
            self.step = int(checkpoint.rsplit('-', 1)[1])  # saved as <checkpoint_dir>/model-<step>
            self.losses = [row for row in self.losses if row[0] <= self.step]  # the steps after it run again
            print(f'Resumed from step {self.step} in {self.run_dir}')
        self._first_step = self.step  # the text line's rate counts this run's steps only
        if self._bar:
            self._bar.n = self._bar.last_print_n = self.step

    def _keep(self):
        """Save a checkpoint of this step (checked: a damaged one never stays the newest) and everything the folder
        keeps."""
        saved = self._saver.save(self._sess, os.path.join(self.checkpoint_dir, 'model'), global_step=self.step)
        if saved:
            checkpoints.forget_if_damaged(saved)
        if self._events:
            self._events.flush()
        self.save()

    @contextlib.contextmanager
    def _progress_bar(self):
        if self.progress == 'widget':
            from tqdm.notebook import tqdm as widget_bar
            self._bar = widget_bar(total=self.total_steps, desc=self.title, unit='batch')
        self._started, self._last_report = time.time(), time.time()
        try:
            yield
        finally:
            if self._bar:
                self._bar.close()
            self._bar = None

    def take(self, batches):
        """The batches of an epoch, up to the run's last step."""
        return itertools.islice(batches, max(0, self.total_steps - self.step))

    def record(self, d_loss, g_loss):
        """
        Count a finished batch and keep its losses; checkpoint when due
        :return: The step just finished (1 for the first batch)
        """
        self.step += 1
        if not np.isfinite(d_loss + g_loss):
            raise FloatingPointError(
                f'Step {self.step}: the losses are D {d_loss}, G {g_loss}. Training diverged: try a lower '
                f'learning_rate, a smaller batch or another seed, or resume=True from the last checkpoint in '
                f'{self.run_dir}.')
        self.losses.append((self.step, float(d_loss), float(g_loss)))
        self._events.losses(self.step, d_loss, g_loss)
        self._show_progress(d_loss, g_loss)
        if self.step % self.checkpoint_every == 0:
            self._keep()
        return self.step

    def _show_progress(self, d_loss, g_loss):
        if self._bar:
            self._bar.update()
            self._bar.set_postfix(D=f'{d_loss:.3f}', G=f'{g_loss:.3f}', refresh=False)
        elif self.progress == 'text' and time.time() - self._last_report >= TEXT_PROGRESS_EVERY_S:
            self._last_report = time.time()
            print(tqdm.format_meter(self.step, self.total_steps, time.time() - self._started, prefix=self.title,
                                    unit='batch', postfix=f'D={d_loss:.3f}, G={g_loss:.3f}', ncols=100,
                                    initial=self._first_step))

    def grid_due(self):
        """True when train should show a grid after this step."""
        return self.step % self.show_every == 0 or self.step == FIRST_GRID_STEP

    def fixed_noise(self, n_images, z_dim):
        """The z vectors every progress grid of this run is drawn from (kept, so a resumed run shows the same)."""
        seed = np.random.randint(2 ** 31)  # drawn even when kept: the batches' z then follow the same way
        path = self._path('fixed_z.npy')
        if os.path.exists(path):
            noise = np.load(path)
            if noise.shape == (n_images, z_dim):
                return noise
        noise = np.random.default_rng(seed).uniform(-1, 1, size=(n_images, z_dim)).astype(np.float32)
        np.save(path, noise)
        return noise

    def _read_losses(self):
        try:
            table = np.loadtxt(self._path('losses.csv'), delimiter=',', skiprows=1, ndmin=2)
        except (OSError, ValueError):
            return []
        return [(int(step), float(d), float(g)) for step, d, g in table]

    def save_grid(self, images):
        """Save a progress grid of this step as grids/step_NNNNNN.png; return its path."""
        path = os.path.join(self.run_dir, 'grids', f'step_{self.step:06d}.png')
        grid = images_square_grid(images, _image_mode(images))
        grid.save(path)
        if self._events:
            self._events.grid(self.step, grid)
            if self.grid_score:
                self._events.scalars(self.step, self.grid_score(images))
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
        images_square_grid(images, _image_mode(images)).save(self._path('samples.png'))


def _image_mode(images):
    return 'L' if np.shape(images)[-1] == 1 else 'RGB'


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
    figure = Figure(figsize=(8, 4))
    axes = figure.subplots()
    if not losses:
        axes.set_title('No losses: train records them with run.record(d_loss, g_loss) after each batch')
        return figure
    steps, d_loss, g_loss = np.array(losses, dtype=np.float64).T
    for values, name, colour in ((d_loss, 'Discriminator', 'tab:blue'), (g_loss, 'Generator', 'tab:orange')):
        axes.plot(steps, values, color=colour, alpha=0.25, linewidth=0.8)
        axes.plot(steps, smooth(values), color=colour, label=f'{name} (moving average)')
    axes.set_xlabel('step')
    axes.set_ylabel('loss')
    axes.legend()
    figure.tight_layout()
    return figure

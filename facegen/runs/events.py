"""TensorBoard for the training runs: each run writes event files into its folder with TensorFlow's own writer,
from the values train already fetches (the losses, the grids it draws) and the run's hyperparameters, so the
training graph gains no ops; a resumed run marks where it started again, so that TensorBoard drops the steps it
redoes. `make tensorboard` serves every run under output/ side by side:

    python -m facegen tensorboard output [--port 6007 ...]   # make tensorboard [TENSORBOARD_ARGS=--port=6007]
"""
import io
import os
import socket
import sys

import tensorflow.compat.v1 as tf

from .folders import every_run

DEFAULT_PORT = 6006


class RunEvents:
    """The event files of one run: losses every step, the progress grids as images (with their scores, where the run
    scores them), the hyperparameters once."""

    def __init__(self, run_dir, first_step=0, hyperparameters=None):
        self._writer = tf.summary.FileWriter(run_dir)
        if first_step:  # resumed: TensorBoard forgets the steps after this one that the last session wrote
            self._writer.add_session_log(tf.SessionLog(status=tf.SessionLog.START), first_step)
        elif hyperparameters:
            from tensorboard.plugins.hparams import api as hparams
            self._writer.add_summary(tf.Summary.FromString(hparams.hparams_pb(hyperparameters).SerializeToString()))

    def losses(self, step, d_loss, g_loss):
        self._writer.add_summary(tf.Summary(value=[
            tf.Summary.Value(tag='loss/discriminator', simple_value=float(d_loss)),
            tf.Summary.Value(tag='loss/generator', simple_value=float(g_loss))]), step)

    def scalars(self, step, values):
        """Numbers measured at this step, {tag: value} (a progress grid's scores)."""
        self._writer.add_summary(tf.Summary(value=[tf.Summary.Value(tag=tag, simple_value=float(value))
                                                   for tag, value in values.items()]), step)

    def grid(self, step, image):
        """A grid of generated images (a PIL image) at this step."""
        png = io.BytesIO()
        image.save(png, format='PNG')
        self._writer.add_summary(tf.Summary(value=[tf.Summary.Value(tag='generated', image=tf.Summary.Image(
            height=image.height, width=image.width, colorspace=len(image.getbands()),
            encoded_image_string=png.getvalue()))]), step)

    def flush(self):
        self._writer.flush()

    def close(self):
        self._writer.close()


def _port(args):
    """The port TensorBoard is asked for in its arguments (--port N or --port=N), else DEFAULT_PORT."""
    for i, arg in enumerate(args):
        if arg.startswith('--port='):
            return int(arg.split('=', 1)[1])
        if arg == '--port' and i + 1 < len(args):
            return int(args[i + 1])
    return DEFAULT_PORT


def _taken(port):
    with socket.socket() as s:
        try:
            s.bind(('127.0.0.1', port))
        except OSError:
            return True
    return False


def serve(output_dir, args):
    """Start TensorBoard on every run below output_dir, or say in one line why not and what to do."""
    if not every_run(output_dir):
        print(f'No training runs in {output_dir} yet: run a training cell of the notebook (or make run) first.')
        return 1
    port = _port(args)
    if _taken(port):
        print(f'Port {port} is taken (another TensorBoard?): choose another, make tensorboard '
              f'TENSORBOARD_ARGS=--port={port + 1}')
        return 1
    # TensorBoard's own default port is ours too; a --port among args comes last and wins, with the same value.
    command = [sys.executable, '-m', 'tensorboard.main', '--logdir', output_dir, '--port', str(port), *args]
    os.execv(sys.executable, command)


if __name__ == '__main__':
    sys.exit(serve(sys.argv[1] if len(sys.argv) > 1 else 'output', sys.argv[2:]))

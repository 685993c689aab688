"""A run read back, as the notebook's cells after training do: the samples it kept, its newest intact checkpoint
and the noise input of that checkpoint's graph. Each says in one line what is missing rather than failing."""
import os

import numpy as np

from . import checkpoints, folders as run_folders


def saved_samples(run_dir):
    """The final images train kept in run_dir (samples.npy), or None with one line saying what is missing."""
    path = os.path.join(run_dir, 'samples.npy')
    if not os.path.isfile(path):
        print(f'No samples in {run_dir}: train keeps 1,000 generated images there with run.save_samples(images) '
              f'at its end (run the training cell first).')
        return None
    return np.load(path)


def last_checkpoint(run_dir):
    """The newest intact checkpoint in run_dir (a newer damaged one skipped with a line), or None with one line
    saying what is missing."""
    checkpoint_dir = os.path.join(run_dir, run_folders.CHECKPOINTS)
    checkpoint = checkpoints.newest_intact(checkpoint_dir)
    if checkpoint is None:
        print(f'No checkpoint in {checkpoint_dir}: train keeps one when it trains inside '
              f'`with run.session(...)` (run the training cell first).')
    return checkpoint


def noise_input(graph):
    """The z placeholder of a graph restored from a checkpoint: model_inputs' only placeholder of rank 2."""
    placeholders = [op.outputs[0] for op in graph.get_operations()
                    if op.type == 'Placeholder' and op.outputs[0].shape.ndims == 2]
    if len(placeholders) != 1:
        raise ValueError(f'Expected one placeholder of rank 2 (input_z of model_inputs) in the checkpoint\'s graph, '
                         f'found {[p.name for p in placeholders]}')
    return placeholders[0]

"""What the face score costs training: the scoring of one progress grid against the training steps between two
grids, measured in one run.

The notebook's CelebA recipe trains --steps steps on the faces at hand (the offline sample by default) with its
own train, grids off, for the time a step takes; then FaceScorer.grid_figures scores 25 faces --repeats times,
against those faces and against a training set of CelebA's full size (202,599 faces of random pixels: the cost,
not the figures). Prints each median and range, and the ratio of a grid's scoring to the 500 steps between two
of the notebook's grids.

    .venv/bin/python bench/face_score_cost.py
"""
import argparse
import os
import statistics
import sys
import tempfile
import time
from glob import glob

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import face_score_check  # noqa: E402 (bench/ is on the path: this file runs as a script)
import numpy as np  # noqa: E402
from measure import durations, recorded_steps  # noqa: E402

import helper  # noqa: E402

SHOW_EVERY = 500         # the notebook's steps between two grids
CELEBA_FACES = 202599


def step_seconds(files, steps, folder):
    """Seconds a training step of the notebook's CelebA recipe takes, from its losses' timestamps: the run's time
    over its steps, less the first 10% (graph building and warm-up)."""
    with recorded_steps(helper.TrainingRun) as recorded:
        epochs = -(-steps // (len(files) // face_score_check.BATCH_SIZE))
        face_score_check.train_variant('recipe', files, epochs, 0, folder)
    skip = len(recorded) // 10
    return (recorded[-1] - recorded[skip]) / (len(recorded) - 1 - skip)


def full_size_faces(folder):
    faces = np.lib.format.open_memmap(os.path.join(folder, 'faces.npy'), mode='w+', dtype=np.uint8,
                                      shape=(CELEBA_FACES, 28, 28, 3))
    rng = np.random.default_rng(0)
    for start in range(0, CELEBA_FACES, 20000):
        faces[start:start + 20000] = rng.integers(0, 256, faces[start:start + 20000].shape, dtype=np.uint8)
    return faces


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--steps', type=int, default=900, help='training steps timed (the sample: 900)')
    parser.add_argument('--repeats', type=int, default=15)
    parser.add_argument('--data-dir', default='data', help='a data folder with img_align_celeba/')
    args = parser.parse_args(argv)
    files = sorted(glob(os.path.join(args.data_dir, 'img_align_celeba', '*.jpg')))
    grid = helper.Dataset('celeba', files).images[:25] / 127.5 - 1
    with tempfile.TemporaryDirectory() as folder:
        step = step_seconds(files, args.steps, folder)
        print(f'a training step: {step * 1000:.1f} ms; {SHOW_EVERY} steps between grids: {step * SHOW_EVERY:.1f} s')
        for name, faces in (('the faces at hand', helper.Dataset('celeba', files).images),
                            (f"{CELEBA_FACES:,} faces (CelebA's size)", full_size_faces(folder))):
            started = time.perf_counter()
            scorer = helper.FaceScorer(faces)
            built = time.perf_counter() - started
            seconds = durations(lambda: scorer.grid_figures(grid), args.repeats)
            median, least, most = statistics.median(seconds), min(seconds), max(seconds)
            print(f'against {name}: scorer built in {built:.2f} s; a grid scored in {median * 1000:.0f} ms '
                  f'({least * 1000:.0f}-{most * 1000:.0f}), {median / (step * SHOW_EVERY):.2%} of the steps '
                  f'between two grids')


if __name__ == '__main__':
    main()

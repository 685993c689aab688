"""The face score on the faces of the notebook's CelebA recipe and of broken ones, each trained by the notebook's own
train on the data at hand, as its CelebA cell does (on the offline sample: 300 epochs of 100 faces).

A variant changes one thing in the notebook's cells before they run. For each, 1,000 faces from the run's final
weights are scored by helper.FaceScorer against the faces trained on; one JSON line each, all of them in
<out>/result.json, and each run's 1,000 faces as <out>/<variant>.npy with a grid of the first 25 as
<out>/<variant>.png.

    .venv/bin/python bench/face_score_check.py --out /tmp/faces
    .venv/bin/python bench/face_score_check.py --variants not_doubled --epochs 30 --out /tmp/faces_short
"""
import argparse
import json
import os
import sys
import tempfile
import time
from glob import glob

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import facegen  # noqa: E402,F401 (TensorFlow's start-up settings, before TensorFlow is imported)
import numpy as np  # noqa: E402
import tensorflow.compat.v1 as tf  # noqa: E402

import helper  # noqa: E402
from facegen.notebooks import loader  # noqa: E402

BATCH_SIZE, Z_DIM, LEARNING_RATE, BETA1 = 32, 100, 0.0005, 0.5  # the notebook's CelebA cell
# Each variant: (what its cells say, what it says instead); None is the notebook as it is.
VARIANTS = {
    'recipe': None,
    'not_doubled': ('batch_images * 2', 'batch_images'),  # real faces in [-0.5, 0.5], the generator's in [-1, 1]
    # No batch normalization in the generator: the FAQ's first advice left out
    'no_generator_batch_norm': ('tf.layers.batch_normalization(x, momentum=BN_MOMENTUM, training=is_train)', 'x'),
    # The discriminator's rate 20 times the recipe's: ten times the generator's, where the recipe has it at half
    'discriminator_rate_x20': ('AdamOptimizer(learning_rate, beta1=beta1)',
                               'AdamOptimizer(learning_rate * 20, beta1=beta1)'),
}


def changed(variant):
    """A transform of the notebook's cells for a variant, checked to change something."""
    if VARIANTS[variant] is None:
        return None
    old, new = VARIANTS[variant]
    seen = []

    def transform(source):
        seen.append(old in source)
        return source.replace(old, new)
    return transform, seen


def train_variant(variant, files, epochs, seed, folder):
    """Train the notebook's train on files with the variant's cells; return the run's folder."""
    transform, seen = changed(variant) or (None, [True])
    nb = loader.notebook_functions(transform=transform)
    if not any(seen):
        raise ValueError(f'{variant}: the notebook has no {VARIANTS[variant][0]!r}; the variant changes nothing')
    nb['R1_WEIGHT'] = loader.training_cell_setting('R1_WEIGHT')[1]  # as the CelebA cell sets it
    dataset = helper.Dataset('celeba', files, seed=seed)
    run = helper.TrainingRun(os.path.join(folder, variant), f'CelebA, {variant}', progress=None)
    np.random.seed(seed)
    with tf.Graph().as_default():
        tf.set_random_seed(seed)
        nb['train'](epochs, BATCH_SIZE, Z_DIM, LEARNING_RATE, BETA1, dataset.get_batches, dataset.shape,
                    dataset.image_mode, run)
    return dataset, run.run_dir


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--variants', nargs='+', choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument('--epochs', type=int, default=300, help="passes over the faces (the sample's make run: 300)")
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--data-dir', default='data', help='a data folder with img_align_celeba/')
    parser.add_argument('--out', required=True, help='folder for result.json and the grids (25 faces each)')
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    files = sorted(glob(os.path.join(args.data_dir, 'img_align_celeba', '*.jpg')))
    results = []
    with tempfile.TemporaryDirectory() as runs:
        for variant in args.variants:
            started = time.time()
            dataset, run_dir = train_variant(variant, files, args.epochs, args.seed, runs)
            score = helper.FaceScorer(dataset.images).score(helper.saved_samples(run_dir))  # one line says if missing
            results.append({'variant': variant, 'seconds': round(time.time() - started), **score})
            print(json.dumps(results[-1]), flush=True)
            samples = helper.saved_samples(run_dir)
            np.save(os.path.join(args.out, f'{variant}.npy'), samples)
            helper.images_square_grid(samples[:25], dataset.image_mode).save(os.path.join(args.out, f'{variant}.png'))
    with open(os.path.join(args.out, 'result.json'), 'w') as f:
        json.dump({'args': vars(args), 'results': results}, f)


if __name__ == '__main__':
    main()

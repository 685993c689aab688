"""A training recipe checked with the notebook's own graph on the CPU: the digit score along the way.

The notebook's model functions are loaded with every layer's channels scaled by --width and, if given, another
R1_WEIGHT; the training loop is train's (one sess.run of both networks per batch of 64, real images doubled, the
same seeds) with the rate given; at each --evals step 1,000 digits from fixed noise are scored with the notebook's
scorer. One JSON line per evaluation, and all of them in <out>/result.json. The defaults are the notebook's MNIST
recipe on the offline sample:

    .venv/bin/python bench/recipe_check.py --seed 0 --out /tmp/check_s0

and the recipe before it (full widths, no penalty, DCGAN's rate, 80 epochs):

    .venv/bin/python bench/recipe_check.py --width 2 --r1-weight 0 --lr 2e-4 --steps 6240 --out /tmp/check_old
"""
import argparse
import json
import os
import re
import sys
import time
from glob import glob

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import facegen  # noqa: E402,F401 (TensorFlow's start-up settings, before TensorFlow is imported)
import numpy as np  # noqa: E402
import tensorflow.compat.v1 as tf  # noqa: E402

import helper  # noqa: E402
from facegen.scores import digits  # noqa: E402
from facegen.notebooks import loader  # noqa: E402

BATCH_SIZE, Z_DIM, BETA1 = 64, 100, 0.5  # the notebook's MNIST cell
SCORE_NOISE_SEED = 1234


def scaled_source(source, width):
    """A model cell's source with every layer's channel count multiplied by width."""
    def scale(count):
        return str(int(int(count) * width))
    source = re.sub(r'conv2d\((images|x), (\d+),', lambda m: f'conv2d({m.group(1)}, {scale(m.group(2))},', source)
    source = re.sub(r'conv2d_transpose\(x, (\d+),', lambda m: f'conv2d_transpose(x, {scale(m.group(1))},', source)
    source = re.sub(r'7 \* 7 \* (\d+)', lambda m: f'7 * 7 * {scale(m.group(1))}', source)
    return re.sub(r'\(-1, 7, 7, (\d+)\)', lambda m: f'(-1, 7, 7, {scale(m.group(1))})', source)


def changed_source(source, args):
    """A model cell's source with the widths scaled and, where asked, model_loss's R1_WEIGHT replaced or the
    discriminator's first layer normalized."""
    if args.input_batch_norm:  # the discriminator's first layer normalized, as some learners wrote it
        source = source.replace('x = tf.nn.leaky_relu(x, LEAK)',
                                'x = tf.nn.leaky_relu(tf.layers.batch_normalization(x, training=True), LEAK)', 1)
    if args.r1_weight is not None:
        source = re.sub(r'^R1_WEIGHT = \S+', f'R1_WEIGHT = {args.r1_weight}', source, flags=re.MULTILINE)
    return scaled_source(source, args.width)


def check(args):
    nb = loader.notebook_functions(transform=lambda source: changed_source(source, args))
    files = sorted(glob(os.path.join(args.data_dir, 'mnist', '*.jpg')))
    dataset = helper.Dataset('mnist', files, seed=args.seed)
    scorer = digits.DigitScorer(dataset.images / 127.5 - 1, helper.mnist_labels(files), seed=args.seed)
    evals, results = {int(step) for step in args.evals.split(',')}, []
    score_z = np.random.RandomState(SCORE_NOISE_SEED).uniform(-1, 1, (1000, Z_DIM))
    np.random.seed(args.seed)
    with tf.Graph().as_default():
        tf.set_random_seed(args.seed)
        input_real, input_z, lr = nb['model_inputs'](28, 28, 1, Z_DIM)
        d_loss, g_loss = nb['model_loss'](input_real, input_z, 1)
        d_train_opt, g_train_opt = nb['model_opt'](d_loss, g_loss, lr, BETA1)
        samples = nb['generator_samples'](input_z, 1)
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            step, started = 0, time.time()
            while step < args.steps:
                for batch_images in dataset.get_batches(BATCH_SIZE):
                    rate = args.lr * (args.late_rate_factor if step >= args.late_from else 1)
                    sess.run([d_train_opt, g_train_opt], {
                        input_real: batch_images * 2, lr: rate,
                        input_z: np.random.uniform(-1, 1, size=(BATCH_SIZE, Z_DIM))})
                    step += 1
                    if step in evals:
                        score = scorer.score(sess.run(samples, {input_z: score_z}))
                        results.append({'step': step, 'seconds': round(time.time() - started),
                                        **{name: float(value) for name, value in score.items()}})
                        print(json.dumps(results[-1]), flush=True)
                    if step >= args.steps:
                        break
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--width', type=float, default=1.0, help="every layer's channels times this")
    parser.add_argument('--lr', type=float, default=5e-4, help="the discriminator's rate (the generator's: twice)")
    parser.add_argument('--late-rate-factor', type=float, default=1.0, help='the rates times this from --late-from on')
    parser.add_argument('--late-from', type=int, default=0, help='the step from which --late-rate-factor applies')
    parser.add_argument('--r1-weight', type=float, help="model_loss's R1_WEIGHT (default: the notebook's)")
    parser.add_argument('--input-batch-norm', action='store_true',
                        help="batch normalization on the discriminator's first layer too")
    parser.add_argument('--steps', type=int, default=3900)
    parser.add_argument('--evals', default='2000,3000,3500,3900', help='steps at which to score, comma-separated')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--data-dir', default='data', help='a data folder with mnist/ and its labels.npy')
    parser.add_argument('--out', required=True, help='folder for result.json')
    args = parser.parse_args(argv)
    results = check(args)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, 'result.json'), 'w') as f:
        json.dump({'args': vars(args), 'results': results}, f)


if __name__ == '__main__':
    main()

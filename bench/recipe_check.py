"""A training recipe checked with the notebook's own graph on the CPU: the digit score along the way.

The notebook's model functions are loaded with every layer's channels scaled by --width and, where asked, other
constants (--set) or pieces of code (--replace); the training loop is train's (one sess.run of both networks per
batch, real images doubled, the rate from train's `decayed` over --steps, the same seeds); at each --evals step
1,000 digits from fixed noise are scored with the notebook's scorer. One JSON line per evaluation, all of them in
<out>/result.json, and the last step's digits in <out>/samples.npy (where --evals holds the last step). The
defaults are the notebook's MNIST recipe on the offline sample (60 epochs of 5,000 digits in batches of 32):

    .venv/bin/python bench/recipe_check.py --seed 0 --out /tmp/check_s0

the recipe before it (batches of 64, a constant rate of 0.0005, 50 epochs):

    .venv/bin/python bench/recipe_check.py --batch-size 64 --lr 5e-4 --set DECAY_FROM=1.0 --steps 3900 \
        --evals 2000,3000,3500,3900 --out /tmp/check_before

and the one before that (full widths, no penalty, DCGAN's rate, 80 epochs of batches of 64):

    .venv/bin/python bench/recipe_check.py --width 2 --r1-weight 0 --batch-size 64 --lr 2e-4 --set DECAY_FROM=1.0 \
        --steps 6240 --evals 2000,4000,6240 --out /tmp/check_old
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

MNIST_CELL = {name: loader.training_cell_setting(name)[0]  # what the notebook's MNIST cell sets
              for name in ('batch_size', 'z_dim', 'learning_rate', 'beta1')}
SAMPLE_STEPS = 60 * (5000 // MNIST_CELL['batch_size'])  # the MNIST cell's epochs of the offline sample
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
    if args.no_d_batch_norm:  # the discriminator's hidden layers without batch normalization (with their biases)
        source = source.replace(', use_bias=False)\n        x = tf.nn.leaky_relu(tf.layers.batch_normalization(x, '
                                'training=True), LEAK)', ')\n        x = tf.nn.leaky_relu(x, LEAK)')
    for change in args.replace:
        old, new = change.split('=>', 1)
        source = source.replace(old, new)
    settings = ([f'R1_WEIGHT={args.r1_weight}'] if args.r1_weight is not None else []) + args.set
    for setting in settings:
        name, value = setting.split('=', 1)
        source = re.sub(rf'^{name} = \S+', f'{name} = {value}', source, flags=re.MULTILINE)
    return scaled_source(source, args.width)


def changed_notebook(args):
    """The notebook's functions with args' changes; a change that finds nothing to change stops the run: a typo
    would otherwise measure the recipe unchanged under the change's name."""
    found = set()

    def transform(source):
        found.update(change for change in args.replace if change.split('=>', 1)[0] in source)
        return changed_source(source, args)
    nb = loader.notebook_functions(transform=transform)
    missing = [f'--replace {change}' for change in args.replace if change not in found] + \
        [f'--set {setting}' for setting in args.set if setting.split('=', 1)[0] not in nb]
    if missing:
        raise SystemExit(f"Not in the notebook's model cells: {', '.join(missing)}")
    return nb


def check(args):
    nb = changed_notebook(args)
    files = sorted(glob(os.path.join(args.data_dir, 'mnist', '*.jpg')))
    dataset = helper.Dataset('mnist', files, seed=args.seed)
    scorer = digits.DigitScorer(dataset.images / 127.5 - 1, helper.mnist_labels(files), seed=args.seed)
    evals, results = {int(step) for step in args.evals.split(',')}, []
    score_z = np.random.RandomState(SCORE_NOISE_SEED).uniform(-1, 1, (1000, MNIST_CELL['z_dim']))
    np.random.seed(args.seed)
    with tf.Graph().as_default():
        tf.set_random_seed(args.seed)
        input_real, input_z, lr = nb['model_inputs'](28, 28, 1, MNIST_CELL['z_dim'])
        d_loss, g_loss = nb['model_loss'](input_real, input_z, 1)
        d_train_opt, g_train_opt = nb['model_opt'](d_loss, g_loss, lr, args.beta1)
        samples = nb['generator_samples'](input_z, 1)
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            step, started = 0, time.time()
            while step < args.steps:
                for batch_images in dataset.get_batches(args.batch_size):
                    rate = nb['decayed'](args.lr, step, args.steps) * \
                        (args.late_rate_factor if step >= args.late_from else 1)
                    sess.run([d_train_opt, g_train_opt], {
                        input_real: batch_images * 2, lr: rate,
                        input_z: np.random.uniform(-1, 1, size=(args.batch_size, MNIST_CELL['z_dim']))})
                    step += 1
                    if step in evals:
                        images = sess.run(samples, {input_z: score_z})
                        score = scorer.score(images)
                        if step == args.steps:  # the final digits, to look at
                            os.makedirs(args.out, exist_ok=True)
                            np.save(os.path.join(args.out, 'samples.npy'), images)
                        results.append({'step': step, 'seconds': round(time.time() - started),
                                        **{name: float(value) for name, value in score.items()}})
                        print(json.dumps(results[-1]), flush=True)
                    if step >= args.steps:
                        break
    return results


def parse_arguments(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--width', type=float, default=1.0, help="every layer's channels times this")
    parser.add_argument('--lr', type=float, default=MNIST_CELL['learning_rate'],
                        help="the discriminator's rate before it decays (the generator's: G_RATE_FACTOR times it)")
    parser.add_argument('--late-rate-factor', type=float, default=1.0, help='the rates times this from --late-from on')
    parser.add_argument('--late-from', type=int, default=0, help='the step from which --late-rate-factor applies')
    parser.add_argument('--r1-weight', type=float, help="model_loss's R1_WEIGHT (default: the notebook's)")
    parser.add_argument('--set', action='append', default=[], metavar='NAME=VALUE',
                        help="a model cell's constant replaced, e.g. SMOOTH=1.0, DECAY_FROM=1.0 (no decay); repeatable")
    parser.add_argument('--replace', action='append', default=[], metavar='OLD=>NEW',
                        help="a piece of the model cells' source replaced by another (repeatable)")
    parser.add_argument('--no-d-batch-norm', action='store_true',
                        help="no batch normalization in the discriminator's hidden layers")
    parser.add_argument('--batch-size', type=int, default=MNIST_CELL['batch_size'])
    parser.add_argument('--beta1', type=float, default=MNIST_CELL['beta1'], help="Adam's beta1")
    parser.add_argument('--input-batch-norm', action='store_true',
                        help="batch normalization on the discriminator's first layer too")
    parser.add_argument('--steps', type=int, default=SAMPLE_STEPS, help='the run\'s length, over which the rate decays')
    parser.add_argument('--evals', default=f'{SAMPLE_STEPS // 2},{SAMPLE_STEPS}',
                        help='steps at which to score, comma-separated')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--data-dir', default='data', help='a data folder with mnist/ and its labels.npy')
    parser.add_argument('--out', required=True, help='folder for result.json')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_arguments(argv)
    results = check(args)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, 'result.json'), 'w') as f:
        json.dump({'args': vars(args), 'results': results}, f)


if __name__ == '__main__':
    main()

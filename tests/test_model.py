"""The notebook's choices beyond the course's API: the gradient penalty, the generator's faster rate and its averaged
weights."""
import re
from unittest import mock

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

import problem_unittests as checks

Z_DIM = 8
LEARNING_RATE = 1e-3


@pytest.fixture
def gan(nb):
    """The notebook's GAN in a fresh graph: (session, training feed, its noise alone, train ops, sampler)."""
    with tf.Graph().as_default() as graph, tf.Session(graph=graph) as sess:
        tf.set_random_seed(0)
        input_real, input_z, lr = nb['model_inputs'](28, 28, 1, Z_DIM)
        d_loss, g_loss = nb['model_loss'](input_real, input_z, 1)
        train_ops = nb['model_opt'](d_loss, g_loss, lr, 0.5)
        sampler = nb['generator_samples'](input_z, 1)
        sess.run(tf.global_variables_initializer())
        rng = np.random.default_rng(0)
        noise = {input_z: rng.uniform(-1, 1, (8, Z_DIM))}
        feed = {input_real: rng.uniform(-1, 1, (8, 28, 28, 1)), lr: LEARNING_RATE, **noise}
        yield sess, feed, noise, train_ops, sampler


def weights_of(network):
    return [v for v in tf.trainable_variables() if v.name.startswith(network + '/')]


def averages_by_weight(nb):
    """The averaged copies model_opt keeps, by the name of the weight each averages."""
    suffix = '/' + nb['AVERAGE']
    return {v.op.name[:-len(suffix)]: v for v in tf.global_variables() if v.op.name.endswith(suffix)}


def test_the_discriminator_pays_for_its_slope_at_the_real_images(nb):
    """A linear stand-in discriminator (each logit the sum of slope * image) has the same slope at every real image:
    R1 adds R1_WEIGHT / 2 times its squared norm to d_loss, and nothing to g_loss."""
    slope = np.random.default_rng(0).normal(0, 0.1, (28, 28, 1)).astype(np.float32)

    def discriminator(images, reuse=False):
        logits = tf.reduce_sum(images * slope, axis=[1, 2, 3])[:, None]
        return tf.sigmoid(logits), logits

    def generator(z, out_channel_dim, is_train=True):
        return tf.zeros([tf.shape(z)[0], 28, 28, out_channel_dim]) + tf.reduce_sum(z) * 0

    def losses(r1_weight):
        with tf.Graph().as_default(), tf.Session() as sess, mock.patch.dict(
                nb['model_loss'].__globals__, generator=generator, discriminator=discriminator, R1_WEIGHT=r1_weight):
            input_real, input_z = tf.placeholder(tf.float32, (None, 28, 28, 1)), tf.placeholder(tf.float32, (None, 8))
            rng = np.random.default_rng(1)
            return sess.run(nb['model_loss'](input_real, input_z, 1), {
                input_real: rng.uniform(-1, 1, (4, 28, 28, 1)), input_z: rng.uniform(-1, 1, (4, 8))})

    assert nb['R1_WEIGHT'] > 0
    (d_penalized, g_penalized), (d_plain, g_plain) = losses(nb['R1_WEIGHT']), losses(0.0)
    assert d_penalized - d_plain == pytest.approx(nb['R1_WEIGHT'] / 2 * np.sum(slope ** 2), rel=1e-4)
    assert g_penalized == g_plain


def test_the_generator_learns_at_its_factor_of_the_rate(nb, gan):
    sess, feed, _, train_ops, _ = gan
    d_vars, g_vars = weights_of('discriminator'), weights_of('generator')
    before = sess.run(d_vars + g_vars)
    sess.run(train_ops, feed)
    steps = [np.abs(a - b).max() for a, b in zip(sess.run(d_vars + g_vars), before)]
    # Adam's first step moves every weight with a gradient by about the rate itself, whatever the gradient's size.
    d_step, g_step = max(steps[:len(d_vars)]), max(steps[len(d_vars):])
    assert d_step == pytest.approx(LEARNING_RATE, rel=0.01)
    assert g_step == pytest.approx(LEARNING_RATE * nb['G_RATE_FACTOR'], rel=0.01)


def test_model_opt_keeps_a_moving_average_of_each_generator_weight(nb, gan):
    sess, feed, _, train_ops, _ = gan
    averages = averages_by_weight(nb)
    g_vars = weights_of('generator')
    assert sorted(averages) == sorted(v.op.name for v in g_vars)
    start = sess.run(g_vars)
    sess.run(train_ops, feed)
    decay = nb['AVERAGE_DECAY']
    for var, initial in zip(g_vars, start):
        expected = decay * initial + (1 - decay) * sess.run(var)
        np.testing.assert_allclose(sess.run(averages[var.op.name]), expected, rtol=1e-5, atol=1e-7)


def test_samples_are_drawn_with_the_averaged_weights(nb, gan):
    sess, feed, noise, train_ops, sampler = gan
    for _ in range(3):
        sess.run(train_ops, feed)
    assert np.abs(sess.run(sampler, noise)).max() > 0
    for average in averages_by_weight(nb).values():
        average.load(np.zeros(average.shape.as_list(), np.float32), sess)
    # All-zero averaged weights (batch norm's scale included) draw all-zero images; the trained weights would not.
    assert np.abs(sess.run(sampler, noise)).max() == 0


def test_samples_use_the_weights_themselves_where_none_are_averaged(nb):
    with tf.Graph().as_default(), tf.Session() as sess:
        input_z = tf.placeholder(tf.float32, (None, Z_DIM), name='input_z')
        nb['generator'](input_z, 1)  # the training generator creates the weights; no model_opt, no averages
        sampler = nb['generator_samples'](input_z, 1)
        direct = nb['generator'](input_z, 1, is_train=False)
        sess.run(tf.global_variables_initializer())
        z = {input_z: np.random.default_rng(0).uniform(-1, 1, (4, Z_DIM))}
        np.testing.assert_array_equal(sess.run(sampler, z), sess.run(direct, z))


def test_the_recipe_check_scales_every_layer_of_both_networks():
    from facegen.notebooks import loader
    from bench import recipe_check
    double = loader.notebook_functions(transform=lambda source: recipe_check.scaled_source(source, 2))
    with tf.Graph().as_default():
        double['model_loss'](tf.placeholder(tf.float32, (None, 28, 28, 1)), tf.placeholder(tf.float32, (None, 100)), 1)
        kernels = {v.op.name: v.shape.as_list() for v in tf.trainable_variables() if v.op.name.endswith('kernel')}
    assert [shape[-1] for name, shape in sorted(kernels.items()) if name.startswith('discriminator/conv2d')] == \
        [64, 128, 256]
    assert kernels['generator/dense/kernel'] == [100, 7 * 7 * 256]
    assert [shape[-2] for name, shape in sorted(kernels.items()) if name.startswith('generator/conv2d_transpose')] \
        == [128, 64, 1], 'conv2d_transpose kernels are (h, w, out, in)'


def test_the_recipe_check_sets_the_constants_it_is_given():
    from bench import recipe_check

    def changed(*options):
        return recipe_check.changed_source(source, recipe_check.parse_arguments([*options, '--out', 'unused']))
    source = 'R1_WEIGHT = 1.0  # the weight\nSMOOTH = 0.9\nDECAY_FROM = 0.5\n'
    assert changed('--r1-weight', '0') == 'R1_WEIGHT = 0.0  # the weight\nSMOOTH = 0.9\nDECAY_FROM = 0.5\n'
    assert changed('--set', 'SMOOTH=1.0', '--set', 'DECAY_FROM=1.0') == \
        'R1_WEIGHT = 1.0  # the weight\nSMOOTH = 1.0\nDECAY_FROM = 1.0\n'
    assert changed() == source


@pytest.mark.parametrize('change', [['--set', 'SMOTH=1.0'], ['--replace', 'tf.nn.elu(=>tf.nn.relu(']])
def test_the_recipe_check_refuses_a_change_that_changes_nothing(change):
    from bench import recipe_check
    with pytest.raises(SystemExit, match=f"Not in the notebook's model cells: {re.escape(' '.join(change))}"):
        recipe_check.changed_notebook(recipe_check.parse_arguments([*change, '--out', 'unused']))
    assert recipe_check.changed_notebook(recipe_check.parse_arguments(['--set', 'SMOOTH=1.0', '--out', 'unused']))[
        'SMOOTH'] == 1.0


def test_the_recipe_check_trains_as_the_notebooks_mnist_cell_does():
    """Its defaults are the MNIST cell's, read from the notebook: a changed recipe cannot leave it behind."""
    from bench import recipe_check
    from facegen.notebooks import loader
    args = recipe_check.parse_arguments(['--out', 'unused'])
    assert (args.batch_size, args.lr, args.beta1) == tuple(
        loader.training_cell_setting(name)[0] for name in ('batch_size', 'learning_rate', 'beta1'))


def test_the_recipe_check_normalizes_the_discriminators_first_layer_where_asked(nb):
    """--input-batch-norm: the notebook's discriminator as learners wrote it, batch normalization on its first
    layer (docs/exercise.md measures it), which the check then warns of."""
    from bench import recipe_check
    from facegen.notebooks import loader
    args = recipe_check.parse_arguments(['--input-batch-norm', '--out', 'unused'])
    changed = loader.notebook_functions(transform=lambda source: recipe_check.changed_source(source, args))
    with pytest.warns(checks.StyleWarning, match='The discriminator normalizes its first layer'):
        checks.test_discriminator(changed['discriminator'], tf)


@pytest.mark.parametrize('r1_weight, builds_penalty', [(1.0, True), (0.0, False)])
def test_the_gradient_penalty_is_built_only_where_its_weight_counts(nb, r1_weight, builds_penalty):
    """Times zero the penalty's second backward pass would still run: a quarter of CelebA's step."""
    with tf.Graph().as_default() as graph, mock.patch.dict(nb['model_loss'].__globals__, R1_WEIGHT=r1_weight):
        input_real, input_z = tf.placeholder(tf.float32, (None, 28, 28, 3)), tf.placeholder(tf.float32, (None, 8))
        nb['model_loss'](input_real, input_z, 3)
        built = any(op.name.startswith('gradients') for op in graph.get_operations())
    assert built is builds_penalty

"""Each check in problem_unittests passes the notebook's own functions and fails a broken implementation."""
import warnings

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

import problem_unittests as checks
from conftest import bind

CHECKS = [('test_model_inputs', 'model_inputs'), ('test_discriminator', 'discriminator'),
          ('test_generator', 'generator'), ('test_model_loss', 'model_loss'), ('test_model_opt', 'model_opt'),
          ('test_train', 'train')]


def run_check(check, function):
    """Call a check as the notebook's cell does."""
    args = (function,) if check in ('test_model_inputs', 'test_model_loss') else (function, tf)
    getattr(checks, check)(*args)


@pytest.mark.parametrize('check, function', CHECKS)
def test_notebook_functions_pass(nb, check, function, capsys):
    run_check(check, nb[function])
    assert capsys.readouterr().out.strip().endswith('Tests Passed')


@pytest.mark.parametrize('check, function', CHECKS)
def test_every_stub_of_the_exercise_is_not_implemented_yet(exercise_nb, check, function):
    """The learner's first run stops at each check with the sentence that names the function to write, even where
    the functions it builds on are stubs too."""
    with pytest.raises(checks.NotImplementedYet, match=rf'^{function} is not implemented yet: ') as raised:
        run_check(check, exercise_nb[function])
    assert 'TODO' in str(raised.value)


def test_a_bare_return_none_is_not_implemented_yet_and_a_single_value_is_not_a_tuple():
    with pytest.raises(checks.NotImplementedYet, match=r'^discriminator is not implemented yet: it returns None'):
        checks.test_discriminator(lambda images, reuse=False: None, tf)
    with pytest.raises(AssertionError, match=r'discriminator return: expected a tuple of 2, \(output, logits\), '
                                             r'found <tf.Tensor'):
        checks.test_discriminator(lambda images, reuse=False: tf.reduce_mean(images, axis=[1, 2]), tf)


# ---------------------------------------------------------------------------------------------- model_inputs

def inputs_rank_3(image_width, image_height, image_channels, z_dim):
    return (tf.placeholder(tf.float32, (None, image_width, image_height)), tf.placeholder(tf.float32, (None, z_dim)),
            tf.placeholder(tf.float32, ()))


def inputs_learning_rate_int32(image_width, image_height, image_channels, z_dim):
    return (tf.placeholder(tf.float32, (None, image_width, image_height, image_channels)),
            tf.placeholder(tf.float32, (None, z_dim)), tf.placeholder(tf.int32, ()))


def inputs_learning_rate_float64(image_width, image_height, image_channels, z_dim):
    """A float64 rate: Adam casts it to the weights' dtype, and 20 steps train the same as with float32."""
    return (tf.placeholder(tf.float32, (None, image_width, image_height, image_channels)),
            tf.placeholder(tf.float32, (None, z_dim)), tf.placeholder(tf.float64, ()))


def inputs_z_constant(image_width, image_height, image_channels, z_dim):
    return (tf.placeholder(tf.float32, (None, image_width, image_height, image_channels)),
            tf.zeros((1, z_dim)), tf.placeholder(tf.float32, ()))


@pytest.mark.parametrize('broken, message', [
    (inputs_rank_3, 'Real Input rank: expected 4, found 3'),
    (inputs_learning_rate_int32, r'Learning Rate dtype: expected a float \(tf.float32\), found int32.*Make it '
                                 r'tf.placeholder\(tf.float32, \(\)\): rank 0, and a float'),
    (inputs_z_constant, 'Z Input type: expected a tf.placeholder, found Const'),
])
def test_model_inputs_check_fails(broken, message):
    with pytest.raises(AssertionError, match=message):
        checks.test_model_inputs(broken)


def test_a_learning_rate_of_any_float_passes_as_the_optimizer_takes_it(capsys):
    checks.test_model_inputs(inputs_learning_rate_float64)
    assert capsys.readouterr().out.strip() == 'Tests Passed'


def inputs_learning_rate_without_shape(image_width, image_height, image_channels, z_dim):
    return (tf.placeholder(tf.float32, (None, image_width, image_height, image_channels), name='input_real'),
            tf.placeholder(tf.float32, (None, z_dim), name='input_z'), tf.placeholder(tf.float32, name='lr'))


def inputs_images_without_shape(image_width, image_height, image_channels, z_dim):
    return (tf.placeholder(tf.float32), tf.placeholder(tf.float32, (None, z_dim)), tf.placeholder(tf.float32))


def test_a_learning_rate_placeholder_without_a_shape_passes_as_the_2017_check_passed_it(capsys):
    """The most common way real hand-ins wrote it (29 of 35): fed a number, it trains the same."""
    checks.test_model_inputs(inputs_learning_rate_without_shape)
    assert 'Tests Passed' in capsys.readouterr().out
    with pytest.raises(AssertionError, match=r'Real Input rank: expected 4, found an unknown shape \(none was '
                                             r'given\)'):
        checks.test_model_inputs(inputs_images_without_shape)


def test_a_training_cell_names_the_hyperparameters_not_chosen_yet():
    checks.check_hyperparameters(batch_size=64, z_dim=100, learning_rate=0.0005, beta1=0.5)  # chosen: silent
    with pytest.raises(checks.NotImplementedYet, match=r"^batch_size, beta1 are not chosen yet: set them above this "
                                                       r"cell's DON'T MODIFY line. Reviewers suggest a batch of 16"):
        checks.check_hyperparameters(batch_size=None, z_dim=100, learning_rate=0.0005, beta1=None)
    with pytest.raises(checks.NotImplementedYet, match=r'^z_dim is not chosen yet: set it above'):
        checks.check_hyperparameters(batch_size=64, z_dim=True, learning_rate=0.0005, beta1=0.5)


# ---------------------------------------------------------------------------------------------- discriminator

def discriminator_wrong_scope(images, reuse=False):
    with tf.variable_scope('critic', reuse=reuse):
        logits = tf.layers.dense(tf.layers.flatten(images), 1)
        return tf.sigmoid(logits), logits


def discriminator_reuse_ignored(images, reuse=False):
    with tf.variable_scope('discriminator'):
        logits = tf.layers.dense(tf.layers.flatten(images), 1)
        return tf.sigmoid(logits), logits


def discriminator_batch_norm_first(images, reuse=False):
    with tf.variable_scope('discriminator', reuse=reuse):
        x = tf.layers.conv2d(images, 8, 5, strides=2, padding='same')
        x = tf.nn.leaky_relu(tf.layers.batch_normalization(x, training=True))
        logits = tf.layers.dense(tf.layers.flatten(x), 1)
        return tf.sigmoid(logits), logits


def discriminator_returns_logits_twice(images, reuse=False):
    with tf.variable_scope('discriminator', reuse=reuse):
        logits = tf.layers.dense(tf.layers.flatten(images), 1)
        return logits, logits


def discriminator_wrong_shape(images, reuse=False):
    with tf.variable_scope('discriminator', reuse=reuse):
        logits = tf.layers.conv2d(images, 1, 5, strides=4, padding='same')
        return tf.sigmoid(logits), logits


def discriminator_reuse_always_false(images, reuse=False):
    with tf.variable_scope('discriminator', reuse=False):
        logits = tf.layers.dense(tf.layers.flatten(images), 1)
        return tf.sigmoid(logits), logits


def discriminator_output_and_logits_swapped(images, reuse=False):
    with tf.variable_scope('discriminator', reuse=reuse):
        logits = tf.layers.dense(tf.layers.flatten(images), 1)
        return logits, tf.sigmoid(logits)


@pytest.mark.parametrize('broken, message', [
    (discriminator_reuse_always_false, r"Discriminator\(reuse=True\) created the 'discriminator' variables again "
                                       r"instead of reusing them \(TensorFlow: .Variable discriminator/dense/kernel "
                                       r"already exists.*Open the scope with tf.variable_scope\('discriminator', "
                                       r"reuse=reuse\)"),
    (discriminator_output_and_logits_swapped, r'Discriminator output: expected sigmoid\(logits\).*The output and '
                                              r'the logits are swapped: return \(tf.sigmoid\(logits\), logits\)'),
    (discriminator_wrong_scope, r"tf.variable_scope arguments: expected \('discriminator', reuse=False\), "
                                r"found \('critic', reuse=False\)"),
    (discriminator_reuse_ignored, r"Discriminator\(reuse=False\): tf.variable_scope arguments: expected "
                                  r"\('discriminator', reuse=False\), found \('discriminator', reuse=None\)\. "
                                  r"Open the scope with tf.variable_scope\('discriminator', reuse=reuse\)"),
    (discriminator_returns_logits_twice, r'Discriminator output: expected sigmoid\(logits\)'),
    (discriminator_wrong_shape, r'output rank: expected 2, found 4'),
])
def test_discriminator_check_fails(broken, message):
    with pytest.raises(AssertionError, match=message):
        checks.test_discriminator(broken, tf)


def discriminator_relu(images, reuse=False):
    with tf.variable_scope('discriminator', reuse=reuse):
        x = tf.nn.relu(tf.layers.conv2d(images, 8, 5, strides=2, padding='same'))
        logits = tf.layers.dense(tf.layers.flatten(x), 1)
        return tf.sigmoid(logits), logits


def test_a_discriminator_normalizing_its_first_layer_passes_with_the_courses_advice(capsys):
    """Three seeds of the notebook's recipe with and without it train alike (docs/exercise.md): a choice."""
    with pytest.warns(checks.StyleWarning, match=r"^The discriminator normalizes its first layer \(discriminator/"
                                                 r"batch_normalization[^)]*\): the course advises batch normalization "
                                                 r"from the second layer on.*It trains as well, so it is yours"):
        checks.test_discriminator(discriminator_batch_norm_first, tf)
    assert 'Tests Passed' in capsys.readouterr().out


def test_a_discriminator_of_plain_relus_passes_with_a_warning(capsys):
    with pytest.warns(checks.StyleWarning, match=r'The discriminator has plain ReLUs \(discriminator/Relu.*: they '
                                                 r'give the generator no gradient where they are off'):
        checks.test_discriminator(discriminator_relu, tf)
    assert capsys.readouterr().out.strip() == 'Tests Passed'


def discriminator_elu(images, reuse=False):
    with tf.variable_scope('discriminator', reuse=reuse):
        x = tf.nn.elu(tf.layers.conv2d(images, 16, 5, strides=2, padding='same'))
        x = tf.nn.elu(tf.layers.batch_normalization(tf.layers.conv2d(x, 32, 5, strides=2, padding='same'),
                                                    training=True))
        logits = tf.layers.dense(tf.layers.flatten(x), 1)
        return tf.sigmoid(logits), logits


def discriminator_of_dropout_on_its_output(images, reuse=False):
    """Dropout on the probability it returns (a published style): the losses take the logits, so it trains."""
    output, logits = discriminator_elu(images, reuse)
    return tf.nn.dropout(output, rate=0.5), logits


def test_a_discriminator_of_an_activation_with_a_gradient_below_0_passes_without_a_warning(capsys):
    with warnings.catch_warnings():
        warnings.simplefilter('error', checks.StyleWarning)
        checks.test_discriminator(discriminator_elu, tf)
    assert capsys.readouterr().out.strip() == 'Tests Passed'


def test_dropout_on_the_discriminator_s_output_passes_with_a_warning_naming_it(capsys):
    with pytest.warns(checks.StyleWarning, match=r"The discriminator's output changes from run to run though its "
                                                 r"logits do not: dropout or noise applied after the logits"):
        checks.test_discriminator(discriminator_of_dropout_on_its_output, tf)
    assert capsys.readouterr().out.strip() == 'Tests Passed'


# ---------------------------------------------------------------------------------------------- generator

def generator_layers(z, out_channel_dim, is_train, output_activation=tf.tanh, output_bn=False, start=7):
    x = tf.reshape(tf.layers.dense(z, start * start * 16), (-1, start, start, 16))
    x = tf.nn.leaky_relu(tf.layers.batch_normalization(x, training=is_train))
    x = tf.layers.conv2d_transpose(x, out_channel_dim, 5, strides=4, padding='same')
    if output_bn:
        x = tf.layers.batch_normalization(x, training=is_train)
    return output_activation(x)


def generator_wrong_scope(z, out_channel_dim, is_train=True):
    with tf.variable_scope('gen', reuse=not is_train):
        return generator_layers(z, out_channel_dim, is_train)


def generator_reuse_is_train(z, out_channel_dim, is_train=True):
    with tf.variable_scope('generator', reuse=tf.AUTO_REUSE):
        return generator_layers(z, out_channel_dim, is_train)


def generator_sigmoid(z, out_channel_dim, is_train=True):
    with tf.variable_scope('generator', reuse=not is_train):
        return generator_layers(z, out_channel_dim, is_train, output_activation=tf.sigmoid)


def generator_batch_norm_output(z, out_channel_dim, is_train=True):
    with tf.variable_scope('generator', reuse=not is_train):
        return generator_layers(z, out_channel_dim, is_train, output_bn=True)


def generator_always_training(z, out_channel_dim, is_train=True):
    with tf.variable_scope('generator', reuse=not is_train):
        return generator_layers(z, out_channel_dim, True)


def generator_three_channels(z, out_channel_dim, is_train=True):
    with tf.variable_scope('generator', reuse=not is_train):
        return generator_layers(z, 3, is_train)


def generator_reuse_is_train_itself(z, out_channel_dim, is_train=True):
    with tf.variable_scope('generator', reuse=is_train):
        return generator_layers(z, out_channel_dim, is_train)


def generator_14x14(z, out_channel_dim, is_train=True):
    with tf.variable_scope('generator', reuse=not is_train):
        x = tf.reshape(tf.layers.dense(z, 7 * 7 * 16), (-1, 7, 7, 16))
        return tf.tanh(tf.layers.conv2d_transpose(x, out_channel_dim, 5, strides=2, padding='same'))


def generator_32x32(z, out_channel_dim, is_train=True):
    with tf.variable_scope('generator', reuse=not is_train):
        return generator_layers(z, out_channel_dim, is_train, start=8)


@pytest.mark.parametrize('broken, message', [
    (generator_reuse_is_train_itself, r"Generator\(is_train=True\) looked for 'generator' variables to reuse before "
                                      r"any were made \(TensorFlow: .Variable generator/dense/kernel does not exist.*"
                                      r"tf.variable_scope\('generator', reuse=not is_train\)"),
    (generator_14x14, r'Generator\(is_train=True\) output shape: expected \[None, 28, 28, 1\], found \[None, 14, '
                      r'14, 1\].*7x7 doubled twice'),
    (generator_32x32, r'output shape: expected \[None, 28, 28, 1\], found \[None, 32, 32, 1\].*7x7 doubled twice'),
    (generator_wrong_scope, r"expected \('generator', reuse=False\), found \('gen', reuse=False\)\. Open the scope "
                            r"with tf.variable_scope\('generator', reuse=not is_train\)"),
    (generator_reuse_is_train, r"expected \('generator', reuse=False\), found \('generator', reuse=<_ReuseMode"),
    (generator_sigmoid, r'Generator output range: expected values in \[-1, 1\] on both sides of 0.*A sigmoid at the '
                        r'output\? End in tf.tanh'),
    (generator_batch_norm_output, 'Generator output layer: expected no batch normalization.*free to take the values'),
    (generator_three_channels, r'output shape: expected \[None, 28, 28, 1\], found \[None, 28, 28, 3\]'),
])
def test_generator_check_fails(broken, message):
    with pytest.raises(AssertionError, match=message):
        checks.test_generator(broken, tf)


def test_a_generator_that_samples_with_batch_statistics_passes_with_a_warning(capsys):
    """Batch normalization left in training mode for sampling: training is the same (a published hand-in's grids are
    faces), so the course's advice is a WARN."""
    with pytest.warns(checks.StyleWarning, match=r"The generator's samples \(is_train=False\) change with the rest of "
                                                 r"their batch.*Pass training=is_train to tf.layers.batch_normalization"):
        checks.test_generator(generator_always_training, tf)
    assert capsys.readouterr().out.strip() == 'Tests Passed'


# ---------------------------------------------------------------------------------------------- model_loss

def xent(logits, label):
    return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(logits=logits, labels=tf.fill(tf.shape(logits),
                                                                                                label)))


def loss_swapped_labels(input_real, input_z, out_channel_dim):
    fake = generator(input_z, out_channel_dim)  # noqa: F821 (the notebook's, via bind)
    _, real_logits = discriminator(input_real)  # noqa: F821
    _, fake_logits = discriminator(fake, reuse=True)  # noqa: F821
    return xent(real_logits, 0.0) + xent(fake_logits, 1.0), xent(fake_logits, 1.0)


def loss_generator_label_zero(input_real, input_z, out_channel_dim):
    fake = generator(input_z, out_channel_dim)  # noqa: F821
    _, real_logits = discriminator(input_real)  # noqa: F821
    _, fake_logits = discriminator(fake, reuse=True)  # noqa: F821
    return xent(real_logits, 1.0) + xent(fake_logits, 0.0), -xent(fake_logits, 0.0)


def loss_not_scalar(input_real, input_z, out_channel_dim):
    fake = generator(input_z, out_channel_dim)  # noqa: F821
    _, real_logits = discriminator(input_real)  # noqa: F821
    _, fake_logits = discriminator(fake, reuse=True)  # noqa: F821
    xe = tf.nn.sigmoid_cross_entropy_with_logits
    return (xe(logits=real_logits, labels=tf.ones_like(real_logits)),
            xe(logits=fake_logits, labels=tf.ones_like(fake_logits)))


def loss_labels_of_one_value(input_real, input_z, out_channel_dim):
    fake = generator(input_z, out_channel_dim)  # noqa: F821
    _, real_logits = discriminator(input_real)  # noqa: F821
    _, fake_logits = discriminator(fake, reuse=True)  # noqa: F821
    xe = tf.nn.sigmoid_cross_entropy_with_logits
    d_loss = tf.reduce_mean(xe(logits=real_logits, labels=tf.ones([1]))) + \
        tf.reduce_mean(xe(logits=fake_logits, labels=tf.zeros([1])))
    return d_loss, tf.reduce_mean(xe(logits=fake_logits, labels=tf.ones([1])))


def loss_second_discriminator_not_reused(input_real, input_z, out_channel_dim):
    fake = generator(input_z, out_channel_dim)  # noqa: F821
    _, real_logits = discriminator(input_real)  # noqa: F821
    _, fake_logits = discriminator(fake)  # noqa: F821
    return xent(real_logits, 1.0) + xent(fake_logits, 0.0), xent(fake_logits, 1.0)


def loss_of_stub_networks(input_real, input_z, out_channel_dim):
    fake = generator(input_z, out_channel_dim)  # noqa: F821
    _, real_logits = discriminator(input_real)  # noqa: F821
    _, fake_logits = discriminator(fake, reuse=True)  # noqa: F821
    return xent(real_logits, 1.0) + xent(fake_logits, 0.0), xent(fake_logits, 1.0)


@pytest.mark.parametrize('broken, message', [
    (loss_labels_of_one_value, r'model_loss: labels of another shape than the logits \(TensorFlow: .`logits` and '
                               r'`labels` must have the same shape.*tf.ones_like\(logits\) or tf.zeros_like'),
    (loss_second_discriminator_not_reused, r'model_loss: discriminator calls: expected one on input_real and one on '
                                           r'the generated images, the second with reuse=True.*discriminator\('
                                           r'generated_images, reuse=True\)'),
    (loss_swapped_labels, r'model_loss: d_loss: expected real images labelled 1 .*which scores the real images '
                          r'against label 0.00 and the generated ones against label 1.00 \(the two swapped\)'),
    (loss_generator_label_zero, r'model_loss: g_loss: expected cross-entropy of generated images against label 1'),
    (loss_not_scalar, r'Discriminator Loss rank: expected 0, found 2'),
])
def test_model_loss_check_fails(nb, broken, message):
    with pytest.raises(AssertionError, match=message):
        checks.test_model_loss(bind(broken, nb))


def loss_with_network_options(input_real, input_z, out_channel_dim):
    fake = generator(input_z, out_channel_dim, alpha=0.2)  # noqa: F821 (bound by bind)
    real_out, real_logits = discriminator(input_real, alpha=0.2)  # noqa: F821
    fake_out, fake_logits = discriminator(fake, reuse=True, alpha=0.2)  # noqa: F821
    return (_cross_entropy(real_logits, tf.ones_like(real_out)) + _cross_entropy(fake_logits, tf.zeros_like(fake_out)),
            _cross_entropy(fake_logits, tf.ones_like(fake_out)))


def _cross_entropy(logits, labels):
    return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(logits=logits, labels=labels))


def with_alpha(network):
    """network, with a keyword parameter of a learner's own (its leaky ReLU's slope)."""
    def network_with_alpha(*args, alpha=0.2, **kwargs):
        return network(*args, **kwargs)
    return network_with_alpha


def test_a_model_loss_that_calls_networks_with_a_keyword_of_their_own_passes(nb, capsys):
    """Real answers give their networks extra keyword parameters with defaults (alpha=0.2) and pass them."""
    networks = {name: with_alpha(nb[name]) for name in ('generator', 'discriminator')}
    checks.test_model_loss(bind(loss_with_network_options, {**nb, **networks}))
    assert 'Tests Passed' in capsys.readouterr().out


def test_a_model_loss_on_unwritten_networks_says_to_write_them_first(exercise_nb):
    with pytest.raises(AssertionError, match=r"model_loss could not use the notebook's generator and discriminator "
                                             r"\((TypeError|ValueError): .*\). Make their checks pass first"):
        checks.test_model_loss(bind(loss_of_stub_networks, exercise_nb))


# ---------------------------------------------------------------------------------------------- model_opt

def opt_one_optimizer_for_all(d_loss, g_loss, learning_rate, beta1):
    t_vars = tf.trainable_variables()
    with tf.control_dependencies(tf.get_collection(tf.GraphKeys.UPDATE_OPS)):
        return (tf.train.AdamOptimizer(learning_rate, beta1).minimize(d_loss, var_list=t_vars),
                tf.train.AdamOptimizer(learning_rate, beta1).minimize(g_loss, var_list=t_vars))


def opt_without_update_ops(d_loss, g_loss, learning_rate, beta1):
    t_vars = tf.trainable_variables()
    d_vars = [v for v in t_vars if v.name.startswith('discriminator')]
    g_vars = [v for v in t_vars if v.name.startswith('generator')]
    return (tf.train.AdamOptimizer(learning_rate, beta1).minimize(d_loss, var_list=d_vars),
            tf.train.AdamOptimizer(learning_rate, beta1).minimize(g_loss, var_list=g_vars))


def opt_global_variables(d_loss, g_loss, learning_rate, beta1):
    t_vars = tf.global_variables()
    d_vars = [v for v in t_vars if v.name.startswith('discriminator') and 'moving' not in v.name]
    g_vars = [v for v in t_vars if v.name.startswith('generator') and 'moving' not in v.name]
    with tf.control_dependencies(tf.get_collection(tf.GraphKeys.UPDATE_OPS)):
        return (tf.train.AdamOptimizer(learning_rate, beta1).minimize(d_loss, var_list=d_vars),
                tf.train.AdamOptimizer(learning_rate, beta1).minimize(g_loss, var_list=g_vars))


def opt_lesson_prefixes(d_loss, g_loss, learning_rate, beta1):
    t_vars = tf.trainable_variables()
    d_vars = [v for v in t_vars if v.name.startswith('d_')]
    g_vars = [v for v in t_vars if v.name.startswith('g_')]
    with tf.control_dependencies(tf.get_collection(tf.GraphKeys.UPDATE_OPS)):
        return (tf.train.AdamOptimizer(learning_rate, beta1).minimize(d_loss, var_list=d_vars),
                tf.train.AdamOptimizer(learning_rate, beta1).minimize(g_loss, var_list=g_vars))


def opt_that_moves_the_weights_without_training(d_loss, g_loss, learning_rate, beta1):
    """Each network's weights moved by one, with the update ops: no loss, no gradient, no rate."""
    def moved(scope):
        return tf.group(*[tf.assign_add(v, tf.ones_like(v)) for v in tf.trainable_variables(scope)])
    with tf.control_dependencies(tf.get_collection(tf.GraphKeys.UPDATE_OPS)):
        return moved('discriminator'), moved('generator')


def opt_that_climbs_the_losses(d_loss, g_loss, learning_rate, beta1):
    t_vars = tf.trainable_variables()
    with tf.control_dependencies(tf.get_collection(tf.GraphKeys.UPDATE_OPS)):
        return tuple(tf.train.AdamOptimizer(learning_rate, beta1).minimize(
            -loss, var_list=[v for v in t_vars if v.name.startswith(scope)])
            for loss, scope in ((d_loss, 'discriminator'), (g_loss, 'generator')))


@pytest.mark.parametrize('broken, message', [
    (opt_that_moves_the_weights_without_training, r'discriminator training operation: expected to step each '
                                                  r'discriminator weight against the gradient of its loss.*found \d+ '
                                                  r'of 15 weights moved against it'),
    (opt_that_climbs_the_losses, r'discriminator training operation: expected to step each discriminator weight '
                                 r'against the gradient of its loss, as an optimizer does, found 0 of'),
    (opt_lesson_prefixes, r"model_opt: no variables to optimize for one of the networks \(TensorFlow: .No variables "
                          r"to optimize.*\['discriminator/dense/kernel:0'.*var.name.startswith\('discriminator'\)"),
    (lambda d_loss, g_loss, learning_rate, beta1: (None, None), r'^model_opt is not implemented yet'),
    (opt_one_optimizer_for_all, r'discriminator training operation: expected to update every discriminator '
                                r'weight and no other, found these wrong: \[.generator/'),
    (opt_without_update_ops, r"a training step \(both training operations\): expected to update the generator's "
                             'batch normalization moving averages.*Build the optimizers under '
                             r'tf.control_dependencies\(tf.get_collection\(tf.GraphKeys.UPDATE_OPS\)\)'),
])
def test_model_opt_check_fails(broken, message):
    with pytest.raises(AssertionError, match=message):
        checks.test_model_opt(broken, tf)


def opt_updates_under_the_generators_optimizer_alone(d_loss, g_loss, learning_rate, beta1):
    t_vars = tf.trainable_variables()
    d_opt = tf.train.AdamOptimizer(learning_rate, beta1).minimize(
        d_loss, var_list=[v for v in t_vars if v.name.startswith('discriminator')])
    with tf.control_dependencies(tf.get_collection(tf.GraphKeys.UPDATE_OPS)):
        g_opt = tf.train.AdamOptimizer(learning_rate, beta1).minimize(
            g_loss, var_list=[v for v in t_vars if v.name.startswith('generator')])
    return d_opt, g_opt


def test_model_opt_with_the_updates_under_one_optimizer_passes(capsys):
    """A training step runs both optimizers: every moving average moves, as under both."""
    checks.test_model_opt(opt_updates_under_the_generators_optimizer_alone, tf)
    assert 'Tests Passed' in capsys.readouterr().out


def loss_smoothed_for_both_networks(input_real, input_z, out_channel_dim):
    fake = generator(input_z, out_channel_dim)  # noqa: F821
    _, real_logits = discriminator(input_real)  # noqa: F821
    _, fake_logits = discriminator(fake, reuse=True)  # noqa: F821
    return xent(real_logits, 0.9) + xent(fake_logits, 0.0), xent(fake_logits, 0.9)


def loss_of_labels_drawn_by_numpy(input_real, input_z, out_channel_dim):
    """Smoothed labels drawn once, when the graph is built (a real answer's way): the verdict is the same each run."""
    fake = generator(input_z, out_channel_dim)  # noqa: F821
    _, real_logits = discriminator(input_real)  # noqa: F821
    _, fake_logits = discriminator(fake, reuse=True)  # noqa: F821
    return (xent(real_logits, float(np.random.uniform(0.7, 1.0))) + xent(fake_logits, float(np.random.uniform(0, 0.3))),
            xent(fake_logits, 1.0))


def loss_of_soft_labels_drawn_by_numpy(input_real, input_z, out_channel_dim):
    """ganhacks' soft labels, drawn once when the graph is built: real ones 0.7-1.2, generated ones 0-0.3."""
    fake = generator(input_z, out_channel_dim)  # noqa: F821
    _, real_logits = discriminator(input_real)  # noqa: F821
    _, fake_logits = discriminator(fake, reuse=True)  # noqa: F821
    return (xent(real_logits, np.random.uniform(0.7, 1.2)) + xent(fake_logits, np.random.uniform(0.0, 0.3)),
            xent(fake_logits, np.random.uniform(0.7, 1.2)))


def loss_of_labels_drawn_too_wide(input_real, input_z, out_channel_dim):
    fake = generator(input_z, out_channel_dim)  # noqa: F821
    _, real_logits = discriminator(input_real)  # noqa: F821
    _, fake_logits = discriminator(fake, reuse=True)  # noqa: F821
    return xent(real_logits, np.random.uniform(0.2, 1.0)) + xent(fake_logits, 0.0), xent(fake_logits, 1.0)


def test_model_loss_of_labels_drawn_partly_outside_what_trains_fails_saying_so_whatever_the_draw(nb):
    for seed in range(3):
        np.random.seed(seed)
        with pytest.raises(AssertionError, match=r"model_loss: d_loss: expected real images labelled 1 \(or smoothed "
                                                 r"to 0.7-1.2\).*on \d of 4 builds of the graph: labels drawn with "
                                                 r"np.random"):
            checks.test_model_loss(bind(loss_of_labels_drawn_too_wide, nb))


@pytest.mark.parametrize('loss', [loss_smoothed_for_both_networks, loss_of_labels_drawn_by_numpy,
                                  loss_of_soft_labels_drawn_by_numpy])
def test_model_loss_with_smoothed_labels_passes_whatever_the_draw(nb, capsys, loss):
    for seed in range(3):
        np.random.seed(seed)  # whatever state the notebook left
        checks.test_model_loss(bind(loss, nb))
    assert capsys.readouterr().out.count('Tests Passed') == 3


def test_model_opt_of_other_variables_that_train_the_same_passes_with_a_style_warning():
    with pytest.warns(checks.StyleWarning, match=r'model_opt takes its weights without tf.trainable_variables\(\)'):
        checks.test_model_opt(opt_global_variables, tf)


# ---------------------------------------------------------------------------------------------- train

def broken_train(nb, scale, epochs=None, rate_placeholder=True):
    """A train that feeds batches times `scale`, runs `epochs` epochs (None: as asked) and gives model_opt the
    learning-rate placeholder (or the number)."""
    def train(epoch_count, batch_size, z_dim, learning_rate, beta1, get_batches, data_shape, data_image_mode):
        _, width, height, channels = data_shape
        input_real, input_z, lr = model_inputs(width, height, channels, z_dim)  # noqa: F821 (bound by bind)
        d_loss, g_loss = model_loss(input_real, input_z, channels)  # noqa: F821
        d_opt, g_opt = model_opt(d_loss, g_loss, lr if rate_placeholder else learning_rate, beta1)  # noqa: F821
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            for _ in range(epochs or epoch_count):
                for batch in get_batches(batch_size):
                    z = np.random.uniform(-1, 1, (batch_size, z_dim))
                    sess.run([d_opt, g_opt], {input_real: batch * scale, input_z: z, lr: learning_rate})
    return train


@pytest.mark.parametrize('scale, epochs, message', [
    (1, None, r"train: real images fed: expected the range of the generated images, \[-1, 1\] \(the generator's "
              r"last activation\), found the discriminator takes real images in \[-0.5, 0.5\].*feed batch_images "
              r"\* 2, so that .* the samples come out grey"),
    (2, 1, r'train: get_batches calls: expected one per epoch \(2\), found 1'),
])
def test_train_check_fails(nb, scale, epochs, message):
    with pytest.raises(AssertionError, match=message):
        checks.test_train(bind(broken_train(nb, scale, epochs), nb), tf)


def half_tanh_generator(nb):
    """The notebook's generator, its images scaled to [-0.5, 0.5]: the range get_batches yields."""
    def generator(z, out_channel_dim, is_train=True):
        return 0.5 * nb['generator'](z, out_channel_dim, is_train)
    halved = {**nb, 'generator': generator}
    halved['model_loss'] = bind(nb['model_loss'], halved)
    return halved


def test_train_whose_generator_spans_the_batches_range_passes_fed_them_as_they_come(nb, capsys):
    """A generator ending in 0.5 * tanh fed the undoubled batches: the real and the generated images span one range,
    and it trains as the course's does (a published hand-in's grids are crisp)."""
    halved = half_tanh_generator(nb)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', checks.StyleWarning)
        checks.test_train(bind(broken_train(halved, 1), halved), tf)
        assert capsys.readouterr().out.strip().endswith('Tests Passed')
        with pytest.raises(AssertionError, match=r"train: real images fed: expected the range of the generated "
                                                 r"images, \[-0.5, 0.5\].*found the discriminator takes real "
                                                 r"images in \[-1, 1\]"):
            checks.test_train(bind(broken_train(halved, 2), halved), tf)


def train_of_a_learner_s_bookkeeping(epoch_count, batch_size, z_dim, learning_rate, beta1, get_batches, data_shape,
                                     data_image_mode, print_every=10, show_every=100):
    """A published style: losses kept every 10 batches and a grid every 100, by a step counter of its own; the
    losses plotted after training (their first kept value read: none in a run of 4 batches)."""
    _, width, height, channels = data_shape
    input_real, input_z, lr = model_inputs(width, height, channels, z_dim)  # noqa: F821 (bound by bind)
    d_loss, g_loss = model_loss(input_real, input_z, channels)  # noqa: F821
    d_opt, g_opt = model_opt(d_loss, g_loss, lr, beta1)  # noqa: F821
    steps, losses = 0, []
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        for _ in range(epoch_count):
            for batch in get_batches(batch_size):
                steps += 1
                z = np.random.uniform(-1, 1, (batch_size, z_dim))
                sess.run([d_opt, g_opt], {input_real: batch * 2, input_z: z, lr: learning_rate})
                if steps % print_every == 0:
                    losses.append(sess.run([d_loss, g_loss], {input_real: batch * 2, input_z: z}))
                if steps % show_every == 0:
                    show_generator_output(sess, 16, input_z, channels, data_image_mode)  # noqa: F821
    first = np.array(losses)[0]  # IndexError in a run shorter than print_every
    return first


def test_train_whose_own_bookkeeping_fails_after_training_passes_with_a_warning_naming_it(nb, capsys):
    with pytest.warns(checks.StyleWarning, match=r'train raised IndexError \("index 0 is out of bounds.*after it had '
                                                 r'trained every batch of this short run') as warned:
        checks.test_train(bind(train_of_a_learner_s_bookkeeping, nb), tf)
    assert capsys.readouterr().out.strip().endswith('Tests Passed')
    assert not [w for w in warned if 'grid' in str(w.message)], 'it draws a grid every 100 batches'


def test_train_that_shows_no_grid_in_a_short_run_passes_with_a_style_warning(nb):
    with pytest.warns(checks.StyleWarning, match=r'train shows no grid of generated images: the course asks'):
        checks.test_train(bind(broken_train(nb, 2), nb), tf)


def test_train_that_gives_model_opt_a_number_for_the_rate_passes_with_a_style_warning(nb):
    """A constant rate trains the same as the placeholder fed that number (9 of 35 published hand-ins did so)."""
    with pytest.warns(checks.StyleWarning, match=r"train gives model_opt the number 0.0002 as its learning rate: the "
                                                 r"course passes the learning-rate placeholder"):
        checks.test_train(bind(broken_train(nb, 2, rate_placeholder=False), nb), tf)


# ---------------------------------------------------------------------------------------------- errors explained

def discriminator_of_contrib(images, reuse=False):
    with tf.variable_scope('discriminator', reuse=reuse):
        x = tf.layers.conv2d(images, 16, 5, strides=2, padding='same',
                             kernel_initializer=tf.contrib.layers.xavier_initializer())
        logits = tf.layers.dense(tf.layers.flatten(x), 1)
        return tf.sigmoid(logits), logits


def train_that_resets_the_graph(nb):
    def train(epoch_count, batch_size, z_dim, learning_rate, beta1, get_batches, data_shape, data_image_mode):
        tf.reset_default_graph()
        return broken_train(nb, 2)(epoch_count, batch_size, z_dim, learning_rate, beta1, get_batches, data_shape,
                                   data_image_mode)
    return train


def train_with_a_parameter_of_its_own(epoch_count, batch_size, z_dim, learning_rate, beta1, get_batches, data_shape,
                                      data_image_mode, print_every):
    raise RuntimeError('not reached')


@pytest.mark.parametrize('check, function, message', [
    ('test_discriminator', lambda nb: discriminator_of_contrib,
     r'^tf.contrib, used by discriminator_of_contrib or a function it calls, is gone in TensorFlow 2 .*'
     r'tf.contrib.layers.xavier_initializer\(\) -> tf.glorot_uniform_initializer\(\)'),
    ('test_train', train_that_resets_the_graph, r'^train calls tf.reset_default_graph\(\), which TensorFlow does not '
                                               r'allow inside the graph the check'),
    ('test_train', lambda nb: train_with_a_parameter_of_its_own,
     r"^train is called as the course calls it, train\(epoch_count, .*data_image_mode\), and Python says: "
     r"train_with_a_parameter_of_its_own\(\) missing 1 required positional argument: 'print_every'"),
])
def test_what_tensorflow_2_or_the_checks_call_changed_is_said_in_the_learners_words(nb, check, function, message):
    """(model_opt with a parameter of its own: below)"""
    with pytest.raises(AssertionError, match=message):
        getattr(checks, check)(bind(function(nb), nb), tf)


def generator_with_dropout(batch_norm_training):
    """A generator whose dropout stays on when sampling (a real answer's way), its batch norm as given."""
    def generator(z, out_channel_dim, is_train=True):
        with tf.variable_scope('generator', reuse=not is_train):
            x = tf.reshape(tf.layers.dense(z, 7 * 7 * 32), (-1, 7, 7, 32))
            x = tf.nn.relu(tf.layers.batch_normalization(x, training=is_train if batch_norm_training is None
                                                         else batch_norm_training))
            x = tf.layers.dropout(x, rate=0.3, training=True)
            x = tf.layers.conv2d_transpose(x, 16, 5, strides=2, padding='same')
            return tf.tanh(tf.layers.conv2d_transpose(x, out_channel_dim, 5, strides=2, padding='same'))
    return generator


def test_a_generator_whose_dropout_stays_on_passes_with_a_warning_and_its_batch_norm_is_still_read():
    with pytest.warns(checks.StyleWarning, match='dropout or noise stays on') as warned:
        checks.test_generator(generator_with_dropout(None), tf)
    assert not [w for w in warned if 'batch at hand' in str(w.message)]
    with pytest.warns(checks.StyleWarning, match=r"The generator's samples \(is_train=False\) change with the rest "
                                                 r"of their batch.*Pass training=is_train"):
        checks.test_generator(generator_with_dropout(True), tf)


def loss_of_swapped_returns(input_real, input_z, out_channel_dim):
    """A model_loss written for a discriminator that returns (logits, output)."""
    fake = generator(input_z, out_channel_dim)  # noqa: F821
    real_logits, _ = discriminator(input_real)  # noqa: F821
    fake_logits, _ = discriminator(fake, reuse=True)  # noqa: F821
    return xent(real_logits, 1.0) + xent(fake_logits, 0.0), xent(fake_logits, 1.0)


def discriminator_of_a_fixed_batch(images, reuse=False):
    with tf.variable_scope('discriminator', reuse=reuse):
        x = tf.layers.conv2d(images, 8, 5, strides=2, padding='same')
        logits = tf.layers.dense(tf.reshape(x, (-1, 1000)), 1)  # 14 * 14 * 8 values an image: the batch mixed
        return tf.sigmoid(logits), logits


@pytest.mark.parametrize('check, function, message', [
    ('test_model_loss', loss_of_swapped_returns, r"^model_loss: the discriminator's returns: expected \(output, "
                                                 r"logits\), the probability first.*Unpack them in that order"),
    ('test_discriminator', discriminator_of_a_fixed_batch,
     r"^discriminator_of_a_fixed_batch's graph fails when the check runs it on a batch of images \(TensorFlow: "
     r'"Input to reshape is a tensor with 6272 values, but the requested shape requires a multiple of 1000 at '
     r"'discriminator/Reshape'\"\): a shape written for one batch size, or layers that do not connect"),
])
def test_a_real_mistake_is_named_as_the_learner_made_it(nb, check, function, message):
    with pytest.raises(AssertionError, match=message) as failure:
        getattr(checks, check)(*((bind(function, nb),) if check == 'test_model_loss' else (function, tf)))
    assert len(str(failure.value)) < 600, str(failure.value)


def opt_with_a_parameter_of_its_own(d_loss, g_loss, surrogate_loss, learning_rate, beta1):
    raise RuntimeError('not reached')


def loss_of_swapped_returns_smoothed(input_real, input_z, out_channel_dim):
    fake = generator(input_z, out_channel_dim)  # noqa: F821
    real_logits, _ = discriminator(input_real)  # noqa: F821
    fake_logits, _ = discriminator(fake, reuse=True)  # noqa: F821
    return xent(real_logits, 0.9) + xent(fake_logits, 0.0), xent(fake_logits, 0.9)


def test_a_function_of_another_signature_and_swapped_returns_with_smoothing_are_named(nb):
    with pytest.raises(AssertionError, match=r"^model_opt is called as the course calls it, model_opt\(d_loss, g_loss, "
                                             r"learning_rate, beta1\), and Python says: .*missing 1 required"):
        checks.test_model_opt(opt_with_a_parameter_of_its_own, tf)
    with pytest.raises(AssertionError, match=r"^model_loss: the discriminator's returns: expected \(output, logits\)"):
        checks.test_model_loss(bind(loss_of_swapped_returns_smoothed, nb))


def test_tensorflows_words_leave_out_the_stack_a_graph_run_again_appends():
    """The judge runs a hand-in's graph from its definition: TensorFlow then ends the error with the stack where the
    operation was made, whose heading must not pass for what went wrong."""
    error = tf.errors.InvalidArgumentError(None, None, (
        'Input to reshape is a tensor with 25088 values, but the requested shape requires a multiple of 4096\n'
        "\t [[node discriminator/Reshape (defined at <string>:17) ]]\n\n"
        "Original stack trace for 'discriminator/Reshape':\n  File \"<string>\", line 17, in discriminator\n"))
    assert checks._tensorflow_says(error) == ('Input to reshape is a tensor with 25088 values, but the requested shape '
                                              'requires a multiple of 4096')


def loss_of_the_pairs_not_unpacked(input_real, input_z, out_channel_dim):
    """The discriminator's (output, logits) kept whole and given as the logits (with tf.ones_like, as the course)."""
    d_real = discriminator(input_real)  # noqa: F821
    d_fake = discriminator(generator(input_z, out_channel_dim), reuse=True)  # noqa: F821
    d_loss = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(logits=d_real, labels=tf.ones_like(d_real))) + \
        tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(logits=d_fake, labels=tf.zeros_like(d_fake)))
    return d_loss, tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(logits=d_fake, labels=tf.ones_like(d_fake)))


def test_model_loss_that_does_not_unpack_the_discriminator_s_pair_is_told_so_not_to_use_ones_like(nb):
    with pytest.raises(AssertionError, match=r"model_loss: the discriminator's returns: expected the logits alone in "
                                             r"each loss, found the pair \(output, logits\) taken as one tensor.*"
                                             r"unpack them, d_model_real, d_logits_real = discriminator") as raised:
        checks.test_model_loss(bind(loss_of_the_pairs_not_unpacked, nb))
    assert 'ones_like' not in str(raised.value).split('. ', 1)[0]

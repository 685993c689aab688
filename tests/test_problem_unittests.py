"""Each check in problem_unittests passes the notebook's own functions and fails a broken implementation."""
import numpy as np
import pytest
import tensorflow.compat.v1 as tf

import problem_unittests as checks
from conftest import bind


@pytest.mark.parametrize('check, function', [
    ('test_model_inputs', 'model_inputs'), ('test_discriminator', 'discriminator'),
    ('test_generator', 'generator'), ('test_model_loss', 'model_loss'), ('test_model_opt', 'model_opt'),
    ('test_train', 'train'),
])
def test_notebook_functions_pass(nb, check, function, capsys):
    args = (nb[function],) if check in ('test_model_inputs', 'test_model_loss') else (nb[function], tf)
    getattr(checks, check)(*args)
    assert capsys.readouterr().out.strip().endswith('Tests Passed')


# ---------------------------------------------------------------------------------------------- model_inputs

def inputs_rank_3(image_width, image_height, image_channels, z_dim):
    return (tf.placeholder(tf.float32, (None, image_width, image_height)), tf.placeholder(tf.float32, (None, z_dim)),
            tf.placeholder(tf.float32, ()))


def inputs_learning_rate_float64(image_width, image_height, image_channels, z_dim):
    return (tf.placeholder(tf.float32, (None, image_width, image_height, image_channels)),
            tf.placeholder(tf.float32, (None, z_dim)), tf.placeholder(tf.float64, ()))


def inputs_z_constant(image_width, image_height, image_channels, z_dim):
    return (tf.placeholder(tf.float32, (None, image_width, image_height, image_channels)),
            tf.zeros((1, z_dim)), tf.placeholder(tf.float32, ()))


@pytest.mark.parametrize('broken, message', [
    (inputs_rank_3, 'Real Input rank: expected 4, found 3'),
    (inputs_learning_rate_float64, 'Learning Rate dtype: expected float32, found float64'),
    (inputs_z_constant, 'Z Input type: expected a tf.placeholder, found Const'),
])
def test_model_inputs_check_fails(broken, message):
    with pytest.raises(AssertionError, match=message):
        checks.test_model_inputs(broken)


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


@pytest.mark.parametrize('broken, message', [
    (discriminator_wrong_scope, r"tf.variable_scope arguments: expected \('discriminator', reuse=False\), "
                                r"found \('critic', reuse=False\)"),
    (discriminator_reuse_ignored, r"Discriminator\(reuse=False\): tf.variable_scope arguments: expected "
                                  r"\('discriminator', reuse=False\), found \('discriminator', reuse=None\)"),
    (discriminator_batch_norm_first, 'Discriminator first layer: expected no batch normalization'),
    (discriminator_returns_logits_twice, r'Discriminator output: expected sigmoid\(logits\)'),
    (discriminator_wrong_shape, r'output rank: expected 2, found 4'),
])
def test_discriminator_check_fails(broken, message):
    with pytest.raises(AssertionError, match=message):
        checks.test_discriminator(broken, tf)


# ---------------------------------------------------------------------------------------------- generator

def generator_layers(z, out_channel_dim, is_train, output_activation=tf.tanh, output_bn=False):
    x = tf.reshape(tf.layers.dense(z, 7 * 7 * 16), (-1, 7, 7, 16))
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


@pytest.mark.parametrize('broken, message', [
    (generator_wrong_scope, r"expected \('generator', reuse=False\), found \('gen', reuse=False\)"),
    (generator_reuse_is_train, r"expected \('generator', reuse=False\), found \('generator', reuse=<_ReuseMode"),
    (generator_sigmoid, r'Generator output range: expected values in \[-1, 1\] on both sides of 0'),
    (generator_batch_norm_output, 'Generator output layer: expected no batch normalization'),
    (generator_always_training, 'expected each image independent of the rest of the batch'),
    (generator_three_channels, r'output shape: expected \[None, 28, 28, 1\], found \[None, 28, 28, 3\]'),
])
def test_generator_check_fails(broken, message):
    with pytest.raises(AssertionError, match=message):
        checks.test_generator(broken, tf)


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


@pytest.mark.parametrize('broken, message', [
    (loss_swapped_labels, r'model_loss: d_loss: expected real images labelled 1 .* real label of -0.500'),
    (loss_generator_label_zero, r'model_loss: g_loss: expected cross-entropy of generated images against label 1'),
    (loss_not_scalar, r'Discriminator Loss rank: expected 0, found 2'),
])
def test_model_loss_check_fails(nb, broken, message):
    with pytest.raises(AssertionError, match=message):
        checks.test_model_loss(bind(broken, nb))


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


@pytest.mark.parametrize('broken, message', [
    (opt_one_optimizer_for_all, r'discriminator training operation: expected to update every discriminator '
                                r'weight and no other, found these wrong: \[.generator/'),
    (opt_without_update_ops, 'expected to update batch normalization moving averages'),
    (opt_global_variables, r'model_opt: expected a call to tf.trainable_variables\(\), found no call'),
])
def test_model_opt_check_fails(broken, message):
    with pytest.raises(AssertionError, match=message):
        checks.test_model_opt(broken, tf)


# ---------------------------------------------------------------------------------------------- train

def broken_train(nb, scale, epochs=None):
    """A train that feeds batches times `scale` and runs `epochs` epochs (None: as asked)."""
    def train(epoch_count, batch_size, z_dim, learning_rate, beta1, get_batches, data_shape, data_image_mode):
        _, width, height, channels = data_shape
        input_real, input_z, lr = nb['model_inputs'](width, height, channels, z_dim)
        d_loss, g_loss = nb['model_loss'](input_real, input_z, channels)
        d_opt, g_opt = nb['model_opt'](d_loss, g_loss, lr, beta1)
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            for _ in range(epochs or epoch_count):
                for batch in get_batches(batch_size):
                    z = np.random.uniform(-1, 1, (batch_size, z_dim))
                    sess.run([d_opt, g_opt], {input_real: batch * scale, input_z: z, lr: learning_rate})
    return train


@pytest.mark.parametrize('scale, epochs, message', [
    (1, None, r'train: real images fed: expected values in \[-1, 1\].*found \[-0.5, 0.5\]'),
    (2, 1, r'train: get_batches calls: expected one per epoch \(2\), found 1'),
    (2, None, r'train: show_generator_output: expected at least one grid of generated images, found no call'),
])
def test_train_check_fails(nb, scale, epochs, message):
    with pytest.raises(AssertionError, match=message):
        checks.test_train(bind(broken_train(nb, scale, epochs), nb), tf)

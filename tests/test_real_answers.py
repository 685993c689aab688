"""Answers written the ways published 2017 hand-ins wrote them (written here, in their styles, none copied): where
they train the same as the solution, the checks pass them in the learner's own process and the review passes them
with the same lines."""
import contextlib
import io
import warnings

import pytest

from conftest import solution_without_markers
from test_review_isolation import IN_2017_STYLE, LINE, verdicts, with_bodies, write
from facegen.course import review

# The learning-rate placeholder without a shape; networks with a keyword parameter of their own (alpha) that
# model_loss passes; a train that passes model_opt the float rate, counts its own steps and shows a grid every 100.
SIGNATURES = {'def discriminator(images, reuse=False):': 'def discriminator(images, reuse=False, alpha=0.2):',
              'def generator(z, out_channel_dim, is_train=True):':
              'def generator(z, out_channel_dim, is_train=True, alpha=0.2):'}
STYLE_OF_2017 = {**IN_2017_STYLE,  # its networks, leaky ReLU by tf.maximum
'model_inputs': '''
    inputs_real = tf.placeholder(tf.float32, (None, image_width, image_height, image_channels), name='input_real')
    inputs_z = tf.placeholder(tf.float32, (None, z_dim), name='input_z')
    learning_rate = tf.placeholder(tf.float32, name='learning_rate')
    return inputs_real, inputs_z, learning_rate
''',
'model_loss': '''
    alpha = 0.2
    g_model = generator(input_z, out_channel_dim, alpha=alpha)
    d_model_real, d_logits_real = discriminator(input_real, alpha=alpha)
    d_model_fake, d_logits_fake = discriminator(g_model, reuse=True, alpha=alpha)
    d_loss_real = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(
        logits=d_logits_real, labels=tf.ones_like(d_model_real) * 0.9))
    d_loss_fake = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(
        logits=d_logits_fake, labels=tf.zeros_like(d_model_fake)))
    g_loss = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(
        logits=d_logits_fake, labels=tf.ones_like(d_model_fake)))
    return d_loss_real + d_loss_fake, g_loss
''',
'train': '''
    input_real, input_z, lr = model_inputs(data_shape[1], data_shape[2], data_shape[3], z_dim)
    d_loss, g_loss = model_loss(input_real, input_z, data_shape[3])
    d_opt, g_opt = model_opt(d_loss, g_loss, learning_rate, beta1)
    steps = 0
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        for epoch_i in range(epoch_count):
            for batch_images in get_batches(batch_size):
                steps += 1
                batch_images = batch_images * 2
                batch_z = np.random.uniform(-1, 1, size=(batch_size, z_dim))
                sess.run(d_opt, feed_dict={input_real: batch_images, input_z: batch_z})
                sess.run(g_opt, feed_dict={input_real: batch_images, input_z: batch_z})
                if steps % 100 == 0:
                    show_generator_output(sess, 25, input_z, data_shape[3], data_image_mode)
''',
}


def in_2017_style():
    nb = with_bodies(solution_without_markers(), STYLE_OF_2017)
    for cell in nb.cells:
        for old, new in SIGNATURES.items():
            cell.source = cell.source.replace(old, new)
    return nb


def with_cells_of_its_own(nb):
    """nb with a cell of 2017 imports and constants and a cell of a helper function above the discriminator's, which
    uses it, and a train that shows its grids every `show_every` steps, a constant of that cell."""
    import nbformat
    at = next(i for i, c in enumerate(nb.cells) if 'def discriminator(' in c.source)
    nb.cells[at:at] = [nbformat.v4.new_code_cell('import tensorflow as tf  # TensorFlow 1 in 2017\n'
                                                 'from distutils.version import LooseVersion\n'
                                                 'alpha = 0.2\nshow_every = 100'),
                       nbformat.v4.new_code_cell('def leaky_relu(x, alpha=alpha):\n'
                                                 '    return tf.maximum(alpha * x, x)')]
    for cell in nb.cells:
        if 'def discriminator(' in cell.source:
            cell.source = cell.source.replace('tf.maximum(alpha * x1, x1)', 'leaky_relu(x1, alpha)')
        if 'def train(' in cell.source:
            cell.source = cell.source.replace('steps % 100 == 0', 'steps % show_every == 0')
    return nb


@pytest.mark.parametrize('cells_of_its_own', [False, True])
def test_an_answer_in_the_2017_style_passes_in_the_learners_process_and_in_the_review_with_the_same_lines(
        tmp_path, cells_of_its_own):
    import problem_unittests
    import tensorflow.compat.v1 as tf
    from facegen.course import recorder
    nb = with_cells_of_its_own(in_2017_style()) if cells_of_its_own else in_2017_style()
    path = write(tmp_path, nb)
    functions, problems, broken = recorder.load(nb)  # the namespace Jupyter has when the training cell runs
    assert not broken and all(name not in problems for name in LINE)
    warned = {}
    for name, check in review.MODEL_CHECKS:
        args = (functions[name],) if check in ('test_model_inputs', 'test_model_loss') else (functions[name], tf)
        with contextlib.redirect_stdout(io.StringIO()) as printed, warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter('always', problem_unittests.StyleWarning)
            getattr(problem_unittests, check)(*args)
        assert 'Tests Passed' in printed.getvalue(), name
        warned[name] = {str(w.message) for w in caught if issubclass(w.category, problem_unittests.StyleWarning)}
    assert any('the number 0.0002' in text for text in warned['train']), warned['train']
    lines = review.review(path)
    assert all(verdicts(lines)[LINE[name]] == ('PASS', '') for name in LINE), review.format_lines(lines)
    for name in LINE:
        in_review = {line.message for line in lines if line.rubric == f'{name}: a choice to look at'}
        assert in_review == warned[name], name


@pytest.mark.parametrize('function, old, new, message', [
    ('model_inputs', "learning_rate = tf.placeholder(tf.float32, name='learning_rate')",
     "learning_rate = tf.placeholder(tf.int32, name='learning_rate')", 'Learning Rate dtype: expected a float'),
    ('train', 'batch_images = batch_images * 2', 'batch_images = batch_images',
     r'train: real images fed: expected the range of the generated images, \[-1, 1\].*found the discriminator takes '
     r'real images in \[-0.5, 0.5\].*feed batch_images \* 2'),
    ('model_loss', 'labels=tf.ones_like(d_model_real) * 0.9', 'labels=tf.zeros_like(d_model_real)',
     r'model_loss: d_loss: .*which scores the real images against label 0.00 and the generated ones against label '
     r'0.00 \(inputs: '),
])
def test_its_real_mistakes_still_fail_with_their_cause(tmp_path, function, old, new, message):
    import re
    nb = in_2017_style()
    cell = next(c for c in nb.cells if f'def {function}(' in c.source)
    assert old in cell.source
    cell.source = cell.source.replace(old, new)
    found = verdicts(review.review(write(tmp_path, nb)))
    assert found[LINE[function]][0] == 'FAIL' and re.search(message, found[LINE[function]][1]), found[LINE[function]]


# One function each, written as real answers write it (batch normalization on the discriminator's first layer,
# always-on dropout, smoothing on both losses): the review says what the checks say in the learner's process.
ONE_FUNCTION = [
    ('generator', '''
    with tf.variable_scope('generator', reuse=not is_train):
        x = tf.reshape(tf.layers.dense(z, 7 * 7 * 32), (-1, 7, 7, 32))
        x = tf.nn.relu(tf.layers.batch_normalization(x, training=is_train))
        x = tf.layers.dropout(x, rate=0.3, training=True)
        x = tf.layers.conv2d_transpose(x, 16, 5, strides=2, padding='same')
        return tf.tanh(tf.layers.conv2d_transpose(x, out_channel_dim, 5, strides=2, padding='same'))
'''),
    ('discriminator', '''
    alpha = 0.2
    with tf.variable_scope('discriminator', reuse=reuse):
        x1 = tf.layers.conv2d(images, 64, 5, strides=2, padding='same')
        bn1 = tf.layers.batch_normalization(x1, training=True)
        relu1 = tf.maximum(alpha * bn1, bn1)
        x2 = tf.layers.conv2d(relu1, 128, 5, strides=2, padding='same')
        bn2 = tf.layers.batch_normalization(x2, training=True)
        relu2 = tf.maximum(alpha * bn2, bn2)
        logits = tf.layers.dense(tf.reshape(relu2, (-1, 7 * 7 * 128)), 1)
        return tf.sigmoid(logits), logits
'''),
    ('model_loss', '''
    fake = generator(input_z, out_channel_dim)
    real_logits, _ = discriminator(input_real)
    fake_logits, _ = discriminator(fake, reuse=True)
    def xent(logits, label):
        return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(logits=logits,
                                                                      labels=tf.ones_like(logits) * label))
    return xent(real_logits, 0.9) + xent(fake_logits, 0.0), xent(fake_logits, 0.9)
'''),
]


@pytest.mark.parametrize('function, body', ONE_FUNCTION)
def test_the_review_says_what_the_check_says_in_the_learners_process(tmp_path, function, body):
    import problem_unittests
    import tensorflow.compat.v1 as tf
    from facegen.course import recorder
    nb = with_bodies(solution_without_markers(), {function: body})
    namespace, _, _ = recorder.load(nb)
    check = f'test_{function}'
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always', problem_unittests.StyleWarning)
        try:
            getattr(problem_unittests, check)(*((namespace[function],) if function == 'model_loss' else
                                                (namespace[function], tf)))
            expected = ('PASS', '')
        except AssertionError as error:
            expected = ('FAIL', str(error))
    lines = review.review(write(tmp_path, nb))
    assert verdicts(lines)[LINE[function]] == expected
    assert {line.message for line in lines if line.rubric == f'{function}: a choice to look at'} == \
        {str(w.message) for w in caught if issubclass(w.category, problem_unittests.StyleWarning)}


def test_a_2017_answer_of_tf_contrib_is_reviewed_as_tensorflow_1_ran_it_with_a_warning(tmp_path):
    """4 of 6 published hand-ins tried here use tf.contrib.layers.xavier_initializer: TensorFlow 2 removed it, the
    learner's own notebook gets the check's message naming tf.glorot_uniform_initializer, and the review runs the
    2017 answer as it ran then, saying so."""
    body = """
    with tf.variable_scope('discriminator', reuse=reuse):
        x = tf.layers.conv2d(images, 16, 5, strides=2, padding='same',
                             kernel_initializer=tf.contrib.layers.xavier_initializer(uniform=False))
        x = tf.layers.batch_normalization(tf.layers.conv2d(tf.nn.leaky_relu(x), 32, 5, strides=2, padding='same',
                                          kernel_initializer=tf.contrib.layers.xavier_initializer_conv2d()),
                                          training=True)
        x = tf.contrib.keras.layers.LeakyReLU(0.2)(x)
        logits = tf.layers.dense(tf.contrib.layers.flatten(x), 1)
        return tf.sigmoid(logits), logits
"""
    lines = review.review(write(tmp_path, with_bodies(solution_without_markers(), {'discriminator': body})))
    assert verdicts(lines)[LINE['discriminator']] == ('PASS', '') and review.passed(lines)
    [warned] = [line.message for line in lines if line.rubric == 'TensorFlow 1 names']
    assert warned.startswith('the cell of discriminator uses tf.contrib.keras.layers.LeakyReLU, '
                             'tf.contrib.layers.flatten, tf.contrib.layers.xavier_initializer, '
                             'tf.contrib.layers.xavier_initializer_conv2d: TensorFlow 2 has no tf.contrib'), warned
    # a name the review does not run as TensorFlow 1 did: the check's message with the replacements, in the review too
    nb = with_bodies(solution_without_markers(), {'discriminator': body.replace(
        'tf.contrib.layers.flatten', 'tf.contrib.layers.layer_norm')})
    found = verdicts(review.review(write(tmp_path, nb)))
    assert found[LINE['discriminator']][1].startswith('tf.contrib, used by discriminator or a function it calls, is '
                                                      'gone in TensorFlow 2'), found[LINE['discriminator']]

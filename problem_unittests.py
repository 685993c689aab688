"""Checks for the notebook's functions: shapes, dtypes, names, scopes, labels and training behaviour.

Each check builds in a fresh graph, raises AssertionError with what was expected, what was found and with
which inputs, and prints 'Tests Passed' when everything holds. A function still as the exercise hands it out
(returning None) is told so first, with NotImplementedYet. What a check can only guess (a style) is a
StyleWarning, not a failure. Pass the checks the same `tf` module the notebook uses (`tensorflow.compat.v1`): its
`variable_scope`, `trainable_variables` and `Session` are observed.
"""
import facegen  # noqa: F401 (TensorFlow's start-up settings, before TensorFlow is imported)

import contextlib
import dis
import functools
import inspect
import numbers
import re
import shutil
import tempfile
import types
import warnings
from unittest import mock

import numpy as np
import tensorflow.compat.v1 as tf

from facegen.runs.training import TrainingRun


tf.logging.set_verbosity(tf.logging.ERROR)  # TF1 compatibility mode warns about itself at length
tf.disable_v2_behavior()

_VARIABLE_SCOPE = tf.variable_scope  # the real class, kept for reading call arguments while it is mocked

WEIGHTED_OPS = {'Conv2D', 'Conv2DBackpropInput', 'MatMul', 'BatchMatMulV2', 'DepthwiseConv2dNative'}
BATCH_NORM = re.compile(r'FusedBatchNorm|batch_?norm|moments', re.IGNORECASE)
CHANNELS = (1, 3, 5)
# What each function is for, said when it is not written yet
TO_WRITE = {
    'model_inputs': 'three tf.placeholder of tf.float32: the real images [None, image_width, image_height, '
                    'image_channels], z [None, z_dim] and the learning rate (rank 0)',
    'discriminator': "a CNN classifier inside tf.variable_scope('discriminator', reuse=reuse), returning "
                     "(tf.sigmoid(logits), logits)",
    'generator': "a CNN run backwards inside tf.variable_scope('generator', reuse=not is_train), ending in tf.tanh "
                 "for 28x28xout_channel_dim images",
    'model_loss': 'the generated images, the discriminator on the real and the generated images (reuse=True the '
                  'second time), and the two losses from sigmoid cross-entropy',
    'model_opt': 'the variables of tf.trainable_variables() split by scope name, and one tf.train.AdamOptimizer '
                 'for each network',
}
RETURNS = {'model_inputs': '(input_real, input_z, learning_rate)', 'discriminator': '(output, logits)',
           'model_loss': '(d_loss, g_loss)', 'model_opt': '(d_train_opt, g_train_opt)'}


# tf.contrib is gone in TensorFlow 2: the names of it that real 2017 answers use, and what does the same
CONTRIB_REPLACEMENTS = {
    'tf.contrib.layers.xavier_initializer()': 'tf.glorot_uniform_initializer()',
    'tf.contrib.layers.xavier_initializer_conv2d()': 'tf.glorot_uniform_initializer()',
    'tf.contrib.layers.batch_norm(x, is_training=...)': 'tf.layers.batch_normalization(x, training=...)',
    'tf.contrib.layers.flatten(x)': 'tf.layers.flatten(x)',
    'tf.contrib.layers.fully_connected(x, n)': 'tf.layers.dense(x, n)',
    'tf.contrib.layers.l2_regularizer(scale)': 'tf.keras.regularizers.l2(scale / 2)',
}
# How the checks and the training cells call each function: a learner's function must take these
SIGNATURES = {'model_inputs': 'image_width, image_height, image_channels, z_dim',
              'discriminator': 'images, reuse=False', 'generator': 'z, out_channel_dim, is_train=True',
              'model_loss': 'input_real, input_z, out_channel_dim', 'model_opt': 'd_loss, g_loss, learning_rate, beta1',
              'train': 'epoch_count, batch_size, z_dim, learning_rate, beta1, get_batches, data_shape, '
                       'data_image_mode'}


class NotImplementedYet(AssertionError, NotImplementedError):
    """A notebook function is still the exercise's stub: its body is the TODO and a return of None."""


class StyleWarning(UserWarning):
    """What a check can only guess at: a choice the course advises against, which may still train."""


def _returned(result, function):
    """result, after checking that the function is written and returns what its docstring says."""
    if result is None or (isinstance(result, tuple) and result and all(value is None for value in result)):
        raise NotImplementedYet(f'{function} is not implemented yet: it returns {result!r}. Write its body in place '
                                f'of `# TODO: Implement Function`: {TO_WRITE[function]}.')
    if function in RETURNS:
        count = RETURNS[function].count(',') + 1
        _check(isinstance(result, tuple) and len(result) == count, f'{function} return',
               f'a tuple of {count}, {RETURNS[function]}', repr(result) if not isinstance(result, tuple)
               else f'a tuple of {len(result)}')
    return result


@contextlib.contextmanager
def _reuse_explained(call, scope, fix):
    """Turn TensorFlow's ValueError about existing or missing variables into what to pass to tf.variable_scope."""
    try:
        yield
    except ValueError as error:
        text = str(error).split('\n')[0].split('. ')[0]  # its first sentence: the rest suggests AUTO_REUSE
        if 'already exists' in text:
            raise AssertionError(f"{call} created the '{scope}' variables again instead of reusing them "
                                 f'(TensorFlow: "{text}"). {fix}') from None
        if 'does not exist' in text:
            raise AssertionError(f"{call} looked for '{scope}' variables to reuse before any were made "
                                 f'(TensorFlow: "{text}"). {fix}') from None
        raise


def _errors_explained(test):
    """A check as a learner meets it: what TensorFlow 2 or the check's own call explains better said so (the
    learner's error chained to it), the check's own verdict without this file's frames, the learner's own error as
    it is."""
    @functools.wraps(test)
    def run(function, *args, **kwargs):
        __tracebackhide__ = True  # noqa: F841 (IPython leaves this frame out of the traceback where it can)
        try:
            return test(function, *args, **kwargs)
        except (AssertionError, AttributeError, TypeError, tf.errors.InvalidArgumentError) as error:
            shown = _explained(error, getattr(function, '__name__', 'the function'), test.__name__)
            if shown is None:
                raise  # the learner's own error: its line is the news
        raise shown.with_traceback(None)  # the message is the news, not this file's frames
    return run


def _explained(error, name, check):
    """The AssertionError a learner reads for an error a check met, or None where the error is the learner's own."""
    if isinstance(error, AttributeError) and "attribute 'contrib'" in str(error):
        replacements = '; '.join(f'{old} -> {new}' for old, new in CONTRIB_REPLACEMENTS.items())
        explained = AssertionError(f'tf.contrib, used by {name} or a function it calls, is gone in TensorFlow 2 (this '
                                   f'project runs the 1.x code on TensorFlow 2\'s tf.compat.v1). The same from tf '
                                   f'itself: {replacements}')
    elif isinstance(error, AssertionError) and 'tf.reset_default_graph()' in str(error):
        explained = AssertionError(f'{name} calls tf.reset_default_graph(), which TensorFlow does not allow inside the '
                                   'graph the check (and each training cell) opens around train. Remove it: each '
                                   'training cell builds in a fresh graph already')
    elif isinstance(error, tf.errors.InvalidArgumentError):
        explained = AssertionError(f'{name}\'s graph fails when the check runs it on a batch of images (TensorFlow: '
                                   f'"{_tensorflow_says(error)}"): a shape written for one batch size, or layers that '
                                   'do not connect as their sizes say? Use -1 for the batch, as in tf.reshape(x, (-1, '
                                   '7 * 7 * 256)), with the size the layer before gives')
    elif isinstance(error, TypeError) and 'argument' in str(error) and f'{name}()' in str(error):
        function = check[len('test_'):]
        explained = AssertionError(f'{function} is called as the course calls it, {function}({SIGNATURES[function]}), '
                                   f'and Python says: {error}. Keep that signature, or give the parameters you added '
                                   'a default')
    elif isinstance(error, AssertionError) and _raised_by_the_checks(error):
        return error
    else:
        return None
    explained.__cause__ = error
    return explained


def _tensorflow_says(error):
    """What went wrong, from a TensorFlow error raised while running a graph, and at which operation: TensorFlow 2
    heads it with "Graph execution error" and the Python stack where the operation was made; a graph run again from
    its definition (the review's judge) ends it with "Original stack trace for" and that stack."""
    lines = [line for line in error.message.split('Original stack trace for')[0].splitlines() if line.strip()]
    said = [line for line in lines if not line.startswith((' ', '\t', 'Graph execution error', 'Detected at node',
                                                           'Node:'))]
    node = next((line.split(':', 1)[1].strip() for line in lines if line.startswith('Node:')), None)
    return (said[-1] if said else lines[0] if lines else type(error).__name__)[:200] + (f' at {node}' if node else '')


def _raised_by_the_checks(error):
    """Whether an exception was raised in this file (a check's verdict) rather than in the learner's code."""
    frame = error.__traceback__
    while frame is not None and frame.tb_next is not None:
        frame = frame.tb_next
    return frame is not None and frame.tb_frame.f_code.co_filename == __file__


def _named(op_names):
    """Operations as a learner recognises them: the layers (name scopes) they are in, not each op's name."""
    layers = list(dict.fromkeys('/'.join(name.split('/')[:2]) for name in op_names))
    return ', '.join(layers[:3]) + (f' and {len(layers) - 3} more' if len(layers) > 3 else '')


def _print_success_message():
    print('Tests Passed')


def _check(condition, check, expected, found, inputs=None, fix=None):
    """Raise an AssertionError that says which check failed, what was expected and found, the inputs and the fix."""
    if not condition:
        message = f'{check}: expected {expected}, found {found}'
        if inputs:
            message += f' (inputs: {inputs})'
        if fix:
            message += f'. {fix}'
        raise AssertionError(message)


def _in_fresh_graph(test):
    """test in a graph of its own, NumPy's and TensorFlow's seeds fixed: labels a learner draws with np.random while
    building, and initial weights, are the same each time a check runs (a verdict never rests on a draw)."""
    @functools.wraps(test)
    def run(*args, **kwargs):
        __tracebackhide__ = True  # noqa: F841
        np.random.seed(0)
        with tf.Graph().as_default():
            tf.set_random_seed(0)
            return test(*args, **kwargs)
    return run


def _shape(tensor):
    return tensor.get_shape().as_list() if tensor.get_shape().dims is not None else None


def _check_tensor(tensor, shape, name, inputs=None, dtype=tf.float32, fix=None):
    _check(isinstance(tensor, tf.Tensor), f'{name} type', 'a tf.Tensor', type(tensor).__name__, inputs, fix)
    _check(_shape(tensor) is not None and len(_shape(tensor)) == len(shape), f'{name} rank',
           len(shape), 'an unknown shape (none was given)' if _shape(tensor) is None else len(_shape(tensor)),
           inputs, fix)
    _check(_shape(tensor) == shape, f'{name} shape', shape, _shape(tensor), inputs, fix)
    _check(tensor.dtype == dtype, f'{name} dtype', dtype.name, tensor.dtype.name, inputs, fix)


def _check_placeholder(tensor, shape, name, inputs, fix, unknown_shape_ok=False, any_float=False):
    """A placeholder of that shape and float32 (any float where any_float); with unknown_shape_ok, one without a
    shape too (it takes the value fed, as the 2017 check accepted for the learning rate)."""
    _check(isinstance(tensor, tf.Tensor) and tensor.op.type == 'Placeholder', f'{name} type',
           'a tf.placeholder', getattr(getattr(tensor, 'op', None), 'type', type(tensor).__name__), inputs, fix)
    if any_float:
        _check(tensor.dtype.is_floating, f'{name} dtype', 'a float (tf.float32)', tensor.dtype.name, inputs, fix)
    if unknown_shape_ok and _shape(tensor) is None:
        _check(any_float or tensor.dtype == tf.float32, f'{name} dtype', 'float32', tensor.dtype.name, inputs,
               fix)  # any float was checked above
        return
    _check_tensor(tensor, shape, name, inputs, dtype=tensor.dtype if any_float else tf.float32, fix=fix)


def _scope_call(scope_mock):
    """(name, reuse) of the last tf.variable_scope call, however its arguments were passed."""
    call = scope_mock.call_args
    bound = inspect.signature(_VARIABLE_SCOPE.__init__).bind(None, *call.args, **call.kwargs)
    return bound.arguments.get('name_or_scope'), bound.arguments.get('reuse')


def _check_scope(scope_mock, name, reuse, check, fix):
    _check(scope_mock.called, f'{check}: tf.variable_scope', f"a call with '{name}'", 'no call', fix=fix)
    _check(_scope_call(scope_mock) == (name, reuse), f'{check}: tf.variable_scope arguments',
           f"('{name}', reuse={reuse})", '({!r}, reuse={!r})'.format(*_scope_call(scope_mock)), fix=fix)


def _ops_near(start_ops, direction, cross_weighted):
    """Ops reachable from start_ops (forwards or backwards) passing at most `cross_weighted` weighted layers."""
    seen, frontier = set(), [(op, 0) for op in start_ops]
    while frontier:
        op, crossed = frontier.pop()
        crossed += op.type in WEIGHTED_OPS
        if op in seen or crossed > cross_weighted:
            continue
        seen.add(op)
        if direction == 'forward':
            neighbours = [consumer for out in op.outputs for consumer in out.consumers()]
        else:
            neighbours = [tensor.op for tensor in op.inputs]
        frontier.extend((n, crossed) for n in neighbours)
    return seen


def _batch_norm_ops(ops):
    return sorted(op.name for op in ops if BATCH_NORM.search(op.type) or BATCH_NORM.search(op.name))


def _run(fetches, feed_dict=None):
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        return sess.run(fetches, feed_dict)


@_errors_explained
@_in_fresh_graph
def test_model_inputs(model_inputs):
    inputs = 'image_width=28, image_height=28, image_channels=3, z_dim=100'
    input_img, input_z, learn_rate = _returned(model_inputs(28, 28, 3, 100), 'model_inputs')

    _check_placeholder(input_img, [None, 28, 28, 3], 'Real Input', inputs,
                       'Make it tf.placeholder(tf.float32, (None, image_width, image_height, image_channels)): rank '
                       '4, a batch of any size first')
    _check_placeholder(input_z, [None, 100], 'Z Input', inputs,
                       'Make it tf.placeholder(tf.float32, (None, z_dim)): rank 2, a batch of any size first')
    rate_fix = 'Make it tf.placeholder(tf.float32, ()): rank 0, and a float, so that the rate fed reaches the optimizer'
    _check_placeholder(learn_rate, [], 'Learning Rate', inputs, rate_fix, unknown_shape_ok=True, any_float=True)
    _check_rate_reaches_an_optimizer(learn_rate, inputs, rate_fix)

    _print_success_message()


def _check_rate_reaches_an_optimizer(learn_rate, inputs, fix):
    """The rate fed moves weights as much as an optimizer of that rate does (one Adam step of 0.1 moves a weight by
    0.1): a float64 rate does (Adam casts it), an integer one truncates what it is fed."""
    weight = tf.Variable(1.0, name='rate_check_weight')
    step = tf.train.AdamOptimizer(learn_rate).minimize(tf.square(weight), var_list=[weight])
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        sess.run(step, {learn_rate: 0.1})
        moved = 1.0 - float(sess.run(weight))
    _check(np.isclose(moved, 0.1, rtol=0.05), 'Learning Rate', 'a rate that reaches an optimizer as fed (0.1: a '
           'first Adam step of 0.1)', f'a step of {moved:g} ({learn_rate.dtype.name})', inputs, fix)


DISCRIMINATOR_SCOPE = "Open the scope with tf.variable_scope('discriminator', reuse=reuse): the first call makes " \
                      "the variables, the second (reuse=True, on the generated images) shares them"
GENERATOR_SCOPE = "Open the scope with tf.variable_scope('generator', reuse=not is_train): the training generator " \
                  "makes the variables, the sampling one (is_train=False) shares them"


def _ops_in_scope(scope):
    return [op for op in tf.get_default_graph().get_operations() if op.name.startswith(scope + '/')]


def _warn_without(ops, op_types, network, advice):
    if not any(op.type in op_types for op in ops):
        warnings.warn(f'The {network} has no {advice}', StyleWarning)


@_in_fresh_graph
def _test_discriminator_channels(discriminator, tf_module, channels):
    inputs = f'images of shape [None, 28, 28, {channels}]'
    image = tf.placeholder(tf.float32, [None, 28, 28, channels])
    with mock.patch.object(tf_module, 'variable_scope', wraps=tf_module.variable_scope) as scope:
        with _reuse_explained('Discriminator(reuse=False)', 'discriminator', DISCRIMINATOR_SCOPE):
            output, logits = _returned(discriminator(image), 'discriminator')
        _check_scope(scope, 'discriminator', False, 'Discriminator(reuse=False)', DISCRIMINATOR_SCOPE)
        _check_tensor(output, [None, 1], 'Discriminator(reuse=False) output', inputs)
        _check_tensor(logits, [None, 1], 'Discriminator(reuse=False) logits', inputs)

        variables = tf.global_variables()
        _check(bool(variables) and all(v.name.startswith('discriminator/') for v in variables),
               'Discriminator variables', "all under the 'discriminator/' scope", [v.name for v in variables])
        scope.reset_mock()
        with _reuse_explained('Discriminator(reuse=True)', 'discriminator', DISCRIMINATOR_SCOPE):
            output_reuse, logits_reuse = _returned(discriminator(image, True), 'discriminator')
        _check_scope(scope, 'discriminator', True, 'Discriminator(reuse=True)', DISCRIMINATOR_SCOPE)
        _check_tensor(output_reuse, [None, 1], 'Discriminator(reuse=True) output', inputs)
        _check_tensor(logits_reuse, [None, 1], 'Discriminator(reuse=True) logits', inputs)
        new_variables = sorted(set(v.name for v in tf.global_variables()) - set(v.name for v in variables))
        _check(not new_variables, 'Discriminator(reuse=True)', 'no new variables', new_variables, inputs,
               DISCRIMINATOR_SCOPE)

    first_layer_bn = _batch_norm_ops(_ops_near([image.op], 'forward', cross_weighted=1))
    if first_layer_bn:  # measured: it trains as well (docs/exercise.md), so the course's advice, not a failure
        warnings.warn(f'The discriminator normalizes its first layer ({_named(first_layer_bn)}): the course advises '
                      'batch normalization from the second layer on, so that the first layer sees the data\'s true '
                      "statistics (Goodfellow's GAN tutorial, p. 27). It trains as well, so it is yours to choose",
                      StyleWarning)
    relus = [op.name for op in _ops_in_scope('discriminator') if op.type in ('Relu', 'Relu6')]
    if relus:  # an activation with a gradient below 0 (leaky ReLU, ELU, tanh...) is what training needs
        warnings.warn(f'The discriminator has plain ReLUs ({_named(relus)}): they give the generator no gradient '
                      'where they are off; the course uses leaky ReLU (tf.nn.leaky_relu)', StyleWarning)

    images = np.random.default_rng(0).uniform(-1, 1, (4, 28, 28, channels))
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        (out, lgt), (again, lgt_again) = (sess.run((output, logits), {image: images}) for _ in range(2))
    if not np.allclose(out, again) and np.allclose(lgt, lgt_again):  # the losses take the logits: it trains
        warnings.warn('The discriminator\'s output changes from run to run though its logits do not: dropout or '
                      'noise applied after the logits. The losses take the logits, so it trains; the course returns '
                      'the probability itself, tf.sigmoid(logits)', StyleWarning)
        return
    swapped = np.allclose(lgt, 1 / (1 + np.exp(-out)), atol=1e-5)
    _check(np.allclose(out, 1 / (1 + np.exp(-lgt)), atol=1e-5), 'Discriminator output',
           'sigmoid(logits)', f'output {out.ravel()[:3]} for logits {lgt.ravel()[:3]}', inputs,
           'The output and the logits are swapped: return (tf.sigmoid(logits), logits), the probability first'
           if swapped else 'Return (tf.sigmoid(logits), logits): the output is the probability the logits give')


@_errors_explained
def test_discriminator(discriminator, tf_module):
    for channels in CHANNELS:
        _test_discriminator_channels(discriminator, tf_module, channels)
    _print_success_message()


@_in_fresh_graph
def _test_generator_channels(generator, tf_module, channels):
    inputs = f'z of shape [None, 100], out_channel_dim={channels}'
    z = tf.placeholder(tf.float32, [None, 100])
    with mock.patch.object(tf_module, 'variable_scope', wraps=tf_module.variable_scope) as scope:
        with _reuse_explained('Generator(is_train=True)', 'generator', GENERATOR_SCOPE):
            output = _returned(generator(z, channels), 'generator')
        _check_scope(scope, 'generator', False, 'Generator(is_train=True)', GENERATOR_SCOPE)
        _check_generated_images(output, channels, 'Generator(is_train=True) output', inputs)

        variables = tf.global_variables()
        _check(bool(variables) and all(v.name.startswith('generator/') for v in variables),
               'Generator variables', "all under the 'generator/' scope", [v.name for v in variables])
        scope.reset_mock()
        with _reuse_explained('Generator(is_train=False)', 'generator', GENERATOR_SCOPE):
            sample = _returned(generator(z, channels, False), 'generator')
        _check_scope(scope, 'generator', True, 'Generator(is_train=False)', GENERATOR_SCOPE)
        _check_generated_images(sample, channels, 'Generator(is_train=False) output', inputs)
        new_variables = sorted(set(v.name for v in tf.global_variables()) - set(v.name for v in variables))
        _check(not new_variables, 'Generator(is_train=False)', 'no new variables', new_variables, inputs,
               GENERATOR_SCOPE)

    output_bn = _batch_norm_ops(_ops_near([output.op], 'backward', cross_weighted=0))
    _check(not output_bn, 'Generator output layer', 'no batch normalization', _named(output_bn),
           fix='Normalize every layer but the last: the output must be free to take the values of real images')
    _warn_without(_ops_in_scope('generator'), {'FusedBatchNormV3', 'FusedBatchNorm', 'Rsqrt'}, 'generator',
                  'batch normalization (tf.layers.batch_normalization(x, training=is_train)): it keeps a deep '
                  'generator training')

    batch_z = np.random.default_rng(0).uniform(-1, 1, (16, 100))
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        train_out, whole = sess.run((output, sample), {z: batch_z})
        single = sess.run(sample, {z: batch_z[:1]})  # inference mode: one z gives one image, whatever the batch
        again = sess.run(sample, {z: batch_z})
    low, high = train_out.min(), train_out.max()
    _check(np.abs(train_out).max() <= 1 and low < 0 < high, 'Generator output range',
           'values in [-1, 1] on both sides of 0 (tanh)', f'[{low:.3f}, {high:.3f}]', inputs,
           'A sigmoid at the output? End in tf.tanh: train feeds the real images in [-1, 1]' if low >= 0 else
           'End in tf.tanh: train feeds the real images in [-1, 1]')
    batch_norm_fix = 'Pass training=is_train to tf.layers.batch_normalization: drawing samples (is_train=False) ' \
                     'normalizes with the moving averages learnt in training, not with the batch at hand'
    if not np.allclose(whole, again, atol=1e-4):  # dropout or noise left on: the same z gives other images
        warnings.warn('The generator draws other images from the same z each time it samples (is_train=False): '
                      'dropout or noise stays on. The course samples without it: pass training=is_train to '
                      'tf.layers.dropout (with tf.nn.dropout, a rate of 0 where is_train is False)', StyleWarning)
        scope = sample.op.name.split('/')[0] + '/'  # the sampling call's operations: their batch norm, by its mode
        batch_statistics = any(op.name.startswith(scope) and op.type.startswith('FusedBatchNorm') and
                               op.get_attr('is_training') for op in tf.get_default_graph().get_operations())
    else:
        batch_statistics = not np.allclose(whole[:1], single, atol=1e-4)
    if batch_statistics:  # sampling alone: training is the same either way
        warnings.warn('The generator\'s samples (is_train=False) change with the rest of their batch: its batch '
                      'normalization normalizes with the batch at hand when it samples. Training is the same, and '
                      f'grids of a few dozen samples look alike; the course samples in inference mode. '
                      f'{batch_norm_fix}', StyleWarning)


def _check_generated_images(images, channels, name, inputs):
    """The generator's images are 28x28, the size of the real ones."""
    shape = _shape(images) if isinstance(images, tf.Tensor) else None
    _check(shape is None or len(shape) != 4 or shape[1:3] == [28, 28], f'{name} shape', [None, 28, 28, channels],
           shape, inputs, "The real images are 28x28, 7x7 doubled twice: reshape a dense layer's output to 7x7xN, "
           "then double it with two tf.layers.conv2d_transpose(..., strides=2, padding='same')")
    _check_tensor(images, [None, 28, 28, channels], name, inputs)


@_errors_explained
def test_generator(generator, tf_module):
    for channels in CHANNELS:
        _test_generator_channels(generator, tf_module, channels)
    _print_success_message()


def _softplus(x):
    return float(np.log1p(np.exp(x)))


@contextlib.contextmanager
def _labels_explained():
    """Turn TensorFlow's complaint about labels that do not fit the logits into what to write instead."""
    fix = 'Make each loss\'s labels with tf.ones_like(logits) or tf.zeros_like(logits): the same shape as the ' \
          'logits, whatever the batch size'
    try:
        yield
    except ValueError as error:
        if 'must have the same shape' not in str(error):
            raise
        raise AssertionError(f'model_loss: labels of another shape than the logits (TensorFlow: "{error}"). '
                             f'{fix}') from None
    except tf.errors.InvalidArgumentError as error:
        raise AssertionError(f'model_loss: labels of a fixed size, run on a batch of another size (TensorFlow: '
                             f'"{error.message.splitlines()[0][:160]}"). {fix}') from None


REAL_LABELS, FAKE_LABELS = (0.7, 1.2), (0.0, 0.3)  # smoothed labels that train (ganhacks' soft labels)
LABEL_DRAWS = 4  # builds of model_loss the labels are read from: a learner may draw them with np.random


def _within(value, band):
    return band[0] - 1e-4 <= value <= band[1] + 1e-4


@_in_fresh_graph
def _test_model_loss_labels(model_loss, draw=0):
    """Swap in stand-in networks with known logits and work out the labels the losses use (NumPy's seed: draw)."""
    np.random.seed(draw)
    real_logit, fake_logit = 2.0, -1.0
    calls = {'discriminator': [], 'generator': []}
    input_real = tf.placeholder(tf.float32, [None, 28, 28, 3])
    input_z = tf.placeholder(tf.float32, [None, 100])
    fake_images = tf.zeros([2, 28, 28, 3]) + tf.reduce_sum(input_z) * 0
    shift = tf.placeholder_with_default(0.0, [])  # both logits moved by it: a second reading tells the two labels

    def generator(z, out_channel_dim, is_train=True, **options):  # options: a learner's own (alpha=0.2)
        calls['generator'].append((z, out_channel_dim, is_train))
        return fake_images

    returned = []

    def discriminator(images, reuse=False, **options):
        calls['discriminator'].append((images, reuse))
        logits = tf.fill([2, 1], real_logit if images is input_real else fake_logit) + shift + \
            tf.reduce_sum(images) * 0
        returned.append((tf.sigmoid(logits), logits))
        return returned[-1]

    with mock.patch.dict(model_loss.__globals__, generator=generator, discriminator=discriminator), \
            _labels_explained():
        try:
            d_loss, g_loss = _returned(model_loss(input_real, input_z, 3), 'model_loss')
        except (ValueError, TypeError) as error:
            if not _packed(returned):
                raise
            _check(False, 'model_loss: the discriminator\'s returns', 'the logits alone in each loss',
                   f'the pair (output, logits) taken as one tensor ({type(error).__name__}: {error})',
                   'stand-in networks', PAIR_FIX)
    _check(not _packed(returned), 'model_loss: the discriminator\'s returns', 'the logits alone in each loss',
           'the pair (output, logits) taken as one tensor, both in the loss', 'stand-in networks', PAIR_FIX)
    _check_tensor(d_loss, [], 'Discriminator Loss', 'stand-in networks')
    _check_tensor(g_loss, [], 'Generator Loss', 'stand-in networks')
    _check([c[1:] for c in calls['generator']] == [(3, True)], 'model_loss: generator calls',
           'one call, generator(input_z, 3) in training mode', calls['generator'])
    seen = [('input_real' if images is input_real else 'generated' if images is fake_images else 'other', reuse)
            for images, reuse in calls['discriminator']]
    _check(sorted(seen, key=str) == sorted([('input_real', False), ('generated', True)], key=str) or
           sorted(seen, key=str) == sorted([('input_real', True), ('generated', False)], key=str),
           'model_loss: discriminator calls', 'one on input_real and one on the generated images, '
           'the second with reuse=True', seen, fix='The second call shares the first one\'s variables: '
           'discriminator(input_real), then discriminator(generated_images, reuse=True)')

    with _labels_explained():
        d_value, g_value = _run((d_loss, g_loss), {input_real: np.zeros((2, 28, 28, 3)),
                                                   input_z: np.zeros((2, 100))})
    inputs = f'discriminator logits {real_logit} on real images and {fake_logit} on generated ones'
    swapped = 1 / (1 + np.exp(-fake_logit))  # the stand-in's output, read as logits by a (logits, output) unpacking
    label_generated = (_softplus(fake_logit) - g_value) / fake_logit
    label_if_swapped = (_softplus(swapped) - g_value) / swapped
    _check(_within(label_generated, REAL_LABELS) or not _within(label_if_swapped, REAL_LABELS),
           'model_loss: the discriminator\'s returns',
           '(output, logits), the probability first', f'g_loss {g_value:.4f}, the cross-entropy of the output '
           f'{swapped:.4f} taken as logits', inputs, 'Unpack them in that order: d_model_real, d_logits_real = '
           'discriminator(input_real), and give the logits to tf.nn.sigmoid_cross_entropy_with_logits')
    # g_loss = xe(fake_logit, label_generated); smoothed (0.7-1.2) as the real labels may be
    _check(_within(label_generated, REAL_LABELS), 'model_loss: g_loss',
           f'cross-entropy of generated images against label 1 (or smoothed to 0.7-1.2) = '
           f'{_softplus(-fake_logit):.4f}', f'g_loss {g_value:.4f}, which means a label of {label_generated:.3f} for '
           'the generated images', inputs, 'The generator wins when the discriminator takes its images for real: '
           'score the generated images against label 1 (tf.ones_like)')
    # d_loss = xe(real_logit, label_real) + xe(fake_logit, label_fake); xe(x, y) = softplus(x) - x * y
    label_real = (_softplus(real_logit) + _softplus(fake_logit) - d_value) / real_logit
    if not _within(label_real, REAL_LABELS):  # the labels as the learner wrote them, from a second reading
        with _labels_explained():
            d_shifted = _run(d_loss, {input_real: np.zeros((2, 28, 28, 3)), input_z: np.zeros((2, 100)), shift: 1.0})
        label_real, label_fake = (round(label, 2) or 0.0 for label in _labels_of(d_value, d_shifted, real_logit,
                                                                                   fake_logit))
        _check(_within(label_real, REAL_LABELS) and _within(label_fake, FAKE_LABELS), 'model_loss: d_loss',
               'real images labelled 1 (or smoothed to 0.7-1.2) and generated images labelled 0 (or 0-0.3)',
               f'd_loss {d_value:.4f}, which scores the real images against label {label_real:.2f} '
               f'and the generated ones against label {label_fake:.2f}'
               + (' (the two swapped)' if label_real < 0.3 and label_fake > 0.7 else ''), inputs,
               'd_loss is d_loss_real (real images against label 1, tf.ones_like) plus d_loss_fake (generated '
               'images against label 0, tf.zeros_like): the discriminator learns to tell them apart')


PAIR_FIX = 'discriminator returns two tensors: unpack them, d_model_real, d_logits_real = discriminator(input_real), ' \
           'and give d_logits_real to tf.nn.sigmoid_cross_entropy_with_logits'


def _packed(returned):
    """Whether the graph stacks a discriminator's (output, logits) into one tensor: a pair passed where a tensor is
    due (TensorFlow packs a tuple of tensors)."""
    pairs = [{output.name, logits.name} for output, logits in returned]
    return any(op.type == 'Pack' and any(pair <= {t.name for t in op.inputs} for pair in pairs)
               for op in tf.get_default_graph().get_operations())


def _labels_of(d_value, d_shifted, real_logit, fake_logit):
    """(real label, generated label) of a d_loss of xe(real_logit + s, y_real) + xe(fake_logit + s, y_fake), read at
    s = 0 (d_value) and s = 1 (d_shifted): two linear equations in the two labels."""
    both = _softplus(real_logit + 1) - _softplus(real_logit) + _softplus(fake_logit + 1) - _softplus(fake_logit) - \
        (d_shifted - d_value)  # y_real + y_fake
    weighted = _softplus(real_logit) + _softplus(fake_logit) - d_value  # real_logit y_real + fake_logit y_fake
    label_real = (weighted - fake_logit * both) / (real_logit - fake_logit)
    return label_real, both - label_real


@_in_fresh_graph
def _test_model_loss_networks(model_loss):
    out_channel_dim = 4
    inputs = f'input_real [None, 28, 28, {out_channel_dim}], input_z [None, 100], out_channel_dim={out_channel_dim}'
    input_real = tf.placeholder(tf.float32, [None, 28, 28, out_channel_dim])
    input_z = tf.placeholder(tf.float32, [None, 100])
    with _reuse_explained('model_loss', 'discriminator', "Call discriminator(generated_images, reuse=True) the "
                          "second time, so that both calls share one discriminator"), _labels_explained():
        try:
            d_loss, g_loss = model_loss(input_real, input_z, out_channel_dim)
        except (TypeError, ValueError) as error:  # the networks' None where a tensor was due
            if isinstance(error, ValueError) and 'None values not supported' not in str(error):
                raise
            raise AssertionError(f'model_loss could not use the notebook\'s generator and discriminator '
                                 f'({type(error).__name__}: {error}). Make their checks pass first') from None
    _check_tensor(d_loss, [], 'Discriminator Loss', inputs)
    _check_tensor(g_loss, [], 'Generator Loss', inputs)
    rng = np.random.default_rng(0)
    with _labels_explained():
        values = _run((d_loss, g_loss), {input_real: rng.uniform(-1, 1, (8, 28, 28, out_channel_dim)),
                                         input_z: rng.uniform(-1, 1, (8, 100))})
    _check(np.all(np.isfinite(values)), 'model_loss values', 'finite numbers', values, inputs)


def _test_model_loss_label_draws(model_loss):
    """The labels, read from LABEL_DRAWS builds: a verdict on labels drawn with np.random never rests on one draw."""
    failed = []
    for draw in range(LABEL_DRAWS):
        try:
            _test_model_loss_labels(model_loss, draw)
        except AssertionError as error:
            failed.append(error)
    if failed and (len(failed) < LABEL_DRAWS or len({str(error) for error in failed}) > 1):  # labels that vary
        raise AssertionError(f'{failed[0]} (on {len(failed)} of {LABEL_DRAWS} builds of the graph: labels drawn with '
                             f'np.random when it is built, some outside {_range_said(REAL_LABELS)} for real images '
                             f'or {_range_said(FAKE_LABELS)} for generated ones? Draw them within those)')
    if failed:
        raise failed[0]


@_errors_explained
def test_model_loss(model_loss):
    _test_model_loss_label_draws(model_loss)  # stand-in networks: works before the learner's networks do
    _test_model_loss_networks(model_loss)
    _print_success_message()


def _layer(scope, images):
    """A small layer with batch normalization inside `scope`, for the optimizer checks."""
    with tf.variable_scope(scope):
        x = tf.layers.dense(images, 3, use_bias=False)  # a bias before batch normalization gets no gradient
        return tf.layers.batch_normalization(x, training=True)


def _check_descends(network, steps, inputs):
    """A training operation steps its network's weights against the gradient of its loss, as every optimizer's first
    step does (Adam's: the rate times the gradient's sign): steps is [(gradient, change)] of each weight."""
    slope = np.concatenate([np.ravel(gradient) for gradient, _ in steps])
    change = np.concatenate([np.ravel(moved) for _, moved in steps])
    sloped = np.abs(slope) > 1e-7
    against = int(np.sum((slope * change < 0) & sloped))
    _check(np.dot(slope, change) < 0 and against >= 0.75 * np.sum(sloped), f'{network} training operation',
           f'to step each {network} weight against the gradient of its loss, as an optimizer does',
           f'{against} of {int(np.sum(sloped))} weights moved against it', inputs,
           f'Return the optimizer\'s step: tf.train.AdamOptimizer(learning_rate, beta1).minimize('
           f'{network[0]}_loss, var_list={network[0]}_vars)')


@_errors_explained
@_in_fresh_graph
def test_model_opt(model_opt, tf_module):
    inputs = 'd_loss and g_loss that each depend on both networks, learning_rate 0.1, beta1 0.5'
    data = tf.constant(np.random.default_rng(0).normal(2.0, 1.0, (8, 3)), tf.float32)
    d_out, g_out = _layer('discriminator', data), _layer('generator', data)
    d_loss = tf.reduce_mean(tf.square(d_out - 1) + tf.square(g_out) * 0.1)
    g_loss = tf.reduce_mean(tf.square(g_out + 1) + tf.square(d_out) * 0.1)
    learning_rate = tf.placeholder(tf.float32, ())
    scope_names = "Keep the variables whose names start with the scope names, var.name.startswith('discriminator')" \
                  " and var.name.startswith('generator')"

    with mock.patch.object(tf_module, 'trainable_variables', wraps=tf_module.trainable_variables) as trainable:
        try:
            d_train_opt, g_train_opt = _returned(model_opt(d_loss, g_loss, learning_rate, 0.5), 'model_opt')
        except ValueError as error:
            if 'No variables to optimize' not in str(error):
                raise
            raise AssertionError(f'model_opt: no variables to optimize for one of the networks (TensorFlow: '
                                 f'"{error}"), so the filter matched none of '
                                 f'{[v.name for v in tf.trainable_variables()]}. {scope_names}') from None
    if not trainable.called:  # what it updates is checked below: another list that trains the same is a choice
        warnings.warn('model_opt takes its weights without tf.trainable_variables(): the course filters '
                      'tf.trainable_variables() by scope, since tf.global_variables() also holds batch '
                      "normalization's moving averages, which no optimizer may change", StyleWarning)
    _check(isinstance(d_train_opt, tf.Operation), 'Discriminator Training Operation type', 'a tf.Operation',
           type(d_train_opt).__name__)
    _check(isinstance(g_train_opt, tf.Operation), 'Generator Training Operation type', 'a tf.Operation',
           type(g_train_opt).__name__)

    def scope_of(var):
        return var.name.split('/')[0]

    weights = tf.trainable_variables()
    moving = [v for v in tf.global_variables() if 'moving_mean' in v.name]
    gradients = {network: tf.gradients(loss, weights) for network, loss in (('discriminator', d_loss),
                                                                            ('generator', g_loss))}
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        for train_op, network in ((d_train_opt, 'discriminator'), (g_train_opt, 'generator')):
            before, slopes = sess.run([weights + moving, [g for g in gradients[network] if g is not None]])
            sess.run(train_op, {learning_rate: 0.1})
            after = sess.run(weights + moving)
            changed = {v.name for v, b, a in zip(weights + moving, before, after) if not np.array_equal(b, a)}
            wrong = sorted(v.name for v in weights if (v.name in changed) != (scope_of(v) == network))
            _check(not wrong, f'{network} training operation', f'to update every {network} weight and no '
                   f'other', f'these wrong: {wrong}', inputs, f'Give each optimizer its own network\'s variables '
                   f'(var_list=...). {scope_names}')
            _check_descends(network, [(slope, a - b) for v, slope, b, a in zip(
                [v for v, g in zip(weights, gradients[network]) if g is not None], slopes, before, after)
                if scope_of(v) == network], inputs)
        # A training step runs both: the generator's moving averages, which sampling reads, must move then (the
        # discriminator's are never read: it always normalizes with the batch)
        before = sess.run(moving)
        sess.run([d_train_opt, g_train_opt], {learning_rate: 0.1})
        stale = [v.name for v, b, a in zip(moving, before, sess.run(moving))
                 if scope_of(v) == 'generator' and np.array_equal(b, a)]
        _check(not stale, 'a training step (both training operations)', "to update the generator's batch "
               'normalization moving averages', f'unchanged: {stale}', inputs,
               'Build the optimizers under tf.control_dependencies(tf.get_collection(tf.GraphKeys.UPDATE_OPS)): '
               'those ops update the moving averages and nothing else runs them, so without them the sampling '
               'generator normalizes with the statistics it started with')

    _print_success_message()


def _check_ranges(fed, seen, entries, inputs):
    """The real images the discriminator takes span the range the generator's images can take, measured on the
    learner's graph (a generator ending in 0.5 * tanh fed the batches as they come trains as well as the course's
    tanh fed them doubled); where the graph does not say, the course's range: batches doubled to [-1, 1]."""
    bounds = [_bound(tensor) for tensor, _ in entries.get('generated', [])]
    if bounds and not all(bounds):
        return  # a generator whose last layer is not bounded learns whatever range it is shown
    if seen and bounds:
        real = float(min(v.min() for v in seen)), float(max(v.max() for v in seen))
        generated = min(b[0] for b in bounds), max(b[1] for b in bounds)
        width = max(real[1] - real[0], 1e-6)
        doubled = 'feed batch_images * 2, ' if np.allclose(real, (-0.5, 0.5), atol=1e-3) and \
            np.allclose(generated, (-1, 1)) else ''
        _check(all(abs(g - r) <= 0.1 * width for g, r in zip(generated, real)), 'train: real images fed',
               f'the range of the generated images, {_range_said(generated)} (the generator\'s last activation)',
               f'the discriminator takes real images in {_range_said(real)}', inputs,
               f'get_batches yields values in [-0.5, 0.5]: {doubled}so that the real and the generated images span '
               'one range, or the discriminator tells them apart by it and the samples come out grey')
        return
    low, high = min(f.min() for f in fed), max(f.max() for f in fed)  # the graph does not say: the course's range
    _check(np.isclose(low, -1) and np.isclose(high, 1), 'train: real images fed',
           'values in [-1, 1], the range of the generator\'s tanh (batches doubled)', f'[{low}, {high}]', inputs,
           'get_batches yields values in [-0.5, 0.5]: feed batch_images * 2, or the discriminator tells real '
           'from generated by their range and the samples come out grey')


def check_hyperparameters(**chosen):
    """Before a training cell trains: each hyperparameter it sets is a number, not the exercise's None. Returns
    them, for the run's record."""
    unset = [name for name, value in chosen.items() if not isinstance(value, numbers.Number) or isinstance(value, bool)]
    if unset:
        raise NotImplementedYet(f'{", ".join(unset)} {"is" if len(unset) == 1 else "are"} not chosen yet: set '
                                f'{"it" if len(unset) == 1 else "them"} above this cell\'s DON\'T MODIFY line. '
                                'Reviewers suggest a batch of 16 to 64 (smaller batches, more updates), z_dim 100 to '
                                '128, a learning rate of 0.0002 to 0.0008 and beta1 about 0.5.')
    return chosen


class _FakeData:
    """A tiny dataset whose batches span exactly [-0.5, 0.5], as helper.Dataset's do."""

    def __init__(self, n_batches, channels):
        self.n_batches, self.channels, self.calls = n_batches, channels, 0

    def get_batches(self, batch_size):
        self.calls += 1
        rng = np.random.default_rng(self.calls)
        for _ in range(self.n_batches):
            batch = rng.uniform(-0.5, 0.5, (batch_size, 28, 28, self.channels)).astype(np.float32)
            batch.flat[0], batch.flat[1] = -0.5, 0.5
            yield batch


def _recording(calls, name, function):
    """function, with each call's arguments appended to calls[name]."""
    @functools.wraps(function)
    def record(*args, **kwargs):
        calls.setdefault(name, []).append(inspect.signature(function).bind(*args, **kwargs).arguments)
        return function(*args, **kwargs)
    return record


# Operations whose output lies in a fixed interval, and those that pass one on unchanged (a generator's last layers)
BOUNDED = {'Tanh': (-1.0, 1.0), 'Softsign': (-1.0, 1.0), 'Sigmoid': (0.0, 1.0), 'Relu6': (0.0, 6.0)}
PASSING = {'Identity', 'Reshape', 'Squeeze', 'ExpandDims', 'Transpose', 'StopGradient', 'Snapshot'}
ARITHMETIC = {'Mul': np.multiply, 'RealDiv': np.divide, 'Add': np.add, 'AddV2': np.add, 'Sub': np.subtract,
              'Maximum': np.maximum, 'Minimum': np.minimum}


def _bound(tensor, depth=0):
    """(low, high) that every value of tensor lies in, read from its graph (a tanh scaled by 0.5: (-0.5, 0.5)), or
    None where its operations do not bound it (a linear output layer)."""
    value = tf.get_static_value(tensor) if tensor.dtype.is_floating or tensor.dtype.is_integer else None
    if value is not None:
        return float(np.min(value)), float(np.max(value))
    op = tensor.op
    if depth > 30:
        return None
    if op.type in BOUNDED:
        return BOUNDED[op.type]
    if op.type in PASSING:
        return _bound(op.inputs[0], depth + 1)
    if op.type == 'Neg':
        inner = _bound(op.inputs[0], depth + 1)
        return inner and (-inner[1], -inner[0])
    if op.type == 'ClipByValue':
        low, high = _bound(op.inputs[1], depth + 1), _bound(op.inputs[2], depth + 1)
        return low and high and (low[0], high[1])
    if op.type in ARITHMETIC and len(op.inputs) == 2:
        left, right = _bound(op.inputs[0], depth + 1), _bound(op.inputs[1], depth + 1)
        if left is None or right is None or (op.type == 'RealDiv' and right[0] <= 0 <= right[1]):
            return None
        corners = [ARITHMETIC[op.type](a, b) for a in left for b in right]
        return float(min(corners)), float(max(corners))
    return None


def _discriminator_inputs(graph):
    """{'real': [...], 'generated': [...]}: the images each of the discriminator's calls takes, by where they come
    from (a placeholder of images, or the generator's operations); a tensor that mixes both is neither."""
    def inside(op):
        return re.match(r'discriminator(_\d+)?$', op.name.split('/')[0]) is not None
    found = {'real': [], 'generated': []}
    for tensor in dict.fromkeys(t for op in graph.get_operations() if inside(op) for t in op.inputs
                                if not inside(t.op) and t.dtype.is_floating and t.shape.ndims == 4):
        above = _ops_near([tensor.op], 'backward', cross_weighted=10 ** 6)
        generated = any(op.name.startswith('generator') for op in above)
        images = [op for op in above if op.type == 'Placeholder' and op.outputs[0].shape.ndims == 4]
        if generated != bool(images):
            found['generated' if generated else 'real'].append((tensor, [op.outputs[0] for op in images]))
    return found


def _range_said(bounds):
    return f'[{bounds[0]:g}, {bounds[1]:g}]'


def names_read(function, depth=2):
    """The global names a function's code reads, with its nested functions' and those of the functions of its own it
    calls (depth levels down); a stand-in's where it says them (`names_read`: the review's judge)."""
    said = getattr(function, 'names_read', None)
    if said is not None and not callable(said):
        return set(said)
    function = getattr(function, '__wrapped__', function)
    names, codes = set(), [getattr(function, '__code__', None)]
    while codes:
        code = codes.pop()
        if code is not None:  # globals only: co_names holds the attributes read too (tf.train)
            names.update(step.argval for step in dis.get_instructions(code) if step.opname in ('LOAD_GLOBAL',
                                                                                             'LOAD_NAME'))
            codes.extend(const for const in code.co_consts if isinstance(const, types.CodeType))
    for name in list(names) if depth else []:
        called = getattr(function, '__globals__', {}).get(name)
        if isinstance(called, types.FunctionType) and called is not function:
            names |= names_read(called, depth - 1)
    return names


@_errors_explained
@_in_fresh_graph
def test_train(train, tf_module):
    """A short run on tiny fake data: every batch reaches the networks, doubled to [-1, 1]."""
    data = _FakeData(n_batches=2, channels=1)
    fed, seen, entries = [], [], {}  # seen: what the discriminator took for real images, in the learner's own runs
    real_session = tf_module.Session

    class RecordingSession(real_session):
        def run(self, fetches, feed_dict=None, **kwargs):
            images = [placeholder for placeholder, value in (feed_dict or {}).items()
                      if getattr(placeholder, 'op', None) is not None and placeholder.op.type == 'Placeholder'
                      and len(np.shape(value)) == 4]
            fed.extend(np.asarray(feed_dict[placeholder]) for placeholder in images)
            if images and not entries:
                entries.update(_discriminator_inputs(self.graph))
            real = [tensor for tensor, needs in entries.get('real', []) if all(t in feed_dict for t in needs)]
            if not real:
                return super().run(fetches, feed_dict, **kwargs)
            result, values = super().run((fetches, real), feed_dict, **kwargs)
            seen.extend(values)
            return result

    shown, calls = [], {}
    globals_ = train.__globals__
    # Grids drawn during this check would only clutter the notebook: record the calls instead.
    stubs = {'show_generator_output': lambda sess, n, input_z, channels, *rest: shown.append(n) or
             np.zeros((n, 28, 28, channels), np.float32), 'display': lambda *args, **kwargs: None}
    stubs = {name: stub for name, stub in stubs.items() if name in globals_}
    stubs.update({name: _recording(calls, name, globals_[name]) for name in ('model_inputs', 'model_loss', 'model_opt')
                  if callable(globals_.get(name))})
    inputs = 'epoch_count=2, batch_size=4, z_dim=8, 2 batches per epoch in [-0.5, 0.5], data_shape (8, 28, 28, 1)'
    # A train that keeps its run on disk (a TrainingRun) gets a temporary folder, not the learner's output folder.
    run_dir = tempfile.mkdtemp(prefix='test_train-')
    keep_run = {'run': TrainingRun(run_dir, progress=None)} \
        if 'run' in inspect.signature(train).parameters else {}
    after = None  # an error the learner's code raised once every batch had trained (its own bookkeeping's)
    with mock.patch.object(tf_module, 'Session', RecordingSession), mock.patch.dict(globals_, stubs):
        try:
            train(2, 4, 8, 0.0002, 0.5, data.get_batches, (8, 28, 28, 1), 'L', **keep_run)
        except Exception as error:  # noqa: BLE001 (the learner's code: any of its errors)
            if not (data.calls == 2 and len(fed) >= 4 and all(name not in stubs or len(calls.get(name, [])) == 1
                                                               for name in ('model_inputs', 'model_loss', 'model_opt'))):
                raise
            after = error
        finally:
            shutil.rmtree(run_dir, ignore_errors=True)
    if not fed and not calls:
        raise NotImplementedYet('train is not implemented yet: no batch reached the networks. Write `# TODO: Build '
                                'Model` (model_inputs, model_loss and model_opt) and `# TODO: Train Model` (one '
                                'sess.run of both training ops per batch, fed the batch times 2, z and the learning '
                                'rate).')
    for name in ('model_inputs', 'model_loss', 'model_opt'):
        _check(name not in stubs or len(calls.get(name, [])) == 1, f'train: {name} calls', 'one, to build the model',
               len(calls.get(name, [])), inputs)
    rate = calls['model_opt'][0]['learning_rate'] if calls.get('model_opt') else None
    if isinstance(rate, numbers.Number):  # a constant rate trains the same: a choice, not a mistake
        warnings.warn(f"train gives model_opt the number {rate!r} as its learning rate: the course passes the "
                      "learning-rate placeholder of model_inputs and feeds the number in sess.run's feed_dict, so "
                      'that the rate can change between batches without building the graph again', StyleWarning)
    _check(data.calls == 2, 'train: get_batches calls', 'one per epoch (2)', data.calls, inputs)
    _check(len(fed) >= 4, 'train: batches fed to the networks', 'at least 4 (2 epochs x 2 batches)', len(fed),
           inputs, 'Run both training ops for every batch of every epoch (`# TODO: Train Model`)')
    _check_ranges(fed, seen, entries, inputs)
    if after is not None:
        warnings.warn(f'train raised {type(after).__name__} ("{str(after)[:300]}") after it had trained every batch '
                      f'of this short run ({inputs}): code that runs after training (a plot of losses kept every N '
                      'batches?) does not expect so short a run. The training passes; make that code work for any '
                      'number of batches', StyleWarning)
    if 'show_generator_output' in stubs and not shown and 'show_generator_output' not in names_read(train):
        warnings.warn('train shows no grid of generated images: the course asks for show_generator_output every '
                      '100 batches or so, to see the generator learn', StyleWarning)

    _print_success_message()

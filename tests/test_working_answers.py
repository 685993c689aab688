"""Working answers pass wherever they differ from the solution in a way that trains the same: the review judges what
training needs, measured on the learner's own graph, and says the learner's own cause where it fails."""
import nbformat

from conftest import solution_without_markers
from test_real_answers import SIGNATURES, STYLE_OF_2017
from test_review_isolation import LINE, verdicts, with_bodies, write
from facegen.course import judge, review

# A 2017-style answer written in styles the catalogue did not list: a float64 rate, ELUs, an L2 regularizer of
# tf.contrib, a generator in [-0.5, 0.5] fed the batches as they come, losses kept every 10 steps and read after
# training, tf.reset_default_graph() in train (TensorFlow 1.0 let it pass), %%time on a training cell.
CHANGES = {
    'model_inputs': [("tf.placeholder(tf.float32, name='learning_rate')",
                      "tf.placeholder(tf.float64, name='learning_rate')")],
    'discriminator': [('tf.maximum(alpha * x1, x1)', 'tf.nn.elu(x1)'), ('tf.maximum(alpha * bn2, bn2)',
                                                                        'tf.nn.elu(bn2)'),
                      ('tf.maximum(alpha * bn3, bn3)', 'tf.nn.elu(bn3)'),
                      ("x1 = tf.layers.conv2d(images, 64, 5, strides=2, padding='same')",
                       "x1 = tf.layers.conv2d(images, 64, 5, strides=2, padding='same',\n"
                       "                              kernel_regularizer=tf.contrib.layers.l2_regularizer(0.01))")],
    'generator': [('out = tf.tanh(logits)', 'out = 0.5 * tf.tanh(logits)')],
    'train': [('batch_images = batch_images * 2', 'batch_images = batch_images'),
              ('steps = 0', 'steps, losses = 0, []'),
              ('if steps % 100 == 0:', 'if steps % 10 == 0:\n'
                                       '                    losses.append(steps)\n'
                                       '                if steps % 100 == 0:')],
}
AFTER_TRAINING = '\n    first_kept = np.array(losses)[0]  # an IndexError in a run of fewer than 10 steps\n'


def working_answer():
    bodies = dict(STYLE_OF_2017)
    for function, changes in CHANGES.items():
        for old, new in changes:
            assert old in bodies[function], (function, old)
            bodies[function] = bodies[function].replace(old, new)
    bodies['train'] = '\n    tf.reset_default_graph()  # TensorFlow 1.0 let it pass in the training cell\'s graph' + \
        bodies['train'].rstrip('\n') + AFTER_TRAINING
    nb = with_bodies(solution_without_markers(), bodies)
    for cell in nb.cells:
        for old, new in SIGNATURES.items():
            cell.source = cell.source.replace(old, new)
        if "helper.Dataset('mnist'" in cell.source:
            cell.source = '%%time\n' + cell.source
    return nb


def test_a_working_answer_in_styles_the_catalogue_did_not_list_passes_every_line(tmp_path):
    lines = review.review(write(tmp_path, working_answer()))
    found = verdicts(lines)
    assert all(found[LINE[name]] == ('PASS', '') for name in LINE), review.format_lines(lines)
    assert found['The hyperparameters are reasonable'][0] == 'PASS', found
    warned = [line.message for line in lines if line.result == 'WARN']
    assert any(text.startswith('train raised IndexError') and 'after it had trained every batch' in text
               for text in warned), warned
    assert not any('grid' in text or 'ReLU' in text or 'Learning Rate' in text for text in warned), warned
    assert [line.message.split(':')[0] for line in lines if line.rubric == 'TensorFlow 1 names'] == [
        'the cell of discriminator uses tf.contrib.layers.l2_regularizer',
        'the cell of train calls tf.reset_default_graph()'], review.format_lines(lines)


def test_a_mistake_in_that_answer_still_fails_naming_its_own_cause():
    """The same answer with a tanh generator, its batches still undoubled: the ranges no longer match (the check in
    the learner's process, as the review's judge runs it)."""
    from unittest import mock

    import problem_unittests
    import pytest
    import tensorflow.compat.v1 as tf
    from facegen.course import recorder
    nb = working_answer()
    cell = next(c for c in nb.cells if 'def generator(' in c.source)
    cell.source = cell.source.replace('out = 0.5 * tf.tanh(logits)', 'out = tf.tanh(logits)')
    namespace, _, _ = recorder.load(nb)
    with mock.patch.object(tf, 'contrib', recorder.tf1_contrib(tf), create=True), \
            mock.patch.object(tf, 'reset_default_graph', recorder.tf1_reset_default_graph(tf)), pytest.raises(AssertionError, match=r"^train: real images fed: expected the range of the generated images, "
                                             r"\[-1, 1\] \(the generator's last activation\), found the "
                                             r"discriminator takes real images in \[-0.5, 0.5\]"):
        problem_unittests.test_train(namespace['train'], tf)


def test_the_hyperparameters_are_read_as_jupyter_runs_the_cell():
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(
        f"%%time\n!nvidia-smi\nbatch_size = 32\nz_dim = 100\n  %matplotlib inline\nlearning_rate = 0.0005\n"
        f"beta1 = 0.5\nmnist_dataset = helper.Dataset('{dataset}', [])") for dataset in ('mnist', 'celeba')]
    assert review.hyperparameters(nb) == {dataset: {'batch_size': 32, 'z_dim': 100, 'learning_rate': 0.0005,
                                                    'beta1': 0.5} for dataset in ('mnist', 'celeba')}


def test_an_error_of_the_learner_s_own_line_names_the_function_the_line_and_what_to_do():
    unbound = type('UnboundLocalError', (NameError,), {})(
        "cannot access local variable 'd_vars' where it is not associated with a value (raised in model_opt, line 4 "
        "of its cell: return tf.train.AdamOptimizer(learning_rate).minimize(d_loss, var_list=d_vars))")
    said = judge.learners_error('model_opt', unbound)
    assert said.startswith("model_opt raised UnboundLocalError: cannot access local variable 'd_vars'")
    assert '(raised in model_opt, line 4 of its cell: return tf.train' in said
    assert said.endswith('assign it before the if or the loop that sets it')
    assert judge.learners_error('train', NameError("name 'epochs' is not defined")).endswith(
        'is it misspelt, or defined in a cell not run yet?')


def test_the_review_runs_tf_contrib_s_l2_regularizer_as_tensorflow_1_did():
    import numpy as np
    import tensorflow.compat.v1 as tf
    from facegen.course import recorder
    with tf.Graph().as_default():
        weights = tf.constant([[1.0, 2.0], [3.0, -4.0]])
        penalty = recorder.tf1_contrib(tf).layers.l2_regularizer(0.1)(weights)
        with tf.Session() as sess:
            assert np.isclose(sess.run(penalty), 0.1 * 30 / 2)

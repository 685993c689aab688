"""The review: the course's rubric over a notebook handed in, by this project's own checks, whatever it holds."""
import re
import subprocess

import nbformat
import pytest

import facegen.data
from conftest import ROOT, filled_in_exercise, solution_without_markers
from facegen.course import exercise, review, sandbox
from facegen.notebooks import loader

MODEL_LINES = ['model_inputs is implemented correctly', 'discriminator is implemented correctly',
               'generator is implemented correctly', 'model_loss is implemented correctly',
               'model_opt is implemented correctly',
               'train builds the model with model_inputs, model_loss and model_opt and shows show_generator_output']


def results(lines):
    """{rubric line: (result, message)} of the PASS/FAIL lines."""
    return {line.rubric: (line.result, line.message) for line in lines if line.result in ('PASS', 'FAIL')}


def write(tmp_path, nb, name='dlnd_face_generation.ipynb'):
    path = tmp_path / name
    nbformat.write(nb, str(path))
    return str(path)


def with_changed_cell(function, old, new):
    """The solution with one function's cell edited: old (which must be there) replaced by new."""
    nb = solution_without_markers()
    cell = next(c for c in nb.cells if c.cell_type == 'code' and f'def {function}(' in c.source)
    assert old in cell.source
    cell.source = cell.source.replace(old, new, 1)
    return nb


def test_the_solution_passes_every_line():
    lines = review.review(exercise.SOLUTION)
    assert review.passed(lines)
    assert all(results(lines)[rubric][0] == 'PASS' for rubric in MODEL_LINES + ['All the unit tests pass'])
    mnist = {name: loader.training_cell_setting(name)[0]
             for name in ('batch_size', 'z_dim', 'learning_rate', 'beta1')}
    assert 'MNIST: ' + ', '.join(f'{name} {value:g}' for name, value in mnist.items()) in \
        results(lines)['The hyperparameters are reasonable'][1]
    assert [line.result for line in lines if line.result not in ('PASS', 'FAIL')] == ['REVIEW']


def test_the_exercise_as_handed_out_fails_each_function_as_not_implemented_yet():
    lines = review.review(exercise.EXERCISE)
    assert not review.passed(lines)
    for rubric, function in zip(MODEL_LINES, [name for name, _ in review.MODEL_CHECKS]):
        result, message = results(lines)[rubric]
        assert result == 'FAIL' and message.startswith(f'{function} is not implemented yet'), rubric
        assert 'fix' not in message.split('.')[-1], 'a function not written yet is its own cause'
    assert results(lines)['The hyperparameters are reasonable'] == (
        'FAIL', 'not set: MNIST: batch_size, z_dim, learning_rate, beta1; CelebA: batch_size, z_dim, learning_rate, '
                'beta1. Choose them above the DON\'T MODIFY line of the MNIST and CelebA cells')


def test_the_exercise_filled_in_with_the_solutions_bodies_passes(tmp_path):
    path = write(tmp_path, filled_in_exercise(nbformat.read(exercise.EXERCISE, as_version=4)))
    before = open(path, 'rb').read()
    lines = review.review(path)
    assert review.passed(lines), review.format_lines(lines)
    assert open(path, 'rb').read() == before, 'the review never writes to the notebook'


@pytest.mark.parametrize('function, old, new, failing', [
    ('train', 'input_real: batch_images * 2', 'input_real: batch_images',
     {MODEL_LINES[5]: r'train: real images fed: expected the range of the generated images, \[-1, 1\].*found the '
                      r'discriminator takes real images in \[-0.5, 0.5\]'}),
    ('train', 'input_real: batch_images * 2', 'input_real: batch_images[:, :, :, 0] * 2',
     {MODEL_LINES[5]: r"Cannot feed value of shape \(\d+, 28, 28\).*\(raised in train, line \d+ of its cell: _, _, "
                      r"train_loss_d, train_loss_g = sess\.run\(\)"}),
    ('generator', "reuse=not is_train", "reuse=is_train",
     {MODEL_LINES[2]: r"Generator\(is_train=True\) looked for 'generator' variables to reuse",
      MODEL_LINES[3]: '^fails only because generator fails: fix it first$',
      MODEL_LINES[5]: r'\(generator, model_loss, which train builds on, fail too: see their lines\)$'}),
])
def test_one_mistake_fails_its_line_and_names_the_cause_in_the_lines_it_breaks(tmp_path, function, old, new,
                                                                               failing):
    lines = review.review(write(tmp_path, with_changed_cell(function, old, new)))
    found = {rubric: message for rubric, (result, message) in results(lines).items()
             if result == 'FAIL' and rubric != 'All the unit tests pass'}
    assert set(found) == set(failing)
    for rubric, pattern in failing.items():
        assert re.search(pattern, found[rubric]), found[rubric]
    assert results(lines)['All the unit tests pass'][0] == 'FAIL'


def test_a_check_that_only_guesses_and_an_odd_hyperparameter_are_warnings(tmp_path):
    nb = with_changed_cell('discriminator', 'x = tf.nn.leaky_relu(x, LEAK)',
                           'x = tf.nn.relu(tf.layers.batch_normalization(x, training=True))')
    for old, new in (('x = tf.nn.leaky_relu(tf.layers.batch_normalization(x, training=True), LEAK)',
                      'x = tf.nn.relu(tf.layers.batch_normalization(x, training=True))'),):
        cell = next(c for c in nb.cells if 'def discriminator(' in c.source)
        cell.source = cell.source.replace(old, new)
    mnist = next(c for c in nb.cells if "helper.Dataset('mnist'" in c.source)
    mnist.source = re.sub(r'^batch_size = \d+', 'batch_size = 512', mnist.source, flags=re.MULTILINE)
    lines = review.review(write(tmp_path, nb))
    assert review.passed(lines)
    warnings = [line.message for line in lines if line.result == 'WARN']
    assert len(warnings) == 3 and warnings[0].startswith('The discriminator normalizes its first layer '
                                                         '(discriminator/batch_normalization')
    assert warnings[1].startswith('The discriminator has plain ReLUs (discriminator/Relu') and \
        warnings[1].endswith('the course uses leaky ReLU (tf.nn.leaky_relu)')
    assert warnings[2] == 'MNIST batch_size 512 (reviewers suggest 16 to 64)'


def broken_cells(nb, kind):
    """The solution broken as hand-ins are: a cell that does not parse, a function gone, one defined twice."""
    cells = [c for c in nb.cells if c.cell_type == 'code']
    cell = {name: next(c for c in cells if f'def {name}(' in c.source) for name in ('discriminator', 'model_opt',
                                                                                      'generator', 'train')}
    if kind == 'does not parse':
        cell['discriminator'].source = cell['discriminator'].source.replace('reuse=reuse):', 'reuse=reuse)', 1)
    elif kind == 'missing':
        nb.cells.remove(cell['model_opt'])
    elif kind == 'twice':
        nb.cells.insert(nb.cells.index(cell['generator']) + 1, nbformat.v4.new_code_cell(cell['generator'].source))
    elif kind == 'never returns':
        cell['train'].source = cell['train'].source.replace('    _, image_width,', '    while True:\n        pass\n'
                                                            '    _, image_width,', 1)
    return nb


@pytest.mark.parametrize('kind, rubric, message', [
    ('does not parse', MODEL_LINES[1], r"^the cell that defines discriminator does not parse \(line 12: "
                                       r"expected ':'\): fix its Python$"),
    ('missing', MODEL_LINES[4], r"^no cell defines model_opt: put back the exercise's cell with `def model_opt\(`"),
    ('twice', MODEL_LINES[2], r'^generator is defined in 2 cells \(cells 18 and 19 from the top, text cells '
                              r'counted\): the one run last wins in Jupyter; keep one$'),
    ('never returns', MODEL_LINES[5], r'^test_train\(train\): it ran past its time limit \(12 s\) and was stopped: '
                                      r'does a loop never end\?$'),
])
def test_a_broken_hand_in_gets_a_fail_line_naming_the_cell_or_function(tmp_path, kind, rubric, message):
    lines = review.review(write(tmp_path, broken_cells(solution_without_markers(), kind)),
                          limits=sandbox.Limits(check_s=12))
    result, found = results(lines)[rubric]
    assert result == 'FAIL' and re.search(message, found), found
    if kind == 'missing':
        assert re.search(r'\(model_opt, which train builds on, fails too: see its line\)$',
                         results(lines)[MODEL_LINES[5]][1])


@pytest.mark.parametrize('content, message', [
    (None, r'is not a file: give the path of the notebook handed in'),
    (b'<html>a page saved from the browser</html>', r'is not a Jupyter notebook \(NotJSONError'),
])
def test_a_path_that_is_no_notebook_gets_one_fail_line(tmp_path, content, message):
    path = tmp_path / 'dlnd_face_generation.ipynb'
    if content is not None:
        path.write_bytes(content)
    lines = review.review(str(path))
    assert len(lines) == 1 and lines[0].result == 'FAIL' and re.search(message, lines[0].message)


def test_make_review_prints_the_table_and_fails_on_the_exercise(tmp_path):
    """A teacher's path holds spaces (a class's folder, an LMS's names)."""
    folder = tmp_path / 'Face Generation class'
    folder.mkdir()
    notebook = folder / 'Ana Sanchez dlnd_face_generation.ipynb'
    notebook.write_bytes(open(exercise.EXERCISE, 'rb').read())
    done = subprocess.run(['make', '--no-print-directory', 'review', f'NOTEBOOK={notebook}'],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode != 0
    assert 'FAIL   model_inputs is implemented correctly\n         model_inputs is not implemented yet' in done.stdout
    assert done.stdout.rstrip().endswith('Not every PASS/FAIL line passes: the FAIL lines say what to fix.')


def test_training_adds_the_digit_score_and_a_grid_of_faces_to_judge_with_their_score(tmp_path, monkeypatch):
    monkeypatch.setenv(facegen.data.DATA_SOURCE_ENV, 'sample')
    lines = review.review(exercise.SOLUTION, train=True, data_dir=str(tmp_path / 'data'),
                          output_dir=str(tmp_path / 'review'), max_images=256, steps=3)
    assert review.passed(lines), review.format_lines(lines)
    digits = next(line.message for line in lines if line.rubric == 'The digits')
    assert 'classified with probability >= 0.9' in digits and 'after 3 steps' in digits
    faces = next(line for line in lines if line.rubric == 'The generated faces look like faces')
    [run_dir] = (tmp_path / 'review' / sandbox.HANDIN_FOLDER / 'runs' / 'celeba').iterdir()
    assert faces.result == 'REVIEW' and str(run_dir / 'grids' / 'step_000003.png') in faces.message
    for figure in ('Faces a face detector finds', 'Contrast', 'Grain', 'Variety', 'Novelty'):  # the face score
        assert re.search(rf'{figure}[^:]*: \d+\.\d+%? \(real[^:]*: \d+\.\d+%?', faces.message), (figure, faces.message)
    assert (run_dir / 'samples.png').is_file()


def test_each_training_trains_with_the_constants_its_cell_sets(monkeypatch):
    """The solution's CelebA cell turns the gradient penalty off (R1_WEIGHT = 0.0): the review's faces train so too,
    with the learner's train itself."""
    from facegen.course import recorder
    nb = nbformat.read(exercise.SOLUTION, as_version=4)
    assert review.training_cell_constants(nb) == {'mnist': {'R1_WEIGHT': 1.0}, 'celeba': {'R1_WEIGHT': 0.0}}
    seen, written = [], []

    def recording_train(namespace, chosen, dataset, *rest):
        seen.append((dataset, namespace['R1_WEIGHT'], chosen['batch_size'], namespace['train']))
        raise RuntimeError('recorded')

    class Written:
        def write(self, kind, **fields):
            written.append((kind, fields.get('error', {}).get('message')))

        error = staticmethod(recorder.Recording.error)
    def learners_train(*args):
        pass
    monkeypatch.setattr(recorder, 'train', recording_train)
    namespace = {'R1_WEIGHT': 1.0, 'train': recorder.Recorder(Written(), 'train', learners_train)}
    recorder.record_training(Written(), namespace, nb, ['mnist', 'celeba'], 'data', 'runs', None,
                             {'mnist': 3, 'celeba': 3})
    # the learner's own train: a training's every session run is not evidence (its samples are judged)
    mnist_batch, celeba_batch = loader.training_cell_setting('batch_size')
    assert seen == [('mnist', 1.0, mnist_batch, learners_train), ('celeba', 0.0, celeba_batch, learners_train)]
    assert written == [('training', None), ('training_end', 'recorded')] * 2

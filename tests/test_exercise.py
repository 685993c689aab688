"""The learner's edition: made from the solution like a lock file, read like the 2017 exercise, nothing leaked."""
import ast
import os
import re
import subprocess

import nbformat
import papermill
import pytest

import facegen.data
from facegen.notebooks import loader
from facegen.runs import results
from facegen.course import exercise

MODEL_FUNCTIONS = ('model_inputs', 'discriminator', 'generator', 'model_loss', 'model_opt')
WHOLE_CELL_FIXED = '"""\nDON\'T MODIFY ANYTHING IN THIS CELL\n"""'


@pytest.fixture(scope='module')
def notebooks():
    return (nbformat.read(exercise.SOLUTION, as_version=4), nbformat.read(exercise.EXERCISE, as_version=4))


def function_cell(nb, name):
    return next(cell for cell in nb.cells if cell.cell_type == 'code' and f'def {name}(' in cell.source)


def function_node(source, name):
    code = source.split(loader.CHECK_MARKER)[0]
    return next(node for node in ast.parse(code).body if isinstance(node, ast.FunctionDef) and node.name == name)


def test_the_committed_exercise_is_what_the_solution_makes():
    with open(exercise.EXERCISE, encoding='utf-8') as f:
        assert f.read() == exercise.written_exercise(), 'run `make regenerate-exercise` and commit the exercise'
    assert exercise.main(['--check']) == 0


def test_every_cell_of_the_solution_in_order_with_its_id(notebooks):
    solution, learners = notebooks
    assert [(c.cell_type, c.id) for c in learners.cells] == [(c.cell_type, c.id) for c in solution.cells]
    assert all(not c.outputs for c in learners.cells if c.cell_type == 'code')


def test_the_cells_that_are_not_the_learners_work_are_unchanged(notebooks):
    solution, learners = notebooks
    fixed = [(s.source, e.source) for s, e in zip(solution.cells, learners.cells)
             if 'SOLUTION' not in s.source and 'parameters' not in s.metadata.get('tags', [])]
    assert len(fixed) == 20 and all(s == e for s, e in fixed)
    assert sum(s.startswith(WHOLE_CELL_FIXED) for s, _ in fixed) == 6, 'the DON\'T MODIFY cells among them'
    assert 'data_dir = \'../data\'' in learners.cells[3].source, 'the same data folder as the solution'
    assert "output_dir = './output'" in learners.cells[3].source, 'its own runs, beside it'


@pytest.mark.parametrize('name, nones', [('model_inputs', 3), ('discriminator', 2), ('generator', 1),
                                         ('model_loss', 2), ('model_opt', 2)])
def test_each_function_is_its_signature_docstring_todo_and_nones(notebooks, name, nones):
    solution, learners = notebooks
    learner = function_node(function_cell(learners, name).source, name)
    original = function_node(function_cell(solution, name).source, name)
    assert ast.dump(learner.args) == ast.dump(original.args)
    assert ast.get_docstring(learner) == ast.get_docstring(original)
    assert [type(node) for node in learner.body] == [ast.Expr, ast.Return]
    assert ast.dump(learner.body[1]) == ast.dump(ast.parse('return ' + ', '.join(['None'] * nones)).body[0])
    assert '    # TODO: Implement Function\n\n    return None' in function_cell(learners, name).source
    assert function_cell(learners, name).source.endswith(function_cell(solution, name).source.split(
        loader.CHECK_MARKER)[1]), 'the check call stays below the line'


def test_train_is_the_2017_skeleton_written_against_a_training_run(notebooks):
    _, learners = notebooks
    source = function_cell(learners, 'train').source
    for line in ('    # TODO: Build Model\n', '    with run.session(epoch_count * steps_per_epoch) as sess:\n',
                 '        for epoch_i in range(run.step // steps_per_epoch, epoch_count):\n',
                 '            for batch_images in run.take(get_batches(batch_size)):\n'
                 '                # TODO: Train Model\n                pass\n',
                 '    return run\n'):
        assert line in source
    assert 'sess.run' not in source and 'model_inputs(' not in source.split('"""')[2]


def test_nothing_of_the_solution_leaks(notebooks):
    _, learners = notebooks
    text = '\n'.join(cell.source for cell in learners.cells if not cell.source.startswith(WHOLE_CELL_FIXED))
    for leak in ('SOLUTION', 'LEAK', 'INIT', 'SMOOTH', 'R1_WEIGHT', 'G_RATE_FACTOR', 'AVERAGE_DECAY', 'BN_MOMENTUM',
                 'conv2d', 'batch_normalization', 'leaky_relu', 'AdamOptimizer', 'sigmoid_cross_entropy',
                 'ExponentialMovingAverage', 'control_dependencies', 'UPDATE_OPS', 'batch_images * 2', '0.0005',
                 '0.001', 'DECAY_FROM', 'decayed', 'label smoothing', 'gradient penalty', 'experiments.md'):
        assert leak not in text, leak


@pytest.mark.parametrize('dataset', ['mnist', 'celeba'])
def test_the_hyperparameters_are_none_above_the_line_and_epochs_below(notebooks, dataset):
    _, learners = notebooks
    cell = next(c for c in learners.cells if f"helper.Dataset('{dataset}'" in c.source)
    above, below = cell.source.split(loader.CHECK_MARKER)
    assert above.split() == ['batch_size', '=', 'None', 'z_dim', '=', 'None', 'learning_rate', '=', 'None', 'beta1',
                             '=', 'None']
    assert below.split('\n')[2].startswith('epochs = ')


def git(folder, *args):
    subprocess.run(['git', *args], cwd=folder, check=True, capture_output=True)


def test_regenerating_never_overwrites_a_learners_work(tmp_path, monkeypatch, capsys):
    folder = tmp_path / 'exercise'
    folder.mkdir()
    target = folder / 'dlnd_face_generation.ipynb'
    monkeypatch.setattr(exercise, 'EXERCISE', str(target))
    git(tmp_path, 'init', '-q')
    target.write_text('a learner\'s work, never added')
    assert exercise.main([]) == 1
    assert 'has changes git does not have' in capsys.readouterr().err
    assert target.read_text() == 'a learner\'s work, never added'

    git(tmp_path, 'add', '.')
    git(tmp_path, '-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-q', '-m', 'x')
    assert exercise.main([]) == 0, 'committed: git has it, so it may be written again'
    assert target.read_text() == exercise.written_exercise()
    target.write_text(target.read_text().replace('TODO: Implement Function', 'my own code', 1))
    assert exercise.main([]) == 1 and 'my own code' in target.read_text()


def test_the_cells_after_train_say_what_a_learners_train_left_out(tmp_path, capsys):
    assert results.saved_samples(str(tmp_path)) is None
    assert results.last_checkpoint(str(tmp_path)) is None
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f'No samples in {tmp_path}: train keeps 1,000 generated images there with '
                               f'run.save_samples(images)')
    assert lines[1].startswith(f'No checkpoint in {tmp_path / "checkpoints"}')


def test_a_learner_running_the_exercise_stops_at_the_first_check(tmp_path, monkeypatch):
    """Run All on the exercise as handed out: the data cells run, then model_inputs' check says what to write."""
    monkeypatch.setenv(facegen.data.DATA_SOURCE_ENV, 'sample')
    with pytest.raises(papermill.PapermillExecutionError) as failure:
        papermill.execute_notebook(exercise.EXERCISE, str(tmp_path / 'run.ipynb'), kernel_name='python3',
                                   cwd=os.path.dirname(exercise.EXERCISE), progress_bar=False,
                                   parameters={'data_dir': str(tmp_path / 'data'), 'max_images': 64,
                                               'output_dir': str(tmp_path / 'output'), 'progress': 'text'})
    assert failure.value.ename == 'NotImplementedYet'
    assert failure.value.evalue.startswith('model_inputs is not implemented yet: it returns (None, None, None). '
                                           'Write its body in place of `# TODO: Implement Function`')
    # What Jupyter shows above the message: the learner's cell, and of the checks only the frame that raises (IPython
    # shows the last frame whatever it holds): not the thirty lines of the checks' own frames
    shown = re.sub(r'\x1b\[[0-9;]*m', '', '\n'.join(failure.value.traceback))  # less the terminal colours
    frames = re.findall(r'^(?:Cell In\[\d+\]|File .+?):\d+|^Cell In\[\d+\], line \d+', shown, re.MULTILINE)
    assert len(frames) == 2 and 'problem_unittests' in frames[1] and len(shown.splitlines()) < 20, shown

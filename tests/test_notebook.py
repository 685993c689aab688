"""The whole notebook, executed headless on tiny data: the same code path as `make run`, a few steps long."""
import contextlib
import io
import os

import nbformat
import pytest

import facegen.data
from facegen.notebooks import SOLUTION, headless, loader

N_CHECKS = 6  # model_inputs, discriminator, generator, model_loss, model_opt, train


@pytest.fixture(scope='module')
def executed(tmp_path_factory):
    """Run the notebook once on the offline sample, 64 images and 2 training steps per dataset."""
    tmp = tmp_path_factory.mktemp('notebook')
    os.environ[facegen.data.DATA_SOURCE_ENV] = 'sample'  # the kernel inherits it: no network, whatever is reachable
    console = io.StringIO()
    try:
        with contextlib.redirect_stdout(console):
            status = headless.main(['--notebook', SOLUTION, '--data-dir', str(tmp / 'data'),
                                    '--output-dir', str(tmp / 'output'), '--max-images', '64', '--max-steps', '2',
                                    '--timeout', '600'])
    finally:
        del os.environ[facegen.data.DATA_SOURCE_ENV]
    nb = nbformat.read(tmp / 'output' / 'dlnd_face_generation.ipynb', as_version=4)
    return status, nb, tmp / 'output', console.getvalue()


def outputs(nb, kind):
    return [out for cell in nb.cells if cell.cell_type == 'code' for out in cell.outputs if out.output_type == kind]


def stream_text(cell):
    return ''.join(out.get('text', '') for out in cell.get('outputs', []) if out.output_type == 'stream')


def test_every_cell_runs_without_error(executed):
    status, nb, _, _ = executed
    errors = [f"{out.ename}: {out.evalue}" for out in outputs(nb, 'error')]
    assert status == 0 and errors == []
    assert all(cell.get('execution_count') for cell in nb.cells if cell.cell_type == 'code')


def test_every_check_passes(executed):
    _, nb, _, _ = executed
    text = ''.join(stream_text(cell) for cell in nb.cells)
    assert text.count('Tests Passed') == N_CHECKS


def test_grids_are_displayed_for_both_datasets(executed):
    _, nb, output, _ = executed
    grids = {name: sum('image/png' in out.get('data', {}) for out in cell.outputs)
             for cell in nb.cells for name in ('mnist', 'celeba') if f"helper.Dataset('{name}'" in cell.source}
    assert grids == {'mnist': 2, 'celeba': 2}, 'a final grid and a loss plot per training (no grid in between)'
    assert len(os.listdir(output / 'figures')) == len([o for o in outputs(nb, 'display_data')
                                                        if 'image/png' in o.data])


def test_offline_sample_is_announced(executed):
    _, nb, _, _ = executed
    text = ''.join(stream_text(cell) for cell in nb.cells)
    assert 'offline, using a sample of 5,000 real MNIST digits' in text
    assert 'offline, using a sample of 100 real faces' in text


def test_each_data_progress_bar_writes_one_line_in_the_executed_notebook(executed):
    """Every write of a bar is a line of its own in an executed notebook and its HTML: headless, the final one only."""
    _, nb, _, _ = executed
    lines = [line for cell in nb.cells for line in stream_text(cell).replace('\r', '\n').splitlines()]
    for bar in ('Writing the mnist sample', 'Writing the celeba sample', 'Caching preprocessed images'):
        shown = [line for line in lines if line.startswith(bar)]
        assert shown and all('100%' in line for line in shown), (bar, shown)
    assert len([line for line in lines if line.startswith('Caching preprocessed images')]) == 2, 'one per dataset'


def test_html_copy_is_written(executed):
    _, _, output, _ = executed
    html = (output / 'dlnd_face_generation.html').read_text()
    assert html.count('Tests Passed') == N_CHECKS and '<img' in html


def test_committed_notebook_has_no_outputs():
    nb = nbformat.read(SOLUTION, as_version=4)
    assert [cell.outputs for cell in nb.cells if cell.cell_type == 'code' and cell.outputs] == []


@pytest.mark.parametrize('run', ['mnist', 'celeba'])
def test_each_training_keeps_its_run(executed, run):
    _, _, output, _ = executed
    [folder] = (output / run).iterdir()  # the one run of each training cell
    assert folder.name.startswith('run-') and any(f.name.startswith('events.out.tfevents') for f in folder.iterdir())
    for name in ('losses.csv', 'losses.png', 'progress.gif', 'samples.npy', 'samples.png', 'fixed_z.npy'):
        assert (folder / name).is_file(), name
    assert len((folder / 'losses.csv').read_text().splitlines()) == 1 + 2  # header, 2 steps
    assert any(name.endswith('.index') for name in os.listdir(folder / 'checkpoints'))


def test_digit_score_is_printed(executed):
    _, nb, _, _ = executed
    text = ''.join(stream_text(cell) for cell in nb.cells)
    assert 'Digits classified with probability >= 0.9:' in text and 'Frechet distance to real digits' in text


def test_cell_output_streams_to_the_console(executed):
    _, _, _, console = executed
    assert console.count('Tests Passed') == N_CHECKS
    assert 'offline, using a sample of 5,000 real MNIST digits' in console
    assert '[ 1/' in console and 'Ran the notebook in' in console


def test_the_headless_run_shows_text_progress_and_nothing_on_stderr_while_training(executed):
    _, nb, _, _ = executed
    injected = next(cell.source for cell in nb.cells if 'injected-parameters' in cell.metadata.get('tags', []))
    assert "progress = \"text\"" in injected or "progress = 'text'" in injected
    training = [cell for cell in nb.cells if cell.cell_type == 'code' and 'train(epochs' in cell.source]
    assert len(training) == 2
    assert [out for cell in training for out in cell.outputs if out.get('name') == 'stderr'] == []
    assert not any('application/vnd.jupyter.widget-view+json' in out.get('data', {})
                   for cell in training for out in cell.outputs)


def test_every_notebook_parameter_is_an_option():
    parameters = headless.notebook_parameters(SOLUTION)
    assert {'data_dir', 'output_dir', 'max_images', 'max_steps', 'seed', 'resume', 'bfloat16',
            'progress'} <= set(parameters)
    assert headless.parse_arguments(['--notebook', SOLUTION])['parameters'] == {}, \
        'options not given keep the notebook defaults'

    given = headless.parse_arguments(['--max-steps', '3', '--seed', '1', '--bfloat16', '--resume', '--notebook',
                                      SOLUTION, '--max-images', 'None', '--progress', 'widget', '--data-dir', 'd'])

    assert given['parameters'] == {'max_steps': 3, 'seed': 1, 'bfloat16': True, 'resume': True, 'max_images': None,
                                   'progress': 'widget', 'data_dir': os.path.abspath('d')}
    assert given['notebook'] == SOLUTION
    assert headless.parse_arguments(['--notebook', SOLUTION, '--no-resume'])['parameters'] == {'resume': False}


def test_an_unknown_option_is_refused(capsys):
    for wrong in ('--epochs', '--max-step'):  # not a parameter; a parameter misspelt (no abbreviations)
        with pytest.raises(SystemExit):
            headless.parse_arguments(['--notebook', SOLUTION, wrong, '3'])
        assert f'unrecognized arguments: {wrong} 3' in capsys.readouterr().err
    with pytest.raises(ValueError, match=r'Unknown notebook parameter\(s\) epochs: the cell tagged `parameters`.*sets '
                                         r'data_dir, output_dir'):
        headless.run(SOLUTION, {'epochs': 1})


def test_a_missing_notebook_says_where_it_was_looked_for(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit, match=f'No notebook {tmp_path / "dlnd_face_generation.ipynb"}: run this in the '
                                         f'folder of dlnd_face_generation.ipynb, or name it with --notebook PATH'):
        headless.parse_arguments(['--max-steps', '2'])


def test_each_training_cell_sets_its_own_gradient_penalty():
    """model_loss reads R1_WEIGHT when train builds the graph: a training cell that left it to the cell run before
    would train the digits without the penalty after the faces, or the faces with it."""
    weights = loader.training_cell_setting('R1_WEIGHT')
    assert None not in weights, 'every training cell sets R1_WEIGHT before it trains'
    assert weights == [1.0, 0.0], 'digits with the penalty, faces without'

"""The whole notebook, executed headless on tiny data: the same code path as `make run`, a few steps long."""
import os

import nbformat
import pytest

import helper
import run_notebook

N_CHECKS = 6  # model_inputs, discriminator, generator, model_loss, model_opt, train


@pytest.fixture(scope='module')
def executed(tmp_path_factory):
    """Run the notebook once on the offline sample, 64 images and 2 training steps per dataset."""
    tmp = tmp_path_factory.mktemp('notebook')
    os.environ[helper.DATA_SOURCE_ENV] = 'sample'  # the kernel inherits it: no network, whatever is reachable
    try:
        status = run_notebook.main(['--data-dir', str(tmp / 'data'), '--output', str(tmp / 'output'),
                                    '--max-images', '64', '--max-steps', '2', '--timeout', '600'])
    finally:
        del os.environ[helper.DATA_SOURCE_ENV]
    nb = nbformat.read(tmp / 'output' / 'dlnd_face_generation.ipynb', as_version=4)
    return status, nb, tmp / 'output'


def outputs(nb, kind):
    return [out for cell in nb.cells if cell.cell_type == 'code' for out in cell.outputs if out.output_type == kind]


def stream_text(cell):
    return ''.join(out.get('text', '') for out in cell.get('outputs', []) if out.output_type == 'stream')


def test_every_cell_runs_without_error(executed):
    status, nb, _ = executed
    errors = [f"{out.ename}: {out.evalue}" for out in outputs(nb, 'error')]
    assert status == 0 and errors == []
    assert all(cell.get('execution_count') for cell in nb.cells if cell.cell_type == 'code')


def test_every_check_passes(executed):
    _, nb, _ = executed
    text = ''.join(stream_text(cell) for cell in nb.cells)
    assert text.count('Tests Passed') == N_CHECKS


def test_grids_are_displayed_for_both_datasets(executed):
    _, nb, output = executed
    grids = {name: sum('image/png' in out.get('data', {}) for out in cell.outputs)
             for cell in nb.cells for name in ('mnist', 'celeba') if f"helper.Dataset('{name}'" in cell.source}
    assert grids == {'mnist': 2, 'celeba': 2}, 'a final grid and a loss plot per training (no grid in between)'
    assert len(os.listdir(output / 'figures')) == len([o for o in outputs(nb, 'display_data')
                                                        if 'image/png' in o.data])


def test_offline_sample_is_announced(executed):
    _, nb, _ = executed
    text = ''.join(stream_text(cell) for cell in nb.cells)
    assert 'offline, using a sample of 5,000 real MNIST digits' in text
    assert 'offline, using a sample of 100 real faces' in text


def test_html_copy_is_written(executed):
    _, _, output = executed
    html = (output / 'dlnd_face_generation.html').read_text()
    assert html.count('Tests Passed') == N_CHECKS and '<img' in html


def test_committed_notebook_has_no_outputs():
    nb = nbformat.read(run_notebook.NOTEBOOK, as_version=4)
    assert [cell.outputs for cell in nb.cells if cell.cell_type == 'code' and cell.outputs] == []


@pytest.mark.parametrize('run', ['mnist', 'celeba'])
def test_each_training_keeps_its_run(executed, run):
    _, _, output = executed
    folder = output / run
    for name in ('losses.csv', 'losses.png', 'progress.gif', 'samples.npy', 'samples.png', 'fixed_z.npy'):
        assert (folder / name).is_file(), name
    assert len((folder / 'losses.csv').read_text().splitlines()) == 1 + 2  # header, 2 steps
    assert any(name.endswith('.index') for name in os.listdir(folder / 'checkpoints'))


def test_digit_score_is_printed(executed):
    _, nb, _ = executed
    text = ''.join(stream_text(cell) for cell in nb.cells)
    assert 'Digits classified with probability >= 0.9:' in text and 'Frechet distance to real digits' in text


def test_command_line_options_become_notebook_parameters(monkeypatch, tmp_path):
    injected = []
    monkeypatch.setattr(run_notebook, 'run', lambda output, parameters, timeout: injected.append(parameters) or True)

    run_notebook.main(['--output', str(tmp_path), '--max-steps', '3', '--seed', '1', '--bfloat16', '--resume'])
    run_notebook.main(['--output', str(tmp_path)])

    assert injected[0]['max_steps'] == 3 and injected[0]['seed'] == 1 and injected[0]['bfloat16'] is True
    assert injected[0]['resume'] is True
    assert set(injected[1]) == {'data_dir', 'output_dir'}, 'options not given keep the notebook defaults'
    nb = nbformat.read(run_notebook.NOTEBOOK, as_version=4)
    defaults = next(cell.source for cell in nb.cells if 'parameters' in cell.metadata.get('tags', []))
    assert all(f'\n{name} = ' in '\n' + defaults for name in injected[0]), 'each option overrides a parameter'

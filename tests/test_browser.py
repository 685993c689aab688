"""The notebook in a real browser, as a learner meets it: the `make notebook` server (Jupyter Notebook 7) and headless
Chromium run every cell of a copy with tiny parameters, injected the way `make run` injects them (papermill), on
the offline sample; the page then shows every check passed, the grids as images, the progress bars as widgets,
and no error."""
import contextlib
import json
import os
import re
import shutil
import time

import papermill
import pytest
from papermill.parameterize import parameterize_notebook

from conftest import ROOT
from facegen.course import exercise
from facegen.notebooks import SOLUTION as NOTEBOOK
from test_jupyter import MAKE, free_port, learners_environment, serving, wait_for_json
from test_notebook import N_CHECKS

CHROMIUM = shutil.which('chromium')
RUN_ALL_TIMEOUT_S = 600
TOKEN = 'browser-test'
# What each code cell of the page shows: its prompt, and per output its renderer, text and images' widths.
READ_CELLS = """() => Array.from(document.querySelectorAll('.jp-CodeCell')).map(cell => ({
    prompt: (cell.querySelector('.jp-InputArea-prompt') || {}).innerText || '',
    source: (cell.querySelector('.jp-InputArea-editor') || {}).innerText || '',
    progress_widgets: cell.querySelectorAll('.jp-OutputArea-output .widget-hprogress').length,
    outputs: Array.from(cell.querySelectorAll('.jp-OutputArea-output[data-mime-type]')).map(out => ({
        mime: out.getAttribute('data-mime-type'), text: out.innerText,
        image_widths: Array.from(out.querySelectorAll('img')).map(img => img.naturalWidth)}))}))"""


def chromium():
    """The system's Chromium (Debian's chromium package); CI installs it, so there its absence is a failure."""
    if CHROMIUM is None:
        message = "no chromium: install Debian's chromium package (apt-get install -y chromium), as .ci/run does"
        if os.environ.get('CI'):
            pytest.fail(message)
        pytest.skip(message)
    return CHROMIUM


def tiny_copy(folder, notebook=NOTEBOOK):
    """A notebook with tiny parameters injected after its `parameters` cell, as papermill does for `make run`."""
    nb = parameterize_notebook(papermill.iorw.load_notebook_node(notebook),
                               {'data_dir': str(folder / 'data'), 'output_dir': str(folder / 'output'),
                                'max_images': 64, 'max_steps': 2})
    path = folder / os.path.basename(notebook)
    papermill.iorw.write_ipynb(nb, str(path))
    return path


def jupyter_environment(folder):
    """A learner's environment for the server, every cell on the page (windowing off), the offline sample."""
    settings = folder / 'settings' / '@jupyterlab' / 'notebook-extension'
    settings.mkdir(parents=True)
    # Notebook 7 renders only the cells on screen by default; the test reads them all.
    (settings / 'tracker.jupyterlab-settings').write_text(json.dumps({'windowingMode': 'none'}))
    return {**learners_environment(folder), 'PYTHONPATH': ROOT, 'FACEGEN_DATA': 'sample',
            'JUPYTERLAB_SETTINGS_DIR': str(folder / 'settings')}


@contextlib.contextmanager
def chromium_page(url):
    """A page of headless Chromium (the system's, driven by Playwright) opened at url."""
    from playwright.sync_api import sync_playwright
    executable = chromium()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=['--no-sandbox'])
        page = browser.new_page(viewport={'width': 1400, 'height': 1000})
        page.goto(url)
        try:
            yield page
        finally:
            browser.close()


def run_all_cells(page):
    """Run > Run All Cells, then wait until no cell is queued or running; return the cells as READ_CELLS reads them."""
    deadline, cells = time.time() + RUN_ALL_TIMEOUT_S, []
    while time.time() < deadline:
        if not any(cell['prompt'].strip('[]: ') for cell in cells):  # nothing started: the kernel was not ready
            page.click('.lm-MenuBar-itemLabel:text-is("Run")')
            page.click('.lm-Menu-itemLabel:text-is("Run All Cells")')
            time.sleep(10)
        cells = page.evaluate(READ_CELLS)
        started = any(cell['prompt'].strip('[]: ') for cell in cells)
        if started and not any('*' in cell['prompt'] for cell in cells):
            return cells
        time.sleep(2)
    raise AssertionError(f'cells not run within {RUN_ALL_TIMEOUT_S} s: {[cell["prompt"] for cell in cells]}')


def cells_after_run_all(folder, notebook):
    """Run All on a tiny copy of notebook, served by `make notebook` and opened in Chromium: the cells as shown."""
    chromium()
    notebook, port = tiny_copy(folder, notebook), free_port()
    with serving(MAKE + ['notebook', f'NOTEBOOK={notebook}', f'NOTEBOOK_ARGS=--port={port} '
                         f'--IdentityProvider.token={TOKEN}'], ROOT, jupyter_environment(folder)):
        wait_for_json(f'http://127.0.0.1:{port}/api?token={TOKEN}')
        with chromium_page(f'http://127.0.0.1:{port}/notebooks/{notebook.name}?token={TOKEN}') as page:
            page.wait_for_selector('.jp-Notebook .jp-CodeCell', timeout=60_000)
            page.wait_for_selector('.jp-Notebook-ExecutionIndicator[data-status="idle"]', timeout=120_000)
            return run_all_cells(page)


@pytest.fixture(scope='module')
def page_cells(tmp_path_factory):
    return cells_after_run_all(tmp_path_factory.mktemp('browser'), NOTEBOOK)


def test_the_exercises_first_check_shows_its_message_not_the_checks_frames(tmp_path):
    """The exercise as handed out, Run All in the browser: the page stops at model_inputs' check, whose error shows
    the learner's cell and the message, not the thirty lines of the checks' own frames."""
    cells = cells_after_run_all(tmp_path, exercise.EXERCISE)
    errors = [out['text'] for cell in cells for out in cell['outputs'] if out['mime'] == 'application/vnd.jupyter.stderr'
              and 'NotImplementedYet' in out['text']]
    assert len(errors) == 1, [out['text'][:300] for cell in cells for out in cell['outputs']]
    shown = errors[0]
    assert 'model_inputs is not implemented yet: it returns (None, None, None)' in shown
    frames = re.findall(r'^(?:Cell In\[\d+\]|File .+?):\d+', shown, re.MULTILINE)
    assert len(frames) <= 2 and len(shown.splitlines()) < 25, shown
    assert 'site-packages' not in shown and 'functools' not in shown, shown


def test_every_cell_ran(page_cells):
    assert [cell['prompt'] for cell in page_cells if not cell['prompt'].strip('[]: ').isdigit()] == []


def test_every_check_shows_tests_passed(page_cells):
    shown = ''.join(out['text'] for cell in page_cells for out in cell['outputs'])
    assert shown.count('Tests Passed') == N_CHECKS


def test_no_cell_shows_an_error_or_red_text_beyond_the_gpu_warning(page_cells):
    red = [line for cell in page_cells for out in cell['outputs'] if out['mime'] == 'application/vnd.jupyter.stderr'
           for line in out['text'].splitlines() if line.strip() and 'No GPU found' not in line]
    assert red == [], 'errors, TensorFlow C++ lines or progress bars on stderr'


def test_grids_render_as_images(page_cells):
    widths = [width for cell in page_cells for out in cell['outputs'] if out['mime'] == 'image/png'
              for width in out['image_widths']]
    # MNIST and CelebA explored, each training's final grid and loss plot, a grid from the last checkpoint
    assert len(widths) >= 7 and all(width > 0 for width in widths), widths


def test_each_training_shows_a_widget_progress_bar(page_cells):
    training = [cell for cell in page_cells if 'train(epochs' in cell['source']]
    assert [cell['progress_widgets'] for cell in training] == [1, 1]


def test_tensorboard_shows_a_runs_loss_chart_and_its_grids(nb, tmp_path):
    """make tensorboard on the runs of two trainings, opened in Chromium: the runs, the losses' charts and the grids."""
    from test_training import fake_batches, run_train
    chromium()
    for training in ('mnist', 'celeba'):
        run_train(nb, tmp_path / 'output' / training, fake_batches(4), n_batches=4)
    port = free_port()
    with serving(MAKE + ['tensorboard', f'OUTPUT={tmp_path / "output"}', f'TENSORBOARD_ARGS=--port={port}'], ROOT,
                 learners_environment(tmp_path)):
        runs = wait_for_json(f'http://127.0.0.1:{port}/data/runs')
        assert sorted(run.split('/')[0] for run in runs) == ['celeba', 'mnist']
        with chromium_page(f'http://127.0.0.1:{port}/#timeseries') as page:
            page.wait_for_selector('text=loss/discriminator', timeout=60_000)
            page.wait_for_selector('text=loss/generator', timeout=60_000)
            page.wait_for_function("() => Array.from(document.querySelectorAll('img')).some(img => img.naturalWidth > 0 "
                                   "&& img.src.includes('imageData'))",  # a grid, drawn from its event file
                                   timeout=60_000)

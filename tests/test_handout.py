"""The hand-out: unpacked in a new folder, offline, its two commands work; nothing of the solution is in it."""
import os
import re
import shutil
import subprocess
import sys
import zipfile

import nbformat
import pytest

import helper
from conftest import filled_in_exercise
from course import exercise, handout
from test_jupyter import free_port, learners_environment, serving, wait_for_json

# The project's venv stands in for the learner's (CI has no time for a second install); -o: its requirements.txt,
# unpacked after the venv was made, would otherwise make it install again.
MAKE = ['make', '--no-print-directory', '-o', 'requirements.txt',
        f'VENV={os.path.dirname(os.path.dirname(sys.executable))}']
SMALL_RUN = 'RUN_ARGS=--max-images 64 --max-steps 2 --timeout 600'


@pytest.fixture(scope='module')
def zip_path(tmp_path_factory):
    return handout.build(str(tmp_path_factory.mktemp('dist')))


@pytest.fixture
def unpacked(zip_path, tmp_path):
    """The zip unpacked in a new folder, as a learner does."""
    shutil.unpack_archive(zip_path, tmp_path / 'learner')
    return tmp_path / 'learner' / handout.NAME


def test_the_zip_holds_the_exercise_and_what_it_needs_and_nothing_of_the_solution(zip_path):
    with zipfile.ZipFile(zip_path) as archive:
        names = sorted(name.split('/', 1)[1] for name in archive.namelist() if not name.endswith('/'))
        notebook = archive.read(f'{handout.NAME}/dlnd_face_generation.ipynb').decode()
        texts = [archive.read(f'{handout.NAME}/{name}').decode() for name in names]
    package = sorted(f'facegen_data/{name}' for name in os.listdir(os.path.join(exercise.ROOT, 'facegen_data'))
                     if name.endswith('.py'))
    assert names == ['Makefile', 'README.md', 'checkpoints.py', 'data/README.md', 'dlnd_face_generation.ipynb'] + \
        package + ['helper.py', 'mnist_score.py', 'notebook_loader.py', 'problem_unittests.py', 'requirements.txt',
                   'run_events.py', 'run_folders.py', 'run_notebook.py', 'session_settings.py', 'tf_environment.py',
                   'training_run.py']
    made = exercise.exercise_notebook(nbformat.read(exercise.SOLUTION, as_version=4), data_dir='./data')
    assert nbformat.reads(notebook, as_version=4) == made
    assert not any('BEGIN SOLUTION' in text for text in texts)
    readme = texts[names.index('README.md')]
    assert re.search(r'```\nmake notebook .*\nmake run .*\n```', readme), 'the README starts with its two commands'


def test_make_run_of_the_exercise_as_handed_out_stops_at_the_first_check_and_writes_the_hand_in(unpacked):
    environment = {**os.environ, helper.DATA_SOURCE_ENV: 'sample'}
    done = subprocess.run(MAKE + ['run', SMALL_RUN], cwd=unpacked, env=environment, capture_output=True, text=True,
                          timeout=900)
    assert done.returncode != 0
    assert 'model_inputs is not implemented yet' in done.stdout + done.stderr
    assert (unpacked / 'output' / 'dlnd_face_generation.html').is_file()
    assert (unpacked / 'data' / 'mnist').is_dir(), 'its own data folder'


def test_make_run_of_the_exercise_filled_in_passes_every_check(unpacked):
    path = unpacked / 'dlnd_face_generation.ipynb'
    nbformat.write(filled_in_exercise(nbformat.read(path, as_version=4)), str(path))
    environment = {**os.environ, helper.DATA_SOURCE_ENV: 'sample'}
    done = subprocess.run(MAKE + ['run', SMALL_RUN], cwd=unpacked, env=environment, capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert done.stdout.count('Tests Passed') == 6
    for name in ('dlnd_face_generation.ipynb', 'dlnd_face_generation.html', 'mnist/run-*/samples.npy',
                 'celeba/run-*/samples.npy'):
        assert len(list((unpacked / 'output').glob(name))) == 1, name


def test_make_notebook_serves_the_exercise(unpacked, tmp_path):
    port, token = free_port(), 'test-token'
    with serving(MAKE + ['notebook', f'NOTEBOOK_ARGS=--port={port} --IdentityProvider.token={token}'], unpacked,
                 learners_environment(tmp_path)):
        contents = wait_for_json(f'http://127.0.0.1:{port}/api/contents/dlnd_face_generation.ipynb?token={token}')
    assert contents['type'] == 'notebook'
    assert any('# TODO: Implement Function' in ''.join(cell['source']) for cell in contents['content']['cells'])

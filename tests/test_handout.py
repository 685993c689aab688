"""The hand-out: unpacked in a new folder, offline, its two commands work; nothing of the solution is in it, the
wheel included (tests/test_installs.py installs that wheel into a fresh environment)."""
import io
import os
import re
import shutil
import subprocess
import sys
import zipfile

import nbformat
import pytest

import facegen.data
from conftest import filled_in_exercise
from facegen.course import exercise, handout
from facegen.notebooks import SOLUTION
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


def solution_lines():
    """The lines the solution marks as what a learner writes (the substantial ones)."""
    lines, inside = [], False
    for cell in nbformat.read(SOLUTION, as_version=4).cells:
        for line in cell.source.splitlines():
            inside = (inside or '### BEGIN SOLUTION' in line) and '### END SOLUTION' not in line
            if inside and len(line.strip()) > 30 and 'BEGIN SOLUTION' not in line:
                lines.append(line.strip())
    return lines


def test_the_zip_holds_the_exercise_and_what_it_needs_and_nothing_of_the_solution(zip_path):
    with zipfile.ZipFile(zip_path) as archive:
        names = sorted(name.split('/', 1)[1] for name in archive.namelist() if not name.endswith('/'))
        notebook = archive.read(f'{handout.NAME}/dlnd_face_generation.ipynb').decode()
        texts = {name: archive.read(f'{handout.NAME}/{name}') for name in names}
    [wheel] = [name for name in names if name.endswith('.whl')]
    assert names == ['Makefile', 'README.md', 'data/README.md', 'dlnd_face_generation.ipynb', wheel,
                     'requirements.txt']
    with zipfile.ZipFile(io.BytesIO(texts[wheel])) as package:
        shipped = {name: package.read(name).decode('utf-8', 'replace') for name in package.namelist()}
    assert {'helper.py', 'problem_unittests.py', 'facegen/__init__.py', 'facegen/data/install.py',
            'facegen/runs/training.py', 'facegen/course/handout_files/Makefile'} <= set(shipped)
    assert not any(name.endswith('.ipynb') for name in shipped)
    made = exercise.exercise_notebook(nbformat.read(SOLUTION, as_version=4), data_dir='./data')
    assert nbformat.reads(notebook, as_version=4) == made
    everything = '\n'.join([*shipped.values(), *(texts[name].decode() for name in names if name != wheel)])
    hints = shipped['problem_unittests.py']  # what the checks tell a learner to write (a scope, its reuse)
    leaks = [line for line in solution_lines() if line in everything and line not in hints]
    assert len(solution_lines()) > 40 and leaks == []
    readme = texts['README.md'].decode()
    assert re.search(r'```\nmake notebook .*\nmake run .*\n```', readme), 'the README starts with its two commands'


def test_make_run_of_the_exercise_as_handed_out_stops_at_the_first_check_and_writes_the_hand_in(unpacked):
    environment = {**os.environ, facegen.data.DATA_SOURCE_ENV: 'sample'}
    done = subprocess.run(MAKE + ['run', SMALL_RUN], cwd=unpacked, env=environment, capture_output=True, text=True,
                          timeout=900)
    assert done.returncode != 0
    assert 'model_inputs is not implemented yet' in done.stdout + done.stderr
    assert (unpacked / 'output' / 'dlnd_face_generation.html').is_file()
    assert (unpacked / 'data' / 'mnist').is_dir(), 'its own data folder'


def test_make_run_of_the_exercise_filled_in_passes_every_check(unpacked):
    path = unpacked / 'dlnd_face_generation.ipynb'
    nbformat.write(filled_in_exercise(nbformat.read(path, as_version=4)), str(path))
    environment = {**os.environ, facegen.data.DATA_SOURCE_ENV: 'sample'}
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

"""The package at the other end of its ranges: Colab's stack (Python 3.12, tensorflow 2.20.0, tf_keras 2.20.1,
keras 3.13.2), in a fresh virtual environment, as a learner meets it there.

Nothing of the project is installed in it beforehand: the exercise of the hand-out, opened beside the hand-out's
wheel, installs the package from its first cell (keeping Colab's TensorFlow) and stops at its first check; then
the solution runs headless from a folder that holds only the notebook, every check passing. The lock's end is the
rest of the suite. Where no Python 3.12 is found, these tests are skipped and say so.
"""
import glob
import os
import shutil
import subprocess

import pytest

from facegen.course import handout
from facegen.data.install import DATA_SOURCE_ENV
from facegen.notebooks import SOLUTION

COLAB = {'tensorflow': '2.20.0', 'tf_keras': '2.20.1', 'keras': '3.13.2'}
# What Colab's Jupyter brings besides (the kernel), and what drives the notebook here as it would there.
DRIVER = ('ipykernel', 'papermill')
SMALL = {'max_images': 64, 'max_steps': 2}


def python312():
    """A Python 3.12: FACEGEN_PYTHON312, else python3.12 on the PATH, else pyenv's; None where there is none."""
    candidates = [os.environ.get('FACEGEN_PYTHON312'), shutil.which('python3.12'),
                  *sorted(glob.glob(os.path.expanduser('~/.pyenv/versions/3.12*/bin/python3.12')), reverse=True)]
    for candidate in filter(None, candidates):
        done = subprocess.run([candidate, '-c', 'import sys, venv; print(sys.version_info[:2] == (3, 12))'],
                              capture_output=True, text=True)
        if done.stdout.strip() == 'True':
            return candidate
    return None


def run(command, **options):
    done = subprocess.run(command, capture_output=True, text=True, **options)
    assert done.returncode == 0, f'{command}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}'
    return done


def installed_version(python, name):
    """The version of a distribution installed for python, or None."""
    done = subprocess.run([python, '-c', f'import importlib.metadata as m; print(m.version({name!r}))'],
                          capture_output=True, text=True)
    return done.stdout.strip() if done.returncode == 0 else None


def versions(python, *names):
    code = ('import importlib.metadata as m, sys\n'
            'print(" ".join(m.version(name) for name in sys.argv[1:]))')
    return run([python, '-c', code, *names]).stdout.split()


@pytest.fixture(scope='module')
def colab(tmp_path_factory):
    """A fresh environment with Colab's stack and nothing of the project: its Python."""
    interpreter = python312()
    if interpreter is None:
        pytest.skip('No Python 3.12 here (FACEGEN_PYTHON312, python3.12 on the PATH, or pyenv): Colab\'s stack is '
                    'not tested on this machine')
    folder = tmp_path_factory.mktemp('colab') / 'venv'
    run([interpreter, '-m', 'venv', str(folder)])
    python = str(folder / 'bin' / 'python')
    run([python, '-m', 'pip', 'install', '--quiet', '--disable-pip-version-check',
         *(f'{name}=={version}' for name, version in COLAB.items()), *DRIVER], timeout=1800)
    return python


@pytest.fixture(scope='module')
def handed_out(tmp_path_factory):
    """The hand-out, unpacked as a learner does."""
    archive = handout.build(str(tmp_path_factory.mktemp('dist')))
    learner = tmp_path_factory.mktemp('learner')
    shutil.unpack_archive(archive, learner)
    return str(learner / handout.NAME)


def learner_environment():
    """Offline data, and nothing of this checkout on the path."""
    return {**{k: v for k, v in os.environ.items() if k not in ('PYTHONPATH', 'VIRTUAL_ENV')},
            DATA_SOURCE_ENV: 'sample'}


def papermill(python, notebook, folder, parameters):
    command = [python, '-m', 'papermill', '--cwd', folder, '-k', 'python3', '--no-progress-bar', '--log-output',
               notebook, os.path.join(folder, 'executed.ipynb')]
    for name, value in parameters.items():
        command += ['-p', name, str(value)]
    return subprocess.run(command, capture_output=True, text=True, env=learner_environment(), timeout=1200)


def test_the_exercise_beside_the_wheel_installs_it_keeping_colabs_tensorflow(colab, handed_out, tmp_path):
    assert installed_version(colab, 'facegen') is None, 'nothing of the project installed beforehand'
    done = papermill(colab, os.path.join(handed_out, 'dlnd_face_generation.ipynb'), handed_out,
                     {**SMALL, 'data_dir': str(tmp_path / 'data'), 'output_dir': str(tmp_path / 'output')})
    output = done.stdout + done.stderr
    assert done.returncode != 0, 'the exercise stops at its first check'
    assert 'Installing the course package from ./facegen-' in output
    assert 'model_inputs is not implemented yet' in output
    assert versions(colab, *COLAB) == list(COLAB.values()), "Colab's TensorFlow, tf_keras and Keras are kept"
    assert installed_version(colab, 'facegen') is not None


def test_the_solution_runs_headless_from_a_folder_of_its_own(colab, handed_out, tmp_path):
    [wheel] = glob.glob(os.path.join(handed_out, 'facegen-*.whl'))
    # What `python -m facegen run` needs besides (papermill, nbconvert), with Colab's versions kept
    run([colab, '-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', f'{wheel}[course]',
         *(f'{name}=={version}' for name, version in COLAB.items())], timeout=1200)
    shutil.copy(SOLUTION, tmp_path)
    done = subprocess.run([colab, '-m', 'facegen', 'run', '--max-images', '64', '--max-steps', '2',
                           '--timeout', '900'], cwd=tmp_path, capture_output=True, text=True,
                          env=learner_environment(), timeout=1500)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert done.stdout.count('Tests Passed') == 6
    assert (tmp_path / 'output' / 'dlnd_face_generation.html').is_file()
    assert versions(colab, 'tensorflow') == [COLAB['tensorflow']]

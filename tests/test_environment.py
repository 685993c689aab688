"""TensorFlow's settings are chosen before TensorFlow is imported, at every entry point, and a user's own win."""
import json
import os
import platform
import subprocess
import sys

import nbformat
import pytest

from conftest import ROOT
from facegen.notebooks.loader import without_magics

SETTINGS = ('TF_USE_LEGACY_KERAS', 'TF_CPP_MIN_LOG_LEVEL', 'TF_ENABLE_ONEDNN_OPTS')
X86 = platform.machine().lower() in ('x86_64', 'amd64')


def settings_after(code, **preset):
    """The TensorFlow settings a fresh Python process has after running code, from an environment without them:
    as they were when TensorFlow was first imported, if code imports it."""
    env = {k: v for k, v in os.environ.items() if k not in SETTINGS}
    env.update(preset, PYTHONPATH=ROOT)
    script = (
        'import json, os, sys\n'
        'now = lambda: {k: os.environ.get(k) for k in %r}\n'
        'seen = []\n'
        'class Watch:\n'
        '    def find_spec(self, name, path, target=None):\n'
        '        if name == "tensorflow" and not seen:\n'
        '            seen.append(now())\n'
        'sys.meta_path.insert(0, Watch())\n'
        '%s\n'
        'print(json.dumps(seen[0] if seen else now()))\n' % (SETTINGS, code))
    out = subprocess.run([sys.executable, '-c', script], env=env, cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.splitlines()[-1])


@pytest.mark.parametrize('entry_point', ['facegen', 'helper', 'problem_unittests', 'facegen.scores.digits',
                                         'facegen.notebooks.headless', 'facegen.tf_settings', 'facegen.runs.training'])
def test_every_entry_point_turns_onednn_on_before_tensorflow(entry_point):
    settings = settings_after(f'import {entry_point}')
    assert settings['TF_USE_LEGACY_KERAS'] == '1'
    assert settings['TF_ENABLE_ONEDNN_OPTS'] == ('1' if X86 else None)


def test_a_value_the_user_set_wins():
    settings = settings_after('import facegen', TF_ENABLE_ONEDNN_OPTS='0', TF_CPP_MIN_LOG_LEVEL='0')
    assert settings['TF_ENABLE_ONEDNN_OPTS'] == '0' and settings['TF_CPP_MIN_LOG_LEVEL'] == '0'


def test_the_notebooks_first_cell_sets_the_same_defaults():
    nb = nbformat.read(os.path.join(ROOT, 'dlnd_face_generation.ipynb'), as_version=4)
    first = without_magics(next(cell.source for cell in nb.cells if cell.cell_type == 'code'))  # %pip: not run here
    assert settings_after(first) == settings_after('import facegen')
    user = settings_after(first, TF_ENABLE_ONEDNN_OPTS='0', TF_USE_LEGACY_KERAS='0')
    assert user['TF_ENABLE_ONEDNN_OPTS'] == '0' and user['TF_USE_LEGACY_KERAS'] == '0', 'a value the user set wins'


def first_cell_without_facegen(folder):
    """The notebook's first cell run in folder by a Python that reports facegen as not installed: its output."""
    nb = nbformat.read(os.path.join(ROOT, 'dlnd_face_generation.ipynb'), as_version=4)
    first = without_magics(next(cell.source for cell in nb.cells if cell.cell_type == 'code'))
    script = ('import importlib.metadata as metadata\n'
              'real = metadata.version\n'
              'def version(name):\n'
              '    if name == "facegen":\n'
              '        raise metadata.PackageNotFoundError(name)\n'
              '    return real(name)\n'
              'metadata.version = version\n' + first)
    return subprocess.run([sys.executable, '-c', script], cwd=folder, capture_output=True, text=True)


def test_the_first_cell_says_in_one_sentence_how_to_get_the_package_when_none_is_beside_it(tmp_path):
    done = first_cell_without_facegen(tmp_path)
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith('ModuleNotFoundError: This notebook needs the course package facegen: put the hand-out')
    assert last.count('. ') == 0 and last.endswith('yourself.'), 'one sentence'


@pytest.mark.parametrize('beside', ['facegen-1.0.0-py3-none-any.whl', 'checkout'])
def test_the_first_cell_installs_the_package_it_finds_beside_the_notebook(tmp_path, beside):
    folder = tmp_path / 'exercise'
    folder.mkdir()
    if beside == 'checkout':  # the exercise of a clone: the project's folder one up
        (tmp_path / 'pyproject.toml').write_text('')
        (tmp_path / 'facegen').mkdir()
        expected = str(tmp_path)
    else:
        (folder / beside).write_bytes(b'')
        expected = f'./{beside}'
    done = first_cell_without_facegen(folder)  # %pip is left out here: the cell then says pip could not install it
    assert f'Installing the course package from {expected}\n' in done.stdout
    assert f'pip could not install the course package from {expected}' in done.stderr

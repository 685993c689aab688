"""The layout a reader sees: the 2017 face at the top, the machinery in the facegen package, imports pointing down
only, no links, the exercise folder holding the exercise alone, every make target a Python command too."""
import ast
import os
import re
import subprocess
import sys
import tomllib

import pytest

import helper
from conftest import ROOT
from facegen import __main__ as cli

FACE = {'helper', 'problem_unittests'}
UPPER = ('facegen.notebooks', 'facegen.course', 'facegen.__main__')  # the notebook's tools: they use the face


def module_name(path):
    relative = os.path.relpath(path, ROOT)[:-len('.py')].replace(os.sep, '.')
    return relative[:-len('.__init__')] if relative.endswith('.__init__') else relative


def imported(source, name, is_package=False):
    """The absolute names a module's source imports, its relative imports resolved."""
    package = name if is_package else name.rpartition('.')[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ''
            if node.level:
                parts = package.split('.')
                base = '.'.join(parts[:len(parts) - node.level + 1] + ([node.module] if node.module else []))
            yield base
            yield from (f'{base}.{alias.name}' for alias in node.names)


def layer(name):
    """0: the machinery, 1: the face, 2: the notebook's tools; None: not the project's."""
    if name.startswith(UPPER):
        return 2
    if name.split('.')[0] in FACE:
        return 1
    if name == 'facegen' or name.startswith('facegen.'):
        return 0
    return None


def upward_imports(source, name, is_package=False):
    """Each import of a module that reaches a layer above its own: [(module, imported name)]."""
    own = layer(name)
    return [(name, target) for target in imported(source, name, is_package)
            if layer(target) is not None and layer(target) > own]


def project_modules():
    paths = [os.path.join(ROOT, f'{name}.py') for name in FACE]
    for folder, _, files in os.walk(os.path.join(ROOT, 'facegen')):
        paths += [os.path.join(folder, name) for name in files if name.endswith('.py')]
    return sorted(paths)


def test_imports_point_down_only_the_machinery_never_imports_the_face():
    found = []
    for path in project_modules():
        with open(path, encoding='utf-8') as f:
            found += upward_imports(f.read(), module_name(path), path.endswith('__init__.py'))
    assert found == []


@pytest.mark.parametrize('source, name', [
    ('from helper import images_square_grid', 'facegen.runs.training'),
    ('import problem_unittests', 'facegen.data.install'),
    ('from ..course import review', 'facegen.runs.events'),
    ('from facegen.notebooks import loader', 'helper'),
])
def test_the_import_check_catches_an_import_that_points_up(source, name):
    assert upward_imports(source, name) != []


def test_each_module_of_the_package_opens_with_what_it_owns():
    for path in project_modules():
        with open(path, encoding='utf-8') as f:
            docstring = ast.get_docstring(ast.parse(f.read()))
        assert docstring and len(docstring) > 40, path


def test_pyproject_ships_every_package_and_the_face():
    with open(os.path.join(ROOT, 'pyproject.toml'), 'rb') as f:
        setuptools = tomllib.load(f)['tool']['setuptools']
    packages = sorted(module_name(os.path.join(folder, '__init__.py'))
                      for folder, _, files in os.walk(os.path.join(ROOT, 'facegen')) if '__init__.py' in files)
    assert sorted(setuptools['packages']) == packages
    assert sorted(setuptools['py-modules']) == sorted(FACE)


def tracked(*args):
    return subprocess.run(['git', 'ls-files', *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout


def test_no_symbolic_link_anywhere_in_the_tree():
    links = [line.split('\t')[1] for line in tracked('-s').splitlines() if line.startswith('120000 ')]
    assert links == [], 'a clone with symbolic links off (Git for Windows) gets text files in their place'


def test_the_exercise_folder_holds_the_exercise_alone():
    assert tracked('exercise').split() == ['exercise/dlnd_face_generation.ipynb']


def test_helper_names_a_short_api_and_each_name_works():
    assert len(helper.__all__) <= 15
    for name in helper.__all__:
        assert getattr(helper, name) is not None, name


def test_an_unknown_helper_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="module 'helper' has no attribute 'no_such_name'"):
        helper.no_such_name


def makefile_targets():
    with open(os.path.join(ROOT, 'Makefile')) as f:
        text = f.read()
    phony = re.search(r'^\.PHONY: (.*?)(?<!\\)\n', text, re.M | re.S).group(1).replace('\\\n', ' ').split()
    return text, phony


def test_every_make_target_has_its_python_command_for_windows():
    text, phony = makefile_targets()
    internal = {'help', 'strip-outputs-on-commit', 'quiet-kernels'}  # parts of setup, and the list itself
    listed = {target.split()[0] for target, _, _ in cli.COMMANDS}
    assert set(phony) - internal == listed
    for command in re.findall(r'\$\(FACEGEN\) ([a-z-]+)', text):
        assert command in listed or command == 'test', command


def test_make_help_prints_every_target_beside_its_command():
    done = subprocess.run(['make', '--no-print-directory', 'help'], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, 'PYTHON': sys.executable})
    assert done.returncode == 0, done.stderr
    for target, python, _ in cli.COMMANDS:
        assert f'make {target}' in done.stdout and python in done.stdout, target


def test_an_unknown_command_names_the_commands(capsys):
    assert cli.main(['rnu']) == 2
    assert "Unknown command 'rnu'; the commands are: help, run, test" in capsys.readouterr().err


@pytest.mark.parametrize('command', cli.NEED_A_CHECKOUT)
def test_a_teachers_command_outside_a_checkout_says_where_it_works(command, monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(cli, 'SOLUTION', str(tmp_path / 'dlnd_face_generation.ipynb'))
    assert cli.main([command]) == 2
    assert f'python -m facegen {command} works in a checkout of the project' in capsys.readouterr().err


def test_make_works_where_the_venv_and_the_folders_have_spaces_in_their_paths(tmp_path):
    """A checkout under "My Courses/": the venv's stamp is a make target, the venv's Python a command; both quoted."""
    from facegen.course import review
    folder = tmp_path / 'My Courses'
    folder.mkdir()
    os.symlink(os.path.dirname(os.path.dirname(sys.executable)), folder / 'face venv')
    out = folder / 'review out'
    (out / 'results').mkdir(parents=True)
    review.write_result(str(out / 'results' / 'ana.json'),
                        review.result_of('ana.ipynb', [review.Line('PASS', 'The notebook is there')]))
    done = subprocess.run(['make', '--no-print-directory', '-f', os.path.join(ROOT, 'Makefile'), '-o', 'requirements.txt',
                           '-o', 'pyproject.toml', f'VENV={folder / "face venv"}', 'gradebook', f'OUT={out}'],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (out / 'gradebook.csv').is_file() and 'Gradebook:' in done.stdout

"""The hand-out: what a teacher gives a learner, a folder and a zip with the exercise and what it needs to run.

The exercise as exercise.py makes it (its data in the folder's own data/), the facegen package as a wheel (helper
and problem_unittests in it), requirements.txt, data/README.md, and a README and Makefile of their own
(handout_files/) with two commands: `make notebook` and `make run`. Without make (Colab, Windows, a Jupyter of
one's own), the notebook's first cell installs the wheel beside it. Nothing of the solution goes in.

    python -m facegen handout      # make handout: dist/face-generation-exercise/ and dist/face-generation-exercise.zip
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from glob import glob

import nbformat

from . import exercise
from ..notebooks import CHECKOUT, SOLUTION

NAME = 'face-generation-exercise'
FILES = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'handout_files')
COPIED = ('requirements.txt', os.path.join('data', 'README.md'))
# What the wheel is built from
PACKAGE_SOURCES = ('pyproject.toml', 'README.md', 'helper.py', 'problem_unittests.py', 'facegen')


def build(dist):
    """
    Write the hand-out into dist, afresh
    :param dist: The folder for <NAME>/ and <NAME>.zip
    :return: The zip's path
    """
    folder = os.path.join(dist, NAME)
    if os.path.isdir(folder):
        shutil.rmtree(folder)  # a build output: the zip and this folder are made again from the project
    os.makedirs(os.path.join(folder, 'data'))
    nb = exercise.exercise_notebook(nbformat.read(SOLUTION, as_version=4), data_dir='./data')
    nbformat.write(nb, os.path.join(folder, 'dlnd_face_generation.ipynb'))
    build_wheel(folder)
    for name in COPIED:
        shutil.copy2(os.path.join(CHECKOUT, name), os.path.join(folder, name))  # copy2: mtimes kept, for make
    for name in os.listdir(FILES):
        shutil.copy2(os.path.join(FILES, name), os.path.join(folder, name))
    return shutil.make_archive(folder, 'zip', dist, NAME)


def build_wheel(folder):
    """
    The facegen package of this checkout as a wheel in folder, built offline by this Python's setuptools from a
    copy of its sources (setuptools' build/ would otherwise keep files since removed and ship them)
    :return: The wheel's path
    """
    for old in glob(os.path.join(folder, 'facegen-*.whl')):
        os.remove(old)  # one wheel beside the notebook: the one its first cell installs
    with tempfile.TemporaryDirectory() as sources:
        for name in PACKAGE_SOURCES:
            path = os.path.join(CHECKOUT, name)
            if os.path.isdir(path):
                shutil.copytree(path, os.path.join(sources, name), ignore=shutil.ignore_patterns('__pycache__'))
            else:
                shutil.copy2(path, sources)
        subprocess.run([sys.executable, '-m', 'pip', 'wheel', '--quiet', '--no-deps', '--no-build-isolation',
                        '--disable-pip-version-check', '--wheel-dir', os.path.abspath(folder), sources], check=True)
    [wheel] = glob(os.path.join(folder, 'facegen-*.whl'))
    return wheel


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--dist', default=os.path.join(CHECKOUT, 'dist'), help='where to write it (dist/)')
    parser.add_argument('--wheel-only', action='store_true', help='only the package\'s wheel, into --dist (make wheel)')
    args = parser.parse_args(argv)
    if args.wheel_only:
        os.makedirs(args.dist, exist_ok=True)
        print(f'Wrote {os.path.relpath(build_wheel(args.dist))}: pip install it, or put it beside the notebook')
        return 0
    archive = build(args.dist)
    print(f'Wrote {os.path.relpath(os.path.join(args.dist, NAME))}/ and {os.path.relpath(archive)}: the exercise, '
          f'the facegen wheel, requirements.txt and a README whose two commands are make notebook and make run')
    return 0


if __name__ == '__main__':
    sys.exit(main())

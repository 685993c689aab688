"""The hand-out: what a teacher gives a learner, a folder and a zip with the exercise and what it needs to run.

The exercise as course/exercise.py makes it (its data in the folder's own data/), the project's modules it imports
and `make run`'s, requirements.txt, data/README.md, and a README and Makefile of its own (course/handout_files/)
with two commands: `make notebook` and `make run`. Nothing of the solution goes in.

    python -m course.handout      # make handout: dist/face-generation-exercise/ and dist/face-generation-exercise.zip
"""
import argparse
import os
import shutil
import sys

import nbformat

from course import exercise

NAME = 'face-generation-exercise'
FILES = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'handout_files')
RUNNER = 'run_notebook.py'  # make run: the notebook headless, for the executed copy and its HTML


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
    nb = exercise.exercise_notebook(nbformat.read(exercise.SOLUTION, as_version=4), data_dir='./data')
    nbformat.write(nb, os.path.join(folder, 'dlnd_face_generation.ipynb'))
    for name in exercise.project_modules(nb, also=[RUNNER]) + ['requirements.txt', os.path.join('data', 'README.md')]:
        source = os.path.join(exercise.ROOT, name)
        if os.path.isdir(source):  # a package
            shutil.copytree(source, os.path.join(folder, name), ignore=shutil.ignore_patterns('__pycache__'))
        else:
            shutil.copy2(source, os.path.join(folder, name))  # copy2: mtimes kept, for make
    for name in os.listdir(FILES):
        shutil.copy2(os.path.join(FILES, name), os.path.join(folder, name))
    return shutil.make_archive(folder, 'zip', dist, NAME)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--dist', default=os.path.join(exercise.ROOT, 'dist'), help='where to write it (dist/)')
    dist = parser.parse_args(argv).dist
    archive = build(dist)
    print(f'Wrote {os.path.relpath(os.path.join(dist, NAME))}/ and {os.path.relpath(archive)}: the exercise, '
          f'its modules, requirements.txt and a README whose two commands are make notebook and make run')
    return 0


if __name__ == '__main__':
    sys.exit(main())

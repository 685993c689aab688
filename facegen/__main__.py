"""`python -m facegen COMMAND`: every make target as a Python command, for a machine without make (Windows).

Each make target calls the command of its name here, so the two never differ; `python -m facegen help` (and
`make help`) prints them side by side. Run them with the Python of the project's environment (.venv/bin/python,
or .venv\\Scripts\\python on Windows), in the project's folder.
"""
import os
import platform
import shutil
import subprocess
import sys

from .notebooks import CHECKOUT, SOLUTION

SOLUTION_NAME = 'dlnd_face_generation.ipynb'
EXERCISE_NAME = os.path.join('exercise', SOLUTION_NAME)
# What `clean` removes: every training run and make run's notebook and figures, what make handout and make wheel
# build, and pytest's cache.
CLEANED = ('output', 'dist', '.pytest_cache')

# The teacher's and maintainer's commands: they read the solution notebook or the tests of a checkout.
NEED_A_CHECKOUT = ('test', 'regenerate-exercise', 'review', 'gradebook', 'handout', 'wheel')

# (make target, the Python command that does the same, what it does); `python` is the environment's Python.
COMMANDS = (
    ('setup', 'python -m venv .venv, then .venv/bin/python -m pip install -r requirements.txt -e .',
     'the environment: the exact versions tested, and this package, editable'),
    ('run', 'python -m facegen run [--max-steps N ...]', 'the notebook headless into output/ (--help: every option)'),
    ('test', 'python -m facegen test [PYTEST OPTIONS]', 'the test suite'),
    ('notebook', 'python -m facegen notebook [NOTEBOOK] [JUPYTER OPTIONS]', 'the notebook in Jupyter Notebook 7'),
    ('exercise', 'python -m facegen exercise [JUPYTER OPTIONS]', "the learner's edition in Jupyter Notebook 7"),
    ('regenerate-exercise', 'python -m facegen regenerate-exercise', 'write the exercise again from the solution'),
    ('review NOTEBOOK=... [TRAIN=1]', 'python -m facegen review NOTEBOOK [--train] [--json RESULT]',
     "the course's rubric over a notebook handed in, its code in a sandbox"),
    ('review HANDINS=... [JOBS=N]', 'python -m facegen review --handins FOLDER_OR_ZIP [--jobs N]',
     "a class's hand-ins (an LMS's zip or a folder): a gradebook, a feedback file each; again: the new and changed"),
    ('gradebook OUT=...', 'python -m facegen gradebook OUT', "merge reviews' JSON in OUT/results/ into the gradebook"),
    ('handout', 'python -m facegen handout', 'dist/face-generation-exercise/ and its .zip'),
    ('wheel', 'python -m facegen wheel', "this package's wheel in dist/ (for Colab: put it beside the notebook)"),
    ('tensorboard', 'python -m facegen tensorboard [output] [TENSORBOARD OPTIONS]',
     'every training run in TensorBoard'),
    ('runs', 'python -m facegen runs [output]', 'list the training runs, with their steps and size'),
    ('remove-run RUN=...', 'python -m facegen remove-run RUN', 'remove one training run'),
    ('clean', 'python -m facegen clean', f'remove {", ".join(CLEANED)}: every training run too'),
    ('torch-venv', 'python -m venv .venv-torch, then .venv-torch/bin/python -m pip install -r '
                   'bench/requirements-torch.txt', "a Python with torch for the benchmark's PyTorch peers"),
)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    command, args = (argv[0], argv[1:]) if argv else ('help', [])
    handlers = {'help': show_help, 'run': run, 'test': test, 'notebook': notebook, 'exercise': exercise,
                'regenerate-exercise': regenerate_exercise, 'review': review, 'gradebook': gradebook,
                'handout': handout, 'wheel': wheel,
                'tensorboard': tensorboard, 'runs': runs, 'remove-run': remove_run, 'clean': clean}
    if command not in handlers:
        print(f'Unknown command {command!r}; the commands are: {", ".join(handlers)}', file=sys.stderr)
        return 2
    if command in NEED_A_CHECKOUT and not os.path.isfile(SOLUTION):
        print(f'python -m facegen {command} works in a checkout of the project, on its solution notebook and tests; '
              f'this facegen is installed from a wheel ({CHECKOUT} has no {os.path.basename(SOLUTION)}). Clone the '
              f'project and run `make setup` there (or pip install -e . in it).', file=sys.stderr)
        return 2
    return handlers[command](args)


def show_help(args):
    """Each make target beside its Python command."""
    width = max(len(target) for target, _, _ in COMMANDS) + len('make ')
    print('Every make target, and the Python command that does the same (Windows: python is .venv\\Scripts\\python)')
    for target, python, what in COMMANDS:
        print(f'  {"make " + target:<{width}}  {python}\n  {"":<{width}}  {what}')
    return 0


def leading_path(args, default):
    """(the path the arguments start with, else default; the options after it)."""
    if args and not args[0].startswith('-'):
        return args[0], args[1:]
    return default, args


def run(args):
    try:
        from .notebooks import headless
    except ModuleNotFoundError as missing:
        print(f'python -m facegen run needs {missing.name}, which comes with the package\'s course extra: pip '
              f'install "facegen[course]" (or ".[course]" in the project\'s folder).', file=sys.stderr)
        return 2
    return headless.main(args)


def test(args):
    return subprocess.call([sys.executable, '-m', 'pytest', os.path.join(CHECKOUT, 'tests'), *args], cwd=CHECKOUT)


def notebook(args):
    """Jupyter Notebook on a notebook (the solution by default): no browser where there is no display, and root
    allowed where it is root (a container)."""
    path, options = leading_path(args, SOLUTION_NAME)
    headless = platform.system() == 'Linux' and not (os.environ.get('DISPLAY') or os.environ.get('WAYLAND_DISPLAY'))
    root = hasattr(os, 'geteuid') and os.geteuid() == 0
    extra = (['--no-browser'] if headless else []) + (['--allow-root'] if root else [])
    # The kernel inherits TF_CPP_MIN_LOG_LEVEL, which keeps most of TensorFlow's C++ lines out of this terminal.
    env = {**os.environ, 'TF_CPP_MIN_LOG_LEVEL': os.environ.get('TF_CPP_MIN_LOG_LEVEL', '2')}
    return subprocess.call([sys.executable, '-m', 'notebook', path, *extra, *options], env=env)


def exercise(args):
    return notebook([EXERCISE_NAME, *args])


def regenerate_exercise(args):
    from .course import exercise as made
    return made.main(args)


def review(args):
    if any(arg == '--handins' or arg.startswith('--handins=') for arg in args):
        from .course import batch
        return batch.main(args)
    from .course import review as rubric
    return rubric.main(args)


def gradebook(args):
    from .course import batch
    return batch.merge_main(args)


def handout(args):
    from .course import handout as built
    return built.main(args)


def wheel(args):
    from .course import handout as built
    return built.main(['--wheel-only', *args])


def tensorboard(args):
    from .runs import events
    return events.serve(*leading_path(args, 'output'))


def runs(args):
    from .runs import folders
    return folders.main(['list', *(args or ['output'])])


def remove_run(args):
    from .runs import folders
    return folders.main(['remove', *args])


def clean(args):
    print(f'Removing {", ".join(name + "/" for name in CLEANED[:-1])} and {CLEANED[-1]}/: every training run, and '
          f"make run's notebook and figures, the hand-out and the wheel")
    for name in CLEANED:
        shutil.rmtree(name, ignore_errors=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())

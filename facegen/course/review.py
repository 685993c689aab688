"""A review like the 2017 one: a notebook's functions run through this project's own checks, the rubric as a table.

The notebook is read, never run and never written: each cell that defines one of the project's functions is
executed, without its check call, into a namespace of this project's modules (a problem_unittests.py handed in
beside it is never imported). Then each rubric line of the course's review gets PASS or FAIL with the check's
message; a check that fails only because a function it builds on does (it passes with the solution's) says so.
What a check can only guess is a WARN line, and the faces are a REVIEW line for the reviewer's eyes: neither
counts in the exit status, which is 0 only when every PASS/FAIL line passes.

    python -m facegen review path/to/dlnd_face_generation.ipynb           # make review NOTEBOOK=...
    python -m facegen review path/to/dlnd_face_generation.ipynb --train   # make review NOTEBOOK=... TRAIN=1
"""
import argparse
import ast
import contextlib
import io
import math
import os
import signal
import sys
import textwrap
import warnings
from dataclasses import dataclass
from glob import glob

import nbformat

from ..data.registry import dataset_info
from ..notebooks import CHECKOUT, SOLUTION, loader as notebook_loader

CHECK_TIMEOUT_S = 300   # one check; a train that never returns is stopped here
TRAIN_TIMEOUT_S = 1200  # one dataset's training with --train
MODEL_CHECKS = (('model_inputs', 'test_model_inputs'), ('discriminator', 'test_discriminator'),
                ('generator', 'test_generator'), ('model_loss', 'test_model_loss'), ('model_opt', 'test_model_opt'),
                ('train', 'test_train'))
BUILDS_ON = {'model_loss': ('discriminator', 'generator'),
             'train': ('model_inputs', 'discriminator', 'generator', 'model_loss', 'model_opt')}
HYPERPARAMETERS = ('batch_size', 'z_dim', 'learning_rate', 'beta1')
# What reviewers asked for (the course's reviews): batch 16-64, z 100-128, rate 2e-4 to 8e-4, beta1 about 0.5
REASONABLE = {'batch_size': (16, 64), 'z_dim': (100, 128), 'learning_rate': (2e-4, 8e-4), 'beta1': (0.3, 0.7)}
TRAINING = (('mnist', 'MNIST', 600), ('celeba', 'CelebA', 300))  # dataset, title, steps with --train


@dataclass
class Line:
    """One line of the review: PASS, FAIL, WARN, REVIEW or INFO, and why."""
    result: str
    rubric: str
    message: str = ''


class TimeLimit(BaseException):
    """A learner's code ran past its time limit (a BaseException, so that `except Exception` lets it through)."""


@contextlib.contextmanager
def time_limit(seconds, what):
    """Stop what runs in the block after `seconds` (between Python statements: a loop that never ends)."""
    def stop(*_):
        raise TimeLimit(f'{what} ran for more than {seconds} s and was stopped: does it loop forever?')
    previous = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def review(path, train=False, solution=SOLUTION, data_dir=None, output_dir=None, max_images=None,
           steps=None, check_timeout_s=CHECK_TIMEOUT_S):
    """
    Review a notebook
    :param path: The notebook handed in
    :param train: Also train on MNIST (and score the digits) and on CelebA (a grid to judge)
    :param solution: The solution notebook, to tell a failure of its own from one caused by a function it builds on
                     (None: say only that the other function fails too)
    :param data_dir: The data folder for training (default: the project's data/)
    :param output_dir: Where training keeps its runs (default: output/review/<notebook name>)
    :param max_images: Train on the first N images of each dataset (None: all)
    :param steps: Training steps per dataset (None: TRAINING's)
    :param check_timeout_s: How long one check may run
    :return: The review's lines
    """
    if not os.path.isfile(path):
        return [Line('FAIL', 'The notebook is there', f'{path} is not a file: give the path of the notebook handed in '
                     '(NOTEBOOK=path/to/dlnd_face_generation.ipynb)')]
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as error:  # nbformat raises JSON, validation and encoding errors alike
        return [Line('FAIL', 'The notebook is there', f'{path} is not a Jupyter notebook ({type(error).__name__}: '
                     f'{str(error)[:200]}): hand in the .ipynb file saved from Jupyter')]
    namespace, problems, broken_cells = load(nb)
    lines = [_notebook_line(path, broken_cells)]
    checks = _check_lines(namespace, problems, solution, check_timeout_s)
    failing = [name for name, line in checks if line.result == 'FAIL']
    lines.append(Line('FAIL' if failing else 'PASS', 'All the unit tests pass',
                      f'{", ".join(failing)} fail: see their lines' if failing else ''))
    lines += [line for _, line in checks]
    lines += _hyperparameter_lines(nb)
    if not train:
        lines.append(Line('REVIEW', 'The generated faces look like faces', 'not trained: TRAIN=1 (--train) trains '
                          'the digits and the faces for a few minutes and draws a grid to look at'))
    elif failing:
        lines.append(Line('FAIL', 'Training', 'not trained: the unit tests must pass first'))
    else:
        name = os.path.splitext(os.path.basename(path))[0]
        output_dir = output_dir or os.path.join(CHECKOUT, 'output', 'review', name)
        data_dir = data_dir or os.path.join(CHECKOUT, 'data')
        lines += _training_lines(namespace, nb, data_dir, output_dir, max_images, steps)
    return lines


def load(nb):
    """
    Execute the notebook's function cells without their checks
    :return: (namespace, {function: why it cannot be checked}, [why a cell is broken, for cells of no function])
    """
    namespace = notebook_loader.base_namespace()
    problems, broken_cells, defined_in = {}, [], {}
    for number, cell in enumerate(nb.cells, 1):
        if cell.cell_type != 'code':
            continue
        try:
            tree = ast.parse(notebook_loader.without_magics(cell.source))
        except SyntaxError as error:
            named = [name for name in notebook_loader.FUNCTIONS if f'def {name}(' in cell.source]
            why = f'cell {number} does not parse (line {error.lineno}: {error.msg}): fix its Python'
            problems.update({name: why for name in named}) if named else broken_cells.append(why)
            continue
        names = [node.name for node in tree.body if isinstance(node, ast.FunctionDef)
                 and node.name in notebook_loader.FUNCTIONS]
        for name in names:
            defined_in.setdefault(name, []).append(number)
        if names:
            _execute(tree, number, names, namespace, problems)
    for name, cells in defined_in.items():
        if len(cells) > 1:
            problems[name] = (f'{name} is defined in cells {" and ".join(map(str, cells))}: the later one wins in '
                              f'Jupyter; keep one')
    for name in notebook_loader.FUNCTIONS:
        if name not in defined_in and name not in problems:
            problems[name] = f'no cell defines {name}: put back the exercise\'s cell with `def {name}(` and write it'
    return namespace, problems, broken_cells


def _execute(tree, number, names, namespace, problems):
    """Run one function cell, less its calls of the checks (tests.test_...), into namespace."""
    body = [node for node in tree.body if not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Call) and
                                               isinstance(node.value.func, ast.Attribute) and
                                               isinstance(node.value.func.value, ast.Name) and
                                               node.value.func.value.id == 'tests')]
    try:
        with time_limit(CHECK_TIMEOUT_S, f'cell {number}'), contextlib.redirect_stdout(io.StringIO()):
            exec(compile(ast.Module(body=body, type_ignores=[]), f'<cell {number}>', 'exec'), namespace)
    except (Exception, SystemExit, TimeLimit) as error:
        problems.update({name: f'cell {number} raised {type(error).__name__}: {error}' for name in names})


def _notebook_line(path, broken_cells):
    if broken_cells:
        return Line('FAIL', 'The notebook is there', '; '.join(broken_cells))
    html = os.path.splitext(path)[0] + '.html'
    return Line('PASS', 'The notebook is there', '' if os.path.exists(html) else
                f'(no HTML copy {os.path.basename(html)} beside it: the course asks for one, File > Download as)')


def _check_lines(namespace, problems, solution, timeout_s):
    """[(function, Line)] for the five model functions and train in the course's order, each with its WARN lines."""
    import problem_unittests
    import tensorflow.compat.v1 as tf
    reference, results, rows = None, {}, []
    for name, check in MODEL_CHECKS:
        rubric = f'{name} is implemented correctly' if name != 'train' else \
            'train builds the model with model_inputs, model_loss and model_opt and shows show_generator_output'
        failure, warned = problems.get(name), []
        if failure is None:
            failure, warned = _run_check(problem_unittests, check, namespace[name], tf, timeout_s)
            causes = [other for other in BUILDS_ON.get(name, ()) if results[other].result == 'FAIL']
            if failure and causes and 'is not implemented yet' not in failure:
                if solution and reference is None:
                    reference = notebook_loader.notebook_functions(solution)
                fixed = reference and _run_check(problem_unittests, check, _with_functions(
                    namespace, {other: reference[other] for other in causes})[name], tf, timeout_s)[0] is None
                fail, them = ('fails', 'it') if len(causes) == 1 else ('fail', 'them')
                failure = (f'fails only because {", ".join(causes)} {fail}: fix {them} first' if fixed else
                           f'{failure} ({", ".join(causes)} {fail} too: fix {them} first)')
        results[name] = Line('FAIL' if failure else 'PASS', rubric, failure or '')
        rows += [(name, results[name])] + [(name, Line('WARN', f'{name}: a choice to look at', text))
                                           for text in warned]
    return rows


def _run_check(problem_unittests, check, function, tf, timeout_s):
    """(the failure's message or None, [the warnings' messages]) of one check, its printing kept out of the table."""
    args = (function,) if check in ('test_model_inputs', 'test_model_loss') else (function, tf)
    with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter('always', problem_unittests.StyleWarning)
        try:
            with time_limit(timeout_s, f'{check}({function.__name__})'):
                getattr(problem_unittests, check)(*args)
            failure = None
        except AssertionError as error:
            failure = str(error)
        except (Exception, SystemExit, TimeLimit) as error:
            failure = f'{type(error).__name__}: {str(error)[:300]}'
    return failure, list(dict.fromkeys(str(w.message) for w in caught  # once each, not once per channel count
                                       if issubclass(w.category, problem_unittests.StyleWarning)))


def _with_functions(namespace, replacements):
    """A copy of the namespace with some functions replaced, every function of it seeing the copy."""
    copy = {**namespace, **replacements}
    for name, function in namespace.items():  # generator_samples, say, calls the generator too
        if name not in replacements and getattr(function, '__globals__', None) is namespace:
            copy[name] = type(function)(function.__code__, copy, function.__name__, function.__defaults__,
                                        function.__closure__)
    return copy


def hyperparameters(nb):
    """{dataset: {name: value}} set above the line of each training cell (values that are not literals: None)."""
    return {dataset: {name: values.get(name) for name in HYPERPARAMETERS}
            for dataset, values in _training_cell_literals(nb).items()}


def training_cell_constants(nb):
    """{dataset: {NAME: value}}: the constants each training cell sets for the functions (R1_WEIGHT), which the
    notebook's functions read as globals when train builds the graph."""
    return {dataset: {name: value for name, value in values.items() if name.isupper()}
            for dataset, values in _training_cell_literals(nb).items()}


def _training_cell_literals(nb):
    """{dataset: {name: value}} of the literal assignments above the line of each training cell."""
    found = {}
    for cell in nb.cells:
        dataset = next((name for name, _, _ in TRAINING if f"helper.Dataset('{name}'" in cell.get('source', '')), None)
        if cell.cell_type != 'code' or dataset is None:
            continue
        try:
            tree = ast.parse(cell.source.split(notebook_loader.CHECK_MARKER)[0])
        except SyntaxError:
            tree = ast.Module(body=[], type_ignores=[])
        values = {}
        for node in tree.body:
            if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
                with contextlib.suppress(ValueError):
                    values[node.targets[0].id] = ast.literal_eval(node.value)
        found[dataset] = values
    return found


def _hyperparameter_lines(nb):
    rubric = 'The hyperparameters are reasonable'
    titles = {dataset: title for dataset, title, _ in TRAINING}
    found = {titles[dataset]: values for dataset, values in hyperparameters(nb).items()}
    unset = {title: [name for name, value in values.items()
                     if not isinstance(value, (int, float)) or isinstance(value, bool)] for title, values in found.items()}
    unset = '; '.join(f'{title}: {", ".join(names)}' for title, names in unset.items() if names)
    if len(found) < len(TRAINING) or unset:
        return [Line('FAIL', rubric, f'not set: {unset or "a training cell is missing"}. Choose them above the '
                     'DON\'T MODIFY line of the MNIST and CelebA cells')]
    shown = '; '.join(f'{title}: ' + ', '.join(f'{n} {v:g}' for n, v in values.items())
                      for title, values in found.items())
    outside = [f'{title} {name} {value:g} (reviewers suggest {low:g} to {high:g})'
               for title, values in found.items() for name, value in values.items()
               for low, high in [REASONABLE[name]] if not low <= value <= high]
    return [Line('PASS', rubric, shown)] + [Line('WARN', 'A hyperparameter to look at', text) for text in outside]


def _training_lines(namespace, nb, data_dir, output_dir, max_images, steps):
    """Train the notebook's train on each dataset for a few minutes: the digit score, then the faces to judge."""
    import helper
    lines, chosen, constants = [], hyperparameters(nb), training_cell_constants(nb)
    for dataset, title, default_steps in TRAINING:
        namespace.update(constants.get(dataset, {}))  # as the training cell sets them before it trains
        try:
            with time_limit(TRAIN_TIMEOUT_S, f'train on {title}'), contextlib.redirect_stdout(io.StringIO()):
                data, files, run_dir = _train(namespace, chosen[dataset], helper, dataset, title, data_dir,
                                              os.path.join(output_dir, dataset), max_images, steps or default_steps)
            samples = helper.saved_samples(run_dir)
        except (Exception, SystemExit, TimeLimit) as error:
            lines.append(Line('FAIL', f'Training on {title}', f'{type(error).__name__}: {str(error)[:300]}'))
            continue
        if samples is None:
            lines.append(Line('FAIL', f'Training on {title}', f'train kept no samples in {run_dir}: end it with '
                              'run.save_samples(images) (see the Train cell)'))
        elif dataset == 'mnist':
            labels = helper.mnist_labels(files)
            score = None if labels is None else helper.DigitScorer(data.images / 127.5 - 1, labels).score(samples)
            lines.append(Line('INFO', 'The digits', 'no labels to score them' if score is None else
                              f"{score['confident_share']:.1%} classified with probability >= 0.9, class entropy "
                              f"{score['class_entropy']:.3f}, Frechet {score['frechet_distance']:.2f} (real against "
                              f"real {score['real_frechet_distance']:.2f}) after {steps or default_steps} steps; grid "
                              f"{os.path.join(run_dir, 'samples.png')}"))
        else:
            grids = sorted(glob(os.path.join(run_dir, 'grids', 'step_*.png')))
            shown = f'the last grid, {grids[-1]}' if grids else os.path.join(run_dir, 'samples.png')
            score = helper.FaceScorer(data.images).score(samples)
            lines.append(Line('REVIEW', 'The generated faces look like faces', f'look at {shown}, after '
                              f'{steps or default_steps} steps ({os.path.join(run_dir, "samples.png")} has 1,000). '
                              + '. '.join(helper.describe_faces(score).splitlines())))
    return lines


def _train(namespace, chosen, helper, dataset, title, data_dir, runs_dir, max_images, steps):
    """One short training of the notebook's train, as its training cell calls it, in a new run of runs_dir;
    returns the Dataset, its files and the run's folder."""
    import numpy as np
    import tensorflow.compat.v1 as tf
    source = helper.download_extract(dataset, data_dir)
    files = sorted(glob(os.path.join(data_dir, dataset_info(dataset).folder, '*.jpg')))[:max_images]
    data = helper.Dataset(dataset, files, seed=0)
    run = helper.TrainingRun(runs_dir, f'{title} ({source}), review', max_steps=steps, progress=None,
                             hyperparameters={**chosen, 'review': True})
    epochs = math.ceil(steps / max(1, len(files) // chosen['batch_size']))
    np.random.seed(0)
    with tf.Graph().as_default():
        tf.set_random_seed(0)
        namespace['train'](epochs, chosen['batch_size'], chosen['z_dim'], chosen['learning_rate'], chosen['beta1'],
                           data.get_batches, data.shape, data.image_mode, run)
    return data, files, run.run_dir


def format_lines(lines, width=118):
    """The review as a table: result, rubric line, then the message wrapped beneath it."""
    rubric_width = max(len(line.rubric) for line in lines)
    rows = []
    for line in lines:
        head = f'{line.result:<7}{line.rubric:<{rubric_width}}'
        message = textwrap.wrap(line.message, width - 9) if line.message else []
        if message and len(head) + 2 + len(message[0]) <= width and len(message) == 1:
            rows.append(f'{head}  {message[0]}')
        else:
            rows.append(head.rstrip())
            rows += ['         ' + text for text in message]
    return '\n'.join(rows)


def passed(lines):
    return all(line.result != 'FAIL' for line in lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('notebook', help='the notebook handed in')
    parser.add_argument('--train', action='store_true', help='also train on MNIST and CelebA for a few minutes')
    parser.add_argument('--data-dir', help='the data folder for training (default: data/)')
    args = parser.parse_args(argv)
    warnings.filterwarnings('ignore', message=r'.*`tf\.layers\.', category=UserWarning)  # as the notebook does
    import problem_unittests
    print(f'Review of {args.notebook}, by the checks of {problem_unittests.__file__}\n', flush=True)
    lines = review(args.notebook, train=args.train, data_dir=args.data_dir)
    print(format_lines(lines))
    verdict = passed(lines)
    print(f'\n{"Every" if verdict else "Not every"} PASS/FAIL line passes'
          + ('' if verdict else ': the FAIL lines say what to fix') + '.')
    return 0 if verdict else 1


if __name__ == '__main__':
    sys.exit(main())

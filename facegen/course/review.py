"""A review like the 2017 one: a notebook's functions run through this project's own checks, the rubric as a table.

The notebook is never run in this process and never written. Its function cells run in a child process of their
own (sandbox.py: killed at its time limits, limited in memory, processes and file size, inside bubblewrap where
it works), which runs the checks on them and writes down what the functions did (recorder.py). A second child,
the judge, sandboxed and limited the same way, runs the same checks on that evidence (judge.py, judging.py): a
PASS is what the learner's functions built passing the checks, whatever the first child printed, how it ended or
what its code changed there. This process runs neither the hand-in's code nor its graph: it passes the evidence
on, each line bounded, and reads the judge's small answers. It follows no link the hand-in's folder holds.
Each rubric line of the course's review gets PASS or FAIL with the check's message; a check that fails where a
function it builds on fails too says so. What a check can only guess is a WARN line, and so is code that reaches
for the checks, the interpreter or the process (scan.py); the faces are a REVIEW line for the reviewer's eyes:
neither counts in the exit status, which is 0 only when every PASS/FAIL line passes.

    python -m facegen review path/to/dlnd_face_generation.ipynb           # make review NOTEBOOK=...
    python -m facegen review path/to/dlnd_face_generation.ipynb --train   # make review NOTEBOOK=... TRAIN=1
    python -m facegen review path/to/it.ipynb --json result.json          # one hand-in, for a batch (batch.py)
"""
import argparse
import ast
import contextlib
import dataclasses
import importlib.util
import io
import json
import os
import shutil
import signal
import stat
import sys
import tempfile
import textwrap
import warnings
from dataclasses import dataclass
from glob import glob

import nbformat
import numpy as np

from . import inert, judging, sandbox, scan
from ..data.registry import dataset_info
from ..notebooks import CHECKOUT, loader as notebook_loader

MODEL_CHECKS = (('model_inputs', 'test_model_inputs'), ('discriminator', 'test_discriminator'),
                ('generator', 'test_generator'), ('model_loss', 'test_model_loss'), ('model_opt', 'test_model_opt'),
                ('train', 'test_train'))
BUILDS_ON = {'model_loss': ('discriminator', 'generator'),
             'train': ('model_inputs', 'discriminator', 'generator', 'model_loss', 'model_opt')}
HYPERPARAMETERS = ('batch_size', 'z_dim', 'learning_rate', 'beta1')
# What reviewers asked for (the course's reviews): batch 16-64, z 100-128, rate 2e-4 to 8e-4, beta1 about 0.5
REASONABLE = {'batch_size': (16, 64), 'z_dim': (100, 128), 'learning_rate': (2e-4, 8e-4), 'beta1': (0.3, 0.7)}
TRAINING = (('mnist', 'MNIST', 600), ('celeba', 'CelebA', 300))  # dataset, title, steps with --train
MAX_NOTEBOOK = 256 * 2 ** 20  # what the review reads of a hand-in into its own process, in bytes


@dataclass
class Line:
    """One line of the review: PASS, FAIL, WARN, REVIEW or INFO, and why (its text safe to write anywhere: a message
    quotes the hand-in's paths, code and errors)."""
    result: str
    rubric: str
    message: str = ''

    def __post_init__(self):
        self.rubric, self.message = inert.clean(str(self.rubric)), inert.clean(str(self.message))


def review(path, train=False, data_dir=None, output_dir=None, max_images=None, steps=None, limits=sandbox.LIMITS):
    """
    Review a notebook
    :param path: The notebook handed in
    :param train: Also train on MNIST (and score the digits) and on CelebA (a grid to judge)
    :param data_dir: The data folder for training (default: the project's data/)
    :param output_dir: The review's folder for the hand-in: its logs, and the folder its process may write in
                       (sandbox.HANDIN_FOLDER), where training keeps its runs (default: output/review/<notebook
                       name> with train, else a temporary folder)
    :param max_images: Train on the first N images of each dataset (None: all)
    :param steps: Training steps per dataset (None: TRAINING's)
    :param limits: The hand-in's process's limits (sandbox.Limits)
    :return: The review's lines
    """
    if not os.path.isfile(path):
        return [Line('FAIL', 'The notebook is there', f'{path} is not a file: give the path of the notebook handed in '
                     '(NOTEBOOK=path/to/dlnd_face_generation.ipynb)')]
    if os.path.getsize(path) > MAX_NOTEBOOK:
        return [Line('FAIL', 'The notebook is there', f'{path} has {os.path.getsize(path) / 2 ** 20:.0f} MB, more '
                     f'than a notebook of this project holds ({MAX_NOTEBOOK / 2 ** 20:.0f} MB): clear its outputs '
                     '(Cell > All Output > Clear) and hand it in again')]
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as error:  # nbformat raises JSON, validation and encoding errors alike
        return [Line('FAIL', 'The notebook is there', f'{path} is not a Jupyter notebook ({type(error).__name__}: '
                     f'{str(error)[:200]}): hand in the .ipynb file saved from Jupyter')]
    name = os.path.splitext(os.path.basename(path))[0]
    data_dir = data_dir or os.path.join(CHECKOUT, 'data')
    with _private_folder(output_dir or (os.path.join(CHECKOUT, 'output', 'review', name) if train else None)) as work:
        copy_in(path, os.path.join(work, sandbox.HANDIN_FOLDER))
        training = {'steps': [steps or default for _, _, default in TRAINING], 'max_images': max_images} \
            if train and not any(_unset_hyperparameters(nb).values()) else None
        if training:
            _prepare_data(data_dir, max_images)
        sandbox.probe(limits, work)  # a sandbox that cannot start is the machine's fault, not a hand-in's FAIL
        # The judge starts TensorFlow while the hand-in's process starts, and judges each check while that process
        # runs the next: two processes, two cores.
        judge = judging.Judge(limits, os.path.join(work, 'judge.log'))
        try:
            evidence = Evidence(sandbox.recorded(os.path.join(work, sandbox.HANDIN_FOLDER, os.path.basename(path)),
                                                 work, [check for _, check in MODEL_CHECKS], limits, training,
                                                 data_dir))
            lines = [_notebook_line(path, evidence)]
            judge.wait_until_ready()  # before any verdict: a judge that cannot start is the machine's fault
            checks = _check_lines(evidence, judge)
            events = evidence.rest()  # the hand-in's process to its end (with TRAIN=1, its training)
        finally:
            judge.close()
        failing = [function for function, line in checks if line.result == 'FAIL']
        lines.append(Line('FAIL' if failing else 'PASS', 'All the unit tests pass', _failing_said(failing)))
        lines += [line for _, line in checks]
        lines += _hyperparameter_lines(nb)
        lines += [Line('WARN', 'TensorFlow 1 names', text) for text in scan.tf1_names(nb)]
        lines += [Line('WARN', 'Code to read before trusting this review', text) for text in scan.findings(nb)]
        if not train:
            lines.append(Line('REVIEW', 'The generated faces look like faces', 'not trained: TRAIN=1 (--train) '
                              'trains the digits and the faces for a few minutes and draws a grid to look at'))
        elif training is None:
            lines.append(Line('FAIL', 'Training', 'not trained: the hyperparameters are not set'))
        else:
            lines += _training_lines(events, os.path.join(work, sandbox.HANDIN_FOLDER), data_dir, steps, max_images)
    note = sandbox.sandbox_note()
    return lines + ([Line('INFO', 'Sandbox', note)] if note else [])


def _failing_said(failing):
    if not failing:
        return ''
    return f'{failing[0]} fails: see its line' if len(failing) == 1 else f'{", ".join(failing)} fail: see their lines'


def copy_in(notebook, folder):
    """The notebook, copied afresh into the hand-in's folder: whatever a hand-in left at its name before (a link
    too) is replaced, never followed."""
    if os.path.islink(folder):  # a link an earlier hand-in left there, where it could write
        os.unlink(folder)
    os.makedirs(folder, exist_ok=True)
    target = os.path.join(folder, os.path.basename(notebook))
    if os.path.isdir(target) and not os.path.islink(target):
        shutil.rmtree(target)  # a folder the hand-in made at its notebook's name (rmtree follows no link in it)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(target)
    with open(notebook, 'rb') as source, \
            os.fdopen(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644), 'wb') as copy:
        copy.write(source.read())


@contextlib.contextmanager
def _private_folder(path):
    """The review's folder for a hand-in: the one given (kept, with its runs), else a temporary one."""
    if path:
        os.makedirs(path, exist_ok=True)
        yield os.path.realpath(path)
        return
    with tempfile.TemporaryDirectory(prefix='facegen-review-') as temporary:
        sandbox.TEMPORARY.add(temporary)
        try:
            yield temporary
        finally:
            sandbox.TEMPORARY.discard(temporary)


def _unset_hyperparameters(nb):
    """{title: [the hyperparameters its training cell leaves unset]} of each training cell, a missing one included."""
    chosen = hyperparameters(nb)
    return {title: [name for name, value in chosen.get(dataset, dict.fromkeys(HYPERPARAMETERS)).items()
                    if not isinstance(value, (int, float)) or isinstance(value, bool)]
            for dataset, title, _ in TRAINING}


class Evidence:
    """The hand-in's evidence, read as far as a question about it needs: what its cells loaded, one check's events."""

    def __init__(self, stream):
        self.stream, self.events, self.ended = stream, [], False
        self.checks, self.why, self.done, self.current = {}, {}, set(), None

    def _read_one(self):
        if self.ended:
            return False
        event = next(self.stream, None)
        if event is None:
            self.ended = True
            return False
        self.events.append(event)
        kind = event['kind']
        if kind == 'check':
            self.current = str(event.get('name'))
            self.checks[self.current] = []
        elif kind == 'check_end':
            self.done.add(self.current)
            self.current = None
        elif kind == 'ended':
            self.why[event.get('step')] = event.get('why')
            self.done.add(event.get('step'))
            self.current = None
        elif self.current is not None:
            self.checks[self.current].append(event)
        return True

    def loaded(self):
        """The `loaded` event the hand-in's process starts with, or None where the cells could not be loaded."""
        if not self.events:
            self._read_one()
        return self.events[0] if self.events and self.events[0]['kind'] == 'loaded' else None

    def check(self, name):
        """(a check's events, what to say where they stop before the check does, None if they do not)."""
        while name not in self.done and self._read_one():
            pass
        return self.checks.get(name, []), self.why.get(name)

    def rest(self):
        while self._read_one():
            pass
        return self.events


def _notebook_line(path, evidence):
    loaded = evidence.loaded()
    if loaded is None:
        ended = next((event['why'] for event in evidence.rest() if event['kind'] == 'ended'),
                     'it wrote no evidence')
        return Line('FAIL', 'The notebook is there', f'its cells could not be loaded: {ended}')
    if loaded['broken_cells']:
        return Line('FAIL', 'The notebook is there', '; '.join(loaded['broken_cells']))
    html = os.path.splitext(path)[0] + '.html'
    return Line('PASS', 'The notebook is there', '' if os.path.exists(html) else
                f'(no HTML copy {os.path.basename(html)} beside it: the course asks for one, File > Download as)')


def _check_lines(evidence, judge):
    """[(function, Line)] for the five model functions and train in the course's order, each with its WARN lines,
    each judged (by the judge's process, judging.Judge) as soon as the hand-in's process is done with its check."""
    loaded = evidence.loaded()
    results, rows = {}, []
    for name, check in MODEL_CHECKS:
        rubric = f'{name} is implemented correctly' if name != 'train' else \
            'train builds the model with model_inputs, model_loss and model_opt and shows show_generator_output'
        warned = []
        if loaded is None:
            failure = 'not checked: the notebook\'s cells could not be loaded (see its line)'
        else:
            failure = loaded['problems'].get(name)
        if failure is None and name not in loaded['functions']:
            failure = f'no cell defines {name} as a function'
        elif failure is None:
            items, why = evidence.check(check)
            ended = f'{check}({name}): {why}' if why else \
                (f'the evidence of {check} stops before the check does: something in the hand-in changed the checks '
                 '(see the WARN lines)')
            failure, warned = judge.ask(check, name, items, loaded, ended)
            causes = [other for other in BUILDS_ON.get(name, ()) if results[other].result == 'FAIL']
            if failure and causes and 'is not implemented yet' not in failure and \
                    not failure.startswith('not checked: '):
                fail, them = ('fails', 'it') if len(causes) == 1 else ('fail', 'them')
                # model_loss's labels are checked on stand-in networks: right there, only its networks fail it
                alone = name == 'model_loss' and judge.ask('_test_model_loss_label_draws', name, items, loaded,
                                                           ended)[0] is None
                # elsewhere the review cannot tell whose the failure is: it names the others, blaming none
                failure = (f'fails only because {", ".join(causes)} {fail}: fix {them} first' if alone else
                           f'{failure} ({", ".join(causes)}, which {name} builds on, {fail} too: see '
                           f'{"its line" if len(causes) == 1 else "their lines"})')
        results[name] = Line('FAIL' if failure else 'PASS', rubric, failure or '')
        rows += [(name, results[name])] + [(name, Line('WARN', f'{name}: a choice to look at', text))
                                           for text in warned]
    return rows


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
            above = notebook_loader.without_magics(cell.source.split(notebook_loader.CHECK_MARKER)[0])
            tree = ast.parse(above if scan.scannable(above) else '')
        except (SyntaxError, ValueError, RecursionError, MemoryError):  # a hand-in's cell: whatever it holds
            tree = ast.Module(body=[], type_ignores=[])
        values = {}
        for node in tree.body:
            if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
                with contextlib.suppress(ValueError, TypeError, SyntaxError, RecursionError, MemoryError):
                    values[node.targets[0].id] = ast.literal_eval(node.value)
        found[dataset] = values
    return found


def _hyperparameter_lines(nb):
    rubric = 'The hyperparameters are reasonable'
    titles = {dataset: title for dataset, title, _ in TRAINING}
    found = {titles[dataset]: values for dataset, values in hyperparameters(nb).items()}
    unset = '; '.join(f'{title}: {", ".join(names)}' for title, names in _unset_hyperparameters(nb).items()
                      if names and title in found)
    if len(found) < len(TRAINING) or unset:
        return [Line('FAIL', rubric, f'not set: {unset or "a training cell is missing"}. Choose them above the '
                     'DON\'T MODIFY line of the MNIST and CelebA cells')]
    shown = '; '.join(f'{title}: ' + ', '.join(f'{n} {v:g}' for n, v in values.items())
                      for title, values in found.items())
    outside = [f'{title} {name} {value:g} (reviewers suggest {low:g} to {high:g})'
               for title, values in found.items() for name, value in values.items()
               for low, high in [REASONABLE[name]] if not low <= value <= high]
    return [Line('PASS', rubric, shown)] + [Line('WARN', 'A hyperparameter to look at', text) for text in outside]


def _prepare_data(data_dir, max_images):
    """Download and extract the datasets, and cache their images, here: the hand-in's process sees the data folder
    read-only and offline, and reads the caches built in it."""
    import helper
    for dataset, _, _ in TRAINING:
        helper.download_extract(dataset, data_dir)
        helper.Dataset(dataset, training_files(data_dir, dataset, max_images), seed=0)


def training_files(data_dir, dataset, max_images):
    """The images a review trains on: the first max_images of the dataset's, in order (all where None)."""
    return sorted(glob(os.path.join(data_dir, dataset_info(dataset).folder, '*.jpg')))[:max_images]


def _training_lines(events, work, data_dir, steps, max_images):
    """What the hand-in's process trained (in its folder, work): the digit score, then the faces to judge, scored
    here from the samples it kept, read as numbers, once its processes have all ended and where no link leads."""
    import helper
    lines, ended = [], {event['step']: event['why'] for event in events if event['kind'] == 'ended'}
    link = first_link(work)
    if link:
        return [Line('FAIL', f'Training on {title}', f"not scored: the hand-in's folder holds a link ({link}), and "
                     'the review follows none') for _, title, _ in TRAINING]
    trained = {event['dataset']: event for event in events if event['kind'] == 'training_end'}
    for dataset, title, default_steps in TRAINING:
        taken = steps or default_steps
        found = trained.get(dataset, {})
        run_dir = os.path.realpath(os.path.join(work, 'runs', str(found.get('run', ''))))
        if 'error' in found:
            error = found['error']
            lines.append(Line('FAIL', f'Training on {title}', f"{(error.get('types') or ['Error'])[0]}: "
                              f"{str(error.get('message'))[:300]}"))
            continue
        if 'run' not in found or not run_dir.startswith(os.path.join(work, 'runs', dataset) + os.sep):
            why = ended.get(f'training {dataset}', 'the hand-in\'s process did not train it')
            lines.append(Line('FAIL', f'Training on {title}', f'not trained: {why}'))
            continue
        with contextlib.redirect_stdout(io.StringIO()):
            samples = _samples(helper, run_dir)
        if samples is None:
            lines.append(Line('FAIL', f'Training on {title}', f'train kept no samples in {run_dir}: end it with '
                              'run.save_samples(images) (see the Train cell)'))
            continue
        files = training_files(data_dir, dataset, max_images)
        data = helper.Dataset(dataset, files, seed=0)
        if dataset == 'mnist':
            labels = helper.mnist_labels(files)
            score = None if labels is None else helper.DigitScorer(data.images / 127.5 - 1, labels).score(samples)
            lines.append(Line('INFO', 'The digits', 'no labels to score them' if score is None else
                              f"{score['confident_share']:.1%} classified with probability >= 0.9, class entropy "
                              f"{score['class_entropy']:.3f}, Frechet {score['frechet_distance']:.2f} (real against "
                              f"real {score['real_frechet_distance']:.2f}) after {taken} steps; grid "
                              f"{os.path.join(run_dir, 'samples.png')}"))
        else:
            grids = sorted(glob(os.path.join(run_dir, 'grids', 'step_*.png')))
            shown = f'the last grid, {grids[-1]}' if grids else os.path.join(run_dir, 'samples.png')
            score = helper.FaceScorer(data.images).score(samples)
            lines.append(Line('REVIEW', 'The generated faces look like faces', f'look at {shown}, after '
                              f'{taken} steps ({os.path.join(run_dir, "samples.png")} has 1,000). '
                              + '. '.join(helper.describe_faces(score).splitlines())))
    return lines


def first_link(folder):
    """The first symbolic link (or other thing that is neither a file nor a folder) under folder, else None."""
    for root, folders, files in os.walk(folder):
        for name in folders + files:
            mode = os.lstat(os.path.join(root, name)).st_mode
            if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                return os.path.relpath(os.path.join(root, name), folder)
    return None


def _samples(helper, run_dir):
    """The samples the hand-in's process kept, read as plain numbers (never as pickled objects), or None."""
    try:
        samples = helper.saved_samples(run_dir)
    except (OSError, ValueError) as error:
        print(f'unreadable samples: {error}')
        return None
    if samples is None or samples.dtype.kind not in 'fiu' or samples.ndim != 4 or not 0 < len(samples) <= 10000 \
            or samples.shape[1:3] != (28, 28) or samples.shape[3] not in (1, 3) or not np.all(np.isfinite(samples)):
        return None
    return samples


def format_lines(lines, width=118):
    """The review as a table for a terminal: result, rubric line, then the message wrapped beneath it (what the
    hand-in wrote in it inert)."""
    rubric_width = max(len(line.rubric) for line in lines)
    rows = []
    for line in lines:
        head = f'{line.result:<7}{line.rubric:<{rubric_width}}'
        message = textwrap.wrap(inert.terminal(line.message), width - 9) if line.message else []
        if message and len(head) + 2 + len(message[0]) <= width and len(message) == 1:
            rows.append(f'{head}  {message[0]}')
        else:
            rows.append(head.rstrip())
            rows += ['         ' + text for text in message]
    return '\n'.join(rows)


def passed(lines):
    return all(line.result != 'FAIL' for line in lines)


def result_of(path, lines):
    """One hand-in's review as JSON-ready data: what batch.py merges into the gradebook and feedback files."""
    return {'notebook': inert.clean(path), 'passed': passed(lines),
            'lines': [dataclasses.asdict(line) for line in lines]}


def write_result(path, result):
    """A review's JSON, there whole or not at all (a batch reviews again the hand-ins that have none)."""
    with open(path + '.partial', 'w') as out:
        json.dump(result, out, indent=1)
    os.replace(path + '.partial', path)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('notebook', help='the notebook handed in')
    parser.add_argument('--train', action='store_true', help='also train on MNIST and CelebA for a few minutes')
    parser.add_argument('--data-dir', help='the data folder for training (default: data/)')
    parser.add_argument('--output-dir', help="the hand-in's private folder (default: output/review/NAME with --train, "
                                             'else a temporary one)')
    parser.add_argument('--train-steps', type=int, help='steps of each training with --train (default: MNIST 600, '
                                                        'CelebA 300)')
    parser.add_argument('--json', metavar='PATH', help='also write the review as JSON there (one hand-in of a batch)')
    parser.add_argument('--quiet', action='store_true', help='print nothing (with --json)')
    sandbox.add_limit_options(parser)
    args = parser.parse_args(argv)
    if sandbox.unsupported():
        print(f'Not here: {sandbox.unsupported()}.', file=sys.stderr)
        return 2
    sandbox.ended_by_signals(signal.SIGINT, signal.SIGTERM)
    warnings.filterwarnings('ignore', message=r'.*`tf\.layers\.', category=UserWarning)  # as the notebook does
    say = (lambda *_, **__: None) if args.quiet else print
    # found, not imported: review() starts TensorFlow beside the hand-in's process
    checks = importlib.util.find_spec('problem_unittests').origin
    say(f'Review of {inert.clean(args.notebook)}, by the checks of {checks}\n', flush=True)
    try:
        lines = review(args.notebook, train=args.train, data_dir=args.data_dir, output_dir=args.output_dir,
                       steps=args.train_steps, limits=sandbox.limits_from(args))
    except sandbox.CannotRun as error:  # no result: the hand-in was not reviewed
        print(f'The review could not run here: {error}. Nothing was kept for this notebook; mend the machine and '
              'review it again.', file=sys.stderr)
        return sandbox.CANNOT_RUN
    if args.json:
        write_result(args.json, result_of(args.notebook, lines))
    say(format_lines(lines))
    verdict = passed(lines)
    say(f'\n{"Every" if verdict else "Not every"} PASS/FAIL line passes'
        + ('' if verdict else ': the FAIL lines say what to fix') + '.')
    return 0 if verdict else 1


if __name__ == '__main__':
    sys.exit(main())

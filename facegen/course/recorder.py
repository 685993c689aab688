"""The hand-in's side of a review: its functions loaded and run through the checks, every crossing written down.

This runs in the hand-in's own process (inside the sandbox, sandbox.py), the only process that ever executes a
learner's code. Its checks' verdicts count for nothing: it writes the evidence (evidence.py) of what the learner's
functions did to a descriptor the review reads, and the review judges that evidence in a process of its own
(judge.py). With --train it also trains the learner's train, as its notebook's training cells would, into runs of
the folder it is given, for the review to score.

    python -m facegen.course.recorder NOTEBOOK --evidence-fd 3 [--train --data-dir DATA --runs-dir RUNS ...]
"""
import facegen  # noqa: F401 (TensorFlow's start-up settings, before TensorFlow is imported)

import argparse
import ast
import collections.abc
import contextlib
import functools
import inspect
import io
import linecache
import math
import os
import sys
import traceback
import types
import warnings
from unittest import mock

import nbformat

from . import evidence, sandbox
from ..notebooks import loader as notebook_loader

MISSING = object()
CHECKS = ('test_model_inputs', 'test_model_loss', 'test_discriminator', 'test_generator', 'test_model_opt',
          'test_train')
TRAINING = (('mnist', 'MNIST'), ('celeba', 'CelebA'))


class NotCalledAgain(Exception):
    """A function that ran past its time limit earlier in this review, not called again."""


class Recording:
    """The evidence of one process: the learner's calls, what they made, and what they did with the checks'
    stand-ins, written as it happens."""

    def __init__(self, stream, tf, namespace):
        self.stream, self.tf, self.namespace = stream, tf, namespace
        self.loaded = dict(namespace)  # what the checks may replace while they run
        self.runners = []  # who runs now, innermost last: 'learner' or 'check'
        self.mark = None  # the graph, its operations, collections and watched calls at the last event
        self.keys, self.kept = {}, []
        self.replaced, self.forked = {}, False
        self.not_again = {}  # {function: why it is not called again}

    def write(self, kind, **fields):
        if self.forked:
            os._exit(0)  # a copy of this process the learner's code forked, back in the checks: it has no say
        self.stream.write(evidence.line(kind, **fields))
        self.stream.flush()

    def fork_made(self):
        self.forked = True

    def key_of(self, value):
        if id(value) not in self.keys:
            self.keys[id(value)] = len(self.keys)
            self.kept.append(value)  # an id stays this object's while the recording lasts
        return self.keys[id(value)]

    def encode(self, value):
        return evidence.encode(value, self.key_of)

    def learner_runs(self):
        return bool(self.runners) and self.runners[-1] == 'learner'

    def settle(self):
        """Write what the learner's code made since the last event; what the checks made, they make again."""
        graph, watched = self.tf.get_default_graph(), self._watched()
        operations = graph.get_operations()
        if self.mark is not None and self.mark['graph'] is not graph and self.learner_runs():
            self.write('graph')  # the learner's code opened a graph of its own
        if self.mark is not None and self.mark['graph'] is graph and self.learner_runs():
            names = {operation.name for operation in operations[self.mark['operations']:]}
            made = {key: [self._collected(item) for item in graph.get_collection(key)[count:]]
                    for key, count in self.mark['collections'].items()}
            made = {key: items for key, items in made.items() if items}
            if names or made:
                nodes = self.tf.GraphDef()
                nodes.versions.CopyFrom(graph.graph_def_versions)
                nodes.node.extend(node for node in graph.as_graph_def(from_version=self.mark['version']).node
                                  if node.name in names)
                self.write('made', nodes=evidence.proto_text(nodes), collections=made)
            for attribute, mocked in watched.items():
                for call in mocked.call_args_list[self.mark['calls'].get(id(mocked), 0):]:
                    self.write('observed', attribute=attribute, args=self.encode(tuple(call.args)),
                               kwargs=self.encode(dict(call.kwargs)))
        self.mark = {'graph': graph, 'operations': len(operations), 'version': graph.version + 1,
                     'collections': {key: len(graph.get_collection(key)) for key in evidence.COLLECTIONS},
                     'calls': {id(mocked): len(mocked.call_args_list) for mocked in watched.values()}}

    def _watched(self):
        """The tf attributes a check replaced by a mock to see the learner's calls (variable_scope...)."""
        return {name: value for name, value in vars(self.tf).items() if isinstance(value, mock.NonCallableMock)}

    def _collected(self, item):
        if isinstance(item, self.tf.Variable):
            return {'variable_def': evidence.proto_text(item.to_proto())}
        return self.encode(item)

    def call_learner(self, name, function, args, kwargs):
        """A learner's function, called by a check or by the learner's code."""
        outermost = not self.runners
        self.settle()
        self.write('enter', function=name, args=self.encode(args), kwargs=self.encode(kwargs))
        if outermost:
            args, kwargs = self._watch_arguments(args, kwargs)
            self._watch_globals()
        self.runners.append('learner')
        try:
            with self._watching_sessions() if outermost else contextlib.nullcontext():
                result = function(*args, **kwargs)
        except BaseException as error:
            self.settle()
            self.runners.pop()
            self.write('raise', function=name, error=self.error(error))
            raise
        finally:
            if outermost:
                self._unwatch_globals()
        self.settle()
        self.runners.pop()
        self.write('exit', function=name, result=self.encode(result))
        return result

    def call_check(self, kind, key, function, args, kwargs):
        """A check's callable (a stand-in, a stub, get_batches), called by the learner's code."""
        self.settle()
        self.write(kind, key=key, args=self.encode(args), kwargs=self.encode(kwargs))
        self.runners.append('check')
        try:
            result = function(*args, **kwargs)
        except BaseException as error:
            self.settle()
            self.runners.pop()
            self.write(f'{kind}_raise', key=key, error=self.error(error))
            raise
        self.settle()
        self.runners.pop()
        if isinstance(result, collections.abc.Iterator) and not isinstance(result, (str, bytes)):
            result = RecordedIterator(self, result)
            self.write(f'{kind}_return', key=key, result={'iterator': result.key})
        else:
            self.write(f'{kind}_return', key=key, result=self.encode(result))
        return result

    @staticmethod
    def error(error):
        return {'types': [cls.__name__ for cls in type(error).__mro__],
                'message': str(error)[:2000] + _where_in_the_cells(error)}

    def recorded_check(self, kind, key, function):
        @functools.wraps(function)
        def recorded(*args, **kwargs):
            return self.call_check(kind, key, function, args, kwargs)
        return recorded

    def _watch_arguments(self, args, kwargs):
        """The callables a check passes (get_batches), each call of them recorded."""
        def watched(key, value):
            if callable(value) and not isinstance(value, (type, Recorder)):
                return self.recorded_check('argument', key, value)
            return value
        return (tuple(watched(index, value) for index, value in enumerate(args)),
                {name: watched(name, value) for name, value in kwargs.items()})

    def _watch_globals(self):
        """The names of the learner's globals a check replaced (stand-in networks, stubs), each call recorded."""
        self.replaced = {name: value for name, value in self.namespace.items()
                         if value is not self.loaded.get(name, MISSING) and callable(value)}
        for name, value in self.replaced.items():
            self.namespace[name] = self.recorded_check('global', name, value)

    def _unwatch_globals(self):
        for name, value in self.replaced.items():
            self.namespace[name] = value
        self.replaced = {}

    @contextlib.contextmanager
    def _watching_sessions(self):
        """tf.Session, as the check left it, with the learner's sessions and runs recorded."""
        recording, base = self, self.tf.Session

        class RecordedSession(base):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, **kwargs)
                if recording.learner_runs():
                    recording.settle()
                    recording.write('session', session=recording.key_of(self))

            def run(self, fetches, feed_dict=None, *args, **kwargs):
                if recording.learner_runs() and id(self) in recording.keys:
                    recording.settle()
                    recording.write('run', session=recording.key_of(self), fetches=recording.encode(fetches),
                                    feeds=recording.encode(feed_dict))
                return super().run(fetches, feed_dict, *args, **kwargs)

            def close(self):
                if id(self) in recording.keys:
                    recording.write('close', session=recording.key_of(self))
                super().close()

        with mock.patch.object(self.tf, 'Session', RecordedSession):
            yield


class RecordedIterator:
    """An iterator a check gave the learner's code (get_batches' batches), each item taken recorded."""

    def __init__(self, recording, iterator):
        self.recording, self.iterator = recording, iterator
        self.key = recording.key_of(self)

    def __iter__(self):
        return self

    def __next__(self):
        self.recording.settle()
        self.recording.write('next', iterator=self.key)
        try:
            return next(self.iterator)
        except StopIteration:
            self.recording.write('stop', iterator=self.key)
            raise


class Recorder:
    """A learner's function as the checks and the learner's code call it: each call recorded."""

    def __init__(self, recording, name, function):
        functools.update_wrapper(self, function)
        self.__globals__ = function.__globals__  # the checks replace names there (mock.patch.dict)
        self.recording, self.name = recording, name

    def __call__(self, *args, **kwargs):
        why = self.recording.not_again.get(self.name)
        return self.recording.call_learner(self.name, self.__wrapped__ if why is None else
                                           functools.partial(_not_called_again, why), args, kwargs)


def _not_called_again(why, *args, **kwargs):
    raise NotCalledAgain(why)


def load(nb):
    """
    Execute the notebook's function cells without their checks, and what the other cells up to the first training
    cell define as Jupyter would have it when train runs: imports, functions and classes of the learner's own
    (`def leaky_relu`), constants (`epochs = 2`); not what they download, show or train
    :return: (namespace, {function: why it cannot be checked}, [why a cell is broken, for cells of no function])
    """
    namespace = notebook_loader.base_namespace()
    base = frozenset(namespace)
    problems, broken_cells, defined_in, training = {}, [], {}, False
    for number, cell in enumerate(nb.cells, 1):
        if cell.cell_type != 'code':
            continue
        text = notebook_loader.without_magics(cell.source)
        try:
            tree = ast.parse(text)
        except SyntaxError as error:
            named = [name for name in notebook_loader.FUNCTIONS if f'def {name}(' in cell.source]
            why = f'{_the_cell(named, number)} does not parse (line {error.lineno}: {error.msg}): fix its Python'
            problems.update({name: why for name in named}) if named else broken_cells.append(why)
            continue
        # A traceback's lines of this cell read from here: where in the learner's code an error was raised
        linecache.cache[f'<cell {number}>'] = (len(text), None, text.splitlines(True), f'<cell {number}>')
        names = [node.name for node in tree.body if isinstance(node, ast.FunctionDef)
                 and node.name in notebook_loader.FUNCTIONS]
        for name in names:
            defined_in.setdefault(name, []).append(number)
        if names:
            _execute(tree, number, names, namespace, problems, base)
        elif not training:
            _define(tree, namespace, base)
            training = 'helper.Dataset(' in cell.source
    for name, cells in defined_in.items():
        if len(cells) > 1:
            problems[name] = (f'{name} is defined in {len(cells)} cells (cells {" and ".join(map(str, cells))} from '
                              f'the top, text cells counted): the one run last wins in Jupyter; keep one')
    for name in notebook_loader.FUNCTIONS:
        if name not in defined_in and name not in problems:
            problems[name] = f'no cell defines {name}: put back the exercise\'s cell with `def {name}(` and write it'
    return namespace, problems, broken_cells


def _define(tree, namespace, base):
    """Run a cell's imports, function and class definitions and constant assignments into namespace, each alone
    (one that fails is left out: the check that needs it says what is missing)."""
    for node in tree.body:
        if _rebinds(node, base):
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.ClassDef)) or \
                isinstance(node, ast.Assign) and _constant(node.value):
            with contextlib.suppress(Exception), contextlib.redirect_stdout(io.StringIO()):
                exec(compile(ast.Module(body=[node], type_ignores=[]), '<cell>', 'exec'), namespace)


def _rebinds(node, base):
    """Whether an import binds a name of the base namespace, which the review gives the notebook itself: a 2017
    notebook's `import tensorflow as tf` meant TensorFlow 1, which is tf.compat.v1 here."""
    return isinstance(node, (ast.Import, ast.ImportFrom)) and \
        any((alias.asname or alias.name.split('.')[0]) in base for alias in node.names)


def _constant(value):
    """Whether an assigned value is a constant: a literal, or a name like tf.nn.leaky_relu."""
    try:
        ast.literal_eval(value)
        return True
    except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError):
        while isinstance(value, ast.Attribute):
            value = value.value
        return isinstance(value, ast.Name)


def _execute(tree, number, names, namespace, problems, base):
    """Run one function cell, less its calls of the checks (tests.test_...), into namespace."""
    body = [node for node in tree.body if not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Call) and
                                               isinstance(node.value.func, ast.Attribute) and
                                               isinstance(node.value.func.value, ast.Name) and
                                               node.value.func.value.id == 'tests')
            and not _rebinds(node, base)]
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            exec(compile(ast.Module(body=body, type_ignores=[]), f'<cell {number}>', 'exec'), namespace)
    except (Exception, SystemExit) as error:
        raised = f'{_the_cell(names, number)} raised {type(error).__name__}: {error}'
        problems.update({name: raised for name in names})


def _where_in_the_cells(error):
    """Where the learner's own code raised error, or called what raised it (TensorFlow, most often): its function,
    the line of its cell and that line; '' where none of its cells is in the traceback."""
    frames = traceback.extract_tb(error.__traceback__)
    cells = [frame for frame in frames if frame.filename.startswith('<cell ')]
    if not cells or ' (raised in ' in str(error):
        return ''
    frame = cells[-1]
    return f' (raised in {frame.name}, line {frame.lineno} of its cell: {(frame.line or "").strip()[:160]})'


def _the_cell(names, number):
    """A cell as a learner finds it in Jupyter, which numbers cells by their runs: by the functions it defines."""
    if names:
        return f'the cell that defines {" and ".join(names)}'
    return f'cell {number} from the top (text cells counted)'


class _Gone(types.SimpleNamespace):
    """A namespace of tf.contrib: a name it lacks is an AttributeError the checks explain (the tf that replaces it)."""

    def __getattr__(self, name):
        raise AttributeError(f"module 'tensorflow.compat.v1' has no attribute 'contrib' (not its {name}, which the "
                             'review does not run as TensorFlow 1 did)')


def tf1_contrib(tf):
    """The tf.contrib names 2017 answers use, with TensorFlow 1's meaning: TensorFlow 2 has no tf.contrib, and a
    2017 notebook is reviewed as it ran (a learner's notebook on TensorFlow 2 gets the check's message instead)."""
    def xavier_initializer(uniform=True, seed=None, dtype=tf.float32):
        return (tf.glorot_uniform_initializer if uniform else tf.glorot_normal_initializer)(seed=seed, dtype=dtype)

    def l2_regularizer(scale, scope=None):  # TensorFlow 1's: scale * sum(w ** 2) / 2
        return lambda weights: tf.multiply(float(scale), tf.nn.l2_loss(weights), name=scope)
    return _Gone(layers=_Gone(xavier_initializer=xavier_initializer, xavier_initializer_conv2d=xavier_initializer,
                              flatten=tf.layers.flatten, l2_regularizer=l2_regularizer), keras=tf.keras)


def tf1_reset_default_graph(tf):
    """tf.reset_default_graph as TensorFlow 1.0 to 1.2 ran it: inside a graph made the default (a training cell's
    `with tf.Graph().as_default():`) it reset only the global graph, which the code there does not use; TensorFlow
    1.3 on refuses it there (the review says so in a WARN line, scan.tf1_names)."""
    reset = tf.reset_default_graph

    def reset_default_graph():
        try:
            reset()
        except AssertionError:  # "Do not use tf.reset_default_graph() to clear nested graphs"
            pass
    return reset_default_graph


def signature(function):
    """[(name, kind, default)] of a function's parameters, the default None where there is none."""
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return None
    return [[p.name, p.kind.name, None if p.default is p.empty else {'default': evidence.encode(p.default, id)}]
            for p in parameters]


def record_checks(recording, checks, tf):
    """Run each check ({name: the check}, taken before the notebook's cells ran) on the recorded functions; what it
    concludes here counts for nothing."""
    for check, run_check in checks.items():
        recording.write('check', name=check)
        function = recording.namespace.get(check.replace('test_', '', 1))
        try:
            with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
                warnings.simplefilter('ignore')
                run_check(*((function, tf) if check in evidence.TAKES_TF else (function,)))
        except BaseException:  # noqa: B036 (the review judges; this process only records)
            pass
        recording.mark, recording.runners = None, []
        recording.write('check_end', name=check)


def record_training(recording, namespace, nb, datasets, data_dir, runs_dir, max_images, steps):
    """Train the learner's train on each dataset as its training cell would, into a run of runs_dir/DATASET."""
    from . import review
    chosen, constants = review.hyperparameters(nb), review.training_cell_constants(nb)
    for name, value in list(namespace.items()):  # training is judged by its samples, not by evidence of its calls
        if isinstance(value, Recorder):
            namespace[name] = value.__wrapped__
    for dataset, title in [(dataset, title) for dataset, title in TRAINING if dataset in datasets]:
        recording.write('training', dataset=dataset)
        namespace.update(constants.get(dataset, {}))  # as the training cell sets them before it trains
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                run_dir = train(namespace, chosen[dataset], dataset, title, data_dir,
                                os.path.join(runs_dir, dataset), max_images, steps[dataset])
        except BaseException as error:  # noqa: B036
            recording.write('training_end', dataset=dataset, error=recording.error(error))
            continue
        recording.write('training_end', dataset=dataset, run=os.path.relpath(run_dir, runs_dir))


def train(namespace, chosen, dataset, title, data_dir, runs_dir, max_images, steps):
    """One short training of the notebook's train, as its training cell calls it, in a new run of runs_dir;
    returns the run's folder."""
    import numpy as np
    import tensorflow.compat.v1 as tf

    import helper
    from .review import training_files
    source = helper.download_extract(dataset, data_dir)
    files = training_files(data_dir, dataset, max_images)
    data = helper.Dataset(dataset, files, seed=0)
    run = helper.TrainingRun(runs_dir, f'{title} ({source}), review', max_steps=steps, progress=None,
                             hyperparameters={**chosen, 'review': True})
    epochs = math.ceil(steps / max(1, len(files) // chosen['batch_size']))
    np.random.seed(0)
    with tf.Graph().as_default():
        tf.set_random_seed(0)
        namespace['train'](epochs, chosen['batch_size'], chosen['z_dim'], chosen['learning_rate'], chosen['beta1'],
                           data.get_batches, data.shape, data.image_mode, run)
    return run.run_dir


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('notebook')
    parser.add_argument('--evidence-fd', type=int, required=True, help='the descriptor the evidence goes to')
    parser.add_argument('--checks', default=','.join(CHECKS), help='the checks to run, in order')
    parser.add_argument('--train', action='store_true')
    parser.add_argument('--data-dir')
    parser.add_argument('--runs-dir')
    parser.add_argument('--max-images', type=int)
    parser.add_argument('--steps', type=int, nargs=2, metavar=('MNIST', 'CELEBA'), default=(600, 300))
    parser.add_argument('--datasets', default='mnist,celeba', help='the datasets to train on, in order')
    parser.add_argument('--memory-gb', type=float, required=True)
    parser.add_argument('--processes', type=int, required=True)
    parser.add_argument('--file-mb', type=int, required=True)
    parser.add_argument('--not-again', action='append', default=[], metavar='FUNCTION=WHY',
                        help='a function not to call again (it ran past its time limit in an earlier child)')
    args = parser.parse_args(argv)
    sandbox.limit_this_process(args.memory_gb, args.processes, args.file_mb)
    stream = os.fdopen(args.evidence_fd, 'wb')
    warnings.filterwarnings('ignore', message=r'.*`tf\.layers\.', category=UserWarning)  # as the notebook does
    import problem_unittests
    import tensorflow.compat.v1 as tf
    checks = {check: getattr(problem_unittests, check) for check in args.checks.split(',') if check}
    if not hasattr(tf, 'contrib'):  # a 2017 answer runs as TensorFlow 1 ran it (the review says so in a WARN line)
        tf.contrib = tf1_contrib(tf)
        tf.reset_default_graph = tf1_reset_default_graph(tf)
    nb = nbformat.read(args.notebook, as_version=4)
    namespace, problems, broken_cells = load(nb)
    recording = Recording(stream, tf, namespace)
    recording.not_again = dict(item.split('=', 1) for item in args.not_again)
    os.register_at_fork(after_in_child=recording.fork_made)
    defined = [name for name in notebook_loader.FUNCTIONS if callable(namespace.get(name))]
    recording.write('loaded', problems=problems, broken_cells=broken_cells,
                    functions={name: signature(namespace[name]) for name in defined},
                    names=sorted(name for name in namespace if not name.startswith('__')),
                    reads={name: sorted(problem_unittests.names_read(namespace[name])) for name in defined})
    for name in defined:
        namespace[name] = Recorder(recording, name, namespace[name])
    recording.loaded = dict(namespace)
    record_checks(recording, checks, tf)
    if args.train:
        record_training(recording, namespace, nb, args.datasets.split(','), args.data_dir, args.runs_dir,
                        args.max_images, dict(zip(('mnist', 'celeba'), args.steps)))
    recording.write('done')
    return 0


if __name__ == '__main__':
    sys.exit(main())

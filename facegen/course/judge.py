"""The judge: the checks run again on the evidence of a hand-in, in a sandboxed process of its own.

Each of the notebook's functions is a stand-in (Proxy) here. When a check calls one, the stand-in plays back what
the learner's function did in the hand-in's process (evidence.py): it adds the operations and variables that
function made to this process's graph, makes the calls it made (to the checks' stand-ins, to their mocks, to the
sessions it opened) and returns what it returned, or raises what it raised. The check then judges that graph and
those calls as it would have judged the function itself: it runs the graph in its own sessions, reads its
variables, counts the calls. Evidence that does not follow the check's own calls, in order and with the same
arguments, fails the check (Mismatch): the hand-in's process stopped, or something in it changed the checks.

What the judge runs is a hand-in's graph, and a graph is a program: only operation types of graph_ops' allow-list
are added (any other fails the check, naming it), and the judge itself runs as a program of its own (`main`),
started by the review in a sandbox with its own limits (judging.py): it reads one check's evidence a line on its
standard input and answers one line, the failure or None and the style warnings, on its answer descriptor.
What the hand-in's process says the learner's code called (`observed`: the checks' mocks) is played to the mock
only where the graph shows it: a tf.variable_scope call whose name the operations made in that call carry. Other
claims (tf.trainable_variables called, a grid shown) decide no more than a style warning.

    python -m facegen.course.judge --answer-fd 3 --deadline-s 300 --memory-gb 8 --processes 512 --file-mb 64
"""
import argparse
import contextlib
import dataclasses
import inspect
import io
import json
import os
import re
import sys
import warnings
from unittest import mock

from . import evidence, graph_ops, sandbox
from .judging import READY

MAX_REQUEST = evidence.MAX_STREAM  # one check's evidence, as the review sends it
KNOWN_ERRORS = (ValueError, TypeError, AttributeError, NameError, KeyError, IndexError, ZeroDivisionError,
                AssertionError, NotImplementedError, RuntimeError, ImportError, ArithmeticError, LookupError,
                MemoryError, RecursionError, OSError)


class Mismatch(AssertionError):
    """The evidence does not follow what the check asked of the learner's functions."""


class Dropped(Mismatch):
    """The evidence names what depends on an operation the review does not run."""


class Opaque:
    """An object the evidence names by its type alone."""

    def __init__(self, type_name):
        self.type_name = type_name

    def __repr__(self):
        return f'<{self.type_name} of the hand-in>'


class HandInError(Exception):
    """An exception of a type this process does not rebuild (SystemExit, a learner's own class)."""


@dataclasses.dataclass
class Call:
    """One call of a learner's function being played back: what it made, and the mocks' calls it claims."""
    name: str
    operations: set = dataclasses.field(default_factory=set)
    claims: list = dataclasses.field(default_factory=list)


class Proxy:
    """One of the notebook's functions, as the checks see it here: its calls played back from the evidence."""

    def __init__(self, replay, name, parameters):
        self.replay, self.__name__, self.__qualname__ = replay, name, name
        self.__module__, self.__doc__ = '__main__', None
        self.__signature__ = inspect.Signature([inspect.Parameter(
            parameter, getattr(inspect.Parameter, kind),
            default=inspect.Parameter.empty if default is None else replay.decode(default['default']))
            for parameter, kind, default in parameters]) if parameters is not None else None
        self.__globals__ = replay.globals

    def __call__(self, *args, **kwargs):
        return self.replay.call(self.__name__, args, kwargs)


class Replay:
    """The evidence of one check, played back through the stand-ins in this process's graph."""

    def __init__(self, events, tf, loaded, ended):
        """
        :param events: The events between the check's `check` and `check_end`
        :param tf: The tf module the checks are given
        :param loaded: The `loaded` event: the functions' signatures and the names of the notebook's globals
        :param ended: Why the evidence may stop early (how the hand-in's process ended), for the message
        """
        self.events, self.position, self.tf, self.ended = events, 0, tf, ended
        self.sessions, self.session_keys, self.iterators = {}, {}, {}
        self.variables, self.renamed, self.callables = {}, {}, {}
        self.depth, self.graph, self.dropped, self.calls = 0, None, {}, []
        from ..notebooks import loader
        base = loader.base_namespace()
        self.globals = {name: base.get(name, Opaque('value')) for name in loaded.get('names', [])}
        self.proxies = {name: Proxy(self, name, parameters) for name, parameters in loaded['functions'].items()}
        for name, proxy in self.proxies.items():  # the names its code reads, for a style warning's sake alone
            proxy.names_read = loaded.get('reads', {}).get(name, [])
        self.globals.update(self.proxies)

    # Reading the evidence
    def take(self, *kinds):
        if self.position >= len(self.events):
            raise Mismatch(self.ended)
        event = self.events[self.position]
        self.position += 1
        if kinds and event['kind'] not in kinds:
            raise Mismatch(f"the hand-in's process did {self.described(event)} where the check expected "
                           f"{' or '.join(kinds)}: something in it changed the checks or the functions' calls "
                           "(see the WARN lines)")
        return event

    @staticmethod
    def described(event):
        return f"'{event['kind']}'" + (f" of {event.get('function') or event.get('key')}"
                                        if event.get('function') or event.get('key') is not None else '')

    # The learner's functions
    def call(self, name, args, kwargs):
        event = self.take('enter')
        if event['function'] != name or self.encode(args) != event['args'] or \
                self.encode(kwargs) != event['kwargs']:
            raise Mismatch(f"the hand-in's process called {event['function']} with other arguments than the check "
                           f'called {name} with: something in it changed the checks (see the WARN lines)')
        if self.depth == 0:
            self.callables = {**dict(enumerate(args)), **kwargs}
        self.depth += 1
        self.calls.append(Call(name))
        try:
            return self.play(name)
        finally:
            self.depth -= 1
            self.calls.pop()

    def play(self, name):
        """Play the body of a call of `name` back, until it returns or raises."""
        while True:
            event = self.take()
            kind = event['kind']
            if kind == 'exit' and event['function'] == name:
                self.play_claims()
                return self.decode(event['result'])
            if kind == 'raise' and event['function'] == name:
                self.play_claims(corroborate=False)  # a call that raised fails its check: its claims explain why
                raise self.error(event['error'])
            if kind == 'made':
                self.add(event, name)
            elif kind == 'observed':
                self.calls[-1].claims.append(event)
            elif kind == 'enter':
                if event.get('function') not in self.proxies:
                    raise Mismatch(f"the hand-in's process called {event.get('function')!r}, none of the notebook's "
                                   'functions: something in it changed the checks (see the WARN lines)')
                self.position -= 1  # the call reads its own `enter`
                try:
                    self.proxies[event['function']](*self.decode(event['args']), **self.decode(event['kwargs']))
                except Mismatch:
                    raise
                except Exception:  # noqa: BLE001,S110 (whether the learner's code caught it, the evidence says next)
                    pass
            elif kind in ('global', 'argument'):
                self.call_check(event)
            elif kind == 'next':
                with contextlib.suppress(StopIteration):
                    next(self.iterators[event['iterator']])
            elif kind == 'stop':
                pass
            elif kind == 'graph':
                raise Mismatch(f'{name} opened a graph of its own (tf.Graph().as_default()), where the checks give it '
                               'theirs: build in the default graph (the training cells open one around train)')
            elif kind == 'session':
                self.sessions[event['session']] = self.tf.Session()
                self.session_keys[id(self.sessions[event['session']])] = event['session']
            elif kind == 'run':
                self.run(event)
            elif kind == 'close':
                self.sessions[event['session']].close()
            else:
                raise Mismatch(f"the hand-in's process did {self.described(event)} inside {name}: something in it "
                               'changed the checks (see the WARN lines)')

    def play_claims(self, corroborate=True):
        """The mocks' calls the current call claims, played to the check's mocks where its graph shows them."""
        call = self.calls[-1]
        for event in call.claims:
            watched = getattr(self.tf, str(event.get('attribute')), None)
            if not isinstance(watched, mock.NonCallableMock):
                continue
            args, kwargs = self.decode(event['args']), self.decode(event['kwargs'])
            if event['attribute'] == 'variable_scope' and corroborate:
                self.corroborate_scope(call, args, kwargs)
            with contextlib.suppress(Exception):
                watched(*args, **kwargs)

    def corroborate_scope(self, call, args, kwargs):
        """A claimed tf.variable_scope(name, ...) call stands only where the operations this call made carry the
        name (whether it made variables, the check reads from the graph itself)."""
        name = args[0] if args else kwargs.get('name_or_scope')
        if not isinstance(name, str):
            return  # the check's own comparison fails it
        carried = re.compile(rf'{re.escape(name)}(_\d+)?/')
        if not any(carried.match(operation) for operation in call.operations):
            raise Mismatch(f"the hand-in's process says {call.name} called tf.variable_scope({name!r}), but no "
                           'operation it made carries that name: something in it wrote evidence of its own (see the '
                           'WARN lines)')

    def run(self, event):
        """Run what the learner's code ran in a session, unless it reaches outside the graph (a Saver's save)."""
        try:
            fetches, feeds = self.decode(event['fetches']), self.decode(event['feeds'])
            for name in self.names_in(event['fetches']) + self.names_in(event['feeds']):
                self.refuse_dropped(name.split(':')[0])  # a session takes names as well as tensors
        except Dropped:
            return
        # The learner's code saw the same error, and the evidence goes on with what it did then.
        with contextlib.suppress(self.tf.errors.OpError, ValueError, TypeError, KeyError):
            self.sessions[event['session']].run(fetches, feed_dict=feeds)

    @classmethod
    def names_in(cls, value):
        """The strings of an encoded value (outside its arrays): what a session would read as names."""
        if isinstance(value, str):
            return [value]
        if isinstance(value, list):
            return [name for item in value for name in cls.names_in(item)]
        if isinstance(value, dict) and list(value) == ['tuple']:
            return cls.names_in(value['tuple'])
        if isinstance(value, dict) and list(value) == ['dict']:
            return cls.names_in([part for pair in value['dict'] for part in pair])
        return []

    def call_check(self, event):
        """The learner's code called one of the check's callables: call it here, with the same arguments."""
        kind, key = event['kind'], event['key']
        target = self.globals.get(key) if kind == 'global' else self.callables.get(key)
        if not callable(target) or isinstance(target, Proxy):
            raise Mismatch(f"the hand-in's process called {key} as a check's stand-in where the check has none")
        raised = None
        try:
            result = target(*self.decode(event['args']), **self.decode(event['kwargs']))
        except Mismatch:
            raise
        except Exception as error:  # noqa: BLE001 (the evidence says whether the learner's code saw it too)
            raised, result = error, None
        after = self.take(f'{kind}_return', f'{kind}_raise')
        if (after['kind'] == f'{kind}_raise') != (raised is not None):
            raise Mismatch(f"the check's {key} {'raised' if raised else 'returned'} here and did not in the hand-in's "
                           "process: something in it changed the checks (see the WARN lines)")
        if raised is None:
            if isinstance(after['result'], dict) and 'iterator' in after['result']:
                self.iterators[after['result']['iterator']] = iter(result)
            else:
                self.rename(after['result'], result)

    # What the learner's functions made
    def add(self, event, function):
        """Add what a learner's function made to the check's graph, less a Saver's save and restore operations
        (graph_ops.DROPPED) and all that depends on them; a type off graph_ops' allow-list fails the check."""
        graph = self.in_graph()
        made = evidence.proto_from(event['nodes'], self.tf.GraphDef)
        refused = graph_ops.refused(node.op for node in made.node)
        if refused:
            raise graph_ops.Refused(
                f"{function} builds operations the review does not run: {', '.join(refused[:5])}"
                f"{' ...' if len(refused) > 5 else ''}. Build the networks of TensorFlow's maths, layers and "
                'optimizers alone (tf.layers, tf.nn, tf.train): these reach outside the graph or are not ones the '
                'course uses')
        for call in self.calls:
            call.operations.update(node.name for node in made.node)
        self.dropped.update({node.name: node.op for node in made.node if node.op in graph_ops.DROPPED})
        spreading = True
        while spreading:  # what depends on a dropped operation goes with it, named by the operation's type
            spreading = False
            for node in made.node:
                source = None if node.name in self.dropped else self.source(node, self.dropped)
                if source is not None:
                    self.dropped[node.name], spreading = self.dropped[source], True
        nodes = self.tf.GraphDef()
        nodes.versions.CopyFrom(made.versions)
        nodes.node.extend(node for node in made.node if node.name not in self.dropped)
        for node in nodes.node:  # colocation with the check's own nodes, devices: one CPU here, nothing to place
            node.device = ''
            if '_class' in node.attr:
                del node.attr['_class']
        names = {node.name for node in nodes.node}
        inputs = {source for node in nodes.node for source in node.input
                  if source.lstrip('^').split(':')[0] not in names}
        input_map = {}
        for source in inputs:
            if source.startswith('^'):
                operation = self.operation(source[1:])
                input_map[source] = operation.outputs[0] if operation.outputs else operation
            else:
                input_map[source] = self.tensor(source if ':' in source else source + ':0')
        try:
            self.tf.import_graph_def(nodes, input_map=input_map, name='')
        except (ValueError, TypeError) as error:
            raise Mismatch(f"the graph the learner's functions made does not fit the check's: {error}") from None
        for key, items in event['collections'].items():
            for item in items:
                graph.add_to_collection(key, self.variable(item['variable_def']) if 'variable_def' in item
                                        else self.decode(item))

    @staticmethod
    def source(node, among):
        """The first input of node (data or control) among the given names, else None."""
        return next((name for name in (source.lstrip('^').split(':')[0] for source in node.input) if name in among),
                    None)

    def in_graph(self):
        """The check's graph now; its variables and names start afresh with each graph a check makes."""
        graph = self.tf.get_default_graph()
        if graph is not self.graph:
            self.graph, self.variables, self.renamed, self.dropped = graph, {}, {}, {}
        return graph

    def variable(self, text):
        from tensorflow.core.framework import variable_pb2
        definition = evidence.proto_from(text, variable_pb2.VariableDef)
        if definition.variable_name not in self.variables:
            self.variables[definition.variable_name] = self.tf.Variable.from_proto(definition)
        return self.variables[definition.variable_name]

    def tensor(self, name):
        self.in_graph()
        if name in self.renamed:
            return self.renamed[name]
        self.refuse_dropped(name.split(':')[0])
        try:
            return self.tf.get_default_graph().get_tensor_by_name(name)
        except (KeyError, ValueError):
            raise Mismatch(f"the evidence names a tensor {name!r} the check's graph does not have") from None

    def operation(self, name):
        self.in_graph()
        self.refuse_dropped(name)
        try:
            return self.tf.get_default_graph().get_operation_by_name(name)
        except (KeyError, ValueError):
            raise Mismatch(f"the evidence names an operation {name!r} the check's graph does not have") from None

    def refuse_dropped(self, name):
        if name in self.dropped:
            kind = ("a TensorBoard summary (tf.summary)" if self.dropped[name] in graph_ops.SUMMARIES else
                    "a tf.train.Saver's save or restore")
            raise Dropped(f"{name} is or depends on {kind} ({self.dropped[name]}), which the review leaves out "
                          "unrun: where the course's API asks for a tensor of the networks (a loss, an optimizer's "
                          "operation), give that")

    def rename(self, recorded, value):
        """Where a check's callable returned here a tensor of another name than there, use this one for that name."""
        if isinstance(recorded, dict) and 'tensor' in recorded and isinstance(value, self.tf.Tensor):
            if recorded['tensor'] != value.name:
                self.renamed[recorded['tensor']] = value
        elif isinstance(recorded, dict) and 'tuple' in recorded and isinstance(value, tuple):
            for item, part in zip(recorded['tuple'], value):
                self.rename(item, part)

    # Values
    def encode(self, value):
        """A value as the hand-in's process would have written it (tensors by the names the evidence uses)."""
        names = {id(tensor): name for name, tensor in self.renamed.items()}

        def named(encoded, original):
            if isinstance(original, self.tf.Tensor) and id(original) in names:
                return {'tensor': names[id(original)]}
            if isinstance(original, (tuple, list)) and isinstance(encoded, (dict, list)):
                items = encoded['tuple'] if isinstance(encoded, dict) else encoded
                items = [named(item, part) for item, part in zip(items, original)]
                return {'tuple': items} if isinstance(encoded, dict) else items
            return encoded
        return named(evidence.encode(value, lambda session: self.session_keys.get(id(session))), value)

    def decode(self, value):
        if isinstance(value, list):
            return [self.decode(item) for item in value]
        if not isinstance(value, dict):
            return value
        if len(value) != 1:
            raise Mismatch(f'the evidence holds a value this review cannot read: {str(value)[:100]}')
        (kind, item), = value.items()
        decoders = {
            'tuple': lambda: tuple(self.decode(part) for part in item),
            'dict': lambda: {self.decode(key): self.decode(part) for key, part in item},
            'tensor': lambda: self.tensor(item),
            'variable': lambda: self.variables[item] if item in self.variables else self.tensor(item),
            'op': lambda: self.operation(item),
            'dtype': lambda: self.tf.as_dtype(item),
            'array': lambda: evidence.array_from(item),
            'reuse': lambda: self.tf.AUTO_REUSE,
            'session': lambda: self.sessions[item],
            'float': lambda: float(item),
            'object': lambda: Opaque(item),
            'default': lambda: self.decode(item),
        }
        if kind not in decoders:
            raise Mismatch(f'the evidence holds a value this review cannot read: {str(value)[:100]}')
        try:
            return decoders[kind]()
        except (KeyError, ValueError, TypeError) as error:
            raise Mismatch(f'the evidence holds a value this review cannot read ({error})') from None

    def error(self, recorded):
        """The exception the learner's code raised, rebuilt: its own type where it is Python's or TensorFlow's."""
        types, message = recorded.get('types') or ['Exception'], str(recorded.get('message', ''))
        errors = {cls.__name__: cls for cls in KNOWN_ERRORS}
        errors.update({name: cls for name, cls in vars(self.tf.errors).items()
                       if isinstance(cls, type) and issubclass(cls, self.tf.errors.OpError)})
        base = next((errors[name] for name in types if name in errors), HandInError)
        cls = base if base.__name__ == types[0] else type(str(types[0]), (base,), {})
        rebuilt = cls(None, None, message) if issubclass(cls, self.tf.errors.OpError) else cls(message)
        rebuilt.from_hand_in = True  # the learner's code raised it: its FAIL says so (learners_error)
        return rebuilt


@contextlib.contextmanager
def sessions_with_a_deadline(tf, seconds):
    """tf.Session, for the check's sessions and the ones played back: each run stopped after `seconds` (a graph
    made to run for ever fails its check here instead of stopping the review)."""
    real = tf.Session

    class DeadlineSession(real):
        def __init__(self, target='', graph=None, config=None):
            config = config or tf.ConfigProto()
            config.operation_timeout_in_ms = int(seconds * 1000)
            super().__init__(target, graph, config)

    with mock.patch.object(tf, 'Session', DeadlineSession):
        yield


def judge(check, events, loaded, ended, problem_unittests, tf, function=None, deadline_s=300):
    """
    One check on the evidence of the hand-in's functions
    :param check: Its name in problem_unittests (test_discriminator...)
    :param events: The evidence between its `check` and `check_end` events
    :param loaded: The hand-in's `loaded` event
    :param ended: What to say if the evidence stops before the check does
    :param function: The function it checks (default: the check's name less test_)
    :param deadline_s: How long one session run may take here
    :return: (the failure's message or None, [the warnings' messages])
    """
    replay = Replay(events, tf, loaded, ended)
    proxy = replay.proxies[function or check.replace('test_', '', 1)]
    args = (proxy, tf) if check in evidence.TAKES_TF else (proxy,)
    with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stdout(io.StringIO()), \
            sessions_with_a_deadline(tf, deadline_s):
        warnings.simplefilter('always', problem_unittests.StyleWarning)
        try:
            getattr(problem_unittests, check)(*args)
            failure = None
        except AssertionError as error:
            failure = str(error)
        except HandInError as error:
            failure = f'not checked: {error}' if type(error).__name__ == 'NotCalledAgain' else \
                learners_error(proxy.__name__, error)
        except Exception as error:  # noqa: BLE001 (any error of a check is its FAIL line)
            failure = learners_error(proxy.__name__, error) if getattr(error, 'from_hand_in', False) else \
                f'{type(error).__name__}: {str(error)[:300]}'
        finally:
            for session in replay.sessions.values():
                session.close()
    return failure, list(dict.fromkeys(str(w.message) for w in caught  # once each, not once per channel count
                                       if issubclass(w.category, problem_unittests.StyleWarning)))


# What to do about the errors an unfinished notebook raises, by their type
ADVICE = {'UnboundLocalError': 'it reads a variable before assigning it on some path: assign it before the if or the '
                               'loop that sets it',
          'NameError': 'a name no cell defines before it runs: is it misspelt, or defined in a cell not run yet?',
          'IndexError': 'an index past the end of a list or an array', 'KeyError': 'a key the dict does not hold'}


def learners_error(function, error):
    """A FAIL line for an error the learner's own code raised: the function first, then Python's or TensorFlow's
    words with the learner's line (the recorder adds it: "(raised in train, line 3 of its cell: ...)"), then what
    to do where the type says."""
    name = type(error).__name__
    message, _, where = str(error).partition(' (raised in ')
    advice = next((ADVICE[cls.__name__] for cls in type(error).__mro__ if cls.__name__ in ADVICE), None)
    return (f'{function} raised {name}: {message[:300]}' + (f' (raised in {where}' if where else '')
            + (f': {advice}' if advice else ''))


def answer(request, problem_unittests, tf, deadline_s):
    """The answer to one request of the review: {check, function, failure, warnings}."""
    failure, warned = judge(request['check'], request['events'], request['loaded'], request['ended'],
                            problem_unittests, tf, request.get('function'), deadline_s)
    return {'check': request['check'], 'function': request.get('function'), 'failure': failure, 'warnings': warned}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--answer-fd', type=int, required=True, help='the descriptor the answers go to')
    parser.add_argument('--deadline-s', type=float, required=True, help='how long one session run may take')
    parser.add_argument('--memory-gb', type=float, required=True)
    parser.add_argument('--processes', type=int, required=True)
    parser.add_argument('--file-mb', type=int, required=True)
    args = parser.parse_args(argv)
    sandbox.limit_this_process(args.memory_gb, args.processes, args.file_mb)
    answers = os.fdopen(args.answer_fd, 'wb')
    warnings.filterwarnings('ignore', message=r'.*`tf\.layers\.', category=UserWarning)  # as the notebook does
    import problem_unittests
    import tensorflow.compat.v1 as tf
    answers.write(READY)  # before any evidence: a judge that never says it is the machine's fault
    answers.flush()
    for raw in sandbox.read_lines(sys.stdin.buffer, MAX_REQUEST, MAX_REQUEST * 16):
        if raw is None:
            return 2
        with contextlib.redirect_stdout(io.StringIO()):
            reply = answer(json.loads(raw), problem_unittests, tf, args.deadline_s)
        answers.write(json.dumps(reply).encode() + b'\n')
        answers.flush()
    return 0


if __name__ == '__main__':  # python -m imports facegen first: TensorFlow's start-up settings
    sys.exit(main())

"""What a hand-in's process tells the review: the evidence of what the learner's functions did, one JSON object a line.

The review never runs a hand-in's code in its own process, so it cannot ask a learner's function for a tensor. The
hand-in's process (recorder.py) runs the checks on the learner's functions and writes down every crossing between
the checks and the learner's code; the review (judge.py) runs the same checks again on stand-ins that play those
crossings back. What the review judges is therefore what the learner's functions built (their graph, variables and
collections, their calls and their sessions' runs), never what the hand-in's process says about it: a process
whose code changed the checks, printed a table or exited early leaves evidence that does not fit the checks, and
the check fails.

The events, in the order they happened ("function" is one of the notebook's functions; a "value" is `encode`'s):
    check {name} ... check_end {name}          one check of problem_unittests
    enter {function, args, kwargs}             a learner's function was called
    exit {function, result} | raise {function, error}
    made {nodes, collections}                  what the learner's code added to the graph since the last event
    observed {attribute, args, kwargs}         the learner's code called a tf attribute the check watches (a mock)
    global {key, args, kwargs} ... global_return {key, result} | global_raise {key, error}
                                               the learner's code called a name of its globals the check replaced
    argument {key, ...} ... argument_return | argument_raise
                                               the learner's code called a callable the check passed it
    next {iterator} | stop {iterator}          it took the next item of an iterator the check gave it
    session {session} | run {session, fetches, feeds} | close {session}
                                               the learner's code opened a session, ran it, closed it
    graph                                      the learner's code made another graph the default one
A line is at most MAX_LINE bytes, a stream at most MAX_STREAM bytes and MAX_EVENTS lines (the solution's review
writes 144 events, 2 MB, its largest line 0.9 MB): the review holds no more of a hand-in than that.
"""
import base64
import functools
import io
import json

import numpy as np

from . import inert

MAX_LINE = 16 * 2 ** 20
MAX_STREAM = 64 * 2 ** 20
MAX_EVENTS = 20000
# The checks that take the tf module beside the function
TAKES_TF = ('test_discriminator', 'test_generator', 'test_model_opt', 'test_train')
# The graph collections a learner's function adds to that the checks and the sessions read.
COLLECTIONS = ('variables', 'trainable_variables', 'local_variables', 'model_variables', 'update_ops',
               'moving_average_variables')


def line(kind, **fields):
    """One event as the bytes of its line."""
    return json.dumps({'kind': kind, **fields}, separators=(',', ':'), allow_nan=False).encode() + b'\n'


def _event(kind, required=(), **fields):
    """The schema of one kind of event: its fields' schemas, those named required."""
    return {'properties': {'kind': {'const': kind}, **fields}, 'required': ['kind', *required]}


TEXT, KEY, VALUE = {'type': 'string'}, {'type': ['string', 'integer']}, {}  # VALUE: `encode`'s, replayed by the judge
TEXTS = {'type': 'array', 'items': TEXT}
ERROR = {'type': 'object', 'properties': {'types': TEXTS, 'message': TEXT}, 'required': ['types', 'message']}
CALL = {'key': KEY, 'args': VALUE, 'kwargs': VALUE}
PARAMETERS = {'type': ['array', 'null'], 'items': {'type': 'array', 'prefixItems': [TEXT, TEXT, {
    'type': ['object', 'null'], 'required': ['default']}], 'minItems': 3, 'maxItems': 3}}
# Every event a hand-in's process may write, each field the type its readers take: anything else is not evidence.
# (`ended` is the review's own, never the hand-in's.)
SCHEMA = {'type': 'object', 'oneOf': [
    _event('loaded', ('problems', 'broken_cells', 'functions', 'names'),
           problems={'type': 'object', 'additionalProperties': TEXT}, broken_cells=TEXTS,
           functions={'type': 'object', 'additionalProperties': PARAMETERS}, names=TEXTS,
           reads={'type': 'object', 'additionalProperties': TEXTS}),
    _event('check', ('name',), name=TEXT), _event('check_end', ('name',), name=TEXT),
    _event('enter', ('function', 'args', 'kwargs'), function=TEXT, args=VALUE, kwargs=VALUE),
    _event('exit', ('function', 'result'), function=TEXT, result=VALUE),
    _event('raise', ('function', 'error'), function=TEXT, error=ERROR),
    _event('made', ('nodes', 'collections'), nodes=TEXT, collections={
        'type': 'object', 'additionalProperties': {'type': 'array'}}),
    _event('observed', ('attribute', 'args', 'kwargs'), attribute=TEXT, args=VALUE, kwargs=VALUE),
    *[_event(kind, ('key', 'args', 'kwargs'), **CALL) for kind in ('global', 'argument')],
    *[_event(f'{kind}_return', ('key', 'result'), key=KEY, result=VALUE) for kind in ('global', 'argument')],
    *[_event(f'{kind}_raise', ('key', 'error'), key=KEY, error=ERROR) for kind in ('global', 'argument')],
    _event('next', ('iterator',), iterator=KEY), _event('stop', ('iterator',), iterator=KEY),
    _event('session', ('session',), session=KEY), _event('close', ('session',), session=KEY),
    _event('run', ('session', 'fetches', 'feeds'), session=KEY, fetches=VALUE, feeds=VALUE),
    _event('graph'), _event('done'), _event('training', ('dataset',), dataset=TEXT),
    _event('training_end', ('dataset',), dataset=TEXT, run=TEXT, error=ERROR)]}


@functools.cache
def _validator():
    import jsonschema
    return jsonschema.Draft202012Validator(SCHEMA)


def parse(raw):
    """The event of one line, checked against SCHEMA and every string in it made safe (inert.clean), or None where
    the line is not one: what reads an event needs no check of its own."""
    try:
        event = inert.clean(json.loads(raw))
    except (ValueError, RecursionError):  # not JSON, or nested past what the parser follows
        return None
    return event if _validator().is_valid(event) else None


def array_text(array):
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(array), allow_pickle=False)
    return base64.b64encode(buffer.getvalue()).decode()


def array_from(text):
    return np.load(io.BytesIO(base64.b64decode(text)), allow_pickle=False)


def proto_text(message):
    """A protocol buffer (a GraphDef, a VariableDef) as text for a line."""
    return base64.b64encode(message.SerializeToString()).decode()


def proto_from(text, message_class):
    return message_class.FromString(base64.b64decode(text))


def encode(value, key_of):
    """
    A value crossing between the checks and the learner's code, as JSON: tensors, operations and variables by name,
    arrays as .npy, sessions and iterators by a key, other objects by their type alone
    :param value: What crossed
    :param key_of: A function giving a session's or an iterator's key
    """
    import tensorflow.compat.v1 as tf
    from tensorflow.python.client.session import BaseSession  # tf.Session itself is replaced while a check runs
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, np.ndarray):
        number = value.item() if isinstance(value, np.generic) else value
        return number if isinstance(number, int) or np.isfinite(number) else {'float': repr(float(number))}
    if isinstance(value, tuple):
        return {'tuple': [encode(item, key_of) for item in value]}
    if isinstance(value, list):
        return [encode(item, key_of) for item in value]
    if isinstance(value, dict):
        return {'dict': [[encode(k, key_of), encode(v, key_of)] for k, v in value.items()]}
    if isinstance(value, tf.Variable):
        return {'variable': value.name}
    if isinstance(value, tf.Tensor):
        return {'tensor': value.name}
    if isinstance(value, tf.Operation):
        return {'op': value.name}
    if isinstance(value, tf.DType):
        return {'dtype': value.name}
    if isinstance(value, np.ndarray):
        return {'array': array_text(value)}
    if value is tf.AUTO_REUSE:
        return {'reuse': 'AUTO_REUSE'}
    if isinstance(value, BaseSession):
        return {'session': key_of(value)}
    return {'object': type(value).__name__}

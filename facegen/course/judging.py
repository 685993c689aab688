"""The review's side of the judge: one sandboxed judge process, asked one check at a time, its answers validated.

The review's own process never runs TensorFlow on anything a hand-in made: it sends each check's evidence to the
judge (judge.py, started by sandbox.start with its own limits, no network, no folder it can write) and reads back
one small answer. A judge that dies, exits, runs past the time limit or answers what is not an answer leaves that
check a FAIL saying the function could not be judged, and the next check gets a fresh judge.
"""
import json
import os
import queue
import subprocess
import threading

from . import inert, sandbox

MAX_ANSWER = 2 ** 16  # one answer line, in bytes
MAX_MESSAGE = 4000  # a failure's message, in characters
MAX_WARNINGS = 20
STARTUP_S = 60  # how long a judge may take to load TensorFlow and say it is ready
READY = b'{"ready": true}\n'  # what a judge says first, before it reads any evidence
GARBLED = b''  # what the reader passes on for a line past its limit


class Judge:
    """The judge's process for one hand-in: started at once (TensorFlow loads while the hand-in's process runs),
    asked check by check, started again after one that failed."""

    def __init__(self, limits, log_path):
        self.limits, self.log_path, self.started, self.ready = limits, log_path, None, False
        self.start()

    def start(self):
        read_end, write_end = os.pipe()
        self.started = sandbox.start(
            'facegen.course.judge', ['--answer-fd', str(write_end), '--deadline-s', str(self.limits.check_s),
                                     *sandbox.limit_arguments(self.limits)],
            self.limits, self.log_path, pass_fds=(write_end,), stdin=subprocess.PIPE)
        os.close(write_end)
        self.answers = queue.Queue()
        threading.Thread(target=self._read, args=(os.fdopen(read_end, 'rb'), self.answers), daemon=True).start()

    @staticmethod
    def _read(stream, answers):
        """One judge's answers into its own queue: the reader of a judge ended before never reaches the next's."""
        for raw in sandbox.read_lines(stream, MAX_ANSWER, MAX_ANSWER * 64):
            answers.put(GARBLED if raw is None else raw)
            if raw is None:
                break
        stream.close()
        answers.put(None)

    def ask(self, check, function, events, loaded, ended):
        """(the failure's message or None, [the style warnings]) of one check on a function's evidence."""
        if self.started is None:
            self.start()
        if not self.ready:
            self.wait_until_ready()
        request = json.dumps({'check': check, 'function': function, 'events': events, 'loaded': loaded,
                              'ended': ended}).encode() + b'\n'
        threading.Thread(target=self._send, args=(self.started.process.stdin, request), daemon=True).start()
        try:
            raw = self.answers.get(timeout=self.limits.check_s)
        except queue.Empty:
            return self._failed(function, f'it ran past its time limit ({self.limits.check_s:g} s)')
        reply = validated(raw, check, function)
        if reply is None:
            return self._failed(function, 'its answer was not one' if raw is not None else self._ended())
        return reply

    def _ended(self):
        """Why a judge's answers ended: its exit status, or that it closed them and went on (it is killed)."""
        try:
            return f'its process ended (exit status {self.started.process.wait(timeout=sandbox.LINGER_S)})'
        except subprocess.TimeoutExpired:
            return 'closed its answers without ending'

    def wait_until_ready(self):
        """Wait for a started judge to say it is ready (TensorFlow loaded), before it has seen any evidence: one that
        does not is the machine's fault (sandbox.CannotRun)."""
        try:
            said = self.answers.get(timeout=STARTUP_S)
        except queue.Empty:
            said = None
        if said != READY:
            self.close()
            raise sandbox.CannotRun(f'the judge does not start (the last line of its log, {self.log_path}: '
                                    f'{sandbox.last_line(self.log_path)!r})')
        self.ready = True

    @staticmethod
    def _send(pipe, request):
        try:
            pipe.write(request)
            pipe.flush()
        except (BrokenPipeError, ValueError, OSError):
            pass  # the judge ended: its answer says so

    def _failed(self, function, why):
        self.close()
        return (f'{function} could not be judged: the judge {why}. A graph that makes the judge end, hang or run '
                'out of memory fails here; review it again where the machine is not at fault', [])

    def close(self):
        if self.started is not None:
            self.started.end()
            self.started, self.ready = None, False


def validated(raw, check, function):
    """(failure, warnings) from one answer line, or None where it is not the answer to that request."""
    try:
        reply = json.loads(raw) if raw is not None else None
    except (ValueError, RecursionError):
        return None
    if not isinstance(reply, dict) or reply.get('check') != check or reply.get('function') != function:
        return None
    failure, warned = reply.get('failure'), reply.get('warnings')
    if not (failure is None or isinstance(failure, str)) or not isinstance(warned, list) or \
            not all(isinstance(text, str) for text in warned):
        return None
    return (None if failure is None else inert.clean(failure[:MAX_MESSAGE]),
            [inert.clean(text[:MAX_MESSAGE]) for text in warned[:MAX_WARNINGS]])

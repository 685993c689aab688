"""Where a hand-in's code runs: a child process with limits, in bubblewrap's sandbox where bubblewrap works.

The child (recorder.py) is the only process that executes the learner's code. The review starts it and reads its
evidence as it comes; at the wall-clock limit of the step it is in (loading the cells, one check, one training),
the review kills it and starts a fresh one for the steps left. The child lowers its own limits (address space,
file size, processes) before it reads the notebook. Inside bubblewrap (Debian's `bubblewrap`, Flatpak's sandbox)
it has no network, sees the Python, this package's code, helper.py and problem_unittests.py read-only, the data
folder read-only (at its own path, so that the image caches the review built there are read), and one
private writable folder; not the solution, the teacher's files or other hand-ins. Where
bubblewrap cannot run (not installed, no user namespaces), the child runs without it, with the same limits, and the
review says so. As root, Linux lets a process ignore the processes limit: the child then goes into a pids cgroup of
its own where one can be made.
"""
import contextlib
import dataclasses
import functools
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time

from . import evidence
from ..notebooks import CHECKOUT

INSIDE = '/handin'  # the private folder, as the hand-in sees it
PIDS_CGROUPS = ('/sys/fs/cgroup/pids', '/sys/fs/cgroup')  # cgroup v1's pids hierarchy, then v2's


@dataclasses.dataclass(frozen=True)
class Limits:
    """What one hand-in may take; the defaults fit a 2-core laptop (the review's options override each)."""
    check_s: float = 300  # loading the cells, and each check (a train that never returns stops here)
    train_s: float = 1200  # each dataset's training with --train
    memory_gb: float = 8  # the child's address space (TensorFlow reserves more than it uses)
    processes: int = 512  # processes and threads (TensorFlow starts dozens of threads)
    file_mb: int = 1024  # the largest file it may write

    def of(self, step):
        return self.train_s if step.startswith('training') else self.check_s


LIMITS = Limits()
OPTIONS = {'check_s': ('--check-seconds', "loading the cells, and each check"),
           'train_s': ('--train-seconds', "each dataset's training with --train"),
           'memory_gb': ('--memory-gb', "the hand-in's address space"),
           'processes': ('--processes', 'its processes and threads'),
           'file_mb': ('--file-mb', 'the largest file it may write, in MB')}


def add_limit_options(parser):
    """The limits as options of a command, each defaulting to LIMITS'."""
    for field in dataclasses.fields(Limits):
        option, what = OPTIONS[field.name]
        parser.add_argument(option, type=field.type if callable(field.type) else float, dest=field.name,
                            default=getattr(LIMITS, field.name), help=f'{what} (default {getattr(LIMITS, field.name)})')


def limits_from(args):
    return Limits(**{field.name: getattr(args, field.name) for field in dataclasses.fields(Limits)})


@functools.cache
def bubblewrap():
    """(the bwrap command, None) where it works here, else (None, why not)."""
    found = shutil.which('bwrap')
    if not found:
        return None, 'bubblewrap is not installed (Debian and Ubuntu: apt install bubblewrap)'
    done = subprocess.run([found, '--ro-bind', '/', '/', '--unshare-all', '--die-with-parent', 'true'],
                          capture_output=True, text=True)
    if done.returncode:
        return None, f'bubblewrap cannot make a sandbox here ({done.stderr.strip()[:200] or done.returncode}): ' \
                     'user namespaces are off (sysctl kernel.unprivileged_userns_clone or an AppArmor rule)'
    return found, None


def unsupported():
    """Why hand-ins cannot be reviewed on this system (None where they can): the child needs POSIX processes."""
    if os.name != 'posix':
        return ('the review runs each hand-in in a process of its own with POSIX limits, which Windows does not '
                'have: review on Linux (WSL works), or in a Linux container')
    return None


def sandbox_note():
    """None where the hand-ins run in the sandbox with every limit, else what running without them means."""
    command, why = bubblewrap()
    unlimited = '' if processes_limited() else (
        ' As root, the processes limit does not hold (Linux exempts root and no pids cgroup can be made here): '
        'review as an ordinary user')
    if command:
        return unlimited.strip() or None
    return (f'the hand-ins run without a sandbox: {why}. Each still runs in its own process, killed at its time '
            'limit, with its memory, processes and file size limited, but it can read and write what you can and '
            'open network connections.' + unlimited)


def processes_limited():
    """Whether a hand-in's processes limit holds here: always for an ordinary user, for root in a pids cgroup."""
    return os.geteuid() != 0 or any(os.path.isfile(os.path.join(root, 'cgroup.procs')) and
                                    os.access(root, os.W_OK) for root in PIDS_CGROUPS)


def _binds(work_dir, data_dir):
    """bubblewrap's arguments: a private /tmp first (a project or a Python under /tmp is bound over it), the system,
    Python and this project's code read-only; data read-only; the private folder writable; nothing else."""
    args = ['--dev', '/dev', '--proc', '/proc', '--tmpfs', '/tmp']
    for path in ('/usr', '/bin', '/sbin', '/lib', '/lib32', '/lib64', '/etc/ld.so.cache', '/etc/fonts',
                 '/etc/localtime'):
        if os.path.islink(path):
            args += ['--symlink', os.readlink(path), path]
        elif os.path.exists(path):
            args += ['--ro-bind', path, path]
    code = [os.path.join(CHECKOUT, name) for name in ('facegen', 'helper.py', 'problem_unittests.py')]
    for path in {os.path.realpath(sys.prefix), os.path.realpath(sys.base_prefix), *map(os.path.realpath, code)}:
        args += ['--ro-bind', path, path]
    if data_dir and os.path.isdir(data_dir):  # where it is outside: its image caches are named after its path
        args += ['--ro-bind', os.path.realpath(data_dir), os.path.realpath(data_dir)]
    return args + ['--bind', os.path.realpath(work_dir), INSIDE, '--unshare-all', '--hostname', 'handin',
                   '--die-with-parent', '--new-session', '--chdir', INSIDE]


def _environment(inside):
    keep = ('LANG', 'TF_ENABLE_ONEDNN_OPTS', 'ONEDNN_MAX_CPU_ISA', 'FACEGEN_DATA_SOURCE', 'CUDA_VISIBLE_DEVICES')
    return {'PATH': '/usr/bin:/bin', 'HOME': inside, 'TMPDIR': '/tmp', 'MPLBACKEND': 'Agg', 'MPLCONFIGDIR': '/tmp',
            'PYTHONNOUSERSITE': '1', 'PYTHONDONTWRITEBYTECODE': '1', 'TF_CPP_MIN_LOG_LEVEL': '2',
            **{name: os.environ[name] for name in keep if name in os.environ}}


def _pids_cgroup(limit):
    """A pids cgroup of its own for a child that runs as root (which the processes limit does not bind), or None."""
    if os.geteuid() != 0:
        return None
    for root in PIDS_CGROUPS:
        if os.path.isfile(os.path.join(root, 'cgroup.procs')) and os.access(root, os.W_OK):
            path = os.path.join(root, f'facegen-review-{os.getpid()}-{time.monotonic_ns()}')
            with contextlib.suppress(OSError):
                os.mkdir(path)
                with open(os.path.join(path, 'pids.max'), 'w') as limit_file:
                    limit_file.write(str(limit))
                return path
    return None


@dataclasses.dataclass
class Ending:
    """How a child ended before it finished: in which step, and why, as a FAIL line says it."""
    step: str
    why: str


class Child:
    """One run of the recorder on a hand-in, its evidence read as it comes, killed at its steps' time limits."""

    def __init__(self, notebook, work_dir, limits, recorder_args, data_dir=None, steps=(), datasets=()):
        self.limits, self.step, self.started = limits, 'loading the cells', time.monotonic()
        # The steps' times come from its evidence, which its code can write: the whole is bounded regardless.
        self.deadline = self.started + limits.check_s * (1 + len(steps)) + limits.train_s * len(datasets)
        self.unreadable = False
        read_end, write_end = os.pipe()
        command, _ = bubblewrap()
        inside = INSIDE if command else os.path.realpath(work_dir)
        argv = [sys.executable, '-m', 'facegen.course.recorder', os.path.join(inside, os.path.basename(notebook)),
                '--evidence-fd', str(write_end), '--memory-gb', str(limits.memory_gb),
                '--processes', str(limits.processes), '--file-mb', str(limits.file_mb), *recorder_args]
        if data_dir:
            argv += ['--data-dir', os.path.realpath(data_dir)]
        if command:
            argv = [command, *_binds(work_dir, data_dir), '--clearenv',
                    *[part for name, value in _environment(inside).items() for part in ('--setenv', name, value)],
                    *argv]
        self.cgroup = _pids_cgroup(limits.processes)
        cgroup = self.cgroup

        def enter_cgroup():
            if cgroup:
                with open(os.path.join(cgroup, 'cgroup.procs'), 'w') as procs:
                    procs.write(str(os.getpid()))
        self.log = open(os.path.join(work_dir, 'output.log'), 'ab')
        self.process = subprocess.Popen(argv, pass_fds=(write_end,), stdin=subprocess.DEVNULL, stdout=self.log,
                                        stderr=subprocess.STDOUT, cwd=work_dir, start_new_session=True,
                                        env=None if command else {**os.environ, **_environment(inside)},
                                        preexec_fn=enter_cgroup)
        os.close(write_end)
        self.arrived = queue.Queue()
        self.reader = threading.Thread(target=self._read, args=(os.fdopen(read_end, 'rb'),), daemon=True)
        self.reader.start()
        self.ending = None

    def _read(self, stream):
        """Each event into self.arrived as it comes (the step it starts timed from then), None at the end."""
        size = 0
        for raw in stream:
            size += len(raw)
            event = evidence.parse(raw) if len(raw) <= evidence.MAX_LINE and size <= evidence.MAX_STREAM else None
            if event is None:
                self.unreadable = True
                break
            if event['kind'] in ('check', 'training'):
                self.step, self.started = event.get('name') or f"training {event.get('dataset')}", time.monotonic()
            self.arrived.put(event)
        stream.close()
        self.arrived.put(None)

    def events(self):
        """The events as they come, until the child ends or is killed at its step's time limit; then self.ending
        is None where it finished, else its Ending."""
        killed, last = None, None
        while True:
            try:
                event = self.arrived.get(timeout=0.1)
            except queue.Empty:
                limit, now = self.limits.of(self.step), time.monotonic()
                if killed is None and (now - self.started > limit or now > self.deadline):
                    killed = Ending(self.step, f'it ran past its time limit ({limit:g} s) and was stopped: does a '
                                               'loop never end?')
                    self._kill()
                continue
            if event is None:
                break
            last = event
            yield event
        self.process.wait()
        self._kill()  # what it forked and left behind (bubblewrap's own sandbox ends with it anyway)
        self.log.close()
        if self.cgroup:
            with contextlib.suppress(OSError):
                os.rmdir(self.cgroup)
        finished = last is not None and last['kind'] == 'done'
        self.ending = killed or (None if finished else Ending(self.step, self._why()))

    def _kill(self):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)  # bwrap's --die-with-parent takes its sandbox with it

    def _why(self):
        code = self.process.returncode
        if self.unreadable:
            return ("its evidence stopped being readable: something in the hand-in wrote to the review's channel "
                    '(see the WARN lines)')
        if code < 0:
            name = signal.Signals(-code).name
            memory = f': out of memory? (the limit is {self.limits.memory_gb:g} GB)' if name in ('SIGABRT', 'SIGKILL',
                                                                                              'SIGSEGV') else ''
            return f'its process was killed by {name}{memory}'
        why = (f'its process ended (exit status {code}) before the check did: does the notebook call os._exit or '
               'exit a process?')
        if self.step == 'loading the cells':  # it may not have started at all: what it said last tells
            why += f' (the last line of its output.log: {self._last_line()!r})'
        return why

    def _last_line(self):
        with open(self.log.name, 'rb') as log:
            log.seek(max(0, os.path.getsize(self.log.name) - 2000))
            lines = [line.strip() for line in log.read().decode(errors='replace').splitlines() if line.strip()]
        return lines[-1][:200] if lines else ''


def recorded(notebook, work_dir, steps, limits=LIMITS, train=None, data_dir=None):
    """
    The evidence of a hand-in, as it comes: its cells loaded and each check run in the child, a fresh child for the
    steps left after one that crashed or ran past its time (an `ended` event says which and why)
    :param notebook: The hand-in, copied into work_dir
    :param work_dir: Its private folder (the runs of --train go to work_dir/runs)
    :param steps: The checks, in order
    :param train: None, or {'max_images': N, 'steps': (MNIST, CelebA)} to train too
    """
    checks, datasets, loaded = list(steps), ['mnist', 'celeba'] if train else [], False
    while True:
        args = ['--checks', ','.join(checks)]
        if datasets:
            args += ['--train', '--datasets', ','.join(datasets), '--runs-dir', 'runs',
                     '--steps', *map(str, train['steps'])] + (['--max-images', str(train['max_images'])]
                                                              if train.get('max_images') else [])
        child = Child(notebook, work_dir, limits, args, data_dir if datasets else None, checks, datasets)
        for event in child.events():
            if event['kind'] != 'loaded' or not loaded:
                loaded = loaded or event['kind'] == 'loaded'
                yield event
        ending = child.ending
        if ending is None:
            return
        yield {'kind': 'ended', 'step': ending.step, 'why': ending.why}
        if ending.step == 'loading the cells':
            return
        if ending.step in checks:
            checks = checks[checks.index(ending.step) + 1:]
        else:
            checks = []
            dataset = ending.step.split()[-1]
            datasets = datasets[datasets.index(dataset) + 1:] if dataset in datasets else []
        if not checks and not datasets:
            return

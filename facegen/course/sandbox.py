"""Where a hand-in's code runs: a child process with limits, in bubblewrap's sandbox where bubblewrap works.

Two programs run apart from the review's own process, each started here (`start`): the hand-in's (recorder.py),
the only process that executes the learner's code, and the judge (judge.py), the only one that runs what that code
built. The review reads the hand-in's evidence as it comes (Child, each line bounded as it is read); at the
wall-clock limit of the step it is in (loading the cells, one check, one training) it kills the child and starts a
fresh one for the steps left, where the function that ran past its limit is not called again. Each child lowers
its own limits (address space, file size, processes) before it reads anything of the hand-in's. Inside
bubblewrap (Debian's `bubblewrap`, Flatpak's sandbox) each has no network, a private /tmp of a fixed size, and
sees the Python, this package's code, helper.py and problem_unittests.py read-only; the hand-in's process also
sees the data folder read-only (at its own path, so that the image caches the review built there are read) and
one writable folder of its own (the review's files about it, its output.log among them, lie beside that folder,
out of its reach); the judge sees no folder it can write. Neither sees the solution, the teacher's files or other
hand-ins. Where bubblewrap cannot run (not installed, no user namespaces), they run without it, with the same
limits, and the review says so. As root, Linux lets a process ignore the processes limit: each child then goes
into a pids cgroup of its own where one can be made.
"""
import atexit
import contextlib
import dataclasses
import functools
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

from . import evidence
from ..notebooks import CHECKOUT

INSIDE = '/handin'  # the private folder, as the hand-in sees it
HANDIN_FOLDER = 'handin'  # that folder, inside the review's folder for the hand-in
PIDS_CGROUPS = ('/sys/fs/cgroup/pids', '/sys/fs/cgroup')  # cgroup v1's pids hierarchy, then v2's
PROBE_S = 60  # how long a sandboxed Python may take to start
RUNNING = set()  # the children started and not ended yet (Started)
TEMPORARY = set()  # the temporary folders of reviews under way, removed if a signal ends this process
LINGER_S = 5  # how long a child whose evidence has ended may take to exit before it is killed
FOLDER_EVERY_S = 0.25  # how often a child's folder is measured against its limits (a walk of 10,000 files: 35-70 ms here)
TENSORFLOW_LOG = re.compile(r'^([IWEF]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ \S+:\d+\]|WARNING: All log messages before absl)')


@dataclasses.dataclass(frozen=True)
class Limits:
    """What one hand-in may take; the defaults fit a 2-core laptop (the review's options override each)."""
    check_s: float = 300  # loading the cells, and each check (a train that never returns stops here)
    train_s: float = 1200  # each dataset's training with --train
    memory_gb: float = 8  # the child's address space (TensorFlow reserves more than it uses)
    processes: int = 512  # processes and threads (TensorFlow starts dozens of threads)
    file_mb: int = 1024  # the largest file it may write
    tmp_mb: int = 512  # its private /tmp and /dev/shm, each held in memory beside its address space
    folder_mb: int = 2048  # what its own folder may hold on the teacher's disk (training runs, grids)
    folder_files: int = 10000  # and how many files and folders

    def of(self, step):
        return self.train_s if step.startswith('training') else self.check_s


LIMITS = Limits()
OPTIONS = {'check_s': ('--check-seconds', "loading the cells, and each check"),
           'train_s': ('--train-seconds', "each dataset's training with --train"),
           'memory_gb': ('--memory-gb', "the hand-in's address space"),
           'processes': ('--processes', 'its processes and threads'),
           'file_mb': ('--file-mb', 'the largest file it may write, in MB'),
           'tmp_mb': ('--tmp-mb', 'its private /tmp and /dev/shm (held in memory), in MB each'),
           'folder_mb': ('--folder-mb', 'what its own folder may hold on disk, in MB'),
           'folder_files': ('--folder-files', 'how many files and folders its own folder may hold')}


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


def _binds(handin_dir, data_dir, tmp_mb):
    """bubblewrap's arguments: a private /tmp and /dev/shm of tmp_mb each first (a project or a Python under /tmp is
    bound over it), the system, Python and this project's code read-only; data read-only; the hand-in's folder
    writable (None: the judge, which writes nothing but its answers); nothing else, the root and /dev read-only."""
    size = ['--size', str(tmp_mb * 2 ** 20)]
    args = ['--dev', '/dev', '--proc', '/proc', *size, '--tmpfs', '/tmp', *size, '--tmpfs', '/dev/shm']
    for path in ('/usr', '/bin', '/sbin', '/lib', '/lib32', '/lib64', '/etc/ld.so.cache', '/etc/fonts',
                 '/etc/localtime'):
        if os.path.islink(path):
            args += ['--symlink', os.readlink(path), path]
        elif os.path.exists(path):
            args += ['--ro-bind', path, path]
    code = [os.path.join(CHECKOUT, name) for name in ('facegen', 'helper.py', 'problem_unittests.py')]
    for path in dict.fromkeys([sys.prefix, sys.base_prefix, *code]):
        args += _read_only_where_seen(path)
    if data_dir and os.path.isdir(data_dir):  # where it is outside: its image caches are named after its path
        args += ['--ro-bind', os.path.realpath(data_dir), os.path.realpath(data_dir)]
    if handin_dir:
        args += ['--bind', os.path.realpath(handin_dir), INSIDE, '--chdir', INSIDE]
    else:
        args += ['--chdir', '/tmp']
    # The root and /dev bubblewrap builds are tmpfs of no size: read-only, so that only the sized places take writes
    return args + ['--remount-ro', '/dev', '--remount-ro', '/', '--unshare-all', '--hostname', 'handin',
                   '--die-with-parent', '--new-session']


def _read_only_where_seen(path):
    """bubblewrap's arguments binding path read-only at its real place and, where this process reaches it through a
    symbolic link (a shared venv, a checkout linked into a home), at the path it uses too: Python and the code are
    found inside at the paths they are found at outside."""
    real, seen = os.path.realpath(path), os.path.abspath(path)
    return ['--ro-bind', real, real] + (['--ro-bind', real, seen] if seen != real else [])


def _environment(home):
    keep = ('LANG', 'TF_ENABLE_ONEDNN_OPTS', 'ONEDNN_MAX_CPU_ISA', 'FACEGEN_DATA_SOURCE', 'CUDA_VISIBLE_DEVICES')
    return {'PATH': '/usr/bin:/bin', 'HOME': home, 'TMPDIR': '/tmp', 'MPLBACKEND': 'Agg', 'MPLCONFIGDIR': '/tmp',
            'PYTHONNOUSERSITE': '1', 'PYTHONDONTWRITEBYTECODE': '1', 'TF_CPP_MIN_LOG_LEVEL': '2',
            **{name: os.environ[name] for name in keep if name in os.environ}}


def sweep_cgroups():
    """Remove the pids cgroups that reviews which have ended left (one killed before it could remove its own)."""
    for root in PIDS_CGROUPS:
        for name in os.listdir(root) if os.path.isdir(root) and os.access(root, os.W_OK) else []:
            parts = name.split('-')
            if name.startswith('facegen-review-') and len(parts) > 3 and parts[2].isdigit() and \
                    not os.path.exists(f'/proc/{parts[2]}'):
                _remove_cgroup(os.path.join(root, name), tries=1)


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


def limit_arguments(limits):
    """The options a child takes to lower its own limits (limit_this_process)."""
    return ['--memory-gb', str(limits.memory_gb), '--processes', str(limits.processes),
            '--file-mb', str(limits.file_mb)]


def limit_this_process(memory_gb, processes, file_mb):
    """Lower this process's limits for good, before anything of a hand-in's is read (its children inherit them):
    a write past the file size fails rather than killing the process."""
    import resource  # POSIX's: the review runs its hand-ins on Linux
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    for which, value in ((resource.RLIMIT_AS, int(memory_gb * 2 ** 30)), (resource.RLIMIT_NPROC, processes),
                         (resource.RLIMIT_FSIZE, file_mb * 2 ** 20), (resource.RLIMIT_CORE, 0)):
        _, hard = resource.getrlimit(which)
        value = value if hard == resource.RLIM_INFINITY else min(value, hard)
        resource.setrlimit(which, (value, value))


class CannotRun(Exception):
    """The review cannot run on this machine (a sandbox or a judge that does not start): the machine's fault, never a
    hand-in's, so no result is kept."""


CANNOT_RUN = 3  # the exit status of a review that could not run here


def probe(limits, work_dir):
    """Raise CannotRun where a Python of this project does not start as a hand-in's does (in the sandbox, with its
    binds and limits); its output goes to work_dir/sandbox.log."""
    sweep_cgroups()
    log_path = os.path.join(work_dir, 'sandbox.log')
    started = start('facegen.course.inert', [], limits, log_path, os.path.join(work_dir, HANDIN_FOLDER))
    try:
        status = started.process.wait(timeout=PROBE_S)
    except subprocess.TimeoutExpired:
        status = f'none within {PROBE_S} s'
    finally:
        started.end()
    if status != 0:
        raise CannotRun(f'a sandboxed Python does not start here (exit status {status}; the last line of its log: '
                        f'{last_line(log_path)!r})')


@dataclasses.dataclass(eq=False)
class Started:
    """A child started by `start`: its process, its pids cgroup (or None) and the log its output goes to."""
    process: subprocess.Popen
    cgroup: str
    log: object

    def kill(self):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)  # bwrap's --die-with-parent takes its sandbox with it

    def end(self):
        """Kill what is left of it (what it forked), close its log, remove its cgroup."""
        RUNNING.discard(self)
        self.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)
        if self.process.stdin:
            with contextlib.suppress(OSError):
                self.process.stdin.close()
        self.log.close()
        if self.cgroup:
            if not _remove_cgroup(self.cgroup, tries=1):
                _remove_soon(self.cgroup)  # its processes are still dying: removed beside the review's work


def _remove_later():
    """Remove the cgroups whose processes were still dying when their child ended, each within its own 30 s."""
    while True:
        path = LEFT_CGROUPS.get()
        _remove_cgroup(path)
        LEFT_CGROUPS.task_done()


def _removed_before_exit(seconds=30):
    """At this process's exit: wait (a bounded time) for the cgroups still being removed."""
    deadline = time.monotonic() + seconds
    while LEFT_CGROUPS.unfinished_tasks and time.monotonic() < deadline:
        time.sleep(0.1)


def _remove_soon(path):
    """Hand a cgroup to the remover (started with the first), so that the review goes on meanwhile."""
    if not REMOVER:
        REMOVER.append(threading.Thread(target=_remove_later, daemon=True, name='cgroup-remover'))
        REMOVER[0].start()
        atexit.register(_removed_before_exit)
    LEFT_CGROUPS.put(path)


LEFT_CGROUPS, REMOVER = queue.Queue(), []


def _remove_cgroup(path, tries=300):
    """Remove a child's pids cgroup once the last of its processes has left it (a killed sandbox's processes are
    reaped by the kernel a moment after its bubblewrap, seconds for TensorFlow's threads on a busy machine: rmdir
    says EBUSY until then); whether it is gone."""
    for _ in range(tries):
        try:
            os.rmdir(path)
            return True
        except FileNotFoundError:
            return True
        except OSError:
            with contextlib.suppress(OSError, ValueError), open(os.path.join(path, 'cgroup.procs')) as procs:
                for pid in procs.read().split():  # one that left its session (setsid) is still in its cgroup
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(int(pid), signal.SIGKILL)
            time.sleep(0.1)
    return False


def start(module, args, limits, log_path, handin_dir=None, data_dir=None, pass_fds=(), stdin=subprocess.DEVNULL):
    """
    `python -m module args` as a child apart from this process: in bubblewrap where it works, in a new session, in
    a pids cgroup where it runs as root; its output appended to log_path (which no child can reach)
    :param handin_dir: The one folder it may write, seen inside as INSIDE (None: none)
    :param data_dir: A data folder it may read
    :param pass_fds: Descriptors it keeps (its evidence or answers go there)
    """
    command, _ = bubblewrap()
    home = (INSIDE if command else os.path.realpath(handin_dir)) if handin_dir else '/tmp'
    argv = [sys.executable, '-m', module, *args]
    if command:
        argv = [command, *_binds(handin_dir, data_dir, limits.tmp_mb), '--clearenv',
                *[part for name, value in _environment(home).items() for part in ('--setenv', name, value)], *argv]
    cgroup = _pids_cgroup(limits.processes)

    def enter_cgroup():
        if cgroup:
            with open(os.path.join(cgroup, 'cgroup.procs'), 'w') as procs:
                procs.write(str(os.getpid()))
    # The log lies beside the hand-in's folder, never in it: nothing there is followed or appended to.
    log = os.fdopen(os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o644), 'ab')
    process = subprocess.Popen(argv, pass_fds=pass_fds, stdin=stdin, stdout=log, stderr=subprocess.STDOUT,
                               cwd=handin_dir or '/', start_new_session=True,
                               env=None if command else {**os.environ, **_environment(home)},
                               preexec_fn=enter_cgroup)
    started = Started(process, cgroup, log)
    RUNNING.add(started)
    return started


def end_all():
    """End every child this process started and has not ended (a review stopped by a signal)."""
    for started in list(RUNNING):
        started.end()


def ended_by_signals(*signals):
    """Make each signal end this process's children first, then the process, nothing saved (Ctrl-C on a review,
    or a batch stopping it), its temporary folders removed: its children are in sessions of their own, which no
    terminal signals."""
    def stop(number, _frame):
        end_all()
        for folder in list(TEMPORARY):
            shutil.rmtree(folder, ignore_errors=True)
        os._exit(128 + number)
    for number in signals:
        signal.signal(number, stop)


def read_lines(stream, max_line, max_stream):
    """The lines of a stream, each read no further than max_line bytes (a longer one, or a stream past max_stream,
    ends it with None): a child cannot make the review hold more than that."""
    size = 0
    while True:
        raw = stream.readline(max_line + 1)
        if not raw:
            return
        size += len(raw)
        if len(raw) > max_line or size > max_stream or not raw.endswith(b'\n'):
            yield None
            return
        yield raw


@dataclasses.dataclass
class Ending:
    """How a child ended before it finished: in which step, and why, as a FAIL line says it."""
    step: str
    why: str
    hung: str = None  # the notebook's function it was in when it ran past its time limit


class Child:
    """One run of the recorder on a hand-in, its evidence read as it comes, killed at its steps' time limits, when it
    stops talking, or when its folder holds more than its limits."""

    def __init__(self, notebook, work_dir, limits, recorder_args, data_dir=None, steps=(), datasets=(),
                 budget=None):
        self.limits, self.step, self.started = limits, 'loading the cells', time.monotonic()
        # The steps' times come from its evidence, which its code can write: the whole is bounded regardless.
        self.deadline = self.started + limits.check_s * (1 + len(steps)) + limits.train_s * len(datasets)
        self.unreadable, self.inside = False, []  # the notebook's functions it is in now, innermost last
        self.budget = budget or Budget()
        self.handin_dir = os.path.join(work_dir, HANDIN_FOLDER)
        read_end, write_end = os.pipe()
        inside = INSIDE if bubblewrap()[0] else os.path.realpath(self.handin_dir)
        args = [os.path.join(inside, os.path.basename(notebook)), '--evidence-fd', str(write_end),
                *limit_arguments(limits), *recorder_args]
        if data_dir:
            args += ['--data-dir', os.path.realpath(data_dir)]
        self.log_path = os.path.join(work_dir, 'output.log')
        self.child = start('facegen.course.recorder', args, limits, self.log_path, self.handin_dir,
                           data_dir, pass_fds=(write_end,))
        self.process = self.child.process
        os.close(write_end)
        self.arrived = queue.Queue()
        self.reader = threading.Thread(target=self._read, args=(os.fdopen(read_end, 'rb'),), daemon=True)
        self.reader.start()
        self.ending = None

    def _read(self, stream):
        """Each event into self.arrived as it comes (the step it starts timed from then), None at the end: no more
        than the budget left of all this hand-in's children."""
        for raw in read_lines(stream, evidence.MAX_LINE, self.budget.bytes_left):
            within = raw is not None and self.budget.take(len(raw))
            event = evidence.parse(raw) if within else None
            if event is None:
                self.unreadable = 'limit' if raw is not None and not within else True
                break
            kind = event['kind']
            if kind in ('check', 'training'):
                self.step, self.started = event.get('name') or f"training {event.get('dataset')}", time.monotonic()
                self.inside = []
            elif kind == 'enter':
                self.inside.append(event['function'])
            elif kind in ('exit', 'raise') and self.inside:
                self.inside.pop()
            self.arrived.put(event)
        stream.close()
        self.arrived.put(None)

    def events(self):
        """The events as they come, until the child ends or is killed (at its step's time limit, or where its
        folder holds more than its limits); then self.ending is None where it finished, else its Ending."""
        killed, last, measured = None, None, time.monotonic()
        while True:
            try:
                event = self.arrived.get(timeout=0.1)
            except queue.Empty:
                event = False
            now = time.monotonic()
            if killed is None and (now - self.started > self.limits.of(self.step) or now > self.deadline):
                killed = Ending(self.step, f'it ran past its time limit ({self.limits.of(self.step):g} s) and was '
                                           'stopped: does a loop never end?', self.inside[-1] if self.inside else None)
                self.child.kill()
            if killed is None and now - measured > FOLDER_EVERY_S:
                measured, over = now, folder_over(self.handin_dir, self.limits)
                if over:
                    killed = Ending(self.step, f'it wrote {over} in its folder and was stopped')
                    self.child.kill()
            if event is None:
                break
            if event is False:
                continue
            last = event
            yield event
        # Its evidence has ended: a child that lingers on without it is stopped, never waited for.
        try:
            self.process.wait(timeout=LINGER_S)
        except subprocess.TimeoutExpired:
            self.child.kill()
            self.process.wait()
            killed = killed or Ending(self.step, self._why() if self.unreadable else
                                      'its process stopped writing evidence but did not end, and was stopped: does '
                                      'the notebook close or write to descriptors it did not open?')
        self.child.end()
        over = killed is None and folder_over(self.handin_dir, self.limits)
        finished = last is not None and last['kind'] == 'done' and not over
        self.ending = killed or (Ending(self.step, f'it wrote {over} in its folder') if over else
                                 None if finished else Ending(self.step, self._why()))

    def _why(self):
        code = self.process.returncode
        if self.unreadable == 'limit':
            return self.budget.spent()
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
            why += f' (the last line of its output.log: {last_line(self.log_path)!r})'
        return why


class Budget:
    """What the review reads of one hand-in's evidence, across all its children (each crash starts a new one)."""

    def __init__(self, size=evidence.MAX_STREAM, events=evidence.MAX_EVENTS):
        self.bytes_left, self.events_left = size, events

    def take(self, size):
        """Count one line of size bytes; False where it is past the budget."""
        self.bytes_left -= size
        self.events_left -= 1
        return not self.spent()

    def spent(self):
        """What a step stopped by the budget says, or None while some is left."""
        if self.bytes_left >= 0 and self.events_left >= 0:
            return None
        return (f'its evidence passed what the review reads of one hand-in ({evidence.MAX_STREAM / 2 ** 20:g} MB, '
                f'{evidence.MAX_EVENTS} events; the solution writes 2 MB): something in it writes to the review\'s '
                'channel, or its functions return very large values')


def _full(work_dir, limits):
    over = folder_over(os.path.join(work_dir, HANDIN_FOLDER), limits)
    return over and f'its folder holds {over}, its limits'


def folder_over(folder, limits):
    """What a hand-in's folder holds past its limits ('more than N MB', 'more than N files and folders'), or None:
    counted on disk without following a link, and no further than the files' limit."""
    size, count, waiting = 0, 0, [folder]
    while waiting:
        with contextlib.suppress(OSError), os.scandir(waiting.pop()) as entries:
            for entry in entries:
                count += 1
                if count > limits.folder_files:
                    return f'more than {limits.folder_files} files and folders'
                with contextlib.suppress(OSError):
                    size += entry.stat(follow_symlinks=False).st_blocks * 512
                    if entry.is_dir(follow_symlinks=False):
                        waiting.append(entry.path)
    return f'more than {limits.folder_mb:g} MB' if size > limits.folder_mb * 2 ** 20 else None


def last_line(path):
    """The last non-blank line of a log the review wrote (its last 4,000 bytes), at most 200 characters, less the
    lines TensorFlow's C++ logs as it starts (`I0000 00:00:...`), which say nothing of what went wrong."""
    try:
        log = os.fdopen(os.open(path, os.O_RDONLY | os.O_NOFOLLOW), 'rb')
    except FileNotFoundError:
        return ''
    with log:
        log.seek(max(0, os.fstat(log.fileno()).st_size - 4000))
        lines = [line.strip() for line in log.read().decode(errors='replace').splitlines()
                 if line.strip() and not TENSORFLOW_LOG.match(line)]
    return lines[-1][:200] if lines else ''


def recorded(notebook, work_dir, steps, limits=LIMITS, train=None, data_dir=None):
    """
    The evidence of a hand-in, as it comes: its cells loaded and each check run in the child, a fresh child for the
    steps left after one that crashed or ran past its time (an `ended` event says which and why). A function that
    ran past its time limit is not called again: the fresh child raises NotCalledAgain where it is called.
    :param notebook: The hand-in, copied into work_dir/HANDIN_FOLDER
    :param work_dir: The review's folder for it (the runs of --train go to HANDIN_FOLDER/runs)
    :param steps: The checks, in order
    :param train: None, or {'max_images': N, 'steps': (MNIST, CELEBA)} to train too
    """
    checks, datasets, loaded, hung = list(steps), ['mnist', 'celeba'] if train else [], False, {}
    budget = Budget()  # one for all the children: a hand-in that crashes each one cannot make the review hold more
    while True:
        args = ['--checks', ','.join(checks)]
        args += [part for function, why in hung.items() for part in ('--not-again', f'{function}={why}')]
        if datasets:
            args += ['--train', '--datasets', ','.join(datasets), '--runs-dir', 'runs',
                     '--steps', *map(str, train['steps'])] + (['--max-images', str(train['max_images'])]
                                                              if train.get('max_images') else [])
        child = Child(notebook, work_dir, limits, args, data_dir if datasets else None, checks, datasets, budget)
        for event in child.events():
            if event['kind'] != 'loaded' or not loaded:
                loaded = loaded or event['kind'] == 'loaded'
                yield event
        ending = child.ending
        if ending is None:
            return
        yield {'kind': 'ended', 'step': ending.step, 'why': ending.why}
        if ending.hung:
            hung[ending.hung] = f'{ending.hung} ran past its time limit ({limits.of(ending.step):g} s)'
        if ending.step == 'loading the cells':
            return
        spent = budget.spent() or _full(work_dir, limits)
        if spent:  # a fresh child would have nothing left to say, or nowhere to write
            for step in checks[checks.index(ending.step) + 1:] if ending.step in checks else []:
                yield {'kind': 'ended', 'step': step, 'why': f'not run: {spent}'}
            return
        if ending.step in checks:
            checks = checks[checks.index(ending.step) + 1:]
        else:
            checks = []
            dataset = ending.step.split()[-1]
            datasets = datasets[datasets.index(dataset) + 1:] if dataset in datasets else []
        if not checks and not datasets:
            return

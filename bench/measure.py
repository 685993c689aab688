"""Measuring helpers shared by the benchmarks (pure Python: the PyTorch peer's interpreter imports them too)."""
import contextlib
import json
import statistics
import subprocess
import time


def durations(call, repeats, warmup=1):
    """Seconds each of `repeats` timed calls of call() took, after `warmup` untimed ones."""
    for _ in range(warmup):
        call()
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - start)
    return seconds


def time_steps(step, steps, batch, warmup=5):
    """Items per second of step() (batch items each): `steps` timed calls after `warmup`, their median."""
    return batch / statistics.median(durations(step, steps, warmup))


@contextlib.contextmanager
def recorded_steps(run_class):
    """The time.perf_counter() at which each step is recorded by run_class (TrainingRun, passed in: this module
    imports nothing of the project) while the block runs."""
    times, record = [], run_class.record

    def timed_record(run, d_loss, g_loss):
        times.append(time.perf_counter())
        return record(run, d_loss, g_loss)
    run_class.record = timed_record
    try:
        yield times
    finally:
        run_class.record = record


def peak_rss_mb():
    """This process's peak resident memory in MB (VmHWM: unlike ru_maxrss it does not survive exec, so a child
    never reports its larger parent's peak)."""
    with open('/proc/self/status') as f:
        return next(int(line.split()[1]) for line in f if line.startswith('VmHWM')) / 1024


def child_result(command, env, what):
    """The JSON object a benchmark's child process prints on its last line; what it wrote to stderr if it fails."""
    out = subprocess.run(command, env=env, capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(f'{what} failed:\n{out.stderr[-3000:]}')
    return json.loads(out.stdout.strip().splitlines()[-1])

"""Training runs on disk: one folder a run under each training's folder (TensorBoard's layout, one log folder of
runs), named when the run starts and kept for good, so that no run deletes another and each keeps its curves'
name in TensorBoard. Lists and removes them by hand:

    python -m run_folders list [output]            # make runs: every run, newest last, with its steps and size
    python -m run_folders remove output/mnist/RUN  # make remove-run RUN=...: one run, and nothing else
"""
import argparse
import os
import shutil
import sys
import time

RUN_PREFIX = 'run-'
CHECKPOINTS = 'checkpoints'


def new_run(runs_dir):
    """The folder for a new run in runs_dir, named after the time it starts (not made yet)."""
    name = RUN_PREFIX + time.strftime('%Y%m%d-%H%M%S')
    path, n = os.path.join(runs_dir, name), 1
    while os.path.exists(path):  # two runs in one second
        n += 1
        path = os.path.join(runs_dir, f'{name}-{n}')
    return path


def runs(runs_dir):
    """The run folders in runs_dir, oldest first (their names sort by the time they started)."""
    try:
        names = os.listdir(runs_dir)
    except FileNotFoundError:
        return []
    names = [name for name in names if name.startswith(RUN_PREFIX) and os.path.isdir(os.path.join(runs_dir, name))]
    return [os.path.join(runs_dir, name) for name in sorted(names, key=_started)]


def _started(name):
    """A run's name as a sort key: its time (run-YYYYMMDD-HHMMSS), then its number within that second."""
    stamp, number = name[:len(RUN_PREFIX) + 15], name[len(RUN_PREFIX) + 16:]
    return stamp, int(number) if number.isdigit() else 1


def newest_run(runs_dir):
    """The newest run in runs_dir, or None when it has none."""
    found = runs(runs_dir)
    return found[-1] if found else None


def size_of(folder):
    """Bytes of every file below folder."""
    return sum(os.path.getsize(os.path.join(root, name)) for root, _, names in os.walk(folder) for name in names)


def steps_of(run_dir):
    """The step of a run's last checkpoint, read from TensorFlow's checkpoint state file (0 without one)."""
    try:
        with open(os.path.join(run_dir, CHECKPOINTS, 'checkpoint')) as f:
            first = f.readline()
        return int(first.rsplit('-', 1)[1].strip().strip('"'))
    except (OSError, IndexError, ValueError):
        return 0


def every_run(output_dir):
    """Every run below output_dir: {training folder: [its runs, oldest first]}."""
    try:
        trainings = sorted(os.listdir(output_dir))
    except FileNotFoundError:
        return {}
    found = {os.path.join(output_dir, name): runs(os.path.join(output_dir, name)) for name in trainings
             if os.path.isdir(os.path.join(output_dir, name))}  # beside make run's notebook, HTML and figures
    return {training: its_runs for training, its_runs in found.items() if its_runs}


def list_runs(output_dir):
    found = every_run(output_dir)
    if not found:
        print(f'No training runs in {output_dir} yet: run a training cell of the notebook, or make run.')
        return 0
    total = 0
    for training, its_runs in found.items():
        for run_dir in its_runs:
            size = size_of(run_dir)
            total += size
            print(f'{run_dir}  {steps_of(run_dir):>6,} steps  {size / 2 ** 20:7.1f} MB')
    print(f'{sum(map(len, found.values()))} runs, {total / 2 ** 20:,.1f} MB in all. Remove one with '
          f'`make remove-run RUN=<folder>`; `make clean` removes every run.')
    return 0


def remove_run(run_dir):
    """Remove one run folder, refusing anything that is not one."""
    name = os.path.basename(os.path.normpath(run_dir))
    if not (name.startswith(RUN_PREFIX) and os.path.isdir(os.path.join(run_dir, CHECKPOINTS))):
        print(f'{run_dir} is not a training run (a {RUN_PREFIX}... folder with {CHECKPOINTS}/): nothing removed. '
              f'`make runs` lists them.', file=sys.stderr)
        return 1
    size = size_of(run_dir)
    shutil.rmtree(run_dir)
    print(f'Removed {run_dir} ({size / 2 ** 20:.1f} MB).')
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    commands = parser.add_subparsers(dest='command', required=True)
    commands.add_parser('list', help='every run, with its steps and size').add_argument('output', nargs='?',
                                                                                         default='output')
    commands.add_parser('remove', help='remove one run').add_argument('run')
    args = parser.parse_args(argv)
    return list_runs(args.output) if args.command == 'list' else remove_run(args.run)


if __name__ == '__main__':
    sys.exit(main())

"""What the review's isolation costs: the sandboxed review of the solution against its six checks run in-process.

The in-process run is what the review did before its hand-ins ran apart (the notebook's functions loaded into the
process that runs the checks, TensorFlow started once); the isolated one is `python -m facegen review`: a child
in bubblewrap that records, and a second, the judge, in a sandbox of its own, that runs the checks again on the
evidence. Each is a fresh process, interleaved,
REPEATS times; the medians and the spread are printed with their ratio. --train (or --train-steps N) adds
the same review with training on the data folder's data (once), where the isolation is a smaller share.

    .venv/bin/python bench/review_cost.py [--repeats 3] [--train | --train-steps 100]
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IN_PROCESS = '''
import facegen, warnings
warnings.filterwarnings('ignore')
import problem_unittests as tests, tensorflow.compat.v1 as tf
from facegen.notebooks import loader
f = loader.notebook_functions()
tests.test_model_inputs(f['model_inputs']); tests.test_discriminator(f['discriminator'], tf)
tests.test_generator(f['generator'], tf); tests.test_model_loss(f['model_loss'])
tests.test_model_opt(f['model_opt'], tf); tests.test_train(f['train'], tf)
'''


def timed(command):
    start = time.perf_counter()
    subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env={**os.environ, 'TF_CPP_MIN_LOG_LEVEL': '3'})
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--train', action='store_true', help="also time a review with training (the review's steps)")
    parser.add_argument('--train-steps', type=int, help='... of this many steps a dataset instead')
    args = parser.parse_args()
    from facegen.course import sandbox
    print(f'sandbox: {"bubblewrap" if sandbox.bubblewrap()[0] else sandbox.sandbox_note()}')
    solution = os.path.join(ROOT, 'dlnd_face_generation.ipynb')
    in_process, isolated = [], []
    for _ in range(args.repeats):
        in_process.append(timed([sys.executable, '-c', IN_PROCESS]))
        isolated.append(timed([sys.executable, '-m', 'facegen', 'review', solution, '--quiet']))
    for name, times in (('checks in-process', in_process), ('isolated review', isolated)):
        print(f'{name:<18} median {statistics.median(times):6.1f} s  (min {min(times):.1f}, max {max(times):.1f})')
    extra = statistics.median(isolated) - statistics.median(in_process)
    print(f'isolation: +{extra:.1f} s, {statistics.median(isolated) / statistics.median(in_process):.2f}x the '
          'checks in-process')
    if args.train or args.train_steps:
        steps = ['--train-steps', str(args.train_steps)] if args.train_steps else []
        with tempfile.TemporaryDirectory() as work:
            trained = timed([sys.executable, '-m', 'facegen', 'review', solution, '--quiet', '--train',
                             '--output-dir', work, *steps])
        print(f'isolated review with training ({args.train_steps or "600 + 300"} steps): {trained:.1f} s; the '
              f'isolation is {extra / trained:.1%} of it')


if __name__ == '__main__':
    main()

"""A class's hand-ins reviewed: a gradebook, a feedback file per learner and a summary, as often as the class changes.

    python -m facegen review --handins FOLDER_OR_ZIP [--jobs N] [--out DIR] [--again NAME]   # make review HANDINS=...
    python -m facegen gradebook DIR                                                           # the merge alone

The hand-ins are read as the LMS named them (lms.py: Moodle, Canvas or a plain folder), one a learner. Before any,
the solution is reviewed in the same sandbox: where it does not pass, the machine is at fault and the batch stops
saying so, with nothing saved. Each hand-in is then reviewed by its own command, the one a single notebook gets
(`python -m facegen review NOTEBOOK --json results/KEY.json`), JOBS at a time. A batch is keyed by content: a zip
is unpacked once per content (a second download is read again), and a learner is reviewed again only where the
notebook reviewed changed (or `--again` names them). Ctrl-C stops the reviews running, saves nothing of them,
writes the gradebook of what is done and says how to go on. A review that could not run here (its exit status
sandbox.CANNOT_RUN) saves nothing either. The merge is gradebook.py's.

    DIR/handins/<zip's digest>/   the zip, unpacked (its paths checked to stay inside, its links never made)
    DIR/results/KEY.json          one review (review.result_of), with the learner and the notebook's digest
    DIR/work/KEY/                 the hand-in's private folder: its process's output.log, its training runs
    DIR/machine/                  the solution's review, which vouches for the machine
"""
import argparse
import concurrent.futures
import contextlib
import hashlib
import json
import os
import shlex
import signal
import subprocess
import sys
import threading
import zipfile

from . import gradebook, inert, lms, sandbox
from .review import MODEL_CHECKS, Line, result_of, write_result
from ..notebooks import CHECKOUT, SOLUTION

STOP_S = 5  # how long a review stopped by Ctrl-C may take to end its children before it is killed


class Reviews:
    """The review commands running now, each in a session of its own (a terminal's Ctrl-C reaches this process
    alone), so that a stop ends them all and saves nothing of theirs."""

    def __init__(self):
        self.running, self.lock, self.stopped = set(), threading.Lock(), False

    def run(self, command, timeout):
        """(exit status, its stderr's last line), or (None, why) where it ran past timeout or was stopped."""
        with self.lock:
            if self.stopped:
                return None, 'stopped'
            process = subprocess.Popen(command, cwd=CHECKOUT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                       text=True, start_new_session=True)
            self.running.add(process)
        try:
            _, err = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill(process)
            process.communicate()
            return None, f'its review did not finish within {timeout:g} s'
        finally:
            with self.lock:
                self.running.discard(process)
        if self.stopped:
            return None, 'stopped'
        return process.returncode, (err.strip().splitlines() or [''])[-1]

    def stop(self):
        """End every review running: SIGTERM (each ends its sandboxed children and exits, saving nothing), then
        SIGKILL for any still there after STOP_S."""
        with self.lock:
            self.stopped = True
            running = list(self.running)
        for process in running:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process in running:
            try:
                process.wait(timeout=STOP_S)
            except subprocess.TimeoutExpired:
                _kill(process)


def _kill(process):
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


def review_command(notebook, result_path, work_dir, train, limits, data_dir):
    command = [sys.executable, '-m', 'facegen', 'review', notebook, '--json', result_path, '--quiet',
               '--output-dir', work_dir, *_limit_arguments(limits)]
    command += ['--train'] if train else []
    return command + (['--data-dir', data_dir] if data_dir else [])


def _limit_arguments(limits):
    return [part for field, (option, _) in sandbox.OPTIONS.items() for part in (option, str(getattr(limits, field)))]


def _whole_s(limits, train):
    """How long one review may take: each step of the hand-in has its limit in the review; this bounds the
    review itself (loading TensorFlow, starting the sandboxes)."""
    return limits.check_s * (len(MODEL_CHECKS) + 1) + (2 * limits.train_s if train else 0) + 300


def review_one(reviews, hand_in, folder, out, train, limits, data_dir):
    """One hand-in by its own review command; a review that ends without a result gets a FAIL result saying so,
    unless it was stopped or could not run here (then nothing is saved). Returns (the hand-in, why nothing was
    saved or None)."""
    result_path = os.path.join(out, 'results', f'{hand_in.key}.json')
    notebook = os.path.join(folder, hand_in.notebook)
    status, said = reviews.run(review_command(notebook, result_path + '.new', os.path.join(out, 'work', hand_in.key),
                                              train, limits, data_dir), _whole_s(limits, train))
    if status is None and said == 'stopped':
        return hand_in, 'stopped'
    if status == sandbox.CANNOT_RUN:
        return hand_in, said
    result = _read_new(result_path + '.new')
    if result is None:
        why = said if status is None else f'its review stopped (exit status {status}: {said!r})'
        alone = f'make review NOTEBOOK={shlex.quote(notebook)}'
        result = result_of(notebook, [Line('FAIL', 'The notebook is there', f'{why}: review it alone ({alone}) to '
                                                                            'see where it stops')])
    write_result(result_path, {**result, 'learner': hand_in.record(), 'sha256': digest(notebook), 'train': train})
    return hand_in, None


def _read_new(path):
    """The result a review command wrote, or None where it wrote none that reads as one (it is removed)."""
    try:
        with open(path, encoding='utf-8') as new:
            result = json.load(new)
    except (OSError, ValueError):
        return None
    finally:
        with contextlib.suppress(OSError):
            os.remove(path)
    return result if isinstance(result, dict) and isinstance(result.get('lines'), list) else None


def review_contained(reviews, hand_in, folder, out, train, limits, data_dir):
    """review_one, where any failure of this one hand-in's review is its own row, never the class's stop."""
    try:
        return review_one(reviews, hand_in, folder, out, train, limits, data_dir)
    except Exception as error:  # noqa: BLE001 (whatever one review met stays in its learner's row)
        write_result(os.path.join(out, 'results', f'{hand_in.key}.json'), {
            **result_of(os.path.join(folder, hand_in.notebook), [Line(
                'FAIL', 'The notebook is there', f'its review failed here ({type(error).__name__}: '
                f'{str(error)[:200]}): review it again with --again')]),
            'learner': hand_in.record(), 'train': train})
        return hand_in, None


def digest(path):
    """The SHA-256 of a file, read in blocks."""
    hashed = hashlib.sha256()
    with open(path, 'rb') as source:
        for block in iter(lambda: source.read(2 ** 20), b''):
            hashed.update(block)
    return hashed.hexdigest()


def check_the_machine(reviews, out, limits):
    """Review the solution as a hand-in is reviewed; raise sandbox.CannotRun where it does not pass every line."""
    folder = os.path.join(out, 'machine')
    os.makedirs(folder, exist_ok=True)
    result_path = os.path.join(folder, 'solution.json')
    with contextlib.suppress(FileNotFoundError):
        os.remove(result_path)
    status, said = reviews.run(review_command(SOLUTION, result_path, os.path.join(folder, 'work'), False, limits,
                                              None), _whole_s(limits, False))
    if status is None and said == 'stopped':
        raise KeyboardInterrupt
    if not os.path.isfile(result_path):
        raise sandbox.CannotRun(said if status == sandbox.CANNOT_RUN else
                                f'the solution\'s review ended without a result (exit status {status}: {said!r})')
    with open(result_path, encoding='utf-8') as result_file:
        failing = [Line(**line) for line in json.load(result_file)['lines'] if line['result'] == 'FAIL']
    if failing:
        raise sandbox.CannotRun(f'the solution itself fails its review here ({failing[0].rubric}: '
                                f'{failing[0].message[:300]}; the review is in {result_path})')


def class_folder(handins, out):
    """(the folder of hand-ins, {links a zip held: their entries}, what unpacking it noted (lms.unpack)): a zip
    unpacked once per content."""
    if not zipfile.is_zipfile(handins):
        return handins, {}, None
    return lms.unpack(handins, os.path.join(out, 'handins', digest(handins)[:16]))


def to_review(hand_ins, folder, out, train, again):
    """The hand-ins with a notebook whose result is missing, was made of another notebook or without training where
    training is asked for, or which `again` names (by key or name)."""
    waiting = []
    for hand_in in hand_ins:
        if hand_in.notebook is None:
            continue
        try:
            with open(os.path.join(out, 'results', f'{hand_in.key}.json'), encoding='utf-8') as result_file:
                result = json.load(result_file)
        except (OSError, ValueError):
            result = {}
        same = result.get('sha256') == digest(os.path.join(folder, hand_in.notebook)) and \
            result.get('train', False) >= train
        if not same or hand_in.key in again or hand_in.name in again:
            waiting.append(hand_in)
    return waiting


def review_class(handins, out, jobs=1, train=False, limits=sandbox.LIMITS, data_dir=None, progress=True, again=()):
    """
    Review every hand-in of a folder or zip that is new or changed, then merge the results
    :return: (the gradebook's rows, the hand-ins left unreviewed: {key: why})
    """
    for folder in ('results', 'work', 'feedback'):
        os.makedirs(os.path.join(out, folder), exist_ok=True)
    folder, links, notes = class_folder(handins, out)
    hand_ins = lms.hand_ins(folder, links, notes)
    waiting = to_review(hand_ins, folder, out, train, again)
    reviewable = sum(hand_in.notebook is not None for hand_in in hand_ins)
    print(f'{len(hand_ins)} learners in {handins}, {reviewable} with a notebook'
          + (f'; {reviewable - len(waiting)} reviewed before and unchanged' if len(waiting) < reviewable else '')
          + f'; {len(waiting)} to review ({jobs} at a time)', flush=True)
    note = sandbox.sandbox_note()
    if note:
        print(f'Note: {note}.', flush=True)
    reviews, left = Reviews(), {}
    try:
        if waiting:
            check_the_machine(reviews, out, limits)
        for hand_in in hand_ins:
            if hand_in.notebook is None:
                write_result(os.path.join(out, 'results', f'{hand_in.key}.json'),
                             {**result_of('', [Line('FAIL', 'The notebook is there', hand_in.why)]),
                              'learner': hand_in.record()})
        left = _review_all(reviews, waiting, folder, out, jobs, train, limits, data_dir, progress)
    except KeyboardInterrupt:  # before the hand-ins' reviews began (the machine's check): none was reviewed
        reviews.stop()
        left = {hand_in.key: 'stopped' for hand_in in waiting}
    return gradebook.merge(out), left


def _review_all(reviews, waiting, folder, out, jobs, train, limits, data_dir, progress):
    """Review the hand-ins waiting, JOBS at a time; returns {key: why} of those not saved (Ctrl-C: 'stopped' for
    each whose review it ended or kept from starting)."""
    from tqdm import tqdm
    left = {}
    with tqdm(total=len(waiting), unit='hand-in', disable=not progress, file=sys.stdout) as bar, \
            concurrent.futures.ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = [pool.submit(review_contained, reviews, hand_in, folder, out, train, limits, data_dir)
                   for hand_in in waiting]
        try:
            for done in concurrent.futures.as_completed(futures):
                hand_in, why = done.result()
                if why:
                    left[hand_in.key] = why
                bar.set_postfix_str(inert.terminal(hand_in.key))
                bar.update()
        except KeyboardInterrupt:
            reviews.stop()
            pool.shutdown(cancel_futures=True)  # waits for the reviews running, which end at once
            for future, hand_in in zip(futures, waiting):
                why = 'stopped' if future.cancelled() else future.result()[1]
                if why:
                    left[hand_in.key] = why
    return left


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--handins', required=True, help='a folder of hand-ins, or a zip of one (as the LMS gave it)')
    parser.add_argument('--jobs', type=int, default=1, help='hand-ins reviewed at a time (default 1)')
    parser.add_argument('--out', help='where the results, feedback and gradebook go (default: '
                                      'output/review/NAME of the folder or zip)')
    parser.add_argument('--again', action='append', default=[], metavar='LEARNER',
                        help='review this learner again though their notebook did not change (a name or a key; '
                             'may be given more than once)')
    parser.add_argument('--train', action='store_true', help='also train each hand-in for a few minutes')
    parser.add_argument('--data-dir', help='the data folder for training (default: data/)')
    sandbox.add_limit_options(parser)
    args = parser.parse_args(argv)
    if sandbox.unsupported():
        print(f'Not here: {sandbox.unsupported()}.', file=sys.stderr)
        return 2
    if not os.path.exists(args.handins):
        print(f'{args.handins} is not there: give the folder or the zip of the hand-ins (HANDINS=...)',
              file=sys.stderr)
        return 2
    name = os.path.splitext(os.path.basename(os.path.normpath(args.handins)))[0]
    out = os.path.abspath(args.out or os.path.join(CHECKOUT, 'output', 'review', name))
    try:
        rows, left = review_class(os.path.abspath(args.handins), out, args.jobs, args.train,
                                  sandbox.limits_from(args), args.data_dir, again=set(args.again))
    except sandbox.CannotRun as error:
        print(f'\nThe review could not run here: {error}. No hand-in was reviewed and nothing was kept; mend the '
              'machine and run the same command again.', file=sys.stderr)
        return sandbox.CANNOT_RUN
    except ValueError as error:  # a zip that is not the class's hand-ins as unpacked (lms.unpack says why)
        print(f'No hand-in was reviewed: {inert.terminal(error)}', file=sys.stderr)
        return 2
    print(f'\n{gradebook.summary(rows)}\n\nGradebook: {os.path.join(out, "gradebook.csv")} (and .xlsx; '
          f'moodle_grades.csv and canvas_grades.csv to import)\nFeedback for each learner: '
          f'{os.path.join(out, "feedback")}/')
    return _left_said(left)


def _left_said(left):
    """What a batch that did not review everyone says, and its exit status (130 for Ctrl-C, as a shell's)."""
    if not left:
        return 0
    stopped = [key for key, why in left.items() if why == 'stopped']
    if stopped:
        print(f'\nStopped: {len(stopped)} hand-in(s) not reviewed, nothing of them kept. Run the same command again '
              'to go on where it stopped.', file=sys.stderr)
        return 130
    for key, why in left.items():
        print(f'{inert.terminal(key)} could not be reviewed here: {inert.terminal(why)}', file=sys.stderr)
    print('Nothing was kept for those: mend the machine and run the same command again.', file=sys.stderr)
    return sandbox.CANNOT_RUN


def merge_main(argv=None):
    parser = argparse.ArgumentParser(description='Merge the reviews in DIR/results/*.json into DIR/gradebook.csv '
                                                 'and DIR/feedback/')
    parser.add_argument('out', help='the folder holding results/')
    args = parser.parse_args(argv)
    if not os.path.isdir(os.path.join(args.out, 'results')):
        print(f'{args.out} has no results/ folder: give the folder the reviews wrote their JSON under', file=sys.stderr)
        return 2
    rows = gradebook.merge(args.out)
    print(f'{gradebook.summary(rows)}\n\nGradebook: {os.path.join(args.out, "gradebook.csv")}')
    return 0

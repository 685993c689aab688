"""A machine's fault is never a learner's FAIL: a sandbox or a judge that cannot start stops the review with one
sentence and saves nothing; a venv or checkout reached through links works; Ctrl-C stops a batch in seconds, ends
every child, keeps what is done and goes on where it stopped."""
import os
import signal
import stat
import subprocess
import sys
import time

import nbformat
import pytest

from conftest import solution_without_markers
from test_review_isolation import needs_the_sandbox, write
from facegen.course import review, sandbox
from facegen.notebooks import CHECKOUT, SOLUTION

CHECK_S = '60'


def facegen(*args, env=None, cwd=CHECKOUT, python=sys.executable, **options):
    return subprocess.run([python, '-m', 'facegen', *args], cwd=cwd, env=env, capture_output=True, text=True,
                          **options)


@needs_the_sandbox
def test_a_venv_and_a_checkout_reached_through_links_review_as_through_their_real_paths(tmp_path):
    """A shared venv linked into the project, a checkout linked into a home: Python and the code are found inside
    the sandbox where they are found outside."""
    os.symlink(sys.prefix, tmp_path / 'venv')
    os.symlink(CHECKOUT, tmp_path / 'checkout')
    done = facegen('review', SOLUTION, '--json', str(tmp_path / 'result.json'), '--check-seconds', CHECK_S,
                   python=str(tmp_path / 'venv' / 'bin' / 'python'), cwd=tmp_path / 'checkout')
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert 'Every PASS/FAIL line passes' in done.stdout


@pytest.fixture
def failing_bwrap(tmp_path):
    """An environment whose bwrap passes the review's first test of it (`... true`) and fails to start anything
    else, as on a machine whose user namespaces an AppArmor profile restricts to some programs."""
    real = sandbox.bubblewrap()[0]
    if real is None:
        pytest.skip('no bubblewrap here to break')
    folder = tmp_path / 'bin'
    folder.mkdir()
    script = folder / 'bwrap'
    script.write_text(f'#!/bin/sh\nfor last; do :; done\n[ "$last" = true ] && exec {real} "$@"\n'
                      'echo "bwrap: execvp /nowhere/bin/python: No such file or directory" >&2\nexit 1\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return {**os.environ, 'PATH': f'{folder}:{os.environ["PATH"]}'}


def test_a_sandbox_that_cannot_start_stops_a_review_and_a_batch_with_one_sentence_and_saves_nothing(tmp_path,
                                                                                                  failing_bwrap):
    notebook = write(tmp_path, solution_without_markers())
    done = facegen('review', notebook, '--json', str(tmp_path / 'result.json'), env=failing_bwrap)
    assert done.returncode == sandbox.CANNOT_RUN
    assert done.stderr.startswith('The review could not run here: a sandboxed Python does not start here (exit '
                                  "status 1; the last line of its log: 'bwrap: execvp /nowhere/bin/python"), done.stderr
    assert not (tmp_path / 'result.json').exists()
    handins = tmp_path / 'class'
    handins.mkdir()
    os.replace(notebook, handins / 'ana.ipynb')
    (handins / 'bo.txt').write_text('no notebook')
    done = facegen('review', '--handins', str(handins), '--out', str(tmp_path / 'out'), env=failing_bwrap)
    assert done.returncode == sandbox.CANNOT_RUN
    assert 'The review could not run here: a sandboxed Python does not start here' in done.stderr
    assert 'No hand-in was reviewed and nothing was kept' in done.stderr
    assert os.listdir(tmp_path / 'out' / 'results') == []


@needs_the_sandbox
def test_a_judge_that_cannot_start_is_the_machines_fault(tmp_path):
    """A memory limit too small for TensorFlow: the judge never says it is ready, before it has seen any evidence."""
    with pytest.raises(sandbox.CannotRun, match=r'^the judge does not start \(the last line of its log'):
        review.review(write(tmp_path, solution_without_markers()), limits=sandbox.Limits(check_s=30, memory_gb=0.3))


def children_of(out):
    """The processes still running whose command line names out (reviews, recorders, judges of a batch)."""
    found = []
    for pid in filter(str.isdigit, os.listdir('/proc')):
        try:
            with open(f'/proc/{pid}/cmdline', 'rb') as cmdline:
                if str(out).encode() in cmdline.read():
                    found.append(int(pid))
        except OSError:
            pass
    return found


@needs_the_sandbox
def test_ctrl_c_stops_a_batch_in_seconds_keeps_what_is_done_and_the_next_run_goes_on(tmp_path):
    handins = tmp_path / 'class'
    handins.mkdir()
    for learner in ('ana', 'bo', 'cy'):
        nbformat.write(solution_without_markers(), str(handins / f'{learner}.ipynb'))
    out = tmp_path / 'out'
    command = [sys.executable, '-m', 'facegen', 'review', '--handins', str(handins), '--out', str(out), '--jobs', '2',
               '--check-seconds', CHECK_S]
    batch = subprocess.Popen(command, cwd=CHECKOUT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             start_new_session=True)
    deadline = time.monotonic() + 300

    def reviewing():  # a hand-in whose review has started and has no result yet
        return [learner for learner in ('ana', 'bo', 'cy') if (out / 'work' / learner / 'judge.log').exists()
                and not (out / 'results' / f'{learner}.json').exists()]
    while not ((out / 'results').is_dir() and any(out.joinpath('results').glob('*.json')) and reviewing()):
        assert time.monotonic() < deadline and batch.poll() is None, 'no review done, and another under way'
        time.sleep(0.2)
    time.sleep(2)  # mid-review: the hand-in's process and judge running
    asked = time.monotonic()
    os.killpg(batch.pid, signal.SIGINT)  # what a terminal sends its foreground process group on Ctrl-C
    stdout, stderr = batch.communicate(timeout=60)
    took = time.monotonic() - asked
    assert batch.returncode == 130 and took < 15, (took, stderr[-2000:])
    assert 'Stopped:' in stderr and 'Run the same command again to go on where it stopped' in stderr
    assert 'Traceback' not in stderr
    assert (out / 'gradebook.csv').is_file()
    assert children_of(out) == [], 'a review, a hand-in or a judge left running'
    done = sorted(name for name in os.listdir(out / 'results') if name.endswith('.json'))
    assert len(done) < 3 and not [name for name in os.listdir(out / 'results') if not name.endswith('.json')]
    again = subprocess.run(command, cwd=CHECKOUT, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    assert f'{len(done)} reviewed before and unchanged; {3 - len(done)} to review' in again.stdout
    assert sorted(os.listdir(out / 'results')) == ['ana.json', 'bo.json', 'cy.json']

"""Training runs are never lost: a new run never removes another, resume skips a damaged checkpoint, a changed
network is named variable by variable, every run writes TensorBoard's event files, and runs are listed and removed
by hand only."""
import glob
import os
import signal
import subprocess
import socket
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from facegen.runs import checkpoints
from facegen.runs import folders as run_folders
from facegen.runs import results, training
from conftest import ROOT
from test_jupyter import free_port
from test_training import fake_batches, run_train

TRAINING_CHILD = """
import sys, time
import numpy as np
import tensorflow.compat.v1 as tf
from facegen.notebooks import loader
from facegen.runs import training
nb = loader.notebook_functions()
real_record = training.TrainingRun.record
def record(self, d, g):
    step = real_record(self, d, g)
    print('step', step, flush=True)
    if step == int(sys.argv[2]):
        time.sleep(600)  # killed here, between checkpoints
    return step
training.TrainingRun.record = record
def batches(batch_size):
    rng = np.random.default_rng(0)
    for _ in range(8):
        yield rng.uniform(-0.5, 0.5, (batch_size, 28, 28, 1)).astype(np.float32)
np.random.seed(0)
with tf.Graph().as_default():
    tf.set_random_seed(0)
    run = training.TrainingRun(sys.argv[1], 'child', resume=sys.argv[3] == 'resume', checkpoint_every=2,
                                   progress=None, print_every=100, show_every=100)
    nb['train'](1, 8, 16, 0.0002, 0.5, batches, (64, 28, 28, 1), 'L', run)
"""


def files_in(folder):
    return sorted(str(p.relative_to(folder)) for p in Path(folder).rglob('*') if p.is_file())


def test_a_run_killed_between_checkpoints_resumes_to_the_planned_step_with_a_clean_loss_history(tmp_path):
    child = subprocess.Popen([sys.executable, '-c', TRAINING_CHILD, str(tmp_path), '5', 'new'], cwd=ROOT,
                             stdout=subprocess.PIPE, text=True)
    for line in child.stdout:
        if line.strip() == 'step 5':
            break
    child.send_signal(signal.SIGKILL)
    child.wait()
    [run_dir] = run_folders.runs(str(tmp_path))
    assert run_folders.steps_of(run_dir) == 4, 'the checkpoint of step 4 is there'

    done = subprocess.run([sys.executable, '-c', TRAINING_CHILD, str(tmp_path), '-1', 'resume'], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert run_folders.runs(str(tmp_path)) == [run_dir], 'the same run, no new one'
    steps = np.loadtxt(Path(run_dir) / 'losses.csv', delimiter=',', skiprows=1)[:, 0]
    assert list(steps) == list(range(1, 9)), 'steps 1-8 once each: no gap, no repeat'
    assert run_folders.steps_of(run_dir) == 8


def cut(path):
    with open(path, 'r+b') as f:
        f.truncate(os.path.getsize(path) // 2)


def test_resume_skips_a_cut_checkpoint_for_the_one_before_with_one_line(nb, tmp_path, capsys):
    run = run_train(nb, tmp_path, fake_batches(4), n_batches=4)  # checkpoints at steps 2 and 4
    [data] = glob.glob(os.path.join(run.run_dir, 'checkpoints', 'model-4.data-*'))
    cut(data)
    capsys.readouterr()

    resumed = run_train(nb, tmp_path, fake_batches(4), n_batches=4, epochs=2, resume=True)

    out = capsys.readouterr().out
    [skipped] = [line for line in out.splitlines() if line.startswith('Skipped the checkpoint')]
    assert f'{run.run_dir}/checkpoints/model-4: it does not read back' in skipped
    assert 'Resumed from step 2' in out
    assert [row[0] for row in resumed.losses] == list(range(1, 9))
    assert run_folders.steps_of(run.run_dir) == 8


def test_drawing_from_the_last_checkpoint_falls_back_the_same_way(nb, tmp_path, capsys):
    run = run_train(nb, tmp_path, fake_batches(4), n_batches=4)
    for path in glob.glob(os.path.join(run.run_dir, 'checkpoints', 'model-4.*')):
        if path.endswith('.index'):
            cut(path)
    assert results.last_checkpoint(run.run_dir).endswith('model-2')
    assert 'Skipped the checkpoint' in capsys.readouterr().out


def test_with_no_checkpoint_intact_resume_names_the_folder_and_what_to_do(nb, tmp_path):
    run = run_train(nb, tmp_path, fake_batches(4), n_batches=4)
    for path in glob.glob(os.path.join(run.run_dir, 'checkpoints', 'model-*.data-*')):
        cut(path)
    before = files_in(tmp_path)
    with pytest.raises(checkpoints.NoIntactCheckpointError,
                       match=rf'No checkpoint in {run.run_dir}/checkpoints reads back \(model-4: .*; model-2: .*\). '
                             r'Train afresh with resume=False: it starts a new run and keeps this one.'):
        run_train(nb, tmp_path, fake_batches(4), n_batches=4, resume=True)
    assert files_in(tmp_path) == before, 'nothing written, nothing removed'


def test_a_checkpoint_that_does_not_read_back_after_saving_never_stays_the_newest(nb, tmp_path, capsys):
    run = run_train(nb, tmp_path, fake_batches(4), n_batches=4)
    newest = os.path.join(run.run_dir, 'checkpoints', 'model-4')
    cut(glob.glob(newest + '.data-*')[0])
    assert checkpoints.forget_if_damaged(newest).startswith('it does not read back')
    assert tf.train.latest_checkpoint(os.path.join(run.run_dir, 'checkpoints')).endswith('model-2')
    assert 'Is the disk full?' in capsys.readouterr().out


def wider(nb):
    """The notebook's functions with a generator of 8 more channels in its first layer."""
    from facegen.notebooks import loader
    return loader.notebook_functions(transform=lambda source: source.replace('7 * 7 * 128', '7 * 7 * 136')
                                     .replace('(-1, 7, 7, 128)', '(-1, 7, 7, 136)'))


def test_resuming_a_changed_network_names_each_variable_and_what_to_do(nb, tmp_path):
    run = run_train(nb, tmp_path, fake_batches(2), n_batches=2)
    before = files_in(tmp_path)
    with pytest.raises(checkpoints.CheckpointMismatchError) as mismatch:
        run_train(wider(nb), tmp_path, fake_batches(2), n_batches=2, resume=True)
    message = str(mismatch.value)
    assert message.startswith(f'The network does not fit the checkpoint {run.run_dir}/checkpoints/model-2')
    assert 'generator/dense/kernel: [16, 6272] in the checkpoint, [16, 6664] in the graph' in message
    assert 'train afresh with resume=False: it starts a new run and keeps this one' in message
    assert files_in(tmp_path) == before


def events_of(run_dir):
    """(scalars {tag: [(step, value)]}, image steps, hparams seen, session-start steps) of a run's event files."""
    scalars, images, hparams, starts = {}, [], False, []
    for path in sorted(glob.glob(os.path.join(run_dir, 'events.out.tfevents.*'))):
        for event in tf.train.summary_iterator(path):
            if event.HasField('session_log') and event.session_log.status == tf.SessionLog.START:
                starts.append(event.step)
            for value in event.summary.value:
                if value.HasField('simple_value'):
                    scalars.setdefault(value.tag, []).append((event.step, value.simple_value))
                elif value.HasField('image'):
                    images.append(event.step)
                elif value.metadata.plugin_data.plugin_name == 'hparams':
                    hparams = True
    return scalars, images, hparams, starts


def test_every_run_writes_losses_grids_and_hyperparameters_for_tensorboard(nb, tmp_path):
    run = run_train(nb, tmp_path, fake_batches(4), n_batches=4, hyperparameters={'batch_size': 8, 'z_dim': 16})
    scalars, images, hparams, starts = events_of(run.run_dir)
    losses = {tag: [(step, round(value, 4)) for step, value in rows] for tag, rows in scalars.items()}
    assert losses == {'loss/discriminator': [(s, round(d, 4)) for s, d, _ in run.losses],
                      'loss/generator': [(s, round(g, 4)) for s, _, g in run.losses]}
    assert images == [2, 4, 4] and hparams and starts == [], 'the grids at steps 2 and 4, and the final one'
    graph_ops = {op.type for op in tf.get_default_graph().get_operations()}
    assert not any('Summary' in kind for kind in graph_ops)


def test_a_grid_score_goes_to_tensorboard_beside_each_grid(nb, tmp_path):
    shown = []

    def grid_score(images):
        shown.append(np.asarray(images).shape)
        return {'faces/found': len(shown) / 10, 'faces/variety': 0.5}

    run = run_train(nb, tmp_path, fake_batches(4), n_batches=4, grid_score=grid_score)
    scalars, images, _, _ = events_of(run.run_dir)
    assert shown == [(25, 28, 28, 1)] * len(images), "the grid's own images, once a grid"
    assert scalars['faces/found'] == [(step, pytest.approx((i + 1) / 10)) for i, step in enumerate(images)]
    assert [step for step, _ in scalars['faces/variety']] == images


def test_a_resumed_run_marks_where_it_started_again(nb, tmp_path):
    run_train(nb, tmp_path, fake_batches(4), n_batches=4, checkpoint_every=3)  # checkpoints at 3 and 4
    resumed = run_train(nb, tmp_path, fake_batches(4), n_batches=4, epochs=2, resume=True)
    scalars, _, _, starts = events_of(resumed.run_dir)
    assert starts == [4], 'TensorBoard drops what an earlier session wrote after step 4'
    assert [step for step, _ in scalars['loss/generator']] == list(range(1, 9))


def make(*args, cwd=ROOT, timeout=120):
    return subprocess.run(['make', '--no-print-directory', f'VENV={os.path.dirname(os.path.dirname(sys.executable))}',
                           *args], cwd=cwd, capture_output=True, text=True, timeout=timeout)


def test_runs_are_listed_with_their_size_and_removed_one_at_a_time(nb, tmp_path):
    first = run_train(nb, tmp_path / 'mnist', fake_batches(2), n_batches=2)
    second = run_train(nb, tmp_path / 'mnist', fake_batches(2), n_batches=2)
    (tmp_path / 'dlnd_face_generation.html').write_text('make run writes this beside the trainings')
    listed = make('runs', f'OUTPUT={tmp_path}')
    assert listed.returncode == 0
    assert [line.split()[0] for line in listed.stdout.splitlines()[:2]] == [first.run_dir, second.run_dir]
    assert '2 runs,' in listed.stdout and 'MB in all' in listed.stdout

    refused = make('remove-run', f'RUN={tmp_path / "mnist"}')
    assert refused.returncode != 0 and 'is not a training run' in refused.stderr
    assert len(run_folders.runs(str(tmp_path / 'mnist'))) == 2, 'nothing but a run is removed'
    removed = make('remove-run', f'RUN={first.run_dir}')
    assert removed.returncode == 0 and f'Removed {first.run_dir}' in removed.stdout
    assert run_folders.runs(str(tmp_path / 'mnist')) == [second.run_dir]


def test_make_clean_says_that_it_removes_every_run(tmp_path):
    (tmp_path / 'output' / 'mnist' / 'run-20260101-000000').mkdir(parents=True)
    for name in ('Makefile', 'requirements.txt'):
        os.symlink(os.path.join(ROOT, name), tmp_path / name)
    done = make('clean', cwd=tmp_path)
    assert 'every training run' in done.stdout and not (tmp_path / 'output').exists()


def test_make_tensorboard_says_what_to_do_without_runs_or_with_its_port_taken(nb, tmp_path):
    empty = make('tensorboard', f'OUTPUT={tmp_path}')
    assert empty.returncode != 0 and f'No training runs in {tmp_path} yet' in empty.stdout
    run_train(nb, tmp_path / 'mnist', fake_batches(2), n_batches=2)
    port = free_port()
    with socket.socket() as taken:
        taken.bind(('127.0.0.1', port))
        busy = make('tensorboard', f'OUTPUT={tmp_path}', f'TENSORBOARD_ARGS=--port={port}')
    assert busy.returncode != 0
    assert f'Port {port} is taken (another TensorBoard?): choose another, make tensorboard ' \
           f'TENSORBOARD_ARGS=--port={port + 1}' in busy.stdout

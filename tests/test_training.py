"""The notebook's train keeps its run: losses, grids, samples and checkpoints; resumes; stops safely."""
from pathlib import Path

import numpy as np
import pytest
import tensorflow.compat.v1 as tf
from tensorflow.core.protobuf.rewriter_config_pb2 import RewriterConfig

from facegen import tf_settings
from facegen.runs import training

BATCH = 8


def fake_batches(n_batches, seed=0, interrupt_at=None, nan_at=None):
    """get_batches for n_batches of random images in [-0.5, 0.5]; optionally interrupted or poisoned."""
    def get_batches(batch_size):
        rng = np.random.default_rng(seed)
        for i in range(n_batches):
            if i == interrupt_at:
                raise KeyboardInterrupt
            batch = rng.uniform(-0.5, 0.5, (batch_size, 28, 28, 1)).astype(np.float32)
            yield batch * np.nan if i == nan_at else batch
    return get_batches


def run_train(nb, run_dir, get_batches, n_batches, epochs=1, seed=0, **options):
    np.random.seed(seed)
    with tf.Graph().as_default():
        tf.set_random_seed(seed)
        options = {'print_every': 1, 'show_every': 2, 'checkpoint_every': 2, 'progress': None, **options}
        run = training.TrainingRun(str(run_dir), 'test', **options)
        return nb['train'](epochs, BATCH, 16, 0.0002, 0.5, get_batches, (BATCH * n_batches, 28, 28, 1), 'L', run)


def last_checkpoint_step(run_dir):
    return int(tf.train.latest_checkpoint(str(Path(run_dir) / 'checkpoints')).rsplit('-', 1)[1])


def test_train_keeps_losses_grids_samples_and_checkpoints(nb, tmp_path):
    record = run_train(nb, tmp_path, fake_batches(4), n_batches=4)
    assert Path(record.run_dir).parent == tmp_path and Path(record.run_dir).name.startswith('run-')
    run_dir = Path(record.run_dir)

    assert [row[0] for row in record.losses] == [1, 2, 3, 4]
    assert len((run_dir / 'losses.csv').read_text().splitlines()) == 5
    assert sorted(p.name for p in (run_dir / 'grids').iterdir()) == ['step_000002.png', 'step_000004.png']
    samples = np.load(run_dir / 'samples.npy')
    assert samples.shape == (1000, 28, 28, 1) and samples.dtype == np.float32
    assert -1 <= samples.min() and samples.max() <= 1
    assert (run_dir / 'progress.gif').is_file() and (run_dir / 'losses.png').is_file()
    assert last_checkpoint_step(run_dir) == 4


def test_the_first_grid_comes_early_then_every_show_every_steps(nb, tmp_path):
    first = training.FIRST_GRID_STEP
    run = run_train(nb, tmp_path, fake_batches(first + 10), n_batches=first + 10, show_every=first + 5,
                    print_every=100, checkpoint_every=1000)
    assert sorted(p.name for p in (Path(run.run_dir) / 'grids').iterdir()) == [
        f'step_{first:06d}.png', f'step_{first + 5:06d}.png', f'step_{first + 10:06d}.png']  # the last: the final grid


def test_resume_continues_the_newest_run_from_its_saved_step(nb, tmp_path, capsys):
    first = run_train(nb, tmp_path, fake_batches(4), n_batches=4, epochs=1)
    fixed_z = np.load(Path(first.run_dir) / 'fixed_z.npy')

    record = run_train(nb, tmp_path, fake_batches(4), n_batches=4, epochs=2, resume=True)

    assert record.run_dir == first.run_dir
    assert 'Resumed from step 4' in capsys.readouterr().out
    assert [row[0] for row in record.losses] == list(range(1, 9))
    assert last_checkpoint_step(record.run_dir) == 8
    assert np.array_equal(np.load(Path(record.run_dir) / 'fixed_z.npy'), fixed_z), 'the grids keep drawing the same z'


def test_a_fresh_run_starts_a_folder_of_its_own_and_keeps_the_old_one(nb, tmp_path):
    old = run_train(nb, tmp_path, fake_batches(4), n_batches=4)
    before = sorted(str(p) for p in Path(old.run_dir).rglob('*'))
    record = run_train(nb, tmp_path, fake_batches(2), n_batches=2)
    assert record.run_dir != old.run_dir
    assert [row[0] for row in record.losses] == [1, 2] and last_checkpoint_step(record.run_dir) == 2
    assert sorted(str(p) for p in Path(old.run_dir).rglob('*')) == before, 'every file of the old run is kept'
    assert last_checkpoint_step(old.run_dir) == 4


def test_interrupt_keeps_checkpoint_losses_and_grids(nb, tmp_path):
    with pytest.raises(KeyboardInterrupt):
        run_train(nb, tmp_path, fake_batches(6, interrupt_at=3), n_batches=6)
    [run_dir] = tmp_path.iterdir()  # the one run

    assert last_checkpoint_step(run_dir) == 3
    assert len((run_dir / 'losses.csv').read_text().splitlines()) == 1 + 3
    assert (run_dir / 'grids' / 'step_000002.png').is_file() and (run_dir / 'progress.gif').is_file()


def test_nan_loss_stops_with_advice_and_keeps_the_last_good_checkpoint(nb, tmp_path):
    with pytest.raises(FloatingPointError, match=r'Step 3: .*Training diverged: try a lower learning_rate'):
        run_train(nb, tmp_path, fake_batches(6, nan_at=2), n_batches=6)
    [run_dir] = tmp_path.iterdir()  # the one run

    assert last_checkpoint_step(run_dir) == 2
    assert len((run_dir / 'losses.csv').read_text().splitlines()) == 1 + 2


def test_same_seed_gives_the_same_losses(nb, tmp_path):
    first = run_train(nb, tmp_path / 'a', fake_batches(3), n_batches=3, seed=5).losses
    second = run_train(nb, tmp_path / 'b', fake_batches(3), n_batches=3, seed=5).losses
    other = run_train(nb, tmp_path / 'c', fake_batches(3), n_batches=3, seed=6).losses
    assert first == second
    assert first != other


def test_the_rate_holds_for_half_the_run_then_falls_linearly_toward_zero(nb, tmp_path, monkeypatch):
    """train feeds lr through decayed: the recipe's rate, then less each batch of the second half (never 0: the
    last batch still learns). Measured in docs/experiments.md: the same updates draw clearer digits."""
    fed, real_run = [], tf.Session.run

    def run(self, fetches, feed_dict=None, **kwargs):
        fed.extend(value for value in (feed_dict or {}).values() if isinstance(value, float))
        return real_run(self, fetches, feed_dict, **kwargs)
    monkeypatch.setattr(tf.Session, 'run', run)
    run_train(nb, tmp_path, fake_batches(8), n_batches=8)
    assert fed == pytest.approx([0.0002 * share for share in (1, 1, 1, 1, 1, 0.75, 0.5, 0.25)])


BFLOAT16_REWRITE = 'auto_mixed_precision_onednn_bfloat16'


def test_session_config_turns_the_bfloat16_rewrite_on_only_when_asked(nb, monkeypatch):
    monkeypatch.setattr(tf_settings, 'cpu_has_bfloat16', lambda: True)
    float32, bfloat16 = tf_settings.session_config(), tf_settings.session_config(bfloat16=True)
    assert getattr(float32.graph_options.rewrite_options, BFLOAT16_REWRITE) != RewriterConfig.ON
    assert getattr(bfloat16.graph_options.rewrite_options, BFLOAT16_REWRITE) == RewriterConfig.ON
    assert float32.inter_op_parallelism_threads == bfloat16.inter_op_parallelism_threads == 0, 'TensorFlow\'s pools'


def test_bfloat16_stays_float32_and_says_so_on_a_cpu_without_native_bfloat16(nb, monkeypatch):
    monkeypatch.setattr(tf_settings, 'cpu_has_bfloat16', lambda: False)
    with pytest.warns(UserWarning, match='neither AVX512-BF16 nor AMX.*training stays in float32'):
        config = tf_settings.session_config(bfloat16=True)
    assert getattr(config.graph_options.rewrite_options, BFLOAT16_REWRITE) != RewriterConfig.ON


def test_train_passes_its_bfloat16_switch_to_the_session(nb, tmp_path, monkeypatch):
    asked, session_config = [], tf_settings.session_config

    def recording_session_config(bfloat16=False):
        asked.append(bfloat16)
        return session_config(bfloat16)
    monkeypatch.setattr(tf_settings, 'session_config', recording_session_config)

    record = run_train(nb, tmp_path, fake_batches(2), n_batches=2, bfloat16=True)

    assert asked == [True]
    assert np.isfinite(np.array(record.losses)).all()


@pytest.mark.skipif(not tf_settings.cpu_has_bfloat16(), reason='the CPU has no native bfloat16: the rewrite is skipped')
def test_bfloat16_training_computes_in_lower_precision(nb, tmp_path):
    float32 = run_train(nb, tmp_path / 'f32', fake_batches(2), n_batches=2).losses
    bfloat16 = run_train(nb, tmp_path / 'bf16', fake_batches(2), n_batches=2, bfloat16=True).losses
    assert float32 != bfloat16
    assert np.allclose(np.array(float32), np.array(bfloat16), rtol=0.05), 'bfloat16 has 8 bits of mantissa: close'


@pytest.mark.parametrize('flags, expected', [('fpu avx512f avx512_bf16 sse', True), ('fpu amx_bf16 amx_tile', True),
                                             ('fpu avx512f avx2', False), ('', False)])
def test_cpu_has_bfloat16_reads_the_cpu_flags(tmp_path, flags, expected):
    cpuinfo = tmp_path / 'cpuinfo'
    cpuinfo.write_text(f'processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: {flags}\n\nprocessor\t: 1\n')
    assert tf_settings.cpu_has_bfloat16(str(cpuinfo)) is expected


def test_cpu_has_bfloat16_is_false_where_onednn_is_capped_below_it(tmp_path, monkeypatch):
    cpuinfo = tmp_path / 'cpuinfo'
    cpuinfo.write_text('processor\t: 0\nflags\t\t: fpu avx512f avx512_bf16\n')
    monkeypatch.setenv('ONEDNN_MAX_CPU_ISA', 'AVX2')  # a bfloat16 matmul would abort the process
    assert tf_settings.cpu_has_bfloat16(str(cpuinfo)) is False
    monkeypatch.setenv('ONEDNN_MAX_CPU_ISA', 'AVX512_CORE_AMX')
    assert tf_settings.cpu_has_bfloat16(str(cpuinfo)) is True


def test_cpu_has_bfloat16_is_false_where_the_flags_cannot_be_read(tmp_path):
    assert tf_settings.cpu_has_bfloat16(str(tmp_path / 'missing')) is False


def test_text_progress_prints_plain_lines_with_the_rate_and_losses(nb, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(training, 'TEXT_PROGRESS_EVERY_S', 0)
    run_train(nb, tmp_path, fake_batches(3), n_batches=3, progress='text', print_every=100)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith('test:')]
    assert len(lines) == 3 and '3/3' in lines[-1] and 'D=' in lines[-1] and 'G=' in lines[-1]
    assert not any('\r' in line for line in lines), 'a console line each, no carriage-return animation'


def test_widget_progress_is_a_jupyter_bar(nb, tmp_path, monkeypatch):
    import tqdm.notebook
    bars = []

    class RecordingBar:
        def __init__(self, total, desc, unit):
            self.total, self.n, self.last_print_n, self.closed = total, 0, 0, False
            bars.append(self)

        def update(self):
            self.n += 1

        def set_postfix(self, **_):
            pass

        def close(self):
            self.closed = True
    monkeypatch.setattr(tqdm.notebook, 'tqdm', RecordingBar)

    run_train(nb, tmp_path, fake_batches(3), n_batches=3, progress='widget')

    assert [(bar.total, bar.n, bar.closed) for bar in bars] == [(3, 3, True)]


def test_an_unknown_progress_style_is_refused():
    with pytest.raises(ValueError, match=r"Unknown progress 'bar'; expected one of: 'widget', 'text', None"):
        training.TrainingRun(progress='bar')

"""Training speed of the notebook's GAN, side by side with its peers, in one run.

Each figure is measured in a child process of its own (TensorFlow's graph and eager modes do not mix), one after
the other, and reported as the median images per second over --steps timed training steps after a warm-up:
  graph       the notebook's own graph and batch size, one sess.run per batch, as `train` runs it (oneDNN on,
              as every entry point of the project sets it)
  no_onednn   the same with oneDNN off (TF_ENABLE_ONEDNN_OPTS=0): TensorFlow's own default on CPUs without
              AVX-512 VNNI/BF16 or AMX
  two_run     the same graph run as the course's solutions ran it: one sess.run per network per batch, with
              TensorFlow's default session settings
  keras3      the same network and losses in Keras 3 with a tf.function train step (TensorFlow's DCGAN tutorial),
              the generator's weights averaged as the notebook's are (Keras 3's use_ema, decay 0.99)
  torch, torch_cl  the same in PyTorch eager, written as its DCGAN tutorial (bench/torch_peer.py), with
              contiguous and channels_last tensors; only with --torch-python (a Python with torch: the project
              does not need it; bench/requirements-torch.txt)
  train_loop  the notebook's whole train, TrainingRun's bookkeeping and TensorBoard events included
  bf16        the notebook's graph with its bfloat16 switch on (oneDNN's automatic bfloat16 rewrite; on a CPU
              without native bfloat16 the switch keeps float32, so this equals graph there)
  data        `train`'s loop over helper.Dataset.get_batches: images per second received, share of time waiting
for the MNIST (28x28x1, batch 64) and CelebA (28x28x3, batch 32) shapes, plus the training FLOPs per image of the
network (`gflop_per_image`, TensorFlow's profiler) and the GFLOP/s reached, beside what this CPU's cores reach on a
large float32 matrix product in TensorFlow (`peak`). The modes are interleaved within each repeat; each ratio of
the notebook's step to a peer is taken per repeat, and shown as its median with the range. The last line is one
JSON object.
Name the CPU with every figure: `grep -o -E 'avx512f|avx512_bf16|amx_bf16' /proc/cpuinfo | sort -u`.

    python bench/train_speed.py [--steps 30] [--repeats 5] [--torch-python .venv-torch/bin/python]
                                [--modes graph keras3 ...] [--shapes mnist celeba]
"""
import argparse
import contextlib
import json
import os
import statistics
import sys
import time
import typing

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)
sys.path.insert(0, ROOT)
import facegen  # noqa: E402,F401 (the children inherit the project's TensorFlow settings)
from measure import child_result, peak_rss_mb, recorded_steps, time_steps  # noqa: E402 (bench/ is on the path: this file runs as a script)
from facegen.notebooks import loader  # noqa: E402

SHAPES = {'mnist': (1, 64), 'celeba': (3, 32)}  # channels, the notebook's batch size
MODES = ('graph', 'train_loop', 'no_onednn', 'two_run', 'keras3', 'bf16', 'torch', 'torch_cl')  # torch: with a Python
Z_DIM = 100
G_CHANNELS, D_CHANNELS = (128, 64, 32), (32, 64, 128)  # the notebook's layer widths, for the Keras 3 peer
R1_WEIGHTS = dict(zip(SHAPES, loader.training_cell_setting('R1_WEIGHT')))  # as each training cell sets it


# ---------------------------------------------------------------------------------------------- child processes

def notebook_namespace():
    """The notebook's function cells, executed into one namespace (graph mode)."""
    from facegen.notebooks import loader
    return loader.notebook_functions()


class NotebookStep(typing.NamedTuple):
    """The notebook's training graph in a session: step() runs one batch; fetches and feed are the whole step's."""
    sess: object
    step: typing.Callable
    fetches: list
    feed: dict
    input_real: object
    input_z: object
    learning_rate: object


@contextlib.contextmanager
def notebook_step(dataset, mode='graph'):
    """The notebook's training step on one random batch, as a NotebookStep. mode 'graph' and 'bf16': one sess.run
    per batch with the notebook's session settings; 'two_run': one per network, with TensorFlow's defaults, as the
    course ran it."""
    import numpy as np
    from facegen import tf_settings
    ns = notebook_namespace()
    tf = ns['tf']
    channels, batch = SHAPES[dataset]
    config = tf.ConfigProto() if mode == 'two_run' else tf_settings.session_config(bfloat16=mode == 'bf16')
    with tf.Graph().as_default():
        input_real, input_z, lr = ns['model_inputs'](28, 28, channels, Z_DIM)
        ns['R1_WEIGHT'] = R1_WEIGHTS[dataset]  # as the dataset's training cell sets it
        d_loss, g_loss = ns['model_loss'](input_real, input_z, channels)
        d_opt, g_opt = ns['model_opt'](d_loss, g_loss, lr, 0.5)
        rng = np.random.default_rng(0)
        feed = {input_real: rng.uniform(-1, 1, (batch, 28, 28, channels)).astype(np.float32),
                input_z: rng.uniform(-1, 1, (batch, Z_DIM)).astype(np.float32), lr: 2e-4}
        fetches = [d_opt, g_opt, d_loss, g_loss]
        with tf.Session(config=config) as sess:
            sess.run(tf.global_variables_initializer())

            def step():
                if mode == 'two_run':
                    sess.run([d_opt, d_loss], feed)
                    sess.run([g_opt, g_loss], feed)
                else:
                    sess.run(fetches, feed)
            yield NotebookStep(sess, step, fetches, feed, input_real, input_z, lr)


def graph_speed(dataset, steps, mode):
    """Images per second of the notebook's graph: 'graph' or 'no_onednn' (one run), 'two_run', or 'bf16'."""
    with notebook_step(dataset, mode) as built:
        batch = SHAPES[dataset][1]
        return time_steps(built.step, steps, batch), training_flops(built.sess, built.fetches, built.feed) / batch


def training_flops(sess, fetches, feed):
    """Floating-point operations of one training step (both networks, forward and backward), from TF's profiler
    fed the shapes of a traced step."""
    import tensorflow.compat.v1 as tf
    run_meta = tf.RunMetadata()
    sess.run(fetches, feed, options=tf.RunOptions(trace_level=tf.RunOptions.FULL_TRACE), run_metadata=run_meta)
    options = tf.profiler.ProfileOptionBuilder.float_operation()
    options['output'] = 'none'
    return tf.profiler.profile(sess.graph, run_meta=run_meta, cmd='op', options=options).total_float_ops


def keras3_step(dataset):
    """The same network and losses in Keras 3, trained with a tf.function step as in TensorFlow's DCGAN tutorial:
    step() runs it on one random batch."""
    import keras
    import numpy as np
    import tensorflow as tf
    from keras import layers
    channels, batch = SHAPES[dataset]
    init = keras.initializers.RandomNormal(stddev=0.02)

    def conv_bn(x, filters, transpose=False, bn_momentum=0.99):
        conv = layers.Conv2DTranspose if transpose else layers.Conv2D
        x = conv(filters, 4, strides=2, padding='same', use_bias=False, kernel_initializer=init)(x)
        return layers.LeakyReLU(0.2)(layers.BatchNormalization(momentum=bn_momentum)(x))

    z = keras.Input((Z_DIM,))
    x = layers.Dense(7 * 7 * G_CHANNELS[0], use_bias=False, kernel_initializer=init)(z)
    x = layers.LeakyReLU(0.2)(layers.BatchNormalization(momentum=0.9)(layers.Reshape((7, 7, G_CHANNELS[0]))(x)))
    x = conv_bn(conv_bn(x, G_CHANNELS[1], True, 0.9), G_CHANNELS[2], True, 0.9)
    generator = keras.Model(z, layers.Conv2DTranspose(channels, 3, padding='same', activation='tanh',
                                                      kernel_initializer=init)(x))
    image = keras.Input((28, 28, channels))
    x = layers.LeakyReLU(0.2)(layers.Conv2D(D_CHANNELS[0], 4, strides=2, padding='same',
                                            kernel_initializer=init)(image))
    x = conv_bn(conv_bn(x, D_CHANNELS[1]), D_CHANNELS[2])
    discriminator = keras.Model(image, layers.Dense(1, kernel_initializer=init)(layers.Flatten()(x)))
    bce = keras.losses.BinaryCrossentropy(from_logits=True)
    # The notebook's rates, and its average of the generator's weights after each update.
    g_optimizer = keras.optimizers.Adam(1e-3, beta_1=0.5, use_ema=True, ema_momentum=0.99)
    d_optimizer = keras.optimizers.Adam(5e-4, beta_1=0.5)

    @tf.function
    def train_step(images, noise):
        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            fake = generator(noise, training=True)
            with tf.GradientTape() as slope_tape:
                slope_tape.watch(images)
                real_logits = discriminator(images, training=True)
            fake_logits = discriminator(fake, training=True)
            d_loss = (bce(tf.fill(tf.shape(real_logits), 0.9), real_logits)
                      + bce(tf.zeros_like(fake_logits), fake_logits))
            if R1_WEIGHTS[dataset]:
                slopes = slope_tape.gradient(real_logits, images)
                d_loss += R1_WEIGHTS[dataset] / 2 * tf.reduce_mean(tf.reduce_sum(tf.square(slopes), axis=[1, 2, 3]))
            g_loss = bce(tf.ones_like(fake_logits), fake_logits)
        g_optimizer.apply_gradients(zip(g_tape.gradient(g_loss, generator.trainable_variables),
                                        generator.trainable_variables))
        d_optimizer.apply_gradients(zip(d_tape.gradient(d_loss, discriminator.trainable_variables),
                                        discriminator.trainable_variables))
        return d_loss, g_loss

    rng = np.random.default_rng(0)
    images = tf.constant(rng.uniform(-1, 1, (batch, 28, 28, channels)).astype(np.float32))
    noise = tf.constant(rng.uniform(-1, 1, (batch, Z_DIM)).astype(np.float32))
    return lambda: [t.numpy() for t in train_step(images, noise)]


def keras3_speed(dataset, steps):
    """Images per second of the Keras 3 peer."""
    return time_steps(keras3_step(dataset), steps, SHAPES[dataset][1]), 0


def train_loop_speed(dataset, steps):
    """The notebook's train as its training cell calls it, on random batches: images per second between the
    steps TrainingRun records (its bookkeeping, TensorBoard's events and a checkpoint at the end included)."""
    import tempfile
    import numpy as np
    from facegen.runs import training
    ns = notebook_namespace()
    tf = ns['tf']
    channels, batch = SHAPES[dataset]
    ns['R1_WEIGHT'] = R1_WEIGHTS[dataset]

    def batches(batch_size):
        rng = np.random.default_rng(0)
        for _ in range(steps + 5):
            yield rng.uniform(-0.5, 0.5, (batch_size, 28, 28, channels)).astype(np.float32)

    with recorded_steps(training.TrainingRun) as recorded, tempfile.TemporaryDirectory() as folder, \
            tf.Graph().as_default():
        run = training.TrainingRun(folder, 'bench', progress=None, print_every=10 ** 6, show_every=10 ** 6,
                                   checkpoint_every=10 ** 6)
        ns['train'](1, batch, Z_DIM, 5e-4, 0.5, batches, (batch * (steps + 5), 28, 28, channels),
                    'L' if channels == 1 else 'RGB', run)
    return batch / statistics.median(np.diff(recorded[5:])), 0


def peak_speed(dataset, steps):
    """GFLOP/s of a 2048 x 2048 float32 matrix product in TensorFlow on every core: what this CPU can do."""
    import numpy as np
    import tensorflow.compat.v1 as tf
    from facegen import tf_settings
    n = 2048
    with tf.Graph().as_default():
        a = tf.Variable(np.random.default_rng(0).uniform(-1, 1, (n, n)).astype(np.float32))  # not folded away
        product = tf.reduce_sum(tf.matmul(a, a))
        with tf.Session(config=tf_settings.session_config()) as sess:
            sess.run(a.initializer)
            return time_steps(lambda: sess.run(product), max(5, steps // 3), 2 * n ** 3 / 1e9), 0


def data_speed(dataset, steps):
    """`train`'s loop on CelebA-shaped data from the cache: images/s received and the share spent waiting."""
    import tempfile
    import numpy as np
    import helper
    from data_speed import write_jpegs  # bench/ is on the path: this file runs as a script
    channels, batch = SHAPES[dataset]
    with tempfile.TemporaryDirectory() as folder:
        files = write_jpegs(folder, batch * (steps + 5))
        data = helper.Dataset('celeba' if channels == 3 else 'mnist', files, seed=0)
        data.images  # noqa: B018 (the cache is built once, before training, as in the notebook)
        with notebook_step(dataset) as built:
            waiting = training = 0.0
            batches = data.get_batches(batch)
            for i in range(steps + 5):
                start = time.perf_counter()
                images = next(batches)
                fed = time.perf_counter()
                built.sess.run(built.fetches, {built.input_real: images * 2, built.learning_rate: 2e-4,
                                               built.input_z: np.random.uniform(-1, 1, (batch, Z_DIM))})
                if i >= 5:
                    waiting += fed - start
                    training += time.perf_counter() - fed
            get_batches_ips = batch * 50 / timed_batches(data, batch, 50)
    return get_batches_ips, waiting / (waiting + training)


def timed_batches(data, batch, n):
    start = time.perf_counter()
    for _, _ in zip(range(n), data.get_batches(batch)):
        pass
    return time.perf_counter() - start


def child(mode, dataset, steps):
    if mode == 'keras3':
        result = keras3_speed(dataset, steps)
    elif mode == 'data':
        result = data_speed(dataset, steps)
    elif mode == 'train_loop':
        result = train_loop_speed(dataset, steps)
    elif mode == 'peak':
        result = peak_speed(dataset, steps)
    else:
        result = graph_speed(dataset, steps, mode)
    print(json.dumps({'result': result, 'peak_rss_mb': peak_rss_mb()}))


# ---------------------------------------------------------------------------------------------- the parent

def measure(mode, dataset, steps, torch_python=None):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2')
    env['TF_USE_LEGACY_KERAS'] = '0' if mode == 'keras3' else '1'
    if mode == 'no_onednn':
        env['TF_ENABLE_ONEDNN_OPTS'] = '0'
    channels, batch = SHAPES[dataset]
    command = [sys.executable, __file__, '--child', mode, dataset, str(steps)]
    if mode.startswith('torch'):
        command = [torch_python, os.path.join(BENCH, 'torch_peer.py'), dataset, str(steps), str(channels),
                   str(R1_WEIGHTS[dataset]), str(batch)] + (['channels_last'] if mode == 'torch_cl' else [])
    return child_result(command, env, f'{mode} on {dataset}')


def spread(values):
    """'median (min-max)' of a list of numbers."""
    return f'{statistics.median(values):,.2f} ({min(values):,.2f}-{max(values):,.2f})'


def main():
    if len(sys.argv) > 1 and sys.argv[1] == '--child':
        return child(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--steps', type=int, default=30, help='timed training steps per measurement')
    parser.add_argument('--repeats', type=int, default=5, help='measurements per figure (the median is shown)')
    parser.add_argument('--torch-python', help='a Python with torch, for the PyTorch peers (torch, torch_cl)')
    parser.add_argument('--modes', nargs='+', choices=MODES,
                        help='the modes to measure (graph always is; default: all, torch with --torch-python), '
                             'for more repeats of the ones in question')
    parser.add_argument('--shapes', nargs='+', choices=tuple(SHAPES), default=tuple(SHAPES))
    args = parser.parse_args()
    if {'torch', 'torch_cl'} & set(args.modes or ()) and not args.torch_python:
        parser.error('the PyTorch peers need --torch-python')

    modes = ['graph'] + [mode for mode in args.modes or MODES if mode != 'graph' and
                         (args.torch_python or not mode.startswith('torch'))]
    peers = [mode for mode in ('keras3', 'torch', 'torch_cl', 'two_run', 'no_onednn') if mode in modes]
    shapes = {dataset: SHAPES[dataset] for dataset in args.shapes}
    ips, flops, rss, peak = {}, {}, {}, []
    for dataset in shapes:
        for _ in range(args.repeats):
            peak.append(measure('peak', dataset, args.steps)['result'][0])
            for mode in modes:  # interleaved, so a noisy moment hurts every mode alike
                found = measure(mode, dataset, args.steps, args.torch_python)
                ips.setdefault((mode, dataset), []).append(found['result'][0])
                flops[dataset] = flops.get(dataset) or found['result'][1]
                rss[(mode, dataset)] = max(rss.get((mode, dataset), 0), found['peak_rss_mb'])
    data = measure('data', 'celeba', args.steps)
    median = {key: statistics.median(values) for key, values in ips.items()}
    # The notebook's step against each peer, repeat by repeat (both measured within minutes of each other).
    ratios = {(peer, dataset): [g / p for g, p in zip(ips[('graph', dataset)], ips[(peer, dataset)])]
              for peer in peers for dataset in shapes}

    cores = len(os.sched_getaffinity(0))
    print(f'images per second, median of {args.repeats} x {args.steps} steps, {cores} cores; range in brackets')
    for dataset, (_, batch) in shapes.items():
        gflop = flops[dataset] / 1e9
        print(f'{dataset} (batch {batch}, {gflop:.3f} GFLOP an image):')
        for mode in modes:
            values = ips[(mode, dataset)]
            print(f'  {mode:11s} {statistics.median(values):7,.0f} ({min(values):,.0f}-{max(values):,.0f})'
                  + (f'  {gflop * median[(mode, dataset)]:6.1f} GFLOP/s' if mode in ('graph', 'train_loop') else ''))
    print(f'a 2048 x 2048 float32 matmul in TensorFlow: {spread(peak)} GFLOP/s; the notebook\'s step reaches '
          + ', '.join(f'{100 * flops[d] / 1e9 * median[("graph", d)] / statistics.median(peak):.0f}% of it ({d})'
                      for d in shapes))
    print("the notebook's step against each peer, per repeat (above 1: the notebook is faster):")
    for (peer, dataset), values in ratios.items():
        print(f'  vs {peer:10s} {dataset:7s} {spread(values)}')
    print(f'data path (CelebA shape, batch 32): get_batches {data["result"][0]:,.0f} images/s; '
          f'train waits for data {data["result"][1]:.1%} of its time')
    peak_rss = max(rss.get(('graph', 'celeba'), 0), data['peak_rss_mb'])
    print(f'peak memory of CelebA-shaped training, with the image cache: {peak_rss:,.0f} MB')
    summary = {f'step_vs_{peer}_{dataset}': {'median': round(statistics.median(values), 3),
                                             'min': round(min(values), 3), 'max': round(max(values), 3)}
               for (peer, dataset), values in ratios.items()}
    first = next(iter(shapes))
    summary.update({name: round(median[(top, first)] / median[(bottom, first)], 3)
                    for name, top, bottom in (('onednn_vs_default', 'graph', 'no_onednn'),
                                              ('bf16_vs_fp32', 'bf16', 'graph')) if bottom in modes and top in modes})
    print(json.dumps({**summary, 'peak_gflop_s': round(statistics.median(peak), 1),
                      'data_wait_share': round(data['result'][1], 4), 'peak_rss_mb': round(peak_rss),
                      'gflop_per_image': {d: round(f / 1e9, 4) for d, f in flops.items()},
                      'images_per_s': {f'{m}_{d}': round(v) for (m, d), v in median.items()}}))


if __name__ == '__main__':
    main()

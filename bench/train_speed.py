"""Training speed of the notebook's GAN, side by side with its peers, in one run.

Each figure is measured in a child process of its own (TensorFlow's graph and eager modes do not mix), one after
the other, and reported as the median images per second over --steps timed training steps after a warm-up:
  graph       the notebook's own graph and batch size, one sess.run per batch, as `train` runs it (oneDNN on,
              as every entry point of the project sets it)
  no_onednn   the same with oneDNN off (TF_ENABLE_ONEDNN_OPTS=0): TensorFlow's own default on CPUs without
              AVX-512 VNNI/BF16 or AMX
  two_run     the same graph run as the course's solutions ran it: one sess.run per network per batch, with
              TensorFlow's default session settings
  keras3      the same network and losses in Keras 3 with a tf.function train step (TensorFlow's DCGAN tutorial)
  bf16        the notebook's graph with its bfloat16 switch on (oneDNN's automatic bfloat16 rewrite; on a CPU
              without native bfloat16 the switch keeps float32, so this equals graph there)
  data        `train`'s loop over helper.Dataset.get_batches: images per second received, share of time waiting
for the MNIST (28x28x1, batch 64) and CelebA (28x28x3, batch 32) shapes, plus the training FLOPs per image of the
network (`gflop_per_image`, TensorFlow's profiler) and the GFLOP/s reached. The last line is one JSON object.
Name the CPU with every figure: `grep -o -E 'avx512f|avx512_bf16|amx_bf16' /proc/cpuinfo | sort -u`.

    python bench/train_speed.py [--steps 30] [--repeats 3]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
import tf_environment  # noqa: E402,F401 (the children inherit the project's TensorFlow settings)
from measure import peak_rss_mb  # noqa: E402 (bench/ is on the path: this file runs as a script)
import notebook_loader  # noqa: E402

SHAPES = {'mnist': (1, 64), 'celeba': (3, 32)}  # channels, the notebook's batch size
Z_DIM = 100
G_CHANNELS, D_CHANNELS = (128, 64, 32), (32, 64, 128)  # the notebook's layer widths, for the Keras 3 peer
R1_WEIGHTS = dict(zip(SHAPES, notebook_loader.training_cell_setting('R1_WEIGHT')))  # as each training cell sets it


# ---------------------------------------------------------------------------------------------- child processes

def notebook_namespace():
    """The notebook's function cells, executed into one namespace (graph mode)."""
    import notebook_loader
    return notebook_loader.notebook_functions()


def graph_speed(dataset, steps, mode):
    """Images per second of the notebook's graph: 'graph' or 'no_onednn' (one run), 'two_run', or 'bf16'."""
    import numpy as np
    import session_settings
    ns = notebook_namespace()
    tf = ns['tf']
    channels, batch = SHAPES[dataset]
    # The course ran with TensorFlow's defaults; train runs with the notebook's settings.
    config = tf.ConfigProto() if mode == 'two_run' else session_settings.session_config(bfloat16=mode == 'bf16')
    with tf.Graph().as_default():
        input_real, input_z, lr = ns['model_inputs'](28, 28, channels, Z_DIM)
        ns['R1_WEIGHT'] = R1_WEIGHTS[dataset]  # as the dataset's training cell sets it
        d_loss, g_loss = ns['model_loss'](input_real, input_z, channels)
        d_opt, g_opt = ns['model_opt'](d_loss, g_loss, lr, 0.5)
        rng = np.random.default_rng(0)
        feed = {input_real: rng.uniform(-1, 1, (batch, 28, 28, channels)).astype(np.float32),
                input_z: rng.uniform(-1, 1, (batch, Z_DIM)).astype(np.float32), lr: 2e-4}
        with tf.Session(config=config) as sess:
            sess.run(tf.global_variables_initializer())
            flops = training_flops(tf, sess, [d_opt, g_opt], feed)

            def step():
                if mode == 'two_run':
                    sess.run([d_opt, d_loss], feed)
                    sess.run([g_opt, g_loss], feed)
                else:
                    sess.run([d_opt, g_opt, d_loss, g_loss], feed)
            return time_steps(step, steps, batch), flops / batch


def training_flops(tf, sess, fetches, feed):
    """Floating-point operations of one training step (both networks, forward and backward), from TF's profiler
    fed the shapes of a traced step."""
    run_meta = tf.RunMetadata()
    sess.run(fetches, feed, options=tf.RunOptions(trace_level=tf.RunOptions.FULL_TRACE), run_metadata=run_meta)
    options = tf.profiler.ProfileOptionBuilder.float_operation()
    options['output'] = 'none'
    return tf.profiler.profile(sess.graph, run_meta=run_meta, cmd='op', options=options).total_float_ops


def time_steps(step, steps, batch, warmup=5):
    for _ in range(warmup):
        step()
    durations = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        durations.append(time.perf_counter() - start)
    return batch / statistics.median(durations)


def keras3_speed(dataset, steps):
    """The same network and losses in Keras 3, trained with a tf.function step as in TensorFlow's DCGAN tutorial."""
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
    g_optimizer, d_optimizer = keras.optimizers.Adam(2e-4, beta_1=0.5), keras.optimizers.Adam(2e-4, beta_1=0.5)

    @tf.function
    def train_step(images, noise):
        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            fake = generator(noise, training=True)
            with tf.GradientTape() as slope_tape:
                slope_tape.watch(images)
                real_logits = discriminator(images, training=True)
            fake_logits = discriminator(fake, training=True)
            d_loss = bce(tf.fill(tf.shape(real_logits), 0.9), real_logits) + bce(tf.zeros_like(fake_logits), fake_logits)
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
    return time_steps(lambda: [t.numpy() for t in train_step(images, noise)], steps, batch), 0


def data_speed(dataset, steps):
    """`train`'s loop on CelebA-shaped data from the cache: images/s received and the share spent waiting."""
    import tempfile
    import numpy as np
    import helper
    import session_settings
    from data_speed import write_jpegs  # bench/ is on the path: this file runs as a script
    ns = notebook_namespace()
    tf = ns['tf']
    channels, batch = SHAPES[dataset]
    with tempfile.TemporaryDirectory() as folder:
        files = write_jpegs(folder, batch * (steps + 5))
        data = helper.Dataset('celeba' if channels == 3 else 'mnist', files, seed=0)
        data.images  # noqa: B018 (the cache is built once, before training, as in the notebook)
        with tf.Graph().as_default():
            input_real, input_z, lr = ns['model_inputs'](28, 28, channels, Z_DIM)
            ns['R1_WEIGHT'] = R1_WEIGHTS[dataset]  # as the dataset's training cell sets it
            d_loss, g_loss = ns['model_loss'](input_real, input_z, channels)
            d_opt, g_opt = ns['model_opt'](d_loss, g_loss, lr, 0.5)
            with tf.Session(config=session_settings.session_config()) as sess:
                sess.run(tf.global_variables_initializer())
                waiting = training = 0.0
                batches = data.get_batches(batch)
                for i in range(steps + 5):
                    start = time.perf_counter()
                    images = next(batches)
                    fed = time.perf_counter()
                    sess.run([d_opt, g_opt], {input_real: images * 2, lr: 2e-4,
                                              input_z: np.random.uniform(-1, 1, (batch, Z_DIM))})
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
    else:
        result = graph_speed(dataset, steps, mode)
    print(json.dumps({'result': result, 'peak_rss_mb': peak_rss_mb()}))


# ---------------------------------------------------------------------------------------------- the parent

def measure(mode, dataset, steps):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2')
    env['TF_USE_LEGACY_KERAS'] = '0' if mode == 'keras3' else '1'
    if mode == 'no_onednn':
        env['TF_ENABLE_ONEDNN_OPTS'] = '0'
    out = subprocess.run([sys.executable, __file__, '--child', mode, dataset, str(steps)], env=env,
                         capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(f'{mode} on {dataset} failed:\n{out.stderr[-3000:]}')
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    if len(sys.argv) > 1 and sys.argv[1] == '--child':
        return child(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--steps', type=int, default=30, help='timed training steps per measurement')
    parser.add_argument('--repeats', type=int, default=3, help='measurements per figure (the median is shown)')
    args = parser.parse_args()

    modes = ('graph', 'no_onednn', 'two_run', 'keras3', 'bf16')
    ips, flops, rss = {}, {}, {}
    for dataset in SHAPES:
        for _ in range(args.repeats):
            for mode in modes:  # interleaved, so a noisy moment hurts every mode alike
                found = measure(mode, dataset, args.steps)
                ips.setdefault((mode, dataset), []).append(found['result'][0])
                flops[dataset] = flops.get(dataset) or found['result'][1]
                rss[(mode, dataset)] = max(rss.get((mode, dataset), 0), found['peak_rss_mb'])
    data = measure('data', 'celeba', args.steps)
    median = {key: statistics.median(values) for key, values in ips.items()}

    print(f'images per second, median of {args.repeats} x {args.steps} steps, {os.cpu_count()} cores')
    print(f'{"":10s}' + ''.join(f'{mode:>12s}' for mode in modes) + '  GFLOP/image  GFLOP/s (graph)')
    for dataset, (channels, batch) in SHAPES.items():
        gflop = flops[dataset] / 1e9
        print(f'{dataset + " b" + str(batch):10s}' + ''.join(f'{median[(m, dataset)]:12.0f}' for m in modes)
              + f'  {gflop:11.3f}  {gflop * median[("graph", dataset)]:14.1f}')
    ratios = {
        'step_vs_keras3': median[('graph', 'mnist')] / median[('keras3', 'mnist')],
        'step_vs_two_run': median[('graph', 'mnist')] / median[('two_run', 'mnist')],
        'bf16_vs_fp32': median[('bf16', 'mnist')] / median[('graph', 'mnist')],
        'onednn_vs_default': median[('graph', 'mnist')] / median[('no_onednn', 'mnist')],
    }
    for name, value in ratios.items():
        print(f'{name} (MNIST shape): {value:.2f}x')
    print(f'data path (CelebA shape, batch 32): get_batches {data["result"][0]:,.0f} images/s; '
          f'train waits for data {data["result"][1]:.1%} of its time')
    peak = max(rss[('graph', 'celeba')], data['peak_rss_mb'])
    print(f'peak memory of CelebA-shaped training, with the image cache: {peak:,.0f} MB')
    print(json.dumps({**{k: round(v, 3) for k, v in ratios.items()},
                      'data_wait_share': round(data['result'][1], 4), 'peak_rss_mb': round(peak),
                      'gflop_per_image': {d: round(f / 1e9, 4) for d, f in flops.items()},
                      'images_per_s': {f'{m}_{d}': round(v) for (m, d), v in median.items()}}))


if __name__ == '__main__':
    main()

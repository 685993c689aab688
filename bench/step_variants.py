"""The notebook's training step with one thing changed, against itself unchanged, interleaved: what each part of the
step and each setting costs.

Each variant runs in a child process of its own, built as bench/train_speed.py builds the notebook's step (`graph`),
with one change made before the graph is built:
  no_average       tf.train.ExponentialMovingAverage does nothing (the generator's weight average)
  no_update_ops    model_opt finds no UPDATE_OPS: batch normalization's moving averages are neither run nor waited for
  no_r1            R1_WEIGHT = 0 (on the MNIST shape, where the notebook's cell sets the penalty)
  unfused_d_bn     the discriminator's batch normalization unfused (tf.layers' fused=False, as Keras 3 computes it)
  inter_op_1, inter_op_4, intra_op_1   the session's thread pools (the notebook: TensorFlow's, one thread a core)
  xla, xla_fusible XLA's CPU auto-clustering of the whole graph, or of its element-wise ops only
  caller_thread, system_allocator, no_primitive_memuse   oneDNN's environment switches in TensorFlow
                   (TF_ONEDNN_THREADPOOL_USE_CALLER_THREAD, TF_ONEDNN_USE_SYSTEM_ALLOCATOR,
                   TF_MKL_OPTIMIZE_PRIMITIVE_MEMUSE=false)
  feed_only        not a step: a sess.run of the same feed_dict and nothing else (what feeding a batch costs)
Each repeat runs the unchanged step and every variant once, in turn; the ratio to the unchanged step is taken per
repeat (above 1: the variant is faster).

    python bench/step_variants.py [--dataset mnist] [--steps 20] [--repeats 5] [variant ...]
Name the CPU with every figure: `grep -o -E 'avx512f|avx512_bf16|amx_bf16' /proc/cpuinfo | sort -u`.
"""
import argparse
import json
import os
import statistics
import sys

BENCH = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(BENCH))
from measure import child_result, time_steps  # noqa: E402 (bench/ is on the path: this file runs as a script)

ENVIRONMENT = {  # variants that are an environment variable, and theirs
    'xla': {'TF_XLA_FLAGS': '--tf_xla_cpu_global_jit'},
    'xla_fusible': {'TF_XLA_FLAGS': '--tf_xla_cpu_global_jit --tf_xla_ops_to_cluster=FUSIBLE'},
    'caller_thread': {'TF_ONEDNN_THREADPOOL_USE_CALLER_THREAD': 'true'},
    'system_allocator': {'TF_ONEDNN_USE_SYSTEM_ALLOCATOR': 'true'},
    'no_primitive_memuse': {'TF_MKL_OPTIMIZE_PRIMITIVE_MEMUSE': 'false'},
}
SESSION = {'inter_op_1': ('inter_op_parallelism_threads', 1), 'inter_op_4': ('inter_op_parallelism_threads', 4),
           'intra_op_1': ('intra_op_parallelism_threads', 1)}
GRAPH = ('no_average', 'no_update_ops', 'no_r1', 'unfused_d_bn')
VARIANTS = GRAPH + tuple(SESSION) + ('xla', 'xla_fusible', 'caller_thread', 'system_allocator',
                                     'no_primitive_memuse', 'feed_only')


# ---------------------------------------------------------------------------------------------- child processes

def change_session(variant):
    """Let tf_settings.session_config make the variant's session."""
    from facegen import tf_settings
    from tensorflow.core.protobuf.config_pb2 import OptimizerOptions
    made = tf_settings.session_config

    def session_config(bfloat16=False):
        config = made(bfloat16)
        if variant in SESSION:
            setattr(config, *SESSION[variant])
        if variant.startswith('xla'):
            config.graph_options.optimizer_options.global_jit_level = OptimizerOptions.ON_1
        return config
    tf_settings.session_config = session_config


def change_graph(variant, dataset):
    """Make the variant's change to what the notebook's functions build (before they build it)."""
    import tensorflow.compat.v1 as tf
    import train_speed
    if variant == 'no_average':
        tf.train.ExponentialMovingAverage.apply = lambda self, var_list=None: tf.no_op()
    elif variant == 'no_update_ops':
        collection = tf.get_collection
        tf.get_collection = lambda key, scope=None: [] if key == tf.GraphKeys.UPDATE_OPS else collection(key, scope)
    elif variant == 'no_r1':
        train_speed.R1_WEIGHTS[dataset] = 0
    elif variant == 'unfused_d_bn':
        batch_normalization = tf.layers.batch_normalization

        def unfused_in_discriminator(*args, **kwargs):
            if tf.get_variable_scope().name.startswith('discriminator'):
                kwargs['fused'] = False
            return batch_normalization(*args, **kwargs)
        tf.layers.batch_normalization = unfused_in_discriminator


def check_changed(variant, graph):
    """Raise unless the graph shows the variant's change (a variant that silently changes nothing measures noise)."""
    import tensorflow.compat.v1 as tf
    ops = graph.get_operations()
    changed = {
        'no_average': lambda: not any(op.name.startswith('ExponentialMovingAverage') for op in ops),
        'no_update_ops': lambda: not tf.get_collection(tf.GraphKeys.UPDATE_OPS) and
        graph.get_collection(tf.GraphKeys.UPDATE_OPS),
        'no_r1': lambda: not any(op.type == 'Square' for op in ops),  # R1 squares the slopes; nothing else does
        'unfused_d_bn': lambda: not any(op.type.startswith('FusedBatchNorm') and op.name.startswith('discriminator')
                                        for op in ops),
    }.get(variant, lambda: True)
    if not changed():
        raise RuntimeError(f'the variant {variant} did not change the graph: has the notebook changed?')


def feed_speed(dataset, steps):
    """Batches per second that a sess.run takes in and hands back, feeding what train feeds and computing nothing."""
    import numpy as np
    import tensorflow.compat.v1 as tf
    from facegen import tf_settings
    import train_speed
    channels, batch = train_speed.SHAPES[dataset]
    with tf.Graph().as_default():
        images = tf.placeholder(tf.float32, (None, 28, 28, channels))
        z = tf.placeholder(tf.float32, (None, train_speed.Z_DIM))
        rate = tf.placeholder(tf.float32, ())
        with tf.Session(config=tf_settings.session_config()) as sess:
            rng = np.random.default_rng(0)
            feed = {images: rng.uniform(-1, 1, (batch, 28, 28, channels)).astype(np.float32),
                    z: rng.uniform(-1, 1, (batch, train_speed.Z_DIM)), rate: 2e-4}  # float64 z, as train feeds it
            fetches = [images[0, 0, 0], z[0, 0], rate]
            return time_steps(lambda: sess.run(fetches, feed), steps, batch)


def child(variant, dataset, steps):
    import train_speed
    if variant == 'feed_only':
        return feed_speed(dataset, steps * 10)
    change_session(variant)
    change_graph(variant, dataset)
    with train_speed.notebook_step(dataset) as built:
        check_changed(variant, built.sess.graph)
        return time_steps(built.step, steps, train_speed.SHAPES[dataset][1])


# ---------------------------------------------------------------------------------------------- the parent

def measure(variant, dataset, steps):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2', TF_USE_LEGACY_KERAS='1', **ENVIRONMENT.get(variant, {}))
    return child_result([sys.executable, __file__, '--child', variant, dataset, str(steps)], env,
                        f'{variant} on {dataset}')


def main():
    if len(sys.argv) > 1 and sys.argv[1] == '--child':
        return print(json.dumps(child(sys.argv[2], sys.argv[3], int(sys.argv[4]))))
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--dataset', choices=('mnist', 'celeba'), default='mnist', help="the training cell's shape")
    parser.add_argument('--steps', type=int, default=20, help='timed steps per measurement')
    parser.add_argument('--repeats', type=int, default=5, help='measurements of each variant')
    parser.add_argument('variants', nargs='*', metavar='variant', help=f'any of {", ".join(VARIANTS)}; default: all')
    args = parser.parse_args()
    unknown = set(args.variants) - set(VARIANTS)
    if unknown:
        parser.error(f'no variant {", ".join(sorted(unknown))}: the variants are {", ".join(VARIANTS)}')
    variants = ['unchanged'] + (args.variants or list(VARIANTS))
    ips = {variant: [] for variant in variants}
    for _ in range(args.repeats):
        for variant in variants:  # interleaved, so a noisy moment hurts every variant alike
            ips[variant].append(measure(variant, args.dataset, args.steps))
    print(f'{args.dataset} shape, images per second, median (range) of {args.repeats} x {args.steps} steps, '
          f'{len(os.sched_getaffinity(0))} cores; the variant over the unchanged step, per repeat')
    for variant, values in ips.items():
        ratios = [v / u for v, u in zip(values, ips['unchanged'])]
        print(f'  {variant:20s} {statistics.median(values):9,.0f} ({min(values):,.0f}-{max(values):,.0f})'
              f'   {statistics.median(ratios):6.3f} ({min(ratios):.3f}-{max(ratios):.3f})')


if __name__ == '__main__':
    main()

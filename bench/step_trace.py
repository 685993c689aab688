"""Where a training step's time goes: the notebook's step and Keras 3's, side by side, per kind of op.

Each step is built as bench/train_speed.py builds it (`graph`: the notebook's functions, one sess.run per batch;
`keras3`: the same network, losses and weight average in Keras 3 with a tf.function step), warmed up, then traced
by TensorFlow's profiler (tf.profiler.experimental) for --steps steps, in a child process of its own. The
profiler records each op's run on the executor's threads; its events are summed per kind of op, per step. Two
ops can run at once on two cores, so the ops' times add up to more than the step's wall time, which is measured
untraced (median of the same number of steps) and shown beside them.

    python bench/step_trace.py [--steps 20] [--dataset celeba] [--top 12] [--nodes REGEX]
Name the CPU with every figure: `grep -o -E 'avx512f|avx512_bf16|amx_bf16' /proc/cpuinfo | sort -u`; oneDNN can be
capped as on a smaller CPU with ONEDNN_MAX_CPU_ISA=AVX2 (label it capped).
"""
import argparse
import collections
import contextlib
import glob
import json
import os
import re
import sys
import tempfile
import types

BENCH = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(BENCH))
from measure import child_result, time_steps  # noqa: E402 (bench/ is on the path: this file runs as a script)

MODES = ('graph', 'keras3')
# A profiler event of an op is named 'node/name:OpType'; oneDNN's kernels carry a prefix, resource variables another.
OP_EVENT = re.compile(r'^(?P<node>[^ :]+):(?P<type>[A-Za-z0-9_]+)$')
TYPE_PREFIXES = re.compile(r'^(_MklNative|_Mkl|Resource)')
# Ops that only call a function whose own ops are traced too: counting them would count their ops twice.
CALLS = {'PartitionedCall', 'StatefulPartitionedCall'}
BATCH_NORM = 'batch normalization (every op in its scopes)'
OPTIMIZERS = 'Adam and the weight average'
# The optimizers' scopes: tf.train's (Adam, Adam_1, ExponentialMovingAverage) and Keras 3's (adam, adam_1), whose
# updates are element-wise ops where tf.train has one ApplyAdam per variable.
OPTIMIZER_SCOPE = re.compile(r'^(Adam(_\d+)?|ExponentialMovingAverage|adam(_\d+)?)/')
OTHER = 'other element-wise ops and reductions'
KINDS = (  # (kind, op types); the first kind that holds an op's type is its kind
    ('convolutions, forward', {'Conv2D', 'FusedConv2D', 'DepthwiseConv2dNative'}),
    ('input gradients (transposed convolutions, slopes)', {'Conv2DBackpropInput'}),
    ('weight gradients', {'Conv2DBackpropFilter', 'Conv2DBackpropFilterWithBias'}),
    ('matrix products', {'MatMul', 'FusedMatMul', 'BatchMatMulV2'}),
    ('bias additions and their gradients', {'BiasAdd', 'BiasAddGrad'}),
    ('leaky ReLU and its gradient', {'LeakyRelu', 'LeakyReluGrad'}),
    (OPTIMIZERS, {'ApplyAdam'}),
    ('variable reads, copies, shapes', {'ReadVariableOp', 'Identity', 'Shape', 'Reshape', 'Const', 'Fill',
                                        'ZerosLike', 'OnesLike', 'BroadcastTo', 'StridedSlice', 'Pack',
                                        'ShapeN', 'ConcatV2', 'Squeeze', 'ExpandDims', 'NoOp', 'Transpose',
                                        'ToTf', 'MklToTf'}),
)


def kind_of(node, op_type):
    """The row of the breakdown an op's time goes to. Batch normalization and the optimizers by their scopes,
    because Keras 3 computes them from element-wise ops where tf.layers and tf.train have one op for each."""
    if op_type not in {t for _, types in KINDS[:4] for t in types} and re.search(r'batch_norm', node):
        return BATCH_NORM
    if OPTIMIZER_SCOPE.match(node):
        return OPTIMIZERS
    return next((kind for kind, types in KINDS if op_type in types), OTHER)


def op_times(xspace_bytes):
    """{(node, op type): microseconds} of every op event in a profiler XSpace, oneDNN's prefixes taken off."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2
    space = xplane_pb2.XSpace()
    space.ParseFromString(xspace_bytes)
    times = collections.Counter()
    for plane in space.planes:
        for line in plane.lines:
            for event in line.events:
                match = OP_EVENT.match(plane.event_metadata[event.metadata_id].name)
                if match and match['type'] not in CALLS:
                    times[(match['node'], TYPE_PREFIXES.sub('', match['type']))] += event.duration_ps / 1e6
    return times


# ---------------------------------------------------------------------------------------------- child processes

def traced(mode, dataset, steps):
    """{'wall_ms': untraced step, 'ops': {node:type: ms per step}} of one mode."""
    import tensorflow as tf2
    import train_speed
    batch = train_speed.SHAPES[dataset][1]
    built = train_speed.notebook_step(dataset) if mode == 'graph' else \
        contextlib.nullcontext(types.SimpleNamespace(step=train_speed.keras3_step(dataset)))
    with built as made:
        step = made.step
        wall_ms = 1000 * batch / time_steps(step, steps, batch, warmup=10)
        with tempfile.TemporaryDirectory() as folder:
            tf2.profiler.experimental.start(folder)
            for _ in range(steps):
                step()
            tf2.profiler.experimental.stop()
            with open(glob.glob(os.path.join(folder, '**', '*.xplane.pb'), recursive=True)[0], 'rb') as f:
                times = op_times(f.read())
    return {'wall_ms': wall_ms, 'ops': {f'{node}:{op_type}': us / 1000 / steps
                                        for (node, op_type), us in times.items()}}


# ---------------------------------------------------------------------------------------------- the parent

def measure(mode, dataset, steps):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2', TF_USE_LEGACY_KERAS='0' if mode == 'keras3' else '1')
    return child_result([sys.executable, __file__, '--child', mode, dataset, str(steps)], env, f'{mode} on {dataset}')


def breakdown(ops):
    """{kind: ms per step} and {op type: ms per step} of one trace."""
    kinds, types = collections.Counter(), collections.Counter()
    for name, ms in ops.items():
        node, op_type = name.rsplit(':', 1)
        kinds[kind_of(node, op_type)] += ms
        types[op_type] += ms
    return kinds, types


def table(title, rows, results):
    """Rows of ms per step and share of the ops' time, one pair of columns per mode."""
    totals = {mode: sum(result.values()) for mode, result in results.items()}
    print(f'| {title} | ' + ' | '.join(f'{mode}: ms a step | share' for mode in results) + ' |')
    print('|---|' + '---|---|' * len(results))
    for row in rows:
        print(f'| {row} | ' + ' | '.join(f'{results[m][row]:.2f} | {results[m][row] / (totals[m] or 1):.0%}'
                                         for m in results) + ' |')
    print('| all ops | ' + ' | '.join(f'{totals[m]:.2f} | 100%' for m in results) + ' |')


def main():
    if len(sys.argv) > 1 and sys.argv[1] == '--child':
        return print(json.dumps(traced(sys.argv[2], sys.argv[3], int(sys.argv[4]))))
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--steps', type=int, default=20, help='steps traced (and timed untraced) per mode')
    parser.add_argument('--dataset', choices=('mnist', 'celeba'), default='celeba', help="the training cell's shape")
    parser.add_argument('--top', type=int, default=12, help='op types listed one by one')
    parser.add_argument('--nodes', type=re.compile, help="only the ops whose node's name this regular expression "
                        "finds, e.g. R1's second backward pass on the MNIST shape: "
                        "'^gradients_1/gradients/|^gradient_tape/gradient_tape/'")
    args = parser.parse_args()
    found = {mode: measure(mode, args.dataset, args.steps) for mode in MODES}
    for mode in MODES if args.nodes else ():
        found[mode]['ops'] = {name: ms for name, ms in found[mode]['ops'].items() if args.nodes.search(name)}
    kinds, types = zip(*(breakdown(found[mode]['ops']) for mode in MODES))
    kinds, types = dict(zip(MODES, kinds)), dict(zip(MODES, types))
    print(f'{args.dataset} shape, {args.steps} traced steps per mode, {len(os.sched_getaffinity(0))} cores; '
          + ', '.join(f'{mode}: {found[mode]["wall_ms"]:.2f} ms a step untraced' for mode in MODES))
    order = [kind for kind, _ in KINDS[:4]] + [BATCH_NORM] + [kind for kind, _ in KINDS[4:]] + [OTHER]
    table('kind of op', order, kinds)
    print()
    biggest = sorted(set().union(*types.values()), key=lambda t: -max(types[m][t] for m in MODES))[:args.top]
    table('op type', biggest, types)


if __name__ == '__main__':
    main()

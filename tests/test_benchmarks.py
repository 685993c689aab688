"""bench/step_trace.py: the profiler's events become the breakdown's rows, and a real trace of the notebook's step
has its time in convolutions, not in rows the tool failed to name."""
import os
import sys

import pytest
from tensorflow.tsl.profiler.protobuf import xplane_pb2

BENCH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'bench')
sys.path.insert(0, BENCH)
import step_trace  # noqa: E402 (bench/ is on the path, as when its scripts run)


def xspace(events):
    """An XSpace of one plane and line holding (name, microseconds) events, as the profiler writes them."""
    space = xplane_pb2.XSpace()
    plane = space.planes.add(name='/host:CPU')
    line = plane.lines.add(name='tf_Compute/1')
    ids = {}
    for name, us in events:
        ids.setdefault(name, len(ids) + 1)
        plane.event_metadata[ids[name]].name = name
        line.events.add(metadata_id=ids[name], duration_ps=int(us * 1e6))
    return space.SerializeToString()


def test_op_events_are_summed_by_node_and_type_without_onednn_prefixes_or_calls():
    times = step_trace.op_times(xspace([
        ('d/conv2d/Conv2D:_MklNativeConv2D', 100), ('d/conv2d/Conv2D:_MklNativeConv2D', 50),
        ('Adam/update_d/kernel/ResourceApplyAdam:ResourceApplyAdam', 7),
        ('StatefulPartitionedCall:StatefulPartitionedCall', 1000),  # its ops are events of their own
        ('EagerLocalExecute: __inference_train_step_1', 2000), ('ThreadpoolListener::Record', 3)]))
    assert times == {('d/conv2d/Conv2D', 'Conv2D'): 150, ('Adam/update_d/kernel/ResourceApplyAdam', 'ApplyAdam'): 7}


@pytest.mark.parametrize('node, op_type, kind', [
    ('gradients/discriminator/conv2d_1/Conv2D_grad/Conv2DBackpropInput', 'Conv2DBackpropInput',
     'input gradients (transposed convolutions, slopes)'),
    ('generator/conv2d_transpose/conv2d_transpose', 'Conv2DBackpropInput',
     'input gradients (transposed convolutions, slopes)'),
    # tf.layers fuses batch normalization into one op; Keras 3 computes it from element-wise ops in its scope
    ('gradients/discriminator/batch_normalization/FusedBatchNormV3_grad/FusedBatchNormGradV3',
     'FusedBatchNormGradV3', step_trace.BATCH_NORM),
    ('functional_1/batch_normalization/moments/SquaredDifference', 'SquaredDifference', step_trace.BATCH_NORM),
    ('Adam/update_discriminator/conv2d/kernel/ApplyAdam', 'ApplyAdam', 'Adam'),
    ('ExponentialMovingAverage/AssignMovingAvg/sub_1', 'Sub', step_trace.OTHER),
])
def test_each_op_lands_in_the_row_of_its_kind(node, op_type, kind):
    assert step_trace.kind_of(node, op_type) == kind


def test_a_traced_notebook_step_spends_its_time_in_named_convolutions():
    found = step_trace.measure('graph', 'celeba', 2)
    kinds, _ = step_trace.breakdown(found['ops'])
    total = sum(kinds.values())
    convolutions = sum(kinds[kind] for kind, _ in step_trace.KINDS[:3])
    assert found['wall_ms'] > 0 and convolutions > total / 2, kinds
    assert kinds[step_trace.OTHER] < total / 5, kinds

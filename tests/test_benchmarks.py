"""bench/step_trace.py: the profiler's events become the breakdown's rows, and a real trace of the notebook's step
has its time in convolutions, not in rows the tool failed to name. bench/step_variants.py: each variant changes
the graph it claims to, and says so when it does not. bench/face_score_check.py: each variant changes the notebook."""
import os
import sys

import nbformat
import pytest
import tensorflow.compat.v1 as tf
from tensorflow.tsl.profiler.protobuf import xplane_pb2

BENCH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'bench')
sys.path.insert(0, BENCH)
import step_trace  # noqa: E402 (bench/ is on the path, as when its scripts run)
import step_variants  # noqa: E402
from facegen.notebooks import SOLUTION  # noqa: E402


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
    ('Adam/update_discriminator/conv2d/kernel/ApplyAdam', 'ApplyAdam', step_trace.OPTIMIZERS),
    ('ExponentialMovingAverage/AssignMovingAvg/sub_1', 'Sub', step_trace.OPTIMIZERS),
    ('adam_1/Mul_45', 'Mul', step_trace.OPTIMIZERS),  # Keras 3's Adam
    ('logistic_loss/mul', 'Mul', step_trace.OTHER),
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


@pytest.mark.parametrize('variant', step_variants.GRAPH)
def test_the_unchanged_graph_fails_each_variants_check(nb, variant):
    with tf.Graph().as_default() as graph:
        input_real, input_z, lr = nb['model_inputs'](28, 28, 1, 100)
        nb['model_opt'](*nb['model_loss'](input_real, input_z, 1), lr, 0.5)  # MNIST's cell: R1_WEIGHT 1
        with pytest.raises(RuntimeError, match=f'the variant {variant} did not change the graph'):
            step_variants.check_changed(variant, graph)


@pytest.mark.parametrize('variant', step_variants.GRAPH)
def test_each_graph_variant_changes_the_step_it_times(variant):
    assert step_variants.measure(variant, 'mnist', 2) > 0  # the child checks the change before timing


def test_every_face_score_variant_changes_the_notebook_and_an_unknown_change_is_refused(monkeypatch):
    import face_score_check
    sources = [cell.source for cell in nbformat.read(SOLUTION, as_version=4).cells]
    for variant, change in face_score_check.VARIANTS.items():
        assert change is None or any(change[0] in source for source in sources), variant
    monkeypatch.setitem(face_score_check.VARIANTS, 'nothing', ('no such text', 'x'))
    with pytest.raises(ValueError, match="nothing: the notebook has no 'no such text'; the variant changes nothing"):
        face_score_check.train_variant('nothing', [], 1, 0, '/nonexistent')

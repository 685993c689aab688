"""Which TensorFlow operation types a hand-in's graph may hold when the judge runs it: an allow-list, in one place.

A graph is a program (TensorFlow's SECURITY.md): of TensorFlow's ~1,400 operation types many read or write files,
open connections, start processes, end the process or block for ever. The judge (judge.py) adds a learner's
graph to the check's and runs it, so it takes only the types below: the maths, layers, variables, initializers and
optimizers that the solution, the exercise's styles and the 2017 course's answers build, and their gradients.
Any other type in what a learner's function made fails that function's check with a message naming it
(Refused). The one exception is DROPPED: the save and restore operations a `tf.train.Saver` adds (the notebook's
TrainingRun keeps checkpoints) and tf.summary's; the judge leaves them and all that depends on them out of the
graph, unrun.
tests/test_review_walls.py builds each style and walks TensorFlow's whole registry against this list.
"""

# Graph plumbing: constants, inputs, shapes, indexing, no-ops; tf.cond's Switch and Merge (no loop without
# NextIteration, which is not here).
PLUMBING = frozenset({
    'Const', 'Identity', 'IdentityN', 'NoOp', 'Placeholder', 'PlaceholderWithDefault', 'StopGradient',
    'Shape', 'ShapeN', 'Size', 'Rank', 'Reshape', 'Squeeze', 'ExpandDims', 'Pack', 'Unpack', 'ConcatV2',
    'ConcatOffset', 'Split', 'SplitV', 'Slice', 'StridedSlice', 'StridedSliceGrad', 'Tile', 'Transpose', 'Fill',
    'Range', 'GatherV2', 'DynamicStitch', 'BroadcastTo', 'BroadcastArgs', 'BroadcastGradientArgs', 'Pad', 'PadV2',
    'MirrorPad', 'ZerosLike', 'OnesLike', 'Cast', 'Switch', 'Merge', 'RefSwitch', 'RefIdentity', 'Where',
    'CheckNumerics', 'PreventGradient',
})
# Element-wise maths, comparisons and reductions
MATHS = frozenset({
    'AddN', 'AddV2', 'Add', 'Sub', 'Mul', 'MulNoNan', 'RealDiv', 'Div', 'DivNoNan', 'FloorDiv', 'FloorMod',
    'TruncateDiv', 'Neg', 'Abs', 'Sign', 'Square', 'SquaredDifference', 'Sqrt', 'SqrtGrad', 'Rsqrt', 'RsqrtGrad',
    'Reciprocal', 'ReciprocalGrad', 'Inv', 'InvGrad', 'Exp', 'Expm1', 'Log', 'Log1p', 'Pow', 'Maximum', 'Minimum',
    'Select', 'SelectV2', 'Greater', 'GreaterEqual', 'Less', 'LessEqual', 'Equal', 'NotEqual', 'LogicalAnd',
    'LogicalOr', 'LogicalNot', 'Sum', 'Mean', 'Prod', 'Max', 'Min', 'ArgMax', 'ArgMin', 'All', 'Any', 'Floor',
    'Ceil', 'Round', 'Rint', 'ClipByValue', 'Erf', 'Cumsum', 'IsFinite', 'IsNan', 'L2Loss',
})
# Layers and activations, with their gradients
NETWORKS = frozenset({
    'MatMul', 'BatchMatMulV2', 'BiasAdd', 'BiasAddGrad', 'BiasAddV1', 'Conv2D', 'Conv2DBackpropFilter',
    'Conv2DBackpropInput', 'MaxPool', 'MaxPoolGrad', 'AvgPool', 'AvgPoolGrad', 'Relu', 'ReluGrad', 'Relu6',
    'Relu6Grad', 'LeakyRelu', 'LeakyReluGrad', 'Elu', 'EluGrad', 'Selu', 'SeluGrad', 'Sigmoid', 'SigmoidGrad',
    'Tanh', 'TanhGrad', 'Softplus', 'SoftplusGrad', 'Softmax', 'LogSoftmax', 'FusedBatchNorm', 'FusedBatchNormV2',
    'FusedBatchNormV3', 'FusedBatchNormGrad', 'FusedBatchNormGradV2', 'FusedBatchNormGradV3',
    'ResizeNearestNeighbor', 'ResizeNearestNeighborGrad', 'ResizeBilinear', 'ResizeBilinearGrad',
})
# Random numbers for initializers, dropout and noise
RANDOM = frozenset({'RandomStandardNormal', 'RandomUniform', 'RandomUniformInt', 'TruncatedNormal'})
# Variables (TF1's reference variables) and the optimizers' updates
VARIABLES = frozenset({
    'VariableV2', 'Assign', 'AssignAdd', 'AssignSub', 'IsVariableInitialized', 'ApplyAdam', 'ApplyGradientDescent',
    'ApplyMomentum', 'ApplyRMSProp', 'ApplyAdagrad',
})
ALLOWED = PLUMBING | MATHS | NETWORKS | RANDOM | VARIABLES
# What a tf.train.Saver and tf.summary add (real answers log histograms inside their networks): left out of the
# judge's graph with all that depends on it, never run.
SUMMARIES = frozenset({'HistogramSummary', 'ScalarSummary', 'ImageSummary', 'MergeSummary', 'TensorSummaryV2'})
DROPPED = frozenset({'SaveV2', 'RestoreV2', 'MergeV2Checkpoints', 'ShardedFilename', 'StringJoin'}) | SUMMARIES


class Refused(AssertionError):
    """A learner's function made operations of types the judge does not run."""


def refused(types):
    """The sorted types among `types` that are neither allowed nor dropped."""
    return sorted(set(types) - ALLOWED - DROPPED)

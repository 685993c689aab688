"""The settings of train's TensorFlow session, and what the CPU can do that they depend on."""
import os
import warnings

import tf_environment  # noqa: F401 (TensorFlow's settings, before TensorFlow is imported)
import tensorflow.compat.v1 as tf
from tensorflow.core.protobuf.rewriter_config_pb2 import RewriterConfig

BFLOAT16_CPU_FLAGS = ('avx512_bf16', 'amx_bf16')
# oneDNN's instruction sets below AVX512-BF16: with ONEDNN_MAX_CPU_ISA capped at one, it has no bfloat16 kernel and
# aborts the process on the first bfloat16 matrix product.
ONEDNN_ISAS_WITHOUT_BFLOAT16 = ('SSE41', 'AVX', 'AVX2', 'AVX2_VNNI', 'AVX512_CORE', 'AVX512_CORE_VNNI')


def cpu_has_bfloat16(cpuinfo='/proc/cpuinfo'):
    """True when the CPU computes in bfloat16 natively (AVX512-BF16 or AMX), as Linux reports its flags, and oneDNN
    is not capped below it (ONEDNN_MAX_CPU_ISA)."""
    if os.environ.get('ONEDNN_MAX_CPU_ISA', '').upper() in ONEDNN_ISAS_WITHOUT_BFLOAT16:
        return False
    try:
        with open(cpuinfo) as f:
            flags = next((line.split(':', 1)[1].split() for line in f if line.startswith('flags')), [])
    except OSError:  # not Linux: no way to tell, so no promise of speed
        return False
    return any(flag in flags for flag in BFLOAT16_CPU_FLAGS)


def session_config(bfloat16=False):
    """
    The session settings of train
    :param bfloat16: Let oneDNN run the graph's convolutions, matrix products and the ops between them in bfloat16
    :return: tf.ConfigProto
    """
    # TensorFlow's own pools: independent ops (the discriminator on real and on generated images, the two networks'
    # gradients) run side by side, each spread over the cores. On 2 cores with today's half-width networks, measured
    # 15-20% faster than one op at a time, which the full-width networks had preferred (docs/speed.md).
    config = tf.ConfigProto()
    if bfloat16 and not cpu_has_bfloat16():
        # Emulated bfloat16 is no saving: measured 16x slower than float32 on an AVX2 CPU.
        warnings.warn('bfloat16 = True, but this CPU has neither AVX512-BF16 nor AMX (or ONEDNN_MAX_CPU_ISA caps '
                      'oneDNN below them), where bfloat16 is emulated and many times slower: training stays in '
                      'float32.')
    elif bfloat16:
        config.graph_options.rewrite_options.auto_mixed_precision_onednn_bfloat16 = RewriterConfig.ON
    return config

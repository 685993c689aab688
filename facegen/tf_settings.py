"""TensorFlow's settings: those it reads once, when it is first imported, and those of train's session.

The start-up settings are set when this module is imported (facegen's __init__ does so first), each a default
(`os.environ.setdefault`), so one the user set wins; the notebook's first cell sets the same for a kernel started
by hand. TensorFlow itself is imported only by session_config, so that the tools that need no TensorFlow (make
runs, the headless runner's parent process) start at once.
"""
import os
import platform
import warnings

# tf.layers needs the legacy Keras 2 (tf-keras) on TensorFlow 2.16 and later.
os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')
# Keep TensorFlow's C++ start-up lines (CPU features, oneDNN notices) out of the way.
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
if platform.machine().lower() in ('x86_64', 'amd64'):
    # TensorFlow turns oneDNN on by itself only on CPUs with AVX-512 VNNI or BF16, AVX-VNNI or AMX; elsewhere
    # (AVX2 laptops and cloud machines) its own kernels train this notebook's GAN about 1.7x slower.
    os.environ.setdefault('TF_ENABLE_ONEDNN_OPTS', '1')

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
    import tensorflow.compat.v1 as tf
    from tensorflow.core.protobuf.rewriter_config_pb2 import RewriterConfig
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

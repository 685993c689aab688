"""The settings TensorFlow reads once, when it is first imported: import this module before TensorFlow.

Every value is a default (`os.environ.setdefault`), so one the user set wins. The notebook's first cell sets
the same defaults for a kernel started by hand.
"""
import os
import platform

# tf.layers needs the legacy Keras 2 (tf-keras) on TensorFlow 2.16 and later.
os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')
# Keep TensorFlow's C++ start-up lines (CPU features, oneDNN notices) out of the way.
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
if platform.machine().lower() in ('x86_64', 'amd64'):
    # TensorFlow turns oneDNN on by itself only on CPUs with AVX-512 VNNI or BF16, AVX-VNNI or AMX; elsewhere
    # (AVX2 laptops and cloud machines) its own kernels train this notebook's GAN about 1.7x slower.
    os.environ.setdefault('TF_ENABLE_ONEDNN_OPTS', '1')

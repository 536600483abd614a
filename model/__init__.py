"""The CNN's training, quantization and evaluation (TensorFlow is imported here only, never at runtime)."""

import os

# TensorFlow turns its oneDNN CPU kernels on by default only where the CPU has AVX-512 VNNI or
# newer; elsewhere (this 2-core AMD EPYC, Zen 3; most laptops) a training batch took 2.6x as long
# without them (322 against 123 ms). TensorFlow reads this once, when first imported, which every
# use of it in this package comes after. A user's own setting wins.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

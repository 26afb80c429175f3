"""tfpipe: raw text to a served BERT-style model (corpus preparation, pretraining, fine-tuning, export, serving)."""

import os as _os
import platform as _platform

# TensorFlow turns its oneDNN kernels on by default only on CPUs with AVX-512/AMX features; on an AVX2-only x86
# CPU it falls back to Eigen, whose fp32 matmuls are 1.2-1.4x slower (BENCHMARKS.md, issue 3, third try).
# Set before TensorFlow is first imported; a TF_ENABLE_ONEDNN_OPTS the user set still wins.
if _platform.machine().lower() in ("x86_64", "amd64"):
    _os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

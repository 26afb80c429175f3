"""tfpipe: raw text to a served BERT-style model (corpus preparation, pretraining, fine-tuning, export, serving)."""

import os as _os
import platform as _platform

# TensorFlow turns its oneDNN kernels on by default only on CPUs with AVX-512/AMX features; on an AVX2-only x86
# CPU it falls back to Eigen, whose fp32 matmuls and BERT training steps are ~1.3-1.9x slower here
# (BENCHMARKS.md, "oneDNN on AVX2"). Set before TensorFlow is first imported; TF_ENABLE_ONEDNN_OPTS=0 still wins.
if _platform.machine().lower() in ("x86_64", "amd64"):
    _os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

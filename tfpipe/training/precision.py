"""Mixed precision: bf16 on CPUs with AMX/AVX-512-BF16 (or on TPUs), fp16 with loss scaling on GPUs."""

from __future__ import annotations

from pathlib import Path

import keras
import tensorflow as tf


def cpu_has_bf16() -> bool:
    """True when the CPU advertises AMX-BF16 or AVX512-BF16 (Linux /proc/cpuinfo)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def resolve_policy(requested: str) -> str:
    """`auto` → `mixed_float16` with a GPU, `mixed_bfloat16` on a bf16-capable CPU, else `float32`."""
    if requested == "none":
        return "float32"
    if requested != "auto":
        return requested
    if tf.config.list_physical_devices("GPU"):
        return "mixed_float16"
    return "mixed_bfloat16" if cpu_has_bf16() else "float32"


def set_policy(requested: str) -> str:
    """Sets Keras's global dtype policy; returns the policy name in force."""
    policy = resolve_policy(requested)
    keras.mixed_precision.set_global_policy(policy)
    return policy

"""Helpers shared by the benchmark scripts: data paths, machine description, tables and JSON results.

Not a benchmark itself; every `bench_*.py` script imports it (they run as scripts, so this directory is on
`sys.path`).
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterable, Sequence

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("TFPIPE_SHARED", "/work/shared"))
WIKITEXT_VALID = SHARED / "data" / "wikitext2" / "valid.txt"
SST2_TRAIN = SHARED / "data" / "sst2" / "train.tsv"
MINILM = SHARED / "checkpoints" / "minilm-l6-h384-uncased"
DEFAULT_OUT = REPO / "bench-out"
TFPIPE_CLI = Path(sys.executable).with_name("tfpipe")


def quiet_tensorflow() -> None:
    """Keeps TensorFlow's C++ start-up chatter out of the tables (call before importing TF)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("ABSL_MIN_LOG_LEVEL", "2")


def machine_info() -> dict[str, Any]:
    """CPU model, cores, RAM and library versions, recorded with every result."""
    info: dict[str, Any] = {"python": platform.python_version(), "platform": platform.platform()}
    if shutil.which("lscpu"):
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        for key, name in (("Model name", "cpu_model"), ("CPU(s)", "cpus"), ("Thread(s) per core", "threads_per_core")):
            match = re.search(rf"^{re.escape(key)}:\s*(.+)$", out, re.M)
            if match:
                info[name] = match.group(1).strip()
    try:
        flags = Path("/proc/cpuinfo").read_text().split("flags", 1)[1].split("\n", 1)[0].split()
        info["cpu_flags_of_note"] = sorted(f for f in flags if f.startswith(("amx", "avx512_bf16", "avx512f")))
    except (OSError, IndexError):
        pass
    info["usable_cpus"] = len(os.sched_getaffinity(0))
    # The machine is shared: a load average near or above the core count means the numbers saw contention.
    info["loadavg_1_5_15"] = [round(x, 2) for x in os.getloadavg()]
    try:
        meminfo = Path("/proc/meminfo").read_text()
        kib = int(re.search(r"MemTotal:\s+(\d+)", meminfo).group(1))
        info["ram_gib"] = round(kib / 2**20, 1)
    except (OSError, AttributeError):
        pass
    for module in ("tensorflow", "tensorflow_text", "keras", "keras_hub", "spacy", "tokenizers"):
        if module in sys.modules:
            info[module] = getattr(sys.modules[module], "__version__", "?")
    return info


def matmul_flops(dtype: str = "float32", size: int = 2048, reps: int = 10) -> float:
    """FLOP/s of a `size`³ TensorFlow matmul in `dtype` (one warm-up call, then `reps` timed ones)."""
    import time

    import tensorflow as tf

    a = tf.random.normal([size, size], dtype=dtype)
    matmul = tf.function(lambda x: tf.matmul(x, x))
    matmul(a).numpy()
    start = time.perf_counter()
    for _ in range(reps):
        matmul(a).numpy()
    return 2 * size**3 * reps / (time.perf_counter() - start)


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    def fmt(value: Any) -> str:
        if isinstance(value, float):
            if abs(value) < 10:
                return f"{value:.2f}"
            return f"{value:.1f}" if abs(value) < 100 else f"{value:,.0f}"
        if isinstance(value, int) and not isinstance(value, bool):
            return f"{value:,}"
        return str(value)

    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def summarize(samples: Sequence[float]) -> dict[str, float]:
    """Median, min and max of repeated rate measurements (higher is better)."""
    return {"median": statistics.median(samples), "min": min(samples), "max": max(samples), "n": len(samples)}


def write_results(out_dir: str | Path, name: str, results: dict[str, Any]) -> Path:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.json"
    path.write_text(json.dumps(results, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
    return path


def repeat_file(source: Path, times: int, target: Path) -> Path:
    """`source` concatenated `times` times into `target` (a temp file, never inside the repo's data)."""
    data = source.read_bytes()
    if not data.endswith(b"\n"):
        data += b"\n"
    with target.open("wb") as out:
        for _ in range(times):
            out.write(data)
    return target

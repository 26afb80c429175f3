"""Reloads an export in a fresh interpreter with only tensorflow + tensorflow-text's op libraries and compares.

Run as a script (`python -I verify_child.py EXPORT_DIR CASES.json`), never imported. It loads the model the way
TensorFlow Serving does: TensorFlow plus the tf-text kernels (`tf.load_op_library`), with the Python packages keras,
keras_hub, tfpipe and even tensorflow_text made unimportable — proof the SavedModel needs none of them.
CASES.json maps signature → {"inputs": {...}, "expected": {...}}, each tensor as {"dtype": ..., "values": nested
list} (strings base64). Prints one JSON line and exits 1 on a mismatch.
"""

import base64
import glob
import importlib.util
import json
import os
import sys

import numpy as np

BLOCKED = ("keras", "keras_hub", "tfpipe", "tf_keras", "tensorflow_text")


def isolated_tensorflow():
    """TensorFlow with the tf-text kernels loaded and the blocked packages unimportable (call before any import
    of TensorFlow in this process)."""
    text_ops = os.path.join(importlib.util.find_spec("tensorflow_text").submodule_search_locations[0], "python",
                            "ops")
    for name in BLOCKED:
        sys.modules[name] = None  # `import x` now fails; TensorFlow's optional probes see "not installed"
    import tensorflow as tf

    for library in sorted(glob.glob(os.path.join(text_ops, "_*.so"))):
        tf.load_op_library(library)
    return tf

TOLERANCE = 1e-5


def decode(tensor: dict) -> np.ndarray:
    if tensor["dtype"] == "string":
        strings = np.array(tensor["values"], dtype=object)
        return np.vectorize(base64.b64decode, otypes=[object])(strings) if strings.size else strings.astype(bytes)
    return np.array(tensor["values"], dtype=tensor["dtype"])


def compare(name: str, got: np.ndarray, want: np.ndarray) -> str | None:
    if got.shape != want.shape:
        return f"{name}: shape {got.shape} != expected {want.shape}"
    if want.dtype.kind == "f":
        diff = float(np.max(np.abs(got - want))) if want.size else 0.0
        return f"{name}: max abs diff {diff:.3g} > {TOLERANCE}" if diff > TOLERANCE else None
    same = np.array_equal(got.astype(want.dtype) if want.dtype != object else got, want)
    return None if same else f"{name}: values differ"


def main(export_dir: str, cases_path: str) -> int:
    tf = isolated_tensorflow()
    with open(cases_path, encoding="utf-8") as f:
        cases = json.load(f)
    loaded = tf.saved_model.load(export_dir)
    problems, max_diff = [], 0.0
    for signature, case in cases.items():
        inputs = {k: tf.constant(decode(v)) for k, v in case["inputs"].items()}
        outputs = loaded.signatures[signature](**inputs)
        for key, tensor in case["expected"].items():
            want, got = decode(tensor), outputs[key].numpy()
            if want.dtype.kind == "f" and want.size:
                max_diff = max(max_diff, float(np.max(np.abs(got - want))))
            problem = compare(f"{signature}.{key}", got, want)
            if problem:
                problems.append(problem)
    foreign = sorted(m for m in BLOCKED if sys.modules.get(m) is not None)
    print(json.dumps({"ok": not problems, "max_abs_diff": max_diff, "problems": problems,
                      "signatures": sorted(loaded.signatures.keys()), "modules_loaded": foreign}))
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))

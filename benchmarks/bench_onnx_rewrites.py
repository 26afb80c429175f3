"""What the ONNX graph rewrites (`tfpipe/export/convert/onnx_fusions.py`) gain: the same export's encoder converted
with and without them, run in OpenVINO (fp32, bf16 where the CPU has it, NNCF int8 calibrated on the same
batches) and onnxruntime fp32, at [1, 128] and [32, 128] ids. Each runtime's two models run in turn within each
repeat, so load changes on a shared machine hit them alike; medians.

    .venv/bin/python benchmarks/bench_onnx_rewrites.py --export-dir /tmp/bench/models/sst2/1 \\
        --calibration-data /tmp/bench/train2k.tsv
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import machine_info, markdown_table, quiet_tensorflow


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--export-dir", type=Path, required=True)
    parser.add_argument("--calibration-data", type=Path, help="a training-format file: adds NNCF int8")
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    quiet_tensorflow()
    import tensorflow as tf

    from tfpipe.export.convert import check, openvino_export
    from tfpipe.export.convert.onnx_export import saved_model_to_onnx
    from tfpipe.export.convert.runtime import (
        OnnxRuntimeEncoder,
        OpenVinoEncoder,
        export_tokenizer,
        read_export_metadata,
    )

    saved = tf.saved_model.load(str(args.export_dir))
    work = Path(tempfile.mkdtemp(prefix="rewrites-"))
    precisions = ["f32"] + (["bf16"] if "BF16" in openvino_export.cpu_capabilities() else [])
    tokenizer = export_tokenizer(args.export_dir, read_export_metadata(args.export_dir))
    calibration = None
    if args.calibration_data:
        calibration = check.calibration_batches(args.calibration_data, args.export_dir, tokenizer)
    encoders, rewrites = {}, {}
    for label, rewrite in (("tf2onnx graph", False), ("rewritten", True)):
        onnx_path = work / f"{label.replace(' ', '-')}.onnx"
        rewrites[label] = saved_model_to_onnx(args.export_dir, onnx_path, loaded=saved, rewrite=rewrite)["rewrites"]
        encoders[(label, "onnxruntime fp32")] = OnnxRuntimeEncoder(onnx_path)
        fp32_xml = onnx_path.with_suffix(".xml")
        openvino_export.onnx_to_openvino(onnx_path, fp32_xml)
        for precision in precisions:
            encoders[(label, f"openvino {precision}")] = OpenVinoEncoder(fp32_xml, precision)
        if calibration is not None:
            int8_xml = onnx_path.with_name(onnx_path.stem + "-int8.xml")
            openvino_export.onnx_to_openvino(onnx_path, int8_xml, "int8", calibration)
            encoders[(label, f"openvino int8+{precisions[-1]}")] = OpenVinoEncoder(int8_xml, precisions[-1])
    rng = np.random.default_rng(0)
    vocabulary = tokenizer.vocabulary_size
    times: dict = {}
    for batch in (1, 32):
        ids = rng.integers(5, vocabulary, (batch, 128), dtype=np.int32)
        feeds = {"input_word_ids": ids, "input_mask": np.ones_like(ids), "input_type_ids": np.zeros_like(ids)}
        for runtime in dict.fromkeys(k[1] for k in encoders):  # a pair at a time: its weights stay in cache
            pair = [(key, encoder) for key, encoder in encoders.items() if key[1] == runtime]
            for _, encoder in pair:
                encoder(feeds)
            for _ in range(args.repeats):
                for key, encoder in pair:
                    start = time.perf_counter()
                    encoder(feeds)
                    times.setdefault((*key, batch), []).append((time.perf_counter() - start) * 1000)
    rows = []
    for runtime in dict.fromkeys(k[1] for k in encoders):
        row = [runtime]
        for batch in (1, 32):
            before, after = (statistics.median(times[(label, runtime, batch)])
                             for label in ("tf2onnx graph", "rewritten"))
            row += [f"{before:.1f}", f"{after:.1f}", f"{before / after:.2f}x"]
        rows.append(row)
    print(machine_info())
    print("rewrites:", rewrites["rewritten"])
    print(markdown_table(["runtime", "b1 tf2onnx ms", "b1 rewritten ms", "b1 gain", "b32 tf2onnx ms",
                          "b32 rewritten ms", "b32 gain"], rows))


if __name__ == "__main__":
    main()

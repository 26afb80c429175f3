"""Where a MiniLM fine-tuning step's time goes, and the speed-up over the PyTorch anchor that padding alone allows.

Four measurements, same machine, one run:
0. fp32 2048³ matmul GFLOP/s with TensorFlow's oneDNN kernels left to its default, off and on (fresh processes).
1. Padded tokens of one epoch over the first N SST-2 rows (batch 32, max length 64) for each batching: the anchor's
   padding per random batch (its own permutation, `RandomState(0)`), tfpipe's buckets 16/32/48/64, tfpipe's
   length-sorted windows (`pipeline.sort_window=50`, counted from the real tf.data pipeline), and the real tokens.
2. TensorFlow (as tfpipe runs it: oneDNN on where `import tfpipe` sets it) at batch 32 × length L: forward,
   forward + backward, and the AdamW update alone over all 22.7M weights.
3. The same forward + backward and update in PyTorch (the anchor's stack), run by the anchor's python.

Training-step time is ~ a·tokens + b (b: the optimizer's pass over every weight, memory-bound); the anchor's step
time over ours bounds the speed-up that less padding can buy at equal per-token cost.

    .venv/bin/python benchmarks/bench_step_parts.py --anchor-python $HOME/hf-anchor/bin/python
"""

from __future__ import annotations

import argparse
import importlib
import json
import subprocess
import sys
import time
from pathlib import Path

from _common import MINILM, REPO, SST2_TRAIN, machine_info, markdown_table, quiet_tensorflow, write_results

TORCH_PARTS = r"""
import json, sys, time, torch
from transformers import AutoModelForSequenceClassification
torch.set_num_threads(2); torch.manual_seed(0)
model = AutoModelForSequenceClassification.from_pretrained(sys.argv[1], num_labels=2); model.train()
opt = torch.optim.AdamW(model.parameters(), lr=5e-5, weight_decay=0.01)
out = {}
for length in map(int, sys.argv[2].split(",")):
    ids = torch.randint(1000, 20000, (32, length)); y = torch.randint(0, 2, (32,))
    def backward():
        model(input_ids=ids, attention_mask=torch.ones_like(ids), labels=y).loss.backward()
    for _ in range(2):
        backward(); opt.step(); opt.zero_grad()
    start = time.perf_counter()
    for _ in range(8):
        backward(); opt.zero_grad()
    fwd_bwd = (time.perf_counter() - start) / 8
    backward()
    start = time.perf_counter()
    for _ in range(8):
        opt.step()  # gradients kept: every step updates all weights, as in training
    update = (time.perf_counter() - start) / 8
    opt.zero_grad()
    out[f"length {length}"] = {"fwd_bwd_ms": round(fwd_bwd * 1000, 1), "update_ms": round(update * 1000, 1)}
print(json.dumps(out))
"""


# Run in a fresh process per setting: TensorFlow reads TF_ENABLE_ONEDNN_OPTS once, when it loads.
MATMUL = "import sys; sys.path.insert(0, sys.argv[1]); from _common import matmul_flops; print(matmul_flops() / 1e9)"


def matmul_by_onednn_setting() -> dict[str, float]:
    """fp32 2048³ matmul GFLOP/s in fresh processes with TF_ENABLE_ONEDNN_OPTS unset, 0 and 1."""
    import os

    out = {}
    for setting in ("unset", "0", "1"):
        env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
        if setting != "unset":
            env["TF_ENABLE_ONEDNN_OPTS"] = setting
        done = subprocess.run([sys.executable, "-c", MATMUL, str(Path(__file__).parent)], env=env,
                              capture_output=True, text=True, check=True)
        out[f"TF_ENABLE_ONEDNN_OPTS {setting}"] = round(float(done.stdout.split()[-1]), 1)
    return out


def padded_tokens(rows: int) -> dict[str, int]:
    import numpy as np
    import tensorflow as tf

    from tfpipe.config import PipelineConfig
    from tfpipe.data.pipelines import finetune_dataset
    from tfpipe.text.labels import LabelVocab
    from tfpipe.text.readers import Record
    from tfpipe.text.tokenizer import WordPieceTokenizer

    tokenizer = WordPieceTokenizer(MINILM / "vocab.txt")
    rows_read = [line.split("\t", 1) for line in SST2_TRAIN.read_text(encoding="utf-8").splitlines()[1: rows + 1]]
    ids, _ = tokenizer.encode(tf.constant([text for _, text in rows_read]), None, 64)
    lengths = ids.row_lengths().numpy()
    order = np.random.RandomState(0).permutation(rows)  # the anchor's epoch-0 order
    anchor = sum(int(lengths[order[i:i + 32]].max()) * len(order[i:i + 32]) for i in range(0, rows, 32))
    bounds = np.array([16, 32, 48, 64])
    buckets = int(sum(bounds[np.searchsorted(bounds, n)] for n in lengths))
    records = [Record(text, label=label) for label, text in rows_read]
    config = PipelineConfig(batch_size=32, max_seq_length=64, sort_window=50)
    ds = finetune_dataset(records, tokenizer, "classification", LabelVocab(["0", "1"]), config, training=True)
    sorted_windows = sum(int(np.prod(features["input_word_ids"].shape)) for features, _ in ds)
    return {"real": int(lengths.sum()), "anchor (pad per random batch)": anchor,
            "tfpipe buckets 16/32/48/64": buckets, "tfpipe sorted windows of 50 batches": sorted_windows}


def tensorflow_parts(lengths: list[int], policy: str = "float32", jit: bool = False) -> dict:
    import keras
    import numpy as np
    import tensorflow as tf

    from tfpipe.config import TrainingConfig
    from tfpipe.models.backbone import load_hf_checkpoint
    from tfpipe.models.classifier import SequenceClassifier
    from tfpipe.training.losses import SparseCrossEntropy
    from tfpipe.training.optimizers import build_optimizer

    keras.utils.set_random_seed(0)
    keras.mixed_precision.set_global_policy(policy)
    encoder, _, _ = load_hf_checkpoint(MINILM)
    model = SequenceClassifier(encoder, 2)
    variables = model.trainable_variables
    loss_fn = SparseCrossEntropy(2)
    rng = np.random.RandomState(0)

    def timed(fn, *args, reps: int = 8) -> float:
        """Milliseconds per call, after two warm-up calls; results fetched, so the work is done."""
        for _ in range(2):
            np.asarray(fn(*args))
        start = time.perf_counter()
        for _ in range(reps):
            np.asarray(fn(*args))
        return round((time.perf_counter() - start) / reps * 1000, 1)

    @tf.function(jit_compile=jit)
    def forward(x):
        return tf.reduce_sum(tf.cast(model(x, training=True), tf.float32))

    @tf.function(jit_compile=jit)
    def forward_backward(x, y):
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
        return tf.add_n([tf.reduce_sum(tf.cast(tf.convert_to_tensor(g), tf.float32))
                         for g in tape.gradient(loss, variables)])

    out: dict = {}
    for length in lengths:
        x = {"input_word_ids": tf.constant(rng.randint(1000, 20000, (32, length)), tf.int32),
             "input_mask": tf.ones((32, length), tf.int32), "input_type_ids": tf.zeros((32, length), tf.int32)}
        y = tf.constant(rng.randint(0, 2, 32), tf.int32)
        out[f"length {length}"] = {"fwd_ms": timed(forward, x), "fwd_bwd_ms": timed(forward_backward, x, y)}
    gradients = [tf.random.normal(v.shape, stddev=1e-3) for v in variables]

    def update_ms(pairs: list) -> float:
        optimizer = build_optimizer(TrainingConfig(), 1000)
        optimizer.build([v for _, v in pairs])

        @tf.function
        def update():
            optimizer.apply_gradients(pairs)
            return tf.constant(0)

        return timed(update)

    pairs = list(zip(gradients, variables))
    out["update_ms"] = update_ms(pairs)
    word_embedding = model.encoder.token_embedding.embeddings
    out["update_without_word_embedding_ms"] = update_ms([(g, v) for g, v in pairs if v is not word_embedding])
    out["weights"] = int(sum(np.prod(v.shape) for v in variables))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=16000)
    parser.add_argument("--lengths", default="16,40", help="sequence lengths to time (batch 32)")
    parser.add_argument("--anchor-python", help="python of the anchor's venv (torch + transformers)")
    parser.add_argument("--policy", default="float32", help="Keras dtype policy of the TensorFlow parts")
    parser.add_argument("--jit", action="store_true", help="XLA-compile the TensorFlow forward (+ backward)")
    parser.add_argument("--tensorflow-only", action="store_true", help="only the TensorFlow parts (2.)")
    parser.add_argument("--out", type=Path, default=REPO / "bench-out" / "step-parts")
    args = parser.parse_args()
    quiet_tensorflow()
    sys.path.insert(0, str(REPO))
    importlib.import_module("tfpipe")  # before TensorFlow: its oneDNN setting, as the CLI has it
    lengths = [int(n) for n in args.lengths.split(",")]
    results: dict = {"machine": machine_info(), "rows": args.rows}
    if not args.tensorflow_only:
        results["fp32_matmul_gflops"] = matmul_by_onednn_setting()
        print(json.dumps(results["fp32_matmul_gflops"]), flush=True)
        results["padded_tokens"] = tokens = padded_tokens(args.rows)
        print(markdown_table(["batching", "tokens per epoch", "x real"],
                             [(k, v, round(v / tokens["real"], 2)) for k, v in tokens.items()]), flush=True)
    results["tensorflow"] = tf_parts = tensorflow_parts(lengths, args.policy, args.jit)
    results["tensorflow"]["policy"], results["tensorflow"]["jit"] = args.policy, args.jit
    print(json.dumps(tf_parts), flush=True)
    if args.anchor_python and not args.tensorflow_only:
        done = subprocess.run([args.anchor_python, "-c", TORCH_PARTS, str(MINILM), args.lengths],
                              capture_output=True, text=True, check=True)
        results["torch"] = json.loads(done.stdout.strip().splitlines()[-1])
        print(json.dumps(results["torch"]), flush=True)
    results["machine_end"] = machine_info()["loadavg_1_5_15"]
    write_results(args.out, "step_parts", results)


if __name__ == "__main__":
    main()

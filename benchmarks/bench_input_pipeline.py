"""Does the fine-tuning input pipeline deliver >= 20x the examples/s that a 6-layer/384-wide model's training
step consumes?

(a) Pipeline: tfpipe's `finetune_dataset` on the first 16,000 rows of SST-2 train (read with `read_records`,
    `ReaderConfig(text_column="sentence", label_column="label")`), tokenizer from the shared MiniLM vocab,
    `PipelineConfig(batch_size=32, max_seq_length=128, bucket_boundaries=[16, 32, 64], cache=False)` so every
    pass tokenizes again, `training=True` (shuffled). Examples/s of iterating full passes, warm-up pass excluded.
(b) Model: `keras_hub.models.BertBackbone(vocabulary_size=30522, num_layers=6, num_heads=12, hidden_dim=384,
    intermediate_dim=1536, max_sequence_length=512)` with a 2-class Dense head on `pooled_output`, built with the
    Keras functional API on tfpipe's feature names (`input_word_ids`/`input_mask`/`input_type_ids` mapped to
    `token_ids`/`padding_mask`/`segment_ids`), AdamW, `model.fit`. The step is fed batches produced by (a) and
    held in memory, so (b) measures what the step consumes, not the pipeline. The timed batches cover every
    padded length the pipeline produces (the buckets 16/32/64/128); after one warm-up epoch over the same
    batches (tracing every shape), `--timed-epochs` passes over them are timed step by step with a callback.
    Two figures:
      - timed-mix examples/s: examples / seconds over all timed steps (an even mix of the buckets);
      - pass-weighted examples/s: 16,000 / the time one pass of (a)'s bucket mix would take, from each padded
        length's median seconds per example (the figure the ratio uses: it matches what the pipeline delivers).
    Run in float32 and, with `--bf16` (default on), in Keras' `mixed_bfloat16` policy.
Ratio = (a) / (b, pass-weighted) for each precision, and whether it is >= 20.

Run (about 3-6 minutes on 2 shared cores):
    .venv/bin/python benchmarks/bench_input_pipeline.py --out bench-out
"""

from __future__ import annotations

import argparse
import collections
import itertools
import os
import statistics
import sys
import time
from pathlib import Path

import _common

_common.quiet_tensorflow()

GOAL = 20.0


def build_model(keras, keras_hub, policy: str):
    """BertBackbone (6 x 384) + Dense(2) on pooled_output, inputs named as tfpipe's features."""
    keras.mixed_precision.set_global_policy(policy)
    try:
        backbone = keras_hub.models.BertBackbone(vocabulary_size=30522, num_layers=6, num_heads=12, hidden_dim=384,
                                                 intermediate_dim=1536, max_sequence_length=512)
        inputs = {name: keras.Input(shape=(None,), dtype="int32", name=name)
                  for name in ("input_word_ids", "input_mask", "input_type_ids")}
        outputs = backbone({"token_ids": inputs["input_word_ids"], "padding_mask": inputs["input_mask"],
                            "segment_ids": inputs["input_type_ids"]})
        logits = keras.layers.Dense(2, dtype="float32", name="classifier")(outputs["pooled_output"])
        model = keras.Model(inputs, logits)
        model.compile(optimizer=keras.optimizers.AdamW(learning_rate=2e-5, weight_decay=0.01),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    finally:
        keras.mixed_precision.set_global_policy("float32")
    return model


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(_common.DEFAULT_OUT), help="folder for the JSON results")
    parser.add_argument("--data", default=str(_common.SST2_TRAIN), help="SST-2 train.tsv")
    parser.add_argument("--vocab", default=str(_common.MINILM / "vocab.txt"))
    parser.add_argument("--rows", type=int, default=16_000)
    parser.add_argument("--passes", type=int, default=3, help="timed pipeline passes (after one warm-up pass)")
    parser.add_argument("--steps", type=int, default=32, help="distinct batches timed per precision")
    parser.add_argument("--timed-epochs", type=int, default=2, help="timed passes over those batches")
    parser.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=True,
                        help="also time the mixed_bfloat16 policy")
    args = parser.parse_args(argv)

    import keras
    import keras_hub
    import numpy as np
    import tensorflow as tf

    from tfpipe.config.schemas import PipelineConfig, ReaderConfig
    from tfpipe.data.pipelines import finetune_dataset
    from tfpipe.text.labels import LabelVocab
    from tfpipe.text.readers import read_records
    from tfpipe.text.tokenizer import WordPieceTokenizer

    load_start = [round(x, 2) for x in os.getloadavg()]
    started = time.perf_counter()
    reader = ReaderConfig(text_column="sentence", label_column="label")
    records = list(itertools.islice(read_records(args.data, reader), args.rows))
    labels = LabelVocab.from_records(records)
    tokenizer = WordPieceTokenizer(Path(args.vocab))
    config = PipelineConfig(batch_size=32, max_seq_length=128, bucket_boundaries=[16, 32, 64], cache=False)
    config.check()
    dataset = finetune_dataset(records, tokenizer, "classification", labels, config, training=True)

    # (a) the pipeline alone: full passes, warm-up excluded.
    def one_pass(keep: bool = False):
        examples, batches = 0, []
        for features, target in dataset:
            examples += int(target.shape[0])
            if keep:
                batches.append(({k: v.numpy() for k, v in features.items()}, target.numpy()))
        return examples, batches

    _, warm_batches = one_pass(keep=True)
    pipeline_runs = []
    for _ in range(args.passes):
        t0 = time.perf_counter()
        examples, _ = one_pass()
        seconds = time.perf_counter() - t0
        pipeline_runs.append({"examples": examples, "seconds": seconds, "examples_per_s": examples / seconds})
    pipeline_rate = _common.summarize([r["examples_per_s"] for r in pipeline_runs])

    # The pass's bucket mix: padded length -> examples, and how much of each batch is padding.
    mix = collections.Counter()
    real_tokens = padded_tokens = 0
    for features, target in warm_batches:
        length = features["input_word_ids"].shape[1]
        mix[length] += len(target)
        real_tokens += int(features["input_mask"].sum())
        padded_tokens += features["input_mask"].size
    lengths = sorted(mix)

    # Timed batches for (b): up to --steps / buckets batches of each padded length, full batches first.
    per_bucket = max(1, -(-args.steps // len(lengths)))
    chosen = []
    for length in lengths:
        same = [b for b in warm_batches if b[0]["input_word_ids"].shape[1] == length]
        same.sort(key=lambda b: -len(b[1]))
        chosen.extend(same[:per_bucket])

    def generator():
        yield from chosen

    signature = ({k: tf.TensorSpec([None, None], tf.int32) for k in chosen[0][0]}, tf.TensorSpec([None], tf.int32))
    train_ds = tf.data.Dataset.from_generator(generator, output_signature=signature)
    train_ds = train_ds.apply(tf.data.experimental.assert_cardinality(len(chosen))).cache()

    class StepTimer(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            self.begin = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            self.seconds.append(time.perf_counter() - self.begin)

    model_results = {}
    policies = ["float32"] + (["mixed_bfloat16"] if args.bf16 else [])
    for policy in policies:
        model = build_model(keras, keras_hub, policy)
        t0 = time.perf_counter()
        model.fit(train_ds, epochs=1, verbose=0)  # warm-up: traces every padded length
        warmup_seconds = time.perf_counter() - t0
        timer = StepTimer()
        timer.seconds = []
        t0 = time.perf_counter()
        history = model.fit(train_ds, epochs=args.timed_epochs, verbose=0, callbacks=[timer])
        fit_seconds = time.perf_counter() - t0
        # Seconds per example at each padded length: the median over its steps (robust to a noisy neighbour).
        per_length = collections.defaultdict(list)
        for (features, target), seconds in zip(chosen * args.timed_epochs, timer.seconds):
            per_length[features["input_word_ids"].shape[1]].append(seconds / len(target))
        seconds_per_example = {length: statistics.median(v) for length, v in per_length.items()}
        timed_examples = args.timed_epochs * sum(len(t) for _, t in chosen)
        pass_seconds = sum(mix[length] * seconds_per_example[length] for length in lengths)
        model_results[policy] = {
            "steps": len(timer.seconds), "timed_examples": timed_examples, "step_seconds_sum": sum(timer.seconds),
            "fit_call_seconds": fit_seconds, "warmup_epoch_seconds": warmup_seconds,
            "timed_mix_examples_per_s": timed_examples / sum(timer.seconds),
            "pass_weighted_examples_per_s": sum(mix.values()) / pass_seconds,
            "examples_per_s_by_length": {length: 1 / spe for length, spe in seconds_per_example.items()},
            "loss": float(history.history["loss"][-1]), "params": model.count_params(),
        }
        del model
        keras.backend.clear_session()

    total = time.perf_counter() - started
    a = pipeline_rate["median"]
    print(f"## Input pipeline vs training step: SST-2 train first {len(records):,} rows, batch 32, buckets "
          f"{config.bucket_boundaries} (+{config.max_seq_length}), cache=False\n")
    print("Padded-length mix of one pipeline pass: " + ", ".join(f"{n}: {mix[n]:,} ex" for n in lengths)
          + f"; real tokens / padded tokens = {real_tokens / padded_tokens:.1%}\n")
    rows = [["(a) finetune_dataset pass (tokenize + bucket + pad), examples/s", a,
             f"{pipeline_rate['min']:,.0f}-{pipeline_rate['max']:,.0f}", "", ""]]
    for policy, result in model_results.items():
        b = result["pass_weighted_examples_per_s"]
        rows.append([f"(b) fit step {policy}, pass-weighted examples/s", b,
                     f"timed mix: {result['timed_mix_examples_per_s']:,.1f}", f"{a / b:,.0f}x",
                     "yes" if a / b >= GOAL else "NO"])
    print(_common.markdown_table(["measure", "examples/s", "range / note", "(a)/(b)", f">= {GOAL:.0f}x"], rows))
    print("\nTraining examples/s by padded length: " + "; ".join(
        f"{policy}: " + ", ".join(f"{n}: {r['examples_per_s_by_length'][n]:,.1f}" for n in lengths)
        for policy, r in model_results.items()))
    machine = _common.machine_info()
    machine["loadavg_at_start"] = load_start
    print(f"\nmodel parameters: {next(iter(model_results.values()))['params']:,}; script wall time {total:.0f} s; "
          f"load average at start {load_start}, at end {machine['loadavg_1_5_15']}")
    path = _common.write_results(args.out, "input_pipeline", {
        "machine": machine, "rows": len(records), "pipeline_runs": pipeline_runs, "pipeline_examples_per_s": a,
        "padded_length_mix": dict(mix), "real_token_fraction": real_tokens / padded_tokens,
        "timed_batches": [[int(f["input_word_ids"].shape[1]), int(len(t))] for f, t in chosen],
        "model": model_results, "timed_epochs": args.timed_epochs, "goal_ratio": GOAL, "numpy": np.__version__,
        "ratios": {p: a / r["pass_weighted_examples_per_s"] for p, r in model_results.items()},
        "script_seconds": total})
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Training-step throughput of the same 6-layer/384-wide keras-hub BERT classifier on whatever device Keras finds
(meant for a GPU), with synthetic batches shaped like tfpipe's SST-2 fine-tuning batches.

`bench_input_pipeline.py` answers the >= 20x question against a CPU training step. On an accelerator the step
is much faster, so this script measures it there for reference. It needs no TensorFlow: any Keras 3 backend
works (`KERAS_BACKEND=jax` on a machine with JAX and no TensorFlow). Token values do not change the cost of a
step, so the batches are random ids of batch size 32 at each padded length of the pipeline's bucket mix
(`--mix LENGTH:EXAMPLES ...`, default: the mix `bench_input_pipeline.py` measured on the first 16,000 SST-2
rows). For each length and precision: one warm-up `model.fit` call (compilation), then a timed
`model.fit` call of `--steps` steps. Pass-weighted examples/s = examples of the mix / time the mix takes.

Run (GPU machine with JAX, keras and keras-hub installed):
    KERAS_BACKEND=jax python3 benchmarks/bench_train_step_accel.py --out bench-out
"""

from __future__ import annotations

import argparse
import sys
import time

import _common

DEFAULT_MIX = ["16:11515", "32:3567", "64:918"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(_common.DEFAULT_OUT), help="folder for the JSON results")
    parser.add_argument("--mix", nargs="+", default=DEFAULT_MIX, help="padded length:examples of one pass")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=100, help="timed steps per padded length and precision")
    parser.add_argument("--policies", nargs="+", default=["float32", "mixed_bfloat16"])
    args = parser.parse_args(argv)

    import keras
    import keras_hub
    import numpy as np
    from bench_input_pipeline import build_model  # same model, same head, same optimizer

    mix = {int(k): int(v) for k, v in (item.split(":") for item in args.mix)}
    rng = np.random.default_rng(0)
    batch = args.batch_size

    def batches(length: int, steps: int):
        n = batch * steps
        x = {"input_word_ids": rng.integers(5, 30522, size=(n, length), dtype=np.int32),
             "input_mask": np.ones((n, length), np.int32), "input_type_ids": np.zeros((n, length), np.int32)}
        return x, rng.integers(0, 2, size=(n,), dtype=np.int32)

    results = {}
    for policy in args.policies:
        model = build_model(keras, keras_hub, policy)
        per_length = {}
        for length in sorted(mix):
            x, y = batches(length, args.steps)
            model.fit(x, y, batch_size=batch, epochs=1, verbose=0, shuffle=False, steps_per_epoch=3)  # compile
            t0 = time.perf_counter()
            history = model.fit(x, y, batch_size=batch, epochs=1, verbose=0, shuffle=False)
            seconds = time.perf_counter() - t0
            per_length[length] = {"steps": args.steps, "seconds": seconds,
                                  "examples_per_s": batch * args.steps / seconds,
                                  "loss": float(history.history["loss"][-1])}
        pass_seconds = sum(mix[n] / per_length[n]["examples_per_s"] for n in mix)
        results[policy] = {"by_length": per_length, "pass_weighted_examples_per_s": sum(mix.values()) / pass_seconds}
        del model
        keras.backend.clear_session()

    device = keras.backend.backend()
    if device == "jax":
        import jax

        device = f"jax {jax.__version__}: {jax.devices()[0].device_kind}"
    print(f"## Training step on {device}, keras {keras.__version__}, keras-hub {keras_hub.__version__}: batch {batch}, "
          f"mix " + ", ".join(f"{n}: {e:,} ex" for n, e in sorted(mix.items())) + "\n")
    rows = []
    for policy, result in results.items():
        for length, r in sorted(result["by_length"].items()):
            rows.append([policy, length, r["examples_per_s"], round(1000 * r["seconds"] / r["steps"], 2)])
        rows.append([policy, "pass-weighted", result["pass_weighted_examples_per_s"], ""])
    print(_common.markdown_table(["policy", "padded length", "examples/s", "ms/step"], rows))
    path = _common.write_results(args.out, "train_step_accel", {
        "machine": _common.machine_info(), "backend_device": device, "mix": mix, "batch_size": batch,
        "results": results})
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

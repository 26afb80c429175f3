"""Fine-tune with a plain Keras `model.fit` through tfpipe's public API, export the raw-text SavedModel, reload it
with TensorFlow alone and classify a raw string.

    python examples/keras_fit.py [--output-dir DIR] [--rows N] [--epochs N] [--tiny]

With `../shared` (or `$TFPIPE_SHARED`) present: the first `--rows` SST-2 training sentences on the MiniLM checkpoint,
scored on the first 200 dev sentences. Otherwise, or with `--tiny`: the reviews embedded in tfpipe on a tiny
randomly initialised model (a smoke run: it is scored on its own training data). The last stdout line is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path

import keras
import tensorflow as tf

import tfpipe
from tfpipe.quickstart import resource_path

SHARED = Path(os.environ.get("TFPIPE_SHARED", Path(__file__).resolve().parents[2] / "shared"))


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output-dir", default="keras-fit-example", help="replaced on every run")
    parser.add_argument("--rows", type=int, default=320, help="SST-2 training sentences")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--tiny", action="store_true", help="embedded reviews + a tiny model even with ../shared")
    args = parser.parse_args()
    out = Path(args.output_dir)
    shutil.rmtree(out, ignore_errors=True)
    keras.utils.set_random_seed(0)

    checkpoint = SHARED / "checkpoints" / "minilm-l6-h384-uncased"
    sst2 = SHARED / "data" / "sst2"
    if checkpoint.is_dir() and sst2.is_dir() and not args.tiny:
        setup = "minilm-sst2"
        tokenizer = tfpipe.tokenizer(checkpoint)
        columns = {"text_column": "sentence|content", "label_column": "label"}  # SST-2 dev calls it "content"
        train = tfpipe.dataset(sst2 / "train.tsv", tokenizer=tokenizer, limit=args.rows, batch_size=16,
                               max_seq_length=64, training=True, **columns)
        dev = tfpipe.dataset(sst2 / "dev.tsv", tokenizer=tokenizer, labels=train.labels, limit=200,
                             batch_size=64, max_seq_length=64, **columns)
        model = tfpipe.classifier(checkpoint, len(train.labels))
        learning_rate, epochs = 1e-4, args.epochs  # a short run: the schedule decays to 0 within it
    else:
        setup = "tiny-reviews"
        reviews = resource_path("quickstart_reviews.tsv")
        tokenizer = tfpipe.tokenizer(tfpipe.vocabulary(reviews, 500, text_column="sentence"))
        train = tfpipe.dataset(reviews, tokenizer=tokenizer, text_column="sentence", label_column="label",
                               batch_size=8, max_seq_length=64, training=True)
        dev = tfpipe.dataset(reviews, tokenizer=tokenizer, labels=train.labels, text_column="sentence",
                             label_column="label", max_seq_length=64)
        model = tfpipe.classifier("custom", len(train.labels), tokenizer=tokenizer, num_layers=1, hidden_dim=32,
                                  num_heads=2, intermediate_dim=64, max_sequence_length=64)
        learning_rate, epochs = 3e-3, max(args.epochs, 12)

    # Plain Keras from here: compile, fit (with tfpipe's callbacks), evaluate.
    steps = int(train.cardinality()) * epochs
    model.compile(optimizer=tfpipe.optimizer(learning_rate, total_steps=steps),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    model.fit(train, validation_data=dev, epochs=epochs, callbacks=tfpipe.callbacks(out / "run"), verbose=2)
    _, accuracy = model.evaluate(dev, verbose=0)

    exported = tfpipe.export(model, tokenizer, out / "models", "sentiment", labels=train.labels,
                             max_seq_length=64, samples=["a gripping, funny film", "dull and far too long"])

    # The SavedModel needs TensorFlow and the tf-text ops only: no Keras, no tfpipe.
    import tensorflow_text  # noqa: F401  (registers the tokenizer ops)

    served = tf.saved_model.load(str(exported.path)).signatures["serving_default"]
    text = "A warm, funny and moving film."
    outputs = served(text=tf.constant([text]))
    result = {"setup": setup, "dev_accuracy": round(float(accuracy), 4), "export_dir": str(exported.path),
              "text": text, "label": outputs["labels"].numpy()[0].decode(),
              "probabilities": [round(float(p), 4) for p in outputs["probabilities"].numpy()[0]],
              "labels": train.labels.labels}
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()

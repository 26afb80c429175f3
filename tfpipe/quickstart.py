"""The end-to-end quickstart on the embedded default data: every stage that exists, in order, with a summary.

Stages: inspect a labelled dataset, spaCy corpus pass, WordPiece vocabulary, MLM+NSP pretraining TFRecords, tf.data
batches, WordNet augmentation (when WordNet is there), then a tiny model: pretrain → split → fine-tune → evaluate →
export → serve (gRPC + REST on 127.0.0.1) → predict through the served API.
"""

from __future__ import annotations

import shutil
import time
from importlib import resources
from pathlib import Path
from typing import Callable, Optional

from tfpipe.config import Config, PipelineConfig, ReaderConfig, save_config
from tfpipe.config.atomic import write_json_atomic

CORPUS = "quickstart_corpus.txt"
# Written into every folder the quickstart makes: a re-run replaces only folders that carry it.
MARKER = ".tfpipe-quickstart"
QUICKSTART_PRETRAIN_STEPS = 40
REVIEWS = "quickstart_reviews.tsv"


def resource_path(name: str) -> Path:
    """Path of an embedded data file (shipped inside the package)."""
    return Path(str(resources.files("tfpipe") / "resources" / name))


def default_config() -> Config:
    config = Config()
    config.reader = ReaderConfig(text_column="sentence", label_column="label")
    config.vocab.vocab_size = 2000
    config.pretraining.max_seq_length = 64
    config.pretraining.max_predictions_per_seq = 10
    config.pretraining.num_shards = 2
    config.pipeline = PipelineConfig(batch_size=16, max_seq_length=64, bucket_boundaries=[16, 32])
    return config


def prepare_output_dir(output_dir: str | Path) -> Path:
    """An empty `output_dir` with the quickstart's marker in it. A folder an earlier quickstart made (it has the
    marker) is replaced, an empty one is used; anything else is refused, never deleted."""
    out = Path(output_dir)
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise ValueError(f"--output-dir {out}: not a folder; give a new or empty folder (it is replaced on re-runs)")
    if out.is_dir():
        if (out / MARKER).is_file():
            shutil.rmtree(out)  # the quickstart's own folder: a re-run starts clean
        elif any(out.iterdir()):
            raise ValueError(f"--output-dir {out}: a folder that is not empty and that tfpipe quickstart did not "
                             f"make (no {MARKER} file in it); nothing was deleted. Give a new or empty folder")
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text("made by tfpipe quickstart, which replaces this folder when run again\n",
                              encoding="utf-8")
    return out


def run_quickstart(
    output_dir: str | Path = "tfpipe-quickstart", config: Optional[Config] = None, progress: bool = True,
    log: Callable[[str], None] = print,
) -> dict:
    """Runs every stage on the embedded corpus and reviews; returns a summary dict (also in summary.json)."""
    import tensorflow as tf

    from tfpipe.data.pipelines import finetune_dataset, pretraining_dataset
    from tfpipe.data.pretraining_data import create_pretraining_data
    from tfpipe.text.corpus import prepare_corpus
    from tfpipe.text.inspect_data import format_report, inspect_dataset
    from tfpipe.text.labels import LabelVocab
    from tfpipe.text.readers import read_records
    from tfpipe.text.tokenizer import WordPieceTokenizer
    from tfpipe.text.vocab import build_vocabulary, write_vocabulary
    from tfpipe.training.summaries import tensorboard_command

    config = config or default_config()
    out = prepare_output_dir(output_dir)
    save_config(config, out)
    corpus, reviews = resource_path(CORPUS), resource_path(REVIEWS)
    summary: dict = {"output_dir": str(out)}
    timings: dict = {}

    def stage(name: str):
        log(f"\n== {name}")
        timings[name] = time.perf_counter()

    def done(name: str) -> None:
        timings[name] = round(time.perf_counter() - timings[name], 2)

    stage("inspect-data")
    report = inspect_dataset(reviews, "classification", config.reader)
    log(format_report(report))
    summary["inspect"] = {"records": report["records"], "errors": report["num_errors"]}
    done("inspect-data")

    stage("spaCy corpus pass")
    prepared = out / "corpus.txt"
    stats = prepare_corpus([corpus], prepared, ReaderConfig(), config.cleaning, config.spacy, progress)
    log(f"{prepared}: {stats.documents} documents, {stats.sentences} sentences, {stats.words} words")
    summary["corpus"] = {"documents": stats.documents, "sentences": stats.sentences, "words": stats.words}
    done("spaCy corpus pass")

    stage("build-vocab")
    texts = (line for line in prepared.read_text(encoding="utf-8").splitlines() if line)
    review_texts = [r.text for r in read_records(reviews, config.reader)]
    vocab = build_vocabulary(list(texts) + review_texts, config.vocab, config.tokenizer.lowercase)
    vocab_path = write_vocabulary(vocab, out / "vocab.txt")
    tokenizer = WordPieceTokenizer(vocab, config.tokenizer.lowercase)
    sample = "The quickstart tokenizer runs in-graph."
    pieces = tokenizer.id_to_token(tokenizer.tokenize(tf.constant([sample])).to_list()[0])
    log(f"{vocab_path}: {len(vocab)} tokens; {sample!r} -> {pieces}")
    summary["vocab"] = {"size": len(vocab), "sha256": tokenizer.hash}
    done("build-vocab")

    stage("create-pretraining-data")
    manifest = create_pretraining_data([prepared], tokenizer, out / "pretraining", config.pretraining,
                                       ReaderConfig(), config.cleaning, config.spacy, progress)
    s = manifest["stats"]
    log(f"{out / 'pretraining'}: {manifest['num_instances']} instances, masked {s['masked_fraction']:.1%}, "
        f"random next {s['random_next_fraction']:.1%}")
    summary["pretraining"] = {"instances": manifest["num_instances"], "masked_fraction": s["masked_fraction"],
                              "random_next_fraction": s["random_next_fraction"]}
    done("create-pretraining-data")

    stage("tf.data pipelines")
    batch = next(iter(pretraining_dataset(out / "pretraining", config.pipeline.batch_size, seed=0)))
    log("pretraining batch: " + ", ".join(f"{k}{list(v.shape)}" for k, v in sorted(batch.items())))
    records = list(read_records(reviews, config.reader))
    labels = LabelVocab.from_records(records)
    labels.save(out / "labels.txt")
    shapes = []
    for features, _ in finetune_dataset(records, tokenizer, "classification", labels, config.pipeline, True):
        shapes.append(int(features["input_word_ids"].shape[1]))
    log(f"fine-tuning: {len(records)} reviews, labels {labels.labels}, {len(shapes)} batches padded to "
        f"bucket lengths {sorted(set(shapes))}")
    summary["pipelines"] = {"finetune_batches": len(shapes), "bucket_lengths": sorted(set(shapes))}
    done("tf.data pipelines")

    stage("WordNet augmentation")
    try:
        from tfpipe.text.augment import EdaAugmenter, load_wordnet

        augmenter = EdaAugmenter(num_aug=2, seed=config.augment.seed, wordnet=load_wordnet())
        for text in augmenter.augment(records[0].text):
            log(f"  {records[0].text!r} -> {text!r}")
        summary["augment"] = "ok"
    except FileNotFoundError as error:  # WordNet is an optional Debian package
        log(f"skipped: {error}")
        summary["augment"] = "skipped: WordNet not installed"
    done("WordNet augmentation")

    _model_stages(out, config, reviews, stage, done, summary, log)

    # Both runs' logs/ (pretrain-run, finetune-run) under one logdir, so TensorBoard shows them side by side.
    summary["tensorboard"] = tensorboard_command(out)
    summary["seconds"] = timings
    write_json_atomic(out / "summary.json", summary, sort_keys=False)
    log(f"\nquickstart finished in {sum(timings.values()):.1f}s; outputs in {out}/")
    log(f"TensorBoard (scalars, HParams, text tables, projector, graphs of both runs): {summary['tensorboard']}")
    return summary


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _model_stages(out: Path, config: Config, reviews: Path, stage, done, summary: dict, log) -> None:
    """A tiny encoder through every model stage: small enough to run in well under a minute on 2 cores."""
    import copy

    from tfpipe.export.exporter import export_run
    from tfpipe.serving.client import ServingClient
    from tfpipe.serving.flags import ServerOptions
    from tfpipe.serving.server import ModelServer
    from tfpipe.text.split import split_file
    from tfpipe.training.evaluate import evaluate_file
    from tfpipe.training.finetune import finetune
    from tfpipe.training.pretrain import pretrain

    model = copy.deepcopy(config)
    model.tokenizer.vocab = str(out / "vocab.txt")
    model.model.size, model.model.max_sequence_length = "tiny", 128
    model.training.mixed_precision = "none"  # tiny matrices gain nothing from bf16

    stage("pretrain")
    model.training.steps, model.training.learning_rate = QUICKSTART_PRETRAIN_STEPS, 1e-3
    metrics = pretrain(model, out / "pretraining", out / "pretrain-run", verbose=0)
    log(f"{out / 'pretrain-run'}: {QUICKSTART_PRETRAIN_STEPS} steps, " +
        ", ".join(f"{k} {v:.3f}" for k, v in sorted(metrics.items()) if isinstance(v, float)))
    summary["pretrain"] = {k: v for k, v in metrics.items() if isinstance(v, (int, float))}
    done("pretrain")

    stage("finetune")
    split_file(reviews, out / "split", ratios=(0.8, 0.2), seed=0, stratify_column="label")
    train, dev = out / "split" / "train.tsv", out / "split" / "validation.tsv"
    tune = copy.deepcopy(model)
    tune.training.steps, tune.training.epochs, tune.training.learning_rate = None, 15, 2e-3
    tune.model.pretrained_run = str(out / "pretrain-run")
    tune.pipeline.batch_size = 8
    result = finetune(tune, str(train), str(dev), out / "finetune-run", verbose=0)
    log(f"{out / 'finetune-run'}: dev accuracy {result.get('accuracy', float('nan')):.3f}")
    done("finetune")

    stage("evaluate")
    metrics = evaluate_file(out / "finetune-run", dev)
    log(f"{dev.name}: accuracy {metrics['accuracy']:.3f}, macro F1 {metrics['f1']:.3f}")
    summary["evaluate"] = {"accuracy": metrics["accuracy"], "f1": metrics["f1"]}
    done("evaluate")

    stage("export")
    exported = export_run(out / "finetune-run", out / "models", "reviews", log=log)
    log(next(b for b in exported.signatures.split("\n\n") if b.startswith("signature_def['serving_default']")))
    summary["export"] = {"path": str(exported.path), "max_abs_diff": exported.verification.get("max_abs_diff")}
    done("export")

    stage("serve + predict")
    options = ServerOptions(port=0, rest_api_port=_free_port(), model_name="reviews",
                            model_base_path=str(out / "models" / "reviews"))
    texts = ["A warm, funny and moving film.", "The food was cold and the service was rude."]
    with ModelServer(options) as server:
        grpc_labels = ServingClient(f"127.0.0.1:{server.grpc_port}", "reviews").predict(texts)["labels"]
        rest_labels = ServingClient(f"http://127.0.0.1:{server.rest_port}", "reviews").predict(texts)["labels"]
    for text, label in zip(texts, grpc_labels):
        log(f"  {text!r} -> {label}")
    summary["serve"] = {"grpc": [str(x) for x in grpc_labels], "rest": [str(x) for x in rest_labels]}
    done("serve + predict")

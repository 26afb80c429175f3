"""The public Python API for Keras users, in one place: data files to `tf.data` batches, models from a size name
or a local checkpoint, tfpipe's optimizer and callbacks for a plain `model.fit`, and the verified raw-text export.

Everything here is re-exported from the package root (`tfpipe.dataset`, `tfpipe.classifier`, ...), loaded on first
use so that `import tfpipe` stays light. The CLI commands run the same components with a config file instead.

Examples:
>>> import keras, tfpipe
>>> from tfpipe.quickstart import resource_path
>>> tok = tfpipe.tokenizer(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "good", "bad", "film"])
>>> train = tfpipe.dataset(resource_path("quickstart_reviews.tsv"), tokenizer=tok, text_column="sentence",
...                        label_column="label", batch_size=16, training=True)
>>> train.labels.labels
['negative', 'positive']
>>> model = tfpipe.classifier("custom", num_classes=len(train.labels), tokenizer=tok, num_layers=1,
...                           hidden_dim=8, num_heads=2)
>>> model.compile(optimizer=tfpipe.optimizer(1e-3, total_steps=5),
...               loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
>>> history = model.fit(train, epochs=1, verbose=0)
>>> sorted(history.history)
['accuracy', 'loss']
"""

from __future__ import annotations

from itertools import islice
from pathlib import Path
from typing import Callable, Optional, Sequence, Union

import keras
import tensorflow as tf

from tfpipe.config import Config, ModelConfig, PipelineConfig, ReaderConfig, TrainingConfig, VocabConfig, load_config
from tfpipe.config.core import validate
from tfpipe.config.schemas import MODEL_SIZES
from tfpipe.config.tasks import all_tasks, get_task
from tfpipe.export.exporter import ExportResult, export_model
from tfpipe.export.samples import with_edge_cases
from tfpipe.models.backbone import BertEncoder, build_encoder, hf_tokenizer
from tfpipe.models.classifier import SequenceClassifier
from tfpipe.models.task import TaskModel
from tfpipe.text.labels import LabelVocab
from tfpipe.text.readers import ErrorLog, read_records
from tfpipe.text.tokenizer import WordPieceTokenizer
from tfpipe.text.vocab import build_vocabulary
from tfpipe.training.callbacks import build_callbacks
from tfpipe.training.optimizers import build_optimizer
from tfpipe.training.run_dir import load_checkpoint, load_pretrained_run

__all__ = ["vocabulary", "tokenizer", "dataset", "model", "classifier", "optimizer", "callbacks", "export"]

TokenizerLike = Union[WordPieceTokenizer, str, Path, Sequence[str]]
LabelsLike = Union[LabelVocab, Sequence[str], str, Path]


def vocabulary(paths: Union[str, Path, Sequence[Union[str, Path]]], size: int = 8000, *,
               text_column: Optional[str] = None, lowercase: bool = True, format: str = "auto") -> list[str]:
    """A WordPiece vocabulary learned from data files (the `tfpipe build-vocab` learner), for `tfpipe.tokenizer`.

    Words are counted as the runtime tokenizer splits them, so every entry is reachable; the list starts with the
    BERT special tokens and keeps every single character.

    Args:
        paths: plain-text corpora (one text per line) or labelled TSV/CSV/JSONL files (their `text_column`).
        size: at most this many tokens.
        lowercase: for an uncased tokenizer (`tfpipe.tokenizer(tokens, lowercase=...)` must match).

    Examples:
    >>> from tfpipe.quickstart import resource_path
    >>> tokens = vocabulary(resource_path("quickstart_reviews.tsv"), 300, text_column="sentence")
    >>> tokens[:5], len(tokens) <= 300
    (['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'], True)
    """
    reader = ReaderConfig(format=format, text_column=text_column)
    validate(reader, "reader.")
    config = VocabConfig(vocab_size=size)
    validate(config, "vocab.")
    files = [paths] if isinstance(paths, (str, Path)) else list(paths)
    texts = (t for path in files for r in read_records(path, reader, "classification")
             for t in (r.text, r.text_pair) if t)
    return build_vocabulary(texts, config, lowercase)


def tokenizer(source: TokenizerLike, lowercase: Optional[bool] = None) -> WordPieceTokenizer:
    """The in-graph WordPiece tokenizer that training pipelines use and every export embeds.

    Args:
        source: a `vocab.txt` path, a list of tokens in id order, a Hugging Face BERT folder (its `vocab.txt`
            and `tokenizer_config.json`), a keras-hub preset folder, or a `tfpipe finetune`/`pretrain` run
            directory; an existing `WordPieceTokenizer` is returned as is.
        lowercase: lower-case and strip accents; default the folder's own setting, else `True` (uncased).

    Examples:
    >>> tok = tokenizer(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "fox", "##es"])
    >>> tok.tokenize(tf.constant(["The foxes"])).to_list()
    [[5, 6, 7]]
    """
    return _tokenizer(source, lowercase)


def _tokenizer(source: TokenizerLike, lowercase: Optional[bool] = None) -> WordPieceTokenizer:
    # Named apart from `tokenizer` because that is also an argument name of the functions below.
    if isinstance(source, WordPieceTokenizer):
        return source
    if isinstance(source, (str, Path)) and Path(source).is_dir():
        folder = Path(source)
        if (folder / "config.yaml").is_file():  # a tfpipe run directory
            found = WordPieceTokenizer(folder / "vocab.txt", load_config(Config, folder / "config.yaml")
                                       .tokenizer.lowercase)
        elif (folder / "vocab.txt").is_file():
            found = hf_tokenizer(folder)
        else:
            found = load_checkpoint(folder)[1]  # a keras-hub preset keeps its vocabulary in assets/
        if lowercase is None or lowercase == found.lowercase:
            return found
        return WordPieceTokenizer(found.vocabulary, lowercase)
    return WordPieceTokenizer(source, True if lowercase is None else lowercase)


def _labels(labels: Optional[LabelsLike]) -> Optional[LabelVocab]:
    if labels is None or isinstance(labels, LabelVocab):
        return labels
    if isinstance(labels, (str, Path)):
        return LabelVocab.load(labels)  # a labels.txt
    return LabelVocab(list(labels))


def dataset(
    path: str | Path,
    task: str = "classification",
    *,
    tokenizer: TokenizerLike,
    labels: Optional[LabelsLike] = None,
    text_column: Optional[str] = None,
    text_pair_column: Optional[str] = None,
    label_column: Optional[str] = None,
    format: str = "auto",
    no_header: bool = False,
    batch_size: int = 32,
    max_seq_length: int = 128,
    training: bool = False,
    seed: int = 0,
    bucket_boundaries: Sequence[int] = (),
    on_error: str = "raise",
    limit: Optional[int] = None,
    doc_stride: int = 128,
    max_query_length: int = 64,
) -> tf.data.Dataset:
    """A labelled (or unlabelled) data file as `tf.data` batches ready for `model.fit`, `evaluate` and `predict`.

    Batches are `({"input_word_ids", "input_mask", "input_type_ids"}, labels)`, int32 `[batch, seq]`, tokenized
    in-graph and padded per batch (or to `bucket_boundaries`); token classification adds per-piece weights
    `(x, tags, weights)` so that only each word's first piece counts, and splits sentences longer than
    `max_seq_length` into windows of whole words. The dataset carries `.labels` (the `LabelVocab` used, `None`
    for regression), `.tokenizer` and `.reading` (records read, skipped by kind); pass `labels=train.labels` to read
    a validation file with the same ids.

    Args:
        path: TSV, CSV, JSONL, CoNLL, span-JSONL or SQuAD file (the format follows the extension, or `format`).
        task: a registered task (`tfpipe.config.tasks.task_names()`): `"classification"`, `"regression"`,
            `"token-classification"`, `"question-answering"` (SQuAD files) or one of your own.
        tokenizer: a `WordPieceTokenizer`, or anything `tfpipe.tokenizer` takes (a vocab.txt, a checkpoint folder).
        labels: the label vocabulary (a `LabelVocab`, a list of label strings or a labels.txt); default the
            sorted labels found in `path`. A given one is a closed set: an unknown label is an error.
        text_column, text_pair_column, label_column: column names (0-based indices with `no_header`); JSONL keys
            default to `text`, `text_pair`, `label`. `"sentence|content"` takes the first name the header has.
        batch_size, max_seq_length: batch size and the longest sequence in word pieces (`[CLS]`/`[SEP]` included).
        training: shuffle (seeded with `seed`, reshuffled each epoch); evaluation data keeps the file's order.
        on_error: `"raise"` at the first bad record (`file:line: reason`), or `"skip"` and count them.
        limit: read only the first `limit` records (a quick experiment on a big file).
        doc_stride, max_query_length: question answering: context windows start every `doc_stride` pieces, and
            a question keeps its first `max_query_length` pieces. Its batches are `(x, [start, end])` windows.

    Examples:
    >>> from tfpipe.quickstart import resource_path
    >>> tok = tokenizer(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "good", "bad", "film"])
    >>> ds = dataset(resource_path("quickstart_reviews.tsv"), tokenizer=tok, text_column="sentence",
    ...              label_column="label", batch_size=4, max_seq_length=16)
    >>> x, y = next(iter(ds))
    >>> sorted(x), x["input_word_ids"].dtype.name, y.numpy().tolist()
    (['input_mask', 'input_type_ids', 'input_word_ids'], 'int32', [0, 1, 0, 1])
    """
    spec = get_task(task)
    tok = _tokenizer(tokenizer)
    reader = ReaderConfig(format=format, text_column=text_column, text_pair_column=text_pair_column,
                          label_column=label_column, no_header=no_header, on_error=on_error)
    validate(reader, "reader.")
    vocab = _labels(labels) if spec.uses_labels else None
    log = ErrorLog.for_reader(reader)
    records = list(islice(read_records(path, reader, task, labels=spec.closed_labels(vocab), log=log), limit))
    if vocab is None and spec.has_gold(records):
        vocab = spec.labels_from_records(records)
    pipeline = PipelineConfig(batch_size=batch_size, max_seq_length=max_seq_length, seed=seed,
                              bucket_boundaries=sorted(bucket_boundaries), doc_stride=doc_stride,
                              max_query_length=max_query_length)
    validate(pipeline, "pipeline.")
    records = spec.prepare(records, tok, max_seq_length)  # token classification: windows, never truncated
    ds = spec.dataset(records, tok, vocab, pipeline, training)
    if not pipeline.bucket_boundaries:  # a known length: Keras shows progress and no "ran out of data" warning
        examples = spec.examples_per_epoch(records, tok, pipeline)
        ds = ds.apply(tf.data.experimental.assert_cardinality(-(-examples // batch_size)))
    ds.labels, ds.tokenizer, ds.reading = vocab, tok, log.summary()
    return ds


def _encoder(source: Union[str, Path, BertEncoder], tokenizer: Optional[TokenizerLike],
             dimensions: dict) -> BertEncoder:
    if isinstance(source, BertEncoder):
        return source
    if str(source) in MODEL_SIZES:
        if tokenizer is None:
            raise ValueError(f"a {source!r} encoder is randomly initialised: give tokenizer= (or a vocab.txt) for "
                             "its vocabulary size")
        config = ModelConfig(size=str(source), **dimensions)
        validate(config, "model.")
        return build_encoder(config, _tokenizer(tokenizer).vocabulary_size)
    folder = Path(source)
    if dimensions:
        raise ValueError(f"{sorted(dimensions)}: a checkpoint fixes the dimensions; give them with a size name")
    if (folder / "encoder.weights.h5").is_file():  # the output directory of `tfpipe pretrain`
        return load_pretrained_run(folder)[0]
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: neither a size name ({', '.join(MODEL_SIZES)}) nor a checkpoint folder")
    return load_checkpoint(folder)[0]


def model(
    source: Union[str, Path, BertEncoder],
    task: str = "classification",
    *,
    num_labels: Optional[int] = None,
    tokenizer: Optional[TokenizerLike] = None,
    dropout: float = 0.1,
    pooling: str = "cls",
    **dimensions: int,
) -> TaskModel:
    """A Keras task model (BERT encoder + head) on tfpipe's inputs, to compile and fit like any Keras model.

    Args:
        source: a size name (`"tiny"`, `"mini"`, `"small"`, `"medium"`, `"base"`, or `"custom"` with
            `num_layers`, `hidden_dim`, `num_heads`), randomly initialised; a local Hugging Face BERT folder
            (`config.json`, `model.safetensors`, `vocab.txt`) or keras-hub preset folder, imported offline; the
            output directory of `tfpipe pretrain`; or a `BertEncoder` (e.g. another model's `.encoder`).
        task: `"classification"` (`SequenceClassifier`, logits), `"regression"` (`SequenceRegressor`),
            `"token-classification"` (`TokenTagger`, logits per piece), `"question-answering"` (`SpanExtractor`,
            start/end logits per piece), or any registered task (its `build_model`).
        num_labels: classes, or BIO tags for token classification (`len(train.labels)`).
        tokenizer: for a size name, the tokenizer (or vocab.txt) whose vocabulary size the embedding takes.
        dropout: dropout before the head. pooling: `"cls"` or `"mean"` (sequence heads).
        **dimensions: `num_layers`, `hidden_dim`, `num_heads`, `intermediate_dim`, `max_sequence_length`, ...
            (`ModelConfig` fields) for a size name.

    Examples:
    >>> m = model("custom", "regression", tokenizer=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "ok"],
    ...           num_layers=1, hidden_dim=8, num_heads=2)
    >>> type(m).__name__, m.encoder.hidden_dim
    ('SequenceRegressor', 8)
    """
    spec = get_task(task)
    if spec.uses_labels and not num_labels:
        raise ValueError(f"{task} needs num_labels (len(train.labels))")
    labels = LabelVocab([str(i) for i in range(num_labels)]) if spec.uses_labels else None
    return spec.build_model(_encoder(source, tokenizer, dimensions), labels, dropout, pooling)


def classifier(source: Union[str, Path, BertEncoder], num_classes: int, **kwargs) -> SequenceClassifier:
    """`model(source, "classification", num_labels=num_classes, **kwargs)`: a sequence classifier (logits).

    Examples:
    >>> c = classifier("custom", 3, tokenizer=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"], num_layers=1,
    ...                hidden_dim=8, num_heads=2)
    >>> c.num_classes
    3
    """
    return model(source, "classification", num_labels=num_classes, **kwargs)


def optimizer(learning_rate: float, total_steps: int, *, name: str = "adamw", warmup_ratio: float = 0.1,
              decay: str = "linear", weight_decay: float = 0.01, clipnorm: Optional[float] = None,
              gradient_accumulation_steps: int = 1) -> keras.optimizers.Optimizer:
    """The fine-tuning recipe's optimizer: AdamW (no decay on LayerNorm and biases), LAMB or SGD, with linear
    warmup over `warmup_ratio` of `total_steps` optimizer steps, then linear/cosine/constant decay.

    Examples:
    >>> opt = optimizer(5e-5, total_steps=100)  # 10 warmup steps: the first step takes a tenth of the peak
    >>> type(opt).__name__, round(float(opt.learning_rate), 8)
    ('AdamW', 5e-06)
    """
    config = TrainingConfig(learning_rate=learning_rate, optimizer=name, warmup_ratio=warmup_ratio, decay=decay,
                            weight_decay=weight_decay, clipnorm=clipnorm,
                            gradient_accumulation_steps=gradient_accumulation_steps)
    validate(config, "training.")
    return build_optimizer(config, total_steps)


def callbacks(run_dir: str | Path, monitor: Optional[str] = "val_accuracy", mode: str = "max", *,
              early_stopping_patience: int = 0, backup_every_steps: Optional[int] = None
              ) -> list[keras.callbacks.Callback]:
    """The callbacks `tfpipe finetune` uses, for `model.fit(..., callbacks=tfpipe.callbacks(run_dir))`.

    `run_dir/backup/` (BackupAndRestore: a killed fit run again resumes; deleted at the end), the learning rate in
    the logs, `run_dir/logs/` (TensorBoard), `run_dir/history.csv`, and with a `monitor`, the best weights in
    `run_dir/checkpoints/best.weights.h5` and optional early stopping.

    Args:
        monitor: the metric that picks the best checkpoint (`None`: no checkpoint, e.g. without validation data).
        mode: `"max"` (accuracy) or `"min"` (a loss).
        early_stopping_patience: epochs without improvement before stopping (0: never).
        backup_every_steps: back up every N steps as well as at each epoch's end (default: epochs only).

    Examples:
    >>> import tempfile
    >>> [type(c).__name__ for c in callbacks(tempfile.mkdtemp(), "val_loss", "min")][:2]
    ['EpochEndBackup', 'LearningRateLogger']
    """
    config = TrainingConfig(early_stopping_patience=early_stopping_patience,
                            checkpoint_every_steps=backup_every_steps)
    validate(config, "training.")
    return build_callbacks(Path(run_dir), config, monitor, mode)


def _float32(model: keras.Model) -> None:
    if model.dtype_policy.name != "float32":
        raise ValueError(f"the model computes in {model.dtype_policy.name}; exports are float32: build it again "
                         "under keras.mixed_precision.set_global_policy('float32') and copy the weights over "
                         "(new.set_weights(model.get_weights()))")


def export(
    model: TaskModel,
    tokenizer: TokenizerLike,
    export_base: str | Path,
    name: str,
    *,
    labels: Optional[LabelsLike] = None,
    max_seq_length: int = 128,
    text_pair: bool = False,
    version: Optional[int] = None,
    samples: Sequence[Union[str, tuple[str, str]]] = (),
    verify: bool = True,
    log: Callable[[str], None] = print,
) -> ExportResult:
    """Writes `export_base/name/VERSION/`: the same raw-text SavedModel `tfpipe export` writes from a run, checked
    in a fresh process with only TensorFlow and the tf-text kernels before it is renamed into place.

    Signatures `serving_default` (raw `text`, `text_pair` for pair models), `classify`/`regress` (tf.Example) and
    `predict_ids`; `assets/` holds `vocab.txt` and `labels.txt`. Load it with `import tensorflow_text` and
    `tf.saved_model.load(path)`, or serve it with `tfpipe serve` or TensorFlow Serving.

    Args:
        model: a float32 model from `tfpipe.model`/`tfpipe.classifier` (trained); the task follows its head.
        tokenizer: the tokenizer the model was trained with (or its vocab.txt / checkpoint folder).
        export_base, name: TF Serving's base folder and model name.
        labels: label strings in id order (`train.labels`); default `"0"`, `"1"`, ... for a classifier.
        max_seq_length: inputs are trimmed to this many pieces, as in training (`[CLS]`/`[SEP]` included).
        text_pair: the model takes text pairs (`text_pair_column` in training).
        version: default the next free one; an existing version is never overwritten.
        samples: real texts (or `(text, text_pair)` tuples) for the check and the warm-up records; edge cases
            are always added.
        verify: reload and compare in a fresh process (≤ 1e-5); a failed check removes the partial export.

    Examples:
    >>> result = export(model, train.tokenizer, "models", "reviews", labels=train.labels)  # doctest: +SKIP
    >>> import tensorflow_text  # doctest: +SKIP
    >>> served = tf.saved_model.load(str(result.path))  # doctest: +SKIP
    >>> served.signatures["serving_default"](text=tf.constant(["a good film"]))["labels"]  # doctest: +SKIP
    <tf.Tensor: shape=(1,), dtype=string, numpy=array([b'positive'], dtype=object)>
    """
    spec = next((t for t in all_tasks() if t.owns(model)), None)
    if spec is None:
        raise TypeError(f"{type(model).__name__}: export takes a model from tfpipe.model / tfpipe.classifier")
    task = spec.name
    _float32(model)
    tok = _tokenizer(tokenizer)
    vocab = spec.export_labels(model, _labels(labels))
    encoder = model.encoder
    if max_seq_length > encoder.max_sequence_length:
        raise ValueError(f"max_seq_length={max_seq_length} is longer than the model's "
                         f"max_sequence_length={encoder.max_sequence_length}")
    config = Config(task=task)
    config.pipeline.max_seq_length = max_seq_length
    config.tokenizer.lowercase = tok.lowercase
    config.model = ModelConfig(size="custom", num_layers=encoder.num_layers, hidden_dim=encoder.hidden_dim,
                               num_heads=encoder.num_heads, intermediate_dim=encoder.intermediate_dim,
                               max_sequence_length=encoder.max_sequence_length, activation=encoder.activation,
                               pooling=getattr(model, "pooling", "cls"))
    pairs = [s if isinstance(s, tuple) else (s, s) for s in samples]
    checks = with_edge_cases([a for a, _ in pairs], [b for _, b in pairs] if text_pair else None, max_seq_length)
    return export_model(model, tok, vocab.labels if vocab is not None else None, config, export_base, name,
                        version, text_pair, checks, None, verify, log)

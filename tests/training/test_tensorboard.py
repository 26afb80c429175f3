"""TensorBoard for every run, read back with TensorBoard's own multiplexer and data provider (what its dashboards
read): scalars (losses, metrics, learning rate, examples/s), the HParams session, text tables, the projector's
config + metadata + tensor, the graph, and a profiler trace with --profile."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf
from google.protobuf import text_format
from tensorboard.backend.event_processing.data_provider import MultiplexerDataProvider
from tensorboard.backend.event_processing.plugin_event_multiplexer import EventMultiplexer
from tensorboard.context import RequestContext
from tensorboard.plugins import projector
from tensorboard.plugins.hparams import api_pb2
from tensorboard.plugins.hparams import metadata as hparams_metadata

from tests.training.conftest import TINY_MODEL, write_pretraining_data, write_sentiment_tsv
from tfpipe.cli.main import main
from tfpipe.text.labels import LabelVocab
from tfpipe.text.readers import Record, TokenRecord
from tfpipe.training.summaries import prediction_tables

CONTEXT, EXPERIMENT = RequestContext(), ""  # a local logdir is TensorBoard's one experiment


class Logs:
    """One logs directory as TensorBoard loads it."""

    def __init__(self, logdir: Path) -> None:
        self.multiplexer = EventMultiplexer()
        self.multiplexer.AddRunsFromDirectory(str(logdir))
        self.multiplexer.Reload()
        self.provider = MultiplexerDataProvider(self.multiplexer, str(logdir))

    def scalars(self) -> dict[str, dict[str, list[tuple[int, float]]]]:
        read = self.provider.read_scalars(CONTEXT, experiment_id=EXPERIMENT, plugin_name="scalars", downsample=10_000)
        return {run: {tag: [(d.step, d.value) for d in data] for tag, data in tags.items()}
                for run, tags in read.items()}

    def texts(self) -> dict[str, dict[str, str]]:
        read = self.provider.read_tensors(CONTEXT, experiment_id=EXPERIMENT, plugin_name="text", downsample=10_000)
        return {run: {tag: data[-1].numpy.item().decode() for tag, data in tags.items()} for run, tags in read.items()}

    def hparams(self) -> tuple[dict, dict]:
        """The session start (hparams by name) and end info of the one session in the logs."""
        content = self.multiplexer.PluginRunToTagToContent(hparams_metadata.PLUGIN_NAME)
        starts = [hparams_metadata.parse_session_start_info_plugin_data(tags[hparams_metadata.SESSION_START_INFO_TAG])
                  for tags in content.values() if hparams_metadata.SESSION_START_INFO_TAG in tags]
        ends = [hparams_metadata.parse_session_end_info_plugin_data(tags[hparams_metadata.SESSION_END_INFO_TAG])
                for tags in content.values() if hparams_metadata.SESSION_END_INFO_TAG in tags]
        assert len(starts) == 1 and len(ends) == 1
        values = {}
        for name, value in starts[0].hparams.items():
            kind = value.WhichOneof("kind")
            values[name] = getattr(value, kind)
        return values, ends[0]

    def graph_runs(self) -> set[str]:
        return set(self.provider.list_blob_sequences(CONTEXT, experiment_id=EXPERIMENT, plugin_name="graphs"))


def _finetune(tmp_path: Path, vocab_file: Path, capsys, *extra: str) -> Path:
    train = write_sentiment_tsv(tmp_path / "train.tsv", 32, seed=1)
    dev = write_sentiment_tsv(tmp_path / "dev.tsv", 24, seed=2)
    run = tmp_path / "run"
    assert main(["finetune", "--task", "classification", "--train", str(train), "--validation", str(dev),
                 "--text-column", "sentence", "--label-column", "label", "--vocab", str(vocab_file),
                 "--output-dir", str(run), "--epochs", "3", "--batch-size", "8", "--learning-rate", "3e-3",
                 *TINY_MODEL, *extra]) == 0
    assert f"TensorBoard: tensorboard --logdir {run / 'logs'}" in capsys.readouterr().out
    return run


def test_finetune_writes_every_dashboard(tmp_path, vocab_file, capsys):
    run = _finetune(tmp_path, vocab_file, capsys, "--profile", "2,3")
    logs = Logs(run / "logs")

    scalars = logs.scalars()
    train, validation = scalars["train"], scalars["validation"]
    for tag in ("epoch_loss", "epoch_accuracy", "epoch_learning_rate", "epoch_examples_per_second"):
        assert [step for step, _ in train[tag]] == [0, 1, 2], tag
    assert all(value > 0 for _, value in train["epoch_examples_per_second"])
    rates = [value for _, value in train["epoch_learning_rate"]]
    assert rates[0] > rates[1] > rates[2] >= 0  # linear decay to 0 after warm-up
    assert {"epoch_loss", "epoch_accuracy"} <= set(validation)
    final = scalars["."]  # the run's own writer: the session's final metrics, at the last optimizer step
    assert {"final/accuracy", "final/f1", "final/mcc", "final/f1_positive"} <= set(final)
    assert final["final/accuracy"][-1][0] == 12  # 3 epochs × 4 batches

    values, end = logs.hparams()
    assert values["task"] == "classification" and values["training.learning_rate"] == 3e-3
    assert values["model.hidden_dim"] == 16 and values["pipeline.batch_size"] == 8
    assert values["training.profile"] == "2,3" and values["data.train"].endswith("train.tsv")
    assert end.status == api_pb2.STATUS_SUCCESS

    texts = logs.texts()["eval/dev"]
    samples = texts["predictions/samples"].splitlines()
    assert samples[0] == "| line | text | gold | predicted | p(predicted) |" and len(samples) == 2 + 10
    assert texts["predictions/worst_errors"].startswith("| line | text | gold | predicted | p(predicted) | p(gold) |")

    # The projector: its config names the checkpointed tensor and the metadata, one row per dev example.
    config = text_format.Parse((run / "logs" / "projector_config.pbtxt").read_text(), projector.ProjectorConfig())
    embedding = config.embeddings[0]
    vectors = tf.train.load_checkpoint(str(run / "logs")).get_tensor(embedding.tensor_name)
    assert vectors.shape == (24, 16) and np.isfinite(vectors).all() and vectors.std() > 0
    rows = (run / "logs" / embedding.metadata_path).read_text().splitlines()
    dev_rows = [line.split("\t") for line in (tmp_path / "dev.tsv").read_text().splitlines()[1:]]
    assert rows[0] == "label\ttext" and [r.split("\t") for r in rows[1:]] == dev_rows

    assert "." in logs.graph_runs()  # the op graph of the model's inference call
    nodes = {node.name for node in logs.multiplexer.Graph(".").node}
    assert any("bert_encoder" in name and "token_embedding" in name for name in nodes)
    traces = list((run / "logs" / "train" / "plugins" / "profile").glob("*/*.xplane.pb"))
    assert traces and traces[0].stat().st_size > 0

    # A later `evaluate` adds its own tables, at the run's step.
    assert main(["evaluate", "--model-dir", str(run), "--data", str(tmp_path / "train.tsv")]) == 0
    later = Logs(run / "logs").provider.read_tensors(CONTEXT, experiment_id=EXPERIMENT, plugin_name="text",
                                                      downsample=100)
    assert later["eval/train"]["predictions/samples"][-1].step == 12


def test_pretrain_writes_scalars_hparams_and_graph(tmp_path, vocab_file, capsys):
    data = write_pretraining_data(tmp_path, vocab_file)
    run = tmp_path / "pretrain"
    assert main(["pretrain", "--data", str(data), "--vocab", str(vocab_file), "--output-dir", str(run),
                 "--steps", "6", *TINY_MODEL, "--set", "pipeline.batch_size=4"]) == 0
    assert f"tensorboard --logdir {run / 'logs'}" in capsys.readouterr().out
    logs = Logs(run / "logs")
    scalars = logs.scalars()
    for tag in ("epoch_loss", "epoch_mlm_accuracy", "epoch_nsp_accuracy", "epoch_learning_rate",
                "epoch_examples_per_second"):
        assert tag in scalars["train"], tag
    assert {"final/mlm_accuracy", "final/mlm_loss", "final/nsp_accuracy", "final/loss"} <= set(scalars["."])
    values, end = logs.hparams()
    assert values["data.pretraining_data"] == str(data) and values["training.steps"] == 6
    assert end.status == api_pb2.STATUS_SUCCESS
    assert "." in logs.graph_runs()
    assert not (run / "logs" / "train" / "plugins").exists()  # no --profile, no trace


def test_prediction_tables_rank_the_worst_errors():
    labels = LabelVocab(["neg", "pos"])
    records = [Record("good", label="pos"), Record("bad | worse", label="neg"), Record("fine", label="pos")]
    predicted = {"ids": np.array([1, 1, 0]), "probabilities": np.array([[0.1, 0.9], [0.05, 0.95], [0.6, 0.4]])}
    tables = prediction_tables("classification", records, predicted, labels, gold_known=True)
    worst = tables["predictions/worst_errors"].splitlines()[2:]
    assert worst == ["| 2 | bad \\| worse | neg | pos | 0.950 | 0.050 |", "| 3 | fine | pos | neg | 0.600 | 0.400 |"]

    regression = [Record("a", label="1.0"), Record("b", label="0.0")]
    tables = prediction_tables("regression", regression, {"values": np.array([0.9, 2.0])}, None, True)
    assert tables["predictions/worst_errors"].splitlines()[2].startswith("| 2 | b | 0.0 | 2 | 2 |")

    sentences = [TokenRecord(["john", "ran"], ["B-PER", "O"]), TokenRecord(["new", "york"], ["B-LOC", "I-LOC"])]
    tagged = {"tags": [["B-PER", "O"], ["O", "B-PER"]]}
    tables = prediction_tables("token-classification", sentences, tagged, None, True)
    assert tables["predictions/worst_errors"].splitlines()[2:] == [
        "| 2 | 2 | new york | new: B-LOC→O, york: I-LOC→B-PER |"]
    assert tables["predictions/samples"].splitlines()[2] == "| 1 | john ran | john/B-PER | john/B-PER |"
    unlabelled = prediction_tables("token-classification", sentences, tagged, None, False)
    assert set(unlabelled) == {"predictions/samples"}

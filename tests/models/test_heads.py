"""Task heads: output shapes, tied MLM weights, and loss masks (ignored positions do not count)."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from tfpipe.models.backbone import BertEncoder
from tfpipe.models.classifier import SequenceClassifier
from tfpipe.models.pretrainer import BertPretrainer
from tfpipe.models.regressor import SequenceRegressor
from tfpipe.models.tagger import TokenTagger
from tfpipe.training.losses import SparseCrossEntropy


@pytest.fixture
def encoder():
    keras.mixed_precision.set_global_policy("float32")
    keras.utils.set_random_seed(0)
    return BertEncoder(vocabulary_size=40, num_layers=1, num_heads=2, hidden_dim=8, intermediate_dim=16,
                       max_sequence_length=16, dropout=0.0)


def _x(batch=3, seq=6):
    ids = np.random.RandomState(1).randint(5, 40, size=(batch, seq)).astype("int32")
    mask = np.ones_like(ids)
    mask[0, 4:] = 0
    return {"input_word_ids": ids, "input_mask": mask, "input_type_ids": np.zeros_like(ids)}


def test_head_output_shapes(encoder):
    x = _x()
    assert SequenceClassifier(encoder, 4)(x).shape == (3, 4)
    assert SequenceRegressor(encoder)(x).shape == (3,)
    assert TokenTagger(encoder, 5)(x).shape == (3, 6, 5)
    out = BertPretrainer(encoder)({**x, "masked_lm_positions": np.array([[1, 2]] * 3, "int32")})
    assert out["mlm"].shape == (3, 2, 40) and out["nsp"].shape == (3, 2)


def test_heads_round_trip_through_get_config(encoder):
    model = SequenceClassifier(encoder, 3)
    clone = SequenceClassifier.from_config(model.get_config())
    clone.set_weights(model.get_weights())
    np.testing.assert_allclose(clone(_x()), model(_x()), atol=1e-6)


def test_mean_pooling_averages_real_tokens_only(encoder):
    x = _x()
    model = SequenceClassifier(encoder, 2, dropout=0.0, pooling="mean")
    clone = SequenceClassifier.from_config(model.get_config())
    clone.set_weights(model.get_weights())
    assert clone.pooling == "mean"
    np.testing.assert_allclose(clone(x), model(x), atol=1e-6)
    sequence = encoder({"token_ids": x["input_word_ids"], "segment_ids": x["input_type_ids"],
                        "padding_mask": x["input_mask"]})["sequence_output"].numpy()
    mask = x["input_mask"][..., None]
    mean = (sequence * mask).sum(1) / mask.sum(1)
    kernel, bias = model.get_layer("logits").get_weights()
    np.testing.assert_allclose(model(x), mean @ kernel + bias, atol=1e-5)
    # Padding positions do not move a mean-pooled prediction.
    changed = {**x, "input_word_ids": x["input_word_ids"].copy()}
    changed["input_word_ids"][0, 4:] = 7
    np.testing.assert_allclose(model(changed)[0], model(x)[0], atol=1e-5)
    regressor = SequenceRegressor(encoder, dropout=0.0, pooling="mean")
    kernel, bias = regressor.get_layer("prediction").get_weights()
    np.testing.assert_allclose(regressor(x), (mean @ kernel + bias)[:, 0], atol=1e-5)
    with pytest.raises(ValueError, match="pooling: 'max' is not allowed"):
        SequenceClassifier(encoder, 2, pooling="max")


def test_mlm_head_is_tied_to_the_token_embedding(encoder):
    pretrainer = BertPretrainer(encoder)
    head = pretrainer.get_layer("mlm_head")
    assert head.token_embedding is encoder.token_embedding
    own = {v.path for v in head.weights}
    assert encoder.token_embedding.embeddings.path in own  # the output projection is the embedding matrix
    assert sum(int(np.prod(v.shape)) for v in head.weights if "embedding" not in v.path) < 40 * 8 + 200


def test_token_loss_ignores_zero_weight_positions(encoder):
    tagger = TokenTagger(encoder, 3)
    x = _x()
    logits = tagger(x)
    labels = np.random.RandomState(2).randint(0, 3, size=(3, 6))
    weights = np.zeros((3, 6), "float32")
    weights[:, 1] = 1.0  # only each sentence's first word piece counts
    loss = SparseCrossEntropy(3)
    base = float(loss(labels, logits, sample_weight=weights))
    changed = np.array(logits)
    changed[:, 2:] += 5.0  # change predictions on ignored pieces only
    assert float(loss(labels, changed, sample_weight=weights)) == pytest.approx(base, abs=1e-6)
    expected = float(np.mean([-np.log(np.exp(row[k]) / np.exp(row).sum())
                              for row, k in zip(np.asarray(logits)[:, 1], labels[:, 1])]))
    assert base == pytest.approx(expected, rel=1e-5)


def test_mlm_loss_ignores_padded_predictions(encoder):
    pretrainer = BertPretrainer(encoder)
    x = {**_x(), "masked_lm_positions": np.array([[1, 2, 0]] * 3, "int32")}
    logits = np.array(pretrainer(x)["mlm"])
    ids = np.array([[7, 8, 0]] * 3)
    weights = np.array([[1.0, 1.0, 0.0]] * 3, "float32")  # the third prediction slot is padding
    loss = SparseCrossEntropy(40)
    base = float(loss(ids, logits, sample_weight=weights))
    logits[:, 2] += np.random.RandomState(3).normal(size=(3, 40))
    assert float(loss(ids, logits, sample_weight=weights)) == pytest.approx(base, abs=1e-6)


def test_padding_mask_hides_padded_tokens(encoder):
    classifier = SequenceClassifier(encoder, 2)
    x = _x()
    before = np.asarray(classifier(x))[0]
    x["input_word_ids"] = x["input_word_ids"].copy()
    x["input_word_ids"][0, 4:] = 9  # different ids under the padding mask
    np.testing.assert_allclose(np.asarray(classifier(x))[0], before, atol=1e-6)

"""Each training option of TrainingConfig proves its effect on tiny models: gradient accumulation, freezing, LoRA,
LAMB, AdamW's weight-decay exclusions, the warmup/decay schedule, FGM and label smoothing."""

from __future__ import annotations

import functools
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfpipe.config.schemas import Config, TrainingConfig
from tfpipe.models.backbone import BertEncoder
from tfpipe.models.classifier import SequenceClassifier
from tfpipe.training.finetune import apply_freezing
from tfpipe.training.losses import SparseCrossEntropy
from tfpipe.training.optimizers import build_optimizer
from tfpipe.training.schedules import WarmupDecay

VOCAB, SEQ = 40, 6


@pytest.fixture(autouse=True)
def float32_policy():
    previous = keras.mixed_precision.global_policy().name
    keras.mixed_precision.set_global_policy("float32")
    keras.utils.set_random_seed(0)
    yield
    keras.mixed_precision.set_global_policy(previous)


def make_model(num_classes: int = 2) -> SequenceClassifier:
    encoder = BertEncoder(vocabulary_size=VOCAB, num_layers=2, num_heads=2, hidden_dim=8, intermediate_dim=16,
                          max_sequence_length=16, dropout=0.0)
    return SequenceClassifier(encoder, num_classes=num_classes, dropout=0.0)


def make_batch(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(5, VOCAB, size=(n, SEQ)).astype("int32")
    mask = np.ones((n, SEQ), "int32")
    mask[::2, -2:] = 0  # some padding
    ids[mask == 0] = 0
    types = np.zeros((n, SEQ), "int32")
    types[:, SEQ // 2:] = 1
    labels = rng.integers(0, 2, size=(n,)).astype("int32")
    return {"input_word_ids": ids, "input_mask": mask, "input_type_ids": types}, labels


def compile_model(model, optimizer, run_eagerly=False):
    # Graph mode (as `finetune` runs) where the step logic matters; eagerly where only its effect is checked
    # (tracing AdamW over 40 variables costs seconds on a small CPU).
    model.compile(optimizer=optimizer, loss=SparseCrossEntropy(2), jit_compile=False, run_eagerly=run_eagerly)


def weights_by_path(variables) -> dict[str, np.ndarray]:
    return {v.path: np.array(v.numpy()) for v in variables}


# --- gradient accumulation ---------------------------------------------------------------------------------

def _micro_batches(x, y, size=2):
    return [({k: v[i: i + size] for k, v in x.items()}, y[i: i + size]) for i in range(0, len(y), size)]


def _train_accumulated(model, x, y):
    for i, (part_x, part_y) in enumerate(_micro_batches(x, y)):
        before = model.get_weights()
        model.train_on_batch(part_x, part_y)
        if i < 3:  # nothing moves until the 4th micro-batch
            assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))


def test_sgd_accumulation_of_four_batches_equals_one_step_on_their_concatenation():
    settings = dict(optimizer="sgd", momentum=0.0, learning_rate=0.1, warmup_ratio=0.0, decay="constant")
    x, y = make_batch(8)
    big = make_model()
    compile_model(big, build_optimizer(TrainingConfig(**settings), 10))
    accumulated = make_model()
    accumulated.set_weights(big.get_weights())
    compile_model(accumulated, build_optimizer(TrainingConfig(**settings, gradient_accumulation_steps=4), 40))
    initial = big.get_weights()

    big.train_on_batch(x, y)
    _train_accumulated(accumulated, x, y)

    moved = max(float(np.abs(a - b).max()) for a, b in zip(initial, big.get_weights()))
    assert moved > 1e-3  # the step did something
    for v, a, b in zip(big.weights, big.get_weights(), accumulated.get_weights()):
        np.testing.assert_allclose(b, a, rtol=0, atol=1e-6, err_msg=v.path)


ADAMW = dict(optimizer="adamw", learning_rate=1e-2, weight_decay=0.01, warmup_ratio=0.0, decay="constant")
# Embedding lookups whose gradient reaches the optimizer as tf.IndexedSlices with repeated rows.


@functools.lru_cache(maxsize=1)
def _adamw_runs():
    """AdamW from the same weights: 4 accumulated batches of 2, one fit step on the 8, and the definition (one
    step on the dense gradient of the 8, applied by a fresh optimizer)."""
    keras.utils.set_random_seed(0)
    x, y = make_batch(8)
    reference = make_model()
    initial = reference.get_weights()
    runs = {"initial": initial}
    for name in ("accumulated", "fit"):
        model = make_model()
        model.set_weights(initial)
        steps = 4 if name == "accumulated" else 1
        compile_model(model, build_optimizer(TrainingConfig(**ADAMW, gradient_accumulation_steps=steps), 10),
                      run_eagerly=True)
        if name == "accumulated":
            _train_accumulated(model, x, y)
        else:
            model.train_on_batch(x, y)
        runs[name] = model.get_weights()
    with tf.GradientTape() as tape:
        loss = SparseCrossEntropy(2)(y, reference(x, training=True))
    dense = [tf.convert_to_tensor(g) for g in tape.gradient(loss, reference.trainable_variables)]
    build_optimizer(TrainingConfig(**ADAMW), 10).apply_gradients(zip(dense, reference.trainable_variables))
    runs["dense"] = reference.get_weights()
    runs["paths"] = [v.path for v in reference.weights]
    return runs


def test_adamw_accumulation_equals_the_one_step_definition():
    runs = _adamw_runs()
    moved = max(float(np.abs(a - b).max()) for a, b in zip(runs["initial"], runs["dense"]))
    assert moved > 1e-3
    for path, a, b in zip(runs["paths"], runs["dense"], runs["accumulated"]):
        np.testing.assert_allclose(b, a, rtol=0, atol=1e-6, err_msg=path)


def test_adamw_accumulation_equals_the_fit_step_on_the_big_batch():
    # Keras's Adam squares IndexedSlices gradients slice by slice (wrong for repeated tokens); TaskModel's step
    # hands the optimizer dense gradients, so the fit step matches accumulation on the embedding tables too.
    runs = _adamw_runs()
    for path, a, b in zip(runs["paths"], runs["fit"], runs["accumulated"]):
        np.testing.assert_allclose(b, a, rtol=0, atol=1e-6, err_msg=path)


# --- freezing ----------------------------------------------------------------------------------------------

def _train_a_few_steps(model, steps: int = 3, learning_rate: float = 1e-2):
    settings = TrainingConfig(learning_rate=learning_rate, warmup_ratio=0.0, decay="constant")
    compile_model(model, build_optimizer(settings, steps), run_eagerly=True)
    x, y = make_batch(8, seed=1)
    for _ in range(steps):
        model.train_on_batch(x, y)


def test_freeze_embeddings_and_lowest_layer():
    model = make_model()
    apply_freezing(model, Config(training=TrainingConfig(freeze_embeddings=True, freeze_layers=1)))
    encoder = model.encoder
    frozen_layers = [encoder.token_embedding, encoder.position_embedding, encoder.segment_embedding,
                     encoder.embeddings_layer_norm, encoder.transformer_layers[0]]
    frozen = {v.path for layer in frozen_layers for v in layer.weights}
    assert not frozen & {v.path for v in model.trainable_variables}
    before = weights_by_path(model.weights)

    _train_a_few_steps(model)

    after = weights_by_path(model.weights)
    for path in frozen:
        assert np.array_equal(before[path], after[path]), path
    second_layer = [v.path for v in encoder.transformer_layers[1].weights if v.name == "kernel"]
    head = [v.path for v in model.get_layer("logits").weights]
    assert len(second_layer) == 6 and len(head) == 2
    for path in second_layer + head:
        assert not np.array_equal(before[path], after[path]), path


def test_freeze_layers_above_depth_is_rejected():
    with pytest.raises(ValueError, match="freeze_layers=3"):
        apply_freezing(make_model(), Config(training=TrainingConfig(freeze_layers=3)))


# --- LoRA --------------------------------------------------------------------------------------------------

def _lora_model():
    model = make_model()
    x, _ = make_batch(4, seed=2)
    original_logits = model.predict_on_batch(x)
    apply_freezing(model, Config(training=TrainingConfig(lora_rank=2)))
    return model, x, original_logits


def test_lora_trains_adapters_and_keeps_the_backbone_kernels(tmp_path):
    model, x, original_logits = _lora_model()
    trainable = {v.path for v in model.trainable_variables}
    lora = {p for p in trainable if "lora" in p}
    assert len(lora) == 8  # a and b of query and value in 2 layers
    assert {"logits/kernel", "logits/bias"} <= trainable
    before = weights_by_path(model.weights)

    _train_a_few_steps(model, steps=4)

    after = weights_by_path(model.weights)
    for path in before:
        if "lora" not in path and not path.startswith("logits/") and not path.endswith("/bias"):
            assert np.array_equal(before[path], after[path]), path
    for path in lora:
        assert not np.array_equal(before[path], after[path]), path
    lora_logits = model.predict_on_batch(x)
    assert np.abs(lora_logits - original_logits).max() > 1e-4

    # Keras merges the adapters into the kernels when saving: a model without LoRA loads the same function.
    model.save_weights(str(tmp_path / "lora.weights.h5"))
    fresh = make_model()
    fresh.load_weights(str(tmp_path / "lora.weights.h5"))
    assert not any("lora" in v.path for v in fresh.weights)
    np.testing.assert_allclose(fresh.predict_on_batch(x), lora_logits, rtol=0, atol=1e-5)


def test_lora_leaves_only_adapters_and_head_trainable():
    model, _, _ = _lora_model()
    trainable = {v.path for v in model.trainable_variables}
    assert trainable == {p for p in trainable if "lora" in p} | {"logits/kernel", "logits/bias"}
    before = weights_by_path(model.encoder.weights)
    _train_a_few_steps(model, steps=4)
    after = weights_by_path(model.encoder.weights)
    for path in before:
        if "lora" not in path:
            assert np.array_equal(before[path], after[path]), path


# --- LAMB --------------------------------------------------------------------------------------------------

def _lamb_step_numpy(w, g, lr, beta_1, beta_2, epsilon):
    m = (1 - beta_1) * g
    v = (1 - beta_2) * g * g
    m_hat, v_hat = m / (1 - beta_1), v / (1 - beta_2)
    r = m_hat / (np.sqrt(v_hat) + epsilon)
    w_norm, r_norm = np.linalg.norm(w), np.linalg.norm(r)
    trust = w_norm / r_norm if w_norm > 0 and r_norm > 0 else 1.0
    return w - lr * trust * r, trust


@pytest.mark.parametrize("initial", [[3.0, 4.0, 0.0, -1.0], [0.0, 0.0, 0.0, 0.0]])
def test_lamb_step_matches_definition(initial):
    lr = 0.01
    w0 = np.array(initial, "float32")
    g = np.array([0.5, -2e-3, 1.0, 3e-7], "float32")
    optimizer = build_optimizer(TrainingConfig(optimizer="lamb", learning_rate=lr, weight_decay=0.0, warmup_ratio=0,
                                               decay="constant"), 10)
    assert isinstance(optimizer, keras.optimizers.Lamb)
    variable = keras.Variable(w0)
    optimizer.apply_gradients([(tf.constant(g), variable)])
    expected, trust = _lamb_step_numpy(w0.astype("float64"), g.astype("float64"), lr, optimizer.beta_1,
                                       optimizer.beta_2, optimizer.epsilon)
    np.testing.assert_allclose(variable.numpy(), expected, rtol=1e-6, atol=1e-7)

    adam = keras.optimizers.Adam(learning_rate=lr, epsilon=optimizer.epsilon)
    adam_variable = keras.Variable(w0)
    adam.apply_gradients([(tf.constant(g), adam_variable)])
    if np.any(w0):
        assert trust > 2  # ||w|| = sqrt(26) against ||r|| < 2
        assert np.abs(variable.numpy() - adam_variable.numpy()).max() > 1e-2  # the trust ratio scales the step
    else:  # ||w|| = 0: trust ratio 1, a plain step of lr * r (checked against the definition above)
        assert trust == 1.0
        assert np.abs(variable.numpy()).max() == pytest.approx(lr, rel=1e-3)


# --- AdamW decay exclusions --------------------------------------------------------------------------------

@pytest.mark.parametrize("optimizer_name", ["adamw", "lamb"])
def test_weight_decay_skips_bias_and_layer_norm(optimizer_name):
    inputs = keras.Input((4,))
    outputs = keras.layers.LayerNormalization(name="norm")(keras.layers.Dense(3, name="dense")(inputs))
    model = keras.Model(inputs, outputs)
    for v in model.weights:  # non-zero everywhere, so decay would show on every variable
        v.assign(np.random.default_rng(0).uniform(0.5, 1.5, v.shape).astype("float32"))
    before = weights_by_path(model.weights)
    optimizer = build_optimizer(TrainingConfig(optimizer=optimizer_name, learning_rate=0.1, weight_decay=0.1,
                                               warmup_ratio=0.0, decay="constant"), 10)
    optimizer.apply_gradients([(tf.zeros_like(v.value), v) for v in model.trainable_variables])
    after = weights_by_path(model.weights)
    assert set(after) == {"dense/kernel", "dense/bias", "norm/gamma", "norm/beta"}
    np.testing.assert_allclose(after["dense/kernel"], before["dense/kernel"] * (1 - 0.1 * 0.1), rtol=1e-6)
    for path in ("dense/bias", "norm/gamma", "norm/beta"):
        assert np.array_equal(after[path], before[path]), path


# --- schedule ----------------------------------------------------------------------------------------------

def _values(schedule, steps):
    return [float(schedule(s)) for s in steps]


def test_warmup_then_linear_decay():
    schedule = WarmupDecay(1.0, total_steps=10, warmup_steps=4, decay="linear")
    # warmup: peak * (step + 1) / warmup_steps
    assert _values(schedule, range(4)) == pytest.approx([0.25, 0.5, 0.75, 1.0])
    # decay over the 6 remaining steps to 0 at total_steps, and 0 beyond
    assert _values(schedule, [4, 5, 7, 10, 13]) == pytest.approx([1.0, 5 / 6, 0.5, 0.0, 0.0])


def test_cosine_decay_midpoint_and_constant():
    cosine = WarmupDecay(2.0, total_steps=12, warmup_steps=2, decay="cosine")
    assert _values(cosine, [0, 1, 2, 7, 12]) == pytest.approx([1.0, 2.0, 2.0, 1.0, 0.0], abs=1e-6)
    assert float(cosine(4.5)) == pytest.approx(1.0 + math.cos(math.pi / 4), abs=1e-6)
    assert _values(WarmupDecay(3e-4, 100, 0, "constant"), [0, 50, 100]) == pytest.approx([3e-4] * 3)
    with pytest.raises(ValueError, match="decay"):
        WarmupDecay(1.0, 10, decay="step")


def test_build_optimizer_schedule_uses_warmup_ratio():
    optimizer = build_optimizer(TrainingConfig(learning_rate=1.0, warmup_ratio=0.2, decay="linear"), 20)
    # 4 warmup steps, then linear decay over 16 steps to 0 at step 20
    rates = []
    for step in (0, 3, 12, 20):
        optimizer.iterations.assign(step)
        rates.append(float(optimizer.learning_rate))
    assert rates == pytest.approx([0.25, 1.0, 0.5, 0.0])


# --- FGM ---------------------------------------------------------------------------------------------------

def _expected_fgm_step(model, x, y, epsilon, lr):
    variables = model.trainable_variables
    embeddings = model.encoder.token_embedding.embeddings
    index = next(i for i, v in enumerate(variables) if v is embeddings)
    theta = [np.array(v.numpy(), "float64") for v in variables]
    loss_fn = SparseCrossEntropy(2)

    def gradients():
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
        return [np.array(tf.convert_to_tensor(g).numpy(), "float64") for g in tape.gradient(loss, variables)]

    g1 = gradients()
    total = g1
    if epsilon:
        g_e = g1[index]
        r = epsilon * g_e / np.linalg.norm(g_e)
        embeddings.assign((theta[index] + r).astype("float32"))
        g2 = gradients()
        embeddings.assign(theta[index].astype("float32"))
        total = [a + b for a, b in zip(g1, g2)]
    return [t - lr * g for t, g in zip(theta, total)], [t - lr * g for t, g in zip(theta, g1)]


@pytest.mark.parametrize("epsilon", [0.0, 1.0])
def test_fgm_step_matches_two_gradient_definition(epsilon):
    lr = 1.0
    model = make_model()
    model.fgm_epsilon = epsilon
    compile_model(model, keras.optimizers.SGD(learning_rate=lr, momentum=0.0))
    x, y = make_batch(4, seed=3)
    expected, plain = _expected_fgm_step(model, x, y, epsilon, lr)

    model.train_on_batch(x, y)

    actual = [v.numpy() for v in model.trainable_variables]
    for v, a, e in zip(model.trainable_variables, actual, expected):
        np.testing.assert_allclose(a, e, rtol=0, atol=1e-5, err_msg=v.path)
    difference = max(float(np.abs(a - p).max()) for a, p in zip(actual, plain))
    if epsilon:
        assert difference > 1e-3  # the adversarial gradient changed the step
    else:
        assert difference < 1e-5


# --- label smoothing and sample weights --------------------------------------------------------------------

def test_label_smoothing_matches_keras_categorical_crossentropy():
    rng = np.random.default_rng(4)
    logits = rng.normal(size=(6, 3)).astype("float32")
    labels = np.array([0, 1, 2, 2, 1, 0])
    ours = SparseCrossEntropy(num_classes=3, label_smoothing=0.1)(labels, logits)
    reference = keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1)(
        np.eye(3, dtype="float32")[labels], logits)
    assert float(ours) == pytest.approx(float(reference), rel=1e-6)
    assert float(ours) != pytest.approx(float(SparseCrossEntropy(3)(labels, logits)), rel=1e-3)


def test_zero_sample_weights_exclude_positions():
    rng = np.random.default_rng(5)
    logits = rng.normal(size=(2, 4, 3)).astype("float32")  # token-level: [batch, seq, classes]
    labels = rng.integers(0, 3, size=(2, 4))
    weights = np.array([[1, 1, 0, 0], [1, 0, 0, 0]], "float32")
    loss = SparseCrossEntropy(3)
    per_position = keras.losses.categorical_crossentropy(np.eye(3, dtype="float32")[labels], logits,
                                                         from_logits=True).numpy()
    expected = per_position[weights == 1].mean()  # mean over the 3 weighted positions, not over 8
    assert float(loss(labels, logits, sample_weight=weights)) == pytest.approx(expected, rel=1e-6)
    # What sits at ignored positions does not matter.
    changed = labels.copy()
    changed[weights == 0] = (changed[weights == 0] + 1) % 3
    assert float(loss(changed, logits, sample_weight=weights)) == pytest.approx(expected, rel=1e-6)
    # Non-binary weights: sum(w * l) / sum(w).
    w = np.array([[2, 1, 0, 0], [1, 0, 0, 3]], "float32")
    assert float(loss(labels, logits, sample_weight=w)) == pytest.approx((per_position * w).sum() / w.sum(),
                                                                         rel=1e-6)

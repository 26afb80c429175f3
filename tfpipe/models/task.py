"""Base class of tfpipe's task models: a Keras functional model with its own training step.

The step differs from Keras's in three ways:
- sparse (IndexedSlices) gradients are made dense before the optimizer sees them: Keras's Adam/AdamW square each
  slice before repeated rows are summed, so a token occurring twice in a batch got the wrong second moment;
- optional FGM (Miyato et al., 2017): perturb the word embeddings along their loss gradient, `r = ε·g/‖g‖`,
  compute the loss again and add that gradient, `∇θ L(θ) + ∇θ L(θ; E + r)`;
- under MultiWorkerMirroredStrategy, logged scalars are returned as `[1]` tensors, since Keras averages them
  across workers along axis 0.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras.src.losses import loss as loss_module
from keras.src.trainers.data_adapters import data_adapter_utils


def _dense(gradient):
    return tf.convert_to_tensor(gradient) if isinstance(gradient, tf.IndexedSlices) else gradient


class TaskModel(keras.Model):
    """A functional model with an `encoder` attribute, dense embedding gradients and optional FGM."""

    fgm_epsilon: float = 0.0
    _config_keys: tuple[str, ...] = ()  # constructor arguments besides the encoder, for get_config

    def get_config(self) -> dict:
        return {"encoder": keras.saving.serialize_keras_object(self.encoder), "name": self.name,
                **{key: getattr(self, key) for key in self._config_keys}}

    @classmethod
    def from_config(cls, config: dict):
        config = dict(config)
        config["encoder"] = keras.saving.deserialize_keras_object(config["encoder"])
        return cls(**config)

    def _multi_worker(self) -> bool:
        strategy = getattr(self, "_distribute_strategy", None)
        return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and \
            strategy.extended._in_multi_worker_mode()

    def _logs(self, logs: dict) -> dict:
        return {k: tf.reshape(v, [1]) for k, v in logs.items()} if self._multi_worker() else logs

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # Keras averages a first distributed batch across replicas just to learn its shapes, which fails for
        # dict inputs under MultiWorkerMirroredStrategy; one replica's batch has the same shapes.
        if iterator is not None and data_batch is None and getattr(self, "_distribute_strategy", None):
            strategy = self.distribute_strategy
            for _, _, it in iterator:
                batch = next(it)
                data_batch = tf.nest.map_structure(
                    lambda v: strategy.experimental_local_results(v)[0]
                    if isinstance(v, tf.distribute.DistributedValues) else v, batch)
                break
            iterator = None
        return super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)

    def _scaled_loss(self, x, y, sample_weight):
        y_pred = self(x, training=True)
        loss = self.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=True)
        return y_pred, loss, self.optimizer.scale_loss(loss)

    def train_step(self, data):
        x, y, sample_weight = data_adapter_utils.unpack_x_y_sample_weight(data)
        variables = list(self.trainable_variables)
        embeddings = self.encoder.token_embedding.embeddings
        fgm = bool(self.fgm_epsilon)
        sources = variables + ([embeddings] if fgm and not any(v is embeddings for v in variables) else [])
        with tf.GradientTape() as tape:
            if fgm:
                tape.watch(embeddings.value)
            y_pred, loss, scaled = self._scaled_loss(x, y, sample_weight)
        grads = [_dense(g) for g in tape.gradient(scaled, sources)]
        if fgm:
            g = tf.cast(grads[next(i for i, v in enumerate(sources) if v is embeddings)], tf.float32)
            perturbation = tf.cast(self.fgm_epsilon * g / (tf.norm(g) + 1e-12), embeddings.dtype)
            embeddings.assign_add(perturbation)
            with tf.GradientTape() as tape:
                _, _, adversarial = self._scaled_loss(x, y, sample_weight)
            adv_grads = [_dense(g) for g in tape.gradient(adversarial, variables)]
            embeddings.assign_sub(perturbation)
            grads = [a if b is None else (b if a is None else a + b) for a, b in zip(grads[: len(variables)],
                                                                                      adv_grads)]
        self.optimizer.apply_gradients(zip(grads, variables))
        batch = tf.shape(next(t for t in tf.nest.flatten(x) if t is not None))[0]
        self._loss_tracker.update_state(loss_module.unscale_loss_for_distribution(loss), sample_weight=batch)
        return self._logs(self.compute_metrics(x, y, y_pred, sample_weight=sample_weight))

    def test_step(self, data):
        return self._logs(super().test_step(data))

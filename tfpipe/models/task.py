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

from tfpipe.models.keras_compat import ReplicaBatchBuildModel, loss_tracker, unscale_loss_for_distribution


def _dense(gradient):
    return tf.convert_to_tensor(gradient) if isinstance(gradient, tf.IndexedSlices) else gradient


class TaskModel(ReplicaBatchBuildModel):
    """A functional model with an `encoder` attribute, dense embedding gradients and optional FGM (built from one
    replica's first batch under a strategy: `keras_compat.ReplicaBatchBuildModel`)."""

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
        strategy = self.distribute_strategy
        if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
            return False
        # More than one worker in its cluster (as TensorFlow counts them: the chief and the workers).
        cluster = strategy.cluster_resolver.cluster_spec().as_dict()
        return len(cluster.get("chief", [])) + len(cluster.get("worker", [])) > 1

    def _logs(self, logs: dict) -> dict:
        return {k: tf.reshape(v, [1]) for k, v in logs.items()} if self._multi_worker() else logs

    def _scaled_loss(self, x, y, sample_weight):
        y_pred = self(x, training=True)
        loss = self.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=True)
        return y_pred, loss, self.optimizer.scale_loss(loss)

    def train_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
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
        loss_tracker(self).update_state(unscale_loss_for_distribution(loss), sample_weight=batch)
        return self._logs(self.compute_metrics(x, y, y_pred, sample_weight=sample_weight))

    def test_step(self, data):
        return self._logs(super().test_step(data))

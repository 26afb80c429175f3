"""Base class of tfpipe's task models: a Keras functional model whose training step can add FGM.

FGM (Miyato et al., 2017) perturbs the word embeddings along their loss gradient, `r = ε·g/‖g‖`, computes the loss
again and adds that gradient: `∇θ L(θ) + ∇θ L(θ; E + r)`. With `fgm_epsilon=0` the step is Keras's own.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras.src.trainers.data_adapters import data_adapter_utils


class TaskModel(keras.Model):
    """A functional model with an `encoder` attribute and optional FGM adversarial training."""

    fgm_epsilon: float = 0.0

    def _loss(self, x, y, sample_weight):
        y_pred = self(x, training=True)
        loss = self.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=True)
        return y_pred, loss

    def train_step(self, data):
        if not self.fgm_epsilon:
            return super().train_step(data)
        x, y, sample_weight = data_adapter_utils.unpack_x_y_sample_weight(data)
        embeddings = self.encoder.token_embedding.embeddings
        variables = list(self.trainable_variables)
        sources = variables if any(v is embeddings for v in variables) else variables + [embeddings]
        with tf.GradientTape() as tape:
            tape.watch(embeddings.value)
            y_pred, loss = self._loss(x, y, sample_weight)
            scaled = self.optimizer.scale_loss(loss)
        grads = tape.gradient(scaled, sources)
        index = next(i for i, v in enumerate(sources) if v is embeddings)
        g = tf.convert_to_tensor(grads[index])
        g = tf.cast(g, tf.float32)
        perturbation = self.fgm_epsilon * g / (tf.norm(g) + 1e-12)
        embeddings.assign_add(tf.cast(perturbation, embeddings.dtype))
        with tf.GradientTape() as tape:
            _, adversarial = self._loss(x, y, sample_weight)
            adversarial = self.optimizer.scale_loss(adversarial)
        adv_grads = tape.gradient(adversarial, variables)
        embeddings.assign_sub(tf.cast(perturbation, embeddings.dtype))
        total = [a if b is None else (b if a is None else tf.convert_to_tensor(a) + tf.convert_to_tensor(b))
                 for a, b in zip(grads[: len(variables)], adv_grads)]
        self.optimizer.apply_gradients(zip(total, variables))
        batch = tf.shape(next(t for t in tf.nest.flatten(x) if t is not None))[0]
        self._loss_tracker.update_state(loss, sample_weight=batch)
        return self.compute_metrics(x, y, y_pred, sample_weight=sample_weight)

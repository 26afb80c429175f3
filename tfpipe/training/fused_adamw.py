"""AdamW whose Adam update runs as TensorFlow's fused `ResourceApplyAdam` kernel.

Keras's Adam updates each variable with eight separate element-wise ops (each a full pass over the variable and
its two moments); for a BERT model on a CPU, half of whose weights are the word embedding, that dense update was
a fifth of a fine-tuning step. `ResourceApplyAdam` does the same arithmetic in one kernel,

    alpha = lr · sqrt(1 - β2^t) / (1 - β1^t);  m += (g - m)(1 - β1);  v += (g² - v)(1 - β2);
    var -= alpha · m / (sqrt(v) + ε)

— exactly Keras's `Adam.update_step` — so the weights match Keras's AdamW to float rounding. Weight decay stays
Keras's (decoupled, before the update, skipping the excluded variables). Variables held by a distribution
strategy, AMSGrad and non-TensorFlow backends take Keras's own path.
"""

from __future__ import annotations

import keras
import tensorflow as tf


def _plain(variable) -> bool:
    """A single-device TensorFlow resource variable (not a strategy's mirrored or sync-on-read one)."""
    value = getattr(variable, "value", variable)
    return isinstance(value, tf.Variable) and not isinstance(value, tf.distribute.DistributedValues) \
        and hasattr(value, "handle")


@keras.saving.register_keras_serializable(package="tfpipe")
class FusedAdamW(keras.optimizers.AdamW):
    """`keras.optimizers.AdamW` with the Adam step fused into one kernel per variable (same arguments).

    Examples:
    >>> import numpy as np
    >>> fused, plain = keras.Variable(np.ones(4, "float32")), keras.Variable(np.ones(4, "float32"))
    >>> grad = np.array([0.1, -0.2, 0.3, 0.0], "float32")
    >>> FusedAdamW(learning_rate=0.1, weight_decay=0.01).apply([grad], [fused])
    >>> keras.optimizers.AdamW(learning_rate=0.1, weight_decay=0.01).apply([grad], [plain])
    >>> bool(np.allclose(fused.numpy(), plain.numpy(), atol=1e-7))
    True
    """

    def update_step(self, gradient, variable, learning_rate):
        m = self._momentums[self._get_variable_index(variable)]
        v = self._velocities[self._get_variable_index(variable)]
        if self.amsgrad or keras.backend.backend() != "tensorflow" or not all(map(_plain, (variable, m, v))):
            return super().update_step(gradient, variable, learning_rate)
        dtype = variable.dtype
        step = tf.cast(self.iterations + 1, dtype)
        beta_1, beta_2 = tf.cast(self.beta_1, dtype), tf.cast(self.beta_2, dtype)
        variable = getattr(variable, "value", variable)
        tf.raw_ops.ResourceApplyAdam(
            var=variable.handle, m=m.value.handle, v=v.value.handle,
            beta1_power=tf.pow(beta_1, step), beta2_power=tf.pow(beta_2, step), lr=tf.cast(learning_rate, dtype),
            beta1=beta_1, beta2=beta_2, epsilon=tf.cast(self.epsilon, dtype), grad=tf.cast(gradient, dtype),
            use_locking=False)

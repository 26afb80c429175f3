"""Learning-rate schedules: linear warmup to the peak, then linear or cosine decay to zero (or constant)."""

from __future__ import annotations

import math

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="tfpipe")
class WarmupDecay(keras.optimizers.schedules.LearningRateSchedule):
    """`peak * step/warmup` for the first `warmup_steps`, then decay to 0 at `total_steps`.

    Args:
        peak: the learning rate reached at the end of warmup.
        total_steps: optimizer steps in the whole run (batches, counting accumulation micro-steps).
        warmup_steps: steps of linear warmup.
        decay: `"linear"`, `"cosine"` or `"constant"`.

    Examples:
    >>> schedule = WarmupDecay(1.0, total_steps=10, warmup_steps=2)
    >>> [round(float(schedule(s)), 3) for s in (0, 1, 2, 6, 10)]
    [0.5, 1.0, 1.0, 0.5, 0.0]
    """

    def __init__(self, peak: float, total_steps: int, warmup_steps: int = 0, decay: str = "linear") -> None:
        if decay not in ("linear", "cosine", "constant"):
            raise ValueError(f"decay: {decay!r} is not allowed; allowed values: linear, cosine, constant")
        self.peak, self.total_steps, self.warmup_steps, self.decay = peak, max(1, total_steps), warmup_steps, decay

    def __call__(self, step):
        step = ops.cast(step, "float32")
        warmup = float(max(1, self.warmup_steps))
        rising = self.peak * ops.minimum(1.0, (step + 1.0) / warmup)
        if self.decay == "constant":
            return rising if self.warmup_steps else ops.full_like(step, self.peak)
        span = float(max(1, self.total_steps - self.warmup_steps))
        progress = ops.clip((step - self.warmup_steps) / span, 0.0, 1.0)
        if self.decay == "linear":
            falling = self.peak * (1.0 - progress)
        else:
            falling = self.peak * 0.5 * (1.0 + ops.cos(math.pi * progress))
        return ops.where(step < self.warmup_steps, rising, falling)

    def get_config(self) -> dict:
        return {"peak": self.peak, "total_steps": self.total_steps, "warmup_steps": self.warmup_steps,
                "decay": self.decay}

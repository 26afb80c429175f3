"""Optimizers from config: AdamW (no decay on LayerNorm and biases), LAMB, SGD, with clipping and accumulation."""

from __future__ import annotations

import keras

from tfpipe.config.schemas import TrainingConfig
from tfpipe.training.schedules import WarmupDecay

# Variables that never get weight decay, as in BERT: LayerNorm scales/offsets and every bias.
NO_DECAY = ["bias", "gamma", "beta"]


def build_optimizer(config: TrainingConfig, total_steps: int) -> keras.optimizers.Optimizer:
    """The configured optimizer with a warmup + decay schedule over `total_steps` batches."""
    schedule = WarmupDecay(config.learning_rate, total_steps, int(round(config.warmup_ratio * total_steps)),
                           config.decay)
    common = {"learning_rate": schedule, "clipnorm": config.clipnorm}
    if config.gradient_accumulation_steps > 1:
        common["gradient_accumulation_steps"] = config.gradient_accumulation_steps
    if config.optimizer == "adamw":
        optimizer = keras.optimizers.AdamW(weight_decay=config.weight_decay, epsilon=1e-6, **common)
        optimizer.exclude_from_weight_decay(var_names=NO_DECAY)
    elif config.optimizer == "lamb":
        optimizer = keras.optimizers.Lamb(epsilon=1e-6, **common)
        if config.weight_decay:
            optimizer.weight_decay = config.weight_decay
            optimizer.exclude_from_weight_decay(var_names=NO_DECAY)
    else:
        optimizer = keras.optimizers.SGD(momentum=config.momentum, **common)
    return optimizer

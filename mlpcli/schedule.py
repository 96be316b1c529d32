"""Learning-rate schedules: a pure function of the step, so a resumed run sees the same rates."""

from __future__ import annotations

import math

from mlpcli.config import ScheduleConfig


def learning_rate(cfg: ScheduleConfig, base_lr: float, step: int, steps_per_epoch: int, epochs: int) -> float:
    """The learning rate for global step (0-based) of a run of epochs x steps_per_epoch steps."""
    total = max(epochs * steps_per_epoch, 1)
    warmup = int(round(cfg.warmup_epochs * steps_per_epoch))
    if step < warmup:
        return base_lr * (step + 1) / warmup
    if cfg.name == "constant":
        return base_lr
    if cfg.name == "step":
        return base_lr * cfg.gamma ** (step // (cfg.step_size * steps_per_epoch))
    progress = (step - warmup) / max(total - warmup, 1)
    return cfg.min_lr + (base_lr - cfg.min_lr) * 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))

"""Learning-rate schedules: pure functions of the step, so a resumed run sees the same rates."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any


def _constant(cfg: Any, base_lr: float, step: int, steps_per_epoch: int, total: int, warmup: int) -> float:
    return base_lr


def _step(cfg: Any, base_lr: float, step: int, steps_per_epoch: int, total: int, warmup: int) -> float:
    return base_lr * cfg.gamma ** (step // (cfg.step_size * steps_per_epoch))


def _cosine(cfg: Any, base_lr: float, step: int, steps_per_epoch: int, total: int, warmup: int) -> float:
    progress = (step - warmup) / max(total - warmup, 1)
    return cfg.min_lr + (base_lr - cfg.min_lr) * 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))


# The schedule registry: config name -> rate after warm-up.
SCHEDULES: dict[str, Callable[[Any, float, int, int, int, int], float]] = {
    "constant": _constant,
    "step": _step,
    "cosine": _cosine,
}


def learning_rate(cfg: Any, base_lr: float, step: int, steps_per_epoch: int, epochs: int) -> float:
    """The learning rate for global step (0-based) of a run of epochs x steps_per_epoch steps.

    cfg: the config's `schedule` section (name, warmup_epochs, step_size, gamma, min_lr).
    """
    total = max(epochs * steps_per_epoch, 1)
    warmup = int(round(cfg.warmup_epochs * steps_per_epoch))
    if step < warmup:
        return base_lr * (step + 1) / warmup
    return SCHEDULES[cfg.name](cfg, base_lr, step, steps_per_epoch, total, warmup)

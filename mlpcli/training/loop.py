"""fit(): the training loop. Flat and silent: it emits events and returns a History.

One step, one path: the schedule's rate to the optimizer, forward, the loss's delta (times what
the optimizer asks the gradients to carry: the rate itself when it folds it, train.fused),
backward, the optimizer's weight decay and update, (max-norm).
Everything a run saves to resume exactly lives in LoopState.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mlpcli.config import EarlyStoppingConfig, ExperimentConfig, ScheduleConfig
from mlpcli.data.batches import BatchStream, Split
from mlpcli.errors import TrainingDiverged
from mlpcli.events import BatchEnd, Callback, EpochEnd, EpochStart, History, TrainStart, emit
from mlpcli.inference.metrics import evaluate_arrays
from mlpcli.lecture.diagnostics import layer_diagnostics
from mlpcli.nn.losses import get_loss
from mlpcli.nn.mlp import MLP
from mlpcli.nn.optimizers import Optimizer
from mlpcli.nn.schedules import learning_rate

log = logging.getLogger(__name__)


@dataclass
class LoopState:
    """What a resumed run needs besides parameters, optimizer state and the batch stream's generator.

    rng shuffles and draws dropout masks (augmentation has its own, in the batch stream).
    """

    rng: np.random.Generator
    epoch: int = 0  # epochs completed
    best_value: float | None = None
    best_epoch: int | None = None
    bad_epochs: int = 0
    history: History = field(default_factory=History)


@dataclass(frozen=True)
class LoopSettings:
    """How to train: epochs, the learning-rate schedule, the loss and regularizers, what to monitor."""

    epochs: int
    schedule: ScheduleConfig
    loss: str = "cross_entropy"
    label_smoothing: float = 0.0
    max_norm: float = 0.0
    early_stopping: EarlyStoppingConfig | None = None
    monitor: str = "val_loss"
    diagnostics: bool = False
    validation: Split | None = None
    fused: bool = True  # take the fused step where it supports the run

    @property
    def higher_is_better(self) -> bool:
        """Whether the monitored metric improves upwards (accuracies) or downwards (losses)."""
        return self.monitor.endswith("accuracy")

    @classmethod
    def from_config(cls, cfg: ExperimentConfig, validation: Split | None) -> LoopSettings:
        """The loop settings of an experiment config, validating on `validation` when it has rows."""
        has_val = validation is not None and len(validation) > 0
        es = cfg.train.early_stopping
        return cls(
            epochs=cfg.train.epochs,
            schedule=cfg.schedule,
            loss=cfg.loss,
            label_smoothing=cfg.label_smoothing,
            max_norm=cfg.model.max_norm,
            early_stopping=es,
            monitor=es.metric if es is not None else ("val_loss" if has_val else "train_loss"),
            diagnostics=cfg.train.diagnostics,
            validation=validation if has_val else None,
            fused=cfg.train.fused,
        )


def step_path(optimizer: Optimizer, settings: LoopSettings) -> str:
    """Which training step fit() takes: "fused" (the rate folded into the gradients), or "plain" with the reason."""
    if not settings.fused:
        return "plain (train.fused is off)"
    if not optimizer.folds_lr:  # Adam divides by the gradients' own scale
        return f"plain (optimizer {type(optimizer).__name__})"
    if settings.diagnostics:  # gradient norms need the gradients themselves
        return "plain (gradient diagnostics)"
    return "fused"


def _improved(value: float, best: float | None, higher_better: bool) -> bool:
    return best is None or (value > best if higher_better else value < best)


@np.errstate(over="ignore", invalid="ignore")  # divergence is caught explicitly, by the loss
def fit(
    model: MLP,
    optimizer: Optimizer,
    batches: BatchStream,
    settings: LoopSettings,
    state: LoopState,
    callbacks: list[Callback] | None = None,
) -> History:
    """Train from state.epoch to settings.epochs, emitting TrainStart, EpochStart, BatchEnd and EpochEnd.

    Raises TrainingDiverged on a NaN or infinite loss (EpochEnd is not emitted for that epoch).
    """
    optimizer.fold = step_path(optimizer, settings) == "fused"
    optimizer.decay_mask = model.decay_mask()
    try:
        _epochs(model, optimizer, batches, settings, state, callbacks)
    finally:
        optimizer.sync()
    return state.history


def _epochs(
    model: MLP,
    optimizer: Optimizer,
    batches: BatchStream,
    settings: LoopSettings,
    state: LoopState,
    callbacks: list[Callback] | None,
) -> None:
    n, steps, epochs = len(batches), batches.steps, settings.epochs
    loss_fn, output = get_loss(settings.loss, settings.label_smoothing), model.output_activation
    history = state.history
    emit(callbacks, TrainStart(epochs, state.epoch, steps, n))
    while state.epoch < epochs:
        epoch = state.epoch + 1
        start = time.perf_counter()
        emit(
            callbacks,
            EpochStart(epoch, learning_rate(settings.schedule, optimizer.base_lr, state.epoch * steps, steps, epochs)),
        )
        order = state.rng.permutation(n)  # one shuffle per epoch
        total_loss, correct, seen = 0.0, 0, 0
        grad_norms = np.zeros(model.num_layers)
        for b, (xb, yb) in enumerate(batches.epoch(order)):
            lr = learning_rate(settings.schedule, optimizer.base_lr, state.epoch * steps + b, steps, epochs)
            scale = optimizer.begin_step(lr)  # what the gradients must come out multiplied by
            z = model.forward_train(xb, state.rng)
            correct += int(np.count_nonzero(z.argmax(axis=1) == yb))
            loss, delta = loss_fn(z, yb, output)
            if scale != 1.0:
                delta *= delta.dtype.type(scale)
            grads = model.backward(delta)
            loss += optimizer.penalty(model.flat, model.grad_flat)
            if not math.isfinite(loss):
                raise TrainingDiverged(
                    f"the loss became {loss} at epoch {epoch}, batch {b + 1} of {steps}; "
                    f"try a lower learning rate (optimizer.lr is {optimizer.base_lr:g})"
                )
            if settings.diagnostics:
                grad_norms += [np.linalg.norm(grads[f"W{l}"]) for l in range(1, model.num_layers + 1)]
            optimizer.step(model.flat, model.grad_flat)
            if settings.max_norm:
                model.apply_max_norm(settings.max_norm)
            m = yb.shape[0]
            total_loss += loss * m
            seen += m
            emit(callbacks, BatchEnd(epoch, b + 1, total_loss / seen, seen))
        optimizer.sync()  # the optimizer's state as the plain path keeps it, for checkpoints
        row: dict[str, Any] = {
            "epoch": epoch,
            "train_loss": total_loss / n,
            "train_accuracy": correct / n,
            "val_loss": None,
            "val_accuracy": None,
            "lr": optimizer.lr,
        }
        val = settings.validation
        if val is not None:
            report = evaluate_arrays(model, batches.normalizer, val.x, val.y, settings.loss)
            row["val_loss"], row["val_accuracy"] = report.loss, report.accuracy
        if settings.diagnostics:
            split = batches.split
            rows = order[:1000] if split.index is None else split.index[order[:1000]]
            sample = val.x[:1000] if val is not None else split.x[rows]
            row.update(layer_diagnostics(model, batches.normalizer.apply(sample)))
            row.update({f"grad_norm_{l}": float(g / steps) for l, g in enumerate(grad_norms, start=1)})
        row["seconds"] = time.perf_counter() - start
        improved = _improved(row[settings.monitor], state.best_value, settings.higher_is_better)
        state.epoch = epoch
        if improved:
            state.best_value, state.best_epoch, state.bad_epochs = row[settings.monitor], epoch, 0
        else:
            state.bad_epochs += 1
        history.rows.append(row)
        history.best_epoch = state.best_epoch
        emit(callbacks, EpochEnd(epoch, row, improved))
        es = settings.early_stopping
        if es is not None and state.bad_epochs >= es.patience:
            history.stopped_early = True
            log.info("early stopping after epoch %d", epoch)
            break

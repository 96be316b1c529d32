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
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mlpcli.config import EarlyStoppingConfig, EmaConfig, ExperimentConfig, ScheduleConfig
from mlpcli.data.batches import BatchStream, Split
from mlpcli.errors import TrainingDiverged
from mlpcli.events import BatchEnd, Callback, EpochEnd, EpochStart, History, TrainStart, emit
from mlpcli.inference.metrics import evaluate_arrays
from mlpcli.lecture.diagnostics import layer_diagnostics
from mlpcli.nn.averaging import ExponentialAverage
from mlpcli.nn.losses import get_loss
from mlpcli.nn.mlp import MLP
from mlpcli.nn.optimizers import Optimizer
from mlpcli.nn.schedules import learning_rate
from mlpcli.training.gradients import batch_gradients

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
    average: ExponentialAverage | None = None  # train.ema's average of the weights


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
    ema: EmaConfig | None = None  # average the weights; validate and checkpoint the average

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
            monitor=_monitor(es.metric if es is not None else cfg.train.best_by, has_val),
            diagnostics=cfg.train.diagnostics,
            validation=validation if has_val else None,
            fused=cfg.train.fused,
            ema=cfg.train.ema,
        )


@contextmanager
def averaged(model: MLP, average: ExponentialAverage | None) -> Iterator[MLP]:
    """The model with the averaged weights in place of its own for the `with` block (unchanged without an
    average); its own weights are back afterwards, bit for bit."""
    if average is None or average.flat is None:
        yield model
        return
    own = model.flat.copy()
    model.flat[...] = average.flat
    try:
        yield model
    finally:
        model.flat[...] = own


def _monitor(metric: str, has_validation: bool) -> str:
    """The metric that chooses the best epoch: val_* as configured, or its train_* twin without validation."""
    return metric if has_validation else metric.replace("val_", "train_")


def folds_rate(settings: LoopSettings) -> bool:
    """Whether a run's optimizer may fold the learning rate into the gradients (build it with fold=this): unless
    train.fused is off or gradient diagnostics need the gradients themselves. Optimizers that cannot fold (Adam)
    ignore it."""
    return settings.fused and not settings.diagnostics


def step_path(optimizer: Optimizer, settings: LoopSettings) -> str:
    """Which training step fit() takes: "fused" (the rate folded into the gradients), or "plain" with the reason."""
    if optimizer.fold:
        return "fused"
    if not settings.fused:
        return "plain (train.fused is off)"
    if not optimizer.folds_lr:  # Adam divides by the gradients' own scale
        return f"plain (optimizer {type(optimizer).__name__})"
    if settings.diagnostics:  # gradient norms need the gradients themselves
        return "plain (gradient diagnostics)"
    return "plain (the optimizer was built without fold)"


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
    stepper = Stepper(model, optimizer, batches, settings, state, callbacks)
    try:
        while not stepper.done:
            stepper.step()
    finally:
        stepper.close()
    return state.history


class Stepper:
    """fit()'s loop one optimizer step at a time (the playground steps it; fit() runs it to the end).

    step() takes one batch: forward, the loss's delta, backward, the optimizer's step, max-norm; the
    step that ends an epoch also computes its row (validation, diagnostics), keeps the best epoch and
    emits EpochEnd. The same calls in the same order as whole epochs, so stepping gives the same
    weights bit for bit.
    """

    def __init__(
        self,
        model: MLP,
        optimizer: Optimizer,
        batches: BatchStream,
        settings: LoopSettings,
        state: LoopState,
        callbacks: list[Callback] | None = None,
    ) -> None:
        self.model, self.optimizer, self.batches, self.settings, self.state = model, optimizer, batches, settings, state
        self.callbacks = callbacks
        if optimizer.fold and settings.diagnostics:
            raise ValueError("gradient diagnostics need plain gradients: build the optimizer with fold=False")
        self.loss_fn = get_loss(settings.loss, settings.label_smoothing)
        self.n, self.steps = len(batches), batches.steps
        self._epoch_batches: Any = None
        self.stopped = False
        state.history.monitor = settings.monitor
        if settings.ema is not None and state.average is None:
            state.average = ExponentialAverage(settings.ema.decay, settings.ema.every)
        emit(callbacks, TrainStart(settings.epochs, state.epoch, self.steps, self.n, settings.monitor))

    @property
    def done(self) -> bool:
        """All epochs trained, or stopped early."""
        return self.stopped or (self._epoch_batches is None and self.state.epoch >= self.settings.epochs)

    @property
    def global_step(self) -> int:
        """Optimizer steps taken so far in this run (whole epochs plus the current one's)."""
        return self.state.epoch * self.steps + (self._b if self._epoch_batches is not None else 0)

    def _start_epoch(self) -> None:
        s, st = self.settings, self.state
        self._started = time.perf_counter()
        lr = learning_rate(s.schedule, self.optimizer.base_lr, st.epoch * self.steps, self.steps, s.epochs)
        emit(self.callbacks, EpochStart(st.epoch + 1, lr))
        self._order = st.rng.permutation(self.n)  # one shuffle per epoch
        self._epoch_batches = iter(self.batches.epoch(self._order))
        self._b, self._total_loss, self._correct, self._seen = 0, 0.0, 0, 0
        self._grad_norms = np.zeros(self.model.num_layers)

    @np.errstate(over="ignore", invalid="ignore")  # divergence is caught explicitly, by the loss
    def step(self) -> dict[str, Any] | None:
        """One optimizer step; returns the epoch's row when this step ended an epoch, else None."""
        if self.done:
            return None
        if self._epoch_batches is None:
            self._start_epoch()
        model, optimizer, s, st = self.model, self.optimizer, self.settings, self.state
        xb, yb = next(self._epoch_batches)
        b, epoch = self._b, st.epoch + 1
        lr = learning_rate(s.schedule, optimizer.base_lr, st.epoch * self.steps + b, self.steps, s.epochs)
        scale = optimizer.begin_step(lr)  # what the gradients must come out multiplied by
        loss, right = batch_gradients(model, self.loss_fn, xb, yb, st.rng, scale)
        grads = model.grads
        self._correct += right
        loss += optimizer.penalty(model.flat, model.grad_flat)
        if not math.isfinite(loss):
            raise TrainingDiverged(
                f"the loss became {loss} at epoch {epoch}, batch {b + 1} of {self.steps}; "
                f"try a lower learning rate (optimizer.lr is {optimizer.base_lr:g})"
            )
        if s.diagnostics:
            self._grad_norms += [np.linalg.norm(grads[f"W{l}"]) for l in range(1, model.num_layers + 1)]
        optimizer.step(model.flat, model.grad_flat)
        if s.max_norm:
            model.apply_max_norm(s.max_norm)
        if st.average is not None:
            st.average.step(st.epoch * self.steps + b + 1, model.flat)
        m = yb.shape[0]
        self._total_loss += loss * m
        self._seen += m
        self._b = b + 1
        emit(self.callbacks, BatchEnd(epoch, b + 1, self._total_loss / self._seen, self._seen))
        return self._end_epoch() if self._b == self.steps else None

    def _end_epoch(self) -> dict[str, Any]:
        model, optimizer, s, st, n = self.model, self.optimizer, self.settings, self.state, self.n
        epoch = st.epoch + 1
        self._epoch_batches = None
        optimizer.sync()  # the optimizer's state as the plain path keeps it, for checkpoints
        row: dict[str, Any] = {
            "epoch": epoch,
            "train_loss": self._total_loss / n,
            "train_accuracy": self._correct / n,
            "val_loss": None,
            "val_accuracy": None,
            "lr": optimizer.lr,
        }
        val = s.validation
        if val is not None:
            report = evaluate_arrays(model, self.batches.normalizer, val.x, val.y, s.loss)
            row["val_loss"], row["val_accuracy"] = report.loss, report.accuracy
            if st.average is not None and st.average.flat is not None:  # val_*: the average's; raw_val_*: these
                row["raw_val_loss"], row["raw_val_accuracy"] = report.loss, report.accuracy
                with averaged(model, st.average):
                    report = evaluate_arrays(model, self.batches.normalizer, val.x, val.y, s.loss)
                row["val_loss"], row["val_accuracy"] = report.loss, report.accuracy
        if s.diagnostics:
            split = self.batches.split
            rows = self._order[:1000] if split.index is None else split.index[self._order[:1000]]
            sample = val.x[:1000] if val is not None else split.x[rows]
            row.update(layer_diagnostics(model, self.batches.normalizer.apply(sample)))
            row.update({f"grad_norm_{l}": float(g / self.steps) for l, g in enumerate(self._grad_norms, start=1)})
        row["seconds"] = time.perf_counter() - self._started
        improved = _improved(row[s.monitor], st.best_value, s.higher_is_better)
        st.epoch = epoch
        if improved:
            st.best_value, st.best_epoch, st.bad_epochs = row[s.monitor], epoch, 0
        else:
            st.bad_epochs += 1
        st.history.rows.append(row)
        st.history.best_epoch = st.best_epoch
        emit(self.callbacks, EpochEnd(epoch, row, improved))
        es = s.early_stopping
        if es is not None and st.bad_epochs >= es.patience:
            st.history.stopped_early = True
            self.stopped = True
            log.info("early stopping after epoch %d", epoch)
        return row

    def close(self) -> None:
        """Give the optimizer's state back in its plain form and end an unfinished epoch's batch workers."""
        self.optimizer.sync()
        if self._epoch_batches is not None and hasattr(self._epoch_batches, "close"):
            self._epoch_batches.close()

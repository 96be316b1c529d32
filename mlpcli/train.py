"""fit(): the training loop. Flat and silent: it emits events and returns a History."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlpcli.config import ExperimentConfig
from mlpcli.data.prepare import Normalizer
from mlpcli.errors import TrainingDiverged
from mlpcli.evaluate import evaluate_arrays
from mlpcli.events import BatchEnd, Callback, EpochEnd, EpochStart, History, TrainStart, emit
from mlpcli.nn.mlp import MLP
from mlpcli.nn.optimizers import Optimizer
from mlpcli.schedule import learning_rate

log = logging.getLogger(__name__)

METRIC_COLUMNS = ("epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr", "seconds")


@dataclass
class Split:
    """uint8 images (N, d) and labels (N,) of one split, or of the rows `index` selects (no copy)."""

    x: np.ndarray
    y: np.ndarray
    index: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.y.shape[0] if self.index is None else self.index.shape[0])


@dataclass
class LoopState:
    """What a resumed run needs besides parameters and optimizer state."""

    epoch: int = 0  # epochs completed
    best_value: float | None = None
    best_epoch: int | None = None
    bad_epochs: int = 0


def monitor_of(cfg: ExperimentConfig, has_validation: bool) -> tuple[str, bool]:
    """(metric name, higher is better) used for the best checkpoint and early stopping."""
    if cfg.train.early_stopping is not None:
        metric = cfg.train.early_stopping.metric
    else:
        metric = "val_loss" if has_validation else "train_loss"
    return metric, metric.endswith("accuracy")


@np.errstate(over="ignore", invalid="ignore")  # divergence is caught explicitly, by the loss
def fit(
    cfg: ExperimentConfig,
    model: MLP,
    optimizer: Optimizer,
    normalizer: Normalizer,
    train: Split,
    val: Split | None,
    rng: np.random.Generator,
    state: LoopState,
    history: History,
    callbacks: list[Callback] | None = None,
    on_epoch_end: Callable[[LoopState, dict[str, Any], bool], None] | None = None,
    diagnostics: Callable[[MLP, np.ndarray], dict[str, float]] | None = None,
) -> History:
    """Train from state.epoch to cfg.train.epochs; calls on_epoch_end(state, row, is_best) after each epoch.

    Raises TrainingDiverged on a NaN or infinite loss (nothing of that epoch is saved).
    """
    n, bs = len(train), cfg.train.batch_size
    steps = math.ceil(n / bs)
    epochs = cfg.train.epochs
    dtype = np.dtype(cfg.train.dtype)
    metric, higher_better = monitor_of(cfg, val is not None and len(val) > 0)
    pixels = np.empty((min(bs, n), train.x.shape[1]), dtype=train.x.dtype)  # one batch, uint8
    xbuf = np.empty(pixels.shape, dtype=dtype)  # the same batch, normalized
    labels = np.empty(min(bs, n), dtype=train.y.dtype)
    emit(callbacks, TrainStart(epochs, state.epoch, steps, n))
    while state.epoch < epochs:
        epoch = state.epoch + 1
        start = time.perf_counter()
        lr = learning_rate(cfg.schedule, cfg.optimizer.lr, state.epoch * steps, steps, epochs)
        emit(callbacks, EpochStart(epoch, lr))
        perm = rng.permutation(n)  # one shuffle per epoch; each batch gathers its rows into a reused buffer
        rows = perm if train.index is None else train.index[perm]
        total_loss, correct = 0.0, 0
        grad_norms = np.zeros(model.num_layers)
        for b in range(steps):
            lo, hi = b * bs, min((b + 1) * bs, n)
            m = hi - lo
            np.take(train.x, rows[lo:hi], axis=0, out=pixels[:m], mode="clip")  # "clip": no hidden temporary
            xb = normalizer.apply(pixels[:m], out=xbuf[:m])
            yb = np.take(train.y, rows[lo:hi], out=labels[:m], mode="clip")
            loss, grads = model.loss_and_grads(xb, yb, cfg.loss, weight_decay=cfg.optimizer.weight_decay, rng=rng)
            if not math.isfinite(loss):
                raise TrainingDiverged(
                    f"the loss became {loss} at epoch {epoch}, batch {b + 1} of {steps}; "
                    f"try a lower learning rate (optimizer.lr is {cfg.optimizer.lr:g})"
                )
            if diagnostics is not None:
                grad_norms += [np.linalg.norm(grads[f"W{l}"]) for l in range(1, model.num_layers + 1)]
            optimizer.lr = learning_rate(cfg.schedule, cfg.optimizer.lr, state.epoch * steps + b, steps, epochs)
            optimizer.step(*model.flat_views())  # the same update as step(params, grads), in a few calls
            total_loss += loss * (hi - lo)
            correct += int(np.count_nonzero(model.last_predictions == yb))
            emit(callbacks, BatchEnd(epoch, b + 1, total_loss / hi, hi))
        row: dict[str, Any] = {
            "epoch": epoch,
            "train_loss": total_loss / n,
            "train_accuracy": correct / n,
            "val_loss": None,
            "val_accuracy": None,
            "lr": optimizer.lr,
        }
        if val is not None and len(val) > 0:
            report = evaluate_arrays(model, normalizer, val.x, val.y, cfg.loss)
            row["val_loss"], row["val_accuracy"] = report.loss, report.accuracy
        if diagnostics is not None:
            sample = val.x[:1000] if val is not None and len(val) > 0 else train.x[rows[:1000]]
            row.update(diagnostics(model, normalizer.apply(sample)))
            row.update({f"grad_norm_{l}": float(g / steps) for l, g in enumerate(grad_norms, start=1)})
        row["seconds"] = time.perf_counter() - start
        value = row[metric]
        improved = state.best_value is None or (value > state.best_value if higher_better else value < state.best_value)
        state.epoch = epoch
        if improved:
            state.best_value, state.best_epoch, state.bad_epochs = value, epoch, 0
        else:
            state.bad_epochs += 1
        history.rows.append(row)
        history.best_epoch = state.best_epoch
        if on_epoch_end is not None:
            on_epoch_end(state, row, improved)
        emit(callbacks, EpochEnd(epoch, row, improved))
        es = cfg.train.early_stopping
        if es is not None and state.bad_epochs >= es.patience:
            history.stopped_early = True
            log.info("early stopping after epoch %d", epoch)
            break
    return history

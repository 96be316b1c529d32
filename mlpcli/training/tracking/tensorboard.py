"""TensorBoard: event files in RUN/tensorboard/, written with tensorboardX (the `track` extra).

Per epoch: loss and accuracy (train, validation), the learning rate, the epoch's seconds. Every
train.histograms_every epochs (and the first): each layer's weights, biases and their gradients
on a fixed batch of 256 training images. At the end: the first layer's 28x28 templates as an
image, the resolved config as text, and the hyperparameters with the test accuracy (HParams).
`tensorboard --logdir runs` shows every run, sweep trials included.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mlpcli.config import dump_config, flatten
from mlpcli.errors import MissingExtra
from mlpcli.runs.folder import RunStatus
from mlpcli.training.tracking.base import TrackedRun, Tracker

SCALARS = {
    "train_loss": "loss/train",
    "val_loss": "loss/validation",
    "train_accuracy": "accuracy/train",
    "val_accuracy": "accuracy/validation",
    "lr": "learning_rate",
    "seconds": "seconds_per_epoch",
}
GRADIENT_BATCH = 256


class TensorBoardTracker(Tracker):
    """Writes a run's curves, histograms, templates and hyperparameters as TensorBoard event files."""

    name = "tensorboard"

    def start(self, run: TrackedRun) -> None:
        try:
            from tensorboardX import SummaryWriter
        except ImportError:
            raise MissingExtra("train.track tensorboard needs tensorboardX", "track") from None
        self.writer = SummaryWriter(logdir=str(run.folder.path / "tensorboard"))
        self.writer.add_text("config", "```yaml\n" + dump_config(run.prepared.cfg) + "```", 0)

    def epoch(self, run: TrackedRun, row: dict[str, Any]) -> None:
        step = int(row["epoch"])
        for key, tag in SCALARS.items():
            if row.get(key) is not None:
                self.writer.add_scalar(tag, float(row[key]), step)
        every = run.prepared.cfg.train.histograms_every
        if step == 1 or step % every == 0:
            self._histograms(run, step)
        self.writer.flush()

    def _histograms(self, run: TrackedRun, step: int) -> None:
        p = run.prepared
        model = p.model
        rows = p.train.index[:GRADIENT_BATCH] if p.train.index is not None else slice(0, GRADIENT_BATCH)
        x = p.normalizer.apply(p.train.x[rows]).astype(model.dtype)
        model.loss_and_grads(x, p.train.y[rows].astype(np.int64), p.cfg.loss, rng=np.random.default_rng(step))
        for name, value in model.params.items():
            self.writer.add_histogram(f"weights/{name}", value, step)
            self.writer.add_histogram(f"gradients/{name}", model.grads[name], step)

    def end(self, run: TrackedRun, status: RunStatus) -> None:
        p = run.prepared
        W1 = p.model.params["W1"]
        side = int(round(W1.shape[0] ** 0.5))
        if side * side == W1.shape[0] and p.model.num_layers > 1:
            units = min(W1.shape[1], 64)
            per_row = int(np.ceil(units**0.5))
            grid = np.zeros((per_row * (side + 1), per_row * (side + 1)), np.float32)
            for j in range(units):
                w = W1[:, j].reshape(side, side)
                w = (w - w.min()) / max(float(np.ptp(w)), 1e-12)
                r, c = divmod(j, per_row)
                grid[r * (side + 1) : r * (side + 1) + side, c * (side + 1) : c * (side + 1) + side] = w
            self.writer.add_image("first_layer_templates", grid, p.state.epoch, dataformats="HW")
        hparams = {
            k: v for k, v in flatten(p.cfg.model_dump(mode="json")).items() if isinstance(v, (int, float, str, bool))
        }
        metrics = {
            "hparam/test_accuracy": status.test_accuracy if status.test_accuracy is not None else float("nan"),
            "hparam/best_val_accuracy": status.best_val_accuracy
            if status.best_val_accuracy is not None
            else float("nan"),
        }
        self.writer.add_hparams(hparams, metrics, name="hparams")
        self.writer.close()

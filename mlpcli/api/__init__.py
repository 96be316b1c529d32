"""mlpcli for notebooks and scripts: train, load, evaluate, as Python calls.

    import mlpcli
    result = mlpcli.train("quickstart", overrides=["train.epochs=3"])   # -> RunResult
    model = mlpcli.load(result.checkpoint)                                # -> Model
    labels, probabilities = model.predict(["my-digit.png"])               # (n,) int, (n, k) float32
    report = mlpcli.evaluate(result.checkpoint)                           # -> dict

Every error is an mlpcli.MlpcliError subclass carrying the same one-line message the CLI prints.
Progress (train's progress=True) is one line per epoch through rich, which renders in Jupyter too.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mlpcli.config import ExperimentConfig, config_from_dict, load_config
from mlpcli.errors import MlpcliError
from mlpcli.events import EpochEnd
from mlpcli.inference.evaluation import evaluate_checkpoint
from mlpcli.inference.pictures import prepare_image
from mlpcli.inference.predictor import Predictor
from mlpcli.runs.folder import checkpoint_in

__all__ = ["Model", "MlpcliError", "RunResult", "evaluate", "load", "train"]


@dataclass
class RunResult:
    """A finished run: its folder and best checkpoint, the test accuracy (None without a test split),
    one dict per epoch (the metrics.csv row), and the resolved config as a dict."""

    run_dir: Path
    checkpoint: Path
    test_accuracy: float | None
    history: list[dict[str, Any]] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)


def _config(config: str | Path | dict[str, Any] | ExperimentConfig, overrides: Sequence[str]) -> ExperimentConfig:
    if isinstance(config, ExperimentConfig):
        return config_from_dict(config.model_dump(mode="json"), "config", list(overrides))
    if isinstance(config, dict):
        return config_from_dict(config, "config", list(overrides))
    return load_config(config, list(overrides))


def _progress(epochs: int) -> Any:
    from rich.console import Console

    console = Console()

    def show(event: object) -> None:
        if isinstance(event, EpochEnd):
            m = event.metrics
            val = f", val accuracy {m['val_accuracy']:.2%}" if m.get("val_accuracy") is not None else ""
            console.print(f"epoch {event.epoch}/{epochs}: train loss {m['train_loss']:.4f}{val} ({m['seconds']:.1f} s)")

    return show


def train(
    config: str | Path | dict[str, Any] | ExperimentConfig,
    overrides: Sequence[str] | None = None,
    out: str | Path | None = None,
    progress: bool = True,
) -> RunResult:
    """Train a config into a new run folder (runs/<name>/<time>, or `out` when absent or empty).

    config: a YAML path, a shipped config's bare name ("quickstart", "mnist"), a dict of config
    keys, or an ExperimentConfig; overrides: "key.path=value" strings as --set takes them.
    Raises MlpcliError (ConfigError, DataError, TrainingDiverged, ...) with the CLI's message.
    """
    from mlpcli.training.lifecycle import train_run

    cfg = _config(config, overrides or [])
    callbacks = [_progress(cfg.train.epochs)] if progress else []
    result = train_run(cfg, out=Path(out) if out is not None else None, callbacks=callbacks)
    return RunResult(
        run_dir=result.run_dir,
        checkpoint=result.checkpoint,
        test_accuracy=result.test.accuracy if result.test else None,
        history=[dict(r) for r in result.history.rows],
        config=cfg.model_dump(mode="json"),
    )


class Model:
    """A checkpoint ready to predict (mlpcli.load)."""

    def __init__(self, predictor: Predictor) -> None:
        self.predictor = predictor
        self.classes: list[str] = predictor.classes

    def predict(self, images: Any) -> tuple[np.ndarray, np.ndarray]:
        """(labels int64 (n,), probabilities float32 (n, k)) for images given as:

        - file paths or PIL images (one or a list): read with predict's MNIST preprocessing;
        - an array (n, 28, 28) or (n, 784), or one (28, 28) image: already in MNIST's form (light
          ink on black), uint8 0-255 or float (values above 1 are read as 0-255, else as 0-1).
        """
        batch = self._as_batch(images)
        probabilities = self.predictor.probabilities(batch)
        return probabilities.argmax(axis=1).astype(np.int64), probabilities

    def _as_batch(self, images: Any) -> np.ndarray:
        if isinstance(images, np.ndarray):
            x = images.astype(np.float32)
            if x.ndim == 2 and x.shape == (28, 28):
                x = x[None]
            if x.max(initial=0) > 1.0 or images.dtype == np.uint8:
                x = x / 255.0
            return x.reshape(x.shape[0], -1)
        items = images if isinstance(images, (list, tuple)) else [images]
        out = []
        for item in items:
            if isinstance(item, (str, Path)):
                out.append(prepare_image(Path(item)))
            elif hasattr(item, "save"):  # a PIL image: the same preprocessing as a file
                buf = io.BytesIO()
                item.save(buf, format="PNG")
                buf.seek(0)
                out.append(prepare_image(buf, name="image"))
            else:
                raise MlpcliError(f"cannot read {type(item).__name__} as a picture: give paths, PIL images or arrays")
        return np.stack(out).reshape(len(out), -1)


def load(checkpoint: str | Path) -> Model:
    """The model in a checkpoint .npz (or a run folder's checkpoint.npz); CheckpointError says what is wrong."""
    return Model(Predictor.load(checkpoint_in(Path(checkpoint))))


def evaluate(checkpoint: str | Path, dataset: str | None = None) -> dict[str, Any]:
    """Evaluate a checkpoint on what it was tested on (or `dataset`): n, accuracy, loss, top3_accuracy,
    per_class (precision, recall, f1, support), confusion (k, k) and warnings."""
    ev = evaluate_checkpoint(checkpoint_in(Path(checkpoint)), dataset)
    r = ev.report
    return {
        "dataset": ev.dataset,
        "split": ev.split,
        "n": r.n,
        "accuracy": r.accuracy,
        "loss": r.loss,
        "top3_accuracy": r.top3_accuracy,
        "per_class": r.per_class(),
        "confusion": r.confusion,
        "warnings": ev.warnings,
    }

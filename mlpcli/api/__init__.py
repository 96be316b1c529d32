"""mlpcli for notebooks and scripts: train, load, evaluate, as Python calls.

    import mlpcli
    result = mlpcli.train("quickstart", overrides=["train.epochs=3"])   # -> RunResult
    model = mlpcli.load(result.checkpoint)                                # -> Model
    labels, probabilities = model.predict(["my-digit.png"])               # (n,) int, (n, k) float32
    report = mlpcli.evaluate(result.checkpoint)                           # -> EvalResult

Every error is an mlpcli.MlpcliError subclass carrying the same one-line message the CLI prints.
Progress (train's progress=True) is one line per epoch through rich, which renders in Jupyter too.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mlpcli.config import ExperimentConfig, as_overrides, config_from_dict, load_config
from mlpcli.errors import ConfigError, DataError, MlpcliError
from mlpcli.events import EpochEnd
from mlpcli.inference.evaluation import as_document, evaluate_checkpoint
from mlpcli.inference.pictures import prepare_image
from mlpcli.inference.predictor import Predictor
from mlpcli.runs.folder import checkpoint_in

__all__ = ["EvalResult", "Model", "MlpcliError", "RunResult", "evaluate", "load", "train"]

Overrides = Mapping[str, Any] | Sequence[str] | str | None


@dataclass
class RunResult:
    """A finished run: its folder and best checkpoint, the test accuracy (None without a test split),
    one dict per epoch (the metrics.csv row), and the resolved config as a dict."""

    run_dir: Path
    checkpoint: Path
    test_accuracy: float | None
    history: list[dict[str, Any]] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)


def _config(config: Any, overrides: Overrides) -> ExperimentConfig:
    """The config a caller gave, overridden; ConfigError for anything that is not a config."""
    given = as_overrides(overrides)
    if config is None:
        raise ConfigError(
            "train: give a config: a shipped config's name (mlpcli config list shows them, e.g. 'quickstart'), "
            "a YAML path, or a dict of config keys"
        )
    if isinstance(config, ExperimentConfig):
        return config_from_dict(config.model_dump(mode="json"), "config", given)
    if isinstance(config, Mapping):
        return config_from_dict(dict(config), "config", given)
    if isinstance(config, (str, Path)):
        return load_config(config, given)
    raise ConfigError(f"train: a config is a name, a path or a dict of config keys, not a {type(config).__name__}")


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
    config: str | Path | Mapping[str, Any] | ExperimentConfig,
    overrides: Overrides = None,
    out: str | Path | None = None,
    progress: bool = True,
    overwrite: bool = False,
) -> RunResult:
    """Train a config into a new run folder (runs/<name>/<time>, or `out` when absent or empty).

    config: a YAML path, a shipped config's bare name ("quickstart", "mnist"), a dict of config
    keys, or an ExperimentConfig; overrides: "key.path=value" (one string, or a list as --set takes them) or a
    mapping {"key.path": value}; overwrite: replace the run already in `out` (a notebook cell run again).
    Raises MlpcliError (ConfigError, DataError, TrainingDiverged, ...) with the CLI's message.
    """
    from mlpcli.training.lifecycle import train_run

    cfg = _config(config, overrides)
    if overwrite and out is None:
        raise ConfigError("train: overwrite=True replaces the run in `out`: give out= too")
    callbacks = [_progress(cfg.train.epochs)] if progress else []
    result = train_run(cfg, out=Path(out) if out is not None else None, overwrite=overwrite, callbacks=callbacks)
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

        Raises DataError (an MlpcliError and a ValueError) for pixels that are not finite numbers in 0-255,
        an array of another shape, or a model whose input is not a 28x28 picture.
        """
        batch = self._as_batch(images)
        probabilities = self.predictor.probabilities(batch)
        return probabilities.argmax(axis=1).astype(np.int64), probabilities

    def _as_batch(self, images: Any) -> np.ndarray:
        inputs = self.predictor.checkpoint.layer_sizes[0]
        if inputs != 784:
            raise PictureError(
                f"this model takes {inputs} inputs, not a 28x28 picture: it was trained on "
                f"{self.predictor.checkpoint.meta.get('dataset') or 'other data'}"
            )
        if (
            isinstance(images, (list, tuple))
            and images
            and not any(isinstance(i, (str, Path)) for i in images)
            and (not any(hasattr(i, "save") for i in images))
        ):
            images = np.asarray(images, dtype=object)  # nested numbers: checked as an array below
        if isinstance(images, np.ndarray):
            return _pixels(images)
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


class PictureError(DataError, ValueError):
    """Pictures that cannot be predicted (not finite numbers in 0-255, another shape, a model for other inputs)."""


def _pixels(images: np.ndarray) -> np.ndarray:
    """An array of pictures in MNIST's form as float32 (n, 784) in 0-1; PictureError saying what is wrong."""
    if images.dtype == object:
        try:
            images = np.asarray(images.tolist(), dtype=np.float64)
        except (TypeError, ValueError):
            raise PictureError("pixels must be numbers (got an array of other things)") from None
    if images.dtype.kind not in "uif" or images.dtype == bool:
        raise PictureError(f"pixels must be numbers, not {images.dtype}")
    x = images.astype(np.float64)
    if x.ndim == 2 and x.shape == (28, 28):
        x = x[None]
    if not (x.ndim == 3 and x.shape[1:] == (28, 28)) and not (x.ndim == 2 and x.shape[1] == 784):
        raise PictureError(f"pictures are (n, 28, 28), (n, 784) or one (28, 28) array (got shape {images.shape})")
    if x.shape[0] == 0:
        raise PictureError("no pictures to predict (an empty array)")
    if not np.isfinite(x).all():
        raise PictureError("pixels must be finite: the pictures hold NaN or infinity")
    if x.min() < 0 or x.max() > 255:
        raise PictureError(f"pixels must lie in 0-255 (or 0-1); these go from {x.min():g} to {x.max():g}")
    if x.max(initial=0) > 1.0 or images.dtype.kind in "ui":
        x = x / 255.0
    return x.reshape(x.shape[0], -1).astype(np.float32)


def load(checkpoint: str | Path) -> Model:
    """The model in a checkpoint .npz (or a run folder's checkpoint.npz); CheckpointError says what is wrong."""
    if not isinstance(checkpoint, (str, Path)):
        raise ConfigError(f"load: a checkpoint is a path, not a {type(checkpoint).__name__}")
    return Model(Predictor.load(checkpoint_in(Path(checkpoint))))


@dataclass(frozen=True)
class EvalResult:
    """What mlpcli.evaluate found: the fields of `mlpcli eval --json`, by the same names."""

    checkpoint: str
    dataset: str
    split: str
    warnings: list[str]
    n: int
    accuracy: float
    loss: float
    top3_accuracy: float | None
    per_class: list[dict[str, Any]]  # class, name, precision, recall, f1, support
    confusion_matrix: list[list[int]]  # [true][predicted]
    most_confused: list[dict[str, int]]
    mistakes: list[dict[str, Any]]  # the most confident, at most `errors`
    seconds: float
    images_per_second: float


def evaluate(
    checkpoint: str | Path, dataset: str | None = None, split: str = "test", errors: int | None = 6
) -> EvalResult:
    """Evaluate a checkpoint (or a run folder) on what it was tested on, or on `dataset` (a name, a folder of IDX
    files, a labelled CSV), as `mlpcli eval --json` does. Raises MlpcliError (CheckpointError, DataError)."""
    if not isinstance(checkpoint, (str, Path)):
        raise ConfigError(f"evaluate: a checkpoint is a path, not a {type(checkpoint).__name__}")
    if split not in ("test", "train"):
        raise ConfigError(f"evaluate: split is test or train (got {split!r})")
    if dataset is not None and not isinstance(dataset, (str, Path)):
        raise ConfigError(f"evaluate: a dataset is a name or a path, not a {type(dataset).__name__}")
    ev = evaluate_checkpoint(checkpoint_in(Path(checkpoint)), None if dataset is None else str(dataset), split=split)
    return EvalResult(**as_document(ev, errors))

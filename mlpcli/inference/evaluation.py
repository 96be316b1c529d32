"""Evaluation of a checkpoint on a dataset split: the predictor, the data, and the metrics' report."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mlpcli.data.load import PlaneOptions, load_dataset
from mlpcli.errors import DataError
from mlpcli.events import Callback
from mlpcli.inference.metrics import Report, evaluate_arrays
from mlpcli.inference.predictor import Predictor


@dataclass
class Evaluation:
    """An evaluation of a checkpoint on one split of a dataset."""

    checkpoint: str
    dataset: str
    split: str
    classes: list[str]
    report: Report
    images: np.ndarray  # uint8 (n, d) of the split, for drawing errors
    labels: np.ndarray
    warnings: list[str] = field(default_factory=list)

    def mistakes(self, limit: int | None = None) -> list[dict[str, int | float]]:
        """Misclassified images, most confident first: index in the split, true and predicted class, confidence."""
        r = self.report
        if self.labels.dtype.kind == "f":  # regression targets: no classes to mistake
            return []
        wrong = np.flatnonzero(r.predictions != self.labels)
        wrong = wrong[np.argsort(-r.confidences[wrong], kind="stable")][:limit]
        return [
            {
                "index": int(i),
                "true": int(self.labels[i]),
                "predicted": int(r.predictions[i]),
                "confidence": float(r.confidences[i]),
            }
            for i in wrong
        ]


def evaluate_checkpoint(
    ckpt_path: Path,
    dataset: str | None = None,
    data_dir: Path | None = None,
    split: str = "test",
    offline: bool = False,
    callbacks: list[Callback] | None = None,
) -> Evaluation:
    """Evaluate a checkpoint on a split, with its stored normalization.

    Without `dataset`, the data it was tested on: its config's data.dataset, data.dir and
    data.test (a CSV test set included). A labelled CSV given as `dataset` is evaluated row by
    row whatever the split (all its rows are the test set). Raises DataError when the data does
    not fit the model or holds no images; Evaluation.warnings says when its kind differs.
    """
    predictor = Predictor.load(ckpt_path)
    ckpt = predictor.checkpoint
    data_cfg = ckpt.config.get("data") if isinstance(ckpt.config.get("data"), dict) else {}
    trained_on = str(ckpt.meta.get("dataset") or data_cfg.get("dataset") or "mnist")
    if dataset is None:
        source = str(data_cfg.get("dataset") or trained_on)
        folder = data_dir if data_dir is not None else (Path(data_cfg["dir"]) if data_cfg.get("dir") else None)
        test = Path(data_cfg["test"]) if data_cfg.get("test") else None
    else:
        source, folder, test = dataset, data_dir, None
    csv_given = dataset is not None and dataset.lower().endswith(".csv")
    stored = {k: data_cfg[k] for k in ("points", "noise", "features", "classes", "test_ratio") if k in data_cfg}
    options = PlaneOptions(
        **{**stored, "features": tuple(stored.get("features", ("x1", "x2")))}, seed=int(ckpt.config.get("seed", 0))
    )
    data = load_dataset(source, data_dir=folder, offline=offline, callbacks=callbacks, test=test, plane=options)
    if csv_given:  # every labelled row is evaluated: a CSV has no split of its own
        x, y, split = data.train_x, data.train_y, "all rows"
    else:
        x, y = (data.test_x, data.test_y) if split == "test" else (data.train_x, data.train_y)
    name = str(folder) if folder is not None and dataset is None and data_dir is not None else data.name
    if x.shape[0] == 0:
        hint = " (set data.test to a labelled CSV when training, or give --dataset FILE.csv)" if split == "test" else ""
        raise DataError(f"{name} has no {split} images to evaluate{hint}")
    if x.shape[1] != ckpt.layer_sizes[0]:
        raise DataError(f"{name} has {x.shape[1]} pixels per image but the model expects {ckpt.layer_sizes[0]}")
    if int(y.max(initial=0)) >= ckpt.layer_sizes[-1]:
        raise DataError(f"{name} has labels up to {int(y.max())} but the model has {ckpt.layer_sizes[-1]} outputs")
    report = evaluate_arrays(predictor.model, predictor.normalizer, x, y, ckpt.loss, full=True)
    warnings = []
    if list(data.classes) != ckpt.classes:
        warnings.append(
            f"the model was trained on {trained_on} (classes {', '.join(ckpt.classes[:3])}, ...) but {name} has "
            f"classes {', '.join(list(data.classes)[:3])}, ...: the accuracy compares different things"
        )
    elif dataset is not None and _kind(data.name) != _kind(trained_on):
        warnings.append(f"the model was trained on {trained_on}, evaluated here on {name}: another kind of image")
    return Evaluation(str(ckpt_path), name, split, list(data.classes), report, x, y, warnings)


def _kind(dataset: str) -> str:
    """Which family of images a dataset name is: fashion or digits (a CSV or folder counts as digits)."""
    return "fashion" if "fashion" in dataset.lower() else "digits"


def as_document(ev: Evaluation, errors: int | None = 6) -> dict[str, Any]:
    """What `mlpcli eval --json` prints and `mlpcli.evaluate` returns (as EvalResult): every field by name.
    per_class rows carry the class's name; mistakes are the `errors` most confident ones (None: all)."""
    r = ev.report
    per_class = r.per_class()
    for row in per_class:
        row["name"] = ev.classes[int(row["class"])]
    return {
        "checkpoint": ev.checkpoint,
        "dataset": ev.dataset,
        "split": ev.split,
        "warnings": list(ev.warnings),
        "n": r.n,
        "accuracy": r.accuracy,
        "loss": r.loss,
        "top3_accuracy": r.top3_accuracy,
        "per_class": per_class,
        "confusion_matrix": r.confusion.tolist(),
        "most_confused": [{"true": t, "predicted": p, "count": c} for t, p, c in r.most_confused()],
        "mistakes": ev.mistakes(errors),
        "seconds": r.seconds,
        "images_per_second": r.n / max(r.seconds, 1e-9),
    }

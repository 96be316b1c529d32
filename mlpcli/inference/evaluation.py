"""Evaluation of a checkpoint on a dataset split: the predictor, the data, and the metrics' report."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mlpcli.data.load import load_dataset
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

    def mistakes(self, limit: int | None = None) -> list[dict[str, int | float]]:
        """Misclassified images, most confident first: index in the split, true and predicted class, confidence."""
        r = self.report
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
    """Evaluate a checkpoint on a split of its own dataset (or another), with its stored normalization."""
    predictor = Predictor.load(ckpt_path)
    ckpt = predictor.checkpoint
    name = dataset or ckpt.meta.get("dataset") or "mnist"
    data = load_dataset(name, data_dir=data_dir, offline=offline, callbacks=callbacks)
    x, y = (data.test_x, data.test_y) if split == "test" else (data.train_x, data.train_y)
    if x.shape[1] != ckpt.layer_sizes[0]:
        raise DataError(f"{data.name} has {x.shape[1]} pixels per image but the model expects {ckpt.layer_sizes[0]}")
    if int(y.max(initial=0)) >= ckpt.layer_sizes[-1]:
        raise DataError(f"{data.name} has labels up to {int(y.max())} but the model has {ckpt.layer_sizes[-1]} outputs")
    loss = ckpt.loss
    report = evaluate_arrays(predictor.model, predictor.normalizer, x, y, loss, full=True)
    classes = list(data.classes) if dataset else ckpt.classes
    return Evaluation(str(ckpt_path), data.name, split, classes, report, x, y)

"""Metrics: accuracy, loss, top-k, confusion matrix and per-class scores."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from mlpcli.data.prepare import Normalizer
from mlpcli.nn.activations import get_output
from mlpcli.nn.losses import count_right, get_loss
from mlpcli.nn.mlp import MLP

CHUNK = 5000


@dataclass
class Report:
    """What an evaluation found. confusion[i, j] counts true class i predicted as j."""

    n: int
    loss: float
    accuracy: float
    top3_accuracy: float | None = None
    confusion: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.int64))
    predictions: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    confidences: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    seconds: float = 0.0

    def per_class(self) -> list[dict[str, float | int]]:
        """Precision, recall, F1 and support of each class (0 where undefined)."""
        cm = self.confusion
        tp = np.diag(cm).astype(np.float64)
        predicted, support = cm.sum(axis=0), cm.sum(axis=1)
        precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
        recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
        denom = precision + recall
        f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
        return [
            {
                "class": i,
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i in range(cm.shape[0])
        ]

    def most_confused(self, k: int = 5) -> list[tuple[int, int, int]]:
        """The k largest off-diagonal counts as (true, predicted, count), largest first."""
        cm = self.confusion.copy()
        np.fill_diagonal(cm, 0)
        order = np.argsort(-cm, axis=None, kind="stable")[:k]
        pairs = [(int(i), int(j), int(cm[i, j])) for i, j in zip(*np.unravel_index(order, cm.shape))]
        return [p for p in pairs if p[2] > 0]


def _loss_sum(logits: np.ndarray, labels: np.ndarray, loss: str, output: str) -> float:
    """Summed (not averaged) loss of a chunk, computed in float64 from the logits."""
    value, _ = get_loss(loss)(logits.astype(np.float64), labels, get_output(output))
    return value * logits.shape[0]


def evaluate_arrays(
    model: MLP, normalizer: Normalizer, x: np.ndarray, y: np.ndarray, loss: str, full: bool = False
) -> Report:
    """Evaluate on uint8 images x (n, d) and labels y (n,); full adds top-3, confusion and predictions.

    Float targets y (n,) (a regression dataset of points, one linear output) are scored by the loss and by
    nn.losses.count_right (within nn.losses.TOLERANCE of the target); full adds nothing for them (no
    classes: no top-3, confusion or predicted classes)."""
    start = time.perf_counter()
    regression = y.dtype.kind == "f"
    n, k = int(y.shape[0]), model.layer_sizes[-1]
    total, correct, top3 = 0.0, 0, 0
    preds = np.empty(n, dtype=np.int64)
    conf = np.empty(n, dtype=np.float32)
    buf = np.empty((min(CHUNK, max(n, 1)), x.shape[1]), dtype=model.dtype)
    for lo in range(0, n, CHUNK):
        hi = min(lo + CHUNK, n)
        logits = model.logits(normalizer.apply(x[lo:hi], out=buf[: hi - lo]))
        labels = y[lo:hi] if regression else y[lo:hi].astype(np.int64)
        total += _loss_sum(logits, labels, loss, model.output)
        correct += count_right(logits, labels)
        if regression:
            continue
        pred = logits.argmax(axis=1)
        preds[lo:hi] = pred
        if full:
            conf[lo:hi] = model.output_activation.fn(logits).max(axis=1)
            if k >= 3:
                top = np.argpartition(-logits, 2, axis=1)[:, :3]
                top3 += int(np.count_nonzero((top == labels[:, None]).any(axis=1)))
    report = Report(n=n, loss=total / max(n, 1), accuracy=correct / max(n, 1))
    if full and not regression:
        report.top3_accuracy = top3 / max(n, 1) if k >= 3 else None
        cm = np.zeros((k, k), dtype=np.int64)
        np.add.at(cm, (y.astype(np.int64), preds), 1)
        report.confusion, report.predictions, report.confidences = cm, preds, conf
    report.seconds = time.perf_counter() - start
    return report

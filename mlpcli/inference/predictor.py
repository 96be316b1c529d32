"""Inference has one owner: a Predictor, built once from a checkpoint.

It holds the network, the pixel normalization, the class names and the input shape the
checkpoint was trained on, and gives probabilities, every layer's activations, and the
`mlpcli predict --json` element. eval, predict, serve, export and the end-of-training test
all take their model from here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mlpcli.data.prepare import Normalizer
from mlpcli.errors import ImageError
from mlpcli.factory import build_model
from mlpcli.files import checkpoint as checkpoint_file
from mlpcli.files.checkpoint import Checkpoint
from mlpcli.inference.pictures import IMAGE_SUFFIXES, prepare_image, raw_problem
from mlpcli.nn.mlp import MLP

LOW_CONFIDENCE = 0.6


@dataclass
class Prediction:
    """One input's result: the image the network saw, and its output."""

    file: str
    image: np.ndarray  # (side, side) float32 in [0, 1], ink bright
    probabilities: np.ndarray  # (k,)
    label: str
    warning: str | None = None  # why the result may be unreliable (e.g. --raw on a light background)

    @property
    def prediction(self) -> int:
        """The most probable class."""
        return int(np.argmax(self.probabilities))

    @property
    def confidence(self) -> float:
        """Its probability."""
        return float(self.probabilities[self.prediction])

    def top(self, k: int) -> list[tuple[int, float]]:
        """The k most probable classes with their probabilities."""
        order = np.argsort(-self.probabilities, kind="stable")[:k]
        return [(int(i), float(self.probabilities[i])) for i in order]

    def element(self) -> dict[str, Any]:
        """One element of `mlpcli predict --json`: file, prediction, label, confidence, probabilities."""
        return {
            "file": self.file,
            "prediction": self.prediction,
            "label": self.label,
            "confidence": self.confidence,
            "probabilities": [float(v) for v in self.probabilities],
        } | ({"warning": self.warning} if self.warning else {})


class Predictor:
    """A checkpoint ready to predict: model, normalizer, classes and input shape, built once."""

    def __init__(self, ckpt: Checkpoint) -> None:
        self.checkpoint = ckpt
        self.path = ckpt.path
        self.model: MLP = model_of(ckpt)
        self.normalizer = Normalizer(ckpt.norm_mean, ckpt.norm_std)
        self.classes: list[str] = ckpt.classes
        self.inputs: int = ckpt.layer_sizes[0]
        side = math.isqrt(self.inputs)
        self.side: int | None = side if side * side == self.inputs else None  # pictures need a square input

    @classmethod
    def load(cls, path: Path | str) -> Predictor:
        """Read the checkpoint at path (CheckpointError says what is wrong) and build its predictor."""
        return cls(checkpoint_file.load(path))

    def _check(self, x: np.ndarray) -> np.ndarray:
        flat = x.reshape(x.shape[0], -1)
        if flat.shape[1] != self.inputs:
            raise ImageError(f"the model expects {self.inputs} pixels per image, the images have {flat.shape[1]}")
        return flat

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """Probabilities (n, k) float32 for images (n, side, side) or (n, inputs) with pixels in [0, 1]."""
        return self.model.predict_proba(self.normalizer.apply_unit(self._check(images)))

    def probabilities_raw(self, pixels: np.ndarray) -> np.ndarray:
        """Probabilities (n, k) for uint8 pixels (n, inputs) in 0..255, as the IDX and CSV files hold them."""
        return self.model.predict_proba(self.normalizer.apply(self._check(pixels)))

    def activations(self, image: np.ndarray) -> list[np.ndarray]:
        """Every layer's activation [a^1 (h1,), ..., output (k,)] for one image (side, side) in [0, 1]."""
        x = self.normalizer.apply_unit(self._check(image.reshape(1, -1)))
        return [a[0] for a in self.model.layer_activations(x)]

    def prediction(self, name: str, image: np.ndarray, probabilities: np.ndarray) -> Prediction:
        """A Prediction for one input."""
        return Prediction(name, image, probabilities, self.classes[int(np.argmax(probabilities))])

    def predict_pictures(self, paths: list[Path], raw: bool = False) -> tuple[list[Prediction], list[tuple[Path, str]]]:
        """Predict every readable picture; returns (predictions, [(path, error message)]), in input order."""
        if self.side is None:
            raise ImageError(f"the model takes {self.inputs} inputs, not a square picture")
        images, ok, failures = [], [], []
        for path in paths:
            try:
                images.append(prepare_image(path, raw))
                ok.append(path)
            except ImageError as exc:
                failures.append((path, str(exc)))
        if not images:
            return [], failures
        probs = self.probabilities(np.stack(images))
        preds = [self.prediction(str(p), img, pr) for p, img, pr in zip(ok, images, probs)]
        if raw:
            for pred in preds:
                pred.warning = raw_problem(pred.image)
        return preds, failures

    def predict_csv(self, path: Path) -> np.ndarray:
        """Probabilities (n, k) for every row of a CSV of digits (a label column ignored), used as they are."""
        from mlpcli.data.csvfile import read_csv_digits

        x, _ = read_csv_digits(path, len(self.classes))
        return self.probabilities_raw(x)


def model_of(ckpt: Checkpoint) -> MLP:
    """The network a checkpoint holds (float32), built by the same factory training uses."""
    model = {**(ckpt.config.get("model") or {}), "activation": ckpt.meta["activation"], "output": ckpt.meta["output"]}
    return build_model(model, ckpt.layer_sizes, params=ckpt.params)


def expand_inputs(inputs: list[Path]) -> list[Path]:
    """Files as given; folders replaced by their images (sorted). Missing paths are kept to fail later."""
    out: list[Path] = []
    for p in inputs:
        if p.is_dir():
            out.extend(sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES))
        else:
            out.append(p)
    return out

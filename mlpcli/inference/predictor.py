"""The predict service: pictures in, the checkpoint's probabilities out."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mlpcli.errors import ImageError
from mlpcli.files.checkpoint import Checkpoint, normalizer, to_model
from mlpcli.inference.pictures import IMAGE_SUFFIXES, prepare_image

LOW_CONFIDENCE = 0.6


@dataclass
class Prediction:
    """One picture's result: the 28x28 the network saw, and its output."""

    file: str
    image: np.ndarray  # (28, 28) float32 in [0, 1], ink bright
    probabilities: np.ndarray  # (k,)
    label: str

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


def expand_inputs(inputs: list[Path]) -> list[Path]:
    """Files as given; folders replaced by their images (sorted). Missing paths are kept to fail later."""
    out: list[Path] = []
    for p in inputs:
        if p.is_dir():
            out.extend(sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES))
        else:
            out.append(p)
    return out


def predict_images(ckpt: Checkpoint, images: np.ndarray) -> np.ndarray:
    """Probabilities (n, k) for images (n, 28, 28) in [0, 1], with the checkpoint's normalization."""
    if images.shape[1] * images.shape[2] != ckpt.layer_sizes[0]:
        raise ImageError(f"the model expects {ckpt.layer_sizes[0]} pixels per image, the images have {images[0].size}")
    model = to_model(ckpt)
    x = normalizer(ckpt).apply_unit(images.reshape(images.shape[0], -1))
    return model.predict_proba(x)


def predict_paths(
    ckpt: Checkpoint, paths: list[Path], raw: bool = False
) -> tuple[list[Prediction], list[tuple[Path, str]]]:
    """Predict every readable picture; returns (predictions, [(path, error message)])."""
    images, ok, failures = [], [], []
    for path in paths:
        try:
            images.append(prepare_image(path, raw))
            ok.append(path)
        except ImageError as exc:
            failures.append((path, str(exc)))
    if not images:
        return [], failures
    probs = predict_images(ckpt, np.stack(images))
    classes = ckpt.classes
    preds = [Prediction(str(p), img, pr, classes[int(np.argmax(pr))]) for p, img, pr in zip(ok, images, probs)]
    return preds, failures


def predict_csv(ckpt: Checkpoint, path: Path) -> np.ndarray:
    """Probabilities (n, k) for every row of a CSV of 28x28 digits (label column ignored), used as they are."""
    from mlpcli.data.csvfile import read_csv_digits

    x, _ = read_csv_digits(path, len(ckpt.classes))
    return predict_images(ckpt, x.reshape(x.shape[0], 28, 28).astype(np.float32) / 255.0)

"""Decision boundaries of models of points in the plane: the class probabilities over a grid."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mlpcli.data.plane import features
from mlpcli.inference.predictor import Predictor


@dataclass
class Grid:
    """Probabilities (size, size, k) float32 over x1 in xs (size,) and x2 in ys (size,)."""

    xs: np.ndarray
    ys: np.ndarray
    probabilities: np.ndarray


def decision_grid(
    predictor: Predictor, feature_names: Sequence[str], bounds: tuple[float, float, float, float], size: int = 64
) -> Grid:
    """The model's class probabilities on a size x size grid over bounds (x1 min, x1 max, x2 min, x2 max)."""
    xs = np.linspace(bounds[0], bounds[1], size, dtype=np.float32)
    ys = np.linspace(bounds[2], bounds[3], size, dtype=np.float32)
    gx, gy = np.meshgrid(xs, ys)
    xy = np.stack([gx.ravel(), gy.ravel()], axis=1)
    probs = predictor.probabilities_raw(features(xy, feature_names))
    return Grid(xs, ys, probs.reshape(size, size, -1))


def bounds_of(*point_sets: np.ndarray, margin: float = 0.1) -> tuple[float, float, float, float]:
    """A box around every point (n, 2) of the sets, with a margin."""
    xy = np.concatenate([p for p in point_sets if p is not None and len(p)])
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    pad = (hi - lo) * margin + 1e-6
    return float(lo[0] - pad[0]), float(hi[0] + pad[0]), float(lo[1] - pad[1]), float(hi[1] + pad[1])

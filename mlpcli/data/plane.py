"""Points in the plane: the neural-network playground's datasets, as mlpcli datasets.

    circle   two classes: a disc inside a ring          xor     two classes: the four quadrants
    gauss    two Gaussian clusters                      spiral  K interleaved arms (2 by default)
    moons    two interleaved half moons                 blobs   K Gaussian clusters (3 by default)
    reg-plane    regression: a value rising across the plane, from -1 to 1
    reg-gauss    regression: six Gaussian bumps, three at +1 and three at -1

The two regression datasets (TensorFlow Playground's) give each point a float32 target in [-1, 1]
instead of a class: a network fits them with one linear output and squared error.

Every dataset draws `points` points with coordinates in about [-6, 6] from its own random stream
(the run's seed), adds Gaussian noise of `noise` times the dataset's scale, and keeps `test_ratio`
of them as the test split. A CSV of `x1,x2,label` rows is read as points too. Input features are
chosen from FEATURES (x1, x2, x1^2, x2^2, x1*x2, sin x1, sin x2); the same map is applied to
points on a grid when a decision boundary is drawn.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from mlpcli.errors import DataError

Array = np.ndarray
SCALE = 5.0  # coordinates lie in about [-SCALE, SCALE], as in TensorFlow Playground
MAX_POINTS = 100_000

FEATURES: dict[str, Callable[[Array, Array], Array]] = {
    "x1": lambda a, b: a,
    "x2": lambda a, b: b,
    "x1^2": lambda a, b: a * a,
    "x2^2": lambda a, b: b * b,
    "x1*x2": lambda a, b: a * b,
    "sin(x1)": lambda a, b: np.sin(a),
    "sin(x2)": lambda a, b: np.sin(b),
}


def features(xy: Array, names: Sequence[str]) -> Array:
    """The chosen features (n, len(names)) float32 of points xy (n, 2)."""
    unknown = [n for n in names if n not in FEATURES]
    if unknown:
        raise DataError(f"data.features: unknown feature {unknown[0]!r}; choose from {', '.join(FEATURES)}")
    a, b = xy[:, 0].astype(np.float64), xy[:, 1].astype(np.float64)
    return np.stack([FEATURES[n](a, b) for n in names], axis=1).astype(np.float32)


def _circle(n: int, k: int, rng: np.random.Generator) -> tuple[Array, Array]:
    y = rng.integers(0, 2, n)
    r = np.where(y == 0, rng.uniform(0, 0.5, n), rng.uniform(0.7, 1.0, n)) * SCALE
    t = rng.uniform(0, 2 * math.pi, n)
    return np.stack([r * np.cos(t), r * np.sin(t)], 1), y


def _xor(n: int, k: int, rng: np.random.Generator) -> tuple[Array, Array]:
    xy = rng.uniform(-SCALE, SCALE, (n, 2))
    xy += np.sign(xy) * 0.3  # a small gap along the axes
    return xy, (xy[:, 0] * xy[:, 1] < 0).astype(np.int64)


def _gauss(n: int, k: int, rng: np.random.Generator) -> tuple[Array, Array]:
    y = rng.integers(0, 2, n)
    centers = np.array([[2.0, 2.0], [-2.0, -2.0]])
    return centers[y] + rng.normal(0, 1.0, (n, 2)), y


def _spiral(n: int, k: int, rng: np.random.Generator) -> tuple[Array, Array]:
    y = rng.integers(0, k, n)
    t = rng.uniform(0, 1, n)
    r = t * SCALE
    angle = 1.75 * t * 2 * math.pi + 2 * math.pi * y / k
    return np.stack([r * np.sin(angle), r * np.cos(angle)], 1), y


def _moons(n: int, k: int, rng: np.random.Generator) -> tuple[Array, Array]:
    y = rng.integers(0, 2, n)
    t = rng.uniform(0, math.pi, n)
    x = np.where(y == 0, np.cos(t), 1 - np.cos(t))
    z = np.where(y == 0, np.sin(t), 0.5 - np.sin(t))
    return np.stack([(x - 0.5) * SCALE * 0.8, (z - 0.25) * SCALE * 0.8], 1), y


def _blobs(n: int, k: int, rng: np.random.Generator) -> tuple[Array, Array]:
    y = rng.integers(0, k, n)
    angles = 2 * math.pi * np.arange(k) / k
    centers = 3.0 * np.stack([np.cos(angles), np.sin(angles)], 1)
    return centers[y] + rng.normal(0, 0.9, (n, 2)), y


# The registry: name -> (generator, default number of classes, noise scale in coordinate units).
DATASETS: dict[str, tuple[Callable[[int, int, np.random.Generator], tuple[Array, Array]], int, float]] = {
    "circle": (_circle, 2, SCALE),
    "xor": (_xor, 2, SCALE),
    "gauss": (_gauss, 2, 2.0),
    "spiral": (_spiral, 2, SCALE),
    "moons": (_moons, 2, SCALE),
    "blobs": (_blobs, 3, 2.0),
}


def _reg_plane(n: int, rng: np.random.Generator) -> tuple[Array, Array]:
    xy = rng.uniform(-SCALE, SCALE, (n, 2))
    return xy, (xy[:, 0] + xy[:, 1]) / (2 * SCALE)


# reg-gauss's bumps: (x, y) as fractions of SCALE, and the sign of the target at the centre
BUMPS = np.array(
    [[-0.66, 0.42, 1], [0, 0.42, -1], [0.66, 0.42, 1], [-0.66, -0.42, -1], [0, -0.42, 1], [0.66, -0.42, -1]]
)


def _reg_gauss(n: int, rng: np.random.Generator) -> tuple[Array, Array]:
    xy = rng.uniform(-SCALE, SCALE, (n, 2))
    centers, signs = BUMPS[:, :2] * SCALE, BUMPS[:, 2]
    dist = np.linalg.norm(xy[:, None, :] - centers[None], axis=2)  # (n, 6)
    height = signs * np.clip(1 - dist / (0.33 * SCALE), 0, 1)  # 1 at a centre, 0 a third of SCALE away
    return xy, height[np.arange(n), np.abs(height).argmax(axis=1)]  # the strongest bump at each point


# Regression datasets: name -> generator of (xy (n, 2), target (n,) in [-1, 1]). Noise moves the points after
# their targets are drawn, so a noisy point carries the value of where it was.
REGRESSION: dict[str, Callable[[int, np.random.Generator], tuple[Array, Array]]] = {
    "reg-plane": _reg_plane,
    "reg-gauss": _reg_gauss,
}
NOISE_SCALE = SCALE


def is_regression(source: str) -> bool:
    """Whether a data.dataset names a regression dataset of points (float targets, no classes)."""
    return source in REGRESSION


def is_plane(source: str) -> bool:
    """Whether a data.dataset names a dataset of points (a name above, or a CSV of x1,x2,label)."""
    if source in DATASETS or source in REGRESSION:
        return True
    if source.lower().endswith(".csv") and Path(source).is_file():
        with open(source, encoding="utf-8-sig") as fh:
            head = fh.readline(256).strip().lower().replace(" ", "")
        return head == "x1,x2,label"
    return False


def points(
    source: str, count: int, noise: float, classes: int | None, rng: np.random.Generator
) -> tuple[Array, Array, int]:
    """(xy float32 (n, 2), labels uint8 (n,), number of classes) of a dataset of points; for a regression dataset
    (xy, targets float32 (n,) in [-1, 1], 0). DataError naming the key that is out of range."""
    if source in REGRESSION:
        if classes is not None:
            raise DataError(f"data.classes: {source} is a regression dataset (targets, not classes); leave it unset")
        if not 1 <= count <= MAX_POINTS:
            raise DataError(f"data.points: must be 1 to {MAX_POINTS:,} (got {count})")
        xy, t = REGRESSION[source](count, rng)
        xy = xy + rng.normal(0, noise * NOISE_SCALE, xy.shape) if noise else xy
        return xy.astype(np.float32), t.astype(np.float32), 0
    if source in DATASETS:
        generate, default_k, scale = DATASETS[source]
        k = classes or default_k
        if not 2 <= k <= 10 or (k != 2 and source not in ("spiral", "blobs")):
            raise DataError(f"data.classes: {source} has 2 classes; spiral and blobs take 2 to 10 (got {k})")
        if not 1 <= count <= MAX_POINTS:
            raise DataError(f"data.points: must be 1 to {MAX_POINTS:,} (got {count})")
        xy, y = generate(count, k, rng)
        xy = xy + rng.normal(0, noise * scale, xy.shape) if noise else xy
        return xy.astype(np.float32), y.astype(np.uint8), k
    return read_points(Path(source))


def read_points(path: Path) -> tuple[Array, Array, int]:
    """A CSV of x1,x2,label rows (labels 0..K-1); DataError naming the line."""
    xy, labels = [], []
    with path.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(fh)
        next(reader, None)
        for line, row in enumerate(reader, start=2):
            if not row or not "".join(row).strip():
                continue
            try:
                a, b, label = float(row[0]), float(row[1]), int(row[2])
            except (ValueError, IndexError):
                raise DataError(
                    f"{path}: line {line}: expected x1,x2,label numbers, got {','.join(row)[:60]!r}"
                ) from None
            if not (math.isfinite(a) and math.isfinite(b)) or not 0 <= label <= 9:
                raise DataError(f"{path}: line {line}: coordinates must be finite and labels 0-9")
            xy.append((a, b))
            labels.append(label)
            if len(labels) > MAX_POINTS:
                raise DataError(f"{path}: more than {MAX_POINTS:,} points")
    if not labels:
        raise DataError(f"{path}: no points after the header")
    y = np.array(labels, np.uint8)
    return np.array(xy, np.float32), y, max(2, int(y.max()) + 1)


def split(count: int, test_ratio: float, rng: np.random.Generator) -> tuple[Array, Array]:
    """Row indices (train, test) keeping test_ratio of count rows for testing."""
    order = rng.permutation(count)
    n_test = int(round(count * test_ratio))
    return np.sort(order[n_test:]), np.sort(order[:n_test])

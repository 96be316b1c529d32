"""Preparing arrays: pixel scaling and normalization, and the validation split."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

NORMALIZATIONS = ("none", "scale01", "standardize")
# Per-pixel standardization divides by each pixel's std; border pixels that are almost
# always black have a tiny std and would turn a stray test-time stroke into a huge value.
MIN_PIXEL_STD = 0.05


@dataclass(frozen=True)
class Normalizer:
    """x = (pixels / 255 - mean) / std, with mean and std scalars or per-pixel vectors (float32)."""

    mean: np.ndarray
    std: np.ndarray

    def __post_init__(self) -> None:
        object.__setattr__(self, "_scale", (1.0 / (255.0 * self.std)).astype(np.float32))
        object.__setattr__(self, "_shift", (-self.mean / self.std).astype(np.float32))

    def apply(self, pixels: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """uint8 (or 0..255 float) pixels (n, d) -> normalized float32 (n, d); out is reused if given."""
        out = np.multiply(pixels, self._scale, out=out, dtype=np.float32)  # type: ignore[attr-defined]
        out += self._shift  # type: ignore[attr-defined]
        return out

    def apply_unit(self, unit: np.ndarray) -> np.ndarray:
        """Pixels already scaled to [0, 1] (n, d) -> normalized float32."""
        return ((unit - self.mean) / self.std).astype(np.float32)


def fit_normalizer(
    kind: str, pixels: np.ndarray, per_pixel: bool = False, rows: np.ndarray | None = None
) -> Normalizer:
    """Statistics from the training split only: none (0..255), scale01 ([0, 1]) or standardize.

    pixels: uint8 (n, d); rows selects the training rows (default: all). Computed in chunks,
    so no float copy of the whole set is ever made.
    """
    if kind == "none":
        return Normalizer(np.array(0.0, np.float32), np.array(1.0 / 255.0, np.float32))
    if kind == "scale01":
        return Normalizer(np.array(0.0, np.float32), np.array(1.0, np.float32))
    if kind != "standardize":
        raise ValueError(f"unknown normalization {kind!r}; choose one of {', '.join(NORMALIZATIONS)}")
    index = np.arange(pixels.shape[0]) if rows is None else rows
    n = max(index.size, 1)
    total = np.zeros(pixels.shape[1])
    squares = np.zeros(pixels.shape[1])
    for i in range(0, index.size, 1024):
        chunk = pixels[index[i : i + 1024]].astype(np.float64)
        chunk /= 255.0
        total += chunk.sum(axis=0)
        chunk *= chunk
        squares += chunk.sum(axis=0)
    if per_pixel:
        mean = total / n
        std = np.sqrt(np.maximum(squares / n - mean**2, 0.0))
        return Normalizer(mean.astype(np.float32), np.maximum(std, MIN_PIXEL_STD).astype(np.float32))
    count = n * pixels.shape[1]
    mean = float(total.sum() / count)
    std = float(np.sqrt(max(squares.sum() / count - mean**2, 1e-12)))
    return Normalizer(np.array(mean, np.float32), np.array(std, np.float32))


def validation_split(labels: np.ndarray, size: int | float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Seeded, class-stratified split: (train indices, validation indices), each sorted (float targets of a
    regression dataset: a plain random split).

    size: a count (int >= 0) or a fraction in [0, 1). Each class gives its share of the
    validation set, rounded by largest remainder so the total is exactly the requested size.
    """
    n = labels.shape[0]
    count = int(round(size * n)) if isinstance(size, float) else int(size)
    if not 0 <= count < n:
        raise ValueError(f"validation size {size} leaves no training data (the split has {n} samples)")
    if count == 0:
        return np.arange(n), np.arange(0)
    if labels.dtype.kind == "f":  # regression targets: no classes to stratify by
        val = np.sort(rng.permutation(n)[:count])
        return np.setdiff1d(np.arange(n), val), val
    classes, class_counts = np.unique(labels, return_counts=True)
    exact = class_counts * count / n
    take = np.floor(exact).astype(int)
    remainder = count - take.sum()
    take[np.argsort(-(exact - take), kind="stable")[:remainder]] += 1
    perm = rng.permutation(n)
    val_parts = []
    for c, k in zip(classes, take):
        members = perm[labels[perm] == c]
        val_parts.append(members[:k])
    val = np.sort(np.concatenate(val_parts))
    mask = np.ones(n, dtype=bool)
    mask[val] = False
    return np.flatnonzero(mask), val

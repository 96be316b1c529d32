"""Turning a dataset name or folder into verified uint8 arrays."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mlpcli.data import plane
from mlpcli.data.csvfile import read_csv_digits
from mlpcli.data.download import fetch
from mlpcli.data.idx import read_split
from mlpcli.data.plane import is_plane
from mlpcli.data.sources import DATASETS, DIGITS, FILE_NAMES, SAMPLE_DIR, SAMPLE_NAME, file_candidates
from mlpcli.errors import DataError
from mlpcli.events import Callback

NUM_CLASSES = 10


@dataclass(frozen=True)
class Dataset:
    """Train and test splits: uint8 images (n, 784) (float32 features (n, f) for points in the plane), labels
    uint8 (n,) (float32 targets (n,) for a regression dataset, whose one class is "value"); for points, also their
    coordinates (n, 2) float32."""

    name: str
    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    classes: tuple[str, ...]
    train_xy: np.ndarray | None = None
    test_xy: np.ndarray | None = None

    @property
    def regression(self) -> bool:
        """Whether the labels are float targets (a regression dataset of points: one output named "value")."""
        return self.train_y.dtype.kind == "f"

    @property
    def num_features(self) -> int:
        """Pixels per image."""
        return int(self.train_x.shape[1])


def known_datasets() -> list[str]:
    """Names accepted besides a folder path."""
    return [*DATASETS, SAMPLE_NAME]


def folder_files(folder: Path) -> dict[str, Path]:
    """The four IDX files in a local folder (gz or not); DataError naming what is missing."""
    if not folder.exists():
        raise DataError(f"{folder}: no such folder (and not a dataset name: {', '.join(known_datasets())})")
    if not folder.is_dir():
        raise DataError(f"{folder}: not a folder; a local dataset is a folder holding the four IDX files")
    found: dict[str, Path] = {}
    for role, name in FILE_NAMES.items():
        path = next((folder / c for c in file_candidates(name) if (folder / c).is_file()), None)
        if path is None:
            raise DataError(f"{folder}: missing {name} (or {name.removesuffix('.gz')})")
        found[role] = path
    return found


def resolve_files(
    source: str, *, data_dir: Path | None = None, offline: bool = False, callbacks: list[Callback] | None = None
) -> tuple[str, dict[str, Path], tuple[str, ...]]:
    """(dataset name, role -> path, class names) for a dataset name or folder."""
    data_dir = Path(data_dir) if data_dir is not None else None  # a str from a library caller works too
    if source in DATASETS:
        spec = DATASETS[source]
        files = folder_files(data_dir) if data_dir else fetch(spec, offline=offline, callbacks=callbacks)
        return spec.name, files, spec.classes
    if source == SAMPLE_NAME:
        return SAMPLE_NAME, folder_files(data_dir or SAMPLE_DIR), DIGITS
    folder = Path(source).expanduser()
    return str(folder), folder_files(folder), DIGITS


@dataclass(frozen=True)
class PlaneOptions:
    """How a dataset of points is drawn: the config's data.points, noise, features, classes, test_ratio."""

    points: int = 500
    noise: float = 0.0
    features: tuple[str, ...] = ("x1", "x2")
    classes: int | None = None
    test_ratio: float = 0.5
    seed: int = 0

    @classmethod
    def of(cls, data: Any, seed: int) -> PlaneOptions:
        """From a config's data section and the run's seed (data.seed, when set, draws the points instead)."""
        own = getattr(data, "seed", None)
        return cls(
            data.points, data.noise, tuple(data.features), data.classes, data.test_ratio, seed if own is None else own
        )


def _plane_dataset(source: str, o: PlaneOptions) -> Dataset:
    # its own stream of the seed: the points never depend on how the model is initialized or shuffled
    rng = np.random.default_rng(np.random.SeedSequence([o.seed, 2_718_281]))
    xy, y, k = plane.points(source, o.points, o.noise, o.classes, rng)
    train, test = plane.split(len(y), o.test_ratio, rng)
    x = plane.features(xy, o.features)
    classes = tuple(str(c) for c in range(k)) if k else ("value",)  # regression: one output, the target
    return Dataset(source, x[train], y[train], x[test], y[test], classes, xy[train], xy[test])


def load_dataset(
    source: str,
    *,
    data_dir: Path | None = None,
    offline: bool = False,
    callbacks: list[Callback] | None = None,
    test: Path | None = None,
    plane: PlaneOptions | None = None,
) -> Dataset:
    """Load train and test splits of a dataset name (mnist, fashion-mnist, mnist-sample), a folder of IDX
    files, a labelled CSV file (Kaggle's train.csv: no test split unless `test` names a labelled CSV), or
    points in the plane (circle, xor, gauss, spiral, moons, blobs, a CSV of x1,x2,label; see data.plane)."""
    if is_plane(source):
        return _plane_dataset(source, plane or PlaneOptions())
    if source.lower().endswith(".csv"):
        name, classes = source, DIGITS
        train_x, labels = read_csv_digits(Path(source).expanduser(), NUM_CLASSES)
        if labels is None:
            raise DataError(f"{source}: has no label column, so it cannot be trained on (predict it instead)")
        train_y = labels
        test_x, test_y = np.zeros((0, train_x.shape[1]), np.uint8), np.zeros(0, np.uint8)
    else:
        name, files, classes = resolve_files(source, data_dir=data_dir, offline=offline, callbacks=callbacks)
        train_x, train_y = read_split(files["train_images"], files["train_labels"], NUM_CLASSES)
        test_x, test_y = read_split(files["test_images"], files["test_labels"], NUM_CLASSES)
    if test is not None:  # a labelled CSV replaces the test split
        test_x, labels = read_csv_digits(test, NUM_CLASSES)
        if labels is None:
            raise DataError(f"{test}: data.test needs a label column (label,pixel0,...)")
        test_y = labels
    if train_x.shape[1] != test_x.shape[1]:
        raise DataError(f"{name}: training images have {train_x.shape[1]} pixels but test images {test_x.shape[1]}")
    if train_x.shape[0] == 0:
        raise DataError(f"{name}: the training split is empty")
    return Dataset(name, train_x, train_y, test_x, test_y, classes)

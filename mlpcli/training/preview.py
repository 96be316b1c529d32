"""What a config's training batches look like: digits as they are and as the batch stream distorts them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mlpcli.config import ExperimentConfig
from mlpcli.events import Callback
from mlpcli.training.service import prepare


@dataclass
class Preview:
    """Training digits as a config's batch stream delivers them, before normalization."""

    dataset: str
    classes: list[str]
    originals: np.ndarray  # uint8 (k, h, w)
    augmented: np.ndarray  # float32 (k, h, w), 0..255
    labels: np.ndarray


def preview(
    cfg: ExperimentConfig, count: int = 8, *, offline: bool = False, callbacks: list[Callback] | None = None
) -> Preview:
    """The first `count` digits of the config's first training epoch, as they are and as augmented."""
    p = prepare(cfg, offline=offline, callbacks=callbacks)
    order = p.state.rng.permutation(len(p.train))[:count]
    rows = order if p.train.index is None else p.train.index[order]
    x = p.train.x[rows]
    s = int(round(np.sqrt(x.shape[1])))
    images = x.reshape(len(rows), s, -1)
    aug = p.batches.augmenter
    augmented = images.astype(np.float32) if aug is None else aug(images, p.batches.rng)
    return Preview(p.dataset.name, list(p.dataset.classes), images, augmented.reshape(images.shape), p.train.y[rows])

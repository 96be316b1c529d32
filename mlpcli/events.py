"""Events the library emits instead of printing; the CLI renders them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class DownloadStart:
    """A file download began from url; total is None when the server does not say."""

    file: str
    url: str
    total: int | None


@dataclass(frozen=True)
class DownloadProgress:
    """received bytes of file so far."""

    file: str
    received: int


@dataclass(frozen=True)
class DownloadEnd:
    """A download finished: ok, or failed with reason (the next mirror is tried)."""

    file: str
    url: str
    ok: bool
    reason: str = ""


@dataclass(frozen=True)
class TrainStart:
    """Training begins (or resumes) at start_epoch of epochs, with steps_per_epoch batches each; monitor is
    the metric that chooses the best epoch (the one checkpoint.npz keeps)."""

    epochs: int
    start_epoch: int
    steps_per_epoch: int
    n_train: int
    monitor: str = "val_loss"


@dataclass(frozen=True)
class EpochStart:
    """Epoch (1-based) begins with learning rate lr."""

    epoch: int
    lr: float


@dataclass(frozen=True)
class BatchEnd:
    """A batch finished: running mean loss of the epoch so far."""

    epoch: int
    batch: int
    running_loss: float
    samples: int


@dataclass(frozen=True)
class EpochEnd:
    """An epoch finished, with its metrics row (as written to metrics.csv)."""

    epoch: int
    metrics: dict[str, Any]
    is_best: bool


@dataclass(frozen=True)
class Message:
    """Something worth telling the user once: level "warning", "info", or "detail" (only when not quiet)."""

    text: str
    level: str = "info"


@dataclass
class History:
    """Per-epoch metric rows and where the run ended. The best epoch is the one checkpoint.npz keeps: the
    best value of monitor (lowest loss, highest accuracy); every "best" mlpcli shows means that epoch."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int | None = None
    stopped_early: bool = False
    monitor: str = "val_loss"

    def best_row(self) -> dict[str, Any] | None:
        """The best epoch's metrics (None before the first epoch)."""
        return best_row(self.rows, self.best_epoch)


def best_row(rows: list[dict[str, Any]], best_epoch: int | None) -> dict[str, Any] | None:
    """The row of epoch best_epoch in metric rows (the last row when best_epoch is None or absent)."""
    for row in rows:
        if best_epoch is not None and row.get("epoch") == best_epoch:
            return row
    return rows[-1] if rows else None


Event = Any
Callback = Callable[[Event], None]


def emit(callbacks: list[Callback] | tuple[Callback, ...] | None, event: Event) -> None:
    """Send event to every callback."""
    for callback in callbacks or ():
        callback(event)

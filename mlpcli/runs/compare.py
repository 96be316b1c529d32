"""Comparing runs: the config keys that differ, the last and the best epoch's metrics, and the learning curves."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlpcli.config import flatten, read_yaml
from mlpcli.errors import ConfigError, MlpcliError
from mlpcli.events import best_row
from mlpcli.runs.folder import RunFolder

CURVES = ("train_loss", "val_loss", "train_accuracy", "val_accuracy")


@dataclass
class RunRecord:
    """What a run folder says about its run."""

    folder: Path
    name: str
    status: str
    config: dict[str, Any]  # flattened: "optimizer.lr" -> 0.05
    rows: list[dict[str, Any]]
    test_accuracy: float | None
    best_epoch: int | None = None

    def final(self) -> dict[str, Any]:
        """The last epoch's metrics."""
        return {k: v for k, v in (self.rows[-1] if self.rows else {}).items() if k != "seconds"}

    def best(self) -> dict[str, Any]:
        """The best epoch's metrics: the epoch checkpoint.npz holds (the last epoch when status.json is
        missing)."""
        return {k: v for k, v in (best_row(self.rows, self.best_epoch) or {}).items() if k != "seconds"}


def load_run(path: Path) -> RunRecord:
    """The run in a folder (or the folder of a file in it, e.g. its checkpoint.npz)."""
    folder = path.parent if path.is_file() else path
    run = RunFolder(folder)
    if not run.metrics.is_file():
        raise MlpcliError(f"{path}: not a run folder (no metrics.csv); give folders written by mlpcli train")
    try:
        raw = read_yaml(run.config)
    except ConfigError as exc:
        raise MlpcliError(str(exc)) from None
    status = run.read_status()
    rows = run.read_metrics()
    return RunRecord(
        folder,
        str((status.name if status else "") or (raw or {}).get("name") or folder.name),
        status.status if status else "unknown",
        flatten(raw if isinstance(raw, dict) else {}),
        rows,
        status.test_accuracy if status else None,
        status.best_epoch if status else None,
    )


def differing_keys(records: list[RunRecord]) -> dict[str, list[Any]]:
    """Config keys whose values are not the same in every run, with each run's value (None when absent)."""
    keys = sorted({k for r in records for k in r.config})
    out = {}
    for key in keys:
        values = [r.config.get(key) for r in records]
        if any(v != values[0] for v in values[1:]):
            out[key] = values
    return out


def compare(paths: list[Path]) -> dict[str, Any]:
    """The comparison of runs as one JSON-ready document."""
    if len(paths) < 2:
        raise MlpcliError("compare needs at least two runs")
    records = [load_run(p) for p in paths]
    return {
        "runs": [
            {"folder": str(r.folder), "name": r.name, "status": r.status, "epochs": len(r.rows),
             "test_accuracy": r.test_accuracy, "final": r.final(), "best": r.best(),
             "curves": {k: [row.get(k) for row in r.rows] for k in CURVES}}
            for r in records
        ],
        "differences": differing_keys(records),
    }

"""What every tracker is: the interface (Tracker) and what it sees of a run (TrackedRun)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mlpcli.runs.folder import RunFolder, RunStatus


@dataclass
class TrackedRun:
    """What a tracker sees of a run: its folder, the prepared training (config, model, data), its labels."""

    folder: RunFolder
    prepared: Any  # mlpcli.training.service.Prepared
    labels: dict[str, Any] = field(default_factory=dict)  # sweep, trial, mlflow_parent


class Tracker:
    """The tracker interface (each method may raise; the caller switches a failing tracker off)."""

    name = ""

    def start(self, run: TrackedRun) -> None:
        """The run begins (or resumes)."""

    def epoch(self, run: TrackedRun, row: dict[str, Any]) -> None:
        """An epoch ended: row is its metrics.csv row."""

    def end(self, run: TrackedRun, status: RunStatus) -> None:
        """The run ended (finished, interrupted, diverged, failed, pruned)."""

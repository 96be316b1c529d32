"""Tracking: a run's epochs also logged where practitioners look (TensorBoard, MLflow). One registry entry each.

The run folder stays the source of truth: a tracker that fails (library missing, server down)
says so in one warning and is switched off; the run goes on and loses nothing. A tracker is a
class with start(run), epoch(run, row) and end(run, status); adding one is a module beside
these and an entry in TRACKERS (and its name in config.TrackerName, which a test holds equal).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mlpcli.events import Callback, Message, emit
from mlpcli.runs.folder import RunStatus
from mlpcli.training.tracking.base import TrackedRun, Tracker

__all__ = ["TRACKERS", "TrackedRun", "Tracker", "Trackers"]


def _tensorboard() -> Tracker:
    from mlpcli.training.tracking.tensorboard import TensorBoardTracker

    return TensorBoardTracker()


def _mlflow() -> Tracker:
    from mlpcli.training.tracking.mlflow import MlflowTracker

    return MlflowTracker()


TRACKERS: dict[str, Callable[[], Tracker]] = {"tensorboard": _tensorboard, "mlflow": _mlflow}


class Trackers:
    """The run's trackers, each switched off after its first failure with one warning."""

    def __init__(self, names: list[str], run: TrackedRun, callbacks: list[Callback] | None) -> None:
        self.run, self.callbacks = run, callbacks
        self.live: list[Tracker] = []
        for name in dict.fromkeys(names):
            tracker = self._call(name, lambda n=name: TRACKERS[n]())
            if tracker is not None and self._call(name, tracker.start, run) is not False:
                self.live.append(tracker)

    def _call(self, name: str, fn: Callable[..., Any], *args: Any) -> Any:
        try:
            result = fn(*args)
            return True if result is None else result
        except Exception as exc:  # tracking never costs a run
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            emit(self.callbacks, Message(f"{name} tracking is off for this run: {reason[:300]}", "warning"))
            return False

    def _each(self, method: str, *args: Any) -> None:
        for tracker in list(self.live):
            if self._call(tracker.name, getattr(tracker, method), self.run, *args) is False:
                self.live.remove(tracker)

    def epoch(self, row: dict[str, Any]) -> None:
        """Log one epoch's row to every live tracker."""
        self._each("epoch", row)

    def end(self, status: RunStatus) -> None:
        """Close every live tracker with the run's final status."""
        self._each("end", status)

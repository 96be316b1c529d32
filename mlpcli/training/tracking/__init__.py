"""Tracking: a run's epochs also logged where practitioners look (TensorBoard, MLflow). One registry entry each.

The run folder stays the source of truth: a tracker that fails (library missing, server down, a read-only
store) says so in one whole warning and is switched off; the run goes on and loses nothing. Trackers never hold
a run hostage: together they may delay it by at most BUDGET_SECONDS over the whole run (each call waits at most
what is left of it; a tracker that takes longer is switched off and left to finish on its own). A tracker is a
class with start(run), epoch(run, row) and end(run, status); adding one is a module beside
these and an entry in TRACKERS (and its name in config.TrackerName, which a test holds equal).
"""

from __future__ import annotations

import threading
import time
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


BUDGET_SECONDS = 15.0  # what tracking may cost a run, in all


def _one_line(exc: BaseException) -> str:
    """An exception's whole message as one line (never cut: its last words are often the fix)."""
    return " ".join(str(exc).split()) or type(exc).__name__


class Trackers:
    """The run's trackers, each switched off after its first failure with one warning; together they cost the
    run at most `budget` seconds of waiting."""

    def __init__(
        self, names: list[str], run: TrackedRun, callbacks: list[Callback] | None, budget: float | None = None
    ) -> None:
        self.run, self.callbacks = run, callbacks
        self.budget = BUDGET_SECONDS if budget is None else budget
        self.left = self.budget
        self.live: list[Tracker] = []
        for name in dict.fromkeys(names):
            tracker = self._call(name, lambda n=name: TRACKERS[n]())
            if tracker is not None and tracker is not False and self._call(name, tracker.start, run) is not False:
                self.live.append(tracker)

    def _call(self, name: str, fn: Callable[..., Any], *args: Any) -> Any:
        """fn(*args) on a helper thread, waited for at most what is left of the budget; False when it failed
        or ran out of time (said in one warning), else its result (True for None)."""
        outcome: dict[str, Any] = {}

        def call() -> None:
            try:
                outcome["value"] = fn(*args)
            except BaseException as exc:  # handed back to the training thread below
                outcome["error"] = exc

        thread = threading.Thread(target=call, name=f"mlpcli-{name}", daemon=True)
        start = time.monotonic()
        thread.start()
        thread.join(max(self.left, 0.0))
        self.left -= time.monotonic() - start
        if thread.is_alive():
            self._warn(
                name,
                f"it made the run wait {self.budget:g} s (a tracking store or server that does not answer); "
                "the run's own files are complete",
            )
            return False
        if "error" in outcome:
            error = outcome["error"]
            if not isinstance(error, Exception):  # Ctrl-C and exits are the run's, not the tracker's
                raise error
            self._warn(name, _one_line(error))
            return False
        value = outcome.get("value")
        return True if value is None else value

    def _warn(self, name: str, reason: str) -> None:
        emit(self.callbacks, Message(f"{name} tracking is off for this run: {reason}", "warning"))

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

"""What a sweep reports as it runs (events for the CLI to word) and its one error for invalid trials."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlpcli.errors import MlpcliError


class SweepInvalid(MlpcliError):
    """Some trial configs would be invalid; `problems` has one line per bad trial."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(f"{len(problems)} trial config(s) would be invalid")
        self.problems = problems


@dataclass(frozen=True)
class SweepStart:
    """A sweep begins (or resumes with `done` trials already finished)."""

    name: str
    folder: str
    trials: int
    parallel: int
    threads: int
    where: str
    done: int
    rerun: int
    metric: str = "value"


@dataclass(frozen=True)
class TrialStarted:
    """A trial was sent to a worker."""

    number: int
    params: dict[str, Any]
    run_dir: str


@dataclass(frozen=True)
class TrialEpoch:
    """A worker finished an epoch of a trial."""

    number: int
    epoch: int
    value: float | None
    pruning: bool


@dataclass(frozen=True)
class TrialEnded:
    """A trial ended: complete, pruned or failed (with the reason)."""

    number: int
    state: str
    value: float | None
    reason: str | None

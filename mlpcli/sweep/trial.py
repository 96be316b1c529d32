"""One sweep trial, as a worker runs it: an ordinary training run, reporting each epoch to the driver.

This runs in a worker process (local) or a Ray task (cluster); it imports nothing of Optuna
or Ray. What it needs arrives in a TrialSpec; what it found goes back as a plain dict.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from mlpcli.config import config_from_dict
from mlpcli.errors import MlpcliError, TrainingDiverged
from mlpcli.events import EpochEnd, best_row
from mlpcli.runs.folder import RunFolder
from mlpcli.training import service as training
from mlpcli.training.lifecycle import train_run


class Reporter(Protocol):
    """Carries a trial's epochs to the driver; report() says whether the driver wants it stopped after that
    epoch (with wait, it waits for the driver's answer about exactly that epoch)."""

    def report(self, number: int, epoch: int, metrics: dict[str, Any], wait: bool = False) -> bool: ...


@dataclass
class TrialSpec:
    """Everything a worker needs to run trial `number`."""

    number: int
    sweep: str
    config: dict[str, Any]  # the base config, raw
    overrides: list[str]  # the trial's parameters, as --set overrides
    params: dict[str, Any]
    metric: str
    maximize: bool
    run_dir: str | None  # None: run in a temporary folder and send the files back (no shared filesystem)
    offline: bool = False
    labels: dict[str, Any] = field(default_factory=dict)
    pruning: bool = False  # the driver may stop it: each epoch's report waits for the driver's answer


def best_value(rows: list[dict[str, Any]], metric: str, best_epoch: int | None) -> float | None:
    """The trial's value: the sweep's metric at the best epoch, the one the trial's checkpoint.npz holds (so
    the sweep ranks what its checkpoints give)."""
    row = best_row(rows, best_epoch)
    return None if row is None or row.get(metric) is None else float(row[metric])


def run_trial(spec: TrialSpec, reporter: Reporter | None = None) -> dict[str, Any]:
    """Train one trial; returns number, state (complete, pruned, failed), value, reason, history, run_dir, files."""
    folder = Path(spec.run_dir) if spec.run_dir else Path(tempfile.mkdtemp(prefix=f"mlpcli-trial-{spec.number}-"))
    result: dict[str, Any] = {
        "number": spec.number,
        "state": "failed",
        "value": None,
        "reason": None,
        "history": [],
        "run_dir": spec.run_dir,
        "files": None,
    }

    planned: list[int] = []

    def on_event(event: object) -> None:
        if isinstance(event, EpochEnd) and reporter is not None:
            stop = reporter.report(spec.number, event.epoch, event.metrics, wait=spec.pruning)
            if stop and event.epoch < planned[0]:  # a trial that ran all its epochs is complete
                raise training.Stopped(f"pruned after epoch {event.epoch}")

    prepared: list[training.Prepared] = []  # the run, once prepared (its history, whatever happens next)
    try:
        cfg = config_from_dict(spec.config, f"trial {spec.number}", spec.overrides)
        planned.append(cfg.train.epochs)
        labels = {**spec.labels, "sweep": spec.sweep, "trial": spec.number}

        def keep(p: training.Prepared, _: Path) -> None:
            prepared.append(p)

        train_run(cfg, run_dir=folder, offline=spec.offline, labels=labels, callbacks=[on_event], on_prepared=keep)
        result["state"] = "complete"
    except training.Stopped as exc:
        result.update(state="pruned", reason=str(exc))
    except (TrainingDiverged, MlpcliError) as exc:
        result["reason"] = str(exc)
    except training.Interrupted as exc:
        result["reason"] = str(exc)
    except Exception as exc:  # a worker must report, not vanish: the sweep goes on
        result["reason"] = f"{type(exc).__name__}: {exc}"
    if prepared:
        history = prepared[0].history
        result["history"] = history.rows
        result["value"] = best_value(history.rows, spec.metric, history.best_epoch)
    if spec.run_dir is None:
        result["files"] = {n: (folder / n).read_bytes() for n in RunFolder.RESULT_FILES if (folder / n).is_file()}
        shutil.rmtree(folder, ignore_errors=True)
    return result

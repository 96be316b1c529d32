"""Resuming: what `train --resume` continues, where, and with which changes, decided before anything is written.

A run folder is written only by the run that made it. A last.npz inside an unfinished run
folder continues there. A checkpoint anywhere else (a copy, a folder of the user's own)
continues in a new run folder. A finished run is continued only when more epochs are asked
for, and then into a new run folder, so its record stays as it was. Settings changed on the
command line are returned as changes (key -> [old, new]) from the resumed epoch on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlpcli.config import ExperimentConfig, config_from_dict, flatten, load_config
from mlpcli.errors import CheckpointError, ConfigError
from mlpcli.files import checkpoint
from mlpcli.runs.folder import RunFolder


@dataclass
class ResumePlan:
    """What a resume does: the checkpoint, the config, and the folder to continue in (None: a new one)."""

    checkpoint: checkpoint.Checkpoint
    config: ExperimentConfig
    run_in: Path | None
    changes: dict[str, list[Any]] = field(default_factory=dict)
    note: str = ""  # one line for the user when the plan is not the obvious one

    @property
    def epoch(self) -> int:
        """The epochs the checkpoint has done."""
        return int(self.checkpoint.meta.get("epoch", 0))


def plan_resume(given: Path, config: Path | None, overrides: list[str]) -> ResumePlan:
    """Check a --resume argument (a last.npz or a run folder) and decide; raises a one-line MlpcliError."""
    path = RunFolder(given).last if given.is_dir() else given
    ckpt = checkpoint.load(path)
    resume = ckpt.meta.get("resume")
    if not isinstance(resume, dict) or "rng_state" not in resume:
        hint = f"; resume from {RunFolder(path.parent).last}" if RunFolder(path.parent).last.is_file() else ""
        raise CheckpointError(
            f"{path}: holds no resume state (a best-epoch checkpoint, or not written by mlpcli train){hint}"
        )
    stored = ckpt.meta.get("config")
    if config is not None:
        cfg = load_config(config, overrides)
    elif isinstance(stored, dict):
        cfg = config_from_dict(stored, f"{path} (its stored config)", overrides)
    else:
        raise ConfigError(f"{path}: has no stored config; give the config it was trained with (--config)")
    before = flatten(stored) if isinstance(stored, dict) else {}
    changes = {k: [before.get(k), v] for k, v in flatten(cfg.model_dump(mode="json")).items() if before.get(k) != v}
    epoch = int(ckpt.meta.get("epoch", 0))
    folder = RunFolder(path.parent)
    status = folder.read_status() if path.name == RunFolder.LAST else None
    more = f"mlpcli train --resume {path} --epochs {max(epoch * 2, epoch + 1)}"
    if epoch >= cfg.train.epochs:
        if status is not None and status.status != "finished" and epoch >= (status.epochs_planned or 0):
            # every epoch was trained and saved; what was cut short is the end: the test report and the status
            return ResumePlan(
                ckpt,
                cfg,
                folder.path,
                changes,
                f"{folder.path} trained all {epoch} epochs but did not finish: finishing it (its test report "
                "and status)",
            )
        if status is not None and status.status != "finished":
            planned = status.epochs_planned or epoch + 1
            raise CheckpointError(
                f"{folder.path} stopped after epoch {epoch} of {planned}; --epochs is the total: give more than "
                f"{epoch} to continue it (mlpcli train --resume {path} --epochs {max(planned, epoch + 1)})"
            )
        finished = status is not None
        done = f"{folder.path}: that run finished all {epoch} epochs" if finished else f"{path} has done {epoch} epochs"
        raise CheckpointError(f"{done}; to train longer from its weights into a new run folder: {more}")
    if status is None:
        return ResumePlan(
            ckpt,
            cfg,
            None,
            changes,
            f"{path} is not in an unfinished run folder: continuing after epoch {epoch} in a new run folder",
        )
    if status.status == "finished":
        return ResumePlan(
            ckpt,
            cfg,
            None,
            changes,
            f"{folder.path} finished; training epochs {epoch + 1}-"
            f"{cfg.train.epochs} from its weights in a new run folder",
        )
    return ResumePlan(ckpt, cfg, folder.path, changes)

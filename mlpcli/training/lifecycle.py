"""A run's life, owned in one place: choose and lock its folder, prepare, track, train and checkpoint, finish or
resume, release. `mlpcli train`, `mlpcli.train` (the Python API) and a sweep's trial all call `train_run`; the
playground's session starts the same way (`service.prepare`) and writes its checkpoints with the same writer
(`snapshot.save`), but keeps no folder: it is a run that lives in a page.

What the callers differ in is what they show (events through callbacks) and where the folder comes from: a
folder of the caller's choice (`out`: absent or empty, or `overwrite`), the folder of a run being continued
(`resume`), one the caller already owns (`run_dir`: a sweep's trial), or a new runs/<name>/<time>.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from mlpcli.config import ExperimentConfig, config_from_dict
from mlpcli.errors import MlpcliError
from mlpcli.events import Callback
from mlpcli.files.locks import FileLock
from mlpcli.runs.folder import RunFolder, RunFolderUsed, claim_run_dir
from mlpcli.training import service
from mlpcli.training.resume import ResumePlan


def add_trackers(cfg: ExperimentConfig, names: Sequence[str] | None) -> ExperimentConfig:
    """cfg with `names` added to train.track (`--track` adds to the config's trackers, never replaces them);
    ConfigError naming an unknown tracker."""
    if not names:
        return cfg
    track = list(dict.fromkeys([*cfg.train.track, *names]))
    raw = cfg.model_dump(mode="json")
    raw["train"]["track"] = track
    return config_from_dict(raw, "--track")


def claim(name: str, out: Path | None, resume_in: Path | None, overwrite: bool) -> tuple[RunFolder, FileLock]:
    """Lock the run's folder (runs.folder.claim_run_dir); a used --out folder is refused with what works."""
    try:
        return claim_run_dir(name, out=out, resume_in=resume_in, overwrite=overwrite)
    except RunFolderUsed as exc:
        folder = RunFolder(exc.folder)
        status = folder.read_status(live=False) if folder.status_file.is_file() else None
        if status is not None and status.status == "finished":
            more = max(2 * (status.epochs_done or 1), (status.epochs_done or 0) + 1)
            hint = (
                f"it holds a finished run: choose another --out, replace it with --overwrite, or train longer "
                f"from its weights with mlpcli train --resume {folder.last} --epochs {more}"
            )
        elif folder.last.exists():
            hint = f"continue it with --resume {folder.last}, choose another --out, or replace it with --overwrite"
        else:
            hint = "choose another --out, or replace its run with --overwrite"
        raise MlpcliError(f"{exc}; {hint}") from None


def train_run(
    cfg: ExperimentConfig,
    *,
    out: Path | None = None,
    overwrite: bool = False,
    resume: ResumePlan | None = None,
    run_dir: Path | None = None,
    track: Sequence[str] | None = None,
    offline: bool = False,
    labels: dict[str, Any] | None = None,
    callbacks: list[Callback] | None = None,
    prepare_callbacks: list[Callback] | None = None,
    on_prepared: Callable[[service.Prepared, Path], None] | None = None,
) -> service.TrainResult:
    """Train cfg into its run folder from start to finish (or from `resume` on), and release the folder.

    cfg's trackers plus `track`; `labels` (sweep, trial) go to status.json and the trackers; `callbacks` see
    training's events, `prepare_callbacks` the data's (downloads); `on_prepared(prepared, folder)` runs once
    the run is prepared, before its first epoch. A folder that nothing was trained into is left as it was
    found. Raises MlpcliError (one line), service.Interrupted (with the last checkpoint to resume from),
    service.Stopped, TrainingDiverged.
    """
    cfg = add_trackers(cfg, track)
    if run_dir is not None:  # the caller's own folder (a sweep's trial): locked by the run itself
        folder, lock = RunFolder(run_dir), None
    else:
        folder, lock = claim(cfg.name, out, resume.run_in if resume else None, overwrite)
    try:
        try:
            prepared = service.prepare(cfg, offline=offline, callbacks=prepare_callbacks)
        except BaseException:
            if run_dir is None and out is None and (resume is None or resume.run_in is None):
                folder.discard_if_empty()  # nothing was trained: leave no empty run behind
            raise
        if on_prepared is not None:
            on_prepared(prepared, folder.path)
        return service.run(
            prepared,
            folder.path,
            resume=resume.checkpoint if resume else None,
            callbacks=callbacks,
            lock=lock,
            labels=labels,
            changes=resume.changes if resume else None,
        )
    finally:
        if lock is not None:
            lock.release()

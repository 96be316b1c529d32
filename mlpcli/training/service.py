"""The training service: data, model and optimizer from a config; checkpoints, metrics and resume in a run folder."""

from __future__ import annotations

import logging
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mlpcli.config import ExperimentConfig, dump_config
from mlpcli.data.augment import Distortion
from mlpcli.data.batches import BatchStream, Split
from mlpcli.data.load import Dataset, PlaneOptions, load_dataset
from mlpcli.data.prepare import Normalizer, fit_normalizer, validation_split
from mlpcli.errors import ConfigError, MlpcliError, Terminated, TrainingDiverged
from mlpcli.events import Callback, EpochEnd, History, Message, emit
from mlpcli.factory import build_model, build_optimizer
from mlpcli.files import checkpoint
from mlpcli.files.atomic import deferred_interrupt, remove_stale_temps
from mlpcli.files.locks import FileLock
from mlpcli.inference.metrics import Report, evaluate_arrays
from mlpcli.inference.predictor import Predictor
from mlpcli.lecture.diagnostics import lecture_warnings
from mlpcli.nn.mlp import MLP
from mlpcli.nn.products import REDUCTION_CHUNK
from mlpcli.runs.folder import RunFolder, RunStatus, chance_accuracy, now_iso
from mlpcli.training.blas_agree import thread_counts_agree
from mlpcli.training.loop import LoopSettings, LoopState, fit, folds_rate, step_path
from mlpcli.training.snapshot import restore, save
from mlpcli.training.threads import ThreadGovernor
from mlpcli.training.tracking import TrackedRun, Trackers

log = logging.getLogger(__name__)

WORKERS = 1  # threads preparing augmented batches ahead (measured: a second one made epochs slower)
PREFETCH = 4  # batches each worker prepares ahead


class Stopped(Exception):
    """A callback ended training on purpose after an epoch (a sweep pruning an unpromising trial)."""


class Interrupted(Exception):
    """Training was interrupted (Ctrl-C, or SIGTERM); last is the checkpoint to resume from, if any."""

    def __init__(self, epoch: int, last: Path | None, signal: str = "SIGINT", trained: bool = False) -> None:
        where = f"after all {epoch} epochs, before the run finished" if trained else f"during epoch {epoch + 1}"
        super().__init__(f"interrupted ({signal}) {where}")
        self.epoch, self.last, self.signal, self.trained = epoch, last, signal, trained


@dataclass
class Prepared:
    """A config's data, split and normalized-on-the-fly, with its model and optimizer, ready to fit."""

    cfg: ExperimentConfig
    dataset: Dataset
    train: Split
    val: Split | None
    normalizer: Normalizer
    model: MLP
    batches: BatchStream
    state: LoopState

    @property
    def history(self) -> History:
        """The per-epoch metrics so far."""
        return self.state.history


@dataclass
class TrainResult:
    """What a finished run produced."""

    run_dir: Path
    checkpoint: Path
    last: Path
    history: History
    test: Report | None  # None when the dataset has no test split
    seconds: float
    prepared: Prepared
    threads: int = 0  # threads computing at the end of training (BLAS: one per call)
    step: str = ""  # the training step taken: "fused", or "plain (why)"
    at_chance: bool = False  # accuracy no better than guessing the most common class


def ensure_writable(folder: Path) -> None:
    """Create folder and prove a file can be written there; MlpcliError naming it otherwise."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise MlpcliError(
            f"cannot write to the output folder {folder}: {exc.strerror or exc}; choose another output folder"
        ) from None


def missing_classes(dataset: Dataset, train_rows: np.ndarray, val_rows: np.ndarray) -> list[str]:
    """One warning per class with no example in the training split: the network can never learn to predict it
    (none for a regression dataset: it has targets, not classes)."""
    if dataset.regression:
        return []
    k = len(dataset.classes)
    in_train = np.bincount(dataset.train_y[train_rows].astype(np.int64), minlength=k)
    in_val = np.bincount(dataset.train_y[val_rows].astype(np.int64), minlength=k)
    out = []
    for c in np.flatnonzero(in_train[:k] == 0):
        took = f" (the validation split took all {in_val[c]})" if in_val[c] else ""
        out.append(
            f"class {dataset.classes[c]} has no training examples{took}: the network will never predict it "
            "and its recall will be 0"
        )
    return out


def prepare(cfg: ExperimentConfig, *, offline: bool = False, callbacks: list[Callback] | None = None) -> Prepared:
    """Load and split the data, fit the normalization on the training part, build model and optimizer."""
    dataset = load_dataset(
        cfg.data.dataset,
        data_dir=cfg.data.dir,
        offline=offline,
        callbacks=callbacks,
        test=cfg.data.test,
        plane=PlaneOptions.of(cfg.data, cfg.seed),
    )
    if len(dataset.test_y) == 0:
        emit(
            callbacks,
            Message(
                f"{dataset.name} has no test split (set data.test to a labelled CSV): "
                "the run ends without a test report"
            ),
        )
    # One seed, four independent streams; adding the fourth (augmentation) left the first three as they were.
    split_rng, init_rng, train_rng, augment_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence(cfg.seed).spawn(4)
    )
    try:
        tr, va = validation_split(dataset.train_y, cfg.data.validation, split_rng)
    except ValueError as exc:
        raise MlpcliError(f"data.validation: {exc}") from None
    if dataset.regression and (cfg.loss != "mse" or cfg.model.output != "linear"):
        raise ConfigError(
            f"{cfg.data.dataset} is a regression dataset (targets from -1 to 1): set loss: mse and "
            f"model.output: linear (got {cfg.loss} and {cfg.model.output})"
        )
    for warning in missing_classes(dataset, tr, va):
        emit(callbacks, Message(warning, "warning"))
    train = Split(dataset.train_x, dataset.train_y, tr)  # the training rows, without copying them
    val = Split(dataset.train_x[va], dataset.train_y[va]) if va.size else None
    normalizer = fit_normalizer(cfg.data.normalize, dataset.train_x, cfg.data.per_pixel, rows=tr)
    sizes = cfg.layer_sizes(dataset.num_features, len(dataset.classes))
    chunk = REDUCTION_CHUNK if cfg.train.reproducible else None  # products.py: bits independent of the threads
    model = build_model(cfg.model, sizes, dtype=cfg.train.dtype, rng=init_rng, reduction_chunk=chunk)
    distortion = Distortion(**cfg.augment.model_dump())
    try:
        batches = BatchStream(
            train,
            cfg.train.batch_size,
            normalizer,
            dtype=cfg.train.dtype,
            distortion=distortion,
            rng=augment_rng,
            workers=WORKERS if distortion.active else 0,
            prefetch=PREFETCH,
        )
    except ValueError as exc:
        raise MlpcliError(f"augment: {exc}") from None
    for warning in lecture_warnings(cfg):
        emit(callbacks, Message(warning, "warning"))
    return Prepared(cfg, dataset, train, val, normalizer, model, batches, LoopState(train_rng))


def run(
    p: Prepared,
    run_dir: Path,
    *,
    resume: checkpoint.Checkpoint | None = None,
    callbacks: list[Callback] | None = None,
    lock: FileLock | None = None,
    labels: dict[str, Any] | None = None,
    changes: dict[str, list[Any]] | None = None,
) -> TrainResult:
    """Train p into run_dir (config.yaml, metrics.csv, checkpoint.npz, last.npz, status.json) and test the best model.

    The folder is locked for the whole run (pass `lock` when the caller already holds it), and
    status.json says at every moment whether the run is running, finished, interrupted, diverged
    or failed. `labels` are extra status fields (sweep, trial). `changes` (key -> [old, new]) are
    settings a resume changed: recorded in status.json as changes from the resumed epoch on.
    """
    ensure_writable(run_dir)
    folder = RunFolder(run_dir)
    held = lock if lock is not None else folder.lock().acquire()
    previous = folder.read_status(live=False) if resume is not None else None
    status = RunStatus(
        name=p.cfg.name,
        status="running",
        pid=os.getpid(),
        started=(previous.started if previous else None) or now_iso(),
        epochs_planned=p.cfg.train.epochs,
        epochs_done=int(resume.meta.get("epoch", 0)) if resume else 0,
        sweep=(labels or {}).get("sweep"),
        trial=(labels or {}).get("trial"),
        resumes=list(previous.resumes) if previous else [],
    )
    if previous is not None:
        for key in ("best_epoch", "best_val_accuracy", "train_seconds"):
            setattr(status, key, getattr(previous, key))
    if resume is not None:
        status.resumes.append({"at": now_iso(), "after_epoch": status.epochs_done, "changes": changes or {}})
    trackers = None
    try:
        folder.write_status(status)
        trackers = Trackers(p.cfg.train.track, TrackedRun(folder, p, dict(labels or {})), callbacks)
        result = _train(p, folder, resume, callbacks, status, trackers)
    except BaseException as exc:
        ended = {
            Interrupted: "interrupted",
            KeyboardInterrupt: "interrupted",
            TrainingDiverged: "diverged",
            Stopped: "pruned",
        }
        status.status = next((v for k, v in ended.items() if isinstance(exc, k)), "failed")
        status.ended, status.error = now_iso(), str(exc) or type(exc).__name__
        _try_write_status(folder, status)
        if trackers is not None:
            trackers.end(status)
        raise
    finally:
        if lock is None:
            held.release()
    test = result.test
    status.status, status.ended = "finished", now_iso()
    if test is not None:
        status.test_accuracy, status.test_loss = test.accuracy, test.loss
    status.at_chance = result.at_chance
    try:  # the run is finished and its files complete: an interrupt now cuts nothing short but the trackers' end
        with deferred_interrupt():
            _try_write_status(folder, status)
        trackers.end(status)
    except KeyboardInterrupt:
        emit(callbacks, Message("interrupted as the run ended; the run itself is finished and saved", "warning"))
    return result


def _finish_checkpoints(p: Prepared, best_path: Path, optimizer: Any) -> Report | None:
    """After the last epoch: the best checkpoint (made now when no epoch was left to train) and its test report,
    written into it; the report, or None without a test split."""
    if not best_path.exists():  # zero epochs left
        save(p, best_path, optimizer.state_dict(), p.history.rows[-1] if p.history.rows else None, best=True)
    if not len(p.dataset.test_y):
        return None
    best = checkpoint.load(best_path)
    test = evaluate_arrays(Predictor(best).model, p.normalizer, p.dataset.test_x, p.dataset.test_y, p.cfg.loss)
    best.meta["metrics"] = {**best.meta.get("metrics", {}), "test_loss": test.loss, "test_accuracy": test.accuracy}
    with deferred_interrupt():  # the report is written whole or not at all
        checkpoint.save(best_path, best)
    return test


def _try_write_status(folder: RunFolder, status: RunStatus) -> None:
    try:
        folder.write_status(status)
    except (OSError, ValueError) as exc:  # a full disk must not hide the error that ended the run
        log.warning("could not record the run's status in %s: %s", folder.path, exc)


def _at_chance(p: Prepared, test: Report | None) -> bool:
    """Whether the run ended no better than always answering the most common class (+1 point)."""
    rows = p.history.rows
    if p.dataset.regression:
        return False
    if test is not None:
        counts, accuracy = np.bincount(p.dataset.test_y.astype(np.int64)).tolist(), test.accuracy
    elif rows and rows[-1].get("val_accuracy") is not None and p.val is not None:
        counts, accuracy = np.bincount(p.val.y.astype(np.int64)).tolist(), rows[-1]["val_accuracy"]
    else:
        return False
    return len(counts) > 1 and accuracy <= chance_accuracy(counts) + 0.01


def _train(
    p: Prepared,
    folder: RunFolder,
    resume: checkpoint.Checkpoint | None,
    callbacks: list[Callback] | None,
    status: RunStatus,
    trackers: Trackers,
) -> TrainResult:
    start = time.perf_counter()
    cfg = p.cfg
    for stale in remove_stale_temps(folder.path):
        log.info("removed %s, left by an interrupted write", stale)
    best_path, last_path = folder.checkpoint, folder.last
    optimizer = build_optimizer(cfg.optimizer, p.model, fold=folds_rate(LoopSettings.from_config(cfg, p.val)))
    if resume is not None:
        optimizer.load_state_dict(restore(p, resume, folder))
    if not folder.config.exists():  # a resumed run keeps what its first epochs used; changes are in status.json
        folder.write_config("# resolved by mlpcli: every default filled in\n" + dump_config(cfg))

    def save_epoch(event: object) -> None:
        if not isinstance(event, EpochEnd):
            return
        with deferred_interrupt():  # Ctrl-C waits until this epoch's files are all written
            opt_state = optimizer.state_dict()
            save(p, last_path, opt_state, event.metrics)
            if event.is_best:
                save(p, best_path, opt_state, event.metrics, best=True)
            rows = p.history.rows
            folder.write_metrics(rows)
            status.epochs_done, status.best_epoch = p.state.epoch, p.state.best_epoch
            status.train_seconds = sum(r["seconds"] for r in rows)
            status.best_val_accuracy = (p.history.best_row() or {}).get("val_accuracy")
            folder.write_status(status)
        trackers.epoch(event.metrics)  # after the run folder has the epoch: tracking never costs it

    threads = cfg.train.threads
    model, rows = p.model, {cfg.train.batch_size, len(p.train) % cfg.train.batch_size}  # a batch, the last one
    governor = ThreadGovernor(
        None if threads == "auto" else int(threads),
        reserve=1 if p.batches.workers else 0,
        notify=lambda e: emit(callbacks, e),
        same_bits=(
            (lambda n: thread_counts_agree(model.layer_sizes, rows, model.dtype, n, model.reduction_chunk))
            if cfg.train.reproducible
            else None
        ),
    )
    try:
        with governor:
            emit(callbacks, Message(f"threads: {governor.threads} ({governor.reason})", "detail"))
            settings = LoopSettings.from_config(cfg, p.val)
            step = step_path(optimizer, settings)
            emit(callbacks, Message(f"training step: {step}", "detail"))
            callbacks_all = [save_epoch, governor, *(callbacks or [])]
            fit(p.model, optimizer, p.batches, settings, p.state, callbacks_all)
    except KeyboardInterrupt as exc:
        why = "SIGTERM" if isinstance(exc, Terminated) else "SIGINT"
        raise Interrupted(p.state.epoch, last_path if last_path.exists() else None, why) from None
    except TrainingDiverged as exc:
        kept = f"; the last good epoch's checkpoint is {best_path}" if best_path.exists() else ""
        raise TrainingDiverged(f"{exc}{kept}") from None
    try:
        test = _finish_checkpoints(p, best_path, optimizer)
    except KeyboardInterrupt as exc:  # every epoch is saved: --resume finishes the rest (the test report)
        why = "SIGTERM" if isinstance(exc, Terminated) else "SIGINT"
        raise Interrupted(p.state.epoch, last_path if last_path.exists() else None, why, trained=True) from None
    seconds = time.perf_counter() - start
    result = TrainResult(folder.path, best_path, last_path, p.history, test, seconds, p, governor.threads, step)
    result.at_chance = _at_chance(p, test)
    if result.at_chance:
        emit(
            callbacks,
            Message(
                "the run ended at chance: its accuracy is no better than guessing the most common "
                "class; try a lower optimizer.lr or another schedule",
                "warning",
            ),
        )
    return result

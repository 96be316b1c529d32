"""The training service: data, model and optimizer from a config; checkpoints, metrics and resume in a run folder."""

from __future__ import annotations

import csv
import io
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
from mlpcli.data.load import Dataset, load_dataset
from mlpcli.data.prepare import Normalizer, fit_normalizer, validation_split
from mlpcli.errors import CheckpointError, MlpcliError, TrainingDiverged
from mlpcli.events import Callback, EpochEnd, History, Message, emit
from mlpcli.files import checkpoint
from mlpcli.files.atomic import deferred_interrupt, remove_stale_temps, write_text
from mlpcli.inference.metrics import Report, evaluate_arrays
from mlpcli.lecture.diagnostics import lecture_warnings
from mlpcli.nn.mlp import MLP
from mlpcli.nn.optimizers import make_optimizer
from mlpcli.runs.folder import RunLock, now_iso, read_status, write_status
from mlpcli.training.loop import METRIC_COLUMNS, LoopSettings, LoopState, fit, step_path
from mlpcli.training.threads import ThreadGovernor

log = logging.getLogger(__name__)

WORKERS = 1  # threads preparing augmented batches ahead (measured: a second one made epochs slower)
PREFETCH = 4  # batches each worker prepares ahead
BEST_NAME = "checkpoint.npz"
LAST_NAME = "last.npz"


class Stopped(Exception):
    """A callback ended training on purpose after an epoch (a sweep pruning an unpromising trial)."""


class Interrupted(Exception):
    """Training was interrupted (Ctrl-C); last is the checkpoint to resume from, if any."""

    def __init__(self, epoch: int, last: Path | None) -> None:
        super().__init__(f"interrupted during epoch {epoch + 1}")
        self.epoch, self.last = epoch, last


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
    threads: int = 0  # BLAS threads at the end of training
    step: str = ""  # the training step taken: "fused", or "plain (why)"


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


def prepare(cfg: ExperimentConfig, *, offline: bool = False, callbacks: list[Callback] | None = None) -> Prepared:
    """Load and split the data, fit the normalization on the training part, build model and optimizer."""
    dataset = load_dataset(cfg.data.dataset, data_dir=cfg.data.dir, offline=offline, callbacks=callbacks,
                           test=cfg.data.test)  # fmt: skip
    if len(dataset.test_y) == 0:
        emit(callbacks, Message(f"{dataset.name} has no test split (set data.test to a labelled CSV): "
                                "the run ends without a test report"))  # fmt: skip
    # One seed, four independent streams; adding the fourth (augmentation) left the first three as they were.
    split_rng, init_rng, train_rng, augment_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence(cfg.seed).spawn(4)
    )
    try:
        tr, va = validation_split(dataset.train_y, cfg.data.validation, split_rng)
    except ValueError as exc:
        raise MlpcliError(f"data.validation: {exc}") from None
    train = Split(dataset.train_x, dataset.train_y, tr)  # the training rows, without copying them
    val = Split(dataset.train_x[va], dataset.train_y[va]) if va.size else None
    normalizer = fit_normalizer(cfg.data.normalize, dataset.train_x, cfg.data.per_pixel, rows=tr)
    sizes = cfg.layer_sizes(dataset.num_features, len(dataset.classes))
    m = cfg.model
    model = MLP(
        sizes, m.activation, m.output, dropout=m.dropout, input_dropout=m.input_dropout,
        leaky_slope=m.leaky_slope, dtype=np.dtype(cfg.train.dtype),
    ).init(init_rng, m.init)  # fmt: skip
    distortion = Distortion(**cfg.augment.model_dump())
    try:
        batches = BatchStream(
            train, cfg.train.batch_size, normalizer, dtype=cfg.train.dtype, distortion=distortion, rng=augment_rng,
            workers=WORKERS if distortion.active else 0, prefetch=PREFETCH,
        )  # fmt: skip
    except ValueError as exc:
        raise MlpcliError(f"augment: {exc}") from None
    for warning in lecture_warnings(cfg):
        emit(callbacks, Message(warning, "warning"))
    return Prepared(cfg, dataset, train, val, normalizer, model, batches, LoopState(train_rng))


def _meta(p: Prepared, row: dict[str, Any] | None) -> dict[str, Any]:
    return checkpoint.build_meta(
        p.model.layer_sizes, p.cfg.model.activation, p.cfg.model.output, list(p.dataset.classes), p.dataset.name,
        config=p.cfg.model_dump(mode="json"),
        epoch=p.state.epoch,
        metrics=row or {},
        normalization={"kind": p.cfg.data.normalize, "per_pixel": p.cfg.data.per_pixel},
        resume={
            "rng_state": p.state.rng.bit_generator.state,
            "augment_rng_state": p.batches.rng.bit_generator.state if p.batches.rng is not None else None,
            "best_value": p.state.best_value,
            "best_epoch": p.state.best_epoch,
            "bad_epochs": p.state.bad_epochs,
        },
        history=p.history.rows,
    )  # fmt: skip


def _save(p: Prepared, path: Path, optimizer_state: dict[str, np.ndarray], row: dict[str, Any] | None) -> None:
    ckpt = checkpoint.Checkpoint(
        params={k: v.copy() for k, v in p.model.params.items()},
        norm_mean=p.normalizer.mean, norm_std=p.normalizer.std, meta=_meta(p, row), opt_state=optimizer_state,
    )  # fmt: skip
    try:
        checkpoint.save(path, ckpt)
    except OSError as exc:
        raise MlpcliError(f"cannot write {path}: {exc.strerror or exc}; earlier checkpoints are intact") from None


def metrics_csv(rows: list[dict[str, Any]]) -> str:
    """metrics.csv text: the standard columns, then any diagnostics columns."""
    columns = list(METRIC_COLUMNS) + sorted({k for r in rows for k in r} - set(METRIC_COLUMNS))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in columns})
    return buf.getvalue()


def restore(p: Prepared, ckpt: checkpoint.Checkpoint) -> dict[str, np.ndarray]:
    """Load a last.npz into prepared state for an exact resume; returns the optimizer state."""
    meta = ckpt.meta
    if ckpt.layer_sizes != p.model.layer_sizes or meta["activation"] != p.cfg.model.activation:
        raise CheckpointError(
            f"{ckpt.path}: holds a {meta['activation']} network {ckpt.layer_sizes}, but the config asks for "
            f"{p.cfg.model.activation} {p.model.layer_sizes}"
        )
    resume = meta.get("resume")
    if not isinstance(resume, dict) or "rng_state" not in resume:
        raise CheckpointError(f"{ckpt.path}: has no resume state (was it written by mlpcli train?)")
    p.model.set_params(ckpt.params)
    try:
        p.state.rng.bit_generator.state = resume["rng_state"]
        if p.batches.rng is not None and resume.get("augment_rng_state") is not None:
            p.batches.rng.bit_generator.state = resume["augment_rng_state"]
    except (TypeError, ValueError, KeyError) as exc:
        raise CheckpointError(f"{ckpt.path}: invalid random-generator state ({exc})") from None
    history = History(rows=list(meta.get("history", [])), best_epoch=resume.get("best_epoch"))
    p.state = LoopState(
        p.state.rng, int(meta.get("epoch", 0)), resume.get("best_value"), resume.get("best_epoch"),
        int(resume.get("bad_epochs", 0)), history,
    )  # fmt: skip
    return ckpt.opt_state


def run(
    p: Prepared,
    run_dir: Path,
    *,
    resume: checkpoint.Checkpoint | None = None,
    callbacks: list[Callback] | None = None,
    lock: RunLock | None = None,
    labels: dict[str, Any] | None = None,
) -> TrainResult:
    """Train p into run_dir (config.yaml, metrics.csv, checkpoint.npz, last.npz, status.json) and test the best model.

    The folder is locked for the whole run (pass `lock` when the caller already holds it), and
    status.json says at every moment whether the run is running, finished, interrupted, diverged
    or failed. `labels` are extra status fields (e.g. the sweep a trial belongs to).
    """
    ensure_writable(run_dir)
    held = lock if lock is not None else RunLock(run_dir).acquire()
    previous = read_status(run_dir) if resume is not None else None
    status: dict[str, Any] = {
        "name": p.cfg.name, **(labels or {}), "status": "running", "pid": os.getpid(),
        "started": (previous or {}).get("started") or now_iso(), "ended": None,
        "epochs_planned": p.cfg.train.epochs, "epochs_done": p.state.epoch, "best_epoch": None,
        "best_val_accuracy": None, "test_accuracy": None, "train_seconds": None, "error": None,
    }  # fmt: skip
    if previous is not None:
        status["resumed"] = now_iso()
    try:
        write_status(run_dir, status)
        result = _train(p, run_dir, resume, callbacks, status)
    except BaseException as exc:
        ended = {Interrupted: "interrupted", KeyboardInterrupt: "interrupted", TrainingDiverged: "diverged",
                 Stopped: "pruned"}  # fmt: skip
        state = next((v for k, v in ended.items() if isinstance(exc, k)), "failed")
        status.update(status=state, ended=now_iso(), error=str(exc) or type(exc).__name__)
        _try_write_status(run_dir, status)
        raise
    finally:
        if lock is None:
            held.release()
    test = result.test
    status.update(status="finished", ended=now_iso(), test_accuracy=test.accuracy if test else None,
                  test_loss=test.loss if test else None)  # fmt: skip
    _try_write_status(run_dir, status)
    return result


def _try_write_status(run_dir: Path, status: dict[str, Any]) -> None:
    try:
        write_status(run_dir, status)
    except (OSError, ValueError) as exc:  # a full disk must not hide the error that ended the run
        log.warning("could not record the run's status in %s: %s", run_dir, exc)


def _train(
    p: Prepared, run_dir: Path, resume: checkpoint.Checkpoint | None, callbacks: list[Callback] | None,
    status: dict[str, Any],
) -> TrainResult:  # fmt: skip
    start = time.perf_counter()
    cfg = p.cfg
    for stale in remove_stale_temps(run_dir):
        log.info("removed %s, left by an interrupted write", stale)
    best_path, last_path = run_dir / BEST_NAME, run_dir / LAST_NAME
    o = cfg.optimizer
    optimizer = make_optimizer(o.name, o.lr, o.momentum, o.beta1, o.beta2)
    if resume is not None:
        optimizer.load_state_dict(restore(p, resume))
    write_text(run_dir / "config.yaml", "# resolved by mlpcli: every default filled in\n" + dump_config(cfg))

    def save_epoch(event: object) -> None:
        if not isinstance(event, EpochEnd):
            return
        with deferred_interrupt():  # Ctrl-C waits until this epoch's files are all written
            opt_state = optimizer.state_dict()
            _save(p, last_path, opt_state, event.metrics)
            if event.is_best:
                _save(p, best_path, opt_state, event.metrics)
            write_text(run_dir / "metrics.csv", metrics_csv(p.history.rows))
            rows = p.history.rows
            accuracies = [r["val_accuracy"] for r in rows if r.get("val_accuracy") is not None]
            status.update(
                epochs_done=p.state.epoch, best_epoch=p.state.best_epoch, train_seconds=sum(r["seconds"] for r in rows),
                best_val_accuracy=max(accuracies) if accuracies else None,
            )  # fmt: skip
            write_status(run_dir, status)

    threads = cfg.train.threads
    governor = ThreadGovernor(None if threads == "auto" else int(threads), reserve=1 if p.batches.workers else 0,
                              notify=lambda e: emit(callbacks, e))  # fmt: skip
    try:
        with governor:
            emit(callbacks, Message(f"BLAS threads: {governor.threads} ({governor.reason})", "detail"))
            settings = LoopSettings.from_config(cfg, p.val)
            step = step_path(optimizer, settings)
            emit(callbacks, Message(f"training step: {step}", "detail"))
            fit(p.model, optimizer, p.batches, settings, p.state, [save_epoch, governor, *(callbacks or [])])
    except KeyboardInterrupt:
        raise Interrupted(p.state.epoch, last_path if last_path.exists() else None) from None
    except TrainingDiverged as exc:
        kept = f"; the last good epoch's checkpoint is {best_path}" if best_path.exists() else ""
        raise TrainingDiverged(f"{exc}{kept}") from None
    if not best_path.exists():  # resumed a finished run, or zero epochs left
        _save(p, best_path, optimizer.state_dict(), p.history.rows[-1] if p.history.rows else None)
    test = None
    if len(p.dataset.test_y):
        best = checkpoint.load(best_path)
        test = evaluate_arrays(checkpoint.to_model(best), p.normalizer, p.dataset.test_x, p.dataset.test_y, cfg.loss)
        best.meta["metrics"] = {**best.meta.get("metrics", {}), "test_loss": test.loss, "test_accuracy": test.accuracy}
        checkpoint.save(best_path, best)
    seconds = time.perf_counter() - start
    return TrainResult(run_dir, best_path, last_path, p.history, test, seconds, p, governor.threads, step)

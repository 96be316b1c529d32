"""Snapshots of a training run: what its checkpoints hold (weights, normalization, optimizer and loop
state, the resolved config, the last META_HISTORY epochs), and restoring one for an exact resume."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mlpcli.errors import CheckpointError, MlpcliError
from mlpcli.events import History
from mlpcli.files import checkpoint
from mlpcli.nn.averaging import ExponentialAverage
from mlpcli.runs.folder import RunFolder
from mlpcli.training.loop import LoopState, averaged

if TYPE_CHECKING:
    from mlpcli.training.service import Prepared

META_HISTORY = 100  # epochs of history a checkpoint's meta keeps (metrics.csv keeps them all)
EMA_KEY = "ema"  # last.npz's optimizer-state member holding train.ema's average


def meta_of(p: Prepared, row: dict[str, Any] | None) -> dict[str, Any]:
    """The checkpoint's `meta` for the run's state now; row: the epoch's metrics."""
    return checkpoint.build_meta(
        p.model.layer_sizes,
        p.cfg.model.activation,
        p.cfg.model.output,
        list(p.dataset.classes),
        p.dataset.name,
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
            **({"ema_updates": p.state.average.t} if p.state.average is not None else {}),
        },
        history=p.history.rows[-META_HISTORY:],  # the rest is in metrics.csv: checkpoints stay small
    )


def save(
    p: Prepared, path: Path, optimizer_state: dict[str, np.ndarray], row: dict[str, Any] | None, best: bool = False
) -> None:
    """Write the run's checkpoint to path atomically; MlpcliError naming it when the disk refuses.

    With train.ema, best=True writes the averaged weights (what checkpoint.npz holds); otherwise the raw
    weights, and the average rides along in the optimizer state as "ema" (for an exact resume).
    """
    average = p.state.average
    if average is not None and average.flat is not None and not best:
        optimizer_state = {**optimizer_state, EMA_KEY: average.flat}
    with averaged(p.model, average if best else None) as model:
        params = {k: v.copy() for k, v in model.params.items()}
    ckpt = checkpoint.Checkpoint(
        params=params,
        norm_mean=p.normalizer.mean,
        norm_std=p.normalizer.std,
        meta=meta_of(p, row),
        opt_state=optimizer_state,
    )
    try:
        checkpoint.save(path, ckpt)
    except OSError as exc:
        raise MlpcliError(f"cannot write {path}: {exc.strerror or exc}; earlier checkpoints are intact") from None


def restore(p: Prepared, ckpt: checkpoint.Checkpoint, history_file: RunFolder | None = None) -> dict[str, np.ndarray]:
    """Load a last.npz into prepared state for an exact resume; returns the optimizer state.

    history_file: the run folder whose metrics.csv holds the epochs the checkpoint's meta left out.
    """
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
    epoch = int(meta.get("epoch", 0))
    rows = list(meta.get("history", []))
    if history_file is not None and len(rows) < epoch:  # meta keeps the last META_HISTORY epochs
        try:
            full = [r for r in history_file.read_metrics() if r.get("epoch") is not None and r["epoch"] <= epoch]
        except MlpcliError:
            full = []
        if len(full) >= len(rows):
            rows = [{k: (int(v) if k == "epoch" else v) for k, v in r.items()} for r in full]
    history = History(rows=rows, best_epoch=resume.get("best_epoch"))
    opt_state = dict(ckpt.opt_state)
    ema_flat = opt_state.pop(EMA_KEY, None)
    ema = p.cfg.train.ema
    average = None
    if ema is not None:  # an average the checkpoint lacks (ema newly on) starts from the resumed weights
        average = ExponentialAverage(ema.decay, ema.every)
        if ema_flat is not None and ema_flat.shape == p.model.flat.shape:
            average = ExponentialAverage(
                ema.decay, ema.every, ema_flat.astype(p.model.dtype), int(resume.get("ema_updates", 1))
            )
    p.state = LoopState(
        p.state.rng,
        epoch,
        resume.get("best_value"),
        resume.get("best_epoch"),
        int(resume.get("bad_epochs", 0)),
        history,
        average,
    )
    return opt_state

"""train.ema: an exponential moving average of the weights, validated each epoch and checkpointed."""

from __future__ import annotations

import numpy as np
import pytest

from mlpcli.config import load_config
from mlpcli.files import checkpoint
from mlpcli.nn.averaging import ExponentialAverage
from mlpcli.training import service as training

SMALL = ["name=t", "data.dataset=mnist-sample", "data.validation=500", "model.hidden=[32]", "train.batch_size=64"]


def test_the_average_follows_its_formula() -> None:
    avg = ExponentialAverage(0.9)
    a, b = np.array([1.0, 2.0]), np.array([3.0, -2.0])
    avg.update(a)  # the first update takes the weights as they are
    assert np.array_equal(avg.flat, a) and avg.t == 1
    avg.update(b)  # warm-up: d = min(0.9, 2/11)
    d = 2 / 11
    assert np.allclose(avg.flat, d * a + (1 - d) * b)
    for _ in range(200):
        avg.update(b)
    assert np.allclose(avg.flat, b)  # a constant sequence is its own average
    every = ExponentialAverage(0.99, every=4)
    for step in range(1, 9):
        every.step(step, a * step)
    assert every.t == 2  # steps 4 and 8
    with pytest.raises(ValueError, match="decay"):
        ExponentialAverage(1.0)


def test_ema_validates_and_checkpoints_the_average(tmp_path) -> None:
    cfg = load_config(None, [*SMALL, "train.epochs=3", "train.ema.decay=0.99"])
    result = training.run(training.prepare(cfg), tmp_path / "run")
    rows = result.history.rows
    assert all({"raw_val_loss", "raw_val_accuracy", "val_loss"} <= set(r) for r in rows)
    assert any(r["raw_val_loss"] != r["val_loss"] for r in rows)  # two different models were validated
    best = checkpoint.load(tmp_path / "run" / "checkpoint.npz")
    last = checkpoint.load(tmp_path / "run" / "last.npz")
    assert "ema" in last.opt_state and "ema" not in best.opt_state
    if best.meta["epoch"] == last.meta["epoch"]:  # the same epoch: the average, not the raw weights
        assert not np.array_equal(best.params["W1"], last.params["W1"])
        assert np.array_equal(best.params["W1"].ravel(), last.opt_state["ema"][: best.params["W1"].size])


def test_a_run_with_ema_resumes_bit_for_bit(tmp_path) -> None:
    base = [*SMALL, "train.ema.decay=0.98", "train.ema.every=3", "model.dropout=0.1", "schedule.name=constant"]
    whole = tmp_path / "whole"
    training.run(training.prepare(load_config(None, [*base, "train.epochs=4"])), whole)
    half = tmp_path / "half"
    training.run(training.prepare(load_config(None, [*base, "train.epochs=2"])), half)
    prepared = training.prepare(load_config(None, [*base, "train.epochs=4"]))
    training.run(prepared, tmp_path / "resumed", resume=checkpoint.load(half / "last.npz"))
    for name in ("last.npz", "checkpoint.npz"):
        a, b = checkpoint.load(whole / name), checkpoint.load(tmp_path / "resumed" / name)
        assert all(np.array_equal(a.params[k], b.params[k]) for k in a.params), name
        assert np.array_equal(a.opt_state.get("ema", np.zeros(0)), b.opt_state.get("ema", np.zeros(0))), name

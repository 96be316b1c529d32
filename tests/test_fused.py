"""The fused step (the learning rate folded into the gradients) matches nn/'s plain step, and resumes exactly."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from mlpcli.config import load_config
from mlpcli.events import EpochStart
from mlpcli.files import checkpoint
from mlpcli.nn.losses import get_loss
from mlpcli.nn.mlp import MLP
from mlpcli.nn.optimizers import OPTIMIZERS, make_optimizer
from mlpcli.training import service as training
from mlpcli.training.loop import LoopSettings, Stepper, folds_rate, step_path

SIZES = [20, 16, 12, 5]
FOLDING = [name for name, spec in OPTIMIZERS.items() if spec.make(0.1).folds_lr]  # from the registry


def _batches(steps: int, n: int = 32, seed: int = 1) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [
        (rng.standard_normal((n, SIZES[0])).astype(np.float32), rng.integers(0, SIZES[-1], n)) for _ in range(steps)
    ]


def _step(model: MLP, opt, loss_name: str, x, y, lr: float) -> float:
    """One step as fit() takes it; opt.fold says whether the learning rate is folded in."""
    scale = opt.begin_step(lr)
    z = model.forward_train(x, np.random.default_rng(7))  # the same dropout masks on both sides
    value, delta = get_loss(loss_name)(z, y, model.output_activation)
    delta *= delta.dtype.type(scale)
    model.backward(delta)
    value += opt.penalty(model.flat, model.grad_flat)
    opt.step(model.flat, model.grad_flat)
    return value


def _pair(name: str, lr: float, wd: float = 0.0):
    """The plain and the fused optimizer, each configured when built (the weights' slices: SIZES's layout)."""
    mask = MLP(SIZES, "relu").decay_mask()
    plain = make_optimizer(name, lr, weight_decay=wd, decay_mask=mask)
    return plain, make_optimizer(name, lr, weight_decay=wd, decay_mask=mask, fold=True)


CASES = [
    # activation, output, loss, weight decay, dropout
    ("relu", "softmax", "cross_entropy", 0.0, 0.0),
    ("relu", "softmax", "cross_entropy", 1e-3, 0.3),
    ("leaky_relu", "softmax", "cross_entropy", 1e-3, 0.0),
    ("tanh", "softmax", "mse", 0.0, 0.2),
    ("sigmoid", "sigmoid", "bce", 1e-4, 0.0),
    ("linear", "linear", "mse", 1e-3, 0.0),
    ("gelu", "softmax", "cross_entropy", 1e-3, 0.2),
]


@pytest.mark.parametrize("optimizer", FOLDING)
@pytest.mark.parametrize(("activation", "output", "loss", "wd", "dropout"), CASES)
def test_fused_steps_match_the_plain_path(activation, output, loss, optimizer, wd, dropout) -> None:
    plain = MLP(SIZES, activation, output, dropout=dropout).init(np.random.default_rng(0))
    fast = MLP(SIZES, activation, output, dropout=dropout, params={k: v.copy() for k, v in plain.params.items()})
    opt_plain, opt_fast = _pair(optimizer, 0.05, wd)
    for i, (x, y) in enumerate(_batches(12)):
        lr = 0.05 * (1 + np.cos(np.pi * i / 12)) / 2 + 0.001  # a schedule: lr changes every step
        value = _step(plain, opt_plain, loss, x, y, lr)
        assert _step(fast, opt_fast, loss, x, y, lr) == pytest.approx(value, rel=1e-5, abs=1e-7)
    np.testing.assert_allclose(fast.flat, plain.flat, rtol=1e-5, atol=1e-6)
    assert opt_fast.t == opt_plain.t
    for key, v in opt_plain.state_dict().items():
        np.testing.assert_allclose(opt_fast.state_dict()[key], v, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize(("sizes", "dtype"), [([20, 5], np.float32), ([20, 16, 5], np.float64)])
def test_regression_networks_and_float64_match_too(sizes, dtype) -> None:
    plain = MLP(sizes, dtype=dtype).init(np.random.default_rng(0))
    fast = MLP(sizes, dtype=dtype, params={k: v.copy() for k, v in plain.params.items()})
    opt_plain, opt_fast = _pair("momentum", 0.1, 1e-3)
    for x, y in _batches(5):
        _step(plain, opt_plain, "cross_entropy", x.astype(dtype), y, 0.1)
        _step(fast, opt_fast, "cross_entropy", x.astype(dtype), y, 0.1)
    np.testing.assert_allclose(fast.flat, plain.flat, rtol=1e-10 if dtype == np.float64 else 1e-5, atol=1e-7)


def test_a_zero_learning_rate_takes_the_plain_step() -> None:
    """Nothing to fold at lr 0: the velocity still gathers the gradient, as nn/'s step does."""
    plain = MLP(SIZES).init(np.random.default_rng(0))
    fast = MLP(SIZES, params={k: v.copy() for k, v in plain.params.items()})
    opt_plain, opt_fast = _pair("momentum", 0.1)
    for lr, (x, y) in zip([0.1, 0.0, 0.05], _batches(3)):
        _step(plain, opt_plain, "cross_entropy", x, y, lr)
        _step(fast, opt_fast, "cross_entropy", x, y, lr)
    np.testing.assert_allclose(fast.flat, plain.flat, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(opt_fast.state_dict()["v"], opt_plain.state_dict()["v"], rtol=1e-4, atol=1e-6)


def test_optimizers_that_cannot_fold_ignore_the_request() -> None:
    """Adam divides by the gradients' own scale: asked to fold, it still takes gradients as they are."""
    for name, spec in OPTIMIZERS.items():
        opt = spec.make(0.1, fold=True)
        assert opt.fold == opt.folds_lr and opt.begin_step(0.1) == (0.1 if opt.folds_lr else 1.0), name


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_a_step_never_writes_into_the_gradients_it_was_lent(name) -> None:
    rng = np.random.default_rng(0)
    for fold in (False, True):
        opt = make_optimizer(name, 0.1, fold=fold, weight_decay=1e-3)
        for _ in range(3):
            params, grads = rng.standard_normal(50).astype(np.float32), rng.standard_normal(50).astype(np.float32)
            lent = grads.copy()
            opt.begin_step(0.1)
            opt.step(params, grads)
            np.testing.assert_array_equal(grads, lent, err_msg=f"{name} fold={fold}")


def test_the_loop_configures_nothing_on_the_optimizer(tmp_path) -> None:
    p = training.prepare(load_config(None, [*SMALL, "train.epochs=1", "optimizer.name=nesterov"]))
    settings = LoopSettings.from_config(p.cfg, p.val)
    opt = make_optimizer("nesterov", 0.1, fold=True, decay_mask=p.model.decay_mask())
    before = dict(vars(opt))
    Stepper(p.model, opt, p.batches, settings, p.state)
    assert {k: v for k, v in vars(opt).items() if k != "state"} == {k: v for k, v in before.items() if k != "state"}
    with pytest.raises(ValueError, match="plain gradients"):
        diagnostics = LoopSettings.from_config(load_config(None, [*SMALL, "train.diagnostics=true"]), None)
        Stepper(p.model, opt, p.batches, diagnostics, p.state)


SMALL = [
    "train.threads=1",  # bit-for-bit comparisons: results depend on the BLAS thread count
    "name=t",
    "data.dataset=mnist-sample",
    "data.validation=500",
    "model.hidden=[32, 16]",
    "train.epochs=4",
    "train.batch_size=100",
    "optimizer.name=momentum",
    "optimizer.weight_decay=0.0005",
    "schedule.name=cosine",
]


def _rows(run: Path) -> list[dict[str, str]]:
    return [{k: v for k, v in r.items() if k != "seconds"} for r in csv.DictReader((run / "metrics.csv").open())]


def test_training_with_and_without_the_fused_step_agrees(tmp_path) -> None:
    fused = training.run(training.prepare(load_config(None, SMALL)), tmp_path / "fused")
    plain = training.run(training.prepare(load_config(None, [*SMALL, "train.fused=false"])), tmp_path / "plain")
    assert fused.step == "fused" and plain.step == "plain (train.fused is off)"
    for a, b in zip(_rows(tmp_path / "fused"), _rows(tmp_path / "plain"), strict=True):
        for key in ("train_loss", "val_loss"):
            assert float(a[key]) == pytest.approx(float(b[key]), rel=1e-3)
    assert fused.test.accuracy == pytest.approx(plain.test.accuracy, abs=0.01)
    a, b = checkpoint.load(tmp_path / "fused" / "last.npz"), checkpoint.load(tmp_path / "plain" / "last.npz")
    for key in a.params:
        np.testing.assert_allclose(a.params[key], b.params[key], rtol=1e-3, atol=1e-4)
    # the saved optimizer state is the plain path's velocity, not the folded one
    np.testing.assert_allclose(a.opt_state["v"], b.opt_state["v"], rtol=1e-2, atol=1e-4)


def test_fused_training_resumes_bit_for_bit(tmp_path) -> None:
    full = training.run(training.prepare(load_config(None, SMALL)), tmp_path / "full")
    assert full.step == "fused"

    def stop_at_3(event: object) -> None:
        if isinstance(event, EpochStart) and event.epoch == 3:
            raise KeyboardInterrupt

    with pytest.raises(training.Interrupted) as info:
        training.run(training.prepare(load_config(None, SMALL)), tmp_path / "part", callbacks=[stop_at_3])
    training.run(training.prepare(load_config(None, SMALL)), tmp_path / "part", resume=checkpoint.load(info.value.last))
    a, b = checkpoint.load(tmp_path / "full" / "last.npz"), checkpoint.load(tmp_path / "part" / "last.npz")
    for key in a.params:
        np.testing.assert_array_equal(a.params[key], b.params[key])
    assert _rows(tmp_path / "full") == _rows(tmp_path / "part")


def test_step_path_names_the_reason() -> None:
    settings = LoopSettings.from_config(load_config(None, [*SMALL, "train.diagnostics=true"]), None)
    assert step_path(make_optimizer("momentum", 0.1), settings) == "plain (gradient diagnostics)"
    settings = LoopSettings.from_config(load_config(None, [*SMALL, "model.dropout=0.5"]), None)
    assert step_path(make_optimizer("momentum", 0.1, fold=folds_rate(settings)), settings) == "fused"
    assert step_path(make_optimizer("adam", 0.1, fold=folds_rate(settings)), settings) == "plain (optimizer Adam)"

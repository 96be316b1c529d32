"""The fused training step matches nn/'s plain step to float32 rounding, and resumes exactly."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from mlpcli import checkpoint, training
from mlpcli.config import load_config
from mlpcli.data.batches import BatchStream, Split
from mlpcli.data.prepare import fit_normalizer
from mlpcli.events import EpochStart
from mlpcli.fused import FusedStep, unsupported
from mlpcli.loop import LoopSettings, step_path
from mlpcli.nn.losses import get_loss
from mlpcli.nn.mlp import MLP
from mlpcli.nn.optimizers import make_optimizer

SIZES = [20, 16, 12, 5]


def _batches(steps: int, n: int = 32, seed: int = 1) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [
        (rng.standard_normal((n, SIZES[0])).astype(np.float32), rng.integers(0, SIZES[-1], n)) for _ in range(steps)
    ]


def _plain_step(model: MLP, opt, loss_name: str, wd: float, x, y, lr: float) -> float:
    z = model.forward_train(x)
    value, delta = get_loss(loss_name)(z, y, model.output_activation)
    model.backward(delta)
    if wd:
        value += model.add_weight_decay(wd)
    opt.lr = lr
    opt.step(model.flat, model.grad_flat)
    return value


CASES = [
    # activation, output, loss, optimizer, weight decay
    ("relu", "softmax", "cross_entropy", "momentum", 0.0),
    ("relu", "softmax", "cross_entropy", "momentum", 1e-3),
    ("leaky_relu", "softmax", "cross_entropy", "nesterov", 1e-3),
    ("tanh", "softmax", "mse", "sgd", 0.0),
    ("sigmoid", "sigmoid", "bce", "momentum", 1e-4),
    ("linear", "linear", "mse", "sgd", 1e-3),
]


@pytest.mark.parametrize("fold_bias", [True, False])
@pytest.mark.parametrize("fold_lr", [True, False])
@pytest.mark.parametrize(("activation", "output", "loss", "optimizer", "wd"), CASES)
def test_fused_steps_match_the_plain_path(activation, output, loss, optimizer, wd, fold_bias, fold_lr) -> None:
    plain = MLP(SIZES, activation, output).init(np.random.default_rng(0))
    fast = MLP(SIZES, activation, output, params={k: v.copy() for k, v in plain.params.items()})
    opt_plain, opt_fast = make_optimizer(optimizer, 0.05), make_optimizer(optimizer, 0.05)
    step = FusedStep(fast, opt_fast, get_loss(loss), wd, fold_bias=fold_bias, fold_lr=fold_lr)
    for i, (x, y) in enumerate(_batches(12)):
        lr = 0.05 * (1 + np.cos(np.pi * i / 12)) / 2 + 0.001  # a schedule: lr changes every step
        value = _plain_step(plain, opt_plain, loss, wd, x, y, lr)
        xin = np.hstack([x, np.ones((x.shape[0], 1), np.float32)]) if fold_bias else x
        fast_value, correct = step.forward_backward(xin, y, lr)
        step.update()
        assert fast_value == pytest.approx(value, rel=1e-5, abs=1e-7)
        assert 0 <= correct <= x.shape[0]
    np.testing.assert_allclose(fast.flat, plain.flat, rtol=1e-5, atol=1e-6)
    step.sync()
    assert opt_fast.t == opt_plain.t
    for key, v in opt_plain.state_dict().items():
        np.testing.assert_allclose(opt_fast.state_dict()[key], v, rtol=1e-4, atol=1e-6)


def test_the_correct_count_is_the_plain_paths() -> None:
    model = MLP(SIZES).init(np.random.default_rng(0))
    x, y = _batches(1)[0]
    expected = int(np.count_nonzero(model.forward(x).argmax(axis=1) == y))
    step = FusedStep(model, make_optimizer("momentum", 0.1), get_loss("cross_entropy"))
    _, correct = step.forward_backward(x, y, 0.1)
    assert correct == expected


def test_a_batch_without_the_ones_column_is_refused() -> None:
    model = MLP(SIZES).init(np.random.default_rng(0))
    step = FusedStep(model, make_optimizer("sgd", 0.1), get_loss("cross_entropy"), fold_bias=True)
    x, y = _batches(1)[0]
    with pytest.raises(ValueError, match="21"):
        step.forward_backward(x, y, 0.1)


@pytest.mark.parametrize(
    ("model", "optimizer", "diagnostics", "reason"),
    [
        (MLP(SIZES, dropout=0.2), "momentum", False, "dropout"),
        (MLP(SIZES, input_dropout=0.2), "momentum", False, "dropout"),
        (MLP(SIZES), "adam", False, "optimizer Adam"),
        (MLP(SIZES), "momentum", True, "gradient diagnostics"),
        (MLP(SIZES), "nesterov", False, None),
    ],
)
def test_what_the_fused_step_leaves_to_the_plain_path(model, optimizer, diagnostics, reason) -> None:
    assert unsupported(model, make_optimizer(optimizer, 0.1), diagnostics) == reason
    if reason is not None and not diagnostics:
        with pytest.raises(ValueError, match=reason):
            FusedStep(model, make_optimizer(optimizer, 0.1), get_loss("cross_entropy"))


def test_the_batch_stream_adds_a_column_of_ones_and_nothing_else() -> None:
    rng = np.random.default_rng(0)
    split = Split(rng.integers(0, 256, (50, 16), dtype=np.uint8), rng.integers(0, 3, 50))
    stream = BatchStream(split, 16, fit_normalizer("standardize", split.x))
    order = np.arange(50)
    plain = [(x.copy(), y.copy()) for x, y in stream.epoch(order)]
    stream.ones_column = True
    padded = [(x.copy(), y.copy()) for x, y in stream.epoch(order)]
    for (x, y), (xp, yp) in zip(plain, padded):
        assert xp.shape == (x.shape[0], 17)
        np.testing.assert_array_equal(xp[:, :16], x)
        np.testing.assert_array_equal(xp[:, 16], 1)
        np.testing.assert_array_equal(yp, y)


SMALL = [
    "name=t", "data.dataset=mnist-sample", "data.validation=500", "model.hidden=[32, 16]", "train.epochs=4",
    "train.batch_size=100", "optimizer.name=momentum", "optimizer.weight_decay=0.0005", "schedule.name=cosine",
]  # fmt: skip


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
    cfg = load_config(None, [*SMALL, "model.dropout=0.5"])
    settings = LoopSettings.from_config(cfg, None)
    assert step_path(MLP([4, 3, 2], dropout=0.5), make_optimizer("momentum", 0.1), settings) == "plain (dropout)"


@pytest.mark.parametrize("fold_bias", [False, True])
@pytest.mark.parametrize(("sizes", "dtype"), [([20, 5], np.float32), ([20, 16, 5], np.float64)])
def test_regression_networks_and_float64_match_too(sizes, dtype, fold_bias) -> None:
    plain = MLP(sizes, dtype=dtype).init(np.random.default_rng(0))
    fast = MLP(sizes, dtype=dtype, params={k: v.copy() for k, v in plain.params.items()})
    opt_plain, opt_fast = make_optimizer("momentum", 0.1), make_optimizer("momentum", 0.1)
    step = FusedStep(fast, opt_fast, get_loss("cross_entropy"), 1e-3, fold_bias=fold_bias)
    for x, y in _batches(5):
        x = x.astype(dtype)
        _plain_step(plain, opt_plain, "cross_entropy", 1e-3, x, y, 0.1)
        step.forward_backward(np.hstack([x, np.ones((x.shape[0], 1), dtype)]) if fold_bias else x, y, 0.1)
        step.update()
    np.testing.assert_allclose(fast.flat, plain.flat, rtol=1e-10 if dtype == np.float64 else 1e-5, atol=1e-7)

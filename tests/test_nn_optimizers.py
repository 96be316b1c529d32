"""Optimizers: hand-computed steps, state round trips, and a small set fitted to 100 %.

Optimizers step one flat buffer (MLP.flat with MLP.grad_flat), in these tests as in training.
"""

import numpy as np
import pytest

from mlpcli.nn import MLP, make_optimizer
from mlpcli.nn.optimizers import OPTIMIZERS, Adam, Momentum
from mlpcli.nn.regularization import add_l2


def test_one_hand_computed_sgd_step() -> None:
    # One sigmoid neuron, w = [0.5, -0.5], b = 0, x = [1, 2], t = 1, E = 1/2 (o - t)^2, eta = 1.
    # z = 0.5 - 1.0 = -0.5; o = sigmoid(-0.5) = 0.3775406688
    # delta = o (1 - o)(o - t) = 0.3775406688 * 0.6224593312 * -0.6224593312 = -0.1462802535
    # w <- w - eta delta x = [0.5 + 0.1462802535, -0.5 + 0.2925605070]; b <- 0.1462802535
    model = MLP(
        [2, 1], "relu", "sigmoid", params={"W1": np.array([[0.5], [-0.5]]), "b1": np.zeros(1)}, dtype=np.float64
    )
    model.loss_and_grads(np.array([[1.0, 2.0]]), np.array([[1.0]]), "mse")
    make_optimizer("sgd", lr=1.0).step(model.flat, model.grad_flat)  # the path training takes
    np.testing.assert_allclose(model.params["W1"][:, 0], [0.6462802535, -0.2074394930], atol=1e-9)
    np.testing.assert_allclose(model.params["b1"], [0.1462802535], atol=1e-9)


def test_one_hand_computed_adam_step() -> None:
    # First Adam step: m = (1 - b1) g, v = (1 - b2) g^2, m_hat = g, v_hat = g^2,
    # so w <- w - lr g / (|g| + eps): every weight moves by lr against its gradient's sign.
    # w = [1.0, -2.0, 3.0], g = [0.3, -4.0, 1e-3], lr = 0.1 -> [0.9, -1.9, 2.9] (the last up to eps).
    w, g = np.array([1.0, -2.0, 3.0]), np.array([0.3, -4.0, 1e-3])  # flat buffers, as MLP.flat / grad_flat
    Adam(lr=0.1).step(w, g)
    np.testing.assert_allclose(w, [0.9, -1.9, 2.9 + 0.1 * 1e-8 / (1e-3 + 1e-8)], atol=1e-12)


def test_momentum_accumulates_velocity() -> None:
    # v1 = g = 1, w1 = 1 - 0.1; v2 = 0.9 * 1 + 1 = 1.9, w2 = 0.9 - 0.19 = 0.71
    w, g = np.array([1.0]), np.array([1.0])
    opt = Momentum(lr=0.1, momentum=0.9)
    opt.step(w, g)
    opt.step(w, g)
    np.testing.assert_allclose(w, [0.71])


def test_nesterov_looks_ahead() -> None:
    # v1 = 1, w1 = 1 - 0.1 (1 + 0.9 * 1) = 0.81
    w, g = np.array([1.0]), np.array([1.0])
    make_optimizer("nesterov", lr=0.1, momentum=0.9).step(w, g)
    np.testing.assert_allclose(w, [0.81])


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_state_dict_round_trip_continues_exactly(name: str) -> None:
    rng = np.random.default_rng(0)
    grads = [rng.normal(size=3) for _ in range(6)]
    a, b = np.ones(3), np.ones(3)
    opt_a = make_optimizer(name, lr=0.01, weight_decay=0.1)
    for g in grads:
        opt_a.step(a, g)
    opt_b = make_optimizer(name, lr=0.01, weight_decay=0.1)
    for g in grads[:3]:
        opt_b.step(b, g)
    resumed = make_optimizer(name, lr=0.01, weight_decay=0.1)
    resumed.load_state_dict(opt_b.state_dict())
    for g in grads[3:]:
        resumed.step(b, g)
    np.testing.assert_array_equal(a, b)


def test_state_of_mlpcli_0_1_checkpoints_still_loads() -> None:
    # 0.1 saved the flat buffer's state as "v.all"; it must resume as "v"
    opt = make_optimizer("momentum", lr=0.1)
    opt.load_state_dict({"v.all": np.array([2.0]), "t": np.array(1)})
    p = np.array([0.0])
    opt.step(p, np.array([1.0]))  # v = 0.9 * 2 + 1 = 2.8; p = -0.28
    np.testing.assert_allclose(p, [-0.28])


def test_step_refuses_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="shape"):
        make_optimizer("sgd", lr=0.1).step(np.zeros(3), np.zeros(4))


@pytest.mark.parametrize(
    ("kwargs", "message"), [({"lr": 0}, "learning rate"), ({"lr": 0.1, "momentum": 1.0}, "momentum")]
)
def test_invalid_arguments_raise_value_error(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_optimizer("momentum", **kwargs)


@pytest.mark.parametrize(
    ("activation", "output", "loss", "optimizer", "lr"),
    [
        ("relu", "softmax", "cross_entropy", "adam", 0.01),
        ("relu", "sigmoid", "mse", "adam", 0.01),
        ("tanh", "sigmoid", "bce", "nesterov", 0.1),
        ("gelu", "softmax", "cross_entropy", "adamw", 0.01),
        ("silu", "softmax", "cross_entropy", "momentum", 0.1),
    ],
)
def test_a_64_sample_set_is_fitted_perfectly(
    activation: str, output: str, loss: str, optimizer: str, lr: float
) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 20)).astype(np.float32)
    y = rng.integers(0, 10, size=64)
    model = MLP([20, 64, 10], activation, output).init(rng, "xavier")
    opt = make_optimizer(optimizer, lr=lr)
    for _ in range(3000):
        model.loss_and_grads(x, y, loss)
        opt.step(model.flat, model.grad_flat)
        if np.mean(model.forward(x).argmax(axis=1) == y) == 1.0:
            break
    assert np.mean(model.forward(x).argmax(axis=1) == y) == 1.0


def test_adamw_decays_the_weights_apart_from_the_adaptive_step() -> None:
    """AdamW (Loshchilov & Hutter 2019): W <- W - lr wd W - adam(g); with g = 0 only the decay acts, and
    L2 Adam (wd joining g) moves W differently from decoupled decay for the same wd."""
    w = np.array([1.0, -2.0, 0.5])
    opt = make_optimizer("adamw", lr=0.1, weight_decay=0.5)
    opt.step(w, np.zeros(3))
    np.testing.assert_allclose(w, np.array([1.0, -2.0, 0.5]) * (1 - 0.1 * 0.5))
    coupled, decoupled = np.array([1.0, -2.0, 0.5]), np.array([1.0, -2.0, 0.5])
    l2 = Adam(0.1, weight_decay=0.5)
    g = np.array([0.3, 0.1, -0.2])
    grads = g.copy()
    l2.penalty(coupled, grads)
    l2.step(coupled, grads)
    make_optimizer("adamw", lr=0.1, weight_decay=0.5).step(decoupled, g.copy())
    assert not np.allclose(coupled, decoupled)


def test_weight_decay_follows_the_models_mask_biases_untouched() -> None:
    model = MLP([3, 4, 2]).init(np.random.default_rng(0))
    model.params["b1"][:] = 1.0
    before = model.flat.copy()
    opt = make_optimizer("adamw", lr=0.1, weight_decay=0.5)
    opt.decay_mask = model.decay_mask()
    opt.step(model.flat, np.zeros_like(model.flat))
    np.testing.assert_array_equal(model.params["b1"], 1.0)
    np.testing.assert_allclose(model.params["W1"], before[:12].reshape(3, 4) * 0.95)
    grads = np.zeros_like(model.flat)
    penalty = add_l2(model.flat, grads, model.decay_mask(), 0.1)
    assert penalty == pytest.approx(0.05 * (np.sum(model.params["W1"] ** 2) + np.sum(model.params["W2"] ** 2)))
    np.testing.assert_array_equal(grads[12:16], 0.0)  # b1 gets no decay gradient


@pytest.mark.parametrize("name", ["momentum", "nesterov", "adam"])
@pytest.mark.parametrize("fold", [False, True])
def test_state_of_a_gradient_that_stops_never_goes_subnormal_and_the_weights_do_not_notice(
    name: str, fold: bool
) -> None:
    # Half the entries get a gradient once and 0 after it (a dead unit's, a blank pixel's): their state
    # decays geometrically, into the subnormal floats (slow on x86) by about step 800 at momentum 0.9,
    # unless flushed. The weights come out as the plain formulas give them, computed here without a flush.
    rng = np.random.default_rng(0)
    n, steps, lr, mu = 64, 1200, 0.01, 0.9
    params = rng.standard_normal(n).astype(np.float32)
    opt = make_optimizer(name, lr, fold=fold)
    ref, v, m, s = params.copy(), np.zeros(n, np.float32), np.zeros(n, np.float32), np.zeros(n, np.float32)
    tiny = np.finfo(np.float32).tiny
    for t in range(1, steps + 1):
        g = (rng.standard_normal(n) * 1e-3).astype(np.float32)
        if t > 1:
            g[: n // 2] = 0
        opt.begin_step(lr)
        opt.step(params, g * np.float32(lr) if opt.fold else g)
        for buf in (b for k, b in opt.state.items() if not k.startswith("_tmp")):
            assert not np.any((buf != 0) & (np.abs(buf) < tiny)), f"subnormal state at step {t}"
        if name == "adam":
            m = np.float32(0.9) * m + np.float32(0.1) * g
            s = np.float32(0.999) * s + np.float32(0.001) * g * g
            m_hat, s_hat = m / (1 - 0.9**t), s / (1 - 0.999**t)
            ref -= (lr * m_hat / (np.sqrt(s_hat) + 1e-8)).astype(np.float32)
        else:
            v = np.float32(mu) * v + g
            ref -= np.float32(lr) * (g + np.float32(mu) * v if name == "nesterov" else v)
    np.testing.assert_allclose(params, ref, rtol=2e-5, atol=1e-6)
    assert np.all(opt.state_dict()["m" if name == "adam" else "v"][: n // 2] == 0)  # flushed, not lingering
    assert not any(k.startswith("_tmp") for k in opt.state_dict())

"""Backpropagation against central differences, and the batch against a per-sample loop."""

import numpy as np
import pytest

from mlpcli.nn import MLP
from mlpcli.nn.activations import ACTIVATIONS
from mlpcli.nn.gradcheck import check_gradients
from mlpcli.nn.losses import COMPATIBLE_OUTPUTS

# From the registries: a new activation, output or loss is gradient-checked without editing this file.
HIDDEN = list(ACTIVATIONS)
PAIRINGS = [(output, loss) for loss, outputs in COMPATIBLE_OUTPUTS.items() for output in outputs]


def _problem(output: str, loss: str, rng: np.random.Generator, n: int = 6, k: int = 3) -> np.ndarray:
    if loss == "cross_entropy":
        return rng.integers(0, k, size=n)
    if loss == "bce":
        return rng.uniform(0, 1, size=(n, k))
    return rng.normal(size=(n, k)) if output == "linear" else rng.uniform(0, 1, size=(n, k))


@pytest.mark.parametrize("activation", HIDDEN)
@pytest.mark.parametrize(("output", "loss"), PAIRINGS)
def test_gradients_two_hidden_layers(activation: str, output: str, loss: str) -> None:
    rng = np.random.default_rng(0)
    model = MLP([4, 5, 3, 3], activation, output, dtype=np.float64).init(rng, "xavier")
    for name, p in model.params.items():  # non-zero biases so every term is exercised
        if name.startswith("b"):
            p[:] = rng.normal(0, 0.5, size=p.shape)
    x = rng.normal(size=(6, 4))
    if activation in ("relu", "leaky_relu", "gelu", "silu"):
        # keep pre-activations away from the kink, where the derivative is undefined
        x *= 2.0
    errors = check_gradients(model, x, _problem(output, loss, rng), loss)
    assert max(errors.values()) < 1e-6, errors


@pytest.mark.parametrize(("output", "loss"), PAIRINGS)
def test_gradients_with_weight_decay(output: str, loss: str) -> None:
    rng = np.random.default_rng(1)
    model = MLP([4, 6, 5, 3], "tanh", output, dtype=np.float64).init(rng, "he")
    x = rng.normal(size=(5, 4))
    errors = check_gradients(model, x, _problem(output, loss, rng, n=5), loss, weight_decay=0.1)
    assert max(errors.values()) < 1e-6, errors


@pytest.mark.parametrize(("output", "loss"), PAIRINGS)
def test_gradients_with_l1_and_l2(output: str, loss: str) -> None:
    rng = np.random.default_rng(2)
    model = MLP([4, 6, 5, 3], "tanh", output, dtype=np.float64).init(rng, "he")
    for name, p in model.params.items():  # |W| has a kink at 0: keep every weight away from it
        if name.startswith("W"):
            p[np.abs(p) < 1e-3] = 0.05
    x = rng.normal(size=(5, 4))
    errors = check_gradients(model, x, _problem(output, loss, rng, n=5), loss, weight_decay=0.05, l1=0.1)
    assert max(errors.values()) < 1e-6, errors
    without, _ = model.loss_and_grads(x, _problem(output, loss, np.random.default_rng(3), n=5), loss)
    with_l1, _ = model.loss_and_grads(x, _problem(output, loss, np.random.default_rng(3), n=5), loss, l1=0.1)
    weights = sum(float(np.abs(p).sum()) for k, p in model.params.items() if k.startswith("W"))
    assert with_l1 - without == pytest.approx(0.1 * weights)


@pytest.mark.parametrize("activation", HIDDEN)
def test_gradients_with_dropout_under_fixed_masks(activation: str) -> None:
    rng = np.random.default_rng(2)
    model = MLP([4, 6, 5, 3], activation, "softmax", dropout=0.5, dtype=np.float64).init(rng, "he")
    for name, p in model.params.items():  # non-zero biases: a fully dropped row must not sit on ReLU's kink
        if name.startswith("b"):
            p[:] = rng.normal(0, 0.5, size=p.shape)
    x = rng.normal(size=(5, 4)) * 2
    masks = {l: (rng.random((5, s)) >= 0.5) / 0.5 for l, s in ((1, 6), (2, 5))}
    errors = check_gradients(model, x, rng.integers(0, 3, size=5), "cross_entropy", masks=masks)
    assert max(errors.values()) < 1e-6, errors


def test_gradient_check_catches_a_wrong_gradient() -> None:
    rng = np.random.default_rng(3)
    model = MLP([3, 4, 2], "sigmoid", "softmax", dtype=np.float64).init(rng, "xavier")
    original = model.backward

    def broken(delta):  # type: ignore[no-untyped-def]
        grads = original(delta)
        grads["W1"] *= 1.1
        return grads

    model.backward = broken  # type: ignore[method-assign]
    errors = check_gradients(model, rng.normal(size=(4, 3)), rng.integers(0, 2, size=4), "cross_entropy")
    assert errors["W1"] > 1e-3 and errors["W2"] < 1e-6


def test_zero_hidden_layers_is_softmax_regression() -> None:
    rng = np.random.default_rng(4)
    model = MLP([5, 3], "relu", "softmax", dtype=np.float64).init(rng, "xavier")
    x, y = rng.normal(size=(7, 5)), rng.integers(0, 3, size=7)
    errors = check_gradients(model, x, y, "cross_entropy")
    assert max(errors.values()) < 1e-6
    _, grads = model.loss_and_grads(x, y)
    p = np.exp(x @ model.params["W1"])
    p /= p.sum(axis=1, keepdims=True)
    p[np.arange(7), y] -= 1
    np.testing.assert_allclose(grads["W1"], x.T @ p / 7, atol=1e-12)


@pytest.mark.parametrize(("output", "loss"), PAIRINGS)
def test_batch_gradients_equal_mean_of_per_sample_gradients(output: str, loss: str) -> None:
    rng = np.random.default_rng(5)
    model = MLP([6, 8, 7, 3], "tanh", output, dtype=np.float64).init(rng, "xavier")
    x, t = rng.normal(size=(9, 6)), _problem(output, loss, rng, n=9)
    batch_loss, grads = model.loss_and_grads(x, t, loss)
    batch = {k: v.copy() for k, v in grads.items()}
    per_sample = {k: np.zeros_like(v) for k, v in batch.items()}
    losses = []
    for i in range(9):
        value, g = model.loss_and_grads(x[i : i + 1], t[i : i + 1], loss)
        losses.append(value)
        for k in per_sample:
            per_sample[k] += g[k] / 9
    assert batch_loss == pytest.approx(np.mean(losses), rel=1e-12)
    for k in batch:
        np.testing.assert_allclose(batch[k], per_sample[k], atol=1e-12)


def test_float32_training_stays_float32() -> None:
    rng = np.random.default_rng(6)
    model = MLP([10, 8, 4], "relu", "softmax").init(rng, "he")
    x = rng.normal(size=(5, 10)).astype(np.float32)
    _, grads = model.loss_and_grads(x, rng.integers(0, 4, size=5))
    assert all(g.dtype == np.float32 for g in grads.values())
    assert model.forward(x).dtype == np.float32


def test_dropout_is_off_at_evaluation_and_seeded_in_training() -> None:
    rng = np.random.default_rng(7)
    model = MLP([10, 50, 4], "relu", "softmax", dropout=0.5, dtype=np.float64).init(rng, "he")
    x, y = rng.normal(size=(8, 10)), rng.integers(0, 4, size=8)
    np.testing.assert_array_equal(model.forward(x), model.forward(x))
    g1 = model.loss_and_grads(x, y, rng=np.random.default_rng(42))[1]["W1"].copy()
    g2 = model.loss_and_grads(x, y, rng=np.random.default_rng(42))[1]["W1"].copy()
    g3 = model.loss_and_grads(x, y, rng=np.random.default_rng(43))[1]["W1"].copy()
    np.testing.assert_array_equal(g1, g2)
    assert not np.array_equal(g1, g3)
    with pytest.raises(ValueError, match="Generator"):
        model.loss_and_grads(x, y)


def test_incompatible_loss_and_output_is_refused() -> None:
    model = MLP([3, 2], "relu", "sigmoid", dtype=np.float64).init(np.random.default_rng(0))
    with pytest.raises(ValueError, match="softmax"):
        model.loss_and_grads(np.zeros((1, 3)), np.array([0]), "cross_entropy")


@pytest.mark.parametrize("eps", [0.0, 0.1, 0.4])
def test_label_smoothing_value_and_delta(eps: float) -> None:
    from mlpcli.nn.activations import get_output
    from mlpcli.nn.losses import get_loss

    rng = np.random.default_rng(5)
    n, k = 7, 4
    z, labels = rng.normal(0, 3, size=(n, k)), rng.integers(0, k, size=n)
    loss_fn, softmax = get_loss("cross_entropy", eps), get_output("softmax")
    target = (1 - eps) * np.eye(k)[labels] + eps / k
    log_p = z - z.max(axis=1, keepdims=True)
    log_p -= np.log(np.exp(log_p).sum(axis=1, keepdims=True))
    value, delta = loss_fn(z.copy(), labels, softmax)
    assert value == pytest.approx(-np.sum(target * log_p) / n, rel=1e-12)
    numeric = np.zeros_like(z)
    for i in range(n):
        for j in range(k):
            up, down = z.copy(), z.copy()
            up[i, j] += 1e-6
            down[i, j] -= 1e-6
            numeric[i, j] = (loss_fn(up, labels, softmax)[0] - loss_fn(down, labels, softmax)[0]) / 2e-6
    np.testing.assert_allclose(delta, numeric, atol=1e-8)


def test_label_smoothing_only_with_cross_entropy() -> None:
    from mlpcli.nn.losses import get_loss

    with pytest.raises(ValueError, match="needs the cross_entropy loss"):
        get_loss("mse", 0.1)
    with pytest.raises(ValueError, match=r"in \[0, 1\)"):
        get_loss("cross_entropy", 1.0)


def test_gradients_with_an_activation_per_layer() -> None:
    rng = np.random.default_rng(5)
    model = MLP([4, 6, 5, 5, 3], ["gelu", "tanh", "leaky_relu"], "softmax", dtype=np.float64).init(rng, "xavier")
    assert model.activations == ["gelu", "tanh", "leaky_relu"]
    x = rng.normal(size=(6, 4)) * 2
    errors = check_gradients(model, x, rng.integers(0, 3, size=6), "cross_entropy")
    assert max(errors.values()) < 1e-6, errors
    with pytest.raises(ValueError, match="one per layer"):
        MLP([4, 6, 3], ["relu", "tanh"])

"""The lecture's worked examples (docs/DESIGN.md), reproduced to 1e-6 or better."""

import numpy as np
import pytest

from mlpcli.nn import MLP, count_parameters
from mlpcli.nn.activations import ACTIVATIONS, get_activation, sigmoid, softmax, tanh

# The toy network in the lecture's W x form (rows are output neurons).
TOY = [
    (np.array([[1.0, -2.0], [-1.0, 1.0]]), np.array([1.0, 0.0])),
    (np.array([[2.0, -1.0], [-2.0, -1.0]]), np.array([0.0, 0.0])),
    (np.array([[3.0, -1.0], [-1.0, 4.0]]), np.array([-2.0, 2.0])),
]


def toy_model() -> MLP:
    # mlpcli stores W as (fan_in, fan_out): the lecture's matrices transposed.
    params = {}
    for l, (W, b) in enumerate(TOY, start=1):
        params[f"W{l}"], params[f"b{l}"] = W.T, b
    return MLP([2, 2, 2, 2], "sigmoid", "sigmoid", params=params, dtype=np.float64)


def test_3_4_2_has_26_parameters() -> None:
    assert count_parameters([3, 4, 2]) == (20, 6, 26)


def test_one_sigmoid_layer() -> None:
    W, b = TOY[0]
    z = W @ np.array([1.0, -1.0]) + b
    np.testing.assert_allclose(z, [4.0, -2.0])
    np.testing.assert_allclose(sigmoid(z), [0.98201379, 0.11920292], atol=1e-8)


@pytest.mark.parametrize(
    ("x", "expected"),
    [([1.0, -1.0], [0.61770478, 0.82912398]), ([0.0, 0.0], [0.51184738, 0.85438390])],
)
def test_toy_network(x: list[float], expected: list[float]) -> None:
    out = toy_model().forward(np.array([x]))
    np.testing.assert_allclose(out[0], expected, atol=1e-8)


def test_toy_network_hidden_layers() -> None:
    a1, a2, _ = toy_model().layer_activations(np.array([[1.0, -1.0]]))
    np.testing.assert_allclose(a1[0], [0.98201379, 0.11920292], atol=1e-8)
    np.testing.assert_allclose(a2[0], [0.86, 0.11], atol=5e-3)


def test_computational_graph_chain_rule() -> None:
    # f(x, y, z) = (x + y) z, at x=-2, y=5, z=-4; checked against central differences.
    def f(x: float, y: float, z: float) -> float:
        return (x + y) * z

    x, y, z = -2.0, 5.0, -4.0
    q = x + y
    assert q == 3 and f(x, y, z) == -12
    df_dz, df_dq = q, z
    df_dx = df_dy = df_dq * 1.0  # dq/dx = dq/dy = 1
    assert (df_dz, df_dq, df_dx, df_dy) == (3, -4, -4, -4)
    h = 1e-6
    assert abs((f(x + h, y, z) - f(x - h, y, z)) / (2 * h) - df_dx) < 1e-6
    assert abs((f(x, y, z + h) - f(x, y, z - h)) / (2 * h) - df_dz) < 1e-6


def test_delta_rule_update_matches_hand_formulas() -> None:
    """E = 1/2 sum (o - t)^2 with sigmoid units: the lecture's deltas and one update."""
    model = toy_model()
    x, t, eta = np.array([[1.0, -1.0]]), np.array([[0.0, 1.0]]), 0.5
    a1, a2, o = (a[0] for a in model.layer_activations(x))
    W3 = TOY[2][0].T  # (fan_in, fan_out): W_ij from hidden i to output j
    delta_out = o * (1 - o) * (o - t[0])  # delta_j = o_j (1 - o_j)(o_j - t_j)
    delta_hidden = a2 * (1 - a2) * (W3 @ delta_out)  # delta_i = o_i (1 - o_i) sum_j delta_j W_ij
    expected_W3 = W3 - eta * np.outer(a2, delta_out)  # W_ij <- W_ij - eta delta_j o_i
    expected_W2 = TOY[1][0].T - eta * np.outer(a1, delta_hidden)

    _, grads = model.loss_and_grads(x, t, "mse")
    np.testing.assert_allclose(grads["W3"], np.outer(a2, delta_out), atol=1e-12)
    np.testing.assert_allclose(grads["b3"], delta_out, atol=1e-12)
    np.testing.assert_allclose(grads["W2"], np.outer(a1, delta_hidden), atol=1e-12)
    np.testing.assert_allclose(model.params["W3"] - eta * grads["W3"], expected_W3, atol=1e-12)
    np.testing.assert_allclose(model.params["W2"] - eta * grads["W2"], expected_W2, atol=1e-12)


def test_tanh_is_a_rescaled_sigmoid() -> None:
    z = np.linspace(-10, 10, 201)
    np.testing.assert_allclose(tanh(z), 2 * sigmoid(2 * z) - 1, atol=1e-12)


def test_softmax_outputs_are_a_distribution() -> None:
    z = np.random.default_rng(0).normal(0, 50, size=(100, 10))
    p = softmax(z)
    assert np.all(p >= 0) and np.all(p <= 1)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-12)


def test_leaky_relu_default_slope() -> None:
    leaky = get_activation("leaky_relu")
    np.testing.assert_allclose(leaky.fn(np.array([-2.0, 3.0])), [-0.02, 3.0])
    z = np.array([-2.0, 3.0])
    np.testing.assert_allclose(leaky.grad(z, leaky.fn(z)), [0.01, 1.0])
    custom = get_activation("leaky_relu", leaky_slope=0.2)
    np.testing.assert_allclose(custom.fn(np.array([-2.0])), [-0.4])


def test_linear_network_collapses_to_one_linear_map() -> None:
    rng = np.random.default_rng(1)
    model = MLP([5, 7, 6, 3], "linear", "linear", dtype=np.float64).init(rng, "xavier")
    p = model.params
    W = p["W1"] @ p["W2"] @ p["W3"]
    b = (p["b1"] @ p["W2"] + p["b2"]) @ p["W3"] + p["b3"]
    x = rng.normal(size=(4, 5))
    np.testing.assert_allclose(model.forward(x), x @ W + b, atol=1e-12)


@pytest.mark.parametrize("name", list(ACTIVATIONS) + ["softmax"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_activations_are_stable_for_huge_inputs(name: str, dtype: type) -> None:
    z = np.array([[-1e4, -50.0, 0.0, 50.0, 1e4]], dtype=dtype)
    with np.errstate(over="raise", invalid="raise", divide="raise", under="ignore"):
        a = softmax(z) if name == "softmax" else ACTIVATIONS[name].fn(z)
        if name != "softmax":
            assert np.all(np.isfinite(ACTIVATIONS[name].grad(z, a)))
    assert np.all(np.isfinite(a))
    assert a.dtype == dtype


def test_an_activations_parameters_come_from_its_registry_entry(tmp_path) -> None:
    """A parameter is checked by its entry's range wherever it enters: the network, the config, a checkpoint."""
    from mlpcli.config import ModelConfig
    from mlpcli.nn.activations import ACTIVATION_PARAMS, ACTIVATIONS

    assert {k for spec in ACTIVATIONS.values() for k in spec.params} == set(ACTIVATION_PARAMS)
    for key, param in ACTIVATION_PARAMS.items():
        field = ModelConfig.model_fields[key]  # one config key per parameter, with the entry's default and words
        assert field.default == param.default and field.description == param.about
    with pytest.raises(ValueError, match=r"leaky_slope must be a number in \[0, 1\)"):
        get_activation("leaky_relu", leaky_slope=1.5)
    get_activation("relu", leaky_slope=1.5)  # an activation ignores the parameters it does not take

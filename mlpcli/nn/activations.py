"""Activation functions with their derivatives and their facts, one registry entry each.

A hidden activation is an ``ActivationSpec``: ``fn(z, out=None, **params) -> a`` and
``grad(z, a, out=None, **params) -> da/dz``. The derivative receives both the
pre-activation z and the activation a = f(z) (the forward pass keeps both), so each
function takes its slope from whichever is cheaper: sigmoid and tanh from a (lecture:
sigma' = sigma (1 - sigma)), ReLU from the sign, GELU and SiLU from z. Every function
works in place when given ``out`` and stays finite for any finite input (|z| up to 1e4
and beyond: no overflow warnings, no NaN).

An entry also carries what the rest of mlpcli needs to know about it, so nothing else
keeps a list of activations: its parameters with defaults (leaky_relu's slope, stored in
checkpoints under ``config.model``), how diagnostics judge an unhealthy unit (can it die, does it
saturate), the ONNX nodes that compute it, and its formula for the lecture tools.
Adding an activation is one entry below and its functions.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

Array = np.ndarray

DEFAULT_LEAKY_SLOPE = 0.01


@dataclass(frozen=True)
class Param:
    """An activation's parameter: its default, the range [low, high) it must lie in, and what it is (its config
    key's description, under `model`)."""

    default: float
    low: float
    high: float
    about: str

    def check(self, name: str, value: float) -> float:
        """value as a float; ValueError unless it is in [low, high)."""
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not self.low <= value < self.high:
            raise ValueError(f"{name} must be a number in [{self.low:g}, {self.high:g}), got {value!r}")
        return float(value)


# An ONNX node as plain data: (op type, inputs, attributes). Inputs name "x" (the
# activation's input), "n0", "n1", ... (earlier nodes' outputs) or are float constants.
# The last node's output is the activation. mlpcli/inference/export builds the graph.
OnnxNode = tuple[str, tuple[Any, ...], dict[str, Any]]


def sigmoid(z: Array, out: Array | None = None) -> Array:
    """1 / (1 + exp(-z)), computed as (1 + tanh(z/2)) / 2 so it never overflows."""
    out = np.multiply(z, 0.5, out=out)
    np.tanh(out, out=out)
    out *= 0.5
    out += 0.5
    return out


def sigmoid_grad(z: Array, a: Array, out: Array | None = None) -> Array:
    """d sigmoid / dz = a (1 - a) (lecture: the delta rule's o (1 - o))."""
    out = np.subtract(1.0, a, out=out)
    out *= a
    return out


def tanh(z: Array, out: Array | None = None) -> Array:
    """Hyperbolic tangent (equal to 2 sigmoid(2z) - 1)."""
    return np.tanh(z, out=out)


def tanh_grad(z: Array, a: Array, out: Array | None = None) -> Array:
    """d tanh / dz = 1 - a^2."""
    out = np.multiply(a, a, out=out)
    np.subtract(1.0, out, out=out)
    return out


def relu(z: Array, out: Array | None = None) -> Array:
    """max(z, 0)."""
    return np.maximum(z, 0, out=out)


def relu_grad(z: Array, a: Array, out: Array | None = None) -> Array:
    """1 where the unit is active (a > 0), else 0 (the subgradient at 0 is taken as 0)."""
    if out is None:
        return (a > 0).astype(a.dtype)
    return np.greater(a, 0, out=out, casting="unsafe")


def leaky_relu(z: Array, out: Array | None = None, leaky_slope: float = DEFAULT_LEAKY_SLOPE) -> Array:
    """max(z, slope z) for 0 <= slope < 1 (Maas et al. 2013)."""
    return np.maximum(z, np.multiply(z, leaky_slope), out=out)


def leaky_relu_grad(z: Array, a: Array, out: Array | None = None, leaky_slope: float = DEFAULT_LEAKY_SLOPE) -> Array:
    """1 where z > 0, else slope."""
    if out is None:
        out = np.empty_like(z)
    np.greater(z, 0, out=out, casting="unsafe")
    out *= 1.0 - leaky_slope
    out += leaky_slope
    return out


def linear(z: Array, out: Array | None = None) -> Array:
    """The identity."""
    if out is None:
        return z.copy()
    if out is not z:
        out[...] = z
    return out


def linear_grad(z: Array, a: Array, out: Array | None = None) -> Array:
    """d z / dz = 1."""
    if out is None:
        return np.ones_like(z)
    out.fill(1)
    return out


_GELU_C = math.sqrt(2.0 / math.pi)
_GELU_K = 0.044715


def gelu(z: Array, out: Array | None = None) -> Array:
    """GELU in its tanh form: z/2 (1 + tanh(c (z + k z^3))), c = sqrt(2/pi), k = 0.044715.

    Hendrycks & Gimpel 2016, eq. for the fast approximation; PyTorch's GELU(approximate="tanh").
    Within 1e-3 of the exact z Phi(z) everywhere.
    """
    u = np.multiply(z, z)
    u *= _GELU_K
    u += 1.0
    u *= z
    u *= _GELU_C
    np.tanh(u, out=u)
    u += 1.0
    u *= 0.5
    return np.multiply(z, u, out=out)


def gelu_grad(z: Array, a: Array, out: Array | None = None) -> Array:
    """d gelu / dz = (1 + t)/2 + z/2 (1 - t^2) c (1 + 3k z^2), t = tanh(c (z + k z^3))."""
    z2 = np.multiply(z, z)
    t = np.multiply(z2, _GELU_K)
    t += 1.0
    t *= z
    t *= _GELU_C
    np.tanh(t, out=t)
    sech2 = np.multiply(t, t)
    np.subtract(1.0, sech2, out=sech2)  # 1 - t^2
    z2 *= 3 * _GELU_K
    z2 += 1.0
    z2 *= _GELU_C
    sech2 *= z2
    sech2 *= z
    t += 1.0
    t += sech2
    return np.multiply(t, 0.5, out=out)


def silu(z: Array, out: Array | None = None) -> Array:
    """SiLU (swish): z sigmoid(z) (Elfwing et al. 2018; Ramachandran et al. 2017)."""
    s = sigmoid(z)
    return np.multiply(z, s, out=out)


def silu_grad(z: Array, a: Array, out: Array | None = None) -> Array:
    """d silu / dz = s (1 + z (1 - s)), s = sigmoid(z)."""
    s = sigmoid(z)
    g = np.subtract(1.0, s)
    g *= z
    g += 1.0
    return np.multiply(g, s, out=out)


def softmax(z: Array, out: Array | None = None) -> Array:
    """Row-wise softmax of logits z (n, k), shifted by the row maximum so exp never overflows."""
    out = np.subtract(z, z.max(axis=-1, keepdims=True), out=out)
    np.exp(out, out=out)
    out /= out.sum(axis=-1, keepdims=True)
    return out


def softmax_vjp(a: Array, g: Array) -> Array:
    """Vector-Jacobian product of softmax: given a = softmax(z) and g = dE/da, return dE/dz."""
    return a * (g - np.sum(g * a, axis=-1, keepdims=True))


def log_softmax(z: Array) -> Array:
    """Row-wise log softmax via a max-shifted log-sum-exp."""
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


@dataclass(frozen=True)
class ActivationSpec:
    """A registry entry: a hidden activation, its derivative and its facts.

    fn(z, out=None, **params) -> a; grad(z, a, out=None, **params) -> da/dz.
    params: the activation's parameters (config keys under `model`, stored with checkpoints), each a Param.
    can_die: whether its derivative is exactly zero on a whole half-line (ReLU), so a unit can stop
    learning for good; grad_max: the largest value of its derivative for one that saturates (sigmoid
    1/4, tanh 1), None for one that does not. dead() and saturated() apply the two rules.
    onnx(params) -> the ONNX nodes computing it (see OnnxNode).
    formula: how the lecture tools write it.
    """

    name: str
    fn: Callable[..., Array]
    grad: Callable[..., Array]
    formula: str
    onnx: Callable[[dict[str, float]], list[OnnxNode]]
    params: dict[str, Param] = field(default_factory=dict)
    can_die: bool = False
    grad_max: float | None = None

    def dead(self, slopes: Array) -> Array:
        """Per unit, whether it is dead: its derivative slopes (n, units) = f'(z) is zero on every one of the
        n points, so no gradient ever reaches its weights (a ReLU whose input is negative everywhere). Only an
        activation that can die (can_die) has dead units; bool (units,)."""
        if not self.can_die or slopes.shape[0] == 0:
            return np.zeros(slopes.shape[1], dtype=bool)
        return ~(slopes != 0).any(axis=0)

    def saturated(self, slopes: Array, share: float = 0.5, level: float = 0.01) -> Array:
        """Per unit, whether it is saturated: its derivative slopes (n, units) is below `level` (1 %) of its
        maximum on more than `share` (half) of the n points, so gradients through it all but vanish (lecture:
        sigmoid' = o (1 - o) -> 0 as o -> 0 or 1). Only an activation that saturates (grad_max) has saturated
        units; bool (units,)."""
        if self.grad_max is None or slopes.shape[0] == 0:
            return np.zeros(slopes.shape[1], dtype=bool)
        return np.mean(slopes < level * self.grad_max, axis=0) > share

    def bind(self, **params: float) -> Activation:
        """The functions with this activation's parameters fixed (defaults for those not given)."""
        given = {k: params[k] if params.get(k) is not None else p.default for k, p in self.params.items()}
        values = {k: p.check(k, given[k]) for k, p in self.params.items()}
        if not values:
            return Activation(self.fn, self.grad, self)
        fn, grad = self.fn, self.grad
        return Activation(
            lambda z, out=None: fn(z, out, **values), lambda z, a, out=None: grad(z, a, out, **values), self
        )


class Activation(NamedTuple):
    """A hidden activation with its parameters bound: fn(z) -> a, grad(z, a) -> da/dz."""

    fn: Callable[..., Array]
    grad: Callable[..., Array]
    spec: ActivationSpec


class Output(NamedTuple):
    """An output activation: fn(z) -> o, and vjp(o, g) -> dE/dz given g = dE/do.

    Softmax has no elementwise derivative, so every output carries a vector-Jacobian product.
    """

    fn: Callable[..., Array]
    vjp: Callable[[Array, Array], Array]
    onnx: Callable[[dict[str, float]], list[OnnxNode]]


def _op(op: str, **attrs: Any) -> Callable[[dict[str, float]], list[OnnxNode]]:
    return lambda params: [(op, ("x",), attrs)]


def _gelu_onnx(params: dict[str, float]) -> list[OnnxNode]:
    """z/2 (1 + tanh(c (z + k z^3))) from Mul, Add and Tanh (opset 17 has no GELU op)."""
    return [
        ("Mul", ("x", "x"), {}),  # n0 = z^2
        ("Mul", ("n0", _GELU_K), {}),  # n1 = k z^2
        ("Add", ("n1", 1.0), {}),  # n2 = 1 + k z^2
        ("Mul", ("n2", "x"), {}),  # n3 = z + k z^3
        ("Mul", ("n3", _GELU_C), {}),  # n4
        ("Tanh", ("n4",), {}),  # n5 = t
        ("Add", ("n5", 1.0), {}),  # n6 = 1 + t
        ("Mul", ("n6", 0.5), {}),  # n7
        ("Mul", ("x", "n7"), {}),  # z/2 (1 + t)
    ]


def _silu_onnx(params: dict[str, float]) -> list[OnnxNode]:
    return [("Sigmoid", ("x",), {}), ("Mul", ("x", "n0"), {})]


def _leaky_onnx(params: dict[str, float]) -> list[OnnxNode]:
    return [("LeakyRelu", ("x",), {"alpha": float(params.get("leaky_slope", DEFAULT_LEAKY_SLOPE))})]


_LEAKY_SLOPE = Param(DEFAULT_LEAKY_SLOPE, 0.0, 1.0, "negative slope of leaky_relu, in [0, 1)")


# The registry: config choices, the network-file schema, gradient checks, diagnostics,
# ONNX export and checkpoint parameters all derive from it.
ACTIVATIONS: dict[str, ActivationSpec] = {
    spec.name: spec
    for spec in (
        ActivationSpec(
            "sigmoid",
            sigmoid,
            sigmoid_grad,
            "1 / (1 + e^-z)",
            _op("Sigmoid"),
            grad_max=0.25,
        ),
        ActivationSpec("tanh", tanh, tanh_grad, "tanh z", _op("Tanh"), grad_max=1.0),
        ActivationSpec("relu", relu, relu_grad, "max(z, 0)", _op("Relu"), can_die=True),
        ActivationSpec(
            "leaky_relu",
            leaky_relu,
            leaky_relu_grad,
            "max(z, slope z)",
            _leaky_onnx,
            params={"leaky_slope": _LEAKY_SLOPE},
        ),
        ActivationSpec("linear", linear, linear_grad, "z", _op("Identity")),
        ActivationSpec("gelu", gelu, gelu_grad, "z/2 (1 + tanh(sqrt(2/pi) (z + 0.044715 z^3)))", _gelu_onnx),
        ActivationSpec("silu", silu, silu_grad, "z sigmoid(z)", _silu_onnx),
    )
}

# Every activation parameter by its config key (the config schema and the checkpoint checks read this).
ACTIVATION_PARAMS: dict[str, Param] = {k: p for spec in ACTIVATIONS.values() for k, p in spec.params.items()}

OUTPUTS: dict[str, Output] = {
    "softmax": Output(softmax, softmax_vjp, _op("Softmax", axis=1)),
    "sigmoid": Output(sigmoid, lambda o, g: g * sigmoid_grad(None, o), _op("Sigmoid")),  # the lecture's o (1 - o)
    "linear": Output(linear, lambda o, g: g, _op("Identity")),
}


def per_layer(activation: str | list[str], hidden_layers: int) -> list[str]:
    """One activation name per hidden layer: a name for all of them, or a list with one per layer.

    Raises ValueError for an unknown name or a list of the wrong length.
    """
    names = [activation] * hidden_layers if isinstance(activation, str) else list(activation)
    if len(names) != hidden_layers:
        raise ValueError(f"activation: {len(names)} names for {hidden_layers} hidden layers (give one per layer)")
    for name in names:
        if name not in ACTIVATIONS:
            raise ValueError(f"unknown activation {name!r}; choose one of {', '.join(ACTIVATIONS)}")
    return names


def activation_params(name: str | list[str], values: dict[str, Any]) -> dict[str, float]:
    """The parameters of activation `name` (or of every name of a per-layer list) found in `values` (e.g. a
    config's model section), defaults filled."""
    out: dict[str, float] = {}
    for one in [name] if isinstance(name, str) else name:
        spec = ACTIVATIONS.get(one)
        if spec is not None:
            out.update(
                {k: float(values.get(k) if values.get(k) is not None else p.default) for k, p in spec.params.items()}
            )
    return out


def get_activation(name: str, **params: float) -> Activation:
    """Look an activation up by its config name and bind its parameters (those it takes: its registry entry's
    params; the rest are ignored). ValueError for an unknown name or a parameter out of its range."""
    spec = ACTIVATIONS.get(name)
    if spec is None:
        raise ValueError(f"unknown activation {name!r}; choose one of {', '.join(ACTIVATIONS)}")
    return spec.bind(**{k: v for k, v in params.items() if k in spec.params})


def get_output(name: str) -> Output:
    """Look an output activation up by its config name."""
    try:
        return OUTPUTS[name]
    except KeyError:
        raise ValueError(f"unknown output {name!r}; choose one of {', '.join(OUTPUTS)}") from None

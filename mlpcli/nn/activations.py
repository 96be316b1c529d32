"""Activation functions with their derivatives, kept side by side in one registry.

Every function works in place when given ``out`` (the training loop reuses buffers)
and is stable for any finite input: no overflow warnings, no NaN, for |z| up to 1e4
and beyond. Derivatives are written in terms of the activation ``a`` because every
activation here can express its slope from its own output, so the forward pass need
not keep ``z``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

Array = np.ndarray

DEFAULT_LEAKY_SLOPE = 0.01


def sigmoid(z: Array, out: Array | None = None) -> Array:
    """1 / (1 + exp(-z)), computed as (1 + tanh(z/2)) / 2 so it never overflows."""
    out = np.multiply(z, 0.5, out=out)
    np.tanh(out, out=out)
    out *= 0.5
    out += 0.5
    return out


def sigmoid_grad(a: Array, out: Array | None = None) -> Array:
    """d sigmoid / dz = a (1 - a)."""
    out = np.subtract(1.0, a, out=out)
    out *= a
    return out


def tanh(z: Array, out: Array | None = None) -> Array:
    """Hyperbolic tangent (equal to 2 sigmoid(2z) - 1)."""
    return np.tanh(z, out=out)


def tanh_grad(a: Array, out: Array | None = None) -> Array:
    """d tanh / dz = 1 - a^2."""
    out = np.multiply(a, a, out=out)
    np.subtract(1.0, out, out=out)
    return out


def relu(z: Array, out: Array | None = None) -> Array:
    """max(z, 0)."""
    return np.maximum(z, 0, out=out)


def relu_grad(a: Array, out: Array | None = None) -> Array:
    """1 where the unit is active, else 0 (the subgradient at 0 is taken as 0)."""
    if out is None:
        return (a > 0).astype(a.dtype)
    return np.greater(a, 0, out=out, casting="unsafe")


def make_leaky_relu(slope: float = DEFAULT_LEAKY_SLOPE) -> tuple[Callable[..., Array], Callable[..., Array]]:
    """Return (leaky_relu, leaky_relu_grad) for a given negative slope in [0, 1)."""
    if not 0.0 <= slope < 1.0:
        raise ValueError(f"leaky ReLU slope must be in [0, 1), got {slope}")

    def leaky_relu(z: Array, out: Array | None = None) -> Array:
        """max(z, slope * z) for 0 <= slope < 1."""
        scaled = np.multiply(z, slope)
        return np.maximum(z, scaled, out=out)

    def leaky_relu_grad(a: Array, out: Array | None = None) -> Array:
        """1 where a > 0, else slope (a and z share their sign)."""
        out = relu_grad(a, out)
        out *= 1.0 - slope
        out += slope
        return out

    return leaky_relu, leaky_relu_grad


def linear(z: Array, out: Array | None = None) -> Array:
    """The identity."""
    if out is None:
        return z.copy()
    if out is not z:
        out[...] = z
    return out


def linear_grad(a: Array, out: Array | None = None) -> Array:
    """d z / dz = 1."""
    if out is None:
        return np.ones_like(a)
    out.fill(1)
    return out


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


class Activation(NamedTuple):
    """A hidden activation and its derivative: fn(z) -> a, grad(a) -> da/dz."""

    fn: Callable[..., Array]
    grad: Callable[..., Array]


class Output(NamedTuple):
    """An output activation: fn(z) -> o, and vjp(o, g) -> dE/dz given g = dE/do.

    Softmax has no elementwise derivative, so every output carries a vector-Jacobian product.
    """

    fn: Callable[..., Array]
    vjp: Callable[[Array, Array], Array]


def get_activation(name: str, leaky_slope: float = DEFAULT_LEAKY_SLOPE) -> Activation:
    """Look an activation up by its config name; leaky_relu takes its slope."""
    if name == "leaky_relu":
        return Activation(*make_leaky_relu(leaky_slope))
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; choose one of {', '.join(ACTIVATIONS)}") from None


def get_output(name: str) -> Output:
    """Look an output activation up by its config name."""
    try:
        return OUTPUTS[name]
    except KeyError:
        raise ValueError(f"unknown output {name!r}; choose one of {', '.join(OUTPUTS)}") from None


# The registries: config choices, gradient-check pairings and factories all derive from these.
ACTIVATIONS: dict[str, Activation] = {
    "sigmoid": Activation(sigmoid, sigmoid_grad),
    "tanh": Activation(tanh, tanh_grad),
    "relu": Activation(relu, relu_grad),
    "leaky_relu": Activation(*make_leaky_relu()),
    "linear": Activation(linear, linear_grad),
}

OUTPUTS: dict[str, Output] = {
    "softmax": Output(softmax, softmax_vjp),
    "sigmoid": Output(sigmoid, lambda o, g: g * sigmoid_grad(o)),  # the lecture's o (1 - o) factor
    "linear": Output(linear, lambda o, g: g),
}

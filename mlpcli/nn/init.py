"""Weight initialization, one registry entry each (as torch.nn.init): He (He et al. 2015) for ReLU-like units,
Xavier/Glorot (Glorot & Bengio 2010) for tanh and sigmoid, and a small normal (the lecture's first networks)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

Array = np.ndarray


def _he(rng: np.random.Generator, fan_in: int, fan_out: int) -> Array:
    return rng.normal(0.0, np.sqrt(2.0 / fan_in), size=(fan_in, fan_out))


def _xavier(rng: np.random.Generator, fan_in: int, fan_out: int) -> Array:
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=(fan_in, fan_out))


def _normal(rng: np.random.Generator, fan_in: int, fan_out: int) -> Array:
    return rng.normal(0.0, 0.01, size=(fan_in, fan_out))


# The initialization registry: name -> (rng, fan_in, fan_out) -> W.
INITS = {"he": _he, "xavier": _xavier, "normal": _normal}


def init_params(
    layer_sizes: Sequence[int], init: str, rng: np.random.Generator, dtype: np.dtype | type = np.float32
) -> dict[str, Array]:
    """Random weights (he, xavier/glorot or small normal) and zero biases, named W1..WL, b1..bL."""
    draw = INITS.get("xavier" if init == "glorot" else init)
    if draw is None:
        raise ValueError(f"unknown init {init!r}; choose one of {', '.join(INITS)}")
    params: dict[str, Array] = {}
    for l, (fan_in, fan_out) in enumerate(zip(layer_sizes[:-1], layer_sizes[1:]), start=1):
        params[f"W{l}"] = draw(rng, fan_in, fan_out).astype(dtype)
        params[f"b{l}"] = np.zeros(fan_out, dtype=dtype)
    return params

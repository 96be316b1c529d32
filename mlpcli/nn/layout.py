"""The one layout of a network's parameters: how many there are, and where each W^l and b^l lies in the flat
buffer that holds them all (MLP.flat, MLP.grad_flat, the optimizers' state)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def count_parameters(layer_sizes: Sequence[int]) -> tuple[int, int, int]:
    """(weights, biases, total) for a fully connected network, counted as the lecture counts."""
    weights = sum(a * b for a, b in zip(layer_sizes[:-1], layer_sizes[1:]))
    biases = sum(layer_sizes[1:])
    return weights, biases, weights + biases


def layout(layer_sizes: Sequence[int]) -> dict[str, tuple[slice, tuple[int, ...]]]:
    """The one layout of a network's parameters in its flat buffer: W1, b1, W2, b2, ... in that order, each as
    (its slice of the buffer, its shape); W^l is (fan_in, fan_out), b^l (fan_out,)."""
    out, offset = {}, 0
    for l, (fan_in, fan_out) in enumerate(zip(layer_sizes[:-1], layer_sizes[1:]), start=1):
        for name, shape in ((f"W{l}", (fan_in, fan_out)), (f"b{l}", (fan_out,))):
            size = int(np.prod(shape))
            out[name] = (slice(offset, offset + size), shape)
            offset += size
    return out

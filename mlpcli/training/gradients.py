"""A batch's gradients: forward, the loss's delta (times the step's scale), backward."""

from __future__ import annotations

from typing import Any

import numpy as np

from mlpcli.nn.losses import count_right
from mlpcli.nn.mlp import MLP


def batch_gradients(
    net: MLP, loss_fn: Any, x: np.ndarray, y: np.ndarray, rng: np.random.Generator, scale: float
) -> tuple[float, int]:
    """The batch x (n, inputs) in the model dtype, y int labels (n,) or float targets (n, outputs), into
    net.grads: the gradients of the mean loss times scale (an optimizer that folds its rate into the
    gradients asks for lr). rng draws the dropout masks (inputs, then hidden layers 1..L-1).
    Returns the batch's mean loss (float) and how many of its rows the network got right."""
    z = net.forward_train(x, None, net.dropout_masks(x.shape[0], rng))
    right = count_right(z, y)
    loss, delta = loss_fn(z, y, net.output_activation)
    if scale != 1.0:
        delta *= delta.dtype.type(scale)
    net.backward(delta)
    return loss, right

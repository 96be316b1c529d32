"""One shard of a batch: what the training process and the shard helper process both compute (shards.py,
shard_process.py), so a shard's bits never depend on where it ran."""

from __future__ import annotations

from typing import Any

import numpy as np

from mlpcli.nn.losses import count_right
from mlpcli.nn.mlp import MLP, Masks


def shard_gradients(
    net: MLP, loss_fn: Any, x: np.ndarray, y: np.ndarray, masks: Masks | None, n: int, scale: float
) -> tuple[float, int]:
    """One shard of a batch of n rows into net.grads: forward, the loss's delta weighted by the shard's share
    of the batch (times scale), backward. x: (rows, inputs) in the model dtype, y: int labels (rows,) or float targets.
    Returns the shard's loss times its share, and how many of its rows the network got right. The training
    process and the shard helper process both run exactly this, so a shard's bits do not depend on where."""
    z = net.forward_train(x, None, masks)
    right = count_right(z, y)
    loss, delta = loss_fn(z, y, net.output_activation)
    share = x.shape[0] / n
    weight = scale * share
    if weight != 1.0:
        delta *= delta.dtype.type(weight)
    net.backward(delta)
    return loss * share, right

"""A batch's gradients in fixed data-parallel shards: the same bits whatever the thread count.

OpenBLAS gives different bits for one product split differently among its threads (and even for
row blocks of it computed one after the other), so a run's weights used to depend on how many BLAS
threads it had. Here BLAS always runs one thread per call, and the parallelism comes from shards
instead: a batch of n rows is split at ceil(n/2) into two halves whose forward and backward passes
are the same calls on the same shapes whichever thread computes them, and whose gradients are added
in one fixed order (first half + second half). One worker runs the halves one after the other, two
run them side by side: the weights come out identical. Small networks, where a second thread costs
more than it gives, run the whole batch as one shard (a choice made from the config's sizes, never
from the thread count).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from mlpcli.nn.mlp import MLP

MIN_MULTIPLY_ADDS = 20_000  # per row of a batch, over all layers; below it one shard
MIN_ROWS = 16  # a batch smaller than twice this is one shard


def shard_count(layer_sizes: list[int], batch_size: int) -> int:
    """How many shards a batch of batch_size rows is split into for a network of layer_sizes: 2 or 1."""
    work = sum(a * b for a, b in zip(layer_sizes[:-1], layer_sizes[1:]))
    return 2 if work >= MIN_MULTIPLY_ADDS and batch_size >= 2 * MIN_ROWS else 1


class ShardedGradients:
    """Fills model.grads with the batch's mean-loss gradients (times scale) and returns (loss, correct).

    loss_fn: an nn loss (z, targets, output) -> (mean loss, delta). workers says how many threads may
    work now (1 or more); it changes nothing but the speed. With sharded off, the whole batch is one
    shard (BLAS's own threads then split the products, and the bits depend on their number).
    """

    def __init__(self, model: MLP, loss_fn: Any, sharded: bool = True) -> None:
        self.model, self.loss_fn, self.sharded = model, loss_fn, sharded
        self._twin: MLP | None = None
        self._pool: ThreadPoolExecutor | None = None

    def __call__(
        self, xb: np.ndarray, yb: np.ndarray, rng: np.random.Generator, scale: float, workers: int = 1
    ) -> tuple[float, int]:
        """Gradients of the batch xb (n, inputs), int labels yb (n,), into self.model.grads.

        rng draws the dropout masks, always in the order first half, second half. Returns the batch's
        mean loss (float) and how many rows the network got right.
        """
        model, n = self.model, xb.shape[0]
        if not self.sharded or shard_count(model.layer_sizes, n) == 1:
            return self._one(model, xb, yb, model.dropout_masks(n, rng), n, scale)
        h = (n + 1) // 2
        twin = self._replica()
        first = (model, xb[:h], yb[:h], model.dropout_masks(h, rng), n, scale)
        second = (twin, xb[h:], yb[h:], model.dropout_masks(n - h, rng), n, scale)
        if workers >= 2:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(1, thread_name_prefix="mlpcli-shard")
            pending = self._pool.submit(self._one, *second)
            loss_a, right_a = self._one(*first)
            loss_b, right_b = pending.result()
        else:
            loss_a, right_a = self._one(*first)
            loss_b, right_b = self._one(*second)
        model.grad_flat += twin.grad_flat  # first half + second half, always in this order
        return loss_a + loss_b, right_a + right_b

    def _one(self, net: MLP, x: np.ndarray, y: np.ndarray, masks: Any, n: int, scale: float) -> tuple[float, int]:
        """One shard: forward, the loss's delta weighted by the shard's share of the batch, backward."""
        z = net.forward_train(x, None, masks)
        right = int(np.count_nonzero(z.argmax(axis=1) == y))
        loss, delta = self.loss_fn(z, y, net.output_activation)
        share = x.shape[0] / n
        weight = scale * share
        if weight != 1.0:
            delta *= delta.dtype.type(weight)
        net.backward(delta)
        return loss * share, right

    def _replica(self) -> MLP:
        if self._twin is None or self._twin.flat is not self.model.flat:
            self._twin = self.model.replica()
        return self._twin

    def close(self) -> None:
        """End the worker thread, if one was started."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

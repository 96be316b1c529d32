"""A batch's gradients in fixed data-parallel shards: the same bits whatever the thread count.

OpenBLAS gives different bits for one product split differently among its threads (and even for
row blocks of it computed one after the other), so a run's weights used to depend on how many BLAS
threads it had. Here BLAS always runs one thread per call, and the parallelism comes from shards
instead: a batch of n rows is split at ceil(n/2) into two halves whose forward and backward passes
are the same calls on the same shapes whichever thread computes them, and whose gradients are added
in one fixed order (first half + second half). One worker runs the halves one after the other, two
run them side by side: the weights come out identical. The second of two workers is a helper process
(shard_process.py) where one can run, which spares the GIL and a thread wake-up every batch; a second
thread until it is up, and where it cannot run. Small networks, where a second thread costs
more than it gives, run the whole batch as one shard (a choice made from the config's sizes, never
from the thread count).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from mlpcli.nn.mlp import MLP, count_parameters
from mlpcli.training.shard import shard_gradients
from mlpcli.training.shard_process import HelperFailed, ShardHelper, supported

MIN_MULTIPLY_ADDS = 20_000  # per row of a batch, over all layers; below it one shard
MIN_ROWS = 16  # a batch smaller than twice this is one shard
HELPER_AFTER_BATCHES = 200  # two-worker batches on threads before the helper process is started
# Augmenting on 2 cores, per epoch (docs/RESULTS.md): 784-256-128-10 (234k a row) 0.73-0.80 s with a core left
# to the batch worker against 0.93-1.03 s with two shards; 784-400-400-10 (478k) and 784-512-256-10 (535k) even;
# 784-800-800-10 (1.27M) 4.05-4.26 s against 3.14-3.34 s.
HELPER_OUTPACES_WORKER = 600_000


def multiply_adds(layer_sizes: list[int]) -> int:
    """Multiply-adds of one row's forward pass through a network of layer_sizes: its weight count."""
    return count_parameters(layer_sizes)[0]


def shard_count(layer_sizes: list[int], batch_size: int) -> int:
    """How many shards a batch of batch_size rows is split into for a network of layer_sizes: 2 or 1."""
    return 2 if multiply_adds(layer_sizes) >= MIN_MULTIPLY_ADDS and batch_size >= 2 * MIN_ROWS else 1


def core_for_batches(layer_sizes: list[int], reproducible: bool) -> bool:
    """Whether training should leave a core to the batch worker (augmentation) rather than give it a second
    shard. It should, unless the helper process can take the second shard and the network is large enough
    (HELPER_OUTPACES_WORKER multiply-adds a row) that a second shard gains more than the worker loses."""
    large = multiply_adds(layer_sizes) >= HELPER_OUTPACES_WORKER
    return not (reproducible and supported() and large)


class ShardedGradients:
    """Fills model.grads with the batch's mean-loss gradients (times scale) and returns (loss, correct).

    loss_fn: an nn loss (z, targets, output) -> (mean loss, delta). workers says how many may work now
    (1 or more); it changes nothing but the speed. With two, the second shard goes to a helper process
    (shard_process.py) once it is ready, and to a second thread until then or where no helper can run.
    With sharded off, the whole batch is one shard (BLAS's own threads then split the products, and the
    bits depend on their number). helper=False keeps everything in this process.
    """

    def __init__(self, model: MLP, loss_fn: Any, sharded: bool = True, helper: bool = True) -> None:
        self.model, self.loss_fn, self.sharded = model, loss_fn, sharded
        self._twin: MLP | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._helper: ShardHelper | None = None
        self._use_helper = helper and sharded and supported()
        self._batches = 0  # two-worker batches seen before the helper was started
        self._largest = 0  # the largest batch so far: the helper's buffers are made for its second shard

    def __call__(
        self, xb: np.ndarray, yb: np.ndarray, rng: np.random.Generator, scale: float, workers: int = 1
    ) -> tuple[float, int]:
        """Gradients of the batch xb (n, inputs), int labels yb (n,), into self.model.grads.

        rng draws the dropout masks, always in the order first half, second half. Returns the batch's
        mean loss (float) and how many rows the network got right.
        """
        model, n = self.model, xb.shape[0]
        if not self.sharded or shard_count(model.layer_sizes, n) == 1:
            return shard_gradients(model, self.loss_fn, xb, yb, model.dropout_masks(n, rng), n, scale)
        h = (n + 1) // 2
        first = (xb[:h], yb[:h], model.dropout_masks(h, rng), n, scale)
        second = (xb[h:], yb[h:], model.dropout_masks(n - h, rng), n, scale)
        self._largest = max(self._largest, n)
        if workers >= 2 and yb.dtype.kind != "f":  # the helper's shared labels are int64; targets stay here
            helper = self._ready_helper(self._largest - (self._largest + 1) // 2)
            if helper is not None:
                try:
                    helper.submit(*second)
                    loss_a, right_a = shard_gradients(model, self.loss_fn, *first)
                    loss_b, right_b = helper.result()
                    model.grad_flat += helper.grad_flat  # first half + second half, always in this order
                    return loss_a + loss_b, right_a + right_b
                except HelperFailed:
                    self._drop_helper()  # this batch again, with a thread: the same bits
            twin = self._replica()
            if self._pool is None:
                self._pool = ThreadPoolExecutor(1, thread_name_prefix="mlpcli-shard")
            pending = self._pool.submit(shard_gradients, twin, self.loss_fn, *second)
            loss_a, right_a = shard_gradients(model, self.loss_fn, *first)
            loss_b, right_b = pending.result()
        else:
            twin = self._replica()
            loss_a, right_a = shard_gradients(model, self.loss_fn, *first)
            loss_b, right_b = shard_gradients(twin, self.loss_fn, *second)
        model.grad_flat += twin.grad_flat  # first half + second half, always in this order
        return loss_a + loss_b, right_a + right_b

    def _ready_helper(self, rows: int) -> ShardHelper | None:
        """The helper process when it is ready for work; on first use, starts it with room for shards of
        `rows` rows."""
        if not self._use_helper:
            return None
        if self._helper is None:
            self._batches += 1
            if self._batches < HELPER_AFTER_BATCHES:  # a short run would finish before the helper is up
                return None
            try:
                self._helper = ShardHelper(self.model, self.loss_fn, rows)
                self._helper.start()
            except (OSError, ValueError):  # no shared memory or no new process here: threads do the work
                self._drop_helper()
                return None
        if self._helper.exited():  # it could not start here (or was stopped): threads from now on
            self._drop_helper()
            return None
        return self._helper if self._helper.ready() else None

    def _drop_helper(self) -> None:
        self._use_helper = False
        if self._helper is not None:
            self._helper.close()
            self._helper = None

    def _replica(self) -> MLP:
        if self._twin is None or self._twin.flat is not self.model.flat:
            self._twin = self.model.replica()
        return self._twin

    def close(self) -> None:
        """End the worker thread and the helper process, if they were started."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        if self._helper is not None:
            self._helper.close()
            self._helper = None
        self._twin = None

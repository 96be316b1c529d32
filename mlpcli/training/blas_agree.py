"""Whether this machine's BLAS gives a network's products the same bits on any number of threads.

Training computes every product with BLAS's own threads, each product's sum cut into fixed chunks
(nn/products.py), so that the weights do not depend on the thread count. That rests on a property of
the BLAS: that splitting a product's rows and columns among threads changes no element's order of
additions. OpenBLAS has it (measured for 1 to 16 threads); a BLAS without it would train other weights
on other thread counts. This module checks it before training relies on it: every product a training
step computes, at the network's shapes and with its memory layouts, on random numbers (BLAS's order of
additions does not depend on the values, and a different order changes some of a product's thousands of
sums), with one thread and with the count training is about to use.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from mlpcli.nn.products import matmul

Array = np.ndarray


def step_products(layer_sizes: list[int], rows: int, dtype: np.dtype, rng: np.random.Generator) -> list[tuple]:
    """The operands (a, b) of every product of a training step on `rows` rows, laid out as MLP lays them out:
    the forward a^(l-1) @ W^l, the weight gradient a^(l-1)^T @ delta^l (a transposed view) and the backward
    delta^l @ W^l^T (a transposed view)."""
    out = []
    for fan_in, fan_out in zip(layer_sizes[:-1], layer_sizes[1:]):
        a = rng.standard_normal((rows, fan_in)).astype(dtype)
        w = rng.standard_normal((fan_in, fan_out)).astype(dtype)
        delta = rng.standard_normal((rows, fan_out)).astype(dtype)
        out += [(a, w), (a.T, delta), (delta, w.T)]
    return out


def thread_counts_agree(
    layer_sizes: list[int], rows: Iterable[int], dtype: np.dtype | type, threads: int, chunk: int | None
) -> bool:
    """True when every product of a training step on each of `rows` row counts (the batch size, the last
    batch's) comes out the same bits on `threads` BLAS threads as on one, cut by `chunk` as MLP cuts them.
    Leaves BLAS's thread count as it found it."""
    from threadpoolctl import threadpool_limits

    if threads <= 1:
        return True
    rng = np.random.default_rng(0)
    operands = [p for n in sorted(set(rows)) if n > 0 for p in step_products(layer_sizes, n, np.dtype(dtype), rng)]
    with threadpool_limits(limits=1, user_api="blas"):
        reference = [matmul(a, b, None, chunk) for a, b in operands]
    with threadpool_limits(limits=threads, user_api="blas"):
        return all(np.array_equal(matmul(a, b, None, chunk), r) for (a, b), r in zip(operands, reference))

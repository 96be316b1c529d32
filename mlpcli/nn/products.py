"""Matrix products whose bits do not depend on how many threads BLAS runs them on.

A product C = A @ B sums over the shared dimension k. OpenBLAS splits that sum into blocks of at most its
GEMM_Q (a few hundred) and adds the blocks' partial products into C; its one-thread and its many-thread
drivers choose those blocks differently when k is a little over GEMM_Q (measured with numpy's OpenBLAS
0.3.31 on a SkylakeX core: float32 products differ between 1 and 2 threads for k from 449 to 1100 except
multiples of 64, float64 ones from k = 386, and never for k up to 384), while the split of C's rows and
columns among threads changes no element's order of additions: the many-thread driver gives the same bits
on 2, 3, 4, 8 or 16 threads. So a product whose k is at most REDUCTION_CHUNK gives the same bits on any
number of threads, and a longer one is computed here as a fixed sum: k cut into equal chunks of at most
REDUCTION_CHUNK (a choice made from k alone), one product per chunk, added in order. Whether a machine's
BLAS keeps that promise is checked before training relies on it (training/blas_agree.py).
"""

from __future__ import annotations

import numpy as np

Array = np.ndarray

REDUCTION_CHUNK = 384  # at most this many terms summed by one BLAS call (784 inputs: 3 chunks of 262)


def reduction_chunks(k: int, chunk: int = REDUCTION_CHUNK) -> list[slice]:
    """The fixed cut of a sum over k terms: ceil(k / chunk) slices of equal length (the last shorter)."""
    parts = max(-(-k // chunk), 1)
    step = -(-k // parts)
    return [slice(s, min(s + step, k)) for s in range(0, max(k, 1), step)]


def matmul(a: Array, b: Array, out: Array | None = None, chunk: int | None = REDUCTION_CHUNK) -> Array:
    """a (m, k) @ b (k, n) -> (m, n), in out when given; the same bits on any number of BLAS threads.

    k is cut by reduction_chunks(k, chunk) and the chunks' products are added in order (first + second +
    ...); chunk=None computes one plain product (the bits may then depend on the BLAS thread count).
    Raises ValueError when the shapes do not match (as np.matmul).
    """
    k = a.shape[-1]
    if chunk is None or k <= chunk or a.ndim != 2 or b.ndim != 2:
        return np.matmul(a, b, out=out)
    parts = reduction_chunks(k, chunk)
    out = np.matmul(a[:, parts[0]], b[parts[0]], out=out)
    part = np.empty_like(out)
    for s in parts[1:]:
        out += np.matmul(a[:, s], b[s], out=part)
    return out

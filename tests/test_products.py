"""nn/products.py: a product's sum cut into fixed chunks, added in order; the same bits on any thread count."""

from __future__ import annotations

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from mlpcli.nn.products import REDUCTION_CHUNK, matmul, reduction_chunks


@pytest.mark.parametrize(("k", "lengths"), [(1, [1]), (384, [384]), (385, [193, 192]), (784, [262, 262, 260])])
def test_the_cut_depends_on_k_alone_and_covers_it(k: int, lengths: list[int]) -> None:
    parts = reduction_chunks(k, 384)
    assert [s.stop - s.start for s in parts] == lengths
    assert parts[0].start == 0 and parts[-1].stop == k and all(a.stop == b.start for a, b in zip(parts, parts[1:]))


def test_a_cut_product_is_its_chunks_added_in_order() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((33, 900), dtype=np.float32), rng.standard_normal((900, 17), dtype=np.float32)
    got = matmul(a, b)
    first, second, third = (a[:, s] @ b[s] for s in reduction_chunks(900, REDUCTION_CHUNK))
    assert np.array_equal(got, (first + second) + third)
    np.testing.assert_allclose(got, a @ b, rtol=1e-4, atol=1e-4)
    out = np.empty((33, 17), np.float32)
    assert matmul(a, b, out) is out and np.array_equal(out, got)
    assert np.array_equal(matmul(a, b, None, None), a @ b)  # chunk=None: one plain product


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cut_products_give_the_same_bits_on_one_to_four_threads(dtype: type) -> None:
    rng = np.random.default_rng(1)
    cases = [((128, 784), (784, 256)), ((784, 128), (128, 256)), ((256, 1024), (1024, 784)), ((7, 2000), (2000, 3))]
    for sa, sb in cases:
        a, b = rng.standard_normal(sa).astype(dtype), rng.standard_normal(sb).astype(dtype)
        results = []
        for threads in (1, 2, 3, 4):
            with threadpool_limits(limits=threads, user_api="blas"):
                results.append(matmul(a, b))
        assert all(np.array_equal(results[0], r) for r in results[1:]), (sa, sb)

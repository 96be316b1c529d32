"""What reproducible training costs: a batch's gradients in two fixed shards against one BLAS-threaded product.

    python scripts/bench_shards.py [--sizes 784,256,128,10] [--batch 128] [--rounds 5]

Forward, loss and backward of 200 random batches, in one process, the variants alternated round by
round (median of the rounds, in microseconds a batch): the model's own full-batch step with BLAS on
every core, the same with one BLAS thread, ShardedGradients with its helper process (what
`train.reproducible: true` runs on x86-64) and on two threads (elsewhere, and until the helper is
up), with and without the gradient sum, beside what two perfectly parallel
shards would take (one half batch alone) and what waking the second thread costs (an empty round trip).
Run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np
from threadpoolctl import threadpool_limits

from mlpcli.nn.losses import get_loss
from mlpcli.nn.mlp import MLP
from mlpcli.training.shard import shard_gradients
from mlpcli.training.shards import ShardedGradients
from mlpcli.training.threads import usable_cores

STEPS = 200


def main() -> None:
    """Print microseconds a batch for each variant."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="784,256,128,10")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    rng = np.random.default_rng(0)
    model = MLP(sizes).init(rng)
    x = rng.random((args.batch * STEPS, sizes[0]), dtype=np.float32)
    y = rng.integers(0, sizes[-1], args.batch * STEPS)
    loss_fn = get_loss("cross_entropy")
    cores = usable_cores()

    def whole(xb: np.ndarray, yb: np.ndarray) -> None:
        z = model.forward_train(xb)
        model.backward(loss_fn(z, yb, model.output_activation)[1])

    sharded = ShardedGradients(model, loss_fn, helper=False)
    helped = ShardedGradients(model, loss_fn)
    helped(x[: args.batch], y[: args.batch], rng, 1.0, 2)  # starts the helper process
    while helped._helper is not None and not helped._helper.ready():
        time.sleep(0.01)
    twin = model.replica()

    def halves_without_sum(xb: np.ndarray, yb: np.ndarray) -> None:
        h = (xb.shape[0] + 1) // 2
        n = xb.shape[0]
        pending = sharded._pool.submit(shard_gradients, twin, loss_fn, xb[h:], yb[h:], None, n, 1.0)
        shard_gradients(model, loss_fn, xb[:h], yb[:h], None, n, 1.0)
        pending.result()

    def first_half(xb: np.ndarray, yb: np.ndarray) -> None:
        h = (xb.shape[0] + 1) // 2
        shard_gradients(model, loss_fn, xb[:h], yb[:h], None, xb.shape[0], 1.0)

    def round_trip(xb: np.ndarray, yb: np.ndarray) -> None:
        sharded._pool.submit(int).result()

    def per_batch(step: Callable[[np.ndarray, np.ndarray], None]) -> float:
        start = time.perf_counter()
        for i in range(STEPS):
            step(x[i * args.batch : (i + 1) * args.batch], y[i * args.batch : (i + 1) * args.batch])
        return (time.perf_counter() - start) / STEPS * 1e6

    results: dict[str, list[float]] = {}
    for _ in range(args.rounds):
        with threadpool_limits(limits=1, user_api="blas"):  # BLAS's own threads asleep before the shards run
            results.setdefault("one BLAS thread, one shard", []).append(per_batch(whole))
            helper = "two shards, the second in the helper process"
            results.setdefault(helper, []).append(per_batch(lambda a, b: helped(a, b, rng, 1.0, 2)))
            results.setdefault("two shards on 2 threads", []).append(per_batch(lambda a, b: sharded(a, b, rng, 1.0, 2)))
            results.setdefault("  the same without the sum", []).append(per_batch(halves_without_sum))
            results.setdefault("  its first half alone (the ideal)", []).append(per_batch(first_half))
            results.setdefault("  an empty round trip to its thread", []).append(per_batch(round_trip))
        with threadpool_limits(limits=cores, user_api="blas"):
            results.setdefault(f"one shard, BLAS {cores} threads", []).append(per_batch(whole))
    sharded.close()
    helped.close()
    base = statistics.median(results[f"one shard, BLAS {cores} threads"])
    print(f"{'-'.join(map(str, sizes))}, batch {args.batch}, {cores} cores; median of {args.rounds} rounds")
    for name, values in results.items():
        median = statistics.median(values)
        print(f"{name:46s} {median:8.0f} us/batch  {median / base:5.2f}x")


if __name__ == "__main__":
    main()

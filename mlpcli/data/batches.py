"""The training batch stream: gather rows -> augment (optional) -> normalize.

Images stay (n, h, w) through augmentation and are flattened for the network only at the
end. Augmentation draws from its own generator, so turning it on or off changes neither
the shuffling nor the initialization nor the dropout of a run. With `workers`, threads
prepare the next batches while the main thread trains (NumPy and BLAS release the GIL, so
they overlap on two cores); batches come out in the same order with the same numbers
however many workers make them, so resume stays exact. With more workers than free cores, a
full queue puts the workers to sleep and the operating system hands their core to training, so
two workers balance the load between preparing and training by themselves.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from mlpcli.data.augment import Augmenter, Distortion, side
from mlpcli.data.prepare import Normalizer

Array = np.ndarray


@dataclass
class Split:
    """uint8 images (N, d) and labels (N,) of one split, or of the rows `index` selects (no copy)."""

    x: np.ndarray
    y: np.ndarray
    index: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.y.shape[0] if self.index is None else self.index.shape[0])


class BatchStream:
    """Mini-batches of a training split, one epoch at a time, in the order given to epoch().

    distortion: augmentation (None or all zero: none); rng: augmentation's own generator;
    workers: threads preparing batches ahead (0: prepare them in the caller), each up to `prefetch` ahead.
    """

    def __init__(
        self,
        split: Split,
        batch_size: int,
        normalizer: Normalizer,
        *,
        dtype: np.dtype | type = np.float32,
        distortion: Distortion | None = None,
        rng: np.random.Generator | None = None,
        workers: int = 0,
        prefetch: int = 4,
    ) -> None:
        self.split, self.batch_size, self.normalizer = split, int(batch_size), normalizer
        self.dtype = np.dtype(dtype)
        self.augmenter: Augmenter | None = None
        self.side = 0
        if distortion is not None and distortion.active:
            self.side = side(split.x.shape[1])
            self.augmenter = Augmenter(distortion, self.side, self.side)
            if rng is None:
                raise ValueError("augmentation needs its own np.random.Generator")
        self.rng: np.random.Generator = rng if rng is not None else np.random.default_rng(0)
        self.workers, self.prefetch = max(int(workers), 0), max(int(prefetch), 1)

    def __len__(self) -> int:
        return len(self.split)

    @property
    def steps(self) -> int:
        """Batches per epoch."""
        return -(-len(self.split) // self.batch_size)

    def epoch(self, order: Array) -> Iterator[tuple[Array, Array]]:
        """(x, y) batches visiting the split's rows in `order` (a permutation of 0..len-1).

        x is (m, d) in the stream's dtype, y (m,); both are reused buffers, valid until the next batch.
        """
        rows = order if self.split.index is None else self.split.index[order]
        count = -(-rows.shape[0] // self.batch_size)
        # One seed per batch, drawn in order from the stream's generator: each batch's distortions are
        # then a pure function of its rows and its seed, whichever thread makes it.
        seeds = self.rng.integers(0, 2**63 - 1, size=count) if self.augmenter is not None else np.zeros(count, int)
        if self.workers:
            return self._prefetched(rows, seeds)
        return self._serial(rows, seeds)

    def _buffers(self, count: int) -> list[tuple[Array, Array, Array]]:
        m, d = min(self.batch_size, max(len(self.split), 1)), self.split.x.shape[1]
        x, y = self.split.x, self.split.y
        return [(np.empty((m, d), x.dtype), np.empty((m, d), self.dtype), np.empty(m, y.dtype)) for _ in range(count)]

    def _batch(self, b: int, rows: Array, seed: int, buffers: tuple[Array, Array, Array]) -> tuple[Array, Array]:
        pixels, xbuf, labels = buffers
        part = rows[b * self.batch_size : (b + 1) * self.batch_size]
        m = part.shape[0]
        np.take(self.split.x, part, axis=0, out=pixels[:m], mode="clip")  # "clip": no hidden temporary
        yb = np.take(self.split.y, part, out=labels[:m], mode="clip")
        if self.augmenter is None:
            return self.normalizer.apply(pixels[:m], out=xbuf[:m]), yb
        s = self.side
        if self.dtype == np.float32:  # distort straight into the batch buffer, then normalize in place
            self.augmenter(pixels[:m].reshape(m, s, s), np.random.default_rng(seed), out=xbuf[:m])
            return self.normalizer.apply(xbuf[:m], out=xbuf[:m]), yb
        images = self.augmenter(pixels[:m].reshape(m, s, s), np.random.default_rng(seed))
        return self.normalizer.apply(images.reshape(m, -1), out=xbuf[:m]), yb

    def _serial(self, rows: Array, seeds: Array) -> Iterator[tuple[Array, Array]]:
        buffers = self._buffers(1)[0]
        for b, seed in enumerate(seeds):
            yield self._batch(b, rows, int(seed), buffers)

    def _prefetched(self, rows: Array, seeds: Array) -> Iterator[tuple[Array, Array]]:
        # Worker k makes batches k, k + W, k + 2W, ... into its own ring of depth + 2 buffers (up to
        # `depth` queued, one being filled, one held by the consumer), which reads the queues in turn.
        workers, depth = self.workers, max(self.prefetch, 1)
        rings = [self._buffers(depth + 2) for _ in range(workers)]
        queues: list[queue.Queue] = [queue.Queue(maxsize=depth) for _ in range(workers)]
        stop = threading.Event()

        def work(k: int) -> None:
            ready, ring = queues[k], rings[k]
            try:
                for i, b in enumerate(range(k, seeds.shape[0], workers)):
                    batch = self._batch(b, rows, int(seeds[b]), ring[i % len(ring)])
                    while not stop.is_set():
                        try:
                            ready.put(batch, timeout=0.1)
                            break
                        except queue.Full:
                            continue
                    if stop.is_set():
                        return
            except BaseException as exc:  # handed to the consumer, which re-raises it
                ready.put(exc)

        threads = [
            threading.Thread(target=work, args=(k,), name=f"mlpcli-batches-{k}", daemon=True) for k in range(workers)
        ]
        for t in threads:
            t.start()
        try:
            for b in range(seeds.shape[0]):
                item = queues[b % workers].get()
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()
            for t, ready in zip(threads, queues):
                while t.is_alive():  # unblock a worker waiting on a full queue, then wait for it
                    try:
                        ready.get_nowait()
                    except queue.Empty:
                        pass
                    t.join(timeout=0.05)

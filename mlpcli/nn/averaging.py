"""An exponential moving average of the parameters, evaluated and checkpointed beside the raw weights.

Polyak & Juditsky (1992) showed that averaging the iterates of stochastic gradient descent gives
estimates as good as the best step sizes would; an exponential average (Polyak averaging with a
forgetting factor) follows a model that keeps changing. The warm-up of the decay is TensorFlow's
``ExponentialMovingAverage(num_updates=t)``: decay_t = min(decay, (1 + t) / (10 + t)), so the first
updates are not dominated by the random initialization.
"""

from __future__ import annotations

import numpy as np

Array = np.ndarray


class ExponentialAverage:
    """avg <- d avg + (1 - d) params, every `every` optimizer steps, with d = min(decay^every, (1+t)/(10+t)).

    decay: the per-step factor in (0, 1), e.g. 0.999 (an average over about 1 / (1 - decay) steps).
    every: update after every `every`-th step (decay^every per update keeps the same horizon); each
    update is two passes over the parameters. flat: the average (float, the parameters' shape and
    dtype), None before the first update; t: updates so far.
    Raises ValueError for a decay outside (0, 1) or every < 1.
    """

    def __init__(self, decay: float, every: int = 1, flat: Array | None = None, t: int = 0) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"decay must be in (0, 1), got {decay}")
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        self.decay, self.every = float(decay), int(every)
        self.flat = None if flat is None else np.array(flat, copy=True)
        self.t = int(t)

    def update(self, params: Array) -> None:
        """Fold params (a flat parameter vector, e.g. MLP.flat) into the average."""
        if self.flat is None or self.flat.shape != params.shape:
            self.flat, self.t = params.copy(), 1
            return
        d = min(self.decay**self.every, (1.0 + self.t) / (10.0 + self.t))
        self.flat *= self.flat.dtype.type(d)
        self.flat += self.flat.dtype.type(1.0 - d) * params
        self.t += 1

    def step(self, global_step: int, params: Array) -> None:
        """Call after optimizer step number global_step (1-based): updates on every `every`-th."""
        if global_step % self.every == 0:
            self.update(params)

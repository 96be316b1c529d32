"""The training step's fast path: the learning rate folded into the gradients.

nn/'s step is written to be read: backward() gives the gradients, and the optimizer then
scales the momentum velocity by the learning rate in a whole-buffer pass of its own. At
batch 128 such passes over the parameters cost a good part of what the matrix products do.
Backpropagation is linear in the output delta, so multiplying the (n, k) delta by lr before
backward() gives lr * every gradient (dropout masks and weight decay included) for free.
Momentum then keeps u = lr v:

    u <- mu (lr_t / lr_{t-1}) u + lr_t g,   W <- W - u

three passes over the parameters instead of four (plain SGD one instead of two, Nesterov
five instead of six). sync() turns u back into the plain optimizer's v, before every
checkpoint, so checkpoints and exact resume are the plain path's. The result matches nn/'s
step to float32 rounding (tests/test_fused.py); what it measured is in the README.
"""

from __future__ import annotations

import numpy as np

from mlpcli.nn.optimizers import SGD, Momentum, Optimizer

Array = np.ndarray


def unsupported(optimizer: Optimizer, diagnostics: bool = False) -> str | None:
    """Why the learning rate cannot be folded for this optimizer, or None when it can."""
    if type(optimizer) not in (SGD, Momentum):  # Adam divides by the gradients' own scale
        return f"optimizer {type(optimizer).__name__}"
    if diagnostics:  # gradient norms need the gradients themselves
        return "gradient diagnostics"
    return None


class LearningRateFold:
    """Steps an SGD or momentum optimizer with gradients that already carry the learning rate.

    Per step: factor(lr) says what to multiply the output delta and the weight decay by,
    then step(params, grads) applies the update.
    """

    def __init__(self, optimizer: Optimizer) -> None:
        reason = unsupported(optimizer)
        if reason is not None:
            raise ValueError(f"the learning rate cannot be folded for {reason}")
        self.optimizer = optimizer
        self._scale = 1.0  # the velocity buffer holds scale * v (the last folded step's lr)
        self._lr = optimizer.lr
        self._folded = False

    def factor(self, lr: float) -> float:
        """The learning rate of the coming step, or 1 when it is 0 (nothing to fold: the plain step runs)."""
        self._lr = float(lr)
        self._folded = self._lr > 0
        return self._lr if self._folded else 1.0

    def step(self, params: Array, grads: Array) -> None:
        """Update params from grads, which hold factor(lr) times the gradients."""
        opt = self.optimizer
        opt.lr = self._lr
        if not self._folded:
            self.sync()
            opt.step(params, grads)
            return
        opt.t += 1
        if not isinstance(opt, Momentum):
            params -= grads
            return
        u = opt._buffer("v", params)
        mu = u.dtype.type(opt.momentum)
        u *= u.dtype.type(opt.momentum * self._lr / self._scale)
        u += grads
        self._scale = self._lr
        if opt.nesterov:  # W <- W - lr (g + mu v) = W - (lr g + mu u); grads is free to reuse after
            params -= grads
            np.multiply(u, mu, out=grads)
            params -= grads
        else:
            params -= u

    def sync(self) -> None:
        """Turn the folded velocity back into the plain optimizer's v (before a checkpoint, or a plain step)."""
        if self._scale != 1.0:
            v = self.optimizer.state.get("v")
            if v is not None:
                v /= v.dtype.type(self._scale)
            self._scale = 1.0

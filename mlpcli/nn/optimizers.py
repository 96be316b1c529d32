"""Optimizers: they hold state, so they are classes; step() updates parameters in place.

An optimizer steps one flat parameter buffer with its flat gradient buffer (MLP.flat and
MLP.grad_flat): the same path in tests and in training, and a few whole-buffer operations
per step instead of a few per tensor. State lives in a dict of arrays shaped like that
buffer; state_dict() / load_state_dict() make a resumed run continue exactly. The learning
rate is a plain attribute the schedule sets.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Array = np.ndarray


class Optimizer:
    """Base class: plain gradient descent W <- W - lr * dE/dW (the lecture's update)."""

    def __init__(self, lr: float) -> None:
        if not lr > 0:
            raise ValueError(f"learning rate must be > 0, got {lr}")
        self.lr = float(lr)
        self.state: dict[str, Array] = {}
        self.t = 0

    def step(self, params: Array, grads: Array) -> None:
        """Update params (a flat array, e.g. MLP.flat) in place from grads (the same shape)."""
        if params.shape != grads.shape:
            raise ValueError(f"params {params.shape} and grads {grads.shape} differ in shape")
        self.t += 1
        self._update(params, grads)

    def _update(self, p: Array, g: Array) -> None:
        tmp = self._buffer("_tmp", p)
        np.multiply(g, p.dtype.type(self.lr), out=tmp)
        p -= tmp

    def _buffer(self, name: str, like: Array) -> Array:
        buf = self.state.get(name)
        if buf is None or buf.shape != like.shape or buf.dtype != like.dtype:
            buf = self.state[name] = np.zeros_like(like)
        return buf

    def state_dict(self) -> dict[str, Array]:
        """Every array of state (copied) plus the step count, for exact resume."""
        out = {k: v.copy() for k, v in self.state.items() if not k.startswith("_tmp")}
        out["t"] = np.array(self.t, dtype=np.int64)
        return out

    def load_state_dict(self, state: dict[str, Array]) -> None:
        """Restore what state_dict() returned."""
        self.t = int(state.get("t", 0))
        # checkpoints of mlpcli 0.1 named the flat buffer's state "v.all", "m.all"
        self.state = {k.removesuffix(".all"): np.array(v, copy=True) for k, v in state.items() if k != "t"}


class SGD(Optimizer):
    """Plain stochastic gradient descent."""


class Momentum(Optimizer):
    """Heavy-ball momentum: v <- mu v + g; W <- W - lr v (optionally Nesterov's look-ahead)."""

    def __init__(self, lr: float, momentum: float = 0.9, nesterov: bool = False) -> None:
        super().__init__(lr)
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        self.momentum = float(momentum)
        self.nesterov = nesterov

    def _update(self, p: Array, g: Array) -> None:
        v = self._buffer("v", p)
        mu, lr = p.dtype.type(self.momentum), p.dtype.type(self.lr)
        tmp = self._buffer("_tmp", p)
        v *= mu
        v += g
        if self.nesterov:
            # W <- W - lr (g + mu v): the gradient step plus the momentum's look-ahead.
            np.multiply(v, mu, out=tmp)
            tmp += g
            tmp *= lr
        else:
            np.multiply(v, lr, out=tmp)
        p -= tmp


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015) with bias-corrected first and second moments."""

    def __init__(self, lr: float, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8) -> None:
        super().__init__(lr)
        for name, beta in (("beta1", beta1), ("beta2", beta2)):
            if not 0.0 <= beta < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {beta}")
        if not eps > 0:
            raise ValueError(f"eps must be > 0, got {eps}")
        self.beta1, self.beta2, self.eps = float(beta1), float(beta2), float(eps)

    def _update(self, p: Array, g: Array) -> None:
        m = self._buffer("m", p)
        v = self._buffer("v", p)
        b1, b2 = self.beta1, self.beta2
        tmp = self._buffer("_tmp", p)
        t = p.dtype.type
        m *= t(b1)
        np.multiply(g, t(1 - b1), out=tmp)
        m += tmp
        v *= t(b2)
        np.multiply(g, g, out=tmp)
        tmp *= t(1 - b2)
        v += tmp
        step = self.lr * np.sqrt(1 - b2**self.t) / (1 - b1**self.t)
        eps_hat = self.eps * np.sqrt(1 - b2**self.t)  # eps added to sqrt(v_hat), rescaled
        np.sqrt(v, out=tmp)
        tmp += t(eps_hat)
        np.divide(m, tmp, out=tmp)
        tmp *= t(step)
        p -= tmp


# The optimizer registry: config name -> factory taking the optimizer settings.
OPTIMIZERS: dict[str, Callable[..., Optimizer]] = {
    "sgd": lambda lr, **_: SGD(lr),
    "momentum": lambda lr, momentum=0.9, **_: Momentum(lr, momentum),
    "nesterov": lambda lr, momentum=0.9, **_: Momentum(lr, momentum, nesterov=True),
    "adam": lambda lr, beta1=0.9, beta2=0.999, **_: Adam(lr, beta1, beta2),
}


def make_optimizer(name: str, lr: float, momentum: float = 0.9, beta1: float = 0.9, beta2: float = 0.999) -> Optimizer:
    """Build an optimizer by its config name."""
    factory = OPTIMIZERS.get(name)
    if factory is None:
        raise ValueError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}")
    return factory(lr, momentum=momentum, beta1=beta1, beta2=beta2)

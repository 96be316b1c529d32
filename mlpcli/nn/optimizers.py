"""Optimizers: they hold state, so they are classes; step() updates parameters in place.

State lives in dicts keyed like the parameters; state_dict() / load_state_dict() make a
resumed run continue exactly. The learning rate is a plain attribute the schedule sets.
"""

from __future__ import annotations

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

    def step(self, params: dict[str, Array], grads: dict[str, Array]) -> None:
        """Update every parameter in place from its gradient."""
        self.t += 1
        for k, p in params.items():
            self._update(k, p, grads[k])

    def _update(self, key: str, p: Array, g: Array) -> None:
        tmp = self._buffer(f"_tmp.{key}", p)
        np.multiply(g, p.dtype.type(self.lr), out=tmp)
        p -= tmp

    def _buffer(self, name: str, like: Array) -> Array:
        buf = self.state.get(name)
        if buf is None or buf.shape != like.shape or buf.dtype != like.dtype:
            buf = self.state[name] = np.zeros_like(like)
        return buf

    def state_dict(self) -> dict[str, Array]:
        """Every array of state (copied) plus the step count, for exact resume."""
        out = {k: v.copy() for k, v in self.state.items() if not k.startswith("_tmp.")}
        out["t"] = np.array(self.t, dtype=np.int64)
        return out

    def load_state_dict(self, state: dict[str, Array]) -> None:
        """Restore what state_dict() returned."""
        self.t = int(state.get("t", 0))
        self.state = {k: np.array(v, copy=True) for k, v in state.items() if k != "t"}


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

    def _update(self, key: str, p: Array, g: Array) -> None:
        v = self._buffer(f"v.{key}", p)
        mu, lr = p.dtype.type(self.momentum), p.dtype.type(self.lr)
        tmp = self._buffer(f"_tmp.{key}", p)
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

    def _update(self, key: str, p: Array, g: Array) -> None:
        m = self._buffer(f"m.{key}", p)
        v = self._buffer(f"v.{key}", p)
        b1, b2 = self.beta1, self.beta2
        tmp = self._buffer(f"_tmp.{key}", p)
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


OPTIMIZERS = ("sgd", "momentum", "nesterov", "adam")


def make_optimizer(name: str, lr: float, momentum: float = 0.9, beta1: float = 0.9, beta2: float = 0.999) -> Optimizer:
    """Build an optimizer by its config name."""
    if name == "sgd":
        return SGD(lr)
    if name == "momentum":
        return Momentum(lr, momentum)
    if name == "nesterov":
        return Momentum(lr, momentum, nesterov=True)
    if name == "adam":
        return Adam(lr, beta1, beta2)
    raise ValueError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}")

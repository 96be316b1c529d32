"""Optimizers: they hold state, so they are classes; step() updates parameters in place.

An optimizer steps one flat parameter buffer with its flat gradient buffer (MLP.flat and
MLP.grad_flat): the same path in tests and in training, and a few whole-buffer operations
per step instead of a few per tensor. State lives in a dict of arrays shaped like that
buffer; state_dict() / load_state_dict() make a resumed run continue exactly.

The optimizer owns everything about the update:

- the learning rate: ``base_lr`` is the configured rate, ``lr`` the rate of the coming
  step, which the training loop sets once per step from the schedule;
- weight decay, on the parts of the buffer the model's decay mask names (weights, not
  biases): as an L2 penalty (wd/2) sum W^2 added to the loss, whose gradient wd W joins
  the gradients (``decoupled=False``), or decoupled, W <- W - lr wd W, apart from the
  adaptive step (``decoupled=True``: AdamW, Loshchilov & Hutter 2019);
- folding the learning rate into the gradients, a capability an optimizer declares with
  ``folds_lr``. Backpropagation is linear in the output delta, so multiplying the (n, k)
  delta by lr gives lr times every gradient without a pass over the parameters; an
  optimizer that folds then saves its own pass (SGD: one instead of two; momentum keeps
  u = lr v: u <- mu (lr_t / lr_{t-1}) u + lr_t g, W <- W - u, three passes instead of
  four). ``begin_step(lr)`` returns what the gradients must carry; state_dict() is the
  unfolded state, so checkpoints and exact resume do not depend on the fold;
- keeping its state out of the subnormal range. A state entry whose gradient stays 0 (a dead
  unit's, a pixel that is blank in every image of a stretch) decays geometrically (momentum
  mu^t, Adam's moments beta^t) through the subnormal floats, where each of x86's elementwise
  operations on it is many times slower (measured: the momentum step of a 784-100-10 network
  2.9x slower by its second epoch). Every FLUSH_EVERY steps, entries below FLUSH_BELOW times the
  smallest normal float become 0, as a flush-to-zero processor mode would (PyTorch's
  ``set_flush_denormal``); the step count decides when, so runs and resumes stay exact. A momentum
  entry that small (2^-102 in float32) moves no weight above 2^-78 by a single bit.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlpcli.nn.regularization import add_penalties

Array = np.ndarray

FLUSH_EVERY = 16  # steps between two flushes of the state's near-subnormal entries
FLUSH_BELOW = 2.0**24  # entries below this many smallest-normal floats are flushed to 0


class Optimizer:
    """Base class: plain gradient descent W <- W - lr * dE/dW (the lecture's update)."""

    folds_lr = False  # whether it can take gradients that already carry the learning rate

    def __init__(
        self,
        lr: float,
        weight_decay: float = 0.0,
        decoupled: bool = False,
        l1: float = 0.0,
        *,
        fold: bool = False,
        decay_mask: Sequence[slice] | None = None,
    ) -> None:
        """lr: the base learning rate (a public setting: a schedule or the playground changes it); weight_decay,
        l1: the penalties (L2 added to the gradients, or with decoupled=True shrinking the weights apart);
        fold: take gradients that already carry the rate (the fused step; only where folds_lr); decay_mask:
        the slices of the flat buffer the penalties apply to (MLP.decay_mask(): the weights, never a bias;
        None: all of it). ValueError for a rate <= 0 or a negative penalty."""
        if not lr > 0:
            raise ValueError(f"learning rate must be > 0, got {lr}")
        if not weight_decay >= 0:
            raise ValueError(f"weight decay must be >= 0, got {weight_decay}")
        if not l1 >= 0:
            raise ValueError(f"the L1 rate must be >= 0, got {l1}")
        self.l1 = float(l1)
        self.base_lr = float(lr)
        self.lr = float(lr)
        self.weight_decay = float(weight_decay)
        self.decoupled = decoupled
        self.decay_mask: Sequence[slice] | None = decay_mask  # None: decay the whole buffer
        self.fold = bool(fold) and self.folds_lr  # whether the gradients it is given carry the rate
        self.state: dict[str, Array] = {}
        self.t = 0
        self._scale = 1.0  # the folded state holds scale * (the plain state)
        self._folded = False

    # ---- one step ------------------------------------------------------------------

    def begin_step(self, lr: float) -> float:
        """Set the rate of the coming step; returns what the output delta must be multiplied by.

        With fold on (and lr > 0), the gradients then carry lr; otherwise 1.
        """
        self.lr = float(lr)
        self._folded = self.fold and self.folds_lr and self.lr > 0
        return self.lr if self._folded else 1.0

    def penalty(self, params: Array, grads: Array) -> float:
        """L2 weight decay (unless decoupled) and L1: adds their gradients to grads (scaled like them) and
        returns (wd/2) sum W^2 + l1 sum |W| (regularization.py); 0 without either."""
        l2 = 0.0 if self.decoupled else self.weight_decay
        if not l2 and not self.l1:
            return 0.0
        mask = self.decay_mask if self.decay_mask is not None else [slice(None)]
        return add_penalties(params, grads, mask, l2, self.l1, self.lr if self._folded else 1.0)

    def step(self, params: Array, grads: Array) -> None:
        """Update params (a flat array, e.g. MLP.flat) in place from grads (the same shape)."""
        if params.shape != grads.shape:
            raise ValueError(f"params {params.shape} and grads {grads.shape} differ in shape")
        self.t += 1
        if self.decoupled and self.weight_decay:
            shrink = params.dtype.type(1.0 - self.lr * self.weight_decay)
            for part in self.decay_mask if self.decay_mask is not None else [slice(None)]:
                params[part] *= shrink
        if self._folded:
            self._update_folded(params, grads)
        else:
            self.sync()
            self._update(params, grads)
        if self.t % FLUSH_EVERY == 0:
            self._flush_tiny()

    def _flush_tiny(self) -> None:
        """Entries of the state buffers smaller in magnitude than FLUSH_BELOW * tiny become 0 (in place)."""
        for name, buf in list(self.state.items()):
            if name.startswith("_tmp") or not np.issubdtype(buf.dtype, np.floating):
                continue
            small = self.state.get("_tmp_small")
            if small is None or small.shape != buf.shape:
                small = self.state["_tmp_small"] = np.empty(buf.shape, bool)
            magnitude = self._buffer("_tmp", buf)
            np.abs(buf, out=magnitude)
            np.less(magnitude, buf.dtype.type(np.finfo(buf.dtype).tiny * FLUSH_BELOW), out=small)
            np.putmask(buf, small, 0)

    def _update(self, p: Array, g: Array) -> None:
        tmp = self._buffer("_tmp", p)
        np.multiply(g, p.dtype.type(self.lr), out=tmp)
        p -= tmp

    def _update_folded(self, p: Array, g: Array) -> None:
        p -= g

    def sync(self) -> None:
        """Turn folded state back into the plain optimizer's (the loop calls it before checkpoints)."""
        self._scale = 1.0

    def _buffer(self, name: str, like: Array) -> Array:
        buf = self.state.get(name)
        if buf is None or buf.shape != like.shape or buf.dtype != like.dtype:
            buf = self.state[name] = np.zeros_like(like)
        return buf

    # ---- state ---------------------------------------------------------------------

    def state_dict(self) -> dict[str, Array]:
        """Every array of state (copied, unfolded) plus the step count, for exact resume."""
        self.sync()
        out = {k: v.copy() for k, v in self.state.items() if not k.startswith("_tmp")}
        out["t"] = np.array(self.t, dtype=np.int64)
        return out

    def load_state_dict(self, state: dict[str, Array]) -> None:
        """Restore what state_dict() returned."""
        self.t = int(state.get("t", 0))
        self._scale = 1.0
        # checkpoints of mlpcli 0.1 named the flat buffer's state "v.all", "m.all"
        self.state = {k.removesuffix(".all"): np.array(v, copy=True) for k, v in state.items() if k != "t"}


class SGD(Optimizer):
    """Plain stochastic gradient descent."""

    folds_lr = True


class Momentum(Optimizer):
    """Heavy-ball momentum: v <- mu v + g; W <- W - lr v (optionally Nesterov's look-ahead)."""

    folds_lr = True

    def __init__(
        self,
        lr: float,
        momentum: float = 0.9,
        nesterov: bool = False,
        weight_decay: float = 0.0,
        l1: float = 0.0,
        **layout: Any,
    ) -> None:
        super().__init__(lr, weight_decay, l1=l1, **layout)
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

    def _update_folded(self, p: Array, g: Array) -> None:
        u = self._buffer("v", p)  # holds scale * v
        u *= u.dtype.type(self.momentum * self.lr / self._scale)
        u += g
        self._scale = self.lr
        if self.nesterov:  # W <- W - lr (g + mu v) = W - (lr g + mu u); g stays as it was lent
            tmp = self._buffer("_tmp", p)
            p -= g
            np.multiply(u, u.dtype.type(self.momentum), out=tmp)
            p -= tmp
        else:
            p -= u

    def sync(self) -> None:
        if self._scale != 1.0:
            v = self.state.get("v")
            if v is not None:
                v /= v.dtype.type(self._scale)
        self._scale = 1.0


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015) with bias-corrected first and second moments.

    decoupled=True is AdamW (Loshchilov & Hutter, 2019): the weight decay shrinks the
    weights by lr wd apart from the adaptive step instead of joining the gradients.
    """

    def __init__(
        self,
        lr: float,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        decoupled: bool = False,
        l1: float = 0.0,
        **layout: Any,
    ) -> None:
        super().__init__(lr, weight_decay, decoupled, l1, **layout)
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


def _layout(options: dict[str, Any]) -> dict[str, Any]:
    """The construction options every optimizer takes (fold, decay_mask), out of a registry call's keywords."""
    return {k: options[k] for k in ("fold", "decay_mask") if k in options}


@dataclass(frozen=True)
class OptimizerSpec:
    """A registry entry: a factory taking the config's optimizer settings, and the keys it reads.

    make(lr, **settings) -> Optimizer; `settings` lists the `optimizer.*` keys it uses besides lr.
    """

    make: Callable[..., Optimizer]
    settings: tuple[str, ...] = ()
    summary: str = ""


# The optimizer registry: config name -> entry. Config choices, tests and docs derive from it.
OPTIMIZERS: dict[str, OptimizerSpec] = {
    "sgd": OptimizerSpec(
        lambda lr, weight_decay=0.0, l1=0.0, **kw: SGD(lr, weight_decay, l1=l1, **_layout(kw)),
        ("weight_decay", "l1"),
        "W -= lr g",
    ),
    "momentum": OptimizerSpec(
        lambda lr, momentum=0.9, weight_decay=0.0, l1=0.0, **kw: Momentum(
            lr, momentum, False, weight_decay, l1, **_layout(kw)
        ),
        ("momentum", "weight_decay", "l1"),
        "v = mu v + g; W -= lr v",
    ),
    "nesterov": OptimizerSpec(
        lambda lr, momentum=0.9, weight_decay=0.0, l1=0.0, **kw: Momentum(
            lr, momentum, True, weight_decay, l1, **_layout(kw)
        ),
        ("momentum", "weight_decay", "l1"),
        "W -= lr (g + mu v)",
    ),
    "adam": OptimizerSpec(
        lambda lr, beta1=0.9, beta2=0.999, weight_decay=0.0, l1=0.0, **kw: Adam(
            lr, beta1, beta2, weight_decay=weight_decay, l1=l1, **_layout(kw)
        ),
        ("beta1", "beta2", "weight_decay", "l1"),
        "Kingma & Ba 2015; weight decay as an L2 penalty",
    ),
    "adamw": OptimizerSpec(
        lambda lr, beta1=0.9, beta2=0.999, weight_decay=0.0, l1=0.0, **kw: Adam(
            lr, beta1, beta2, weight_decay=weight_decay, decoupled=True, l1=l1, **_layout(kw)
        ),
        ("beta1", "beta2", "weight_decay", "l1"),
        "Loshchilov & Hutter 2019: Adam with decoupled weight decay W -= lr wd W",
    ),
}


def make_optimizer(
    name: str, lr: float, *, fold: bool = False, decay_mask: Sequence[slice] | None = None, **settings: float
) -> Optimizer:
    """Build an optimizer by its config name from the config's optimizer settings (momentum, beta1, ...), fully
    configured: fold and decay_mask as Optimizer takes them. ValueError for an unknown name or a bad setting."""
    spec = OPTIMIZERS.get(name)
    if spec is None:
        raise ValueError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}")
    return spec.make(lr, fold=fold, decay_mask=decay_mask, **settings)

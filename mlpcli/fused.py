"""The training step's fast path: nn/'s arithmetic in fewer passes over memory.

nn/ is written to be read: every layer adds its bias, sums its delta for the bias gradient,
and the optimizer scales the velocity by the learning rate in a pass of its own. At batch
128 those whole-array passes cost about a third as much as the matrix products, so this
module does the same step with fewer of them. Two folds, each measured in the README's
performance table:

- The learning rate folded into the output delta (kept: 5-11 % off an epoch). Backpropagation
  is linear in the delta, so scaling the (n, k) output delta by lr yields lr * every gradient
  at no cost. Momentum then keeps u = lr * v: u <- mu (lr_t / lr_{t-1}) u + lr_t g, W <- W - u
  (three passes instead of four; plain SGD one instead of two). The optimizer's state is
  turned back into v at every sync(), so checkpoints and exact resume are those of the plain
  path.
- Biases folded into the products (fold_bias; off, because measured it bought nothing: the
  products on inputs widened by one column cost what the saved passes did). W^l and b^l lie
  next to each other in MLP.flat, so [W^l; b^l] is one (fan_in + 1, fan_out) matrix; with a
  column of ones on every layer's input (the batch stream writes it for the first layer), one
  product gives z = a W + b and one gives both dE/dW and dE/db.

The result matches the plain path to float32 rounding (tests/test_fused.py checks it). What
it does not cover (dropout, Adam, per-layer gradient diagnostics) is named by `unsupported`,
and the loop then takes the plain path.
"""

from __future__ import annotations

import numpy as np

from mlpcli.nn.losses import Loss
from mlpcli.nn.mlp import MLP
from mlpcli.nn.optimizers import SGD, Momentum, Optimizer

Array = np.ndarray


def unsupported(model: MLP, optimizer: Optimizer, diagnostics: bool = False) -> str | None:
    """Why the fused step cannot train this model with this optimizer, or None when it can."""
    if model.dropout > 0 or model.input_dropout > 0:
        return "dropout"
    if type(optimizer) not in (SGD, Momentum):
        return f"optimizer {type(optimizer).__name__}"
    if diagnostics:
        return "gradient diagnostics"
    return None


class FusedStep:
    """forward_backward() then update(): one training step of `model`, to float32 tolerance of nn/'s.

    fold_bias and fold_lr switch the two folds on and off one at a time (for the benchmark);
    batches passed to forward_backward carry a trailing column of ones when fold_bias is on.
    """

    def __init__(
        self,
        model: MLP,
        optimizer: Optimizer,
        loss: Loss,
        weight_decay: float = 0.0,
        *,
        fold_bias: bool = False,
        fold_lr: bool = True,
    ) -> None:
        reason = unsupported(model, optimizer)
        if reason is not None:
            raise ValueError(f"the fused step does not support {reason}")
        self.model, self.optimizer, self.loss = model, optimizer, loss
        self.weight_decay = float(weight_decay)
        self.fold_bias, self.fold_lr = fold_bias, fold_lr
        self._act = model._act  # the hidden activation's fn and grad, shared with nn/
        self._output = model.output_activation
        self._scale = 1.0  # the velocity buffer holds scale * v (scale = the last step's lr while folded)
        self._capacity = 0
        self._lr = 0.0
        self._folded = False  # whether the last gradients were scaled by lr
        self._scratch: dict[tuple[int, ...], Array] = {}
        self._layout()

    # ---- buffers -------------------------------------------------------------------

    def _layout(self) -> None:
        """Views of every layer's [W; b] in the parameter and gradient buffers."""
        m = self.model
        self._wb: list[Array] = []
        self._gwb: list[Array] = []
        for l in range(1, m.num_layers + 1):
            W, G = m.params[f"W{l}"], m.grads[f"W{l}"]
            fan_in, fan_out = W.shape
            start = W.__array_interface__["data"][0] - m.flat.__array_interface__["data"][0]
            offset = start // m.flat.itemsize
            size = (fan_in + 1) * fan_out
            self._wb.append(m.flat[offset : offset + size].reshape(fan_in + 1, fan_out))
            self._gwb.append(m.grad_flat[offset : offset + size].reshape(fan_in + 1, fan_out))
            assert np.shares_memory(self._wb[-1][-1], m.params[f"b{l}"]) and np.shares_memory(G, self._gwb[-1])
        self._weights = [m.params[f"W{l}"] for l in range(1, m.num_layers + 1)]

    def _buffers(self, n: int) -> None:
        if n <= self._capacity:
            return
        sizes, dtype = self.model.layer_sizes, self.model.dtype
        extra = 1 if self.fold_bias else 0
        # acts[l] for hidden l: (n, size_l + 1), the last column ones (never written after this)
        self._acts = [np.empty(0, dtype)] + [np.ones((n, s + extra), dtype) for s in sizes[1:-1]]
        self._z_out = np.empty((n, sizes[-1]), dtype)
        self._deltas = [np.empty((n, s), dtype) for s in sizes[1:-1]]
        self._slopes = [np.empty((n, s), dtype) for s in sizes[1:-1]]
        self._capacity = n

    # ---- the step ------------------------------------------------------------------

    def forward_backward(self, x: Array, y: Array, lr: float) -> tuple[float, int]:
        """Forward and backward on one batch; returns (mean loss with the decay penalty, correct predictions).

        x: (n, inputs + 1) with a last column of ones when fold_bias, else (n, inputs). Afterwards the
        model's gradient buffer holds lr * gradients when fold_lr (else the gradients), decay included.
        """
        L, fb = self.model.num_layers, self.fold_bias
        n, width = x.shape
        if width != self.model.layer_sizes[0] + fb:
            raise ValueError(f"batches have {width} columns; the fused step expects {self.model.layer_sizes[0] + fb}")
        self._buffers(n)
        a = x
        inputs = [x]
        for l in range(1, L + 1):
            wb = self._wb[l - 1]
            fan_out = wb.shape[1]
            out = self._acts[l][:n, :fan_out] if l < L else self._z_out[:n]
            if fb:
                z = np.matmul(a, wb, out=out)
            else:
                z = np.matmul(a, wb[:-1], out=out)
                z += wb[-1]
            if l < L:
                self._act.fn(z, out=z)
                a = self._acts[l][:n]
                inputs.append(a)
        z = self._z_out[:n]
        correct = int(np.count_nonzero(z.argmax(axis=1) == y))
        value, delta = self.loss(z, y, self._output)
        self._lr = float(lr)
        self._folded = self.fold_lr and self._lr > 0  # lr 0 (never from mlpcli's schedules): nothing to fold
        if self._folded:
            delta *= delta.dtype.type(lr)
        for l in range(L, 0, -1):
            gwb, a_in = self._gwb[l - 1], inputs[l - 1]
            if fb:
                np.matmul(a_in.T, delta, out=gwb)
            else:
                np.matmul(a_in.T, delta, out=gwb[:-1])
                np.sum(delta, axis=0, out=gwb[-1])
            if l > 1:
                fan_in = gwb.shape[0] - 1
                back = np.matmul(delta, self._wb[l - 1][:-1].T, out=self._deltas[l - 2][:n])
                back *= self._act.grad(a_in[:, :fan_in], out=self._slopes[l - 2][:n])
                delta = back
        if self.weight_decay:
            value += self._decay()
        return value, correct

    def _decay(self) -> float:
        """Add wd W (times lr when folded) to every weight gradient; returns (wd/2) sum ||W||^2."""
        wd = self.weight_decay
        factor = wd * self._lr if self._folded else wd
        penalty = 0.0
        for l, W in enumerate(self._weights):
            penalty += 0.5 * wd * float(np.vdot(W, W))
            g = self._gwb[l][:-1]
            tmp = self._scratch.get(W.shape)
            if tmp is None:
                tmp = self._scratch[W.shape] = np.empty_like(W)
            np.multiply(W, W.dtype.type(factor), out=tmp)
            g += tmp
        return penalty

    def update(self) -> None:
        """Apply the gradients of the last forward_backward to the parameters (the optimizer's step)."""
        opt, p, g = self.optimizer, self.model.flat, self.model.grad_flat
        opt.lr = self._lr
        if not self._folded:
            self.sync()
            opt.step(p, g)
            return
        opt.t += 1
        if type(opt) is SGD:
            p -= g
            return
        mom = opt
        assert isinstance(mom, Momentum)
        u = opt._buffer("v", p)
        mu = mom.momentum
        u *= u.dtype.type(mu * self._lr / self._scale)
        u += g
        self._scale = self._lr
        if mom.nesterov:  # W <- W - lr (g + mu v) = W - (g' + mu u)
            p -= g
            np.multiply(u, u.dtype.type(mu), out=g)
            p -= g
        else:
            p -= u

    def sync(self) -> None:
        """Turn the folded velocity back into the plain optimizer's v (before a checkpoint, or the plain path)."""
        if self._scale != 1.0:
            v = self.optimizer.state.get("v")
            if v is not None:
                v /= v.dtype.type(self._scale)
            self._scale = 1.0

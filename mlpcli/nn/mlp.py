"""A multi-layer perceptron: forward pass, the backpropagation delta rule, and its parameters.

Batches are row-major (n, features). Layer l maps a^(l-1) to a^l with
``z = a @ W + b`` where W has shape (fan_in, fan_out): the lecture's W^l, transposed.
The training path reuses preallocated buffers, so one optimizer step allocates almost
nothing; the gradients it returns live in those buffers and are overwritten by the
next call (copy them if you need to keep them).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from mlpcli.nn.activations import DEFAULT_LEAKY_SLOPE, OUTPUTS, get_activation, sigmoid_grad, softmax_vjp
from mlpcli.nn.losses import COMPATIBLE_OUTPUTS, LOSSES, one_hot

Array = np.ndarray

INITS = ("he", "xavier", "normal")


def count_parameters(layer_sizes: Sequence[int]) -> tuple[int, int, int]:
    """(weights, biases, total) for a fully connected network, counted as the lecture counts."""
    weights = sum(a * b for a, b in zip(layer_sizes[:-1], layer_sizes[1:]))
    biases = sum(layer_sizes[1:])
    return weights, biases, weights + biases


def init_params(
    layer_sizes: Sequence[int], init: str, rng: np.random.Generator, dtype: np.dtype | type = np.float32
) -> dict[str, Array]:
    """Random weights (he, xavier/glorot or small normal) and zero biases, named W1..WL, b1..bL."""
    params: dict[str, Array] = {}
    for l, (fan_in, fan_out) in enumerate(zip(layer_sizes[:-1], layer_sizes[1:]), start=1):
        if init == "he":
            W = rng.normal(0.0, np.sqrt(2.0 / fan_in), size=(fan_in, fan_out))
        elif init in ("xavier", "glorot"):
            limit = np.sqrt(6.0 / (fan_in + fan_out))
            W = rng.uniform(-limit, limit, size=(fan_in, fan_out))
        elif init == "normal":
            W = rng.normal(0.0, 0.01, size=(fan_in, fan_out))
        else:
            raise ValueError(f"unknown init {init!r}; choose one of {', '.join(INITS)}")
        params[f"W{l}"] = W.astype(dtype)
        params[f"b{l}"] = np.zeros(fan_out, dtype=dtype)
    return params


@dataclass
class _Workspace:
    """Buffers for one batch size: pre-activations/activations, deltas and activation slopes."""

    capacity: int
    acts: list[Array] = field(default_factory=list)  # acts[l]: (n, size_l), l = 1..L (index 0 unused)
    hidden: list[Array] = field(default_factory=list)  # pre-dropout activations (only with dropout)
    deltas: list[Array] = field(default_factory=list)
    slopes: list[Array] = field(default_factory=list)


class MLP:
    """A fully connected network with one hidden activation and its own output activation.

    layer_sizes: [inputs, hidden..., outputs]; no hidden layers is softmax/logistic regression.
    """

    def __init__(
        self,
        layer_sizes: Sequence[int],
        activation: str = "relu",
        output: str = "softmax",
        *,
        params: dict[str, Array] | None = None,
        dropout: float = 0.0,
        leaky_slope: float = DEFAULT_LEAKY_SLOPE,
        dtype: np.dtype | type = np.float32,
    ) -> None:
        if len(layer_sizes) < 2 or any(int(s) < 1 for s in layer_sizes):
            raise ValueError(
                f"layer_sizes needs at least an input and an output size, all >= 1 (got {list(layer_sizes)})"
            )
        if output not in OUTPUTS:
            raise ValueError(f"unknown output {output!r}; choose one of {', '.join(OUTPUTS)}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.layer_sizes = [int(s) for s in layer_sizes]
        self.activation = activation
        self.output = output
        self.dropout = float(dropout)
        self.leaky_slope = float(leaky_slope)
        self.dtype = np.dtype(dtype)
        self._act = get_activation(activation, leaky_slope)
        self._out = OUTPUTS[output]
        self.params: dict[str, Array] = {}
        self.flat: Array = np.zeros(0, self.dtype)
        self._grad_flat: Array = np.zeros(0, self.dtype)
        if params is not None:
            self.set_params(params)
        self._grads: dict[str, Array] = {}
        self._ws: _Workspace | None = None
        self._masks: list[Array | None] = []
        self.last_predictions: Array = np.zeros(0, dtype=np.intp)

    @property
    def num_layers(self) -> int:
        """Number of weight layers L (hidden layers + the output layer)."""
        return len(self.layer_sizes) - 1

    def init(self, rng: np.random.Generator, init: str = "he") -> MLP:
        """Fill the parameters with a fresh random initialization; returns self."""
        self._adopt(init_params(self.layer_sizes, init, rng, self.dtype))
        return self

    def _adopt(self, params: dict[str, Array]) -> None:
        """Copy params into one contiguous buffer and keep views of it, so an optimizer can
        update every parameter with a few whole-buffer operations instead of many small ones."""
        names = [f"{p}{l}" for l in range(1, self.num_layers + 1) for p in ("W", "b")]
        self.flat = np.empty(sum(params[k].size for k in names), dtype=self.dtype)
        self.params, offset = {}, 0
        for k in names:
            view = self.flat[offset : offset + params[k].size].reshape(params[k].shape)
            view[...] = params[k]
            self.params[k] = view
            offset += params[k].size
        self._grads = {}

    def flat_views(self) -> tuple[dict[str, Array], dict[str, Array]]:
        """({"all": every parameter}, {"all": every gradient}) as single 1-d buffers (after a backward)."""
        return {"all": self.flat}, {"all": self._grad_flat}

    def set_params(self, params: dict[str, Array]) -> None:
        """Adopt given parameters after checking every name and shape."""
        expected = {}
        for l, (fan_in, fan_out) in enumerate(zip(self.layer_sizes[:-1], self.layer_sizes[1:]), start=1):
            expected[f"W{l}"] = (fan_in, fan_out)
            expected[f"b{l}"] = (fan_out,)
        for name, shape in expected.items():
            if name not in params:
                raise ValueError(f"missing parameter {name}")
            if tuple(params[name].shape) != shape:
                raise ValueError(f"{name} has shape {tuple(params[name].shape)}, expected {shape}")
        extra = set(params) - set(expected)
        if extra:
            raise ValueError(f"unexpected parameters: {', '.join(sorted(extra))}")
        self._adopt(params)

    # ---- forward -------------------------------------------------------------------

    def forward(self, x: Array) -> Array:
        """Network output for a batch x (n, inputs): probabilities for softmax, else o = f(z)."""
        return self._out(self.logits(x))

    def logits(self, x: Array) -> Array:
        """Pre-activation z^L of the output layer for x (n, inputs); no dropout, nothing kept."""
        a = np.asarray(x, dtype=self.dtype)
        L = self.num_layers
        for l in range(1, L + 1):
            a = a @ self.params[f"W{l}"]  # (n, fan_out)
            a += self.params[f"b{l}"]
            if l < L:
                self._act.fn(a, out=a)
        return a

    def predict_proba(self, x: Array, batch_size: int = 4096) -> Array:
        """Outputs for a large x (n, inputs), computed in batches to bound memory."""
        outs = [self.forward(x[i : i + batch_size]) for i in range(0, x.shape[0], batch_size)]
        return np.concatenate(outs) if outs else np.zeros((0, self.layer_sizes[-1]), self.dtype)

    def layer_activations(self, x: Array) -> list[Array]:
        """Every layer's activation [a^1, ..., a^L] for x (n, inputs), outputs last (diagnostics)."""
        a = np.asarray(x, dtype=self.dtype)
        out: list[Array] = []
        L = self.num_layers
        for l in range(1, L + 1):
            a = a @ self.params[f"W{l}"] + self.params[f"b{l}"]
            a = self._act.fn(a) if l < L else self._out(a)
            out.append(a)
        return out

    # ---- training path -------------------------------------------------------------

    def _workspace(self, n: int) -> _Workspace:
        ws = self._ws
        if ws is None or ws.capacity < n or ws.acts[-1].dtype != self.dtype:
            sizes = self.layer_sizes
            ws = _Workspace(capacity=n)
            ws.acts = [np.empty(0, self.dtype)] + [np.empty((n, s), self.dtype) for s in sizes[1:]]
            hidden_sizes = sizes[1:-1]
            ws.deltas = [np.empty((n, s), self.dtype) for s in hidden_sizes]
            ws.slopes = [np.empty((n, s), self.dtype) for s in hidden_sizes]
            if self.dropout > 0:
                ws.hidden = [np.empty((n, s), self.dtype) for s in hidden_sizes]
            self._ws = ws
        if not self._grads:
            self._grad_flat = np.empty_like(self.flat)
            self._grads, offset = {}, 0
            for k, v in self.params.items():
                self._grads[k] = self._grad_flat[offset : offset + v.size].reshape(v.shape)
                offset += v.size
        return ws

    def _forward_train(self, x: Array, rng: np.random.Generator | None, masks: Sequence[Array] | None) -> list[Array]:
        """Forward pass that keeps each layer's (post-dropout) activation for backward."""
        n = x.shape[0]
        ws = self._workspace(n)
        L = self.num_layers
        acts = [x]
        self._masks = []
        for l in range(1, L + 1):
            z = np.matmul(acts[-1], self.params[f"W{l}"], out=ws.acts[l][:n])  # (n, fan_out)
            z += self.params[f"b{l}"]
            if l < L:
                if self.dropout > 0:
                    h = self._act.fn(z, out=ws.hidden[l - 1][:n])
                    mask = masks[l - 1] if masks is not None else self._dropout_mask(h.shape, rng)
                    np.multiply(h, mask, out=z)
                    self._masks.append(mask)
                else:
                    self._act.fn(z, out=z)
            acts.append(z)
        return acts

    def _dropout_mask(self, shape: tuple[int, ...], rng: np.random.Generator | None) -> Array:
        """Inverted-dropout mask: 0 with probability p, else 1/(1-p), so evaluation needs no rescaling."""
        if rng is None:
            raise ValueError("dropout in training needs an explicit np.random.Generator")
        keep = rng.random(shape, dtype=np.float32 if self.dtype == np.float32 else np.float64) >= self.dropout
        return keep.astype(self.dtype) * self.dtype.type(1.0 / (1.0 - self.dropout))

    def output_delta(self, z_out: Array, targets: Array, loss: str) -> tuple[float, Array]:
        """Loss value and d loss / d z^L for output pre-activations z_out (n, k); may overwrite z_out."""
        if loss not in LOSSES:
            raise ValueError(f"unknown loss {loss!r}; choose one of {', '.join(LOSSES)}")
        if self.output not in COMPATIBLE_OUTPUTS[loss]:
            raise ValueError(f"loss {loss} needs a {' or '.join(COMPATIBLE_OUTPUTS[loss])} output, not {self.output}")
        k = z_out.shape[1]
        if loss == "cross_entropy":
            labels = targets if targets.ndim == 1 else targets.argmax(axis=1)
            return LOSSES[loss](z_out, labels, out=z_out)
        if targets.ndim == 1:
            targets = one_hot(targets, k, self.dtype)
        if loss == "bce":
            return LOSSES[loss](z_out, targets)
        o = self._out(z_out, out=z_out)
        value, g = LOSSES[loss](o, targets)  # g = dE/do
        if self.output == "sigmoid":
            g *= sigmoid_grad(o)  # the lecture's output delta o (1 - o)(o - t)
        elif self.output == "softmax":
            g = softmax_vjp(o, g)
        return value, g

    def loss_and_grads(
        self,
        x: Array,
        targets: Array,
        loss: str = "cross_entropy",
        *,
        weight_decay: float = 0.0,
        rng: np.random.Generator | None = None,
        masks: Sequence[Array] | None = None,
    ) -> tuple[float, dict[str, Array]]:
        """Mean loss on a batch and the gradient of every W^l and b^l (the delta rule).

        x: (n, inputs) in the model dtype; targets: int labels (n,) or float targets (n, k).
        weight_decay adds (wd/2) sum ||W||^2 to the loss (biases are not decayed).
        rng draws dropout masks; masks fixes them instead (gradient checks).
        """
        acts = self._forward_train(x, rng, masks)
        self.last_predictions = acts[-1].argmax(axis=1)  # before the loss overwrites the logits
        value, delta = self.output_delta(acts[-1], targets, loss)
        grads = self.backward(acts, delta)
        if weight_decay:
            for l in range(1, self.num_layers + 1):
                W = self.params[f"W{l}"]
                value += 0.5 * weight_decay * float(np.vdot(W, W))
                grads[f"W{l}"] += weight_decay * W
        return value, grads

    def backward(self, acts: Sequence[Array], delta: Array) -> dict[str, Array]:
        """Backpropagate the output delta (n, k) through layers L..1; acts is [x, a^1, ..., a^L].

        For each layer: dE/dW^l = a^(l-1)^T delta^l, dE/db^l = sum_n delta^l, and
        delta^(l-1) = (delta^l W^l^T) * f'(z^(l-1)) (times the dropout mask).
        """
        n = delta.shape[0]
        ws = self._workspace(n)
        grads = self._grads
        for l in range(self.num_layers, 0, -1):
            W = self.params[f"W{l}"]
            np.matmul(acts[l - 1].T, delta, out=grads[f"W{l}"])
            np.sum(delta, axis=0, out=grads[f"b{l}"])
            if l > 1:
                back = np.matmul(delta, W.T, out=ws.deltas[l - 2][:n])  # (n, fan_in)
                pre = ws.hidden[l - 2][:n] if self.dropout > 0 else acts[l - 1]
                back *= self._act.grad(pre, out=ws.slopes[l - 2][:n])
                if self.dropout > 0:
                    back *= self._masks[l - 2]
                delta = back
        return grads

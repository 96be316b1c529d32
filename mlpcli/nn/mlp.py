"""A multi-layer perceptron: one forward pass, the backpropagation delta rule, and its parameters.

Batches are row-major (n, features). Layer l maps a^(l-1) to a^l with
``z = a @ W + b`` where W has shape (fan_in, fan_out): the lecture's W^l, transposed.
Every parameter is a view into one flat buffer (and every gradient into another), so an
optimizer updates the whole network with a few whole-buffer operations. The training
path reuses preallocated buffers; the gradients it returns are overwritten by the next
call (copy them if you need to keep them).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from mlpcli.nn.activations import (
    Output,
    activation_params,
    get_activation,
    get_output,
    per_layer,
)
from mlpcli.nn.init import init_params
from mlpcli.nn.layout import count_parameters, layout
from mlpcli.nn.losses import get_loss
from mlpcli.nn.products import REDUCTION_CHUNK, matmul
from mlpcli.nn.regularization import add_penalties

Array = np.ndarray
Masks = dict[int, Array]  # dropout masks by layer: 0 = the inputs, l = hidden layer l


@dataclass
class _Workspace:
    """Training buffers for batches of up to `capacity` rows."""

    capacity: int
    z: list[Array] = field(default_factory=list)  # z[l]: (n, size_l), the pre-activations, kept for f'(z, a)
    a: list[Array] = field(default_factory=list)  # a[l]: (n, size_l) = f(z[l]) for hidden layers
    dropped: list[Array] = field(default_factory=list)  # a[l] times the dropout mask (dropout only)
    deltas: list[Array] = field(default_factory=list)
    slopes: list[Array] = field(default_factory=list)
    inputs: Array | None = None  # the inputs after input dropout


class MLP:
    """A fully connected network with one hidden activation and its own output activation.

    layer_sizes: [inputs, hidden..., outputs]; no hidden layers is softmax/logistic regression.
    dropout drops hidden units, input_dropout drops input pixels (both inverted: nothing to
    rescale at evaluation).
    """

    def __init__(
        self,
        layer_sizes: Sequence[int],
        activation: str | list[str] = "relu",
        output: str = "softmax",
        *,
        params: dict[str, Array] | None = None,
        dropout: float = 0.0,
        input_dropout: float = 0.0,
        dtype: np.dtype | type = np.float32,
        reduction_chunk: int | None = REDUCTION_CHUNK,
        **activation_kwargs: float,
    ) -> None:
        if len(layer_sizes) < 2 or any(int(s) < 1 for s in layer_sizes):
            raise ValueError(
                f"layer_sizes needs at least an input and an output size, all >= 1 (got {list(layer_sizes)})"
            )
        for name, p in (("dropout", dropout), ("input_dropout", input_dropout)):
            if not 0.0 <= p < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {p}")
        self.layer_sizes = [int(s) for s in layer_sizes]
        self.activation, self.output = activation, output
        self.dropout, self.input_dropout = float(dropout), float(input_dropout)
        self.dtype = np.dtype(dtype)
        # products sum at most this many terms a BLAS call, so their bits do not depend on BLAS's thread count
        # (products.py); None: one BLAS call a product
        self.reduction_chunk = reduction_chunk
        given = dict(activation_kwargs)  # the activations' parameters (e.g. leaky_slope), by the registry's keys
        self.activations = per_layer(activation, len(self.layer_sizes) - 2)  # one name per hidden layer
        self._acts_fn = [get_activation(a, **given) for a in self.activations]
        self.activation_params = activation_params(activation, given)  # e.g. {"leaky_slope": 0.01}
        self._out = get_output(output)
        self.params: dict[str, Array] = {}
        self.flat: Array = np.zeros(0, self.dtype)  # every parameter, W1 b1 W2 b2 ...
        self.grad_flat: Array = np.zeros(0, self.dtype)  # every gradient, same layout
        self.grads: dict[str, Array] = {}
        self._ws: _Workspace | None = None
        self._acts: list[Array] = []  # the last training forward pass: [x, a^1, ..., z^L]
        self._masks: Masks = {}
        if params is not None:
            self.set_params(params)

    @property
    def output_activation(self) -> Output:
        """The output activation (fn and vjp), which a loss needs for its delta."""
        return self._out

    @property
    def num_layers(self) -> int:
        """Number of weight layers L (hidden layers + the output layer)."""
        return len(self.layer_sizes) - 1

    def init(self, rng: np.random.Generator, init: str = "he") -> MLP:
        """Fill the parameters with a fresh random initialization; returns self."""
        self._adopt(init_params(self.layer_sizes, init, rng, self.dtype))
        return self

    def _slices(self, buf: Array) -> dict[str, Array]:
        """W1, b1, W2, b2, ... as views of one flat buffer, in that order (the layout of flat and grad_flat)."""
        return {name: buf[part].reshape(shape) for name, (part, shape) in layout(self.layer_sizes).items()}

    def _adopt(self, params: dict[str, Array]) -> None:
        """Copy params into one contiguous buffer and keep views of it (and likewise for gradients)."""
        total = count_parameters(self.layer_sizes)[2]
        self.flat = np.empty(total, dtype=self.dtype)
        self.grad_flat = np.zeros(total, dtype=self.dtype)
        self.params, self.grads = self._slices(self.flat), self._slices(self.grad_flat)
        for k, view in self.params.items():
            view[...] = params[k]

    def share(self, flat: Array, grad_flat: Array | None = None) -> None:
        """Use flat (and grad_flat) as the parameter (and gradient) buffers from now on, keeping their
        contents: how two processes train one set of parameters in shared memory. Both are 1-D arrays of
        the model's dtype and its parameter count (self.flat.size); raises ValueError otherwise."""
        size = self.flat.size
        for name, buf in (("flat", flat), ("grad_flat", grad_flat)):
            if buf is not None and (buf.ndim != 1 or buf.size != size or buf.dtype != self.dtype):
                raise ValueError(f"{name} must be 1-D {self.dtype} of {size} values (got {buf.dtype} {buf.shape})")
        self.flat = flat
        if grad_flat is not None:
            self.grad_flat = grad_flat
        self.params, self.grads = self._slices(self.flat), self._slices(self.grad_flat)

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

    # ---- the forward pass ----------------------------------------------------------

    def _forward(self, x: Array, ws: _Workspace | None, rng: np.random.Generator | None, masks: Masks | None) -> list:
        """[a^0, a^1, ..., z^L] for x (n, inputs): a^l = f(a^(l-1) @ W^l + b^l), z^L left raw.

        With a workspace (training) buffers are reused and dropout is applied; without one
        (evaluation) nothing is dropped and nothing is kept.
        """
        n, L = x.shape[0], self.num_layers
        a = np.asarray(x, dtype=self.dtype)
        self._masks = {}
        if ws is not None and self.input_dropout > 0:
            a = np.multiply(a, self._mask(0, a.shape, self.input_dropout, rng, masks), out=ws.inputs[:n])
        acts = [a]
        for l in range(1, L + 1):
            out = ws.z[l][:n] if ws is not None else None
            z = matmul(a, self.params[f"W{l}"], out, self.reduction_chunk)  # (n, fan_out)
            z += self.params[f"b{l}"]
            if l < L:
                if ws is None:
                    z = self._acts_fn[l - 1].fn(z, out=z)  # evaluation keeps nothing: in place
                else:
                    h = self._acts_fn[l - 1].fn(z, out=ws.a[l][:n])
                    if self.dropout > 0:
                        z = np.multiply(h, self._mask(l, h.shape, self.dropout, rng, masks), out=ws.dropped[l][:n])
                    else:
                        z = h
            acts.append(z)
            a = z
        return acts

    def _mask(
        self, layer: int, shape: tuple[int, ...], p: float, rng: np.random.Generator | None, masks: Masks | None
    ) -> Array:
        """Inverted-dropout mask: 0 with probability p, else 1/(1-p); masks[layer] instead when given."""
        if masks is not None:
            mask = masks[layer]
        elif rng is None:
            raise ValueError("dropout in training needs an explicit np.random.Generator")
        else:
            mask = self._draw_mask(shape, p, rng)
        self._masks[layer] = mask
        return mask

    def _draw_mask(self, shape: tuple[int, ...], p: float, rng: np.random.Generator) -> Array:
        keep = rng.random(shape, dtype=np.float32 if self.dtype == np.float32 else np.float64) >= p
        return keep.astype(self.dtype) * self.dtype.type(1.0 / (1.0 - p))

    def dropout_masks(self, n: int, rng: np.random.Generator) -> Masks | None:
        """The masks forward_train(x, rng) would draw for a batch of n rows, drawn now from rng in the same
        order (inputs, then hidden layers 1..L-1); None without dropout. Lets batches that run on other
        threads use masks drawn in a fixed order on this one."""
        if not (self.dropout > 0 or self.input_dropout > 0):
            return None
        masks: Masks = {}
        if self.input_dropout > 0:
            masks[0] = self._draw_mask((n, self.layer_sizes[0]), self.input_dropout, rng)
        if self.dropout > 0:
            for l in range(1, self.num_layers):
                masks[l] = self._draw_mask((n, self.layer_sizes[l]), self.dropout, rng)
        return masks

    def replica(self) -> MLP:
        """Another MLP over the same parameter buffer (shared, not copied) with its own gradients and
        training buffers: the second worker of data-parallel training. Made again after set_params or
        init, which give this model a new buffer."""
        twin = object.__new__(MLP)
        twin.__dict__.update(self.__dict__)  # shares flat, params and the activations
        twin.grad_flat = np.zeros_like(self.grad_flat)
        twin.grads = twin._slices(twin.grad_flat)
        twin._ws, twin._acts, twin._masks = None, [], {}
        return twin

    def logits(self, x: Array) -> Array:
        """Pre-activation z^L of the output layer for x (n, inputs); no dropout, nothing kept."""
        return self._forward(x, None, None, None)[-1]

    def forward(self, x: Array) -> Array:
        """Network output for a batch x (n, inputs): probabilities for softmax, else o = f(z)."""
        return self._out.fn(self.logits(x))

    def layer_activations(self, x: Array) -> list[Array]:
        """Every layer's activation [a^1, ..., a^L] for x (n, inputs), outputs last."""
        acts = self._forward(x, None, None, None)[1:]
        acts[-1] = self._out.fn(acts[-1])
        return acts

    def layer_slopes(self, x: Array) -> list[tuple[Array, Array]]:
        """Per hidden layer l, (a^l, f'(z^l)) for x (n, inputs), each (n, size_l): its activation and its
        activation's derivative at each point (evaluation: no dropout). What dead and saturated units are
        judged by (ActivationSpec.dead, .saturated)."""
        out = []
        a = np.asarray(x, dtype=self.dtype)
        for l in range(1, self.num_layers):
            z = matmul(a, self.params[f"W{l}"], None, self.reduction_chunk) + self.params[f"b{l}"]
            act = self._acts_fn[l - 1]
            a = act.fn(z)
            out.append((a, act.grad(z, a)))
        return out

    def predict_proba(self, x: Array, batch_size: int = 4096) -> Array:
        """Outputs for a large x (n, inputs), computed in batches to bound memory."""
        outs = [self.forward(x[i : i + batch_size]) for i in range(0, x.shape[0], batch_size)]
        return np.concatenate(outs) if outs else np.zeros((0, self.layer_sizes[-1]), self.dtype)

    # ---- training ------------------------------------------------------------------

    def _workspace(self, n: int) -> _Workspace:
        ws = self._ws
        if ws is None or ws.capacity < n or ws.z[-1].dtype != self.dtype:
            sizes = self.layer_sizes
            hidden = sizes[1:-1]
            ws = _Workspace(capacity=n)
            ws.z = [np.empty(0, self.dtype)] + [np.empty((n, s), self.dtype) for s in sizes[1:]]
            ws.a = [np.empty(0, self.dtype)] + [np.empty((n, s), self.dtype) for s in hidden]
            ws.deltas = [np.empty((n, s), self.dtype) for s in hidden]
            ws.slopes = [np.empty((n, s), self.dtype) for s in hidden]
            if self.dropout > 0:
                ws.dropped = [np.empty(0, self.dtype)] + [np.empty((n, s), self.dtype) for s in hidden]
            if self.input_dropout > 0:
                ws.inputs = np.empty((n, sizes[0]), self.dtype)
            self._ws = ws
        return ws

    def forward_train(self, x: Array, rng: np.random.Generator | None = None, masks: Masks | None = None) -> Array:
        """z^L for a training batch x (n, inputs), keeping what backward needs; rng draws dropout masks.

        The returned array is a reused buffer: read it before the next call.
        """
        self._acts = self._forward(x, self._workspace(x.shape[0]), rng, masks)
        return self._acts[-1]

    def backward(self, delta: Array) -> dict[str, Array]:
        """Backpropagate the output delta dE/dz^L (n, k) of the last forward_train through layers L..1.

        For each layer: dE/dW^l = a^(l-1)^T delta^l, dE/db^l = sum_n delta^l, and
        delta^(l-1) = (delta^l W^l^T) * f'(z^(l-1), a^(l-1)) (times the dropout mask); lecture: the delta rule.
        """
        acts, n = self._acts, delta.shape[0]
        ws = self._workspace(n)
        for l in range(self.num_layers, 0, -1):
            matmul(acts[l - 1].T, delta, self.grads[f"W{l}"], self.reduction_chunk)
            np.sum(delta, axis=0, out=self.grads[f"b{l}"])
            if l > 1:
                back = matmul(delta, self.params[f"W{l}"].T, ws.deltas[l - 2][:n], self.reduction_chunk)  # (n, fan_in)
                back *= self._acts_fn[l - 2].grad(ws.z[l - 1][:n], ws.a[l - 1][:n], out=ws.slopes[l - 2][:n])
                if self.dropout > 0:
                    back *= self._masks[l - 1]
                delta = back
        return self.grads

    def decay_mask(self) -> list[slice]:
        """Which parts of the flat buffer weight decay applies to: every W^l, never a bias, as slices of flat."""
        return [part for name, (part, _) in layout(self.layer_sizes).items() if name.startswith("W")]

    def loss_and_grads(
        self,
        x: Array,
        targets: Array,
        loss: str = "cross_entropy",
        *,
        weight_decay: float = 0.0,
        l1: float = 0.0,
        rng: np.random.Generator | None = None,
        masks: Masks | None = None,
    ) -> tuple[float, dict[str, Array]]:
        """Mean loss on a batch and the gradient of every W^l and b^l: forward, the loss's delta, backward.

        x: (n, inputs) in the model dtype; targets: int labels (n,) or float targets (n, k).
        weight_decay adds (wd/2) sum ||W||^2 and l1 adds l1 sum |W| to the loss (regularization.py).
        rng draws dropout masks; masks fixes them.
        """
        loss_fn = get_loss(loss)
        if self.output not in loss_fn.outputs:
            raise ValueError(f"loss {loss} needs a {' or '.join(loss_fn.outputs)} output, not {self.output}")
        z = self.forward_train(x, rng, masks)
        value, delta = loss_fn(z, targets, self._out)
        grads = self.backward(delta)
        if weight_decay or l1:
            value += add_penalties(self.flat, self.grad_flat, self.decay_mask(), weight_decay, l1)
        return value, grads

    def apply_max_norm(self, c: float) -> None:
        """Rescale each hidden unit's incoming weight vector (a column of W^l, l < L) to norm <= c."""
        for l in range(1, self.num_layers):
            W = self.params[f"W{l}"]
            norms = np.sqrt(np.einsum("ij,ij->j", W, W))  # (fan_out,)
            too_long = norms > c
            if too_long.any():
                W[:, too_long] *= (c / norms[too_long]).astype(self.dtype)

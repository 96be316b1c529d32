"""Losses: each owns its value and its delta, d loss / d z^L at the output pre-activations.

Conventions: losses are summed over the outputs of one sample and averaged over the
batch, so the lecture's E = 1/2 sum_j (o_j - t_j)^2 is the per-sample squared error.
As in Nielsen's network2.py cost classes, the model never branches on the loss: it asks
the loss for the delta and backpropagates it. Cross-entropy and BCE are fused with their
output activation (softmax, sigmoid), which is cheaper and numerically safer than going
through the probabilities; squared error goes through whichever output it is paired with.
"""

from __future__ import annotations

import numpy as np

from mlpcli.nn.activations import Output

Array = np.ndarray


def one_hot(labels: Array, num_classes: int, dtype: np.dtype | type = np.float32) -> Array:
    """Integer labels (n,) -> one-hot targets (n, num_classes)."""
    targets = np.zeros((labels.shape[0], num_classes), dtype=dtype)
    targets[np.arange(labels.shape[0]), labels] = 1
    return targets


def _dense(targets: Array, k: int, dtype: np.dtype) -> Array:
    """Float targets (n, k) from integer labels (n,), float targets (n, k), or one output's float targets (n,)."""
    if targets.ndim == 1:
        return targets.astype(dtype)[:, None] if targets.dtype.kind == "f" else one_hot(targets, k, dtype)
    return targets


TOLERANCE = 0.1  # a regression output this close to its target counts as right (count_right)


def count_right(z: Array, targets: Array) -> int:
    """How many of n samples the network gets right, from z^L (n, k) and integer labels (n,): argmax z = label.

    For float targets (n,) of one linear output (a regression dataset of points, targets in [-1, 1]) a sample is
    right when its output is within TOLERANCE of its target (a twentieth of the targets' range)."""
    if targets.dtype.kind == "f":
        return int(np.count_nonzero(np.abs(z[:, 0] - targets) <= TOLERANCE))
    return int(np.count_nonzero(z.argmax(axis=1) == targets))


class Loss:
    """A loss: __call__(z, targets, output) -> (mean loss, d loss / d z), z being z^L (n, k).

    targets: integer labels (n,) or float targets (n, k). `outputs` lists the output
    activations the loss may follow.
    """

    name: str = ""
    outputs: tuple[str, ...] = ()

    def __call__(self, z: Array, targets: Array, output: Output) -> tuple[float, Array]:
        raise NotImplementedError


class CrossEntropy(Loss):
    """-log softmax(z)_y, fused with softmax: the delta is (softmax(z) - onehot) / n.

    Softmax's Jacobian and the log's 1/p cancel, which is why the fused form is used;
    the value is a max-shifted log-sum-exp, never the log of a rounded-to-zero probability.
    With label smoothing eps (Szegedy et al. 2016) the target is (1 - eps) onehot + eps / k:
    the loss is (1 - eps) (-log p_y) + eps mean_j (-log p_j) and the delta (p - target) / n.
    """

    name, outputs = "cross_entropy", ("softmax",)

    def __init__(self, smoothing: float = 0.0) -> None:
        if not 0.0 <= smoothing < 1.0:
            raise ValueError(f"label smoothing must be in [0, 1) (got {smoothing})")
        self.smoothing = smoothing

    def __call__(self, z: Array, targets: Array, output: Output) -> tuple[float, Array]:
        n, k = z.shape
        eps = self.smoothing
        rows = np.arange(n)
        labels = targets if targets.ndim == 1 else targets.argmax(axis=1)
        shifted = z - z.max(axis=1, keepdims=True)  # (n, k)
        true_shifted = shifted[rows, labels].astype(np.float64)
        if eps:  # -log p_j = log norm - shifted_j, averaged over the k classes
            true_shifted = (1 - eps) * true_shifted + eps * shifted.mean(axis=1, dtype=np.float64)
        probs = np.exp(shifted, out=shifted)
        norm = probs.sum(axis=1, keepdims=True)  # (n, 1), >= 1 thanks to the shift
        loss = float(np.mean(np.log(norm[:, 0], dtype=np.float64) - true_shifted))
        probs /= norm
        if eps:
            probs -= eps / k
        probs[rows, labels] -= 1 - eps
        probs /= n
        return loss, probs


class BinaryCrossEntropy(Loss):
    """Binary cross-entropy of sigmoid(z) against targets in [0, 1], fused with the sigmoid.

    Uses max(z, 0) - z t + log(1 + exp(-|z|)), exact for any z; the delta is (sigmoid(z) - t) / n.
    """

    name, outputs = "bce", ("sigmoid",)

    def __call__(self, z: Array, targets: Array, output: Output) -> tuple[float, Array]:
        n = z.shape[0]
        t = _dense(targets, z.shape[1], z.dtype)
        per = np.maximum(z, 0) - z * t + np.log1p(np.exp(-np.abs(z)))
        loss = float(np.sum(per, dtype=np.float64)) / n
        delta = 0.5 * (1 + np.tanh(0.5 * z)) - t
        delta /= n
        return loss, delta


class SquaredError(Loss):
    """Mean over the batch of 1/2 sum_j (o_j - t_j)^2 with o = f(z); delta = f'(z) (o - t) / n.

    With a sigmoid output this is the lecture's output delta o (1 - o)(o - t).
    """

    name, outputs = "mse", ("softmax", "sigmoid", "linear")

    def __call__(self, z: Array, targets: Array, output: Output) -> tuple[float, Array]:
        n = z.shape[0]
        o = output.fn(z)
        diff = o - _dense(targets, z.shape[1], z.dtype)  # dE/do, times n
        loss = 0.5 * float(np.sum(np.square(diff, dtype=np.float64))) / n
        diff /= n
        return loss, output.vjp(o, diff)


LOSSES: dict[str, Loss] = {loss.name: loss for loss in (CrossEntropy(), SquaredError(), BinaryCrossEntropy())}

# Which output activations each loss may follow (derived from the registry).
COMPATIBLE_OUTPUTS: dict[str, tuple[str, ...]] = {name: loss.outputs for name, loss in LOSSES.items()}


def get_loss(name: str, label_smoothing: float = 0.0) -> Loss:
    """Look a loss up by its config name; label_smoothing > 0 only with cross-entropy."""
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; choose one of {', '.join(LOSSES)}")
    if label_smoothing:
        if name != CrossEntropy.name:
            raise ValueError(f"label smoothing needs the cross_entropy loss (got {name})")
        return CrossEntropy(label_smoothing)
    return LOSSES[name]


def pairings() -> list[tuple[str, str]]:
    """Every valid (output, loss) pairing, in registry order."""
    return [(output, name) for name, loss in LOSSES.items() for output in loss.outputs]

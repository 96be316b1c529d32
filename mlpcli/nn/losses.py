"""Loss functions, each returning the mean loss over the batch and its gradient.

Conventions: losses are summed over the outputs of one sample and averaged over the
batch, so the lecture's E = 1/2 sum_j (o_j - t_j)^2 is the per-sample squared error.
Fused losses take logits and return d loss / d logits directly, which is both cheaper
and numerically safer than going through the probabilities.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Array = np.ndarray


def one_hot(labels: Array, num_classes: int, dtype: np.dtype | type = np.float32) -> Array:
    """Integer labels (n,) -> one-hot targets (n, num_classes)."""
    targets = np.zeros((labels.shape[0], num_classes), dtype=dtype)
    targets[np.arange(labels.shape[0]), labels] = 1
    return targets


def softmax_cross_entropy(logits: Array, labels: Array, out: Array | None = None) -> tuple[float, Array]:
    """Mean cross-entropy of softmax(logits) against integer labels, and d loss / d logits.

    logits: (n, k) float; labels: (n,) int. The gradient is (softmax(logits) - onehot) / n:
    softmax's Jacobian and the log's 1/p cancel, which is why the fused form is used.
    ``out`` (n, k) may receive the gradient to avoid an allocation.
    """
    n = logits.shape[0]
    rows = np.arange(n)
    shifted = np.subtract(logits, logits.max(axis=1, keepdims=True), out=out)  # (n, k)
    true_shifted = shifted[rows, labels].astype(np.float64)
    probs = np.exp(shifted, out=shifted)
    norm = probs.sum(axis=1, keepdims=True)  # (n, 1), >= 1 thanks to the shift
    # -log p_y = log sum exp(shifted) - shifted_y: never the log of a rounded-to-zero probability.
    loss = float(np.mean(np.log(norm[:, 0], dtype=np.float64) - true_shifted))
    probs /= norm
    probs[rows, labels] -= 1
    probs /= n
    return loss, probs


def mse(outputs: Array, targets: Array) -> tuple[float, Array]:
    """Mean over the batch of 1/2 sum_j (o_j - t_j)^2, and d loss / d outputs = (o - t) / n."""
    diff = outputs - targets
    loss = 0.5 * float(np.sum(np.square(diff, dtype=np.float64))) / outputs.shape[0]
    diff /= outputs.shape[0]
    return loss, diff


def bce_with_logits(logits: Array, targets: Array) -> tuple[float, Array]:
    """Binary cross-entropy of sigmoid(logits) against targets in [0, 1], and d loss / d logits.

    Summed over outputs, averaged over the batch. Uses max(z, 0) - z t + log(1 + exp(-|z|)),
    which is exact for any z; the gradient is (sigmoid(z) - t) / n.
    """
    n = logits.shape[0]
    z = logits
    per = np.maximum(z, 0) - z * targets + np.log1p(np.exp(-np.abs(z)))
    loss = float(np.sum(per, dtype=np.float64)) / n
    grad = 0.5 * (1 + np.tanh(0.5 * z)) - targets
    grad /= n
    return loss, grad


# cross_entropy and bce take logits (fused with softmax / sigmoid); mse takes the outputs.
LOSSES: dict[str, Callable[..., tuple[float, Array]]] = {
    "cross_entropy": softmax_cross_entropy,
    "bce": bce_with_logits,
    "mse": mse,
}

# Which output activations each loss may be paired with.
COMPATIBLE_OUTPUTS: dict[str, tuple[str, ...]] = {
    "cross_entropy": ("softmax",),
    "bce": ("sigmoid",),
    "mse": ("softmax", "sigmoid", "linear"),
}

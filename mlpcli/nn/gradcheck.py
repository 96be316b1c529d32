"""Central-difference gradient checking, per parameter tensor."""

from __future__ import annotations

import numpy as np

from mlpcli.nn.mlp import MLP, Masks

Array = np.ndarray


def relative_error(analytic: Array, numeric: Array) -> float:
    """||a - n|| / (||a|| + ||n||): 0 when equal, about 1 when unrelated (0 if both are zero)."""
    den = float(np.linalg.norm(analytic) + np.linalg.norm(numeric))
    return float(np.linalg.norm(analytic - numeric)) / den if den > 0 else 0.0


def check_gradients(
    model: MLP,
    x: Array,
    targets: Array,
    loss: str,
    *,
    weight_decay: float = 0.0,
    l1: float = 0.0,
    masks: Masks | None = None,
    eps: float = 1e-6,
    max_entries: int | None = None,
    rng: np.random.Generator | None = None,
) -> dict[str, float]:
    """Compare backprop with central differences per parameter tensor; returns name -> relative error.

    The model should be float64; masks fixes dropout so the loss is a deterministic function.
    max_entries checks a random subset of each larger tensor (drawn with rng) instead of every entry.
    """
    if (model.dropout > 0 or model.input_dropout > 0) and masks is None:
        raise ValueError("a gradient check with dropout needs fixed masks")
    _, grads = model.loss_and_grads(x, targets, loss, weight_decay=weight_decay, l1=l1, masks=masks)
    analytic = {k: v.copy() for k, v in grads.items()}
    errors: dict[str, float] = {}
    for name, p in model.params.items():
        flat = p.reshape(-1)
        if max_entries is not None and flat.size > max_entries:
            entries = (rng or np.random.default_rng(0)).choice(flat.size, size=max_entries, replace=False)
        else:
            entries = np.arange(flat.size)
        numeric = np.zeros(entries.size)
        for j, i in enumerate(entries):
            orig = flat[i]
            flat[i] = orig + eps
            plus, _ = model.loss_and_grads(x, targets, loss, weight_decay=weight_decay, l1=l1, masks=masks)
            flat[i] = orig - eps
            minus, _ = model.loss_and_grads(x, targets, loss, weight_decay=weight_decay, l1=l1, masks=masks)
            flat[i] = orig
            numeric[j] = (plus - minus) / (2 * eps)
        errors[name] = relative_error(analytic[name].reshape(-1)[entries], numeric)
    return errors

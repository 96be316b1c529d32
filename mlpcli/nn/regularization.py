"""Weight penalties added to the loss, and their gradients: L2 (weight decay) and L1, on the weights only.

The one place regularization is computed: the optimizers (penalty) and MLP.loss_and_grads both call it.
Biases are never penalized (the mask, MLP.decay_mask(), names the weights' slices of the flat buffer).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

Array = np.ndarray


def add_l2(params: Array, grads: Array, mask: Sequence[slice], weight_decay: float, scale: float = 1.0) -> float:
    """Add scale * wd * W to grads on the masked parts; returns the penalty (wd/2) sum W^2 there.

    params, grads: flat buffers of one layout; mask: slices of them (MLP.decay_mask()); scale:
    what the gradients were multiplied by (the folded learning rate, else 1). Krogh & Hertz 1992.
    """
    penalty = 0.0
    coeff = params.dtype.type(scale * weight_decay)
    for part in mask:
        w = params[part]
        penalty += 0.5 * weight_decay * float(np.vdot(w, w))
        grads[part] += coeff * w
    return penalty


def add_l1(params: Array, grads: Array, mask: Sequence[slice], l1: float, scale: float = 1.0) -> float:
    """Add scale * l1 * sign(W) to grads on the masked parts; returns the penalty l1 sum |W| there.

    The subgradient at W = 0 is taken as 0 (np.sign). Tibshirani 1996 (the lasso); TensorFlow Playground's L1.
    """
    penalty = 0.0
    coeff = params.dtype.type(scale * l1)
    for part in mask:
        w = params[part]
        penalty += l1 * float(np.abs(w).sum())
        grads[part] += coeff * np.sign(w)
    return penalty


def add_penalties(
    params: Array, grads: Array, mask: Sequence[slice], l2: float = 0.0, l1: float = 0.0, scale: float = 1.0
) -> float:
    """Both penalties (each only when its rate is not 0); returns their sum, to be added to the loss."""
    total = 0.0
    if l2:
        total += add_l2(params, grads, mask, l2, scale)
    if l1:
        total += add_l1(params, grads, mask, l1, scale)
    return total

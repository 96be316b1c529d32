"""What the lecture warns about, measured: saturated and dead units, and configs that cannot learn well."""

from __future__ import annotations

import numpy as np

from mlpcli.config import ExperimentConfig
from mlpcli.nn.activations import ACTIVATIONS
from mlpcli.nn.mlp import MLP

DEEP_SIGMOID = 3


def layer_diagnostics(model: MLP, x: np.ndarray) -> dict[str, float]:
    """Per hidden layer, on a batch x (n, inputs): saturated fraction (sigmoid/tanh) or dead fraction (ReLU)."""
    out: dict[str, float] = {}
    acts = model.layer_activations(x)[:-1]
    for l, a in enumerate(acts, start=1):
        spec = ACTIVATIONS[model.activations[l - 1]]  # the registry says how its units go wrong
        if spec.health == "saturated" and spec.saturation is not None:
            lo, hi = spec.saturation
            out[f"saturated_{l}"] = float(np.mean((a <= lo) | (a >= hi)))
        elif spec.health == "dead":
            out[f"dead_{l}"] = float(np.mean(~(a > 0).any(axis=0)))
    return out


def lecture_warnings(cfg: ExperimentConfig) -> list[str]:
    """One-time warnings for configs the lecture warns about."""
    warnings = []
    m = cfg.model
    names = m.activation if isinstance(m.activation, list) else [m.activation] * len(m.hidden)
    if m.hidden and all(a == "linear" for a in names):
        warnings.append(
            "every hidden layer is linear: the network collapses to one linear map (softmax regression) "
            "however many layers it has; use relu, tanh or sigmoid to learn more"
        )
    if sum(a == "sigmoid" for a in names) >= DEEP_SIGMOID:
        warnings.append(
            f"{len(m.hidden)} sigmoid hidden layers: gradients shrink by up to 4x per layer (sigmoid' <= 1/4), "
            "so the first layers learn slowly (vanishing gradients); relu or fewer layers train faster"
        )
    return warnings

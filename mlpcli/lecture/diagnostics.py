"""What the lecture warns about, measured: saturated and dead units, and configs that cannot learn well."""

from __future__ import annotations

import numpy as np

from mlpcli.config import ExperimentConfig
from mlpcli.nn.activations import ACTIVATIONS
from mlpcli.nn.mlp import MLP

DEEP_SIGMOID = 3


def unit_health(model: MLP, x: np.ndarray) -> tuple[list[float], list[float]]:
    """(dead, saturated): per hidden layer in order, the fraction of its units that are dead and that are
    saturated on the points x (n, inputs), by the rules of the activations' registry (ActivationSpec.dead,
    .saturated). A layer whose activation cannot die (or saturate) has 0.0."""
    dead, saturated = [], []
    for l, (_, slopes) in enumerate(model.layer_slopes(x), start=1):
        spec = ACTIVATIONS[model.activations[l - 1]]
        dead.append(float(np.mean(spec.dead(slopes))))
        saturated.append(float(np.mean(spec.saturated(slopes))))
    return dead, saturated


def layer_diagnostics(model: MLP, x: np.ndarray) -> dict[str, float]:
    """Per hidden layer l, on a batch x (n, inputs): dead_l for an activation that can die (ReLU) and
    saturated_l for one that saturates (sigmoid, tanh); see unit_health."""
    out: dict[str, float] = {}
    dead, saturated = unit_health(model, x)
    for l, name in enumerate(model.activations, start=1):
        spec = ACTIVATIONS[name]
        if spec.can_die:
            out[f"dead_{l}"] = dead[l - 1]
        if spec.grad_max is not None:
            out[f"saturated_{l}"] = saturated[l - 1]
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

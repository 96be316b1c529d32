"""The neural network core: activations, losses, the MLP and its optimizers (numpy only)."""

from mlpcli.nn.activations import ACTIVATIONS, OUTPUTS, Activation
from mlpcli.nn.losses import LOSSES
from mlpcli.nn.mlp import MLP, count_parameters
from mlpcli.nn.optimizers import OPTIMIZERS, Optimizer, make_optimizer

__all__ = [
    "ACTIVATIONS",
    "LOSSES",
    "MLP",
    "OPTIMIZERS",
    "OUTPUTS",
    "Activation",
    "Optimizer",
    "count_parameters",
    "make_optimizer",
]

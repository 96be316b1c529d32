"""The neural network core: activations, losses, the MLP and its optimizers (numpy only)."""

from mlpcli.nn.activations import ACTIVATIONS, OUTPUTS, Activation, Output
from mlpcli.nn.init import INITS
from mlpcli.nn.layout import count_parameters
from mlpcli.nn.losses import LOSSES, Loss, pairings
from mlpcli.nn.mlp import MLP
from mlpcli.nn.optimizers import OPTIMIZERS, Optimizer, make_optimizer

__all__ = [
    "ACTIVATIONS",
    "INITS",
    "LOSSES",
    "MLP",
    "OPTIMIZERS",
    "OUTPUTS",
    "Activation",
    "Loss",
    "Output",
    "Optimizer",
    "count_parameters",
    "make_optimizer",
    "pairings",
]

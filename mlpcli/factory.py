"""The one place a config's sections become objects: the model from `model`, the optimizer from `optimizer`.

Training, gradient checks, the predictor (a checkpoint's stored config) and the lecture tools
all build through here, so a new model key or optimizer setting is read in one place.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from mlpcli.config import ModelConfig, OptimizerConfig
from mlpcli.nn.activations import activation_params
from mlpcli.nn.mlp import MLP
from mlpcli.nn.optimizers import OPTIMIZERS, Optimizer, make_optimizer
from mlpcli.nn.products import REDUCTION_CHUNK


def build_model(
    model: ModelConfig | Mapping[str, Any],
    layer_sizes: Sequence[int],
    *,
    dtype: np.dtype | type | str = np.float32,
    rng: np.random.Generator | None = None,
    params: dict[str, np.ndarray] | None = None,
    reduction_chunk: int | None = REDUCTION_CHUNK,
) -> MLP:
    """An MLP of layer_sizes [inputs, hidden..., outputs] as the model section describes it.

    model: the config's `model` section (a ModelConfig or its dict, e.g. a checkpoint's
    meta.config.model); rng: initialize with model.init; params: adopt these weights instead;
    reduction_chunk: as MLP's (None: one BLAS call a product, bits that may depend on the thread count).
    Raises ValueError for impossible settings (as MLP does).
    """
    m = model.model_dump() if isinstance(model, ModelConfig) else dict(model)
    activation = m.get("activation", "relu")
    net = MLP(
        layer_sizes,
        activation,
        m.get("output", "softmax"),
        params=params,
        dropout=float(m.get("dropout", 0.0) or 0.0),
        input_dropout=float(m.get("input_dropout", 0.0) or 0.0),
        dtype=np.dtype(dtype),
        reduction_chunk=reduction_chunk,
        **activation_params(activation, m),
    )
    if rng is not None and params is None:
        net.init(rng, m.get("init", "he"))
    return net


def build_optimizer(optimizer: OptimizerConfig, model: MLP | None = None, *, fold: bool = False) -> Optimizer:
    """The optimizer the config's `optimizer` section names, given the settings its registry entry reads, fully
    configured: its penalties on model's weights only (MLP.decay_mask(); without a model, the whole buffer), and
    fold (the rate carried by the gradients: training.loop.folds_rate says when a run may)."""
    spec = OPTIMIZERS[optimizer.name]
    values = optimizer.model_dump()
    mask = model.decay_mask() if model is not None else None
    return make_optimizer(
        optimizer.name, optimizer.lr, fold=fold, decay_mask=mask, **{k: values[k] for k in spec.settings}
    )

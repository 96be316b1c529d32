"""Network files: small networks with every weight written out (configs/toy.yaml).

Kept apart from experiment configs on purpose: a network file has one top-level key,
`network:`, and is used by `trace` and `inspect`, never for training.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, ValidationError, model_validator

from mlpcli.config import ActivationName, LossName, OutputName, StrictModel, find_config, read_yaml
from mlpcli.config_errors import format_validation_error
from mlpcli.errors import ConfigError
from mlpcli.nn.losses import COMPATIBLE_OUTPUTS


class LayerWeights(StrictModel):
    """One layer in the lecture's W x form: W[j][i] is the weight from input i to neuron j."""

    W: list[list[float]]
    b: list[float]


class NetworkSpec(StrictModel):
    """A small network with every weight written out, for trace and inspect (not for training)."""

    activation: ActivationName = "sigmoid"
    output: OutputName = "sigmoid"
    loss: LossName = "mse"
    layers: list[LayerWeights] = Field(min_length=1)

    @model_validator(mode="after")
    def _shapes(self) -> NetworkSpec:
        fan_in = None
        for l, layer in enumerate(self.layers):
            rows = len(layer.W)
            if rows == 0 or any(len(r) != len(layer.W[0]) or not r for r in layer.W):
                raise ValueError(f"layers.{l}.W: must be a non-empty rectangular matrix (one row per neuron)")
            if len(layer.b) != rows:
                raise ValueError(f"layers.{l}.b: has {len(layer.b)} entries but W has {rows} rows (neurons)")
            if fan_in is not None and len(layer.W[0]) != fan_in:
                raise ValueError(f"layers.{l}.W: takes {len(layer.W[0])} inputs but layer {l - 1} has {fan_in} neurons")
            fan_in = rows
        allowed = COMPATIBLE_OUTPUTS[self.loss]
        if self.output not in allowed:
            raise ValueError(f"loss: {self.loss} needs output {' or '.join(allowed)} (got {self.output})")
        return self

    def layer_sizes(self) -> list[int]:
        """[inputs, neurons of each layer...]."""
        return [len(self.layers[0].W[0]), *(len(layer.W) for layer in self.layers)]


def load_network(path: Path | str) -> NetworkSpec:
    """Load a file whose top-level key is `network:` (explicit weights); ConfigError on any problem."""
    path = find_config(path)
    raw = read_yaml(path)
    if not isinstance(raw, dict) or "network" not in raw:
        raise ConfigError(f"{path}: not a network file (expected a top-level 'network:' with explicit layers)")
    extra = set(raw) - {"network"}
    if extra:
        raise ConfigError(f"{path}: unknown key {sorted(extra)[0]}; a network file holds only 'network:'")
    try:
        return NetworkSpec.model_validate(raw["network"])
    except ValidationError as exc:
        raise ConfigError(f"{path}: network.{format_validation_error(exc, NetworkSpec)}") from None


def is_network_file(path: Path | str) -> bool:
    """True when a YAML file describes an explicit network rather than an experiment."""
    raw = read_yaml(find_config(path))
    return isinstance(raw, dict) and "network" in raw


MAX_TRACED = 64  # neurons in a layer that trace writes out


def network_of_checkpoint(path: Path) -> NetworkSpec:
    """A small checkpoint (a playground model) as a network file, so trace can follow its numbers.

    Its input is what the network sees: features after the checkpoint's normalization.
    """
    from mlpcli.files import checkpoint

    ckpt = checkpoint.load(path)
    if max(ckpt.layer_sizes) > MAX_TRACED:
        raise ConfigError(f"{path}: trace writes out every weight: layers of at most {MAX_TRACED} neurons")
    if not isinstance(ckpt.meta["activation"], str):
        raise ConfigError(f"{path}: trace follows one hidden activation; this network has one per layer")
    layers = [
        {"W": ckpt.params[f"W{l}"].T.tolist(), "b": ckpt.params[f"b{l}"].tolist()}
        for l in range(1, len(ckpt.layer_sizes))
    ]
    doc = {"activation": ckpt.meta["activation"], "output": ckpt.meta["output"], "loss": ckpt.loss, "layers": layers}
    try:
        return NetworkSpec.model_validate(doc)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {format_validation_error(exc, NetworkSpec)}") from None

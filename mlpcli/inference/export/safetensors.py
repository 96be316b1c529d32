"""safetensors export: the weights as PyTorch, JAX and Hugging Face load them, nothing executable.

Tensors are named as a PyTorch ``nn.Sequential(Linear, activation, Linear, activation, ...,
Linear)`` names its Linear layers: ``0.weight`` (out, in), ``0.bias`` (out,), ``2.weight``,
... (layer l at index 2 (l - 1)); W is stored transposed from mlpcli's (in, out). So
``model.load_state_dict(safetensors.torch.load_file(path))`` fills such a Sequential. The
network's input is the normalized picture, so the metadata (strings, as the format wants)
holds the normalization, the class names and the architecture:

    format: "mlpcli-mlp"; layer_sizes, classes: JSON lists; activation, output, dataset
    activation_params: JSON object (e.g. {"leaky_slope": 0.01})
    norm_mean, norm_std: JSON numbers or 784-lists; input x = (pixels / 255 - norm_mean) / norm_std
    mlpcli_version
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from mlpcli.errors import MissingExtra, MlpcliError
from mlpcli.files.atomic import atomic_open
from mlpcli.files.checkpoint import Checkpoint
from mlpcli.version import __version__

SUMMARY = "safetensors: weights named as a PyTorch nn.Sequential of Linear layers, normalization in the metadata"


def tensors(ckpt: Checkpoint) -> dict[str, np.ndarray]:
    """The Sequential's state: "{2(l-1)}.weight" (out, in) and "{2(l-1)}.bias" (out,), contiguous."""
    out: dict[str, np.ndarray] = {}
    for l in range(1, len(ckpt.layer_sizes)):
        index = 2 * (l - 1)
        out[f"{index}.weight"] = np.ascontiguousarray(ckpt.params[f"W{l}"].T)
        out[f"{index}.bias"] = np.ascontiguousarray(ckpt.params[f"b{l}"])
    return out


def metadata(ckpt: Checkpoint) -> dict[str, str]:
    """The string-to-string metadata: architecture, classes, normalization, provenance."""
    meta = ckpt.meta

    def numbers(a: np.ndarray) -> Any:
        return float(a) if np.ndim(a) == 0 else [float(v) for v in np.ravel(a)]

    return {
        "format": "mlpcli-mlp",
        "layer_sizes": json.dumps(ckpt.layer_sizes),
        "activation": meta["activation"] if isinstance(meta["activation"], str) else json.dumps(meta["activation"]),
        "activation_params": json.dumps(ckpt.activation_params),
        "output": str(meta["output"]),
        "classes": json.dumps(ckpt.classes),
        "dataset": str(meta.get("dataset", "")),
        "norm_mean": json.dumps(numbers(ckpt.norm_mean)),
        "norm_std": json.dumps(numbers(ckpt.norm_std)),
        "input": "x = (pixels / 255 - norm_mean) / norm_std, pixels (n, 784) in 0..255",
        "mlpcli_version": __version__,
    }


def write(ckpt: Checkpoint, out: Path) -> dict[str, Any]:
    """Write the checkpoint's weights as safetensors to out (atomically); returns what the CLI reports."""
    try:
        from safetensors.numpy import save
    except ImportError:
        raise MissingExtra("export --format safetensors needs safetensors", "safetensors") from None
    named = tensors(ckpt)
    data = save(named, metadata=metadata(ckpt))
    try:
        with atomic_open(out, "wb") as fh:
            fh.write(data)
    except OSError as exc:
        raise MlpcliError(f"cannot write {out}: {exc.strerror or exc}") from None
    names = ", ".join(named)
    return {"tensors": list(named), "description": f"safetensors: {names} (PyTorch nn.Sequential naming)"}

"""ONNX export: the checkpoint's network as a graph any ONNX runtime can run, normalization included.

    pixels (n, 784) float32, raw 0..255  ->  Mul, Add (the checkpoint's normalization)
      -> Gemm, activation  (each hidden layer)  -> Gemm, output activation  ->  probabilities (n, k)

Needs the optional `onnx` package (pip install '.[onnx]'); onnxruntime is only needed to run
the result.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from mlpcli import __version__
from mlpcli.errors import MlpcliError
from mlpcli.files.atomic import atomic_open
from mlpcli.files.checkpoint import Checkpoint

OPSET = 17
INPUT, OUTPUT = "pixels", "probabilities"


def _import_onnx() -> Any:
    try:
        import onnx
    except ImportError:
        raise MlpcliError("export needs onnx: pip install '.[onnx]' (or pip install onnx onnxruntime)") from None
    return onnx


def _activation(helper: Any, name: str, slope: float, source: str, target: str) -> Any:
    ops = {"sigmoid": "Sigmoid", "tanh": "Tanh", "relu": "Relu", "linear": "Identity", "softmax": "Softmax"}
    if name == "leaky_relu":
        return helper.make_node("LeakyRelu", [source], [target], alpha=float(slope))
    if name == "softmax":
        return helper.make_node("Softmax", [source], [target], axis=1)
    if name not in ops:
        raise MlpcliError(f"cannot export activation {name!r}")
    return helper.make_node(ops[name], [source], [target])


def to_onnx(ckpt: Checkpoint) -> Any:
    """The ONNX ModelProto equivalent to the checkpoint (checked with onnx.checker)."""
    onnx = _import_onnx()
    from onnx import TensorProto, helper, numpy_helper

    sizes = ckpt.layer_sizes
    std = np.asarray(ckpt.norm_std, np.float32)
    mean = np.asarray(ckpt.norm_mean, np.float32)
    scale = (1.0 / (255.0 * std)).astype(np.float32).reshape(-1)  # x = (pixels / 255 - mean) / std
    shift = (-mean / std).astype(np.float32).reshape(-1)
    inits = [numpy_helper.from_array(scale, "norm_scale"), numpy_helper.from_array(shift, "norm_shift")]
    nodes = [helper.make_node("Mul", [INPUT, "norm_scale"], ["scaled"]),
             helper.make_node("Add", ["scaled", "norm_shift"], ["a0"])]  # fmt: skip
    L = len(sizes) - 1
    for l in range(1, L + 1):
        inits.append(numpy_helper.from_array(ckpt.params[f"W{l}"].astype(np.float32), f"W{l}"))
        inits.append(numpy_helper.from_array(ckpt.params[f"b{l}"].astype(np.float32), f"b{l}"))
        nodes.append(helper.make_node("Gemm", [f"a{l - 1}", f"W{l}", f"b{l}"], [f"z{l}"]))  # z = a W + b
        if l < L:
            nodes.append(_activation(helper, ckpt.meta["activation"], ckpt.leaky_slope, f"z{l}", f"a{l}"))
    nodes.append(_activation(helper, ckpt.meta["output"], ckpt.leaky_slope, f"z{L}", OUTPUT))
    graph = helper.make_graph(
        nodes, "mlpcli",
        [helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, ["n", sizes[0]])],
        [helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, ["n", sizes[-1]])],
        initializer=inits,
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="mlpcli",
                              producer_version=__version__)  # fmt: skip
    model.ir_version = min(model.ir_version, 8)  # readable by older runtimes too
    meta = {
        "classes": json.dumps(ckpt.classes), "dataset": str(ckpt.meta.get("dataset", "")),
        "mlpcli_version": __version__, "layer_sizes": json.dumps(sizes), "activation": ckpt.meta["activation"],
        "output": ckpt.meta["output"], "input": "pixels: float32 (n, 784), raw 0-255 as in the IDX files",
    }  # fmt: skip
    for key, value in meta.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model, full_check=True)
    return model


def export(ckpt: Checkpoint, out: Path) -> Path:
    """Write the checkpoint as ONNX to out (atomically)."""
    model = to_onnx(ckpt)
    try:
        with atomic_open(out, "wb") as fh:
            fh.write(model.SerializeToString())
    except OSError as exc:
        raise MlpcliError(f"cannot write {out}: {exc.strerror or exc}") from None
    return out

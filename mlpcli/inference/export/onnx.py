"""ONNX export: the checkpoint's network as a graph any ONNX runtime can run, normalization included.

    pixels (n, 784) float32, raw 0..255  ->  Mul, Add (the checkpoint's normalization)
      -> Gemm, activation  (each hidden layer)  -> Gemm, output activation  ->  probabilities (n, k)

Each activation's nodes come from its registry entry (mlpcli.nn.activations): GELU, which
opset 17 has no operator for, is its tanh form built from Mul, Add and Tanh. Needs the
optional `onnx` package (pip install '.[onnx]'); onnxruntime is only needed to run the result.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from mlpcli.errors import MissingExtra, MlpcliError
from mlpcli.files.atomic import atomic_open
from mlpcli.files.checkpoint import Checkpoint
from mlpcli.nn.activations import ACTIVATIONS, OUTPUTS, OnnxNode
from mlpcli.version import __version__

OPSET = 17
SUMMARY = "ONNX, normalization included: raw 0-255 pixels in, probabilities out"
INPUT, OUTPUT = "pixels", "probabilities"


def _import_onnx() -> Any:
    try:
        import onnx
    except ImportError:
        raise MissingExtra("export needs onnx", "onnx") from None
    return onnx


def _activation(helper: Any, nodes: list[OnnxNode], source: str, target: str, inits: list[Any]) -> list[Any]:
    """ONNX nodes for an activation given as registry data, from tensor `source` to tensor `target`."""
    from onnx import numpy_helper

    out: list[Any] = []
    for i, (op, inputs, attrs) in enumerate(nodes):
        names = []
        for value in inputs:
            if isinstance(value, str):
                names.append(source if value == "x" else f"{target}_{value}")
            else:  # a float constant
                name = f"{target}_c{i}_{len(names)}"
                inits.append(numpy_helper.from_array(np.array(value, np.float32), name))
                names.append(name)
        result = target if i == len(nodes) - 1 else f"{target}_n{i}"
        out.append(helper.make_node(op, names, [result], **attrs))
    return out


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
    nodes = [
        helper.make_node("Mul", [INPUT, "norm_scale"], ["scaled"]),
        helper.make_node("Add", ["scaled", "norm_shift"], ["a0"]),
    ]
    L = len(sizes) - 1
    for l in range(1, L + 1):
        inits.append(numpy_helper.from_array(ckpt.params[f"W{l}"].astype(np.float32), f"W{l}"))
        inits.append(numpy_helper.from_array(ckpt.params[f"b{l}"].astype(np.float32), f"b{l}"))
        nodes.append(helper.make_node("Gemm", [f"a{l - 1}", f"W{l}", f"b{l}"], [f"z{l}"]))  # z = a W + b
        if l < L:
            name = (
                ckpt.meta["activation"] if isinstance(ckpt.meta["activation"], str) else ckpt.meta["activation"][l - 1]
            )
            hidden = ACTIVATIONS[name].onnx(ckpt.activation_params)
            nodes += _activation(helper, hidden, f"z{l}", f"a{l}", inits)
    nodes += _activation(helper, OUTPUTS[ckpt.meta["output"]].onnx({}), f"z{L}", OUTPUT, inits)
    graph = helper.make_graph(
        nodes,
        "mlpcli",
        [helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, ["n", sizes[0]])],
        [helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, ["n", sizes[-1]])],
        initializer=inits,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="mlpcli", producer_version=__version__
    )
    model.ir_version = min(model.ir_version, 8)  # readable by older runtimes too
    meta = {
        "classes": json.dumps(ckpt.classes),
        "dataset": str(ckpt.meta.get("dataset", "")),
        "mlpcli_version": __version__,
        "layer_sizes": json.dumps(sizes),
        "activation": a if isinstance(a := ckpt.meta["activation"], str) else json.dumps(a),
        "output": ckpt.meta["output"],
        "input": "pixels: float32 (n, 784), raw 0-255 as in the IDX files",
    }
    for key, value in meta.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model, full_check=True)
    return model


def write(ckpt: Checkpoint, out: Path) -> dict[str, Any]:
    """Write the checkpoint as ONNX to out (atomically); returns what the CLI reports."""
    model = to_onnx(ckpt)
    try:
        with atomic_open(out, "wb") as fh:
            fh.write(model.SerializeToString())
    except OSError as exc:
        raise MlpcliError(f"cannot write {out}: {exc.strerror or exc}") from None
    sizes = ckpt.layer_sizes
    return {
        "opset": OPSET,
        "input": INPUT,
        "output": OUTPUT,
        "description": f"ONNX opset {OPSET}: input {INPUT!r} float32 (n, {sizes[0]}) raw 0-255 pixels, "
        f"output {OUTPUT!r} (n, {sizes[-1]})",
    }

"""`mlpcli export`: a checkpoint as an ONNX model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mlpcli.cli.render import console, print_json, user_errors


def export(
    checkpoint: Annotated[Path, typer.Argument(help="A checkpoint .npz.")],
    out: Annotated[Path, typer.Option("--output", "-o", help="The ONNX file to write (e.g. model.onnx).")],
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Export a checkpoint as ONNX: raw 0-255 pixels in, probabilities out, normalization included."""
    from mlpcli.files import checkpoint as ckpt_mod
    from mlpcli.inference.export import INPUT, OPSET, OUTPUT
    from mlpcli.inference.export import export as write_onnx

    with user_errors():
        ckpt = ckpt_mod.load(checkpoint)
        write_onnx(ckpt, out)
    doc = {"checkpoint": str(checkpoint), "onnx": str(out), "opset": OPSET, "input": INPUT, "output": OUTPUT,
           "layer_sizes": ckpt.layer_sizes, "classes": ckpt.classes, "bytes": out.stat().st_size}  # fmt: skip
    if json_out:
        print_json(doc)
        return
    sizes = ckpt.layer_sizes
    console.print(f"wrote {out} ({doc['bytes']:,} bytes, ONNX opset {OPSET}): input {INPUT!r} float32 (n, {sizes[0]}) "
                  f"raw 0-255 pixels, output {OUTPUT!r} (n, {sizes[-1]})")  # fmt: skip

"""`mlpcli export`: a checkpoint in another tool's format (the exporter registry's formats)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mlpcli.cli.render import console, print_json, user_errors


def _formats() -> list[str]:
    from mlpcli.inference.export import EXPORTERS

    return list(EXPORTERS)


def export(
    checkpoint: Annotated[Path, typer.Argument(help="A checkpoint .npz or a run folder.")],
    out: Annotated[
        Path, typer.Option("--output", "-o", help="The file to write (model.onnx, model.safetensors, ...).")
    ],
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format",
            "-f",
            help="onnx or safetensors (default: from the output's suffix).",
            autocompletion=_formats,
        ),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Export a checkpoint: ONNX (raw 0-255 pixels in, probabilities out) or safetensors (the weights)."""
    from mlpcli.cli.render import resolve_checkpoint
    from mlpcli.files import checkpoint as ckpt_mod
    from mlpcli.inference.export import exporter_for

    with user_errors(json_out):
        path = resolve_checkpoint(checkpoint)
        exporter = exporter_for(fmt, out)
        ckpt = ckpt_mod.load(path)
        facts = exporter.write(ckpt, out)
    doc = {
        "checkpoint": str(path),
        "format": exporter.name,
        exporter.name: str(out),
        "file": str(out),
        **facts,
        "layer_sizes": ckpt.layer_sizes,
        "classes": ckpt.classes,
        "bytes": out.stat().st_size,
    }
    doc.pop("description", None)
    if json_out:
        print_json(doc)
        return
    console.print(f"wrote {out} ({doc['bytes']:,} bytes, {facts['description']})")

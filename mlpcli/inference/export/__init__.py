"""Exporters: a checkpoint in a format other tools load. One registry entry per format.

An exporter is an ``Exporter``: its name (what ``mlpcli export --format`` takes), the file
suffix that selects it when no format is given, the optional extra that brings its
library, and ``write(checkpoint, out) -> facts``, which writes the file atomically and
returns what the CLI reports about it (a dict of JSON-ready values). Adding a format is a
module beside these and one entry below.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlpcli.errors import MlpcliError
from mlpcli.files.checkpoint import Checkpoint
from mlpcli.inference.export import onnx, safetensors


@dataclass(frozen=True)
class Exporter:
    """A registry entry: name, file suffix, the extra that brings its library, the writer, one line about it."""

    name: str
    suffix: str
    extra: str
    write: Callable[[Checkpoint, Path], dict[str, Any]]
    summary: str


EXPORTERS: dict[str, Exporter] = {
    e.name: e
    for e in (
        Exporter("onnx", ".onnx", "onnx", onnx.write, onnx.SUMMARY),
        Exporter("safetensors", ".safetensors", "safetensors", safetensors.write, safetensors.SUMMARY),
    )
}


def exporter_for(fmt: str | None, out: Path) -> Exporter:
    """The exporter named by fmt, else the one whose suffix out has; MlpcliError when neither says."""
    if fmt is not None:
        exporter = EXPORTERS.get(fmt.lower())
        if exporter is None:
            raise MlpcliError(f"unknown export format {fmt!r}; choose one of {', '.join(EXPORTERS)}")
        return exporter
    for exporter in EXPORTERS.values():
        if out.suffix.lower() == exporter.suffix:
            return exporter
    suffixes = ", ".join(e.suffix for e in EXPORTERS.values())
    raise MlpcliError(f"{out}: cannot tell the format from the suffix ({suffixes}); give --format")

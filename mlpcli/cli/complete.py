"""Shell completion of dataset names, config files and checkpoints (Typer's --install-completion)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

DATASET_NAMES = ("mnist", "fashion-mnist", "mnist-sample")  # kept here so completing imports nothing heavy


def _files(incomplete: str, suffixes: tuple[str, ...]) -> list[str]:
    """Files with one of the suffixes, and folders to descend into, starting with `incomplete`."""
    folder = Path(incomplete).parent if incomplete else Path()
    try:
        entries = sorted(folder.iterdir())
    except OSError:
        return []
    out = []
    for entry in entries:
        text = str(entry) if str(folder) != "." or incomplete.startswith("./") else entry.name
        if not text.startswith(incomplete) or entry.name.startswith("."):
            continue
        if entry.is_dir():
            out.append(text + "/")
        elif entry.suffix.lower() in suffixes:
            out.append(text)
    return out


def datasets(incomplete: str) -> list[str]:
    """Dataset names (and folders or CSV files) starting with `incomplete`."""
    return [n for n in DATASET_NAMES if n.startswith(incomplete)] + _files(incomplete, (".csv",))


def configs(incomplete: str) -> list[str]:
    """YAML configs (and folders) starting with `incomplete`."""
    return _files(incomplete, (".yaml", ".yml"))


def checkpoints(incomplete: str) -> list[str]:
    """Checkpoint files (and folders) starting with `incomplete`."""
    return _files(incomplete, (".npz",))


# The optional checkpoint argument of eval and serve.
CheckpointArg = Annotated[
    Path | None,
    typer.Argument(help="A checkpoint .npz (default: the newest finished run).", autocompletion=checkpoints),
]

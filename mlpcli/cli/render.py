"""Terminal rendering with rich: consoles, error lines, digits and curves drawn in text."""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from mlpcli.errors import MlpcliError

# Not a terminal and no COLUMNS: a file or a pipe, where nothing is cut to 80 columns (tables keep full names).
PIPE_WIDTH = None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 240
# On a terminal rich wraps long lines between words (the terminal itself would cut mid-word); in a file or a
# pipe a line stays one line, for grep and for scripts.
console = Console(highlight=False, soft_wrap=not sys.stdout.isatty(), width=PIPE_WIDTH)
err_console = Console(stderr=True, highlight=False, soft_wrap=not sys.stderr.isatty())

SPARKS = "▁▂▃▄▅▆▇█"


@contextmanager
def user_errors(json_out: bool = False) -> Iterator[None]:
    """Turn MlpcliError into one red line on stderr and exit code 1 (with json_out also {"error": ...} on
    stdout, so a --json caller always gets one document); Ctrl-C into exit code 130."""
    try:
        yield
    except MlpcliError as exc:
        err_console.print(Text("error: ", style="bold red") + Text(str(exc)))
        if json_out:
            print_json({"error": str(exc)})
        raise typer.Exit(1) from None
    except KeyboardInterrupt as exc:
        from mlpcli.errors import Terminated

        err_console.print(Text("interrupted", style="yellow"))
        raise typer.Exit(143 if isinstance(exc, Terminated) else 130) from None


def print_json(document: Any) -> None:
    """One JSON document on stdout and nothing else there."""
    sys.stdout.write(json.dumps(document, indent=2, default=_json_default) + "\n")
    sys.stdout.flush()


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):  # numpy scalars and arrays (numpy is not imported here: --help stays fast)
        return obj.tolist()
    return str(obj)


def note(text: str) -> None:
    """A dim informational line on stderr (never pollutes stdout)."""
    err_console.print(Text(text, style="dim"))


def warn(text: str) -> None:
    """A yellow warning line on stderr."""
    err_console.print(Text("warning: ", style="bold yellow") + Text(text))


def digit_text(image: Any, color: bool = True) -> Text:
    """A 28x28 image (array) in [0, 1] drawn with half-block characters: two pixel rows per text line."""
    import numpy as np

    h = image.shape[0] + image.shape[0] % 2
    img = np.zeros((h, image.shape[1]), np.float32)
    img[: image.shape[0]] = np.clip(image, 0, 1)
    text = Text()
    for r in range(0, h, 2):
        for top, bottom in zip(img[r], img[r + 1]):
            if color:
                t, b = int(top * 255), int(bottom * 255)
                text.append("▀", style=f"rgb({t},{t},{t}) on rgb({b},{b},{b})")
            else:
                text.append(" ▀▄█"[(top > 0.4) + 2 * (bottom > 0.4)])
        text.append("\n")
    return text


def digit_block(image: Any) -> Text:
    """digit_text in gray levels on a color terminal; plain blocks under NO_COLOR and in pipes."""
    return digit_text(image, color=console.color_system is not None and not console.no_color)


def digit_grid(items: list[tuple[Any, str]], per_row: int = 3) -> None:
    """Draw (image, caption) pairs as captioned panels, images in [0, 1] (any shape of 784 pixels)."""
    from rich.columns import Columns
    from rich.panel import Panel

    panels = [Panel(digit_block(img.reshape(28, 28)), title=caption, expand=False) for img, caption in items]
    console.print(Columns(panels))


SPARK_WIDTH = 40  # characters: a longer curve is averaged down to this many, never cut


def sparkline(values: list[float | None], width: int = SPARK_WIDTH) -> str:
    """Values as a row of block characters, lowest to highest; more than `width` values are averaged in
    `width` consecutive groups (the whole curve, its first and last epochs included, always shows)."""
    if len(values) > width:
        groups = [values[len(values) * i // width : len(values) * (i + 1) // width] for i in range(width)]
        values = [
            math.fsum(good) / len(good) if (good := [v for v in g if v is not None and math.isfinite(v)]) else None
            for g in groups
        ]
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return ""
    lo, hi = min(finite), max(finite)
    span = hi - lo or 1.0
    return "".join(
        " " if v is None or not math.isfinite(v) else SPARKS[min(int((v - lo) / span * 7.999), 7)] for v in values
    )


def metric_words(metric: str) -> str:
    """A metric key as a reader says it: val_loss -> val loss, val_accuracy -> val acc."""
    return metric.replace("_accuracy", "_acc").replace("_", " ")


def curves_table(rows: list[dict[str, Any]], best_epoch: int | None, monitor: str) -> Table:
    """Learning curves: one sparkline per metric over the epochs, with the first, the best epoch's (the
    checkpoint's, chosen by monitor) and the last values."""
    from mlpcli.events import best_row

    best = best_row(rows, best_epoch) or {}
    which = f"lowest {metric_words(monitor)}" if "loss" in monitor else f"highest {metric_words(monitor)}"
    title = f"learning curves (best: epoch {best.get('epoch', '?')}, {which})"
    table = Table(title=title, show_edge=False, title_justify="left")
    for col in ("metric", "curve", "first", "best", "last"):
        table.add_column(col, justify="right" if col in ("first", "best", "last") else "left")
    for key in ("train_loss", "val_loss", "train_accuracy", "val_accuracy"):
        values = [r.get(key) for r in rows]
        if all(v is None for v in values):
            continue
        finite = [v for v in values if v is not None]
        fmt = "{:.2%}" if key.endswith("accuracy") else "{:.4f}"
        at_best = "" if best.get(key) is None else fmt.format(best[key])
        table.add_row(key, sparkline(values), fmt.format(finite[0]), at_best, fmt.format(finite[-1]))
    return table


def architecture_table(arch: dict[str, Any]) -> Table:
    """The layers of an architecture (mlpcli.lecture.trace.architecture) as a table, W in the lecture's form."""
    table = Table(
        title=f"architecture {'-'.join(map(str, arch['layer_sizes']))}", title_justify="left", show_edge=False
    )
    for col in ("layer", "W (neurons x inputs)", "weights", "biases", "parameters", "activation"):
        table.add_column(col, justify="right" if col in ("weights", "biases", "parameters") else "left")
    for row in arch["layers"]:
        table.add_row(
            str(row["layer"]),
            "{} x {}".format(*row["W_shape"]),
            f"{row['weights']:,}",
            f"{row['biases']:,}",
            f"{row['parameters']:,}",
            row["activation"],
        )
    table.add_row(
        "total",
        f"{arch['neurons']:,} neurons",
        f"{arch['weights']:,}",
        f"{arch['biases']:,}",
        f"{arch['parameters']:,}",
        "",
        style="bold",
    )
    return table


def bar(fraction: float, width: int = 24) -> str:
    """A horizontal bar of width cells for a fraction in [0, 1]."""
    cells = fraction * width
    full = int(cells)
    part = " ▏▎▍▌▋▊▉"[int((cells - full) * 8)] if full < width else ""
    return ("█" * full + part).ljust(width)


def resolve_checkpoint(given: Path | None) -> Path:
    """The checkpoint given (a run folder means its checkpoint.npz), or the default model (said on stderr):
    the newest finished run under ./runs that is not a sweep trial and did not end at chance."""
    from mlpcli.errors import CheckpointError
    from mlpcli.runs.folder import checkpoint_in, default_model

    if given is not None:
        return checkpoint_in(given)
    found = default_model(Path("runs"))
    if found is None:
        raise CheckpointError(
            "no checkpoint given and no finished run under ./runs; "
            "train one (mlpcli train --config configs/quickstart.yaml) or pass its path"
        )
    note(f"using {found.describe()}")
    return found.checkpoint


@contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """While the block runs, SIGTERM raises Terminated (a KeyboardInterrupt): work ends as after Ctrl-C."""
    import signal
    import threading

    from mlpcli.errors import Terminated

    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGTERM"):
        yield
        return

    def stop(signum: int, frame: object) -> None:
        raise Terminated

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)

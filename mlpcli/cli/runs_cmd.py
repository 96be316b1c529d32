"""`mlpcli runs` and `mlpcli compare`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from mlpcli.cli.render import console, print_json, sparkline, user_errors

STATUS_STYLE = {
    "finished": "green",
    "running": "cyan",
    "interrupted": "yellow",
    "diverged": "red",
    "failed": "red",
    "killed": "red",
}


def _pct(v: float | None) -> str:
    return "" if v is None else f"{v:.2%}"


def runs(
    root: Annotated[Path, typer.Argument(help="Folder to look in (any depth).")] = Path("runs"),
    json_out: Annotated[bool, typer.Option("--json", help="Print a JSON list.")] = False,
) -> None:
    """Every run under ROOT, newest first: status, epochs, best validation and test accuracy, training time."""
    from rich.table import Table

    from mlpcli.runs.folder import list_runs

    with user_errors():
        found = list_runs(root)
    if json_out:
        print_json([s.row(run.path) for run, s in found])
        return
    if not found:
        console.print(f"no runs under {root} (train one: mlpcli train --config configs/quickstart.yaml)")
        return
    table = Table(show_edge=False)
    for col in ("name", "folder", "started", "status", "epochs", "best val acc", "test acc", "train time"):
        table.add_column(
            col, justify="right" if col in ("epochs", "best val acc", "test acc", "train time") else "left"
        )
    for run, r in found:
        style = STATUS_STYLE.get(r.status, "")
        epochs = f"{r.epochs_done if r.epochs_done is not None else '?'}/{r.epochs_planned or '?'}"
        seconds = "" if r.train_seconds is None else f"{r.train_seconds:.1f} s"
        label = r.name or run.path.parent.name
        name = label if r.sweep is None else f"{label} [dim]({r.sweep})[/]"
        table.add_row(
            name,
            str(run.path),
            (r.started or "").replace("T", " ").removesuffix("+00:00"),
            f"[{style}]{r.status}[/]" if style else r.status,
            epochs,
            _pct(r.best_val_accuracy),
            _pct(r.test_accuracy),
            seconds,
        )
    console.print(table)


def compare(
    run_dirs: Annotated[list[Path], typer.Argument(help="Two or more run folders.")],
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
    png: Annotated[Path | None, typer.Option("--png", help="Also write the curves overlaid to this PNG.")] = None,
) -> None:
    """The config keys that differ, final and best metrics side by side, and the learning curves overlaid."""
    from mlpcli.runs.compare import compare as compare_runs

    with user_errors():
        doc = compare_runs(run_dirs)
        if png is not None:
            from mlpcli.runs.plots import write_compare_png

            write_compare_png(doc["runs"], png)
    if json_out:
        print_json(doc)
        return
    _render(doc)
    if png is not None:
        console.print(f"wrote {png}")


def _render(doc: dict[str, Any]) -> None:
    from rich.table import Table

    labels = [Path(r["folder"]).name for r in doc["runs"]]
    diff = Table(title="config keys that differ", title_justify="left", show_edge=False)
    diff.add_column("key")
    for label in labels:
        diff.add_column(label)
    for key, values in doc["differences"].items():
        diff.add_row(key, *["" if v is None else str(v) for v in values])
    console.print(diff if doc["differences"] else "the configs are the same")
    metrics = Table(title="metrics (final / best)", title_justify="left", show_edge=False)
    metrics.add_column("metric")
    for label in labels:
        metrics.add_column(label, justify="right")
    for key in ("train_loss", "val_loss", "train_accuracy", "val_accuracy"):
        fmt = _pct if key.endswith("accuracy") else (lambda v: "" if v is None else f"{v:.4f}")
        metrics.add_row(key, *[f"{fmt(r['final'].get(key))} / {fmt(r['best'].get(key))}" for r in doc["runs"]])
    metrics.add_row("test_accuracy", *[_pct(r["test_accuracy"]) for r in doc["runs"]])
    metrics.add_row("epochs", *[str(r["epochs"]) for r in doc["runs"]])
    console.print(metrics)
    curves = Table(title="learning curves", title_justify="left", show_edge=False)
    curves.add_column("run")
    for key in ("val_accuracy", "val_loss", "train_loss"):
        curves.add_column(key)
    for label, r in zip(labels, doc["runs"]):
        curves.add_row(label, *[sparkline(r["curves"][k]) for k in ("val_accuracy", "val_loss", "train_loss")])
    console.print(curves)

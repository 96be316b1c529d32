"""`mlpcli runs`, `mlpcli compare` and `mlpcli plot`: the run folders, side by side, and drawn."""

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
    "pruned": "yellow",
    "superseded": "dim",
}


def _pct(v: float | None) -> str:
    return "" if v is None else f"{v:.2%}"


def runs(
    root: Annotated[Path | None, typer.Argument(help="Folder to look in, any depth (default ./runs).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print a JSON list.")] = False,
    csv_out: Annotated[
        bool, typer.Option("--csv", help="Print CSV (the --json keys as columns), for spreadsheets.")
    ] = False,
) -> None:
    """Every run under ROOT, newest first: status, epochs, best validation and test accuracy, training time."""
    from rich.table import Table
    from rich.text import Text

    from mlpcli.errors import MlpcliError
    from mlpcli.runs.folder import list_runs

    with user_errors(json_out):
        if root is not None and not root.is_dir():
            raise MlpcliError(f"{root}: no such folder" if not root.exists() else f"{root}: not a folder")
        root = root or Path("runs")
        found = list_runs(root)
    if json_out:
        print_json([s.row(run.path) for run, s in found])
        return
    if csv_out:
        import csv
        import sys

        rows = [s.row(run.path) for run, s in found]
        writer = csv.DictWriter(
            sys.stdout, fieldnames=list(rows[0]) if rows else ["name", "folder"], lineterminator="\n"
        )
        writer.writeheader()
        writer.writerows({k: "" if v is None else v for k, v in row.items()} for row in rows)
        return
    if not found:
        console.print(f"no runs under {root} yet (train one: mlpcli train --config quickstart)")
        return
    rows = []
    for run, r in found:
        style = STATUS_STYLE.get(r.status, "")
        label = r.name or run.path.parent.name
        rows.append(
            {
                "name": label if r.sweep is None else f"{label} [dim]({r.sweep})[/]",
                "folder": str(run.path),
                "started": (r.started or "")[5:16].replace("T", " "),
                "status": f"[{style}]{r.status}[/]" if style else r.status,
                "epochs": f"{r.epochs_done if r.epochs_done is not None else '?'}/{r.epochs_planned or '?'}",
                "val acc": _pct(r.best_val_accuracy),
                "test acc": _pct(r.test_accuracy),
                "time": "" if r.train_seconds is None else f"{r.train_seconds:.0f} s",
            }
        )
    columns = list(rows[0])
    plain = [{k: Text.from_markup(v).plain for k, v in row.items()} for row in rows]

    def width(cols: list[str]) -> int:
        return sum(max(len(c), *(len(p[c]) for p in plain)) + 3 for c in cols)

    for optional in ("started", "time", "val acc"):  # the folder, what a user copies, is never cut: drop these
        if width(columns) > console.width:
            columns.remove(optional)
    table = Table(show_edge=False)
    for col in columns:
        table.add_column(
            col,
            justify="right" if col in ("epochs", "val acc", "test acc", "time") else "left",
            no_wrap=col == "folder",
            overflow="fold",
        )
    for row in rows:
        table.add_row(*(row[c] for c in columns))
    console.print(table)


def compare(
    run_dirs: Annotated[list[Path], typer.Argument(help="Two or more run folders.")],
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
    png: Annotated[Path | None, typer.Option("--png", help="Also write the curves overlaid to this PNG.")] = None,
) -> None:
    """The config keys that differ, final and best metrics side by side, and the learning curves overlaid."""
    from mlpcli.runs.compare import compare as compare_runs

    with user_errors(json_out):
        doc = compare_runs(run_dirs)
    if json_out:
        print_json(doc)
    else:
        _render(doc)
    if png is not None:  # the comparison is shown even when the picture cannot be drawn (no plot extra)
        from mlpcli.runs.plots import write_compare_png

        with user_errors(json_out):
            write_compare_png(doc["runs"], png)
        if not json_out:
            console.print(f"wrote {png}")


def _labels(folders: list[Path]) -> list[str]:
    """The shortest tail of each folder's path that tells the runs apart (trials/000 of two sweeps: s1/.../000)."""
    for depth in range(1, max(len(f.parts) for f in folders) + 1):
        tails = ["/".join(f.parts[-depth:]) for f in folders]
        if len(set(tails)) == len(tails):
            return tails
    return [str(f) for f in folders]


def _render(doc: dict[str, Any]) -> None:
    from rich.table import Table

    labels = _labels([Path(r["folder"]) for r in doc["runs"]])
    diff = Table(title="config keys that differ", title_justify="left", show_edge=False)
    diff.add_column("key")
    for label in labels:
        diff.add_column(label)
    for key, values in doc["differences"].items():
        diff.add_row(key, *["" if v is None else str(v) for v in values])
    console.print(diff if doc["differences"] else "the configs are the same")
    metrics = Table(
        title="metrics (last epoch / best epoch, the one checkpoint.npz holds)", title_justify="left", show_edge=False
    )
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


def plot(
    run_dir: Annotated[Path, typer.Argument(help="A run folder holding metrics.csv.")],
    out: Annotated[Path | None, typer.Option("--out", help="PNG file (default RUN_DIR/curves.png).")] = None,
) -> None:
    """Write the run's learning curves as a PNG, and for points in the plane (playground datasets) its decision
    boundary with the points as RUN_DIR/boundary.png (needs matplotlib, the optional plot extra)."""
    from mlpcli.errors import MlpcliError
    from mlpcli.runs.folder import RunFolder
    from mlpcli.runs.plots import write_curves_png

    with user_errors():
        run = RunFolder(run_dir)
        rows = run.read_metrics()
        if not rows:
            raise MlpcliError(f"{run.metrics}: no epochs recorded yet")
        name = run_dir.resolve().parent.name
        target = write_curves_png(rows, out or run.curves, title=f"{name} {run_dir.name}")
        console.print(f"wrote {target}")
        boundary = _boundary(run)
        if boundary is not None:
            console.print(f"wrote {boundary}")


def _boundary(run: Any) -> Path | None:
    """RUN/boundary.png for a run on points in the plane, else None."""
    from mlpcli.config import load_config
    from mlpcli.data.load import PlaneOptions, load_dataset
    from mlpcli.data.plane import is_plane
    from mlpcli.inference.boundary import bounds_of, decision_grid
    from mlpcli.inference.predictor import Predictor
    from mlpcli.runs.plots import write_boundary_png

    if not run.config.is_file() or not run.checkpoint.is_file():
        return None
    cfg = load_config(run.config)
    if not is_plane(cfg.data.dataset):
        return None
    data = load_dataset(cfg.data.dataset, plane=PlaneOptions.of(cfg.data, cfg.seed))
    grid = decision_grid(Predictor.load(run.checkpoint), cfg.data.features, bounds_of(data.train_xy, data.test_xy), 160)
    out = run.path / "boundary.png"
    title = f"{cfg.name}: {', '.join(cfg.data.features)} -> {cfg.model.hidden} {cfg.model.activation}"
    return write_boundary_png(
        grid.xs, grid.ys, grid.probabilities, (data.train_xy, data.train_y), (data.test_xy, data.test_y), out, title
    )

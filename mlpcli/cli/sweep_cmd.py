"""`mlpcli sweep`: a live table of trials, then the ranking, the best run and what mattered."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from mlpcli.cli.render import console, err_console, note, print_json, user_errors, warn

STATE_STYLE = {"complete": "green", "running": "cyan", "pruned": "yellow", "failed": "red"}


def param_text(value: Any) -> str:
    """A sampled parameter as a reader wants it: floats to 4 significant digits (0.003162, not
    0.0031622776601683794); --json keeps every digit."""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return "[" + ", ".join(param_text(v) for v in value) + "]"
    return str(value)


class SweepTable:
    """Keeps every trial's row and renders them as a rich table (live on a terminal)."""

    def __init__(self, metric: str, live: bool) -> None:
        self.metric, self.live = metric, live
        self.rows: dict[int, dict[str, Any]] = {}
        self.display: Any = None

    def __call__(self, event: Any) -> None:
        from mlpcli.events import Message
        from mlpcli.sweep.events import SweepStart, TrialEnded, TrialEpoch, TrialStarted

        if isinstance(event, Message):
            warn(event.text) if event.level == "warning" else note(event.text)
        elif isinstance(event, SweepStart):
            self.metric = event.metric
            again = f"; {event.done} finished before, {event.rerun} to run again" if event.done or event.rerun else ""
            note(
                f"sweep {event.name}: {event.trials} trials, {event.parallel} at a time with {event.threads} BLAS "
                f"thread(s) each, on {event.where}; folder {event.folder}{again}"
            )
        elif isinstance(event, TrialStarted):
            self.rows[event.number] = {"params": event.params, "epoch": 0, "value": None, "state": "running"}
        elif isinstance(event, TrialEpoch) and event.number in self.rows:
            self.rows[event.number].update(epoch=event.epoch, value=event.value)
            if event.pruning:
                self.rows[event.number]["state"] = "pruning"
        elif isinstance(event, TrialEnded):
            row = self.rows.setdefault(event.number, {"params": {}, "epoch": 0})
            row.update(state=event.state, value=event.value, reason=event.reason)
            if not self.live:
                value = "" if event.value is None else f" {self.metric} {event.value:.4f}"
                why = f" ({event.reason})" if event.reason and event.state == "failed" else ""
                err_console.print(f"trial {event.number}: {event.state}{value}{why}")
        if self.display is not None:
            self.display.update(self.table())

    def table(self) -> Any:
        from rich.table import Table
        from rich.text import Text

        if not self.rows:  # no header over nothing while the first trials start
            return Text("")
        shown = sorted(self.rows.items())
        if self.live:  # never taller than the terminal: a live display that overflows is drawn again on exit
            room = max(console.height - 8, 3)
            running = [item for item in shown if item[1]["state"] in ("running", "pruning")]
            ended = [item for item in shown if item[1]["state"] not in ("running", "pruning")]
            if len(shown) > room:
                keep = max(room - len(running), 0)
                shown = sorted(ended[len(ended) - keep :] + running[len(running) - min(room, len(running)) :])
        hidden = len(self.rows) - len(shown)
        table = Table(
            show_edge=False,
            caption=f"{hidden} finished trials not shown; the final table ranks all" if hidden else None,
        )
        for col in ("trial", "parameters", "epoch", self.metric, "state"):
            table.add_column(col, justify="right" if col in ("trial", "epoch", self.metric) else "left")
        for number, row in shown:
            names = short_keys(list(row["params"]))
            params = ", ".join(f"{names[k]}={param_text(v)}" for k, v in row["params"].items())
            value = "" if row.get("value") is None else f"{row['value']:.4f}"
            style = STATE_STYLE.get(row["state"], "")
            table.add_row(
                str(number), params, str(row["epoch"]), value, f"[{style}]{row['state']}[/]" if style else row["state"]
            )
        return table


def sweep(
    file: Annotated[Path, typer.Argument(help="A sweep file (see configs/sweeps/).")],
    executor: Annotated[
        str, typer.Option("--executor", help="Where trials run: local (worker processes) or ray (a Ray cluster).")
    ] = "local",
    address: Annotated[
        str | None, typer.Option("--address", help="Ray cluster HOST:PORT (default RAY_ADDRESS).")
    ] = None,
    parallel: Annotated[
        int | None, typer.Option("--parallel", min=1, help="Trials at a time (default: the file's).")
    ] = None,
    trials: Annotated[
        int | None, typer.Option("--trials", min=1, help="How many trials (default: the file's).")
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Sweep folder (default runs/sweeps/<name>).")] = None,
    offline: Annotated[bool, typer.Option("--offline", help="Never touch the network.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON document: trials and best.")] = False,
) -> None:
    """Run many trials of an experiment (Optuna search), locally or on Ray; the same command resumes it."""
    from contextlib import nullcontext

    from rich.live import Live

    from mlpcli.sweep.driver import run_sweep
    from mlpcli.sweep.events import SweepInvalid
    from mlpcli.sweep.executors import EXECUTORS

    if executor not in EXECUTORS:
        raise typer.BadParameter(f"must be one of {', '.join(EXECUTORS)}", param_hint="--executor")
    metric = "value"
    live = console.is_terminal and not json_out
    table = SweepTable(metric, live)
    with user_errors(json_out):
        try:
            display = Live(table.table(), console=console, refresh_per_second=4) if live else nullcontext()
            with display:
                table.display = display if live else None
                doc = run_sweep(
                    file,
                    executor=executor,
                    address=address,
                    parallel=parallel,
                    trials=trials,
                    out=out,
                    offline=offline,
                    callbacks=[table],
                )
        except SweepInvalid as exc:
            for line in exc.problems:
                err_console.print(f"[bold red]error:[/] {file}: {line}")
            raise typer.Exit(1) from None
        except KeyboardInterrupt as exc:
            from mlpcli.errors import Terminated

            err_console.print(
                "[yellow]interrupted[/]: finished trials are kept; run the same command again to continue the study"
            )
            raise typer.Exit(143 if isinstance(exc, Terminated) else 130) from None
    if json_out:
        print_json(doc)
        return
    _final(doc)


def short_keys(keys: list[str]) -> dict[str, str]:
    """Each key by its last part (model.activation -> activation), unless two keys share that last part."""
    last = [k.split(".")[-1] for k in keys]
    return {k: (s if last.count(s) == 1 else k) for k, s in zip(keys, last)}


def _final(doc: dict[str, Any]) -> None:
    from rich.table import Table

    metric = doc["metric"]["name"]
    by_number = {t["number"]: t for t in doc["trials"]}
    varied = [
        k
        for k in (doc["trials"][0]["params"] if doc["trials"] else {})
        if len({str(t["params"].get(k)) for t in doc["trials"]}) > 1
    ]
    names = short_keys(varied)
    ranked = [by_number[n] for n in doc["ranked"]]

    def ranking(with_folder: bool) -> Table:
        table = Table(title=f"{doc['name']}: trials ranked by {metric}", title_justify="left", show_edge=False)
        for col in ("rank", "trial", metric, "parameters") + (("run folder",) if with_folder else ()):
            right = col in ("rank", "trial", metric)
            table.add_column(col, justify="right" if right else "left", no_wrap=col == "run folder")
        for rank, t in enumerate(ranked, start=1):
            params = ", ".join(f"{names[k]}={param_text(t['params'].get(k))}" for k in varied)
            folder = (t["run_dir"] or "",) if with_folder else ()
            table.add_row(str(rank), str(t["number"]), f"{t['value']:.4f}", params, *folder)
        return table

    # the narrowest the table can be with whole folders: each column's widest word, plus padding and rules
    words = [w for t in ranked for k in varied for w in f"{names[k]}={param_text(t['params'].get(k))},".split()]
    folders = [len(t["run_dir"] or "") for t in ranked]
    narrowest = 4 + 5 + max(len(metric), 6) + max(map(len, words), default=10) + max(folders, default=10) + 3 * 5
    if narrowest > console.width:  # a path is never cut: the folders move under the table, one per line
        console.print(ranking(with_folder=False))
        for t in ranked:
            console.print(f"trial {t['number']}: {t['run_dir'] or ''}", overflow="fold")
    else:
        console.print(ranking(with_folder=True))
    others = [t for t in doc["trials"] if t["state"] != "complete"]
    for t in others:
        console.print(f"trial {t['number']}: {t['state']}" + (f" ({t['reason']})" if t.get("reason") else ""))
    best = doc["best"]
    if best is None:
        console.print("no trial completed")
        return
    console.print(
        f"[bold]best: trial {best['number']}[/], {metric} {best['value']:.4f}: "
        + ", ".join(f"{k}={param_text(v)}" for k, v in best["params"].items())
    )
    console.print(f"checkpoint: {best['checkpoint']}")
    if doc.get("importance"):
        top = max(doc["importance"].items(), key=lambda kv: kv[1])
        shares = ", ".join(f"{k} {v:.2f}" for k, v in doc["importance"].items())
        console.print(f"parameter importance (Optuna): {shares}; {top[0]} mattered most")

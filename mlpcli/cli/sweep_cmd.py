"""`mlpcli sweep`: a live table of trials, then the ranking, the best run and what mattered."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from mlpcli.cli.render import console, err_console, note, print_json, user_errors, warn

STATE_STYLE = {"complete": "green", "running": "cyan", "pruned": "yellow", "failed": "red"}


class SweepTable:
    """Keeps every trial's row and renders them as a rich table (live on a terminal)."""

    def __init__(self, metric: str, live: bool) -> None:
        self.metric, self.live = metric, live
        self.rows: dict[int, dict[str, Any]] = {}
        self.display: Any = None

    def __call__(self, event: Any) -> None:
        from mlpcli.events import Message
        from mlpcli.sweep.driver import SweepStart, TrialEnded, TrialEpoch, TrialStarted

        if isinstance(event, Message):
            warn(event.text) if event.level == "warning" else note(event.text)
        elif isinstance(event, SweepStart):
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
                err_console.print(f"trial {event.number}: {event.state}{value}{why}", soft_wrap=True)
        if self.display is not None:
            self.display.update(self.table())

    def table(self) -> Any:
        from rich.table import Table

        table = Table(show_edge=False)
        for col in ("trial", "parameters", "epoch", self.metric, "state"):
            table.add_column(col, justify="right" if col in ("trial", "epoch", self.metric) else "left")
        for number, row in sorted(self.rows.items()):
            params = ", ".join(f"{k.split('.')[-1]}={v}" for k, v in row["params"].items())  # short: keys' last part
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

    from mlpcli.sweep.driver import SweepInvalid, run_sweep
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
                err_console.print(f"[bold red]error:[/] {file}: {line}", soft_wrap=True)
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


def _final(doc: dict[str, Any]) -> None:
    from rich.table import Table

    metric = doc["metric"]["name"]
    by_number = {t["number"]: t for t in doc["trials"]}
    table = Table(title=f"{doc['name']}: trials ranked by {metric}", title_justify="left", show_edge=False)
    for col in ("rank", "trial", "parameters", metric, "run folder"):
        table.add_column(col, justify="right" if col in ("rank", "trial", metric) else "left")
    varied = [
        k
        for k in (doc["trials"][0]["params"] if doc["trials"] else {})
        if len({str(t["params"].get(k)) for t in doc["trials"]}) > 1
    ]
    for rank, number in enumerate(doc["ranked"], start=1):
        t = by_number[number]
        params = ", ".join(f"{k}={t['params'].get(k)}" for k in varied)
        table.add_row(str(rank), str(number), params, f"{t['value']:.4f}", t["run_dir"] or "")
    console.print(table)
    others = [t for t in doc["trials"] if t["state"] != "complete"]
    for t in others:
        console.print(f"trial {t['number']}: {t['state']}" + (f" ({t['reason']})" if t.get("reason") else ""))
    best = doc["best"]
    if best is None:
        console.print("no trial completed")
        return
    console.print(
        f"[bold]best: trial {best['number']}[/], {metric} {best['value']:.4f}: "
        + ", ".join(f"{k}={v}" for k, v in best["params"].items())
    )
    console.print(f"checkpoint: {best['checkpoint']}")
    if doc.get("importance"):
        top = max(doc["importance"].items(), key=lambda kv: kv[1])
        shares = ", ".join(f"{k} {v:.2f}" for k, v in doc["importance"].items())
        console.print(f"parameter importance (Optuna): {shares}; {top[0]} mattered most")

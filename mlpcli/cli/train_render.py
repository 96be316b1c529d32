"""Rendering training events: a live bar per epoch on a terminal, then one row per epoch."""

from __future__ import annotations

import time
from typing import Any

from mlpcli.cli.render import console, metric_words, note, warn


class TrainRenderer:
    """Renders training events: a live bar per epoch on a terminal, plain lines otherwise."""

    def __init__(self, live: bool, quiet: bool) -> None:
        self.live, self.quiet = live, quiet
        self.progress: Any = None
        self.task: Any = None
        self.steps = 0
        self.epochs = 0
        self.epoch_start = 0.0
        self.table_header_done = False
        self.monitor = "val_loss"

    def __call__(self, event: Any) -> None:
        from mlpcli.events import BatchEnd, EpochEnd, EpochStart, Message, TrainStart

        if isinstance(event, Message):  # failed mirrors are reported by download_progress, once
            if event.level == "warning":
                warn(event.text)
            elif event.level != "detail":
                note(event.text)
            elif not self.quiet:
                console.print(event.text, style="dim")
        if self.quiet:
            return
        if isinstance(event, TrainStart):
            self.steps, self.epochs = event.steps_per_epoch, event.epochs
            self.monitor = event.monitor  # the metric that chooses the checkpoint: what "best" means
            if event.start_epoch:
                console.print(f"resuming after epoch {event.start_epoch} of {event.epochs}")
        elif isinstance(event, EpochStart):
            self.epoch_start = time.perf_counter()
            if self.live:
                self._start_bar(event.epoch)
        elif isinstance(event, BatchEnd) and self.progress is not None:
            rate = event.samples / max(time.perf_counter() - self.epoch_start, 1e-9)
            shown = f"{event.running_loss:.4f}"
            self.progress.update(self.task, completed=event.batch, loss=shown, rate=f"{rate:,.0f}")
        elif isinstance(event, EpochEnd):
            self._stop_bar()
            self._row(event.metrics, event.is_best)

    def _start_bar(self, epoch: int) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.progress = Progress(
            TextColumn(f"epoch {epoch}/{self.epochs}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}"),
            TextColumn("{task.fields[rate]} samples/s"),
            TimeRemainingColumn(),
            console=console,
            transient=True,
        )
        self.task = self.progress.add_task("train", total=self.steps, loss="–", rate="–")  # no batch yet: no number
        self.progress.start()

    def _stop_bar(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None

    def _row(self, m: dict[str, Any], best: bool) -> None:
        def pct(v: float | None) -> str:
            return "" if v is None else f"{v:.2%}"

        def num(v: float | None) -> str:
            return "" if v is None else f"{v:.4f}"

        if not self.table_header_done:
            lowest = "lowest" if "loss" in self.monitor else "highest"
            console.print(
                f"* marks the best epoch so far, by {lowest} {metric_words(self.monitor)}: checkpoint.npz keeps it",
                style="dim",
            )
            console.print(
                f"{'epoch':>7} {'train loss':>10} {'train acc':>9} {'val loss':>9} {'val acc':>8} {'lr':>9} {'sec':>6}",
                style="bold",
            )
            self.table_header_done = True
        diag = "  ".join(f"{k}={v:.3g}" for k, v in m.items() if k.startswith(("dead_", "saturated_", "grad_norm_")))
        line = (
            f"{m['epoch']:>3}/{self.epochs:<3} {num(m['train_loss']):>10} {pct(m['train_accuracy']):>9} "
            f"{num(m['val_loss']):>9} {pct(m['val_accuracy']):>8} {m['lr']:>9.2e} {m['seconds']:>6.2f}"
        )
        console.print(line + ("  [green]*[/]" if best else "") + (f"  [dim]{diag}[/]" if diag else ""))

    def close(self) -> None:
        """Stop any live display."""
        self._stop_bar()

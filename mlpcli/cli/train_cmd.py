"""`mlpcli train`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from mlpcli.cli import complete
from mlpcli.cli.config_cmd import SetOpt
from mlpcli.cli.render import (
    architecture_table,
    console,
    curves_table,
    err_console,
    metric_words,
    note,
    print_json,
    user_errors,
)

ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="Experiment YAML file, or a shipped config's name (mnist, quickstart, ...: mlpcli config list).",
        autocompletion=complete.configs,
    ),
]


def _header(p: Any, run_dir: Path) -> None:
    from mlpcli.lecture.trace import architecture

    cfg = p.cfg
    val = len(p.val) if p.val is not None else 0
    console.print(
        f"[bold]{cfg.name}[/]: {p.dataset.name} - {len(p.train):,} train, {val:,} validation, "
        f"{len(p.dataset.test_y):,} test images; normalize {cfg.data.normalize}"
        + (" (per pixel)" if cfg.data.per_pixel and cfg.data.normalize == "standardize" else "")
    )
    console.print(architecture_table(architecture(p.model.layer_sizes, cfg.model.activation, cfg.model.output)))
    o, s = cfg.optimizer, cfg.schedule
    extra = f", momentum {o.momentum}" if o.name in ("momentum", "nesterov") else ""
    console.print(
        f"loss {cfg.loss}; optimizer {o.name} lr {o.lr:g}{extra}, weight decay {o.weight_decay:g}; "
        f"schedule {s.name}"
        + (f" after {s.warmup_epochs:g} warm-up epochs" if s.warmup_epochs else "")
        + f"; {cfg.train.epochs} epochs of batch {cfg.train.batch_size}; seed {cfg.seed}"
    )
    m = cfg.model
    regular = [
        f"{k.replace('_', ' ')} {v:g}"
        for k, v in (("dropout", m.dropout), ("input_dropout", m.input_dropout), ("max_norm", m.max_norm))
        if v
    ]
    augment = [f"{k} {v:g}" for k, v in cfg.augment.model_dump().items() if v]
    if regular or augment:
        console.print("; ".join(filter(None, [", ".join(regular), "augment " + ", ".join(augment) if augment else ""])))
    console.print(f"run folder: {run_dir}", style="dim")


def _load_train_config(config: Path | None, resume: Path | None, overrides: list[str]) -> Any:
    """The config and, with --resume, the checked plan: everything is verified before anything is written."""
    from mlpcli.config import load_config
    from mlpcli.training.resume import plan_resume

    if resume is not None:
        plan = plan_resume(resume, config, overrides)
        if plan.note:
            note(plan.note)
        return plan.config, plan
    if config is None:
        note(
            "no --config given: training the built-in defaults, a 784-256-128-10 ReLU network on full MNIST "
            "(downloaded once, about 11 MB) for 20 epochs; 'mlpcli config list' shows the shipped configs "
            "(quickstart trains offline in seconds)"
        )
    return load_config(config, overrides), None


def train(
    config: ConfigOpt = None,
    set_: SetOpt = None,
    epochs: Annotated[int | None, typer.Option("--epochs", help="Override train.epochs.")] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Override seed.")] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Run folder, used only if absent or empty (default: new runs/<name>/<time>)."),
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="With --out: replace the run already in that folder.")
    ] = False,
    resume: Annotated[
        Path | None,
        typer.Option("--resume", help="Continue exactly from a last.npz.", autocompletion=complete.checkpoints),
    ] = None,
    offline: Annotated[bool, typer.Option("--offline", help="Never touch the network.")] = False,
    threads: Annotated[
        str | None,
        typer.Option("--threads", help="Threads: auto or a count (overrides train.threads); same weights either way."),
    ] = None,
    diagnostics: Annotated[
        bool, typer.Option("--diagnostics", help="Dead/saturated units and gradient norms.")
    ] = False,
    track: Annotated[
        list[str] | None,
        typer.Option("--track", help="Also log to tensorboard or mlflow (repeatable; adds to train.track)."),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON document with the results.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only the final summary.")] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", help="Also show the libraries' own log lines (MLflow's, ...).")
    ] = False,
) -> None:
    """Train a network from an experiment config and save its checkpoints."""
    from mlpcli.cli.data_cmd import download_progress
    from mlpcli.cli.render import terminate_as_interrupt
    from mlpcli.training.lifecycle import train_run
    from mlpcli.training.service import Interrupted

    overrides = list(set_ or [])
    if epochs is not None:
        overrides.append(f"train.epochs={epochs}")
    if seed is not None:
        overrides.append(f"seed={seed}")
    if diagnostics:
        overrides.append("train.diagnostics=true")
    if threads is not None:
        overrides.append(f"train.threads={threads}")
    quiet = quiet or json_out
    if verbose:
        import logging
        import os

        os.environ["MLFLOW_LOGGING_LEVEL"] = "INFO"
        logging.basicConfig(level=logging.INFO)
    from mlpcli.cli.train_render import TrainRenderer

    renderer = TrainRenderer(live=console.is_terminal and not quiet, quiet=quiet)
    with user_errors(json_out), terminate_as_interrupt():
        cfg, plan = _load_train_config(config, resume, overrides)
        try:
            with download_progress(not json_out) as download_callbacks:
                result = train_run(
                    cfg,
                    out=out,
                    overwrite=overwrite,
                    resume=plan,
                    track=track,
                    offline=offline,
                    callbacks=[renderer],
                    prepare_callbacks=[*download_callbacks, renderer],
                    on_prepared=None if quiet else _header,
                )
        except Interrupted as exc:
            renderer.close()
            if exc.last is not None and exc.trained:
                err_console.print(f"[yellow]interrupted[/] after all {exc.epoch} epochs, before the test report.")
                err_console.print(f"finish it with: mlpcli train --resume {exc.last}")
            elif exc.last is not None:
                err_console.print(
                    f"[yellow]interrupted[/] during epoch {exc.epoch + 1}; {exc.last} holds epoch {exc.epoch}."
                )
                err_console.print(f"resume with: mlpcli train --resume {exc.last}")
            else:
                err_console.print("[yellow]interrupted[/] before the first epoch ended; nothing was saved.")
            raise typer.Exit(143 if exc.signal == "SIGTERM" else 130) from None
        finally:
            renderer.close()
    _summary(result, json_out, quiet)


def _summary(result: Any, json_out: bool, quiet: bool) -> None:
    rows = result.history.rows
    doc = {
        "name": result.prepared.cfg.name,
        "test_accuracy": result.test.accuracy if result.test else None,
        "test_loss": result.test.loss if result.test else None,
        "best_epoch": result.history.best_epoch,
        "best_by": result.history.monitor,
        "epochs": len(rows),
        "stopped_early": result.history.stopped_early,
        "at_chance": result.at_chance,
        "seconds": result.seconds,
        "train_seconds": sum(r["seconds"] for r in rows),
        "checkpoint": str(result.checkpoint),
        "last": str(result.last),
        "run_dir": str(result.run_dir),
        "threads": result.threads,
        "step": result.step,
        "history": rows,
    }
    if json_out:
        print_json(doc)
        return
    if rows and not quiet:
        console.print(curves_table(rows, result.history.best_epoch, result.history.monitor))
    stop = " (stopped early)" if result.history.stopped_early else ""
    tested = (
        f"[bold]test accuracy {result.test.accuracy:.2%}[/], loss {result.test.loss:.4f} "
        if result.test
        else "no test split, so no test report "
    )
    best = f"best epoch {result.history.best_epoch}, by {metric_words(result.history.monitor)}{stop}"
    console.print(f"{tested}({best}); {doc['train_seconds']:.1f} s of training, {result.seconds:.1f} s in all")
    console.print(f"checkpoint: {result.checkpoint}  (resume from {result.last})")

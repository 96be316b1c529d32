"""The mlpcli command line: Typer commands that parse, call one service and render."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from mlpcli import __version__

app = typer.Typer(
    name="mlpcli",
    help="Train, evaluate and use multi-layer perceptrons on MNIST-style digits (a from-scratch NumPy network).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,  # --install-completion / --show-completion (bash, zsh, fish, PowerShell)
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"mlpcli {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", "-V", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    """Train, evaluate and use multi-layer perceptrons on MNIST-style digits."""


def _register() -> None:
    from mlpcli.cli import (
        data_cmd,
        eval_cmd,
        export_cmd,
        lecture_cmd,
        playground_cmd,
        runs_cmd,
        serve_cmd,
        sweep_cmd,
        train_cmd,
    )

    app.add_typer(data_cmd.app, name="data")
    app.add_typer(train_cmd.config_app, name="config")
    app.command("train")(train_cmd.train)
    app.command("eval")(eval_cmd.eval_command)
    app.command("predict")(eval_cmd.predict)
    app.command("plot")(train_cmd.plot)
    app.command("runs")(runs_cmd.runs)
    app.command("compare")(runs_cmd.compare)
    app.command("sweep")(sweep_cmd.sweep)
    app.command("export")(export_cmd.export)
    app.command("serve")(serve_cmd.serve)
    app.command("playground")(playground_cmd.playground)
    app.command("inspect")(lecture_cmd.inspect)
    app.command("gradcheck")(lecture_cmd.gradcheck)
    app.command("trace")(lecture_cmd.trace)


_register()


class _ClosedPipeEndsQuietly:
    """stdout that ends the program with exit code 0 when its reader went away (`mlpcli ... | head`)."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def _closed(self) -> None:
        import os

        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), self._stream.fileno())  # nothing more to say to anyone
        except OSError:
            pass
        raise SystemExit(0)

    def write(self, data: str) -> int:
        try:
            return self._stream.write(data)
        except BrokenPipeError:
            self._closed()
            return 0

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._closed()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def main() -> None:
    """Console-script entry point."""
    import sys

    sys.stdout = _ClosedPipeEndsQuietly(sys.stdout)  # type: ignore[assignment]
    app(prog_name="mlpcli")  # also under python -m mlpcli: one name for help and shell completion

"""The mlpcli command line's root: the Typer app, its commands registered, and the console entry point."""

from __future__ import annotations

import re
from typing import Annotated, Any

import typer

from mlpcli.version import __version__

SHELLS = ("bash", "zsh", "fish", "powershell", "pwsh")


class _Group(typer.core.TyperGroup):
    """The root command group; its help says flags are flags and arguments by their names (see _tidy)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _tidy(self)


def _tidy(command: Any) -> None:
    """Help text as a reader expects it, whatever the Typer version: a flag shows no value type (Typer 0.29
    prints `<bool>`), an argument shows its name in capitals (not `{run_dir}`), a repeatable value its own
    type (not `<list[str]>`)."""
    for param in command.params:
        if getattr(param, "is_flag", False):
            param.metavar = ""
        elif param.param_type_name == "argument" and param.metavar is None:
            many = "..." if param.nargs != 1 else ""
            param.metavar = (param.name or "").upper() + many
            usage = param.metavar if param.required else f"[{param.metavar}]"
            param._usage_display_name = lambda usage=usage: usage  # Typer >= 0.29 wraps a name in braces
        if hasattr(param, "display_type_rich") and not getattr(
            param, "is_flag", False
        ):  # <list[Path]> -> <path>, as click says it
            shown = param.display_type_rich
            param.display_type_rich = lambda ctx, shown=shown: re.sub(
                r"list\[(.*?)\]", lambda m: m.group(1).lower(), shown(ctx) or ""
            )
    help_option = command.get_help_option

    def get_help_option(ctx: Any) -> Any:
        option = help_option(ctx)
        if option is not None:
            option.metavar = ""
        return option

    command.get_help_option = get_help_option
    for sub in getattr(command, "commands", {}).values():
        _tidy(sub)


app = typer.Typer(
    name="mlpcli",
    cls=_Group,
    help="Train, evaluate and use multi-layer perceptrons on MNIST-style digits (a from-scratch NumPy network).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,  # ours below take the shell's name: --show-completion zsh
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"mlpcli {__version__}")
        raise typer.Exit()


def _completion(ctx: typer.Context, param: Any, value: str | None) -> None:
    """--show-completion / --install-completion SHELL: Typer's script for that shell (auto: the one running)."""
    from typer.completion import install_callback, show_callback

    if value is None or ctx.resilient_parsing:
        return
    if value != "auto" and value not in SHELLS:
        raise typer.BadParameter(f"{value!r} is not a shell mlpcli completes; choose one of {', '.join(SHELLS)}")
    callback = show_callback if param.name == "show_completion" else install_callback
    callback(ctx, param, True if value == "auto" else value)


def completion_argv(argv: list[str]) -> list[str]:
    """Command-line arguments with the completion options' optional shell joined on: `--show-completion zsh`
    becomes `--show-completion=zsh` (a word that is no shell is then refused), a bare `--show-completion`
    becomes `--show-completion=auto`."""
    out = list(argv)
    for flag in ("--show-completion", "--install-completion"):
        if flag in out:
            i = out.index(flag)
            shell = out[i + 1] if i + 1 < len(out) and not out[i + 1].startswith("-") else None
            out[i : i + (2 if shell else 1)] = [f"{flag}={shell or 'auto'}"]
    return out


def _completion_option(text: str) -> Any:
    """--install-completion / --show-completion: an eager option taking an optional shell name."""
    return typer.Option(
        metavar="[SHELL]",
        callback=_completion,
        is_eager=True,
        expose_value=False,
        help=f"{text} Shells: {', '.join(SHELLS)}.",
    )


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", "-V", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
    install_completion: Annotated[
        str | None, _completion_option("Install shell completion (default: the shell running mlpcli).")
    ] = None,
    show_completion: Annotated[
        str | None, _completion_option("Print the completion script for SHELL (default: the running shell).")
    ] = None,
) -> None:
    """Train, evaluate and use multi-layer perceptrons on MNIST-style digits."""


def _register() -> None:
    from mlpcli.cli import (
        config_cmd,
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
    app.add_typer(config_cmd.config_app, name="config")
    app.command("train")(train_cmd.train)
    app.command("eval")(eval_cmd.eval_command)
    app.command("predict")(eval_cmd.predict)
    app.command("plot")(runs_cmd.plot)
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
    from typer.completion import completion_init

    completion_init()  # Typer's shell classes, which its own --install-completion would have registered
    app(args=completion_argv(sys.argv[1:]), prog_name="mlpcli")  # one name for help and completion

"""The CLI reference (docs/CLI.md), generated from the Typer app: every command with its help, arguments and
options, so the documentation can never drift from the code (a test compares the two)."""

from __future__ import annotations

from typing import Any

import typer

HEADER = """# CLI reference

Generated from the command line's own definitions (`mlpcli/cli/`) by `python scripts/docs.py`; a test holds
this file equal to what the code says. `mlpcli COMMAND --help` prints the same for one command.
"""


def _clean(text: str | None) -> str:
    return " ".join((text or "").split()).replace("|", "\\|")


def _kind(param: Any) -> str:
    """A parameter's value type in words (Typer >= 0.29 keeps the annotation; older Typer, click's type)."""
    descriptor = getattr(param, "type_descriptor", None)
    if descriptor is not None:
        from mlpcli.config_reference import type_name

        text = type_name(descriptor.annotation)
        return _clean(text.removeprefix("list of ").removesuffix(" or null"))
    choices = getattr(param.type, "choices", None)
    return " \\| ".join(map(str, choices)) if choices else _clean(param.type.name)


def _param_row(param: Any) -> str:
    """One row: a parameter of a command (Typer's own click: read by duck typing, whatever the version)."""
    if param.param_type_name == "argument":
        name = f"`{(param.name or '').upper()}`" + ("..." if param.nargs != 1 else "")
        kind = "argument" + ("" if param.required else ", optional")
        return f"| {name} | {kind} | | {_clean(getattr(param, 'help', ''))} |"
    names = ", ".join(f"`{o}`" for o in [*param.opts, *param.secondary_opts])
    if param.is_flag:
        kind = "flag"
    else:
        kind = _kind(param)
        kind += ", repeatable" if param.multiple else ""
    default = param.default
    shown = "" if default in (None, False, ()) or callable(default) else f"`{default}`"
    return f"| {names} | {kind} | {shown} | {_clean(getattr(param, 'help', ''))} |"


def _command(path: str, command: Any) -> list[str]:
    lines = [f"## `{path}`", "", _clean(command.help).split("\b")[0], ""]
    params = [p for p in command.params if not getattr(p, "hidden", False) and p.name != "help"]
    if params:
        lines += ["| argument or option | kind | default | what it does |", "|---|---|---|---|"]
        lines += [_param_row(p) for p in params]
        lines.append("")
    if hasattr(command, "commands"):
        for name in sorted(command.commands):
            sub = command.commands[name]
            if not getattr(sub, "hidden", False):
                lines += _command(f"{path} {name}", sub)
    return lines


def cli_reference(app: typer.Typer | None = None) -> str:
    """docs/CLI.md's text, for the mlpcli app (or another Typer app)."""
    if app is None:
        from mlpcli.cli.main import app as main_app

        app = main_app
    root: Any = typer.main.get_command(app)
    lines = [HEADER]
    for name in sorted(root.commands):
        command = root.commands[name]
        if not getattr(command, "hidden", False):
            lines += _command(f"mlpcli {name}", command)
    return "\n".join(lines).rstrip() + "\n"

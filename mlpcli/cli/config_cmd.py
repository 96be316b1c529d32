"""`mlpcli config list | show | schema`: the shipped configs, a resolved config, the config's JSON Schema."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mlpcli.cli.render import console, print_json, user_errors

config_app = typer.Typer(
    help="The shipped configs, a resolved config, or the config's JSON Schema.", no_args_is_help=True
)

SetOpt = Annotated[list[str] | None, typer.Option("--set", help="Override a key: --set optimizer.lr=0.1 (repeatable).")]


@config_app.command("show")
def config_show(
    config: Annotated[
        Path | None,
        typer.Argument(help="Experiment YAML file or a shipped config's name (default: the built-in defaults)."),
    ] = None,
    set_: SetOpt = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """Print the resolved config with every default filled in (mlpcli config show mnist > my.yaml starts your own)."""
    from mlpcli.config import dump_config, load_config

    with user_errors(json_out):
        cfg = load_config(config, list(set_ or []))
        if json_out:
            print_json(cfg.model_dump(mode="json"))
        else:
            typer.echo(dump_config(cfg), nl=False)


@config_app.command("list")
def config_list(json_out: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False) -> None:
    """The configs shipped with mlpcli: give a name to --config, or copy one with config show NAME > my.yaml."""
    from mlpcli.config import SHIPPED, shipped_configs

    rows = []
    for rel in shipped_configs():
        lines = (SHIPPED / rel).read_text(encoding="utf-8").splitlines()
        about = next((ln.lstrip("# ").strip() for ln in lines if ln.startswith("#") and len(ln) > 2), "")
        rows.append({"name": rel.with_suffix("").as_posix(), "about": about, "path": str(SHIPPED / rel)})
    if json_out:
        print_json(rows)
        return
    from rich.table import Table

    table = Table(show_edge=False)
    table.add_column("name", no_wrap=True)
    table.add_column("about", overflow="fold")
    for row in rows:
        table.add_row(row["name"], row["about"])
    console.print(table)
    console.print(f"(in {SHIPPED})", style="dim")


@config_app.command("schema")
def config_schema() -> None:
    """Print the config's JSON Schema (for editors' YAML language servers)."""
    from mlpcli.config import json_schema

    print_json(json_schema())

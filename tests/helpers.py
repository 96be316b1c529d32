"""What many test files share: the one CLI helper."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner, Result

from mlpcli.cli import app

CONFIGS = Path(__file__).parent.parent / "configs"


def invoke(*args: str) -> Result:
    """Run `mlpcli ARGS...` in this process and return typer's Result (exit_code, stdout, stderr)."""
    return CliRunner().invoke(app, [str(a) for a in args])

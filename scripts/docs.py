"""Write the generated references: docs/CLI.md from the Typer app and docs/CONFIG.md from the config schema.

python scripts/docs.py          # rewrite both (tests/test_docs.py fails while either is stale)
"""

from __future__ import annotations

from pathlib import Path

from mlpcli.cli.reference import cli_reference
from mlpcli.config_reference import config_reference

DOCS = Path(__file__).resolve().parent.parent / "docs"


def main() -> None:
    """Write both files."""
    for name, text in (("CLI.md", cli_reference()), ("CONFIG.md", config_reference())):
        (DOCS / name).write_text(text, encoding="utf-8")
        print(f"wrote {DOCS / name}")


if __name__ == "__main__":
    main()

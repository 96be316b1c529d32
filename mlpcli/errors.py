"""The errors mlpcli reports to its users: one clear line each, exit code 1."""

from __future__ import annotations

from pathlib import Path


class MlpcliError(Exception):
    """An error the user can fix; its message is shown as one line, without a traceback."""


class ConfigError(MlpcliError):
    """A config file or override is missing, malformed or invalid."""


class DataError(MlpcliError):
    """A dataset file is missing, corrupt, or could not be fetched."""


class CheckpointError(MlpcliError):
    """A checkpoint cannot be read or does not match the documented format."""


class ImageError(MlpcliError):
    """An image cannot be read or holds no digit."""


class Terminated(KeyboardInterrupt):
    """SIGTERM (a service manager, `timeout`, a cluster scheduler): ends work like Ctrl-C does."""


class TrainingDiverged(MlpcliError):
    """The loss became NaN or infinite."""


def install_hint(extra: str) -> str:
    """The command that installs an optional extra: the path form inside a clone of mlpcli, else the index form."""
    try:
        here = Path.cwd() / "pyproject.toml"
        in_clone = here.is_file() and 'name = "mlpcli"' in here.read_text(encoding="utf-8", errors="replace")[:4096]
    except OSError:
        in_clone = False
    return f"pip install '.[{extra}]'" if in_clone else f"pip install 'mlpcli[{extra}]'"


class MissingExtra(MlpcliError):
    """An optional library is not installed: one line naming the install that brings it."""

    def __init__(self, what: str, extra: str) -> None:
        super().__init__(f"{what}: {install_hint(extra)}")

"""Atomic file writes: a temporary file in the same folder, then os.replace.

A crash or kill at any moment leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_open(path: Path | str, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file beside path for writing; on success fsync and rename it onto path."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_bytes(path: Path | str, data: bytes) -> None:
    """Atomically replace path's content with data."""
    with atomic_open(path, "wb") as fh:
        fh.write(data)


def write_text(path: Path | str, text: str) -> None:
    """Atomically replace path's content with text (UTF-8)."""
    write_bytes(path, text.encode("utf-8"))


@contextmanager
def deferred_interrupt() -> Iterator[None]:
    """Hold Ctrl-C (SIGINT) and SIGTERM until the block ends, so a write in progress is never cut short."""
    import signal
    import threading

    from mlpcli.errors import Terminated

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = {s: signal.signal(s, lambda signum, frame: received.append(signum)) for s in _stop_signals()}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        if received:
            raise Terminated if received[0] == signal.SIGTERM else KeyboardInterrupt


def _stop_signals() -> tuple[int, ...]:  # noqa: N802 - a constant computed late (signal is imported lazily)
    import signal

    return (signal.SIGINT, signal.SIGTERM) if hasattr(signal, "SIGTERM") else (signal.SIGINT,)


def remove_stale_temps(folder: Path) -> list[Path]:
    """Delete temporary files that a killed process left by atomic_open in folder; returns them."""
    stale = [p for p in folder.glob(".*.tmp") if p.is_file()]
    for p in stale:
        p.unlink(missing_ok=True)
    return stale

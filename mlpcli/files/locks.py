"""OS file locks for folders several processes share (run folders, the data cache).

A lock is flock() on a file opened without following symlinks (O_NOFOLLOW), so a planted
symlink can neither be truncated nor redirect the write: it is refused. The kernel
releases the lock when its process ends, however it ends. The file holds the holder's pid,
so a refusal can name it.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from mlpcli.errors import MlpcliError

NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


class Locked(MlpcliError):
    """Another live process holds the lock."""

    def __init__(self, message: str, holder: str) -> None:
        super().__init__(message)
        self.holder = holder


def open_nofollow(path: Path, flags: int = os.O_RDWR | os.O_CREAT) -> int:
    """os.open that refuses a symlink at path (OSError ELOOP) instead of writing through it."""
    return os.open(path, flags | NOFOLLOW, 0o644)


def _flock(fd: int, exclusive: bool = True, block: bool = False) -> bool:
    try:
        import fcntl
    except ImportError:  # Windows: no flock; the lock is advisory there anyway
        return True
    flags = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
    try:
        fcntl.flock(fd, flags if block else flags | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


def _unflock(fd: int) -> None:
    try:
        import fcntl
    except ImportError:
        return
    fcntl.flock(fd, fcntl.LOCK_UN)


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists (on this machine)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def _read_holder(fd: int) -> str:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        return os.read(fd, 64).decode("ascii", "replace").strip() or "unknown"
    except OSError:
        return "unknown"


class FileLock:
    """An exclusive lock on `path`, holding the owner's pid; a context manager.

    acquire(wait=False) fails at once with Locked naming the holder; wait=True waits for it.
    A holder whose pid is dead is a reader peeking at the lock (see is_held): the writer
    retries for up to `patience` seconds before it reports the lock as taken.
    """

    def __init__(self, path: Path, what: str = "") -> None:
        self.path = Path(path)
        self.what = what or str(self.path.parent)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """Whether this object holds the lock now."""
        return self._fd is not None

    def acquire(self, wait: bool = False, patience: float = 2.0) -> FileLock:
        """Take the lock (waiting for it when wait) or raise Locked naming the holder."""
        try:
            fd = open_nofollow(self.path)
        except OSError as exc:
            why = "it is a symlink, refused" if exc.errno == 40 else (exc.strerror or str(exc))
            raise MlpcliError(f"cannot lock {self.path}: {why}") from None
        deadline = time.monotonic() + patience
        while not _flock(fd, block=wait):
            holder = _read_holder(fd)
            gone = not holder.isdigit() or not pid_alive(int(holder))  # no live writer named: a scan peeks
            if gone and time.monotonic() < deadline:
                time.sleep(0.01)
                continue
            os.close(fd)
            raise Locked(f"{self.what} is being written by another process (pid {holder}); wait for it to end", holder)
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        return self

    def release(self) -> None:
        """Give the lock back (the kernel does it anyway when the process ends)."""
        if self._fd is not None:
            try:
                os.ftruncate(self._fd, 0)  # a free lock names nobody
            except OSError:
                pass
            _unflock(self._fd)
            os.close(self._fd)
            self._fd = None

    def __del__(self) -> None:
        self.release()

    def __enter__(self) -> FileLock:
        return self if self._fd is not None else self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def is_held(path: Path) -> bool:
    """True when a live process holds the lock at path. Never blocks a writer for long: a lock file
    naming a dead pid is free without touching the lock, and otherwise the check is one try."""
    try:
        fd = os.open(path, os.O_RDONLY | NOFOLLOW)
    except OSError:
        return False
    try:
        holder = _read_holder(fd)
        if not holder.isdigit() or not pid_alive(int(holder)):  # a live writer always names itself
            return False
        if _flock(fd, exclusive=False):
            _unflock(fd)
            return False
        return True
    finally:
        os.close(fd)

"""Run folders: a fresh folder per run, a lock held for the life of the writer, and the run's status on disk.

    runs/<name>/<YYYYmmdd-HHMMSS>[-N]/   config.yaml, metrics.csv, checkpoint.npz, last.npz, status.json, .lock

A folder is created with os.mkdir, which fails when it exists, so two runs started in the
same second get two folders. The lock is an OS file lock (flock) on `.lock`: the kernel
releases it when the process ends, however it ends, so a killed run never blocks the next.
status.json is replaced atomically at every change; a run whose status says "running" but
whose lock is free was killed or crashed.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

from mlpcli.files.atomic import write_text
from mlpcli.errors import MlpcliError

LOCK_NAME = ".lock"
STATUS_NAME = "status.json"
RUN_FILES = ("config.yaml", "metrics.csv", "checkpoint.npz", "last.npz", STATUS_NAME, "curves.png")
STATES = ("running", "finished", "interrupted", "diverged", "failed", "pruned")


class RunLocked(MlpcliError):
    """Another process is writing the run folder."""


def now_iso() -> str:
    """The current UTC time, ISO 8601, to the second."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def new_run_dir(root: Path, name: str, when: datetime | None = None) -> Path:
    """Create and return a fresh folder root/name/<timestamp>[-N]; never an existing one."""
    parent = root / name
    stamp = (when or datetime.now()).strftime("%Y%m%d-%H%M%S")
    try:
        parent.mkdir(parents=True, exist_ok=True)
        for n in range(1, 10_000):
            candidate = parent / (stamp if n == 1 else f"{stamp}-{n}")
            try:
                candidate.mkdir()
                return candidate
            except FileExistsError:
                continue
    except OSError as exc:
        raise MlpcliError(f"cannot create a run folder in {parent}: {exc.strerror or exc}") from None
    raise MlpcliError(f"{parent}: could not find a free run folder name for {stamp}")


class RunLock:
    """An exclusive OS lock on folder/.lock, holding the writer's process id; released when the process ends."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.path = folder / LOCK_NAME
        self._fh: IO[str] | None = None

    def acquire(self) -> RunLock:
        """Take the lock now or raise RunLocked naming the holder."""
        try:
            fh = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 - held open for the life of the run
        except OSError as exc:
            raise MlpcliError(f"cannot write to the output folder {self.folder}: {exc.strerror or exc}") from None
        if not _try_lock(fh):
            fh.seek(0)
            holder = fh.read().strip() or "unknown"
            fh.close()
            raise RunLocked(f"{self.folder} is being written by another process (pid {holder}); wait for it to end")
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        self._fh = fh
        return self

    def release(self) -> None:
        """Give the lock back (the kernel does it anyway when the process ends)."""
        if self._fh is not None:
            _unlock(self._fh)
            self._fh.close()
            self._fh = None

    def __enter__(self) -> RunLock:
        return self.acquire() if self._fh is None else self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _try_lock(fh: IO[str]) -> bool:
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt

        try:
            fh.seek(0)
            msvcrt.locking(fh.fileno(), msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]
            return True
        except OSError:
            return False
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


def _unlock(fh: IO[str]) -> None:
    try:
        import fcntl
    except ImportError:
        import msvcrt

        fh.seek(0)
        msvcrt.locking(fh.fileno(), msvcrt.LK_UNLCK, 1)  # type: ignore[attr-defined]
        return
    fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def is_locked(folder: Path) -> bool:
    """True when a live process holds folder's lock."""
    path = folder / LOCK_NAME
    if not path.exists():
        return False
    try:
        with open(path, "a+", encoding="utf-8") as fh:
            if _try_lock(fh):
                _unlock(fh)
                return False
            return True
    except OSError:
        return False


def used_files(folder: Path) -> list[str]:
    """What folder holds besides the lock file (empty when the folder is absent or empty)."""
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if p.name != LOCK_NAME)


def clear_run_files(folder: Path) -> None:
    """Remove a previous run's files from folder (for --overwrite); other files stay."""
    for name in RUN_FILES:
        (folder / name).unlink(missing_ok=True)


def discard_empty_run_dir(folder: Path) -> None:
    """Remove a run folder that holds nothing but its lock (a run that never started)."""
    if not used_files(folder):
        (folder / LOCK_NAME).unlink(missing_ok=True)
        try:
            folder.rmdir()
        except OSError:
            pass


def write_status(folder: Path, status: dict[str, Any]) -> None:
    """Replace folder/status.json atomically."""
    write_text(folder / STATUS_NAME, json.dumps(status, indent=2, allow_nan=False, default=str) + "\n")


def read_status(folder: Path) -> dict[str, Any] | None:
    """folder/status.json as a dict, or None when absent or unreadable; a dead 'running' run reads 'killed'."""
    try:
        status = json.loads((folder / STATUS_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(status, dict):
        return None
    if status.get("status") == "running" and not is_locked(folder):
        status["status"] = "killed"  # its process ended without saying how: killed or crashed
    return status


@dataclass
class RunInfo:
    """One row of `mlpcli runs`."""

    name: str
    folder: str
    started: str | None
    status: str
    epochs_done: int | None
    epochs_planned: int | None
    best_val_accuracy: float | None
    test_accuracy: float | None
    train_seconds: float | None
    sweep: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The row as a JSON-ready dict."""
        return dict(self.__dict__)


def list_runs(root: Path) -> list[RunInfo]:
    """Every run folder under root (any depth) that has a status.json, newest first."""
    rows = []
    if not root.is_dir():
        return rows
    for status_file in root.rglob(STATUS_NAME):
        folder = status_file.parent
        s = read_status(folder)
        if s is None:
            continue
        rows.append(RunInfo(
            name=str(s.get("name", folder.parent.name)), folder=str(folder),
            started=s["started"] if isinstance(s.get("started"), str) else None,
            status=str(s.get("status", "unknown")), epochs_done=_num(s.get("epochs_done"), int),
            epochs_planned=_num(s.get("epochs_planned"), int), best_val_accuracy=_num(s.get("best_val_accuracy")),
            test_accuracy=_num(s.get("test_accuracy")), train_seconds=_num(s.get("train_seconds")),
            sweep=s.get("sweep") if isinstance(s.get("sweep"), str) else None,
        ))  # fmt: skip
    rows.sort(key=lambda r: (r.started or "", r.folder), reverse=True)
    return rows


def _num(value: Any, kind: type = float) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return kind(value)


def latest_finished_checkpoint(root: Path) -> Path | None:
    """The best checkpoint of the newest finished run under root, if any; for folders written before
    runs had a status, the newest root/*/checkpoint.npz."""
    for run in list_runs(root):
        ckpt = Path(run.folder) / "checkpoint.npz"
        if run.status == "finished" and ckpt.is_file():
            return ckpt
    legacy = [p for p in root.glob("*/checkpoint.npz") if p.is_file() and not (p.parent / STATUS_NAME).exists()]
    return max(legacy, key=lambda p: p.stat().st_mtime) if legacy else None


class RunFolderUsed(MlpcliError):
    """The chosen output folder already holds a run."""

    def __init__(self, folder: Path, files: list[str]) -> None:
        shown = ", ".join(files[:4]) + (", ..." if len(files) > 4 else "")
        super().__init__(f"{folder} already holds files ({shown})")
        self.folder, self.files = folder, files


def claim_run_dir(
    name: str, *, out: Path | None = None, resume_from: Path | None = None, overwrite: bool = False,
    root: Path = Path("runs"),
) -> RunLock:  # fmt: skip
    """Choose the run's folder and lock it: the resumed run's folder, `out` when it is absent or empty
    (or `overwrite`), else a fresh root/name/<timestamp>. Raises RunLocked or RunFolderUsed."""
    if resume_from is not None:
        return RunLock(resume_from.parent).acquire()
    if out is None:
        return RunLock(new_run_dir(root, name)).acquire()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MlpcliError(f"cannot write to the output folder {out}: {exc.strerror or exc}") from None
    lock = RunLock(out).acquire()  # before looking inside: of two writers, exactly one gets this far
    files = used_files(out)
    if files and not overwrite:
        lock.release()
        raise RunFolderUsed(out, files)
    if files:
        clear_run_files(out)
    return lock

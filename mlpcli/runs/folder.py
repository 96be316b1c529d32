"""The run folder has one owner: RunFolder knows every path in it and reads and writes its files.

    runs/<name>/<YYYYmmdd-HHMMSS>[-N]/   config.yaml, metrics.csv, checkpoint.npz, last.npz, status.json, .lock

A folder is created with os.mkdir, which fails when it exists, so two runs started in the
same second get two folders. The lock is an OS file lock (flock) on `.lock`, opened without
following symlinks: the kernel releases it when the process ends, however it ends, so a
killed run never blocks the next. status.json (RunStatus) is replaced atomically at every
change; a run whose status says "running" but whose lock is free was killed or crashed.
metrics.csv has one row per epoch: METRIC_COLUMNS, then any diagnostics columns.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from mlpcli.config import folder_name_problem
from mlpcli.errors import ConfigError, MlpcliError
from mlpcli.files.atomic import write_text
from mlpcli.files.locks import FileLock, Locked, is_held

STATES = ("running", "finished", "interrupted", "diverged", "failed", "pruned", "superseded")
METRIC_COLUMNS = ("epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr", "seconds")


class RunLocked(Locked):
    """Another process is writing the run folder."""


def now_iso() -> str:
    """The current UTC time, ISO 8601, to the second."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def check_name(name: str, what: str = "name") -> str:
    """A run or sweep name must be one path component; ConfigError saying why otherwise."""
    problem = folder_name_problem(name)
    if problem:
        raise ConfigError(f"{what}: {problem}")
    return name


def _num(value: Any, kind: type = float) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return kind(value)


@dataclass
class RunStatus:
    """status.json: the run's state, written by the run and read by `mlpcli runs`, default models and sweeps.

    status: running, finished, interrupted, diverged, failed or pruned ("killed" when read back
    from a dead run). resumes: one entry per resume, {"at", "after_epoch", "changes": {key: [old, new]}}.
    at_chance: the finished run's accuracy is no better than guessing the most common class.
    best_epoch is the epoch checkpoint.npz holds; best_val_accuracy is that epoch's validation accuracy.
    """

    name: str = ""
    status: str = "running"
    pid: int | None = None
    started: str | None = None
    ended: str | None = None
    epochs_planned: int | None = None
    epochs_done: int | None = None
    best_epoch: int | None = None
    best_val_accuracy: float | None = None
    test_accuracy: float | None = None
    test_loss: float | None = None
    train_seconds: float | None = None
    error: str | None = None
    sweep: str | None = None
    trial: int | None = None
    at_chance: bool = False
    resumes: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)  # fields of newer or older versions, kept as they were

    def as_dict(self) -> dict[str, Any]:
        """The JSON document (None fields kept, extra fields merged)."""
        doc = {k: v for k, v in asdict(self).items() if k != "extra"}
        return {**self.extra, **doc}

    def row(self, folder: Path) -> dict[str, Any]:
        """One element of `mlpcli runs --json`: name, folder, started, status, epochs, accuracies, time, sweep."""
        keys = ("started", "status", "epochs_done", "epochs_planned", "best_val_accuracy", "test_accuracy")
        return {
            "name": self.name or folder.parent.name,
            "folder": str(folder),
            **{k: getattr(self, k) for k in keys},
            "train_seconds": self.train_seconds,
            "sweep": self.sweep,
        }

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> RunStatus:
        """Parse a status.json document; wrong types become None rather than errors."""
        known = {f.name for f in fields(cls)} - {"extra"}
        s = cls(extra={k: v for k, v in doc.items() if k not in known})
        s.name = str(doc.get("name") or "")
        s.status = str(doc.get("status") or "unknown")
        s.pid = _num(doc.get("pid"), int)
        s.started = doc["started"] if isinstance(doc.get("started"), str) else None
        s.ended = doc["ended"] if isinstance(doc.get("ended"), str) else None
        for key in ("epochs_planned", "epochs_done", "best_epoch", "trial"):
            setattr(s, key, _num(doc.get(key), int))
        for key in ("best_val_accuracy", "test_accuracy", "test_loss", "train_seconds"):
            setattr(s, key, _num(doc.get(key)))
        s.error = str(doc["error"]) if doc.get("error") is not None else None
        s.sweep = doc["sweep"] if isinstance(doc.get("sweep"), str) else None
        s.at_chance = doc.get("at_chance") is True
        resumes = doc.get("resumes")
        s.resumes = [r for r in resumes if isinstance(r, dict)] if isinstance(resumes, list) else []
        return s


@dataclass(frozen=True)
class RunFolder:
    """One run folder: every path in it, its lock, status.json, metrics.csv and config.yaml."""

    path: Path

    CONFIG = "config.yaml"
    METRICS = "metrics.csv"
    BEST = "checkpoint.npz"
    LAST = "last.npz"
    STATUS = "status.json"
    LOCK = ".lock"
    CURVES = "curves.png"
    # what a sweep trial ships back from a remote worker; what --overwrite replaces
    RESULT_FILES = (CONFIG, METRICS, BEST, LAST, STATUS)
    RUN_FILES = (*RESULT_FILES, CURVES)

    @property
    def config(self) -> Path:
        """config.yaml: the resolved config, every default filled in."""
        return self.path / self.CONFIG

    @property
    def metrics(self) -> Path:
        """metrics.csv: one row per epoch."""
        return self.path / self.METRICS

    @property
    def checkpoint(self) -> Path:
        """checkpoint.npz: the best epoch's weights (what eval, predict, serve and export use)."""
        return self.path / self.BEST

    @property
    def last(self) -> Path:
        """last.npz: the last epoch's weights and everything needed to resume exactly."""
        return self.path / self.LAST

    @property
    def status_file(self) -> Path:
        """status.json."""
        return self.path / self.STATUS

    @property
    def curves(self) -> Path:
        """curves.png, written by `mlpcli plot`."""
        return self.path / self.CURVES

    def lock(self) -> FileLock:
        """The folder's writer lock (a context manager); acquire() raises RunLocked naming the holder."""
        return _RunFileLock(self.path / self.LOCK, str(self.path))

    def is_locked(self) -> bool:
        """True when a live process is writing this folder."""
        return is_held(self.path / self.LOCK)

    def is_run(self) -> bool:
        """Whether mlpcli made this folder: it has a status.json that mlpcli can read."""
        return self.read_status(live=False) is not None

    # ---- status.json ---------------------------------------------------------------

    def write_status(self, status: RunStatus) -> None:
        """Replace status.json atomically."""
        write_text(self.status_file, json.dumps(status.as_dict(), indent=2, allow_nan=False, default=str) + "\n")

    def read_status(self, live: bool = True) -> RunStatus | None:
        """status.json, or None when absent or unreadable; with live, a dead 'running' run reads 'killed'."""
        try:
            if self.status_file.is_symlink() or not self.status_file.is_file():
                return None
            with self.status_file.open(encoding="utf-8") as fh:
                doc = json.loads(fh.read(1 << 20))
        except (OSError, ValueError):
            return None
        if not isinstance(doc, dict):
            return None
        status = RunStatus.from_dict(doc)
        if live and status.status == "running" and not self.is_locked():
            status.status = "killed"  # its process ended without saying how: killed or crashed
        return status

    # ---- metrics.csv ---------------------------------------------------------------

    def write_metrics(self, rows: list[dict[str, Any]]) -> None:
        """Replace metrics.csv: the standard columns, then any diagnostics columns."""
        columns = list(METRIC_COLUMNS) + sorted({k for r in rows for k in r} - set(METRIC_COLUMNS))
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        for r in rows:
            writer.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in columns})
        write_text(self.metrics, buf.getvalue())

    def read_metrics(self) -> list[dict[str, Any]]:
        """metrics.csv rows with numbers parsed (empty cells become None); MlpcliError when unreadable."""
        return read_metrics(self.metrics)

    def write_config(self, text: str) -> None:
        """Write config.yaml (the resolved config as YAML text)."""
        write_text(self.config, text)

    def used_files(self) -> list[str]:
        """What the folder holds besides the lock file (empty when the folder is absent or empty)."""
        if not self.path.is_dir():
            return []
        return sorted(p.name for p in self.path.iterdir() if p.name != self.LOCK)

    def clear(self) -> None:
        """Remove a previous run's files (for --overwrite); other files stay."""
        for name in self.RUN_FILES:
            (self.path / name).unlink(missing_ok=True)

    def discard_if_empty(self) -> None:
        """Remove the folder when it holds nothing but its lock (a run that never started)."""
        if not self.used_files():
            (self.path / self.LOCK).unlink(missing_ok=True)
            try:
                self.path.rmdir()
            except OSError:
                pass


class _RunFileLock(FileLock):
    def acquire(self, wait: bool = False, patience: float = 2.0) -> FileLock:
        try:
            return super().acquire(wait, patience)
        except Locked as exc:
            raise RunLocked(str(exc), exc.holder) from None


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """Rows of a metrics.csv file with numbers parsed (empty cells become None)."""
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    except FileNotFoundError:
        raise MlpcliError(f"{path}: no such file (is the folder a run folder written by mlpcli train?)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise MlpcliError(f"{path}: cannot read ({getattr(exc, 'strerror', None) or exc})") from None
    except csv.Error as exc:
        raise MlpcliError(f"{path}: not a metrics file written by mlpcli ({exc})") from None
    try:
        return [{k: (float(v) if v not in ("", None) else None) for k, v in r.items()} for r in rows]
    except (ValueError, TypeError) as exc:
        raise MlpcliError(f"{path}: not a metrics file written by mlpcli ({exc})") from None


def new_run_dir(root: Path, name: str, when: datetime | None = None) -> Path:
    """Create and return a fresh folder root/name/<timestamp>[-N]; never an existing one."""
    parent = root / check_name(name)
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


def list_runs(root: Path) -> list[tuple[RunFolder, RunStatus]]:
    """Every run folder under root (any depth) with its status, newest first."""
    found: list[tuple[RunFolder, RunStatus]] = []
    if not root.is_dir():
        return found
    for status_file in root.rglob(RunFolder.STATUS):
        run = RunFolder(status_file.parent)
        s = run.read_status()
        if s is not None:
            found.append((run, s))
    found.sort(key=lambda item: (item[1].started or "", str(item[0].path)), reverse=True)
    return found


@dataclass(frozen=True)
class DefaultModel:
    """The checkpoint commands use when none is given, and why."""

    checkpoint: Path
    run: RunFolder | None
    status: RunStatus | None

    def describe(self) -> str:
        """'runs/mnist/2026... (mnist, test accuracy 98.1 %)' for the "using ..." line."""
        if self.status is None:
            return f"{self.checkpoint} (the newest checkpoint here)"
        acc = self.status.test_accuracy
        tested = f", test accuracy {acc:.1%}" if acc is not None else ", no test split"
        return f"{self.checkpoint} ({self.status.name or 'run'}{tested})"


def default_model(root: Path) -> DefaultModel | None:
    """The newest finished run under root that is not a sweep trial and did not end at chance.

    For folders written before runs had a status, the newest root/*/checkpoint.npz.
    """
    for run, s in list_runs(root):
        if s.status == "finished" and s.sweep is None and not s.at_chance and run.checkpoint.is_file():
            return DefaultModel(run.checkpoint, run, s)
    legacy = [
        p for p in root.glob(f"*/{RunFolder.BEST}") if p.is_file() and not (p.parent / RunFolder.STATUS).exists()
    ]
    if legacy:
        return DefaultModel(max(legacy, key=lambda p: p.stat().st_mtime), None, None)
    return None


def checkpoint_in(path: Path) -> Path:
    """A run folder given where a checkpoint is expected means its checkpoint.npz; a file stays itself."""
    if path.is_dir():
        run = RunFolder(path)
        if run.checkpoint.is_file():
            return run.checkpoint
        if run.last.is_file():
            return run.last
    return path


class RunFolderUsed(MlpcliError):
    """The chosen output folder already holds files."""

    def __init__(self, folder: Path, files: list[str]) -> None:
        shown = ", ".join(files[:4]) + (", ..." if len(files) > 4 else "")
        super().__init__(f"{folder} already holds files ({shown})")
        self.folder, self.files = folder, files


def claim_run_dir(
    name: str, *, out: Path | None = None, resume_in: Path | None = None, overwrite: bool = False,
    root: Path = Path("runs"),
) -> tuple[RunFolder, FileLock]:
    """Choose the run's folder and lock it: `resume_in` (a run folder being continued), `out` when it is
    absent or empty (or `overwrite`), else a fresh root/name/<timestamp>. Raises RunLocked or RunFolderUsed."""
    if resume_in is not None:
        run = RunFolder(resume_in)
        return run, run.lock().acquire()
    if out is None:
        run = RunFolder(new_run_dir(root, name))
        return run, run.lock().acquire()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MlpcliError(f"cannot write to the output folder {out}: {exc.strerror or exc}") from None
    run = RunFolder(out)
    lock = run.lock().acquire()  # before looking inside: of two writers, exactly one gets this far
    files = run.used_files()
    if files and not overwrite:
        lock.release()
        raise RunFolderUsed(out, files)
    if files:
        run.clear()
    return run, lock


def chance_accuracy(class_counts: list[int]) -> float:
    """The accuracy of always answering the most common class (1/k for balanced classes)."""
    total = sum(class_counts)
    return max(class_counts) / total if total else 0.0


"""The local cache of dataset files: where it is, and whether a file in it can be trusted."""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from mlpcli.data.sources import DataFile, DatasetSpec, file_candidates
from mlpcli.errors import DataError


def cache_root() -> Path:
    """MLPCLI_DATA_DIR, else $XDG_CACHE_HOME/mlpcli, else ~/.cache/mlpcli."""
    env = os.environ.get("MLPCLI_DATA_DIR")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "mlpcli"


def dataset_dir(spec: DatasetSpec, root: Path | None = None) -> Path:
    """The cache folder of one dataset."""
    return (root or cache_root()) / spec.name


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def matches(path: Path, dfile: DataFile) -> bool:
    """True when path holds dfile: the pinned gz bytes, or (gzipped or raw) the pinned IDX content."""
    try:
        if sha256_file(path) in (dfile.sha256_gz, dfile.sha256_raw):
            return True
        with path.open("rb") as fh:
            if fh.read(2) != b"\x1f\x8b":
                return False
        h = hashlib.sha256()
        with gzip.open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        return h.hexdigest() == dfile.sha256_raw
    except (OSError, EOFError, zlib.error):
        return False


@dataclass(frozen=True)
class FileState:
    """What the cache knows about one file: its path (if any), size, and whether it verified."""

    dfile: DataFile
    path: Path | None
    state: str  # "verified", "corrupt", "missing"
    size: int = 0


def locate(spec: DatasetSpec, dfile: DataFile, root: Path | None = None) -> FileState:
    """Find dfile in the cache or a system folder (Debian's packages), verifying what is found."""
    folders = [dataset_dir(spec, root), *spec.system_dirs]
    corrupt: FileState | None = None
    for folder in folders:
        for name in file_candidates(dfile.name):
            path = folder / name
            if not path.is_file():
                continue
            size = path.stat().st_size
            if matches(path, dfile):
                return FileState(dfile, path, "verified", size)
            if corrupt is None and folder == folders[0]:
                corrupt = FileState(dfile, path, "corrupt", size)
    return corrupt or FileState(dfile, None, "missing")


def partials(spec: DatasetSpec, root: Path | None = None) -> list[Path]:
    """Temporary files a download left in the dataset's cache folder (a killed fetch; the next fetch removes them)."""
    folder = dataset_dir(spec, root)
    return sorted(p for p in folder.glob("*.part") if p.is_file()) if folder.is_dir() else []


def import_file(src: Path, dfile: DataFile, dest_dir: Path) -> Path:
    """Copy an already verified src atomically into dest_dir (under dfile's name, .gz only if gzipped)."""
    try:
        dest_dir.mkdir(parents=True, exist_ok=True)
        gz = src.read_bytes()[:2] == b"\x1f\x8b"
        dest = dest_dir / (dfile.name if gz else dfile.name.removesuffix(".gz"))
        fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest_dir)
        os.close(fd)
        try:
            shutil.copyfile(src, tmp)
            os.replace(tmp, dest)
        finally:
            Path(tmp).unlink(missing_ok=True)
    except OSError as exc:
        raise DataError(f"cannot write to the cache {dest_dir}: {exc.strerror or exc}") from None
    return dest

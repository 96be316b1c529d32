"""Downloading dataset files from mirrors into the cache, verified before they are trusted."""

from __future__ import annotations

import logging
import math
import os
import tempfile
import time
from pathlib import Path

from urllib3.exceptions import ProtocolError, ReadTimeoutError

from mlpcli.data.cache import FileState, dataset_dir, locate, matches, sha256_file
from mlpcli.data.idx import GZIP_MAGIC, looks_like_html
from mlpcli.data.sources import DataFile, DatasetSpec
from mlpcli.errors import DataError, MlpcliError
from mlpcli.events import Callback, DownloadEnd, DownloadProgress, DownloadStart, emit
from mlpcli.files.locks import FileLock, open_nofollow

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 30.0
CHUNK = 1 << 14  # small enough for a live progress bar on a slow connection
MAX_TIMEOUT = 3600.0  # seconds: the largest MLPCLI_TIMEOUT taken
DEADLINE_FACTOR = 10  # a whole file must arrive within this many read timeouts (300 s by default)
MAX_DOWNLOAD = 128 * 1024**2  # bytes: the largest dataset file (Fashion-MNIST's raw images) is 47 MB


def is_offline() -> bool:
    """MLPCLI_OFFLINE set to 1/true/yes."""
    return os.environ.get("MLPCLI_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def mirrors_for(spec: DatasetSpec) -> list[str]:
    """MLPCLI_MIRROR's base URLs (comma-separated) first, then the dataset's own, each ending in '/'."""
    extra = [m.strip() for m in os.environ.get("MLPCLI_MIRROR", "").split(",") if m.strip()]
    return [m if m.endswith("/") else m + "/" for m in [*extra, *spec.mirrors]]


def timeouts() -> tuple[float, float]:
    """(connect, read) timeouts in seconds; MLPCLI_TIMEOUT (a number of seconds > 0) overrides the read timeout."""
    env = os.environ.get("MLPCLI_TIMEOUT")
    try:
        read = float(env) if env else READ_TIMEOUT
    except ValueError:
        read = math.nan
    if not (math.isfinite(read) and 0 < read <= MAX_TIMEOUT):
        raise DataError(f"MLPCLI_TIMEOUT must be a number of seconds above 0 and at most {MAX_TIMEOUT:g}, got {env!r}")
    return min(CONNECT_TIMEOUT, read), read


class _MirrorFailed(Exception):
    """One mirror could not deliver a verified file; the message says why."""


def _download(url: str, dfile: DataFile, part: Path, timeout: tuple[float, float], callbacks: list[Callback]) -> bool:
    """Stream url's bytes as sent to part, bounded in size and time; returns whether they are gzip data.

    The bytes are taken before any transport decoding (a server that marks a .gz file with
    Content-Encoding: gzip sends the file itself), then verified like an imported file: the
    pinned hash of the gz file or of its IDX content. Raises _MirrorFailed with the reason.
    """
    import requests  # imported here: most commands never download

    deadline = time.monotonic() + DEADLINE_FACTOR * timeout[1]
    try:
        with requests.get(url, stream=True, timeout=timeout) as resp:
            if resp.status_code >= 400:
                raise _MirrorFailed(f"HTTP {resp.status_code} {resp.reason or ''}".strip())
            if "html" in resp.headers.get("Content-Type", "").lower():
                raise _MirrorFailed("answered with an HTML page, not the file")
            length = resp.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() and not resp.headers.get("Content-Encoding") else None
            if total is not None and total > MAX_DOWNLOAD:
                raise _MirrorFailed(f"announces {total:,} bytes; no dataset file is larger than {MAX_DOWNLOAD:,}")
            emit(callbacks, DownloadStart(dfile.name, url, total))
            received, head = 0, b""
            with os.fdopen(open_nofollow(part, os.O_WRONLY | os.O_TRUNC), "wb") as fh:
                while chunk := resp.raw.read(CHUNK, decode_content=False):
                    if received == 0:
                        head = chunk[:4]
                        if looks_like_html(chunk):
                            raise _MirrorFailed("sent an HTML page, not the file")
                    received += len(chunk)
                    if received > MAX_DOWNLOAD:
                        raise _MirrorFailed(f"sent more than {MAX_DOWNLOAD:,} bytes; no dataset file is that large")
                    if time.monotonic() > deadline:
                        raise _MirrorFailed(f"too slow: not done after {DEADLINE_FACTOR * timeout[1]:g} s")
                    fh.write(chunk)
                    emit(callbacks, DownloadProgress(dfile.name, received))
                fh.flush()
                os.fsync(fh.fileno())
    except requests.Timeout:
        raise _MirrorFailed(f"timed out (no answer within {timeout[1]:g} s)") from None
    except (requests.exceptions.ChunkedEncodingError, ProtocolError):
        raise _MirrorFailed("the connection broke off mid-file (truncated body)") from None
    except requests.ConnectionError as exc:
        reason = "timed out" if "timed out" in str(exc).lower() else "could not connect"
        raise _MirrorFailed(reason) from None
    except requests.RequestException as exc:
        raise _MirrorFailed(f"request failed ({type(exc).__name__})") from None
    except (ReadTimeoutError, TimeoutError):
        raise _MirrorFailed(f"timed out (no answer within {timeout[1]:g} s)") from None
    if total is not None and received != total:
        raise _MirrorFailed(f"truncated body ({received} of {total} bytes)")
    if not matches(part, dfile):
        got = sha256_file(part)
        raise _MirrorFailed(f"checksum mismatch (sha256 {got[:12]}..., expected {dfile.sha256_gz[:12]}...)")
    return head.startswith(GZIP_MAGIC)


def fetch_file(
    spec: DatasetSpec,
    dfile: DataFile,
    *,
    root: Path | None = None,
    offline: bool = False,
    callbacks: list[Callback] | None = None,
) -> Path:
    """Return a verified path for dfile: from the cache, a system folder, or a mirror.

    Several processes may fetch into one cache: each writes its own temporary file (created
    exclusively, never through a symlink), the dataset folder's lock lets one download a file
    at a time, and the file renamed into place is the one whose bytes were hashed.
    """
    found = locate(spec, dfile, root)
    if found.state == "verified" and found.path is not None:
        return found.path
    folder = dataset_dir(spec, root)
    if offline or is_offline():
        return _fetch_locked(spec, dfile, root, folder, found, offline, callbacks)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        lock = FileLock(folder / ".lock", str(folder)).acquire(wait=True)
    except OSError as exc:
        raise DataError(
            f"cannot write to the data cache {folder}: {exc.strerror or exc} (set MLPCLI_DATA_DIR)"
        ) from None
    except MlpcliError as exc:
        raise DataError(str(exc)) from None
    with lock:
        found = locate(spec, dfile, root)  # another process may have fetched it while this one waited
        if found.state == "verified" and found.path is not None:
            return found.path
        for stale in folder.glob(f"{dfile.name}*.part"):  # every writer holds the lock: these writers died
            stale.unlink(missing_ok=True)
        return _fetch_locked(spec, dfile, root, folder, found, offline, callbacks)


def _fetch_locked(
    spec: DatasetSpec,
    dfile: DataFile,
    root: Path | None,
    folder: Path,
    found: FileState,
    offline: bool,
    callbacks: list[Callback] | None,
) -> Path:
    manual = (
        f"download the four files by hand and run 'mlpcli data import {spec.name} FOLDER', "
        "or set MLPCLI_MIRROR to a server that has them"
    )
    if offline or is_offline():
        if found.state == "corrupt" and found.path is not None:
            raise DataError(
                f"{found.path} does not match its pinned checksum (damaged or not the file) and offline mode is on; "
                f"delete it and fetch again online, or {manual}"
            )
        raise DataError(f"{dfile.name} of {spec.name} is not in the cache ({folder}) and offline mode is on; {manual}")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if found.state == "corrupt" and found.path is not None:
            log.warning("removing %s: it does not match its checksum", found.path)
            found.path.unlink()
        final = folder / dfile.name
        fd, name = tempfile.mkstemp(prefix=f"{dfile.name}.", suffix=".part", dir=folder)  # this writer's own
        os.close(fd)
        part = Path(name)
    except OSError as exc:
        raise DataError(
            f"cannot write to the data cache {folder}: {exc.strerror or exc} (set MLPCLI_DATA_DIR)"
        ) from None
    failures: list[str] = []
    callbacks = list(callbacks or [])
    timeout = timeouts()
    try:
        for base in mirrors_for(spec):
            url = base + dfile.name
            try:
                gz = _download(url, dfile, part, timeout, callbacks)
            except _MirrorFailed as exc:
                failures.append(f"{base}: {exc}")
                emit(callbacks, DownloadEnd(dfile.name, url, False, str(exc)))
                continue
            except OSError as exc:
                raise DataError(f"cannot write {part}: {exc.strerror or exc}") from None
            if not gz:  # the IDX content itself: stored under its own name, as import does
                final = final.with_name(dfile.name.removesuffix(".gz"))
            os.replace(part, final)
            emit(callbacks, DownloadEnd(dfile.name, url, True))
            return final
    finally:
        part.unlink(missing_ok=True)
    raise DataError(
        f"could not fetch {dfile.name} of {spec.name} from any mirror: " + "; ".join(failures) + f". To fix: {manual}"
    )


def fetch(
    spec: DatasetSpec, *, root: Path | None = None, offline: bool = False, callbacks: list[Callback] | None = None
) -> dict[str, Path]:
    """Make all four files of spec available and verified; returns role -> path."""
    return {f.role: fetch_file(spec, f, root=root, offline=offline, callbacks=callbacks) for f in spec.files}


def status(spec: DatasetSpec, root: Path | None = None) -> list[FileState]:
    """What the cache holds for each file of spec (every file found is re-hashed)."""
    return [locate(spec, f, root) for f in spec.files]

"""Checkpoints: one .npz of float arrays plus a JSON `meta` string; never pickle.

Layout (docs/DESIGN.md): W1..WL (fan_in, fan_out), b1..bL (fan_out,), norm_mean and norm_std
(scalars or per-pixel vectors applied to [0, 1] pixels), optional optimizer state under
`opt.*`, and `meta`, a 0-d string array holding JSON. Writes are atomic.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from mlpcli.errors import CheckpointError
from mlpcli.files.atomic import atomic_open
from mlpcli.files.checkpoint_meta import FORMAT, VERSION, fail, parse_meta
from mlpcli.files.npz import Header, NpzError, SafeNpz
from mlpcli.nn.activations import activation_params
from mlpcli.version import __version__


@dataclass
class Checkpoint:
    """Everything a checkpoint holds."""

    params: dict[str, np.ndarray]
    norm_mean: np.ndarray
    norm_std: np.ndarray
    meta: dict[str, Any]
    opt_state: dict[str, np.ndarray] = field(default_factory=dict)
    path: Path | None = None

    @property
    def layer_sizes(self) -> list[int]:
        """[inputs, hidden..., outputs]."""
        return list(self.meta["layer_sizes"])

    @property
    def config(self) -> dict[str, Any]:
        """The resolved config the checkpoint was trained with ({} when it has none)."""
        return self.meta.get("config") or {}

    @property
    def loss(self) -> str:
        """The loss it was trained with."""
        return str(self.config.get("loss") or "cross_entropy")

    @property
    def activation_params(self) -> dict[str, float]:
        """The hidden activation's parameters as trained (e.g. leaky_relu's slope), defaults filled in."""
        return activation_params(self.meta["activation"], self.config.get("model") or {})

    @property
    def classes(self) -> list[str]:
        """Class names, index = label."""
        return [str(c) for c in self.meta.get("classes") or range(self.layer_sizes[-1])]


def build_meta(
    layer_sizes: list[int], activation: str, output: str, classes: list[str], dataset: str, **extra: Any
) -> dict[str, Any]:
    """The `meta` document, with format, version, creation time and mlpcli's version filled in."""
    meta: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "layer_sizes": [int(s) for s in layer_sizes],
        "activation": activation,
        "output": output,
        "classes": list(classes),
        "dataset": dataset,
    }
    meta.update(extra)
    meta["created"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    meta["mlpcli_version"] = __version__
    return meta


def save(path: Path | str, ckpt: Checkpoint) -> Path:
    """Write ckpt to path atomically (temporary file in the same folder, then os.replace)."""
    path = Path(path)
    arrays: dict[str, np.ndarray] = dict(ckpt.params)
    arrays["norm_mean"] = np.asarray(ckpt.norm_mean, dtype=np.float32)
    arrays["norm_std"] = np.asarray(ckpt.norm_std, dtype=np.float32)
    for key, value in ckpt.opt_state.items():
        arrays[f"opt.{key}"] = np.asarray(value)
    arrays["meta"] = np.array(json.dumps(ckpt.meta, allow_nan=False))
    with atomic_open(path, "wb") as fh:
        np.savez(fh, **arrays)
    return path


def load(path: Path | str) -> Checkpoint:
    """Read and check a checkpoint; CheckpointError says exactly what is wrong. Never unpickles.

    Every member's header is checked against what `meta` implies before its data is read,
    so a hostile file can make loading fail but never allocate more than its layer sizes justify.
    """
    path = Path(path)
    if not path.exists():
        raise fail(path, "no such checkpoint file")
    if path.is_dir():
        raise fail(
            path, "is a folder without checkpoint.npz or last.npz: not a run folder; give a run folder or a .npz"
        )
    if not zipfile.is_zipfile(path):
        raise fail(path, "not a valid .npz archive (not a zip file, or truncated)")
    try:
        with zipfile.ZipFile(path) as zf:
            return _load(path, SafeNpz(zf))
    except CheckpointError:
        raise
    except NpzError as exc:
        raise fail(path, str(exc)) from None
    except (zipfile.BadZipFile, EOFError, OSError, RuntimeError, NotImplementedError) as exc:
        raise fail(path, f"not a valid .npz archive (truncated or damaged: {exc})") from None
    except Exception as exc:  # zipfile and zlib raise assorted errors on hostile archives
        raise fail(path, f"not a valid .npz archive ({type(exc).__name__}: {exc})") from None


def _load(path: Path, npz: SafeNpz) -> Checkpoint:
    meta = parse_meta(path, npz)
    sizes = meta["layer_sizes"]
    total = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
    expected: dict[str, tuple[int, ...]] = {}
    for l, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
        expected[f"W{l}"], expected[f"b{l}"] = (fan_in, fan_out), (fan_out,)
    for name in expected:
        if name not in npz.members:
            raise fail(
                path, f"missing array {name} (layer_sizes {sizes} needs W1..W{len(sizes) - 1}, b1..b{len(sizes) - 1})"
            )
    for name in ("norm_mean", "norm_std"):
        if name not in npz.members:
            raise fail(path, f"missing array {name}")
    extra = [
        n
        for n in npz.members
        if n not in expected and n not in ("norm_mean", "norm_std", "meta") and not n.startswith("opt.")
    ]
    if extra:
        raise fail(path, f"unexpected member {extra[0]!r}; not a checkpoint written by mlpcli")

    def shaped(name: str, shape: tuple[int, ...]) -> Callable[[Header], None]:
        def check(head: Header) -> None:
            if head.dtype.kind != "f" or head.dtype.itemsize > 8:
                raise NpzError(f"{name} has dtype {head.dtype}, expected float32 or float64")
            if head.shape != shape:
                raise NpzError(f"{name} has shape {head.shape}, expected {shape} from layer_sizes {sizes}")

        return check

    params: dict[str, np.ndarray] = {}
    for name, shape in expected.items():
        arr = npz.read(name, shaped(name, shape))
        if not np.all(np.isfinite(arr)):
            raise fail(path, f"{name} contains NaN or infinite values")
        params[name] = arr
    norm = {}
    for name in ("norm_mean", "norm_std"):

        def small(head: Header, name: str = name) -> None:
            size = int(np.prod(head.shape, dtype=object))
            if head.dtype.kind != "f" or head.dtype.itemsize > 8 or size not in (1, sizes[0]):
                raise NpzError(f"{name} must be a float scalar or a {sizes[0]}-vector, found {head.dtype} {head.shape}")

        arr = npz.read(name, small)
        norm[name] = arr.astype(np.float32).reshape(() if arr.size == 1 else (sizes[0],))
    if np.any(norm["norm_std"] <= 0) or not np.all(np.isfinite(norm["norm_std"])):
        raise fail(path, "norm_std must be positive and finite")
    opt_state = {}
    for name in (n for n in npz.members if n.startswith("opt.")):

        def bounded(head: Header, name: str = name) -> None:
            size = int(np.prod(head.shape, dtype=object))
            if head.dtype.kind not in "fiu" or head.dtype.itemsize > 8 or size > total:
                raise NpzError(
                    f"{name}: optimizer state of {head.dtype} {head.shape} does not fit a network of "
                    f"{total:,} parameters"
                )

        opt_state[name.removeprefix("opt.")] = npz.read(name, bounded)
    return Checkpoint(params, norm["norm_mean"], norm["norm_std"], meta, opt_state, path)

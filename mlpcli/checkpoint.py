"""Checkpoints: one .npz of float arrays plus a JSON `meta` string; never pickle.

Layout (DESIGN.md): W1..WL (fan_in, fan_out), b1..bL (fan_out,), norm_mean and norm_std
(scalars or per-pixel vectors applied to [0, 1] pixels), optional optimizer state under
`opt.*`, and `meta`, a 0-d string array holding JSON. Writes are atomic.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from mlpcli import __version__
from mlpcli.atomic import atomic_open
from mlpcli.data.prepare import Normalizer
from mlpcli.errors import CheckpointError
from mlpcli.nn.activations import ACTIVATIONS, DEFAULT_LEAKY_SLOPE, OUTPUTS
from mlpcli.nn.mlp import MLP

FORMAT = "mlpcli.checkpoint"
VERSION = 1


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


def _fail(path: Path, message: str) -> CheckpointError:
    return CheckpointError(f"{path}: {message}")


def load(path: Path | str) -> Checkpoint:
    """Read and check a checkpoint; CheckpointError says exactly what is wrong. Never unpickles."""
    path = Path(path)
    if not path.exists():
        raise _fail(path, "no such checkpoint file")
    if path.is_dir():
        raise _fail(path, "is a folder; give the .npz file (e.g. runs/mnist/checkpoint.npz)")
    if not zipfile.is_zipfile(path):
        raise _fail(path, "not a valid .npz archive (not a zip file, or truncated)")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except ValueError as exc:
        if "pickle" in str(exc).lower() or "object" in str(exc).lower():
            raise _fail(path, "holds a pickled (object) array; refused: checkpoints are plain arrays") from None
        raise _fail(path, f"not a readable .npz ({exc})") from None
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        raise _fail(path, f"not a valid .npz archive (truncated or not a zip file: {exc})") from None
    except Exception as exc:  # numpy raises assorted errors on hostile zip members
        raise _fail(path, f"not a valid .npz archive ({type(exc).__name__}: {exc})") from None
    meta = _parse_meta(path, arrays)
    sizes = meta["layer_sizes"]
    params: dict[str, np.ndarray] = {}
    for l, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
        for name, shape in ((f"W{l}", (fan_in, fan_out)), (f"b{l}", (fan_out,))):
            if name not in arrays:
                raise _fail(
                    path,
                    f"missing array {name} (layer_sizes {sizes} needs W1..W{len(sizes) - 1}, b1..b{len(sizes) - 1})",
                )
            arr = arrays[name]
            if arr.dtype.kind != "f":
                raise _fail(path, f"{name} has dtype {arr.dtype}, expected float32 or float64")
            if arr.shape != shape:
                raise _fail(path, f"{name} has shape {arr.shape}, expected {shape} from layer_sizes {sizes}")
            if not np.all(np.isfinite(arr)):
                raise _fail(path, f"{name} contains NaN or infinite values")
            params[name] = arr
    norm = {}
    for name in ("norm_mean", "norm_std"):
        if name not in arrays:
            raise _fail(path, f"missing array {name}")
        arr = arrays[name]
        if arr.dtype.kind != "f" or arr.size not in (1, sizes[0]):
            raise _fail(path, f"{name} must be a float scalar or a {sizes[0]}-vector, found {arr.dtype} {arr.shape}")
        norm[name] = arr.astype(np.float32).reshape(() if arr.size == 1 else (sizes[0],))
    if np.any(norm["norm_std"] <= 0) or not np.all(np.isfinite(norm["norm_std"])):
        raise _fail(path, "norm_std must be positive and finite")
    opt_state = {k.removeprefix("opt."): v for k, v in arrays.items() if k.startswith("opt.")}
    return Checkpoint(params, norm["norm_mean"], norm["norm_std"], meta, opt_state, path)


def _parse_meta(path: Path, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    if "meta" not in arrays:
        raise _fail(path, "missing the meta array; not an mlpcli checkpoint")
    raw = arrays["meta"]
    if raw.shape != () or raw.dtype.kind not in ("U", "S"):
        raise _fail(path, f"meta must be a 0-d string array holding JSON, found {raw.dtype} {raw.shape}")
    try:
        meta = json.loads(str(raw.item() if raw.dtype.kind == "U" else raw.item().decode("utf-8")))
    except (ValueError, UnicodeDecodeError) as exc:
        raise _fail(path, f"meta is not valid JSON ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise _fail(
            path, f"meta.format is {meta.get('format') if isinstance(meta, dict) else meta!r}, expected {FORMAT!r}"
        )
    version = meta.get("version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise _fail(path, f"meta.version must be an integer, found {version!r}")
    if version > VERSION:
        raise _fail(
            path,
            f"written in checkpoint format version {version} by a newer mlpcli; "
            f"this one reads version {VERSION}: upgrade mlpcli",
        )
    if version < 1:
        raise _fail(path, f"unknown checkpoint format version {version}")
    sizes = meta.get("layer_sizes")
    if not (
        isinstance(sizes, list)
        and len(sizes) >= 2
        and all(isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in sizes)
    ):
        raise _fail(path, f"meta.layer_sizes must be a list of at least two positive integers, found {sizes!r}")
    if meta.get("activation") not in ACTIVATIONS:
        raise _fail(path, f"meta.activation {meta.get('activation')!r} is not one of {', '.join(ACTIVATIONS)}")
    if meta.get("output") not in OUTPUTS:
        raise _fail(path, f"meta.output {meta.get('output')!r} is not one of {', '.join(OUTPUTS)}")
    classes = meta.get("classes")
    if classes is not None and (not isinstance(classes, list) or len(classes) != sizes[-1]):
        raise _fail(path, f"meta.classes must list {sizes[-1]} names, found {classes!r}")
    return meta


def to_model(ckpt: Checkpoint) -> MLP:
    """The network a checkpoint holds, ready for forward passes (float32)."""
    slope = ckpt.meta.get("config", {}).get("model", {}).get("leaky_slope", DEFAULT_LEAKY_SLOPE)
    return MLP(ckpt.layer_sizes, ckpt.meta["activation"], ckpt.meta["output"], params=ckpt.params, leaky_slope=slope)


def normalizer(ckpt: Checkpoint) -> Normalizer:
    """The pixel normalization the model was trained with."""
    return Normalizer(ckpt.norm_mean, ckpt.norm_std)


def latest_checkpoint(folder: Path | None = None) -> Path | None:
    """The newest runs/*/checkpoint.npz under folder (default: the current folder), if any."""
    root = (folder or Path()) / "runs"
    found = [p for p in root.glob("*/checkpoint.npz") if p.is_file()] if root.is_dir() else []
    return max(found, key=lambda p: p.stat().st_mtime) if found else None

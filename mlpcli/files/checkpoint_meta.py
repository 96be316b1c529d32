"""A checkpoint's `meta` document, read as hostile input: size, depth and every field mlpcli reads checked."""

from __future__ import annotations

import json
import reprlib
from pathlib import Path
from typing import Any

from mlpcli.errors import CheckpointError
from mlpcli.files.npz import Header, NpzError, SafeNpz
from mlpcli.nn.activations import ACTIVATION_PARAMS, ACTIVATIONS, OUTPUTS
from mlpcli.nn.losses import LOSSES

FORMAT = "mlpcli.checkpoint"
# also read: what development builds of 2026-11-30 wrote after the folder move (the same layout)
FORMATS_READ = (FORMAT, "mlpcli.files.checkpoint")
VERSION = 1
MAX_META_BYTES = 16 * 1024 * 1024  # a long run's history is well under 1 MB
MAX_META_DEPTH = 32
MAX_LAYERS = 256
MAX_PARAMETERS = 100_000_000  # as for configs: about 400 MB of float32


def fail(path: Path, message: str) -> CheckpointError:
    """The error for a bad checkpoint, naming its file."""
    return CheckpointError(f"{path}: {message}")


def parse_meta(path: Path, npz: SafeNpz) -> dict[str, Any]:
    if "meta" not in npz.members:
        raise fail(path, "missing the meta array; not an mlpcli checkpoint")

    def text_scalar(head: Header) -> None:
        if head.shape != () or head.dtype.kind not in ("U", "S"):
            raise NpzError(f"meta must be a 0-d string array holding JSON, found {head.dtype} {head.shape}")
        if head.nbytes > MAX_META_BYTES:
            raise NpzError(f"meta is {head.nbytes:,} bytes; the limit is {MAX_META_BYTES:,}")

    raw = npz.read("meta", text_scalar)
    try:
        meta = json.loads(str(raw.item() if raw.dtype.kind == "U" else raw.item().decode("utf-8")))
    except RecursionError:
        raise fail(path, "meta is nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise fail(path, f"meta is not valid JSON ({exc})") from None
    if _depth(meta) > MAX_META_DEPTH:
        raise fail(path, f"meta is nested more than {MAX_META_DEPTH} levels deep")
    if not isinstance(meta, dict) or meta.get("format") not in FORMATS_READ:
        shown = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise fail(path, f"meta.format is {_show(shown)}, expected {FORMAT!r}")
    version = meta.get("version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise fail(path, f"meta.version must be an integer, found {_show(version)}")
    if version > VERSION:
        raise fail(
            path,
            f"written in checkpoint format version {version} by a newer mlpcli; "
            f"this one reads version {VERSION}: upgrade mlpcli",
        )
    if version < 1:
        raise fail(path, f"unknown checkpoint format version {version}")
    sizes = meta.get("layer_sizes")
    if not (
        isinstance(sizes, list)
        and 2 <= len(sizes) <= MAX_LAYERS
        and all(isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in sizes)
    ):
        raise fail(
            path, f"meta.layer_sizes must be a list of 2 to {MAX_LAYERS} positive integers, found {_show(sizes)}"
        )
    total = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
    if total > MAX_PARAMETERS:
        raise fail(path, f"meta.layer_sizes {_show(sizes)} means {total:,} parameters; the limit is {MAX_PARAMETERS:,}")
    _check_meta_fields(path, meta, sizes)
    return meta


def _show(value: Any) -> str:
    """A short one-line rendering of any value from a hostile file."""
    return reprlib.repr(value)


def _depth(value: Any) -> int:
    """Nesting depth of a JSON value, computed without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        if depth > MAX_META_DEPTH:
            break
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        stack.extend((child, depth + 1) for child in children)
    return deepest


def _check_meta_fields(path: Path, meta: dict[str, Any], sizes: list[int]) -> None:
    """The fields mlpcli reads, of the types it reads them as (other fields are kept as they are)."""
    activation = meta.get("activation")
    names = [activation] if isinstance(activation, str) else activation if isinstance(activation, list) else [None]
    if (
        not names
        or any(not isinstance(a, str) or a not in ACTIVATIONS for a in names)
        or (isinstance(activation, list) and len(activation) != len(sizes) - 2)
    ):
        raise fail(
            path,
            f"meta.activation {_show(activation)} is not one of {', '.join(ACTIVATIONS)} "
            "(or a list of them, one per hidden layer)",
        )
    if not isinstance(meta.get("output"), str) or meta["output"] not in OUTPUTS:
        raise fail(path, f"meta.output {_show(meta.get('output'))} is not one of {', '.join(OUTPUTS)}")
    classes = meta.get("classes")
    if classes is not None and (
        not isinstance(classes, list)
        or len(classes) != sizes[-1]
        or not all(isinstance(c, (str, int)) for c in classes)
    ):
        raise fail(path, f"meta.classes must list {sizes[-1]} names, found {_show(classes)}")
    for key, kind in (
        ("config", dict),
        ("metrics", dict),
        ("resume", dict),
        ("history", list),
        ("normalization", dict),
        ("dataset", str),
        ("created", str),
    ):
        if key in meta and meta[key] is not None and not isinstance(meta[key], kind):
            raise fail(
                path,
                f"meta.{key} must be a {'mapping' if kind is dict else kind.__name__}, "
                f"found {type(meta[key]).__name__}",
            )
    if "epoch" in meta and (not isinstance(meta["epoch"], int) or isinstance(meta["epoch"], bool)):
        raise fail(path, f"meta.epoch must be an integer, found {_show(meta['epoch'])}")
    model = (meta.get("config") or {}).get("model")
    if model is not None and not isinstance(model, dict):
        raise fail(path, f"meta.config.model must be a mapping, found {type(model).__name__}")
    for key, param in ACTIVATION_PARAMS.items():  # every activation's parameters, by the registry
        value = (model or {}).get(key)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, (int, float)) or not param.low <= value < param.high
        ):
            raise fail(
                path,
                f"meta.config.model.{key} must be a number in [{param.low:g}, {param.high:g}), found {_show(value)}",
            )
    loss = (meta.get("config") or {}).get("loss") or "cross_entropy"
    if not isinstance(loss, str) or loss not in LOSSES:
        raise fail(path, f"meta.config.loss {_show(loss)} is not one of {', '.join(LOSSES)}")

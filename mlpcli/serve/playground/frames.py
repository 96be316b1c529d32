"""A plane session's frame as one binary message: what the page paints, computed once at the size it is drawn.

Layout (little-endian), so the page reads it with typed-array views and no parsing of numbers:

    bytes 0-3    b"MLPF"
    bytes 4-7    uint32: the header's length H in bytes (a multiple of 4)
    8 .. 8+H     the header: UTF-8 JSON, space-padded; its keys are listed in FrameHeader
    then         float32: the parameters, layer by layer W^l (fan_in x fan_out, row-major) then b^l
    then         uint8: the boundary, the winning class of each of grid x grid points (row 0 at the bottom)
    then         uint8: the boundary's confidence, (p_max - 1/k) / (1 - 1/k) scaled to 0-255; for a regression
                 dataset (header["regression"]) the output's value on the units' scale below, and zeros before
    then         uint8: every hidden unit's output over a map x map grid, layer by layer, unit by unit, on
                 one fixed scale: -1 -> 0, 0 -> 127.5, +1 -> 255 (clipped), as TensorFlow Playground's
    then         uint8: (only when header["focus"] is set) the focused unit's output at grid x grid
"""

from __future__ import annotations

import json
import struct
from typing import Any

import numpy as np

MAGIC = b"MLPF"
GRID = 100  # the boundary's resolution: TensorFlow Playground's density
MAP = 25  # a neuron's small map: every 4th point of the boundary's grid


def scaled_units(a: np.ndarray) -> np.ndarray:
    """Unit outputs on the fixed diverging scale: [-1, 1] -> uint8 0-255, clipped (shape kept)."""
    return np.rint((np.clip(a, -1.0, 1.0) + 1.0) * 127.5).astype(np.uint8)


def confidence(probabilities: np.ndarray) -> np.ndarray:
    """How sure the winner is, (p_max - 1/k) / (1 - 1/k) in [0, 1], for probabilities (n, k); for k = 1, |p|."""
    k = probabilities.shape[1]
    if k == 1:
        return np.clip(np.abs(probabilities[:, 0]), 0.0, 1.0)
    top = probabilities.max(axis=1)
    return np.clip((top - 1.0 / k) / (1.0 - 1.0 / k), 0.0, 1.0)


def encode(header: dict[str, Any], params: list[np.ndarray], maps: list[np.ndarray]) -> bytes:
    """The binary frame: header JSON, the parameters as float32, then the uint8 maps in order."""
    text = json.dumps(header, separators=(",", ":"), allow_nan=False).encode()
    text += b" " * (-len(text) % 4)
    floats = np.concatenate([np.asarray(p, np.float32).ravel() for p in params]) if params else np.zeros(0, np.float32)
    body = b"".join(np.ascontiguousarray(m, np.uint8).tobytes() for m in maps)
    return MAGIC + struct.pack("<I", len(text)) + text + floats.astype("<f4").tobytes() + body


def decode(data: bytes) -> tuple[dict[str, Any], np.ndarray, bytes]:
    """The header, the float32 parameters and the uint8 maps of a frame (what the page reads; for tests)."""
    if data[:4] != MAGIC:
        raise ValueError("not a playground frame")
    (size,) = struct.unpack("<I", data[4:8])
    header = json.loads(data[8 : 8 + size])
    count = sum(i * o + o for i, o in zip(header["layer_sizes"][:-1], header["layer_sizes"][1:]))
    start = 8 + size
    floats = np.frombuffer(data[start : start + 4 * count], dtype="<f4")
    return header, floats, data[start + 4 * count :]


def finite(value: float | None) -> float | None:
    """A number for JSON: None for NaN and infinities (JSON has neither)."""
    return None if value is None or not np.isfinite(value) else float(value)

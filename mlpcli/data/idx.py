"""Reading and writing IDX files (LeCun's MNIST format), gzipped or raw.

IDX: two zero bytes, a type code (0x08 = unsigned byte), the number of dimensions, then
one big-endian uint32 per dimension, then the data row-major. Images are magic 2051
(n, rows, cols), labels 2049 (n,). Every problem raises DataError naming the file.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np

from mlpcli.errors import DataError
from mlpcli.files.atomic import write_bytes

IMAGES_MAGIC = 2051
LABELS_MAGIC = 2049
GZIP_MAGIC = b"\x1f\x8b"
IDX_UBYTE = b"\x00\x00\x08"  # an IDX file of unsigned bytes starts with these
# No real IDX file of this kind comes near this: it keeps a "gzip bomb" from eating memory.
MAX_DECOMPRESSED = 2 * 1024**3


def looks_like_html(data: bytes) -> bool:
    """True for bytes that start like an HTML or XML document (an error page saved as data)."""
    head = data[:512].lstrip().lower()
    return head.startswith((b"<!doctype", b"<html", b"<?xml", b"<head", b"<body", b"<"))


def decompress(data: bytes, name: str) -> bytes:
    """Gunzip data when it is gzip (by its magic bytes, whatever the file name says)."""
    if not data.startswith(GZIP_MAGIC):
        if data[:3] == IDX_UBYTE:  # already decompressed (a browser does that), whatever the name says
            return data
        if looks_like_html(data):
            raise DataError(f"{name}: an HTML page, not IDX data (a server's error page saved as a file?)")
        if name.endswith(".gz"):
            shown = data[:4].hex() or "missing: empty file"
            raise DataError(f"{name}: neither gzip nor IDX data (its first bytes are {shown})")
        return data
    try:
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        out = d.decompress(data, MAX_DECOMPRESSED)
        if d.unconsumed_tail:
            raise DataError(f"{name}: decompresses to more than {MAX_DECOMPRESSED // 1024**3} GiB; not an IDX file")
        if not d.eof:
            raise DataError(f"{name}: truncated gzip data (the file ends before the compressed stream does)")
        return out
    except zlib.error as exc:
        raise DataError(f"{name}: corrupt gzip data ({exc})") from None


def parse_idx(data: bytes, name: str, expect_magic: int | None = None) -> np.ndarray:
    """Parse IDX bytes (already decompressed) into a uint8 array, checking magic and length."""
    if len(data) < 4:
        raise DataError(f"{name}: truncated header ({len(data)} bytes, an IDX file has at least 8)")
    magic = struct.unpack(">I", data[:4])[0]
    if expect_magic is not None and magic != expect_magic:
        raise DataError(f"{name}: expected magic {expect_magic}, found {magic}")
    if data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise DataError(f"{name}: not an unsigned-byte IDX file (magic {magic}, expected 2049 or 2051)")
    ndim = data[3]
    if ndim not in (1, 3):
        raise DataError(f"{name}: {ndim} dimensions; IDX images have 3 and labels 1")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{name}: truncated header ({len(data)} of {header} bytes)")
    dims = struct.unpack(f">{ndim}I", data[4:header])
    expected = int(np.prod(dims, dtype=np.int64))
    body = len(data) - header
    if body < expected:
        raise DataError(
            f"{name}: truncated: the header promises {'x'.join(map(str, dims))} = {expected} bytes, found {body}"
        )
    if body > expected:
        raise DataError(f"{name}: {body - expected} unexpected bytes after the {'x'.join(map(str, dims))} data")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def read_idx(path: Path | str, expect_magic: int | None = None) -> np.ndarray:
    """Read an IDX file, gzipped or not; raises DataError naming the file on any problem."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except IsADirectoryError:
        raise DataError(f"{path}: is a folder, not an IDX file") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None
    return parse_idx(decompress(data, path.name), path.name, expect_magic)


def read_split(images_path: Path, labels_path: Path, num_classes: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Read one split: images (n, rows*cols) uint8 and labels (n,) uint8, checked against each other."""
    images = read_idx(images_path, IMAGES_MAGIC)
    labels = read_idx(labels_path, LABELS_MAGIC)
    if images.shape[0] != labels.shape[0]:
        raise DataError(
            f"{images_path.name} holds {images.shape[0]} images but {labels_path.name} holds {labels.shape[0]} labels"
        )
    if labels.size and int(labels.max()) >= num_classes:
        bad = int(np.argmax(labels >= num_classes))
        raise DataError(
            f"{labels_path.name}: label {int(labels[bad])} at index {bad} is out of range 0..{num_classes - 1}"
        )
    return images.reshape(images.shape[0], -1), labels


def encode_idx(array: np.ndarray) -> bytes:
    """IDX bytes for a uint8 array of 1 (labels) or 3 (images) dimensions."""
    array = np.ascontiguousarray(array)
    if array.dtype != np.uint8 or array.ndim not in (1, 3):
        raise ValueError(f"IDX writer takes uint8 arrays of 1 or 3 dimensions, got {array.dtype} {array.shape}")
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.tobytes()


def write_idx(path: Path | str, array: np.ndarray) -> None:
    """Write array as IDX, gzipped when the name ends in .gz; atomic (temp file + rename)."""
    path = Path(path)
    data = encode_idx(array)
    if path.name.endswith(".gz"):
        data = gzip.compress(data, compresslevel=9, mtime=0)
    write_bytes(path, data)

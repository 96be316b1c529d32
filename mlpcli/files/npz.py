"""Reading .npz members defensively: headers first, data only when its declared size is acceptable.

np.load trusts each member's header and allocates whatever it declares, and decompresses
whatever the archive holds. A checkpoint is user input, so here every member's header is
read and checked against what the caller expects before a byte of its data is allocated,
and reads never go past the size the header justifies.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO

import numpy as np

MAX_HEADER_BYTES = 10_000


class NpzError(ValueError):
    """A member is malformed or not what the caller accepts (the message says which and why)."""


@dataclass(frozen=True)
class Header:
    """A member's declared array: shape and dtype."""

    shape: tuple[int, ...]
    dtype: np.dtype
    fortran_order: bool

    @property
    def nbytes(self) -> int:
        """Bytes of data the header declares."""
        return int(np.prod(self.shape, dtype=object)) * self.dtype.itemsize


def read_header(fh: IO[bytes], name: str) -> Header:
    """Parse the .npy header at the start of fh; NpzError when it is not one."""
    try:
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh, max_header_size=MAX_HEADER_BYTES)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh, max_header_size=MAX_HEADER_BYTES)
        else:
            raise NpzError(f"{name}: unsupported .npy format version {version}")
    except NpzError:
        raise
    except Exception as exc:  # numpy raises assorted errors on malformed headers
        reason = " ".join(str(exc).split())  # numpy's messages run over several lines
        raise NpzError(f"{name}: not a valid array header ({reason[:160]})") from None
    if dtype.hasobject:
        raise NpzError(f"{name}: holds Python objects (a pickle); refused: checkpoints are plain arrays")
    return Header(tuple(int(s) for s in shape), dtype, bool(fortran))


class SafeNpz:
    """An open .npz archive whose members are read only after their header passes a check."""

    def __init__(self, zf: zipfile.ZipFile) -> None:
        self.zf = zf
        self.members: dict[str, zipfile.ZipInfo] = {}
        for info in zf.infolist():
            key = info.filename.removesuffix(".npy")
            if key in self.members:
                raise NpzError(f"{key}: appears twice in the archive")
            self.members[key] = info

    def header(self, name: str) -> Header:
        """The declared shape and dtype of member `name`."""
        with self.zf.open(self.members[name]) as fh:
            return read_header(fh, name)

    def read(self, name: str, check: Callable[[Header], None]) -> np.ndarray:
        """Member `name` as an array, after check(header) accepted it (check raises NpzError otherwise)."""
        with self.zf.open(self.members[name]) as fh:
            head = read_header(fh, name)
            check(head)
            shape = head.shape[::-1] if head.fortran_order else head.shape
            array = np.empty(shape, dtype=head.dtype)  # exactly what the accepted header declares
            _read_into(fh, memoryview(array.reshape(-1).view(np.uint8)), name)
        return np.ascontiguousarray(array.T) if head.fortran_order else array


def _read_into(fh: IO[bytes], buffer: memoryview, name: str) -> None:
    got, size = 0, len(buffer)
    while got < size:
        n = fh.readinto(buffer[got:])  # type: ignore[attr-defined]
        if not n:
            raise NpzError(f"{name}: truncated (its header declares {size:,} bytes of data)")
        got += n

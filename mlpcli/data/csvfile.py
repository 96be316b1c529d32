"""Digits in CSV files, as Kaggle's Digit Recognizer ships them.

    label,pixel0,...,pixel783      train.csv: a label (0-9) and 784 pixel values (0-255) per row
    pixel0,...,pixel783            test.csv: pixels only

Rows are parsed by NumPy's C reader in chunks (never as Python lists of rows); when a chunk
does not parse, that chunk alone is scanned again to name the exact row and column.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from mlpcli.errors import DataError
from mlpcli.files.atomic import atomic_open

PIXELS = 784
CHUNK_ROWS = 4096


def _header(path: Path, first: str) -> tuple[bool, bool]:
    """(has a header, has a label column) from the first line."""
    cells = [c.strip().strip('"').lower() for c in first.split(",")]
    if not cells or cells == [""]:
        raise DataError(f"{path}: empty file; expected a header (label,pixel0,...,pixel783) and rows")
    numeric = all(c.lstrip("-").replace(".", "", 1).isdigit() for c in cells)
    if numeric:  # no header: the column count says which kind
        if len(cells) not in (PIXELS, PIXELS + 1):
            raise DataError(
                f"{path}: row 1 has {len(cells)} columns; expected {PIXELS + 1} (label + pixels) or {PIXELS}"
            )
        return False, len(cells) == PIXELS + 1
    labelled = cells[0] == "label"
    expected = (["label"] if labelled else []) + [f"pixel{i}" for i in range(PIXELS)]
    if len(cells) != len(expected):
        raise DataError(
            f"{path}: the header has {len(cells)} columns; expected {len(expected)} "
            f"({'label, ' if labelled else ''}pixel0 ... pixel783)"
        )
    for i, (got, want) in enumerate(zip(cells, expected), start=1):
        if got != want:
            raise DataError(f"{path}: header column {i} is {got!r}, expected {want!r}")
    return True, labelled


def _column_name(col: int, labelled: bool) -> str:
    if labelled:
        return "label" if col == 1 else f"pixel{col - 2}"
    return f"pixel{col - 1}"


def _locate(path: Path, lines: list[str], first_row: int, labelled: bool, width: int, classes: int) -> str:
    """The first problem in a chunk of lines, as 'path: row R, column C (name): what'."""
    for offset, row in enumerate(csv.reader(lines)):
        r = first_row + offset
        if len(row) != width:
            return f"{path}: row {r} has {len(row)} columns, expected {width}"
        for c, cell in enumerate(row, start=1):
            where = f"{path}: row {r}, column {c} ({_column_name(c, labelled)})"
            try:
                value = int(cell.strip())
            except ValueError:
                return f"{where}: {cell.strip()[:20]!r} is not a whole number"
            if labelled and c == 1:
                if not 0 <= value < classes:
                    return f"{where}: label {value} is not a class (0-{classes - 1})"
            elif not 0 <= value <= 255:
                return f"{where}: pixel value {value} is outside 0-255"
    return f"{path}: rows {first_row}-{first_row + len(lines) - 1} could not be read"


def read_csv_digits(path: Path, classes: int = 10) -> tuple[np.ndarray, np.ndarray | None]:
    """(images uint8 (n, 784), labels uint8 (n,) or None) from a CSV file; DataError naming row and column."""
    try:
        fh = open(path, encoding="utf-8", newline="")  # noqa: SIM115 - closed below
    except FileNotFoundError:
        raise DataError(f"{path}: no such CSV file") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None
    with fh:
        try:
            first = fh.readline()
            has_header, labelled = _header(path, first.strip())
            width = PIXELS + (1 if labelled else 0)
            chunks: list[np.ndarray] = []
            row = 1
            if not has_header:
                pending = [first]
            else:
                pending = []
            while True:
                lines = pending + [line for _, line in zip(range(CHUNK_ROWS - len(pending)), fh)]
                pending = []
                lines = [line for line in lines if line.strip()]
                if not lines:
                    break
                try:
                    block = np.loadtxt(lines, delimiter=",", dtype=np.int64, ndmin=2)
                    if block.shape[1] != width:
                        raise ValueError("wrong number of columns")
                    bad = (block[:, 1:] if labelled else block) > 255
                    bad |= (block[:, 1:] if labelled else block) < 0
                    if labelled:
                        bad_label = (block[:, 0] < 0) | (block[:, 0] >= classes)
                        if bad.any() or bad_label.any():
                            raise ValueError("out of range")
                    elif bad.any():
                        raise ValueError("out of range")
                except ValueError:
                    raise DataError(_locate(path, lines, row, labelled, width, classes)) from None
                chunks.append(block.astype(np.uint8))
                row += len(lines)
        except UnicodeDecodeError:
            raise DataError(f"{path}: not a text file (not UTF-8)") from None
    if not chunks:
        raise DataError(f"{path}: no rows after the header")
    data = np.concatenate(chunks)
    if labelled:
        return np.ascontiguousarray(data[:, 1:]), data[:, 0].copy()
    return data, None


def write_submission(path: Path, predictions: np.ndarray) -> Path:
    """Kaggle's submission format: ImageId (from 1),Label; written atomically."""
    buf = io.StringIO()
    buf.write("ImageId,Label\n")
    for i, label in enumerate(predictions.tolist(), start=1):
        buf.write(f"{i},{label}\n")
    try:
        with atomic_open(path, "wb") as fh:
            fh.write(buf.getvalue().encode("ascii"))
    except OSError as exc:
        raise DataError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path

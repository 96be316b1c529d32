"""Digits in CSV files, as Kaggle's Digit Recognizer ships them.

    label,pixel0,...,pixel783      train.csv: a label (0-9) and 784 pixel values (0-255) per row
    pixel0,...,pixel783            test.csv: pixels only

Rows are parsed by NumPy's C reader in chunks (never as Python lists of rows); when a chunk
does not parse, that chunk alone is scanned again to name the exact row and column.
"""

from __future__ import annotations

import io
import stat
from collections.abc import Iterator
from itertools import count
from pathlib import Path

import numpy as np

from mlpcli.errors import DataError
from mlpcli.files.atomic import atomic_open

PIXELS = 784
CHUNK_ROWS = 4096


MAX_LINE = 1 << 16  # bytes in one line: 785 cells of up to 3 digits take about 3 KiB


def _header(path: Path, first: str) -> tuple[bool, bool]:
    """(has a header, has a label column) from the first line."""
    cells = [c.strip().strip('"').lower() for c in first.split(",")]
    if not cells or cells == [""]:
        raise DataError(f"{path}: empty file; expected a header (label,pixel0,...,pixel783) and rows")
    numeric = all(c.lstrip("-").replace(".", "", 1).isdigit() for c in cells)
    if numeric:  # no header: the column count says which kind
        if len(cells) not in (PIXELS, PIXELS + 1):
            raise DataError(
                f"{path}: line 1 has {len(cells)} columns; expected {PIXELS + 1} (label + pixels) or {PIXELS}"
            )
        return False, len(cells) == PIXELS + 1
    if len(cells) not in (PIXELS, PIXELS + 1):
        why = ""
        if "\t" in first or ";" in first:
            why = " (separated by tabs or semicolons? mlpcli reads commas)"
        elif cells[-1] == "":
            why = " (a trailing comma ends the line)"
        raise DataError(
            f"{path}: the header has {len(cells)} columns; expected {PIXELS + 1} (label, pixel0 ... pixel783) "
            f"or {PIXELS} (pixel0 ... pixel783){why}"
        )
    labelled = len(cells) == PIXELS + 1
    expected = (["label"] if labelled else []) + [f"pixel{i}" for i in range(PIXELS)]
    for i, (got, want) in enumerate(zip(cells, expected), start=1):
        if got != want:
            raise DataError(f"{path}: line 1 (the header), column {i} is {got[:30]!r}, expected {want!r}")
    return True, labelled


def _column_name(col: int, labelled: bool) -> str:
    if labelled:
        return "label" if col == 1 else f"pixel{col - 2}"
    return f"pixel{col - 1}"


def _where(path: Path, line: int, row: int) -> str:
    return f"{path}: line {line} (data row {row})"


def _locate(path: Path, lines: list[tuple[int, int, str]], labelled: bool, width: int, classes: int) -> str:
    """The first problem among (line number, data row, text) lines, as 'path: line L (data row R), column C: what'."""
    for number, row, text in lines:
        cells = text.rstrip("\r\n").split(",")
        if len(cells) != width:
            return f"{_where(path, number, row)} has {len(cells)} columns, expected {width}"
        for c, raw in enumerate(cells, start=1):
            where = f"{_where(path, number, row)}, column {c} ({_column_name(c, labelled)})"
            cell = raw.strip()
            if not (cell.isascii() and cell.lstrip("-").isdigit()):
                quoted = " (quoted: write numbers without quotes)" if cell[:1] in "\"'" and cell else ""
                return f"{where}: {cell[:20]!r} is not a whole number{quoted}"
            value = int(cell)
            if labelled and c == 1:
                if not 0 <= value < classes:
                    return f"{where}: label {value} is not a class (0-{classes - 1})"
            elif not 0 <= value <= 255:
                return f"{where}: pixel value {value} is outside 0-255"
    first, last = lines[0], lines[-1]
    return f"{path}: lines {first[0]}-{last[0]} (data rows {first[1]}-{last[1]}) could not be read"


def _lines(path: Path, fh: object) -> Iterator[tuple[int, str]]:
    """(line number, text) of each line, refusing a line longer than MAX_LINE without reading it all."""
    for number in count(1):
        text = fh.readline(MAX_LINE)  # type: ignore[attr-defined]
        if not text:
            return
        if len(text) >= MAX_LINE and not text.endswith("\n"):
            raise DataError(f"{path}: line {number} is longer than {MAX_LINE // 1024} KiB: not a digits CSV file")
        yield number, text


def read_csv_digits(path: Path, classes: int = 10) -> tuple[np.ndarray, np.ndarray | None]:
    """(images uint8 (n, 784), labels uint8 (n,) or None) from a CSV file; DataError naming line, row and column.

    UTF-8 with or without a byte-order mark, LF or CRLF line ends (Excel's "CSV UTF-8"); blank lines are
    skipped; positions are the file's line numbers, as an editor shows them. Only regular files are read.
    """
    check_regular_file(path, "CSV file")
    try:
        fh = open(path, encoding="utf-8-sig", newline="")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None
    with fh:
        try:
            lines = _lines(path, fh)
            number, first = next(lines, (1, ""))
            has_header, labelled = _header(path, first.strip())
            width = PIXELS + (1 if labelled else 0)
            chunks: list[np.ndarray] = []
            row = 0
            pending = [] if has_header else [(number, first)]
            while True:
                batch = pending + [item for _, item in zip(range(CHUNK_ROWS - len(pending)), lines)]
                pending = []
                if not batch:
                    break
                numbered = []
                for number, text in batch:
                    if text.strip():
                        row += 1
                        numbered.append((number, row, text))
                if not numbered:
                    continue
                try:
                    block = np.loadtxt([t for _, _, t in numbered], delimiter=",", dtype=np.int64, ndmin=2)
                    if block.shape[1] != width:
                        raise ValueError("wrong number of columns")
                    pixels = block[:, 1:] if labelled else block
                    bad = bool(((pixels > 255) | (pixels < 0)).any())
                    if labelled:
                        bad = bad or bool(((block[:, 0] < 0) | (block[:, 0] >= classes)).any())
                    if bad:
                        raise ValueError("out of range")
                except ValueError:
                    raise DataError(_locate(path, numbered, labelled, width, classes)) from None
                chunks.append(block.astype(np.uint8))
        except UnicodeDecodeError:
            raise DataError(f"{path}: not a text file (not UTF-8)") from None
    if not chunks:
        raise DataError(f"{path}: no rows after the header")
    data = np.concatenate(chunks)
    if labelled:
        return np.ascontiguousarray(data[:, 1:]), data[:, 0].copy()
    return data, None


def check_regular_file(path: Path, what: str = "file") -> None:
    """DataError unless path is a regular file (not missing, a folder, a device such as /dev/zero, or a FIFO)."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise DataError(f"{path}: no such {what}") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if not stat.S_ISREG(mode):
        kind = "a folder" if stat.S_ISDIR(mode) else "not a regular file (a device, pipe or socket)"
        raise DataError(f"{path}: is {kind}; give a {what}")


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

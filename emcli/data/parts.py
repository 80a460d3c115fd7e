"""Reading an input by parts, for the dask engine's workers.

An input is a file path, a directory of Parquet files or a glob (``data/part-*.parquet``);
files are taken in sorted name order.  ``plan_parts`` cuts it on the client (reading only
metadata and CSV headers): Parquet by row group (cut into pieces of ``block_rows`` rows when
given), CSV/TSV by byte ranges whose ends move to the next line end (as
``dask.dataframe.read_csv`` cuts).  ``read_part`` runs on a worker and returns ``(x, w)``:
the values of shape (rows, n_features) and the weights of shape (rows,) or None, converted
exactly as ``read_table`` and ``open_blocks`` convert them.  Rows are in input order within a
part, and parts are in input order, so row numbers add up across parts.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..errors import DataError
from .formats import guarded, to_array, to_weights
from .reader import parse_piece, record_end, record_pieces

Array = NDArray[np.float64]
CSV_PART_BYTES = 64_000_000  # dask's default block size
_SCAN = 1 << 16


@dataclass(frozen=True)
class Part:
    """One part of an input: rows ``start .. stop`` of row group ``group`` of a Parquet file,
    or the CSV lines that start in bytes ``start .. stop`` of a file (``header``: its
    header line, for parts after the first)."""

    path: str
    kind: str
    start: int
    stop: int
    group: int = 0
    header: bytes = b""


def input_files(source: str) -> list[str]:
    """The files of ``source``: itself, the ``.parquet`` files of a directory, or a glob's
    matches, in sorted order."""
    if os.path.isdir(source):
        files = sorted(str(p) for p in Path(source).rglob("*.parquet"))
        if not files:
            raise DataError(f"directory '{source}' holds no .parquet file")
        return files
    files = sorted(glob.glob(source))
    if not files:
        if glob.has_magic(source):
            raise DataError(f"no file matches '{source}'")
        raise DataError(f"input file '{source}' does not exist")
    return files


def plan_parts(files: Sequence[str], kind: str, block_rows: int | None = None) -> list[Part]:
    """The parts of ``files`` in input order: Parquet row groups (pieces of ``block_rows``
    rows when given), or CSV byte ranges of about ``block_rows`` rows (default:
    ``CSV_PART_BYTES``)."""
    if kind == "parquet":
        return [part for path in files for part in _parquet_parts(path, block_rows)]
    size = max(64, block_rows * _bytes_per_row(files[0])) if block_rows else CSV_PART_BYTES
    return [part for path in files for part in _csv_parts(path, kind, size)]


def _parquet_parts(path: str, block_rows: int | None) -> list[Part]:
    import pyarrow.parquet as pq

    meta = guarded(path, "parquet", lambda: pq.ParquetFile(path).metadata)
    parts = []
    for group in range(meta.num_row_groups):
        rows = meta.row_group(group).num_rows
        step = block_rows or max(rows, 1)
        for start in range(0, max(rows, 1), step):
            parts.append(Part(path, "parquet", start, min(rows, start + step), group))
    return parts


def _csv_parts(path: str, kind: str, size: int) -> list[Part]:
    with open(path, "rb") as handle:
        head = next(record_pieces(handle, _SCAN), b"")
    header = head[: record_end(head)]
    total = os.path.getsize(path)
    return [
        Part(path, kind, start, min(total, start + size), header=header)
        for start in range(0, max(total, 1), size)
    ]


def _bytes_per_row(path: str) -> int:
    with open(path, "rb") as handle:
        head = handle.read(_SCAN)
    return max(1, len(head) // max(1, head.count(b"\n")))


def read_part(
    part: Part, columns: Sequence[str], weights: str | None = None, delimiter: str = ","
) -> tuple[Array, Array | None]:
    """The rows of ``part`` (on a worker): ``(x, w)``, ``w`` None without ``weights``.

    A value that is not a number raises a CellError whose row counts from the part's first
    row (``CellError.shifted`` moves it to the input's row).
    """
    wanted = [*columns, *([weights] if weights is not None else [])]
    if part.kind == "parquet":
        import pyarrow.parquet as pq

        table = guarded(
            part.path,
            "parquet",
            lambda: pq.ParquetFile(part.path).read_row_group(
                part.group, columns=wanted, use_threads=False
            ),
        ).slice(part.start, part.stop - part.start)
    else:
        data = _line_range(part)
        header = part.header if part.start else b""
        names = guarded(part.path, part.kind, lambda: _header_names(part.header, delimiter))
        # One thread: the workers' own processes are the parallelism.
        table = parse_piece(
            header + data, names, wanted, delimiter, part.path, part.kind, 0, weights, threads=False
        )
    return to_array(table, columns), to_weights(table, weights)


def _header_names(header: bytes, delimiter: str) -> list[str]:
    from .reader import parse_csv

    return list(parse_csv(header, [], delimiter).column_names)


def _line_range(part: Part) -> bytes:
    """The bytes of the lines that start in ``part.start .. part.stop`` (line 0: the
    header, in the first part only when its range starts at 0)."""
    with open(part.path, "rb") as handle:
        begin = 0 if part.start == 0 else _after_newline(handle, part.start - 1)
        end = _after_newline(handle, part.stop - 1) if part.stop > 0 else 0
        handle.seek(begin)
        return handle.read(max(0, end - begin))


def _after_newline(handle: Any, position: int) -> int:
    """The position after the first newline at or after ``position`` (or the file's end)."""
    handle.seek(position)
    while True:
        chunk = handle.read(_SCAN)
        if not chunk:
            return handle.tell()
        found = chunk.find(b"\n")
        if found >= 0:
            return position + found + 1
        position += len(chunk)

"""The stream engine: one pass over the file per EM iteration, memory bounded by the block.

Parquet is read by record batches (``pyarrow.parquet.ParquetFile.iter_batches``), CSV/TSV in
pieces of 1-4 MiB cut at record ends, each parsed by ``pyarrow.csv.read_csv`` (pyarrow's
streaming CSV reader reads up to 32 blocks ahead); only the chosen columns are read, as
float64, and cut into blocks of ``block_rows`` rows.  At most one batch (plus, for Parquet,
the row group being decoded) is in memory at a time, whatever the file size.

Passes over the file: one *scan* when the engine opens (row count, column checks, variances
for the notes: the same checks and messages as the memory path), one to collect the
initialisation sample, one per EM iteration (E-step), and one to write labels and
responsibilities (both in the same pass).

Standard input is first copied to a temporary file (in ``$TMPDIR``), in bounded memory,
because the engine reads its input many times; the copy is removed by ``close()``.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..errors import DataError
from ..io import _arrow_message, arrow_errors, detect_format, select_columns, to_array
from .memory import reduce_rows
from .summary import ColumnSummary, ScannedEngine

Array = NDArray[np.float64]
DEFAULT_BLOCK_ROWS = 65_536
_HEAD_BYTES = 1 << 16  # read to infer CSV types and estimate bytes per row
_MIN_CSV_BLOCK, _MAX_CSV_BLOCK = 1 << 20, 1 << 22  # bytes of CSV parsed at a time


class StreamEngine(ScannedEngine):
    """EM over a CSV/TSV/Parquet file read block by block (see module docstring).

    Args:
        source: a file path, or ``-`` for standard input (copied to a temporary file).
        fmt: ``csv``, ``tsv`` or ``parquet``; by default from the extension.
        columns: the columns to use (default: every numeric column).
        delimiter: CSV field separator.
        block_rows: rows per block read from the file (bounds the memory).

    Raises:
        DataError: unreadable input, unknown or non-numeric columns, no rows, infinite or
            missing values (the memory path's checks and messages).
    """

    def __init__(
        self,
        source: str,
        fmt: str | None = None,
        columns: Sequence[str] | None = None,
        delimiter: str | None = None,
        block_rows: int = DEFAULT_BLOCK_ROWS,
    ) -> None:
        if block_rows < 1:
            raise ValueError("block_rows must be at least 1")
        self.source = source
        self.kind = detect_format(source, fmt)
        self.block_rows = int(block_rows)
        self.delimiter = delimiter or ("\t" if self.kind == "tsv" else ",")
        self._temp: str | None = None
        self.path = self._spool_stdin() if source == "-" else _existing_file(source)
        head = self._guard(lambda: read_head(self.path, self.kind, self.delimiter))
        self.columns, self.notes = select_columns(head, columns, check_values=False)
        # complete_only (--missing drop): EM sees the rows without a missing cell only;
        # blocks() still gives every row, for the outputs.
        self.complete_only = False
        self.summary, self.complete = self._scan()

    # ------------------------------------------------------------------ protocol
    @property
    def n_samples(self) -> int:
        return self.fitted_summary.n_rows

    @property
    def dtype(self) -> Any:
        return np.float64

    def take(self, indices: NDArray[np.intp]) -> tuple[Array, Array | None]:
        """Rows ``indices`` (sorted) and their weights, collected in one pass."""
        indices = np.asarray(indices)
        out = np.empty((len(indices), self.n_features))
        offset = 0
        for xb in self._fit_arrays():
            lo, hi = np.searchsorted(indices, [offset, offset + len(xb)])
            out[lo:hi] = xb[indices[lo:hi] - offset]
            offset += len(xb)
        return out, None

    def e_step(self, family: Any, plan: Any) -> Any:
        """The family's statistics summed over the file, block by block (one pass)."""
        total = None
        for xb in self._fit_arrays():
            total = reduce_rows(family, plan, xb, total=total)
        return family.e_step(np.empty((0, self.n_features)), plan) if total is None else total

    def blocks(self, n_components: int) -> Iterator[Array]:
        return self._arrays()

    def close(self) -> None:
        if self._temp is not None:
            try:
                os.unlink(self._temp)
            except OSError:
                pass
            self._temp = None

    def __enter__(self) -> StreamEngine:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ------------------------------------------------------------------ reading
    def _scan(self) -> tuple[ColumnSummary, ColumnSummary]:
        """Summaries of all rows and of the complete rows (no missing cell)."""
        empty = ColumnSummary.of_block(np.empty((0, self.n_features)), 0)
        total, complete = empty, empty
        offset = 0
        for xb in self._arrays():
            total = total + ColumnSummary.of_block(xb, offset)
            complete = complete + ColumnSummary.of_block(_complete_rows(xb), 0)
            offset += len(xb)
        return total, complete

    def _fit_arrays(self) -> Iterator[Array]:
        """The blocks EM sees: every row, or the complete rows only (``complete_only``)."""
        for xb in self._arrays():
            yield _complete_rows(xb) if self.complete_only else xb

    def _arrays(self) -> Iterator[Array]:
        """The chosen columns as float64 arrays, block by block, in input order."""
        batches = self._guard(self._batches)
        while True:
            try:
                batch = self._guard(lambda: next(batches, None))
            except BaseException:
                _close(batches)
                raise
            if batch is None:
                return
            if batch.num_rows:
                x = self._to_array(batch)
                for start in range(0, len(x), self.block_rows):
                    yield x[start : start + self.block_rows]

    def _to_array(self, batch) -> Array:
        import pyarrow as pa

        return to_array(pa.Table.from_batches([batch]), self.columns)

    def _batches(self):
        if self.kind == "parquet":
            import pyarrow.parquet as pq

            handle = pq.ParquetFile(self.path, pre_buffer=False, buffer_size=1 << 20)
            return handle.iter_batches(batch_size=self.block_rows, columns=self.columns,
                                       use_threads=False)
        return self._csv_batches()

    def _csv_batches(self):
        # pyarrow's streaming CSV reader reads up to 32 blocks ahead in the background, so its
        # memory is not bounded by one block: cut the file at record ends ourselves and parse
        # each piece (after the header line) as a small CSV file.
        with open(self.path, "rb") as handle:
            header = b""
            for piece in record_pieces(handle, self._csv_block_bytes()):
                if not header:
                    end = _record_end(piece)
                    header, piece = piece[:end], piece[end:]
                if piece.strip():
                    table = parse_csv(header + piece, self.columns, self.delimiter)
                    yield from table.to_batches()

    def _csv_block_bytes(self) -> int:
        # Pieces of 1-4 MiB of CSV text (about block_rows rows), then cut to block_rows rows.
        with open(self.path, "rb") as handle:
            head = handle.read(_HEAD_BYTES)
        per_row = max(1.0, len(head) / max(1, head.count(b"\n")))
        return int(max(_MIN_CSV_BLOCK, min(_MAX_CSV_BLOCK, 1.5 * self.block_rows * per_row)))

    def _guard(self, call):
        return guarded(self.source, self.kind, call)

    def _spool_stdin(self) -> str:
        fd, temp = tempfile.mkstemp(prefix="emcli-stdin-", suffix=f".{self.kind}")
        self._temp = temp
        with os.fdopen(fd, "wb") as handle:
            shutil.copyfileobj(sys.stdin.buffer, handle, 1 << 20)
        return temp


def _existing_file(source: str) -> str:
    path = Path(source)
    if not path.exists():
        raise DataError(f"input file '{source}' does not exist")
    if path.is_dir():
        raise DataError(f"input '{source}' is a directory, not a file")
    return source


def _close(iterator: Any) -> None:
    close = getattr(iterator, "close", None)
    if close is not None:
        close()


def estimated_rows(path: str, kind: str) -> int:
    """Rows of a file: exact for Parquet (metadata), from the file size for CSV/TSV."""
    if kind == "parquet":
        import pyarrow.parquet as pq

        return int(pq.ParquetFile(path).metadata.num_rows)
    size = os.path.getsize(path)
    with open(path, "rb") as handle:
        head = handle.read(_HEAD_BYTES)
    lines = head.count(b"\n")
    if len(head) == size:  # the whole file was read
        return max(0, lines - 1 + (0 if head.endswith(b"\n") or not head else 1))
    header = head.find(b"\n") + 1
    per_row = max(1.0, (len(head) - header) / max(1, lines - 1))
    return int((size - header) / per_row)


def guarded(source: str, kind: str, call):
    """``call()``, with pyarrow's and the OS's read errors as DataError."""

    try:
        return call()
    except PermissionError:
        raise DataError(f"cannot read '{source}': permission denied") from None
    except arrow_errors() as exc:
        raise DataError(_arrow_message(source, kind, exc)) from None


def read_head(path: str, kind: str, delimiter: str):
    """A small leading pyarrow table of the file: column names, types and a few values."""
    import pyarrow as pa

    if kind == "parquet":
        import pyarrow.parquet as pq

        # pre_buffer=False: pyarrow would otherwise prefetch the whole file.
        handle = pq.ParquetFile(path, pre_buffer=False, buffer_size=1 << 20)
        first = next(handle.iter_batches(batch_size=1000, use_threads=False), None)
        if first is None:
            return handle.schema_arrow.empty_table()
        return pa.Table.from_batches([first])
    import pyarrow.csv as pcsv

    reader = pcsv.open_csv(
        path,
        read_options=pcsv.ReadOptions(block_size=_HEAD_BYTES),
        parse_options=pcsv.ParseOptions(delimiter=delimiter),
        convert_options=pcsv.ConvertOptions(strings_can_be_null=True),
    )
    first = next(iter(reader), None)
    if first is None:
        return reader.schema.empty_table()
    return pa.Table.from_batches([first])


def _unquoted_newlines(data: bytes) -> NDArray[np.intp]:
    """Positions of the newlines of ``data`` outside double quotes (data starts a record)."""
    raw = np.frombuffer(data, dtype=np.uint8)
    if b'"' not in data:
        return np.flatnonzero(raw == 0x0A)
    parity = np.cumsum(raw == 0x22, dtype=np.uint8) & 1  # uint8 wraps, parity survives
    return np.flatnonzero((raw == 0x0A) & (parity == 0))


def _record_end(data: bytes) -> int:
    """Position after the first record of ``data`` (the header line)."""
    ends = _unquoted_newlines(data)
    return int(ends[0]) + 1 if len(ends) else len(data)


def record_pieces(handle, size: int) -> Iterator[bytes]:
    """The bytes of ``handle`` in pieces of about ``size`` bytes, each ending at a record end
    (a newline outside double quotes; a longer record makes a longer piece)."""
    carry = b""
    while True:
        chunk = handle.read(size)
        if not chunk:
            if carry:
                yield carry
            return
        carry = carry + chunk if carry else chunk
        if b'"' not in carry:
            cut = carry.rfind(b"\n") + 1
        else:
            ends = _unquoted_newlines(carry)
            cut = int(ends[-1]) + 1 if len(ends) else 0
        if cut:
            yield carry[:cut]
            carry = carry[cut:]


def parse_csv(data: bytes, names: Sequence[str], delimiter: str):
    """A CSV text (header line and records) as a pyarrow Table of ``names``, all float64."""
    import io

    import pyarrow as pa
    import pyarrow.csv as pcsv

    convert = pcsv.ConvertOptions(strings_can_be_null=True, include_columns=list(names),
                                  column_types={name: pa.float64() for name in names})
    # One block for the whole text: a record may not straddle two blocks.
    read = pcsv.ReadOptions(use_threads=False, block_size=min(len(data) + 1, 2**31 - 1))
    return pcsv.read_csv(io.BytesIO(data), read_options=read,
                         parse_options=pcsv.ParseOptions(delimiter=delimiter),
                         convert_options=convert)


def _complete_rows(xb: Array) -> Array:
    """The rows of ``xb`` without a missing (NaN) cell."""
    gaps = np.isnan(xb).any(axis=1)
    return xb[~gaps] if gaps.any() else xb

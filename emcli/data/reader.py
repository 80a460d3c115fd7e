"""The one reader: a table from a file or standard input, whole or in row blocks.

``read_table`` reads every row into a float64 array (CSV/TSV by pyarrow's multi-threaded
reader, Parquet whole; standard input buffered).  ``open_blocks`` reads chosen columns block
by block in input order, memory bounded by the block whatever the file size: CSV/TSV in
pieces of ``CSV_BLOCK_BYTES`` cut at record ends (a newline outside double quotes), each
parsed by pyarrow; Parquet by record batches (standard input is spooled to a temporary file
first: Parquet keeps its metadata at the end).  Values convert exactly as in ``read_table``
(nulls and empty cells become NaN), so a block-wise pass sees the same numbers as the
in-memory path.  ``emcli.data.parts`` reads the same way by byte ranges and row groups.

A weights column (``weights``) comes with the rows as a float64 array of shape (rows,) (None
without one); it is never a feature.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO, Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from ..errors import DataError
from .checks import ColumnSummary
from .formats import (
    CellError,
    arrow_errors,
    arrow_message,
    check_input_path,
    check_names,
    detect_format,
    display_name,
    field_delimiter,
    guarded,
    is_numeric,
    not_numeric,
    parse_delimiter,
    select_columns,
    to_array,
    to_weights,
)

Array = NDArray[np.float64]
# Bytes of CSV parsed at a time, rows per Parquet batch: bounded memory, large enough for speed.
CSV_BLOCK_BYTES = 1 << 22
MIN_CSV_BLOCK_BYTES = 1 << 20  # with block_rows: about block_rows rows, within these bounds
PARQUET_BATCH_ROWS = 65536
HEAD_BYTES = 1 << 16  # read to infer CSV types and estimate bytes per row
ROW_GROUP_BYTES = 1 << 24  # a larger Parquet row group is read into memory a column at a time


@dataclass
class Table:
    """Numeric data read from a file.

    Attributes:
        x: values of shape (n_samples, n_features), float64, NaN where a cell is missing.
        columns: the names of the n_features columns.
        notes: things the user should know (skipped columns).
        weights: frequency weights of shape (n_samples,), float64, or None.
        weights_column: the name of the column the weights came from, or None.
    """

    x: Array
    columns: list[str]
    notes: list[str] = field(default_factory=list)
    weights: Array | None = None
    weights_column: str | None = None

    @property
    def missing(self) -> NDArray[np.bool_]:
        return np.isnan(self.x)


def read_arrow(source: str, fmt: str | None = None, delimiter: str | None = None) -> Any:
    """Read a whole file (or ``-`` for stdin) into a pyarrow Table."""
    parse_delimiter(delimiter)  # a bad delimiter fails before any reading
    check_input_path(source)
    kind = detect_format(source, fmt)
    if kind == "parquet":
        with _parquet_source(source) as handle:
            return _whole_arrow(source, kind, handle, delimiter)
    return _whole_arrow(source, kind, source, delimiter)


def _whole_arrow(source: str, kind: str, handle: Any, delimiter: str | None) -> Any:
    sep = field_delimiter(kind, delimiter)

    def read() -> Any:
        if kind == "parquet":
            import pyarrow.parquet as pq

            return pq.read_table(handle)
        import pyarrow.csv as pcsv

        data: Any = io.BytesIO(sys.stdin.buffer.read()) if handle == "-" else handle
        convert = pcsv.ConvertOptions(strings_can_be_null=True)
        return pcsv.read_csv(
            data, parse_options=pcsv.ParseOptions(delimiter=sep), convert_options=convert
        )

    return guarded(source, kind, read)


@contextlib.contextmanager
def _parquet_source(source: str) -> Iterator[Any]:
    """What pyarrow reads a Parquet ``source`` from: the path, or standard input spooled to
    a temporary file (on disk beyond 64 MB; Parquet keeps its metadata at the end)."""
    if source != "-":
        yield source
        return
    with tempfile.SpooledTemporaryFile(max_size=1 << 26) as spool:
        shutil.copyfileobj(sys.stdin.buffer, spool)
        spool.seek(0)
        yield spool


@contextlib.contextmanager
def _csv_source(source: str) -> Iterator[str]:
    """A path to read a CSV ``source`` from (twice if need be): the path, or standard input
    copied to a temporary file (``-`` when no temporary file can be made: read whole)."""
    if source != "-":
        yield source
        return
    try:
        spool = tempfile.NamedTemporaryFile(prefix="emcli-stdin-", suffix=".csv")
    except OSError:
        yield source
        return
    with spool:
        shutil.copyfileobj(sys.stdin.buffer, spool)
        spool.flush()
        yield spool.name


def _csv_rows(
    source: str,
    path: str,
    kind: str,
    columns: Sequence[str] | None,
    delimiter: str | None,
    weights: str | None,
) -> Table | None:
    """The checked ``Table`` of a CSV/TSV file parsed piece by piece into one growing array
    (the peak memory is the array and one piece, not the text and a whole Arrow table beside
    it), or None when that cannot give what the whole-table path gives: a column that is
    not numbers in some piece (the whole file decides a column's type), no data rows, or
    any parse error (``_table_of`` on the whole table then gives the note or the message)."""
    sep = field_delimiter(kind, delimiter)
    names: list[str] = []
    notes: list[str] = []
    nulls: NDArray[np.int64] = np.zeros(0, dtype=np.int64)
    x = np.empty((0, 0))
    w = np.empty(0) if weights is not None else None
    n = 0
    if path == "-":
        return None
    try:
        with open(path, "rb") as stream:
            pieces = record_pieces(stream, CSV_BLOCK_BYTES)
            head = next(pieces, b"")
            end = record_end(head)
            header, rest = head[:end], head[end:]
            check_names(parse_csv(header, [], sep).column_names, columns, weights)
            for piece in itertools.chain([rest], pieces):
                if not piece.strip():
                    continue
                table = _typed_piece(header + piece, sep, columns, weights)
                if not names:  # the first piece chooses the columns (checked against the rest)
                    names, notes = select_columns(table, columns, False, weights)
                    rows = max(estimated_rows(path, kind), 1024)
                    x = np.empty((rows + rows // 8, len(names)), dtype=np.float64)
                    w = None if weights is None else np.empty(len(x), dtype=np.float64)
                    nulls = np.zeros(len(names), dtype=np.int64)
                wanted = [*names, *([weights] if weights is not None else [])]
                if not all(_numeric_or_null(table, name) for name in wanted):
                    return None
                if n + table.num_rows > len(x):  # grown in place where the allocator can
                    x.resize((2 * (n + table.num_rows), len(names)), refcheck=False)
                    if w is not None:
                        w.resize(len(x), refcheck=False)
                to_array(table, names, out=x[n : n + table.num_rows])
                if w is not None:
                    w[n : n + table.num_rows] = to_weights(table, weights)
                nulls += [table.column(name).null_count for name in names]
                n += table.num_rows
    except (DataError, *arrow_errors()):  # type: ignore[misc]
        return None
    if n == 0:
        return None
    empty = [name for name, count in zip(names, nulls, strict=True) if count == n]
    if empty:
        raise DataError(f"column '{empty[0]}' has no values; leave it out with {{columns}}")
    x.resize((n, len(names)), refcheck=False)
    if w is not None:
        w.resize(n, refcheck=False)
    return _checked(x, names, notes, w, weights)


def _typed_piece(data: bytes, sep: str, columns: Sequence[str] | None, weights: str | None) -> Any:
    """A CSV piece (header line and records) as a pyarrow Table with inferred types: the
    header's columns, or only ``columns`` and ``weights`` when columns are named."""
    import pyarrow.csv as pcsv

    include = [*columns, *([weights] if weights is not None else [])] if columns else []
    convert = pcsv.ConvertOptions(strings_can_be_null=True, include_columns=include)
    read = pcsv.ReadOptions(use_threads=True, block_size=min(len(data) + 1, 1 << 20))
    parse = pcsv.ParseOptions(delimiter=sep, newlines_in_values=b'"' in data)
    return pcsv.read_csv(
        io.BytesIO(data), read_options=read, parse_options=parse, convert_options=convert
    )


def _numeric_or_null(table: Any, name: str) -> bool:
    import pyarrow.types as pt

    kind = table.schema.field(name).type
    return is_numeric(kind) or pt.is_null(kind)


def read_table(
    source: str,
    fmt: str | None = None,
    columns: Sequence[str] | None = None,
    delimiter: str | None = None,
    weights: str | None = None,
) -> Table:
    """Read a numeric table from a file path or ``-`` (stdin).

    Args:
        source: a CSV, TSV or Parquet file, or ``-`` for standard input.
        fmt: "csv", "tsv" or "parquet" (default: from the extension; for stdin Parquet when
            it starts with Parquet's magic bytes, else CSV).
        columns: the feature columns (default: every numeric column but ``weights``).
        delimiter: the CSV field separator (default: ``,``; a tab for TSV).
        weights: a column of frequency weights (``Table.weights``); not a feature.

    Parquet is read row group by row group (a large one column by column) straight into
    the float64 array: the peak memory is the array and one column chunk, not a whole Arrow
    table beside it.

    Raises:
        DataError: unreadable input, no rows, no numeric column, infinite values, bad
            weights (negative, missing, infinite, non-numeric, all 0), ...
    """
    parse_delimiter(delimiter)  # a bad delimiter fails before any reading
    check_input_path(source)
    kind = detect_format(source, fmt)
    if kind != "parquet" and columns is None and weights is None and source != "-":
        table = _small_plain_csv(source, field_delimiter(kind, delimiter))
        if table is not None:
            return table
    if kind != "parquet":
        with _csv_source(source) as path:
            table = _csv_rows(source, path, kind, columns, delimiter, weights)
            _release_arrow_memory()
            if table is None:  # not plain numbers, or a parse error: the whole-table path
                whole = _whole_arrow(source, kind, path, delimiter)
                table = _table_of(source, whole, columns, weights)
            return table
    with _parquet_source(source) as handle:
        table = _parquet_rows(source, handle, columns, weights)
        _release_arrow_memory()
        if table is None:  # no rows, or a column that is not numbers: the whole-table path
            table = _table_of(source, _whole_arrow(source, kind, handle, None), columns, weights)
        return table


# A CSV file up to this size that holds plain numbers only is parsed here, without pyarrow
# (whose import is 40 ms of a run on a table of a few hundred rows).
SMALL_CSV_BYTES = 1 << 16
# Cells pyarrow reads as numbers (as int64 when a column's every cell is an integer, else as
# float64), and its default null values (read as NaN); any other cell, a quote, a carriage
# return but in CRLF, or a ragged row sends the file to pyarrow.
_INTEGER = re.compile(r"-?[0-9]{1,15}")
_DECIMAL = re.compile(r"-?[0-9]{1,300}(?:\.[0-9]{1,300})?(?:[eE][-+]?[0-9]{1,3})?")
_NULLS = frozenset(
    ["", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND",
     "1.#QNAN", "N/A", "NA", "NULL", "NaN", "n/a", "nan", "null"]
)  # fmt: skip


def _small_plain_csv(source: str, sep: str) -> Table | None:
    """The checked ``Table`` of a small CSV/TSV file of plain numbers (every column taken,
    as pyarrow's path takes them: the same values, names and checks), or None when the file
    is larger than ``SMALL_CSV_BYTES`` or holds anything else."""
    try:
        if os.path.getsize(source) > SMALL_CSV_BYTES:
            return None
        with open(source, "rb") as stream:
            text = stream.read().decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    text = text.replace("\r\n", "\n")
    if '"' in text or "\r" in text or text.startswith("\ufeff") or len(sep) != 1:
        return None
    lines = [line for line in text.split("\n") if line]
    if len(lines) < 2:
        return None
    names = lines[0].split(sep)
    cells = [line.split(sep) for line in lines[1:]]
    if any(len(row) != len(names) for row in cells):
        return None
    try:
        check_names(names, None, None)
    except DataError:
        return None
    x = np.empty((len(cells), len(names)), dtype=np.float64)
    for j, column in enumerate(zip(*cells, strict=True)):
        values = [c for c in column if c not in _NULLS]
        if not values:  # a column of nulls: pyarrow's path says so
            return None
        if all(_INTEGER.fullmatch(c) for c in values):
            convert: Any = int  # int64 then float64: "-0" is 0.0, as pyarrow reads it
        elif all(_DECIMAL.fullmatch(c) for c in values):
            convert = float
        else:
            return None
        x[:, j] = [np.nan if c in _NULLS else float(convert(c)) for c in column]
    return _checked(x, names, [], None, None)


def _release_arrow_memory() -> None:
    """Give the memory pyarrow's pool keeps for reuse back to the system (the decoded
    pieces are gone once they are in the array; EM needs that memory, pyarrow does not)."""
    import pyarrow as pa

    pa.default_memory_pool().release_unused()


def _table_of(source: str, table: Any, columns: Sequence[str] | None, weights: str | None) -> Table:
    """The checked ``Table`` of a whole pyarrow ``table``."""
    if table.num_rows == 0:
        raise DataError(f"'{source}' has a header but no data rows")
    names, notes = select_columns(table, columns, weights=weights)
    x = to_array(table, names)
    w = to_weights(table, weights)
    return _checked(x, names, notes, w, weights)


def _checked(
    x: Array, names: list[str], notes: list[str], w: Array | None, weights: str | None
) -> Table:
    summary = ColumnSummary.of_block(x, 0, w)
    summary.check_values(names, too_large=False)
    summary.check_weights(weights)
    return Table(x, names, notes, w, weights)


def _parquet_rows(
    source: str, handle: Any, columns: Sequence[str] | None, weights: str | None
) -> Table | None:
    """The checked ``Table`` of a Parquet file read row group by row group into one
    preallocated array, or None when it has no rows or a wanted column of another type than numbers
    (``_table_of`` on the whole table then gives the messages)."""
    import pyarrow.parquet as pq

    kind = "parquet"
    # Buffered reads without read-ahead: pyarrow's defaults fetch the whole file first.
    file = guarded(
        source, kind, lambda: pq.ParquetFile(handle, pre_buffer=False, buffer_size=1 << 20)
    )
    n = file.metadata.num_rows
    schema = file.schema_arrow
    wanted = [*(columns or ()), *([weights] if weights is not None else [])]
    if n == 0:
        return None
    check_names(schema.names, columns, weights)
    if any(not is_numeric(schema.field(name).type) for name in wanted):
        return None
    names, notes = select_columns(
        schema.empty_table(), columns, check_values=False, weights=weights
    )
    if any(not is_numeric(schema.field(name).type) for name in names):
        return None  # a column of nulls only: "has no values"
    x = np.empty((n, len(names)), dtype=np.float64)
    w = np.empty(n, dtype=np.float64) if weights is not None else None
    targets = [(name, x[:, j]) for j, name in enumerate(names)]
    if w is not None and weights is not None:
        targets.append((weights, w))
    nulls = dict.fromkeys(names, 0)
    start = 0
    for group in range(file.metadata.num_row_groups):
        rows = file.metadata.row_group(group).num_rows
        for name, values, table in _row_group_columns(source, file, group, targets):
            if name in nulls:
                nulls[name] += table.column(name).null_count
            _column_into(table.column(name), values[start : start + rows])
        start += rows
    empty = [name for name in names if nulls[name] == n]
    if empty:
        raise DataError(f"column '{empty[0]}' has no values; leave it out with {{columns}}")
    return _checked(x, names, notes, w, weights)


def read_head(path: str, kind: str, delimiter: str | None = None) -> Any:
    """A small leading pyarrow table of a file: column names, types and a few values."""
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
        read_options=pcsv.ReadOptions(block_size=HEAD_BYTES),
        parse_options=pcsv.ParseOptions(delimiter=field_delimiter(kind, delimiter)),
        convert_options=pcsv.ConvertOptions(strings_can_be_null=True),
    )
    first = next(iter(reader), None)
    if first is None:
        return reader.schema.empty_table()
    return pa.Table.from_batches([first])


def estimated_rows(path: str, kind: str) -> int:
    """Rows of a file: exact for Parquet (metadata), from the file size for CSV/TSV."""
    if kind == "parquet":
        import pyarrow.parquet as pq

        return int(pq.ParquetFile(path).metadata.num_rows)
    size = os.path.getsize(path)
    with open(path, "rb") as handle:
        head = handle.read(HEAD_BYTES)
    lines = head.count(b"\n")
    if len(head) == size:  # the whole file was read
        return max(0, lines - 1 + (0 if head.endswith(b"\n") or not head else 1))
    header = head.find(b"\n") + 1
    per_row = max(1.0, (len(head) - header) / max(1, lines - 1))
    return int((size - header) / per_row)


def _row_group_columns(
    source: str, file: Any, group: int, targets: list[tuple[str, Array]]
) -> Iterator[tuple[str, Array, Any]]:
    """(name, target, pyarrow table holding column name) for the ``targets`` of row group
    ``group``: all at once for a small group, one column at a time for a large one (so at
    most one decoded column chunk is held beside the array)."""
    small = file.metadata.row_group(group).total_byte_size <= ROW_GROUP_BYTES
    names = [name for name, _ in targets]
    if small:
        table = guarded(
            source, "parquet", lambda: file.read_row_group(group, columns=names, use_threads=False)
        )
        for name, values in targets:
            yield name, values, table
        return
    for name, values in targets:
        table = guarded(
            source,
            "parquet",
            lambda: file.read_row_group(group, columns=[name], use_threads=False),  # noqa: B023
        )
        yield name, values, table
        del table


def _column_into(column: Any, out: NDArray[np.float64]) -> None:
    """A pyarrow numeric column (chunked) into ``out`` of shape (rows,), nulls as NaN."""
    import pyarrow as pa

    from .formats import float_values

    start = 0
    for chunk in column.chunks:
        size = len(chunk)
        out[start : start + size] = float_values(chunk.cast(pa.float64()))
        start += size


# ---------------------------------------------------------------------------- blocks
class Block(NamedTuple):
    """Consecutive rows of the input: ``x`` of shape (rows, n_features) from data row
    ``first`` (0-based), and their weights ``w`` of shape (rows,), or None."""

    first: int
    x: Array
    w: Array | None


class BlockReader:
    """The ``Block``s of an input, in input order (``open_blocks``); iterate once.

    Attributes:
        source: the path given (``-`` for standard input).
        columns: the feature columns read, in the order of the array's columns.
        weights_column: the weights column read, or None.
    """

    def __init__(
        self,
        source: str,
        columns: list[str],
        weights: str | None,
        tables: Iterator[Any],
        closer: Any = None,
    ) -> None:
        self.source = source
        self.columns = columns
        self.weights_column = weights
        self._tables = tables
        self._closer = closer

    def blocks(self, rows: int | None = None) -> Iterator[Block]:
        """The blocks as read, each cut into pieces of at most ``rows`` rows when given."""
        first = 0
        try:
            for table in self._tables:
                x = to_array(table, self.columns)
                w = to_weights(table, self.weights_column)
                step = rows or max(len(x), 1)
                for start in range(0, len(x), step):
                    stop = start + step
                    yield Block(first + start, x[start:stop], None if w is None else w[start:stop])
                first += len(x)
        finally:
            self.close()

    def __iter__(self) -> Iterator[Block]:
        return self.blocks()

    def close(self) -> None:
        """Close the file (standard input stays open); also done when iteration ends."""
        if self._closer is not None:
            self._closer.close()
            self._closer = None
        close = getattr(self._tables, "close", None)
        if close is not None:
            close()

    def __enter__(self) -> BlockReader:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def open_blocks(
    source: str,
    columns: Sequence[str],
    fmt: str | None = None,
    delimiter: str | None = None,
    weights: str | None = None,
    block_rows: int | None = None,
    name: str | None = None,
    threads: bool = True,
) -> BlockReader:
    """Open ``source`` (``-``: standard input) to read ``columns``, in that order, by blocks.

    Args:
        columns: the feature columns to read (e.g. a model's).
        weights: a column of frequency weights, read alongside (``Block.w``).
        block_rows: rows per Parquet batch (default ``PARQUET_BATCH_ROWS``) and, roughly,
            per CSV piece (``MIN_CSV_BLOCK_BYTES`` to ``CSV_BLOCK_BYTES``); iterate
            ``reader.blocks(block_rows)`` to cut every block to at most that many rows.
        name: how messages name the input (default: ``source``), e.g. for a spooled copy.
        threads: parse CSV on pyarrow's threads (about 1.8x faster on two cores; its
            per-thread arenas add some 20 MB to the peak memory, once).

    Raises:
        DataError: unreadable input, a missing, duplicated or non-numeric column (the
            header is read here, so this fails before any output is written).
    """
    label = name or source
    check_input_path(source)
    kind = detect_format(source, fmt)
    sep = field_delimiter(kind, delimiter)
    if weights is not None and weights in columns:
        raise DataError(
            f"column {weights!r} is the weights column ({{weights}}); leave it out "
            "of {columns}: weights are not a feature"
        )
    if kind == "parquet":
        tables, closer = guarded(
            label,
            kind,
            lambda: _parquet_tables(
                source, label, list(columns), weights, block_rows or PARQUET_BATCH_ROWS
            ),
        )
    else:
        size = guarded(label, kind, lambda: _piece_bytes(source, block_rows))
        tables, closer = _csv_tables(
            source, label, list(columns), weights, sep, kind, threads, size
        )
    return BlockReader(label, list(columns), weights, tables, closer)


def _check_header(
    label: str, names: Sequence[str], columns: Sequence[str], weights: str | None
) -> None:
    where = display_name(label)
    missing = [c for c in columns if c not in names]
    if missing:
        raise DataError(
            f"{where} has no column {', '.join(map(repr, missing))} (the model's columns are "
            f"{', '.join(columns)}; the input has {', '.join(names) or 'none'}); map input "
            "columns to the model's with {columns}"
        )
    if weights is not None and weights not in names:
        raise DataError(
            f"unknown weights column {weights!r}; the input has: "
            f"{', '.join(map(repr, names))}; choose the weights column with {{weights}}"
        )
    wanted = [*columns, *([weights] if weights is not None else [])]
    twice = [c for c in wanted if list(names).count(c) > 1]
    if twice:
        raise DataError(
            f"{where} has more than one column named {', '.join(map(repr, twice))}; "
            "rename them so each column has its own name"
        )


# ---------------------------------------------------------------------------- CSV
def _piece_bytes(source: str, block_rows: int | None) -> int:
    """Bytes of CSV per piece: about 1.5 ``block_rows`` rows (from the width of the first
    rows of a file), within bounds.  Measured for the stream engine: 4 MiB pieces raised its
    peak memory with the file size (allocator retention), 2.4 MB ones did not."""
    if not block_rows or source == "-":
        return CSV_BLOCK_BYTES
    with open(source, "rb") as handle:
        head = handle.read(HEAD_BYTES)
    per_row = max(1.0, len(head) / max(1, head.count(b"\n")))
    return int(max(MIN_CSV_BLOCK_BYTES, min(CSV_BLOCK_BYTES, 1.5 * block_rows * per_row)))


def _csv_tables(
    source: str,
    label: str,
    columns: list[str],
    weights: str | None,
    sep: str,
    kind: str,
    threads: bool,
    size: int,
) -> tuple[Iterator[Any], Any]:
    """The pieces of a CSV input as pyarrow tables (header checked now), and the file to
    close (None for standard input)."""
    stream: IO[bytes] = (
        sys.stdin.buffer if source == "-" else guarded(label, kind, lambda: open(source, "rb"))
    )
    closer = None if stream is sys.stdin.buffer else stream
    try:
        pieces = record_pieces(stream, size)
        head = next(pieces, b"")
        end = record_end(head)
        header, rest = head[:end], head[end:]
        if not header.strip():
            raise DataError(
                f"{display_name(label)} is empty; give a CSV file with a header row and data rows"
            )
        names = guarded(label, kind, lambda: parse_csv(header, [], sep).column_names)
        _check_header(label, names, columns, weights)
    except BaseException:
        if closer is not None:
            closer.close()
        raise
    wanted = columns + ([weights] if weights is not None else [])
    parsed = _parsed_pieces(
        label, kind, header, names, itertools.chain([rest], pieces), wanted, sep, weights, threads
    )
    return parsed, closer


def _parsed_pieces(
    label: str,
    kind: str,
    header: bytes,
    names: list[str],
    pieces: Iterator[bytes],
    wanted: list[str],
    sep: str,
    weights: str | None,
    threads: bool,
) -> Iterator[Any]:
    first = 0
    for piece in pieces:
        if not piece.strip():
            continue
        table = parse_piece(
            header + piece, names, wanted, sep, label, kind, first, weights, threads
        )
        first += table.num_rows
        yield table


def parse_piece(
    data: bytes,
    header: Sequence[str],
    wanted: Sequence[str],
    sep: str,
    label: str,
    kind: str,
    first_row: int,
    weights: str | None,
    threads: bool = True,
) -> Any:
    """``parse_csv`` of a piece whose first data row is input row ``first_row``: a value
    that is not a number raises a CellError naming its column and row."""
    import pyarrow as pa

    try:
        return parse_csv(data, wanted, sep, threads)
    except pa.ArrowInvalid as exc:
        found = _bad_cell(data, header, wanted, sep, str(exc))
        if found is None:
            raise DataError(arrow_message(label, kind, exc)) from None
        column, row, value = found
        raise CellError(column, first_row + row, value, column == weights) from None
    except arrow_errors() as exc:
        raise DataError(arrow_message(label, kind, exc)) from None


def _bad_cell(
    data: bytes, header: Sequence[str], wanted: Sequence[str], sep: str, message: str
) -> tuple[str, int, Any] | None:
    """(column, row, value) of the cell pyarrow could not convert to a number, or None."""
    import re

    import pyarrow as pa

    from .formats import first_non_number

    found = re.search(r"In CSV column #(\d+): .*invalid value", message)
    if not found or int(found.group(1)) >= len(header):
        return None
    column = header[int(found.group(1))]
    try:
        text = parse_csv(data, wanted, sep, threads=False, as_text=column)
    except pa.ArrowInvalid:  # not even text (invalid UTF-8): the generic message
        return None
    cell = first_non_number(text.column(column))
    return None if cell is None else (column, cell[0], cell[1])


def parse_csv(
    data: bytes,
    names: Sequence[str],
    delimiter: str,
    threads: bool = False,
    as_text: str | None = None,
) -> Any:
    """A CSV text (header line and records) as a pyarrow Table of ``names``, all float64
    (column ``as_text``: strings).  ``names`` empty: the header's columns, untyped."""
    import pyarrow as pa
    import pyarrow.csv as pcsv

    types = {name: pa.string() if name == as_text else pa.float64() for name in names}
    convert = pcsv.ConvertOptions(
        strings_can_be_null=True, include_columns=list(names), column_types=types
    )
    # Blocks of 1 MiB parsed on pyarrow's threads; with quotes in the text the chunker must
    # look for record ends outside quotes (newlines_in_values).
    block = min(len(data) + 1, 1 << 20) if threads else min(len(data) + 1, 2**31 - 1)
    read = pcsv.ReadOptions(use_threads=threads, block_size=block)
    parse = pcsv.ParseOptions(delimiter=delimiter, newlines_in_values=b'"' in data)
    return pcsv.read_csv(
        io.BytesIO(data), read_options=read, parse_options=parse, convert_options=convert
    )


def unquoted_newlines(data: bytes) -> NDArray[np.intp]:
    """Positions of the newlines of ``data`` outside double quotes (data starts a record)."""
    raw = np.frombuffer(data, dtype=np.uint8)
    if b'"' not in data:
        return np.flatnonzero(raw == 0x0A)
    parity = np.cumsum(raw == 0x22, dtype=np.uint8) & 1  # uint8 wraps, parity survives
    return np.flatnonzero((raw == 0x0A) & (parity == 0))


def record_end(data: bytes) -> int:
    """Position after the first record of ``data`` (the header line)."""
    ends = unquoted_newlines(data)
    return int(ends[0]) + 1 if len(ends) else len(data)


def record_pieces(handle: IO[bytes], size: int) -> Iterator[bytes]:
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
            ends = unquoted_newlines(carry)
            cut = int(ends[-1]) + 1 if len(ends) else 0
        if cut:
            yield carry[:cut]
            carry = carry[cut:]


# ---------------------------------------------------------------------------- Parquet
def _parquet_tables(
    source: str, label: str, columns: list[str], weights: str | None, batch_rows: int
) -> tuple[Iterator[Any], Any]:
    import pyarrow.parquet as pq

    spool = None
    if source == "-":
        # Parquet keeps its metadata at the end: spool standard input to a temporary file
        # (on disk beyond 64 MB) and read that.
        spool = tempfile.SpooledTemporaryFile(max_size=1 << 26)
        shutil.copyfileobj(sys.stdin.buffer, spool)
        spool.seek(0)
    try:
        # Buffered, single-threaded reads keep memory flat whatever the file size (pyarrow's
        # defaults read ahead and grew with the file; measured for the stream engine).
        handle = pq.ParquetFile(
            spool if spool is not None else source, pre_buffer=False, buffer_size=1 << 20
        )
        _check_header(label, handle.schema_arrow.names, columns, weights)
        wanted = columns + ([weights] if weights is not None else [])
        for name in wanted:
            if not is_numeric(handle.schema_arrow.field(name).type):
                raise _parquet_not_numeric(handle, name, name == weights)
        batches = handle.iter_batches(batch_size=batch_rows, columns=wanted, use_threads=False)
    except BaseException:
        if spool is not None:
            spool.close()
        raise
    return _parquet_batches(label, batches), spool


def _parquet_batches(label: str, batches: Iterator[Any]) -> Iterator[Any]:
    import pyarrow as pa

    while True:
        batch = guarded(label, "parquet", lambda: next(batches, None))
        if batch is None:
            return
        yield pa.Table.from_batches([batch])


def _parquet_not_numeric(handle: Any, name: str, weights: bool) -> DataError:
    """The error for a Parquet column of another type than numbers (first bad cell)."""
    import pyarrow as pa

    first = 0
    for batch in handle.iter_batches(
        batch_size=PARQUET_BATCH_ROWS, columns=[name], use_threads=False
    ):
        error = not_numeric(pa.Table.from_batches([batch]), name, weights, first)
        if isinstance(error, CellError) or first + batch.num_rows >= handle.metadata.num_rows:
            return error
        first += batch.num_rows
    return not_numeric(handle.schema_arrow.empty_table(), name, weights)


# ---------------------------------------------------------------------------- rebatching
def rebatch(blocks: Iterable[Block], rows: int) -> Iterator[Block]:
    """The same rows as ``blocks``, cut into blocks of exactly ``rows`` (the last: fewer)."""
    pending: list[Block] = []
    held = 0
    first = 0
    for block in blocks:
        pending.append(block)
        held += block.x.shape[0]
        if held < rows:
            continue
        x, w = _joined(pending)
        cut = (held // rows) * rows
        for s in range(0, cut, rows):
            yield Block(first, x[s : s + rows], None if w is None else w[s : s + rows])
            first += rows
        pending = [Block(first, x[cut:], None if w is None else w[cut:])] if cut < held else []
        held -= cut
    if held:
        yield Block(first, *_joined(pending))


def _joined(blocks: list[Block]) -> tuple[Array, Array | None]:
    if len(blocks) == 1:
        return blocks[0].x, blocks[0].w
    x = np.concatenate([b.x for b in blocks])
    w = None if blocks[0].w is None else np.concatenate([b.w for b in blocks])  # type: ignore
    return x, w

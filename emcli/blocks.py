"""Reading a table block by block, for inputs larger than memory.

``open_blocks`` reads the named columns of a CSV/TSV/Parquet file (or ``-``, standard input)
as float64 row blocks, using pyarrow's streaming CSV reader or Parquet row-group batches, so
memory stays bounded by the block size whatever the size of the file.  Values are converted
exactly as ``emcli.io.read_table`` converts them (nulls and empty cells become NaN), so a
block-wise pass sees the same numbers as the in-memory path.

``rebatch`` cuts the stream into blocks of a fixed number of rows: computing on the same
row blocks as the in-memory code makes the results bit-for-bit equal to it, whatever block
sizes the reader happened to produce.
"""

from __future__ import annotations

import io
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator, Sequence
from typing import IO, Any

import numpy as np
from numpy.typing import NDArray

from .errors import DataError
from .io import (
    _arrow_message,
    _is_numeric,
    arrow_errors,
    check_input_path,
    detect_format,
    parse_delimiter,
)

Array = NDArray[np.float64]
# Bytes per CSV read block and rows per Parquet batch: bounded memory, large enough for speed.
CSV_BLOCK_BYTES = 1 << 22
PARQUET_BATCH_ROWS = 65536
_HEAD_CHUNK = 1 << 16


class BlockReader:
    """Iterate over ``(first_row, x)`` blocks of the chosen columns.

    Attributes:
        source: the path given (``-`` for standard input).
        columns: names of the input columns read, in the order of the array's columns.
    """

    def __init__(self, source: str, columns: list[str], batches: Iterator[Any],
                 kind: str, closer: Any = None, header: Sequence[str] = ()) -> None:
        self.source = source
        self.columns = columns
        self._header = list(header)
        self._batches = batches
        self._kind = kind
        self._closer = closer

    def __iter__(self) -> Iterator[tuple[int, Array]]:
        import pyarrow as pa

        first = 0
        try:
            for batch in self._batches:
                n = batch.num_rows
                x = np.empty((n, len(self.columns)), dtype=np.float64)
                for j, name in enumerate(self.columns):
                    col = batch.column(name).cast(pa.float64())
                    x[:, j] = col.to_numpy(zero_copy_only=False) if n else []
                if n:
                    yield first, x
                first += n
        except arrow_errors() as exc:
            raise DataError(self._message(exc)) from None
        finally:
            self.close()

    def _message(self, exc: Exception) -> str:
        return _read_message(self.source, self._kind, exc, self._header)

    def close(self) -> None:
        if self._closer is not None:
            self._closer.close()
            self._closer = None


def open_blocks(source: str, columns: Sequence[str], fmt: str | None = None,
                delimiter: str | None = None) -> BlockReader:
    """Open ``source`` to read ``columns`` (in that order) block by block.

    Raises:
        DataError: unreadable input, a missing, duplicated or non-numeric column.
    """

    check_input_path(source)
    kind = detect_format(source, fmt)
    delimiter = parse_delimiter(delimiter)
    try:
        if kind == "parquet":
            return _open_parquet(source, list(columns))
        return _open_csv(source, list(columns), delimiter or ("\t" if kind == "tsv" else ","),
                         kind)
    except PermissionError:
        raise DataError(f"cannot read '{source}': permission denied") from None
    except arrow_errors() as exc:
        raise DataError(_arrow_message(source, kind, exc)) from None


def _read_message(source: str, kind: str, exc: Exception, header: Sequence[str]) -> str:
    # pyarrow numbers the file's columns from 0; name the column instead.
    found = re.search(r"In CSV column #(\d+): .*invalid value '(.*)'", str(exc))
    if found and int(found.group(1)) < len(header):
        name = header[int(found.group(1))]
        return (f"column '{name}' is not numeric (it holds {found.group(2)!r}); the model "
                "needs numbers: map input columns to the model's with -c/--columns")
    return _arrow_message(source, kind, exc)


def _check_names(source: str, names: Sequence[str], wanted: Sequence[str]) -> None:
    where = "standard input" if source == "-" else f"'{source}'"
    missing = [c for c in wanted if c not in names]
    if missing:
        raise DataError(
            f"{where} has no column {', '.join(map(repr, missing))} (the model's columns are "
            f"{', '.join(wanted)}; the input has {', '.join(names) or 'none'}); map input "
            "columns to the model's with -c/--columns"
        )
    twice = [c for c in wanted if list(names).count(c) > 1]
    if twice:
        raise DataError(
            f"{where} has more than one column named {', '.join(map(repr, twice))}; "
            "rename them so each column has its own name"
        )


# ---------------------------------------------------------------------------- CSV
def _open_csv(source: str, columns: list[str], delimiter: str, kind: str) -> BlockReader:
    import pyarrow as pa
    import pyarrow.csv as pcsv

    parse = pcsv.ParseOptions(delimiter=delimiter)
    stream: IO[bytes] = sys.stdin.buffer if source == "-" else open(source, "rb")  # noqa: SIM115
    try:
        head, end = _first_record(stream)
        if not head.strip():
            name = "standard input" if source == "-" else f"'{source}'"
            raise DataError(f"{name} is empty; give a CSV file with a header row and data rows")
        names = pcsv.open_csv(io.BytesIO(head[:end]), parse_options=parse).schema.names
        _check_names(source, names, columns)
        convert = pcsv.ConvertOptions(
            include_columns=columns,
            column_types={c: pa.float64() for c in columns},
            strings_can_be_null=True,
        )
        reader_input = io.BufferedReader(_Chain(head, stream), buffer_size=_HEAD_CHUNK)
        try:
            reader = pcsv.open_csv(reader_input, parse_options=parse, convert_options=convert,
                                   read_options=pcsv.ReadOptions(block_size=CSV_BLOCK_BYTES))
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise DataError(_read_message(source, kind, exc, names)) from None
    except BaseException:
        if stream is not sys.stdin.buffer:
            stream.close()
        raise
    closer = None if stream is sys.stdin.buffer else stream
    return BlockReader(source, columns, iter(reader), kind, closer, header=names)


def _first_record(stream: IO[bytes]) -> tuple[bytes, int]:
    """Bytes read from the start of ``stream`` (at least the header record), and the
    position where the header record ends."""
    head = b""
    while True:
        chunk = stream.read(_HEAD_CHUNK)
        head += chunk
        end = _record_end(head)
        if end is not None:
            return head, end
        if not chunk:
            return head, len(head)


def _record_end(data: bytes) -> int | None:
    """Position after the first newline outside double quotes, or None."""
    quoted = False
    for i, byte in enumerate(data):
        if byte == 0x22:  # '"'
            quoted = not quoted
        elif byte == 0x0A and not quoted:
            return i + 1
    return None


class _Chain(io.RawIOBase):
    """Bytes already read (``head``), then the rest of ``stream``."""

    def __init__(self, head: bytes, stream: IO[bytes]) -> None:
        self._head = memoryview(head)
        self._stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if len(self._head):
            n = min(len(buffer), len(self._head))
            buffer[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._stream.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


# ---------------------------------------------------------------------------- Parquet
def _open_parquet(source: str, columns: list[str]) -> BlockReader:
    import pyarrow.parquet as pq

    spool = None
    if source == "-":
        # Parquet keeps its metadata at the end: spool standard input to a temporary file
        # (on disk beyond 64 MB) and read that.
        spool = tempfile.SpooledTemporaryFile(max_size=1 << 26)  # noqa: SIM115
        shutil.copyfileobj(sys.stdin.buffer, spool)
        spool.seek(0)
    try:
        # Buffered, single-threaded reads keep memory flat whatever the file size (pyarrow's
        # defaults read ahead and grew with the file; measured for the stream engine).
        handle = pq.ParquetFile(spool if spool is not None else source, pre_buffer=False,
                                buffer_size=1 << 20)
        schema = handle.schema_arrow
        _check_names(source, schema.names, columns)
        for name in columns:
            kind = schema.field(name).type
            if not _is_numeric(kind):
                raise DataError(
                    f"column '{name}' is not numeric (it holds {kind} values); the model "
                    "needs numbers: map input columns to the model's with -c/--columns"
                )
        batches = handle.iter_batches(batch_size=PARQUET_BATCH_ROWS, columns=columns,
                                      use_threads=False)
    except BaseException:
        if spool is not None:
            spool.close()
        raise
    return BlockReader(source, columns, batches, "parquet", spool)


# ---------------------------------------------------------------------------- blocks
def rebatch(blocks: Iterator[tuple[int, Array]], rows: int) -> Iterator[tuple[int, Array]]:
    """The same rows as ``blocks``, cut into blocks of exactly ``rows`` (the last: fewer)."""
    pending: list[Array] = []
    held = 0
    first = 0
    for _, x in blocks:
        pending.append(x)
        held += x.shape[0]
        if held < rows:
            continue
        data = np.concatenate(pending) if len(pending) > 1 else pending[0]
        cut = (held // rows) * rows
        for s in range(0, cut, rows):
            yield first, data[s : s + rows]
            first += rows
        pending = [data[cut:]] if cut < held else []
        held -= cut
    if held:
        yield first, np.concatenate(pending) if len(pending) > 1 else pending[0]

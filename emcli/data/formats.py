"""What every reader shares: formats, delimiters, column choice, pyarrow errors, conversion.

A table is CSV, TSV or Parquet, chosen by the file extension (``fmt`` overrides); ``-`` is
standard input (Parquet when it starts with Parquet's magic bytes ``PAR1``, else CSV, unless
``fmt`` says otherwise).  Empty cells and the usual null spellings
(NA, NaN, null, N/A, ...) become NaN.  Columns are chosen by name (``columns``) or, by
default, every numeric column; a frequency-weights column (``weights``) is never a feature.

Messages name the Python parameters as ``{columns}``, ``{fmt}``, ``{delimiter}``,
``{weights}`` (``emcli.errors.render``: the CLI shows its flags instead).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from numpy.typing import NDArray

from ..errors import DataError, UsageError

Array = NDArray[np.float64]
T = TypeVar("T")
FORMATS = ("csv", "tsv", "parquet")
# A table's format by its file extension (also the document readers', emcli.data.text).
EXTENSIONS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".parquet": "parquet", ".pq": "parquet"}


class CellError(DataError):
    """A cell that is not a number, in a column that must hold numbers.

    ``row`` counts data rows from 0 in what was read; ``shifted`` moves it to the row of the
    whole input (a part read on a Dask worker knows only its own rows).
    """

    def __init__(self, column: str, row: int, value: Any, weights: bool = False) -> None:
        self.column, self.row, self.value, self.weights = column, row, value, weights
        if weights:
            text = (
                f"weights column '{column}' is not numeric (it holds {value!r}, data row "
                f"{row + 1}); frequency weights must be numbers"
            )
        else:
            text = (
                f"column '{column}' is not numeric (it holds {value!r}, data row {row + 1}); "
                "choose numeric columns with {columns}"
            )
        super().__init__(text)

    def shifted(self, rows: int) -> CellError:
        """The same error, ``rows`` data rows further into the input."""
        return CellError(self.column, self.row + rows, self.value, self.weights)

    def __reduce__(self) -> tuple[Any, ...]:  # raised on a Dask worker, re-raised on the client
        return CellError, (self.column, self.row, self.value, self.weights)


PARQUET_MAGIC = b"PAR1"  # the first (and last) four bytes of every Parquet file


def detect_format(source: str, fmt: str | None) -> str:
    """``fmt`` if given, else the format of ``source`` from its extension (``-``: parquet
    when standard input starts with ``PARQUET_MAGIC``, else csv)."""
    if fmt:
        return fmt
    if source == "-":
        return "parquet" if is_parquet_head(stdin_head(len(PARQUET_MAGIC) + 1)) else "csv"
    suffix = Path(source).suffix.lower()
    if suffix in EXTENSIONS:
        return EXTENSIONS[suffix]
    raise DataError(
        f"cannot tell the format of '{source}' from its extension; use {{fmt}} {'|'.join(FORMATS)}"
    )


def is_parquet_head(head: bytes) -> bool:
    """Whether bytes that start a file are Parquet's: the magic, then a byte no text has
    (a page header, binary), so a CSV whose first column is named PAR1 stays CSV."""
    if not head.startswith(PARQUET_MAGIC):
        return False
    after = head[len(PARQUET_MAGIC) : len(PARQUET_MAGIC) + 1]
    return not after or not (after.isascii() and (after.isspace() or 0x20 <= after[0] < 0x7F))


def stdin_head(size: int) -> bytes:
    """The first ``size`` bytes of standard input (fewer at its end), left unread."""
    buffer = sys.stdin.buffer
    peek = getattr(buffer, "peek", None)
    if peek is not None:
        # One read at most: the first write into a pipe holds far more than 4 bytes.
        return bytes(peek(size)[:size])
    if buffer.seekable():
        where = buffer.tell()
        head = buffer.read(size)
        buffer.seek(where)
        return head
    return b""


def parse_delimiter(delimiter: str | None) -> str | None:
    """The delimiter as one character (``\\t`` and ``tab`` mean a tab).

    Raises:
        UsageError: anything but one character other than a quote or a line end.
    """
    if delimiter is None:
        return None
    value = {"\\t": "\t", "tab": "\t"}.get(delimiter, delimiter)
    # pyarrow's CSV reader takes one ASCII character (a multi-byte UTF-8 'é' cannot be one)
    if len(value) != 1 or value in '"\r\n' or not (value == "\t" or " " <= value <= "~"):
        raise UsageError(
            f"{{delimiter}} {delimiter!r} must be one character (printable ASCII, or a tab) "
            "other than a quote, e.g. {delimiter} ';' or {delimiter} '\\t'"
        )
    return value


def field_delimiter(kind: str, delimiter: str | None) -> str:
    """The CSV field separator: ``delimiter`` (parsed), else a tab for TSV, a comma for CSV."""
    return parse_delimiter(delimiter) or ("\t" if kind == "tsv" else ",")


def check_input_path(source: str) -> None:
    """Raise DataError unless ``source`` is ``-`` or an existing file."""
    if source == "-":
        return
    path = Path(source)
    if not path.exists():
        raise DataError(f"input file '{source}' does not exist")
    if path.is_dir():
        raise DataError(f"input '{source}' is a directory, not a file")


def arrow_errors() -> tuple[type[BaseException], ...]:
    """What pyarrow raises for input it cannot read (turned into a DataError)."""
    import pyarrow as pa

    return (
        pa.ArrowInvalid,
        pa.ArrowNotImplementedError,
        pa.ArrowTypeError,
        OSError,
        UnicodeDecodeError,
    )


def guarded(source: str, kind: str, call: Callable[[], T]) -> T:
    """``call()``, with pyarrow's and the OS's read errors as DataError about ``source``."""
    try:
        return call()
    except PermissionError:
        raise DataError(f"cannot read '{source}': permission denied") from None
    except arrow_errors() as exc:
        raise DataError(arrow_message(source, kind, exc)) from None


def display_name(source: str) -> str:
    """How messages name an input."""
    return "standard input" if source == "-" else f"'{source}'"


def arrow_message(source: str, kind: str, exc: BaseException) -> str:
    """One line saying why pyarrow could not read ``source``, and what to do."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    name = display_name(source)
    if "Empty CSV file" in text:
        return f"{name} is empty; give a CSV file with a header row and data rows"
    if kind == "parquet" and ("magic bytes" in text or "Parquet" in text):
        reason = "no Parquet footer" if "magic bytes" in text else text
        return f"{name} is not a valid Parquet file ({reason}); use {{fmt}} csv if it is CSV"
    if "CSV parse error" in text or "columns" in text:
        return (
            f"cannot parse {name} as {kind.upper()}: {text.replace('CSV parse error: ', '')}"
            "; every row needs as many fields as the header (check {delimiter} and quoting)"
        )
    return f"cannot read {name} as {kind.upper()}: {text}"


def is_numeric(arrow_type: Any) -> bool:
    """Integers, floats and decimals (what converts to float64 exactly enough)."""
    import pyarrow.types as pt

    return pt.is_integer(arrow_type) or pt.is_floating(arrow_type) or pt.is_decimal(arrow_type)


def select_columns(
    table: Any,
    columns: Sequence[str] | None,
    check_values: bool = True,
    weights: str | None = None,
) -> tuple[list[str], list[str]]:
    """Choose the feature columns of a pyarrow ``table``; returns (names, notes).

    ``columns`` names them; by default every numeric column but ``weights`` is taken (a
    note names the others).  ``check_values=False`` skips the "column has no values" test,
    for a ``table`` that holds only the first rows of the input (the stream and dask engines
    check on their scan instead).  The ``weights`` column is checked too (``check_weights``).
    """
    import pyarrow.types as pt

    try:
        names = list(table.column_names)
    except UnicodeDecodeError:  # pyarrow decodes the header names only when asked
        raise DataError(
            "the input's header is not UTF-8 text (another encoding, e.g. UTF-16 or "
            "Latin-1?); save the file as UTF-8"
        ) from None
    check_names(names, columns, weights)
    notes: list[str] = []
    if columns:
        chosen = list(dict.fromkeys(columns))
    else:
        chosen = [
            n
            for n in names
            if n != weights
            and (is_numeric(table.schema.field(n).type) or pt.is_null(table.schema.field(n).type))
        ]
        skipped = [n for n in names if n not in chosen and n != weights]
        if skipped:
            notes.append(f"skipped non-numeric column(s): {', '.join(skipped)}")
    if not chosen:
        raise DataError(
            "the input has no numeric column; emcli clusters numbers (give columns with "
            "{columns}, and check the delimiter with {delimiter})"
        )
    for name in chosen:
        kind = table.schema.field(name).type
        if check_values and (pt.is_null(kind) or table.column(name).null_count == table.num_rows):
            raise DataError(f"column '{name}' has no values; leave it out with {{columns}}")
        if not is_numeric(kind) and not pt.is_null(kind):
            raise not_numeric(table, name)
    if weights is not None:
        check_weights_type(table, weights)
    return chosen, notes


def check_names(names: list[str], columns: Sequence[str] | None, weights: str | None) -> None:
    """Raise DataError for duplicate input columns, unknown ``columns`` or ``weights``, or
    ``weights`` among ``columns``."""
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise DataError(
            f"duplicate column name(s) {', '.join(map(repr, duplicates))}; rename them so each "
            "column has its own name"
        )
    unknown = [c for c in columns or () if c not in names]
    if unknown:
        raise DataError(
            f"unknown column(s) {', '.join(map(repr, unknown))}; the input has: "
            f"{', '.join(map(repr, names))}; choose columns with {{columns}}"
        )
    if weights is not None and weights not in names:
        raise DataError(
            f"unknown weights column {weights!r}; the input has: "
            f"{', '.join(map(repr, names))}; choose the weights column with {{weights}}"
        )
    if weights is not None and weights in (columns or ()):
        raise DataError(
            f"column {weights!r} is the weights column ({{weights}}); leave it out of "
            "{columns}: weights are not a feature"
        )


def check_weights_type(table: Any, name: str) -> None:
    """Raise CellError unless column ``name`` of ``table`` is numeric (or empty: null)."""
    import pyarrow.types as pt

    kind = table.schema.field(name).type
    if not is_numeric(kind) and not pt.is_null(kind):
        raise not_numeric(table, name, weights=True)


def not_numeric(table: Any, name: str, weights: bool = False, first_row: int = 0) -> DataError:
    """The error for column ``name`` of ``table``, whose type is not numeric: the first cell
    that is not a number (a CellError), else its type and first value."""
    found = first_non_number(table.column(name))
    if found is not None:
        return CellError(name, first_row + found[0], found[1], weights)
    what = "weights column" if weights else "column"
    hint = (
        "frequency weights must be numbers" if weights else "choose numeric columns with {columns}"
    )
    return DataError(
        f"{what} '{name}' is not numeric (it holds {table.schema.field(name).type} values such "
        f"as {_first_value(table.column(name))!r}); {hint}"
    )


def first_non_number(column: Any) -> tuple[int, Any] | None:
    """(row, value) of the first value of a pyarrow string ``column`` that does not convert
    to a float64 as a CSV cell would (surrounding spaces allowed), or None."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.types as pt

    if not (pt.is_string(column.type) or pt.is_large_string(column.type)):
        return None
    trimmed = pc.utf8_trim_whitespace(column)

    def converts(lo: int, hi: int) -> bool:
        try:
            pc.cast(trimmed.slice(lo, hi - lo), pa.float64())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return False
        return True

    lo, hi = 0, len(column)
    if converts(lo, hi):
        return None
    while hi - lo > 1:  # the first failing cell is in [lo, hi): halve that range
        mid = (lo + hi) // 2
        if converts(lo, mid):
            lo = mid
        else:
            hi = mid
    return lo, column[lo].as_py()


def _first_value(column: Any) -> Any:
    for chunk in column.chunks:
        for v in chunk:
            if v.is_valid:
                return v.as_py()
    return None


def float_values(chunk: Any) -> Array:
    """A float64 pyarrow array's values as a numpy view of its buffer, nulls as NaN (a
    copy then).  ``Array.to_numpy`` imports pandas (a quarter of a second, a third of a
    small fit's whole run); the buffers need nothing."""
    n, offset = len(chunk), chunk.offset
    if n == 0:
        return np.empty(0, dtype=np.float64)
    validity, data = chunk.buffers()[:2]
    values = np.frombuffer(data, dtype=np.float64, count=offset + n)[offset:]
    if not chunk.null_count:
        return values
    bits = np.unpackbits(np.frombuffer(validity, dtype=np.uint8), bitorder="little")
    return np.where(bits[offset : offset + n].astype(bool), values, np.nan)


def _chunk_values(chunk: Any) -> Array:
    """One chunk of a numeric pyarrow column as float64 values (``float_values``).  A cast
    imports pyarrow.compute (40 ms of a small fit's run), so a float64 chunk is read as it
    is and an integer one without nulls is converted by numpy from its buffer."""
    import pyarrow as pa
    import pyarrow.types as pt

    kind = chunk.type
    if pt.is_float64(kind):
        return float_values(chunk)
    if pt.is_integer(kind) and not chunk.null_count:
        n, offset = len(chunk), chunk.offset
        code = "i" if pt.is_signed_integer(kind) else "u"
        dtype = np.dtype(f"{code}{kind.bit_width // 8}")
        data = chunk.buffers()[1]
        if not n:
            return np.empty(0, dtype=np.float64)
        return np.frombuffer(data, dtype=dtype, count=offset + n)[offset:].astype(np.float64)
    return float_values(chunk.cast(pa.float64()))


def to_array(table: Any, names: Sequence[str], out: Array | None = None) -> Array:
    """Columns ``names`` of a pyarrow table as a C-contiguous float64 array, nulls as NaN
    (written into ``out``, of shape (rows, len(names)), when given)."""
    n = table.num_rows
    x = np.empty((n, len(names)), dtype=np.float64) if out is None else out
    if not n or not names:
        return x
    cols = [table.column(name) for name in names]
    sizes = [len(chunk) for chunk in cols[0].chunks]
    if all([len(chunk) for chunk in col.chunks] == sizes for col in cols[1:]):
        # Chunk by chunk, every column at once (rows stay in cache): 2.4x faster than
        # column by column over 1e7 values, measured here.
        start = 0
        for i, size in enumerate(sizes):
            np.stack(
                [_chunk_values(col.chunk(i)) for col in cols],
                axis=1,
                out=x[start : start + size],
            )
            start += size
        return x
    for j, col in enumerate(cols):
        start = 0
        for chunk in col.chunks:
            x[start : start + len(chunk), j] = _chunk_values(chunk)
            start += len(chunk)
    return x


def to_weights(table: Any, name: str | None) -> Array | None:
    """Column ``name`` as a float64 array of shape (n_rows,), nulls as NaN (None: no name)."""
    return None if name is None else to_array(table, [name])[:, 0]

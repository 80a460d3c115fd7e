"""The input's own columns, read a second time beside the fitted rows, for the row outputs
of ``--with-input`` (every column as it is in the file) and ``--id-column COL`` (one column).

CSV cells are kept as the text in the file (no number is reformatted); Parquet columns keep
their types.  The rows come in input order, in batches cut to the caller's block sizes
(``RowCarrier.take``), so memory stays one block whatever the file's size.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from ..errors import DataError, UsageError
from .formats import detect_format, field_delimiter


def _batches(source: str, fmt: str | None, delimiter: str | None, columns: Sequence[str] | None):
    import pyarrow as pa

    kind = detect_format(source, fmt)
    if kind == "parquet":
        import pyarrow.parquet as pq

        handle = pq.ParquetFile(source)
        names = handle.schema_arrow.names
        _check_columns(source, names, columns)
        return names, handle.iter_batches(columns=list(columns) if columns else None)
    import pyarrow.csv as pcsv

    parse = pcsv.ParseOptions(delimiter=field_delimiter(kind, delimiter))
    head = pcsv.open_csv(source, parse_options=parse)
    names = head.schema.names
    head.close()
    _check_columns(source, names, columns)
    wanted = list(columns) if columns else names
    convert = pcsv.ConvertOptions(
        include_columns=wanted,
        column_types={name: pa.string() for name in wanted},
        strings_can_be_null=False,
        quoted_strings_can_be_null=False,
    )
    reader = pcsv.open_csv(source, parse_options=parse, convert_options=convert)
    return names, iter(reader)


def _check_columns(source: str, names: Sequence[str], columns: Sequence[str] | None) -> None:
    for name in columns or ():
        if name not in names:
            raise DataError(
                f"{{id_column}} '{name}' is not a column of '{source}' "
                f"(it has {', '.join(map(str, names))})"
            )


class RowCarrier:
    """The input's columns (all, or ``columns``), handed out block by block."""

    def __init__(
        self,
        source: str,
        fmt: str | None = None,
        delimiter: str | None = None,
        columns: Sequence[str] | None = None,
    ) -> None:
        if source == "-":
            raise UsageError(
                "{with_input} and {id_column} read INPUT a second time for the row outputs; "
                "give a file, not standard input ('-')"
            )
        self.source, self.fmt, self.delimiter = source, fmt, delimiter
        self.columns = list(columns) if columns else None
        self.names = self._open()[0]  # fails now (a missing column), before any work

    def _open(self) -> tuple[list[str], Iterator[Any]]:
        try:
            names, batches = _batches(self.source, self.fmt, self.delimiter, self.columns)
        except (OSError, ValueError) as exc:  # pyarrow's parse errors are ValueErrors
            raise DataError(f"cannot read '{self.source}' again for its columns: {exc}") from None
        return list(self.columns or names), batches

    def start(self) -> None:
        """Read from the first row again (each output pass starts here)."""
        self._batches = self._open()[1]
        self._pending: list[Any] = []
        self._held = 0

    def take(self, n: int) -> Any:
        """A pyarrow Table of the next ``n`` input rows."""
        import pyarrow as pa

        while self._held < n:
            try:
                batch = next(self._batches)
            except StopIteration:
                raise DataError(
                    f"'{self.source}' gave fewer rows on a second reading than on the first; "
                    "the row outputs could not be matched to the input's rows"
                ) from None
            except (OSError, ValueError) as exc:
                raise DataError(f"cannot read '{self.source}' again: {exc}") from None
            self._pending.append(batch)
            self._held += batch.num_rows
        if not self._pending:
            return self.empty()
        table = pa.Table.from_batches(self._pending).combine_chunks()
        rest = table.slice(n)
        self._pending = rest.to_batches() if rest.num_rows else []
        self._held = rest.num_rows
        return table.slice(0, n)

    def empty(self) -> Any:
        import pyarrow as pa

        return pa.table({name: pa.array([], pa.string()) for name in self.names})

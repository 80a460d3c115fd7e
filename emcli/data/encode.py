"""Column kinds and their float encoding, for the families that are not (only) Gaussian.

Engines and families move float arrays.  A table for the categorical, bernoulli, poisson or
mixed family is encoded column by column before EM (``docs/categorical.md``):

* ``categorical``: a text, boolean or integer column; its levels (as strings, sorted:
  integers numerically, the rest as text, booleans ``false``, ``true``) are found over the
  whole input and fixed, and each cell becomes its level's code 0, 1, ... as a float;
* ``bernoulli``: 0/1 numbers, or booleans (``false``/``true``), as 0.0/1.0;
* ``poisson``: non-negative integer counts, as floats;
* ``gaussian``: numbers, as they are.

An empty cell is NaN whatever the kind (the families drop it from the row's product).  A
``ColumnSpec`` records a column's kind and levels; the model file keeps them, and new rows
(predict, score, ``--init MODEL.json``) are encoded with the model's levels: a level the
model never saw is an error naming it.

Which kind a column gets: ``--family categorical|bernoulli|poisson`` gives every selected
column that kind; ``--family mixed`` gives numeric columns ``gaussian`` and text and
boolean columns ``categorical``; ``types`` (``--types COL=KIND,...``) overrides either.
By default every column but the weights column is selected (text columns too).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..errors import DataError, UsageError

Array = NDArray[np.float64]
KINDS: tuple[str, ...] = ("gaussian", "categorical", "poisson", "bernoulli")
ENCODED_FAMILIES: tuple[str, ...] = ("categorical", "bernoulli", "poisson", "mixed")
# A categorical column with more levels than this is most likely an identifier or a number.
MAX_LEVELS = 1000
_BOOL_LEVELS = {"false", "true"}


@dataclass(frozen=True)
class ColumnSpec:
    """One column: its name, its kind (``KINDS``) and, for a categorical one, its levels."""

    name: str
    kind: str
    levels: tuple[str, ...] | None = None


def parse_types(spec: str | Mapping[str, str] | None) -> dict[str, str]:
    """``"a=categorical,b=poisson"`` (or a mapping) as {column: kind}.

    Raises:
        UsageError: an entry that is not COL=KIND, or an unknown kind.
    """
    if spec is None:
        return {}
    if isinstance(spec, Mapping):
        pairs = list(spec.items())
    else:
        pairs = []
        for part in (p.strip() for p in str(spec).split(",")):
            if not part:
                continue
            name, eq, kind = part.rpartition("=")
            if not eq or not name.strip():
                raise UsageError(
                    f"{{types}} entry {part!r} is not COL=KIND (KIND: {', '.join(KINDS)})"
                )
            pairs.append((name.strip(), kind.strip()))
    out: dict[str, str] = {}
    for name, kind in pairs:
        if kind.lower() not in KINDS:
            raise UsageError(f"{{types}} kind {kind!r} of column {name!r}: use {', '.join(KINDS)}")
        out[str(name)] = kind.lower()
    return out


# ---------------------------------------------------------------------------- arrow columns
def _is_text(arrow_type: Any) -> bool:
    import pyarrow.types as pt

    return bool(
        pt.is_string(arrow_type) or pt.is_large_string(arrow_type) or pt.is_dictionary(arrow_type)
    )


def _is_bool(arrow_type: Any) -> bool:
    import pyarrow.types as pt

    return bool(pt.is_boolean(arrow_type))


def default_kind(family: str, arrow_type: Any) -> str:
    """The kind a column of ``arrow_type`` gets in ``family`` without ``types``."""
    if family != "mixed":
        return family
    from .formats import is_numeric

    return "gaussian" if is_numeric(arrow_type) else "categorical"


def _as_text(column: Any, name: str = "") -> Any:
    """A pyarrow column as strings: integers as '3', booleans as 'false'/'true'."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.types as pt

    kind = column.type
    if pt.is_dictionary(kind):
        column = column.cast(kind.value_type)
        kind = column.type
    if _is_text(kind):
        return column.cast(pa.string())
    if _is_bool(kind):
        return pc.if_else(column, "true", "false")
    if pt.is_integer(kind):
        return column.cast(pa.string())
    if pt.is_null(kind):
        return column.cast(pa.string())
    values = column.cast(pa.float64()).to_numpy(zero_copy_only=False)
    seen = values[~np.isnan(values)]
    bad = seen[(seen != np.round(seen)) | ~np.isfinite(seen)]
    if bad.size:
        raise DataError(
            f"categorical column '{name}' holds {float(bad[0]):g}, not a level (text, boolean "
            "or integer code); leave it out with {columns}, or fit it as a number with "
            "{family} mixed"
        )
    return pa.array([None if np.isnan(v) else str(int(v)) for v in values], type=pa.string())


def levels_of(column: Any, name: str) -> tuple[str, ...]:
    """The sorted levels of a pyarrow column (integers numerically, text as text)."""
    import pyarrow.compute as pc

    text = _as_text(column, name)
    found = [v for v in pc.unique(text).to_pylist() if v is not None]
    if not found:
        raise DataError(f"column '{name}' has no values; leave it out with {{columns}}")
    if len(found) > MAX_LEVELS:
        raise DataError(
            f"categorical column '{name}' has {len(found)} levels (more than {MAX_LEVELS}): "
            "an identifier or a number? Leave it out with {columns} or give it another kind "
            "with {types}"
        )
    numeric = all(_is_int_text(v) for v in found)
    return tuple(sorted(found, key=int) if numeric else sorted(found))


def _is_int_text(value: str) -> bool:
    return value.lstrip("-").isdigit()


def encode_column(column: Any, spec: ColumnSpec, first_row: int = 0) -> Array:
    """A pyarrow column as floats of shape (rows,) for ``spec`` (NaN where empty).

    Raises:
        DataError: a level not in ``spec.levels``, a bernoulli value that is not 0/1, a
            poisson value that is not a non-negative integer, a gaussian one that is text.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    if spec.kind == "categorical":
        assert spec.levels is not None
        text = _as_text(column, spec.name)
        if set(spec.levels) <= _BOOL_LEVELS:  # "True"/"TRUE" read as text: the bool levels
            text = pc.utf8_lower(text)
        codes = pc.index_in(text, value_set=pa.array(list(spec.levels), type=pa.string()))
        out = codes.cast(pa.float64()).to_numpy(zero_copy_only=False).astype(np.float64)
        unseen = np.isnan(out) & ~np.asarray(pc.is_null(text).to_numpy(zero_copy_only=False))
        if unseen.any():
            row = int(np.argmax(unseen))
            raise DataError(
                f"column '{spec.name}' has level {text[row].as_py()!r} (data row "
                f"{first_row + row + 1}) that the model did not see when it was fitted (its "
                f"levels: {', '.join(spec.levels[:10])}{', ...' if len(spec.levels) > 10 else ''})"
                "; map it to a known level, or leave the cell empty (then it is marginalised)"
            )
        return out
    if _is_text(column.type):
        from .formats import first_non_number

        found = first_non_number(column.cast(pa.string()))
        if found is not None:
            raise DataError(
                f"column '{spec.name}' holds {found[1]!r} (data row {first_row + found[0] + 1}),"
                f" not a number; a {spec.kind} column needs numbers (a text column can be "
                "categorical: {types})"
            )
    if _is_bool(column.type):
        column = column.cast(pa.int8())
    values = column.cast(pa.float64()).to_numpy(zero_copy_only=False).astype(np.float64)
    check_kind_values(values, spec, first_row)
    return values


def check_kind_values(values: Array, spec: ColumnSpec, first_row: int = 0) -> None:
    """Raise DataError for a bernoulli value other than 0/1 or a poisson value that is not a
    non-negative integer (NaN is missing and fine)."""
    if spec.kind == "bernoulli":
        bad = ~np.isnan(values) & (values != 0.0) & (values != 1.0)
        need = "0 or 1 (or false/true)"
    elif spec.kind == "poisson":
        with np.errstate(invalid="ignore"):
            bad = ~np.isnan(values) & ((values < 0) | (values != np.round(values)))
        bad |= np.isinf(values)
        need = "a count (an integer >= 0)"
    else:
        return
    if bad.any():
        row = int(np.argmax(bad))
        raise DataError(
            f"{spec.kind} column '{spec.name}' holds {values[row]:g} (data row "
            f"{first_row + row + 1}); each value must be {need}"
        )


# ---------------------------------------------------------------------------- tables
def choose_specs(
    table: Any,
    family: str,
    columns: Sequence[str] | None,
    types: Mapping[str, str] | None = None,
    weights: str | None = None,
    like: Sequence[ColumnSpec] | None = None,
) -> list[ColumnSpec]:
    """The ``ColumnSpec`` of each selected column of a pyarrow ``table``: ``like`` (a
    model's specs, matched by position to ``columns``) if given, else by kind (module
    docstring) with levels found over the whole table."""
    names = list(table.column_names)
    chosen = list(dict.fromkeys(columns)) if columns else [n for n in names if n != weights]
    if like is not None:
        if len(like) != len(chosen):
            raise DataError(f"the model has {len(like)} columns, the input {len(chosen)}")
        return [ColumnSpec(name, s.kind, s.levels) for name, s in zip(chosen, like, strict=True)]
    types = dict(types or {})
    unknown = [c for c in types if c not in chosen]
    if unknown:
        raise UsageError(
            f"{{types}} names column(s) {', '.join(map(repr, unknown))} that are not selected "
            f"(selected: {', '.join(chosen)})"
        )
    specs = []
    for name in chosen:
        column = table.column(name)
        kind = types.get(name) or default_kind(family, column.type)
        if column.null_count == len(column):
            raise DataError(f"column '{name}' has no values; leave it out with {{columns}}")
        levels = levels_of(column, name) if kind == "categorical" else None
        specs.append(ColumnSpec(name, kind, levels))
    return specs


def encode_table(table: Any, specs: Sequence[ColumnSpec], first_row: int = 0) -> Array:
    """The columns of ``specs`` of a pyarrow table as a (rows, columns) float64 array."""
    x = np.empty((table.num_rows, len(specs)), dtype=np.float64)
    for j, spec in enumerate(specs):
        x[:, j] = encode_column(table.column(spec.name), spec, first_row)
    return x


def read_encoded(
    source: str,
    family: str,
    fmt: str | None = None,
    columns: Sequence[str] | None = None,
    delimiter: str | None = None,
    weights: str | None = None,
    types: Mapping[str, str] | None = None,
    like: Sequence[ColumnSpec] | None = None,
) -> tuple[Any, list[ColumnSpec]]:
    """Read a whole table and encode it for ``family``: (``reader.Table``, the specs).

    Raises:
        DataError: what ``reader.read_table`` raises, and the encoding's errors.
    """
    from .checks import ColumnSummary
    from .formats import check_names, check_weights_type, to_weights
    from .reader import Table, read_arrow

    table = read_arrow(source, fmt, delimiter)
    if table.num_rows == 0:
        raise DataError(f"'{source}' has a header but no data rows")
    check_names(list(table.column_names), columns, weights)
    if weights is not None:
        check_weights_type(table, weights)
    specs = choose_specs(table, family, columns, types, weights, like)
    x = encode_table(table, specs)
    w = to_weights(table, weights)
    summary = ColumnSummary.of_block(x, 0, w)
    names = [s.name for s in specs]
    summary.check_values(names, too_large=False)
    summary.check_weights(weights)
    return Table(x, names, [], w, weights), specs


def _batches(
    source: str,
    kind: str,
    delimiter: str | None,
    columns: Sequence[str],
    text: Sequence[str],
    block_rows: int,
) -> Iterator[Any]:
    """pyarrow tables of ``columns`` of ``source`` block by block (``text`` columns read as
    strings); memory bounded by the block (CSV by pyarrow's streaming reader, Parquet by
    record batches)."""
    import pyarrow as pa

    from .formats import field_delimiter, guarded

    if kind == "parquet":
        import pyarrow.parquet as pq

        handle: Any = source if source != "-" else _stdin_bytes()
        pf = guarded(source, kind, lambda: pq.ParquetFile(handle))
        _check_present(source, pf.schema_arrow.names, columns)
        batches: Iterator[Any] = pf.iter_batches(batch_size=block_rows, columns=list(columns))
    else:
        import pyarrow.csv as pcsv

        handle = source if source != "-" else _stdin_bytes()
        reader = guarded(
            source,
            kind,
            lambda: pcsv.open_csv(
                handle,
                read_options=pcsv.ReadOptions(block_size=1 << 22),
                parse_options=pcsv.ParseOptions(delimiter=field_delimiter(kind, delimiter)),
                convert_options=pcsv.ConvertOptions(
                    strings_can_be_null=True,
                    column_types={name: pa.string() for name in text},
                    include_columns=list(columns),
                ),
            ),
        )
        _check_present(source, reader.schema.names, columns)
        batches = iter(reader)
    while True:
        batch = guarded(source, kind, lambda: next(batches, None))
        if batch is None:
            return
        yield pa.Table.from_batches([batch])


def encoded_blocks(
    source: str,
    specs: Sequence[ColumnSpec],
    columns: Sequence[str],
    fmt: str | None = None,
    delimiter: str | None = None,
    block_rows: int = 65536,
    weights: str | None = None,
) -> Iterator[tuple[int, Array, Array | None]]:
    """(first row, encoded rows, weights or None) of ``source`` block by block, input
    columns ``columns`` standing for ``specs`` in order (categorical columns read as text,
    the others as numbers); memory bounded by the block."""
    from .formats import check_input_path, detect_format, to_weights

    check_input_path(source)
    kind = detect_format(source, fmt)
    renamed = [ColumnSpec(c, s.kind, s.levels) for c, s in zip(columns, specs, strict=True)]
    text = [s.name for s in renamed if s.kind == "categorical"]
    wanted = [*columns, *([weights] if weights is not None else [])]
    first = 0
    for table in _batches(source, kind, delimiter, wanted, text, block_rows):
        yield first, encode_table(table, renamed, first), to_weights(table, weights)
        first += table.num_rows


def scan_specs(
    source: str,
    family: str,
    fmt: str | None = None,
    columns: Sequence[str] | None = None,
    delimiter: str | None = None,
    weights: str | None = None,
    types: Mapping[str, str] | None = None,
    like: Sequence[ColumnSpec] | None = None,
    block_rows: int = 65536,
) -> list[ColumnSpec]:
    """The column specs of a file too large for memory: kinds from the types of its first
    rows, the levels of categorical columns from one pass in bounded memory."""
    import pyarrow.compute as pc

    from .formats import check_names, detect_format, guarded
    from .reader import read_head

    kind = detect_format(source, fmt)
    head = guarded(source, kind, lambda: read_head(source, kind, delimiter))
    check_names(list(head.column_names), columns, weights)
    chosen = (
        list(dict.fromkeys(columns)) if columns else [n for n in head.column_names if n != weights]
    )
    if like is not None:
        return choose_specs(head.select(chosen), family, chosen, None, None, like)
    types = dict(types or {})
    unknown = [c for c in types if c not in chosen]
    if unknown:
        raise UsageError(
            f"{{types}} names column(s) {', '.join(map(repr, unknown))} that are not selected "
            f"(selected: {', '.join(chosen)})"
        )
    kinds = {n: types.get(n) or default_kind(family, head.schema.field(n).type) for n in chosen}
    text = [n for n in chosen if kinds[n] == "categorical"]
    found: dict[str, set[str]] = {n: set() for n in text}
    for table in _batches(source, kind, delimiter, text, text, block_rows) if text else ():
        for n in text:
            found[n].update(v for v in pc.unique(table.column(n)).to_pylist() if v is not None)
            if len(found[n]) > MAX_LEVELS:
                raise DataError(
                    f"categorical column '{n}' has more than {MAX_LEVELS} levels: an "
                    "identifier or a number? Leave it out with {columns} or give it another "
                    "kind with {types}"
                )
    specs = []
    for n in chosen:
        if kinds[n] != "categorical":
            specs.append(ColumnSpec(n, kinds[n]))
            continue
        if not found[n]:
            raise DataError(f"column '{n}' has no values; leave it out with {{columns}}")
        if {v.lower() for v in found[n]} <= _BOOL_LEVELS and len(found[n]) <= 2:
            found[n] = {v.lower() for v in found[n]}  # booleans, as the in-memory reader has them
        numeric = all(_is_int_text(v) for v in found[n])
        levels = tuple(sorted(found[n], key=int) if numeric else sorted(found[n]))
        specs.append(ColumnSpec(n, "categorical", levels))
    return specs


def _stdin_bytes() -> Any:
    import io
    import sys

    return io.BytesIO(sys.stdin.buffer.read())


def _check_present(source: str, names: Sequence[str], columns: Sequence[str]) -> None:
    missing = [c for c in columns if c not in names]
    if missing:
        raise DataError(
            f"'{source}' has no column {', '.join(map(repr, missing))} (the input has "
            f"{', '.join(names) or 'none'}); map input columns to the model's with {{columns}}"
        )


# ---------------------------------------------------------------------------- arrays, frames
def encode_frame(
    x: Any,
    family: str,
    columns: Sequence[str] | None = None,
    types: Mapping[str, str] | None = None,
    like: Sequence[ColumnSpec] | None = None,
) -> tuple[Array, list[ColumnSpec]]:
    """A numpy array or pandas DataFrame (text, categorical, boolean and number columns)
    encoded for ``family``: (float64 array, specs)."""
    import pyarrow as pa

    if hasattr(x, "columns") and hasattr(x, "to_numpy"):  # a pandas DataFrame
        names = [str(c) for c in x.columns]
        arrays = [_frame_column(x.iloc[:, j]) for j in range(x.shape[1])]
    else:
        arr = np.asarray(x)
        if arr.ndim == 1:
            arr = arr[:, None]
        if arr.ndim != 2:
            raise DataError(
                f"expected a 2-D table of shape (n_samples, n_features), got {arr.shape}"
            )
        names = [f"x{j}" for j in range(arr.shape[1])]
        arrays = [_array_column(arr[:, j]) for j in range(arr.shape[1])]
    if columns is not None:
        names = [str(c) for c in columns]
        if len(names) != len(arrays):
            raise DataError(f"{len(names)} column names for {len(arrays)} columns")
    table = pa.table(arrays, names=names)
    specs = choose_specs(table, family, None, types, None, like)
    return np.ascontiguousarray(encode_table(table, specs)), specs


def _frame_column(series: Any) -> Any:
    import pyarrow as pa

    if str(series.dtype) == "category":
        series = series.astype(object)
    try:
        return pa.array(series, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.array([None if v is None else str(v) for v in series], type=pa.string())


def _array_column(values: Any) -> Any:
    import pyarrow as pa

    if values.dtype.kind in "fiub":
        return pa.array(values, from_pandas=True)
    return pa.array(
        [None if v is None or (isinstance(v, float) and np.isnan(v)) else str(v) for v in values],
        type=pa.string(),
    )


class EncodedReader:
    """``reader.BlockReader``'s interface over ``encoded_blocks``: ``Block``s of rows encoded
    with a model's column specs (predict, score)."""

    def __init__(
        self,
        source: str,
        specs: Sequence[ColumnSpec],
        columns: Sequence[str],
        fmt: str | None = None,
        delimiter: str | None = None,
    ) -> None:
        self.source, self.columns, self.weights_column = source, list(columns), None
        self._blocks = encoded_blocks(source, specs, columns, fmt, delimiter)
        self._first = next(self._blocks, None)  # reads the header now: errors before output

    def __iter__(self) -> Iterator[Any]:
        from .reader import Block

        if self._first is not None:
            first, self._first = self._first, None
            yield Block(first[0], first[1], None)
        for start, x, _ in self._blocks:
            yield Block(start, x, None)

    def blocks(self, rows: int | None = None) -> Iterator[Any]:
        return iter(self)

    def close(self) -> None:
        close = getattr(self._blocks, "close", None)
        if close is not None:
            close()

    def __enter__(self) -> EncodedReader:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

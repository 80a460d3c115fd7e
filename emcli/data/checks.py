"""The data checks, one set for every path: a summary per block of rows that adds up.

``ColumnSummary.of_block`` summarises a block (rows ``offset ..``): counts of observed
values, the first missing, infinite and too-large cells, the first bad weight, the weight
total and, when asked, means and sums of squared deviations (for the column variances of the
notes).  Summaries add in input order (``+``), like the sufficient statistics, so the memory
path (one block: the whole array), the stream engine (one per block) and the dask engine (one
per partition, added on the workers) run the same checks and raise the same messages.

Messages name the Python parameters (``{columns}``, ``{missing}``, ``{n_components}``,
``{sample_weight}``); ``emcli.errors.render`` gives the CLI's flags.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from ..errors import DataError

Array = NDArray[np.float64]
Cell = tuple[int, int, float]  # (data row, column, value), rows and columns from 0
# Larger magnitudes overflow float64 once squared and summed over rows.
MAX_ABS_VALUE = 1e100
CHUNK_ROWS = 1 << 16  # rows summarised at a time (bounded temporaries)


@dataclass
class ColumnSummary:
    """What the checks need to know about rows of the input, additive across blocks.

    ``mean``/``m2``/``minimum``/``maximum`` are per column (None unless asked for with
    ``moments``); the weight fields are None when the input has no weights.
    """

    n_rows: int
    count: NDArray[np.int64]  # observed (non-missing) values per column
    n_missing: int = 0
    first_missing: Cell | None = None
    first_inf: Cell | None = None
    first_huge: Cell | None = None
    rows_with_gaps: int = 0
    rows_all_missing: int = 0
    weight_sum: float | None = None
    weight_max: float | None = None
    first_bad_weight: tuple[int, float] | None = None  # (data row, value): < 0, NaN or inf
    moments: _Moments | None = field(default=None, repr=False)

    @classmethod
    def of_block(
        cls, xb: Array, offset: int = 0, weights: Array | None = None, moments: bool = False
    ) -> ColumnSummary:
        """Summary of rows ``offset .. offset + len(xb)`` of the input (``xb`` of shape
        (rows, n_features), NaN where missing; ``weights`` of shape (rows,) or None).

        A block of more than ``CHUNK_ROWS`` rows is summarised chunk by chunk (and the
        summaries added), so the temporaries stay small whatever the size of ``xb``."""
        n, d = xb.shape
        if n > CHUNK_ROWS:
            if weights is not None and np.shape(weights) != (n,):
                raise DataError(f"{len(weights)} weights for {n} rows; give one weight per row")
            return total_summary(
                [
                    cls.of_block(
                        xb[s : s + CHUNK_ROWS],
                        offset + s,
                        None if weights is None else weights[s : s + CHUNK_ROWS],
                        moments,
                    )
                    for s in range(0, n, CHUNK_ROWS)
                ]
            )
        # Fast path: one min and one max over the whole block prove it complete and in range
        # (NaN propagates through both); only a block that fails looks for its cells.
        lo, hi = (float(xb.min()), float(xb.max())) if xb.size else (0.0, 0.0)
        if -MAX_ABS_VALUE <= lo and hi <= MAX_ABS_VALUE:
            summary = cls(n, np.full(d, n, dtype=np.int64))
        else:
            summary = _with_bad_cells(xb, offset)
        if weights is not None:
            _add_weights(summary, np.asarray(weights, dtype=np.float64), offset)
        if moments:
            summary.moments = _Moments.of_block(xb, summary.count)
        return summary

    def __add__(self, other: ColumnSummary) -> ColumnSummary:
        weighted = self.weight_sum is not None and other.weight_sum is not None
        return ColumnSummary(
            self.n_rows + other.n_rows,
            self.count + other.count,
            self.n_missing + other.n_missing,
            _earliest(self.first_missing, other.first_missing),
            _earliest(self.first_inf, other.first_inf),
            _earliest(self.first_huge, other.first_huge),
            self.rows_with_gaps + other.rows_with_gaps,
            self.rows_all_missing + other.rows_all_missing,
            self.weight_sum + other.weight_sum if weighted else None,  # type: ignore[operator]
            max(self.weight_max, other.weight_max) if weighted else None,  # type: ignore
            _earliest(self.first_bad_weight, other.first_bad_weight),
            self.moments + other.moments if self.moments and other.moments else None,
        )

    def variances(self) -> Array:
        """Population variance of each column (exactly 0 for a constant column); needs a
        summary made with ``moments=True``."""
        if self.moments is None:
            raise ValueError("variances need a summary made with moments=True")
        return self.moments.variances()

    def check(
        self,
        names: Sequence[str],
        n_components: int,
        missing: str = "em",
        weights_column: str | None = None,
        source: str | None = None,
    ) -> None:
        """Raise the DataError for data EM cannot take: no rows, a column with no observed
        value, infinite or too large values, bad weights, missing values unless ``missing``
        is "em" or "drop", more components than rows.  ``source`` names the input."""
        if self.n_rows == 0 or not len(names):
            if source is not None:
                raise DataError(f"'{source}' has a header but no data rows")
            raise DataError("the data has no rows or no columns")
        self.check_values(names)
        self.check_weights(weights_column)
        if self.first_missing is not None and missing not in ("em", "drop"):
            row, col, _ = self.first_missing
            raise DataError(
                f"the data has {self.n_missing} missing value(s) (first: column "
                f"'{names[col]}', data row {row + 1}); fit them with {{missing}} em, drop "
                "incomplete rows with {missing} drop, or fill the gaps"
            )
        check_n_components(n_components, self.n_rows)

    def check_values(self, names: Sequence[str], too_large: bool = True) -> None:
        """Raise DataError for a column with no observed value or an infinite value (and,
        with ``too_large``, a value beyond ``MAX_ABS_VALUE``)."""
        empty = [name for name, c in zip(names, self.count, strict=True) if c == 0]
        if empty:
            raise DataError(f"column '{empty[0]}' has no values; leave it out with {{columns}}")
        if self.first_inf is not None:
            row, col, _ = self.first_inf
            raise DataError(
                f"column '{names[col]}' has an infinite value (data row {row + 1}); remove or "
                "replace infinite values before fitting"
            )
        if too_large and self.first_huge is not None:
            # Squares and sums of squares of such values overflow to inf (numpy warnings,
            # then a misleading "singular covariance"): refuse them up front.
            row, col, value = self.first_huge
            raise DataError(
                f"column '{names[col]}' has a value too large to fit ({value:g}, data row "
                f"{row + 1}); EM needs |values| <= {MAX_ABS_VALUE:g}: scale the data"
            )

    def check_weights(self, column: str | None = None) -> None:
        """Raise DataError for a negative, missing or infinite weight, or all weights 0
        (nothing when the summary has no weights).  ``column`` names the weights column;
        None means weights given as an array (``sample_weight``)."""
        if self.weight_sum is None:
            return
        what = f"weights column '{column}'" if column is not None else "{sample_weight}"
        if self.first_bad_weight is not None:
            row, value = self.first_bad_weight
            raise DataError(_bad_weight(what, row, value))
        if self.n_rows and not self.weight_max:
            raise DataError(f"every weight in {what} is 0; give at least one row a positive weight")


def _bad_weight(what: str, row: int, value: float) -> str:
    if np.isnan(value):
        return (
            f"{what} has a missing weight (data row {row + 1}); give every row a weight "
            "(0 leaves a row out of the fit)"
        )
    if np.isinf(value):
        return (
            f"{what} has an infinite weight (data row {row + 1}); frequency weights must be finite"
        )
    return (
        f"{what} has a negative weight ({value:g}, data row {row + 1}); frequency weights "
        "must be 0 or more"
    )


def _with_bad_cells(xb: Array, offset: int) -> ColumnSummary:
    """The summary of a block with missing, infinite or too large cells: find them."""
    n, d = xb.shape
    gaps = np.isnan(xb)
    count = n - gaps.sum(axis=0, dtype=np.int64)
    summary = ColumnSummary(n, count)
    if count.sum() < n * d:
        rows_with = gaps.any(axis=1)
        summary.n_missing = int(n * d - count.sum())
        summary.first_missing = _first(gaps, xb, offset)
        summary.rows_with_gaps = int(rows_with.sum())
        summary.rows_all_missing = int(gaps.all(axis=1).sum()) if d else 0
    with np.errstate(invalid="ignore"):
        big = np.abs(xb) > MAX_ABS_VALUE  # NaN compares False
    if big.any():
        inf = np.isinf(xb)
        summary.first_inf = _first(inf, xb, offset)
        summary.first_huge = _first(big & ~inf, xb, offset)
    return summary


def _add_weights(summary: ColumnSummary, w: Array, offset: int) -> None:
    if w.shape != (summary.n_rows,):
        raise DataError(f"{len(w)} weights for {summary.n_rows} rows; give one weight per row")
    bad = ~(np.isfinite(w) & (w >= 0))  # NaN, inf and negative weights
    if bad.any():
        row = int(np.argmax(bad))
        summary.first_bad_weight = (row + offset, float(w[row]))
    ok = np.where(bad, 0.0, w) if bad.any() else w
    summary.weight_sum = float(ok.sum())
    summary.weight_max = float(ok.max()) if len(ok) else 0.0


@dataclass
class _Moments:
    """Per-column observed count, mean, sum of squared deviations and range."""

    count: NDArray[np.int64]
    mean: Array
    m2: Array
    minimum: Array
    maximum: Array

    @classmethod
    def of_block(cls, xb: Array, count: NDArray[np.int64]) -> _Moments:
        valid = ~np.isnan(xb)
        with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
            mean = np.where(valid, xb, 0.0).sum(axis=0) / np.maximum(count, 1)
            dev = np.where(valid, xb - mean, 0.0)
            m2 = (dev * dev).sum(axis=0)
        return cls(
            count,
            mean,
            m2,
            np.where(valid, xb, np.inf).min(axis=0, initial=np.inf),
            np.where(valid, xb, -np.inf).max(axis=0, initial=-np.inf),
        )

    def __add__(self, other: _Moments) -> _Moments:
        # Chan et al.'s pairwise update of mean and squared deviations.
        n = self.count + other.count
        safe = np.maximum(n, 1)
        with np.errstate(invalid="ignore", over="ignore"):
            delta = other.mean - self.mean
            mean = self.mean + delta * (other.count / safe)
            m2 = self.m2 + other.m2 + delta * delta * (self.count * other.count / safe)
        return _Moments(
            n,
            np.where(n > 0, mean, 0.0),
            m2,
            np.minimum(self.minimum, other.minimum),
            np.maximum(self.maximum, other.maximum),
        )

    def variances(self) -> Array:
        var = self.m2 / np.maximum(self.count, 1)
        # A column that varies has a variance > 0 even when it underflows (values ~1e-310):
        # it is not constant, its spread is below what a float can square.
        tiny = np.finfo(np.float64).smallest_subnormal
        return np.where(self.minimum == self.maximum, 0.0, np.maximum(var, tiny))


def check_n_components(n_components: int, n_rows: int) -> None:
    """Raise DataError when there are more components than rows."""
    if n_components > n_rows:
        raise DataError(
            f"{{n_components}} {n_components} is more components than the {n_rows} data rows; "
            f"use at most {{n_components}} {n_rows}"
        )


def check_fittable(
    x: Array,
    names: Sequence[str],
    n_components: int,
    missing: str = "error",
    weights: Array | None = None,
    moments: bool = False,
) -> ColumnSummary:
    """Raise DataError for an array EM cannot take (``ColumnSummary.check``); returns the
    summary (with the column moments when asked: ``ColumnSummary.variances``).
    ``weights`` (shape (n_samples,)) are checked as ``sample_weight``."""
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise DataError("the data has no rows or no columns")
    summary = ColumnSummary.of_block(x, 0, weights, moments)
    summary.check(names, n_components, missing)
    return summary


def check_finite_rows(x: Array, names: Sequence[str], first_row: int) -> None:
    """Refuse rows a model cannot be applied to: infinite values (``first_row``: the data
    row of ``x[0]``).  Missing values (NaN) are fine."""
    bad = np.isinf(x)
    if not bad.any():
        return
    first = _first(bad, x, first_row)
    assert first is not None  # bad.any()
    row, col, _ = first
    raise DataError(
        f"column '{names[col]}', data row {row + 1} has an infinite value; "
        "remove or replace infinite values"
    )


def _first(mask: NDArray[np.bool_], xb: Array, offset: int) -> Cell | None:
    if not mask.any():
        return None
    row, col = np.argwhere(mask)[0]
    return (int(row) + offset, int(col), float(xb[row, col]))


def _earliest(a, b):
    if a is None or b is None:
        return a if b is None else b
    return min(a, b)


def total_summary(parts: Sequence[ColumnSummary]) -> ColumnSummary:
    """The summaries of consecutive blocks added in order."""
    total = parts[0]
    for part in parts[1:]:
        total = total + part
    return total


def index_like_columns(x: Array, names: Sequence[str], min_rows: int = 20) -> list[str]:
    """Notes for columns of ``x`` (the first rows of the input, in order) that look like a
    row index (0..n-1 or 1..n) or an identifier (a distinct whole number in every row):
    columns that a data frame saved with its row names carries, and that EM should not fit.
    """
    notes: list[str] = []
    n = x.shape[0]
    if n < min_rows:
        return notes
    steps = np.arange(n, dtype=np.float64)
    for j, name in enumerate(names):
        col = x[:, j]
        if not np.all(np.isfinite(col)) or not np.all(col == np.round(col)):
            continue
        if col[0] in (0.0, 1.0) and np.array_equal(col, col[0] + steps):
            first = int(col[0])
            notes.append(
                f"column '{name}' looks like a row index ({first}..{first + n - 1} in order); "
                "if it is one, leave it out with {columns}"
            )
        elif np.unique(col).size == n:
            notes.append(
                f"column '{name}' holds a different whole number in every row, like an "
                "identifier; if it is one, leave it out with {columns}"
            )
    return notes

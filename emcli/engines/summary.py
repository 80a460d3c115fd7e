"""Per-column summaries that add up across blocks, like ``SufficientStats``.

The stream and dask engines never hold all rows, so the checks the memory path runs on the
whole array (no values, infinite values, missing values, constant columns, variances for the
notes) run on these sums instead: one summary per block, added in input order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ..errors import DataError

Array = NDArray[np.float64]
Cell = tuple[int, int]  # (data row, column), 0-based


@dataclass
class ColumnSummary:
    """Counts, mean, sum of squared deviations, range and first bad cells of each column."""

    n_rows: int
    count: NDArray[np.int64]  # non-missing values per column
    mean: Array
    m2: Array
    minimum: Array
    maximum: Array
    n_missing: int
    first_missing: Cell | None
    first_inf: Cell | None
    rows_with_gaps: int = 0
    rows_all_missing: int = 0

    @classmethod
    def of_block(cls, xb: Array, offset: int) -> ColumnSummary:
        """Summary of rows ``offset .. offset + len(xb)`` of the input."""
        valid = ~np.isnan(xb)
        count = valid.sum(axis=0)
        with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
            mean = np.where(valid, xb, 0.0).sum(axis=0) / np.maximum(count, 1)
            dev = np.where(valid, xb - mean, 0.0)
            m2 = (dev * dev).sum(axis=0)
        return cls(
            n_rows=int(xb.shape[0]),
            count=count.astype(np.int64),
            mean=mean,
            m2=m2,
            minimum=np.where(valid, xb, np.inf).min(axis=0, initial=np.inf),
            maximum=np.where(valid, xb, -np.inf).max(axis=0, initial=-np.inf),
            n_missing=int((~valid).sum()),
            first_missing=_first(~valid, offset),
            first_inf=_first(np.isinf(xb), offset),
            rows_with_gaps=int((~valid).any(axis=1).sum()),
            rows_all_missing=int((~valid).all(axis=1).sum()) if xb.shape[1] else 0,
        )

    def __add__(self, other: ColumnSummary) -> ColumnSummary:
        # Chan et al.'s pairwise update of mean and squared deviations.
        n = self.count + other.count
        safe = np.maximum(n, 1)
        with np.errstate(invalid="ignore", over="ignore"):
            delta = other.mean - self.mean
            mean = self.mean + delta * (other.count / safe)
            m2 = self.m2 + other.m2 + delta * delta * (self.count * other.count / safe)
        return ColumnSummary(
            self.n_rows + other.n_rows,
            n,
            np.where(n > 0, mean, 0.0),
            m2,
            np.minimum(self.minimum, other.minimum),
            np.maximum(self.maximum, other.maximum),
            self.n_missing + other.n_missing,
            _earliest(self.first_missing, other.first_missing),
            _earliest(self.first_inf, other.first_inf),
            self.rows_with_gaps + other.rows_with_gaps,
            self.rows_all_missing + other.rows_all_missing,
        )

    def variances(self) -> Array:
        """Population variance of each column (exactly 0 for a constant column)."""
        var = self.m2 / np.maximum(self.count, 1)
        return np.where(self.minimum == self.maximum, 0.0, var)

    def check(self, names: Sequence[str], n_components: int, missing: str = "em") -> None:
        """Raise the DataError ``emcli.api.check_fittable`` raises for the same data."""
        empty = [name for name, c in zip(names, self.count, strict=True) if c == 0]
        if empty:
            raise DataError(f"column '{empty[0]}' has no values; leave it out with -c/--columns")
        if self.first_inf is not None:
            row, col = self.first_inf
            raise DataError(
                f"column '{names[col]}' has an infinite value (data row {row + 1}); remove or "
                "replace infinite values before fitting"
            )
        if self.first_missing is not None and missing not in ("em", "drop"):
            row, col = self.first_missing
            raise DataError(
                f"the data has {self.n_missing} missing value(s) (first: column "
                f"'{names[col]}', data row {row + 1}); fit them with --missing em, drop "
                "incomplete rows with --missing drop, or fill the gaps"
            )
        check_rows(n_components, self.n_rows)


def check_rows(n_components: int, n_rows: int) -> None:
    if n_components > n_rows:
        raise DataError(
            f"-k {n_components} is more components than the {n_rows} data rows; "
            f"use at most -k {n_rows}"
        )


def _first(mask: NDArray[np.bool_], offset: int) -> Cell | None:
    if not mask.any():
        return None
    row, col = np.argwhere(mask)[0]
    return (int(row) + offset, int(col))


def _earliest(a: Cell | None, b: Cell | None) -> Cell | None:
    if a is None or b is None:
        return a if b is None else b
    return min(a, b)


def total_summary(parts: Sequence[ColumnSummary]) -> ColumnSummary:
    total = parts[0]
    for part in parts[1:]:
        total = total + part
    return total


class ScannedEngine:
    """What the stream and dask engines share: the data checks and column variances come from
    the scan's summaries instead of an array.

    Subclasses set ``source``, ``columns``, ``summary`` (every row), ``complete`` (rows with
    no missing cell) and ``complete_only`` (``--missing drop``: EM sees complete rows only).
    """

    source: str
    columns: list[str]
    summary: ColumnSummary
    complete: ColumnSummary
    complete_only: bool

    @property
    def n_features(self) -> int:
        return len(self.columns)

    @property
    def fitted_summary(self) -> ColumnSummary:
        """The summary of the rows EM sees."""
        return self.complete if self.complete_only else self.summary

    def check(self, n_components: int, missing: str = "em") -> None:
        """The memory path's data checks (DataError), on the scan's summary."""
        if self.summary.n_rows == 0:
            raise DataError(f"'{self.source}' has a header but no data rows")
        self.summary.check(self.columns, n_components, missing)

    def variances(self) -> NDArray[np.float64]:
        return self.fitted_summary.variances()

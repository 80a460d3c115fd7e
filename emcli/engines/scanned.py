"""What the stream and dask engines share: they never hold all rows, so the data checks and
the column variances of the notes come from the summaries of their scan
(``emcli.data.checks.ColumnSummary``, one per block, added in input order) instead of an
array; and rows with gaps can be left out (``--missing drop``).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from ..data.checks import ColumnSummary

Array = NDArray[np.float64]


class ScannedEngine:
    """The memory path's data checks and notes, on the scan's summaries.

    Subclasses set ``source``, ``columns``, ``weights_column``, ``summary`` (every row),
    ``complete`` (rows with no missing cell) and ``complete_only`` (``--missing drop``: EM
    sees complete rows only).
    """

    source: str
    columns: list[str]
    weights_column: str | None = None
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

    @property
    def total_weight(self) -> float:
        """Sum of the weights of the rows EM sees (their number without weights)."""
        s = self.fitted_summary
        return float(s.n_rows if s.weight_sum is None else s.weight_sum)

    def check(self, n_components: int, missing: str = "em") -> None:
        """The memory path's data checks (DataError), on the scan's summary."""
        self.summary.check(
            self.columns, n_components, missing, self.weights_column, source=self.source
        )

    def variances(self) -> NDArray[np.float64]:
        return self.fitted_summary.variances()


def complete_rows(x: Array, w: Array | None = None) -> tuple[Array, Array | None]:
    """The rows of ``x`` without a missing (NaN) cell, and their weights."""
    gaps = np.isnan(x).any(axis=1)
    if not gaps.any():
        return x, w
    return x[~gaps], None if w is None else w[~gaps]

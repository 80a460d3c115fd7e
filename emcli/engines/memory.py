"""The memory engine: the rows are one numpy array, visited in bounded row blocks.

Engines only reduce: ``e_step(family, plan)`` maps ``family.e_step`` over row blocks (on
``parallel.threads()`` threads) and sums the statistics in block order.  They never import a
family.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .. import parallel
from ..data.documents import is_sparse

Array = NDArray[np.float64]


def reduce_rows(
    family: Any,
    plan: Any,
    x: Array,
    weights: Array | None = None,
    gaps: bool | None = None,
    block_size: int | None = None,
    n_threads: int | None = None,
    total: Any = None,
) -> Any:
    """``family.e_step`` over the rows of ``x`` block by block, summed in block order (added
    to ``total`` when given).  None when there are no rows and no ``total``.

    The block partition depends only on the rows and the plan, never on the threads, so the
    sum is the same whatever the number of threads.
    """
    n = x.shape[0]
    size = block_size or family.block_rows(plan)
    starts = range(0, n, size)
    n_threads = min(n_threads or parallel.threads(), len(starts))

    def one(start: int) -> Any:
        parallel.check_cancelled()
        w = None if weights is None else weights[start : start + size]
        return family.e_step(x[start : start + size], plan, w, gaps)

    # BLAS on one thread even without our threads: OpenBLAS on two threads was erratic for
    # these tall, thin products (10x slower at times, measured here).
    with parallel.single_blas():
        for stats in parallel.ordered_map(one, starts, n_threads):
            if total is None:
                total = stats
            else:
                total += stats
    return total


class MemoryEngine:
    """EM over an in-memory array of shape (n_samples, n_features).

    Args:
        x: the rows; NaN marks a missing cell.
        weights: frequency weights of shape (n_samples,), or None (every row counts once).
        block_size: rows per block (default: what the family's plan prefers).
        dtype: "float32" keeps the rows (and the E-step's products) in single precision;
            statistics are summed and the M-step is done in float64 either way.
    """

    # Starts may run on parallel threads: e_step only reads ``x``.
    parallel_starts = True

    def __init__(
        self,
        x: Array,
        weights: Array | None = None,
        block_size: int | None = None,
        dtype: str = "float64",
    ) -> None:
        # dtype "float32" keeps the rows (and the E-step's products) in single precision;
        # statistics are summed and the M-step is done in float64 either way.
        if is_sparse(x):
            # A sparse matrix (document counts): CSR rows, sliced block by block.
            csr: Any = x
            csr = csr.tocsr().astype(np.float64, copy=False)
            if not csr.has_sorted_indices:
                csr = csr.sorted_indices()  # (a copy: the caller's matrix is left alone)
            self.x = csr
        else:
            self.x = np.ascontiguousarray(x, dtype=np.dtype(dtype))
        # Frequency weights of shape (n_samples,), float64, or None (every row counts once);
        # the checks (emcli.data.checks) are the caller's.
        self.weights = None if weights is None else np.ascontiguousarray(weights, np.float64)
        if self.weights is not None and self.weights.shape != (self.x.shape[0],):
            raise ValueError(f"weights of shape {self.weights.shape} for {self.x.shape[0]} rows")
        self.block_size = block_size
        # min propagates NaN: no temporary the size of the data.
        self.sparse = hasattr(self.x, "nnz")
        self.has_gaps = (not self.sparse) and bool(self.x.size) and bool(np.isnan(self.x.min()))
        self.notes: list[str] = []

    def rows_in_memory(self) -> tuple[Array, Array | None] | None:
        """(rows, weights) for a family's fused in-memory EM loop, when the rows are complete
        float64 values split into no chosen blocks; else None (the general path)."""
        if (
            self.sparse
            or self.has_gaps
            or self.block_size is not None
            or self.x.dtype != np.float64
        ):
            return None
        return self.x, self.weights

    @property
    def n_samples(self) -> int:
        return int(self.x.shape[0])

    @property
    def n_features(self) -> int:
        return int(self.x.shape[1])

    @property
    def dtype(self) -> Any:
        return self.x.dtype.type

    @property
    def total_weight(self) -> float:
        return float(self.n_samples if self.weights is None else self.weights.sum())

    def take(self, indices: NDArray[np.intp]) -> tuple[Array, Array | None]:
        w = None if self.weights is None else self.weights[indices]
        if self.sparse and indices.size == self.n_samples:  # every row: no copy (read only)
            return self.x, w
        return self.x[indices].astype(np.float64), w

    def blocks(self, *_: Any, size: int = 65536) -> Iterator[tuple[Array, Array | None]]:
        """The rows in order, ``(x, w)`` blocks of ``size`` rows (for per-row outputs)."""
        for start in range(0, self.n_samples, size):
            w = None if self.weights is None else self.weights[start : start + size]
            yield self.x[start : start + size], w

    def e_step(self, family: Any, plan: Any, n_threads: int | None = None) -> Any:
        """The family's statistics summed over all rows."""
        total = reduce_rows(
            family,
            plan,
            self.x,
            self.weights,
            None if self.has_gaps else False,
            self.block_size,
            n_threads,
        )
        if total is None:
            total = family.e_step(self.x[:0], plan, None, False)
        return total

    def __enter__(self) -> MemoryEngine:
        return self

    def __exit__(self, *exc: Any) -> None:
        pass

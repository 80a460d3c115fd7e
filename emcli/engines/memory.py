"""The memory engine: the rows are one numpy array, visited in bounded row blocks."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
from numpy.typing import NDArray

from .. import parallel
from ..families import kernels
from ..families.gaussian import GaussianParams, SufficientStats, block_stats, log_resp_and_norm
from ..families.missing import block_stats_with_gaps

Array = NDArray[np.float64]

# Data with gaps: rows are split into complete and incomplete ones this many at a time.
GAP_CHUNK_ROWS = 65_536
# Above this fraction of rows with gaps a chunk is not split (chunked_e_step).
GAP_SPLIT_FRACTION = 0.25
# Temporaries per block are O(block x k x d); this many elements (~4 MB) keeps them in cache.
_BLOCK_ELEMENTS = 1 << 19


def block_rows(n_components: int, n_features: int) -> int:
    """Rows per block so that (rows x k x d) stays about ``_BLOCK_ELEMENTS``."""
    rows = _BLOCK_ELEMENTS // max(1, n_components * n_features)
    return int(min(65536, max(256, rows)))


def block_e_step(xb: Array, params: GaussianParams, gaps: bool = True) -> SufficientStats:
    """E-step on one block of rows of shape (b, n_features): its sufficient statistics.

    The plain reference, and the path of blocks with missing values (NaN), which take
    ``families.missing``; ``gaps=False`` skips that test for data known to be complete.
    Complete rows go through the kernels (``fast_e_step``, ``chunked_e_step``) in every
    engine; both agree to rounding (tests/test_speed_paths.py).
    """
    if gaps and np.isnan(xb).any():
        return block_stats_with_gaps(xb, params)
    log_resp, norm = log_resp_and_norm(xb, params)
    resp = np.exp(log_resp, out=log_resp)
    return block_stats(xb, resp, params.means, params.covariance_type, norm.sum())


class MemoryEngine:
    """EM over an in-memory array of shape (n_samples, n_features), with optional
    frequency weights of shape (n_samples,) (``weights``)."""

    # Starts may run on parallel threads: e_step only reads ``x``.
    parallel_starts = True

    def __init__(self, x: Array, weights: Array | None = None, block_size: int | None = None,
                 dtype: str = "float64") -> None:
        # dtype "float32" keeps the rows (and the E-step's products) in single precision;
        # statistics are summed and the M-step is done in float64 either way.
        self.x = np.ascontiguousarray(x, dtype=np.dtype(dtype))
        # Frequency weights of shape (n_samples,), float64, or None (every row counts once);
        # the checks (emcli.data.checks) are the caller's.
        self.weights = None if weights is None else np.ascontiguousarray(weights, np.float64)
        if self.weights is not None and self.weights.shape != (self.x.shape[0],):
            raise ValueError(f"weights of shape {self.weights.shape} for {self.x.shape[0]} rows")
        self.block_size = block_size
        self.has_gaps = bool(np.isnan(self.x).any())  # rows with NaN take families.missing

    @property
    def n_samples(self) -> int:
        return int(self.x.shape[0])

    @property
    def n_features(self) -> int:
        return int(self.x.shape[1])

    def take(self, indices: NDArray[np.intp]) -> Array:
        return self.x[indices].astype(np.float64)

    def blocks(self, n_components: int, size: int | None = None) -> Iterator[Array]:
        size = self.block_size or size or block_rows(n_components, self.n_features)
        for start in range(0, self.n_samples, size):
            yield self.x[start : start + size]

    def e_step(self, params: GaussianParams) -> SufficientStats:
        """Statistics summed over all rows (fast kernels, row blocks on ``threads()``).

        The block partition depends only on (n, k, d) and block sums are added in block
        order, so the result is the same whatever the number of threads.
        """
        if self.has_gaps:  # rows with NaN take families.missing, complete rows the kernels
            return chunked_e_step(self.blocks(params.n_components, GAP_CHUNK_ROWS), params)
        return fast_e_step(self.x, params, self.block_size)

    def e_step_reference(self, params: GaussianParams) -> SufficientStats:
        """The plain E-step (``block_e_step`` over ``blocks()``), kept as a reference and
        for data with NaN (``block_stats_with_gaps``)."""
        total = SufficientStats.zeros(params.covariance_type, params.means)
        for xb in self.blocks(params.n_components):
            xb = xb.astype(np.float64, copy=False)
            total = total + block_e_step(xb, params, self.has_gaps)
        return total


def fast_e_step(
    x: Array, params: GaussianParams, block_size: int | None = None, n_threads: int | None = None
) -> SufficientStats:
    """E-step over the rows of ``x`` with the kernels of ``emcli.families.kernels``."""
    plan = kernels.make_plan(params, x.dtype.type, n_rows=x.shape[0])
    raw = fast_raw(plan, x, block_size, n_threads)
    if raw is None:  # no rows
        return SufficientStats.zeros(params.covariance_type, params.means)
    return kernels.raw_to_stats(plan, *raw, x.shape[0], params.means)


def fast_raw(
    plan: kernels.Plan, x: Array, block_size: int | None = None, n_threads: int | None = None,
    acc: list | None = None,
) -> list | None:
    """Raw kernel sums ``[g, ex, log-likelihood]`` (``kernels.block_raw``) over the rows of
    ``x``, block by block on ``threads()``, added in block order to ``acc`` (in place; a new
    list when None).  None when there are no rows and no ``acc``."""
    n = x.shape[0]
    size = block_size or kernels.block_rows_for(plan.kind, plan.k, plan.d, plan.direct)
    starts = range(0, n, size)
    n_threads = min(n_threads or parallel.threads(), len(starts))

    def one(start: int) -> tuple[Array, Array, float]:
        parallel.check_cancelled()
        return kernels.block_raw(plan, x[start : start + size])

    # BLAS on one thread even without our threads: OpenBLAS on two threads was erratic for
    # these tall, thin products (10x slower at times, measured here).
    with parallel.single_blas():
        for g, ex, ll in parallel.ordered_map(one, starts, n_threads):
            if acc is None:
                acc = [g, ex, ll]  # the block's own arrays
            else:
                acc[0] += g
                acc[1] += ex
                acc[2] += ll
    return acc


def chunked_e_step(
    chunks: Iterable[Array], params: GaussianParams, n_threads: int | None = None
) -> SufficientStats:
    """E-step over rows that come in chunks (the stream and dask engines' blocks).

    Complete rows take the fast kernels, one plan for all of them; rows with missing values
    (NaN) take ``block_e_step`` (``families.missing``) block by block.  A chunk where most
    rows have gaps (over ``GAP_SPLIT_FRACTION``) goes to ``block_e_step`` whole: measured
    here (1e5 x 10, k = 5), splitting paid at 9% of rows with gaps (1.4-2.5x faster) and
    cost more than it saved at 40% for full/tied.
    """
    plan = kernels.make_plan(params)
    raw = None
    n_fast = 0
    total = SufficientStats.zeros(params.covariance_type, params.means)
    size = block_rows(params.n_components, params.n_features)
    for xb in chunks:
        xb = np.asarray(xb, dtype=np.float64)
        gaps = np.isnan(xb).any(axis=1)
        whole = gaps.mean() > GAP_SPLIT_FRACTION if len(xb) else False
        slow = xb if whole else xb[gaps]
        for start in range(0, len(slow), size):
            total = total + block_e_step(slow[start : start + size], params)
        if whole:
            continue
        fast = xb[~gaps] if len(slow) else xb
        raw = fast_raw(plan, fast, None, n_threads, raw)
        n_fast += len(fast)
    if n_fast:
        total = total + kernels.raw_to_stats(plan, *raw, n_fast, params.means)
    return total

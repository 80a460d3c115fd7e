"""The memory engine: the rows are one numpy array, visited in bounded row blocks."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from numpy.typing import NDArray

from ..families.gaussian import GaussianParams, SufficientStats, block_stats, log_resp_and_norm
from ..families.missing import block_stats_with_gaps

Array = NDArray[np.float64]

# Temporaries per block are O(block x k x d); this many elements (~4 MB) keeps them in cache.
_BLOCK_ELEMENTS = 1 << 19


def block_rows(n_components: int, n_features: int) -> int:
    """Rows per block so that (rows x k x d) stays about ``_BLOCK_ELEMENTS``."""
    rows = _BLOCK_ELEMENTS // max(1, n_components * n_features)
    return int(min(65536, max(256, rows)))


def block_e_step(xb: Array, params: GaussianParams, gaps: bool = True) -> SufficientStats:
    """E-step on one block of rows of shape (b, n_features): its sufficient statistics.

    Every engine (memory, stream, dask) sums this over its blocks, so they agree.  A block
    with missing values (NaN) takes ``families.missing``; ``gaps=False`` skips that test
    for data known to be complete.
    """
    if gaps and np.isnan(xb).any():
        return block_stats_with_gaps(xb, params)
    log_resp, norm = log_resp_and_norm(xb, params)
    resp = np.exp(log_resp, out=log_resp)
    return block_stats(xb, resp, params.means, params.covariance_type, norm.sum())


class MemoryEngine:
    """EM over an in-memory array of shape (n_samples, n_features)."""

    def __init__(self, x: Array, block_size: int | None = None) -> None:
        self.x = np.ascontiguousarray(x, dtype=np.float64)
        self.block_size = block_size
        self.has_gaps = bool(np.isnan(self.x).any())  # rows with NaN take families.missing

    @property
    def n_samples(self) -> int:
        return int(self.x.shape[0])

    @property
    def n_features(self) -> int:
        return int(self.x.shape[1])

    def take(self, indices: NDArray[np.intp]) -> Array:
        return self.x[indices]

    def blocks(self, n_components: int) -> Iterator[Array]:
        size = self.block_size or block_rows(n_components, self.n_features)
        for start in range(0, self.n_samples, size):
            yield self.x[start : start + size]

    def e_step(self, params: GaussianParams) -> SufficientStats:
        total = SufficientStats.zeros(params.covariance_type, params.means)
        for xb in self.blocks(params.n_components):
            total = total + block_e_step(xb, params, self.has_gaps)
        return total

"""Drawing rows from a fitted Gaussian mixture.

Each row picks its component with probability ``weights[j]``, then takes
``mean_j + L_j z`` with ``z`` standard normal and ``L_j`` the Cholesky factor of the
component's covariance.  Rows are drawn in blocks of ``SAMPLE_BLOCK`` from one
``numpy.random.Generator``, so the same seed gives the same rows (and the same bytes) however
many rows are asked for, and memory stays bounded for any ``n``.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from numpy.typing import NDArray

from .params import GaussianParams

Array = NDArray[np.float64]
SAMPLE_BLOCK = 65536


def sample_blocks(
    params: GaussianParams,
    n_samples: int,
    rng: np.random.Generator,
    block: int = SAMPLE_BLOCK,
) -> Iterator[tuple[Array, NDArray[np.int64]]]:
    """Yield ``(x, component)`` blocks, x of shape (rows, n_features), ``n_samples`` rows in all."""
    if n_samples < 0:
        raise ValueError("n_samples must be 0 or more")
    k, d = params.n_components, params.n_features
    chol = np.linalg.cholesky(params.full_covariances())  # (k, d, d), lower
    weights = params.weights / params.weights.sum()
    for start in range(0, n_samples, block):
        rows = min(block, n_samples - start)
        component = rng.choice(k, size=rows, p=weights).astype(np.int64)
        z = rng.standard_normal((rows, d))
        x = np.empty((rows, d))
        for j in range(k):
            mask = component == j
            x[mask] = params.means[j] + z[mask] @ chol[j].T
        yield x, component


def sample(
    params: GaussianParams, n_samples: int, rng: np.random.Generator
) -> tuple[Array, NDArray[np.int64]]:
    """``n_samples`` rows drawn from the mixture and the component each came from."""
    parts = list(sample_blocks(params, n_samples, rng))
    if not parts:
        return np.empty((0, params.n_features)), np.empty(0, dtype=np.int64)
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

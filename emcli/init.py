"""Starting parameters for EM: k-means++, k-means and random starts.

Every method works on the *initialisation sample*: all rows when there are at most
``init_sample`` of them, otherwise a uniform sample of that many rows drawn with the run's
seed.  The sample depends only on (seed, n_samples, init_sample), never on the engine, so every
engine starts from the same parameters.  Each method picks k centres, assigns every sample row
to its nearest centre, and takes one M-step from that hard assignment (weights, means and
covariances of the k groups, with ``reg_covar`` on the diagonal).

With missing values (NaN) in the sample: rows with nothing observed are set aside; the
centres are chosen on the complete rows when there are at least ``MIN_COMPLETE_PER_COMPONENT``
x k of them, otherwise on all rows with each gap filled by its column's observed mean.  Every
row is then assigned to the nearest centre by the distance over its observed coordinates
(scaled up by d / observed), and the first M-step fills each gap with the observed mean of
its column within the row's group.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from .errors import DataError
from .families.gaussian import GaussianParams, params_from_labels

Array = NDArray[np.float64]
INIT_METHODS: tuple[str, ...] = ("kmeans", "kmeans++", "random")
KMEANS_MAX_ITER = 100
MIN_COMPLETE_PER_COMPONENT = 10


def sample_indices(n_samples: int, size: int, rng: np.random.Generator) -> NDArray[np.intp]:
    """Sorted row indices of the initialisation sample (all rows when n <= size)."""
    if n_samples <= size:
        return np.arange(n_samples)
    return np.sort(rng.choice(n_samples, size=size, replace=False))


def _sq_distances(x: Array, centers: Array) -> Array:
    # ||x||^2 - 2 x.c + ||c||^2, clipped at 0 against rounding; (n, k).
    out = -2.0 * (x @ centers.T)
    out += np.einsum("ij,ij->i", x, x)[:, None]
    out += np.einsum("ij,ij->i", centers, centers)[None, :]
    return np.maximum(out, 0.0, out=out)


def kmeans_plusplus(x: Array, k: int, rng: np.random.Generator) -> Array:
    """Greedy k-means++ seeding (Arthur & Vassilvitskii 2007; 2 + log k trials per centre)."""
    n = x.shape[0]
    trials = 2 + int(np.log(k))
    centers = np.empty((k, x.shape[1]))
    centers[0] = x[rng.integers(n)]
    closest = _sq_distances(x, centers[:1])[:, 0]
    for c in range(1, k):
        total = closest.sum()
        if total <= 0.0:  # fewer distinct rows than k: any row will do
            centers[c] = x[rng.integers(n)]
            continue
        cumulative = np.cumsum(closest)
        picks = np.searchsorted(cumulative, rng.random(trials) * total, side="right")
        picks = np.minimum(picks, n - 1)
        candidate = np.minimum(closest[:, None], _sq_distances(x, x[picks]))
        best = int(np.argmin(candidate.sum(axis=0)))
        centers[c] = x[picks[best]]
        closest = candidate[:, best]
    return centers


def kmeans(x: Array, k: int, rng: np.random.Generator) -> Array:
    """Lloyd's k-means from k-means++ seeds; an emptied cluster keeps its old centre."""
    centers = kmeans_plusplus(x, k, rng)
    labels = np.full(x.shape[0], -1)
    for _ in range(KMEANS_MAX_ITER):
        new = np.argmin(_sq_distances(x, centers), axis=1)
        if np.array_equal(new, labels):
            break
        labels = new
        counts = np.bincount(labels, minlength=k)
        sums = np.zeros_like(centers)
        np.add.at(sums, labels, x)
        filled = counts > 0
        centers[filled] = sums[filled] / counts[filled, None]
    return centers


def random_rows(x: Array, k: int, rng: np.random.Generator) -> Array:
    """k distinct rows chosen uniformly at random (with repeats only if n < k)."""
    n = x.shape[0]
    return x[rng.choice(n, size=k, replace=n < k)].copy()


_CENTERS: dict[str, Callable[[Array, int, np.random.Generator], Array]] = {
    "kmeans": kmeans,
    "kmeans++": kmeans_plusplus,
    "random": random_rows,
}


def initial_params(
    x: Array,
    n_components: int,
    method: str,
    covariance_type: str,
    reg_covar: float,
    rng: np.random.Generator,
) -> GaussianParams:
    """Starting parameters from the initialisation sample ``x`` (n, d)."""
    if np.isnan(x).any():
        return _initial_params_with_gaps(x, n_components, method, covariance_type, reg_covar, rng)
    # Distances are taken on centred rows: for data far from 0 (values near 1e12)
    # ||x||^2 - 2 x.c + ||c||^2 would cancel to noise.
    offset = x.mean(axis=0)
    xc = x - offset
    centers = _CENTERS[method](xc, n_components, rng)
    labels = np.argmin(_sq_distances(xc, centers), axis=1)
    return params_from_labels(x, labels, centers + offset, covariance_type, reg_covar)


def _initial_params_with_gaps(
    x: Array,
    n_components: int,
    method: str,
    covariance_type: str,
    reg_covar: float,
    rng: np.random.Generator,
) -> GaussianParams:
    """``initial_params`` for a sample with gaps (module docstring)."""
    from .families.missing import observed_mean, params_from_labels_with_gaps

    x = x[~np.isnan(x).all(axis=1)]
    if x.shape[0] == 0:
        raise DataError("the initialisation sample has no observed value; raise --init-sample")
    gaps = np.isnan(x)
    offset = observed_mean(x)
    xc = np.where(gaps, 0.0, x - offset)  # centred; a gap sits at its column's mean
    complete = ~gaps.any(axis=1)
    seeds = xc[complete] if complete.sum() >= MIN_COMPLETE_PER_COMPONENT * n_components else xc
    centers = _CENTERS[method](seeds, n_components, rng)
    obs = (~gaps).astype(np.float64)
    dist = (xc * xc).sum(axis=1)[:, None] - 2.0 * (xc @ centers.T) + obs @ (centers * centers).T
    dist *= (x.shape[1] / obs.sum(axis=1))[:, None]
    labels = np.argmin(dist, axis=1)
    return params_from_labels_with_gaps(x, labels, centers + offset, covariance_type, reg_covar)

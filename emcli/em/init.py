"""Starting labels for EM: hierarchical (hc), k-means++, k-means and random starts.

``auto`` (the default) mixes them so that restarts differ: start 0 is the hc start (mclust's
model-based hierarchical clustering, ``emcli.em.hc``; one tree serves every k), and starts
1, 2, 3, ... cycle through k-means (Lloyd's iterations from k-means++ seeds), k-means++
seeds alone and random rows.  Measured on the data sets of the mclust benchmark and on
image pixels, k-means alone sends most starts to one optimum; seeds without Lloyd's
iterations and random rows reach others, and the hc start reaches mclust's.

Every method works on the *initialisation sample*: all rows when there are at most
``init_sample`` of them, otherwise a uniform sample of that many rows drawn with the run's
seed.  The sample depends only on (seed, n_samples, init_sample), never on the engine, so every
engine starts from the same parameters.  Each method picks k centres and assigns every sample
row to its nearest centre; the family then takes one M-step from that hard assignment
(``Family.start``: for the Gaussian family the weights, means and covariances of the k
groups, with ``reg_covar`` on the diagonal).  With frequency weights, k-means++ draws rows
with probability proportional to weight x squared distance, random starts proportional to
weight, and Lloyd's centres are weighted means: as if each row were repeated.

With missing values (NaN) in the sample: rows with nothing observed are set aside; the
centres are chosen on the complete rows when there are at least ``MIN_COMPLETE_PER_COMPONENT``
x k of them, otherwise on all rows with each gap filled by its column's observed mean.  Every
row is then assigned to the nearest centre by the distance over its observed coordinates
(scaled up by d / observed), and the first M-step fills each gap with the observed mean of
its column within the row's group.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..errors import DataError

Array = NDArray[np.float64]
INIT_METHODS: tuple[str, ...] = ("auto", "hc", "kmeans", "kmeans++", "random")
# What ``auto`` gives starts 1, 2, 3, ... (start 0 is hc).
AUTO_CYCLE: tuple[str, ...] = ("kmeans", "kmeans++", "random")
KMEANS_MAX_ITER = 100
MIN_COMPLETE_PER_COMPONENT = 10


def start_method(init: str, index: int) -> str:
    """The method of start ``index`` (0-based) for ``init`` (``auto``: module docstring)."""
    if init != "auto":
        return init
    return "hc" if index == 0 else AUTO_CYCLE[(index - 1) % len(AUTO_CYCLE)]


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


def _first_row(n: int, rng: np.random.Generator, weights: Array | None) -> int:
    if weights is None:
        return int(rng.integers(n))
    return int(
        min(np.searchsorted(np.cumsum(weights), rng.random() * weights.sum(), side="right"), n - 1)
    )


def kmeans_plusplus(
    x: Array, k: int, rng: np.random.Generator, weights: Array | None = None
) -> Array:
    """Greedy k-means++ seeding (Arthur & Vassilvitskii 2007; 2 + log k trials per centre)."""
    n = x.shape[0]
    trials = 2 + int(np.log(k))
    centers = np.empty((k, x.shape[1]))
    centers[0] = x[_first_row(n, rng, weights)]
    closest = _sq_distances(x, centers[:1])[:, 0]
    for c in range(1, k):
        mass = closest if weights is None else closest * weights
        total = mass.sum()
        if total <= 0.0:  # fewer distinct rows than k: any row will do
            centers[c] = x[_first_row(n, rng, weights)]
            continue
        cumulative = np.cumsum(mass)
        picks = np.searchsorted(cumulative, rng.random(trials) * total, side="right")
        picks = np.minimum(picks, n - 1)
        candidate = np.minimum(closest[:, None], _sq_distances(x, x[picks]))
        cost = candidate.sum(axis=0) if weights is None else weights @ candidate
        best = int(np.argmin(cost))
        centers[c] = x[picks[best]]
        closest = candidate[:, best]
    return centers


def kmeans(x: Array, k: int, rng: np.random.Generator, weights: Array | None = None) -> Array:
    """Lloyd's k-means from k-means++ seeds; an emptied cluster keeps its old centre."""
    centers = kmeans_plusplus(x, k, rng, weights)
    labels = np.full(x.shape[0], -1)
    for _ in range(KMEANS_MAX_ITER):
        new = np.argmin(_sq_distances(x, centers), axis=1)
        if np.array_equal(new, labels):
            break
        labels = new
        counts: Array
        if weights is None:
            counts = np.bincount(labels, minlength=k).astype(np.float64)
            sums = np.zeros_like(centers)
            np.add.at(sums, labels, x)
        else:
            counts = np.bincount(labels, weights=weights, minlength=k).astype(np.float64)
            sums = np.zeros_like(centers)
            np.add.at(sums, labels, x * weights[:, None])
        filled = counts > 0
        centers[filled] = sums[filled] / counts[filled, None]
    return centers


def random_rows(x: Array, k: int, rng: np.random.Generator, weights: Array | None = None) -> Array:
    """k distinct rows chosen at random, uniformly or by weight (repeats only if too few)."""
    n = x.shape[0]
    if weights is None:
        return x[rng.choice(n, size=k, replace=n < k)].copy()
    live = int(np.count_nonzero(weights))
    p = weights / weights.sum()
    return x[rng.choice(n, size=k, replace=live < k, p=p)].copy()


_CENTERS: dict[str, Callable[..., Array]] = {
    "kmeans": kmeans,
    "kmeans++": kmeans_plusplus,
    "random": random_rows,
}


def observed_mean(x: Array) -> Array:
    """Mean of each column over its observed cells; 0 for a column with none."""
    gaps = np.isnan(x)
    count = np.maximum((~gaps).sum(axis=0), 1)
    return np.where(gaps, 0.0, x).sum(axis=0) / count


Labels = tuple[NDArray[np.intp], NDArray[np.intp], Array]
# A model selection starts every covariance model of a k from the same partitions (the same
# sample, method and random stream): ``initial_labels`` keeps the last ones it computed on
# samples of at most CACHE_ROWS rows, so that 14 models cost one k-means (on wreath, 1000
# rows, the starts were a third of a selection's time).
CACHE_ROWS = 4096
CACHE_SIZE = 64
_CACHE: OrderedDict[tuple[bytes, int, str, str], tuple[Labels, Any]] = OrderedDict()
_CACHE_LOCK = threading.Lock()


def initial_labels(
    x: Array,
    n_components: int,
    method: str,
    rng: np.random.Generator,
    weights: Array | None = None,
) -> Labels:
    """Hard starting assignment of the initialisation sample ``x`` (n, d).

    Returns (rows, labels, centers): the indices of the rows assigned (rows with nothing
    observed are set aside), the component of each, and the k centres (k, d).  The same
    arguments (``rng`` in the same state) give the same partition, and leave ``rng`` in the
    same state, whether it was computed or found among the last ones (``CACHE_ROWS``).
    """
    if x.shape[0] > CACHE_ROWS:
        return _initial_labels(x, n_components, method, rng, weights)
    from .hc import sample_key

    key = (sample_key(x, weights), n_components, method, repr(rng.bit_generator.state))
    with _CACHE_LOCK:  # starts may run on threads
        hit = _CACHE.get(key)
        if hit is not None:
            _CACHE.move_to_end(key)
    if hit is None:
        found = _initial_labels(x, n_components, method, rng, weights)
        with _CACHE_LOCK:
            _CACHE[key] = (found, rng.bit_generator.state)
            while len(_CACHE) > CACHE_SIZE:
                _CACHE.popitem(last=False)
    else:
        found, state = hit
        rng.bit_generator.state = state
    rows, labels, centers = found
    return rows.copy(), labels.copy(), centers.copy()


def _initial_labels(
    x: Array,
    n_components: int,
    method: str,
    rng: np.random.Generator,
    weights: Array | None = None,
) -> Labels:
    if method == "hc":
        return _hc_labels(x, n_components, rng, weights)
    if method not in _CENTERS:
        raise ValueError(f"init must be one of {', '.join(INIT_METHODS[1:])}")
    if np.isnan(x).any():
        return _labels_with_gaps(x, n_components, method, rng, weights)
    # Distances are taken on centred rows: for data far from 0 (values near 1e12)
    # ||x||^2 - 2 x.c + ||c||^2 would cancel to noise.
    offset = x.mean(axis=0)
    xc = x - offset
    centers = _CENTERS[method](xc, n_components, rng, weights)
    labels = np.argmin(_sq_distances(xc, centers), axis=1)
    return np.arange(x.shape[0]), labels, centers + offset


def _labels_with_gaps(
    x: Array,
    n_components: int,
    method: str,
    rng: np.random.Generator,
    weights: Array | None,
) -> tuple[NDArray[np.intp], NDArray[np.intp], Array]:
    """``initial_labels`` for a sample with gaps (module docstring)."""
    rows = np.flatnonzero(~np.isnan(x).all(axis=1))
    x = x[rows]
    if x.shape[0] == 0:
        raise DataError("the initialisation sample has no observed value; raise {init_sample}")
    w = None if weights is None else weights[rows]
    gaps = np.isnan(x)
    offset = observed_mean(x)
    xc = np.where(gaps, 0.0, x - offset)  # centred; a gap sits at its column's mean
    complete = ~gaps.any(axis=1)
    enough = complete.sum() >= MIN_COMPLETE_PER_COMPONENT * n_components
    seeds, ws = (xc[complete], None if w is None else w[complete]) if enough else (xc, w)
    centers = _CENTERS[method](seeds, n_components, rng, ws)
    obs = (~gaps).astype(np.float64)
    dist = (xc * xc).sum(axis=1)[:, None] - 2.0 * (xc @ centers.T) + obs @ (centers * centers).T
    dist *= (x.shape[1] / obs.sum(axis=1))[:, None]
    return rows, np.argmin(dist, axis=1), centers + offset


def _hc_labels(
    x: Array, n_components: int, rng: np.random.Generator, weights: Array | None
) -> tuple[NDArray[np.intp], NDArray[np.intp], Array]:
    """``initial_labels`` by the hc tree (gaps filled by their column's observed mean, rows
    with nothing observed set aside); the centres are the groups' means."""
    from .hc import hc_labels

    rows = np.flatnonzero(~np.isnan(x).all(axis=1))
    if rows.size == 0:
        raise DataError("the initialisation sample has no observed value; raise {init_sample}")
    xs = x[rows]
    if np.isnan(xs).any():
        xs = np.where(np.isnan(xs), observed_mean(xs)[None, :], xs)
    w = None if weights is None else weights[rows]
    picked, labels = hc_labels(xs, n_components, rng, w)
    rows, xs = rows[picked], xs[picked]
    k = n_components
    counts = np.bincount(labels, minlength=k).astype(np.float64)
    sums = np.zeros((k, x.shape[1]))
    np.add.at(sums, labels, xs)
    centers = sums / np.maximum(counts, 1.0)[:, None]
    if counts.min() == 0:  # fewer distinct rows than k: empty groups sit on a row
        empty = np.flatnonzero(counts == 0)
        centers[empty] = xs[rng.choice(xs.shape[0], size=empty.size)]
    return rows, labels, centers

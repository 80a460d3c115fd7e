"""Starting labels for document mixtures: spherical k-means on tf-idf rows.

EM on long documents is nearly hard from the first iteration (a document's responsibilities
are a product over its words), so where it ends depends on the start.  The starts work on
the L2-normalised tf-idf rows of the initialisation sample (idf = log((1 + n) / (1 + df)) + 1,
sublinear term frequency 1 + log tf), where the cosine similarity of two documents is a dot
product of sparse rows:

* ``kmeans++``: k seed documents drawn as k-means++ does (Arthur & Vassilvitskii 2007) with
  the squared distance 2 - 2 cos; every document goes to its most similar seed.
* ``kmeans`` (and ``hc``, the Gaussian family's start): those seeds, then spherical k-means
  (Dhillon & Modha 2001: centres are the normalised means of their documents) for up to
  ``max_iter`` iterations.
* ``random``: k distinct random documents as seeds, then spherical k-means as ``kmeans``
  (Lloyd's classic random start).

Frequency weights weigh the draws and the centres as repeated rows would.  Centres are
dense (k x V): memory k V, never n x V.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.float64]


def tfidf_rows(x: Any) -> Any:
    """Sublinear tf-idf of CSR counts, each row of unit L2 norm (no row may be empty)."""
    import scipy.sparse as sp

    x = sp.csr_matrix(x, dtype=np.float64, copy=True)
    df = np.bincount(x.indices, minlength=x.shape[1]).astype(np.float64)
    idf = np.log((1.0 + x.shape[0]) / (1.0 + df)) + 1.0
    x.data = (1.0 + np.log(np.maximum(x.data, 1e-300))) * idf[x.indices]
    x.data = np.maximum(x.data, 0.0)  # fractional counts below 1 weigh nothing
    per_row = np.diff(x.indptr)
    rows = np.repeat(np.arange(x.shape[0]), per_row)
    norms = np.sqrt(np.bincount(rows, weights=x.data * x.data, minlength=x.shape[0]))
    norms[norms == 0] = 1.0
    x.data /= np.repeat(norms, per_row)
    return x


def _draw(p: Array, rng: np.random.Generator) -> int:
    total = float(p.sum())
    if not total > 0:
        return int(rng.integers(p.size))
    at = int(np.searchsorted(np.cumsum(p), rng.random() * total, side="right"))
    return min(at, p.size - 1)


def seeds_plusplus(z: Any, k: int, rng: np.random.Generator, weights: Array | None) -> list[int]:
    """k-means++ seed rows of the normalised rows ``z`` (greedy, 2 + log k trials)."""
    n = z.shape[0]
    w = np.ones(n) if weights is None else weights
    first = _draw(w, rng)
    chosen = [first]
    dist = np.maximum(2.0 - 2.0 * np.asarray(z @ z[first].T.toarray()).ravel(), 0.0)
    trials = 2 + int(np.log(k))
    for _ in range(1, k):
        best, best_cost, best_dist = -1, np.inf, dist
        for _ in range(trials):
            c = _draw(w * dist, rng)
            d = np.minimum(
                dist, np.maximum(2.0 - 2.0 * np.asarray(z @ z[c].T.toarray()).ravel(), 0.0)
            )
            cost = float(w @ d)
            if cost < best_cost:
                best, best_cost, best_dist = c, cost, d
        chosen.append(best)
        dist = best_dist
    return chosen


def spherical_kmeans(
    z: Any, centres: Array, weights: Array | None, max_iter: int
) -> NDArray[np.intp]:
    """Labels after up to ``max_iter`` spherical k-means iterations from ``centres`` (k, V)."""
    import scipy.sparse as sp

    k = centres.shape[0]
    labels = np.asarray(np.argmax(z @ centres.T, axis=1)).ravel()
    w = np.ones(z.shape[0]) if weights is None else weights
    for _ in range(max_iter):
        member = sp.csr_matrix((w, (labels, np.arange(z.shape[0]))), shape=(k, z.shape[0]))
        sums = np.asarray((member @ z).todense())
        norms = np.linalg.norm(sums, axis=1)
        empty = norms == 0
        sums[~empty] /= norms[~empty, None]
        sums[empty] = centres[empty]  # an empty cluster keeps its centre
        centres = sums
        new = np.asarray(np.argmax(z @ centres.T, axis=1)).ravel()
        if np.array_equal(new, labels):
            break
        labels = new
    return labels.astype(np.intp)


def initial_labels(
    x: Any,
    k: int,
    method: str,
    rng: np.random.Generator,
    weights: Array | None = None,
    max_iter: int = 20,
) -> NDArray[np.intp]:
    """A label in 0..k-1 for every row of the CSR counts ``x`` (module docstring)."""
    z = tfidf_rows(x)
    if method == "random":
        p = None if weights is None else weights / weights.sum()
        rows = list(rng.choice(z.shape[0], size=k, replace=False, p=p))
    else:
        rows = seeds_plusplus(z, k, rng, weights)
    centres = np.asarray(z[rows].todense())
    if method != "kmeans++":
        return spherical_kmeans(z, centres, weights, max_iter)
    return np.asarray(np.argmax(z @ centres.T, axis=1)).ravel().astype(np.intp)

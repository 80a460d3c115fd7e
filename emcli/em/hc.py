"""Model-based agglomerative hierarchical clustering: mclust's ``hc`` start (Fraley 1998).

Every row starts as its own cluster (identical rows too, as in mclust, whose ``hc`` calls
``hcVVV`` without its ``dupPartition``; with frequency weights identical rows start
together, their weights summed); the two clusters whose merge costs the least are merged
until one is left.  Among pairs of equal cost (identical or rounded rows) the pair mclust
takes is merged: the last in its order of pairs, which keeps a merged cluster at the lower
of its two positions and moves the last cluster into the other (tested equal to mclust's
trees on faithful, geyser and iris).  The cost is the change of Fraley's criterion for
the unconstrained Gaussian model (mclust's ``hcVVV`` with alpha = beta = 1): a cluster of n
rows with scatter W adds

    n log( det(W / n) + (tr W + alpha) / n )    when n > d,
    n log( (tr W + alpha) / n )                 when n <= d,

with alpha the trace of the data's scatter per row and column, which keeps the criterion
finite for clusters too small to estimate a covariance.  The merges form one tree, and cutting
it at k clusters gives a start for every k (mclust's ``hclass``): model selection computes the
tree once for all k and models.

As mclust does by default, the tree is grown on the "SVD" transform of the rows (centred,
scaled to unit variance, rotated to the principal axes and divided by the square roots of
the singular values) and, above ``HC_MAX_ROWS`` rows, on a random subset of that many rows
(drawn with the start's random stream); above ``HC_MAX_DIMS`` columns on the leading
principal axes only.  Frequency weights count as repeated rows.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.float64]
HC_MAX_ROWS = 2000
HC_MAX_DIMS = 50
_CACHE: OrderedDict[bytes, tuple[NDArray[np.intp], NDArray[np.intp]]] = OrderedDict()
_CACHE_SIZE = 4


def svd_transform(x: Array, weights: Array | None = None) -> Array:
    """mclust's ``hcUse = "SVD"``: standardised rows on the principal axes, each divided by
    the square root of its singular value (constant columns dropped); frequency weights
    count as repeated rows."""
    w = np.ones(x.shape[0]) if weights is None else np.asarray(weights, dtype=np.float64)
    total = float(w.sum())
    mean = (w @ x) / total
    centred = x - mean
    var = (w @ (centred * centred)) / max(total - 1.0, 1e-300)
    sd = np.sqrt(var)
    keep = np.isfinite(sd) & (sd > 0)
    if not keep.any() or total <= 1.0:
        return np.zeros((x.shape[0], 1))
    z = centred[:, keep] / sd[keep]
    _, s, vt = np.linalg.svd(z * np.sqrt(w)[:, None], full_matrices=False)
    live = s > s[0] * 1e-12 if s.size and s[0] > 0 else np.zeros(0, bool)
    axes = vt[live][:HC_MAX_DIMS]
    return (z @ axes.T) / np.sqrt(s[live][:HC_MAX_DIMS])


def _terms(n: Array, tr: Array, logdet: Array, d: int, alpha: float) -> Array:
    """Fraley's criterion of clusters (module docstring); ``logdet`` = log det(W / n),
    -inf when singular (then the det term is 0), ignored where n <= d."""
    base = (tr + alpha) / n
    big = n > d
    det = np.where(big, np.exp(np.where(big, logdet, -np.inf)), 0.0)
    return n * np.log(det + base)


def _logdet(w: Array, n: Array) -> Array:
    """log det(W / n) of scatters (m, d, d), -inf where not positive: in closed form for up to
    four columns (LAPACK's LU a matrix at a time took most of a 1000-row tree's time)."""
    d = w.shape[-1]
    if d > 4:
        sign, logdet = np.linalg.slogdet(w / n[:, None, None])
        return np.where(sign > 0, logdet, -np.inf)
    return _log_det_small(lambda p, q: w[:, p, q], n, d)


def _merged_logdet(wa: Array, wo: Array, co: Array, do: Array, n: Array) -> Array:
    """``_logdet`` of the scatters of cluster a merged with each of others: W_a + W_o +
    c_o d_o d_o^T, (d, d), (m, d, d), (m,), (m, d), (m,); for up to four columns from the
    entries of the upper triangle, without forming the matrices."""
    d = wa.shape[-1]
    if d > 4:
        return _logdet(wa[None] + wo + co[:, None, None] * do[:, :, None] * do[:, None, :], n)
    return _log_det_small(lambda p, q: wa[p, q] + wo[:, p, q] + co * do[:, p] * do[:, q], n, d)


def _log_det_small(entry: Callable[[int, int], Array], n: Array, d: int) -> Array:
    """log det(W / n) of symmetric matrices of d <= 4 columns from the entries ``entry(p, q)``
    (p <= q) of their upper triangles, -inf where not positive."""
    if d == 1:
        det = entry(0, 0) / n
    elif d == 2:
        b = entry(0, 1)
        det = (entry(0, 0) * entry(1, 1) - b * b) / (n * n)
    elif d == 3:
        a, b, c = entry(0, 0), entry(0, 1), entry(0, 2)
        e, f, i = entry(1, 1), entry(1, 2), entry(2, 2)
        det = (a * (e * i - f * f) - b * (b * i - f * c) + c * (b * f - e * c)) / (n * n * n)
    else:  # Laplace's expansion by the 2 x 2 minors of rows 0, 1 and their complements
        m00, m01, m02, m03 = entry(0, 0), entry(0, 1), entry(0, 2), entry(0, 3)
        m11, m12, m13 = entry(1, 1), entry(1, 2), entry(1, 3)
        m22, m23, m33 = entry(2, 2), entry(2, 3), entry(3, 3)
        det = (
            (m00 * m11 - m01 * m01) * (m22 * m33 - m23 * m23)
            - (m00 * m12 - m02 * m01) * (m12 * m33 - m23 * m13)
            + (m00 * m13 - m03 * m01) * (m12 * m23 - m22 * m13)
            + (m01 * m12 - m02 * m11) * (m02 * m33 - m23 * m03)
            - (m01 * m13 - m03 * m11) * (m02 * m23 - m22 * m03)
            + (m02 * m13 - m03 * m12) * (m02 * m13 - m12 * m03)
        ) / ((n * n) * (n * n))
    out = np.full(det.shape, -np.inf)
    np.log(det, out=out, where=det > 0)
    return out


def merge_tree(z: Array, counts: Array) -> NDArray[np.intp]:
    """The merges (m - 1, 2) of clusters ``a`` (kept) and ``b`` (absorbed) for rows ``z``
    (m, d) with multiplicities ``counts``, cheapest first (ties: the lowest indices)."""
    m, d = z.shape
    if m == 1:
        return np.zeros((0, 2), dtype=np.intp)
    n = counts.astype(np.float64).copy()
    mean = z.astype(np.float64).copy()
    total = n.sum()
    grand = (n @ mean) / total
    alpha = max(float(n @ ((mean - grand) ** 2).sum(axis=1)) / (total * d), 1e-300)
    tr = np.zeros(m)
    w = np.zeros((m, d, d))
    term = _terms(n, tr, np.full(m, -np.inf), d, alpha)

    # Every pair's cost at the start: clusters are single rows (or repeated ones), W = 0:
    # n_ij log((c_ij |m_i - m_j|^2 + alpha) / n_ij), c_ij = n_i n_j / n_ij, less both terms.
    # The (m, m) arrays are worked on in place (2000 rows: 32 MB each, and a third of the
    # tree's time went to making and filling temporaries of that size).
    norms = (mean * mean).sum(axis=1)
    sq = norms[:, None] + norms[None, :]
    sq -= 2 * mean @ mean.T
    np.maximum(sq, 0.0, out=sq)
    nij = n[:, None] + n[None, :]
    cost = n[:, None] * n[None, :]
    cost /= nij  # c_ij
    cost *= sq  # the merged trace
    cost += alpha
    cost /= nij
    np.log(cost, out=cost)
    cost *= nij
    cost -= term[:, None]
    cost -= term[None, :]
    if np.partition(n, m - 2)[m - 2 :].sum() > d:  # some pair is large enough for a determinant
        i, j = np.nonzero(np.triu(nij > d, 1))  # (one column, or repeated rows)
        nb = n[i] + n[j]
        cb = n[i] * n[j] / nb
        diff = mean[i] - mean[j]
        wij = cb[:, None, None] * diff[:, :, None] * diff[:, None, :]
        t = _terms(nb, cb * sq[i, j], _logdet(wij, nb), d, alpha)
        cost[i, j] = cost[j, i] = t - term[i] - term[j]
    del sq, nij
    cost[np.tri(m, dtype=bool)] = np.inf  # only pairs i < j are kept (in row i)
    # Müllner's generic algorithm: ``lower[i]`` is a lower bound of row i's cheapest pair
    # (exact when ``partner[i]`` is alive and ``cost[i, partner[i]] == lower[i]``); a stale
    # row is scanned again only when it comes to the top.
    partner = np.argmin(cost, axis=1)
    lower = cost[np.arange(m), partner]
    lower[-1] = np.inf
    alive = np.ones(m, dtype=bool)
    merges = np.empty((m - 1, 2), dtype=np.intp)
    # mclust's order of the clusters (``_tied_pair``): position[c] of cluster c, and the
    # cluster at each position (1-based, as mclust's; ``last`` is the highest in use).
    position = np.arange(1, m + 1)
    at = np.r_[-1, np.arange(m)]
    last = m
    for step in range(m - 1):
        while True:
            a = int(np.argmin(lower))
            b = int(partner[a])
            if alive[b] and cost[a, b] == lower[a]:
                break
            partner[a] = a + 1 + int(np.argmin(cost[a, a + 1 :]))
            lower[a] = cost[a, partner[a]]
        if np.count_nonzero(lower == lower[a]) > 1 or np.count_nonzero(cost[a] == lower[a]) > 1:
            a, b = _tied_pair(cost, lower, partner, position, float(lower[a]))
        # mclust keeps the merged cluster at the lower of the two positions and moves the
        # cluster at the last position into the other one
        low, high = sorted((int(position[a]), int(position[b])))
        position[a] = low
        at[low] = a
        moved = int(at[last])
        if high != last and moved != b:
            position[moved] = high
            at[high] = moved
        last -= 1
        merges[step] = a, b
        # merge b into a (a < b)
        na, nb = n[a], n[b]
        diff = mean[a] - mean[b]
        cab = na * nb / (na + nb)
        w[a] += w[b] + cab * np.outer(diff, diff)
        tr[a] += tr[b] + cab * float(diff @ diff)
        mean[a] = (na * mean[a] + nb * mean[b]) / (na + nb)
        n[a] = na + nb
        alive[b] = False
        cost[b, :] = np.inf
        cost[:, b] = np.inf
        lower[b] = np.inf
        ld = _logdet(w[a : a + 1], n[a : a + 1]) if n[a] > d else np.array([-np.inf])
        term[a] = _terms(n[a : a + 1], tr[a : a + 1], ld, d, alpha)[0]
        others = np.flatnonzero(alive)
        others = others[others != a]
        if others.size == 0:
            break
        # the new cluster's cost against every other one
        no = n[others]
        nij1 = n[a] + no
        do = mean[others] - mean[a]
        co = n[a] * no / nij1
        tro = tr[a] + tr[others] + co * (do * do).sum(axis=1)
        logdet = np.full(others.size, -np.inf)
        need = nij1 > d
        if need.all():
            logdet = _merged_logdet(w[a], w[others], co, do, nij1)
        elif need.any():
            logdet[need] = _merged_logdet(w[a], w[others[need]], co[need], do[need], nij1[need])
        new = _terms(nij1, tro, logdet, d, alpha) - term[a] - term[others]
        after = others > a
        cost[a, others[after]] = new[after]
        before = others[~after]
        cost[before, a] = new[~after]
        # row a: scanned now; rows before a: the pair with a may be their new cheapest
        if after.any():
            pick = int(np.argmin(new[after]))
            partner[a], lower[a] = others[after][pick], new[after][pick]
        else:
            lower[a] = np.inf
        nb_new = new[~after]
        cheaper = nb_new < lower[before]
        partner[before[cheaper]] = a
        lower[before[cheaper]] = nb_new[cheaper]
        # a row whose cheapest pair was with a (now dearer) or b keeps a lower bound: stale
    return merges


def _tied_pair(
    cost: Array, lower: Array, partner: NDArray[np.intp], position: NDArray[np.intp], best: float
) -> tuple[int, int]:
    """The pair (a < b) mclust merges among pairs of equal cost ``best`` (identical rows,
    rounded data): the last in its order of pairs (by the higher position, then the lower,
    mclust's packed lower triangle and its ``.le.`` test).  The rows whose lower bound is
    ``best`` are scanned exactly (``merge_tree``'s bounds stay valid)."""
    pairs = []
    for r in np.flatnonzero(lower == best):
        row = cost[r, r + 1 :]
        js = r + 1 + np.flatnonzero(row == best)
        if js.size == 0:  # a stale bound: the row's cheapest pair is dearer
            partner[r] = r + 1 + int(np.argmin(row))
            lower[r] = cost[r, partner[r]]
            continue
        pairs += [(int(r), int(j)) for j in js]

    def order(pair: tuple[int, int]) -> tuple[int, int]:
        i, j = sorted((int(position[pair[0]]), int(position[pair[1]])))
        return j, i

    return max(pairs, key=order)


def cut(merges: NDArray[np.intp], groups: NDArray[np.intp], k: int) -> NDArray[np.intp]:
    """Labels 0..k-1 of the rows (``groups``: each row's starting cluster) when the tree is
    cut at k clusters (mclust's ``hclass``); labels in order of first appearance."""
    m = int(groups.max()) + 1
    k = max(1, min(k, m))
    parent = np.arange(m)
    for a, b in merges[: m - k]:
        parent[b] = a
    # every absorbed cluster points at the one that absorbed it, which has a lower index
    for c in range(m):
        parent[c] = parent[parent[c]]
    roots = parent[groups]
    _, first, inverse = np.unique(roots, return_index=True, return_inverse=True)
    order = np.argsort(np.argsort(first))
    return order[inverse].astype(np.intp)


def sample_key(x: Array, weights: Array | None) -> bytes:
    """A digest of rows and their weights, to find them again among cached results (the hc
    trees here, the starting partitions of ``init.initial_labels``)."""
    h = hashlib.blake2b(digest_size=16)
    h.update(np.ascontiguousarray(x).tobytes())
    h.update(str(x.shape).encode())
    if weights is not None:
        h.update(np.ascontiguousarray(weights).tobytes())
    return h.digest()


def hc_tree(x: Array, weights: Array | None = None) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """(merges, each row's starting cluster) for the rows ``x`` (no gaps), cached for the
    last few inputs so that every k and model of a selection shares one tree."""
    key = sample_key(x, weights)
    hit = _CACHE.get(key)
    if hit is not None:
        _CACHE.move_to_end(key)
        return hit
    z = svd_transform(x, weights)
    if weights is None:
        # every row starts alone, identical ones too: mclust's ``hc`` calls ``hcVVV``
        # without its ``dupPartition`` (the tree's ``initialPartition`` is 1..n)
        groups = np.arange(z.shape[0])
        merges = merge_tree(z, np.ones(z.shape[0]))
    else:
        # identical rows start together, their weights summed (repeated rows)
        _, first, groups = np.unique(z, axis=0, return_index=True, return_inverse=True)
        groups = groups.reshape(-1)
        counts = np.bincount(groups, weights=weights, minlength=first.size)
        counts = np.maximum(counts, 1e-12)
        merges = merge_tree(z[first], np.asarray(counts, dtype=np.float64))
    _CACHE[key] = (merges, groups)
    while len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return merges, groups


def hc_labels(
    x: Array, k: int, rng: np.random.Generator, weights: Array | None = None
) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """(rows, labels): the hc partition into k groups of ``x`` (at most ``HC_MAX_ROWS`` of
    its rows, chosen with ``rng``, sorted)."""
    n = x.shape[0]
    if n > HC_MAX_ROWS:
        rows = np.sort(rng.choice(n, size=HC_MAX_ROWS, replace=False))
    else:
        rows = np.arange(n)
    sub = x[rows]
    w = None if weights is None else weights[rows]
    merges, groups = hc_tree(sub, w)
    return rows, cut(merges, groups, k)

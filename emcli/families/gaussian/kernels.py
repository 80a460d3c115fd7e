"""Fast E-step kernels for the Gaussian family: one block of rows -> summed statistics.

``params.py`` and ``stats.py`` state the mathematics plainly (the reference ``block_stats``);
this module computes the same E-step with few passes over memory.  Measured here, at small
d the cost of an iteration is elementwise work on (rows x k x d) temporaries and at larger d
it is matrix products, so both are cut down:

* A block of b rows is turned once into a *feature matrix* ``F`` of shape (m, b), stored
  transposed so that every feature is one contiguous row::

      full, tied:       F = [ (x_a - s_a)(x_b - s_b) for a <= b ;  x - s ;  1 ]
      diag, spherical:  F = [ (x - s)^2 ;  x - s ;  1 ]

  with ``s`` the mixture centre.  The weighted log-density of every component is then one
  matrix product ``W^T F`` of shape (k, b) (the quadratic form of ``x - m_j`` expanded, its
  coefficients in ``W``), and every M-step sum is one product ``R F^T`` of shape (k, m)
  (``R`` the (k, b) responsibilities).  Full covariance needs d(d+1)/2 products per row and
  component in each step (the symmetric half), where the stacked (x - m_j) P_j form needs d^2.
* log-sum-exp runs over the component axis of the (k, b) array: max, exp and sum over
  contiguous rows, in place, with one ``exp`` (responsibilities are ``exp / sum``).
* Buffers are reused per thread (no page faults from fresh large temporaries).

Numerics.  Expanding around the shared centre ``s`` costs digits when a component's mean
sits far from ``s`` relative to its spread: about ``log10(ratio)`` with ``ratio`` the
squared offset in units of the component's standard deviations (over the smallest
eigenvalue of its correlation matrix, for full/tied).  Components with
``ratio > EXACT_RATIO`` are computed around their own mean instead (*exact* components),
so the loss stays below about 1e-11 relative, whatever the offsets; data far from 0 costs
nothing since ``s`` absorbs it.

Exact components (full/tied) go through their whitened rows ``y_j = P_j^T (x - m_j)``
(``P_j`` the Cholesky factor of the precision): one stacked product for all of them gives
the densities (``||y_j||^2``), and the same ``y_j``, scaled by ``sqrt(r)``, give the moments
``sum r y y^T`` as one symmetric rank-b update each, mapped back by ``P_j^-T`` once per
E-step.  When the feature products would cost more than that (few components in them, or d
large: ``go_direct``) every component is exact: the *direct* plan, with no feature matrix.

The raw result of a block is a pair of float64 arrays; their sums over all blocks, taken in
block order, become ``SufficientStats`` once (``raw_to_stats``).
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.float64]
LOG_2PI = float(np.log(2.0 * np.pi))
# Above this offset ratio a component's sums are taken around its own mean (module doc).
EXACT_RATIO = 1e5
# full/tied: exact components further than this many standard deviations from the centre
# take the subtraction before the product (``whitened``): at most ~1e-13 relative lost.
FAR_OFFSET = 1e3
# full/tied: with fewer rows than this times d^2, exact moments over x - m_j (make_plan):
# the extra pass costs about 0.5 ns per (row, component, column), the mapping back by
# P_j^-T 4 d^3 flops per component at ~50 GFLOP/s.
X_MOMENTS_ROWS = 0.16
# full/tied: below this many columns the feature products always beat direct (go_direct).
DIRECT_MIN_FEATURES = 16
# Exact components (full/tied): responsibilities below SPARSE_RATIO times the largest of
# their component in the block are left out of its second moments (they change them by
# less than 1e-20 relative: r |y|^2 with r < 1e-30 next to rows with r near its largest),
# when fewer than SPARSE_FILL of all of them are left in.
SPARSE_RATIO = 1e-30
SPARSE_FILL = 0.5
# Feature-matrix elements per block (m x b): 8 MB in float64.  Measured on an idle machine,
# blocks this large halve the per-block Python overhead that dominated at small d; smaller
# cache-sized blocks (1 << 17) only helped under heavy load.
BLOCK_ELEMENTS = 1 << 20
DIRECT_BLOCK_ELEMENTS = 741_455  # 2^19.5 whitened values per block of a direct plan
MAX_BLOCK_ROWS = 16384


@dataclass
class Plan:
    """What every block of one E-step needs, computed once from the parameters.

    Inside a block the components are in the order ``order = feat + exact``: the first
    ``len(feat)`` rows of the (k, b) arrays come from the feature products, the others are
    computed around their own means.  ``raw_to_stats`` maps them back.
    """

    kind: str  # the covariance model's form
    model: Any  # the covariance model (models.CovarianceModel)
    k: int
    d: int
    m: int  # features per row
    shift: Array  # (d,) mixture centre s
    u: Array  # (k, d) means - s
    const: Array  # (k,) log w_j + log det P_j - d/2 log 2 pi
    prec: Array  # (k, d, d) full/tied precision Cholesky, (k, d) diag/spherical squared
    feat: NDArray[np.intp]  # components done by the feature products
    exact: NDArray[np.intp]  # components computed around their own mean
    w: Array  # (m, len(feat)) coefficients: log w_j N(x | j) = w[:, j] . F(x)
    dtype: type
    # The exact components.  full/tied: ``pt`` (e d, d + 1) stacks [P_j^T, -P_j^T u_j] (in
    # ``dtype``), so that y_j = P_j^T (x - m_j) is one product with the rows [x - s; 1];
    # the last ``far`` of them are too far from s for that (``whitened``) and take
    # P_j^T ((x - s) - u_j) instead; ``back`` (e, d, d) = P_j^-T turns sums over y back
    # into sums over x - m_j.
    # diag/spherical: ``pt`` (e, d, 1) their square-root precisions, ``back`` (e, d) its
    # inverse.  ``ue`` (e, d, 1): u_j in ``dtype``; ``ce`` (e, 1): their ``const`` (float64).
    pt: Array
    back: Array
    ue: Array
    ce: Array
    far: int = 0
    # full/tied exact components: second moments taken over x - m_j directly instead of
    # over y_j (then mapped back by P_j^-T at O(k d^3)); chosen for few rows next to d^2.
    x_moments: bool = False

    @property
    def quadratic(self) -> bool:
        return self.kind in ("full", "tied")

    @property
    def direct(self) -> bool:
        """No feature products at all: every component around its own mean."""
        return len(self.feat) == 0

    @property
    def order(self) -> NDArray[np.intp]:
        """Component of each row of a block's (k, b) arrays."""
        return np.concatenate([self.feat, self.exact])


def n_features_of(kind: str, d: int) -> int:
    return d * (d + 1) // 2 + d + 1 if kind in ("full", "tied") else 2 * d + 1


def block_rows_for(kind: str, k: int, d: int, direct: bool = False) -> int:
    """Rows per block: a fixed function of the shape and plan (never of the threads).

    Feature plans: about ``BLOCK_ELEMENTS`` features per block (rounded down to a power of
    two).  Direct plans hold k d whitened values per row instead: about
    ``DIRECT_BLOCK_ELEMENTS`` of them (to the nearest power of two; measured here over
    d = 16..50, k = 6..16, within 10% of the best block size, which was 512-4096 rows).
    """
    if direct:
        rows = 1 << max(0, round(np.log2(DIRECT_BLOCK_ELEMENTS / (k * d))))
    else:
        rows = BLOCK_ELEMENTS // n_features_of(kind, d)
        rows = 1 << max(0, rows.bit_length() - 1)
    return int(min(MAX_BLOCK_ROWS, max(256, rows)))


def _pair_index(d: int) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    # Order of the quadratic features: (0,0), (0,1), ..., (0,d-1), (1,1), ...
    return np.triu_indices(d)


def go_direct(kind: str, k: int, d: int, n_exact: int) -> bool:
    """full/tied: compute every component around its own mean (no feature matrix)?

    Estimated time per row (ns, fitted to E-steps timed on two threads here over d = 16..80,
    k = 3..32): building the features and the products of ``kf`` components with them,
    ``m (1 + 0.07 kf)`` for m = d(d+1)/2 + d + 1 features; the same components done exact,
    ``kf (0.035 d^2 + 0.3 d + 20)`` (a stacked product, a symmetric rank-b update).  Exact
    ones cost the same either way.  Below d = 16 the feature products always won here.

    tied: the exact components share one product P^T (x - s) and one symmetric update over
    all (component, row) pairs; measured here, direct won for every k up to 32 from d = 40
    on (2-3x), from d = 24 up to k = 10, and below that only for k <= 4.
    """
    if kind not in ("full", "tied") or d < DIRECT_MIN_FEATURES:
        return False
    kf = k - n_exact
    if kind == "tied":
        return d >= 32 or kf <= 4 or (d >= 24 and kf <= 10)
    return kf * (0.035 * d * d + 0.3 * d + 20) < n_features_of(kind, d) * (1 + 0.07 * kf)


def make_plan(params, dtype=np.float64, n_rows: int | None = None) -> Plan:
    """Precompute the coefficients of one E-step from ``GaussianParams``.

    ``n_rows``: how many rows the E-step will visit, when known; with fewer than
    ``X_MOMENTS_ROWS * d^2`` the exact components' moments are taken over x - m_j
    (``Plan.x_moments``): a pass over (rows x k x d) more, but no O(k d^3) back mapping.
    """
    kind, k, d = params.form, params.n_components, params.n_features
    means = np.asarray(params.means, dtype=np.float64)
    shift = params.weights @ means
    u = means - shift
    with np.errstate(divide="ignore"):
        log_w = np.log(params.weights)
    m = n_features_of(kind, d)
    quadratic = kind in ("full", "tied")
    if quadratic:
        prec = np.broadcast_to(params.precisions_cholesky, (k, d, d))  # tied: one, k views
        const = log_w + np.log(np.diagonal(prec, axis1=1, axis2=2)).sum(axis=1)
        const -= 0.5 * d * LOG_2PI
    else:
        p = params.precisions_cholesky
        prec = p**2 if kind == "diag" else np.repeat((p**2)[:, None], d, axis=1)
        const = log_w + 0.5 * np.log(prec).sum(axis=1) - 0.5 * d * LOG_2PI
    # go_direct holds for fewer feature components whenever it holds for all k of them, so
    # a shape that goes direct anyway skips the feature coefficients and the offset ratios
    # (O(k d^3): most of an E-step at d = 1000).
    if go_direct(kind, k, d, 0):
        w = np.zeros((m, 0))
        is_exact = np.ones(k, dtype=bool)
    else:
        w, ratio = _feature_coefficients(params, prec, u, const)
        is_exact = ~(ratio <= EXACT_RATIO)
        if go_direct(kind, k, d, int(is_exact.sum())):
            is_exact[:] = True
    feat, exact = np.flatnonzero(~is_exact), np.flatnonzero(is_exact)
    n_far = 0
    if quadratic and len(exact):
        # Exact components whose mean is over FAR_OFFSET of their standard deviations from
        # s go last: their y_j = P_j^T (x - m_j) is not taken from the stacked linear form.
        offset = np.linalg.norm(np.einsum("kba,kb->ka", prec[exact], u[exact]), axis=1)
        linear = ~(offset > FAR_OFFSET)
        exact = np.concatenate([exact[linear], exact[~linear]])
        n_far = int((~linear).sum())
    e = len(exact)
    ue = u[exact][:, :, None].astype(dtype)
    x_moments = quadratic and n_rows is not None and n_rows < X_MOMENTS_ROWS * d * d
    if quadratic:
        pt_e = prec[exact].transpose(0, 2, 1)  # P_j^T, in the order of ``exact``
        pt = np.empty((e, d, d + 1), dtype=dtype)
        pt[:, :, :d] = pt_e
        pt[:, :, d] = -np.einsum("kab,kb->ka", pt_e, u[exact])
        pt = pt.reshape(e * d, d + 1)
        if x_moments or not e:
            back = np.zeros((0, d, d))
        else:
            # P_j^-T is the Cholesky factor L_j of the covariance (P_j = L_j^-T, params.py)
            chol = np.linalg.cholesky(np.asarray(params.covariances, dtype=np.float64))
            back = np.broadcast_to(chol, (k, d, d))[exact]
    else:
        root = np.sqrt(prec[exact])
        pt, back = root[:, :, None].astype(dtype), 1.0 / root
    return Plan(
        kind,
        params.model,
        k,
        d,
        m,
        shift,
        u,
        const,
        prec,
        feat,
        exact,
        np.ascontiguousarray(w[:, feat], dtype=dtype),
        dtype,
        pt,
        back,
        ue,
        const[exact][:, None],
        n_far,
        x_moments,
    )


def _feature_coefficients(params, prec: Array, u: Array, const: Array) -> tuple[Array, Array]:
    """``W`` (m, k) of the feature products, and each component's offset ratio (module
    docstring): squared offset from s in standard deviations, for full/tied over the
    smallest eigenvalue of the correlation matrix."""
    kind, k, d = params.form, params.n_components, params.n_features
    w = np.empty((n_features_of(kind, d), k))
    if kind in ("full", "tied"):
        lam = prec @ prec.transpose(0, 2, 1)  # precision matrices
        rows, cols = _pair_index(d)
        q = rows.size
        coef = -lam[:, rows, cols]  # (k, q): off-diagonal pairs appear once
        coef[:, rows == cols] *= 0.5
        lam_u = np.einsum("kab,kb->ka", lam, u)
        w[:q] = coef.T
        w[q : q + d] = lam_u.T
        w[q + d] = const - 0.5 * np.einsum("ka,ka->k", u, lam_u)
        cov = params.full_covariances()
        sd = np.sqrt(np.diagonal(cov, axis1=1, axis2=2))
        corr = cov / (sd[:, :, None] * sd[:, None, :])
        ratio = (u * u / (sd * sd)).sum(axis=1) / np.linalg.eigvalsh(corr)[:, 0]
    else:
        w[:d] = -0.5 * prec.T
        w[d : 2 * d] = (u * prec).T
        w[2 * d] = const - 0.5 * np.einsum("kd,kd->k", u * u, prec)
        ratio = (u * u * prec).max(axis=1)
    return w, ratio


class Workspace:
    """Per-thread buffers, grown on demand and reused across blocks and iterations."""

    def __init__(self) -> None:
        self._buffers: dict[str, Array] = {}

    def get(self, name: str, shape: tuple[int, ...], dtype) -> Array:
        size = math.prod(shape)
        buf = self._buffers.get(name)
        if buf is None or buf.size < size or buf.dtype != dtype:
            buf = np.empty(size, dtype=dtype)
            self._buffers[name] = buf
        return buf[:size].reshape(shape)


_LOCAL = threading.local()


def workspace() -> Workspace:
    """This thread's workspace."""
    ws = getattr(_LOCAL, "ws", None)
    if ws is None:
        ws = _LOCAL.ws = Workspace()
    return ws


def features(plan: Plan, xb: Array, ws: Workspace) -> Array:
    """The feature matrix F of a block, shape (m, b) (module docstring); for a direct plan
    only its last rows ``[x - s; 1]``, shape (d + 1, b) (see ``centred``)."""
    b, d, m = xb.shape[0], plan.d, plan.m
    if plan.direct:
        f = ws.get("f", (d + 1, b), plan.dtype)
        np.subtract(xb.T, plan.shift.astype(plan.dtype)[:, None], out=f[:d])
        f[d] = 1.0
        return f
    f = ws.get("f", (m, b), plan.dtype)
    xc = f[m - 1 - d : m - 1]
    np.subtract(xb.T, plan.shift.astype(plan.dtype)[:, None], out=xc)
    if plan.quadratic:
        off = 0
        for i in range(d):
            np.multiply(xc[i], xc[i:], out=f[off : off + d - i])
            off += d - i
    else:
        np.multiply(xc, xc, out=f[:d])
    f[m - 1] = 1.0
    return f


def centred(plan: Plan, f: Array) -> Array:
    """The ``x - s`` rows of a block's feature matrix and its row of ones, shape (d + 1, b)."""
    return f if plan.direct else f[plan.m - 1 - plan.d :]


def log_prob_block(plan: Plan, f: Array, ws: Workspace) -> Array:
    """Weighted log-densities log(w_j N(x_i | j)), shape (k, b), rows in ``plan.order``."""
    b = f.shape[1]
    kf, e = len(plan.feat), len(plan.exact)
    out = ws.get("lp", (plan.k, b), plan.dtype)
    if kf:
        np.dot(plan.w.T, f, out=out[:kf])
    if e:
        y = whitened(plan, f, ws)
        maha = np.einsum("edb,edb->eb", y, y, out=out[kf:])
        maha *= -0.5
        maha += plan.ce
    return out


def whitened(plan: Plan, f: Array, ws: Workspace) -> Array:
    """y_j = P_j^T (x - m_j) for the exact components, shape (e, d, b): the block's rows
    whitened by each component (``||y_j||^2`` is the Mahalanobis distance).

    full/tied: one stacked product [P_j^T, -P_j^T u_j] [x - s; 1] for all of them, a linear
    form that loses about ``log10 ||P_j^T u_j||`` digits (the mean's offset from s in
    standard deviations); components offset by more than ``FAR_OFFSET`` take
    P_j^T ((x - s) - u_j), subtraction first.  Kept in the workspace: the M-step reuses it
    (``raw_from_resp``).
    """
    e, d, b = len(plan.exact), plan.d, f.shape[1]
    y = ws.get("y", (e, d, b), plan.dtype)
    xc = centred(plan, f)
    if plan.quadratic:
        near = e - plan.far
        if near and plan.kind == "tied":
            # One precision for all: P^T (x - s) once, then minus each P^T u_j.
            pt = plan.pt.reshape(e, d, d + 1)
            z = ws.get("tied", (d, b), plan.dtype)
            np.dot(pt[0, :, :d], xc[:d], out=z)
            np.add(z, pt[:near, :, d:], out=y[:near])
        elif near:
            np.dot(plan.pt[: near * d], xc, out=y[:near].reshape(near * d, b))
        if plan.far:
            pt = plan.pt[near * d :].reshape(plan.far, d, d + 1)[:, :, :d]
            np.matmul(pt, xc[:d] - plan.ue[near:], out=y[near:])
    else:
        np.subtract(xc[:d], plan.ue, out=y)
        y *= plan.pt
    return y


def log_prob_t(plan: Plan, f: Array, ws: Workspace) -> Array:
    """Weighted log-densities log(w_j N(x_i | j)), shape (k, b), in component order."""
    lp = log_prob_block(plan, f, ws)
    out = np.empty_like(lp)
    out[plan.order] = lp
    return out


def log_sum_exp_t(lp: Array, ws: Workspace) -> Array:
    """In place: ``lp`` (k, b) becomes the responsibilities; returns each row's log-likelihood."""
    b = lp.shape[1]
    top = ws.get("top", (b,), lp.dtype)
    # ufunc reductions, not the ndarray methods: their Python wrappers cost as much as the
    # work on small blocks and hold the GIL the other block thread waits for.
    np.maximum.reduce(lp, axis=0, out=top)
    if not np.isfinite(np.add.reduce(top)):  # every density of a row underflowed: keep it finite
        np.copyto(top, 0.0, where=~np.isfinite(top))
    lp -= top
    np.exp(lp, out=lp)
    total = ws.get("sum", (b,), lp.dtype)
    np.add.reduce(lp, axis=0, out=total)
    inv = ws.get("inv", (b,), lp.dtype)
    np.divide(1.0, total, out=inv)
    lp *= inv  # one division per row, then products
    np.log(total, out=total)
    total += top
    return total


def raw_from_resp(plan: Plan, f: Array, resp: Array, ws: Workspace) -> tuple[Array, Array]:
    """Raw M-step sums of a block: ``R F^T`` (len(feat), m), and the exact components' own
    sums around their means (e, d + 1, d + 1) for full/tied, (e, 2 d + 1) otherwise."""
    kf, e, d = len(plan.feat), len(plan.exact), plan.d
    # F R^T, shape (m, kf), transposed: this orientation of the product ran 1.3-1.4x faster
    # than R F^T here (OpenBLAS, long inner dimension).
    g = np.dot(f, resp[:kf].T).T.astype(np.float64, order="C") if kf else np.zeros((0, plan.m))
    if plan.quadratic:
        ex = np.zeros((e, d + 1, d + 1))
    else:
        ex = np.zeros((e, 2 * d + 1))
    if e:
        # Sums over y_j = P_j^T (x - m_j), still in the workspace from ``log_prob_block``;
        # ``raw_to_stats`` maps them back with P_j^-T once per E-step.
        r = resp[kf:]  # (e, b)
        y = ws.get("y", (e, d, f.shape[1]), plan.dtype)
        if plan.x_moments:  # the same sums over x - m_j instead (Plan.x_moments)
            np.subtract(centred(plan, f)[:d], plan.ue, out=y)
        if plan.quadratic:
            ex[:, d, d] = np.add.reduce(r, axis=1)
            keep = r > SPARSE_RATIO * np.maximum.reduce(r, axis=1, keepdims=True)
            n_keep = int(np.count_nonzero(keep))
            if n_keep >= SPARSE_FILL * keep.size:
                # sum r y y^T as Z Z^T with Z = sqrt(r) y: numpy's matmul takes a product
                # of a matrix with its own transpose as a symmetric rank-b update.
                sr = np.sqrt(r)
                y *= sr[:, None, :]
                ex[:, :d, d] = np.matmul(y, sr[:, :, None])[:, :, 0]
                if plan.kind == "tied":
                    # Only the sum over the components is needed (one P_j^-T for all):
                    # one update over every (component, row) pair.
                    z = ws.get("z", (d, e, y.shape[2]), plan.dtype)
                    np.copyto(z, y.transpose(1, 0, 2))
                    z = z.reshape(d, -1)
                    ex[0, :d, :d] = z @ z.T
                else:
                    ex[:, :d, :d] = np.matmul(y, y.transpose(0, 2, 1))
            else:
                # Most responsibilities are below SPARSE_RATIO of their component's largest
                # in the block (well separated clusters): only the others take part.
                comp, row = np.nonzero(keep)  # grouped by component
                sr = np.sqrt(r[comp, row])
                z = y[comp, :, row]  # (n_keep, d)
                z *= sr[:, None]
                ends = np.cumsum(np.count_nonzero(keep, axis=1))
                tied = plan.kind == "tied"
                if tied:
                    ex[0, :d, :d] = z.T @ z  # summed over the components (as above)
                start = 0
                for j, end in enumerate(ends.tolist()):
                    if end > start:
                        zj = z[start:end]
                        if not tied:
                            ex[j, :d, :d] = zj.T @ zj
                        ex[j, :d, d] = sr[start:end] @ zj
                    start = end
        else:
            # sum r y and sum r y^2 per column: batched matrix-vector products (BLAS), y
            # squared in place in between (no (e, d, b) temporaries).
            rc = np.ascontiguousarray(r)[:, :, None]
            ex[:, d : 2 * d] = np.matmul(y, rc)[:, :, 0]
            np.multiply(y, y, out=y)
            ex[:, :d] = np.matmul(y, rc)[:, :, 0]
            ex[:, 2 * d] = np.add.reduce(r, axis=1)
    return g, ex


def block_raw(
    plan: Plan, xb: Array, weights: Array | None = None, ws: Workspace | None = None
) -> tuple[Array, Array, float]:
    """Raw statistics of one block and its log-likelihood (float64); with frequency
    ``weights`` (b,) every row counts ``weights[i]`` times."""
    ws = ws or workspace()
    f = features(plan, xb, ws)
    lp = log_prob_block(plan, f, ws)
    norm = log_sum_exp_t(lp, ws)  # lp now holds the responsibilities
    if weights is None:
        ll = float(np.add.reduce(norm, dtype=np.float64))
    else:
        lp *= weights.astype(plan.dtype, copy=False)[None, :]
        ll = float(np.dot(norm.astype(np.float64), weights))
    g, ex = raw_from_resp(plan, f, lp, ws)
    return g, ex, ll


def raw_to_stats(
    plan: Plan, g: Array, ex: Array, log_likelihood: float, n_samples: float, centers: Array
):
    """Summed raw statistics -> ``SufficientStats`` around ``centers`` (the E-step's means)."""
    from .stats import SufficientStats

    d, k = plan.d, plan.k
    feat, exact, u = plan.feat, plan.exact, plan.u[plan.feat]
    n_k = np.empty(k)
    sum_x = np.empty((k, d))
    if plan.quadratic:
        q = d * (d + 1) // 2
        rows, cols = _pair_index(d)
        sum_xx = np.empty((k, d, d))
        s = np.empty((len(feat), d, d))
        s[:, rows, cols] = g[:, :q]
        s[:, cols, rows] = g[:, :q]
        a = g[:, q : q + d]  # sum r (x - s)
        nf = g[:, q + d]
        # sum r (x - m)(x - m)^T = S - a u^T - u a^T + n u u^T
        au = a[:, :, None] * u[:, None, :]
        uu = u[:, :, None] * u[:, None, :]
        sum_xx[feat] = s - au - au.transpose(0, 2, 1) + nf[:, None, None] * uu
        # (tied: the exact components' sum sits in the first one, zeros in the others;
        # only the sum over all components is used)
        if plan.x_moments:
            sum_xx[exact], sum_x[exact] = ex[:, :d, :d], ex[:, :d, d]
        else:
            back = plan.back  # x - m_j = P_j^-T y_j
            sum_xx[exact] = back @ ex[:, :d, :d] @ back.transpose(0, 2, 1)
            sum_x[exact] = np.einsum("eab,eb->ea", back, ex[:, :d, d])
        n_k[exact] = ex[:, d, d]
        if plan.kind == "tied":
            sum_xx = sum_xx.sum(axis=0)
    else:
        a = g[:, d : 2 * d]
        nf = g[:, 2 * d]
        sum_xx = np.empty((k, d))
        sum_xx[feat] = g[:, :d] - 2.0 * u * a + nf[:, None] * u * u
        back = plan.back
        sum_xx[exact], sum_x[exact] = ex[:, :d] * back**2, ex[:, d : 2 * d] * back
        n_k[exact] = ex[:, 2 * d]
    sum_x[feat] = a - nf[:, None] * u
    n_k[feat] = nf
    return SufficientStats(
        plan.model, centers, n_k, sum_x, sum_xx, float(log_likelihood), n_samples
    )

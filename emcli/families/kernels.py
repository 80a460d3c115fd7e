"""Fast E-step kernels for the Gaussian family: one block of rows -> summed statistics.

``gaussian.py`` states the mathematics plainly (and keeps the reference ``block_stats``);
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
``ratio > EXACT_RATIO`` are computed around their own mean instead, exactly as the plain
formulas (``(x - m_j) P_j`` for the density, ``sum r (x - m_j)(x - m_j)^T`` for the
moments), so the loss stays below about 1e-11 relative, whatever the offsets; data far
from 0 costs nothing since ``s`` absorbs it.

The raw result of a block is a pair of float64 arrays; their sums over all blocks, taken in
block order, become ``SufficientStats`` once (``raw_to_stats``).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.float64]
LOG_2PI = float(np.log(2.0 * np.pi))
# Above this offset ratio a component's sums are taken around its own mean (module doc).
EXACT_RATIO = 1e5
# full/tied: when more than this fraction of the components is exact, all of them are.
DIRECT_FRACTION = 0.5
# full/tied: with more than this many features per (component x column), go direct.
DIRECT_FEATURES = 4
# Feature-matrix elements per block (m x b): 8 MB in float64.  Measured on an idle machine,
# blocks this large halve the per-block Python overhead that dominated at small d; smaller
# cache-sized blocks (1 << 17) only helped under heavy load.
BLOCK_ELEMENTS = 1 << 20
MAX_BLOCK_ROWS = 16384


@dataclass
class Plan:
    """What every block of one E-step needs, computed once from the parameters."""

    kind: str
    k: int
    d: int
    m: int  # features per row
    shift: Array  # (d,) mixture centre s
    u: Array  # (k, d) means - s
    w: Array  # (m, k) coefficients: log w_j N(x | j) = w[:, j] . F(x)
    const: Array  # (k,) log w_j + log det P_j - d/2 log 2 pi
    prec: Array  # (k, d, d) full/tied precision Cholesky, (k, d) diag/spherical squared
    exact: NDArray[np.intp]  # components computed around their own mean
    dtype: type
    direct: bool = False  # every component around its own mean, no features (block_raw_direct)

    @property
    def quadratic(self) -> bool:
        return self.kind in ("full", "tied")



def n_features_of(kind: str, d: int) -> int:
    return d * (d + 1) // 2 + d + 1 if kind in ("full", "tied") else 2 * d + 1


def block_rows_for(kind: str, k: int, d: int) -> int:
    """Rows per block: a fixed function of the shape (the partition never depends on threads)."""
    rows = BLOCK_ELEMENTS // n_features_of(kind, d)
    return int(min(MAX_BLOCK_ROWS, max(256, 1 << max(0, rows.bit_length() - 1))))


def _pair_index(d: int) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    # Order of the quadratic features: (0,0), (0,1), ..., (0,d-1), (1,1), ...
    return np.triu_indices(d)


def make_plan(params, dtype=np.float64) -> Plan:
    """Precompute the coefficients of one E-step from ``GaussianParams``."""
    kind, k, d = params.covariance_type, params.n_components, params.n_features
    means = np.asarray(params.means, dtype=np.float64)
    shift = params.weights @ means
    u = means - shift
    with np.errstate(divide="ignore"):
        log_w = np.log(params.weights)
    m = n_features_of(kind, d)
    w = np.empty((m, k))
    if kind in ("full", "tied"):
        prec = params.precisions_cholesky
        prec = np.array(np.broadcast_to(prec, (k, d, d)) if kind == "tied" else prec)
        lam = prec @ prec.transpose(0, 2, 1)  # precision matrices
        const = log_w + np.log(np.diagonal(prec, axis1=1, axis2=2)).sum(axis=1)
        const -= 0.5 * d * LOG_2PI
        rows, cols = _pair_index(d)
        q = rows.size
        coef = -lam[:, rows, cols]  # (k, q): off-diagonal pairs appear once
        coef[:, rows == cols] *= 0.5
        lam_u = np.einsum("kab,kb->ka", lam, u)
        w[:q] = coef.T
        w[q : q + d] = lam_u.T
        w[q + d] = const - 0.5 * np.einsum("ka,ka->k", u, lam_u)
        # Offset in standard deviations, over the smallest eigenvalue of the correlation.
        cov = params.full_covariances()
        sd = np.sqrt(np.diagonal(cov, axis1=1, axis2=2))
        corr = cov / (sd[:, :, None] * sd[:, None, :])
        ratio = (u * u / (sd * sd)).sum(axis=1) / np.linalg.eigvalsh(corr)[:, 0]
    else:
        p = params.precisions_cholesky
        prec = p**2 if kind == "diag" else np.repeat((p**2)[:, None], d, axis=1)
        const = log_w + 0.5 * np.log(prec).sum(axis=1) - 0.5 * d * LOG_2PI
        w[:d] = -0.5 * prec.T
        w[d : 2 * d] = (u * prec).T
        w[2 * d] = const - 0.5 * np.einsum("kd,kd->k", u * u, prec)
        ratio = (u * u * prec).max(axis=1)
    exact = np.flatnonzero(~(ratio <= EXACT_RATIO))
    # Every component around its own mean (``block_raw_direct``) when most of them are far
    # apart or ill-conditioned (the feature products would be wasted), or when d is large
    # next to k: d(d+1)/2 features per row then cost more time and memory than k
    # per-component products (measured: 3x faster at d = 200, k = 4 and d = 500, k = 3).
    direct = kind in ("full", "tied") and (
        len(exact) > DIRECT_FRACTION * k or m > DIRECT_FEATURES * k * d
    )
    if direct:
        exact = np.arange(k)
    w[:, exact] = 0.0  # their densities are computed apart
    return Plan(kind, k, d, m, shift, u, w.astype(dtype), const, prec, exact, dtype, direct)


class Workspace:
    """Per-thread buffers, grown on demand and reused across blocks and iterations."""

    def __init__(self) -> None:
        self._buffers: dict[str, Array] = {}

    def get(self, name: str, shape: tuple[int, ...], dtype) -> Array:
        size = int(np.prod(shape))
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
    """The feature matrix F of a block, shape (m, b) (module docstring)."""
    b, d, m = xb.shape[0], plan.d, plan.m
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


def log_prob_t(plan: Plan, f: Array, ws: Workspace) -> Array:
    """Weighted log-densities log(w_j N(x_i | j)), transposed: shape (k, b)."""
    b = f.shape[1]
    out = ws.get("lp", (plan.k, b), plan.dtype)
    np.dot(plan.w.T, f, out=out)
    if len(plan.exact):
        # All exact components at once (batched products): (e, d, b) differences.
        ex = plan.exact
        diff = _exact_diff(plan, f)
        if plan.quadratic:
            y = np.matmul(plan.prec[ex].transpose(0, 2, 1).astype(plan.dtype), diff)
            maha = np.einsum("edb,edb->eb", y, y)
        else:
            diff *= diff
            maha = np.einsum("ed,edb->eb", plan.prec[ex].astype(plan.dtype), diff)
        out[ex] = plan.const[ex][:, None] - 0.5 * maha
    return out


def _exact_diff(plan: Plan, f: Array) -> Array:
    """x - m_j for the exact components, shape (e, d, b), from the block's x - s rows."""
    d = plan.d
    xc = f[plan.m - 1 - d : plan.m - 1]
    return xc[None, :, :] - plan.u[plan.exact].astype(plan.dtype)[:, :, None]


def log_sum_exp_t(lp: Array, ws: Workspace) -> Array:
    """In place: ``lp`` (k, b) becomes the responsibilities; returns each row's log-likelihood."""
    b = lp.shape[1]
    top = ws.get("top", (b,), lp.dtype)
    np.max(lp, axis=0, out=top)
    if not np.isfinite(top.sum()):  # every density of a row underflowed: keep it finite
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


def raw_from_resp(plan: Plan, f: Array, resp_t: Array) -> tuple[Array, Array]:
    """Raw M-step sums: ``R F^T`` (k, m), and the exact components' own sums."""
    g = np.dot(resp_t, f.T).astype(np.float64)
    d = plan.d
    if plan.quadratic:
        ex = np.zeros((len(plan.exact), d + 1, d + 1))
    else:
        ex = np.zeros((len(plan.exact), 2 * d + 1))
    if len(plan.exact):
        diff = _exact_diff(plan, f)
        resp = resp_t[plan.exact]  # (e, b)
        rd = diff * resp[:, None, :]
        if plan.quadratic:
            ex[:, :d, :d] = np.matmul(rd, diff.transpose(0, 2, 1))
            ex[:, :d, d] = rd.sum(axis=2)
            ex[:, d, d] = resp.sum(axis=1)
        else:
            ex[:, :d] = (rd * diff).sum(axis=2)
            ex[:, d : 2 * d] = rd.sum(axis=2)
            ex[:, 2 * d] = resp.sum(axis=1)
    return g, ex


def block_raw(plan: Plan, xb: Array, ws: Workspace | None = None) -> tuple[Array, Array, float]:
    """Raw statistics of one block and its log-likelihood (float64)."""
    ws = ws or workspace()
    if plan.direct:
        return block_raw_direct(plan, xb, ws)
    f = features(plan, xb, ws)
    lp = log_prob_t(plan, f, ws)
    norm = log_sum_exp_t(lp, ws)
    g, ex = raw_from_resp(plan, f, lp)
    return g, ex, float(norm.sum(dtype=np.float64))


def block_raw_direct(plan: Plan, xb: Array, ws: Workspace) -> tuple[Array, Array, float]:
    """``block_raw`` with every component around its own mean (full/tied, ``plan.direct``).

    Densities come from one stacked product P^T (x - s) for all components minus P_j^T u_j:
    a linear form, so an offset u_j costs digits only in proportion to its length, not its
    square.  The moments sum r (x - m_j)(x - m_j)^T are one batched product.
    """
    k, d = plan.k, plan.d
    xc = np.subtract(xb, plan.shift.astype(plan.dtype)).T  # (d, b)
    prec_t = plan.prec.transpose(0, 2, 1).astype(plan.dtype)  # (k, d, d): P_j^T
    y = (prec_t.reshape(k * d, d) @ xc).reshape(k, d, -1)
    y -= np.einsum("kab,kb->ka", prec_t, plan.u.astype(plan.dtype))[:, :, None]
    lp = ws.get("lp", (k, xc.shape[1]), plan.dtype)
    np.einsum("kdb,kdb->kb", y, y, out=lp)
    lp *= -0.5
    lp += plan.const[:, None]
    norm = log_sum_exp_t(lp, ws)  # lp now holds the responsibilities
    diff = xc[None, :, :] - plan.u.astype(plan.dtype)[:, :, None]  # (k, d, b)
    rd = diff * lp[:, None, :]
    ex = np.empty((k, d + 1, d + 1))
    ex[:, :d, :d] = np.matmul(rd, diff.transpose(0, 2, 1))
    ex[:, :d, d] = rd.sum(axis=2)
    ex[:, d, d] = lp.sum(axis=1)
    ex[:, d, :d] = 0.0
    return np.zeros((k, plan.m)), ex, float(norm.sum(dtype=np.float64))


def raw_to_stats(plan: Plan, g: Array, ex: Array, log_likelihood: float, n_samples: int,
                 centers: Array):
    """Summed raw statistics -> ``SufficientStats`` around ``centers`` (the E-step's means)."""
    from .gaussian import SufficientStats

    d, k, u = plan.d, plan.k, plan.u
    if plan.quadratic:
        q = d * (d + 1) // 2
        rows, cols = _pair_index(d)
        s = np.empty((k, d, d))
        s[:, rows, cols] = g[:, :q]
        s[:, cols, rows] = g[:, :q]
        a = g[:, q : q + d]  # sum r (x - s)
        n_k = g[:, q + d].copy()
        sum_x = a - n_k[:, None] * u
        # sum r (x - m)(x - m)^T = S - a u^T - u a^T + n u u^T
        au = a[:, :, None] * u[:, None, :]
        sum_xx = s - au - au.transpose(0, 2, 1) + n_k[:, None, None] * u[:, :, None] * u[:, None]
        for i, j in enumerate(plan.exact):
            sum_xx[j], sum_x[j], n_k[j] = ex[i, :d, :d], ex[i, :d, d], ex[i, d, d]
        if plan.kind == "tied":
            sum_xx = sum_xx.sum(axis=0)
    else:
        a = g[:, d : 2 * d]
        n_k = g[:, 2 * d].copy()
        sum_x = a - n_k[:, None] * u
        sum_xx = g[:, :d] - 2.0 * u * a + n_k[:, None] * u * u
        for i, j in enumerate(plan.exact):
            sum_xx[j], sum_x[j], n_k[j] = ex[i, :d], ex[i, d : 2 * d], ex[i, 2 * d]
    return SufficientStats(
        plan.kind, centers, n_k, sum_x, sum_xx, float(log_likelihood), int(n_samples)
    )


def e_step_block(x: Array, params, dtype=np.float64):
    """``SufficientStats`` of one block of rows (for engines that visit blocks themselves)."""
    plan = make_plan(params, dtype)
    g, ex, ll = block_raw(plan, np.asarray(x))
    return raw_to_stats(plan, g, ex, ll, x.shape[0], params.means)


def log_resp_and_norm_fast(x: Array, params) -> tuple[Array, Array]:
    """Log-responsibilities (b, k) and per-row log-likelihood (b,), through the kernels."""
    plan = make_plan(params)
    ws = Workspace()
    lp = log_prob_t(plan, features(plan, np.asarray(x, dtype=np.float64), ws), ws)
    top = lp.max(axis=0)
    top = np.where(np.isfinite(top), top, 0.0)
    lp -= top
    norm = np.log(np.exp(lp).sum(axis=0))
    lp -= norm
    return np.ascontiguousarray(lp.T), norm + top

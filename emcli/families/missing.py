"""Missing values: the Gaussian E-step for rows with gaps (Ghahramani & Jordan 1994).

A row with missing cells contributes the *marginal* density of its observed coordinates
``o``: component j gives N(x_o | mu_jo, Sigma_j,oo).  The E-step then fills in, per
component, the conditional expectation and covariance of the missing coordinates ``m``::

    E[x_m | x_o, j]   = mu_jm + Sigma_j,mo Sigma_j,oo^-1 (x_o - mu_jo)
    Cov[x_m | x_o, j] = Sigma_j,mm - Sigma_j,mo Sigma_j,oo^-1 Sigma_j,om

and accumulates the *same* ``SufficientStats`` as complete rows (the expected first and
second moments), so the M-step of ``gaussian.py`` is unchanged and EM still never decreases
the (observed-data) likelihood.

How the linear algebra is organised:

* Complete rows never come here: they take the fast path of ``gaussian.py`` unchanged.
* full / tied: the rows of a block are grouped by missingness pattern (``np.unique`` on the
  packed mask).  For each pattern p and component j, one Cholesky factorisation of
  ``S = Sigma_j`` with the missing rows and columns replaced by the identity (its inverse is
  Sigma_oo^-1 embedded, plus the identity on ``m``; its log-det is that of Sigma_oo) gives
  the marginal density, the regression ``G = Sigma Sigma_oo^-1`` (embedded) and the
  conditional covariance.  All (pattern, component) factorisations of a block are one
  batched call; the rows of a pattern then need one matrix product.  tied shares the
  factorisation over components.
* diag / spherical: coordinates are independent within a component, so the marginal
  density is a product over the observed coordinates, E[x_m | x_o, j] = mu_jm and the
  conditional variance is sigma^2_jm: no per-pattern algebra is needed, masked matrix
  products do it for all rows at once.

A row with nothing observed has marginal density 1 under every component: its
responsibilities are the mixture weights and it adds 0 to the log-likelihood.  It carries no
information, so it is left out of the statistics (EM on the remaining rows is EM on the same
observed-data likelihood).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ..errors import FitError
from .gaussian import (
    LOG_2PI,
    GaussianParams,
    SufficientStats,
    block_stats,
    log_weights,
    mixture_center,
    params_from_labels,
    singular_message,
)
from .gaussian import log_resp_and_norm as complete_log_resp_and_norm

Array = NDArray[np.float64]
MISSING_POLICIES: tuple[str, ...] = ("em", "drop", "error")


# ---------------------------------------------------------------------------- column figures
def observed_var(x: Array) -> Array:
    """Variance of each column over its observed cells, shape (n_features,).

    Equals ``x.var(axis=0)`` exactly when nothing is missing; a column with no observed
    cell gets 0.
    """
    gaps = np.isnan(x)
    if not gaps.any():
        return x.var(axis=0)
    count = np.maximum((~gaps).sum(axis=0), 1)
    mean = np.where(gaps, 0.0, x).sum(axis=0) / count
    dev = np.where(gaps, 0.0, x - mean)
    return (dev * dev).sum(axis=0) / count


def observed_std(x: Array) -> Array:
    """Standard deviation of each column over its observed cells (``x.std`` when complete)."""
    if not np.isnan(x).any():
        return x.std(axis=0)
    return np.sqrt(observed_var(x))


def observed_mean(x: Array) -> Array:
    """Mean of each column over its observed cells; 0 for a column with none."""
    gaps = np.isnan(x)
    count = np.maximum((~gaps).sum(axis=0), 1)
    return np.where(gaps, 0.0, x).sum(axis=0) / count


# ---------------------------------------------------------------------------- the gap terms
@dataclass
class GapTerms:
    """What the E-step knows about a block of rows that all have gaps (b rows, k components).

    Attributes:
        log_resp: log-responsibilities, shape (b, k).
        norm: log marginal density of each row's observed coordinates, shape (b,).
        xhat: E[x | x_o, j]: observed cells as given, missing ones filled, shape (b, k, d).
        cond_sum: sum over the rows of r_ij Cov[x | x_o, j] (zero on observed coordinates):
            (k, d, d) for full/tied, (k, d) (the diagonal) for diag/spherical.
    """

    log_resp: Array
    norm: Array
    xhat: Array
    cond_sum: Array


def _patterns(gaps: NDArray[np.bool_]) -> tuple[NDArray[np.bool_], NDArray[np.intp]]:
    """Distinct missingness patterns (P, d) and each row's pattern, shape (b,)."""
    packed = np.packbits(gaps, axis=1)
    _, first, inverse = np.unique(packed, axis=0, return_index=True, return_inverse=True)
    return gaps[first], inverse.reshape(-1)


def _full_like(x: Array, gaps: NDArray[np.bool_], params: GaussianParams, resp_of):
    """Densities and moments for full/tied covariances, one factorisation per pattern."""
    b, d = x.shape
    k = params.n_components
    cov = params.covariances[None] if params.covariance_type == "tied" else params.covariances
    kk = cov.shape[0]  # 1 for tied: the factorisation is shared by the components
    pat_gaps, inverse = _patterns(gaps)
    n_pat = pat_gaps.shape[0]
    obs = ~pat_gaps
    eye = np.eye(d)
    keep = (obs[:, :, None] & obs[:, None, :])[:, None]  # (P, 1, d, d)
    tilde = np.where(keep, cov[None], 0.0) + (pat_gaps[:, :, None] * eye)[:, None]
    try:
        lower = np.linalg.cholesky(tilde)  # (P, kk, d, d)
    except np.linalg.LinAlgError:
        raise FitError(singular_message()) from None
    linv = np.linalg.solve(lower, np.broadcast_to(eye, tilde.shape))
    log_det = -np.log(np.diagonal(lower, axis1=-2, axis2=-1)).sum(axis=-1)  # (P, kk)
    # Sigma_oo^-1 embedded in d x d (zero on missing rows/columns).
    qhat = linv.swapaxes(-1, -2) @ linv - (pat_gaps[:, :, None] * eye)[:, None]
    gain = cov[None] @ qhat  # (P, kk, d, d): rows m hold Sigma_mo Sigma_oo^-1
    miss2 = (pat_gaps[:, :, None] & pat_gaps[:, None, :])[:, None]
    cond = np.where(miss2, cov[None] - gain @ cov[None], 0.0)
    cond = 0.5 * (cond + cond.swapaxes(-1, -2))
    # Per row: y = L^-1 r (Mahalanobis) and G r (conditional shift), r = x_o - mu_o, in one
    # product with [L^-T | G^T].  Shifted by the mixture centre for conditioning.
    mats = np.concatenate([linv.swapaxes(-1, -2), gain.swapaxes(-1, -2)], axis=-1)
    shift = mixture_center(params)
    mus = params.means - shift
    const = ((mus[None] * obs[:, None, :])[:, :, None, :] @ mats)[:, :, 0, :]  # (P, k, 2d)
    order = np.argsort(inverse, kind="stable")
    counts = np.bincount(inverse, minlength=n_pat)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    xs = np.where(gaps, 0.0, x - shift)[order]
    out = np.empty((b, k, 2 * d))
    for p in range(n_pat):
        lo, hi = starts[p], starts[p] + counts[p]
        y = xs[lo:hi] @ mats[p].transpose(1, 0, 2).reshape(d, kk * 2 * d)
        np.subtract(y.reshape(-1, kk, 2 * d), const[p][None], out=out[lo:hi])
    maha = np.einsum("bkd,bkd->bk", out[:, :, :d], out[:, :, :d])
    inv_sorted = inverse[order]
    n_obs = obs.sum(axis=1)[inv_sorted]
    log_gauss = -0.5 * maha + log_det[inv_sorted] - 0.5 * LOG_2PI * n_obs[:, None]
    gsorted = gaps[order]
    xhat = np.where(gsorted[:, None, :], params.means[None] + out[:, :, d:], x[order][:, None, :])
    log_resp, norm = _normalise(log_gauss, params)
    resp = resp_of(log_resp, gsorted)
    per_pattern = np.add.reduceat(resp, starts, axis=0) if b else np.zeros((0, k))
    if kk == 1:
        cond_sum = np.einsum("p,pde->de", per_pattern.sum(axis=1), cond[:, 0])[None]
    else:
        cond_sum = np.einsum("pk,pkde->kde", per_pattern, cond)
    unsort = np.empty_like(order)
    unsort[order] = np.arange(b)
    return GapTerms(log_resp[unsort], norm[unsort], xhat[unsort], cond_sum)


def _diag_like(x: Array, gaps: NDArray[np.bool_], params: GaussianParams, resp_of):
    """Densities and moments for diag/spherical covariances: masked products, no patterns."""
    k, d = params.means.shape
    prec = params.precisions_cholesky
    if prec.ndim == 1:  # spherical
        prec = np.repeat(prec[:, None], d, axis=1)
    p2 = prec * prec
    obsf = (~gaps).astype(np.float64)
    shift = mixture_center(params)
    xs = np.where(gaps, 0.0, x - shift)
    mus = params.means - shift
    maha = (xs * xs) @ p2.T - 2.0 * (xs @ (mus * p2).T) + obsf @ (mus * mus * p2).T
    np.maximum(maha, 0.0, out=maha)
    log_gauss = obsf @ (np.log(prec) - 0.5 * LOG_2PI).T - 0.5 * maha
    xhat = np.where(gaps[:, None, :], params.means[None], x[:, None, :])
    log_resp, norm = _normalise(log_gauss, params)
    resp = resp_of(log_resp, gaps)
    cond_sum = resp.T @ gaps.astype(np.float64) * (1.0 / p2)  # (k, d)
    return GapTerms(log_resp, norm, xhat, cond_sum)


def _normalise(log_gauss: Array, params: GaussianParams) -> tuple[Array, Array]:
    wlp = log_gauss + log_weights(params)[None, :]
    top = wlp.max(axis=1)
    top = np.where(np.isfinite(top), top, 0.0)
    wlp -= top[:, None]
    norm = np.log(np.exp(wlp).sum(axis=1))
    wlp -= norm[:, None]
    return wlp, norm + top


def _stats_resp(log_resp: Array, gaps: NDArray[np.bool_]) -> Array:
    # Rows with nothing observed carry no information: they get weight 0 in the statistics.
    resp = np.exp(log_resp)
    resp[gaps.all(axis=1)] = 0.0
    return resp


def gap_terms(x: Array, params: GaussianParams) -> GapTerms:
    """E-step quantities for rows that each have at least one missing cell (NaN)."""
    gaps = np.isnan(x)
    kind = params.covariance_type
    compute = _full_like if kind in ("full", "tied") else _diag_like
    terms = compute(x, gaps, params, _stats_resp)
    empty = gaps.all(axis=1)
    if empty.any():  # exactly the weights and 0, not log(sum of weights) = +-1e-16
        terms.log_resp[empty] = log_weights(params)[None, :]
        terms.norm[empty] = 0.0
    return terms


# ---------------------------------------------------------------------------- public API
def log_resp_and_norm(x: Array, params: GaussianParams) -> tuple[Array, Array]:
    """Log-responsibilities (b, k) and log-density of the observed cells (b,), any rows.

    Rows without a gap go through ``gaussian.log_resp_and_norm`` (bit for bit the
    complete-data result); rows with gaps use the marginal density of what is observed.
    """
    gaps = np.isnan(x)
    rows = gaps.any(axis=1)
    if not rows.any():
        return complete_log_resp_and_norm(x, params)
    log_resp = np.empty((x.shape[0], params.n_components))
    norm = np.empty(x.shape[0])
    if not rows.all():
        log_resp[~rows], norm[~rows] = complete_log_resp_and_norm(x[~rows], params)
    terms = gap_terms(x[rows], params)
    log_resp[rows], norm[rows] = terms.log_resp, terms.norm
    return log_resp, norm


def gap_stats(x: Array, params: GaussianParams, centers: Array | None = None) -> SufficientStats:
    """Sufficient statistics of rows that all have gaps (expected moments around ``centers``)."""
    centers = params.means if centers is None else centers
    kind = params.covariance_type
    gaps = np.isnan(x)
    terms = gap_terms(x, params)
    resp = _stats_resp(terms.log_resp, gaps)
    diff = terms.xhat - centers[None]
    n_k = resp.sum(axis=0)
    sum_x = np.einsum("bk,bkd->kd", resp, diff)
    if kind in ("full", "tied"):
        k, d = centers.shape
        full = np.empty((k, d, d))
        for j in range(k):
            full[j] = (diff[:, j] * resp[:, j : j + 1]).T @ diff[:, j]
        sum_xx = full + terms.cond_sum if kind == "full" else full.sum(axis=0) + terms.cond_sum[0]
    else:
        sum_xx = np.einsum("bk,bkd->kd", resp, diff * diff) + terms.cond_sum
    return SufficientStats(
        kind, centers, n_k, sum_x, sum_xx, float(terms.norm.sum()), int(x.shape[0])
    )


def block_stats_with_gaps(x: Array, params: GaussianParams) -> SufficientStats:
    """Statistics of a block that may hold gaps: complete rows by the complete-data path,
    rows with gaps by ``gap_stats``; the two add up."""
    rows = np.isnan(x).any(axis=1)
    total = SufficientStats.zeros(params.covariance_type, params.means)
    if not rows.all():
        xc = x[~rows]
        log_resp, norm = complete_log_resp_and_norm(xc, params)
        resp = np.exp(log_resp, out=log_resp)
        total = total + block_stats(xc, resp, params.means, params.covariance_type, norm.sum())
    if rows.any():
        total = total + gap_stats(x[rows], params)
    return total


def impute(x: Array, params: GaussianParams, block: int = 8192) -> Array:
    """``x`` with every missing cell replaced by sum_j r_ij E[x_m | x_o, j].

    Observed cells are returned unchanged; a row with nothing observed gets the mixture mean.
    """
    out = np.array(x, dtype=np.float64, copy=True)
    rows = np.flatnonzero(np.isnan(out).any(axis=1))
    for s in range(0, rows.size, block):
        idx = rows[s : s + block]
        terms = gap_terms(out[idx], params)
        filled = np.einsum("bk,bkd->bd", np.exp(terms.log_resp), terms.xhat)
        gaps = np.isnan(out[idx])
        out[idx] = np.where(gaps, filled, out[idx])
    return out


def params_from_labels_with_gaps(
    x: Array, labels: NDArray[np.intp], centers: Array, covariance_type: str, reg_covar: float
) -> GaussianParams:
    """Initial M-step from a hard assignment when ``x`` has gaps.

    Each missing cell is filled with the mean of the observed cells of its column within the
    row's group (the column's overall observed mean if the group has none), then the
    complete-data M-step runs.  Only a start: EM corrects the filled values from the first
    iteration on.
    """
    k, d = centers.shape
    gaps = np.isnan(x)
    values = np.where(gaps, 0.0, x)
    sums = np.zeros((k, d))
    counts = np.zeros((k, d))
    np.add.at(sums, labels, values)
    np.add.at(counts, labels, (~gaps).astype(np.float64))
    group_means = np.where(counts > 0, sums / np.maximum(counts, 1.0), observed_mean(x)[None])
    filled = np.where(gaps, group_means[labels], x)
    return params_from_labels(filled, labels, centers, covariance_type, reg_covar)

"""Missing values: the Gaussian E-step for rows with gaps (Ghahramani & Jordan 1994).

A row with missing cells contributes the *marginal* density of its observed coordinates
``o``: component j gives N(x_o | mu_jo, Sigma_j,oo).  The E-step then fills in, per
component, the conditional expectation and covariance of the missing coordinates ``m``::

    E[x_m | x_o, j]   = mu_jm + Sigma_j,mo Sigma_j,oo^-1 (x_o - mu_jo)
    Cov[x_m | x_o, j] = Sigma_j,mm - Sigma_j,mo Sigma_j,oo^-1 Sigma_j,om

and accumulates the *same* ``SufficientStats`` as complete rows (the expected first and
second moments), so the M-step of ``stats.py`` is unchanged and EM still never decreases
the (observed-data) likelihood.

How the linear algebra is organised:

* Complete rows never come here: they take the kernels (``kernels.py``) unchanged.
* full / tied: the rows of a block are grouped by missingness pattern (a sort on the
  packed mask).  The precision Q = Sigma^-1 gives everything through the Schur complement
  (see ``_full_like``): Q (x - mu_j) for every row and component is one matrix product over
  the block (as for complete rows); per (pattern, component) only the small block Q_mm of
  the missing coordinates is factorised (Cholesky), batched over the patterns with the same
  number of gaps; Q_mm^-1 is the conditional covariance.  tied shares Q over components.
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

from ...errors import FitError
from .models import CovarianceModel
from .params import (
    LOG_2PI,
    GaussianParams,
    log_det_cholesky,
    log_weights,
    lower_inverse,
    mixture_center,
    normalise_log_prob,
    singular_message,
)
from .params import log_resp_and_norm as complete_log_resp_and_norm
from .stats import SufficientStats, block_stats, params_from_labels

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
        return _varied(x.var(axis=0), x, gaps)
    count = np.maximum((~gaps).sum(axis=0), 1)
    mean = np.where(gaps, 0.0, x).sum(axis=0) / count
    dev = np.where(gaps, 0.0, x - mean)
    return _varied((dev * dev).sum(axis=0) / count, x, gaps)


def _varied(var: Array, x: Array, gaps: NDArray[np.bool_]) -> Array:
    """A column that varies keeps a variance > 0 when it underflows (values ~1e-310): it is
    not constant, its spread is below what a float can square."""
    zero = var == 0.0
    if x.shape[0] and zero.any():
        low = np.where(gaps, np.inf, x).min(axis=0)
        high = np.where(gaps, -np.inf, x).max(axis=0)
        var = np.where(zero & (high > low), np.finfo(np.float64).smallest_subnormal, var)
    return var


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

    Every per-row array lists the rows in ``order`` (row ``order[i]`` of the block is row i
    here): full/tied sort the rows by missingness pattern.

    Attributes:
        order: the block's row indices in the order used here, shape (b,).
        log_resp: log-responsibilities, shape (b, k).
        norm: log marginal density of each row's observed coordinates, shape (b,).
        resp: responsibilities as weights for the statistics (0 for a row with nothing
            observed), shape (b, k).
        dev: E[x | x_o, j] - mu_j, shape (b, k, d) (x_o - mu_jo on the observed cells);
            None for diag/spherical, where it is o * (x - mu_j).
        cond_sum: sum over the rows of r_ij Cov[x | x_o, j] (zero on observed coordinates):
            (k, d, d) for full, (1, d, d) summed over components for tied, (k, d) (the
            diagonal) for diag/spherical.
    """

    order: NDArray[np.intp]
    log_resp: Array
    norm: Array
    resp: Array
    dev: Array | None
    cond_sum: Array


def _patterns(
    gaps: NDArray[np.bool_],
) -> tuple[NDArray[np.bool_], NDArray[np.intp], NDArray[np.intp]]:
    """Group rows by missingness pattern, patterns ordered by their number of gaps.

    Returns the distinct patterns (P, d), the row order that puts each pattern's rows
    together (b,), and where each pattern's rows start in that order (P + 1,).
    """
    b, d = gaps.shape
    if d <= 62:  # the pattern as one integer
        key = gaps @ (np.int64(1) << np.arange(d, dtype=np.int64))
    else:  # the packed mask as bytes
        packed = np.ascontiguousarray(np.packbits(gaps, axis=1))
        key = packed.view(np.dtype((np.void, packed.shape[1]))).reshape(-1)
    order = np.argsort(key, kind="stable")
    order = order[np.argsort(gaps.sum(axis=1)[order], kind="stable")]
    sorted_key = key[order]
    new = np.flatnonzero(sorted_key[1:] != sorted_key[:-1]) + 1
    starts = np.concatenate([[0], new, [b]]).astype(np.intp)
    return gaps[order[starts[:-1]]], order, starts


def _full_like(
    x: Array, gaps: NDArray[np.bool_], params: GaussianParams, weights: Array | None = None
) -> GapTerms:
    """Densities and moments for full/tied covariances (see the module docstring).

    With the precision Q = Sigma^-1 of a component and r = x - mu set to 0 on the gaps:
    Sigma_oo^-1 is the Schur complement Q_oo - Q_om Q_mm^-1 Q_mo, so

        r_o' Sigma_oo^-1 r_o = r' Q r - v' Q_mm^-1 v,          v = (Q r)_m
        log det Sigma_oo     = log det Sigma + log det Q_mm
        E[x_m | x_o] - mu_m  = -Q_mm^-1 v,   Cov[x_m | x_o] = Q_mm^-1.

    Q r for every row and component is one matrix product over the block; what is left per
    (pattern, component) is the Cholesky factorisation of the small Q_mm.
    """
    b, d = x.shape
    k = params.n_components
    pc = params.precisions_cholesky
    pc = pc[None] if params.form == "tied" else pc
    kk = pc.shape[0]  # 1 for tied: one precision shared by the components
    prec = pc @ pc.swapaxes(-1, -2)  # (kk, d, d)
    pat_gaps, order, starts = _patterns(gaps)
    n_pat = pat_gaps.shape[0]
    obs = ~pat_gaps
    n_miss = pat_gaps.sum(axis=1)  # non-decreasing over the patterns
    rowpat = np.repeat(np.arange(n_pat), np.diff(starts))
    shift = mixture_center(params)  # products on centred values stay well conditioned
    xs = np.where(gaps, 0.0, x - shift)[order]
    om = (params.means - shift)[None] * obs[:, None, :]  # (P, k, d): mu_j on o, 0 on m
    dev = xs[:, None, :] - om[rowpat]  # r: x - mu_j on o, 0 on m; (b, k, d)
    qr = (xs @ prec.transpose(1, 0, 2).reshape(d, kk * d)).reshape(b, kk, d)
    qr = qr - (om[:, :, None, :] @ prec)[:, :, 0, :][rowpat]  # Q (x - mu_j), (b, k, d)
    maha = np.einsum("bkd,bkd->bk", dev, qr)
    log_det_mm = np.zeros((n_pat, kk))
    cond = np.zeros((n_pat, kk, d, d))  # Cov[x | x_o, j] embedded in d x d
    for c in np.unique(n_miss):
        p0, p1 = np.searchsorted(n_miss, [c, c + 1])
        idx = np.argsort(obs[p0:p1], axis=1, kind="stable")[:, :c]  # missing coordinates
        qmm = prec[:, idx[:, :, None], idx[:, None, :]].swapaxes(0, 1)  # (Pc, kk, c, c)
        try:
            lower = np.linalg.cholesky(qmm)
        except np.linalg.LinAlgError:
            raise FitError(singular_message()) from None
        log_det_mm[p0:p1] = 2.0 * np.log(np.diagonal(lower, axis1=-2, axis2=-1)).sum(axis=-1)
        linv = lower_inverse(np.asarray(lower, dtype=np.float64))
        inv_mm = linv.swapaxes(-1, -2) @ linv  # Q_mm^-1 = Cov[x_m | x_o]
        cond[
            np.arange(p0, p1)[:, None, None, None],
            np.arange(kk)[None, :, None, None],
            idx[:, None, :, None],
            idx[:, None, None, :],
        ] = inv_mm
        lo, hi = starts[p0], starts[p1]
        local = rowpat[lo:hi] - p0
        ridx = idx[local][:, None, :]  # (n, 1, c)
        v = np.take_along_axis(qr[lo:hi], ridx, axis=2)  # (n, k, c)
        if kk == 1:
            u = v @ inv_mm[local, 0]  # Q_mm^-1 is symmetric
        else:
            u = np.einsum("nkab,nkb->nka", inv_mm[local], v)
        maha[lo:hi] -= np.einsum("nkc,nkc->nk", v, u)
        dev[np.arange(lo, hi)[:, None, None], np.arange(k)[None, :, None], ridx] = -u
    np.maximum(maha, 0.0, out=maha)
    log_gauss = -0.5 * maha + log_det_cholesky(params)[None]
    log_gauss -= 0.5 * (log_det_mm[rowpat] + LOG_2PI * (d - n_miss[rowpat])[:, None])
    log_resp, norm = _normalise(log_gauss, params)
    resp = _stats_resp(log_resp, gaps[order], None if weights is None else weights[order])
    per_pattern = np.add.reduceat(resp, starts[:-1], axis=0)
    if kk == 1:
        cond_sum = np.einsum("p,pde->de", per_pattern.sum(axis=1), cond[:, 0])[None]
    else:
        cond_sum = np.einsum("pk,pkde->kde", per_pattern, cond)
    return GapTerms(order, log_resp, norm, resp, dev, cond_sum)


def _diag_like(
    x: Array, gaps: NDArray[np.bool_], params: GaussianParams, weights: Array | None = None
) -> GapTerms:
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
    # (x - m) p squared directly, as params._maha_diag: the expansion
    # x^2 p - 2 x m p + m^2 p cancels to O(1) errors for a narrow component far away.
    diff = xs[:, None, :] - mus[None, :, :]  # (b, k, d)
    diff *= prec[None, :, :]
    diff *= obsf[:, None, :]  # missing cells contribute nothing
    maha = np.einsum("bkd,bkd->bk", diff, diff)
    log_gauss = obsf @ (np.log(prec) - 0.5 * LOG_2PI).T - 0.5 * maha
    log_resp, norm = _normalise(log_gauss, params)
    resp = _stats_resp(log_resp, gaps, weights)
    cond_sum = resp.T @ gaps.astype(np.float64) * (1.0 / p2)  # (k, d)
    return GapTerms(np.arange(x.shape[0]), log_resp, norm, resp, None, cond_sum)


def _normalise(log_gauss: Array, params: GaussianParams) -> tuple[Array, Array]:
    return normalise_log_prob(log_gauss + log_weights(params)[None, :])


def _stats_resp(log_resp: Array, gaps: NDArray[np.bool_], weights: Array | None) -> Array:
    # Rows with nothing observed carry no information: they get weight 0 in the statistics.
    # Frequency weights multiply the responsibilities (and so every sum over rows).
    resp = np.exp(log_resp)
    resp[gaps.all(axis=1)] = 0.0
    if weights is not None:
        resp *= weights[:, None]
    return resp


def gap_terms(x: Array, params: GaussianParams, weights: Array | None = None) -> GapTerms:
    """E-step quantities for rows that each have at least one missing cell (NaN); ``resp``
    and ``cond_sum`` carry the rows' frequency ``weights`` when given."""
    gaps = np.isnan(x)
    kind = params.form
    compute = _full_like if kind in ("full", "tied") else _diag_like
    terms = compute(x, gaps, params, weights)
    empty = gaps[terms.order].all(axis=1)
    if empty.any():  # exactly the weights and 0, not log(sum of weights) = +-1e-16
        terms.log_resp[empty] = log_weights(params)[None, :]
        terms.norm[empty] = 0.0
    return terms


# ---------------------------------------------------------------------------- public API
def log_resp_and_norm(x: Array, params: GaussianParams) -> tuple[Array, Array]:
    """Log-responsibilities (b, k) and log-density of the observed cells (b,), any rows.

    Rows without a gap go through ``params.log_resp_and_norm`` (bit for bit the
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
    idx = np.flatnonzero(rows)
    terms = gap_terms(x[idx], params)
    log_resp[idx[terms.order]], norm[idx[terms.order]] = terms.log_resp, terms.norm
    return log_resp, norm


def gap_stats(
    x: Array, params: GaussianParams, centers: Array | None = None, weights: Array | None = None
) -> SufficientStats:
    """Sufficient statistics of rows that all have gaps (expected moments around ``centers``);
    with frequency ``weights`` (b,) row i counts ``weights[i]`` times."""
    centers = params.means if centers is None else centers
    kind = params.form
    k, d = centers.shape
    if weights is not None:
        terms = gap_terms(x, params, weights)
        w_rows = weights[terms.order]
        norm_total = float(terms.norm @ w_rows)
        n_total = float(weights.sum())
    else:
        terms = gap_terms(x, params)
        norm_total, n_total = float(terms.norm.sum()), float(x.shape[0])
    resp = terms.resp
    n_k = resp.sum(axis=0)
    if terms.dev is not None:  # full / tied
        diff = terms.dev.transpose(1, 0, 2)  # (k, b, d)
        if centers is not params.means:
            diff = diff + (params.means - centers)[:, None, :]
        diff = np.ascontiguousarray(diff)
        weighted = diff * resp.T[:, :, None]
        sum_x = weighted.sum(axis=1)
        full = weighted.transpose(0, 2, 1) @ diff  # (k, d, d)
        sum_xx = full + terms.cond_sum if kind == "full" else full.sum(axis=0) + terms.cond_sum[0]
    else:  # diag / spherical: E[x_m | x_o, j] = mu_jm; one (b, d) temporary per component
        gaps = np.isnan(x)
        sum_x, sum_xx = np.empty((k, d)), np.empty((k, d))
        for j in range(k):
            diff = np.where(gaps, params.means[j] - centers[j], x - centers[j])
            sum_x[j] = resp[:, j] @ diff
            diff *= diff
            sum_xx[j] = resp[:, j] @ diff
        sum_xx += terms.cond_sum
    return SufficientStats(params.model, centers, n_k, sum_x, sum_xx, norm_total, n_total)


def block_stats_with_gaps(
    x: Array, params: GaussianParams, weights: Array | None = None, centers: Array | None = None
) -> SufficientStats:
    """Statistics of a block that may hold gaps: complete rows by the complete-data path,
    rows with gaps by ``gap_stats``; the two add up.  Moments about ``centers`` (default:
    the means); frequency ``weights`` (b,) as in ``gap_stats``."""
    centers = params.means if centers is None else centers
    rows = np.isnan(x).any(axis=1)
    total = SufficientStats.zeros(params.model, centers)
    if not rows.all():
        xc = x[~rows]
        log_resp, norm = complete_log_resp_and_norm(xc, params)
        resp = np.exp(log_resp, out=log_resp)
        if weights is None:
            ll, n = float(norm.sum()), float(xc.shape[0])
        else:
            wc = weights[~rows]
            resp *= wc[:, None]
            ll, n = float(norm @ wc), float(wc.sum())
        total = total + block_stats(xc, resp, centers, params.model, ll, n)
    if rows.any():
        total = total + gap_stats(
            x[rows], params, centers, None if weights is None else weights[rows]
        )
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
        idx = idx[terms.order]
        resp = np.exp(terms.log_resp)
        filled = resp @ params.means
        if terms.dev is not None:
            filled += np.einsum("bk,bkd->bd", resp, terms.dev)
        out[idx] = np.where(np.isnan(out[idx]), filled, out[idx])
    return out


def params_from_labels_with_gaps(
    x: Array,
    labels: NDArray[np.intp],
    centers: Array,
    model: CovarianceModel,
    reg_covar: float,
    weights: Array | None = None,
    exact: bool = False,
) -> GaussianParams:
    """Initial M-step from a hard assignment when ``x`` has gaps (``exact``: as
    ``params_from_labels``).

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
    return params_from_labels(filled, labels, centers, model, reg_covar, weights, exact)

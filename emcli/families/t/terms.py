"""The plain (reference) E-step of the t family: any rows, gaps or not.

For each row i and component j, over the row's observed coordinates o (the marginal of a t
is a t with the same nu, location mu_o and scale Sigma_oo):

* ``delta`` (b, k): the Mahalanobis distance (x_o - mu_o)' Sigma_oo^-1 (x_o - mu_o);
* ``n_obs`` (b,): how many coordinates are observed;
* ``half_log_det`` (b, k): -1/2 log det Sigma_oo;
* with ``moments``: ``xhat`` (b, k, d), E[x | x_o, j] (x on o; on the gaps
  mu_m + Sigma_mo Sigma_oo^-1 (x_o - mu_o), the same as for a Gaussian: the latent scale tau
  does not move the conditional mean), and the conditional scale
  Sigma_mm - Sigma_mo Sigma_oo^-1 Sigma_om on the gaps: ``cond`` (b, k, d) for diag/spherical,
  ``cond_parts`` (the rows of a pattern, its (k, d, d) matrices) for full/tied.
  The M-step needs E[tau x x' | x_o] = u xhat xhat' + cond (McLachlan & Peel 2000, 7.6):
  the conditional term is *not* multiplied by u.

Rows are grouped by missingness pattern (``gaussian.missing._patterns``); per pattern, one
Cholesky factorisation of Sigma_oo for all components.  Complete rows take the precision
Cholesky factors directly.  ``kernels.py`` is the fast path for complete rows
(``family.py``); this one serves the gaps, the re-centred pass, predict and score.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ...errors import FitError
from ..gaussian.missing import _patterns
from ..gaussian.params import log_det_cholesky, lower_inverse, singular_message
from .params import TParams

Array = NDArray[np.float64]


@dataclass
class Terms:
    delta: Array
    n_obs: Array
    half_log_det: Array
    xhat: Array | None = None
    cond: Array | None = None
    cond_parts: list[tuple[NDArray[np.intp], Array]] | None = None


def complete_delta(x: Array, params: TParams) -> Array:
    """Mahalanobis distances of complete rows, shape (b, k), each about its own mean."""
    p = params.gauss
    k, d = p.n_components, p.n_features
    prec = p.precisions_cholesky
    shift = p.means.mean(axis=0)
    xs = x - shift
    mus = p.means - shift
    if p.form in ("full", "tied"):
        pc = np.broadcast_to(prec, (k, d, d))
        out = np.empty((x.shape[0], k))
        for j in range(k):
            y = (xs - mus[j]) @ pc[j]
            out[:, j] = np.einsum("bd,bd->b", y, y)
        return out
    scale = prec if prec.ndim == 2 else np.repeat(prec[:, None], d, axis=1)
    out = np.empty((x.shape[0], k))
    for j in range(k):
        y = (xs - mus[j]) * scale[j]
        out[:, j] = np.einsum("bd,bd->b", y, y)
    return out


def terms(x: Array, params: TParams, moments: bool = False) -> Terms:
    """The observed-coordinate terms of a block of rows (module docstring)."""
    gaps = np.isnan(x)
    b, d = x.shape
    k = params.n_components
    if not gaps.any():
        out = Terms(
            complete_delta(x, params),
            np.full(b, float(d)),
            np.broadcast_to(log_det_cholesky(params.gauss), (b, k)).copy(),
        )
        if moments:
            out.xhat = np.broadcast_to(x[:, None, :], (b, k, d)).copy()
            if params.form in ("full", "tied"):
                out.cond_parts = []
            else:
                out.cond = np.zeros((b, k, d))
        return out
    if params.form in ("diag", "spherical"):
        return _diag_terms(x, gaps, params, moments)
    return _full_terms(x, gaps, params, moments)


def _diag_terms(x: Array, gaps: NDArray[np.bool_], params: TParams, moments: bool) -> Terms:
    p = params.gauss
    k, d = p.n_components, p.n_features
    var = np.broadcast_to(np.asarray(p.covariances).reshape(k, -1), (k, d))
    obs = (~gaps).astype(np.float64)
    filled = np.where(gaps, 0.0, x)
    diff = (filled[:, None, :] - p.means[None]) * obs[:, None, :]
    delta = np.einsum("bkd,bkd->bk", diff / var[None], diff)
    half_log_det = -0.5 * obs @ np.log(var).T
    out = Terms(delta, obs.sum(axis=1), half_log_det)
    if moments:
        out.xhat = np.where(gaps[:, None, :], p.means[None], x[:, None, :])
        out.cond = gaps[:, None, :] * var[None]
    return out


def _full_terms(x: Array, gaps: NDArray[np.bool_], params: TParams, moments: bool) -> Terms:
    p = params.gauss
    k, d = p.n_components, p.n_features
    b = x.shape[0]
    scale = np.broadcast_to(p.full_covariances(), (k, d, d))
    delta = np.zeros((b, k))
    half_log_det = np.zeros((b, k))
    out = Terms(delta, (~gaps).sum(axis=1).astype(np.float64), half_log_det)
    if moments:
        out.xhat = np.broadcast_to(np.where(gaps, 0.0, x)[:, None, :], (b, k, d)).copy()
        out.cond_parts = []
    pat_gaps, order, starts = _patterns(gaps)
    for p_i in range(pat_gaps.shape[0]):
        rows = order[starts[p_i] : starts[p_i + 1]]
        o = np.flatnonzero(~pat_gaps[p_i])
        m = np.flatnonzero(pat_gaps[p_i])
        if o.size == 0:  # nothing observed: density 1 under every component
            if moments:
                assert out.xhat is not None and out.cond_parts is not None
                out.xhat[rows] = p.means[None]
                out.cond_parts.append((rows, np.array(scale)))
            continue
        s_oo = scale[:, o[:, None], o[None, :]]
        try:
            lower = np.linalg.cholesky(s_oo)  # (k, o, o)
        except np.linalg.LinAlgError:
            raise FitError(singular_message()) from None
        linv = lower_inverse(np.asarray(lower, dtype=np.float64))  # L^-1
        diff = x[rows][:, o][None] - p.means[:, None, o]  # (k, n, o)
        z = diff @ linv.transpose(0, 2, 1)  # rows of L^-1 (x_o - mu_o)
        delta[rows] = np.einsum("kno,kno->nk", z, z)
        half_log_det[rows] = -np.log(np.diagonal(lower, axis1=1, axis2=2)).sum(axis=1)[None]
        if moments and m.size:
            assert out.xhat is not None and out.cond_parts is not None
            s_mo = scale[:, m[:, None], o[None, :]]  # (k, m, o)
            a = s_mo @ linv.transpose(0, 2, 1)  # Sigma_mo L^-T, (k, m, o)
            # E[x_m | x_o] = mu_m + Sigma_mo Sigma_oo^-1 (x_o - mu_o) = mu_m + A z
            xm = p.means[:, None, m] + z @ a.transpose(0, 2, 1)  # (k, n, m)
            out.xhat[rows[:, None, None], np.arange(k)[None, :, None], m[None, None, :]] = (
                xm.transpose(1, 0, 2)
            )
            cond = np.zeros((k, d, d))
            cond[:, m[:, None], m[None, :]] = scale[:, m[:, None], m[None, :]] - a @ a.transpose(
                0, 2, 1
            )
            out.cond_parts.append((rows, cond))
    return out

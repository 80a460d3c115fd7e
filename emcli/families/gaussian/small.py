"""EM on a few thousand complete rows in memory, fused into one loop (the small-data path).

On small data (mclust's data sets: a few hundred rows) an EM iteration is a few dozen
microseconds of arithmetic, and the general path (an E-step plan, blocks mapped over
threads, additive statistics, a re-centring test) costs several times that in Python
overhead.  Model selection fits hundreds of candidates of such data, so this loop does the
same iteration with the arrays held in place: log-densities through the precision
Cholesky factors, log-sum-exp, responsibilities, weighted means and scatter about the new
means (exact: no moments about an old centre), then the covariance model's M-step.

It follows ``emcli.em.driver.run_em`` exactly: ``history[t]`` is the log-likelihood after
t M-steps, convergence is judged on the change per unit of weight, ``tol == 0`` runs
``max_iter`` iterations, and the result is that of the last E-step's parameters.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ...errors import FitError
from .models import Scatter
from .params import LOG_2PI, GaussianParams
from .stats import NK_GUARD

Array = NDArray[np.float64]
# The fused loop holds (k, n, d) arrays: at most about this many elements.
MAX_ELEMENTS = 1 << 22


def fits(n: int, k: int, d: int) -> bool:
    """Whether data of this shape takes the fused loop."""
    return n * k * d <= MAX_ELEMENTS


def _log_prob(x: Array, p: GaussianParams) -> tuple[Array, Array]:
    """(log w_j + log N(x_i | mu_j, Sigma_j) of shape (k, n), x_i - mu_j of shape (k, n, d))."""
    prec, mu, form = p.precisions_cholesky, p.means, p.form
    d = x.shape[1]
    diff = x[None] - mu[:, None, :]  # about each mean: no cancellation far from 0
    if form == "full":
        y = np.matmul(diff, prec)
        logdet = np.log(np.diagonal(prec, axis1=1, axis2=2)).sum(axis=1)
    elif form == "tied":
        y = np.matmul(diff, prec)
        logdet = np.full(mu.shape[0], np.log(np.diagonal(prec)).sum())
    elif form == "diag":
        y = diff * prec[:, None, :]
        logdet = np.log(prec).sum(axis=1)
    else:
        y = diff * prec[:, None, None]
        logdet = d * np.log(prec)
    maha = np.einsum("knd,knd->kn", y, y)
    with np.errstate(divide="ignore"):
        lw = np.log(p.weights)
    return (-0.5 * (d * LOG_2PI + maha) + logdet[:, None]) + lw[:, None], diff


def _m_step(diff: Array, resp: Array, p: GaussianParams, reg: float) -> GaussianParams:
    # The new means as the old ones plus a shift, and the scatter about the new means from
    # the differences to the old ones: exact for data far from 0.
    model = p.model
    n_k = resp.sum(axis=1) + NK_GUARD
    shift = np.einsum("kn,knd->kd", resp, diff) / n_k[:, None]
    means = p.means + shift
    diff = diff - shift[:, None, :]
    if model.stats == "diag":
        w = np.einsum("kn,knd->kd", resp, diff * diff)
    else:
        w = np.matmul(np.swapaxes(diff * resp[:, :, None], 1, 2), diff)
        if model.stats == "pooled":
            w = w.sum(axis=0)
    cov = model.m_step(Scatter(n_k, w), reg, p.covariances)
    return GaussianParams.from_covariances(model, n_k / n_k.sum(), means, cov)


def _evaluate(
    x: Array, weights: Array | None, params: GaussianParams
) -> tuple[tuple[Array, Array, GaussianParams], float]:
    """One E-step: ((differences, weighted responsibilities, params), log-likelihood)."""
    lp, diff = _log_prob(x, params)
    top = lp.max(axis=0)
    top = np.where(np.isfinite(top), top, 0.0)
    lse = np.log(np.exp(lp - top).sum(axis=0)) + top
    ll = float(lse.sum() if weights is None else weights @ lse)
    if not math.isfinite(ll):
        raise FitError("the log-likelihood is not finite; scale the data or increase {reg_covar}")
    resp = np.exp(lp - lse)
    if weights is not None:
        resp *= weights
    return (diff, resp, params), ll


def run(
    x: Array,
    weights: Array | None,
    params: GaussianParams,
    reg_covar: float,
    max_iter: int,
    tol: float,
    on_iteration: Callable[[int, float, float], None] | None = None,
    accelerate: Any = None,
) -> tuple[GaussianParams, float, int, bool, list[float]]:
    """EM from ``params`` on complete rows ``x`` (``run_em``'s contract, module docstring);
    with ``accelerate`` (the family, for its parameter vectors) and ``tol > 0``, SQUAREM
    (``emcli.em.squarem``) over this loop's E- and M-step.

    Raises:
        FitError: a covariance stopped being positive definite, or the log-likelihood is
            not finite.
    """
    from ...parallel import check_cancelled

    total = float(x.shape[0]) if weights is None else float(weights.sum())

    def evaluate(p: GaussianParams) -> tuple[tuple[Array, Array, GaussianParams], float, float]:
        check_cancelled()  # parallel starts stop at Ctrl-C / SIGTERM, as between row blocks
        state, ll = _evaluate(x, weights, p)
        return state, ll, total

    def m_step(state: tuple[Array, Array, GaussianParams]) -> GaussianParams:
        return _m_step(*state, reg_covar)

    if accelerate is not None and tol > 0:
        from ...em.squarem import accelerate as squarem

        return squarem(evaluate, m_step, accelerate, params, max_iter, tol, on_iteration)
    history: list[float] = []
    converged = False
    n_iter = 0
    while True:
        state, ll, _ = evaluate(params)
        delta = ll - history[-1] if history else math.nan
        history.append(ll)
        if on_iteration is not None:
            on_iteration(n_iter, ll, delta)
        if history[:-1] and tol > 0 and abs(delta) / max(total, 1e-300) < tol:
            converged = True
            break
        if n_iter >= max_iter:
            break
        params = m_step(state)
        n_iter += 1
    return params, history[-1], n_iter, converged, history

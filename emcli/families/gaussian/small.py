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
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
from numpy.typing import NDArray

from ...errors import FitError
from .models import CovarianceModel, Scatter
from .params import (
    LOG_2PI,
    GaussianParams,
    _chol_diagonal,
    _chol_full,
    _precision_cholesky,
    log_det_factors,
)
from .stats import NK_GUARD

Array = NDArray[np.float64]
# The fused loop holds (k, n, d) arrays: at most about this many elements.
MAX_ELEMENTS = 1 << 22
NOT_FINITE = "the log-likelihood is not finite; scale the data or increase {reg_covar}"


def fits(n: int, k: int, d: int) -> bool:
    """Whether data of this shape takes the fused loop."""
    return n * k * d <= MAX_ELEMENTS


def _m_step(diff: Array, resp: Array, p: GaussianParams, reg: float) -> GaussianParams:
    # The new means as the old ones plus a shift, and the scatter about the new means from
    # the differences to the old ones (``_scatter``): exact for data far from 0.
    model = p.model
    n_k, shift, w = _moments(model.stats, diff, resp)
    means = p.means + shift
    cov = model.m_step(Scatter(n_k, w), reg, p.covariances)
    return GaussianParams.from_covariances(model, n_k / n_k.sum(), means, cov)


def _moments(stats: str, diff: Array, resp: Array) -> tuple[Array, Array, Array]:
    """(n_k, the shift s of the means, the scatter about the new means) from differences d
    to the old means (leading axes: starts, components; then (d, n), a column per row) and
    responsibilities r: sum_i r (d_i - s)(d_i - s)^T = sum_i r d_i d_i^T - n_k s s^T, in
    one pass over the rows (a shift is of the order of the spread, so nothing cancels);
    the sums over rows as matrix products."""
    n_k = resp.sum(axis=-1) + NK_GUARD
    shift = np.matmul(diff, resp[..., None])[..., 0] / n_k[..., None]
    if stats == "diag":
        w = np.matmul(diff * diff, resp[..., None])[..., 0] - n_k[..., None] * shift * shift
        return n_k, shift, w
    w = np.matmul(diff * resp[..., None, :], diff.swapaxes(-1, -2))
    w -= n_k[..., None, None] * (shift[..., :, None] * shift[..., None, :])
    return n_k, shift, (w.sum(axis=-3) if stats == "pooled" else w)


def _evaluate(
    xt: Array, weights: Array | None, params: GaussianParams
) -> tuple[tuple[Array, Array, GaussianParams], float]:
    """One E-step on the rows as columns ``xt``: ((differences, weighted responsibilities,
    params), log-likelihood)."""
    diff, resp, ll = _evaluate_batch(xt, weights, _Stacked.of([params]))
    value = float(ll[0])
    if not math.isfinite(value):
        raise FitError(NOT_FINITE)
    return (diff[0], resp[0], params), value


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
    xt = np.ascontiguousarray(x.T)

    def evaluate(p: GaussianParams) -> tuple[tuple[Array, Array, GaussianParams], float, float]:
        check_cancelled()  # parallel starts stop at Ctrl-C / SIGTERM, as between row blocks
        state, ll = _evaluate(xt, weights, p)
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


# ---------------------------------------------------------------------------- batched starts
# Several starts of one fit (the same covariance model and k) run through one loop: their
# arrays are stacked on a leading axis, so the E-step, the scatter, the covariance model's
# M-step and the precision factors are one numpy call for all of them.  On small data a
# call costs more than its arithmetic, so R starts cost little more than one (model
# selection's short exploratory runs, ``emcli.em.driver``).
Outcome = tuple[GaussianParams, float, int, bool, list[float]]


@dataclass(frozen=True)
class _Stacked:
    """R starts' parameters (one covariance model, one k) as arrays with a leading axis of
    starts, held so through the loop: (R, k) weights, (R, k, d) means, and covariances and
    precision factors in the model's native shape behind the starts' axis."""

    model: CovarianceModel
    weights: Array
    means: Array
    covariances: Array
    precisions: Array

    @classmethod
    def of(cls, params: list[GaussianParams]) -> _Stacked:
        if len(params) == 1:  # views: one start's E-step (SQUAREM's) copies nothing
            p = params[0]
            return cls(
                p.model,
                p.weights[None],
                p.means[None],
                np.asarray(p.covariances)[None],
                np.asarray(p.precisions_cholesky)[None],
            )
        return cls(
            params[0].model,
            np.stack([p.weights for p in params]),
            np.stack([p.means for p in params]),
            np.stack([p.covariances for p in params]),
            np.stack([p.precisions_cholesky for p in params]),
        )

    def take(self, rows: list[int]) -> _Stacked:
        return _Stacked(
            self.model,
            self.weights[rows],
            self.means[rows],
            self.covariances[rows],
            self.precisions[rows],
        )

    def params(self, r: int) -> GaussianParams:
        """Start r's parameters."""
        return GaussianParams(
            self.model, self.weights[r], self.means[r], self.covariances[r], self.precisions[r]
        )

    def log_det(self) -> Array:
        """log det of each precision factor (R, k)."""
        return log_det_factors(self.model.form, self.precisions, *self.means.shape[-2:])


def _evaluate_batch(
    xt: Array, weights: Array | None, params: _Stacked
) -> tuple[Array, Array, Array]:
    """One E-step of R starts on the rows as columns ``xt`` (d, n): (differences (R, k, d,
    n), weighted responsibilities (R, k, n), log-likelihoods (R,), not finite for a start
    whose E-step failed).  The rows run along the last axis: with d small, an axis of d
    innermost made every pass over the (R, k, n, d) arrays several times slower."""
    form, d = params.model.form, xt.shape[0]
    prec = params.precisions
    diff = xt[None, None] - params.means[..., None]
    if form == "full":  # y = U^T (x - m) for the precision factor U
        y = np.matmul(prec.swapaxes(-1, -2), diff)
    elif form == "tied":
        y = np.matmul(prec.swapaxes(-1, -2)[:, None], diff)
    elif form == "diag":
        y = diff * prec[..., None]
    else:
        y = diff * prec[:, :, None, None]
    lp = np.einsum("rkdn,rkdn->rkn", y, y)  # the Mahalanobis distances, then in place:
    with np.errstate(divide="ignore", invalid="ignore"):
        # log w_k + log det U_k - d/2 log 2 pi - maha/2
        const = np.log(params.weights) + (params.log_det() - 0.5 * d * LOG_2PI)
        lp *= -0.5
        lp += const[:, :, None]
        # a row whose densities are not all finite makes the start's log-likelihood not
        # finite whatever its maximum is: the start fails (``NOT_FINITE``)
        top = lp.max(axis=1)
        lp -= top[:, None]
        e = np.exp(lp, out=lp)
        total = e.sum(axis=1)
        lse = np.log(total)
        lse += top
        ll = lse.sum(axis=1) if weights is None else lse @ weights
        resp = np.divide(e, total[:, None], out=e)
    if weights is not None:
        resp *= weights
    return diff, resp, ll


def _m_step_batch(
    diff: Array, resp: Array, params: _Stacked, reg: float
) -> _Stacked | list[GaussianParams | FitError]:
    """``_m_step`` for R starts: the scatter, the covariance model's M-step (each start's
    iterations its own, ``models``) and the precision factors for all at once; where a
    start fails, each start alone (``_m_step``), so that it ends with its own error and the
    others go on (then a list, by start)."""
    model = params.model
    n_k, shift, w = _moments(model.stats, diff, resp)
    try:
        cov = model.m_step(Scatter(n_k, w), reg, params.covariances)
        if model.form == "full":
            prec = _chol_full(cov.reshape(-1, *cov.shape[-2:])).reshape(cov.shape)
        elif model.form == "tied":
            prec = _precision_cholesky(cov, stacked=True)
        else:
            prec = _chol_diagonal(cov)
    except FitError:
        return [_alone(diff[r], resp[r], params.params(r), reg) for r in range(len(n_k))]
    mix = n_k / n_k.sum(axis=1, keepdims=True)
    return _Stacked(model, mix, params.means + shift, cov, prec)


def _alone(diff: Array, resp: Array, params: GaussianParams, reg: float) -> Any:
    try:
        return _m_step(diff, resp, params, reg)
    except FitError as exc:
        return exc


def run_batch(
    x: Array,
    weights: Array | None,
    starts: list[GaussianParams],
    reg_covar: float,
    max_iter: int,
    tol: float,
    on_iteration: Callable[[int, int, float, float], None] | None = None,
) -> list[Outcome | FitError]:
    """``run`` (plain EM) from each of ``starts`` (one covariance model, one k), in one
    loop: each start's outcome is ``run``'s return value or the FitError that ended it.
    A start leaves the batch when it converges, fails or reaches ``max_iter``;
    ``on_iteration(start, t, log_likelihood, delta)``."""
    from ...parallel import check_cancelled

    if not starts:
        return []
    total = float(x.shape[0]) if weights is None else float(weights.sum())
    xt = np.ascontiguousarray(x.T)
    current = _Stacked.of(list(starts))
    history: list[list[float]] = [[] for _ in starts]
    out: list[Outcome | FitError | None] = [None] * len(starts)
    active = list(range(len(starts)))  # the starts in ``current``, in its order
    n_iter = 0
    while active:
        check_cancelled()
        diff, resp, ll = _evaluate_batch(xt, weights, current)
        going = []
        for i, r in enumerate(active):
            value = float(ll[i])
            if not math.isfinite(value):
                out[r] = FitError(NOT_FINITE)
                continue
            h = history[r]
            delta = value - h[-1] if h else math.nan
            h.append(value)
            if on_iteration is not None:
                on_iteration(r, n_iter, value, delta)
            if len(h) > 1 and tol > 0 and abs(delta) / max(total, 1e-300) < tol:
                out[r] = (current.params(i), value, n_iter, True, h)
            elif n_iter >= max_iter:
                out[r] = (current.params(i), value, n_iter, False, h)
            else:
                going.append(i)
        if not going:
            break
        rows = [active[i] for i in going]
        if len(going) < len(active):
            current, diff, resp = current.take(going), diff[going], resp[going]
        stepped = _m_step_batch(diff, resp, current, reg_covar)
        if isinstance(stepped, _Stacked):
            current, active = stepped, rows
        else:  # some start failed: it leaves with its error, the others go on
            active, kept = [], []
            for r, new in zip(rows, stepped, strict=True):
                if isinstance(new, FitError):
                    out[r] = new
                else:
                    active.append(r)
                    kept.append(new)
            if kept:
                current = _Stacked.of(kept)
        n_iter += 1
    # every start left the batch with an outcome (converged, at max_iter, or failed)
    return cast(list[Outcome | FitError], out)

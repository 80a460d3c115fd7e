"""SQUAREM: squared extrapolation for EM (Varadhan & Roland 2008, scheme S3).

One cycle from parameters theta0 (whose E-step is known) takes two plain EM steps,
theta1 = M(theta0) and theta2 = M(theta1), and jumps along them::

    r = theta1 - theta0,   v = theta2 - theta1 - r,   alpha = -|r| / |v|  (clipped to <= -1)
    theta' = theta0 - 2 alpha r + alpha^2 v

(alpha = -1 gives theta2 exactly).  theta is the vector of weights, means and covariances;
the weights of theta' sum to 1 by construction.  The jump is kept only when theta' is a
valid mixture (weights > 0, covariances positive definite) and its log-likelihood is at
least that of theta1; otherwise the cycle ends at the plain step theta2.  So the sequence of
reported log-likelihoods never decreases.  The largest step starts at 1, grows by 4 each
time the step length reaches it and the cycle succeeds (the SQUAREM package's ``mstep``),
and shrinks by 4 when a jump is rejected.

Convergence is tested, as for plain EM, on the plain step theta0 -> theta1, so the returned
parameters are always the output of an M-step and their log-likelihood is the one reported.
"""

from __future__ import annotations

import math

import numpy as np

from .errors import FitError
from .families.gaussian import GaussianParams, m_step

STEP_FACTOR = 4.0


def _vector(p: GaussianParams) -> np.ndarray:
    return np.concatenate([p.weights.ravel(), p.means.ravel(), np.ravel(p.covariances)])


def _from_vector(theta: np.ndarray, like: GaussianParams) -> GaussianParams | None:
    """Parameters from a vector, or None if they are not a valid mixture."""
    k, d = like.means.shape
    weights = theta[:k]
    means = theta[k : k + k * d].reshape(k, d)
    cov = theta[k + k * d :].reshape(np.shape(like.covariances))
    if not np.all(np.isfinite(theta)) or not np.all(weights > 0.0):
        return None
    weights = weights / weights.sum()
    if like.covariance_type in ("full", "tied"):
        cov = 0.5 * (cov + np.swapaxes(cov, -1, -2))
    try:
        return GaussianParams.from_covariances(like.covariance_type, weights, means, cov)
    except FitError:
        return None


def squarem(engine, params: GaussianParams, max_iter: int, tol: float, reg_covar: float,
            on_iteration=None):
    """Accelerated EM from ``params``; same return value as ``emcli.em.run_em``.

    ``n_iter`` counts M-steps (each costs one E-step, as in plain EM); a rejected jump costs
    one E-step more that is not counted.  ``tol`` must be > 0.
    """
    n = engine.n_samples
    history: list[float] = []
    step_max = 1.0
    n_iter = 0

    def evaluate(p: GaussianParams):
        stats = engine.e_step(p)
        ll = float(stats.log_likelihood)
        if not math.isfinite(ll):
            raise FitError(
                "the log-likelihood is not finite; scale the data or increase --reg-covar"
            )
        return stats, ll

    def record(ll: float) -> float:
        delta = ll - history[-1] if history else math.nan
        history.append(ll)
        if on_iteration is not None:
            on_iteration(n_iter, ll, delta)
        return delta

    stats0, ll0 = evaluate(params)
    record(ll0)
    while n_iter < max_iter:
        p1 = m_step(stats0, reg_covar)
        n_iter += 1
        stats1, ll1 = evaluate(p1)
        delta = record(ll1)
        if abs(delta) / n < tol:
            return p1, ll1, n_iter, True, history
        if n_iter >= max_iter:
            return p1, ll1, n_iter, False, history
        p2 = m_step(stats1, reg_covar)
        n_iter += 1
        t0, t1, t2 = _vector(params), _vector(p1), _vector(p2)
        r = t1 - t0
        v = t2 - t1 - r
        vv = float(v @ v)
        alpha = -math.sqrt(float(r @ r) / vv) if vv > 0 else -1.0
        clipped = alpha <= -step_max
        alpha = max(-step_max, min(-1.0, alpha))
        jumped = None
        if alpha < -1.0 and n_iter < max_iter:  # a jump needs an M-step after it
            candidate = _from_vector(t0 - 2.0 * alpha * r + alpha * alpha * v, params)
            if candidate is not None:
                stats_c, ll_c = evaluate(candidate)
                if ll_c >= ll1:
                    jumped = candidate, stats_c, ll_c
        if jumped is not None:
            params, stats0, ll0 = jumped
        else:
            params = p2
            stats0, ll0 = evaluate(p2)
        if clipped and (jumped is not None or alpha == -1.0):
            step_max *= STEP_FACTOR
        elif alpha < -1.0 and jumped is None:  # the jump failed: smaller steps
            step_max = max(1.0, step_max / STEP_FACTOR)
        record(ll0)
    return params, ll0, n_iter, False, history

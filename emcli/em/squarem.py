"""SQUAREM: squared extrapolation for EM (Varadhan & Roland 2008, scheme S3).

One cycle from parameters theta0 (whose E-step is known) takes two plain EM steps,
theta1 = M(theta0) and theta2 = M(theta1), and jumps along them::

    r = theta1 - theta0,   v = theta2 - theta1 - r,   alpha = -|r| / |v|  (clipped to <= -1)
    theta' = theta0 - 2 alpha r + alpha^2 v

(alpha = -1 gives theta2 exactly).  theta is the family's parameter vector
(``Family.to_vector``: for the Gaussian family the weights, means and covariances); the
weights of theta' sum to 1 by construction.  The jump is kept only when theta' is a
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
from typing import Any

from .step import e_step, finite_log_likelihood

STEP_FACTOR = 4.0


def squarem(
    engine: Any, family: Any, params: Any, max_iter: int, tol: float, on_iteration: Any = None
) -> tuple[Any, float, int, bool, list[float]]:
    """Accelerated EM from ``params``; same return value as ``emcli.em.driver.run_em``.

    ``n_iter`` counts M-steps (each costs one E-step, as in plain EM); a rejected jump costs
    one E-step more that is not counted.  ``tol`` must be > 0.
    """
    history: list[float] = []
    step_max = 1.0
    n_iter = 0

    def evaluate(p: Any) -> tuple[Any, float]:
        stats = e_step(engine, family, p)
        return stats, finite_log_likelihood(stats[0])

    def record(ll: float) -> float:
        delta = ll - history[-1] if history else math.nan
        history.append(ll)
        if on_iteration is not None:
            on_iteration(n_iter, ll, delta)
        return delta

    stats0, ll0 = evaluate(params)
    record(ll0)
    while n_iter < max_iter:
        p1 = family.m_step(*stats0)
        n_iter += 1
        stats1, ll1 = evaluate(p1)
        delta = record(ll1)
        if abs(delta) / max(stats1[0].n_samples, 1e-300) < tol:
            return p1, ll1, n_iter, True, history
        if n_iter >= max_iter:
            return p1, ll1, n_iter, False, history
        p2 = family.m_step(*stats1)
        n_iter += 1
        t0, t1, t2 = family.to_vector(params), family.to_vector(p1), family.to_vector(p2)
        r = t1 - t0
        v = t2 - t1 - r
        vv = float(v @ v)
        alpha = -math.sqrt(float(r @ r) / vv) if vv > 0 else -1.0
        clipped = alpha <= -step_max
        alpha = max(-step_max, min(-1.0, alpha))
        jumped = None
        if alpha < -1.0 and n_iter < max_iter:  # a jump needs an M-step after it
            candidate = family.from_vector(t0 - 2.0 * alpha * r + alpha * alpha * v, params)
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

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

A model whose constraint does not survive a linear combination (mclust's VVE, EVI, ...:
``Family.off_model``) is extrapolated all the same, then brought back into the model by one
EM step from theta' (the "stabilisation" step of Varadhan & Roland); the jump is judged on
that step's log-likelihood, so every reported point is a member of the model.

Convergence is tested, as for plain EM, on the plain step theta0 -> theta1, so the returned
parameters are always the output of an M-step and their log-likelihood is the one reported.

``accelerate`` is the scheme over any E-step: the engines' (``squarem``) or a family's fused
loop over rows in memory (``emcli.families.gaussian.small``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from ..errors import FitError
from .step import e_step, finite_log_likelihood

STEP_FACTOR = 4.0

# evaluate(params) -> (what the M-step needs, log-likelihood, total weight)
Evaluate = Callable[[Any], tuple[Any, float, float]]


def squarem(
    engine: Any, family: Any, params: Any, max_iter: int, tol: float, on_iteration: Any = None
) -> tuple[Any, float, int, bool, list[float]]:
    """Accelerated EM from ``params`` over an engine; same return value as
    ``emcli.em.driver.run_em``.

    ``n_iter`` counts M-steps (each costs one E-step, as in plain EM); a rejected jump costs
    one E-step more that is not counted.  ``tol`` must be > 0.
    """

    def evaluate(p: Any) -> tuple[Any, float, float]:
        stats = e_step(engine, family, p)
        return stats, finite_log_likelihood(stats[0]), float(stats[0].n_samples)

    return accelerate(
        evaluate, lambda stats: family.m_step(*stats), family, params, max_iter, tol, on_iteration
    )


def accelerate(
    evaluate: Evaluate,
    m_step: Callable[[Any], Any],
    family: Any,
    params: Any,
    max_iter: int,
    tol: float,
    on_iteration: Any = None,
) -> tuple[Any, float, int, bool, list[float]]:
    """SQUAREM from ``params`` with the given E-step (``evaluate``) and M-step; ``family``
    gives ``to_vector``, ``from_vector`` and optionally ``off_model`` (module docstring)."""
    history: list[float] = []
    step_max = 1.0
    n_iter = 0
    off_model = bool(getattr(family, "off_model", lambda like: False)(params))

    def record(ll: float) -> float:
        delta = ll - history[-1] if history else math.nan
        history.append(ll)
        if on_iteration is not None:
            on_iteration(n_iter, ll, delta)
        return delta

    def try_jump(theta: Any) -> tuple[Any, Any, float, int] | None:
        if off_model:
            candidate = family.from_vector(theta, params, off_model=True)
        else:
            candidate = family.from_vector(theta, params)
        if candidate is None:
            return None
        try:
            state, ll, _ = evaluate(candidate)
            if not off_model:
                return candidate, state, ll, 0
            candidate = m_step(state)  # back into the model
            state, ll, _ = evaluate(candidate)
        except FitError:  # an extrapolated point too far out: not a jump
            return None
        return candidate, state, ll, 1

    state0, ll0, total = evaluate(params)
    record(ll0)
    while n_iter < max_iter:
        p1 = m_step(state0)
        n_iter += 1
        state1, ll1, total = evaluate(p1)
        delta = record(ll1)
        if abs(delta) / max(total, 1e-300) < tol:
            return p1, ll1, n_iter, True, history
        if n_iter >= max_iter:
            return p1, ll1, n_iter, False, history
        p2 = m_step(state1)
        n_iter += 1
        t0, t1, t2 = family.to_vector(params), family.to_vector(p1), family.to_vector(p2)
        r = t1 - t0
        v = t2 - t1 - r
        vv = float(v @ v)
        alpha = -math.sqrt(float(r @ r) / vv) if vv > 0 else -1.0
        clipped = alpha <= -step_max
        alpha = max(-step_max, min(-1.0, alpha))
        jumped = None
        if alpha < -1.0 and n_iter + int(off_model) < max_iter:  # a jump needs an M-step after it
            jumped = try_jump(t0 - 2.0 * alpha * r + alpha * alpha * v)
            if jumped is not None and not jumped[2] >= ll1:
                jumped = None
        if jumped is not None:
            params, state0, ll0, extra = jumped
            n_iter += extra
        else:
            params = p2
            state0, ll0, total = evaluate(p2)
        if clipped and (jumped is not None or alpha == -1.0):
            step_max *= STEP_FACTOR
        elif alpha < -1.0 and jumped is None:  # the jump failed: smaller steps
            step_max = max(1.0, step_max / STEP_FACTOR)
        record(ll0)
    return params, ll0, n_iter, False, history

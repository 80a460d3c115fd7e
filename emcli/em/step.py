"""One E-step as the driver and SQUAREM take it: the engine's sum, re-centred if needed."""

from __future__ import annotations

import math
from typing import Any

from ..errors import FitError


def e_step(engine: Any, family: Any, params: Any) -> tuple[Any, Any]:
    """(stats, plan) of one E-step at ``params``; a second pass about better centres when the
    family says the first lost precision (``Family.refine``)."""
    plan = family.prepare(params, engine.dtype, n_rows=engine.n_samples)
    stats = engine.e_step(family, plan)
    again = family.refine(stats, plan)
    if again is not None:
        stats, plan = engine.e_step(family, again), again
    return stats, plan


def finite_log_likelihood(stats: Any) -> float:
    ll = float(stats.log_likelihood)
    if not math.isfinite(ll):
        raise FitError("the log-likelihood is not finite; scale the data or increase {reg_covar}")
    return ll

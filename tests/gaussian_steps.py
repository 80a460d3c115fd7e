"""One E-step, one start, one EM run of the Gaussian family, spelled once for the tests.

The library's steps are generic (``emcli.em``: a family object carries the covariance type
and ``reg_covar``; ``Engine.e_step(family, plan)`` returns the family's additive statistics);
these helpers give the Gaussian results the tests compare with their references.
"""

from __future__ import annotations

import numpy as np

from emcli.em import run_em
from emcli.engines.memory import reduce_rows
from emcli.families.gaussian import GaussianFamily, GaussianParams, SufficientStats

REG = 1e-6


def engine_stats(engine, params: GaussianParams, reg_covar: float = REG) -> SufficientStats:
    """The engine's E-step at ``params`` as ``SufficientStats`` about the means (one pass:
    what ``family.m_step`` turns into the next parameters when no re-centred pass is due)."""
    family = GaussianFamily(params.model, reg_covar)
    plan = family.prepare(params, engine.dtype, n_rows=engine.n_samples)
    return family.finish(engine.e_step(family, plan), plan)


def rows_stats(
    x: np.ndarray,
    params: GaussianParams,
    block_size: int | None = None,
    n_threads: int | None = None,
    gaps: bool | None = False,
) -> SufficientStats:
    """``family.e_step`` summed over the rows of ``x`` by ``reduce_rows`` (``gaps=False``:
    complete rows, the kernels), as ``SufficientStats`` about the means."""
    family = GaussianFamily(params.model)
    plan = family.prepare(params, x.dtype.type, n_rows=x.shape[0])
    total = reduce_rows(family, plan, x, gaps=gaps, block_size=block_size, n_threads=n_threads)
    return family.finish(total, plan)


def initial_params(
    x: np.ndarray, k: int, method: str, kind: str, reg_covar: float, rng: np.random.Generator
) -> GaussianParams:
    """The family's starting parameters: labels by ``method``, then one M-step."""
    return GaussianFamily(kind, reg_covar).start(x, k, method, rng)


def gaussian_em(
    engine,
    params: GaussianParams,
    max_iter: int,
    tol: float,
    reg_covar: float,
    accelerate: bool = False,
):
    """EM from ``params`` with the Gaussian family of their covariance type:
    (params, log_likelihood, n_iter, converged, history) as ``emcli.em.run_em``."""
    family = GaussianFamily(params.model, reg_covar)
    return run_em(engine, family, params, max_iter, tol, accelerate=accelerate)

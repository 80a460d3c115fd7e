"""Sufficient statistics of the Gaussian family and its M-step (the plain reference form).

Statistics of component j: N_j = sum r_ij w_i, S_j = sum r_ij w_i (x_i - c_j) and the second
moment T_j about the same centre c_j (the means the E-step used, or the new means on a
re-centred pass), with w_i the frequency weights (1 when there are none).  They add up
across blocks, files and machines.  The M-step turns them into weights, means and the
scatter about the new means, and the covariance model (``models``) turns the scatter into
covariances.

Precision.  T_j / N_j - (m_j - c_j)(m_j - c_j)^T cancels when a component moves far from
c_j relative to its new spread (a component that shrinks onto a far group of rows): the
error of the covariance is about eps (var + shift^2) / (var + reg_covar).  ``needs_recentre``
detects it, and the family then takes the moments again about the new means (a second pass
over the rows with the same responsibilities), so the result is right to rounding.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from .models import CovarianceModel, Scatter
from .params import GaussianParams

Array = NDArray[np.float64]
# scikit-learn guards N_k the same way; it keeps empty components finite (no 0/0).
NK_GUARD = 10.0 * np.finfo(np.float64).eps
# Re-centre when the moments would lose more than about eps * RECENTRE_RATIO relative
# (module docstring): 1e6 keeps the covariance right to ~1e-10.
RECENTRE_RATIO = 1e6


@dataclass
class SufficientStats:
    """Sums over rows that the M-step needs; they add up across blocks, files and machines.

    ``sum_x`` is sum_i w_i r_ij (x_i - center_j) and ``sum_xx`` the matching second moment:
    shape (k, d, d) for models whose ``stats`` is "full", (d, d) summed over components for
    "pooled", (k, d) for "diag".  ``n_samples`` is the total weight of the rows.
    """

    model: CovarianceModel
    centers: Array
    n_k: Array
    sum_x: Array
    sum_xx: Array
    log_likelihood: float
    n_samples: float

    def __add__(self, other: SufficientStats) -> SufficientStats:
        return SufficientStats(
            self.model,
            self.centers,
            self.n_k + other.n_k,
            self.sum_x + other.sum_x,
            self.sum_xx + other.sum_xx,
            self.log_likelihood + other.log_likelihood,
            self.n_samples + other.n_samples,
        )

    @classmethod
    def zeros(cls, model: CovarianceModel, centers: Array) -> SufficientStats:
        k, d = centers.shape
        shape = {"full": (k, d, d), "pooled": (d, d)}.get(model.stats, (k, d))
        return cls(model, centers, np.zeros(k), np.zeros((k, d)), np.zeros(shape), 0.0, 0)


def block_stats(
    x: Array,
    resp: Array,
    centers: Array,
    model: CovarianceModel,
    log_likelihood: float,
    n_samples: float | None = None,
) -> SufficientStats:
    """Sufficient statistics of one block of rows given its responsibilities (b, k), already
    multiplied by the rows' weights when there are any."""
    k, d = centers.shape
    n_k = resp.sum(axis=0)
    # Shifted by the centres' mean: resp.T @ x - n_k * centers cancels for data far from 0
    # (values near 1e8 lose the digits of a small spread); one product, as before.
    shift = centers.mean(axis=0)
    sum_x = resp.T @ (x - shift) - n_k[:, None] * (centers - shift)
    if model.stats in ("full", "pooled"):
        full = np.empty((k, d, d))
        for j in range(k):
            diff = x - centers[j]
            full[j] = (diff * resp[:, j : j + 1]).T @ diff
        sum_xx = full if model.stats == "full" else full.sum(axis=0)
    else:
        sum_xx = np.empty((k, d))
        for j in range(k):
            diff = x - centers[j]
            diff *= diff
            sum_xx[j] = resp[:, j] @ diff
    n = float(x.shape[0]) if n_samples is None else n_samples
    return SufficientStats(model, centers, n_k, sum_x, sum_xx, float(log_likelihood), n)


def scatter(stats: SufficientStats) -> tuple[Array, Array, Scatter]:
    """(weights, means, scatter about the means) from summed statistics."""
    n_k = stats.n_k + NK_GUARD
    shift = stats.sum_x / n_k[:, None]  # new mean - center, small near convergence
    means = stats.centers + shift
    weights = n_k / n_k.sum()
    if stats.model.stats == "full":
        w = stats.sum_xx - n_k[:, None, None] * shift[:, :, None] * shift[:, None, :]
    elif stats.model.stats == "pooled":
        w = stats.sum_xx - (shift * n_k[:, None]).T @ shift
    else:
        w = stats.sum_xx - n_k[:, None] * shift * shift
    return weights, means, Scatter(n_k, w)


def m_step(
    stats: SufficientStats, reg_covar: float, previous: Array | None = None
) -> GaussianParams:
    """New parameters from summed statistics; ``reg_covar`` is added to every diagonal.
    ``previous`` (the covariances of the E-step) starts the iterative M-steps
    (``models``), so that no M-step lowers the expected complete-data log-likelihood.

    Raises:
        FitError: a covariance is not positive definite even with the floor.
    """
    weights, means, s = scatter(stats)
    cov = stats.model.m_step(s, reg_covar, previous)
    return GaussianParams.from_covariances(stats.model, weights, means, cov)


def needs_recentre(stats: SufficientStats, reg_covar: float) -> bool:
    """Whether the moments about ``stats.centers`` lose digits (module docstring)."""
    n_k = stats.n_k + NK_GUARD
    shift = stats.sum_x / n_k[:, None]
    if stats.model.stats == "full":
        second = np.diagonal(stats.sum_xx, axis1=1, axis2=2) / n_k[:, None]
    elif stats.model.stats == "pooled":
        second = np.broadcast_to(np.diag(stats.sum_xx) / n_k.sum(), shift.shape)
    else:
        second = stats.sum_xx / n_k[:, None]
    var = np.maximum(second - shift * shift, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = (var + shift * shift) / (var + reg_covar)
    live = stats.n_k > 1e-300
    return bool(np.any(ratio[live] > RECENTRE_RATIO))


def params_from_labels(
    x: Array,
    labels: NDArray[np.intp],
    centers: Array,
    model: CovarianceModel,
    reg_covar: float,
    weights: Array | None = None,
    exact: bool = False,
) -> GaussianParams:
    """M-step from a hard assignment of rows to components (used by initialisation); the
    moments are taken about ``centers`` (k, d), which an empty group keeps as its mean.
    EVE's and VVE's orientation then takes one sweep from a guess (``models.start_guess``),
    unless ``exact``: then it iterates to its tolerance, as mclust's M-step from its hc
    partition does (the hc start's)."""
    from .models import ORIENTATION_MODELS, start_guess

    resp = np.zeros((x.shape[0], centers.shape[0]))
    resp[np.arange(x.shape[0]), labels] = 1.0 if weights is None else weights
    stats = block_stats(x, resp, centers, model, 0.0)
    if exact or model.mclust not in ORIENTATION_MODELS:
        return m_step(stats, reg_covar)
    return m_step(stats, reg_covar, start_guess(model, scatter(stats)[2], reg_covar))


def params_from_resp(
    x: Array,
    resp: Array,
    model: CovarianceModel,
    reg_covar: float,
    weights: Array | None = None,
) -> GaussianParams:
    """M-step from responsibilities (n, k) of complete rows, moments about the groups' own
    means."""
    if weights is not None:
        resp = resp * weights[:, None]
    n_k = resp.sum(axis=0)
    centers = (resp.T @ x) / np.maximum(n_k, NK_GUARD)[:, None]
    return m_step(block_stats(x, resp, centers, model, 0.0), reg_covar)

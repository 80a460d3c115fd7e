"""Parameters of a Student-t mixture, its log-density constants and the degrees-of-freedom step.

Component j is a multivariate t with location mu_j, scale matrix Sigma_j and nu_j degrees of
freedom (scipy's ``multivariate_t(loc=mu_j, shape=Sigma_j, df=nu_j)``)::

    log t(x | j) = lgamma((nu + d) / 2) - lgamma(nu / 2) - d/2 log(nu pi) - 1/2 log det Sigma
                   - (nu + d) / 2 log(1 + delta / nu),      delta = (x - mu)' Sigma^-1 (x - mu)

so the density is a function of the Mahalanobis distance delta the Gaussian family already
computes.  The scale matrices follow the covariance model of the Gaussian family (its
``models.MODELS`` row: storage form, constraints, M-step); the locations, scales and their
precision Cholesky factors are kept in a ``GaussianParams`` (``gauss``), whose
``covariances`` are the scale matrices (not the covariances nu / (nu - 2) Sigma of the t).

Degrees of freedom (Peel & McLachlan 2000, ECM): given the E-step's weights
u_ij = (nu_j + d) / (nu_j + delta_ij), nu_j solves

    log(nu / 2) - psi(nu / 2) + 1 + sum_i r_ij (log u_ij - u_ij + psi((nu_old + d) / 2)
                                   - log((nu_old + d) / 2)) / sum_i r_ij = 0,

a decreasing function of nu (the expected complete-data log-likelihood is concave in nu),
so the root clamped to ``DF_BOUNDS`` is the maximiser over the bounded range and the
likelihood never decreases.  With ``df_shared`` the sums run over every component.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ..gaussian.models import CovarianceModel
from ..gaussian.params import GaussianParams, log_det_cholesky
from .special import log_gamma_ratio, log_minus_digamma, log_minus_digamma_scalar

Array = NDArray[np.float64]
LOG_PI = math.log(math.pi)
# The range estimated degrees of freedom are kept in (documented in docs/t.md): below 0.5
# the location is barely identified; above 1000 a t is a Gaussian to ~1e-3 in log-density.
DF_BOUNDS = (0.5, 1000.0)
# Where estimated degrees of freedom start (teigen starts at 50; 10 is heavy enough that a
# Gaussian-looking start does not fix the tails, light enough for k-means starts).
DF_START = 10.0
# Above this, lgamma((nu + d)/2) - lgamma(nu/2) is taken through betaln (no cancellation).
_LARGE_HALF_DF = 100.0


@dataclass(frozen=True)
class TParams:
    """Parameters of a t mixture.

    Attributes:
        gauss: weights, locations (``means``), scale matrices (``covariances``, native shape
            of the covariance model) and their precision Cholesky factors.
        df: degrees of freedom of each component, shape (n_components,).
    """

    gauss: GaussianParams
    df: Array

    @classmethod
    def from_scales(
        cls, model: CovarianceModel | str, weights: Array, means: Array, scales: Array, df: Array
    ) -> TParams:
        """Build parameters (``FitError`` when a scale matrix is not positive definite)."""
        gauss = GaussianParams.from_covariances(model, weights, means, scales)
        return cls(gauss, np.asarray(df, dtype=np.float64).reshape(-1))

    # The Gaussian parameters' figures, so that code reading a model's parameters
    # (describe, plot, the summary) reads a t model the same way.
    @property
    def model(self) -> CovarianceModel:
        return self.gauss.model

    @property
    def model_name(self) -> str:
        return self.gauss.model_name

    @property
    def weights(self) -> Array:
        return self.gauss.weights

    @property
    def means(self) -> Array:
        return self.gauss.means

    @property
    def covariances(self) -> Array:
        """The scale matrices Sigma_j in the covariance model's native shape."""
        return self.gauss.covariances

    @property
    def precisions_cholesky(self) -> Array:
        return self.gauss.precisions_cholesky

    @property
    def covariance_type(self) -> str:
        return self.gauss.covariance_type

    @property
    def form(self) -> str:
        return self.gauss.form

    @property
    def n_components(self) -> int:
        return self.gauss.n_components

    @property
    def n_features(self) -> int:
        return self.gauss.n_features

    def full_covariances(self) -> Array:
        """The scale matrices as k full (d x d) matrices."""
        return self.gauss.full_covariances()

    def permuted(self, order: NDArray[np.intp]) -> TParams:
        return TParams(self.gauss.permuted(order), self.df[order])


def half_log_gamma_ratio(df: Array, n_obs: Array | float) -> Array:
    """lgamma((df + n) / 2) - lgamma(df / 2), broadcast, accurate for any df > 0."""
    return log_gamma_ratio(0.5 * np.asarray(df, dtype=np.float64), 0.5 * np.asarray(n_obs))


def log_norm(df: Array, n_obs: Array | float, half_log_det: Array) -> Array:
    """The log normalising constant of a t in ``n_obs`` dimensions; ``half_log_det`` is
    -1/2 log det Sigma (of the observed block)."""
    df = np.asarray(df, dtype=np.float64)
    n_obs = np.asarray(n_obs, dtype=np.float64)
    return half_log_gamma_ratio(df, n_obs) - 0.5 * n_obs * (np.log(df) + LOG_PI) + half_log_det


def component_log_norm(params: TParams) -> Array:
    """log normalising constant of each component over all d coordinates, shape (k,)."""
    return log_norm(params.df, float(params.n_features), log_det_cholesky(params.gauss))


def log_t_from_delta(delta: Array, df: Array, n_obs: Array | float, const: Array) -> Array:
    """log t(x_i | j) from the Mahalanobis distances ``delta`` (b, k); ``const`` (b, k) or
    (k,) from ``log_norm``; ``n_obs`` the observed coordinates of each row ((b, 1) or a
    number)."""
    return const - 0.5 * (df + n_obs) * np.log1p(delta / df)


def df_target(df: Array, n_obs: Array | float) -> Array:
    """psi((nu + n) / 2) - log((nu + n) / 2): the E-step's part of E[log tau] - log u."""
    return -log_minus_digamma(0.5 * (np.asarray(df, dtype=np.float64) + n_obs))


def _g(nu: float) -> float:
    # log(nu / 2) - psi(nu / 2): positive and decreasing in nu.
    return log_minus_digamma_scalar(0.5 * nu)


def solve_df(mean_term: Array, bounds: tuple[float, float] = DF_BOUNDS) -> Array:
    """For each value of ``mean_term``, the nu in ``bounds`` that solves
    log(nu/2) - psi(nu/2) + 1 + mean_term = 0: the maximiser of the concave expected
    log-likelihood over the range (a bound when the root lies outside it).  ``mean_term`` is
    sum r (log u - u + psi - log) / sum r (at most -1 up to rounding)."""
    lo, hi = bounds
    g_lo, g_hi = _g(lo), _g(hi)
    out = []
    for value in np.asarray(mean_term, dtype=np.float64).reshape(-1).tolist():
        target = -1.0 - value
        if not math.isfinite(target) or target <= g_hi:
            out.append(hi)  # no root below hi: tails as light as the range allows
        elif target >= g_lo:
            out.append(lo)
        else:
            out.append(_root(target, math.log(lo), math.log(hi), g_lo - target, g_hi - target))
    return np.array(out)


def _root(target: float, a: float, b: float, fa: float, fb: float) -> float:
    """The root in s = log nu of g(e^s) - target, bracketed by fa > 0 > fb (Illinois)."""
    side = 0
    c = a
    for _ in range(200):
        c = (a * fb - b * fa) / (fb - fa)
        fc = _g(math.exp(c)) - target
        if fc == 0.0 or abs(b - a) < 1e-13:
            break
        if fc < 0.0:
            b, fb = c, fc
            if side == -1:
                fa *= 0.5
            side = -1
        else:
            a, fa = c, fc
            if side == 1:
                fb *= 0.5
            side = 1
    return math.exp(c)

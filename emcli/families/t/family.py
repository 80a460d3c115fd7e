"""The Student-t family: the ``families.base.Family`` contract for mixtures of multivariate t.

EM (ECM, Peel & McLachlan 2000) with the latent scale tau_i of each row: given component j,
x_i | tau ~ N(mu_j, Sigma_j / tau) and tau ~ Gamma(nu_j / 2, nu_j / 2).  The E-step gives
the responsibilities r_ij and the expected scales u_ij = E[tau | x_i, j] =
(nu_j + d) / (nu_j + delta_ij); the M-step is the Gaussian M-step on u-weighted moments::

    mu_j    = sum_i r u x / sum_i r u
    Sigma_j = (the covariance model's step on) sum_i r u (x - mu)(x - mu)' / sum_i r
    w_j     = sum_i r / n

and nu_j by a 1-D root (``params.solve_df``).  All of it is reused from the Gaussian family
through its public pieces: the kernels give the Mahalanobis distances of complete rows (the
Gaussian log-density minus its constant) and take the u-weighted responsibilities for their
moment products; ``GaussianStats`` and ``GaussianFamily.finish`` add the moments up;
``stats.scatter`` and the covariance model's ``m_step`` (``models.MODELS``) give the scale
matrices under every covariance model.  Rows with gaps take ``terms.py``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ...errors import UsageError
from ..gaussian import kernels
from ..gaussian.family import (
    GAP_SPLIT_FRACTION,
    GaussianFamily,
    GaussianPlan,
    GaussianStats,
    collapsed_components,
    reference_rows,
)
from ..gaussian.models import CovarianceModel, Scatter
from ..gaussian.params import GaussianParams, log_weights, normalise_log_prob
from ..gaussian.stats import NK_GUARD, SufficientStats, needs_recentre, scatter
from .params import DF_BOUNDS, DF_START, LOG_PI, TParams, df_target, half_log_gamma_ratio
from .terms import terms

Array = NDArray[np.float64]
# Components with more degrees of freedom than this take log1p(delta / nu) (exact for any
# nu) instead of log(nu + delta) - log(nu), which loses ~log10(nu) digits of a small term.
_LOG1P_DF = 1e4


@dataclass(frozen=True)
class TPlan:
    """One E-step's precomputed values.

    ``kernel`` is the Gaussian kernels' plan for complete rows (built with equal weights, so
    its constants give the Mahalanobis distances back exactly), None on a re-centred pass,
    whose moments are taken about ``centers`` by the plain path.  ``ratio`` and ``target``
    (d + 1, k) tabulate lgamma((nu + n)/2) - lgamma(nu/2) and psi((nu + n)/2) -
    log((nu + n)/2) for n = 0..d observed coordinates.
    """

    params: TParams
    kernel: kernels.Plan | None
    gauss_plan: GaussianPlan
    ratio: Array
    target: Array
    centers: Array | None = None


@dataclass
class TStats:
    """Additive statistics: the Gaussian family's moments of the u-weighted responsibilities
    (``gauss``), the responsibility mass ``n_r`` = sum_i w_i r_ij, the degrees-of-freedom
    term ``df_term`` = sum_i w_i r_ij (log u - u + psi((nu + d_i)/2) - log((nu + d_i)/2)), the
    log-likelihood and the total weight."""

    gauss: GaussianStats
    n_r: Array
    df_term: Array
    log_likelihood: float
    n_samples: float

    def __add__(self, other: TStats) -> TStats:
        return TStats(
            self.gauss + other.gauss,
            self.n_r + other.n_r,
            self.df_term + other.df_term,
            self.log_likelihood + other.log_likelihood,
            self.n_samples + other.n_samples,
        )

    def __iadd__(self, other: TStats) -> TStats:
        self.gauss += other.gauss
        self.n_r = self.n_r + other.n_r
        self.df_term = self.df_term + other.df_term
        self.log_likelihood += other.log_likelihood
        self.n_samples += other.n_samples
        return self


def _tables(df: Array, d: int) -> tuple[Array, Array]:
    n = np.arange(d + 1, dtype=np.float64)[:, None]
    return half_log_gamma_ratio(df[None, :], n), df_target(df[None, :], n)


def _log_norm(params: TParams, ratio: Array, n_obs: Array, half_log_det: Array) -> Array:
    """log normalising constants (b, k) for rows with ``n_obs`` (b,) observed coordinates."""
    n = n_obs.astype(np.intp)
    return ratio[n] - 0.5 * n_obs[:, None] * (np.log(params.df)[None, :] + LOG_PI) + half_log_det


class TFamily:
    """Mixtures of multivariate t distributions (module docstring).

    Args:
        covariance_type: the covariance model of the scale matrices (the Gaussian family's
            ``models.MODELS``: full, tied, diag, spherical, or mclust's names).
        reg_covar: added to the diagonal of every scale matrix.
        df: fixed degrees of freedom for every component (None: estimated, in
            ``DF_BOUNDS``).
        df_shared: one estimated degrees of freedom for all components.
    """

    name = "t"
    # Settings this family takes beyond covariance_type and reg_covar (api.fit passes them).
    options = ("df", "df_shared")

    def __init__(
        self,
        covariance_type: str | CovarianceModel = "full",
        reg_covar: float = 1e-6,
        df: float | None = None,
        df_shared: bool = False,
    ) -> None:
        self._gauss = GaussianFamily(covariance_type, reg_covar)
        self.model = self._gauss.model
        self.reg_covar = self._gauss.reg_covar
        if df is not None:
            if isinstance(df, bool) or not isinstance(df, (int, float)):
                raise UsageError(f"{{df}} must be a number > 0, not {df!r}")
            if not (math.isfinite(df) and df > 0):
                raise UsageError("{df} must be a finite number > 0")
            if df_shared:
                raise UsageError(
                    "{df} fixes the degrees of freedom of every component; leave "
                    "{df_shared} out (it ties estimated ones)"
                )
        self.df = None if df is None else float(df)
        self.df_shared = bool(df_shared)

    def __repr__(self) -> str:
        return (
            f"TFamily({self.model.name!r}, reg_covar={self.reg_covar!r}, df={self.df!r}, "
            f"df_shared={self.df_shared!r})"
        )

    @property
    def estimates_df(self) -> bool:
        return self.df is None

    def _df0(self, k: int) -> Array:
        return np.full(k, DF_START if self.df is None else self.df)

    def _with_df(self, gauss: GaussianParams) -> TParams:
        return TParams(gauss, self._df0(gauss.n_components))

    # ---------------------------------------------------------------- one iteration
    def prepare(self, params: TParams, dtype: Any = np.float64, n_rows: int | None = None) -> TPlan:
        g = params.gauss
        k = g.n_components
        # Equal weights in the kernels' plan: their constant is then -log k + log det P -
        # d/2 log 2 pi whatever the mixing weights (finite for an empty component too).
        flat = GaussianParams(g.model, np.full(k, 1.0 / k), g.means, g.covariances,
                              g.precisions_cholesky)  # fmt: skip
        kernel = kernels.make_plan(flat, dtype, n_rows=n_rows)
        ratio, target = _tables(params.df, g.n_features)
        return TPlan(params, kernel, GaussianPlan(flat, kernel), ratio, target)

    def block_rows(self, plan: TPlan) -> int:
        return self._gauss.block_rows(plan.gauss_plan)

    def e_step(
        self, x: Array, plan: TPlan, weights: Array | None = None, gaps: bool | None = None
    ) -> TStats:
        """Statistics of a block (complete rows: the kernels; gaps or a re-centred pass: the
        plain path of ``terms.py``)."""
        if plan.kernel is None:
            return self._plain(x, plan, weights)
        if gaps is None:
            gaps = bool(np.isnan(x).any())
        if not gaps:
            return self._fast(x, plan, weights)
        rows = np.isnan(x).any(axis=1)
        if rows.mean() > GAP_SPLIT_FRACTION:
            return self._plain(x, plan, weights)
        fast_w = None if weights is None else weights[~rows]
        slow_w = None if weights is None else weights[rows]
        return self._fast(x[~rows], plan, fast_w) + self._plain(x[rows], plan, slow_w)

    def _fast(self, x: Array, plan: TPlan, weights: Array | None) -> TStats:
        """Complete rows: the Gaussian kernels' products, with u-weighted responsibilities."""
        kp = plan.kernel
        assert kp is not None
        params = plan.params
        k, d, b = params.n_components, params.n_features, x.shape[0]
        n = float(b) if weights is None else float(np.sum(weights))
        ws = kernels.workspace()
        f = kernels.features(kp, x, ws)
        lp = kernels.log_prob_block(kp, f, ws)  # (k, b) rows in kp.order: const - delta / 2
        order = kp.order
        nu = params.df[order][:, None]
        half = 0.5 * (nu + d)
        # nu + delta, delta = 2 (const - lp) the Mahalanobis distance
        shifted = ws.get("t_delta", (k, b), np.float64)
        np.subtract(kp.const[order][:, None], lp, out=shifted)
        shifted *= 2.0
        shifted += nu
        # log t + log w = c_j - (nu + d)/2 log(nu + delta), c_j = const_j + (nu + d)/2 log nu:
        # one log per (row, component), kept for the df term (log u = log(nu + d) - it).
        log_s = ws.get("t_log", (k, b), np.float64)
        np.log(shifted, out=log_s)
        lt = ws.get("t_lt", (k, b), kp.dtype)
        np.multiply(log_s, -half, out=lt, casting="unsafe")
        lt += (self._block_const(plan)[order][:, None] + half * np.log(nu)).astype(kp.dtype)
        big = np.flatnonzero(nu[:, 0] > _LOG1P_DF)
        if big.size:  # nu so large that log(nu + delta) - log(nu) would lose the digits
            lt[big] = self._block_const(plan)[order][big, None] - half[big] * np.log1p(
                (shifted[big] - nu[big]) / nu[big]
            )
        norm = kernels.log_sum_exp_t(lt, ws)  # lt now holds the responsibilities
        if weights is None:
            ll = float(np.add.reduce(norm, dtype=np.float64))
        else:
            lt *= weights.astype(kp.dtype, copy=False)[None, :]
            ll = float(np.dot(norm.astype(np.float64), weights))
        u = shifted  # u = (nu + d) / (nu + delta), in place
        np.divide(nu + d, shifted, out=u)
        n_r = np.empty(k)
        n_r[order] = np.add.reduce(lt, axis=1, dtype=np.float64)
        df_term = np.zeros(k)
        if self.estimates_df:
            # sum r (log u - u) = log(nu + d) n_r - sum r log(nu + delta) - sum r u
            wide = None if kp.dtype == np.float64 else np.float64  # float32: sum in float64
            r_log = np.einsum("kb,kb->k", lt, log_s, dtype=wide)
            r_u = np.einsum("kb,kb->k", lt, u, dtype=wide)
            df_term[order] = np.log(nu[:, 0] + d) * n_r[order] - r_log - r_u
            df_term += n_r * plan.target[d]
        lt *= u.astype(kp.dtype, copy=False)
        g, ex = kernels.raw_from_resp(kp, f, lt, ws)
        return TStats(GaussianStats([g, ex], n, None, ll, n), n_r, df_term, ll, n)

    def _block_const(self, plan: TPlan) -> Array:
        """log w_j + the log normalising constant of component j over all d coordinates."""
        params = plan.params
        d = params.n_features
        kp = plan.kernel
        assert kp is not None
        # kp.const = -log k + log det P_j - d/2 log 2 pi (equal weights, see prepare)
        half_log_det = kp.const + math.log(params.n_components) + 0.5 * d * math.log(2 * math.pi)
        with np.errstate(divide="ignore"):
            log_w = np.log(params.weights)
        return plan.ratio[d] - 0.5 * d * (np.log(params.df) + LOG_PI) + half_log_det + log_w

    def _plain(self, x: Array, plan: TPlan, weights: Array | None) -> TStats:
        params = plan.params
        centers = params.means if plan.centers is None else plan.centers
        x = np.asarray(x, dtype=np.float64)
        k = params.n_components
        moments = SufficientStats.zeros(params.model, centers)
        n_r, df_term, ll = np.zeros(k), np.zeros(k), 0.0
        size = reference_rows(k, params.n_features)
        for s in range(0, x.shape[0], size):
            w = None if weights is None else weights[s : s + size]
            part, nr, dt, block_ll = self._plain_block(x[s : s + size], plan, w, centers)
            moments = moments + part
            n_r, df_term, ll = n_r + nr, df_term + dt, ll + block_ll
        n = float(x.shape[0]) if weights is None else float(np.sum(weights))
        moments.log_likelihood, moments.n_samples = ll, n
        return TStats(GaussianStats(None, 0.0, moments, ll, n), n_r, df_term, ll, n)

    def _plain_block(
        self, x: Array, plan: TPlan, weights: Array | None, centers: Array
    ) -> tuple[SufficientStats, Array, Array, float]:
        params = plan.params
        k, d = params.n_components, params.n_features
        t = terms(x, params, moments=True)
        nu = params.df[None, :]
        n_obs = t.n_obs[:, None]
        lt = _log_norm(params, plan.ratio, t.n_obs, t.half_log_det)
        lt -= 0.5 * (nu + n_obs) * np.log1p(t.delta / nu)
        log_resp, norm = normalise_log_prob(lt + log_weights(params.gauss)[None, :])
        empty = t.n_obs == 0
        norm[empty] = 0.0  # nothing observed: density 1, no information
        r = np.exp(log_resp)
        r[empty] = 0.0
        if weights is not None:
            r *= weights[:, None]
            ll = float(norm @ weights)
        else:
            ll = float(norm.sum())
        u = (nu + n_obs) / (nu + t.delta)
        df_term = np.zeros(k)
        if self.estimates_df:
            target = plan.target[t.n_obs.astype(np.intp)]
            df_term = np.einsum("bk,bk->k", r, np.log(u) - u + target)
        ru = r * u
        assert t.xhat is not None
        dev = t.xhat - centers[None]  # (b, k, d)
        sum_x = np.einsum("bk,bkd->kd", ru, dev)
        stat = params.model.stats
        if stat == "diag":
            assert t.cond is not None
            sum_xx = np.einsum("bk,bkd->kd", ru, dev * dev) + np.einsum("bk,bkd->kd", r, t.cond)
        else:
            full = np.empty((k, d, d))
            for j in range(k):
                full[j] = (dev[:, j] * ru[:, j, None]).T @ dev[:, j]
            for rows, cond in t.cond_parts or ():
                full += r[rows].sum(axis=0)[:, None, None] * cond
            sum_xx = full if stat == "full" else full.sum(axis=0)
        part = SufficientStats(params.model, centers, ru.sum(axis=0), sum_x, sum_xx, ll, 0.0)
        return part, r.sum(axis=0), df_term, ll

    def _finish(self, stats: TStats, plan: TPlan) -> SufficientStats:
        return self._gauss.finish(stats.gauss, plan.gauss_plan)

    def refine(self, stats: TStats, plan: TPlan) -> TPlan | None:
        """A re-centred pass when the u-weighted moments lost digits (as the Gaussian's)."""
        if plan.centers is not None:
            return None
        total = self._finish(stats, plan)
        if not needs_recentre(total, self.reg_covar):
            return None
        means = total.centers + total.sum_x / (total.n_k + 1e-300)[:, None]
        flat = plan.gauss_plan.params
        return TPlan(
            plan.params, None, GaussianPlan(flat, None, means), plan.ratio, plan.target, means
        )

    def m_step(self, stats: TStats, plan: TPlan) -> TParams:
        total = self._finish(stats, plan)
        _, means, s = scatter(total)  # u-weighted: means = sum r u x / sum r u
        n_r = stats.n_r + NK_GUARD
        scales = self.model.m_step(Scatter(n_r, s.w), self.reg_covar, plan.params.gauss.covariances)
        weights = n_r / n_r.sum()
        df = self._df_step(stats, plan.params.df)
        return TParams.from_scales(self.model, weights, means, scales, df)

    def _df_step(self, stats: TStats, old: Array) -> Array:
        from .params import solve_df

        k = old.shape[0]
        if self.df is not None:
            return np.full(k, self.df)
        if self.df_shared:
            mass = float(stats.n_r.sum())
            if not mass > 0:
                return old.copy()
            return np.full(k, float(solve_df(np.array([stats.df_term.sum() / mass]))[0]))
        live = stats.n_r > 1e-10 * max(float(stats.n_samples), 1e-300)
        out = old.copy()
        if live.any():
            out[live] = solve_df(stats.df_term[live] / stats.n_r[live])
        return out

    # ---------------------------------------------------------------- applying
    def log_resp_and_norm(self, x: Array, params: TParams) -> tuple[Array, Array]:
        x = np.asarray(x, dtype=np.float64)
        n, k = x.shape[0], params.n_components
        log_resp, norm = np.empty((n, k)), np.empty(n)
        size = reference_rows(k, params.n_features)
        log_w = log_weights(params.gauss)[None, :]
        for s in range(0, n, size):
            lt, empty = self._log_t(x[s : s + size], params)
            lr, nm = normalise_log_prob(lt + log_w)
            lr[empty], nm[empty] = log_w[0], 0.0
            log_resp[s : s + size], norm[s : s + size] = lr, nm
        return log_resp, norm

    def _log_t(self, x: Array, params: TParams) -> tuple[Array, NDArray[np.bool_]]:
        """log t(x_i | j) over the observed cells, shape (b, k); rows with none observed."""
        lt, empty, _ = self._log_t_terms(x, params)
        return lt, empty

    def _log_t_terms(self, x: Array, params: TParams):
        t = terms(x, params)
        ratio, _ = _tables(params.df, params.n_features)
        nu = params.df[None, :]
        lt = _log_norm(params, ratio, t.n_obs, t.half_log_det)
        lt -= 0.5 * (nu + t.n_obs[:, None]) * np.log1p(t.delta / nu)
        empty = t.n_obs == 0
        lt[empty] = 0.0
        return lt, empty, t

    def log_prob(self, x: Array, params: TParams) -> Array:
        x = np.asarray(x, dtype=np.float64)
        size = reference_rows(params.n_components, params.n_features)
        parts = [self._log_t(x[s : s + size], params)[0] for s in range(0, x.shape[0], size)]
        return np.concatenate(parts) if parts else np.empty((0, params.n_components))

    def outlier_scores(self, x: Array, params: TParams) -> tuple[NDArray[np.intp], Array, Array]:
        """(label, u, log-density) of each row: its most likely component, the expected
        weight u = (nu + d_o) / (nu + delta) of the row under that component (small for a row
        the fit discounts), and the row's log-density under the mixture."""
        x = np.asarray(x, dtype=np.float64)
        n, k = x.shape[0], params.n_components
        labels, u, norm = np.empty(n, dtype=np.intp), np.empty(n), np.empty(n)
        size = reference_rows(k, params.n_features)
        log_w = log_weights(params.gauss)[None, :]
        for s in range(0, n, size):
            xb = x[s : s + size]
            lt, empty, t = self._log_t_terms(xb, params)
            lr, nm = normalise_log_prob(lt + log_w)
            nm[empty] = 0.0
            lab = np.argmax(lr, axis=1)
            nu, delta = params.df[lab], t.delta[np.arange(xb.shape[0]), lab]
            labels[s : s + size] = lab
            u[s : s + size] = (nu + t.n_obs) / (nu + delta)
            norm[s : s + size] = nm
        return labels, u, norm

    def impute(self, x: Array, params: TParams) -> Array:
        """Missing cells replaced by sum_j r_ij E[x_m | x_o, j] (the conditional mean of a t
        is that of the Gaussian with its scale; the responsibilities are the t's)."""
        out = np.array(x, dtype=np.float64, copy=True)
        rows = np.flatnonzero(np.isnan(out).any(axis=1))
        size = reference_rows(params.n_components, params.n_features)
        for s in range(0, rows.size, size):
            idx = rows[s : s + size]
            t = terms(out[idx], params, moments=True)
            resp = np.exp(self.log_resp_and_norm(out[idx], params)[0])
            assert t.xhat is not None
            filled = np.einsum("bk,bkd->bd", resp, t.xhat)
            out[idx] = np.where(np.isnan(out[idx]), filled, out[idx])
        return out

    def sample(
        self, params: TParams, n_samples: int, rng: np.random.Generator
    ) -> tuple[Array, NDArray[np.int64]]:
        """Rows drawn from the mixture: mu_j + (Gaussian draw - mu_j) / sqrt(g / nu_j), g a
        chi-square draw with nu_j degrees of freedom, one per row."""
        from ..gaussian.sampling import sample_blocks

        parts = []
        for x, comp in sample_blocks(params.gauss, n_samples, rng):
            nu = params.df[comp]
            scale = np.sqrt(rng.chisquare(nu) / nu)
            mu = params.means[comp]
            parts.append((mu + (x - mu) / scale[:, None], comp))
        if not parts:
            return np.empty((0, params.n_features)), np.empty(0, dtype=np.int64)
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    # ---------------------------------------------------------------- starts, checks
    def start(
        self,
        x: Array,
        n_components: int,
        method: str,
        rng: np.random.Generator,
        weights: Array | None = None,
    ) -> TParams:
        return self._with_df(self._gauss.start(x, n_components, method, rng, weights))

    def from_responsibilities(self, x: Array, resp: Array, weights: Array | None = None) -> TParams:
        return self._with_df(self._gauss.from_responsibilities(x, resp, weights))

    def reference_scale(self, x: Array) -> Array:
        return self._gauss.reference_scale(x)

    def collapsed(self, params: TParams, scale: Array, total_weight: float) -> list[int]:
        bad = set(collapsed_components(params.gauss, self.reg_covar, scale))
        bad |= {int(j) for j in np.flatnonzero(params.weights * total_weight < 1.0)}
        return sorted(bad)

    def canonical_order(self, params: TParams) -> NDArray[np.intp]:
        return self._gauss.canonical_order(params.gauss)

    def permute(self, params: TParams, order: NDArray[np.intp]) -> TParams:
        return params.permuted(order)

    def n_parameters(self, params: TParams) -> int:
        k = params.n_components
        n_df = 0 if self.df is not None else (1 if self.df_shared else k)
        return self._gauss.n_parameters(params.gauss) + n_df

    def n_components(self, params: TParams) -> int:
        return params.n_components

    def mixing_weights(self, params: TParams) -> Array:
        return params.weights

    def notes(self, variances: Array, names: Sequence[str]) -> list[str]:
        return self._gauss.notes(variances, names)

    # ---------------------------------------------------------------- vectors (SQUAREM)
    def to_vector(self, params: TParams) -> Array:
        theta = self._gauss.to_vector(params.gauss)
        if self.estimates_df:
            theta = np.concatenate([theta, np.log(params.df)])
        return theta

    def from_vector(self, theta: Array, like: TParams) -> TParams | None:
        k = like.n_components
        if self.estimates_df:
            gauss = self._gauss.from_vector(theta[:-k], like.gauss)
            if gauss is None or not np.all(np.isfinite(theta[-k:])):
                return None
            df = np.clip(np.exp(theta[-k:]), *DF_BOUNDS)
        else:
            gauss = self._gauss.from_vector(theta, like.gauss)
            if gauss is None:
                return None
            df = like.df.copy()
        return TParams(gauss, df)

    # ---------------------------------------------------------------- model file
    def settings(self) -> dict[str, Any]:
        return {**self._gauss.settings(), "df": self.df, "df_shared": self.df_shared}

    def params_to_dict(self, params: TParams) -> dict[str, Any]:
        out = self._gauss.params_to_dict(params.gauss)
        out["df"] = params.df.tolist()
        return out

    def params_from_dict(self, data: dict[str, Any], schema_version: int) -> TParams:
        from ..gaussian.modelfile import numbers

        gauss = self._gauss.params_from_dict(data, schema_version)
        if "df" not in data:
            raise ValueError('a model of family "t" needs "df", its degrees of freedom')
        df = numbers(data, "df", 1)
        if df.shape != (gauss.n_components,):
            raise ValueError(f"df must hold {gauss.n_components} numbers, one per component")
        if not np.all(df > 0):
            raise ValueError("df must be numbers > 0")
        return TParams(gauss, df)

    def describe(self, params: TParams, columns: Sequence[str]) -> list[dict[str, Any]]:
        rows = self._gauss.describe(params.gauss, columns)
        for j, row in enumerate(rows):
            row["df"] = float(params.df[j])
        return rows

"""The Gaussian family: the ``families.base.Family`` contract for Gaussian mixtures.

Complete rows take the kernels (``kernels.py``: a few BLAS products per block, raw sums
turned into statistics once per E-step); rows with missing cells take the marginal
densities of ``missing.py``; both add up into one ``GaussianStats``.  The covariance model
(``models.py``) decides the shapes and the covariance M-step.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ...errors import FitError
from . import kernels, missing
from .models import CovarianceModel, covariance_model, from_full, has_form, native_shape
from .params import GaussianParams, log_weights
from .stats import SufficientStats, m_step, needs_recentre, params_from_labels

Array = NDArray[np.float64]
COLLAPSE_TOL = 1e-8
# A block where more than this fraction of rows has gaps takes the gap path whole: measured
# here (1e5 x 10, k = 5), splitting paid at 9% of rows with gaps (1.4-2.5x faster) and cost
# more than it saved at 40% for full/tied.
GAP_SPLIT_FRACTION = 0.25
# Reference (plain) paths hold (rows x k x d) temporaries: about this many elements.
_REFERENCE_ELEMENTS = 1 << 19
# Up to this many complete rows in memory, EM takes the fused loop (``small.py``): a kernel
# plan costs more to make than the kernels save on a few thousand rows (measured on
# faithful, 272 x 2, k = 3: about 4x less time per iteration).
SMALL_ROWS = 4096


def reference_rows(n_components: int, n_features: int) -> int:
    """Rows per block of the plain paths so that (rows x k x d) stays about 4 MB."""
    rows = _REFERENCE_ELEMENTS // max(1, n_components * n_features)
    return int(min(65536, max(256, rows)))


@dataclass(frozen=True)
class GaussianPlan:
    """One E-step's precomputed values.

    ``centers`` is None on a normal pass (moments about the means, through the kernels);
    on a re-centred pass (``GaussianFamily.refine``) the moments are taken about these
    (k, d) centres by the plain path.
    """

    params: GaussianParams
    kernel: kernels.Plan | None
    centers: Array | None = None
    recentred: bool = False  # a second pass about better centres (``refine``)


@dataclass
class GaussianStats:
    """Additive statistics of the Gaussian family: raw kernel sums of complete rows (turned
    into ``SufficientStats`` once, in ``GaussianFamily.finish``) plus moments from the plain
    and gap paths."""

    raw: list[Array] | None
    n_raw: float
    moments: SufficientStats | None
    log_likelihood: float
    n_samples: float
    _finished: SufficientStats | None = field(default=None, repr=False, compare=False)

    def __add__(self, other: GaussianStats) -> GaussianStats:
        out = GaussianStats(None, 0.0, None, 0.0, 0.0)
        out.raw = _add_raw(self.raw, other.raw, in_place=False)
        return _add_rest(out, self, other)

    def __iadd__(self, other: GaussianStats) -> GaussianStats:
        # The first block's arrays are its own (fresh from the kernels): summed in place.
        self.raw = _add_raw(self.raw, other.raw, in_place=True)
        return _add_rest(self, self, other)


def _add_raw(a: list[Array] | None, b: list[Array] | None, in_place: bool) -> list[Array] | None:
    if a is None or b is None:
        return a if b is None else (b if in_place else [v.copy() for v in b])
    if in_place:
        a[0] += b[0]
        a[1] += b[1]
        return a
    return [a[0] + b[0], a[1] + b[1]]


def _add_rest(out: GaussianStats, a: GaussianStats, b: GaussianStats) -> GaussianStats:
    out.n_raw = a.n_raw + b.n_raw
    if a.moments is None or b.moments is None:
        out.moments = a.moments if b.moments is None else b.moments
    else:
        out.moments = a.moments + b.moments
    out.log_likelihood = a.log_likelihood + b.log_likelihood
    out.n_samples = a.n_samples + b.n_samples
    return out


class GaussianFamily:
    """Gaussian mixtures with one covariance model and a covariance floor ``reg_covar``."""

    name = "gaussian"

    def __init__(
        self, covariance_type: str | CovarianceModel = "full", reg_covar: float = 1e-6
    ) -> None:
        try:
            self.model = covariance_model(covariance_type)
        except ValueError as exc:
            from ...errors import UsageError

            raise UsageError(str(exc).replace("covariance type", "{covariance_type}")) from None
        if not (reg_covar >= 0 and math.isfinite(reg_covar)):
            from ...errors import UsageError

            raise UsageError("{reg_covar} must be a finite number >= 0")
        self.reg_covar = float(reg_covar)

    def __repr__(self) -> str:
        return f"GaussianFamily({self.model.name!r}, reg_covar={self.reg_covar!r})"

    # ---------------------------------------------------------------- one iteration
    def prepare(
        self, params: GaussianParams, dtype: Any = np.float64, n_rows: int | None = None
    ) -> GaussianPlan:
        return GaussianPlan(params, kernels.make_plan(params, dtype, n_rows=n_rows))

    def block_rows(self, plan: GaussianPlan) -> int:
        p = plan.kernel
        if p is None:
            return reference_rows(plan.params.n_components, plan.params.n_features)
        return kernels.block_rows_for(p.kind, p.k, p.d, p.direct)

    def e_step(
        self, x: Array, plan: GaussianPlan, weights: Array | None = None, gaps: bool | None = None
    ) -> GaussianStats:
        """Statistics of a block (complete rows: kernels; rows with gaps: ``missing``)."""
        n = float(x.shape[0]) if weights is None else float(np.sum(weights))
        if plan.kernel is None:  # a re-centred pass: the plain path, moments about centres
            return self._plain(x, plan, weights)
        if gaps is None:
            gaps = bool(np.isnan(x).any())
        if not gaps:
            g, ex, ll = kernels.block_raw(plan.kernel, x, weights)
            return GaussianStats([g, ex], n, None, ll, n)
        rows = np.isnan(x).any(axis=1)
        if rows.mean() > GAP_SPLIT_FRACTION:
            return self._plain(x, plan, weights)
        fast_w = None if weights is None else weights[~rows]
        total = self.e_step(x[~rows], plan, fast_w, gaps=False)
        slow = self._plain(x[rows], plan, None if weights is None else weights[rows])
        return total + slow

    def _plain(self, x: Array, plan: GaussianPlan, weights: Array | None) -> GaussianStats:
        params = plan.params
        centers = params.means if plan.centers is None else plan.centers
        x = np.asarray(x, dtype=np.float64)
        total = SufficientStats.zeros(params.model, centers)
        size = reference_rows(params.n_components, params.n_features)
        for s in range(0, x.shape[0], size):
            w = None if weights is None else weights[s : s + size]
            total = total + missing.block_stats_with_gaps(x[s : s + size], params, w, centers)
        return GaussianStats(None, 0.0, total, total.log_likelihood, float(total.n_samples))

    def finish(self, stats: GaussianStats, plan: GaussianPlan) -> SufficientStats:
        """The summed statistics as ``SufficientStats`` about the plan's centres."""
        if stats._finished is None:
            centers = plan.params.means if plan.centers is None else plan.centers
            total = SufficientStats.zeros(plan.params.model, centers)
            if stats.raw is not None and plan.kernel is not None:
                total = total + kernels.raw_to_stats(
                    plan.kernel, stats.raw[0], stats.raw[1], 0.0, stats.n_raw, centers
                )
            if stats.moments is not None:
                total = total + stats.moments
            total.log_likelihood = stats.log_likelihood
            stats._finished = total
        return stats._finished

    def refine(self, stats: GaussianStats, plan: GaussianPlan) -> GaussianPlan | None:
        """A re-centred pass when the moments lost digits (``stats.needs_recentre``)."""
        if plan.recentred:
            return None
        total = self.finish(stats, plan)
        if not needs_recentre(total, self.reg_covar):
            return None
        means = total.centers + total.sum_x / (total.n_k + 1e-300)[:, None]
        return GaussianPlan(plan.params, None, means, recentred=True)

    def m_step(self, stats: GaussianStats, plan: GaussianPlan) -> GaussianParams:
        return m_step(self.finish(stats, plan), self.reg_covar, plan.params.covariances)

    def em_on_rows(
        self,
        x: Array,
        weights: Array | None,
        params: GaussianParams,
        max_iter: int,
        tol: float,
        on_iteration: Any = None,
        accelerate: bool = False,
    ) -> tuple[GaussianParams, float, int, bool, list[float]] | None:
        """EM on complete rows in memory by the fused loop (``small.py``) when they are few
        (at most ``SMALL_ROWS``), SQUAREM over it with ``accelerate``; None: take the
        general path."""
        from . import small

        n, d = x.shape
        if n > SMALL_ROWS or not small.fits(n, params.n_components, d):
            return None
        return small.run(
            x,
            weights,
            params,
            self.reg_covar,
            max_iter,
            tol,
            on_iteration,
            accelerate=self if accelerate else None,
        )

    def batches(self, n_rows: int, n_features: int, n_components: int, n_starts: int) -> bool:
        """Whether ``em_on_rows_batch`` takes that many starts on complete rows in memory
        of this shape (few rows: ``SMALL_ROWS``)."""
        from . import small

        return n_rows <= SMALL_ROWS and small.fits(n_rows, n_starts * n_components, n_features)

    def em_on_rows_batch(
        self,
        x: Array,
        weights: Array | None,
        starts: list[GaussianParams],
        max_iter: int,
        tol: float,
        on_iteration: Any = None,
    ) -> list[Any]:
        """Plain EM from several starts of one k in one loop (``small.run_batch``): each
        start's ``em_on_rows`` value, or the FitError that ended it."""
        from . import small

        return small.run_batch(x, weights, starts, self.reg_covar, max_iter, tol, on_iteration)

    # ---------------------------------------------------------------- applying
    def log_resp_and_norm(self, x: Array, params: GaussianParams) -> tuple[Array, Array]:
        x = np.asarray(x, dtype=np.float64)
        n, k = x.shape[0], params.n_components
        log_resp, norm = np.empty((n, k)), np.empty(n)
        size = reference_rows(k, params.n_features)
        for s in range(0, n, size):
            log_resp[s : s + size], norm[s : s + size] = missing.log_resp_and_norm(
                x[s : s + size], params
            )
        return log_resp, norm

    def log_prob(self, x: Array, params: GaussianParams) -> Array:
        log_resp, norm = self.log_resp_and_norm(x, params)
        # log p(x | j) = log r_j + log p(x) - log w_j (marginal over missing cells)
        with np.errstate(invalid="ignore"):
            out = log_resp + norm[:, None] - log_weights(params)[None, :]
        return np.where(np.isfinite(out), out, -np.inf)

    def impute(self, x: Array, params: GaussianParams) -> Array:
        """Missing cells replaced by their expectation under the mixture."""
        return missing.impute(x, params)

    def sample(
        self, params: GaussianParams, n_samples: int, rng: np.random.Generator
    ) -> tuple[Array, NDArray[np.int64]]:
        from .sampling import sample

        return sample(params, n_samples, rng)

    # ---------------------------------------------------------------- starts, checks
    def start(
        self,
        x: Array,
        n_components: int,
        method: str,
        rng: np.random.Generator,
        weights: Array | None = None,
    ) -> GaussianParams:
        from ...em.init import initial_labels

        rows, labels, centers = initial_labels(x, n_components, method, rng, weights)
        x, w = x[rows], None if weights is None else weights[rows]
        exact = method == "hc"  # mclust's start, with mclust's exact M-step
        if np.isnan(x).any():
            return missing.params_from_labels_with_gaps(
                x, labels, centers, self.model, self.reg_covar, w, exact
            )
        return params_from_labels(x, labels, centers, self.model, self.reg_covar, w, exact)

    def from_responsibilities(
        self, x: Array, resp: Array, weights: Array | None = None
    ) -> GaussianParams:
        from .stats import params_from_resp

        return params_from_resp(x, resp, self.model, self.reg_covar, weights)

    def reference_scale(self, x: Array) -> Array:
        return missing.observed_std(x)

    def collapsed(self, params: GaussianParams, scale: Array, total_weight: float) -> list[int]:
        bad = set(collapsed_components(params, self.reg_covar, scale))
        bad |= {int(j) for j in np.flatnonzero(params.weights * total_weight < 1.0)}
        return sorted(bad)

    def canonical_order(self, params: GaussianParams) -> NDArray[np.intp]:
        """Decreasing weight, ties broken by the means (lexicographic)."""
        keys = [params.means[:, c] for c in range(params.n_features - 1, -1, -1)]
        return np.lexsort([*keys, -params.weights])

    def permute(self, params: GaussianParams, order: NDArray[np.intp]) -> GaussianParams:
        return params.permuted(order)

    def n_parameters(self, params: GaussianParams) -> int:
        k, d = params.n_components, params.n_features
        return params.model.n_parameters(k, d) + k * d + k - 1

    def n_components(self, params: GaussianParams) -> int:
        return params.n_components

    def mixing_weights(self, params: GaussianParams) -> Array:
        return params.weights

    def notes(self, variances: Array, names: Sequence[str]) -> list[str]:
        """Notes on the data: constant columns, a floor out of scale (column variances)."""
        notes = []
        constant = [n for n, v in zip(names, variances, strict=True) if v == 0.0]
        if constant:
            notes.append(
                f"column(s) {', '.join(constant)} are constant over the input; they are "
                f"fitted with variance {{reg_covar}} ({self.reg_covar:g}) and do not "
                "separate clusters"
            )
        tiny = [
            n for n, v in zip(names, variances, strict=True) if 0.0 < v < 100.0 * self.reg_covar
        ]
        varied = [float(v) for v in variances if v > 0.0]
        if varied and self.reg_covar >= max(varied):
            notes.append(
                f"{{reg_covar}} {self.reg_covar:g} is larger than the variance of every column "
                f"(the largest is {max(varied):.4g}): the floor, not the data, sets every "
                "covariance, so the components cannot separate; lower {reg_covar} "
                "(default 1e-06) or scale the data"
            )
        elif tiny:
            notes.append(
                f"{{reg_covar}} {self.reg_covar:g} is not small next to the variance of "
                f"column(s) {', '.join(tiny)}; scale the data or lower {{reg_covar}}"
            )
        return notes

    # ---------------------------------------------------------------- vectors (SQUAREM)
    def to_vector(self, params: GaussianParams) -> Array:
        return np.concatenate(
            [params.weights.ravel(), params.means.ravel(), np.ravel(params.covariances)]
        )

    def off_model(self, like: GaussianParams) -> bool:
        """Whether an extrapolated vector leaves the covariance model (SQUAREM then takes
        one EM step back into it: ``emcli.em.squarem``)."""
        return not like.model.linear

    def from_vector(
        self, theta: Array, like: GaussianParams, off_model: bool = False
    ) -> GaussianParams | None:
        """Parameters from a vector; for a model whose constraint a linear combination
        breaks, None unless ``off_model`` (then a valid mixture outside the model, for one
        EM step back into it)."""
        k, d = like.means.shape
        weights = theta[:k]
        means = theta[k : k + k * d].reshape(k, d)
        cov = theta[k + k * d :].reshape(np.shape(like.covariances))
        if not np.all(np.isfinite(theta)) or not np.all(weights > 0.0):
            return None
        if not like.model.linear and not off_model:  # it would leave the model's constraint
            return None
        weights = weights / weights.sum()
        if like.form in ("full", "tied"):
            cov = 0.5 * (cov + np.swapaxes(cov, -1, -2))
        try:
            return GaussianParams.from_covariances(like.model, weights, means, cov)
        except FitError:
            return None

    # ---------------------------------------------------------------- model file
    def settings(self) -> dict[str, Any]:
        return {"covariance_type": self.model.name, "reg_covar": self.reg_covar}

    def params_to_dict(self, params: GaussianParams) -> dict[str, Any]:
        return {
            "covariance_type": params.covariance_type,
            "model_name": params.model_name,
            "weights": params.weights.tolist(),
            "means": params.means.tolist(),
            "covariances": np.asarray(params.covariances).tolist(),
        }

    def params_from_dict(self, data: dict[str, Any], schema_version: int) -> GaussianParams:
        from .modelfile import params_from_dict

        return params_from_dict(data, schema_version)

    def describe(self, params: GaussianParams, columns: Sequence[str]) -> list[dict[str, Any]]:
        """Per component: weight, means, sds, and the covariance's geometry in mclust's terms
        (Sigma = volume * D diag(shape) D^T): ``volume`` det^(1/d), ``shape`` the
        eigenvalues over the volume (largest first; for diagonal models in column order),
        ``orientation`` the eigenvectors as columns (non-diagonal models, d <= 20)."""
        k, d = params.n_components, params.n_features
        form = params.form
        if form in ("diag", "spherical"):
            var = np.broadcast_to(np.asarray(params.covariances).reshape(k, -1), (k, d))
            sds = np.sqrt(var)
            vol = np.exp(np.log(var).mean(axis=1))
            shapes, axes = var / vol[:, None], None
        else:
            full = params.full_covariances()
            sds = np.sqrt(np.diagonal(full, axis1=1, axis2=2))
            values, vectors = np.linalg.eigh(full)
            values, vectors = values[:, ::-1], vectors[:, :, ::-1]
            vol = np.exp(np.log(np.maximum(values, 1e-300)).mean(axis=1))
            shapes, axes = values / vol[:, None], vectors if d <= 20 else None
        out = []
        for j in range(k):
            row: dict[str, Any] = {
                "component": j,
                "weight": float(params.weights[j]),
                "mean": dict(zip(columns, map(float, params.means[j]), strict=True)),
                "sd": dict(zip(columns, map(float, sds[j]), strict=True)),
                "volume": float(vol[j]),
                "shape": [float(v) for v in shapes[j]],
            }
            if axes is not None:
                row["orientation"] = axes[j].tolist()
            out.append(row)
        return out


def collapsed_components(params: GaussianParams, reg_covar: float, scale: Array) -> list[int]:
    """Components whose covariance, before the floor, scaled to unit variance per column of
    the initialisation sample (``scale``: its standard deviations; 0 = a constant column,
    left out), has an eigenvalue below ``COLLAPSE_TOL``.

    Columns whose variance the floor ``reg_covar`` exceeds are left out too: there the floor,
    not the data, sets the covariance, and what is left after taking the floor away is
    rounding (``--reg-covar 1e300`` is a floor out of scale, noted as such, not a collapse).
    """
    live = (scale > 0) & (scale * scale > reg_covar)
    inv = 1.0 / scale[live]
    k, d = params.n_components, int(live.sum())
    form = params.form
    if d == 0:
        # Every column constant: nothing is left to collapse (inf, not 0, so no component is).
        smallest = np.full(k, np.inf)
    elif form in ("diag", "spherical"):
        # The eigenvalues of a diagonal matrix are its diagonal: no (k, d, d) arrays, no
        # O(d^3) eigen-solver (500 columns took seconds per start).
        var = np.broadcast_to(params.covariances.reshape(k, -1), (k, params.n_features))
        with np.errstate(over="ignore"):  # a huge standardised variance is no collapse
            smallest = ((var[:, live] - reg_covar) * inv[None, :] * inv[None, :]).min(axis=1)
    else:
        covs = params.covariances[None] if form == "tied" else params.covariances
        raw = covs[:, live][:, :, live] - reg_covar * np.eye(d)[None]
        with np.errstate(over="ignore", invalid="ignore"):
            standard = raw * inv[None, :, None] * inv[None, None, :]
        if not np.all(np.isfinite(standard)):  # out of float range: judge in the raw scale
            standard = raw
        smallest = np.broadcast_to(np.linalg.eigvalsh(standard)[:, 0], (k,))
    return [int(j) for j in np.flatnonzero(smallest < COLLAPSE_TOL)]


__all__ = [
    "GaussianFamily",
    "GaussianParams",
    "GaussianPlan",
    "GaussianStats",
    "collapsed_components",
    "from_full",
    "has_form",
    "native_shape",
]

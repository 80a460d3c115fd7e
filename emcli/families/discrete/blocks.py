"""The blocks of a product mixture: categorical, bernoulli, poisson and Gaussian columns.

Within a component the blocks are independent (and so are the columns of a categorical,
bernoulli or poisson block), so log p(x_i | j) is the sum of the blocks' log-densities, and
a missing cell simply drops out of its row's sum (for the Gaussian block: the marginal
density of the observed cells, ``emcli.families.gaussian``).

Each block offers, for its columns ``x`` of a row block (floats; categorical cells hold
level codes 0, 1, ...; NaN = missing):

* ``log_prob(x, p)``: log p(x_i | j), shape (rows, k);
* ``stats(x, resp, p)``: additive statistics given responsibilities already multiplied by
  the frequency weights (``resp`` of shape (rows, k));
* ``m_step(stats)``: the block's parameters;
* ``n_parameters(k)``, ``sample``, ``permute``, vectors for SQUAREM, the model file's
  fields and the rows of ``emcli describe``.

Smoothing and floors (docs/categorical.md): a categorical probability is
(count + alpha) / (observed + L alpha), a bernoulli one (count of 1 + alpha) / (observed +
2 alpha); alpha = 0 is maximum likelihood.  A Poisson rate is at least ``RATE_FLOOR``.  A
component that holds no observed cell of a column (observed mass below ``EMPTY_MASS``) gets
the uniform distribution (categorical), 1/2 (bernoulli) or the floor (poisson) there.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ...errors import DataError, UsageError
from ..gaussian import (
    GaussianFamily,
    GaussianParams,
    SufficientStats,
    block_stats,
    log_gaussian,
    m_step,
)
from ..gaussian.family import collapsed_components
from ..gaussian.models import covariance_model

Array = NDArray[np.float64]
RATE_FLOOR = 1e-8
EMPTY_MASS = 1e-12
# log(0) is kept finite in matrix products (0 * -inf would be NaN): about -690.8.
LOG_TINY = float(np.log(1e-300))


def _log(p: Array) -> Array:
    with np.errstate(divide="ignore"):
        return np.maximum(np.log(p), LOG_TINY)


def log_factorial(counts: Array) -> Array:
    """log(n!) of non-negative integer counts, from a table of cumulative logs (exact to
    rounding; no scipy at run time)."""
    top = int(counts.max()) if counts.size else 0
    table = np.concatenate([[0.0], np.cumsum(np.log(np.arange(1, top + 1, dtype=np.float64)))])
    return table[counts.astype(np.intp)]


def _observed(x: Array) -> tuple[Array, Array]:
    """(x with gaps as 0, the observed mask as floats)."""
    gaps = np.isnan(x)
    return np.where(gaps, 0.0, x), (~gaps).astype(np.float64)


def _list(a: Array) -> list[Any]:
    return np.asarray(a, dtype=np.float64).tolist()


def _matrix(value: Any, shape: tuple[int, int], what: str) -> Array:
    a = np.asarray(value, dtype=np.float64)
    if a.shape != shape or not np.all(np.isfinite(a)):
        raise ValueError(f"{what} must be a finite {shape[0]} x {shape[1]} table")
    return a


# ---------------------------------------------------------------------------- categorical
@dataclass(frozen=True)
class CategoricalBlock:
    """Columns of levels: per component and column, a probability for each level."""

    names: tuple[str, ...]
    levels: tuple[tuple[str, ...], ...]
    alpha: float
    kind = "categorical"

    def log_prob(self, x: Array, p: list[Array]) -> Array:
        out = np.zeros((x.shape[0], p[0].shape[0]))
        for c, probs in enumerate(p):
            codes = x[:, c]
            obs = ~np.isnan(codes)
            log_p = _log(probs)  # (k, L)
            if obs.all():
                out += log_p[:, codes.astype(np.intp)].T
            else:
                out[obs] += log_p[:, codes[obs].astype(np.intp)].T
        return out

    def stats(self, x: Array, resp: Array, p: Any = None) -> list[Array]:
        out = []
        for c, levels in enumerate(self.levels):
            codes = x[:, c]
            obs = ~np.isnan(codes)
            onehot = np.zeros((int(obs.sum()), len(levels)))
            onehot[np.arange(onehot.shape[0]), codes[obs].astype(np.intp)] = 1.0
            out.append(resp[obs].T @ onehot)  # (k, L)
        return out

    def m_step(self, stats: list[Array]) -> list[Array]:
        a = self.alpha
        out = []
        for counts in stats:
            n_levels = counts.shape[1]
            total = counts.sum(axis=1, keepdims=True) + n_levels * a
            empty = total[:, 0] < EMPTY_MASS
            probs = (counts + a) / np.where(total < EMPTY_MASS, 1.0, total)
            probs[empty] = 1.0 / n_levels
            out.append(probs)
        return out

    def n_parameters(self, k: int) -> int:
        return k * sum(len(levels) - 1 for levels in self.levels)

    def sample(self, p: list[Array], labels: NDArray[np.int64], rng: np.random.Generator) -> Array:
        out = np.empty((labels.size, len(p)))
        u = rng.random((labels.size, len(p)))
        for c, probs in enumerate(p):
            cum = np.cumsum(probs, axis=1)[labels]  # (n, L)
            out[:, c] = np.minimum(
                (u[:, c : c + 1] * cum[:, -1:] >= cum).sum(axis=1), len(probs[0]) - 1
            )
        return out

    def permute(self, p: list[Array], order: NDArray[np.intp]) -> list[Array]:
        return [probs[order] for probs in p]

    def to_vector(self, p: list[Array]) -> Array:
        return np.concatenate([probs.ravel() for probs in p])

    def from_vector(self, theta: Array, like: list[Array]) -> tuple[list[Array] | None, int]:
        out, at = [], 0
        for probs in like:
            size = probs.size
            new = theta[at : at + size].reshape(probs.shape)
            at += size
            if np.any(new < 0.0):
                return None, at
            out.append(new / new.sum(axis=1, keepdims=True))
        return out, at

    def to_dict(self, p: list[Array]) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "columns": list(self.names),
            "levels": {n: list(lv) for n, lv in zip(self.names, self.levels, strict=True)},
            "probabilities": {n: _list(probs) for n, probs in zip(self.names, p, strict=True)},
        }

    def from_dict(self, data: dict[str, Any], k: int) -> list[Array]:
        out = []
        for name, levels in zip(self.names, self.levels, strict=True):
            probs = _matrix(
                data["probabilities"][name], (k, len(levels)), f"probabilities of {name!r}"
            )
            if np.any(probs < 0) or not np.allclose(probs.sum(axis=1), 1.0, atol=1e-6):
                raise ValueError(f"probabilities of {name!r}: each row must be >= 0 and sum to 1")
            out.append(probs / probs.sum(axis=1, keepdims=True))
        return out

    def describe(self, p: list[Array], j: int) -> dict[str, Any]:
        rows = {}
        for name, levels, probs in zip(self.names, self.levels, p, strict=True):
            best = int(np.argmax(probs[j]))
            rows[name] = {
                "level": levels[best],
                "probability": float(probs[j, best]),
                "probabilities": dict(zip(levels, map(float, probs[j]), strict=True)),
            }
        return {"levels": rows}

    def impute(self, x: Array, resp: Array, p: list[Array]) -> Array:
        out = x.copy()
        for c, probs in enumerate(p):
            gaps = np.isnan(x[:, c])
            if gaps.any():
                out[gaps, c] = np.argmax(resp[gaps] @ probs, axis=1)
        return out


# ---------------------------------------------------------------------------- bernoulli
@dataclass(frozen=True)
class BernoulliBlock:
    """0/1 columns: per component and column, the probability of a 1."""

    names: tuple[str, ...]
    alpha: float
    kind = "bernoulli"

    def log_prob(self, x: Array, p: Array) -> Array:
        x0, obs = _observed(x)
        check_binary(x0, self.names)
        return x0 @ _log(p).T + (obs - x0) @ _log(1.0 - p).T

    def stats(self, x: Array, resp: Array, p: Any = None) -> tuple[Array, Array]:
        x0, obs = _observed(x)
        return resp.T @ x0, resp.T @ obs  # ones, observed: (k, m) each

    def m_step(self, stats: tuple[Array, Array]) -> Array:
        ones, seen = stats
        a = self.alpha
        total = seen + 2.0 * a
        probs = (ones + a) / np.where(total < EMPTY_MASS, 1.0, total)
        return np.where(total < EMPTY_MASS, 0.5, np.clip(probs, 0.0, 1.0))

    def n_parameters(self, k: int) -> int:
        return k * len(self.names)

    def sample(self, p: Array, labels: NDArray[np.int64], rng: np.random.Generator) -> Array:
        return (rng.random((labels.size, p.shape[1])) < p[labels]).astype(np.float64)

    def permute(self, p: Array, order: NDArray[np.intp]) -> Array:
        return p[order]

    def to_vector(self, p: Array) -> Array:
        return p.ravel()

    def from_vector(self, theta: Array, like: Array) -> tuple[Array | None, int]:
        new = theta[: like.size].reshape(like.shape)
        ok = np.all((new >= 0.0) & (new <= 1.0))
        return (new if ok else None), like.size

    def to_dict(self, p: Array) -> dict[str, Any]:
        return {"kind": self.kind, "columns": list(self.names), "probabilities": _list(p)}

    def from_dict(self, data: dict[str, Any], k: int) -> Array:
        p = _matrix(data["probabilities"], (k, len(self.names)), "bernoulli probabilities")
        if np.any((p < 0) | (p > 1)):
            raise ValueError("bernoulli probabilities must be between 0 and 1")
        return p

    def describe(self, p: Array, j: int) -> dict[str, Any]:
        return {"p": {n: float(v) for n, v in zip(self.names, p[j], strict=True)}}

    def impute(self, x: Array, resp: Array, p: Array) -> Array:
        gaps = np.isnan(x)
        return np.where(gaps, (resp @ p >= 0.5).astype(np.float64), x)


def check_binary(x0: Array, names: Sequence[str]) -> None:
    bad = (x0 != 0.0) & (x0 != 1.0)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise DataError(
            f"bernoulli column '{names[c]}' holds {x0[r, c]:g}; each value must be 0 or 1 "
            "(or false/true)"
        )


# ---------------------------------------------------------------------------- poisson
@dataclass(frozen=True)
class PoissonBlock:
    """Count columns: per component and column, a Poisson rate (at least ``RATE_FLOOR``)."""

    names: tuple[str, ...]
    kind = "poisson"

    def log_prob(self, x: Array, p: Array) -> Array:
        x0, obs = _observed(x)
        if np.any((x0 < 0) | (x0 != np.round(x0))):
            r, c = np.argwhere((x0 < 0) | (x0 != np.round(x0)))[0]
            raise DataError(
                f"poisson column '{self.names[c]}' holds {x0[r, c]:g}; each value must be a "
                "count (an integer >= 0)"
            )
        const = log_factorial(x0).sum(axis=1)  # 0 for a missing cell (x0 = 0)
        return x0 @ np.log(p).T - obs @ p.T - const[:, None]

    def stats(self, x: Array, resp: Array, p: Any = None) -> tuple[Array, Array]:
        x0, obs = _observed(x)
        return resp.T @ x0, resp.T @ obs

    def m_step(self, stats: tuple[Array, Array]) -> Array:
        sums, seen = stats
        rates = sums / np.where(seen < EMPTY_MASS, 1.0, seen)
        return np.maximum(np.where(seen < EMPTY_MASS, RATE_FLOOR, rates), RATE_FLOOR)

    def n_parameters(self, k: int) -> int:
        return k * len(self.names)

    def sample(self, p: Array, labels: NDArray[np.int64], rng: np.random.Generator) -> Array:
        return rng.poisson(p[labels]).astype(np.float64)

    def permute(self, p: Array, order: NDArray[np.intp]) -> Array:
        return p[order]

    def to_vector(self, p: Array) -> Array:
        return p.ravel()

    def from_vector(self, theta: Array, like: Array) -> tuple[Array | None, int]:
        new = theta[: like.size].reshape(like.shape)
        return (new if np.all(new >= RATE_FLOOR) else None), like.size

    def to_dict(self, p: Array) -> dict[str, Any]:
        return {"kind": self.kind, "columns": list(self.names), "rates": _list(p)}

    def from_dict(self, data: dict[str, Any], k: int) -> Array:
        p = _matrix(data["rates"], (k, len(self.names)), "poisson rates")
        if np.any(p <= 0):
            raise ValueError("poisson rates must be > 0")
        return p

    def describe(self, p: Array, j: int) -> dict[str, Any]:
        return {"rate": {n: float(v) for n, v in zip(self.names, p[j], strict=True)}}

    def impute(self, x: Array, resp: Array, p: Array) -> Array:
        return np.where(np.isnan(x), resp @ p, x)  # the expected count


# ---------------------------------------------------------------------------- gaussian
@dataclass(frozen=True)
class GaussianBlock:
    """Numeric columns: one Gaussian per component with the chosen covariance model, through
    ``emcli.families.gaussian``'s parameters, densities and M-step."""

    names: tuple[str, ...]
    covariance_type: str
    reg_covar: float
    kind = "gaussian"

    @property
    def family(self) -> GaussianFamily:
        return GaussianFamily(self.covariance_type, self.reg_covar)

    @property
    def model(self) -> Any:
        return covariance_model(self.covariance_type)

    def log_prob(self, x: Array, p: GaussianParams) -> Array:
        gaps = np.isnan(x)
        if not gaps.any():
            return log_gaussian(x, p)
        out = np.zeros((x.shape[0], p.n_components))
        complete = ~gaps.any(axis=1)
        out[complete] = log_gaussian(x[complete], p)
        some = ~complete & ~gaps.all(axis=1)  # rows with no numeric cell keep 0 (density 1)
        if some.any():
            out[some] = self.family.log_prob(x[some], p)  # the marginal of the observed cells
        return out

    def stats(self, x: Array, resp: Array, p: GaussianParams) -> SufficientStats:
        return self._stats(x, resp, p.means, p)

    def _stats(
        self, x: Array, resp: Array, centers: Array, p: GaussianParams | None
    ) -> SufficientStats:
        gaps = np.isnan(x)
        if not gaps.any():
            return block_stats(x, resp, centers, self.model, 0.0, 0.0)
        empty = gaps.all(axis=1)
        if empty.any():
            # A row with no numeric cell has Gaussian density 1 under every component: it
            # adds nothing to this block's statistics (its other cells still count).
            x, resp, gaps = x[~empty], resp[~empty], gaps[~empty]
            if not gaps.any():
                return block_stats(x, resp, centers, self.model, 0.0, 0.0)
        if self.model.stats != "diag":
            raise UsageError(
                "rows with some (not all) numeric cells missing need a diagonal "
                f"{{covariance_type}} (diag, spherical) in {{family}} mixed, not "
                f"{self.covariance_type}; or use {{missing}} drop"
            )
        # Within a component the coordinates are independent: a missing cell has
        # E[x | j] = mu_j and adds its variance to the second moment.
        k, d = centers.shape
        means = centers if p is None else p.means
        var = np.ones((k, d)) if p is None else np.diagonal(p.full_covariances(), axis1=1, axis2=2)
        sum_x, sum_xx = np.empty((k, d)), np.empty((k, d))
        gap_f = gaps.astype(np.float64)
        for j in range(k):
            diff = np.where(gaps, means[j] - centers[j], x - centers[j])
            sum_x[j] = resp[:, j] @ diff
            sum_xx[j] = resp[:, j] @ (diff * diff) + (resp[:, j] @ gap_f) * var[j]
        return SufficientStats(self.model, centers, resp.sum(axis=0), sum_x, sum_xx, 0.0, 0.0)

    def m_step(self, stats: SufficientStats) -> GaussianParams:
        return _uniform(m_step(stats, self.reg_covar))

    def from_resp(self, x: Array, resp: Array) -> GaussianParams:
        """One M-step from responsibilities; a missing cell counts as its column's mean (a
        start only: EM corrects it)."""
        x0, obs = _observed(x)
        col_mean = x0.sum(axis=0) / np.maximum(obs.sum(axis=0), 1.0)
        filled = np.where(np.isnan(x), col_mean[None, :], x)
        n_k = np.maximum(resp.sum(axis=0), 1e-300)
        centers = (resp.T @ filled) / n_k[:, None]
        stats = block_stats(filled, resp, centers, self.model, 0.0, 0.0)
        return _uniform(m_step(stats, self.reg_covar))

    def n_parameters(self, k: int) -> int:
        d = len(self.names)
        return int(self.model.n_parameters(k, d)) + k * d

    def sample(
        self, p: GaussianParams, labels: NDArray[np.int64], rng: np.random.Generator
    ) -> Array:
        chol = np.linalg.cholesky(p.full_covariances())
        z = rng.standard_normal((labels.size, len(self.names)))
        return p.means[labels] + np.einsum("nij,nj->ni", chol[labels], z)

    def permute(self, p: GaussianParams, order: NDArray[np.intp]) -> GaussianParams:
        return p.permuted(order)

    def to_vector(self, p: GaussianParams) -> Array:
        return self.family.to_vector(p)

    def from_vector(self, theta: Array, like: GaussianParams) -> tuple[Any, int]:
        size = self.family.to_vector(like).size
        return self.family.from_vector(theta[:size], like), size

    def to_dict(self, p: GaussianParams) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "columns": list(self.names),
            "covariance_type": p.covariance_type,
            "model_name": p.model_name,
            "means": _list(p.means),
            "covariances": _list(np.asarray(p.covariances)),
        }

    def from_dict(self, data: dict[str, Any], k: int, weights: Array) -> GaussianParams:
        from ..gaussian.modelfile import params_from_dict

        fields = {
            "covariance_type": data["covariance_type"],
            "weights": weights.tolist(),
            "means": data["means"],
            "covariances": data["covariances"],
            "columns": list(self.names),
        }
        p = _uniform(params_from_dict(fields, 2))
        if p.means.shape != (k, len(self.names)):
            raise ValueError(f"gaussian means must be a {k} x {len(self.names)} table")
        return p

    def describe(self, p: GaussianParams, j: int) -> dict[str, Any]:
        sds = np.sqrt(np.diagonal(p.full_covariances(), axis1=1, axis2=2))
        return {
            "mean": {n: float(v) for n, v in zip(self.names, p.means[j], strict=True)},
            "sd": {n: float(v) for n, v in zip(self.names, sds[j], strict=True)},
        }

    def impute(self, x: Array, resp: Array, p: GaussianParams) -> Array:
        """sum_j r_ij E[x_m | x_o, j] (``resp`` from the whole product)."""
        gaps = np.isnan(x)
        if not gaps.any():
            return x.copy()
        filled = resp @ p.means
        if p.form in ("full", "tied"):
            from ..gaussian.missing import gap_terms

            rows = np.flatnonzero(gaps.any(axis=1))
            terms = gap_terms(x[rows], p)
            idx = rows[terms.order]
            assert terms.dev is not None
            filled[idx] += np.einsum("bk,bkd->bd", resp[idx], terms.dev)
        return np.where(gaps, filled, x)

    def collapsed(self, p: GaussianParams, scale: Array) -> list[int]:
        return collapsed_components(p, self.reg_covar, scale)


def _uniform(p: GaussianParams) -> GaussianParams:
    """The block's Gaussian parameters with equal weights: the mixture's weights live in the
    product; the Gaussian code's densities then need no division by a tiny weight."""
    k = p.n_components
    return dataclasses.replace(p, weights=np.full(k, 1.0 / k))

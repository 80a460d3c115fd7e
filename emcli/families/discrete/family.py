"""Product mixtures: latent class analysis (categorical), bernoulli, poisson and mixed tables.

A component is a product of independent blocks (``blocks.py``): one categorical block (a
probability for each level of each column), one bernoulli, one poisson and one Gaussian
block (the numeric columns, any covariance model), each present when some column has that
kind.  So log p(x_i | j) = sum over blocks, and a missing cell drops out of the sum (poLCA
and Weka's EM drop or impute such rows instead).

Statistics of a row block: n_j = sum_i w_i r_ij over the rows with something observed, and
each block's statistics; they add up across blocks, files and machines as the Gaussian
family's do.  The M-step: weights n_j / n, each block's own step.

``--family categorical|bernoulli|poisson`` make every column that kind; ``mixed`` reads a
kind for each column (``emcli.data.encode``).  All four are this class with another name.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ...data.encode import KINDS, ColumnSpec
from ...errors import UsageError
from .blocks import BernoulliBlock, CategoricalBlock, GaussianBlock, PoissonBlock

Array = NDArray[np.float64]
BLOCK_ROWS = 8192
# The default pseudo-count of categorical and bernoulli probabilities (docs/categorical.md):
# maximum likelihood, as poLCA and Weka.
DEFAULT_ALPHA = 0.0
# A start takes responsibilities this far from the hard labels of its k-means seeds, so no
# probability starts at 0 (EM cannot leave 0 with alpha = 0).
START_SOFTNESS = 0.25


@dataclass(frozen=True)
class ProductParams:
    """Weights (k,) and the parameters of each block, in the family's block order."""

    weights: Array
    blocks: tuple[Any, ...]

    @property
    def n_components(self) -> int:
        return int(self.weights.shape[0])

    @property
    def covariance_type(self) -> str | None:
        for p in self.blocks:
            if hasattr(p, "covariance_type"):
                return str(p.covariance_type)
        return None


@dataclass
class ProductStats:
    """Additive statistics: n_k (k,), each block's, the log-likelihood and total weight."""

    n_k: Array
    blocks: list[Any]
    log_likelihood: float
    n_samples: float

    def __add__(self, other: ProductStats) -> ProductStats:
        return ProductStats(
            self.n_k + other.n_k,
            [_add(a, b) for a, b in zip(self.blocks, other.blocks, strict=True)],
            self.log_likelihood + other.log_likelihood,
            self.n_samples + other.n_samples,
        )


def logsumexp(a: Array, axis: int = 1) -> Array:
    """log sum exp over ``axis`` (rows of -inf give -inf; no scipy at run time)."""
    top = np.max(a, axis=axis, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    with np.errstate(divide="ignore"):
        return np.log(np.sum(np.exp(a - top), axis=axis)) + np.squeeze(top, axis=axis)


def _add(a: Any, b: Any) -> Any:
    if isinstance(a, (list, tuple)):
        return type(a)(x + y for x, y in zip(a, b, strict=True))
    return a + b


class ProductFamily:
    """A mixture of products of independent blocks (module docstring)."""

    name = "mixed"

    def __init__(
        self,
        columns: Sequence[ColumnSpec],
        alpha: float | None = None,
        covariance_type: str | None = None,
        reg_covar: float = 1e-6,
    ) -> None:
        alpha = DEFAULT_ALPHA if alpha is None else float(alpha)
        if not (alpha >= 0 and math.isfinite(alpha)):
            raise UsageError("{alpha} must be a finite number >= 0")
        if not (reg_covar >= 0 and math.isfinite(reg_covar)):
            raise UsageError("{reg_covar} must be a finite number >= 0")
        self.columns = tuple(columns)
        if not self.columns:
            raise UsageError("no column to fit")
        for spec in self.columns:
            if spec.kind not in KINDS:
                raise UsageError(f"unknown column kind {spec.kind!r}")
            if self.name != "mixed" and spec.kind != self.name:
                raise UsageError(
                    f"column '{spec.name}' is {spec.kind} but {{family}} {self.name} makes every "
                    "column "
                    f"{self.name}; use {{family}} mixed to give columns their own kinds"
                )
        self.alpha, self.reg_covar = alpha, float(reg_covar)
        kinds = [s.kind for s in self.columns]
        self.covariance_type = covariance_type or "diag"
        try:
            from ..gaussian.models import covariance_model

            covariance_model(self.covariance_type)
        except ValueError as exc:
            raise UsageError(str(exc).replace("covariance type", "{covariance_type}")) from None
        self.blocks: list[Any] = []
        self.index: list[NDArray[np.intp]] = []
        for kind in dict.fromkeys(kinds):  # blocks in the order their kinds first appear
            idx = np.array([c for c, k in enumerate(kinds) if k == kind], dtype=np.intp)
            names = tuple(self.columns[c].name for c in idx)
            self.index.append(idx)
            self.blocks.append(self._block(kind, names, idx))

    def _block(self, kind: str, names: tuple[str, ...], idx: NDArray[np.intp]) -> Any:
        if kind == "categorical":
            levels = tuple(tuple(self.columns[c].levels or ()) for c in idx)
            for name, lv in zip(names, levels, strict=True):
                if not lv:
                    raise UsageError(f"categorical column '{name}' has no levels")
            return CategoricalBlock(names, levels, self.alpha)
        if kind == "bernoulli":
            return BernoulliBlock(names, self.alpha)
        if kind == "poisson":
            return PoissonBlock(names)
        return GaussianBlock(names, self.covariance_type, self.reg_covar)

    def __repr__(self) -> str:
        kinds = ", ".join(f"{s.name}={s.kind}" for s in self.columns)
        return f"{type(self).__name__}({kinds}, alpha={self.alpha!r})"

    @property
    def has_gaussian(self) -> bool:
        return any(b.kind == "gaussian" for b in self.blocks)

    # ---------------------------------------------------------------- one iteration
    def prepare(
        self, params: ProductParams, dtype: Any = np.float64, n_rows: int | None = None
    ) -> ProductParams:
        return params

    def block_rows(self, plan: ProductParams) -> int:
        return BLOCK_ROWS

    def _log_joint(self, x: Array, params: ProductParams) -> Array:
        """log w_j + log p(x_i | j), shape (rows, k)."""
        with np.errstate(divide="ignore"):
            out = np.broadcast_to(np.log(params.weights), (x.shape[0], params.n_components)).copy()
        for block, idx, p in zip(self.blocks, self.index, params.blocks, strict=True):
            out += block.log_prob(x[:, idx], p)
        return out

    def log_resp_and_norm(self, x: Array, params: ProductParams) -> tuple[Array, Array]:
        x = np.asarray(x, dtype=np.float64)
        n, k = x.shape[0], params.n_components
        log_resp, norm = np.empty((n, k)), np.empty(n)
        for s in range(0, n, BLOCK_ROWS):
            joint = self._log_joint(x[s : s + BLOCK_ROWS], params)
            total = logsumexp(joint, axis=1)
            empty = np.isnan(x[s : s + BLOCK_ROWS]).all(axis=1)
            with np.errstate(invalid="ignore"):
                log_resp[s : s + BLOCK_ROWS] = joint - total[:, None]
            total[empty] = 0.0  # nothing observed: density 1, responsibilities the weights
            if empty.any():
                with np.errstate(divide="ignore"):
                    log_resp[s : s + BLOCK_ROWS][empty] = np.log(params.weights)[None, :]
            norm[s : s + BLOCK_ROWS] = total
        return log_resp, norm

    def e_step(
        self, x: Array, plan: ProductParams, weights: Array | None = None, gaps: bool | None = None
    ) -> ProductStats:
        x = np.asarray(x, dtype=np.float64)
        log_resp, norm = self.log_resp_and_norm(x, plan)
        resp = np.exp(log_resp)
        resp[np.isnan(x).all(axis=1)] = 0.0  # rows with nothing observed carry no information
        if weights is not None:
            resp *= weights[:, None]
            ll, n = float(norm @ weights), float(weights.sum())
        else:
            ll, n = float(norm.sum()), float(x.shape[0])
        stats = [
            block.stats(x[:, idx], resp, p)
            for block, idx, p in zip(self.blocks, self.index, plan.blocks, strict=True)
        ]
        return ProductStats(resp.sum(axis=0), stats, ll, n)

    def refine(self, stats: ProductStats, plan: ProductParams) -> None:
        return None

    def m_step(self, stats: ProductStats, plan: Any = None) -> ProductParams:
        n_k = stats.n_k + 10.0 * np.finfo(np.float64).eps
        weights = n_k / n_k.sum()
        blocks = tuple(b.m_step(s) for b, s in zip(self.blocks, stats.blocks, strict=True))
        return ProductParams(weights, blocks)

    # ---------------------------------------------------------------- applying
    def log_prob(self, x: Array, params: ProductParams) -> Array:
        x = np.asarray(x, dtype=np.float64)
        out = np.zeros((x.shape[0], params.n_components))
        for block, idx, p in zip(self.blocks, self.index, params.blocks, strict=True):
            out += block.log_prob(x[:, idx], p)
        return out

    def impute(self, x: Array, params: ProductParams) -> Array:
        """Missing cells filled: the most probable level (categorical, bernoulli), the
        expected count (poisson), the conditional expectation (gaussian), each under the
        row's responsibilities."""
        x = np.asarray(x, dtype=np.float64)
        resp = np.exp(self.log_resp_and_norm(x, params)[0])
        out = x.copy()
        for block, idx, p in zip(self.blocks, self.index, params.blocks, strict=True):
            out[:, idx] = block.impute(x[:, idx], resp, p)
        return out

    def sample(
        self, params: ProductParams, n_samples: int, rng: np.random.Generator
    ) -> tuple[Array, NDArray[np.int64]]:
        labels = rng.choice(params.n_components, size=n_samples, p=params.weights).astype(np.int64)
        out = np.empty((n_samples, len(self.columns)))
        for block, idx, p in zip(self.blocks, self.index, params.blocks, strict=True):
            out[:, idx] = block.sample(p, labels, rng)
        return out, labels

    def decode(self, x: Array) -> dict[str, Any]:
        """Encoded columns back as the table's values: level labels for categorical columns
        (None where missing), numbers for the others; {column name: array}."""
        out: dict[str, Any] = {}
        for c, spec in enumerate(self.columns):
            if spec.kind == "categorical" and spec.levels is not None:
                labels = np.array([*spec.levels, None], dtype=object)
                codes = np.where(np.isnan(x[:, c]), len(spec.levels), x[:, c]).astype(np.intp)
                out[spec.name] = labels[codes]
            else:
                out[spec.name] = x[:, c]
        return out

    # ---------------------------------------------------------------- starts, checks
    def _embedding(self, x: Array) -> Array:
        """The rows as numbers k-means can seed on: one-hot levels (scaled so a column
        weighs at most 1), bernoulli as 0/1, counts as log1p, numbers standardised."""
        parts = []
        for c, spec in enumerate(self.columns):
            col = x[:, c]
            if spec.kind == "categorical":
                n_levels = len(spec.levels or ())
                hot = np.zeros((col.size, n_levels))
                obs = ~np.isnan(col)
                hot[np.flatnonzero(obs), col[obs].astype(np.intp)] = math.sqrt(0.5)
                hot[~obs] = np.nan
                parts.append(hot)
                continue
            v = np.log1p(col) if spec.kind == "poisson" else col.copy()
            if spec.kind != "bernoulli":
                obs = v[~np.isnan(v)]
                sd = float(obs.std()) if obs.size else 0.0
                v = (v - (obs.mean() if obs.size else 0.0)) / (sd if sd > 0 else 1.0)
            parts.append(v[:, None])
        return np.concatenate(parts, axis=1)

    def start(
        self,
        x: Array,
        n_components: int,
        method: str,
        rng: np.random.Generator,
        weights: Array | None = None,
    ) -> ProductParams:
        """``random``: Dirichlet(1) responsibilities for the sample rows; otherwise the
        labels of ``method`` on ``_embedding`` (k-means++ seeded k-means), softened by
        ``START_SOFTNESS``; then one M-step."""
        from ...em.init import initial_labels

        x = np.asarray(x, dtype=np.float64)
        k = n_components
        rows = np.flatnonzero(~np.isnan(x).all(axis=1))
        if method == "random":
            resp = rng.dirichlet(np.ones(k), size=rows.size)
        else:
            found, labels, _ = initial_labels(
                self._embedding(x[rows]), k, method, rng, None if weights is None else weights[rows]
            )
            rows = rows[found]
            resp = np.full((rows.size, k), START_SOFTNESS / k)
            resp[np.arange(rows.size), labels] += 1.0 - START_SOFTNESS
        w = None if weights is None else weights[rows]
        return self.from_responsibilities(x[rows], resp, w)

    def from_responsibilities(
        self, x: Array, resp: Array, weights: Array | None = None
    ) -> ProductParams:
        x = np.asarray(x, dtype=np.float64)
        rw = resp if weights is None else resp * weights[:, None]
        n_k = rw.sum(axis=0) + 10.0 * np.finfo(np.float64).eps
        blocks = []
        for block, idx in zip(self.blocks, self.index, strict=True):
            if block.kind == "gaussian":
                blocks.append(block.from_resp(x[:, idx], rw))
            else:
                blocks.append(block.m_step(block.stats(x[:, idx], rw)))
        return ProductParams(n_k / n_k.sum(), tuple(blocks))

    def reference_scale(self, x: Array) -> Array | None:
        if not self.has_gaussian:
            return None
        from ..gaussian.missing import observed_std

        idx = self.index[[b.kind for b in self.blocks].index("gaussian")]
        return observed_std(np.asarray(x, dtype=np.float64)[:, idx])

    def collapsed(self, params: ProductParams, scale: Any, total_weight: float) -> list[int]:
        bad = {int(j) for j in np.flatnonzero(params.weights * total_weight < 1.0)}
        for block, p in zip(self.blocks, params.blocks, strict=True):
            if block.kind == "gaussian" and scale is not None:
                bad |= set(block.collapsed(p, scale))
        return sorted(bad)

    def canonical_order(self, params: ProductParams) -> NDArray[np.intp]:
        """Decreasing weight, ties broken by the parameters (lexicographic)."""
        flat = np.stack(
            [
                np.concatenate(
                    [
                        b.to_vector(b.permute(p, np.array([j])))
                        for b, p in zip(self.blocks, params.blocks, strict=True)
                    ]
                )
                for j in range(params.n_components)
            ]
        )
        keys = [flat[:, c] for c in range(flat.shape[1] - 1, -1, -1)]
        return np.lexsort([*keys, -params.weights])

    def permute(self, params: ProductParams, order: NDArray[np.intp]) -> ProductParams:
        return ProductParams(
            params.weights[order],
            tuple(b.permute(p, order) for b, p in zip(self.blocks, params.blocks, strict=True)),
        )

    def n_parameters(self, params: ProductParams) -> int:
        """poLCA's count: k - 1 weights plus each block's free parameters (categorical:
        k sum_c (L_c - 1))."""
        k = params.n_components
        return k - 1 + sum(b.n_parameters(k) for b in self.blocks)

    def n_components(self, params: ProductParams) -> int:
        return params.n_components

    def mixing_weights(self, params: ProductParams) -> Array:
        return params.weights

    def notes(self, variances: Array, names: Sequence[str]) -> list[str]:
        constant = [
            s.name
            for s, v in zip(self.columns, variances, strict=True)
            if s.kind != "categorical" and v == 0.0
        ]
        single = [
            s.name for s in self.columns if s.kind == "categorical" and len(s.levels or ()) == 1
        ]
        if constant or single:
            return [
                f"column(s) {', '.join(constant + single)} hold one value over the input; they "
                "do not separate clusters"
            ]
        return []

    # ---------------------------------------------------------------- vectors (SQUAREM)
    def to_vector(self, params: ProductParams) -> Array:
        parts = [params.weights]
        parts += [b.to_vector(p) for b, p in zip(self.blocks, params.blocks, strict=True)]
        return np.concatenate(parts)

    def from_vector(self, theta: Array, like: ProductParams) -> ProductParams | None:
        if not np.all(np.isfinite(theta)):
            return None
        k = like.n_components
        weights = theta[:k]
        if not np.all(weights > 0.0):
            return None
        at, blocks = k, []
        for b, p in zip(self.blocks, like.blocks, strict=True):
            new, used = b.from_vector(theta[at:], p)
            if new is None:
                return None
            blocks.append(new)
            at += used
        return ProductParams(weights / weights.sum(), tuple(blocks))

    # ---------------------------------------------------------------- model file
    def settings(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if any(b.kind in ("categorical", "bernoulli") for b in self.blocks):
            out["alpha"] = self.alpha
        if self.has_gaussian:
            out["covariance_type"] = self.covariance_type
        out["reg_covar"] = self.reg_covar
        if self.name == "mixed":
            out["types"] = {s.name: s.kind for s in self.columns}
        return out

    def params_to_dict(self, params: ProductParams) -> dict[str, Any]:
        return {
            "weights": params.weights.tolist(),
            "blocks": [b.to_dict(p) for b, p in zip(self.blocks, params.blocks, strict=True)],
        }

    def params_from_dict(self, data: dict[str, Any], schema_version: int) -> ProductParams:
        weights = np.asarray(data["weights"], dtype=np.float64)
        if weights.ndim != 1 or not np.all(np.isfinite(weights)) or np.any(weights < 0):
            raise ValueError("weights must be a list of numbers >= 0")
        if abs(float(weights.sum()) - 1.0) > 1e-6:
            raise ValueError("the weights must sum to 1")
        k = weights.size
        if "n_components" in data and data["n_components"] != k:
            raise ValueError(f"n_components is {data['n_components']!r} but there are {k} weights")
        fields = _blocks_by_kind(data)
        out = []
        for b in self.blocks:
            block = fields[b.kind]
            if list(block.get("columns", [])) != list(b.names):
                raise ValueError(f"the {b.kind} block's columns disagree with the model's")
            if b.kind == "gaussian":
                out.append(b.from_dict(block, k, weights))
            else:
                out.append(b.from_dict(block, k))
        return ProductParams(weights / weights.sum(), tuple(out))

    @classmethod
    def from_model_file(cls, data: dict[str, Any]) -> ProductFamily:
        """The family a model file describes (its column kinds and levels, its settings)."""
        settings = data.get("settings", {})
        columns = data["columns"]
        if not isinstance(columns, list):
            raise ValueError("columns must be a list of names")
        specs: dict[str, ColumnSpec] = {}
        covariance_type = None
        for block in _blocks_by_kind(data).values():
            kind = block["kind"]
            for name in block["columns"]:
                levels = None
                if kind == "categorical":
                    raw = block["levels"][name]
                    if not isinstance(raw, list) or not raw:
                        raise ValueError(f"levels of {name!r} must be a non-empty list")
                    levels = tuple(str(v) for v in raw)
                specs[str(name)] = ColumnSpec(str(name), kind, levels)
            if kind == "gaussian":
                covariance_type = block["covariance_type"]
        if sorted(specs) != sorted(map(str, columns)) or len(columns) != len(specs):
            raise ValueError("the blocks' columns disagree with columns")
        alpha = settings.get("alpha", DEFAULT_ALPHA)
        reg = settings.get("reg_covar", 1e-6)
        for key, value in (("alpha", alpha), ("reg_covar", reg)):
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not value >= 0:
                raise ValueError(f"settings.{key} must be a number >= 0")
        return cls([specs[str(c)] for c in columns], float(alpha), covariance_type, float(reg))

    def describe(self, params: ProductParams, columns: Sequence[str]) -> list[dict[str, Any]]:
        rows = []
        for j in range(params.n_components):
            row: dict[str, Any] = {"component": j, "weight": float(params.weights[j])}
            for b, p in zip(self.blocks, params.blocks, strict=True):
                row.update(b.describe(p, j))
            rows.append(row)
        return rows


def _blocks_by_kind(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    blocks = data["blocks"]
    if not isinstance(blocks, list):
        raise ValueError("blocks must be a list")
    out: dict[str, dict[str, Any]] = {}
    for block in blocks:
        if not isinstance(block, dict) or block.get("kind") not in KINDS:
            raise ValueError(f"each block needs a kind among {', '.join(KINDS)}")
        if block["kind"] in out:
            raise ValueError(f"two {block['kind']} blocks")
        if not isinstance(block.get("columns"), list):
            raise ValueError(f"the {block['kind']} block needs a list of columns")
        out[block["kind"]] = block
    return out


class CategoricalFamily(ProductFamily):
    """Latent class analysis: every column categorical (poLCA)."""

    name = "categorical"


class BernoulliFamily(ProductFamily):
    """Every column 0/1."""

    name = "bernoulli"


class PoissonFamily(ProductFamily):
    """Every column a count."""

    name = "poisson"


class MixedFamily(ProductFamily):
    """Each column its own kind; numeric columns one Gaussian block."""

    name = "mixed"


def default_columns(family: str, names: Sequence[str]) -> list[ColumnSpec]:
    """Specs for numeric columns that need no levels (bernoulli, poisson)."""
    if family not in ("bernoulli", "poisson"):
        raise UsageError(
            f"{{family}} {family} needs the levels of each column: fit a table or DataFrame "
            "(emcli.fit, emcli.api.fit_file), whose columns are encoded first"
        )
    return [ColumnSpec(str(n), family) for n in names]

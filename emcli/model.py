"""The fitted model: one value that can be saved, loaded, printed and applied.

A model is a family (``emcli.families``) with its parameters, the column names, and the
record of how it was fitted.  Its JSON form is the model file (``emcli.modelfile``);
``emcli/schema/model.schema.json`` describes it field by field.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from . import modelfile

Array = NDArray[np.float64]


@dataclass
class MixtureModel:
    """A fitted mixture and the record of how it was fitted.

    Attributes:
        params: the family's parameters (for Gaussian mixtures ``GaussianParams``: weights,
            means, covariances, precision Cholesky factors).
        columns: names of the n_features input columns, in order.
        log_likelihood: total natural-log likelihood of the training data (each row counted
            by its frequency weight).
        n_samples: rows the model was fitted on (the sum of the frequency weights).
        n_iter: EM iterations (M-steps) of the winning start.
        converged: whether the winning start met the tolerance.
        history: log-likelihood after each iteration of the winning start.
        settings: the options used (n_components, covariance_type, init, ...).
        starts: one record per start: start, n_iter, log_likelihood, converged,
            collapsed, error, history.
        collapsed: components of this model found collapsed (empty unless degenerate).
        notes: remarks on the data (constant columns, ...), also shown on stderr.
        warnings: problems with the fit (not converged, collapsed), also shown on stderr.
        extra: further JSON fields (selection table, missing-value counts, ...).
        family: the family object (default: the Gaussian family of ``params``' model).
    """

    params: Any
    columns: list[str]
    log_likelihood: float
    n_samples: float
    n_iter: int = 0
    converged: bool = False
    history: list[float] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    starts: list[dict[str, Any]] = field(default_factory=list)
    collapsed: list[int] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    family: Any = None

    def __post_init__(self) -> None:
        if self.family is None:
            from .families.gaussian import GaussianFamily

            self.family = GaussianFamily(
                self.params.model, float(self.settings.get("reg_covar", 1e-6))
            )

    # ------------------------------------------------------------------ figures
    @property
    def family_name(self) -> str:
        return str(self.family.name)

    @property
    def covariance_type(self) -> str | None:
        """The covariance model (None for a family without a Gaussian part)."""
        kind = getattr(self.params, "covariance_type", None)
        return None if kind is None else str(kind)

    @property
    def n_components(self) -> int:
        return int(self.family.n_components(self.params))

    @property
    def n_features(self) -> int:
        return len(self.columns)

    @property
    def weights(self) -> Array:
        return self.family.mixing_weights(self.params)

    @property
    def means(self) -> Array:
        return self.params.means

    @property
    def covariances(self) -> Array:
        """Covariances in scikit-learn's native shape for the covariance type."""
        return self.params.covariances

    def full_covariances(self) -> Array:
        """Covariances as k full (d x d) matrices, shape (n_components, n_features,
        n_features), whatever the covariance type (the model file stores native shapes)."""
        return self.params.full_covariances()

    @property
    def n_parameters(self) -> int:
        return int(self.family.n_parameters(self.params))

    @property
    def bic(self) -> float:
        """-2 log L + p ln n (lower is better; scikit-learn's sign)."""
        n = max(float(self.n_samples), 1e-300)
        return -2.0 * self.log_likelihood + self.n_parameters * math.log(n)

    @property
    def aic(self) -> float:
        """-2 log L + 2 p (lower is better)."""
        return -2.0 * self.log_likelihood + 2.0 * self.n_parameters

    # ------------------------------------------------------------------ applying
    @property
    def projection(self) -> Any:
        """The principal-axes projection the model was fitted on (``fit --pca``), or None."""
        data = self.extra.get("pca")
        if data is None:
            return None
        cached = getattr(self, "_projection", None)
        if cached is None or cached[0] is not data:
            from .pca import Projection

            cached = (data, Projection.from_dict(data))
            object.__setattr__(self, "_projection", cached)
        return cached[1]

    @property
    def input_columns(self) -> list[str]:
        """The columns new rows must have: ``columns``, or the columns projected by
        ``--pca`` (then the row methods project them first)."""
        p = self.projection
        return list(self.columns) if p is None else list(p.columns)

    def _rows(self, x: Any) -> Array:
        rows = getattr(self.family, "rows", None)
        if rows is not None:  # a family with its own rows (documents: texts or counts)
            return rows(x)  # type: ignore[no-any-return]
        x = np.asarray(x, dtype=np.float64)
        width = len(self.input_columns)
        if x.ndim != 2 or x.shape[1] != width:
            raise ValueError(f"expected an array of shape (n, {width})")
        p = self.projection
        return x if p is None else p.transform(x)

    def log_resp_and_norm(self, x: Any) -> tuple[Array, Array]:
        """Log-responsibilities (n, k) and each row's log-density (n,)."""
        return self.family.log_resp_and_norm(self._rows(x), self.params)

    def predict_proba(self, x: Any) -> Array:
        """Responsibilities, shape (n_samples, n_components); rows sum to 1."""
        return np.exp(self.log_resp_and_norm(x)[0])

    def predict(self, x: Any) -> NDArray[np.intp]:
        """The most likely component of each row, shape (n_samples,)."""
        return np.argmax(self.log_resp_and_norm(x)[0], axis=1)

    def score_samples(self, x: Any) -> Array:
        """Log-density of each row under the mixture, shape (n_samples,)."""
        return self.log_resp_and_norm(x)[1]

    def outlier_scores(self, x: Any) -> tuple[NDArray[np.intp], Array, Array]:
        """(label, u, log-density) of each row, for a t mixture: the most likely component,
        the row's expected weight u = (nu + d) / (nu + delta) under it (well below 1 for a
        row the fit discounts as an outlier) and the row's log-density under the mixture.

        Raises:
            UsageError: the family has no such weight (it is the t family's).
        """
        scores = getattr(self.family, "outlier_scores", None)
        if scores is None:
            from .errors import UsageError

            raise UsageError(
                f"outlier scores (the expected weight u of each row) are a t mixture's; this "
                f"model is of {{family}} {self.family_name}"
            )
        return scores(self._rows(x), self.params)

    def impute(self, x: Any) -> Array:
        """``x`` with each missing cell (NaN) replaced by its conditional expectation under the
        mixture, sum_j r_ij E[x_m | x_o, j]; observed cells unchanged."""
        return self.family.impute(self._rows(x), self.params)

    def sample(self, n_samples: int, rng: np.random.Generator) -> tuple[Array, NDArray[np.int64]]:
        """``n_samples`` rows drawn from the mixture, and the component of each row."""
        return self.family.sample(self.params, n_samples, rng)

    # ------------------------------------------------------------------ JSON
    def to_dict(self) -> dict[str, Any]:
        return modelfile.model_to_dict(self)

    def to_json(self) -> str:
        return modelfile.to_json(self)

    @classmethod
    def from_dict(cls, data: Any) -> MixtureModel:
        return modelfile.model_from_dict(data, cls)

    def save(self, path: str | Path) -> None:
        from .data.writers import write_text_atomic

        write_text_atomic(path, self.to_json())

    @classmethod
    def load(cls, path: str | Path) -> MixtureModel:
        return modelfile.load(path, cls)


# The name of 0.1.0, kept: a Gaussian mixture is a MixtureModel of the Gaussian family.
GaussianMixtureModel = MixtureModel

"""Covariance models as values: one row of a table per model, no strings compared elsewhere.

A model says how the k covariance matrices are constrained.  Each row names

* ``form``: how the covariances are stored and how densities are computed (the kernels'
  kind): ``full`` (k, d, d), ``tied`` (one (d, d) for all), ``diag`` (k, d) or
  ``spherical`` (k,) -- scikit-learn's native shapes, also those of the model file;
* ``stats``: which second moments the M-step needs: ``full`` (k, d, d), ``pooled`` (d, d,
  summed over the components) or ``diag`` (k, d);
* the number of free covariance parameters, and the M-step of the covariances from the
  scatter matrices.

scikit-learn's four types are the rows today, with their mclust names (Celeux & Govaert 1995,
Sigma_k = lambda_k D_k A_k D_k^T): full = VVV, tied = EEE, diag = VVI, spherical = VII.  A new
model is a new row (``MODELS``) and, if it needs one, an M-step function; the families, the
engines, the model file and the CLI take it from here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.float64]


@dataclass(frozen=True)
class Scatter:
    """Second moments about the new means, as the covariance M-step needs them.

    Attributes:
        n_k: responsibility mass of each component, shape (k,) (guarded against 0).
        w: scatter sum_i r_ij (x_i - m_j)(x_i - m_j)^T: (k, d, d) for ``stats == "full"``,
            (d, d) summed over components for ``pooled``, the diagonals (k, d) for ``diag``.
    """

    n_k: Array
    w: Array


@dataclass(frozen=True)
class CovarianceModel:
    """One covariance model (a row of ``MODELS``)."""

    name: str
    mclust: str
    form: str
    stats: str
    n_free: Callable[[int, int], int]
    m_step: Callable[[Scatter, float], Array]
    description: str

    def n_parameters(self, k: int, d: int) -> int:
        """Free covariance parameters for k components in d dimensions."""
        return int(self.n_free(k, d))

    def __str__(self) -> str:
        return self.name

    def __reduce__(self) -> tuple[Callable[[str], CovarianceModel], tuple[str]]:
        # Pickled by name (the rows hold lambdas; model selection ships fitted models
        # between processes), and unpickled as the same row of ``MODELS``.
        return covariance_model, (self.name,)


def _full(s: Scatter, reg_covar: float) -> Array:
    cov = s.w / s.n_k[:, None, None]
    cov = 0.5 * (cov + cov.transpose(0, 2, 1))
    d = cov.shape[-1]
    cov[:, np.arange(d), np.arange(d)] += reg_covar
    return cov


def _tied(s: Scatter, reg_covar: float) -> Array:
    cov = s.w / s.n_k.sum()
    cov = 0.5 * (cov + cov.T)
    d = cov.shape[-1]
    cov[np.arange(d), np.arange(d)] += reg_covar
    return cov


def _diag(s: Scatter, reg_covar: float) -> Array:
    return np.maximum(s.w / s.n_k[:, None], 0.0) + reg_covar


def _spherical(s: Scatter, reg_covar: float) -> Array:
    return np.maximum(s.w / s.n_k[:, None], 0.0).mean(axis=1) + reg_covar


MODELS: dict[str, CovarianceModel] = {
    m.name: m
    for m in (
        CovarianceModel(
            "full",
            "VVV",
            "full",
            "full",
            lambda k, d: k * d * (d + 1) // 2,
            _full,
            "one unconstrained covariance matrix per component",
        ),
        CovarianceModel(
            "tied",
            "EEE",
            "tied",
            "pooled",
            lambda k, d: d * (d + 1) // 2,
            _tied,
            "one covariance matrix shared by all components",
        ),
        CovarianceModel(
            "diag",
            "VVI",
            "diag",
            "diag",
            lambda k, d: k * d,
            _diag,
            "one diagonal covariance per component (axis-aligned)",
        ),
        CovarianceModel(
            "spherical",
            "VII",
            "spherical",
            "diag",
            lambda k, d: k,
            _spherical,
            "one variance per component (round clusters)",
        ),
    )
}
COVARIANCE_TYPES: tuple[str, ...] = tuple(MODELS)
# Other spellings a user may type for the same rows (case-insensitive).
_ALIASES = {m.mclust.lower(): m.name for m in MODELS.values()}


def covariance_model(name: str | CovarianceModel) -> CovarianceModel:
    """The model called ``name`` (emcli's or mclust's name, any case).

    Raises:
        ValueError: no such model.
    """
    if isinstance(name, CovarianceModel):
        return name
    key = str(name).strip().lower()
    key = _ALIASES.get(key, key)
    if key not in MODELS:
        raise ValueError(
            f"unknown covariance type {name!r}; choose from {', '.join(COVARIANCE_TYPES)}"
        )
    return MODELS[key]


def parse_covariances(spec: str) -> list[str]:
    """'full' -> ['full']; 'diag,full' -> both; 'all' -> the four types."""
    names = [v.strip().lower() for v in spec.split(",") if v.strip()]
    if names == ["all"]:
        return list(COVARIANCE_TYPES)
    known = []
    bad = []
    for v in names:
        try:
            known.append(covariance_model(v).name)
        except ValueError:
            bad.append(v)
    names = known
    if bad or not names:
        raise ValueError(
            f"unknown covariance type '{', '.join(bad) or spec}'; choose from "
            f"{', '.join(COVARIANCE_TYPES)}, a comma list, or all"
        )
    return list(dict.fromkeys(names))


# ---------------------------------------------------------------------------- shapes
def native_shape(form: str, k: int, d: int) -> tuple[int, ...]:
    """Shape of the stored covariances of a model of this form."""
    return {"full": (k, d, d), "tied": (d, d), "diag": (k, d), "spherical": (k,)}[form]


def to_full(form: str, covariances: Array, k: int, d: int) -> Array:
    """Native covariances -> array of shape (k, d, d)."""
    cov = np.asarray(covariances, dtype=np.float64)
    if form == "full":
        return np.array(cov)
    if form == "tied":
        return np.repeat(cov[None, :, :], k, axis=0)
    if form == "diag":
        return cov[:, :, None] * np.eye(d)[None]
    return cov[:, None, None] * np.eye(d)[None]


def from_full(form: str, full: Array) -> Array:
    """Array of k full (d x d) matrices -> native covariances for the form."""
    full = np.asarray(full, dtype=np.float64)
    if form == "full":
        return full
    if form == "tied":
        return full[0].copy()
    diag = np.diagonal(full, axis1=1, axis2=2).copy()
    return diag if form == "diag" else diag[:, 0].copy()


def has_form(form: str, full: Array) -> bool:
    """Whether k full matrices have the structure of ``form`` (exactly)."""
    d = full.shape[-1]
    diagonal = np.diagonal(full, axis1=1, axis2=2)
    if form == "tied":
        return bool(np.all(full == full[:1]))
    if form == "diag":
        return bool(np.all(full == diagonal[:, :, None] * np.eye(d)))
    if form == "spherical":
        return bool(np.all(full == diagonal[:, :1, None] * np.eye(d)))
    return True

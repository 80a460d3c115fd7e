"""The fitted model: one value that can be saved, loaded, printed and applied.

Its JSON form (the file ``--params`` writes) is the portable model file: a ``format`` marker,
a ``schema_version``, the parameters (covariances always as k full d x d matrices), the fit's
figures, the settings and a record of every start.  ``emcli/schema/model.schema.json``
describes it field by field.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .errors import ModelFileError
from .families.gaussian import (
    COVARIANCE_TYPES,
    GaussianParams,
    from_full_covariances,
    n_parameters,
)
from .families.missing import impute, log_resp_and_norm  # rows with NaN: marginal densities

Array = NDArray[np.float64]
FORMAT = "emcli-gaussian-mixture"
SCHEMA_VERSION = 1
# Fields written by ``to_dict`` itself; anything else in a file is kept in ``extra``.
CORE_FIELDS = frozenset(
    "format schema_version family covariance_type columns n_components n_features weights "
    "means covariances log_likelihood n_samples n_parameters bic aic n_iter converged "
    "degenerate collapsed_components settings history starts notes warnings".split()
)


@dataclass
class GaussianMixtureModel:
    """A fitted Gaussian mixture and the record of how it was fitted.

    Attributes:
        params: the mixture (weights, means, covariances, precision Cholesky factors).
        columns: names of the n_features input columns, in order.
        log_likelihood: total natural-log likelihood of the training data.
        n_samples: rows the model was fitted on.
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
    """

    params: GaussianParams
    columns: list[str]
    log_likelihood: float
    n_samples: int
    n_iter: int = 0
    converged: bool = False
    history: list[float] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    starts: list[dict[str, Any]] = field(default_factory=list)
    collapsed: list[int] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------------ figures
    @property
    def covariance_type(self) -> str:
        return self.params.covariance_type

    @property
    def n_components(self) -> int:
        return self.params.n_components

    @property
    def n_features(self) -> int:
        return self.params.n_features

    @property
    def weights(self) -> Array:
        return self.params.weights

    @property
    def means(self) -> Array:
        return self.params.means

    @property
    def covariances(self) -> Array:
        """Covariances in scikit-learn's native shape for the covariance type."""
        return self.params.covariances

    @property
    def n_parameters(self) -> int:
        return n_parameters(self.covariance_type, self.n_components, self.n_features)

    @property
    def bic(self) -> float:
        """-2 log L + p ln n (lower is better; scikit-learn's sign)."""
        return -2.0 * self.log_likelihood + self.n_parameters * math.log(self.n_samples)

    @property
    def aic(self) -> float:
        """-2 log L + 2 p (lower is better)."""
        return -2.0 * self.log_likelihood + 2.0 * self.n_parameters

    # ------------------------------------------------------------------ applying
    def predict_proba(self, x: Array) -> Array:
        """Responsibilities, shape (n_samples, n_components); rows sum to 1."""
        return np.exp(self._log_resp_and_norm(x)[0])

    def predict(self, x: Array) -> NDArray[np.intp]:
        """The most likely component of each row, shape (n_samples,)."""
        return np.argmax(self._log_resp_and_norm(x)[0], axis=1)

    def score_samples(self, x: Array) -> Array:
        """Log-density of each row under the mixture, shape (n_samples,)."""
        return self._log_resp_and_norm(x)[1]

    def impute(self, x: Array) -> Array:
        """``x`` with each missing cell (NaN) replaced by its conditional expectation under the
        mixture, sum_j r_ij E[x_m | x_o, j]; observed cells unchanged."""
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise ValueError(f"expected an array of shape (n, {self.n_features})")
        return impute(x, self.params)

    def _log_resp_and_norm(self, x: Array) -> tuple[Array, Array]:
        from .engines.memory import block_rows

        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise ValueError(f"expected an array of shape (n, {self.n_features})")
        n, k = x.shape[0], self.n_components
        log_resp, norm = np.empty((n, k)), np.empty(n)
        size = block_rows(k, self.n_features)
        for s in range(0, n, size):
            log_resp[s : s + size], norm[s : s + size] = log_resp_and_norm(
                x[s : s + size], self.params
            )
        return log_resp, norm

    # ------------------------------------------------------------------ JSON
    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "format": FORMAT,
            "schema_version": SCHEMA_VERSION,
            "family": "gaussian",
            "covariance_type": self.covariance_type,
            "columns": list(self.columns),
            "n_components": self.n_components,
            "n_features": self.n_features,
            "weights": self.weights.tolist(),
            "means": self.means.tolist(),
            "covariances": self.params.full_covariances().tolist(),
            "log_likelihood": self.log_likelihood,
            "n_samples": self.n_samples,
            "n_parameters": self.n_parameters,
            "bic": self.bic,
            "aic": self.aic,
            "n_iter": self.n_iter,
            "converged": self.converged,
            "degenerate": bool(self.collapsed),
            "collapsed_components": list(self.collapsed),
            "settings": dict(self.settings),
            "history": list(self.history),
            "starts": list(self.starts),
            "notes": list(self.notes),
            "warnings": list(self.warnings),
        }
        out.update(self.extra)
        return out

    def to_json(self) -> str:
        return json.dumps(_finite(self.to_dict()), indent=2, allow_nan=False) + "\n"

    @classmethod
    def from_dict(cls, data: Any) -> GaussianMixtureModel:
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ModelFileError(
                "not an emcli model file (no \"format\": \"emcli-gaussian-mixture\"); "
                "write one with: emcli fit DATA -k K --params model.json"
            )
        version = data.get("schema_version")
        if not isinstance(version, int) or version > SCHEMA_VERSION or version < 1:
            raise ModelFileError(
                f"model schema version {version!r} is not supported by this emcli "
                f"(it reads version {SCHEMA_VERSION}); upgrade emcli"
            )
        try:
            kind = data["covariance_type"]
            if kind not in COVARIANCE_TYPES:
                raise ValueError(f"unknown covariance_type {kind!r}")
            weights = _numbers(data, "weights", 1)
            means = _numbers(data, "means", 2)
            full = _numbers(data, "covariances", 3)
            k, d = means.shape
            if weights.shape != (k,) or full.shape != (k, d, d) or len(data["columns"]) != d:
                raise ValueError("weights, means, covariances and columns disagree in shape")
            if not (np.all(np.isfinite(weights)) and np.all(np.isfinite(means))
                    and np.all(np.isfinite(full))):
                raise ValueError("non-finite parameter values")
            _check_parameters(data, kind, weights, full)
            params = GaussianParams.from_covariances(
                kind, weights, means, from_full_covariances(kind, full)
            )
            return cls(
                params=params,
                columns=[str(c) for c in data["columns"]],
                log_likelihood=float(data["log_likelihood"]),
                n_samples=int(data["n_samples"]),
                n_iter=int(data.get("n_iter", 0)),
                converged=bool(data.get("converged", False)),
                history=[float(v) for v in data.get("history", [])],
                settings=dict(data.get("settings", {})),
                starts=list(data.get("starts", [])),
                collapsed=[int(j) for j in data.get("collapsed_components", [])],
                notes=[str(v) for v in data.get("notes", [])],
                warnings=[str(v) for v in data.get("warnings", [])],
                extra={k2: v for k2, v in data.items() if k2 not in CORE_FIELDS},
            )
        except ModelFileError:
            raise
        except KeyError as exc:
            raise ModelFileError(
                f"the model file is malformed: no field {exc}; write it again with "
                "'emcli fit --params'"
            ) from None
        except Exception as exc:  # a malformed file, whatever part of it is wrong
            raise ModelFileError(
                f"the model file is malformed: {exc}; write it again with 'emcli fit --params'"
            ) from None

    def save(self, path: str | Path) -> None:
        from .data.writers import write_text_atomic

        write_text_atomic(path, self.to_json())

    @classmethod
    def load(cls, path: str | Path) -> GaussianMixtureModel:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ModelFileError(f"model file '{path}' does not exist") from None
        except IsADirectoryError:
            raise ModelFileError(
                f"model file '{path}' is a directory; give the JSON file written by "
                "'emcli fit --params'"
            ) from None
        except UnicodeDecodeError:
            raise ModelFileError(
                f"'{path}' is not an emcli model file (not UTF-8 text); give the JSON file "
                "written by 'emcli fit --params'"
            ) from None
        except OSError as exc:
            raise ModelFileError(f"cannot read model file '{path}': {exc}") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ModelFileError(
                f"'{path}' is not an emcli model file (not JSON: {exc}); give the JSON file "
                "written by 'emcli fit --params'"
            ) from None
        try:
            return cls.from_dict(data)
        except ModelFileError as exc:
            raise ModelFileError(f"'{path}': {exc}") from None

    def sample(self, n_samples: int, rng: np.random.Generator) -> tuple[Array, NDArray[np.int64]]:
        """``n_samples`` rows drawn from the mixture, and the component of each row."""
        from .sampling import sample

        return sample(self.params, n_samples, rng)


def _numbers(data: dict[str, Any], key: str, ndim: int) -> Array:
    """Field ``key`` as a float array of ``ndim`` dimensions, or ValueError saying so."""
    try:
        value = np.asarray(data[key], dtype=np.float64)
    except (TypeError, ValueError):
        value = None
    if value is None or value.ndim != ndim:
        shape = {1: "a list of numbers", 2: "a list of lists of numbers (k x d)",
                 3: "k matrices of d x d numbers"}[ndim]
        raise ValueError(f"{key} must be {shape}")
    return value


def _check_parameters(data: dict[str, Any], kind: str, weights: Array, full: Array) -> None:
    """Raise ValueError unless the parameters make a valid mixture of type ``kind``."""
    k, d = full.shape[0], full.shape[1]
    for key, value in (("n_components", k), ("n_features", d)):
        if key in data and data[key] != value:
            raise ValueError(f"{key} is {data[key]!r} but the parameters have {value}")
    if len(set(map(str, data["columns"]))) != d:
        raise ValueError("the column names are not unique")
    if np.any(weights < 0) or abs(float(weights.sum()) - 1.0) > 1e-6:
        raise ValueError("the weights must be 0 or more and sum to 1")
    for j in range(k):
        scale = float(np.max(np.abs(full[j]))) or 1.0
        if np.max(np.abs(full[j] - full[j].T)) > 1e-10 * scale:
            raise ValueError(f"the covariance matrix of component {j} is not symmetric")
        try:
            np.linalg.cholesky(full[j])
        except np.linalg.LinAlgError:
            raise ValueError(
                f"the covariance matrix of component {j} is not positive definite"
            ) from None
    diagonal = np.diagonal(full, axis1=1, axis2=2)
    shapes = {
        "tied": bool(np.all(full == full[:1])),
        "diag": bool(np.all(full == diagonal[:, :, None] * np.eye(d))),
        "spherical": bool(np.all(full == diagonal[:, :1, None] * np.eye(d))),
    }
    if not shapes.get(kind, True):
        raise ValueError(f"the covariances do not have the form of covariance_type {kind!r}")


def _finite(value: Any) -> Any:
    """Replace non-finite floats by None (JSON has no NaN; no NaN reaches a file)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value

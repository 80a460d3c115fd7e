"""The Gaussian family's fields of the model file, read and checked.

Schema version 2 stores ``covariances`` in the native shape of the covariance model's form
(full: k x d x d; tied: d x d; diag: k x d; spherical: k), so the file grows with the
parameter count, not with d^2.  Version 1 (emcli 0.1.0) always stored k full d x d matrices;
such files load exactly as before.  Raise ValueError with what is wrong; the caller adds the
file's name.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from .models import (
    constraint_violation,
    covariance_model,
    from_full,
    has_form,
    native_shape,
)
from .params import GaussianParams

Array = NDArray[np.float64]
_SHAPES = {
    1: "a list of numbers",
    2: "a list of lists of numbers (k x d)",
    3: "k matrices of d x d numbers",
}


def numbers(data: dict[str, Any], key: str, ndim: int) -> Array:
    """Field ``key`` as a float array of ``ndim`` dimensions, or ValueError saying so."""
    try:
        value = np.asarray(data[key], dtype=np.float64)
    except (TypeError, ValueError):
        value = None
    if value is None or value.ndim != ndim:
        raise ValueError(f"{key} must be {_SHAPES.get(ndim, f'{ndim}-dimensional')}")
    if not np.all(np.isfinite(value)):
        raise ValueError(f"{key} holds non-finite values")
    return value


def params_from_dict(data: dict[str, Any], schema_version: int) -> GaussianParams:
    """``GaussianParams`` from a model file's fields (ValueError when malformed)."""
    kind = data["covariance_type"]
    if not isinstance(kind, str):
        raise ValueError("covariance_type must be a string")
    model = covariance_model(kind)
    weights = numbers(data, "weights", 1)
    means = numbers(data, "means", 2)
    k, d = means.shape
    if schema_version == 1:
        full = numbers(data, "covariances", 3)
        if full.shape != (k, d, d):
            raise ValueError("weights, means, covariances and columns disagree in shape")
        if not has_form(model.form, full):
            raise ValueError(f"the covariances do not have the form of covariance_type {kind!r}")
        native = from_full(model.form, full)
    else:  # never k full matrices for a diagonal model (d = 6830 is 46.6 million each)
        shape = native_shape(model.form, k, d)
        native = numbers(data, "covariances", len(shape))
        if native.shape != shape:
            raise ValueError(
                f"covariances of covariance_type {kind!r} must have shape "
                f"{' x '.join(map(str, shape))} (k = {k}, d = {d}), not "
                f"{' x '.join(map(str, native.shape))}"
            )
    if weights.shape != (k,) or len(data["columns"]) != d:
        raise ValueError("weights, means, covariances and columns disagree in shape")
    check_parameters(data, weights, model.form, native, k, d)
    broken = constraint_violation(model, native)
    if broken is not None:
        raise ValueError(f"{broken}: the covariances are not of model {model.mclust}")
    return GaussianParams.from_covariances(model, weights, means, native)


def check_parameters(
    data: dict[str, Any], weights: Array, form: str, native: Array, k: int, d: int
) -> None:
    """Raise ValueError unless the parameters make a valid mixture."""
    for key, value in (("n_components", k), ("n_features", d)):
        if key in data and data[key] != value:
            raise ValueError(f"{key} is {data[key]!r} but the parameters have {value}")
    if len(set(map(str, data["columns"]))) != d:
        raise ValueError("the column names are not unique")
    if np.any(weights < 0) or abs(float(weights.sum()) - 1.0) > 1e-6:
        raise ValueError("the weights must be 0 or more and sum to 1")
    if form in ("diag", "spherical"):
        bad = np.flatnonzero(~(native.reshape(k, -1) > 0).all(axis=1))
        if bad.size:
            raise ValueError(
                f"the covariance matrix of component {bad[0]} is not positive definite"
            )
        return
    mats = native[None] if form == "tied" else native
    for j, c in enumerate(mats):
        scale = float(np.max(np.abs(c))) or 1.0
        if np.max(np.abs(c - c.T)) > 1e-10 * scale:
            raise ValueError(f"the covariance matrix of component {j} is not symmetric")
        try:
            np.linalg.cholesky(c)
        except np.linalg.LinAlgError:
            raise ValueError(
                f"the covariance matrix of component {j} is not positive definite"
            ) from None

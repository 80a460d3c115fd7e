"""A principal-axes projection of the columns before fitting (``fit --pca N``).

For tables with more columns than rows (gene expression: 64 samples x 6830 genes) no
non-diagonal covariance can be estimated and diagonal ones see mostly noise; fitting on the
first N principal axes is the usual remedy.  The projection is part of the model: the model
file records it (``"pca"``: the input columns, their means, the N axes as rows, the variance
each explains), and predict, score and the row outputs apply it to new rows of the input
columns before the mixture's densities.

The axes are the right singular vectors of the centred rows (weighted rows count as
repeated), signs fixed so that each axis's largest loading is positive (the same data give
the same file).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .errors import DataError, UsageError

Array = NDArray[np.float64]


@dataclass(frozen=True)
class Projection:
    columns: list[str]
    mean: Array
    components: Array  # (N, d): the axes as rows
    explained_variance: Array  # (N,)

    @property
    def names(self) -> list[str]:
        """The projected columns: PC1, PC2, ..."""
        return [f"PC{i + 1}" for i in range(self.components.shape[0])]

    def transform(self, x: Array) -> Array:
        """Rows of the input columns (n, d) -> their coordinates on the axes (n, N)."""
        return (np.asarray(x, dtype=np.float64) - self.mean) @ self.components.T

    def inverse(self, z: Array) -> Array:
        """Coordinates (n, N) -> points of the input space (n, d) (plots map back)."""
        return np.asarray(z, dtype=np.float64) @ self.components + self.mean

    def to_dict(self) -> dict[str, Any]:
        return {
            "columns": list(self.columns),
            "mean": self.mean.tolist(),
            "components": self.components.tolist(),
            "explained_variance": self.explained_variance.tolist(),
        }

    @classmethod
    def from_dict(cls, data: Any) -> Projection:
        """ValueError when malformed."""
        if not isinstance(data, dict):
            raise ValueError("pca must be an object")
        try:
            columns = [str(c) for c in data["columns"]]
            mean = np.asarray(data["mean"], dtype=np.float64)
            comps = np.asarray(data["components"], dtype=np.float64)
            var = np.asarray(data["explained_variance"], dtype=np.float64)
        except (KeyError, TypeError, ValueError):
            raise ValueError("pca needs columns, mean, components and explained_variance") from None
        d = len(columns)
        if (
            mean.shape != (d,)
            or comps.ndim != 2
            or comps.shape[1] != d
            or var.shape != comps.shape[:1]
        ):
            raise ValueError("pca's columns, mean, components and explained_variance disagree")
        if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(comps))):
            raise ValueError("pca holds non-finite values")
        return cls(columns, mean, comps, var)


def fit_projection(
    x: Array, n_axes: int, columns: list[str], weights: Array | None = None
) -> Projection:
    """The first ``n_axes`` principal axes of the rows ``x`` (complete rows only).

    Raises:
        UsageError: ``n_axes`` < 1.
        DataError: gaps in the rows, or more axes than the data has.
    """
    if n_axes < 1:
        raise UsageError("{pca} must be at least 1")
    if np.isnan(x).any():
        raise DataError(
            "{pca} needs complete rows: the data has missing values; drop them first "
            "({missing} drop)"
        )
    n, d = x.shape
    if n_axes > min(n, d):
        raise DataError(
            f"{{pca}} {n_axes} asks for more principal axes than the data has (at most "
            f"{min(n, d)} from {n} rows and {d} columns)"
        )
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
    total = float(w.sum())
    mean = (w @ x) / total
    centred = (x - mean) * np.sqrt(w)[:, None]
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    axes = vt[:n_axes].copy()
    flip = np.sign(axes[np.arange(n_axes), np.argmax(np.abs(axes), axis=1)])
    axes *= np.where(flip == 0, 1.0, flip)[:, None]
    var = s[:n_axes] ** 2 / max(total - 1.0, 1.0)
    return Projection(list(columns), mean, axes, var)

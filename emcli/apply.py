"""Applying a fitted model to rows that arrive block by block, and summarising a model.

``apply_blocks`` turns row blocks into log-responsibilities and per-row log-densities, on
the same row blocks as ``GaussianMixtureModel.predict_proba`` (so the numbers are equal to
the in-memory path bit for bit).  ``LowestRows`` keeps the N least likely rows of a stream
in bounded memory.  ``describe`` is the model at a glance as plain data.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from .errors import DataError
from .model import GaussianMixtureModel

if TYPE_CHECKING:
    from .data.reader import Block

Array = NDArray[np.float64]


def apply_blocks(
    model: GaussianMixtureModel,
    blocks: Iterable[Block],
    columns: Sequence[str],
    density_only: bool = False,
) -> Iterator[tuple[int, Array, Array]]:
    """``(first_row, log_resp, log_density)`` for each block of rows.

    A row so far from every component that its squared Mahalanobis distances overflow
    (values of the order of 1e150 in the model's units) has a log-density below the float
    range: with ``density_only`` it is reported as -inf (and its log_resp must not be
    used), otherwise it is a DataError, as its responsibilities cannot be computed.

    Infinite values are refused (``check_finite_rows``); missing values (NaN) are fine: a
    row is scored by the marginal density of its observed cells, as ``fit`` scores it (a
    row with nothing observed has log-density 0 and the mixture weights as
    responsibilities).

    Args:
        blocks: ``emcli.data.reader.Block``s (first row, x of shape (rows, n_features) in
            the model's column order, weights unused); any block sizes.
        columns: input column names (for messages).
        density_only: the caller uses only the log-densities.

    Yields:
        log-responsibilities of shape (rows, n_components) and per-row log-densities of
        shape (rows,), on blocks of 8192 rows.
    """
    from .data.checks import check_finite_rows
    from .data.reader import rebatch

    size = 8192
    documents = bool(getattr(blocks, "documents", False))  # CSR counts, checked by the reader
    for first, x, _ in blocks if documents else rebatch(blocks, size):
        width = len(model.input_columns)
        if x.shape[1] != width:
            raise DataError(f"expected {width} columns, got {x.shape[1]}")
        if not documents:
            check_finite_rows(x, columns, first)
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            log_resp, norm = model.log_resp_and_norm(x)  # checked just below
        far = ~np.isfinite(norm)
        if far.any():
            if not density_only:
                raise DataError(
                    f"data row {first + int(np.argmax(far)) + 1} is too far from every "
                    "component of the model for its probabilities to be computed (a value "
                    "out of scale?); check or remove that row (emcli score gives it -inf)"
                )
            norm[far] = -np.inf
        yield first, log_resp, norm


class LowestRows:
    """The ``n`` rows of lowest value seen so far (ties: the earlier row first).

    Memory stays O(n + block): candidates are pruned back to ``n`` whenever they exceed
    twice that.
    """

    def __init__(self, n: int) -> None:
        self.n = int(n)
        self._rows: list[NDArray[np.int64]] = []
        self._values: list[Array] = []
        self._held = 0

    def add(self, rows: NDArray[np.int64], values: Array) -> None:
        if self.n <= 0 or not len(rows):
            return
        self._rows.append(np.asarray(rows, dtype=np.int64))
        self._values.append(np.asarray(values, dtype=np.float64))
        self._held += len(rows)
        if self._held > 2 * self.n:
            self._prune()

    def _prune(self) -> None:
        rows, values = self.result()
        self._rows, self._values, self._held = [rows], [values], len(rows)

    def result(self) -> tuple[NDArray[np.int64], Array]:
        """(rows, values) sorted by increasing value, then by row."""
        if not self._rows:
            return np.empty(0, dtype=np.int64), np.empty(0)
        rows = np.concatenate(self._rows)
        values = np.concatenate(self._values)
        order = np.lexsort((rows, values))[: self.n]
        return rows[order], values[order]


def _model_name(model: GaussianMixtureModel) -> dict[str, Any]:
    """mclust's name and description of a Gaussian model's covariance model."""
    name = getattr(model.params, "model_name", None)
    if name is None:
        return {}
    from .families.gaussian.models import covariance_model

    return {"model_name": name, "model_description": covariance_model(name).description}


def describe(model: GaussianMixtureModel, full_covariances: bool = False) -> dict[str, Any]:
    """The model at a glance: figures, components (weight, means, sds), settings, selection.

    With ``full_covariances`` every Gaussian component also gets its full d x d
    ``covariance`` matrix (the model file stores the covariance model's native shape).
    """
    components = model.family.describe(model.params, model.columns)
    if full_covariances and hasattr(model.params, "full_covariances"):
        for j, row in enumerate(components):
            row["covariance"] = model.params.permuted(np.array([j])).full_covariances()[0].tolist()
    out: dict[str, Any] = {
        "family": model.family_name,
        "covariance_type": model.covariance_type,
        **_model_name(model),
        "n_components": model.n_components,
        "n_features": model.n_features,
        "columns": list(model.columns),
        "components": components,
        "log_likelihood": model.log_likelihood,
        "mean_log_likelihood": model.log_likelihood / model.n_samples if model.n_samples else None,
        "n_samples": model.n_samples,
        "n_parameters": model.n_parameters,
        "bic": model.bic,
        "aic": model.aic,
        "n_iter": model.n_iter,
        "converged": model.converged,
        "degenerate": bool(model.collapsed),
        "collapsed_components": list(model.collapsed),
        "n_starts": len(model.starts),
        "best_start": model.extra.get("best_start"),
        "reseeded": model.extra.get("reseeded"),
        "settings": dict(model.settings),
        "notes": list(model.notes),
        "warnings": list(model.warnings),
    }
    selection = model.extra.get("selection")
    if isinstance(selection, dict):
        table = selection.get("table") or []
        out["selection"] = {
            "criterion": selection.get("criterion"),
            "winner": selection.get("winner"),
            "runner_up_margin": selection.get("runner_up_margin"),
            "n_candidates": len(table),
        }
    return out

"""The Python surface of emcli: ``fit`` a Gaussian mixture to an array or a table.

Example::

    import numpy as np
    import emcli

    x = np.random.default_rng(0).normal(size=(500, 2))
    model = emcli.fit(x, n_components=3)
    model.log_likelihood, model.bic, model.predict(x)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .em import EMSettings, FitOutcome, Monitor, canonical_order, fit_em
from .engines.memory import MemoryEngine
from .engines.summary import check_rows
from .errors import DataError, UsageError
from .families.missing import MISSING_POLICIES, observed_var
from .model import GaussianMixtureModel

Array = NDArray[np.float64]
# Larger magnitudes overflow float64 once squared and summed over rows.
MAX_ABS_VALUE = 1e100


def fit(
    x: Any,
    n_components: int,
    *,
    columns: Sequence[str] | None = None,
    covariance_type: str = "full",
    init: str = "kmeans",
    n_restarts: int = 10,
    max_iter: int = 1000,
    tol: float = 1e-8,
    reg_covar: float = 1e-6,
    seed: int = 0,
    init_sample: int = 100_000,
    missing: str = "em",
    monitor: Monitor | None = None,
    accelerate: bool = False,
    dtype: str = "float64",
) -> GaussianMixtureModel:
    """Fit a Gaussian mixture by EM with several starts and keep the best.

    Args:
        x: data of shape (n_samples, n_features): a numpy array or a pandas DataFrame
            (its column names are kept).
        n_components: number of mixture components k (>= 1, at most n_samples).
        columns: names of the columns (default: the DataFrame's, or x0, x1, ...).
        covariance_type: "full", "tied", "diag" or "spherical" (scikit-learn's meaning).
        init: "kmeans" (k-means++ seeded Lloyd), "kmeans++" or "random".
        n_restarts: independent starts; the highest log-likelihood that is not collapsed wins.
        max_iter: maximum EM iterations per start.
        tol: stop when the mean log-likelihood per row changes by less than this; 0 runs
            exactly ``max_iter`` iterations.
        reg_covar: added to every covariance diagonal (the covariance floor).
        seed: seed of all randomness; the same seed and data give the same model.
        init_sample: initialisation runs on at most this many rows (a uniform sample).
        missing: what to do with missing values (NaN): "em" fits every row by the marginal
            density of its observed cells (EM over the gaps); "drop" fits on the complete
            rows only; "error" refuses data with gaps.  With "em" and "drop" the model
            still predicts every row (from its observed cells).
        monitor: receives progress (see ``emcli.em.Monitor``).
        accelerate: SQUAREM-accelerated EM (fewer iterations to the same optimum; the
            likelihood still never decreases); ignored when ``tol`` is 0.
        dtype: "float64" (default) or "float32": the E-step on single-precision rows (about
            2x less memory traffic; statistics and M-step stay float64).  Log-likelihoods
            then agree with float64 to about 1e-6 relative, so use it with a ``tol`` no
            smaller than ~1e-5 (README, "Speed").

    Returns:
        The fitted model; ``model.notes`` and ``model.warnings`` hold messages for the user.

    Raises:
        DataError: the data cannot be fitted (infinite values, too few rows, a column with
            no observed value, or missing values with ``missing="error"``).
        UsageError: an invalid setting.
        FitError: every start failed (e.g. singular covariances with ``reg_covar=0``).
    """
    x, names = _as_array(x, columns)
    settings = EMSettings(
        n_components=int(n_components),
        covariance_type=covariance_type,
        init=init,
        n_restarts=int(n_restarts),
        max_iter=int(max_iter),
        tol=float(tol),
        reg_covar=float(reg_covar),
        seed=int(seed),
        init_sample=int(init_sample),
        accelerate=bool(accelerate),
        dtype=str(dtype),
    )
    try:
        settings.validate()
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if missing not in MISSING_POLICIES:
        raise UsageError(f"missing must be one of {', '.join(MISSING_POLICIES)}")
    check_fittable(x, names, settings.n_components, missing=missing)
    x_fit, record, notes = apply_missing_policy(x, missing)
    if x_fit is not x:  # complete rows only: is k still possible?
        check_fittable(x_fit, names, settings.n_components, missing=missing)
    outcome = fit_em(MemoryEngine(x_fit, dtype=settings.dtype), settings, monitor)
    model = model_from_outcome(outcome, settings, names, x_fit.shape[0])
    model.extra["missing"] = record
    model.notes.extend(notes)
    model.notes.extend(data_notes(x_fit, names, settings.reg_covar))
    return model


def apply_missing_policy(x: Array, policy: str) -> tuple[Array, dict[str, Any], list[str]]:
    """The rows to fit under ``policy``, the model file's "missing" record, and notes."""
    gaps = np.isnan(x)
    rows = gaps.any(axis=1)
    record, notes = missing_record(policy, x.shape[0], int(gaps.sum()), int(rows.sum()),
                                   int(gaps.all(axis=1).sum()))
    if policy == "drop" and rows.any():
        return np.ascontiguousarray(x[~rows]), record, notes
    return x, record, notes


def missing_record(policy: str, n: int, cells: int, n_gap: int,
                   n_all_missing: int) -> tuple[dict[str, Any], list[str]]:
    """The "missing" record and notes from counts (engines that never hold all rows).

    Args:
        n: rows; cells: missing cells; n_gap: rows with a missing cell; n_all_missing: rows
            with no observed cell.
    """
    record: dict[str, Any] = {
        "policy": policy,
        "cells": cells,
        "rows": n_gap,
        "rows_all_missing": n_all_missing,
    }
    if not n_gap:
        return record, []
    if policy == "drop":
        if n_gap == n:
            raise DataError(
                "every row has a missing value, so --missing drop leaves nothing to fit; "
                "use --missing em"
            )
        record["rows_dropped"] = n_gap
        return record, [
            f"dropped {n_gap} of {n} rows with missing values (--missing drop); the model is "
            "fitted on the complete rows, and labels/responsibilities are still given for "
            "every row, from its observed columns"
        ]
    note = (
        f"{n_gap} of {n} rows have missing values ({record['cells']} cells); EM uses the "
        "observed columns of each row (the log-likelihood is that of the observed cells)"
    )
    if record["rows_all_missing"]:
        note += (
            f"; {record['rows_all_missing']} row(s) have no observed value: they get the "
            "mixture weights as responsibilities"
        )
    return record, [note]


def _as_array(x: Any, columns: Sequence[str] | None) -> tuple[Array, list[str]]:
    if hasattr(x, "columns") and hasattr(x, "to_numpy"):  # a pandas DataFrame
        names = [str(c) for c in x.columns]
        x = x.to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        x = np.asarray(x, dtype=np.float64)
        if x.ndim == 1:
            x = x[:, None]
        names = [f"x{j}" for j in range(x.shape[1])] if x.ndim == 2 else []
    if x.ndim != 2:
        raise DataError(f"expected a 2-D table of shape (n_samples, n_features), got {x.shape}")
    if columns is not None:
        names = [str(c) for c in columns]
        if len(names) != x.shape[1]:
            raise DataError(f"{len(names)} column names for {x.shape[1]} columns")
    return np.ascontiguousarray(x), names


def check_fittable(
    x: Array, names: Sequence[str], n_components: int, missing: str = "error"
) -> None:
    """Raise DataError for data EM cannot take: no rows, inf, k > rows, a column with no
    observed value, gaps unless ``missing`` is "em" or "drop"."""
    n = x.shape[0]
    if n == 0 or x.shape[1] == 0:
        raise DataError("the data has no rows or no columns")
    if np.isinf(x).any():
        row, col = np.argwhere(np.isinf(x))[0]
        raise DataError(f"column '{names[col]}' has an infinite value (data row {row + 1})")
    # Squares and sums of squares of such values overflow to inf (numpy warnings, then a
    # misleading "singular covariance"): refuse them up front.
    huge = np.abs(x) > MAX_ABS_VALUE
    if huge.any():
        row, col = np.argwhere(huge)[0]
        raise DataError(
            f"column '{names[col]}' has a value too large to fit ({x[row, col]:g}, data row "
            f"{row + 1}); EM needs |values| <= {MAX_ABS_VALUE:g}: scale the data"
        )
    gaps = np.isnan(x)
    if gaps.any():
        empty = np.flatnonzero(gaps.all(axis=0))
        if empty.size:
            raise DataError(
                f"column '{names[empty[0]]}' has no observed value; leave it out with "
                "-c/--columns"
            )
    if gaps.any() and missing not in ("em", "drop"):
        row, col = np.argwhere(gaps)[0]
        raise DataError(
            f"the data has {int(gaps.sum())} missing value(s) (first: column '{names[col]}', "
            f"data row {row + 1}); fit them with --missing em, drop incomplete rows with "
            "--missing drop, or fill the gaps"
        )
    if n_components > n:
        raise DataError(
            f"-k {n_components} is more components than the {n} data rows; use at most -k {n}"
        )


def data_notes(x: Array, names: Sequence[str], reg_covar: float) -> list[str]:
    """Notes on the data a user should see: constant columns, a floor out of scale."""
    return variance_notes(observed_var(x), names, reg_covar)  # x.var(axis=0) when complete


def variance_notes(var: Array, names: Sequence[str], reg_covar: float) -> list[str]:
    """``data_notes`` from the column variances (engines that never hold all rows)."""
    notes = []
    constant = [n for n, v in zip(names, var, strict=True) if v == 0.0]
    if constant:
        notes.append(
            f"column(s) {', '.join(constant)} are constant over the input; they are fitted "
            f"with variance --reg-covar ({reg_covar:g}) and do not separate clusters"
        )
    tiny = [n for n, v in zip(names, var, strict=True) if 0.0 < v < 100.0 * reg_covar]
    if tiny:
        notes.append(
            f"--reg-covar {reg_covar:g} is not small next to the variance of column(s) "
            f"{', '.join(tiny)}; scale the data or lower --reg-covar"
        )
    return notes


def model_from_outcome(
    outcome: FitOutcome, settings: EMSettings, columns: Sequence[str], n_samples: int
) -> GaussianMixtureModel:
    """The winning start as a model, its components in the canonical order."""
    best = outcome.best
    assert best.params is not None
    order = canonical_order(best.params)
    rank = {int(old): new for new, old in enumerate(order)}
    model = GaussianMixtureModel(
        params=best.params.permuted(order),
        columns=list(columns),
        log_likelihood=best.log_likelihood,
        n_samples=n_samples,
        n_iter=best.n_iter,
        converged=best.converged,
        history=list(best.history),
        settings=asdict(settings),
        starts=[
            {
                "start": s.start,
                "n_iter": s.n_iter,
                "log_likelihood": s.log_likelihood if s.usable else None,
                "converged": s.converged,
                "collapsed": bool(s.collapsed),
                "error": s.error,
                "history": list(s.history),
            }
            for s in outcome.starts
        ],
        collapsed=sorted(rank[j] for j in best.collapsed),
    )
    model.extra["best_start"] = best.start
    model.extra["reseeded"] = outcome.reseeded
    model.warnings.extend(outcome.warnings)
    return model


def fit_engine(
    engine: Any,
    n_components: int,
    *,
    columns: Sequence[str] | None = None,
    missing: str = "em",
    monitor: Monitor | None = None,
    **settings: Any,
) -> GaussianMixtureModel:
    """Fit from an engine (``emcli.engines``): the rows stay where the engine keeps them.

    Same settings, rules and result as ``fit`` (which is this on a ``MemoryEngine``); an
    engine with the same rows and the same seed gives the same model up to rounding.

    Example::

        from emcli.engines.stream import StreamEngine
        with StreamEngine("big.parquet", block_rows=100_000) as engine:
            model = emcli.api.fit_engine(engine, 3, covariance_type="diag")

    Args:
        engine: a ``MemoryEngine``, ``StreamEngine``, ``DaskEngine`` or any object with
            ``n_samples``, ``n_features``, ``take(indices)`` and ``e_step(params)``; the
            stream and dask engines also run the data checks and notes of ``fit``.
        n_components: number of mixture components k.
        columns: column names (default: ``engine.columns``, else x0, x1, ...).
        missing: "em", "drop" or "error", as for ``fit``.
        monitor: receives progress (see ``emcli.em.Monitor``).
        **settings: the keyword settings of ``fit`` (covariance_type, init, n_restarts,
            max_iter, tol, reg_covar, seed, init_sample).
    """
    try:
        settings_ = EMSettings(n_components=int(n_components), **settings)
        settings_.validate()
    except (TypeError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    if missing not in MISSING_POLICIES:
        raise UsageError(f"missing must be one of {', '.join(MISSING_POLICIES)}")
    if columns is None:
        columns = getattr(engine, "columns", None) or [f"x{j}" for j in range(engine.n_features)]
    names = [str(c) for c in columns]
    k = settings_.n_components
    record: dict[str, Any] | None = None
    notes: list[str] = []
    var: Array | None = None
    if isinstance(engine, MemoryEngine):
        check_fittable(engine.x, names, k, missing=missing)
        x_fit, record, notes = apply_missing_policy(engine.x, missing)
        if x_fit is not engine.x:
            check_fittable(x_fit, names, k, missing=missing)
        # dtype="float32" on float64 rows: EM runs on a single-precision copy, and the
        # caller's engine keeps its float64 rows (for labels and responsibilities).
        if x_fit is not engine.x or (settings_.dtype == "float32" and engine.x.dtype != np.float32):
            engine = MemoryEngine(x_fit, dtype=settings_.dtype)
        var = observed_var(x_fit)
    elif hasattr(engine, "summary"):  # the stream and dask engines (engines.summary)
        engine.check(k, missing)
        s = engine.summary
        record, notes = missing_record(missing, s.n_rows, s.n_missing, s.rows_with_gaps,
                                       s.rows_all_missing)
        engine.complete_only = missing == "drop" and s.rows_with_gaps > 0
        check_rows(k, engine.n_samples)
        var = engine.variances()
    else:
        check_rows(k, engine.n_samples)
    outcome = fit_em(engine, settings_, monitor)
    model = model_from_outcome(outcome, settings_, names, engine.n_samples)
    if record is not None:
        model.extra["missing"] = record
    model.notes.extend(notes)
    if var is not None:
        model.notes.extend(variance_notes(var, names, settings_.reg_covar))
    return model


def fit_file(
    path: str,
    n_components: int,
    *,
    engine: str = "stream",
    fmt: str | None = None,
    columns: Sequence[str] | None = None,
    delimiter: str | None = None,
    block_rows: int | None = None,
    scheduler: str | None = None,
    monitor: Monitor | None = None,
    **settings: Any,
) -> GaussianMixtureModel:
    """Fit a file (CSV, TSV, Parquet; for dask also a glob) with the named engine.

    ``engine`` is "memory", "stream" or "dask"; ``scheduler`` is a Dask scheduler address
    (default: a local cluster).  Other arguments as ``fit``.  ``model.notes`` starts with
    the input's notes (skipped columns).
    """
    from .engines.choose import open_engine

    with open_engine(engine, path, fmt=fmt, columns=columns, delimiter=delimiter,
                     block_rows=block_rows, scheduler=scheduler) as eng:
        model = fit_engine(eng, n_components, monitor=monitor, **settings)
        model.notes[:0] = list(eng.notes)
        return model

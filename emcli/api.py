"""The Python surface of emcli: ``fit`` a mixture to an array, a table or an engine.

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

from .data.checks import ColumnSummary, check_fittable, check_n_components
from .data.encode import ENCODED_FAMILIES, encode_frame
from .em.driver import EMSettings, FitOutcome, fit_em
from .em.monitor import Monitor
from .engines.memory import MemoryEngine
from .errors import DataError, Message, ModelFileError, UsageError, render
from .families import get_family
from .families.gaussian.missing import MISSING_POLICIES, observed_var
from .model import MixtureModel

Array = NDArray[np.float64]


def fit(
    x: Any,
    n_components: int,
    *,
    columns: Sequence[str] | None = None,
    family: str = "gaussian",
    covariance_type: str | None = None,
    init: Any = "auto",
    n_restarts: int = 10,
    max_iter: int = 1000,
    tol: float = 1e-8,
    reg_covar: float = 1e-6,
    seed: int = 0,
    init_sample: int = 100_000,
    missing: str = "em",
    sample_weight: Any = None,
    monitor: Monitor | None = None,
    accelerate: bool = False,
    dtype: str = "float64",
    explore: bool = False,
    pca: int | None = None,
    reorder: bool = True,
    alpha: float | None = None,
    types: Any = None,
    schema: Any = None,
    df: float | None = None,
    df_shared: bool = False,
    tokeniser: Any = None,
) -> MixtureModel:
    """Fit a mixture by EM with several starts and keep the best.

    Args:
        x: data of shape (n_samples, n_features): a numpy array or a pandas DataFrame
            (its column names are kept).
        n_components: number of mixture components k (>= 1, at most n_samples).
        columns: names of the columns (default: the DataFrame's, or x0, x1, ...).
        family: the mixture family (``emcli.families.FAMILIES``): "gaussian"; "categorical"
            (latent class analysis: every column categorical, text, boolean or integer
            codes), "bernoulli" (0/1 columns), "poisson" (counts) or "mixed" (numeric
            columns one Gaussian block, text and boolean columns categorical); these four
            take a DataFrame with text columns as it is (docs/categorical.md); "t" for
            multivariate t components (heavy tails; docs/t.md).
        covariance_type: "full", "tied", "diag" or "spherical" (scikit-learn's meaning)
            or any of mclust's 14 models, any case (EII, VII, EEI, VEI, EVI, VVI, EEE, VEE,
            EVE, VVE, EEV, VEV, EVV, VVV; E and V for one column; full = VVV, tied = EEE,
            diag = VVI, spherical = VII); default "full", or the covariance type of
            ``init`` when that is a model.
        init: "auto" (start 0 hierarchical, then k-means, k-means++ and random starts in
            turn), "hc" (mclust's model-based hierarchical start), "kmeans" (k-means++
            seeded Lloyd), "kmeans++", "random", or a fitted model (a ``MixtureModel`` or
            the path of a model file): a warm start, run as the one start from that
            model's parameters.
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
        sample_weight: frequency weights, shape (n_samples,): a row of weight 3 counts as
            three identical rows (log-likelihood, BIC/AIC with n = the sum of the weights,
            parameters).  Rows of weight 0 still get labels.
        monitor: receives progress (see ``emcli.em.Monitor``).
        accelerate: SQUAREM-accelerated EM (fewer iterations to the same optimum; the
            likelihood still never decreases); ignored when ``tol`` is 0.
        dtype: "float64" (default) or "float32": the E-step on single-precision rows (about
            2x less memory traffic; statistics and M-step stay float64).  Log-likelihoods
            then agree with float64 to about 1e-6 relative, so use it with a ``tol`` no
            smaller than ~1e-5 (docs/speed.md).
        explore: run the restarts in two phases, as model selection does (every start to a
            tolerance of 1e-5, then start 0 and the best other on to ``tol``;
            ``emcli.em.driver``): about 2-3x faster with many restarts, at the price of the
            guarantee that more restarts never end worse.
        pca: fit on the first ``pca`` principal axes of the columns (for tables with more
            columns than rows); the model records the projection (``model.extra["pca"]``,
            ``emcli.pca``) and its row methods take rows of the original columns.
        reorder: list the fitted components in the family's canonical order (the Gaussian
            family: by decreasing weight); False keeps the order of the start (a warm
            start's components stay where they were, as scikit-learn's estimators do).
        alpha: pseudo-count added to every level of a categorical column and to each side
            of a bernoulli one (None: the family's default, 0 = maximum likelihood as poLCA).
        types: {column: kind} or "COL=KIND,..." overriding the kinds of ``family`` "mixed"
            (kinds: gaussian, categorical, poisson, bernoulli).
        schema: for rows already encoded (``emcli.data.encode``): the ``ColumnSpec`` of
            each column; ``x`` is then taken as floats as it is.
        df: family "t" only: fix every component's degrees of freedom to this number > 0
            (default: estimated per component, within ``emcli.families.t.DF_BOUNDS``).
        df_shared: family "t" only: estimate one degrees of freedom for all components.
        tokeniser: family "multinomial" with texts: the rules that turn them into counts
            (``emcli.data.text.Tokeniser`` or its dict; default: English stop words,
            min_df 2, max_df 0.5, max_vocab 20000; docs/documents.md).  For family
            "multinomial" ``x`` is a list (or Series) of texts, or a document-term count
            matrix (scipy sparse, an array, a DataFrame whose columns are the terms).

    Returns:
        The fitted model; ``model.notes`` and ``model.warnings`` hold messages for the user.

    Raises:
        DataError: the data cannot be fitted (infinite values, too few rows, a column with no
            observed value, missing values with ``missing="error"``, bad weights).
        UsageError: an invalid setting.
        FitError: every start failed (e.g. singular covariances with ``reg_covar=0``).
    """
    tok = None
    if family == "multinomial":
        from .data.documents import document_matrix

        x, names, tok = document_matrix(x, columns, tokeniser)
        if tok is None and tokeniser is not None:  # counts made by this tokeniser
            from .data.documents import tokeniser_of

            tok = tokeniser_of(tokeniser)
    elif schema is not None:
        x, names = _as_array(x, columns or [s.name for s in schema])
    elif family in ENCODED_FAMILIES:
        like = _init_columns(init, family)
        x, schema = encode_frame(x, family, columns, _types(types, family), like)
        names = [s.name for s in schema]
    else:
        x, names = _as_array(x, columns)
    weights = check_weights(sample_weight, x.shape[0])
    if dtype not in ("float64", "float32"):
        raise UsageError("{dtype} must be float64 or float32")
    engine = MemoryEngine(x, weights=weights, dtype=dtype)
    engine.tokeniser = tok  # type: ignore[attr-defined]
    return fit_engine(
        engine,
        n_components,
        columns=names,
        family=family,
        covariance_type=covariance_type,
        init=init,
        n_restarts=n_restarts,
        max_iter=max_iter,
        tol=tol,
        reg_covar=reg_covar,
        seed=seed,
        init_sample=init_sample,
        missing=missing,
        monitor=monitor,
        accelerate=accelerate,
        dtype=dtype,
        explore=explore,
        pca=pca,
        reorder=reorder,
        alpha=alpha,
        schema=schema,
        df=df,
        df_shared=df_shared,
    )


def fit_documents(
    documents: Any,
    n_components: int,
    *,
    stop_words: str | Sequence[str] = "english",
    min_df: int = 2,
    max_df: float = 0.5,
    max_vocab: int = 20000,
    alpha: float | None = None,
    **settings: Any,
) -> MixtureModel:
    """Cluster texts with a mixture of multinomials (topics; docs/documents.md).

    Example::

        model = emcli.fit_documents(texts, 20)
        model.family.top_words(model.params, 10)     # each cluster's most probable words
        model.predict(new_texts)                     # words not in the vocabulary ignored

    Args:
        documents: the texts (a list or Series of strings), or a document-term count
            matrix (scipy sparse or an array; ``columns=`` names its terms).
        n_components: the number of clusters k.
        stop_words: "english" (the built-in list), "none", or the words themselves.
        min_df, max_df, max_vocab: keep terms in at least ``min_df`` documents and at most
            a fraction ``max_df`` of them, at most ``max_vocab`` terms (the most frequent).
        alpha: the pseudo-count of every term in every cluster (default 0.01).
        **settings: the other keyword settings of ``fit`` (n_restarts, seed, tol, init,
            sample_weight, accelerate, ...).
    """
    from .data.text import Tokeniser

    words = stop_words if isinstance(stop_words, str) else tuple(str(w) for w in stop_words)
    tokeniser = Tokeniser(stop_words=words, min_df=min_df, max_df=max_df, max_vocab=max_vocab)
    tokeniser.validate()
    return fit(
        documents, n_components, family="multinomial", alpha=alpha, tokeniser=tokeniser, **settings
    )


def _types(types: Any, family: str) -> dict[str, str]:
    from .data.encode import parse_types

    parsed = parse_types(types)
    if parsed and family != "mixed":
        raise UsageError("{types} gives columns their own kinds: use it with {family} mixed")
    return parsed


def _init_columns(init: Any, family: str) -> Any:
    """The column specs (kinds, levels) of a warm-start model, to encode new rows alike."""
    from .em.init import INIT_METHODS

    if (isinstance(init, str) and init in INIT_METHODS) or (
        callable(init) and not isinstance(init, MixtureModel)
    ):
        return None
    model = init if isinstance(init, MixtureModel) else MixtureModel.load(init)
    return getattr(model.family, "columns", None) if model.family_name == family else None


def make_family(
    name: str,
    covariance_type: str | None,
    reg_covar: float,
    alpha: float | None = None,
    schema: Any = None,
    columns: Sequence[str] = (),
    options: dict[str, Any] | None = None,
    tokeniser: Any = None,
) -> Any:
    """The family object for a fit: the Gaussian or t family (``options``: family settings
    such as ``df``; those set, not None or False, must be among the family class's
    ``options``), or a product family over the columns' kinds and levels (``schema``:
    ``emcli.data.encode.ColumnSpec`` list; for bernoulli and poisson it may be left out)."""
    from .families import FAMILIES, family_class

    given = {key: v for key, v in (options or {}).items() if v is not None and v is not False}
    allowed = getattr(family_class(name), "options", ())
    for key in given:
        if key not in allowed:
            owners = [f for f in FAMILIES if key in getattr(family_class(f), "options", ())]
            raise UsageError(
                f"{{{key}}} is not a setting of {{family}} {name}"
                + (f"; it is one of {{family}} {' or '.join(owners)}" if owners else "")
            )
    if name == "multinomial":
        return get_family(name, vocabulary=columns, alpha=alpha, tokeniser=tokeniser)
    if name not in ENCODED_FAMILIES:
        if alpha is not None:
            raise UsageError(
                f"{{alpha}} is for the categorical, bernoulli, mixed and multinomial families, "
                f"not {name}"
            )
        return get_family(
            name, covariance_type=covariance_type or "full", reg_covar=reg_covar, **given
        )
    if schema is None:
        from .families.discrete import default_columns

        schema = default_columns(name, columns)
    return get_family(
        name, columns=schema, alpha=alpha, covariance_type=covariance_type, reg_covar=reg_covar
    )


def check_weights(sample_weight: Any, n: int) -> Array | None:
    """Frequency weights as a float array of shape (n,), or None.  Their values (negative,
    missing, infinite, all 0) are checked with the data (``emcli.data.checks``)."""
    if sample_weight is None:
        return None
    try:
        w = np.asarray(sample_weight, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError("{sample_weight} must be numbers, one per row") from None
    if w.shape != (n,):
        raise DataError(f"{{sample_weight}} has shape {w.shape}; expected ({n},), one per row")
    return np.ascontiguousarray(w)


def apply_missing_policy(
    x: Array, policy: str, summary: ColumnSummary | None = None
) -> tuple[NDArray[np.bool_] | None, dict[str, Any], list[str]]:
    """The rows to fit under ``policy`` (a mask, None for all), the model file's "missing"
    record, and notes (the counts from ``summary``, the data checks' summary of ``x``, when
    given)."""
    s = summary if summary is not None else ColumnSummary.of_block(x)
    record, notes = missing_record(
        policy, x.shape[0], s.n_missing, s.rows_with_gaps, s.rows_all_missing
    )
    if policy == "drop" and s.rows_with_gaps:
        return np.asarray(~np.isnan(x).any(axis=1)), record, notes
    return None, record, notes


def missing_record(
    policy: str, n: int, cells: int, n_gap: int, n_all_missing: int
) -> tuple[dict[str, Any], list[str]]:
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
                "every row has a missing value, so {missing} drop leaves nothing to fit; "
                "use {missing} em"
            )
        record["rows_dropped"] = n_gap
        return record, [
            f"dropped {n_gap} of {n} rows with missing values ({{missing}} drop); the model is "
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


def model_from_outcome(
    outcome: FitOutcome,
    family: Any,
    settings: dict[str, Any],
    columns: Sequence[str],
    n_samples: float,
    reorder: bool = True,
) -> MixtureModel:
    """The winning start as a model, its components in the family's canonical order (or in
    the start's order when not ``reorder``)."""
    best = outcome.best
    k = family.n_components(best.params)
    order = family.canonical_order(best.params) if reorder else np.arange(k)
    rank = {int(old): new for new, old in enumerate(order)}
    model = MixtureModel(
        params=family.permute(best.params, order),
        columns=list(columns),
        log_likelihood=best.log_likelihood,
        n_samples=n_samples,
        n_iter=best.n_iter,
        converged=best.converged,
        history=list(best.history),
        settings=settings,
        starts=[
            {
                "start": s.start,
                "n_iter": s.n_iter,
                "log_likelihood": s.log_likelihood if s.usable else None,
                "converged": s.converged,
                "collapsed": bool(s.collapsed),
                "error": None if s.error is None else render(s.error),
                "history": list(s.history),
            }
            for s in outcome.starts
        ],
        collapsed=sorted(rank[j] for j in best.collapsed),
        family=family,
    )
    model.extra["best_start"] = best.start
    model.extra["reseeded"] = outcome.reseeded
    model.warnings.extend(outcome.warnings)
    return model


def warm_start(
    init: Any, family_name: str, covariance_type: str | None, k: int, n_features: int
) -> tuple[MixtureModel | None, str | None]:
    """(the model to start from or None, the covariance type to fit) for ``init``."""
    from .em.init import INIT_METHODS

    if (isinstance(init, str) and init in INIT_METHODS) or callable(init):
        return None, covariance_type
    if isinstance(init, (str, bytes)) or hasattr(init, "__fspath__"):
        model = MixtureModel.load(init)  # ModelFileError names the file
    elif isinstance(init, MixtureModel):
        model = init
    else:
        raise UsageError(
            f"{{init}} must be one of {', '.join(INIT_METHODS)}, a fitted model or the path "
            f"of a model file, not {init!r}"
        )
    if model.family_name != family_name:
        raise UsageError(
            f"the {{init}} model is of family {model.family_name!r}, not {family_name!r}"
        )
    if model.n_components != k:
        raise UsageError(
            f"the {{init}} model has {model.n_components} components but {{n_components}} is {k}"
        )
    if model.n_features != n_features:
        raise ModelFileError(
            f"the {{init}} model has {model.n_features} columns but the data has {n_features}"
        )
    kind = model.covariance_type
    if covariance_type is not None and kind is not None and covariance_type != kind:
        from .families.gaussian import covariance_model

        if not covariance_model(covariance_type).same(covariance_model(kind)):
            raise UsageError(
                f"the {{init}} model has {{covariance_type}} {kind}, not "
                f"{covariance_type}; leave {{covariance_type}} out or match it"
            )
    return model, kind or covariance_type


def fit_engine(
    engine: Any,
    n_components: int,
    *,
    columns: Sequence[str] | None = None,
    family: str = "gaussian",
    covariance_type: str | None = None,
    init: Any = "auto",
    reg_covar: float = 1e-6,
    missing: str = "em",
    monitor: Monitor | None = None,
    pca: int | None = None,
    reorder: bool = True,
    alpha: float | None = None,
    schema: Any = None,
    df: float | None = None,
    df_shared: bool = False,
    refuse_singular: bool = False,
    **settings: Any,
) -> MixtureModel:
    """Fit from an engine (``emcli.engines``): the rows stay where the engine keeps them.

    Same settings, rules and result as ``fit`` (which is this on a ``MemoryEngine``); an
    engine with the same rows and the same seed gives the same model up to rounding.

    Example::

        from emcli.engines.stream import StreamEngine
        with StreamEngine("big.parquet", block_rows=100_000) as engine:
            model = emcli.api.fit_engine(engine, 3, covariance_type="diag")

    Args:
        engine: a ``MemoryEngine``, ``StreamEngine``, ``DaskEngine`` or any object with
            ``n_samples``, ``n_features``, ``dtype``, ``take(indices)`` and
            ``e_step(family, plan)``; the stream and dask engines also run the data checks
            and notes of ``fit``.
        n_components: number of mixture components k.
        columns: column names (default: ``engine.columns``, else x0, x1, ...).
        family, covariance_type, init, reg_covar, missing, pca, reorder, alpha, df,
            df_shared: as for ``fit`` (``pca`` needs a ``MemoryEngine``).
        schema: the columns' kinds and levels (``emcli.data.encode.ColumnSpec`` list) for
            the categorical and mixed families (default: ``engine.schema``).
        monitor: receives progress (see ``emcli.em.Monitor``).
        refuse_singular: raise DataError (``check_estimable``) for a non-diagonal Gaussian
            covariance on data with at least as many columns as rows, as ``emcli fit``
            does, instead of fitting it held up by ``reg_covar`` (scikit-learn's way).
        **settings: the other keyword settings of ``fit`` (n_restarts, max_iter, tol, seed,
            init_sample, accelerate, dtype, explore).
    """
    if columns is None:
        columns = getattr(engine, "columns", None) or [f"x{j}" for j in range(engine.n_features)]
    names = [str(c) for c in columns]
    k = int(n_components)
    start_model, kind = warm_start(init, family, covariance_type, k, len(names))
    starter = init if callable(init) and not isinstance(init, MixtureModel) else None
    try:
        em = EMSettings(
            n_components=k,
            init="auto" if start_model or starter else init,
            **{key: v for key, v in settings.items()},
        )
    except TypeError as exc:
        raise UsageError(str(exc)) from None
    em.validate()
    schema = schema if schema is not None else getattr(engine, "schema", None)
    fam = make_family(
        family,
        kind,
        float(reg_covar),
        alpha,
        schema,
        names,
        {"df": df, "df_shared": df_shared},
        getattr(engine, "tokeniser", None),
    )
    if start_model is not None:
        _check_same_columns(start_model, fam)
    if missing not in MISSING_POLICIES:
        raise UsageError(f"{{missing}} must be one of {', '.join(MISSING_POLICIES)}")
    engine, record, notes, var = _prepare_rows(engine, names, k, missing, em.dtype)
    projection = None
    if pca is not None:
        if family != "gaussian":
            raise UsageError("{pca} is for the gaussian family")
        engine, names, var, projection = _project(engine, int(pca), names, em.dtype)
        notes = [*notes, _pca_note(projection)]
    if refuse_singular and family == "gaussian" and start_model is None:
        check_estimable(kind, engine.n_samples, len(names))
    init_params = None if start_model is None else start_model.params
    outcome = fit_em(engine, fam, em, monitor, init_params, starter)
    recorded = _recorded_settings(asdict(em), fam)
    if start_model is not None:
        recorded["init"] = "model"
    elif starter is not None:
        recorded["init"] = getattr(starter, "recorded_init", "function")
    total = getattr(engine, "total_weight", engine.n_samples)
    model = model_from_outcome(outcome, fam, recorded, names, _as_count(total), reorder)
    if record is not None:
        model.extra["missing"] = record
    weights = getattr(engine, "weights", None)
    if weights is not None:
        model.extra["sample_weight"] = {"rows": engine.n_samples, "total": _as_count(total)}
    if projection is not None:
        model.extra["pca"] = projection.to_dict()
    model.notes.extend(Message(n) for n in notes)
    if var is not None:
        model.notes.extend(Message(n) for n in fam.notes(var, names))
    return model


def _project(engine: Any, n_axes: int, names: list[str], dtype: str):
    """(engine on the projected rows, their names, variances, the projection)."""
    from .pca import fit_projection

    if not isinstance(engine, MemoryEngine):
        raise UsageError("{pca} needs every row in memory (the memory engine)")
    x = engine.x.astype(np.float64, copy=False)
    projection = fit_projection(x, n_axes, names, engine.weights)
    z = projection.transform(x)
    return (
        MemoryEngine(z, weights=engine.weights, dtype=dtype),
        projection.names,
        observed_var(z),
        projection,
    )


def _pca_note(projection: Any) -> str:
    n = projection.components.shape[0]
    return (
        f"fitted on {n} principal axes of the {len(projection.columns)} columns "
        f"(variances {', '.join(f'{v:.4g}' for v in projection.explained_variance[:5])}"
        f"{', ...' if n > 5 else ''}); predict and score project new rows the same way"
    )


def check_estimable(covariance_type: str | None, n_rows: int, n_features: int) -> None:
    """``emcli fit``'s rule: a non-diagonal Gaussian covariance cannot be estimated from
    fewer rows than columns (only ``reg_covar`` keeps it positive definite, as in
    scikit-learn, which the library follows), so the CLI says so at once instead of running
    every start into a collapse (mclust refuses such models too)."""
    from .families.gaussian.models import covariance_model

    model = covariance_model(covariance_type or "full")
    if n_rows == 0 or n_features < n_rows or model.form in ("diag", "spherical"):
        return  # (no rows at all: the data checks say so)
    raise DataError(
        f"with {n_features} columns and only {n_rows} rows the {model.name} covariance "
        "cannot be estimated (every non-diagonal covariance is singular when d >= n); fit a "
        "diagonal or spherical model ({covariance_type} diag, VVI, EEI, VEI, EVI, VII or "
        "EII, as mclust does here) or fit on a few principal axes first ({pca} 5)"
    )


def _check_same_columns(model: MixtureModel, family: Any) -> None:
    """A warm start needs the same column kinds and levels as the data."""
    ours, theirs = getattr(family, "columns", None), getattr(model.family, "columns", None)
    if ours is None or theirs is None:
        return
    for a, b in zip(ours, theirs, strict=True):
        if (a.kind, a.levels) != (b.kind, b.levels):
            raise ModelFileError(
                f"the {{init}} model's column '{b.name}' is {b.kind}"
                f"{' with levels ' + ', '.join(b.levels) if b.levels else ''}, the data's "
                f"'{a.name}' is {a.kind}{' with levels ' + ', '.join(a.levels) if a.levels else ''}"
            )


# The order in which the model file lists the settings (0.1.0's order, then the new ones).
_SETTINGS_ORDER = (
    "n_components",
    "covariance_type",
    "init",
    "n_restarts",
    "max_iter",
    "tol",
    "reg_covar",
    "seed",
    "init_sample",
    "accelerate",
    "dtype",
    "family",
)


def _recorded_settings(em: dict[str, Any], family: Any) -> dict[str, Any]:
    values = {**em, **family.settings(), "family": family.name}
    if not values.get("explore"):
        values.pop("explore", None)
    ordered = {key: values.pop(key) for key in _SETTINGS_ORDER if key in values}
    return {**ordered, **values}


def _as_count(total: float) -> float:
    """A total weight as an int when it is one (so n_samples reads as a row count)."""
    return int(total) if float(total).is_integer() else float(total)


def _prepare_rows(engine: Any, names: list[str], k: int, missing: str, dtype: str):
    """Run the data checks; apply the missing-value policy.  Returns (engine, missing
    record, notes, column variances)."""
    if isinstance(engine, MemoryEngine) and engine.sparse:  # document counts
        from .data.documents import check_counts, empty_documents

        check_counts(engine.x)
        check_n_components(k, engine.n_samples)
        empty = empty_documents(engine.x)
        notes = []
        if empty:
            notes.append(
                f"{empty} of {engine.n_samples} documents hold no term of the vocabulary: "
                "they get the mixture weights as responsibilities"
            )
        return engine, None, notes, None
    if isinstance(engine, MemoryEngine):
        # One pass of the data checks in bounded chunks gives the missing counts and the
        # column variances too (no data-sized temporaries).
        x64 = engine.x.astype(np.float64, copy=False)
        summary = check_fittable(x64, names, k, missing, engine.weights, moments=True)
        keep, record, notes = apply_missing_policy(x64, missing, summary)
        if keep is not None:
            w = None if engine.weights is None else engine.weights[keep]
            engine = MemoryEngine(engine.x[keep], weights=w, dtype=dtype)
            summary = check_fittable(engine.x, names, k, missing, w, moments=True)
        elif dtype == "float32" and engine.x.dtype != np.float32:
            # EM on a single-precision copy; the caller's engine keeps its float64 rows
            # (for labels and responsibilities).
            engine = MemoryEngine(engine.x, weights=engine.weights, dtype=dtype)
        return engine, record, notes, summary.variances()
    if hasattr(engine, "summary"):  # the stream and dask engines (engines.scanned)
        engine.check(k, missing)
        s = engine.summary
        record, notes = missing_record(
            missing, s.n_rows, s.n_missing, s.rows_with_gaps, s.rows_all_missing
        )
        engine.complete_only = missing == "drop" and s.rows_with_gaps > 0
        check_n_components(k, engine.n_samples)
        return engine, record, notes, engine.variances()
    check_n_components(k, engine.n_samples)
    return engine, None, [], None


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
    weights: str | None = None,
    monitor: Monitor | None = None,
    **settings: Any,
) -> MixtureModel:
    """Fit a file (CSV, TSV, Parquet; for dask also a glob) with the named engine.

    ``engine`` is "memory", "stream" or "dask"; ``scheduler`` is a Dask scheduler address
    (default: a local cluster); ``weights`` names a column of frequency weights (not a
    feature).  Other arguments as ``fit``.  ``model.notes`` starts with the input's notes
    (skipped columns).
    """
    from .engines.choose import open_engine

    family = settings.get("family", "gaussian")
    encode = None
    if family in ENCODED_FAMILIES and engine in ("memory", "stream"):
        encode = {
            "family": family,
            "types": _types(settings.pop("types", None), family),
            "like": _init_columns(settings.get("init", "kmeans"), family),
        }
    with open_engine(
        engine,
        path,
        fmt=fmt,
        columns=columns,
        delimiter=delimiter,
        block_rows=block_rows,
        scheduler=scheduler,
        weights=weights,
        encode=encode,
    ) as eng:
        model = fit_engine(eng, n_components, monitor=monitor, **settings)
        model.notes[:0] = list(eng.notes)
        return model

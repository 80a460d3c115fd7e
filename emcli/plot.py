"""Pictures of a fitted mixture: clusters, convergence, model selection, marginal density.

Each ``plot_*`` function takes a ``GaussianMixtureModel`` (and the data where the picture
needs it) and returns a ``matplotlib.figure.Figure``; ``save`` writes it as PNG, SVG or PDF.
matplotlib is the optional extra ``emcli-mixture[plot]``: it is imported inside the functions, and
figures are made with ``Figure`` and the Agg canvas directly, never through ``pyplot``, so no
global figure state is shared between calls (safe in servers and threads).

Conventions: colours are the Okabe-Ito palette (distinguishable with the common forms of
colour blindness) and every component also has its own marker, so the pictures still read
in grey; layouts are ``constrained`` (no overlapping labels); a figure of ``size`` inches at
``dpi`` is exactly ``size * dpi`` pixels.  The 1- and 2-sigma ellipses of a component are the
points at Mahalanobis distance 1 and 2 from its mean in the plotted plane (in two dimensions
they hold 39% and 86% of the component's mass).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import IO, Any

import numpy as np
from numpy.typing import NDArray

from .errors import DataError, EmcliError, UsageError
from .model import GaussianMixtureModel

Array = NDArray[np.float64]
KINDS = ("clusters", "convergence", "selection", "density", "levels")
MAX_LEVEL_PANELS = 12  # levels: at most this many columns, one panel each
IMAGE_FORMATS = ("png", "svg", "pdf")
CRITERIA = ("bic", "icl", "aic")
# Okabe & Ito (2008), ordered so that neighbours differ most; yellow last (weak on white).
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
COVARIANCE_STYLE = {  # colour, marker, line style per covariance type (selection plot)
    "full": (PALETTE[0], "o", "-"),
    "tied": (PALETTE[1], "s", "--"),
    "diag": (PALETTE[2], "^", "-."),
    "spherical": (PALETTE[3], "D", ":"),
}
DEFAULT_SIZE = (7.0, 5.0)
MAX_POINTS = 20_000  # scatter plots show a uniform sample of at most this many rows
INSTALL_HINT = 'pip install "emcli-mixture[plot]"'


class MissingExtraError(EmcliError):
    """An optional dependency (an ``emcli-mixture[...]`` extra) is not installed."""


def require_matplotlib() -> None:
    """Raise MissingExtraError (exit status 1) when matplotlib cannot be imported."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise MissingExtraError(
            f"plotting needs matplotlib, which is not installed; install it with: {INSTALL_HINT}"
        ) from None


# ---------------------------------------------------------------------------- which plot
def has_selection(model: GaussianMixtureModel) -> bool:
    record = model.extra.get("selection")
    return isinstance(record, dict) and bool(record.get("table"))


def has_history(model: GaussianMixtureModel) -> bool:
    return bool(model.history) or any(s.get("history") for s in model.starts)


def default_kind(model: GaussianMixtureModel, has_data: bool) -> str:
    """selection if the model holds one; else clusters (density for one column) when data is
    given; else convergence."""
    if has_selection(model):
        return "selection"
    if model.family_name != "gaussian" and _level_columns(model):
        return "levels"
    if has_data and model.family_name == "gaussian":
        return "clusters" if model.n_features >= 2 else "density"
    return "convergence"


def check_kind(model: GaussianMixtureModel, kind: str, has_data: bool) -> None:
    """Raise UsageError when the model file (or the missing INPUT) cannot make ``kind``."""
    if kind not in KINDS:
        raise UsageError(f"unknown plot kind '{kind}'; choose from {', '.join(KINDS)}")
    if kind == "selection" and not has_selection(model):
        raise UsageError(
            "the model file holds no model selection, so there is nothing for {kind} selection "
            "to show; write one with: emcli fit DATA -k 1..9 --covariance all --params "
            "model.json"
        )
    if kind == "convergence" and not has_history(model):
        raise UsageError("the model file holds no iteration history for {kind} convergence")
    if kind in ("clusters", "density") and model.family_name not in ("gaussian", "t"):
        raise UsageError(
            f"{{kind}} {kind} draws Gaussian components; for a {model.family_name} model plot "
            "draws {kind} levels, convergence and selection"
        )
    if kind == "levels" and not _level_columns(model):
        raise UsageError(
            "{kind} levels draws the level probabilities of categorical and bernoulli "
            f"columns, and this {model.family_name} model has none"
        )
    if kind == "clusters":
        if not has_data:
            raise UsageError(
                "{kind} clusters needs the data: give INPUT (a table with the model's columns "
                f"{', '.join(model.columns)})"
            )
        if model.n_features < 2:
            raise UsageError(
                f"{{kind}} clusters needs two columns and the model has one "
                f"('{model.columns[0]}'); use {{kind}} density"
            )


# ---------------------------------------------------------------------------- geometry
def principal_axes(x: Array) -> tuple[Array, Array, Array]:
    """The first two principal axes of the rows of ``x`` (covariance, not correlation).

    Returns:
        (center of shape (d,), axes of shape (d, 2) with orthonormal columns, share of the
        total variance along each axis, shape (2,)).  Signs are fixed so that each axis's
        largest-magnitude loading is positive (the picture does not flip between runs).
    """
    center = x.mean(axis=0)
    cov = np.atleast_2d(np.cov(x, rowvar=False))
    values, vectors = np.linalg.eigh(cov)
    order = np.argsort(values)[::-1][:2]
    axes = vectors[:, order]
    signs = np.sign(axes[np.argmax(np.abs(axes), axis=0), [0, 1]])
    axes = axes * np.where(signs == 0, 1.0, signs)
    total = float(np.sum(np.clip(values, 0.0, None)))
    share = np.clip(values[order], 0.0, None) / total if total > 0 else np.zeros(2)
    return center, axes, share


def ellipse_geometry(cov: Array, radius: float) -> tuple[float, float, float]:
    """(width, height, angle in degrees) of {p : (p-m)^T cov^-1 (p-m) = radius^2}, 2 x 2 cov."""
    values, vectors = np.linalg.eigh(np.asarray(cov, dtype=np.float64))
    values = np.clip(values, 0.0, None)
    major = vectors[:, 1]
    angle = math.degrees(math.atan2(major[1], major[0]))
    return (2.0 * radius * math.sqrt(values[1]), 2.0 * radius * math.sqrt(values[0]), angle)


def component_density(
    values: Array, mean: float, variance: float, df: float | None = None
) -> Array:
    """Normal density N(values; mean, variance); with ``df`` the Student-t density of that
    location, squared scale and degrees of freedom (a t component's marginal)."""
    variance = max(float(variance), np.finfo(np.float64).tiny)
    z = (values - mean) ** 2 / variance
    if df is None:
        return np.exp(-0.5 * z) / math.sqrt(2.0 * math.pi * variance)
    log_c = (
        math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi * variance)
    )
    return np.exp(log_c - 0.5 * (df + 1) * np.log1p(z / df))


# ---------------------------------------------------------------------------- figures
def _figure(size: tuple[float, float] | None, dpi: float, default=DEFAULT_SIZE):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size or default, dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save(fig: Any, handle: IO[bytes], fmt: str) -> None:
    """Write ``fig`` to a binary handle as png, svg or pdf (exactly its size in pixels)."""
    if fmt not in IMAGE_FORMATS:
        raise UsageError(f"unknown image format '{fmt}'; choose from {', '.join(IMAGE_FORMATS)}")
    metadata: dict[str, str | None] | None = {"Software": "emcli"} if fmt == "png" else None
    if fmt == "svg":  # no date in the file: the same input gives the same bytes
        metadata = {"Date": None}
    elif fmt == "pdf":
        metadata = {"CreationDate": None, "ModDate": None}
    from matplotlib import rc_context

    # A fixed salt for SVG element ids: the same model and data give the same bytes.
    with warnings.catch_warnings(), rc_context({"svg.hashsalt": "emcli"}):
        # matplotlib only warns when the labels leave no room for the plot; say what to do.
        warnings.filterwarnings("error", message="constrained_layout not applied")
        try:
            fig.savefig(handle, format=fmt, dpi=fig.dpi, metadata=metadata)
        except UserWarning:
            width, height = fig.get_size_inches()
            raise UsageError(
                f"a {width:g}x{height:g} inch figure is too small for this plot's labels; "
                "give a larger {size} (or {width}/{height})"
            ) from None


def image_format(path: str) -> str:
    """png, svg or pdf from a file name's extension."""
    suffix = path.rsplit(".", 1)[-1].lower() if "." in path.rsplit("/", 1)[-1] else ""
    if suffix not in IMAGE_FORMATS:
        raise UsageError(
            f"cannot tell the image format of '{path}'; give a file name ending in "
            ".png, .svg or .pdf"
        )
    return suffix


def _complete_rows(x: Array, what: str) -> tuple[Array, int]:
    keep = ~np.isnan(x).any(axis=1)
    if not keep.any():
        raise DataError(f"every row of the data has a missing value; nothing to plot for {what}")
    return x[keep], int((~keep).sum())


def _display_sample(n: int) -> NDArray[np.intp]:
    """Rows to draw: all, or a fixed uniform sample of MAX_POINTS (same picture every run)."""
    if n <= MAX_POINTS:
        return np.arange(n)
    rng = np.random.default_rng(0)
    return np.sort(rng.choice(n, size=MAX_POINTS, replace=False))


def _column_index(model: GaussianMixtureModel, name: str, option: str) -> int:
    if name not in model.columns:
        raise UsageError(
            f"{option} '{name}' is not a column of the model; it has: {', '.join(model.columns)}"
        )
    return model.columns.index(name)


def _model_title(model: GaussianMixtureModel) -> str:
    k = model.n_components
    if model.family_name != "gaussian":
        return f"{model.family_name} mixture: {k} component{'s' if k != 1 else ''}"
    kind = "Student-t" if model.family_name == "t" else "Gaussian"
    return (
        f"{kind} mixture: {k} component{'s' if k != 1 else ''}, {model.covariance_type} covariance"
    )


def _rows_note(n_shown: int, n_rows: int, n_dropped: int) -> str:
    parts = [f"{n_rows:,} rows" if n_shown == n_rows else f"{n_shown:,} of {n_rows:,} rows shown"]
    if n_dropped:
        parts.append(f"{n_dropped:,} rows with missing values left out")
    return "; ".join(parts)


# ---------------------------------------------------------------------------- clusters
def plot_clusters(
    model: GaussianMixtureModel,
    x: Array,
    *,
    x_column: str | None = None,
    y_column: str | None = None,
    pairs: bool = False,
    size: tuple[float, float] | None = None,
    dpi: float = 100,
):
    """The data coloured by most likely component, with each component's mean and its 1- and
    2-sigma ellipses.

    With two columns they are the axes; with more, ``x_column``/``y_column`` choose two, else
    the data are projected on their first two principal axes (and so are the components:
    the projection of N(m, S) on axes V is N(V^T m, V^T S V)).  ``pairs`` draws every pair
    of columns in a grid, with each column's marginal density on the diagonal.
    """
    check_kind(model, "clusters", True)
    x, n_dropped = _complete_rows(np.asarray(x, dtype=np.float64), "{kind} clusters")
    if x.shape[1] != model.n_features:
        raise DataError(f"the data has {x.shape[1]} columns and the model {model.n_features}")
    labels = model.predict(x)
    shown = _display_sample(x.shape[0])
    note = _rows_note(len(shown), x.shape[0], n_dropped)
    if pairs:
        if x_column or y_column:
            raise UsageError(
                "{pairs} draws every pair of columns; leave out {x_column} and {y_column}"
            )
        return _pair_grid(model, x, labels, shown, note, size, dpi)
    d = model.n_features
    if x_column or y_column or d == 2:
        i = _column_index(model, x_column, "{x_column}") if x_column else None
        j = _column_index(model, y_column, "{y_column}") if y_column else None
        if i is None:
            i = 0 if j != 0 else 1
        if j is None:
            j = next(c for c in range(d) if c != i)
        if i == j:
            raise UsageError(
                "{x_column} and {y_column} name the same column; choose two different columns"
            )
        basis = np.zeros((d, 2))
        basis[i, 0] = basis[j, 1] = 1.0
        origin = np.zeros(d)
        labels_xy = (model.columns[i], model.columns[j])
        subtitle = f"{note}, coloured by most likely component"
    else:
        if x.shape[0] < 2:
            raise DataError(
                "a projection on principal axes needs at least two complete rows; "
                "choose two columns with {x_column} and {y_column}"
            )
        origin, basis, share = principal_axes(x)
        labels_xy = (
            f"PC1 ({100 * share[0]:.0f}% of variance)",
            f"PC2 ({100 * share[1]:.0f}% of variance)",
        )
        subtitle = f"projection on the first two principal axes of the data; {note}"
    fig = _figure(size, dpi)
    ax = fig.add_subplot()
    _draw_clusters(ax, model, (x[shown] - origin) @ basis, labels[shown], basis, origin)
    ax.set_xlabel(labels_xy[0])
    ax.set_ylabel(labels_xy[1])
    ax.set_title(f"{_model_title(model)}\n{subtitle}", fontsize="medium")
    _cluster_legend(fig, model)
    return fig


def _draw_clusters(
    ax,
    model: GaussianMixtureModel,
    points: Array,
    labels,
    basis: Array,
    origin: Array,
    compact: bool = False,
) -> None:
    from matplotlib.patches import Ellipse
    from matplotlib.patheffects import Normal, Stroke

    covs = model.params.full_covariances()
    many = points.shape[0] > 2000
    for j in range(model.n_components):
        colour, marker = PALETTE[j % len(PALETTE)], MARKERS[j % len(MARKERS)]
        mine = points[labels == j]
        ax.scatter(
            mine[:, 0],
            mine[:, 1],
            s=6 if many else 14,
            c=colour,
            marker=marker,
            alpha=0.55 if many else 0.75,
            linewidths=0,
            rasterized=many,
            zorder=2,
        )
    for j in range(model.n_components):
        colour = PALETTE[j % len(PALETTE)]
        centre = (model.means[j] - origin) @ basis
        cov2 = basis.T @ covs[j] @ basis
        for radius, style in ((1.0, "-"), (2.0, "--")):
            width, height, angle = ellipse_geometry(cov2, radius)
            line = 1.1 if compact else 1.6
            # Over a dense cloud of its own colour, a white halo keeps the ellipse visible.
            halo = [Stroke(linewidth=line + 1.8, foreground="white"), Normal()] if many else []
            ax.add_patch(
                Ellipse(
                    tuple(centre),
                    width,
                    height,
                    angle=angle,
                    fill=False,
                    edgecolor=colour,
                    linestyle=style,
                    linewidth=line,
                    zorder=3,
                    path_effects=halo,
                )
            )
        ax.plot(
            *centre,
            marker="X",
            markersize=7 if compact else 11,
            color=colour,
            markeredgecolor="black",
            markeredgewidth=1.0,
            linestyle="none",
            zorder=4,
        )
    ax.autoscale_view()


def _cluster_legend(fig, model: GaussianMixtureModel) -> None:
    from matplotlib.lines import Line2D

    handles = [
        Line2D(
            [],
            [],
            color=PALETTE[j % len(PALETTE)],
            marker=MARKERS[j % len(MARKERS)],
            linestyle="none",
            markersize=7,
            label=f"component {j} (weight {model.weights[j]:.2f})",
        )
        for j in range(model.n_components)
    ]
    handles += [
        Line2D(
            [],
            [],
            color="black",
            marker="X",
            markerfacecolor="white",
            linestyle="none",
            markersize=9,
            label="component mean",
        ),
        Line2D([], [], color="black", linestyle="-", label="1-sigma ellipse"),
        Line2D([], [], color="black", linestyle="--", label="2-sigma ellipse"),
    ]
    # Below the axes: the legend never hides data points.
    fig.legend(
        handles=handles, loc="outside lower center", fontsize="small", ncols=min(len(handles), 3)
    )


def _pair_grid(
    model: GaussianMixtureModel,
    x: Array,
    labels,
    shown,
    note: str,
    size: tuple[float, float] | None,
    dpi: float,
):
    d = model.n_features
    side = min(2.2 * d, 30.0)
    fig = _figure(size, dpi, default=(side, side + 0.8))
    grid = fig.subplots(d, d, squeeze=False)
    for r in range(d):
        for c in range(d):
            ax = grid[r, c]
            if r == c:
                _draw_marginal(ax, model, x[:, c], c, legend=False)
            else:
                basis = np.zeros((d, 2))
                basis[c, 0] = basis[r, 1] = 1.0
                _draw_clusters(
                    ax, model, x[shown] @ basis, labels[shown], basis, np.zeros(d), compact=True
                )
            ax.tick_params(labelsize="x-small")
            if r == d - 1:
                ax.set_xlabel(model.columns[c])
            else:
                ax.tick_params(labelbottom=False)
            if c == 0:
                ax.set_ylabel(model.columns[r])
    fig.suptitle(
        f"{_model_title(model)} ({note})\n"
        "diagonal: histogram of each column with the fitted marginal densities",
        fontsize="medium",
    )
    _cluster_legend(fig, model)
    return fig


# ---------------------------------------------------------------------------- density
def _draw_marginal(
    ax, model: GaussianMixtureModel, values: Array | None, c: int, legend: bool = True
) -> None:
    means = model.means[:, c]
    sds = np.sqrt(np.clip(model.params.full_covariances()[:, c, c], 0.0, None))
    lo, hi = float(np.min(means - 3.5 * sds)), float(np.max(means + 3.5 * sds))
    if values is not None:
        lo, hi = float(values.min()), float(values.max())
        pad = 0.05 * (hi - lo) if hi > lo else max(1.0, abs(hi)) * 0.05
        lo, hi = lo - pad, hi + pad
        bins = int(np.clip(math.sqrt(values.size), 10, 60))
        ax.hist(
            values,
            bins=bins,
            density=True,
            color="#C8C8C8",
            edgecolor="white",
            linewidth=0.4,
            label=f"data ({values.size:,} rows)",
            zorder=1,
        )
    grid = np.linspace(lo, hi, 512)
    dfs = getattr(model.params, "df", None)  # family t: each component's marginal is a t
    parts = [
        model.weights[j]
        * component_density(grid, means[j], sds[j] ** 2, None if dfs is None else float(dfs[j]))
        for j in range(model.n_components)
    ]
    for j, part in enumerate(parts):
        colour = PALETTE[j % len(PALETTE)]
        ax.fill_between(grid, part, color=colour, alpha=0.15, linewidth=0, zorder=2)
        ax.plot(
            grid,
            part,
            color=colour,
            linewidth=1.6,
            zorder=3,
            label=f"component {j}: weight {model.weights[j]:.2f}, mean {means[j]:.3g}, "
            f"sd {sds[j]:.3g}",
        )
    ax.plot(
        grid, np.sum(parts, axis=0), color="black", linewidth=2.2, zorder=4, label="mixture density"
    )
    ax.set_xlim(lo, hi)
    ax.set_ylim(bottom=0)
    if legend:
        ax.legend(loc="best", fontsize="small", framealpha=0.85)


def plot_density(
    model: GaussianMixtureModel,
    x: Array | None = None,
    *,
    column: str | None = None,
    size: tuple[float, float] | None = None,
    dpi: float = 100,
):
    """For one column (default: the first), the histogram of the data (when given) with the
    mixture's marginal density and each weighted component w_j N(m_jc, S_jcc) on top."""
    c = _column_index(model, column, "{column}") if column else 0
    values, subtitle = None, "marginal density of the fitted mixture"
    if x is not None:
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != model.n_features:
            raise DataError(f"the data has {x.shape[1]} columns and the model {model.n_features}")
        values = x[:, c][~np.isnan(x[:, c])]
        if values.size == 0:
            raise DataError(f"column '{model.columns[c]}' has no values to plot")
        dropped = x.shape[0] - values.size
        subtitle = (
            f"histogram of {values.size:,} rows"
            + (f" ({dropped:,} missing left out)" if dropped else "")
            + " and the fitted density"
        )
    fig = _figure(size, dpi)
    ax = fig.add_subplot()
    _draw_marginal(ax, model, values, c)
    ax.set_xlabel(model.columns[c])
    ax.set_ylabel("density")
    ax.set_title(f"{_model_title(model)}\n{subtitle}", fontsize="medium")
    return fig


# ---------------------------------------------------------------------------- convergence
def _best_start(model: GaussianMixtureModel) -> int | None:
    best = model.extra.get("best_start")
    for i, s in enumerate(model.starts):
        if s.get("start") == best:
            return i
    for i, s in enumerate(model.starts):  # older files: the start whose history is the model's
        if s.get("history") and list(s["history"]) == list(model.history):
            return i
    return None


def plot_convergence(
    model: GaussianMixtureModel,
    *,
    size: tuple[float, float] | None = None,
    dpi: float = 100,
):
    """Log-likelihood per EM iteration of every start, the kept start highlighted; below,
    how far each start stays beneath the best final log-likelihood (log scale)."""
    from matplotlib.ticker import MaxNLocator

    check_kind(model, "convergence", False)
    starts = [s for s in model.starts if s.get("history")]
    best_i = _best_start(model)
    best: dict[str, Any] = (
        model.starts[best_i] if best_i is not None else {"history": model.history, "start": None}
    )
    if best_i is None:
        starts.append(best)
    target = max(float(best["history"][-1]), model.log_likelihood)
    floor = 1e-12 * max(1.0, abs(target))
    fig = _figure(size, dpi)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(3, 2))
    counts = {"other": 0, "collapsed": 0}
    for s in starts:
        if s is best:
            continue
        history = np.asarray(s["history"], dtype=np.float64)
        steps = np.arange(1, history.size + 1)
        collapsed = bool(s.get("collapsed"))
        counts["collapsed" if collapsed else "other"] += 1
        style = dict(
            color="#999999" if collapsed else PALETTE[5],
            linewidth=1.4,
            linestyle="--" if collapsed else "-",
            zorder=2,
        )
        top.plot(steps, history, **style)
        bottom.plot(steps, np.maximum(target - history, floor), **style)
    history = np.asarray(best["history"], dtype=np.float64)
    steps = np.arange(1, history.size + 1)
    label = (
        f"kept start{'' if best['start'] is None else ' ' + str(best['start'])}: "
        f"{history.size} iterations, log-lik {history[-1]:.6g}"
    )
    for ax, values in ((top, history), (bottom, np.maximum(target - history, floor))):
        ax.plot(steps, values, color=PALETTE[3], linewidth=2.4, zorder=3, label=label)
        ax.plot(steps[-1:], values[-1:], marker="o", color=PALETTE[3], zorder=4)
    _convergence_legend(top, counts)
    top.set_ylabel("log-likelihood")
    bottom.set_yscale("log")
    bottom.set_ylabel("below best final\nlog-likelihood")
    bottom.set_xlabel("EM iteration")
    bottom.xaxis.set_major_locator(MaxNLocator(integer=True))
    top.set_title(
        f"{_model_title(model)}\nEM convergence of {len(starts)} start"
        f"{'s' if len(starts) != 1 else ''} ({model.n_samples:,} rows)",
        fontsize="medium",
    )
    for ax in (top, bottom):
        ax.grid(True, color="#DDDDDD", linewidth=0.6)
    return fig


def _convergence_legend(ax, counts: dict[str, int]) -> None:
    from matplotlib.lines import Line2D

    handles, _ = ax.get_legend_handles_labels()
    if counts["other"]:
        handles.append(Line2D([], [], color=PALETTE[5], label=f"other starts ({counts['other']})"))
    if counts["collapsed"]:
        handles.append(
            Line2D(
                [],
                [],
                color="#999999",
                linestyle="--",
                label=f"collapsed starts ({counts['collapsed']})",
            )
        )
    ax.legend(handles=handles, loc="lower right", fontsize="small", framealpha=0.85)


# ---------------------------------------------------------------------------- selection
def plot_selection(
    model: GaussianMixtureModel,
    *,
    criterion: str | None = None,
    size: tuple[float, float] | None = None,
    dpi: float = 100,
):
    """The criterion against the number of components, one line per covariance type (as
    mclust's BIC plot; here lower is better).  Degenerate or failed candidates have no value:
    their lines break there and a hollow marker sits on the bottom edge.  The best candidate
    by the shown criterion is circled."""
    check_kind(model, "selection", False)
    record = model.extra["selection"]
    recorded = str(record.get("criterion", "bic"))
    criterion = criterion or recorded
    if criterion not in CRITERIA:
        raise UsageError(f"unknown criterion '{criterion}'; choose from {', '.join(CRITERIA)}")
    rows = record["table"]
    kinds = list(dict.fromkeys(str(r["covariance"]) for r in rows))
    ks = sorted({int(r["components"]) for r in rows})
    fig = _figure(size, dpi)
    ax = fig.add_subplot()
    best = _draw_selection(ax, rows, kinds, ks, criterion)
    ax.set_xticks(ks)
    ax.set_xlabel("number of components k")
    ax.set_ylabel(f"{criterion.upper()} (lower is better)")
    ax.grid(True, color="#DDDDDD", linewidth=0.6)
    subtitle = ""
    if best is not None:
        subtitle = f"best: k={best[0]}, {best[1]} ({criterion.upper()} {best[2]:.6g})"
        margin = record.get("runner_up_margin")
        if criterion == recorded and isinstance(margin, (int, float)):
            subtitle += f", {margin:.3g} below the runner-up"
    winner = record.get("winner") or {}
    if criterion != recorded and winner:
        subtitle += (
            f"; the model file holds k={winner.get('components')}, "
            f"{winner.get('covariance')} (best by {recorded.upper()})"
        )
    ax.set_title(
        f"Model selection by {criterion.upper()} over {len(rows)} candidates\n{subtitle}",
        fontsize="medium",
    )
    ax.legend(loc="best", fontsize="small", framealpha=0.85)
    return fig


def _draw_selection(
    ax, rows: Sequence[dict], kinds: list[str], ks: list[int], criterion: str
) -> tuple[int, str, float] | None:
    values = {(int(r["components"]), str(r["covariance"])): r.get(criterion) for r in rows}
    best: tuple[int, str, float] | None = None
    missing_drawn = False
    for n, kind in enumerate(kinds):
        colour, marker, style = COVARIANCE_STYLE.get(
            kind, (PALETTE[n % len(PALETTE)], MARKERS[n % len(MARKERS)], "-")
        )
        ys = np.array([_number(values.get((k, kind))) for k in ks])
        ax.plot(
            ks,
            ys,
            color=colour,
            marker=marker,
            linestyle=style,
            linewidth=1.8,
            markersize=6,
            label=kind,
            zorder=3,
        )
        gaps = [k for k, y in zip(ks, ys, strict=True) if (k, kind) in values and np.isnan(y)]
        if gaps:
            ax.plot(
                gaps,
                [0.03] * len(gaps),
                transform=ax.get_xaxis_transform(),
                marker=marker,
                markerfacecolor="white",
                markeredgecolor=colour,
                markeredgewidth=1.5,
                markersize=8,
                linestyle="none",
                clip_on=False,
                zorder=4,
                label=None if missing_drawn else "no value (degenerate/failed)",
            )
            missing_drawn = True
        for k, y in zip(ks, ys, strict=True):
            if not np.isnan(y) and (best is None or y < best[2]):
                best = (k, kind, float(y))
    if best is not None:
        ax.plot(
            [best[0]],
            [best[2]],
            marker="o",
            markersize=18,
            markerfacecolor="none",
            markeredgecolor="black",
            markeredgewidth=2.0,
            linestyle="none",
            zorder=5,
            label=f"best (k={best[0]}, {best[1]})",
        )
    return best


def _number(value: Any) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return math.nan


# ---------------------------------------------------------------------------- levels
def _level_columns(model: GaussianMixtureModel) -> list[tuple[str, list[str], Array]]:
    """(column, levels, k x L probabilities) of each categorical or bernoulli column of a
    product-family model, in the model's column order."""
    blocks = getattr(model.family, "blocks", None)
    if blocks is None:
        return []
    found: dict[str, tuple[list[str], Array]] = {}
    for block, p in zip(blocks, model.params.blocks, strict=True):
        if block.kind == "categorical":
            for name, levels, probs in zip(block.names, block.levels, p, strict=True):
                found[name] = (list(levels), np.asarray(probs))
        elif block.kind == "bernoulli":
            for c, name in enumerate(block.names):
                found[name] = (["0", "1"], np.stack([1.0 - p[:, c], p[:, c]], axis=1))
    return [(c, *found[c]) for c in model.columns if c in found]


def plot_levels(
    model: GaussianMixtureModel, *, size: tuple[float, float] | None = None, dpi: float = 100
):
    """One panel per categorical or bernoulli column (at most ``MAX_LEVEL_PANELS``): the
    probability of each level in each component, as grouped bars."""
    columns = _level_columns(model)
    shown = columns[:MAX_LEVEL_PANELS]
    n_cols = min(3, len(shown))
    n_rows = math.ceil(len(shown) / n_cols)
    fig = _figure(size, dpi, default=(3.6 * n_cols + 0.6, 2.8 * n_rows + 0.8))
    axes = fig.subplots(n_rows, n_cols, squeeze=False)
    k = model.n_components
    width = 0.8 / k
    for ax, (name, levels, probs) in zip(axes.ravel(), shown, strict=False):
        pos = np.arange(len(levels))
        for j in range(k):
            ax.bar(
                pos - 0.4 + (j + 0.5) * width,
                probs[j],
                width,
                color=PALETTE[j % len(PALETTE)],
                label=f"component {j} ({model.weights[j]:.2f})",
            )
        ax.set_xticks(pos, levels, rotation=30 if len(levels) > 4 else 0, fontsize="small")
        ax.set_ylim(0, 1)
        ax.set_title(name, fontsize="medium")
        ax.grid(axis="y", alpha=0.3)
    for ax in axes.ravel()[len(shown) :]:
        ax.set_visible(False)
    axes[0, 0].set_ylabel("probability")
    axes[0, 0].legend(loc="best", fontsize="x-small", framealpha=0.85)
    more = f" (first {len(shown)} of {len(columns)} columns)" if len(columns) > len(shown) else ""
    fig.suptitle(f"{_model_title(model)}: level probabilities per component{more}")
    return fig


# ---------------------------------------------------------------------------- one entry point
def plot(
    model: GaussianMixtureModel,
    kind: str | None = None,
    x: Array | None = None,
    *,
    x_column: str | None = None,
    y_column: str | None = None,
    pairs: bool = False,
    column: str | None = None,
    criterion: str | None = None,
    size: tuple[float, float] | None = None,
    dpi: float = 100,
):
    """Draw ``kind`` (default: ``default_kind``) and return the Figure."""
    require_matplotlib()
    kind = kind or default_kind(model, x is not None)
    check_kind(model, kind, x is not None)
    if kind == "clusters":
        assert x is not None
        return plot_clusters(
            model, x, x_column=x_column, y_column=y_column, pairs=pairs, size=size, dpi=dpi
        )
    if kind == "density":
        return plot_density(model, x, column=column, size=size, dpi=dpi)
    if kind == "convergence":
        return plot_convergence(model, size=size, dpi=dpi)
    if kind == "levels":
        return plot_levels(model, size=size, dpi=dpi)
    return plot_selection(model, criterion=criterion, size=size, dpi=dpi)

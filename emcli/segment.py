"""Image segmentation: cluster a picture's pixels by colour (and optionally position) with a
Gaussian mixture, and label every pixel.

Example::

    from emcli.image import read_image
    from emcli.segment import segment

    result = segment(read_image("photo.jpg"), 4)
    result.labels          # (height, width): the component of each pixel, -1 if transparent
    result.model.save("photo-model.json")

How it stays fast on large photos, exactly:

* Without position features (``xy=0``) a pixel's features depend on its colour only, so
  the pixels are reduced to their distinct colours with their counts as frequency weights.
  The weighted log-likelihood, the parameters and the BIC (n = the number of pixels) are
  those of the fit on every pixel, to rounding: nothing is approximated.
* When there are more than ``sample`` rows (distinct colours, or pixels with ``xy``), the
  restarts run on a uniform sample of ``sample`` pixels and the best start is then fitted on
  every pixel (one warm start, ``emcli.fit(init=model)``), so the returned model is a
  maximum-likelihood fit to all of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .errors import DataError, Message, ModelFileError, UsageError
from .image import COLUMNS, FEATURES, XY_COLUMNS, Picture, colour_features, feature_colours

Array = NDArray[np.float64]
DEFAULT_FEATURES = "lab"
DEFAULT_SAMPLE = 100_000
PREDICT_ROWS = 1 << 18  # rows per block when labelling every pixel (bounded temporaries)


@dataclass
class PixelRows:
    """The rows a fit sees: features of distinct colours (or of every pixel), their counts,
    and for each fitted pixel its row.

    Attributes:
        x: features, shape (n_rows, n_features).
        weights: pixels per row (None: one each).
        row_of: for each opaque pixel, in raster order, its row of ``x``.
        columns: the feature names.
    """

    x: Array
    weights: Array | None
    row_of: NDArray[np.intp]
    columns: list[str]

    @property
    def n_pixels(self) -> int:
        return int(self.row_of.shape[0])


@dataclass
class Segmentation:
    """A segmented picture.

    Attributes:
        model: the fitted (or applied) mixture, on the feature columns; its ``extra["image"]``
            records the features, so ``apply_model`` can use it on other pictures.
        labels: the component of each pixel, shape (height, width); -1 for a transparent one.
        palette: each component's display colour on the 0..255 scale, (k, 3) or (k, 1).
        candidates: the candidates of a model selection over a range of k / covariances.
        winner: the winning candidate of that selection.
        notes: remarks for the user.
    """

    model: Any
    labels: NDArray[np.intp]
    palette: Array
    candidates: list[Any] | None = None
    winner: Any = None
    notes: list[str] = field(default_factory=list)


def choose_features(picture: Picture, features: str | None) -> str:
    """The feature space: ``features``, or the default (gray for a grayscale picture)."""
    if features is None:
        return "gray" if picture.is_gray else DEFAULT_FEATURES
    if features not in FEATURES:
        raise UsageError(f"{{features}} must be one of {', '.join(FEATURES)}, not {features!r}")
    return features


def pixel_rows(picture: Picture, features: str, xy: float = 0.0) -> PixelRows:
    """The rows to fit: distinct colours with counts (``xy`` = 0), else one row per pixel
    with the coordinates scaled so that the picture's longer side spans ``xy`` * 255."""
    if not np.isfinite(xy) or xy < 0:
        raise UsageError(f"{{xy}} must be a finite number >= 0, not {xy}")
    opaque = picture.opaque.ravel()
    raw = picture.raw.reshape(-1, picture.raw.shape[2])[opaque]
    if raw.shape[0] == 0:
        raise DataError("every pixel of the image is transparent: there is nothing to segment")
    columns = list(COLUMNS[features])
    if xy == 0:
        distinct, row_of, counts = _distinct_colours(raw, picture.depth)
        colours = _decode(distinct, raw.shape[1], picture.depth) * picture.scale
        x = colour_features(colours, features)
        return PixelRows(x, counts.astype(np.float64), row_of, columns)
    colours = raw.astype(np.float64) * picture.scale
    x = colour_features(colours, features)
    rows, cols = np.divmod(np.flatnonzero(opaque), picture.width)
    step = xy * 255.0 / max(picture.width - 1, picture.height - 1, 1)
    x = np.column_stack([x, cols * step, rows * step])
    return PixelRows(x, None, np.arange(x.shape[0]), columns + list(XY_COLUMNS))


def _distinct_colours(
    raw: NDArray[Any], depth: int
) -> tuple[NDArray[np.int64], NDArray[np.intp], NDArray[np.int64]]:
    """(the distinct colour codes in increasing order, each pixel's index among them, the
    pixels of each).  A code packs the channels into one integer; up to 24 bits (8-bit RGB,
    16-bit gray) a histogram finds them in one pass, without sorting 12 million pixels."""
    code = raw[:, 0].astype(np.int64)
    for c in range(1, raw.shape[1]):
        code = (code << depth) | raw[:, c]
    bits = depth * raw.shape[1]
    if bits > 24 or code.shape[0] < (1 << bits) >> 4:  # few pixels: sorting is cheaper
        distinct, row_of, counts = np.unique(code, return_inverse=True, return_counts=True)
        return distinct, row_of.ravel().astype(np.intp), counts
    histogram = np.bincount(code, minlength=1 << bits)
    distinct = np.flatnonzero(histogram)
    index = np.zeros(1 << bits, dtype=np.intp)
    index[distinct] = np.arange(distinct.shape[0])
    return distinct.astype(np.int64), index[code], histogram[distinct]


def _decode(code: NDArray[np.int64], channels: int, depth: int) -> Array:
    """Colour codes back to channel values, shape (n, channels)."""
    mask = (1 << depth) - 1
    shifts = [depth * (channels - 1 - c) for c in range(channels)]
    return np.column_stack([(code >> s) & mask for s in shifts]).astype(np.float64)


def check_components(ks: Sequence[int], rows: PixelRows, xy: float) -> None:
    """k larger than the distinct pixels of the picture cannot be fitted."""
    n = rows.x.shape[0]
    if min(ks) > n:
        what = "pixels" if xy else "distinct colours"
        raise DataError(
            f"the image has only {n} {what} (non-transparent), fewer than {{n_components}} "
            f"{min(ks)}; use at most {{n_components}} {n}"
        )


# ---------------------------------------------------------------------------- fitting
def segment(
    picture: Picture,
    n_components: int | Sequence[int],
    *,
    features: str | None = None,
    xy: float = 0.0,
    covariance_type: str | Sequence[str] | None = None,
    init: Any = "kmeans",
    sample: int = DEFAULT_SAMPLE,
    seed: int = 0,
    accelerate: bool = True,
    criterion: str = "bic",
    jobs: int | None = 1,
    monitor: Any = None,
    on_candidate: Any = None,
    **settings: Any,
) -> Segmentation:
    """Fit a Gaussian mixture to the pixels of ``picture`` and label every pixel.

    Args:
        picture: from ``emcli.image.read_image``.
        n_components: k, or several k (the best by ``criterion`` wins, as ``emcli fit``).
        features: "rgb", "lab" or "gray" (default: lab, gray for a grayscale picture).
        xy: weight of the pixel coordinates (0: colour only).
        covariance_type: one type, several (a selection), or None for ``emcli.fit``'s default.
        init: as ``emcli.fit``; a model (or model file) is one warm start on every pixel.
        sample: the restarts run on a uniform sample of this many pixels when there are more
            rows, then the best is fitted on every pixel.
        accelerate: SQUAREM (on by default here: on photos EM needs hundreds of iterations,
            SQUAREM about a third of them, to the same log-likelihood).
        seed, **settings: as ``emcli.fit`` (n_restarts, max_iter, tol, reg_covar, ...).
        criterion, jobs, on_candidate: for a selection (``emcli.em.selection.select``).

    Returns:
        The ``Segmentation``; ``model.n_samples`` is the number of fitted pixels.
    """
    from . import api

    warm = not (isinstance(init, str) and init in ("kmeans", "kmeans++", "random"))
    if warm:
        init, features = _warm_start(init, features, xy)
    space = choose_features(picture, features)
    rows = pixel_rows(picture, space, xy)
    ks = [n_components] if isinstance(n_components, (int, np.integer)) else list(n_components)
    ks = [int(k) for k in ks]
    kinds = _kinds(covariance_type)
    check_components(ks, rows, xy)
    if sample < 1:
        raise UsageError("{sample} must be at least 1")
    common = {**settings, "seed": seed, "accelerate": accelerate}
    notes: list[str] = []
    fit_rows = rows
    if not warm and rows.x.shape[0] > sample:
        fit_rows = _sampled(rows, sample, seed)
        if fit_rows.x.shape[0] < max(ks):  # too few colours in the sample: fit them all
            fit_rows = rows
    if fit_rows is not rows:
        notes.append(
            f"the starts ran on a sample of {sample} of the {rows.n_pixels} pixels "
            "({sample}); the best was then fitted on every pixel"
        )
    candidates = winner = None
    if len(ks) * max(len(kinds), 1) > 1:
        if warm:
            raise UsageError(
                "{init} MODEL.json starts one fit from that model; give one {n_components} "
                "and one {covariance_type}"
            )
        options = {**common, "init": init, "monitor": monitor}
        winner, candidates = _select(
            fit_rows, ks, kinds or ["full"], criterion, jobs, on_candidate, options
        )
        model = winner.model
    else:
        kind: dict[str, Any] = {"covariance_type": kinds[0]} if kinds else {}
        model = api.fit(
            fit_rows.x,
            ks[0],
            columns=fit_rows.columns,
            sample_weight=fit_rows.weights,
            init=init,
            monitor=monitor,
            **kind,
            **common,
        )
    if fit_rows is not rows:
        sampled = model
        model = api.fit(
            rows.x,
            model.n_components,
            columns=rows.columns,
            sample_weight=rows.weights,
            init=sampled,
            monitor=monitor,
            **{**common, "n_restarts": 1},
        )
        model.extra["sample"] = {
            "pixels": sample,
            "starts": len(sampled.starts),
            "log_likelihood": sampled.log_likelihood,
        }
        if "selection" in sampled.extra:
            model.extra["selection"] = sampled.extra["selection"]
    model.extra["image"] = {"features": space, "xy": float(xy)}
    model.notes.extend(Message(n) for n in notes)
    labels = _labels(model, rows, picture)
    return Segmentation(model, labels, palette(model), candidates, winner, picture.notes)


def _warm_start(init: Any, features: str | None, xy: float) -> tuple[Any, str]:
    """The model to start from, and the features: those it was fitted on (a model from
    ``segment``), which ``features`` and ``xy`` must match."""
    from .model import MixtureModel

    model = init if isinstance(init, MixtureModel) else MixtureModel.load(init)
    space, model_xy = image_settings(model)
    if features is not None and features != space:
        raise UsageError(
            f"the {{init}} model was fitted on {{features}} {space}, not {features}; leave "
            f"{{features}} out or give {space}"
        )
    if float(xy) != model_xy:
        raise UsageError(f"the {{init}} model was fitted with {{xy}} {model_xy:g}; give that")
    return model, space


def _kinds(covariance_type: str | Sequence[str] | None) -> list[str]:
    if covariance_type is None:
        return []
    if isinstance(covariance_type, str):
        return [covariance_type]
    return list(covariance_type)


def _sampled(rows: PixelRows, sample: int, seed: int) -> PixelRows:
    """The rows of a uniform sample of ``sample`` opaque pixels (distinct colours and counts
    again when ``xy`` is 0)."""
    rng = np.random.default_rng([seed, 0x5E6])
    pixels = np.sort(rng.choice(rows.n_pixels, size=sample, replace=False))
    which = rows.row_of[pixels]
    if rows.weights is None:
        return PixelRows(rows.x[which], None, np.arange(sample), rows.columns)
    distinct, counts = np.unique(which, return_counts=True)
    return PixelRows(rows.x[distinct], counts.astype(np.float64), np.arange(0), rows.columns)


def _select(
    rows: PixelRows,
    ks: list[int],
    kinds: list[str],
    criterion: str,
    jobs: int | None,
    on_candidate: Any,
    options: dict[str, Any],
) -> tuple[Any, list[Any]]:
    """(the winning candidate, every candidate), the selection recorded in the winner's
    model."""
    from .em.selection import select, selection_record
    from .errors import FitError

    if rows.weights is not None:
        options = {**options, "sample_weight": rows.weights}
    winner, candidates = select(
        rows.x,
        rows.columns,
        ks,
        kinds,
        criterion=criterion,
        jobs=jobs,
        on_candidate=on_candidate,
        **options,
    )
    if winner is None or winner.model is None:
        raise FitError(
            f"none of the {len(candidates)} candidates could be fitted without a collapsed "
            "component; try smaller {n_components} values, simpler {covariance_type} types, "
            "or a larger {reg_covar}"
        )
    winner.model.extra["selection"] = selection_record(winner, candidates, criterion)
    return winner, candidates


def _labels(model: Any, rows: PixelRows, picture: Picture) -> NDArray[np.intp]:
    """The component of every pixel (-1 where transparent), predicted in blocks."""
    row_labels = np.empty(rows.x.shape[0], dtype=np.intp)
    for start in range(0, rows.x.shape[0], PREDICT_ROWS):
        stop = start + PREDICT_ROWS
        row_labels[start:stop] = model.predict(rows.x[start:stop])
    labels = np.full(picture.height * picture.width, -1, dtype=np.intp)
    labels[picture.opaque.ravel()] = row_labels[rows.row_of]
    return labels.reshape(picture.height, picture.width)


def palette(model: Any) -> Array:
    """Each component's display colour: its mean's colour columns back to sRGB."""
    space = model.extra["image"]["features"]
    colour = model.means[:, : len(COLUMNS[space])]
    return feature_colours(colour, space)


# ---------------------------------------------------------------------------- a saved model
def image_settings(model: Any) -> tuple[str, float]:
    """The (features, xy) a model was fitted on, from its ``image`` record."""
    record = model.extra.get("image")
    if not isinstance(record, dict) or record.get("features") not in FEATURES:
        raise ModelFileError(
            "the model file has no image record (features, xy): it was not written by "
            "'emcli segment'; fit it with 'emcli segment IMAGE -k K --params MODEL.json'"
        )
    xy = record.get("xy", 0.0)
    if not isinstance(xy, (int, float)) or not np.isfinite(xy) or xy < 0:
        raise ModelFileError(f"the model file's image record has an invalid xy: {xy!r}")
    space = str(record["features"])
    expected = [*COLUMNS[space], *(XY_COLUMNS if xy else ())]
    if list(model.columns) != expected:
        raise ModelFileError(
            f"the model's columns {', '.join(model.columns)} are not those of features "
            f"{space} (expected {', '.join(expected)})"
        )
    return space, float(xy)


def apply_model(picture: Picture, model: Any) -> Segmentation:
    """Label every pixel of ``picture`` with a model from ``segment`` (no fitting): the same
    components and colours for every picture (frames of a video, a batch of photos)."""
    space, xy = image_settings(model)
    if picture.is_gray and space != "gray":
        raise DataError(
            f"the image is grayscale but the model was fitted on {space} colours; use a "
            "model fitted with --features gray"
        )
    rows = pixel_rows(picture, space, xy)
    labels = _labels(model, rows, picture)
    return Segmentation(model, labels, palette(model), notes=list(picture.notes))

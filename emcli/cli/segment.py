"""``emcli segment``: cluster an image's pixels and write the regions back as pictures.

Parse the options, check every destination, read the image (``emcli.image``), fit
(``emcli.segment.segment``) or apply a model file (``emcli.segment.apply_model``), then
write labels.png, segmented.png, overlay.png and params.json through one ``OutputSet``.
"""

from __future__ import annotations

import math
import sys
from typing import Any

import click
from click.core import ParameterSource

from ..errors import UsageError
from .app import cli
from .options import CONTEXT, CRITERIA, INIT_METHODS, display_options, option

# The files of -o DIR.
DIR_NAMES = {
    "labels": "labels.png",
    "segmented": "segmented.png",
    "overlay": "overlay.png",
    "params": "params.json",
}
# Options that fix the model; --model brings its own.
FIT_OPTIONS = {
    "k_spec": "-k",
    "features": "--features",
    "xy": "--xy",
    "covariance_spec": "--covariance",
    "init": "--init",
    "restarts": "--restarts",
    "criterion": "--criterion",
    "sample": "--sample",
}
DEFAULTS = (ParameterSource.DEFAULT, ParameterSource.DEFAULT_MAP, None)


@cli.command(context_settings=CONTEXT)
@click.argument("image", metavar="IMAGE")
@option(
    "-k",
    "--components",
    "k_spec",
    metavar="K",
    help="Number of regions (components): 4, a range 2..8 or a list 3,5 (chooses by "
    "--criterion). Required unless --model is given.",
)
@option(
    "--features",
    type=click.Choice(("rgb", "lab", "gray")),
    default=None,
    help="Pixel features: rgb (0..255), lab (CIELAB) or gray (luma) "
    "[default: lab; gray for a grayscale image].",
)
@option(
    "--xy",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    metavar="W",
    help="Add the pixel coordinates, scaled so that the longer side spans W*255, for "
    "spatially coherent regions.",
)
@option(
    "--covariance",
    "covariance_spec",
    default="full",
    show_default=True,
    metavar="TYPE",
    help="Covariance model: full, tied, diag, spherical, a comma list, or 'all'.",
)
@option(
    "--criterion",
    type=click.Choice(CRITERIA),
    default="bic",
    show_default=True,
    help="How a range of -k / --covariance picks its winner.",
)
@option(
    "--init",
    default="kmeans",
    show_default=True,
    metavar="METHOD|MODEL.json",
    help="Starting values: kmeans, kmeans++ or random; or a model file from 'segment "
    "--params' as the one start, fitted on every pixel.",
)
@option(
    "-n",
    "--restarts",
    type=click.IntRange(min=1),
    default=10,
    show_default=True,
    help="Independent EM starts; the best non-collapsed log-likelihood wins.",
)
@option(
    "--max-iter",
    type=click.IntRange(min=0),
    default=1000,
    show_default=True,
    help="Maximum EM iterations per start.",
)
@option(
    "--tol",
    type=click.FloatRange(min=0),
    default=1e-8,
    show_default=True,
    help="Stop when the mean log-likelihood per pixel changes less.",
)
@option(
    "--reg-covar",
    type=click.FloatRange(min=0),
    default=1e-6,
    show_default=True,
    help="Added to every covariance diagonal (floor against collapse).",
)
@option(
    "--seed",
    type=int,
    default=0,
    show_default=True,
    help="Random seed; the same seed and image give byte-identical outputs.",
)
@option(
    "--sample",
    type=click.IntRange(min=1),
    default=100_000,
    show_default=True,
    metavar="N",
    help="With more distinct colours (or, with --xy, pixels) than N, the starts run on a "
    "sample of N pixels and the best is then fitted on every pixel.",
)
@option(
    "--accelerate/--no-accelerate",
    default=True,
    show_default=True,
    help="SQUAREM-accelerated EM: about a third of the iterations to the same optimum on photos.",
)
@option(
    "--dtype",
    type=click.Choice(("float64", "float32")),
    default="float64",
    show_default=True,
    help="Precision of the E-step (float32: faster, log-likelihood to ~1e-6 relative).",
)
@option(
    "--jobs",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Parallel candidates in a model selection (processes).",
)
@option(
    "--model",
    "model_path",
    metavar="MODEL.json",
    help="Apply a model file from 'segment --params' instead of fitting: the same regions "
    "and colours for every image.",
)
@option(
    "-o",
    "--output-dir",
    metavar="DIR",
    help="Write labels.png, segmented.png, overlay.png and params.json into DIR.",
)
@option(
    "--labels",
    metavar="PNG",
    help="Write the labels image: each pixel's component index (8-bit; 16-bit when k > "
    "255); transparent pixels 255 (65535).",
)
@option(
    "--segmented",
    metavar="PNG",
    help="Write the picture with each pixel painted in its component's mean colour.",
)
@option(
    "--overlay",
    metavar="PNG",
    help="Write the picture with the region boundaries drawn on it.",
)
@option(
    "--params",
    "params_path",
    metavar="JSON",
    help="Write the fitted model file (on the feature columns; --model reads it).",
)
@option(
    "--boundary-colour",
    default="yellow",
    show_default=True,
    metavar="COLOUR",
    help="Colour of the boundaries in the overlay: a name (yellow, red, white) or #rrggbb.",
)
@display_options
@click.pass_context
def segment(ctx: click.Context, image: str, **options: Any) -> None:
    """Segment IMAGE (PNG, JPEG, TIFF, BMP, WebP, ..., or - for standard input) into regions.

    Clusters the pixels by colour (and, with --xy, position) with a Gaussian mixture, then
    writes each pixel's region as labels.png, the regions in their mean colours as
    segmented.png, and their boundaries on the picture as overlay.png.  Fully transparent
    pixels are left out.  --model MODEL.json applies a saved model instead of fitting (the
    frames of a video, a batch of photos with the same colours).  Needs Pillow: pip install
    'emcli-mixture[image]'.

    \b
    Example:
      emcli segment photo.jpg -k 4 -o regions/
      emcli segment photo.jpg -k 2..8 --xy 0.5 --segmented flat.png
      emcli segment frame-0001.png --model regions/params.json --labels labels-0001.png
    """
    given = {name for name in ctx.params if ctx.get_parameter_source(name) not in DEFAULTS}
    run_segment(image, options, given)


def _paths(options: dict[str, Any]) -> dict[str, str | None]:
    return {
        "labels": options["labels"],
        "segmented": options["segmented"],
        "overlay": options["overlay"],
        "params": options["params_path"],
    }


def check_options(options: dict[str, Any], given: set[str]) -> tuple[list[int], list[str]]:
    """(the k values, the covariance types) to fit; usage errors click cannot find."""
    from ..em.selection import parse_components
    from ..families.gaussian.models import parse_covariances

    if options["model_path"]:
        clash = [flag for name, flag in FIT_OPTIONS.items() if name in given]
        if clash:
            raise UsageError(
                f"--model applies a fitted model; leave out {', '.join(clash)} (the model "
                "fixes them), or fit with -k instead of --model"
            )
        return [], []
    if options["k_spec"] is None:
        raise click.UsageError("Missing option '-k' / '--components' (or give --model).")
    for name, flag in (("tol", "--tol"), ("reg_covar", "--reg-covar"), ("xy", "--xy")):
        if not math.isfinite(options[name]):
            raise click.BadParameter(f"{options[name]} is not a finite number", param_hint=flag)
    try:
        ks = list(parse_components(options["k_spec"]))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'-k' / '--components'") from None
    try:
        kinds = parse_covariances(options["covariance_spec"])
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'--covariance'") from None
    init = options["init"]
    if init not in INIT_METHODS:
        import os

        if not os.path.isfile(init):
            raise click.BadParameter(
                f"'{init}' is neither a start method ({', '.join(INIT_METHODS)}) nor an "
                "existing model file written by 'emcli segment --params'",
                param_hint="'--init'",
            )
        if len(ks) * len(kinds) > 1:
            raise UsageError(
                "--init MODEL.json starts one fit from that model; give one -k and one --covariance"
            )
    return ks, kinds if "covariance_spec" in given else []


def run_segment(image: str, options: dict[str, Any], given: set[str]) -> None:
    """Fit (or apply) and write every output asked for, all of them or none."""
    from .. import image as pictures
    from ..data.writers import OutputSet
    from .display import echo_notes, print_summary, stderr_console
    from .outputs import add_text, plan_outputs

    ks, kinds = check_options(options, given)
    pictures.pillow()  # the install hint before any other work
    colour = pictures.parse_colour(options["boundary_colour"])
    outputs = OutputSet()
    paths = plan_outputs(outputs, _paths(options), options["output_dir"], DIR_NAMES)
    source = sys.stdin.buffer.read() if image == "-" else image
    picture = pictures.read_image(source)
    echo_notes(picture.notes, options["quiet"])
    if options["model_path"]:
        result = apply_saved(picture, options["model_path"])
    else:
        result = fit_picture(picture, ks, kinds, options)
    model = result.model
    k = model.n_components
    if "labels" in paths:
        labels = pictures.render_labels(result.labels, k)
        outputs.add(paths["labels"], pictures.png_writer(labels))
    if "segmented" in paths:
        painted = pictures.render_segmented(result.labels, result.palette, picture.alpha)
        outputs.add(paths["segmented"], pictures.png_writer(painted))
    if "overlay" in paths:
        drawn = pictures.render_overlay(picture, result.labels, colour)
        outputs.add(paths["overlay"], pictures.png_writer(drawn))
    if "params" in paths:
        add_text(outputs, paths["params"], model.to_json())
    outputs.commit()
    if not options["quiet"] and (sys.stderr.isatty() or not paths):
        print_summary(stderr_console(), model)


def apply_saved(picture: Any, path: str) -> Any:
    from ..model import MixtureModel
    from ..segment import apply_model

    return apply_model(picture, MixtureModel.load(path))


def fit_picture(picture: Any, ks: list[int], kinds: list[str], options: dict[str, Any]) -> Any:
    """``segment.segment`` with the options; notes and warnings shown in flags."""
    from ..segment import segment as fit_segments
    from .display import echo_notes, echo_warnings, make_display, print_selection, stderr_console
    from .options import in_flags

    settings: dict[str, Any] = {
        key: options[key] for key in ("max_iter", "tol", "reg_covar", "seed", "dtype")
    }
    settings.update(n_restarts=options["restarts"], accelerate=options["accelerate"])
    display = make_display(options["quiet"], options["verbose"])

    def on_candidate(i: int, total: int, cand: Any) -> None:
        ll = cand.row()["log_likelihood"]
        label = f"k={cand.n_components} {cand.covariance_type}"
        display.candidate(i, total, f"{label} log-lik {'-' if ll is None else f'{ll:.4f}'}")

    with display:
        result = fit_segments(
            picture,
            ks if len(ks) > 1 else ks[0],
            features=options["features"],
            xy=options["xy"],
            covariance_type=(kinds[0] if len(kinds) == 1 else kinds) or None,
            init=options["init"],
            sample=options["sample"],
            criterion=options["criterion"],
            jobs=options["jobs"],
            monitor=display,
            on_candidate=on_candidate,
            **settings,
        )
    model = result.model
    if result.candidates is not None:
        for cand in result.candidates:
            cand.reason = cand.reason and in_flags(cand.reason)
        if not options["quiet"]:
            print_selection(
                stderr_console(), result.candidates, result.winner, options["criterion"]
            )
    model.notes[:] = [in_flags(message) for message in model.notes]
    model.warnings[:] = [in_flags(message) for message in model.warnings]
    echo_notes(model.notes, options["quiet"])
    echo_warnings(model.warnings)
    return result

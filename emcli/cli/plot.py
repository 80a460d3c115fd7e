"""``emcli plot``: draw a fitted model (its clusters, convergence, selection or a density).

Reads the model file (and INPUT, by the model's column names), asks ``emcli.plot`` for the
figure, and writes it through ``OutputSet`` (temporary file, then rename).  No mathematics.
"""

from __future__ import annotations

from typing import Any

import click

from ..errors import UsageError
from .app import cli
from .options import (
    CONTEXT,
    CRITERIA,
    FORMAT_CHOICES,
    PATH,
    display_options,
    file_argument,
    option,
    set_help,
)

MAX_PIXELS = 20_000  # per side; a typo such as --dpi 30000 should not eat the memory
DEFAULT_DPI = 100
KINDS = ("clusters", "convergence", "selection", "density", "levels")


@cli.command(context_settings=CONTEXT)
@file_argument("model_path", "MODEL")
@file_argument("input", "[INPUT]", required=False)
@option(
    "-o",
    "--output",
    required=True,
    metavar="FILE",
    type=PATH,
    help="Image to write: FILE.png, FILE.svg or FILE.pdf (format from the extension).",
)
@option(
    "--kind",
    type=click.Choice(KINDS),
    help="What to draw [default: selection if MODEL holds one, else clusters with "
    "INPUT (density for one column), else convergence; levels (bar charts of level "
    "probabilities) for a categorical, bernoulli or mixed model].",
)
@option("--x", "x_column", metavar="COL", help="clusters: column on the x axis.")
@option("--y", "y_column", metavar="COL", help="clusters: column on the y axis.")
@option("--pairs", is_flag=True, help="clusters: a grid of every pair of columns.")
@option("--column", metavar="COL", help="density: the column [default: the first].")
@option(
    "--criterion",
    type=click.Choice(CRITERIA),
    help="selection: criterion to show [default: the one the selection used].",
)
@option(
    "--width",
    type=click.FloatRange(min=0, min_open=True),
    metavar="INCHES",
    help="Figure width [default: 7].",
)
@option(
    "--height",
    type=click.FloatRange(min=0, min_open=True),
    metavar="INCHES",
    help="Figure height [default: 5].",
)
@option("--size", metavar="WxH", help="Width and height in inches, e.g. 8x6.")
@option(
    "--dpi",
    type=click.IntRange(min=10, max=2400),
    default=100,
    show_default=True,
    help="Pixels per inch (a 7x5 figure at 100 dpi is 700x500 pixels).",
)
@option(
    "--format",
    "fmt",
    type=click.Choice(FORMAT_CHOICES),
    help="INPUT format; by default from the extension (stdin: parquet if it starts with "
    "PAR1, else csv).",
)
@option("--delimiter", metavar="CHAR", help="Field separator for CSV INPUT.")
@display_options
def plot(model_path: str, input: str | None, **options: Any) -> None:
    """Draw a fitted model: its clusters, convergence, model selection or a density.

    MODEL is a model file written by 'emcli fit --params'; INPUT (for clusters and density)
    is a table with the model's columns.  Needs matplotlib: pip install "emcli-mixture[plot]".

    \b
    Example:
      emcli fit sample_data/faithful.csv -k 1..9 --covariance all --params m.json
      emcli plot m.json -o selection.png
      emcli plot m.json sample_data/faithful.csv --kind clusters -o clusters.svg
      emcli plot m.json --kind convergence -o convergence.pdf --size 8x5
    """
    kind = run_plot(model_path, input, options)
    if options.get("verbose") and not options.get("quiet"):
        click.echo(f"wrote the {kind} plot to {options['output']}", err=True)


set_help(
    plot,
    quiet="Nothing on stderr but warnings and errors (plot shows no progress).",
    verbose="Print the kind of plot drawn and the file written on stderr.",
)


def parse_size(spec: str) -> tuple[float, float]:
    """'8x6' (inches) -> (8.0, 6.0)."""
    try:
        width, height = (float(v) for v in spec.lower().replace("\u00d7", "x").split("x"))
    except ValueError:
        raise UsageError(
            f"--size '{spec}' is not WIDTHxHEIGHT in inches, e.g. --size 8x6"
        ) from None
    if not (width > 0 and height > 0):
        raise UsageError(f"--size '{spec}': width and height must be positive")
    return width, height


def figure_size(options: dict[str, Any]) -> tuple[float, float] | None:
    """The requested size in inches, or None for the kind's default."""
    width, height, spec = options.get("width"), options.get("height"), options.get("size")
    if spec and (width or height):
        raise UsageError("give either --size WxH or --width/--height, not both")
    if spec:
        return parse_size(spec)
    if width is None and height is None:
        return None
    from ..plot import DEFAULT_SIZE

    if width is None:
        assert height is not None
        width = height * DEFAULT_SIZE[0] / DEFAULT_SIZE[1]
    if height is None:
        height = width * DEFAULT_SIZE[1] / DEFAULT_SIZE[0]
    return width, height


def _check_options(kind: str, options: dict[str, Any]) -> None:
    """Options that only one kind reads are a usage error with another kind."""
    owners = {
        "x_column": ("--x", "clusters"),
        "y_column": ("--y", "clusters"),
        "pairs": ("--pairs", "clusters"),
        "column": ("--column", "density"),
        "criterion": ("--criterion", "selection"),
    }
    for name, (flag, owner) in owners.items():
        if options.get(name) and kind != owner:
            raise UsageError(f"{flag} applies to --kind {owner}, not to --kind {kind}")


def run_plot(model_path: str, source: str | None, options: dict[str, Any]) -> str:
    """Draw and write the figure; returns the kind drawn."""
    from .. import plot as drawing
    from ..data.reader import read_table
    from ..data.writers import OutputSet
    from ..model import GaussianMixtureModel

    drawing.require_matplotlib()  # before any reading: say at once what to install
    destination = options["output"]
    if destination == "-":
        raise UsageError("plot writes a file: give -o FILE.png, FILE.svg or FILE.pdf")
    fmt = drawing.image_format(destination)
    size = figure_size(options)
    dpi = options.get("dpi") or DEFAULT_DPI
    if size and max(size) * dpi > MAX_PIXELS:
        raise UsageError(
            f"{size[0]:g}x{size[1]:g} inches at {dpi} dpi is more than "
            f"{MAX_PIXELS} pixels a side; lower --dpi or the size"
        )
    outputs = OutputSet()
    outputs.check(destination)
    model = GaussianMixtureModel.load(model_path)
    kind = options.get("kind") or drawing.default_kind(model, source is not None)
    _check_options(kind, options)
    drawing.check_kind(model, kind, source is not None)
    x = None
    if source is not None:
        x = read_table(
            source,
            fmt=options.get("fmt"),
            columns=model.columns,
            delimiter=options.get("delimiter"),
        ).x
    fig = drawing.plot(
        model,
        kind,
        x,
        x_column=options.get("x_column"),
        y_column=options.get("y_column"),
        pairs=options.get("pairs", False),
        column=options.get("column"),
        criterion=options.get("criterion"),
        size=size,
        dpi=dpi,
    )
    outputs.add(destination, lambda handle: drawing.save(fig, handle, fmt))
    outputs.commit()
    return kind

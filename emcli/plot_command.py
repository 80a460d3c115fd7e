"""What ``emcli plot`` does once click has parsed it (loaded lazily by ``cli.py``).

Reads the model file (and INPUT, by the model's column names), asks ``emcli.plot`` for the
figure, and writes it through ``OutputSet`` (temporary file, then rename).  No mathematics.
"""

from __future__ import annotations

from typing import Any

from .data.reader import read_table
from .data.writers import OutputSet
from .errors import UsageError
from .model import GaussianMixtureModel

MAX_PIXELS = 20_000  # per side; a typo such as --dpi 30000 should not eat the memory
DEFAULT_DPI = 100


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
    from .plot import DEFAULT_SIZE

    width = width or (height * DEFAULT_SIZE[0] / DEFAULT_SIZE[1])
    height = height or (width * DEFAULT_SIZE[1] / DEFAULT_SIZE[0])
    return width, height


def _check_options(kind: str, options: dict[str, Any]) -> None:
    """Options that only one kind reads are a usage error with another kind."""
    owners = {"x_column": ("--x", "clusters"), "y_column": ("--y", "clusters"),
              "pairs": ("--pairs", "clusters"), "column": ("--column", "density"),
              "criterion": ("--criterion", "selection")}
    for name, (flag, owner) in owners.items():
        if options.get(name) and kind != owner:
            raise UsageError(f"{flag} applies to --kind {owner}, not to --kind {kind}")


def run_plot(model_path: str, source: str | None, options: dict[str, Any]) -> None:
    from . import plot

    plot.require_matplotlib()  # before any reading: say at once what to install
    destination = options["output"]
    if destination == "-":
        raise UsageError("plot writes a file: give -o FILE.png, FILE.svg or FILE.pdf")
    fmt = plot.image_format(destination)
    size = figure_size(options)
    dpi = options.get("dpi") or DEFAULT_DPI
    if size and max(size) * dpi > MAX_PIXELS:
        raise UsageError(f"{size[0]:g}x{size[1]:g} inches at {dpi} dpi is more than "
                         f"{MAX_PIXELS} pixels a side; lower --dpi or the size")
    outputs = OutputSet()
    outputs.check(destination)
    model = GaussianMixtureModel.load(model_path)
    kind = options.get("kind") or plot.default_kind(model, source is not None)
    _check_options(kind, options)
    plot.check_kind(model, kind, source is not None)
    x = None
    if source is not None:
        x = read_table(source, fmt=options.get("fmt"), columns=model.columns,
                       delimiter=options.get("delimiter")).x
    fig = plot.plot(model, kind, x, x_column=options.get("x_column"),
                    y_column=options.get("y_column"), pairs=options.get("pairs", False),
                    column=options.get("column"), criterion=options.get("criterion"),
                    size=size, dpi=dpi)
    outputs.add(destination, lambda handle: plot.save(fig, handle, fmt))
    outputs.commit()

"""``predict``, ``score``, ``sample`` and ``describe``: use a model file without its data.

Inputs are read block by block and outputs written block by block into temporary files that
are renamed into place at the end, so the commands work on files larger than memory and still
leave either complete outputs or none.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterator
from typing import IO, Any

import click

from ..errors import ModelFileError, UsageError
from .app import cli
from .options import (
    CONTEXT,
    display_options,
    input_options,
    option,
    output_options,
    set_help,
    split_columns,
)

MODEL_COLUMNS_HELP = (
    "Input columns standing for the model's columns, in the model's order "
    "[default: the model's column names]."
)


# ---------------------------------------------------------------------------- shared
def load_model(path: str) -> Any:
    """The model file at ``path`` (``-``: standard input)."""
    from ..model import GaussianMixtureModel

    if path != "-":
        return GaussianMixtureModel.load(path)
    try:
        data = json.loads(sys.stdin.buffer.read().decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelFileError(
            f"standard input is not an emcli model file (not JSON: {exc}); give the JSON "
            "file written by 'emcli fit --params'"
        ) from None
    return GaussianMixtureModel.from_dict(data)


def model_and_reader(model_path: str, source: str, options: dict[str, Any]):
    """Load the model, then open INPUT on the model's columns (or those of -c/--columns).

    Opening reads the header, so a missing column fails here, before any output.
    """
    from ..data.reader import open_blocks

    if model_path == "-" and source == "-":
        raise UsageError("MODEL and INPUT cannot both be standard input ('-')")
    model = load_model(model_path)
    wanted = model.input_columns
    columns = split_columns(options.get("columns")) or list(wanted)
    if len(columns) != len(wanted):
        raise UsageError(
            f"-c/--columns names {len(columns)} column(s) but the model has "
            f"{len(wanted)} ({', '.join(wanted)}); give one input column for "
            "each, in that order"
        )
    if len(set(columns)) != len(columns):
        raise UsageError("-c/--columns names a column twice")
    specs = getattr(model.family, "columns", None)
    if specs is not None:  # a product family: cells encoded with the model's levels
        from ..data.encode import EncodedReader

        return model, EncodedReader(
            source, specs, columns, options.get("fmt"), options.get("delimiter")
        )
    return model, open_blocks(source, columns, options.get("fmt"), options.get("delimiter"))


def _scored(model: Any, reader: Any, density_only: bool = False) -> Iterator[tuple[int, Any, Any]]:
    from ..apply import apply_blocks

    return apply_blocks(model, reader, reader.columns, density_only=density_only)


def _report(options: dict[str, Any], line: str) -> None:
    """A one-line report on stderr with -v (never with -q)."""
    if options.get("verbose") and not options.get("quiet"):
        click.echo(line, err=True)


# ---------------------------------------------------------------------------- predict
@cli.command(context_settings=CONTEXT)
@click.argument("model", metavar="MODEL")
@click.argument("input", metavar="INPUT")
@input_options
@output_options
@display_options
def predict(model: str, input: str, **options: Any) -> None:
    """Assign each row of INPUT to a component of MODEL (a model file from fit --params).

    The model's columns are read from INPUT by name (any other columns are ignored) and
    the file is processed in blocks, so it may be larger than memory.  With no output
    option the labels go to stdout.  On the training data the labels and responsibilities
    equal those of fit.

    \b
    Example:
      emcli fit train.csv -k 3 --params model.json
      emcli predict model.json new.csv > labels.csv
      emcli predict model.json new.parquet --responsibilities resp.csv -o results/
    """
    run_predict(model, input, options)


set_help(
    predict,
    columns=MODEL_COLUMNS_HELP,
    quiet="Nothing on stderr but warnings and errors (predict shows no progress).",
    verbose="Print the number of rows labelled per component on stderr.",
)


def run_predict(model_path: str, source: str, options: dict[str, Any]) -> None:
    import numpy as np

    from ..data.writers import OutputSet
    from .outputs import ROW_OUTPUTS, plan_outputs, row_writer

    outputs = OutputSet()
    requested = {name: options.get(name) for name in ROW_OUTPUTS}
    paths = plan_outputs(outputs, requested, options.get("output_dir"))
    if not paths:
        outputs.check("-")
        paths = {"labels": "-"}
    names = [n for n in ROW_OUTPUTS if n in paths]
    model, reader = model_and_reader(model_path, source, options)
    counts = np.zeros(model.n_components, dtype=np.int64)

    def responsibilities() -> Iterator[Any]:
        for _, log_resp, _ in _scored(model, reader):
            resp = np.exp(log_resp)
            counts[:] += np.bincount(np.argmax(resp, axis=1), minlength=model.n_components)
            yield resp

    outputs.add_group(
        [paths[n] for n in names], row_writer(names, model.n_components, responsibilities())
    )
    try:
        outputs.commit()
    finally:
        reader.close()
    per = ", ".join(f"{j}: {int(c)}" for j, c in enumerate(counts))
    _report(options, f"{int(counts.sum())} row(s) labelled; rows per component {per}")


# ---------------------------------------------------------------------------- score
@cli.command(context_settings=CONTEXT)
@click.argument("model", metavar="MODEL")
@click.argument("input", metavar="INPUT")
@input_options
@option(
    "--output",
    metavar="PATH",
    default="-",
    show_default=True,
    help="Write the CSV here instead of stdout.",
)
@option(
    "--below",
    type=float,
    metavar="X",
    help="Keep only rows whose log-density is below X (in input order).",
)
@option(
    "--lowest",
    type=click.IntRange(min=1),
    metavar="N",
    help="Keep only the N least likely rows, least likely first.",
)
@display_options
def score(model: str, input: str, **options: Any) -> None:
    """Log-density of each row of INPUT under MODEL, as CSV with a log_likelihood column.

    With --below or --lowest only the least likely rows are written, with their 0-based
    row number in a 'row' column (anomaly detection).  The total and mean per row go to
    stderr at a terminal (or with -v).  INPUT is processed in blocks.

    \b
    Example:
      emcli score model.json new.csv > density.csv
      emcli score model.json new.csv --lowest 20
      emcli score model.json new.parquet --below -12.5 --output unusual.csv
    """
    run_score(model, input, options)


set_help(
    score,
    columns=MODEL_COLUMNS_HELP,
    verbose="Print the total and mean log-likelihood even where stderr is not a terminal.",
    quiet="No summary on stderr.",
)


class ScoreTotals:
    """What ``score`` saw: rows, their summed log-density, rows kept by --below/--lowest."""

    def __init__(self) -> None:
        self.rows, self.sum, self.kept = 0, 0.0, 0

    def line(self, filtered: bool) -> str:
        mean = f"{self.sum / self.rows:.6f}" if self.rows else "-"
        kept = f"; {self.kept} row(s) kept" if filtered else ""
        return f"{self.rows} row(s): total log-likelihood {self.sum:.6f}, mean {mean} per row{kept}"


def score_writer(
    model: Any, reader: Any, below: float | None, lowest: int | None, totals: ScoreTotals
):
    """The writer of ``score``'s one output (all rows, or the ones --below/--lowest keep)."""
    import numpy as np

    from ..apply import LowestRows
    from ..data.writers import csv_header
    from .outputs import write_block

    filtered = below is not None or lowest is not None

    def write(handles: list[IO[bytes]]) -> None:
        (handle,) = handles
        header = ["row", "log_likelihood"] if filtered else ["log_likelihood"]
        handle.write(csv_header(header).encode())
        keep = LowestRows(lowest) if lowest is not None else None
        for first, _, norm in _scored(model, reader, density_only=True):
            totals.rows += len(norm)
            totals.sum += float(norm.sum())
            if not filtered:
                write_block(handle, [norm])
                continue
            rows = np.arange(first, first + len(norm), dtype=np.int64)
            if below is not None:
                mask = norm < below
                rows, norm = rows[mask], norm[mask]
            if keep is not None:
                keep.add(rows, norm)
            else:
                write_block(handle, [rows, norm])
                totals.kept += len(rows)
        if keep is not None:
            rows, norm = keep.result()
            write_block(handle, [rows, norm])
            totals.kept = len(rows)

    return write


def run_score(model_path: str, source: str, options: dict[str, Any]) -> None:
    from ..data.writers import OutputSet

    below, lowest = options.get("below"), options.get("lowest")
    if below is not None and math.isnan(below):
        raise click.BadParameter("--below must be a number, not nan", param_hint="--below")
    output = options.get("output") or "-"
    outputs = OutputSet()
    outputs.check(output)
    model, reader = model_and_reader(model_path, source, options)
    totals = ScoreTotals()
    outputs.add_group([output], score_writer(model, reader, below, lowest, totals))
    try:
        outputs.commit()
    finally:
        reader.close()
    if not options.get("quiet") and (sys.stderr.isatty() or options.get("verbose")):
        click.echo(totals.line(below is not None or lowest is not None), err=True)


# ---------------------------------------------------------------------------- sample
@cli.command(context_settings=CONTEXT)
@click.argument("model", metavar="MODEL")
@option(
    "-n",
    "--samples",
    "n_samples",
    type=click.IntRange(min=0),
    required=True,
    metavar="N",
    help="Number of rows to draw.",
)
@option(
    "--seed",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Random seed; the same seed gives byte-identical output.",
)
@option(
    "--output",
    metavar="PATH",
    default="-",
    show_default=True,
    help="Write the CSV here instead of stdout.",
)
@display_options
def sample(model: str, n_samples: int, seed: int, output: str, **options: Any) -> None:
    """Draw N rows from the mixture in MODEL, as CSV with a 'component' column.

    The columns are the model's, plus the 0-based component each row was drawn from.

    \b
    Example:
      emcli sample model.json -n 1000 --seed 7 > synthetic.csv
      emcli sample model.json -n 100000 --output synthetic.csv
    """
    run_sample(model, n_samples, seed, output)
    _report(
        options,
        f"{n_samples} row(s) drawn (seed {seed}) to "
        f"{'standard output' if output == '-' else output}",
    )


set_help(
    sample,
    quiet="Nothing on stderr but warnings and errors (sample shows no progress).",
    verbose="Print the number of rows drawn and where they went on stderr.",
)


def run_sample(model_path: str, n_samples: int, seed: int, output: str) -> None:
    import numpy as np

    from ..data.writers import OutputSet, csv_header
    from ..families.gaussian.sampling import sample_blocks
    from .outputs import write_block

    model = load_model(model_path)
    if "component" in model.columns:
        raise UsageError(
            "the model has a column named 'component', the name of the column "
            "sample adds; rename that column and refit"
        )
    outputs = OutputSet()
    outputs.check(output)

    def writer(handles: list[IO[bytes]]) -> None:
        (handle,) = handles
        handle.write(csv_header([*model.columns, "component"]).encode())
        rng = np.random.default_rng(seed)
        if hasattr(model.family, "decode"):  # a product family: level labels written back
            for start in range(0, n_samples, 65536):
                x, component = model.sample(min(65536, n_samples - start), rng)
                write_block(handle, [*model.family.decode(x).values(), component])
            return
        for x, component in sample_blocks(model.params, n_samples, rng):
            write_block(handle, [*(x[:, j] for j in range(model.n_features)), component])

    outputs.add_group([output], writer)
    outputs.commit()


# ---------------------------------------------------------------------------- describe
@cli.command(context_settings=CONTEXT)
@click.argument("model", metavar="MODEL")
@option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@display_options
def describe(model: str, as_json: bool, **options: Any) -> None:
    """Summarise MODEL: components, weights, means, spread, fit figures, settings.

    \b
    Example:
      emcli describe model.json
      emcli describe model.json --json | jq '.components[].weight'
    """
    run_describe(model, as_json)


set_help(
    describe,
    quiet="Accepted for scripts that pass it to every command: describe writes its summary "
    "to stdout and nothing to stderr but errors.",
    verbose="Accepted for scripts that pass it to every command: the summary is the same.",
)


def run_describe(model_path: str, as_json: bool) -> None:
    from ..apply import describe as summarise
    from ..modelfile import finite as _finite
    from .display import print_description

    model = load_model(model_path)
    summary = summarise(model, full_covariances=as_json)
    if as_json:
        text = json.dumps(_finite(summary), indent=2, allow_nan=False) + "\n"
        sys.stdout.buffer.write(text.encode())
        sys.stdout.buffer.flush()
        return
    print_description(summary)

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

from ..errors import ModelFileError, OutputError, UsageError
from .app import cli
from .options import (
    CONTEXT,
    PATH,
    display_options,
    document_options,
    file_argument,
    input_options,
    option,
    output_options,
    row_options,
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
    if model.family_name == "multinomial":
        return model, document_reader(model, source, options)
    for name, flag in (("text_column", "--text-column"), ("vocabulary_file", "--vocabulary")):
        if options.get(name):
            raise UsageError(
                f"{flag} reads documents, for a multinomial model; this model is of family "
                f"{model.family_name}"
            )
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


def document_reader(model: Any, source: str, options: dict[str, Any]) -> Any:
    """The documents of INPUT as count blocks in the model's vocabulary: a .txt file (or
    --format text), a table's --text-column, or an .mtx count matrix."""
    from ..data.documents import DocumentBlocks, DocumentSource, document_format
    from ..data.formats import parse_delimiter

    fmt = document_format(source, options.get("fmt"), options.get("text_column"))
    if fmt is None:
        raise UsageError(
            "the model clusters documents: give them one per line (a .txt file or --format "
            "text), as a table's --text-column COL, or as an .mtx count matrix"
        )
    if options.get("columns"):
        raise UsageError("-c/--columns selects numbers; documents come from --text-column")
    if options.get("vocabulary_file") and fmt != "mtx":
        raise UsageError("--vocabulary names the terms of an .mtx count matrix")
    if fmt == "mtx" and options.get("vocabulary_file"):
        from ..data.text import read_vocabulary

        terms = read_vocabulary(options["vocabulary_file"], len(model.family.vocabulary))
        if terms != list(model.family.vocabulary):
            raise UsageError(
                "the --vocabulary terms differ from the model's (same terms, same order needed)"
            )
    where = DocumentSource(
        source,
        fmt,
        options.get("text_column"),
        parse_delimiter(options.get("delimiter")),
        options.get("vocabulary_file"),
    )
    return DocumentBlocks(where, model.family.vocabulary, model.family.tokeniser)


def carrier_of(source: str, options: dict[str, Any], paths: dict[str, str]) -> Any:
    """The input columns that --with-input / --id-column carry into the row outputs."""
    from .fit import Source
    from .rows import carrier_for

    reading = Source(source, options.get("fmt"), None, options.get("delimiter"))
    carry = {key: options.get(key) for key in ("with_input", "id_column")}
    return carrier_for(reading, carry, paths)


def _scored(model: Any, reader: Any, density_only: bool = False) -> Iterator[tuple[int, Any, Any]]:
    from ..apply import apply_blocks

    return apply_blocks(model, reader, reader.columns, density_only=density_only)


def _report(options: dict[str, Any], line: str) -> None:
    """A one-line report on stderr with -v (never with -q)."""
    if options.get("verbose") and not options.get("quiet"):
        click.echo(line, err=True)


# ---------------------------------------------------------------------------- predict
@cli.command(context_settings=CONTEXT)
@file_argument("model", "MODEL")
@file_argument("input", "INPUT")
@input_options
@document_options
@output_options
@row_options
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
    carrier = carrier_of(source, options, paths)
    model, reader = model_and_reader(model_path, source, options)
    counts = np.zeros(model.n_components, dtype=np.int64)

    def responsibilities() -> Iterator[Any]:
        for _, log_resp, _ in _scored(model, reader):
            resp = np.exp(log_resp)
            counts[:] += np.bincount(np.argmax(resp, axis=1), minlength=model.n_components)
            yield resp

    chosen = [paths[n] for n in names]
    outputs.add_group(
        chosen, row_writer(names, model.n_components, responsibilities(), chosen, carrier)
    )
    try:
        outputs.commit()
    finally:
        reader.close()
    per = ", ".join(f"{j}: {int(c)}" for j, c in enumerate(counts))
    _report(options, f"{int(counts.sum())} row(s) labelled; rows per component {per}")


# ---------------------------------------------------------------------------- score
@cli.command(context_settings=CONTEXT)
@file_argument("model", "MODEL")
@file_argument("input", "INPUT")
@input_options
@document_options
@option(
    "--output",
    metavar="PATH",
    type=PATH,
    default="-",
    show_default=True,
    help="Write the scores here instead of stdout: CSV, or TSV, Parquet or JSON lines by "
    "the extension (.tsv, .parquet, .jsonl).",
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
@row_options
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
    model: Any,
    reader: Any,
    below: float | None,
    lowest: int | None,
    totals: ScoreTotals,
    fmt: str = "csv",
    carrier: Any = None,
):
    """The writer of ``score``'s one output (all rows, or the ones --below/--lowest keep),
    in ``fmt``, with the ``carrier``'s input columns in front when given."""
    import numpy as np

    from ..apply import LowestRows
    from ..data.writers import RowSink
    from .outputs import check_carried, row_table

    filtered = below is not None or lowest is not None
    header = ["row", "log_likelihood"] if filtered else ["log_likelihood"]
    if carrier is not None:
        check_carried(carrier.names, header)

    def write(handles: list[IO[bytes]]) -> None:
        (handle,) = handles
        sink = RowSink(handle, fmt)
        keep = LowestRows(lowest) if lowest is not None else None
        kept_carried: list[Any] = []
        if carrier is not None:
            carrier.start()
        for first, _, norm in _scored(model, reader, density_only=True):
            carried = carrier.take(len(norm)) if carrier is not None else None
            totals.rows += len(norm)
            totals.sum += float(norm.sum())
            if not filtered:
                sink.write(row_table(header, [norm], carried))
                continue
            rows = np.arange(first, first + len(norm), dtype=np.int64)
            if below is not None:
                mask = norm < below
                rows, norm = rows[mask], norm[mask]
                if carried is not None:
                    carried = carried.filter(mask)
            if keep is not None:
                keep.add(rows, norm)
                if carried is not None:  # candidates only; pruned to the kept rows below
                    kept_carried.append(carried.append_column("__row", [rows]))
                    kept_carried[:] = [_only_kept(kept_carried, keep)]
            else:
                sink.write(row_table(header, [rows, norm], carried))
                totals.kept += len(rows)
        if keep is not None:
            rows, norm = keep.result()
            carried = _in_order(kept_carried, rows) if carrier is not None else None
            sink.write(row_table(header, [rows, norm], carried))
            totals.kept = len(rows)
        sink.close(
            row_table(
                header,
                [np.empty(0, np.int64), np.empty(0)][-len(header) :],
                carrier.empty() if carrier is not None else None,
            )
        )

    return write


def _only_kept(tables: list[Any], keep: Any) -> Any:
    """The carried rows of the candidates ``keep`` still holds (memory O(N + block))."""
    import numpy as np
    import pyarrow as pa

    table = pa.concat_tables(tables)
    held = np.concatenate(keep._rows) if keep._rows else np.empty(0, np.int64)
    mask = np.isin(table.column("__row").to_numpy(), held)
    return table.filter(pa.array(mask))


def _in_order(tables: list[Any], rows: Any) -> Any:
    """The carried columns of ``rows``, in that order."""
    import numpy as np
    import pyarrow as pa

    table = pa.concat_tables(tables) if tables else None
    if table is None or not len(rows):
        return None if table is None else table.slice(0, 0).drop_columns(["__row"])
    index = {int(r): i for i, r in enumerate(table.column("__row").to_numpy())}
    order = np.array([index[int(r)] for r in rows], dtype=np.int64)
    return table.take(pa.array(order)).drop_columns(["__row"])


def run_score(model_path: str, source: str, options: dict[str, Any]) -> None:
    from ..data.writers import OutputSet, row_format

    below, lowest = options.get("below"), options.get("lowest")
    if below is not None and math.isnan(below):
        raise click.BadParameter("--below must be a number, not nan", param_hint="--below")
    output = options.get("output") or "-"
    fmt = row_format(output)
    outputs = OutputSet()
    outputs.check(output)
    carrier = carrier_of(source, options, {"output": output})
    model, reader = model_and_reader(model_path, source, options)
    totals = ScoreTotals()
    outputs.add_group([output], score_writer(model, reader, below, lowest, totals, fmt, carrier))
    try:
        outputs.commit()
    finally:
        reader.close()
    if not options.get("quiet") and (sys.stderr.isatty() or options.get("verbose")):
        click.echo(totals.line(below is not None or lowest is not None), err=True)


# ---------------------------------------------------------------------------- sample
@cli.command(context_settings=CONTEXT)
@file_argument("model", "MODEL")
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
    type=PATH,
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
    if model.family_name == "multinomial":
        model.family.sample(model.params, 0, np.random.default_rng(0))  # UsageError: why not
    if "component" in model.input_columns:
        raise UsageError(
            "the model has a column named 'component', the name of the column "
            "sample adds; rename that column and refit"
        )
    outputs = OutputSet()
    outputs.check(output)
    projection = model.projection  # a --pca model draws rows of its input columns
    columns = list(model.input_columns)
    check_sample_size(n_samples, len(columns), output)

    def writer(handles: list[IO[bytes]]) -> None:
        (handle,) = handles
        handle.write(csv_header([*columns, "component"]).encode())
        rng = np.random.default_rng(seed)
        if hasattr(model.family, "decode"):  # a product family: level labels written back
            for start in range(0, n_samples, 65536):
                x, component = model.sample(min(65536, n_samples - start), rng)
                write_block(handle, [*model.family.decode(x).values(), component])
            return
        for x, component in sample_blocks(model.params, n_samples, rng):
            if projection is not None:  # --pca: back to the input columns
                x = projection.inverse(x)
            write_block(handle, [*(x[:, j] for j in range(x.shape[1])), component])

    outputs.add_group([output], writer)
    outputs.commit()


# At least this many bytes per drawn value in the CSV (a digit, a sign, a point, digits and
# a separator); the real figure is about 20, so a refused size could never have fitted.
MIN_BYTES_PER_VALUE = 8


def check_sample_size(n_samples: int, n_features: int, output: str) -> None:
    """Refuse at once a sample that cannot fit where it is written (a file, or the spool of
    standard output), instead of drawing until the disk is full or the process is killed."""
    import os
    import shutil
    import tempfile

    if n_samples >= 2**63:
        raise UsageError(f"{{n_samples}} {n_samples} is more rows than can be counted; draw fewer")
    need = n_samples * (n_features + 1) * MIN_BYTES_PER_VALUE
    where = tempfile.gettempdir() if output == "-" else os.path.dirname(os.path.abspath(output))
    try:
        free = shutil.disk_usage(where).free
    except OSError:
        return
    if need > free:
        raise OutputError(
            f"{{n_samples}} {n_samples} rows of {n_features + 1} columns need at least "
            f"{need / 1e9:.3g} GB, more than the {free / 1e9:.3g} GB free in '{where}'; "
            "draw fewer rows (or several runs with different --seed)"
        )


# ---------------------------------------------------------------------------- describe
@cli.command(context_settings=CONTEXT)
@file_argument("model", "MODEL")
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

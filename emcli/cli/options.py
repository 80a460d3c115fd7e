"""Options every command spells the same way, and the one table of flag names.

Option groups are decorators (sqlite-utils' ``output_options``).  ``FLAGS`` maps the Python
parameter names that library messages name as ``{reg_covar}`` to the flags a shell user
types; ``app.click_error`` renders every library error through it, in one place.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from importlib import import_module
from typing import Any

import click

from ..errors import render

FORMAT_CHOICES = ("csv", "tsv", "parquet", "text", "mtx")
# A file name the shell completes as one (click.Path's completion); no checks here: the
# library checks existence and permissions with its own one-line messages (exit status 1).
PATH = click.Path(allow_dash=True, readable=False)
INIT_METHODS = ("auto", "hc", "kmeans", "kmeans++", "random")
CRITERIA = ("bic", "icl", "aic")
CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}

# Python parameter (as library messages name it: "{reg_covar}") -> the CLI's flag.
FLAGS: dict[str, str] = {
    # fit: the model and EM
    "n_components": "-k",
    "covariance_type": "--covariance",
    "family": "--family",
    "df": "--df",
    "df_shared": "--df-shared",
    "criterion": "--criterion",
    "init": "--init",
    "n_restarts": "--restarts",
    "max_iter": "--max-iter",
    "tol": "--tol",
    "reg_covar": "--reg-covar",
    "seed": "--seed",
    "init_sample": "--init-sample",
    "accelerate": "--accelerate",
    "dtype": "--dtype",
    "missing": "--missing",
    "pca": "--pca",
    "alpha": "--alpha",
    "types": "--types",
    # fit: documents (the multinomial family)
    "text_column": "--text-column",
    "vocabulary": "--vocabulary",
    "stop_words": "--stop-words",
    "min_df": "--min-df",
    "max_df": "--max-df",
    "max_vocab": "--max-vocab",
    "top_words": "--top-words",
    "n_top_words": "--n-top-words",
    "jobs": "--jobs",
    "sample_weight": "--weights",
    "weights": "--weights",
    # where the rows are
    "engine": "--engine",
    "memory_limit": "--memory-limit",
    "block_rows": "--block-rows",
    "scheduler": "--scheduler",
    # reading a table
    "columns": "-c/--columns",
    "fmt": "--format",
    "delimiter": "--delimiter",
    # outputs
    "labels": "--labels",
    "responsibilities": "--responsibilities",
    "output_dir": "-o/--output-dir",
    "params": "--params",
    "imputed": "--imputed",
    "outlier_scores": "--outlier-scores",
    "selection": "--selection",
    "output": "--output",
    "quiet": "-q/--quiet",
    "verbose": "-v/--verbose",
    "with_input": "--with-input",
    "id_column": "--id-column",
    # predict, score, sample, describe
    "below": "--below",
    "lowest": "--lowest",
    "n_samples": "-n/--samples",
    "as_json": "--json",
    # plot
    "kind": "--kind",
    "x_column": "--x",
    "y_column": "--y",
    "pairs": "--pairs",
    "column": "--column",
    "width": "--width",
    "height": "--height",
    "size": "--size",
    "dpi": "--dpi",
    # segment
    "features": "--features",
    "xy": "--xy",
    "sample": "--sample",
    "boundary_colour": "--boundary-colour",
}


def in_flags(message: str) -> str:
    """A library message in the command line's words: each ``{parameter}`` as its flag.

    A note or warning that keeps its template (``message.template``) is rendered from it, so
    a message the library already shows with parameter names still gets flags here.
    """
    return render(getattr(message, "template", message), FLAGS)


class Option(click.Option):
    """An option whose automatic environment variable is named after its long flag:
    EMCLI_FIT_COMPONENTS for ``fit -k/--components``, EMCLI_PLOT_FORMAT for ``plot --format``
    (click would use the Python parameter name)."""

    def resolve_envvar_value(self, ctx: click.Context) -> str | None:
        if self.envvar is None and self.allow_from_autoenv and ctx.auto_envvar_prefix:
            flag = max(self.opts, key=len).lstrip("-").replace("-", "_").upper()
            return os.environ.get(f"{ctx.auto_envvar_prefix}_{flag}") or None
        return super().resolve_envvar_value(ctx)


option = functools.partial(click.option, cls=Option)
Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


def group(*decorators: Decorator) -> Decorator:
    """Several option decorators as one, applied in the order written (as in --help)."""

    def apply(f: Callable[..., Any]) -> Callable[..., Any]:
        for decorator in reversed(decorators):
            f = decorator(f)
        return f

    return apply


def set_help(command: click.Command, **texts: str) -> None:
    """Reword a shared option's help where a command gives it another meaning."""
    for param in command.params:
        if param.name in texts:
            param.help = texts[param.name]  # type: ignore[attr-defined]


def split_columns(spec: str | None) -> list[str] | None:
    """'a, b,c' -> ['a', 'b', 'c']; None for no -c/--columns."""
    if not spec:
        return None
    return [c.strip() for c in spec.split(",") if c.strip()]


def file_argument(name: str, metavar: str, required: bool = True) -> Decorator:
    """An INPUT or MODEL argument: a file name (or ``-``) that the shell completes as one.

    Existence is checked by the library (one-line messages of its own), not by click.
    """
    return click.argument(
        name,
        metavar=metavar,
        required=required,
        type=PATH,
    )


def complete_covariances(ctx: Any, param: Any, incomplete: str) -> list[Any]:
    """Shell completion of --covariance: the covariance models' names, and 'all'."""
    from click.shell_completion import CompletionItem

    try:
        models = import_module("emcli.families.gaussian.models")
        names = [*getattr(models, "COVARIANCE_TYPES", ("full", "tied", "diag", "spherical"))]
    except ImportError:  # pragma: no cover
        names = ["full", "tied", "diag", "spherical"]
    head, _, last = incomplete.rpartition(",")
    prefix = f"{head}," if head else ""
    return [CompletionItem(prefix + n) for n in [*names, "all"] if n.startswith(last)]


def family_names() -> tuple[str, ...]:
    """The registered mixture families (``emcli.families.FAMILIES``; cheap to import)."""
    return tuple(getattr(import_module("emcli.families"), "FAMILIES", ("gaussian",)))


class Size(click.ParamType):
    """A memory size such as 512MB, 2GB or 800MiB, in bytes."""

    name = "SIZE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None):
        from ..engines.choose import parse_size
        from ..errors import UsageError

        if isinstance(value, int):
            return value
        try:
            return parse_size(value)
        except UsageError as exc:
            self.fail(exc.render(FLAGS), param, ctx)


# ---------------------------------------------------------------------------- groups
input_options = group(
    option(
        "--format",
        "fmt",
        type=click.Choice(FORMAT_CHOICES),
        help="Input format; by default from the extension (stdin: parquet if it starts "
        "with PAR1, else csv). text: one document per line (.txt); mtx: a Matrix Market "
        "document-term count matrix (.mtx).",
    ),
    option(
        "-c",
        "--columns",
        metavar="A,B,...",
        help="Comma-separated columns to use [default: every numeric column].",
    ),
    option(
        "--delimiter",
        metavar="CHAR",
        help="Field separator for CSV input, e.g. ';' [default: ',' or tab].",
    ),
)

# Where documents are (fit, predict, score): a table's text column, an .mtx's terms.
document_options = group(
    option(
        "--text-column",
        metavar="COL",
        help="The column of a CSV/TSV/Parquet table that holds documents (implies "
        "--family multinomial).",
    ),
    option(
        "--vocabulary",
        "vocabulary_file",
        metavar="FILE",
        type=click.Path(dir_okay=False),
        help="With an .mtx count matrix: its terms, one per line, in column order.",
    ),
)

# How fit turns texts into counts (docs/documents.md); recorded in the model file.
tokeniser_options = group(
    option(
        "--stop-words",
        metavar="english|none|FILE",
        default=None,
        help="Words left out: the built-in English list, none, or a file of one word per "
        "line [default: english].",
    ),
    option(
        "--min-df",
        type=click.IntRange(min=1),
        default=None,
        metavar="N",
        help="Keep terms found in at least N documents [default: 2].",
    ),
    option(
        "--max-df",
        type=click.FloatRange(min=0, min_open=True, max=1),
        default=None,
        metavar="F",
        help="Drop terms found in more than this fraction of documents [default: 0.5].",
    ),
    option(
        "--max-vocab",
        type=click.IntRange(min=1),
        default=None,
        metavar="N",
        help="Keep at most the N most frequent terms [default: 20000].",
    ),
)

output_options = group(
    option(
        "--labels",
        metavar="PATH",
        type=PATH,
        help="Write a 'cluster' column (0-based), one row per input row; CSV, or TSV, "
        "Parquet or JSON lines by the extension (.tsv, .parquet, .jsonl).",
    ),
    option(
        "--responsibilities",
        metavar="PATH",
        type=PATH,
        help="Write membership probabilities, columns component_0..; format by the "
        "extension as for --labels.",
    ),
    option(
        "-o",
        "--output-dir",
        metavar="DIR",
        type=PATH,
        help="Write labels.csv, responsibilities.csv and params.json into DIR.",
    ),
)

row_options = group(
    option(
        "--with-input",
        is_flag=True,
        help="Row outputs start with the input's own columns (every column, as in the "
        "file), then the label, responsibilities or score.",
    ),
    option(
        "--id-column",
        metavar="COL",
        help="Carry column COL of the input (an identifier) into every row output, as its "
        "first column.",
    ),
)

scale_options = group(
    option(
        "--engine",
        type=click.Choice(("memory", "stream", "dask")),
        default=None,
        help="memory: load the table; stream: one pass over the file per iteration; "
        "dask: on a Dask cluster [default: memory, or stream when the input "
        "exceeds --memory-limit].",
    ),
    option(
        "--memory-limit",
        type=Size(),
        metavar="SIZE",
        help="Memory budget, e.g. 512MB or 2GB: larger inputs are streamed "
        "[default: half the physical memory].",
    ),
    option(
        "--block-rows",
        type=click.IntRange(min=1),
        default=None,
        help="Rows per block read by --engine stream [default: 65536], or per "
        "partition with --engine dask [default: a row group, 64 MB of CSV].",
    ),
    option(
        "--scheduler",
        metavar="ADDRESS",
        help="Dask scheduler, e.g. tcp://host:8786 (implies --engine dask) "
        "[default: a local cluster, one worker per core].",
    ),
)

# --alpha: shared by the families that smooth counts (categorical, bernoulli, mixed; the
# multinomial family too).  None means the family's own default.
ALPHA_HELP = (
    "Pseudo-count added to every level of a categorical column (and to each side of a "
    "bernoulli one), or to every term of every cluster (multinomial); 0 is maximum "
    "likelihood [default: the family's: 0 for categorical, bernoulli and mixed, 0.01 for "
    "multinomial]."
)
alpha_option = option(
    "--alpha",
    type=click.FloatRange(min=0),
    default=None,
    metavar="A",
    help=ALPHA_HELP,
)

types_option = option(
    "--types",
    metavar="COL=KIND,...",
    help="With --family mixed, the kind of named columns: gaussian, categorical, poisson "
    "or bernoulli [default: numeric columns gaussian, text and boolean categorical].",
)

display_options = group(
    option(
        "-q",
        "--quiet",
        is_flag=True,
        help="No progress, notes or summary on stderr (warnings and errors stay).",
    ),
    option(
        "-v",
        "--verbose",
        is_flag=True,
        help="Where stderr is not a terminal, one plain line per EM iteration.",
    ),
)

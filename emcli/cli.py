"""The ``emcli`` command: parse options, call the library, write outputs.

Only click is imported at start-up (``emcli --help`` stays fast); numpy, pyarrow and rich load
inside the commands.  Library errors (``EmcliError``) become one ``Error: ...`` line and the
exit status of ``emcli.errors.ExitStatus``, here and nowhere else.
"""

from __future__ import annotations

import functools
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

import click

from . import __version__
from .errors import EmcliError, ExitStatus, StdoutClosed

COVARIANCE_CHOICES = ("full", "tied", "diag", "spherical")
INIT_CHOICES = ("kmeans", "kmeans++", "random")
FORMAT_CHOICES = ("csv", "tsv", "parquet")
CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


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


class Terminated(BaseException):
    """Raised from the SIGTERM handler so that cleanup runs as for Ctrl-C."""


class Interrupted(BaseException):
    """Raised from the SIGINT handler instead of KeyboardInterrupt, which click answers with
    an empty line on stderr before its Abort (the one-line contract has no room for it)."""


# ---------------------------------------------------------------------------- option groups
def input_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """Options shared by every command that reads a table."""
    for decorator in reversed([
        option("--format", "fmt", type=click.Choice(FORMAT_CHOICES),
                     help="Input format; by default from the extension (stdin: csv)."),
        option("-c", "--columns", metavar="A,B,...",
                     help="Comma-separated columns to use [default: every numeric column]."),
        option("--delimiter", metavar="CHAR",
                     help="Field separator for CSV input, e.g. ';' [default: ',' or tab]."),
    ]):
        f = decorator(f)
    return f


def output_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """Per-row outputs shared by fit and predict; PATH may be '-' for stdout."""
    for decorator in reversed([
        option("--labels", metavar="PATH",
                     help="Write a CSV with a 'cluster' column (0-based), one row per input row."),
        option("--responsibilities", metavar="PATH",
                     help="Write a CSV of membership probabilities, columns component_0.."),
        option("-o", "--output-dir", metavar="DIR",
                     help="Write labels.csv, responsibilities.csv and params.json into DIR."),
    ]):
        f = decorator(f)
    return f


def _size(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
    from .engines.choose import parse_size
    from .errors import UsageError

    try:
        return None if value is None else parse_size(value)
    except UsageError as exc:
        raise click.BadParameter(str(exc)) from None


def scale_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """Where the rows are while EM runs (issue 7: data larger than memory, clusters)."""
    for decorator in reversed([
        option("--engine", type=click.Choice(("memory", "stream", "dask")), default=None,
                     help="memory: load the table; stream: one pass over the file per "
                          "iteration; dask: on a Dask cluster [default: memory, or stream "
                          "when the input exceeds --memory-limit]."),
        option("--memory-limit", metavar="SIZE", callback=_size,
                     help="Memory budget, e.g. 512MB or 2GB: larger inputs are streamed "
                          "[default: half the physical memory]."),
        option("--block-rows", type=click.IntRange(min=1), default=None,
                     help="Rows per block read by --engine stream [default: 65536], or per "
                          "partition with --engine dask [default: a row group, 64 MB of CSV]."),
        option("--scheduler", metavar="ADDRESS",
                     help="Dask scheduler, e.g. tcp://host:8786 (implies --engine dask) "
                          "[default: a local cluster, one worker per core]."),
    ]):
        f = decorator(f)
    return f


def display_options(f: Callable[..., Any]) -> Callable[..., Any]:
    for decorator in reversed([
        option("-q", "--quiet", is_flag=True,
                     help="No progress, notes or summary on stderr (warnings and errors stay)."),
        option("-v", "--verbose", is_flag=True,
                     help="Where stderr is not a terminal, one plain line per EM iteration."),
    ]):
        f = decorator(f)
    return f


# ---------------------------------------------------------------------------- commands
@click.group(context_settings=CONTEXT)
@click.version_option(__version__, prog_name="emcli")  # from the package metadata
def cli() -> None:
    """Cluster tabular data with Expectation-Maximization (Gaussian mixtures).

    \b
    Example:
      emcli fit sample_data/classic.csv -k 2
      cat data.csv | emcli fit - -k 3 --labels - | head
      emcli fit data.parquet -k 1..9 --covariance all --params model.json

    See 'emcli COMMAND --help' and 'man emcli' for the exit codes and file formats.
    """


@cli.command(context_settings=CONTEXT)
@click.argument("input", metavar="INPUT")
@input_options
@option("-k", "--components", "k_spec", required=True, metavar="K",
              help="Number of components: 3, a range 1..9 or a list 2,3,5 (chooses by "
                   "--criterion).")
@option("--covariance", "covariance_spec", default="full", show_default=True,
              metavar="TYPE", help="full, tied, diag, spherical, a comma list, or 'all'.")
@option("--criterion", type=click.Choice(("bic", "icl", "aic")), default="bic",
              show_default=True, help="How a range of -k / --covariance picks its winner.")
@option("--init", type=click.Choice(INIT_CHOICES), default="kmeans", show_default=True,
              help="Starting values: k-means++ seeded k-means, k-means++ centres, or random rows.")
@option("-n", "--restarts", type=click.IntRange(min=1), default=10, show_default=True,
              help="Independent EM starts; the best non-collapsed log-likelihood wins.")
@option("--max-iter", type=click.IntRange(min=0), default=1000, show_default=True,
              help="Maximum EM iterations per start.")
@option("--tol", type=click.FloatRange(min=0), default=1e-8, show_default=True,
              help="Stop when the mean log-likelihood per row changes less; 0 runs exactly "
                   "--max-iter iterations.")
@option("--reg-covar", type=click.FloatRange(min=0), default=1e-6, show_default=True,
              help="Added to every covariance diagonal (floor against collapse).")
@option("--seed", type=int, default=0, show_default=True,
              help="Random seed; the same seed and input give byte-identical outputs.")
@option("--init-sample", type=click.IntRange(min=1), default=100_000, show_default=True,
              help="Initialise on at most this many rows (a uniform random sample).")
@option("--accelerate/--no-accelerate", default=False, show_default=True,
              help="SQUAREM-accelerated EM: fewer iterations to the same optimum, likelihood "
                   "still non-decreasing. Ignored with --tol 0.")
@option("--dtype", type=click.Choice(("float64", "float32")), default="float64",
              show_default=True,
              help="Precision of the E-step: float32 is faster, log-likelihood to ~1e-6 "
                   "relative.")
@option("--missing", type=click.Choice(("em", "drop", "error")), default="em",
              show_default=True,
              help="Missing cells: EM over the observed cells of each row, drop incomplete "
                   "rows, or refuse them.")
@option("--jobs", type=click.IntRange(min=1), default=None,
              help="Parallel candidates in a model selection [default: number of cores].")
@scale_options
@output_options
@option("--params", "params_path", metavar="PATH",
              help="Write the fitted model as JSON (the model file predict/score/sample read).")
@option("--imputed", metavar="PATH",
              help="Write the input columns as CSV with each missing cell replaced by its "
                   "expectation under the fitted mixture.")
@option("--selection", "selection_path", metavar="PATH",
              help="With a range of -k/--covariance, write the table of candidates as CSV.")
@display_options
def fit(input: str, k_spec: str, covariance_spec: str, **options: Any) -> None:
    """Fit a Gaussian mixture to INPUT (.csv, .tsv, .parquet, or - for CSV on stdin).

    EM runs from --restarts starts and keeps the best; components are numbered by
    decreasing weight.  With a range of -k or several --covariance types, every candidate is
    fitted and the best by --criterion is written.  With no output option, a summary is
    printed on stderr.

    \b
    Example:
      emcli fit sample_data/classic.csv -k 2
      emcli fit sample_data/iris.csv -k 3 --covariance diag -o results/
      cat data.csv | emcli fit - -k 3 --labels - | sort | uniq -c
      emcli fit sample_data/faithful.csv -k 1..9 --covariance all --selection -
    """
    from .commands import run_fit

    run_fit(input, k_spec, covariance_spec, options)


def _set_help(command: click.Command, **texts: str) -> None:
    """Reword a shared option's help where a command gives it another meaning."""
    for param in command.params:
        if param.name in texts:
            param.help = texts[param.name]  # type: ignore[attr-defined]


_MODEL_COLUMNS_HELP = ("Input columns standing for the model's columns, in the model's order "
                       "[default: the model's column names].")


@cli.command(context_settings=CONTEXT)
@click.argument("model", metavar="MODEL")
@click.argument("input", metavar="INPUT")
@input_options
@output_options
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
    from .apply_commands import run_predict

    run_predict(model, input, options)


_set_help(predict, columns=_MODEL_COLUMNS_HELP)


@cli.command(context_settings=CONTEXT)
@click.argument("model", metavar="MODEL")
@click.argument("input", metavar="INPUT")
@input_options
@option("--output", metavar="PATH", default="-", show_default=True,
              help="Write the CSV here instead of stdout.")
@option("--below", type=float, metavar="X",
              help="Keep only rows whose log-density is below X (in input order).")
@option("--lowest", type=click.IntRange(min=1), metavar="N",
              help="Keep only the N least likely rows, least likely first.")
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
    from .apply_commands import run_score

    run_score(model, input, options)


_set_help(score, columns=_MODEL_COLUMNS_HELP,
          verbose="Print the total and mean log-likelihood even where stderr is not a terminal.",
          quiet="No summary on stderr.")


@cli.command(context_settings=CONTEXT)
@click.argument("model", metavar="MODEL")
@option("-n", "--samples", "n_samples", type=click.IntRange(min=0), required=True,
              metavar="N", help="Number of rows to draw.")
@option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Random seed; the same seed gives byte-identical output.")
@option("--output", metavar="PATH", default="-", show_default=True,
              help="Write the CSV here instead of stdout.")
def sample(model: str, n_samples: int, seed: int, output: str) -> None:
    """Draw N rows from the mixture in MODEL, as CSV with a 'component' column.

    The columns are the model's, plus the 0-based component each row was drawn from.

    \b
    Example:
      emcli sample model.json -n 1000 --seed 7 > synthetic.csv
      emcli sample model.json -n 100000 --output synthetic.csv
    """
    from .apply_commands import run_sample

    run_sample(model, n_samples, seed, output)


@cli.command(context_settings=CONTEXT)
@click.argument("model", metavar="MODEL")
@option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def describe(model: str, as_json: bool) -> None:
    """Summarise MODEL: components, weights, means, spread, fit figures, settings.

    \b
    Example:
      emcli describe model.json
      emcli describe model.json --json | jq '.components[].weight'
    """
    from .apply_commands import run_describe

    run_describe(model, as_json)

@cli.command(context_settings=CONTEXT)
@click.argument("model_path", metavar="MODEL")
@click.argument("input", metavar="[INPUT]", required=False)
@option("-o", "--output", required=True, metavar="FILE",
              help="Image to write: FILE.png, FILE.svg or FILE.pdf (format from the extension).")
@option("--kind", type=click.Choice(("clusters", "convergence", "selection", "density")),
              help="What to draw [default: selection if MODEL holds one, else clusters with "
                   "INPUT (density for one column), else convergence].")
@option("--x", "x_column", metavar="COL", help="clusters: column on the x axis.")
@option("--y", "y_column", metavar="COL", help="clusters: column on the y axis.")
@option("--pairs", is_flag=True, help="clusters: a grid of every pair of columns.")
@option("--column", metavar="COL", help="density: the column [default: the first].")
@option("--criterion", type=click.Choice(("bic", "icl", "aic")),
              help="selection: criterion to show [default: the one the selection used].")
@option("--width", type=click.FloatRange(min=0, min_open=True), metavar="INCHES",
              help="Figure width [default: 7].")
@option("--height", type=click.FloatRange(min=0, min_open=True), metavar="INCHES",
              help="Figure height [default: 5].")
@option("--size", metavar="WxH", help="Width and height in inches, e.g. 8x6.")
@option("--dpi", type=click.IntRange(min=10, max=2400), default=100, show_default=True,
              help="Pixels per inch (a 7x5 figure at 100 dpi is 700x500 pixels).")
@option("--format", "fmt", type=click.Choice(FORMAT_CHOICES),
              help="INPUT format; by default from the extension (stdin: csv).")
@option("--delimiter", metavar="CHAR", help="Field separator for CSV INPUT.")
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
    from .plot_command import run_plot

    run_plot(model_path, input, options)


# ---------------------------------------------------------------------------- entry point
def _on_sigterm(signum: int, frame: Any) -> None:
    signal.signal(signum, signal.SIG_IGN)  # a second signal must not cut the cleanup short
    raise Terminated()


def _on_sigint(signum: int, frame: Any) -> None:
    signal.signal(signum, signal.SIG_IGN)
    raise Interrupted()


def _install_handlers() -> dict[int, Any]:
    """Our SIGINT/SIGTERM handlers; returns the previous ones (main() puts them back, so
    calling main() in-process, as the tests do, leaves the caller's handlers alone)."""
    previous: dict[int, Any] = {}
    for name, handler in (("SIGTERM", _on_sigterm), ("SIGINT", _on_sigint)):
        signum = getattr(signal, name, None)
        if signum is None:
            continue
        try:
            previous[signum] = signal.signal(signum, handler)
        except ValueError:  # not the main thread: signals cannot be handled here
            pass
    return previous


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; map every outcome to the documented exit status."""
    previous = _install_handlers()
    try:
        status = _run(argv)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    sys.exit(int(status))


def _run(argv: list[str] | None) -> int:
    try:
        cli.main(args=argv, prog_name="emcli", standalone_mode=False,
                 auto_envvar_prefix="EMCLI")
        status = ExitStatus.OK
    except click.exceptions.Exit as exc:
        status = exc.exit_code
    except click.UsageError as exc:
        # One line, as for every other error; the hint names the command's --help.
        command = exc.ctx.command_path if exc.ctx else "emcli"
        click.echo(f"Error: {exc.format_message()} (see '{command} --help')", err=True)
        status = exc.exit_code
    except click.ClickException as exc:
        exc.show()
        status = exc.exit_code
    except EmcliError as exc:
        click.echo(f"Error: {exc}", err=True)
        status = exc.exit_status
    except (KeyboardInterrupt, click.exceptions.Abort, Interrupted):
        click.echo("Error: interrupted", err=True)
        status = ExitStatus.INTERRUPTED
    except Terminated:
        click.echo("Error: terminated", err=True)
        status = ExitStatus.TERMINATED
    except (BrokenPipeError, StdoutClosed):
        # The reader went away (e.g. `| head`): end quietly, and keep Python from
        # complaining again when it flushes stdout at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        status = ExitStatus.BROKEN_PIPE
    return int(status)

"""The ``emcli`` command: parse options, call the library, write outputs.

Only click is imported at start-up (``emcli --help`` stays fast); numpy, pyarrow and rich load
inside the commands.  Library errors (``EmcliError``) become one ``Error: ...`` line and the
exit status of ``emcli.errors.ExitStatus``, here and nowhere else.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from typing import Any

import click

from .errors import EmcliError, ExitStatus

COVARIANCE_CHOICES = ("full", "tied", "diag", "spherical")
INIT_CHOICES = ("kmeans", "kmeans++", "random")
FORMAT_CHOICES = ("csv", "tsv", "parquet")
CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class Terminated(BaseException):
    """Raised from the SIGTERM handler so that cleanup runs as for Ctrl-C."""


# ---------------------------------------------------------------------------- option groups
def input_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """Options shared by every command that reads a table."""
    for decorator in reversed([
        click.option("--format", "fmt", type=click.Choice(FORMAT_CHOICES),
                     help="Input format; by default from the extension (stdin: csv)."),
        click.option("-c", "--columns", metavar="A,B,...",
                     help="Comma-separated columns to use [default: every numeric column]."),
        click.option("--delimiter", metavar="CHAR",
                     help="Field separator for CSV input, e.g. ';' [default: ',' or tab]."),
    ]):
        f = decorator(f)
    return f


def output_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """Per-row outputs shared by fit and predict; PATH may be '-' for stdout."""
    for decorator in reversed([
        click.option("--labels", metavar="PATH",
                     help="Write a CSV with a 'cluster' column (0-based), one row per input row."),
        click.option("--responsibilities", metavar="PATH",
                     help="Write a CSV of membership probabilities, columns component_0.."),
        click.option("-o", "--output-dir", metavar="DIR",
                     help="Write labels.csv, responsibilities.csv and params.json into DIR."),
    ]):
        f = decorator(f)
    return f


def display_options(f: Callable[..., Any]) -> Callable[..., Any]:
    for decorator in reversed([
        click.option("-q", "--quiet", is_flag=True,
                     help="No progress, notes or summary on stderr (warnings and errors stay)."),
        click.option("-v", "--verbose", is_flag=True,
                     help="Where stderr is not a terminal, one plain line per EM iteration."),
    ]):
        f = decorator(f)
    return f


# ---------------------------------------------------------------------------- commands
@click.group(context_settings=CONTEXT)
@click.version_option(package_name="emcli", prog_name="emcli")
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
@click.option("-k", "--components", "k_spec", required=True, metavar="K",
              help="Number of components: 3, a range 1..9 or a list 2,3,5 (chooses by "
                   "--criterion).")
@click.option("--covariance", "covariance_spec", default="full", show_default=True,
              metavar="TYPE", help="full, tied, diag, spherical, a comma list, or 'all'.")
@click.option("--criterion", type=click.Choice(("bic", "icl", "aic")), default="bic",
              show_default=True, help="How a range of -k / --covariance picks its winner.")
@click.option("--init", type=click.Choice(INIT_CHOICES), default="kmeans", show_default=True,
              help="Starting values: k-means++ seeded k-means, k-means++ centres, or random rows.")
@click.option("-n", "--restarts", type=click.IntRange(min=1), default=10, show_default=True,
              help="Independent EM starts; the best non-collapsed log-likelihood wins.")
@click.option("--max-iter", type=click.IntRange(min=0), default=1000, show_default=True,
              help="Maximum EM iterations per start.")
@click.option("--tol", type=click.FloatRange(min=0), default=1e-8, show_default=True,
              help="Stop when the mean log-likelihood per row changes less; 0 runs exactly "
                   "--max-iter iterations.")
@click.option("--reg-covar", type=click.FloatRange(min=0), default=1e-6, show_default=True,
              help="Added to every covariance diagonal (floor against collapse).")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Random seed; the same seed and input give byte-identical outputs.")
@click.option("--init-sample", type=click.IntRange(min=1), default=100_000, show_default=True,
              help="Initialise on at most this many rows (a uniform random sample).")
@click.option("--jobs", type=click.IntRange(min=1), default=None,
              help="Parallel candidates in a model selection [default: number of cores].")
@output_options
@click.option("--params", "params_path", metavar="PATH",
              help="Write the fitted model as JSON (the model file predict/score/sample read).")
@click.option("--selection", "selection_path", metavar="PATH",
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


# ---------------------------------------------------------------------------- entry point
def _on_sigterm(signum: int, frame: Any) -> None:
    raise Terminated()


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; map every outcome to the documented exit status."""
    if hasattr(signal, "SIGTERM"):
        signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        cli.main(args=argv, prog_name="emcli", standalone_mode=False,
                 auto_envvar_prefix="EMCLI")
        status = ExitStatus.OK
    except click.exceptions.Exit as exc:
        status = exc.exit_code
    except click.ClickException as exc:
        exc.show()
        status = exc.exit_code
    except EmcliError as exc:
        click.echo(f"Error: {exc}", err=True)
        status = exc.exit_status
    except (KeyboardInterrupt, click.exceptions.Abort):
        click.echo("Error: interrupted", err=True)
        status = ExitStatus.INTERRUPTED
    except Terminated:
        click.echo("Error: terminated", err=True)
        status = ExitStatus.TERMINATED
    except (BrokenPipeError, SystemExit) as exc:
        # click itself turns EPIPE into sys.exit(1), even with standalone_mode=False:
        # recognise it by its cause, so `| head` ends with the documented status.
        if isinstance(exc, SystemExit) and not isinstance(exc.__context__, BrokenPipeError):
            raise
        # The reader went away (e.g. `| head`): end quietly, and keep Python from
        # complaining again when it flushes stdout at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        status = ExitStatus.BROKEN_PIPE
    sys.exit(int(status))

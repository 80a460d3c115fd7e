"""The ``emcli`` group and its entry point: signals, error translation, exit statuses.

Library errors (``EmcliError``) become ``click.ClickException`` in ``click_error``, the one
place where their ``{parameter}`` names are rendered as flags (``options.FLAGS``); ``_run``
maps every outcome to the exit status of ``emcli.errors.ExitStatus``.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import sys
import warnings
from collections.abc import Iterator
from typing import Any

import click
from click.shell_completion import BashComplete, add_completion_class

from ..errors import EmcliError, ExitStatus, StdoutClosed
from .options import CONTEXT, FLAGS


class Terminated(BaseException):
    """Raised from the SIGTERM handler so that cleanup runs as for Ctrl-C."""


def _print_version(ctx: click.Context) -> None:
    """``--version``: the package metadata's version, looked up only then."""
    if ctx.resilient_parsing:
        return
    from .. import __version__

    click.echo(f"emcli, version {__version__}")
    ctx.exit()


class Interrupted(BaseException):
    """Raised from the SIGINT handler instead of KeyboardInterrupt, which click answers with
    an empty line on stderr before its Abort (the one-line contract has no room for it)."""


@click.group(context_settings=CONTEXT)
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=lambda ctx, _, value: _print_version(ctx) if value else None,
    help="Show the version and exit.",
)
def cli() -> None:
    """Cluster data with Expectation-Maximization: Gaussian, Student-t, categorical,
    Bernoulli, Poisson and mixed mixtures; images with emcli segment.

    \b
    Example:
      emcli fit sample_data/classic.csv -k 2
      cat data.csv | emcli fit - -k 3 --labels - | head
      emcli fit data.parquet -k 1..9 --covariance all --params model.json

    See 'emcli COMMAND --help' and 'man emcli' for the exit codes and file formats.
    """


class BashCompletion(BashComplete):
    """click's bash completion, with bash's own completion (file names) kept as the
    fallback: ``-o default -o bashdefault`` where click installs ``-o nosort`` alone."""

    source_template = BashComplete.source_template.replace(
        "complete -o nosort -F", "complete -o nosort -o default -o bashdefault -F"
    )


add_completion_class(BashCompletion, "bash")


def click_error(exc: EmcliError) -> click.ClickException:
    """A library error as click shows it: one ``Error: ...`` line naming flags, with the
    error's exit status (2 for a UsageError, else 1)."""
    return _failure(int(exc.exit_status))(exc.render(FLAGS))


@functools.cache
def _failure(status: int) -> type[click.ClickException]:
    """click's exception class with exit status ``status`` (click reads it from the class)."""
    return type(f"Failure{status}", (click.ClickException,), {"exit_code": status})


# ---------------------------------------------------------------------------- signals
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


# ---------------------------------------------------------------------------- entry point
def main(argv: list[str] | None = None) -> int:
    """Run the CLI; map every outcome to the documented exit status."""
    previous = _install_handlers()
    stderr = sys.stderr
    sys.stderr = TolerantStderr(stderr)
    try:
        status = _run(argv)
    finally:
        sys.stderr = stderr
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    sys.exit(int(status))


def _invoke(argv: list[str] | None) -> None:
    with notes_for_warnings():
        try:
            cli.main(
                args=argv, prog_name="emcli", standalone_mode=False, auto_envvar_prefix="EMCLI"
            )
        except EmcliError as exc:
            raise click_error(exc) from None


@contextlib.contextmanager
def notes_for_warnings() -> Iterator[None]:
    """No raw Python warning reaches a user: each distinct one becomes a ``Note:`` line.

    Where warnings are already errors (``python -W error``, the test suite) they stay
    errors, so a stray numpy warning is found rather than hidden.
    """
    if any(f[0] == "error" and f[1] is None and f[3] is None for f in warnings.filters):
        yield  # warnings are errors here (-W error, the tests): leave them so
        return
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        finally:
            seen = dict.fromkeys(str(w.message).splitlines()[0] for w in caught if str(w.message))
            for text in seen:
                click.echo(f"Note: {text} (reported by a library emcli uses)", err=True)


class TolerantStderr:
    """Standard error that survives its reader going away (``2>&1 | head -3``).

    A write to a closed pipe puts /dev/null in its place: the messages are lost, the work
    and its outputs to files are not (the exit status is that of the work).
    """

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self.encoding = getattr(stream, "encoding", "utf-8")
        self.errors = getattr(stream, "errors", "replace")

    def write(self, text: str) -> int:
        try:
            self._stream.write(text)
        except OSError:
            self._closed_reader()
        return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except OSError:
            self._closed_reader()

    def isatty(self) -> bool:
        try:
            return bool(self._stream.isatty())
        except (OSError, ValueError):
            return False

    def fileno(self) -> int:
        return int(self._stream.fileno())

    def writable(self) -> bool:
        return True

    def _closed_reader(self) -> None:
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._stream.fileno())
            os.close(devnull)
        except (OSError, ValueError, AttributeError):
            pass
        self._stream = open(os.devnull, "w")


def _run(argv: list[str] | None) -> int:
    status: int
    try:
        _invoke(argv)
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

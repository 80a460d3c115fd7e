"""emcli's exception classes and its one exit-status contract.

The library raises only these (plus real bugs); the CLI (``emcli.cli.app.click_error``) turns
them into a one-line ``Error: ...`` on stderr, naming flags, and the exit status below.  The
table is documented in the man page and in the README.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from enum import IntEnum

# A Python parameter named in a message: "{reg_covar}".  The library shows the name itself
# (``str(error)``: "reg_covar"); the CLI shows its flag ("--reg-covar") through one table.
_PARAMETER = re.compile(r"\{([a-z][a-z0-9_]*)\}")


def render(message: str, names: Mapping[str, str] | None = None) -> str:
    """``message`` with each ``{parameter}`` replaced by ``names[parameter]`` (or the bare
    parameter name when ``names`` has none for it)."""
    names = names or {}
    return _PARAMETER.sub(lambda m: names.get(m.group(1), m.group(1)), message)


class Message(str):
    """A note or warning for the user: reads with Python parameter names (``str``, model
    files), and ``render(flags)`` gives the command line's wording from the same template."""

    template: str

    def __new__(cls, template: str) -> Message:
        template = getattr(template, "template", template)
        out = super().__new__(cls, render(template))
        out.template = template
        return out

    def render(self, names: Mapping[str, str] | None = None) -> str:
        return render(self.template, names)


def rendered(message: str, names: Mapping[str, str] | None = None) -> str:
    """Any message (a ``Message``, an error's text or a plain string) in ``names``' wording."""
    return render(getattr(message, "template", message), names)


class ExitStatus(IntEnum):
    """Process exit codes (one place, documented in ``man/emcli.1``)."""

    OK = 0
    ERROR = 1  # bad data, unreadable input/output, a fit that cannot be done
    USAGE = 2  # invalid command line (click's own code for usage errors)
    INTERRUPTED = 130  # SIGINT (Ctrl-C)
    BROKEN_PIPE = 141  # stdout closed early (e.g. `| head`); no message
    TERMINATED = 143  # SIGTERM


class EmcliError(Exception):
    """Base class of every error emcli reports to a user (exit status 1).

    Messages name the Python parameters they are about as ``{reg_covar}``, ``{n_components}``:
    ``str(error)`` reads "increase reg_covar" for a Python user, ``error.render(flags)`` reads
    "increase --reg-covar" on the command line (the CLI's one table of flag names).
    """

    exit_status = ExitStatus.ERROR

    def __str__(self) -> str:
        return render(super().__str__())

    def render(self, names: Mapping[str, str] | None = None) -> str:
        return render(super().__str__(), names)


class DataError(EmcliError):
    """The input table cannot be used: unreadable, empty, non-numeric, inf, ..."""


class UsageError(EmcliError):
    """An invalid setting whatever the data (e.g. an unknown covariance type given to
    ``emcli.fit``); settings the *data* makes impossible, such as more components than rows,
    are DataError."""

    exit_status = ExitStatus.USAGE


class FitError(EmcliError):
    """EM could not produce a usable model (e.g. every start hit a singular covariance)."""


class ModelFileError(EmcliError):
    """A model file that is not an emcli model, or of an unknown schema version."""


class OutputError(EmcliError):
    """An output path that cannot be written."""


class StdoutClosed(Exception):
    """Standard output was closed by its reader (e.g. ``| head``): end quietly, status 141.

    Not an OSError on purpose: click turns an EPIPE OSError into exit status 1.
    """

"""The one way tests run ``emcli`` in-process: through ``emcli.cli.main``, the real entry point
(its error mapping, one-line messages and exit statuses), with stdout and stderr apart."""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

from click.testing import CliRunner

from emcli.cli import main


class Run(NamedTuple):
    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        """Both streams, for assertion messages."""
        return self.stdout + self.stderr


def run(
    *args: object, stdin: str | bytes | None = None, env: Mapping[str, str] | None = None
) -> Run:
    """``emcli ARGS`` with stdout and stderr captured apart (SystemExit caught).

    ``env`` sets environment variables for the run (EMCLI_... options).  Exceptions other
    than SystemExit propagate: a traceback is a bug, not a result.
    """
    runner = CliRunner()
    code = 0
    with runner.isolation(input=stdin, env=dict(env or {})) as (out, err, _):
        try:
            main([str(a) for a in args])
        except SystemExit as exc:  # main() also puts the caller's signal handlers back
            code = int(exc.code or 0)
    return Run(code, out.getvalue().decode(), err.getvalue().decode())

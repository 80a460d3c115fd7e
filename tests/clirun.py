"""Running ``emcli`` in-process through ``cli.main``: the real error mapping and exit codes."""

from __future__ import annotations

from typing import NamedTuple

from click.testing import CliRunner

from emcli.cli import main


class Run(NamedTuple):
    exit_code: int
    stdout: str
    stderr: str


def run(*args: object, stdin: str | bytes | None = None) -> Run:
    """``emcli ARGS`` with stdout and stderr captured apart (SystemExit caught)."""
    runner = CliRunner()
    code = 0
    with runner.isolation(input=stdin) as (out, err, _):
        try:
            main([str(a) for a in args])
        except SystemExit as exc:
            code = int(exc.code or 0)
    return Run(code, out.getvalue().decode(), err.getvalue().decode())

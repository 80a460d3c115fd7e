"""Help is part of the interface: every command has working help with an example, and
``emcli --help`` lists every command.  Commands are found by walking the click tree, so
commands added later are covered without editing this file."""

from __future__ import annotations

import subprocess
import sys

import click
import pytest
from clirun import run
from conftest import ROOT

from emcli.cli import cli


def all_commands(group: click.Group = cli, prefix: tuple[str, ...] = ()):
    """(path, command) for every command and sub-command of the click tree."""
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        yield (*prefix, name), command
        if isinstance(command, click.Group):
            yield from all_commands(command, (*prefix, name))


COMMANDS = list(all_commands())
IDS = [" ".join(path) for path, _ in COMMANDS]


def test_there_are_commands() -> None:
    assert ("fit",) in [path for path, _ in COMMANDS]


def test_top_level_help_lists_every_command() -> None:
    result = run("--help")
    assert result.exit_code == 0
    assert result.stdout.startswith("Usage: emcli")
    assert result.stderr == ""
    listed = result.stdout.split("Commands:", 1)[1]
    for name in cli.list_commands(click.Context(cli)):
        assert f"\n  {name} " in listed, name


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=IDS)
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_every_command_has_help(path, command, flag) -> None:
    result = run(*path, flag)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith(f"Usage: emcli {' '.join(path)}")
    assert result.stderr == ""
    assert "Example:" in result.stdout  # style.md: a summary line and an Example: block
    assert command.help and command.help.strip().splitlines()[0]


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=IDS)
def test_every_option_is_documented(path, command) -> None:
    undocumented = [
        p.opts[0]
        for p in command.params
        if isinstance(p, click.Option) and not p.hidden and not p.help
    ]
    assert undocumented == []


def test_fit_has_the_options_the_issues_name() -> None:
    text = run("fit", "--help").stdout
    for option in (
        "-k, --components",
        "--covariance",
        "--init",
        "-n, --restarts",
        "--max-iter",
        "--tol",
        "--reg-covar",
        "--seed",
        "--labels",
        "--responsibilities",
        "--params",
        "-o, --output-dir",
        "-q, --quiet",
        "-v, --verbose",
        "-c, --columns",
        "--format",
        "--criterion",
        "--selection",
        "--jobs",
    ):
        assert option in text, option


def test_version() -> None:
    import emcli

    result = run("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"emcli, version {emcli.__version__}"


def test_unknown_command_is_a_usage_error() -> None:
    result = run("fitt")
    assert result.exit_code == 2
    assert [ln for ln in result.stderr.splitlines() if ln.startswith("Error:")]
    assert result.stdout == ""


def test_help_does_not_load_the_numeric_stack() -> None:
    # `emcli --help` must stay fast: numpy, pyarrow and rich load inside the commands.
    code = (
        "import sys\n"
        "from emcli.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('numpy', 'pyarrow', 'rich', 'pandas') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=True,
    )
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_python_dash_m_emcli_works() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "emcli", "fit", "--help"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert done.returncode == 0 and done.stdout.startswith("Usage: emcli fit")

"""Help is part of the interface: every command has working help with an example,
``emcli --help`` lists every command, and every command and every option its ``--help``
shows is documented in docs/cli.md (and every command in man/emcli.1).  Commands are found
by walking the click tree, so commands added later are covered without editing this file."""

from __future__ import annotations

import re
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
CLI_DOC = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
# Comment lines inside code blocks ("# crontab: ...") are not headings.
HEADINGS = re.sub(r"```.*?```", lambda m: m.group(0).replace("\n#", "\n #"), CLI_DOC, flags=re.S)
MAN_SOURCE = (ROOT / "man" / "emcli.1").read_text(encoding="utf-8")


def help_options(command: click.Command, path: tuple[str, ...]) -> list[str]:
    """Every option name that ``emcli PATH --help`` shows (-h and --help included)."""
    # The command's own context settings (its -h): click caches the help option it makes.
    ctx = click.Context(command, info_name=" ".join(path), **command.context_settings)
    return [
        name
        for param in command.get_params(ctx)
        if isinstance(param, click.Option) and not param.hidden
        for name in (*param.opts, *param.secondary_opts)
    ]


def doc_section(path: tuple[str, ...]) -> str:
    """The section of docs/cli.md for ``emcli PATH`` (level 2: commands, 3: sub-commands)."""
    level = "#" * (1 + len(path))
    heading = re.escape(f"{level} `emcli {' '.join(path)}`")
    match = re.search(rf"^{heading}\n(.*?)(?=^#{{1,{len(level)}}} |\Z)", HEADINGS, re.M | re.S)
    assert match, f"docs/cli.md has no heading {level} `emcli {' '.join(path)}`"
    return match.group(1)


def mentions(text: str, option: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", text) is not None


HELP_OPTIONS = [
    (path, option)
    for path, command in [((), cli), *COMMANDS]
    for option in help_options(command, path)
]


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


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=IDS)
def test_every_command_is_in_the_cli_doc_and_the_man_page(path, command) -> None:
    assert doc_section(path).strip()
    name = " ".join(path)
    assert re.search(rf'^\.SS "emcli {re.escape(name)}\b', MAN_SOURCE, re.M), name


@pytest.mark.parametrize(
    ("path", "option"), HELP_OPTIONS, ids=[" ".join(("emcli", *p, o)) for p, o in HELP_OPTIONS]
)
def test_every_help_option_is_in_the_cli_doc(path, option) -> None:
    """Named in the command's own section of docs/cli.md; options every command has
    (-h/--help) in the top section; predict, score and plot may point to fit's shared
    options ("as for fit")."""
    top = HEADINGS.split("\n## Commands\n", 1)[1].split("\n## ", 1)[0]  # global options
    places = [doc_section(path) if path else top, top]
    if path and path[0] in ("predict", "score", "plot"):
        places.append(doc_section(("fit",)))
    assert any(mentions(place, option) for place in places), f"{' '.join(path)} {option}"


def test_the_cli_doc_has_the_options_being_built() -> None:
    """Documented ahead of the code (issue 13): frequency weights and warm starts."""
    fit = doc_section(("fit",))
    assert mentions(fit, "--weights") and "--init MODEL.json" in fit


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

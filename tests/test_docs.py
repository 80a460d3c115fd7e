"""The help, the README and the man page tell one story (after sqlite-utils' test_docs.py).

Every command and every option of every command is documented in man/emcli.1 and in
README.md; every command's help has a summary line and an ``Example:`` block; the README's
quick-start test command is the one CI runs; every exit status is in the man page.
"""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest
from clirun import run

from emcli.cli import cli
from emcli.errors import ExitStatus

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
MAN_SOURCE = (ROOT / "man" / "emcli.1").read_text(encoding="utf-8")
COMMANDS = sorted(cli.commands)


def man_text(source: str) -> str:
    """The man page as a reader sees it: roff escapes and font changes removed."""
    text = re.sub(r"\\f[BIRP]", "", source)
    text = text.replace("\\-", "-").replace("\\(dq", '"').replace("\\&", "")
    # ".BR a b c" joins its arguments without spaces; keep the words apart for the search.
    lines = []
    for line in text.splitlines():
        if line.startswith((".B ", ".I ", ".BR ", ".BI ", ".RB ", ".RI ", ".IR ", ".IB ")):
            line = line.split(" ", 1)[1].replace('"', "")
        lines.append(line)
    return "\n".join(lines)


MAN = man_text(MAN_SOURCE)


def man_section(name: str) -> str:
    match = re.search(rf"^\.SH \"?{name}\"?$(.*?)(?=^\.SH |\Z)", MAN_SOURCE, re.M | re.S)
    assert match, f"man page has no {name} section"
    return man_text(match.group(1))


def command_options() -> list[tuple[str, str]]:
    return [
        (name, opt)
        for name in COMMANDS
        for param in cli.commands[name].params
        if isinstance(param, click.Option)
        for opt in param.opts
    ]


def test_the_commands_are_the_documented_ones() -> None:
    assert COMMANDS == ["describe", "fit", "plot", "predict", "sample", "score"]


@pytest.mark.parametrize("name", COMMANDS)
def test_command_in_man_page(name: str) -> None:
    assert re.search(rf"^\.SS \"emcli {name}\b", MAN_SOURCE, re.M), name
    assert re.search(rf"^\.B emcli {name}$", MAN_SOURCE, re.M), f"{name} not in SYNOPSIS"


@pytest.mark.parametrize("name", COMMANDS)
def test_command_in_readme(name: str) -> None:
    assert f"`emcli {name} " in README or f"### `emcli {name}" in README, name


@pytest.mark.parametrize("name,option", command_options())
def test_option_in_man_page(name: str, option: str) -> None:
    # The option inside the command's own subsection.
    match = re.search(rf"^\.SS \"emcli {name}\b.*?(?=^\.SS |^\.SH |\Z)", MAN_SOURCE, re.M | re.S)
    assert match
    section = man_text(match.group(0))
    if name == "fit":
        assert re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", section), option
    else:
        # predict and score share fit's input/display options and say so; the option must
        # then be named in their own subsection or be one of fit's.
        fit_part = man_text(
            re.search(r"^\.SS \"emcli fit\b.*?(?=^\.SS )", MAN_SOURCE, re.M | re.S).group(0)
        )
        pattern = rf"(?<![\w-]){re.escape(option)}(?![\w-])"
        assert re.search(pattern, section) or (
            name in ("predict", "score") and re.search(pattern, fit_part)
        ), f"{name} {option}"


@pytest.mark.parametrize("name,option", command_options())
def test_option_in_readme(name: str, option: str) -> None:
    assert re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", README), f"{name} {option}"


@pytest.mark.parametrize("name", ["", *COMMANDS])
def test_help_has_summary_and_example(name: str) -> None:
    args = [name, "--help"] if name else ["--help"]
    result = run(*args)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    usage_end = next(i for i, line in enumerate(lines) if not line.strip())
    summary = lines[usage_end + 1].strip()
    assert summary and summary[0].isupper() and len(summary) > 20, summary
    example = result.stdout.index("Example:")
    first = result.stdout[example:].splitlines()[1].strip()
    assert first.startswith("emcli ") or "| emcli " in first, first


def test_quick_start_test_command_is_what_ci_runs() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    ci_lines = [line for line in ci.splitlines() if line and not line.startswith("#")]
    test_line = ci_lines[-1]
    assert test_line == 'pip install ".[test]" && pytest'
    quick = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", quick, re.S)
    commands = [line for block in blocks for line in block.splitlines() if line.strip()]
    assert commands == ["pip install . && emcli fit sample_data/classic.csv -k 2", test_line]


def test_every_exit_status_is_in_the_man_page() -> None:
    section = man_section("EXIT STATUS")
    documented = {
        int(v)
        for v in re.findall(
            r"^\.B (\d+)$", MAN_SOURCE.split(".SH EXIT STATUS", 1)[1].split("\n.SH ", 1)[0], re.M
        )
    }
    assert documented == {int(s) for s in ExitStatus}, section


def test_every_exit_status_is_in_the_readme() -> None:
    table = README.split("## Exit status", 1)[1].split("\n## ", 1)[0]
    documented = {int(v) for v in re.findall(r"^\| (\d+) \|", table, re.M)}
    assert documented == {int(s) for s in ExitStatus}


def test_defaults_in_docs_match_the_code() -> None:
    """The defaults the README and man page state for fit are click's defaults."""
    fit = cli.commands["fit"]
    defaults = {p.opts[-1]: p.default for p in fit.params if isinstance(p, click.Option)}
    stated = {
        "--restarts": 10,
        "--max-iter": 1000,
        "--tol": 1e-8,
        "--reg-covar": 1e-6,
        "--seed": 0,
        "--init-sample": 100_000,
        "--init": "kmeans",
        "--covariance": "full",
        "--criterion": "bic",
        "--missing": "em",
    }
    for option, value in stated.items():
        assert defaults[option] == value, option
    entries = {}
    for chunk in re.split(r"^\.TP\n", MAN_SOURCE, flags=re.M)[1:]:
        body = re.split(r"^\.(?:TP|SS|SH|PP)\b", chunk, flags=re.M)[0]
        header, _, rest = man_text(body).partition("\n")
        entries.setdefault(header, rest)
    for option, value in stated.items():
        text = f"{value:g}".replace("e-0", "e-") if isinstance(value, float) else str(value)
        bodies = [
            body
            for header, body in entries.items()
            if re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", header)
        ]
        assert bodies, option
        stated_default = re.search(r"\[default: ([^\]]+)\]", bodies[0])
        assert stated_default and stated_default.group(1) == text, option
        readme_row = re.search(
            rf"^\| `[^`]*{re.escape(option)}[^`]*` \| `([^`]+)` \|", README, re.M
        )
        assert readme_row and readme_row.group(1) == text, option


def test_man_page_is_installed_with_the_package() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert '"share/man/man1" = ["man/emcli.1"]' in pyproject

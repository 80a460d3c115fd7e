"""The help, the README, docs/ and the man page tell one story (after sqlite-utils'
test_docs.py).

README.md is the front page: at most 250 lines, the two set-up commands (the test command is
the one CI runs), an example of every command, every exit status.  docs/cli.md is the
reference of every command and option (tests/test_docs_help.py checks it against --help) and
states the same defaults as the code and the man page.  Every relative link in README.md and
docs/*.md points to a file (and a heading) that exists.  The man page documents every option
and exit status and does not type the version.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import click
import pytest
from clirun import run

from emcli.cli import cli
from emcli.errors import ExitStatus

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
CLI_DOC = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
MAN_SOURCE = (ROOT / "man" / "emcli.1").read_text(encoding="utf-8")
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
COMMANDS = sorted(cli.commands)
DOC_PAGES = [
    "cli",
    "model-file",
    "selection",
    "missing",
    "scale",
    "speed",
    "python-api",
    "architecture",
]
MARKDOWN = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


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


def markdown_section(text: str, heading: str) -> str:
    """The body of the level-2 section ``## heading`` (up to the next level-2 heading)."""
    match = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert match, f"no section '## {heading}'"
    return match.group(1)


def mentions(text: str, option: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", text) is not None


def command_options() -> list[tuple[str, str]]:
    return [
        (name, opt)
        for name in COMMANDS
        for param in cli.commands[name].params
        if isinstance(param, click.Option)
        for opt in param.opts
    ]


def shell_lines(text: str) -> list[str]:
    """The non-empty lines of the ```sh blocks of ``text``."""
    blocks = re.findall(r"```sh\n(.*?)```", text, re.S)
    return [line for block in blocks for line in block.splitlines() if line.strip()]


# ---------------------------------------------------------------------------- the commands
def test_the_commands_are_the_documented_ones() -> None:
    assert COMMANDS == ["describe", "fit", "plot", "predict", "sample", "score", "segment"]


@pytest.mark.parametrize("name", COMMANDS)
def test_command_in_man_page_synopsis(name: str) -> None:
    assert re.search(rf"^\.B emcli {name}$", MAN_SOURCE, re.M), f"{name} not in SYNOPSIS"


@pytest.mark.parametrize("name,option", command_options())
def test_option_in_man_page(name: str, option: str) -> None:
    # The option inside the command's own subsection.
    match = re.search(rf"^\.SS \"emcli {name}\b.*?(?=^\.SS |^\.SH |\Z)", MAN_SOURCE, re.M | re.S)
    assert match
    section = man_text(match.group(0))
    if name == "fit":
        assert mentions(section, option), option
    else:
        # predict and score share fit's input/display options and say so; the option must
        # then be named in their own subsection or be one of fit's.
        fit = re.search(r"^\.SS \"emcli fit\b.*?(?=^\.SS )", MAN_SOURCE, re.M | re.S)
        assert fit
        assert mentions(section, option) or (
            name in ("predict", "score") and mentions(man_text(fit.group(0)), option)
        ), f"{name} {option}"


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


# ---------------------------------------------------------------------------- the README
def test_readme_is_a_front_page() -> None:
    # a front page, not the manual (the budget grew from 250 with the t, categorical, image
    # and scikit-learn sections; the details are in docs/)
    assert len(README.splitlines()) <= 300


def test_quick_start_test_command_is_what_ci_runs() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    ci_lines = [line for line in ci.splitlines() if line and not line.startswith("#")]
    test_line = ci_lines[-1]
    assert test_line == 'pip install ".[test]" && pytest'
    quick = markdown_section(README, "Quick start")
    commands = shell_lines(quick)
    assert commands == ["pip install . && emcli fit sample_data/classic.csv -k 2", test_line]


def test_quick_start_sample_exists() -> None:
    assert (ROOT / "sample_data" / "classic.csv").is_file()


@pytest.mark.parametrize("name", COMMANDS)
def test_readme_has_an_example_of_every_command(name: str) -> None:
    assert any(line.startswith(f"emcli {name} ") for line in shell_lines(README)), name


def test_readme_names_shell_completion() -> None:
    assert 'eval "$(_EMCLI_COMPLETE=bash_source emcli)"' in README


def test_readme_links_every_docs_page() -> None:
    for page in DOC_PAGES:
        assert f"](docs/{page}.md" in README, page


def test_every_exit_status_is_in_the_readme() -> None:
    table = markdown_section(README, "Exit status")
    documented = {int(v) for v in re.findall(r"^\| (\d+) \|", table, re.M)}
    assert documented == {int(s) for s in ExitStatus}


def test_every_runtime_dependency_is_in_the_readme() -> None:
    listed = markdown_section(README, "Dependencies")
    for requirement in PYPROJECT["project"]["dependencies"]:
        name = re.match(r"[A-Za-z0-9_.-]+", requirement).group(0)
        assert re.search(rf"^- \*\*{re.escape(name)}\*\*: \S", listed, re.M), name


# ---------------------------------------------------------------------------- docs/
@pytest.mark.parametrize("page", DOC_PAGES)
def test_docs_page_exists(page: str) -> None:
    text = (ROOT / "docs" / f"{page}.md").read_text(encoding="utf-8")
    assert text.startswith("# "), page


def anchors(path: Path) -> set[str]:
    """GitHub's anchors for the headings of a Markdown file."""
    found: set[str] = set()
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.S)
    for heading in re.findall(r"^#{1,6} (.+)$", text, re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        anchor, n = slug, 1
        while anchor in found:
            anchor, n = f"{slug}-{n}", n + 1
        found.add(anchor)
    return found


def relative_links() -> list[tuple[Path, str]]:
    links = []
    for path in MARKDOWN:
        text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.S)
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if not re.match(r"[a-z][a-z0-9+.-]*:", target):  # not http:, mailto:, ...
                links.append((path, target))
    return links


LINKS = relative_links()


def test_there_are_relative_links() -> None:
    assert len(LINKS) > 30


@pytest.mark.parametrize(
    ("source", "target"), LINKS, ids=[f"{p.relative_to(ROOT)}->{t}" for p, t in LINKS]
)
def test_relative_link_points_to_a_file(source: Path, target: str) -> None:
    file_part, _, anchor = target.partition("#")
    destination = (source.parent / file_part).resolve() if file_part else source
    assert destination.is_file(), f"{source.relative_to(ROOT)}: {target}"
    if anchor and destination.suffix == ".md":
        assert anchor in anchors(destination), f"{source.relative_to(ROOT)}: {target}"


def test_every_exit_status_is_in_the_cli_doc() -> None:
    table = markdown_section(CLI_DOC, "Errors and exit status")
    documented = {int(v) for v in re.findall(r"^\| (\d+) \|", table, re.M)}
    assert documented == {int(s) for s in ExitStatus}


def test_install_hints_name_the_distribution() -> None:
    """`emcli` on PyPI is another project: every hint names this distribution."""
    name = PYPROJECT["project"]["name"]
    assert name != "emcli"
    assert PYPROJECT["project"]["optional-dependencies"]["all"] == [f"{name}[dask,plot,image]"]
    sources = [*MARKDOWN, ROOT / "man" / "emcli.1", *sorted((ROOT / "emcli").rglob("*.py"))]
    for path in sources:
        text = path.read_text(encoding="utf-8").replace("\\-", "-").replace("\\(dq", '"')
        assert not re.search(r"(?<![\w-])emcli\[", text), path.relative_to(ROOT)
    assert f'pip install "{name}[plot]"' in CLI_DOC
    assert f'pip install "{name}[dask]"' in CLI_DOC
    assert f"**`{name}`**" in README


# ---------------------------------------------------------------------------- defaults
def test_defaults_in_docs_match_the_code() -> None:
    """The defaults docs/cli.md and the man page state for fit are click's defaults."""
    fit = cli.commands["fit"]
    defaults = {p.opts[-1]: p.default for p in fit.params if isinstance(p, click.Option)}
    stated = {
        "--restarts": 10,
        "--max-iter": 1000,
        "--tol": 1e-8,
        "--reg-covar": 1e-6,
        "--seed": 0,
        "--init-sample": 100_000,
        "--init": "auto",
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
    rows = re.findall(r"^\| `([^`]+)` \| `([^`]+)` \|", CLI_DOC, re.M)
    for option, value in stated.items():
        text = f"{value:g}".replace("e-0", "e-") if isinstance(value, float) else str(value)
        bodies = [body for header, body in entries.items() if mentions(header, option)]
        assert bodies, option
        stated_default = re.search(r"\[default: ([^\]]+)\]", bodies[0])
        assert stated_default and stated_default.group(1) == text, option
        row = [default for names, default in rows if mentions(names, option)]
        assert row and row[0] == text, option


# ---------------------------------------------------------------------------- man page
def test_every_exit_status_is_in_the_man_page() -> None:
    section = man_section("EXIT STATUS")
    body = MAN_SOURCE.split(".SH EXIT STATUS", 1)[1].split("\n.SH ", 1)[0]
    documented = {int(v) for v in re.findall(r"^\.B (\d+)$", body, re.M)}
    assert documented == {int(s) for s in ExitStatus}, section


def test_man_page_does_not_type_the_version() -> None:
    """The version comes from the package (`emcli --version`), not from the man page."""
    title = next(line for line in MAN_SOURCE.splitlines() if line.startswith(".TH "))
    assert not re.search(r"\d+\.\d+", title), title


def test_man_page_is_installed_with_the_package() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert '"share/man/man1" = ["man/emcli.1"]' in pyproject

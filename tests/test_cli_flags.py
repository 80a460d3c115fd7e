"""Library messages name Python parameters as ``{reg_covar}``; the CLI shows flags through one
table (``emcli.cli.options.FLAGS``), rendered in one place (``emcli.cli.app.click_error``).

The scan reads the source of every module of ``emcli``: the message arguments of the
``EmcliError`` classes (and of ``render`` and ``Message``), and the literal text of every
f-string (where a brace is only ever written on purpose, as ``{{reg_covar}}``).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import click
import pytest
from clirun import run

from emcli.cli import cli
from emcli.cli.app import click_error
from emcli.cli.options import FLAGS, in_flags
from emcli.errors import DataError, FitError, UsageError

ROOT = Path(__file__).resolve().parents[1] / "emcli"
PLACEHOLDER = re.compile(r"\{([a-z][a-z0-9_]*)\}")
ERROR_BASES = {"EmcliError", "DataError", "UsageError", "FitError", "ModelFileError", "OutputError"}


def _name(node: ast.expr) -> str:
    return getattr(node, "id", None) or getattr(node, "attr", None) or ""


def _texts(node: ast.expr):
    """The literal text of a message expression: strings, f-strings, + and ... if ... else."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        yield node.value
    elif isinstance(node, ast.JoinedStr):
        for value in node.values:
            yield from _texts(value)
    elif isinstance(node, ast.BinOp):
        yield from _texts(node.left)
        yield from _texts(node.right)
    elif isinstance(node, ast.IfExp):
        yield from _texts(node.body)
        yield from _texts(node.orelse)


def error_classes(trees: list[ast.Module]) -> set[str]:
    """EmcliError and every class derived from it (to any depth) in ``trees``."""
    classes = set(ERROR_BASES)
    while True:
        derived = {
            node.name
            for tree in trees
            for node in ast.walk(tree)
            if isinstance(node, ast.ClassDef) and any(_name(b) in classes for b in node.bases)
        }
        if derived <= classes:
            return classes
        classes |= derived


def placeholders(sources: dict[str, str]) -> dict[str, set[str]]:
    """{parameter: the modules whose messages name it as {parameter}}."""
    trees = {name: ast.parse(text) for name, text in sources.items()}
    classes = error_classes(list(trees.values()))
    found: dict[str, set[str]] = {}
    for module, tree in trees.items():
        for node in ast.walk(tree):
            texts: list[str] = []
            if (
                isinstance(node, ast.Call)
                and node.args
                and _name(node.func) in (*classes, "render", "Message")
            ):
                texts = list(_texts(node.args[0]))
            elif isinstance(node, ast.JoinedStr):
                texts = [v.value for v in node.values if isinstance(v, ast.Constant)]
            for text in texts:
                for parameter in PLACEHOLDER.findall(text):
                    found.setdefault(parameter, set()).add(module)
    return found


def emcli_sources() -> dict[str, str]:
    return {str(p.relative_to(ROOT)): p.read_text(encoding="utf-8") for p in ROOT.rglob("*.py")}


def test_the_scan_finds_placeholders_in_every_form_of_message() -> None:
    source = """
class CellError(DataError):
    pass

def f(k, n):
    if k:
        raise DataError(f"{{n_components}} {k} is more than {n} rows")
    if n:
        raise CellError("leave it out with {columns}")
    note = f"a note naming {{reg_covar}} ({k:g})"
    raise UsageError("use " + ("{missing} em" if k else "{missing} drop"))
"""
    assert placeholders({"m.py": source}) == {
        "n_components": {"m.py"},
        "columns": {"m.py"},
        "reg_covar": {"m.py"},
        "missing": {"m.py"},
    }


def test_every_parameter_named_in_a_message_has_a_flag() -> None:
    missing = {p: sorted(m) for p, m in placeholders(emcli_sources()).items() if p not in FLAGS}
    assert missing == {}, "add these to emcli.cli.options.FLAGS"


def test_every_flag_in_the_table_is_an_option_of_a_command() -> None:
    ctx = click.Context(cli)
    options = {
        opt
        for name in cli.list_commands(ctx)
        for param in cli.get_command(ctx, name).params
        if isinstance(param, click.Option)
        for opt in (*param.opts, *param.secondary_opts)
    }
    unknown = {p: f for p, f in FLAGS.items() if not set(f.split("/")) <= options}
    assert unknown == {}


@pytest.mark.parametrize(
    ("error", "status"), [(UsageError, 2), (DataError, 1), (FitError, 1)], ids=lambda v: str(v)
)
def test_an_error_is_shown_with_flags_and_its_exit_status(error, status) -> None:
    exc = error("try a smaller {n_components}, {covariance_type} diag or a larger {reg_covar}")
    shown = click_error(exc)
    assert shown.format_message() == "try a smaller -k, --covariance diag or a larger --reg-covar"
    assert shown.exit_code == status
    assert str(exc) == "try a smaller n_components, covariance_type diag or a larger reg_covar"


def test_a_note_that_keeps_its_template_gets_flags() -> None:
    class Note(str):  # as a library note: reads with parameter names, keeps its template
        template = "raise {reg_covar} or lower {n_components}"

    note = Note("raise reg_covar or lower n_components")
    assert in_flags(note) == "raise --reg-covar or lower -k"
    assert in_flags("a plain {missing} note") == "a plain --missing note"


def test_a_library_error_reaches_the_terminal_as_one_line_naming_the_flag(
    monkeypatch, tmp_path
) -> None:
    def failing(*args, **kwargs):
        raise FitError(
            "every start collapsed; try a larger {reg_covar} or a smaller {n_components}"
        )

    monkeypatch.setattr("emcli.api.fit_engine", failing)
    source = Path(__file__).resolve().parents[1] / "sample_data" / "faithful.csv"
    result = run("fit", source, "-k", "2", "--labels", tmp_path / "labels.csv")
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr == (
        "Error: every start collapsed; try a larger --reg-covar or a smaller -k\n"
    )
    assert not (tmp_path / "labels.csv").exists()

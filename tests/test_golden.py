"""The CLI's outputs match those recorded from the reference code (tests/data/golden/).

The cases are in tests/golden_cases.py; tests/record_golden.py recorded them on the code of
commit a41688c (emcli 0.1.0, model files of schema_version 1).  Each case runs as
``sys.executable -m emcli ...`` in a subprocess, so it tests whichever emcli that interpreter
imports (the environment is inherited: set PYTHONPATH to test a checkout).

What must match:

- the exit code (stderr is not compared);
- CSV output: the header and the number of rows exactly (but for columns added since, in
  ``NEW_COLUMNS``, which are dropped before comparing: the selection table's
  ``model_name``, mclust's name of each covariance model); integer columns (``cluster``,
  ``component``, ``row``, ``components``, ...: every golden cell an integer) exactly; other
  cells that are numbers to 1e-9 relative (1e-9 absolute near 0), the rest as text;
- JSON (model files, ``describe --json``): every key of the golden file is present (new keys
  are allowed; ``schema_version`` is ignored), strings and booleans exactly, numbers to 1e-9
  relative (1e-9 absolute near 0), lists element by element; ``notes`` and ``warnings`` only
  by their count (they may be reworded).  ``covariances`` are compared as k full d x d
  matrices: schema 1 stores them so, schema 2 in scikit-learn's shapes for the
  ``covariance_type`` (full k x d x d, tied d x d, diag k x d, spherical k), expanded here;
- text (``describe``): every golden line appears, in order, in the new output (which may have
  more lines), with words equal and numbers to 1e-6 relative; runs of spaces and of dashes
  count as one; ``note:`` / ``warning:`` lines (which may be reworded) are only counted.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from golden_cases import (
    BY_NAME,
    CASES,
    DATA,
    GOLDEN,
    MANIFEST,
    MODEL_FILES,
    STDOUT_NAME,
    Case,
    Result,
    run_case,
)

# Columns added to CSV outputs since the reference code (an issue asked for each).
NEW_COLUMNS = frozenset({"model_name"})
REL = 1e-9  # numbers in CSV and JSON
ABS = 1e-9  # ... near 0
TEXT_REL = 1e-6  # numbers in describe's text
TEXT_ABS = 1e-12
JOBS = min(4, os.cpu_count() or 1)  # cases run at a time

INT_RE = re.compile(r"[-+]?\d+")
RESPONSIBILITY_RE = re.compile(r"component_\d+")
NUMBER_RE = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")
REWORDABLE = ("notes", "warnings")
REWORDABLE_LINE = re.compile(r"\s*(note|warning):")


class Mismatch(Exception):
    """The first difference found, as a message naming where it is."""


def manifest() -> dict[str, Any]:
    return json.loads(MANIFEST.read_text())


# ---------------------------------------------------------------------------- numbers
def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _close(a: float, b: float, rel: float, abs_: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return math.isclose(a, b, rel_tol=rel, abs_tol=abs_)


# ---------------------------------------------------------------------------- CSV
def compare_csv(golden: str, new: str) -> None:
    g_rows = list(csv.reader(io.StringIO(golden)))
    n_rows = list(csv.reader(io.StringIO(new)))
    if not g_rows or not n_rows:
        if g_rows != n_rows:
            raise Mismatch(f"golden has {len(g_rows)} lines, new has {len(n_rows)}")
        return
    header = g_rows[0]
    added = [j for j, name in enumerate(n_rows[0]) if name in NEW_COLUMNS - set(header)]
    if added:
        n_rows = [[c for j, c in enumerate(row) if j not in added] for row in n_rows]
    if n_rows[0] != header:
        raise Mismatch(f"header differs:\n  golden: {header}\n  new:    {n_rows[0]}")
    if len(n_rows) != len(g_rows):
        raise Mismatch(f"golden has {len(g_rows) - 1} data rows, new has {len(n_rows) - 1}")
    integer = [
        not RESPONSIBILITY_RE.fullmatch(name)
        and len(g_rows) > 1
        and all(INT_RE.fullmatch(row[j]) for row in g_rows[1:] if j < len(row))
        for j, name in enumerate(header)
    ]
    first: str | None = None
    count = 0
    for i, (g_row, n_row) in enumerate(zip(g_rows[1:], n_rows[1:], strict=True)):
        if len(g_row) != len(n_row):
            raise Mismatch(f"data row {i}: {len(g_row)} cells in golden, {len(n_row)} in new")
        for j, (g, n) in enumerate(zip(g_row, n_row, strict=True)):
            if integer[j] or (g_num := _number(g)) is None or (n_num := _number(n)) is None:
                same = g == n
                how = "exactly" if integer[j] else "as text"
            else:
                same = _close(g_num, n_num, REL, ABS)
                how = f"to {REL:g} relative"
            if not same:
                count += 1
                if first is None:
                    first = (
                        f"first differing cell: data row {i} (line {i + 2}), column "
                        f"{header[j]!r} (compared {how}): golden {g!r}, new {n!r}"
                    )
    if first is not None:
        raise Mismatch(f"{first}; {count} differing cell(s) in all")


# ---------------------------------------------------------------------------- JSON
def _depth(value: Any) -> int:
    depth = 0
    while isinstance(value, list):
        depth += 1
        value = value[0] if value else None
    return depth


def full_covariances(model: dict[str, Any]) -> list[Any]:
    """``covariances`` as k full d x d matrices, from either schema's layout."""
    cov = model["covariances"]
    kind = model.get("covariance_type")
    k = len(model["weights"])
    d = len(model["columns"])
    depth = _depth(cov)

    def diagonal(values: list[float]) -> list[list[float]]:
        return [[values[i] if i == j else 0.0 for j in range(d)] for i in range(d)]

    if depth == 3:  # schema 1 (every type), or schema 2's full
        return cov
    if kind == "tied" and depth == 2:
        return [cov] * k
    if kind == "diag" and depth == 2:
        return [diagonal(row) for row in cov]
    if kind == "spherical" and depth == 1:
        return [diagonal([s] * d) for s in cov]
    raise Mismatch(f"covariances of type {kind!r} with {depth} levels of nesting: unknown layout")


def compare_json(golden: Any, new: Any) -> None:
    if isinstance(golden, dict) and isinstance(new, dict):
        golden, new = dict(golden), dict(new)
        golden.pop("schema_version", None)
        _tied_winner(golden, new)
        for model in (golden, new):
            if "covariances" in model and "weights" in model and "columns" in model:
                model["covariances"] = full_covariances(model)
    _compare_value(golden, new, "")


# Which of several starts that reach the same optimum is reported changed on purpose: 0.1.0
# took the highest log-likelihood bit for bit (so rounding chose among tied starts); now the
# earliest start within 1e-10 relative of the best wins (emcli.em.driver.best_start).  When
# the winners' log-likelihoods agree, the fields that describe the winning start's path are
# not compared; every start's own record (``starts``) still is, and so are the parameters.
_WINNER_PATH = ("best_start", "n_iter", "history", "converged")


def _tied_winner(golden: dict[str, Any], new: dict[str, Any]) -> None:
    g, n = golden.get("log_likelihood"), new.get("log_likelihood")
    if not (isinstance(g, float) and isinstance(n, float)) or not (
        "starts" in golden or "n_starts" in golden
    ):
        return
    if golden.get("best_start") != new.get("best_start") and _close(g, n, 1e-9, 0.0):
        for key in _WINNER_PATH:
            golden.pop(key, None)
            new.pop(key, None)


def _compare_value(g: Any, n: Any, path: str) -> None:
    where = path or "(top level)"
    if isinstance(g, dict):
        if not isinstance(n, dict):
            raise Mismatch(f"{where}: golden is an object, new is {json.dumps(n)[:80]}")
        for key, value in g.items():
            sub = f"{path}.{key}" if path else key
            if key not in n:
                raise Mismatch(f"{sub}: in golden, missing in new")
            if key in REWORDABLE and isinstance(value, list):
                if not isinstance(n[key], list) or len(n[key]) != len(value):
                    got = len(n[key]) if isinstance(n[key], list) else json.dumps(n[key])[:80]
                    raise Mismatch(f"{sub}: golden has {len(value)} entries, new has {got}")
                continue
            _compare_value(value, n[key], sub)
    elif isinstance(g, list):
        if not isinstance(n, list):
            raise Mismatch(f"{where}: golden is a list, new is {json.dumps(n)[:80]}")
        if len(g) != len(n):
            raise Mismatch(f"{where}: golden has {len(g)} entries, new has {len(n)}")
        for i, (a, b) in enumerate(zip(g, n, strict=True)):
            _compare_value(a, b, f"{path}[{i}]")
    elif isinstance(g, bool) or g is None or isinstance(g, str):
        if type(n) is not type(g) or n != g:
            raise Mismatch(f"{where}: golden {json.dumps(g)}, new {json.dumps(n)[:80]}")
    elif isinstance(g, int | float):
        if isinstance(n, bool) or not isinstance(n, int | float):
            raise Mismatch(f"{where}: golden {g!r}, new {json.dumps(n)[:80]}")
        if not _close(float(g), float(n), REL, ABS):
            raise Mismatch(f"{where}: golden {g!r}, new {n!r} (not equal to {REL:g} relative)")
    else:  # pragma: no cover - json.loads gives nothing else
        raise Mismatch(f"{where}: unexpected golden value {g!r}")


# ---------------------------------------------------------------------------- text
def _normalise(line: str) -> tuple[tuple[str, ...], tuple[float, ...]]:
    """A line's words (numbers cut out, runs of spaces and dashes as one) and numbers."""
    line = re.sub(r"-{3,}", "---", line)
    words = [" ".join(part.split()) for part in NUMBER_RE.split(line)]
    numbers = tuple(float(m) for m in NUMBER_RE.findall(line))
    return tuple(words), numbers


# "best start N" may name another of several tied starts (see _WINNER_PATH).
_BEST_START = re.compile(r"best start \d+")


def _lines_match(golden: str, new: str) -> bool:
    golden, new = _BEST_START.sub("best start", golden), _BEST_START.sub("best start", new)
    if golden.startswith("settings: ") and new.startswith(golden.rstrip()):
        return True  # settings gained entries (family, ...), the old ones in their order
    g_words, g_numbers = _normalise(golden)
    n_words, n_numbers = _normalise(new)
    return (
        g_words == n_words
        and len(g_numbers) == len(n_numbers)
        and all(_close(a, b, TEXT_REL, TEXT_ABS) for a, b in zip(g_numbers, n_numbers, strict=True))
    )


def compare_text(golden: str, new: str) -> None:
    g_lines = golden.splitlines()
    n_lines = new.splitlines()
    for what in ("note", "warning"):
        g_count = sum(1 for line in g_lines if line.lstrip().startswith(f"{what}:"))
        n_count = sum(1 for line in n_lines if line.lstrip().startswith(f"{what}:"))
        if g_count != n_count:
            raise Mismatch(f"golden has {g_count} '{what}:' line(s), new has {n_count}")
    at = 0
    for number, line in enumerate(g_lines, start=1):
        if REWORDABLE_LINE.match(line):
            continue
        for j in range(at, len(n_lines)):
            if _lines_match(line, n_lines[j]):
                at = j + 1
                break
        else:
            rest = "\n".join(f"    {text}" for text in n_lines[at : at + 8]) or "    (nothing)"
            raise Mismatch(
                f"golden line {number} is not in the new output (after new line {at}):\n"
                f"  golden: {line}\n  new output from line {at + 1}:\n{rest}"
            )


COMPARE: dict[str, Callable[[str, str], None]] = {
    "csv": compare_csv,
    "json": lambda g, n: compare_json(json.loads(g), json.loads(n)),
    "text": compare_text,
}


def compare_file(kind: str, golden: str, new: str, what: str, case: Case) -> None:
    problem = None
    try:
        if kind == "none":
            if new:
                raise Mismatch(f"expected no output, got {new[:200]!r}")
        else:
            COMPARE[kind](golden, new)
    except Mismatch as exc:
        problem = str(exc)
    except json.JSONDecodeError as exc:
        problem = f"not JSON: {exc}"
    if problem is not None:
        argv = " ".join(case.argv)
        message = f"case {case.name} ({what}) differs from golden:\n{problem}\n  emcli {argv}"
        pytest.fail(message, pytrace=False)


def kind_of(path: str) -> str:
    suffix = Path(path).suffix
    return {".csv": "csv", ".json": "json"}.get(suffix, "text")


# ---------------------------------------------------------------------------- running
@pytest.fixture(scope="module")
def recorded() -> dict[str, Any]:
    return manifest()["cases"]


@pytest.fixture(scope="module")
def run(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[[Case], Result]]:
    """Runs each case once (after the cases it requires).  The selected cases are started
    at once, JOBS at a time, each as soon as the cases it requires have finished."""
    work = tmp_path_factory.mktemp("golden")
    futures: dict[str, Future[Result]] = {}
    pool = ThreadPoolExecutor(max_workers=JOBS)

    def submit(case: Case) -> Future[Result]:
        # A case is submitted after the cases it requires, so (first in, first out) the
        # oldest unfinished case is always running: waiting on a requirement cannot deadlock.
        if case.name not in futures:
            needs = [submit(BY_NAME[req]) for req in case.requires]

            def job() -> Result:
                for need in needs:
                    need.result()
                return run_case(case, work)

            futures[case.name] = pool.submit(job)
        return futures[case.name]

    for item in request.session.items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and isinstance(callspec.params.get("case"), Case):
            submit(callspec.params["case"])

    def get(case: Case) -> Result:
        return submit(case).result()

    get.work = work  # type: ignore[attr-defined]
    try:
        yield get
    finally:
        for future in futures.values():
            future.cancel()
        pool.shutdown(wait=True)


def test_manifest_matches_the_cases():
    """Every case is recorded with the command line it has now (re-record after a change on
    the reference code, see tests/record_golden.py)."""
    cases = manifest()["cases"]
    assert sorted(cases) == sorted(c.name for c in CASES), "cases added or removed since recording"
    for case in CASES:
        assert cases[case.name]["argv"] == list(case.argv), f"{case.name}: argv changed"
        assert cases[case.name]["files"] == list(case.files), f"{case.name}: files changed"
        assert cases[case.name]["stdin"] == case.stdin, f"{case.name}: stdin changed"


@pytest.mark.parametrize("name", sorted(MODEL_FILES))
def test_model_files_are_schema_1(name: str):
    """The model files the schema-1 cases read are as the reference code wrote them."""
    model = json.loads((DATA / name).read_text())
    assert model["schema_version"] == 1
    assert model["covariance_type"] == MODEL_FILES[name]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_golden(case: Case, run: Callable[[Case], Result], recorded: dict[str, Any]):
    golden_dir = GOLDEN / case.name
    expected = recorded[case.name]
    result = run(case)
    if result.exit_code != expected["exit_code"]:
        for req in case.requires:
            if run(BY_NAME[req]).exit_code != recorded[req]["exit_code"]:
                pytest.fail(f"case {case.name}: required case {req} failed", pytrace=False)
        stderr = result.stderr.decode(errors="replace")[-2000:]
        pytest.fail(
            f"case {case.name}: exit code {result.exit_code}, golden {expected['exit_code']}\n"
            f"  emcli {' '.join(case.argv)}\nstderr:\n{stderr}",
            pytrace=False,
        )
    golden_stdout = (golden_dir / STDOUT_NAME).read_text()
    compare_file(case.stdout, golden_stdout, result.stdout.decode(), "stdout", case)
    where = run.work / case.name  # type: ignore[attr-defined]
    for rel in case.files:
        path = where / rel
        if not path.is_file():
            pytest.fail(f"case {case.name}: did not write {rel}", pytrace=False)
        compare_file(kind_of(rel), (golden_dir / rel).read_text(), path.read_text(), rel, case)


# ---------------------------------------------------------------------------- the comparisons
def test_compare_csv_reports_the_first_differing_cell():
    golden = "cluster,component_0\n0,0.5\n1,1\n"
    compare_csv(golden, "cluster,component_0\n0,0.5000000000001\n1,0.9999999999999\n")
    with pytest.raises(Mismatch, match=r"data row 1 \(line 3\), column 'cluster'"):
        compare_csv(golden, "cluster,component_0\n0,0.5\n2,1\n")
    with pytest.raises(Mismatch, match=r"column 'component_0'.*'0.5', new '0.5001'"):
        compare_csv(golden, "cluster,component_0\n0,0.5001\n1,1\n")
    with pytest.raises(Mismatch, match="header"):
        compare_csv(golden, "label,component_0\n0,0.5\n1,1\n")


def test_compare_json_expands_covariances_and_allows_new_keys():
    d2 = [[2.0, 0.0], [0.0, 3.0]]
    old = {
        "schema_version": 1,
        "covariance_type": "diag",
        "columns": ["a", "b"],
        "weights": [0.5, 0.5],
        "covariances": [d2, d2],
        "settings": {"seed": 0},
        "notes": ["a note"],
    }
    new = dict(old, schema_version=2, covariances=[[2.0, 3.0], [2.0, 3.0]], model_name="x")
    new["settings"] = {"seed": 0, "sample_weight": None}
    new["notes"] = ["the note, reworded"]
    compare_json(old, new)
    tied = dict(old, covariance_type="tied", covariances=[d2, d2])
    compare_json(tied, dict(tied, covariances=d2))
    sph = dict(old, covariance_type="spherical", covariances=[[[2.0, 0], [0, 2.0]]] * 2)
    compare_json(sph, dict(sph, covariances=[2.0, 2.0]))
    with pytest.raises(Mismatch, match=r"covariances\[1\]\[1\]\[1\]"):
        compare_json(old, dict(new, covariances=[[2.0, 3.0], [2.0, 3.1]]))
    with pytest.raises(Mismatch, match="settings.seed: in golden, missing"):
        compare_json(old, dict(new, settings={}))


def test_compare_text_allows_added_lines():
    golden = "k 3, BIC 580.8389\n 0 | 0.3675 |  6.545\nnote: a row\n"
    compare_text(golden, "k 3, BIC 580.83890001\nnew line\n 0 |   0.3675 | 6.545\nnote: row\n")
    with pytest.raises(Mismatch, match="golden line 2"):
        compare_text(golden, "k 3, BIC 580.8389\n 0 | 0.3676 | 6.545\nnote: a row\n")

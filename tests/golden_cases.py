"""The CLI cases whose outputs are recorded as golden files (tests/data/golden/).

Each case is one ``emcli`` command line.  ``tests/record_golden.py`` runs every case on the
reference code and stores what it wrote; ``tests/test_golden.py`` runs them again on the
code under test and compares.

A case runs in a directory of its own, named after the case, inside one shared working
directory; its output files are named relative to that directory.  A case that reads
another case's output (a model file written by a fit) names it as ``../OTHER/FILE`` and
lists OTHER in ``requires``, so that OTHER is run first.  In ``argv`` and ``stdin``,
``{sample}`` stands for sample_data/, ``{inputs}`` for tests/data/golden/inputs/ and
``{data}`` for tests/data/ (absolute paths, filled in by ``expand``).

Cases are run as ``sys.executable -m emcli ...`` in a subprocess: that stays valid whatever
module holds the CLI, and it runs whichever ``emcli`` package that interpreter imports (set
PYTHONPATH to test a checkout that is not installed).
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
SAMPLE = ROOT / "sample_data"
DATA = TESTS / "data"
GOLDEN = DATA / "golden"
INPUTS = GOLDEN / "inputs"
MANIFEST = GOLDEN / "manifest.json"
STDOUT_NAME = "stdout.txt"

# Model files written by the reference code (schema_version 1), one per covariance type,
# with the command line that wrote them.  model-0.1.0.json is the full one.
MODEL_FILES = {
    "model-0.1.0.json": "full",
    "model-0.1.0-tied.json": "tied",
    "model-0.1.0-diag.json": "diag",
    "model-0.1.0-spherical.json": "spherical",
}


def model_file_argv(name: str) -> list[str]:
    """The ``emcli`` arguments that write tests/data/NAME (without ``--params PATH``)."""
    kind = MODEL_FILES[name]
    return ["fit", "{sample}/iris.csv", "-k", "3", "--covariance", kind, "-n", "3", "--seed", "0"]


@dataclass(frozen=True)
class Case:
    name: str
    argv: tuple[str, ...]
    files: tuple[str, ...] = ()  # output files the case writes, relative to its directory
    stdout: str = "none"  # what stdout holds: "none" (nothing), "csv", "text" or "json"
    stdin: str | None = None  # a file fed to stdin
    requires: tuple[str, ...] = ()  # cases whose outputs this case reads


def _case(name: str, *argv: str, **kwargs: object) -> Case:
    return Case(name, tuple(argv), **kwargs)  # type: ignore[arg-type]


FIT_OUT = ("--labels", "labels.csv", "--responsibilities", "responsibilities.csv")
FIT_FILES = ("labels.csv", "responsibilities.csv", "model.json")
IRIS = "{sample}/iris.csv"
FAITHFUL = "{sample}/faithful.csv"
CLASSIC = "{sample}/classic.csv"
GAPS = "{inputs}/iris_gaps.csv"


def _fit_types() -> list[Case]:
    return [
        _case(
            f"fit_iris_{kind}",
            "fit", IRIS, "-k", "3", "--covariance", kind, "-n", "3", "--seed", "1",
            *FIT_OUT, "--params", "model.json",
            files=FIT_FILES,
        )
        for kind in ("full", "tied", "diag", "spherical")
    ]  # fmt: skip


def _per_model_type() -> list[Case]:
    """score and sample on the model file of each covariance type."""
    cases = []
    for kind in ("full", "tied", "diag", "spherical"):
        model = f"../fit_iris_{kind}/model.json"
        req = (f"fit_iris_{kind}",)
        if kind != "full":
            cases.append(
                _case(f"score_iris_{kind}", "score", model, IRIS, stdout="csv", requires=req)
            )
        cases.append(
            _case(
                f"sample_iris_{kind}", "sample", model, "-n", "50", "--seed", "3",
                stdout="csv", requires=req,
            )
        )  # fmt: skip
    return cases


def _model_file_cases() -> list[Case]:
    """The recorded schema-1 model files load and predict, score and sample as before."""
    cases = []
    for name, kind in MODEL_FILES.items():
        tag = "model_0_1_0" if kind == "full" else f"model_0_1_0_{kind}"
        path = "{data}/" + name
        cases += [
            _case(
                f"{tag}_predict", "predict", path, IRIS, *FIT_OUT,
                files=("labels.csv", "responsibilities.csv"),
            ),
            _case(f"{tag}_score", "score", path, IRIS, stdout="csv"),
        ]  # fmt: skip
        if kind == "full":
            cases += [
                _case(f"{tag}_describe", "describe", path, stdout="text"),
                _case(f"{tag}_sample", "sample", path, "-n", "50", "--seed", "3", stdout="csv"),
            ]
    return cases


FULL_MODEL = "../fit_iris_full/model.json"
NEEDS_FULL = ("fit_iris_full",)

CASES: list[Case] = [
    # ------------------------------------------------------------------ fit
    *_fit_types(),
    # "all" meant these four in 0.1.0; it now means mclust's 14 models (the mclust issue)
    _case(
        "fit_iris_selection",
        "fit", IRIS, "-k", "1..4", "--covariance", "full,tied,diag,spherical", "-n", "2",
        "--seed", "0",
        "--selection", "selection.csv", "--params", "model.json", "--labels", "labels.csv",
        files=("selection.csv", "model.json", "labels.csv"),
    ),
    _case(
        "fit_gaps_em",
        "fit", GAPS, "-k", "3", "--missing", "em", "-n", "3", "--seed", "2",
        *FIT_OUT, "--params", "model.json",
        files=FIT_FILES,
    ),
    _case(
        "fit_gaps_imputed",
        "fit", GAPS, "-k", "2", "--covariance", "diag", "-n", "2", "--seed", "2",
        "--imputed", "imputed.csv", "--params", "model.json",
        files=("imputed.csv", "model.json"),
    ),
    _case(
        "fit_gaps_drop_imputed",
        "fit", GAPS, "-k", "3", "--missing", "drop", "-n", "2", "--seed", "2",
        "--imputed", "imputed.csv", "--labels", "labels.csv", "--params", "model.json",
        files=("imputed.csv", "labels.csv", "model.json"),
    ),
    _case(
        "fit_faithful_outdir",
        "fit", FAITHFUL, "-k", "2", "-n", "3", "--seed", "0", "-o", "out",
        files=("out/labels.csv", "out/responsibilities.csv", "out/params.json"),
    ),
    _case(
        "fit_classic_stream",
        "fit", CLASSIC, "-k", "2", "-n", "2", "--seed", "0", "--engine", "stream",
        "--block-rows", "256", *FIT_OUT, "--params", "model.json",
        files=FIT_FILES,
    ),
    _case(
        "fit_faithful_dask",
        "fit", FAITHFUL, "-k", "2", "-n", "2", "--seed", "0", "--engine", "dask",
        "--block-rows", "100", "--labels", "labels.csv", "--params", "model.json",
        files=("labels.csv", "model.json"),
    ),
    _case(
        "fit_classic_stdin",
        "fit", "-", "-k", "2", "-n", "2", "--seed", "0", "--labels", "-",
        stdin=CLASSIC, stdout="csv",
    ),
    _case(
        "fit_faithful_accelerate",
        "fit", FAITHFUL, "-k", "3", "--covariance", "tied", "-n", "2", "--seed", "0",
        "--accelerate", "--labels", "labels.csv", "--params", "model.json",
        files=("labels.csv", "model.json"),
    ),
    _case(
        "fit_iris_init_random",
        "fit", IRIS, "-k", "3", "--init", "random", "-n", "3", "--seed", "4",
        *FIT_OUT, "--params", "model.json",
        files=FIT_FILES,
    ),
    _case(
        "fit_faithful_init_kmeanspp",
        "fit", FAITHFUL, "-k", "2", "--init", "kmeans++", "-n", "3", "--seed", "5",
        *FIT_OUT, "--params", "model.json",
        files=FIT_FILES,
    ),
    # ------------------------------------------------------------------ predict
    _case(
        "predict_iris",
        "predict", FULL_MODEL, IRIS, *FIT_OUT,
        files=("labels.csv", "responsibilities.csv"), requires=NEEDS_FULL,
    ),
    _case(
        "predict_faithful_stdout",
        "predict", "../fit_faithful_outdir/out/params.json", FAITHFUL,
        stdout="csv", requires=("fit_faithful_outdir",),
    ),
    _case(
        "predict_gaps_outdir",
        "predict", "../fit_gaps_em/model.json", GAPS, "-o", "out",
        files=("out/labels.csv", "out/responsibilities.csv"), requires=("fit_gaps_em",),
    ),
    # ------------------------------------------------------------------ score
    _case("score_iris", "score", FULL_MODEL, IRIS, stdout="csv", requires=NEEDS_FULL),
    _case(
        "score_iris_lowest",
        "score", FULL_MODEL, IRIS, "--lowest", "5", stdout="csv", requires=NEEDS_FULL,
    ),
    _case(
        "score_iris_below",
        "score", FULL_MODEL, IRIS, "--below", "-3.5", stdout="csv", requires=NEEDS_FULL,
    ),
    _case(
        "score_gaps_output",
        "score", "../fit_gaps_em/model.json", GAPS, "--output", "scores.csv",
        files=("scores.csv",), requires=("fit_gaps_em",),
    ),
    # ------------------------------------------------------------------ sample, per type
    *_per_model_type(),
    # ------------------------------------------------------------------ describe
    _case("describe_iris", "describe", FULL_MODEL, stdout="text", requires=NEEDS_FULL),
    _case("describe_iris_json", "describe", FULL_MODEL, "--json", stdout="json",
          requires=NEEDS_FULL),
    _case(
        "describe_selection",
        "describe", "../fit_iris_selection/model.json",
        stdout="text", requires=("fit_iris_selection",),
    ),
    _case(
        "describe_selection_json",
        "describe", "../fit_iris_selection/model.json", "--json",
        stdout="json", requires=("fit_iris_selection",),
    ),
    _case(
        "describe_gaps",
        "describe", "../fit_gaps_em/model.json", stdout="text", requires=("fit_gaps_em",),
    ),
    # ------------------------------------------------------------------ schema-1 model files
    *_model_file_cases(),
]  # fmt: skip

BY_NAME = {case.name: case for case in CASES}


def expand(text: str) -> str:
    return text.format(sample=SAMPLE, inputs=INPUTS, data=DATA)


@dataclass
class Result:
    exit_code: int
    stdout: bytes
    stderr: bytes


def run_case(case: Case, workdir: Path, env: dict[str, str] | None = None) -> Result:
    """Run ``case`` with ``sys.executable -m emcli`` in ``workdir / case.name``."""
    where = workdir / case.name
    where.mkdir(parents=True, exist_ok=True)
    stdin = open(expand(case.stdin), "rb") if case.stdin else subprocess.DEVNULL
    argv = [*map(expand, case.argv)]
    if argv[:1] == ["fit"] and "--init" not in argv:
        # the reference code's default start (the default is auto since the mclust models);
        # --init kmeans meant the same there, so the recordings stand
        argv += ["--init", "kmeans"]
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "emcli", *argv],
            cwd=where,
            stdin=stdin,
            capture_output=True,
            env=child_env() if env is None else env,
            timeout=120,
        )
    finally:
        if case.stdin:
            stdin.close()  # type: ignore[union-attr]
    return Result(proc.returncode, proc.stdout, proc.stderr)


def child_env() -> dict[str, str]:
    """The environment of the tests, without EMCLI_* variables: click reads every option's
    default from one (EMCLI_FIT_RESTARTS, ...), which would change the recorded outputs."""
    return {k: v for k, v in os.environ.items() if not k.startswith("EMCLI_")}


def ordered(names: list[str] | None = None) -> list[Case]:
    """Cases in an order where each comes after the cases it requires."""
    done: list[Case] = []
    seen: set[str] = set()

    def visit(case: Case) -> None:
        if case.name in seen:
            return
        seen.add(case.name)
        for req in case.requires:
            visit(BY_NAME[req])
        done.append(case)

    for case in CASES if names is None else [BY_NAME[n] for n in names]:
        visit(case)
    return done

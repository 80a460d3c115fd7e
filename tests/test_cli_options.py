"""The options issue 13 adds to the command line: -q/-v on every command, fit --init
MODEL.json (warm starts), --weights COL, --family, and --dtype on every engine.

Bad values of these options are cases of tests/test_bad_input.py.  Tests marked with
``needs(...)`` run once the library side of the feature is on the branch (the weights column
in the reader and engines; the family core with warm starts in ``api.fit_engine``); whether a
warm start equals one long run and weights equal repeated rows is tested in the library's
own tests.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import click
import numpy as np
import pytest
from clirun import run

from emcli import api
from emcli.cli import cli
from emcli.engines.choose import choose_engine, open_engine

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data"
FAITHFUL = SAMPLE / "faithful.csv"
FAST = ["-n", "1", "--seed", "3"]


def _library_has(feature: str) -> bool:
    if feature == "weights column":
        return all(
            "weights" in inspect.signature(f).parameters for f in (open_engine, choose_engine)
        )
    if feature == "family core":  # families, warm starts and sample_weight in fit_engine
        return "family" in inspect.signature(api.fit_engine).parameters
    raise ValueError(feature)


def needs(feature: str) -> pytest.MarkDecorator:
    return pytest.mark.skipif(
        not _library_has(feature), reason=f"the library side of '{feature}' is not here yet"
    )


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("model") / "model.json"
    assert run("fit", FAITHFUL, "-k", "2", *FAST, "--params", path).exit_code == 0
    return path


# ---------------------------------------------------------------------------- -q / -v
def _commands(model: Path, out: Path) -> dict[str, list[object]]:
    """A run of every command that writes to ``out`` (describe: to stdout)."""
    return {
        "fit": ["fit", FAITHFUL, "-k", "2", *FAST, "--labels", out / "labels.csv"],
        "predict": ["predict", model, FAITHFUL, "--labels", out / "labels.csv"],
        "score": ["score", model, FAITHFUL, "--output", out / "score.csv"],
        "sample": ["sample", model, "-n", "5", "--output", out / "sample.csv"],
        "describe": ["describe", model],
        "plot": ["plot", model, "-o", out / "plot.png"],
        "segment": ["segment", _image(out), "-k", "2", *FAST, "--labels", out / "labels.png"],
    }


def _image(out: Path) -> Path:
    """A small two-colour PNG for ``segment`` (when Pillow is there)."""
    path = out / "in.png"
    try:
        from PIL import Image
    except ImportError:
        return path
    pixels = np.random.default_rng(0).normal(60, 5, (20, 30, 3))
    pixels[:, 15:] += 120
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(path)
    return path


def test_every_command_is_in_the_display_table(model_file, tmp_path) -> None:
    assert sorted(_commands(model_file, tmp_path)) == sorted(cli.commands)


@pytest.mark.parametrize("command", sorted(cli.commands))
def test_quiet_is_accepted_by_every_command_and_leaves_stderr_empty(
    command, model_file, tmp_path
) -> None:
    if command == "plot":
        pytest.importorskip("matplotlib")
    if command == "segment":
        pytest.importorskip("PIL")
    args = _commands(model_file, tmp_path)[command]
    for flag in ("-q", "--quiet"):
        result = run(*args, flag)
        assert result.exit_code == 0, result.stderr
        assert result.stderr == ""


@pytest.mark.parametrize("command", sorted(cli.commands))
def test_verbose_is_accepted_by_every_command_and_never_reaches_stdout(
    command, model_file, tmp_path
) -> None:
    if command == "plot":
        pytest.importorskip("matplotlib")
    if command == "segment":
        pytest.importorskip("PIL")
    args = _commands(model_file, tmp_path)[command]
    plain, verbose = run(*args), run(*args, "-v")
    assert verbose.exit_code == 0, verbose.stderr
    assert verbose.stdout == plain.stdout
    quiet_wins = run(*args, "-v", "-q")
    assert quiet_wins.exit_code == 0 and quiet_wins.stderr == ""


@pytest.mark.parametrize("command", sorted(cli.commands))
def test_every_command_documents_quiet_and_verbose(command) -> None:
    params = {p.name: p for p in cli.commands[command].params if isinstance(p, click.Option)}
    assert params["quiet"].help and params["verbose"].help


def test_verbose_reports_what_predict_sample_and_plot_did(model_file, tmp_path) -> None:
    commands = _commands(model_file, tmp_path)
    predicted = run(*commands["predict"], "-v")
    counts = np.bincount(np.loadtxt(tmp_path / "labels.csv", skiprows=1, dtype=int))
    assert predicted.stderr == (
        f"272 row(s) labelled; rows per component 0: {counts[0]}, 1: {counts[1]}\n"
    )
    sampled = run(*commands["sample"], "-v")
    assert sampled.stderr == f"5 row(s) drawn (seed 0) to {tmp_path / 'sample.csv'}\n"
    pytest.importorskip("matplotlib")
    plotted = run(*commands["plot"], "-v")
    assert plotted.stderr == f"wrote the convergence plot to {tmp_path / 'plot.png'}\n"


# ---------------------------------------------------------------------------- --init
def test_init_help_names_both_forms() -> None:
    text = run("fit", "--help").stdout
    assert "--init METHOD|MODEL.json" in text
    assert "kmeans" in text and "warm start" in text


@needs("family core")
def test_init_model_file_is_one_warm_start(model_file, tmp_path) -> None:
    out = tmp_path / "warm.json"
    result = run("fit", FAITHFUL, "-k", "2", "--init", model_file, "--params", out, "-q")
    assert result.exit_code == 0, result.stderr
    warm = json.loads(out.read_text())
    assert warm["settings"]["init"] == "model"
    assert len(warm["starts"]) == 1


@needs("family core")
def test_init_model_keeps_its_covariance_type_unless_given(tmp_path) -> None:
    diag = tmp_path / "diag.json"
    assert (
        run("fit", FAITHFUL, "-k", "2", *FAST, "--covariance", "diag", "--params", diag).exit_code
        == 0
    )
    result = run("fit", FAITHFUL, "-k", "2", "--init", diag, "--params", "-", "-q")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["covariance_type"] == "diag"
    other = run("fit", FAITHFUL, "-k", "2", "--init", diag, "--covariance", "full")
    assert other.exit_code == 2
    assert other.stderr.startswith("Error: the --init model has --covariance diag")


# ---------------------------------------------------------------------------- --weights
@pytest.fixture
def weighted_csv(tmp_path) -> Path:
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0, 1, (40, 2)), rng.normal(6, 1, (40, 2))])
    w = np.arange(80) % 3
    path = tmp_path / "weighted.csv"
    rows = zip(x.tolist(), w.tolist(), strict=True)
    lines = ["a,b,w"] + [f"{a!r},{b!r},{int(v)}" for (a, b), v in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


@needs("weights column")
@needs("family core")
def test_weights_column_is_not_a_feature_and_n_is_its_sum(weighted_csv) -> None:
    result = run("fit", weighted_csv, "-k", "2", *FAST, "--weights", "w", "--params", "-", "-q")
    assert result.exit_code == 0, result.stderr
    model = json.loads(result.stdout)
    assert model["columns"] == ["a", "b"]
    assert model["n_samples"] == sum(i % 3 for i in range(80))


@needs("weights column")
@needs("family core")
def test_weighted_labels_cover_every_row(weighted_csv) -> None:
    result = run("fit", weighted_csv, "-k", "2", *FAST, "--weights", "w", "--labels", "-")
    assert result.exit_code == 0, result.stderr
    assert len(result.stdout.splitlines()) == 81  # weight-0 rows get labels too


# ---------------------------------------------------------------------------- --family, --dtype
def test_family_lists_the_registered_families() -> None:
    from emcli.families import FAMILIES

    assert f"--family [{'|'.join(FAMILIES)}]" in run("fit", "--help").stdout


@needs("family core")
def test_family_gaussian_given_is_the_default(tmp_path) -> None:
    given = run("fit", FAITHFUL, "-k", "2", *FAST, "--family", "gaussian", "--params", "-")
    default = run("fit", FAITHFUL, "-k", "2", *FAST, "--params", "-")
    assert given.exit_code == 0, given.stderr
    assert given.stdout == default.stdout


def test_dtype_float32_fits_in_single_precision() -> None:
    runs = {}
    for dtype in ("float64", "float32"):
        result = run(
            "fit", FAITHFUL, "-k", "2", *FAST, "--tol", "1e-5", "--dtype", dtype, "--params", "-"
        )
        assert result.exit_code == 0, result.stderr
        runs[dtype] = json.loads(result.stdout)
    assert runs["float32"]["settings"]["dtype"] == "float32"
    ll32, ll64 = runs["float32"]["log_likelihood"], runs["float64"]["log_likelihood"]
    assert ll32 != ll64 and abs(ll32 - ll64) < 1e-4 * abs(ll64)


def test_dtype_float32_with_the_stream_engine_is_a_note() -> None:
    result = run(
        "fit",
        FAITHFUL,
        "-k",
        "2",
        *FAST,
        "--engine",
        "stream",
        "--dtype",
        "float32",
        "--params",
        "-",
    )
    assert result.exit_code == 0, result.stderr
    assert "Note: --dtype float32 applies to --engine memory" in result.stderr
    assert json.loads(result.stdout)["settings"]["dtype"] == "float64"

"""Hardening II (issue 20, part A): each input that gave a traceback or a wrong message, the
row outputs' formats and carried columns, logs in pipes, a closed stderr, completion."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from clirun import run

ROOT = Path(__file__).resolve().parent.parent


def one_error(result, code: int) -> str:
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.stderr
    return errors[0]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("hard")
    g = np.random.default_rng(3)
    x = np.concatenate([g.normal(size=(60, 2)), g.normal(6, 1, size=(60, 2))]).tolist()
    lines = ["rowid,a,b,name"] + [f"{i + 1},{u!r},{v!r},n{i}" for i, (u, v) in enumerate(x)]
    (d / "good.csv").write_text("\n".join(lines) + "\n")
    (d / "ab.csv").write_text("a,b\n" + "\n".join(f"{u!r},{v!r}" for u, v in x) + "\n")
    result = run("fit", d / "ab.csv", "-k", "1..2", "-n", "2", "--params", d / "m.json", "-q")
    assert result.exit_code == 0, result.stderr
    return d


def mutated(data: Path, tmp_path: Path, **fields) -> Path:
    model = json.loads((data / "m.json").read_text())
    model.update(fields)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(model))
    return path


# ---------------------------------------------------------------------------- tracebacks
def test_a_huge_k_range_is_checked_against_the_rows_unexpanded(data) -> None:
    line = one_error(run("fit", data / "ab.csv", "-k", "1..1000000000"), 1)
    assert "120 data rows" in line and "at most -k 1..120" in line


@pytest.mark.parametrize("engine", ["memory", "stream"])
def test_a_non_ascii_delimiter_is_one_error_line(data, engine) -> None:
    line = one_error(
        run("fit", data / "ab.csv", "-k", "2", "--delimiter", "é", "--engine", engine), 2
    )
    assert "--delimiter" in line and "ASCII" in line


def test_a_non_ascii_delimiter_on_predict(data) -> None:
    line = one_error(run("predict", data / "m.json", data / "ab.csv", "--delimiter", "é"), 2)
    assert "--delimiter" in line


@pytest.mark.parametrize(
    "fields, what",
    [
        ({"n_samples": 0}, "n_samples"),
        ({"n_samples": -3}, "n_samples"),
        ({"n_iter": "x"}, "n_iter"),
        ({"converged": "yes"}, "converged"),
        ({"history": "abc"}, "history"),
        ({"history": [1, "a"]}, "history[1]"),
        ({"starts": "x"}, "starts"),
        ({"starts": [1, 2]}, "starts[0]"),
        ({"starts": [{"history": "x"}]}, "starts[0].history"),
        ({"selection": {"table": "x"}}, "selection"),
        ({"selection": {"criterion": "bic", "table": [{"components": "x"}]}}, "selection"),
        ({"notes": [1]}, "notes[0]"),
        ({"best_start": -1}, "best_start"),
        ({"settings": {"tol": "x"}}, "settings.tol"),
        ({"log_likelihood": float("nan")}, "log_likelihood"),
        ({"bic": float("inf")}, "bic"),
        ({"collapsed_components": [7]}, "collapsed_components"),
    ],
)
@pytest.mark.parametrize("command", ["describe", "plot"])
def test_malformed_fields_are_refused_at_load(data, tmp_path, fields, what, command) -> None:
    path = mutated(data, tmp_path, **fields)
    args = ["describe", path] if command == "describe" else ["plot", path, "-o", tmp_path / "p.png"]
    line = one_error(run(*args), 1)
    assert what.split("[")[0].split(".")[0] in line and "malformed" in line
    assert not (tmp_path / "p.png").exists()


def test_a_sample_size_that_cannot_fit_is_refused_at_once(data, tmp_path) -> None:
    line = one_error(run("sample", data / "m.json", "-n", "99999999999999999999"), 2)
    assert "-n/--samples" in line
    out = tmp_path / "s.csv"
    line = one_error(run("sample", data / "m.json", "-n", "9" * 18, "--output", out), 1)
    assert "GB free" in line and not out.exists()


def test_subnormal_values_are_not_a_constant_column(tmp_path) -> None:
    g = np.random.default_rng(0)
    x = g.normal(size=(200, 2))
    x[:, 1] *= 1e-310
    path = tmp_path / "sub.csv"
    path.write_text("a,b\n" + "\n".join(f"{u!r},{v!r}" for u, v in x.tolist()) + "\n")
    result = run("fit", path, "-k", "2", "-n", "2", "--params", tmp_path / "m.json")
    assert result.exit_code == 0, result.stderr
    assert "constant" not in result.stderr
    assert "not small next to the variance of column(s) b" in result.stderr


def test_subnormal_spread_with_no_floor_is_an_error_not_a_warning(tmp_path) -> None:
    g = np.random.default_rng(1)
    x = g.normal(size=(300, 3))
    x[:, 0] *= 1e-160
    path = tmp_path / "tiny.csv"
    path.write_text("a,b,c\n" + "\n".join(",".join(map(repr, map(float, r))) for r in x) + "\n")
    for covariance in ("full", "diag", "spherical", "tied"):
        result = run("fit", path, "-k", "2", "--covariance", covariance, "--reg-covar", "0", "-q")
        # the suite runs with warnings as errors: a RuntimeWarning would raise here
        assert result.exit_code in (0, 1), result.output
        assert "Warning" not in result.stderr.replace("Warning: every start", "")


def test_no_raw_python_warning_reaches_the_user(tmp_path) -> None:
    """Outside the test suite's warnings-as-errors, a library warning becomes a Note."""
    code = (
        "import warnings, sys\n"
        "from emcli.cli import app\n"
        "from emcli.cli.app import cli\n"
        "@cli.command('warn')\n"
        "def warn():\n"
        "    warnings.warn('overflow encountered in square', RuntimeWarning)\n"
        "app.main(['warn'])\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert "RuntimeWarning" not in done.stderr and "warnings.warn" not in done.stderr
    assert done.stderr.startswith("Note: overflow encountered in square")


def test_a_floor_out_of_scale_says_so(data) -> None:
    result = run("fit", data / "ab.csv", "-k", "2", "--reg-covar", "1e300", "-n", "2")
    assert result.exit_code == 0, result.stderr
    assert "collapsed" not in result.stderr
    assert "--reg-covar 1e+300 is larger than the variance of every column" in result.stderr


@pytest.mark.parametrize("flag", ["-q", "--quiet", "-v", "--verbose"])
def test_every_command_takes_quiet_and_verbose(data, tmp_path, flag) -> None:
    m, x = data / "m.json", data / "ab.csv"
    for args in (
        ["predict", m, x],
        ["score", m, x],
        ["sample", m, "-n", "3"],
        ["describe", m],
        ["plot", m, "-o", tmp_path / "p.png", "--kind", "convergence"],
        ["fit", x, "-k", "2", "-n", "1"],
    ):
        result = run(*args, flag)
        assert result.exit_code == 0, (args, result.stderr)


# ---------------------------------------------------------------------------- pipelines
def test_columns_used_and_a_row_index_are_named_with_verbose(data) -> None:
    result = run("fit", data / "good.csv", "-k", "2", "-n", "1", "-v")
    assert result.exit_code == 0, result.stderr
    assert "Note: fitting 3 column(s): rowid, a, b" in result.stderr
    assert "column 'rowid' looks like a row index (1..120 in order)" in result.stderr
    quiet = run("fit", data / "good.csv", "-k", "2", "-n", "1", "-c", "a,b", "-v")
    assert "fitting" not in quiet.stderr and "row index" not in quiet.stderr


def test_an_identifier_column_is_flagged(tmp_path) -> None:
    g = np.random.default_rng(4)
    ids = g.permutation(10_000)[:50] + 1000
    x = g.normal(size=50)
    path = tmp_path / "ids.csv"
    path.write_text(
        "id,x\n" + "\n".join(f"{i},{v!r}" for i, v in zip(ids.tolist(), x.tolist(), strict=True))
    )
    result = run("fit", path, "-k", "2", "-n", "1")
    assert "column 'id' holds a different whole number in every row" in result.stderr


def test_logs_are_not_cut_to_80_columns(data) -> None:
    result = run("fit", data / "ab.csv", "-k", "1..2", "--covariance", "all", "-n", "1")
    assert result.exit_code == 0, result.stderr
    assert "covariance" in result.stderr and "covaria…" not in result.stderr
    widest = max(len(line) for line in result.stderr.splitlines())
    assert widest > 80


def test_a_closed_stderr_keeps_the_file_outputs(data, tmp_path) -> None:
    out = tmp_path / "m.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = (
        f"{sys.executable} -m emcli fit {data / 'ab.csv'} -k 1..3 --covariance all -n 2 "
        f"-v --params {out} 2>&1 | head -c 1; exit ${{PIPESTATUS[0]}}"
    )
    done = subprocess.run(["bash", "-c", command], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert json.loads(out.read_text())["format"] == "emcli-gaussian-mixture"


@pytest.mark.parametrize("engine", ["memory", "stream", "dask"])
def test_row_outputs_take_their_format_from_the_extension(data, tmp_path, engine) -> None:
    if engine == "dask":
        pytest.importorskip("distributed")
    paths = {ext: tmp_path / f"labels.{ext}" for ext in ("csv", "tsv", "parquet", "jsonl")}
    want = None
    for ext, path in paths.items():
        result = run(
            "fit",
            data / "ab.csv",
            "-k",
            "2",
            "-n",
            "1",
            "--engine",
            engine,
            "--labels",
            path,
            "--responsibilities",
            tmp_path / f"resp.{ext}",
            "-q",
        )
        assert result.exit_code == 0, result.stderr
        assert path.is_file()  # one file, never a directory
        if ext == "parquet":
            got = pq.read_table(path).column("cluster").to_pylist()
            assert pq.read_table(tmp_path / "resp.parquet").num_columns == 2
        elif ext == "jsonl":
            got = [json.loads(line)["cluster"] for line in path.read_text().splitlines()]
        else:
            sep = "\t" if ext == "tsv" else ","
            lines = path.read_text().splitlines()
            assert lines[0] == "cluster" and (tmp_path / f"resp.{ext}").read_text().startswith(
                f"component_0{sep}component_1"
            )
            got = [int(v) for v in lines[1:]]
        assert len(got) == 120
        want = want or got
        assert got == want


def test_a_json_row_output_is_refused_before_the_work(data, tmp_path) -> None:
    line = one_error(
        run("predict", data / "m.json", data / "ab.csv", "--labels", tmp_path / "l.json"), 1
    )
    assert ".jsonl" in line and not (tmp_path / "l.json").exists()


def test_with_input_and_id_column(data, tmp_path) -> None:
    out = tmp_path / "l.csv"
    result = run(
        "fit",
        data / "good.csv",
        "-k",
        "2",
        "-n",
        "1",
        "-c",
        "a,b",
        "--with-input",
        "--labels",
        out,
        "-q",
    )
    assert result.exit_code == 0, result.stderr
    lines = out.read_text().splitlines()
    source = (data / "good.csv").read_text().splitlines()
    assert lines[0] == "rowid,a,b,name,cluster"
    assert [line.rsplit(",", 1)[0] for line in lines[1:]] == source[1:]  # cells as in the file
    pred = run(
        "predict",
        data / "m.json",
        data / "good.csv",
        "--id-column",
        "name",
        "--responsibilities",
        tmp_path / "r.parquet",
    )
    assert pred.exit_code == 0, pred.stderr
    table = pq.read_table(tmp_path / "r.parquet")
    assert table.column_names[0] == "name" and table.column("name")[5].as_py() == "n5"
    score = run("score", data / "m.json", data / "good.csv", "--id-column", "name", "--lowest", "3")
    rows = [r.split(",") for r in score.stdout.splitlines()[1:]]
    assert score.stdout.startswith("name,row,log_likelihood")
    assert all(name == f"n{row}" for name, row, _ in rows) and len(rows) == 3


def test_an_unknown_id_column_and_stdin_are_refused(data, tmp_path) -> None:
    line = one_error(run("predict", data / "m.json", data / "good.csv", "--id-column", "nope"), 1)
    assert "--id-column 'nope'" in line
    text = (data / "good.csv").read_text()
    line = one_error(run("predict", data / "m.json", "-", "--with-input", stdin=text), 2)
    assert "standard input" in line


def test_completion_offers_files_and_values(data, monkeypatch) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "_EMCLI_COMPLETE": "bash_source"}
    source = subprocess.run(
        [sys.executable, "-m", "emcli"], capture_output=True, text=True, env=env
    )
    assert "-o default" in source.stdout  # bash's own file-name completion stays

    def complete(words: str) -> list[str]:
        env2 = {
            **env,
            "_EMCLI_COMPLETE": "bash_complete",
            "COMP_WORDS": words,
            "COMP_CWORD": str(len(words.split()) - (0 if words.endswith(" ") else 1)),
        }
        done = subprocess.run(
            [sys.executable, "-m", "emcli"], capture_output=True, text=True, env=env2
        )
        return done.stdout.split()

    assert complete("emcli fit sam") == ["file,sam"]
    assert complete("emcli predict ") == ["file,"]
    assert "plain,diag" in complete("emcli fit x.csv --covariance di")
    assert "plain,full,tied" in complete("emcli fit x.csv --covariance full,ti")
    assert "plain,gaussian" in complete("emcli fit x.csv --family ")

"""``emcli fit`` end to end: exit codes, stdout and stderr asserted separately."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import signal
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from clirun import run
from conftest import ROOT, planted_mixture, write_csv

FAST = ["-n", "2"]  # two starts are plenty on well-separated blobs; keeps the suite quick


def read_csv_text(text: str) -> tuple[list[str], list[list[str]]]:
    rows = list(csv.reader(io.StringIO(text)))
    return rows[0], rows[1:]


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("Error:")]


def n_rows(path: Path) -> int:
    return len(path.read_text().splitlines()) - 1


# ---------------------------------------------------------------------------- outputs
def test_labels_to_stdout_is_header_and_one_label_per_row(blobs_csv) -> None:
    result = run("fit", blobs_csv, "-k", "3", "--labels", "-", *FAST)
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "cluster"
    assert len(lines) == 1 + n_rows(blobs_csv)
    assert {int(v) for v in lines[1:]} == {0, 1, 2}
    assert result.stderr == ""  # not a terminal, outputs requested: nothing to say


def test_labels_recover_the_planted_clusters(tmp_path) -> None:
    planted = planted_mixture("full", k=3, d=2, n=300, seed=11)
    path = write_csv(tmp_path / "p.csv", planted.x)
    result = run("fit", path, "-k", "3", "--labels", "-", *FAST)
    labels = np.array([int(v) for v in result.stdout.splitlines()[1:]])
    # the same partition up to renaming: each planted group maps to exactly one label
    pairs = set(zip(planted.labels.tolist(), labels.tolist(), strict=True))
    assert len(pairs) == 3 and len({a for a, _ in pairs}) == 3 and len({b for _, b in pairs}) == 3


def test_responsibilities_rows_sum_to_one(blobs_csv) -> None:
    result = run("fit", blobs_csv, "-k", "3", "--responsibilities", "-", *FAST)
    assert result.exit_code == 0, result.stderr
    header, rows = read_csv_text(result.stdout)
    assert header == ["component_0", "component_1", "component_2"]
    values = np.array(rows, dtype=float)
    assert values.shape == (n_rows(blobs_csv), 3)
    assert np.all(values >= 0) and np.all(values <= 1)
    np.testing.assert_allclose(values.sum(axis=1), 1.0, atol=1e-9)


def test_params_json_has_the_documented_keys(blobs_csv) -> None:
    result = run("fit", blobs_csv, "-k", "3", "--covariance", "diag", "--params", "-", *FAST)
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    for key in (
        "covariance_type",
        "columns",
        "weights",
        "means",
        "covariances",
        "log_likelihood",
        "n_samples",
        "n_iter",
        "converged",
        "bic",
        "aic",
        "settings",
        "starts",
    ):
        assert key in data, key
    assert data["covariance_type"] == "diag"
    assert data["columns"] == ["a", "b"]
    assert data["n_samples"] == n_rows(blobs_csv)
    assert len(data["weights"]) == 3 and math.isclose(sum(data["weights"]), 1.0)
    assert np.array(data["means"]).shape == (3, 2)
    covs = np.array(data["covariances"])
    assert covs.shape == (3, 2)  # schema 2: diag stores k x d variances (its parameters)
    assert np.all(covs > 0)
    assert isinstance(data["converged"], bool) and data["converged"]
    p = 3 * 2 + 3 * 2 + 2  # diag: k*d variances, k*d means, k-1 weights
    n, ll = data["n_samples"], data["log_likelihood"]
    assert data["bic"] == pytest.approx(-2 * ll + p * math.log(n), rel=1e-12)
    assert data["aic"] == pytest.approx(-2 * ll + 2 * p, rel=1e-12)
    assert data["settings"]["n_restarts"] == 2 and data["settings"]["n_components"] == 3
    assert len(data["starts"]) == 2
    for start in data["starts"]:
        assert {"start", "n_iter", "log_likelihood"} <= set(start)
    assert max(s["log_likelihood"] for s in data["starts"]) == data["log_likelihood"]


def test_output_dir_writes_three_files_matching_single_outputs(blobs_csv, tmp_path) -> None:
    out = tmp_path / "results"
    result = run("fit", blobs_csv, "-k", "3", "-o", out, *FAST)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    assert sorted(p.name for p in out.iterdir()) == [
        "labels.csv",
        "params.json",
        "responsibilities.csv",
    ]
    labels = run("fit", blobs_csv, "-k", "3", "--labels", "-", *FAST).stdout
    assert (out / "labels.csv").read_text() == labels
    params = run("fit", blobs_csv, "-k", "3", "--params", "-", *FAST).stdout
    assert (out / "params.json").read_text() == params


def test_same_seed_gives_byte_identical_outputs(tmp_path) -> None:
    x = planted_mixture("full", k=3, d=2, n=200, seed=4, separation=2.0).x
    path = write_csv(tmp_path / "x.csv", x)
    for name in ("one", "two"):
        result = run("fit", path, "-k", "3", "--seed", "7", "-o", tmp_path / name, *FAST)
        assert result.exit_code == 0, result.stderr
    for f in ("labels.csv", "responsibilities.csv", "params.json"):
        assert (tmp_path / "one" / f).read_bytes() == (tmp_path / "two" / f).read_bytes()


def test_stdin_dash_reads_csv(blobs_csv) -> None:
    from_file = run("fit", blobs_csv, "-k", "3", "--labels", "-", *FAST)
    from_stdin = run("fit", "-", "-k", "3", "--labels", "-", *FAST, stdin=blobs_csv.read_text())
    assert from_stdin.exit_code == 0, from_stdin.stderr
    assert from_stdin.stdout == from_file.stdout


def test_shell_pipeline(blobs_csv) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = (
        f"cat {blobs_csv} | {sys.executable} -m emcli fit - -k 3 -n 2 --labels - | sort | uniq -c"
    )
    done = subprocess.run(
        command,
        shell=True,
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
        check=True,
    )
    counts = {}
    for line in done.stdout.splitlines():
        count, value = line.split()
        counts[value] = int(count)
    assert counts.pop("cluster") == 1
    planted = planted_mixture("full", k=3, d=2, n=300, seed=11)  # what blobs_csv holds
    assert sorted(counts) == ["0", "1", "2"]
    assert sorted(counts.values()) == sorted(Counter(planted.labels.tolist()).values())
    assert done.stderr == ""


def test_reader_closing_the_pipe_early_is_quiet_exit_141(tmp_path) -> None:
    # `emcli fit ... --responsibilities - | head -1`: far more output than a pipe buffers.
    x = np.random.default_rng(0).normal(size=(20000, 2))
    path = write_csv(tmp_path / "big.csv", x)
    args = [
        "fit",
        str(path),
        "-k",
        "2",
        "-n",
        "1",
        "--tol",
        "0",
        "--max-iter",
        "2",
        "--responsibilities",
        "-",
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "emcli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
        env=env,
    )
    assert proc.stdout.readline() == b"component_0,component_1\n"
    proc.stdout.close()
    stderr = proc.stderr.read()
    proc.stderr.close()
    assert proc.wait(timeout=60) == 141
    assert stderr == b""


@pytest.mark.parametrize(
    ("signum", "status", "message"),
    [
        (signal.SIGINT, 130, "Error: interrupted"),
        (signal.SIGTERM, 143, "Error: terminated"),
    ],
)
def test_signal_during_fit_exits_cleanly_and_writes_nothing(
    tmp_path, signum, status, message
) -> None:
    path = write_csv(tmp_path / "x.csv", np.random.default_rng(0).normal(size=(2000, 2)))
    out = tmp_path / "out"
    args = [
        "fit",
        str(path),
        "-k",
        "4",
        "--tol",
        "0",
        "--max-iter",
        "1000000",
        "-v",
        "-o",
        str(out),
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "emcli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
        env=env,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    watchdog = threading.Timer(60, proc.kill)  # never let a stuck run eat the machine
    watchdog.start()
    try:
        for line in proc.stderr:  # -v: one line per iteration; wait until EM runs
            if " iter 3 " in line:
                break
        proc.send_signal(signum)
        rest = proc.stderr.read()
        assert proc.wait(timeout=60) == status
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    assert rest.rstrip().splitlines()[-1] == message
    assert "Traceback" not in rest
    assert not out.exists()


def _run_with_terminal_stderr(args: list[str]) -> tuple[int, bytes, bytes]:
    """Run emcli with stdout a pipe and stderr a pseudo-terminal: (status, stdout, stderr)."""
    import pty

    master, slave = pty.openpty()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "100", "TERM": "xterm"}
    chunks: list[bytes] = []

    def drain() -> None:  # read the terminal while the child runs, so it never blocks
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child has gone and the terminal is closed
                return
            if not chunk:
                return
            chunks.append(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    proc = subprocess.Popen(
        [sys.executable, "-m", "emcli", *args],
        stdout=subprocess.PIPE,
        stderr=slave,
        cwd=ROOT,
        env=env,
    )
    os.close(slave)
    reader.start()
    out = proc.stdout.read()
    proc.stdout.close()
    status = proc.wait(timeout=60)
    reader.join(timeout=10)
    os.close(master)
    return status, out, b"".join(chunks)


def test_live_display_at_a_terminal_never_reaches_stdout(blobs_csv) -> None:
    args = ["fit", str(blobs_csv), "-k", "3", "-n", "2", "--labels", "-"]
    plain = subprocess.run(
        [sys.executable, "-m", "emcli", *args],
        capture_output=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=60,
    )
    status, out, err = _run_with_terminal_stderr(args)
    assert status == 0
    assert out == plain.stdout  # the data, byte for byte, and nothing else
    assert b"log-lik" in err and b"3 component(s)" in err  # live display, then the summary
    assert b"\x1b[" in err  # a terminal gets rich's codes
    quiet_status, quiet_out, quiet_err = _run_with_terminal_stderr([*args, "-q"])
    assert (quiet_status, quiet_out, quiet_err) == (0, plain.stdout, b"")


def test_no_output_option_prints_a_summary_on_stderr(blobs_csv) -> None:
    result = run("fit", blobs_csv, "-k", "3", *FAST)
    assert result.exit_code == 0
    assert result.stdout == ""
    assert "3 component(s)" in result.stderr and "log-likelihood" in result.stderr
    assert "\x1b[" not in result.stderr  # no ANSI codes when stderr is not a terminal


def test_quiet_silences_notes_and_summary(iris_csv) -> None:
    loud = run("fit", iris_csv, "-k", "3", *FAST)
    assert loud.exit_code == 0
    assert "Note: skipped non-numeric column(s): species" in loud.stderr
    quiet = run("fit", iris_csv, "-k", "3", "-q", *FAST)
    assert quiet.exit_code == 0 and quiet.stderr == "" and quiet.stdout == ""


def test_tol_zero_runs_exactly_max_iter(blobs_csv) -> None:
    result = run(
        "fit", blobs_csv, "-k", "3", "--tol", "0", "--max-iter", "5", "--params", "-", *FAST
    )
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["n_iter"] == 5 and data["converged"] is False
    assert all(s["n_iter"] == 5 for s in data["starts"])
    assert "Warning" not in result.stderr  # --tol 0 asks for exactly this


def test_non_convergence_is_a_warning_not_a_failure(tmp_path) -> None:
    x = planted_mixture("full", k=3, d=2, n=200, seed=4, separation=1.5).x
    path = write_csv(tmp_path / "x.csv", x)
    result = run("fit", path, "-k", "3", "--max-iter", "1", "--labels", "-", *FAST)
    assert result.exit_code == 0
    assert [ln for ln in result.stderr.splitlines() if ln.startswith("Warning:")] == [
        "Warning: EM did not converge within --max-iter 1 iterations (tolerance 1e-08); "
        "increase --max-iter or --tol"
    ]
    assert result.stdout.splitlines()[0] == "cluster"


def test_verbose_prints_iteration_lines_on_stderr_only(blobs_csv) -> None:
    result = run("fit", blobs_csv, "-k", "3", "-v", "--labels", "-", "-n", "1")
    assert result.exit_code == 0
    assert "iter 0" in result.stderr and "log-likelihood" in result.stderr
    assert result.stdout.splitlines()[0] == "cluster"
    assert all(v.isdigit() for v in result.stdout.splitlines()[1:])


def test_k_equal_to_rows_is_degenerate_not_nan(tmp_path) -> None:
    path = write_csv(tmp_path / "few.csv", np.random.default_rng(0).normal(size=(6, 2)))
    out = tmp_path / "out"
    result = run("fit", path, "-k", "6", "-o", out, *FAST)
    assert result.exit_code == 0, result.stderr
    assert "Warning:" in result.stderr and "collapsed" in result.stderr
    data = json.loads((out / "params.json").read_text())
    assert data["degenerate"] is True and data["collapsed_components"]
    for f in ("labels.csv", "responsibilities.csv", "params.json"):
        text = (out / f).read_text().lower()
        assert "nan" not in text and "inf" not in text
    assert result.stdout == ""


def test_constant_column_gives_a_note_and_fits(tmp_path) -> None:
    planted = planted_mixture("full", k=2, d=1, n=200, seed=3)
    x = np.column_stack([planted.x, np.full(200, 4.0)])
    path = write_csv(tmp_path / "c.csv", x, ["v", "flat"])
    result = run("fit", path, "-k", "2", "--params", "-", *FAST)
    assert result.exit_code == 0
    assert any(
        ln.startswith("Note:") and "flat" in ln and "constant" in ln
        for ln in result.stderr.splitlines()
    )
    data = json.loads(result.stdout)
    assert data["degenerate"] is False
    np.testing.assert_allclose(np.array(data["means"])[:, 1], 4.0)


@pytest.mark.parametrize("fmt", ["tsv", "parquet"])
def test_other_input_formats_give_the_same_fit(blobs_csv, tmp_path, fmt) -> None:
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    table = pcsv.read_csv(blobs_csv)
    path = tmp_path / f"blobs.{fmt}"
    if fmt == "parquet":
        pq.write_table(table, path)
    else:
        pcsv.write_csv(table, path, pcsv.WriteOptions(delimiter="\t"))
    want = run("fit", blobs_csv, "-k", "3", "--labels", "-", *FAST).stdout
    got = run("fit", path, "-k", "3", "--labels", "-", *FAST)
    assert got.exit_code == 0, got.stderr
    assert got.stdout == want


def test_format_option_overrides_the_extension(blobs_csv, tmp_path) -> None:
    path = tmp_path / "blobs.dat"
    path.write_text(blobs_csv.read_text())
    bad = run("fit", path, "-k", "3")
    assert bad.exit_code == 1 and "--format" in error_lines(bad.stderr)[0]
    good = run("fit", path, "--format", "csv", "-k", "3", "--labels", "-", *FAST)
    assert good.exit_code == 0 and good.stdout.startswith("cluster\n")


# ---------------------------------------------------------------------------- errors
TEXT_CSV = "a,b,name\n1,2,x\n3,4,y\n5,7,z\n"
ERROR_CASES = {
    # id: (file content or None for a missing file, extra args, exit code, message part)
    "missing file": (None, ["-k", "2"], 1, "does not exist"),
    "empty file": ("", ["-k", "2"], 1, "empty"),
    "header only": ("a,b\n", ["-k", "1"], 1, "no data rows"),
    "unknown column": (TEXT_CSV, ["-k", "2", "-c", "a,zz"], 1, "'zz'"),
    "non-numeric column": (TEXT_CSV, ["-k", "2", "-c", "a,name"], 1, "not numeric"),
    "no numeric column": ("name\nx\ny\n", ["-k", "1"], 1, "no numeric column"),
    "inf": ("a,b\n1,2\n3,inf\n5,6\n", ["-k", "2"], 1, "infinite"),
    "huge value": ("a,b\n1,2\n3,1e160\n5,6\n", ["-k", "2"], 1, "too large"),
    # the library names the parameter (n_components); the CLI's table of flags will show -k
    "k > rows": (TEXT_CSV, ["-k", "4"], 1, re.compile(r"at most (-k|n_components) 3")),
    "k zero": (TEXT_CSV, ["-k", "0"], 2, "at least 1"),
    "k text": (TEXT_CSV, ["-k", "three"], 2, "not a number of components"),
    "bad covariance": (TEXT_CSV, ["-k", "2", "--covariance", "ful"], 2, "covariance"),
    "bad init": (TEXT_CSV, ["-k", "2", "--init", "best"], 2, "--init"),
    "negative tol": (TEXT_CSV, ["-k", "2", "--tol", "-1"], 2, "--tol"),
    "negative reg": (TEXT_CSV, ["-k", "2", "--reg-covar", "-1e-3"], 2, "--reg-covar"),
    "zero restarts": (TEXT_CSV, ["-k", "2", "-n", "0"], 2, "--restarts"),
    "negative max-iter": (TEXT_CSV, ["-k", "2", "--max-iter", "-2"], 2, "--max-iter"),
    "bad criterion": (TEXT_CSV, ["-k", "2", "--criterion", "bic2"], 2, "--criterion"),
    "two stdout outputs": (
        TEXT_CSV,
        ["-k", "2", "--labels", "-", "--params", "-"],
        1,
        "standard output",
    ),
    # no -k: mclust's default grid 1..9, more components than these 3 rows (status 1)
    "no -k": (TEXT_CSV, [], 1, "at most -k 1..3"),
    "ragged rows": ("a,b\n1,2\n3\n", ["-k", "1"], 1, "cannot parse"),
    "empty cell, --missing error": (
        "a,b\n1,2\n,4\n5,6\n",
        ["-k", "1", "--missing", "error"],
        1,
        "missing value",
    ),
    "duplicate columns": ("a,a\n1,2\n3,4\n", ["-k", "1"], 1, "duplicate column"),
}


@pytest.mark.parametrize("case", list(ERROR_CASES), ids=list(ERROR_CASES))
def test_errors_are_one_line_no_traceback_no_output(tmp_path, case) -> None:
    content, args, code, part = ERROR_CASES[case]
    data = tmp_path / "data.csv"
    if content is not None:
        data.write_text(content)
    before = sorted(p.name for p in tmp_path.iterdir())
    result = run("fit", data, *args, "-o", tmp_path / "out")
    assert result.exit_code == code
    errors = error_lines(result.stderr)
    assert len(errors) == 1, result.stderr
    assert part.search(errors[0]) if isinstance(part, re.Pattern) else part in errors[0]
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no output created


def test_empty_stdin_is_an_error() -> None:
    result = run("fit", "-", "-k", "2", "--labels", "-", stdin="")
    assert result.exit_code == 1
    assert error_lines(result.stderr) == [
        "Error: standard input is empty; give a CSV file with a header row and data rows"
    ]
    assert result.stdout == ""


def test_failed_run_leaves_an_existing_output_untouched(tmp_path) -> None:
    data = tmp_path / "data.csv"
    data.write_text(TEXT_CSV)
    labels = tmp_path / "labels.csv"
    labels.write_text("old\n")
    result = run("fit", data, "-k", "9", "--labels", labels)
    assert result.exit_code == 1
    assert labels.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temps


def test_output_into_a_missing_directory_fails_before_fitting(blobs_csv, tmp_path) -> None:
    result = run("fit", blobs_csv, "-k", "3", "--labels", tmp_path / "no" / "l.csv")
    assert result.exit_code == 1
    assert len(error_lines(result.stderr)) == 1 and "does not exist" in result.stderr

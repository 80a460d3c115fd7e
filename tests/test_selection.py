"""Model selection over k x covariance type: parsing, criteria against scikit-learn and
closed forms, the degenerate-candidate guard, the CLI table, and mclust on Old Faithful."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re

import numpy as np
import pytest
from clirun import run
from conftest import (
    COVARIANCE_TYPES,
    integer_column_data,
    planted_mixture,
    sklearn_at,
    write_csv,
)
from scipy.special import xlogy

from emcli.em.selection import parse_components, select
from emcli.errors import FitError
from emcli.families.gaussian.models import MCLUST_MODELS, parse_covariances

TABLE_COLUMNS = [
    "components",
    "covariance",
    "log_likelihood",
    "n_parameters",
    "bic",
    "aic",
    "icl",
    "converged",
    "n_iter",
]
QUICK = {"n_restarts": 2, "tol": 1e-6}  # enough on separated clusters; keeps tests fast


def read_table_csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


# ---------------------------------------------------------------------------- parsing
@pytest.mark.parametrize(
    ("spec", "want"),
    [
        ("3", [3]),
        ("1..9", list(range(1, 10))),
        ("2,3,5", [2, 3, 5]),
        (" 4 ", [4]),
        ("2, 3", [2, 3]),
        ("3,3,2", [3, 2]),
        ("5..5", [5]),
    ],
)
def test_parse_components(spec, want) -> None:
    assert list(parse_components(spec)) == want


@pytest.mark.parametrize("spec", ["0", "0..3", "3..1", "a", "", "2..x", "-1", "1..", "2,,3", "1.5"])
def test_parse_components_rejects(spec) -> None:
    with pytest.raises(ValueError):
        parse_components(spec)


@pytest.mark.parametrize(
    ("spec", "want"),
    [
        ("full", ["full"]),
        ("diag,full", ["diag", "full"]),
        ("all", ["all"]),
        ("ALL", ["all"]),
        ("Tied", ["tied"]),
        ("vev,EEE,full", ["VEV", "EEE", "full"]),
        ("spherical, diag", ["spherical", "diag"]),
    ],
)
def test_parse_covariances(spec, want) -> None:
    assert parse_covariances(spec) == want


@pytest.mark.parametrize("spec", ["", "fulll", "all,full", "diag,banana", ","])
def test_parse_covariances_rejects(spec) -> None:
    with pytest.raises(ValueError):
        parse_covariances(spec)


@pytest.mark.parametrize(
    "args",
    [
        ["-k", "0..3"],
        ["-k", "4..2"],
        ["-k", "1,x"],
        ["-k", "2", "--covariance", "all,full"],
        ["-k", "1..3", "--covariance", "box"],
        ["-k", "1..3", "--criterion", "bicc"],
        ["-k", "2", "--selection", "-"],
        ["-k", "1..3", "--jobs", "0"],
    ],
    ids=lambda a: " ".join(a),
)
def test_bad_specs_are_usage_errors(blobs_csv, args) -> None:
    result = run("fit", blobs_csv, *args)
    assert result.exit_code == 2
    assert len([ln for ln in result.stderr.splitlines() if ln.startswith("Error:")]) == 1
    assert "Traceback" not in result.stderr and result.stdout == ""


# ---------------------------------------------------------------------------- known structure
def _rotated(angle: float, variances: tuple[float, float]) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    r = np.array([[c, -s], [s, c]])
    return r @ np.diag(variances) @ r.T


def structured_covariances(kind: str, k: int, rng: np.random.Generator) -> np.ndarray:
    """Covariances that only ``kind`` describes without waste: elongated (sd ratio ~4.5) and
    differently oriented (full), one shared tilted shape (tied), axis-aligned but different
    per component (diag), round of different sizes (spherical)."""
    if kind == "full":
        return np.stack(
            [_rotated(0.5 + j * np.pi / k + rng.uniform(0, 0.3), (1.0, 0.05)) for j in range(k)]
        )
    if kind == "tied":
        return np.repeat(_rotated(rng.uniform(0.3, 1.2), (1.0, 0.05))[None], k, axis=0)
    if kind == "diag":
        return np.stack([np.diag((1.0, 0.05) if j % 2 else (0.05, 1.0)) for j in range(k)])
    return np.stack([np.eye(2) * v for v in np.linspace(0.1, 1.0, k)])


@pytest.mark.parametrize("kind", COVARIANCE_TYPES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_right_k_and_covariance_type_are_chosen(kind: str, seed: int) -> None:
    k = 2 + seed % 2
    covs = structured_covariances(kind, k, np.random.default_rng(seed))
    planted = planted_mixture(
        kind, k=k, d=2, n=300, seed=100 + seed, separation=6.0, covariances=covs
    )
    winner, candidates = select(
        planted.x, ["a", "b"], [1, 2, 3, 4], list(COVARIANCE_TYPES), jobs=1, **QUICK
    )
    assert len(candidates) == 16
    assert (winner.n_components, winner.covariance_type) == (k, kind)
    assert winner.criterion("bic") == min(
        c.criterion("bic") for c in candidates if c.criterion("bic") is not None
    )


# ---------------------------------------------------------------------------- criteria
@pytest.fixture(scope="module")
def small_grid():
    planted = planted_mixture("full", k=3, d=2, n=240, seed=5, separation=3.0)
    winner, candidates = select(
        planted.x, ["a", "b"], [1, 2, 3], list(COVARIANCE_TYPES), jobs=1, **QUICK
    )
    return planted.x, winner, candidates


def test_criteria_equal_sklearn_at_the_same_parameters(small_grid) -> None:
    x, _, candidates = small_grid
    for c in candidates:
        gm = sklearn_at(c.model)
        assert c.model.n_parameters == gm._n_parameters()
        assert c.criterion("bic") == pytest.approx(gm.bic(x), rel=1e-10)
        assert c.criterion("aic") == pytest.approx(gm.aic(x), rel=1e-10)
        assert c.row()["log_likelihood"] == pytest.approx(gm.score(x) * len(x), rel=1e-10)


def test_icl_is_bic_plus_twice_the_entropy(small_grid) -> None:
    x, _, candidates = small_grid
    for c in candidates:
        resp = sklearn_at(c.model).predict_proba(x)
        entropy = -float(xlogy(resp, resp).sum())
        assert c.criterion("icl") == pytest.approx(
            c.criterion("bic") + 2 * entropy, rel=1e-9, abs=1e-9
        )
        if c.n_components == 1:
            assert c.criterion("icl") == c.criterion("bic")
        else:
            assert c.criterion("icl") >= c.criterion("bic")


@pytest.mark.parametrize("criterion", ["bic", "aic", "icl"])
def test_winner_minimises_the_chosen_criterion(small_grid, criterion) -> None:
    x, _, candidates = small_grid
    # re-rank the fitted candidates without refitting: select() picks the minimum
    values = {(c.n_components, c.covariance_type): c.criterion(criterion) for c in candidates}
    best = min(values, key=values.get)
    winner, again = select(
        x, ["a", "b"], [best[0]], [best[1]], criterion=criterion, jobs=1, **QUICK
    )
    assert (winner.n_components, winner.covariance_type) == best
    assert winner.criterion(criterion) == pytest.approx(values[best], rel=1e-12)


# ---------------------------------------------------------------------------- degenerate guard
def test_degenerate_candidates_get_no_criterion_and_never_win() -> None:
    x = integer_column_data(seed=0, step=4.0)  # two clusters; column b in steps of 4
    winner, candidates = select(
        x,
        ["a", "b"],
        [1, 2, 3, 4, 5, 6],
        ["full"],
        jobs=1,
        n_restarts=3,
        tol=1e-6,
        init="kmeans",  # k-means starts fall onto the spikes (the hc start avoids them)
    )
    degenerate = [c for c in candidates if c.degenerate]
    assert degenerate, "the data must make some candidate collapse in every start"
    for c in degenerate:
        row = c.row()
        assert row["status"] == "degenerate"
        assert row["bic"] is None and row["aic"] is None and row["icl"] is None
        assert row["log_likelihood"] is None and "collapsed" in row["reason"]
    assert not winner.degenerate and winner.n_components == 2
    # The guard matters: unguarded, a collapsed spike would win by a wide margin.
    spike = min(degenerate, key=lambda c: c.model.bic)
    assert spike.model.bic < winner.criterion("bic") - 100
    assert spike.n_components > winner.n_components


def test_failed_and_degenerate_rows_in_the_table(tmp_path) -> None:
    x = np.random.default_rng(3).normal(size=(5, 2))
    path = write_csv(tmp_path / "five.csv", x)
    result = run(
        "fit",
        path,
        "-k",
        "1,2,3,4,5,6,7",  # a list: each value is a candidate (a range past the rows is refused)
        "--covariance",
        "spherical",
        "-n",
        "2",
        "--selection",
        "-",
        "--jobs",
        "1",
    )
    assert result.exit_code == 0, result.stderr
    rows = {int(r["components"]): r for r in read_table_csv(result.stdout)}
    assert sorted(rows) == list(range(1, 8))
    for k in (6, 7):  # more components than rows: a reason, no numbers
        # the library names the parameter (the CLI's table of flags may render it "-k")
        assert re.search(r"at most (-k|n_components) 5", rows[k]["reason"])
        assert all(
            rows[k][col] == ""
            for col in (
                "log_likelihood",
                "bic",
                "aic",
                "icl",
                "n_parameters",
                "converged",
                "n_iter",
            )
        )
    assert rows[5]["status"] == "degenerate" and rows[5]["bic"] == ""
    assert rows[1]["status"] == "ok" and float(rows[1]["bic"]) > 0


def test_every_candidate_degenerate_is_an_error(tmp_path) -> None:
    path = write_csv(tmp_path / "four.csv", np.random.default_rng(2).normal(size=(4, 2)))
    result = run(
        "fit", path, "-k", "4", "--covariance", "full,diag", "-n", "1", "-o", tmp_path / "out"
    )
    assert result.exit_code == 1
    errors = [ln for ln in result.stderr.splitlines() if ln.startswith("Error:")]
    assert len(errors) == 1 and "none of the 2 candidates" in errors[0]
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------------------- CLI
def test_selection_table_columns_and_winner_record(blobs_csv, tmp_path) -> None:
    out = tmp_path / "out"
    result = run(
        "fit",
        blobs_csv,
        "-k",
        "1..4",
        "--covariance",
        "full,spherical",
        "-n",
        "2",
        "--selection",
        "-",
        "-o",
        out,
        "--jobs",
        "1",
    )
    assert result.exit_code == 0, result.stderr
    rows = read_table_csv(result.stdout)
    assert set(TABLE_COLUMNS) <= set(rows[0])
    assert [(int(r["components"]), r["covariance"]) for r in rows] == [
        (k, t) for t in ("full", "spherical") for k in (1, 2, 3, 4)
    ]
    for r in rows:
        ll, p, bic = float(r["log_likelihood"]), int(r["n_parameters"]), float(r["bic"])
        assert bic == pytest.approx(-2 * ll + p * math.log(300), rel=1e-12)
        assert float(r["aic"]) == pytest.approx(-2 * ll + 2 * p, rel=1e-12)
        assert r["converged"] in ("true", "false") and int(r["n_iter"]) >= 1
    params = json.loads((out / "params.json").read_text())
    sel = params["selection"]
    assert sel["criterion"] == "bic"
    best = min(rows, key=lambda r: float(r["bic"]))
    assert sel["winner"] == {
        "components": int(best["components"]),
        "covariance": best["covariance"],
    }
    assert params["n_components"] == sel["winner"]["components"] == 3
    assert len(sel["table"]) == 8
    bics = sorted(float(r["bic"]) for r in rows)
    assert sel["runner_up_margin"] == pytest.approx(bics[1] - bics[0], rel=1e-9)


def test_winner_is_written_exactly_as_fit_writes_it(blobs_csv, tmp_path) -> None:
    sel = run(
        "fit",
        blobs_csv,
        "-k",
        "2..4",
        "--covariance",
        "full,diag",
        "-n",
        "2",
        "-o",
        tmp_path / "sel",
        "--jobs",
        "1",
    )
    assert sel.exit_code == 0, sel.stderr
    winner = json.loads((tmp_path / "sel" / "params.json").read_text())
    k, kind = winner["n_components"], winner["covariance_type"]
    one = run(
        "fit", blobs_csv, "-k", str(k), "--covariance", kind, "-n", "2", "-o", tmp_path / "one"
    )
    assert one.exit_code == 0
    for f in ("labels.csv", "responsibilities.csv"):
        assert (tmp_path / "sel" / f).read_bytes() == (tmp_path / "one" / f).read_bytes()
    plain = json.loads((tmp_path / "one" / "params.json").read_text())
    winner.pop("selection")
    # a selection's candidates record that they run their restarts in two phases (with
    # -n 2 there is no second phase, so the fit is the same)
    assert winner["settings"].pop("explore") is True
    assert winner == plain


def test_jobs_do_not_change_the_table(tmp_path) -> None:
    x = planted_mixture("diag", k=3, d=2, n=150, seed=9, separation=3.0).x
    path = write_csv(tmp_path / "x.csv", x)
    args = [
        "fit",
        path,
        "-k",
        "1..3",
        "--covariance",
        "diag,tied",
        "-n",
        "2",
        "--selection",
        "-",
        "-q",
    ]
    serial = run(*args, "--jobs", "1", "-o", tmp_path / "one")
    parallel = run(*args, "--jobs", "2", "-o", tmp_path / "two")
    assert serial.exit_code == parallel.exit_code == 0
    assert serial.stdout == parallel.stdout
    assert len(read_table_csv(serial.stdout)) == 6
    for f in ("labels.csv", "responsibilities.csv", "params.json"):
        assert (tmp_path / "one" / f).read_bytes() == (tmp_path / "two" / f).read_bytes()


def test_selection_display_goes_to_stderr(blobs_csv) -> None:
    result = run("fit", blobs_csv, "-k", "2..3", "-n", "1", "--labels", "-", "--jobs", "1")
    assert result.exit_code == 0
    assert "winner: k=3" in result.stderr and "runner-up" in result.stderr
    assert result.stdout.splitlines()[0] == "cluster"
    assert all(v.isdigit() for v in result.stdout.splitlines()[1:])


# ---------------------------------------------------------------------------- mclust
def test_old_faithful_matches_mclust(faithful_csv, tmp_path) -> None:
    """mclust (Scrucca et al. 2016, R's faithful data; the mclust vignette): over its 14
    models and k = 1..9 the best is EEE with 3 components, log-likelihood -1126.33, BIC
    -2314.32 in mclust's sign (2 logL - p ln n)."""
    result = run(
        "fit",
        faithful_csv,
        "-k",
        "1..9",
        "--covariance",
        "all",
        "--jobs",
        "2",
        "--selection",
        "-",
        "--params",
        tmp_path / "model.json",
        "-q",
    )
    assert result.exit_code == 0, result.stderr
    rows = read_table_csv(result.stdout)
    assert len(rows) == 126
    assert {r["model_name"] for r in rows} == set(MCLUST_MODELS)
    ranked = sorted(
        (float(r["bic"]), int(r["components"]), r["covariance"]) for r in rows if r["bic"]
    )
    assert ranked[0][1:] == (3, "EEE")
    model = json.loads((tmp_path / "model.json").read_text())
    assert (model["n_components"], model["covariance_type"], model["n_samples"]) == (3, "EEE", 272)
    assert model["model_name"] == "EEE"
    assert model["log_likelihood"] == pytest.approx(-1126.33, abs=0.05)
    assert model["bic"] == pytest.approx(2314.32, abs=0.1)
    assert model["n_parameters"] == 11


# ---------------------------------------------------------------------------- screening
def test_screening_refits_the_contenders_with_every_restart(monkeypatch) -> None:
    """With 10 restarts a selection screens every candidate on its hc start alone (with
    SQUAREM, as mclust fits every cell from its hc start), then fits the best candidates
    again with all 10: the winner has had every restart, a candidate far behind only the
    screening start, and the winner is the planted model."""
    import emcli.em.selection as selection

    planted = planted_mixture("full", k=3, d=2, n=300, seed=4)

    def selected():
        grid = (range(1, 6), ["full", "diag", "spherical"])
        return select(planted.x, ["a", "b"], *grid, jobs=1, n_restarts=10, tol=1e-8)

    winner, cands = selected()
    assert winner is not None and winner.n_components == 3
    assert winner.model.settings["n_restarts"] == 10
    values = sorted(c.criterion("bic") for c in cands if c.criterion("bic") is not None)
    far = [
        c
        for c in cands
        if c.criterion("bic") is not None
        and c.criterion("bic") > values[selection.CONTENDERS] + selection.CONTENDER_MARGIN
    ]
    assert far and all(c.model.settings["n_restarts"] == selection.SCREEN_STARTS == 1 for c in far)
    assert all(c.model.settings["tol"] == selection.SCREEN_TOL for c in far)
    assert all(c.model.settings["accelerate"] for c in far)
    assert winner.model.settings["tol"] == 1e-8  # the contenders: the requested tolerance
    # without screening (every candidate with all 10 restarts) the winner is the same fit
    monkeypatch.setattr(selection, "SCREEN_STARTS", 1000)
    full_winner, _ = selected()
    assert (full_winner.n_components, full_winner.covariance_type) == (3, "full")
    assert full_winner.model.log_likelihood == pytest.approx(winner.model.log_likelihood, rel=1e-9)


def test_screening_gives_the_same_table_for_any_number_of_jobs() -> None:
    planted = planted_mixture("diag", k=2, d=2, n=200, seed=5)
    grid = (range(1, 5), ["full", "diag"])
    one = select(planted.x, ["a", "b"], *grid, jobs=1, n_restarts=6, tol=1e-6)[1]
    two = select(planted.x, ["a", "b"], *grid, jobs=2, n_restarts=6, tol=1e-6)[1]
    assert [c.row() for c in one] == [c.row() for c in two]


def test_this_process_fits_candidates_beside_its_workers(monkeypatch) -> None:
    """With N jobs the selection runs N - 1 worker processes and fits candidates in this
    process too, one thread each as in a worker: the table equals the one-process table."""
    import contextlib

    from emcli import parallel

    planted = planted_mixture("full", k=3, d=2, n=200, seed=9)
    grid = (range(1, 5), ["full", "diag", "spherical"])
    alone = select(planted.x, ["a", "b"], *grid, jobs=1, n_restarts=3)[1]
    here = []
    as_worker = parallel.as_worker

    @contextlib.contextmanager
    def counted():  # this process's fits (a worker's never come here)
        with as_worker():
            here.append(parallel.threads())
            yield

    monkeypatch.setattr(parallel, "as_worker", counted)
    shared = select(planted.x, ["a", "b"], *grid, jobs=3, n_restarts=3)[1]
    assert [c.row() for c in shared] == [c.row() for c in alone]
    assert here and set(here) == {1}
    # without the repairs (which this process makes while the workers refit), of the 12
    # candidates the two workers were sent 2 each ahead; this process fitted the next
    import emcli.em.selection as selection

    here.clear()
    monkeypatch.setattr(selection, "_repair", lambda *args: None)
    monkeypatch.setattr(selection, "SCREEN_STARTS", 1000)  # no refits either
    select(planted.x, ["a", "b"], *grid, jobs=3, n_restarts=3)
    assert 1 <= len(here) <= 12 - 4 and set(here) == {1}


def _start_that_kills_its_worker(sample, k, rng, weights):
    """A start function (``init``) that ends the process it runs in when that is a worker of
    the selection's pool (as the out-of-memory killer would), and gives k-means++ rows here."""
    import multiprocessing

    if multiprocessing.parent_process() is not None:
        os._exit(9)
    from emcli.families.gaussian.family import GaussianFamily

    return GaussianFamily("VVV").start(sample, k, "kmeans++", rng, weights)


def test_a_killed_worker_is_one_error_not_a_hang() -> None:
    """A worker process that dies mid-selection ends the selection with a FitError (one
    line at the command line, status 1), not a traceback and not a wait for results that
    never come; this process has no candidates left waiting."""
    planted = planted_mixture("full", k=2, d=2, n=120, seed=3)
    with pytest.raises(FitError, match="worker process .* ended abruptly"):
        select(
            planted.x,
            ["a", "b"],
            range(1, 7),
            ["VVV"],
            jobs=2,
            n_restarts=2,
            init=_start_that_kills_its_worker,
        )


def test_terminal_table_shows_the_best_candidates_and_says_how_many_more() -> None:
    from rich.console import Console

    from emcli.cli.display import TERMINAL_ROWS, print_selection

    planted = planted_mixture("full", k=2, d=2, n=200, seed=6)
    kinds = ["full", "diag", "spherical", "tied", "VEV"]
    winner, cands = select(planted.x, ["a", "b"], range(1, 5), kinds, jobs=1, **QUICK)
    screen, log = io.StringIO(), io.StringIO()
    print_selection(Console(file=screen, force_terminal=True, width=150), cands, winner, "bic")
    print_selection(Console(file=log, width=150), cands, winner, "bic")
    shown = re.sub(r"\x1b\[[0-9;]*m", "", screen.getvalue())  # without the colours
    assert f"({len(cands) - TERMINAL_ROWS} more candidates" in shown
    assert "more candidates" not in log.getvalue()  # a log keeps every row
    assert sum(line.count("|") > 3 for line in log.getvalue().splitlines()) > len(cands)


def test_prestarted_workers_are_the_selections() -> None:
    """``prestart`` starts the worker processes before the data is read; the selection
    with that many jobs runs on them (none left waiting) and gives the same table as in one
    process."""
    from emcli import workers

    planted = planted_mixture("diag", k=2, d=2, n=150, seed=8)
    grid = (range(1, 4), ["diag", "spherical"])
    workers.prestart(2, 6)
    assert list(workers._READY) == [2]
    ready = workers._READY[2]
    _, parallel = select(planted.x, ["a", "b"], *grid, jobs=2, n_restarts=2)
    assert not workers._READY and ready._shutdown_thread
    _, alone = select(planted.x, ["a", "b"], *grid, jobs=1, n_restarts=2)
    assert [c.row() for c in parallel] == [c.row() for c in alone]


def test_a_failed_hc_start_is_not_polished() -> None:
    """With no covariance floor the hc start of a tight group of 4 rows (3 identical) is
    singular: that start fails, the others are polished, and every candidate is a row of
    the table (it used to stop the selection with an AttributeError)."""
    rng = np.random.default_rng(0)
    x = np.vstack([rng.normal(size=(40, 2)), np.repeat([[5.0, 5.0]], 3, axis=0), [[5.0, 5.1]]])
    winner, cands = select(x, ["a", "b"], range(1, 8), ["VVV"], jobs=1, reg_covar=0.0)
    assert winner is not None and len(cands) == 7
    statuses = {c.row()["status"] for c in cands}
    assert statuses <= {"ok", "degenerate", "failed"} and "ok" in statuses
    from scipy.special import logsumexp
    from scipy.stats import multivariate_normal

    for c in cands:
        if c.model is not None and not c.degenerate:
            # the model is a real fit: its log-likelihood is that of its parameters (scipy)
            p = c.model.params
            cov = p.full_covariances()
            dens = [
                np.log(p.weights[j]) + multivariate_normal(p.means[j], cov[j]).logpdf(x)
                for j in range(p.n_components)
            ]
            want = float(logsumexp(np.array(dens).reshape(p.n_components, -1), axis=0).sum())
            assert c.model.log_likelihood == pytest.approx(want, rel=1e-9)


def test_the_command_line_starts_a_selections_workers_before_numpy(monkeypatch) -> None:
    """``fit`` starts a selection's worker processes before it imports numpy (emcli.workers
    needs the standard library only), counting the candidates from the spellings; a run
    with one candidate or a warm start starts none."""
    import subprocess
    import sys

    from emcli import workers
    from emcli.cli.fit import early_prestart

    probe = "import sys, emcli.workers; print(sorted(m for m in sys.modules if 'numpy' in m))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "[]"
    calls = []
    monkeypatch.setattr(workers, "prestart", lambda jobs, n: calls.append((jobs, n)))
    options = {"init": "auto", "jobs": None}
    for k_spec, kinds, given, want in [
        (None, "full", set(), (None, 126)),  # no -k: mclust's grid of 9 x 14
        (None, "VVV,EEE", {"covariance_spec"}, (None, 18)),
        ("2..4", "full", {"k_spec"}, (None, 3)),
        ("1,3", "all", {"k_spec", "covariance_spec"}, (None, 28)),
        ("3", "full", {"k_spec"}, None),  # one candidate
        ("x..2", "full", {"k_spec"}, None),  # build_config says what is wrong
    ]:
        calls.clear()
        early_prestart(k_spec, kinds, options, given)
        assert calls == ([want] if want else []), (k_spec, kinds)
    calls.clear()
    early_prestart(None, "full", {"init": "model.json", "jobs": 2}, set())
    assert calls == []  # a warm start: not a selection


# ---------------------------------------------------------------------------- nesting
def _covariance_set(name: str, k: int, d: int, rng: np.random.Generator) -> np.ndarray:
    """k random covariances Sigma_j = lambda_j D_j A_j D_j^T of mclust's model ``name``:
    each letter (volume, shape, orientation) equal across components (E), drawn per
    component (V), or the identity (I)."""
    from scipy.stats import special_ortho_group

    def volume() -> float:
        return float(rng.uniform(0.5, 3.0))

    def shape() -> np.ndarray:
        a = rng.uniform(0.2, 5.0, d)
        return a / np.exp(np.log(a).mean())

    def turn() -> np.ndarray:
        return special_ortho_group.rvs(d, random_state=rng)

    draw = {"volume": volume, "shape": shape, "orientation": turn}
    fixed = {"volume": 1.0, "shape": np.ones(d), "orientation": np.eye(d)}
    parts = {}
    for letter, what in zip(name, ("volume", "shape", "orientation"), strict=True):
        one = draw[what]() if letter == "E" else fixed[what]
        parts[what] = [draw[what]() if letter == "V" else one for _ in range(k)]
    return np.stack(
        [
            lam * (o * a) @ o.T
            for lam, a, o in zip(parts["volume"], parts["shape"], parts["orientation"], strict=True)
        ]
    )


def _is_of_model(sigma: np.ndarray, name: str) -> bool:
    """Whether the covariances meet the constraints of mclust's model ``name``, from their
    eigendecompositions (to 1e-8)."""
    vol = np.exp(np.linalg.slogdet(sigma)[1] / sigma.shape[-1])
    scaled = sigma / vol[:, None, None]
    same = bool(np.allclose(scaled, scaled[:1], atol=1e-8))  # shape and orientation shared
    values = np.linalg.eigvalsh(scaled)
    checks = {
        "volume": name[0] != "E" or np.allclose(vol, vol[0], rtol=1e-8),
        "spherical": name[1] != "I" or np.allclose(values, 1.0, atol=1e-8),
        "shape": name[1] != "E" or np.allclose(values, values[:1], atol=1e-8),
        "axes": name[2] != "I" or np.allclose(sigma, sigma * np.eye(sigma.shape[-1]), atol=1e-8),
        "shared": name[2] != "E"
        or all(np.allclose(a @ b, b @ a, atol=1e-8) for a in sigma for b in sigma),
        "both": name[1:] != "EE" or same,
    }
    return all(checks.values())


def test_nested_models_are_the_ones_whose_covariances_the_other_model_holds() -> None:
    """``nested_in(a, b)`` exactly when every random covariance set of a (from mclust's
    parameterisation) is one of b (by the eigendecompositions), over all 14 x 14 pairs."""
    from emcli.families.gaussian.models import covariance_model, nested_in

    rng = np.random.default_rng(7)
    sets = {a: [_covariance_set(a, 3, 3, rng) for _ in range(3)] for a in MCLUST_MODELS}
    for a in MCLUST_MODELS:
        assert _is_of_model(sets[a][0], a)
        for b in MCLUST_MODELS:
            held = all(_is_of_model(s, b) for s in sets[a])
            assert nested_in(a, b) == (held and a != b), (a, b)
            assert covariance_model(a).nested_in(covariance_model(b)) == nested_in(a, b)
    assert nested_in("E", "V") and not nested_in("V", "E")
    assert nested_in("diag", "full") and not nested_in("full", "tied")


@pytest.mark.parametrize("name", MCLUST_MODELS)
def test_a_fit_stored_as_a_model_it_is_nested_in_is_the_same_mixture(name: str) -> None:
    """``as_model`` keeps the densities (scipy's), and ``split`` keeps the model's
    constraint, the weights' sum and the split component's mean and mass."""
    from scipy.stats import multivariate_normal

    from emcli.families.gaussian.models import covariance_model, from_full, nested_in
    from emcli.families.gaussian.params import GaussianParams

    rng = np.random.default_rng(3)
    k, d = 3, 3
    full = _covariance_set(name, k, d, rng)
    means = rng.normal(size=(k, d)) * 3
    weights = np.array([0.5, 0.3, 0.2])
    model = covariance_model(name)
    params = GaussianParams.from_covariances(model, weights, means, from_full(model.form, full))
    x = rng.normal(size=(50, d)) * 3

    def density(p: GaussianParams) -> np.ndarray:
        return sum(
            w * multivariate_normal(m, c).pdf(x)
            for w, m, c in zip(p.weights, p.means, p.full_covariances(), strict=True)
        )

    for outer in MCLUST_MODELS:
        if nested_in(name, outer):
            moved = params.as_model(outer)
            assert moved.model_name == outer
            np.testing.assert_allclose(density(moved), density(params), rtol=1e-10)
    two = params.split()
    assert two.n_components == k + 1 and two.weights.sum() == pytest.approx(1.0)
    assert _is_of_model(two.full_covariances(), name)
    halves = [0, k]  # the heaviest component (0) and its new half
    np.testing.assert_allclose(two.weights[halves].sum(), weights[0])
    np.testing.assert_allclose(two.means[halves].mean(axis=0), means[0], atol=1e-12)
    assert not np.allclose(two.means[0], two.means[k])


def test_a_selection_never_leaves_a_model_below_one_nested_in_it(monkeypatch) -> None:
    """On iris (k = 1..5, mclust's 14 models) the screening fits leave some models below a
    model nested in them at the same k; the selection starts those again from the nested
    fit, and then no candidate is below any model nested in it (its maximum likelihood is
    at least theirs).  The repaired ones say so in their model file's settings."""
    import emcli.em.selection as selection
    from emcli.families.gaussian.models import nested_in

    table = np.loadtxt(
        os.path.join(os.path.dirname(__file__), "..", "sample_data", "iris.csv"),
        delimiter=",",
        skiprows=1,
        usecols=(0, 1, 2, 3),
    )
    columns = ["a", "b", "c", "d"]

    def violations(cands) -> list[tuple[str, str, int]]:
        ll = {
            (c.model_name, c.n_components): c.model.log_likelihood
            for c in cands
            if c.model is not None and not c.degenerate
        }
        return [
            (a, b, k)
            for (a, k), la in ll.items()
            for (b, k2), lb in ll.items()
            if k2 == k and nested_in(a, b) and lb < la - 1e-6 * abs(la)
        ]

    _, fixed = select(table, columns, range(1, 6), list(MCLUST_MODELS), jobs=1)
    assert violations(fixed) == []
    assert any(c.model.settings["init"] == "nested" for c in fixed)
    with monkeypatch.context() as m:
        m.setattr(selection, "_repair", lambda *args: None)
        _, screened = select(table, columns, range(1, 6), list(MCLUST_MODELS), jobs=1)
    assert violations(screened)  # there was something to repair


def test_a_script_on_standard_input_runs_a_selection_on_workers() -> None:
    """``python - < script``: the spawned workers would run the main script ``<stdin>``
    again, which is no file, and fail to start (the selection then said a worker ended
    abruptly); they start, and the table is the one-process table."""
    import subprocess
    import sys

    script = (
        "import numpy as np\n"
        "from emcli.em.selection import select\n"
        "x = np.random.default_rng(0).normal(size=(120, 2)) + np.repeat([[0, 0], [6, 0]], 60, 0)\n"
        "for jobs in (1, 2):\n"
        "    w, cands = select(x, ['a', 'b'], range(1, 4), ['full', 'diag'], jobs=jobs)\n"
        "    print([c.row()['log_likelihood'] for c in cands], w.n_components)\n"
    )
    done = subprocess.run(
        [sys.executable, "-"], input=script, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    one, two = done.stdout.splitlines()
    assert one == two and one.endswith(" 2")

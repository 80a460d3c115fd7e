"""Categorical, bernoulli, poisson and mixed families (issue 16).

Oracles: poLCA's published carcinoma fits (Agresti 2002; Linzer & Lewis 2011), log-densities
recomputed with scipy.stats from the fitted parameters, planted parameters recovered from
generated data, the likelihood never decreasing, and the stream / dask engines equal to the
memory engine.
"""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.special import logsumexp

import emcli
from emcli.api import fit_file
from emcli.data.encode import encode_frame
from emcli.em import likelihood_decreases
from emcli.errors import DataError, UsageError
from tests.clirun import run

DATA = Path(__file__).parent / "data"
CARCINOMA = DATA / "carcinoma.csv"


def carcinoma() -> pd.DataFrame:
    return pd.read_csv(CARCINOMA)


# ---------------------------------------------------------------------------- poLCA
@pytest.mark.parametrize(
    ("k", "log_likelihood", "n_parameters"), [(2, -317.2568, 15), (3, -293.705, 23)]
)
def test_carcinoma_matches_polca(k, log_likelihood, n_parameters):
    # poLCA(cbind(A,B,C,D,E,F,G) ~ 1, carcinoma, nclass = k): log-likelihood -317.2568
    # (k = 2) and -293.705 (k = 3), 15 and 23 estimated parameters.
    model = emcli.fit(carcinoma(), k, family="categorical", alpha=0, n_restarts=20)
    assert model.log_likelihood == pytest.approx(log_likelihood, abs=5e-4)
    assert model.n_parameters == n_parameters
    assert model.bic == pytest.approx(-2 * model.log_likelihood + n_parameters * math.log(118))
    assert model.aic == pytest.approx(-2 * model.log_likelihood + 2 * n_parameters)
    assert not likelihood_decreases(model.history)


def test_carcinoma_bernoulli_is_the_same_model():
    ones = carcinoma() - 1  # levels 1/2 as 0/1
    cat = emcli.fit(carcinoma(), 2, family="categorical", alpha=0)
    ber = emcli.fit(ones, 2, family="bernoulli", alpha=0)
    assert ber.log_likelihood == pytest.approx(cat.log_likelihood, abs=1e-5)
    assert ber.n_parameters == cat.n_parameters == 15
    p_two = np.array(cat.params.blocks[0][0])[:, 1]  # P(A = 2) per component
    assert np.sort(ber.params.blocks[0][:, 0]) == pytest.approx(np.sort(p_two), abs=1e-3)


def test_alpha_smooths_towards_uniform():
    exact = emcli.fit(carcinoma(), 2, family="categorical", alpha=0)
    smooth = emcli.fit(carcinoma(), 2, family="categorical", alpha=5)
    lo = min(float(p.min()) for p in exact.params.blocks[0])
    assert lo < 1e-5  # poLCA's fit sits on the boundary
    assert min(float(p.min()) for p in smooth.params.blocks[0]) > 0.01
    assert smooth.log_likelihood < exact.log_likelihood


# ---------------------------------------------------------------------------- planted truth
def planted_mixed(n: int, seed: int = 0, gaps: float = 0.0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    z = rng.choice(2, size=n, p=[0.6, 0.4])
    colour = np.where(
        z == 0,
        rng.choice(["red", "green", "blue"], size=n, p=[0.7, 0.2, 0.1]),
        rng.choice(["red", "green", "blue"], size=n, p=[0.1, 0.3, 0.6]),
    ).astype(object)
    size = np.where(z == 0, rng.normal(0.0, 1.0, n), rng.normal(4.0, 0.5, n))
    visits = rng.poisson(np.where(z == 0, 2.0, 9.0)).astype(float)
    member = (rng.random(n) < np.where(z == 0, 0.2, 0.9)).astype(float)
    frame = pd.DataFrame({"colour": colour, "size": size, "visits": visits, "member": member})
    if gaps:
        for c in frame.columns:
            hole = rng.random(n) < gaps
            frame.loc[hole, c] = None if c == "colour" else np.nan
    return frame, z


def _match(model, z, x) -> float:
    labels = model.predict(x)
    return max(np.mean(labels == z), np.mean(labels == 1 - z))


def test_planted_mixed_recovered():
    frame, z = planted_mixed(4000, seed=1)
    model = emcli.fit(
        frame, 2, family="mixed", types={"visits": "poisson", "member": "bernoulli"}, seed=2
    )
    kinds = [b.kind for b in model.family.blocks]
    assert kinds == ["categorical", "gaussian", "poisson", "bernoulli"]
    big = int(np.argmax(model.weights))  # the planted 0.6 component
    assert model.weights[big] == pytest.approx(0.6, abs=0.03)
    colour, gauss, rates, member = model.params.blocks
    assert model.family.columns[0].levels == ("blue", "green", "red")
    assert colour[0][big] == pytest.approx([0.1, 0.2, 0.7], abs=0.04)
    assert gauss.means[big, 0] == pytest.approx(0.0, abs=0.1)
    assert gauss.means[1 - big, 0] == pytest.approx(4.0, abs=0.1)
    assert rates[:, 0][[big, 1 - big]] == pytest.approx([2.0, 9.0], rel=0.05)
    assert member[:, 0][[big, 1 - big]] == pytest.approx([0.2, 0.9], abs=0.04)
    x, _ = encode_frame(frame, "mixed", like=model.family.columns)
    assert _match(model, z, x) > 0.97


@pytest.mark.parametrize("family", ["categorical", "bernoulli", "poisson"])
def test_planted_single_family_recovered(family):
    rng = np.random.default_rng(5)
    n, m = 3000, 5
    z = rng.choice(2, size=n, p=[0.55, 0.45])
    if family == "poisson":
        truth = np.array([[1.0, 4.0, 0.5, 7.0, 2.0], [6.0, 1.0, 3.0, 0.5, 2.0]])
        x = rng.poisson(truth[z]).astype(float)
    elif family == "bernoulli":
        truth = np.array([[0.9, 0.1, 0.8, 0.3, 0.5], [0.1, 0.8, 0.2, 0.7, 0.5]])
        x = (rng.random((n, m)) < truth[z]).astype(float)
    else:
        truth = np.array([[0.8, 0.15, 0.05], [0.1, 0.2, 0.7]])
        x = np.stack(
            [(rng.random(n)[:, None] > np.cumsum(truth[z], 1)).sum(1) for _ in range(m)], 1
        )
    model = emcli.fit(x, 2, family=family, alpha=0, seed=3)
    big = int(np.argmax(model.weights))
    order = [big, 1 - big]
    assert model.weights[big] == pytest.approx(0.55, abs=0.03)
    est = model.params.blocks[0]
    if family == "categorical":
        for c in range(m):
            assert est[c][order] == pytest.approx(truth, abs=0.05)
    else:
        tol = {"rel": 0.1} if family == "poisson" else {"abs": 0.05}
        assert est[order] == pytest.approx(truth, **tol)
    assert not likelihood_decreases(model.history)


# ---------------------------------------------------------------------------- scipy oracle
def test_log_probabilities_equal_scipy():
    frame, _ = planted_mixed(300, seed=4, gaps=0.1)
    model = emcli.fit(
        frame,
        3,
        family="mixed",
        types={"visits": "poisson", "member": "bernoulli"},
        n_restarts=2,
        seed=1,
    )
    fam, params = model.family, model.params
    x, _ = encode_frame(frame, "mixed", like=fam.columns)
    colour, gauss, rates, member = params.blocks
    expected = np.zeros((x.shape[0], 3))
    for j in range(3):
        for i in range(x.shape[0]):
            total = 0.0
            if not np.isnan(x[i, 0]):
                total += math.log(colour[0][j, int(x[i, 0])])
            if not np.isnan(x[i, 1]):
                sd = math.sqrt(gauss.covariances[j, 0])
                total += stats.norm(gauss.means[j, 0], sd).logpdf(x[i, 1])
            if not np.isnan(x[i, 2]):
                total += stats.poisson(rates[j, 0]).logpmf(x[i, 2])
            if not np.isnan(x[i, 3]):
                total += stats.bernoulli(member[j, 0]).logpmf(x[i, 3])
            expected[i, j] = total
    assert fam.log_prob(x, params) == pytest.approx(expected, rel=1e-10, abs=1e-10)
    mixture = logsumexp(expected + np.log(params.weights), axis=1)
    assert model.score_samples(x) == pytest.approx(mixture, rel=1e-10)
    # The fitted log-likelihood is that of the observed cells.
    assert model.log_likelihood == pytest.approx(mixture.sum(), rel=1e-9)


@pytest.mark.parametrize("accelerate", [False, True])
def test_likelihood_never_decreases_with_gaps(accelerate):
    frame, _ = planted_mixed(800, seed=7, gaps=0.2)
    model = emcli.fit(
        frame,
        3,
        family="mixed",
        types={"visits": "poisson", "member": "bernoulli"},
        n_restarts=3,
        accelerate=accelerate,
    )
    for start in model.starts:
        assert not likelihood_decreases(start["history"]), start["history"]


def test_missing_cells_are_marginalised():
    frame, _ = planted_mixed(500, seed=8)
    types = {"visits": "poisson", "member": "bernoulli"}
    model = emcli.fit(frame, 2, family="mixed", types=types, n_restarts=2)
    x, _ = encode_frame(frame, "mixed", like=model.family.columns)
    holed = x.copy()
    holed[:, 1] = np.nan  # drop the numeric column: its factor leaves every component
    full = model.family.log_prob(x, model.params)
    gauss = model.family.blocks[1].log_prob(x[:, [1]], model.params.blocks[1])
    assert model.family.log_prob(holed, model.params) == pytest.approx(full - gauss)
    empty = np.full((1, 4), np.nan)
    assert model.score_samples(empty) == pytest.approx([0.0])
    assert model.predict_proba(empty)[0] == pytest.approx(model.weights)


# ---------------------------------------------------------------------------- engines
@pytest.mark.parametrize("family", ["poisson", "bernoulli"])
def test_stream_equals_memory(tmp_path, family):
    rng = np.random.default_rng(2)
    z = rng.choice(2, 2000)
    if family == "poisson":
        x = rng.poisson(np.where(z[:, None] == 0, [1.0, 5.0, 2.0], [6.0, 1.0, 2.0]))
    else:
        x = (rng.random((2000, 3)) < np.where(z[:, None] == 0, 0.8, 0.2)).astype(int)
    x = x.astype(float)
    x[rng.random(x.shape) < 0.05] = np.nan
    path = tmp_path / "t.csv"
    pd.DataFrame(x, columns=["a", "b", "c"]).to_csv(path, index=False)
    memory = fit_file(str(path), 2, engine="memory", family=family, n_restarts=2)
    stream = fit_file(str(path), 2, engine="stream", family=family, n_restarts=2, block_rows=300)
    assert stream.log_likelihood == pytest.approx(memory.log_likelihood, rel=1e-10)
    a = memory.family.to_vector(memory.params)
    b = stream.family.to_vector(stream.params)
    assert a == pytest.approx(b, rel=1e-7, abs=1e-9)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_stream_equals_memory_with_text_columns(tmp_path, fmt):
    # Levels found in a first pass over the file, fixed, then one pass per iteration.
    frame, _ = planted_mixed(1500, seed=12, gaps=0.05)
    frame["member"] = frame["member"].map({1.0: "yes", 0.0: "no"})
    path = tmp_path / f"t.{fmt}"
    if fmt == "csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)
    options = {"family": "mixed", "types": "visits=poisson", "n_restarts": 2}
    memory = fit_file(str(path), 3, engine="memory", **options)
    stream = fit_file(str(path), 3, engine="stream", block_rows=128, **options)
    assert stream.family.columns == memory.family.columns
    assert stream.log_likelihood == pytest.approx(memory.log_likelihood, rel=1e-10)
    a = memory.family.to_vector(memory.params)
    assert stream.family.to_vector(stream.params) == pytest.approx(a, rel=1e-7, abs=1e-9)


def test_dask_equals_memory(tmp_path, local_client):
    from emcli.engines.dask import DaskEngine

    rng = np.random.default_rng(3)
    x = rng.poisson(rng.choice([1.0, 6.0], size=(1000, 1)) * np.ones((1, 3))).astype(float)
    path = tmp_path / "t.csv"
    pd.DataFrame(x, columns=["a", "b", "c"]).to_csv(path, index=False)
    memory = fit_file(str(path), 2, engine="memory", family="poisson", n_restarts=2)
    with DaskEngine(str(path), client=local_client, block_rows=300) as engine:
        dask = emcli.api.fit_engine(engine, 2, family="poisson", n_restarts=2)
    assert dask.log_likelihood == pytest.approx(memory.log_likelihood, rel=1e-10)


# ---------------------------------------------------------------------------- bad input
def test_values_of_the_wrong_kind_are_data_errors():
    with pytest.raises(DataError, match="bernoulli column 'x0' holds 2"):
        emcli.fit(np.array([[0.0], [1.0], [2.0]]), 1, family="bernoulli")
    with pytest.raises(DataError, match="poisson column 'x0' holds -1"):
        emcli.fit(np.array([[0.0], [1.0], [-1.0]]), 1, family="poisson")
    with pytest.raises(DataError, match="holds 1.5"):
        emcli.fit(np.array([[0.0], [1.0], [1.5]]), 1, family="categorical")
    with pytest.raises(UsageError, match="mixed"):
        emcli.fit(carcinoma(), 2, family="categorical", types={"A": "gaussian"})
    with pytest.raises(UsageError, match="alpha"):
        emcli.fit(np.zeros((5, 1)), 1, alpha=1.0)


# ---------------------------------------------------------------------------- the CLI
@pytest.fixture
def table(tmp_path):
    frame, _ = planted_mixed(400, seed=9, gaps=0.05)
    frame["member"] = frame["member"].map({1.0: "yes", 0.0: "no"})
    path = tmp_path / "table.csv"
    frame.to_csv(path, index=False)
    return path


def test_cli_mixed_fit_and_the_model_file(table, tmp_path):
    jsonschema = pytest.importorskip("jsonschema")
    from importlib.resources import files

    model_path = tmp_path / "m.json"
    res = run(
        "fit", table, "-k", "2", "--family", "mixed", "--types", "visits=poisson",
        "--params", model_path, "--labels", tmp_path / "l.csv", "--imputed", tmp_path / "i.csv",
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    data = json.loads(model_path.read_text())
    assert data["family"] == "mixed"
    assert [b["kind"] for b in data["blocks"]] == ["categorical", "gaussian", "poisson"]
    cat = data["blocks"][0]
    assert cat["levels"] == {"colour": ["blue", "green", "red"], "member": ["no", "yes"]}
    assert np.array(cat["probabilities"]["colour"]).shape == (2, 3)
    assert data["blocks"][1]["covariance_type"] == "diag"
    assert np.array(data["blocks"][2]["rates"]).shape == (2, 1)
    assert data["settings"]["types"]["visits"] == "poisson"
    spec = json.loads(files("emcli").joinpath("schema/model.schema.json").read_text())
    jsonschema.validate(data, spec)
    for key in data:
        assert key in spec["properties"], key
    imputed = pd.read_csv(tmp_path / "i.csv")
    assert not imputed.isna().any().any()
    assert set(imputed["colour"]) <= {"blue", "green", "red"}
    # predict on the training rows gives fit's labels; score and sample work from the file
    res = run("predict", model_path, table)
    assert res.exit_code == 0, res.output
    assert res.stdout == (tmp_path / "l.csv").read_text()
    res = run("score", model_path, table)
    assert res.exit_code == 0 and len(res.stdout.splitlines()) == 401
    res = run("sample", model_path, "-n", "50", "--seed", "3")
    drawn = pd.read_csv(pd.io.common.StringIO(res.stdout))
    assert set(drawn["colour"]) <= {"blue", "green", "red"}
    assert set(drawn["member"]) <= {"yes", "no"}
    assert list(drawn.columns) == ["colour", "size", "visits", "member", "component"]
    res = run("describe", model_path)
    assert res.exit_code == 0 and "mixed family" in res.stdout
    warm = run("fit", table, "-k", "2", "--init", model_path, "--params", tmp_path / "w.json")
    assert warm.exit_code == 0, warm.output
    assert json.loads((tmp_path / "w.json").read_text())["family"] == "mixed"


def test_cli_unseen_level_is_one_error_line(table, tmp_path):
    model_path = tmp_path / "m.json"
    assert run("fit", table, "-k", "2", "--family", "mixed", "--params", model_path).exit_code == 0
    new = tmp_path / "new.csv"
    frame = pd.read_csv(table)
    frame.loc[3, "colour"] = "purple"
    frame.to_csv(new, index=False)
    res = run("predict", model_path, new)
    assert res.exit_code == 1
    assert res.stdout == ""
    assert res.stderr.startswith("Error: column 'colour' has level 'purple' (data row 4)")
    assert len(res.stderr.splitlines()) == 1


def test_cli_usage_errors(table):
    res = run("fit", table, "-k", "2", "--alpha", "1")
    assert res.exit_code == 2 and "--alpha is for the categorical" in res.stderr
    res = run("fit", table, "-k", "2", "--family", "categorical", "--types", "size=gaussian")
    assert res.exit_code == 2 and "--family mixed" in res.stderr
    res = run("fit", table, "-k", "2", "--family", "mixed", "--types", "size=normal")
    assert res.exit_code == 2 and "--types kind 'normal'" in res.stderr
    res = run("fit", table, "-k", "2", "--family", "mixed", "--engine", "dask")
    assert res.exit_code == 2 and "--engine memory or stream" in res.stderr


def test_cli_selection_over_k_keeps_the_levels(table, tmp_path):
    model_path = tmp_path / "m.json"
    res = run(
        "fit", table, "-k", "1..3", "--family", "mixed", "--jobs", "1", "-n", "2",
        "--params", model_path,
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    data = json.loads(model_path.read_text())
    assert data["blocks"][0]["levels"]["colour"] == ["blue", "green", "red"]
    assert len(data["selection"]["table"]) == 3


def test_carcinoma_cli_matches_polca(tmp_path):
    path = tmp_path / "m.json"
    res = run(
        "fit", CARCINOMA, "-k", "3", "--family", "categorical", "--alpha", "0", "-n", "20",
        "--params", path,
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert json.loads(path.read_text())["log_likelihood"] == pytest.approx(-293.705, abs=5e-4)


def test_parameter_counts_follow_polca():
    frame = pd.DataFrame(
        {
            c: list(itertools.islice(itertools.cycle(range(L)), 60))
            for c, L in zip("abc", (2, 3, 4), strict=True)
        }
    )
    model = emcli.fit(frame, 3, family="categorical", n_restarts=1)
    assert model.n_parameters == 3 * ((2 - 1) + (3 - 1) + (4 - 1)) + (3 - 1)


def test_penguins_sample_recovers_the_species(tmp_path):
    # The README example: island, sex and four measurements, full covariance, k-means starts
    # (the default starts reach a higher optimum, -5554.25 against -5555.45, that matches the
    # species less well: ARI 0.55); the species
    # (not fitted) is recovered but for 2 of 344 penguins. Rows with no measurement (2) and
    # no sex (11) are fitted by their observed cells.
    from sklearn.metrics import adjusted_rand_score

    penguins = Path(__file__).parents[1] / "sample_data" / "penguins.csv"
    labels = tmp_path / "labels.csv"
    res = run(
        "fit", penguins, "-k", "3", "--family", "mixed", "--covariance", "full",
        "--init", "kmeans",
        "-c", "island,bill_length_mm,bill_depth_mm,flipper_length_mm,body_mass_g,sex",
        "--labels", labels,
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    species = pd.read_csv(penguins)["species"]
    assert adjusted_rand_score(species, pd.read_csv(labels)["cluster"]) > 0.95


def test_frequency_weights_equal_repeated_rows():
    frame = carcinoma()
    counts = frame.value_counts().reset_index(name="count")
    table = counts.drop(columns="count")
    weighted = emcli.fit(table, 2, family="categorical", sample_weight=counts["count"], seed=1)
    plain = emcli.fit(frame, 2, family="categorical", seed=1)
    assert weighted.n_samples == 118
    assert weighted.log_likelihood == pytest.approx(plain.log_likelihood, abs=1e-5)
    assert weighted.log_likelihood == pytest.approx(-317.2568, abs=5e-4)


def test_same_seed_same_model_file(table, tmp_path):
    for name in ("a.json", "b.json"):
        res = run("fit", table, "-k", "2", "--family", "mixed", "--params", tmp_path / name)
        assert res.exit_code == 0, res.output
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()


def test_plot_levels_and_refused_kinds(tmp_path):
    pytest.importorskip("matplotlib")
    model_path = tmp_path / "m.json"
    assert (
        run("fit", CARCINOMA, "-k", "2", "--family", "categorical", "--params", model_path)[0] == 0
    )
    res = run("plot", model_path, "-o", tmp_path / "levels.png")  # the default kind: levels
    assert res.exit_code == 0, res.output
    assert (tmp_path / "levels.png").read_bytes()[:4] == b"\x89PNG"
    res = run("plot", model_path, CARCINOMA, "--kind", "clusters", "-o", tmp_path / "c.png")
    assert res.exit_code == 2 and res.stderr.startswith("Error: --kind clusters draws Gaussian")
    assert not (tmp_path / "c.png").exists()

"""The Student-t family (issue 15): densities against scipy, known truth, nu -> infinity,
engines, monotone likelihood, the model file, the CLI's --df, --df-shared, --outlier-scores.

References are independent of emcli: ``scipy.stats.multivariate_t`` for every log-density
(its marginal over the observed cells for rows with gaps), data drawn from t mixtures with
planted parameters, and the Gaussian family for nu -> infinity.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import emcli
from emcli import api
from emcli.em.driver import likelihood_decreases
from emcli.errors import ModelFileError, UsageError
from emcli.families import get_family
from emcli.families.t import DF_BOUNDS, TParams
from emcli.families.t.params import solve_df
from emcli.families.t.special import digamma, log_gamma_ratio, log_minus_digamma
from tests.clirun import run
from tests.conftest import COVARIANCE_TYPES, SAMPLE_DATA

stats = pytest.importorskip("scipy.stats")
special = pytest.importorskip("scipy.special")

SETTINGS = dict(n_restarts=2, seed=0, tol=1e-9, max_iter=400)


def t_mixture(n, weights, locs, shapes, df, seed=0):
    """Rows drawn from a t mixture (scipy's sampler) and their components."""
    rng = np.random.default_rng(seed)
    comp = rng.choice(len(weights), size=n, p=weights)
    x = np.empty((n, len(locs[0])))
    for j in range(len(weights)):
        rows = comp == j
        dist = stats.multivariate_t(loc=locs[j], shape=shapes[j], df=df[j])
        x[rows] = dist.rvs(int(rows.sum()), random_state=rng).reshape(-1, len(locs[0]))
    return x, comp


LOCS = [[0.0, 0.0, 1.0], [6.0, 3.0, 0.0]]
SHAPES = [
    [[1.0, 0.3, 0.0], [0.3, 1.0, 0.2], [0.0, 0.2, 1.0]],
    [[2.0, -0.5, 0.0], [-0.5, 0.5, 0.0], [0.0, 0.0, 1.0]],
]


@pytest.fixture(scope="module")
def data3():
    return t_mixture(900, [0.6, 0.4], LOCS, SHAPES, [4.0, 4.0], seed=1)[0]


def scipy_log_prob(model, x):
    """log t(x_o | j) of scipy's multivariate_t over each row's observed cells, (n, k)."""
    full = model.full_covariances()
    out = np.empty((x.shape[0], model.n_components))
    for i, row in enumerate(x):
        o = ~np.isnan(row)
        for j in range(model.n_components):
            if not o.any():
                out[i, j] = 0.0
                continue
            dist = stats.multivariate_t(
                loc=model.means[j][o], shape=full[j][np.ix_(o, o)], df=model.params.df[j]
            )
            out[i, j] = dist.logpdf(row[o])
    return out


# ---------------------------------------------------------------------------- special functions
def test_special_functions_match_scipy():
    x = np.array([1e-3, 0.25, 0.5, 1.0, 2.5, 7.9, 8.0, 50.0, 1e3, 1e8])
    np.testing.assert_allclose(digamma(x), special.digamma(x), rtol=1e-13)
    small = x < 100  # beyond, scipy's log x - psi(x) cancels; the series is exact there
    np.testing.assert_allclose(
        log_minus_digamma(x[small]), np.log(x[small]) - special.digamma(x[small]), rtol=1e-12
    )
    big = x[~small]
    series = 0.5 / big + 1 / (12 * big**2) - 1 / (120 * big**4)
    np.testing.assert_allclose(log_minus_digamma(big), series, rtol=1e-14)
    a = np.array([0.25, 1.0, 5.0, 99.0, 100.0, 101.0, 1e3, 5e7])
    for b in (0.5, 2.5, 5.0):
        ref = special.gammaln(b) - special.betaln(a, b)
        np.testing.assert_allclose(log_gamma_ratio(a, b), ref, rtol=1e-12)


@pytest.mark.parametrize("nu", [0.6, 1.0, 4.0, 25.0, 300.0, 999.0])
def test_df_root_solves_the_equation(nu):
    mean_term = -1.0 - (math.log(nu / 2) - special.digamma(nu / 2))
    assert solve_df(np.array([mean_term]))[0] == pytest.approx(nu, rel=1e-11)


def test_df_root_clamps_to_the_range():
    lo, hi = DF_BOUNDS
    np.testing.assert_array_equal(
        solve_df(np.array([-1.0, -0.999, -60.0, np.nan])), [hi, hi, lo, hi]
    )


# ---------------------------------------------------------------------------- densities
@pytest.mark.parametrize("kind", COVARIANCE_TYPES)
def test_log_density_equals_scipy_with_and_without_gaps(kind, data3):
    model = emcli.fit(data3, 2, family="t", covariance_type=kind, **SETTINGS)
    assert model.params.df.shape == (2,)
    np.testing.assert_allclose(
        model.family.log_prob(data3, model.params), scipy_log_prob(model, data3), atol=1e-10
    )
    gaps = data3[:300].copy()
    gaps[::3, 0] = np.nan
    gaps[1::7, 1] = np.nan
    gaps[::11, 2] = np.nan
    gaps[5, :] = np.nan  # nothing observed
    ref = scipy_log_prob(model, gaps)
    np.testing.assert_allclose(model.family.log_prob(gaps, model.params), ref, atol=1e-10)
    mixture = special.logsumexp(ref + np.log(model.weights), axis=1)
    mixture[5] = 0.0
    np.testing.assert_allclose(model.score_samples(gaps), mixture, atol=1e-10)


def test_log_density_near_the_df_bounds_and_beyond():
    x = np.random.default_rng(3).standard_normal((200, 2))
    for df in (DF_BOUNDS[0], DF_BOUNDS[1], 1e8):
        p = get_family("t", covariance_type="full")
        params = TParams.from_scales(
            p.model, np.array([1.0]), np.zeros((1, 2)), np.eye(2)[None], np.array([df])
        )
        ref = stats.multivariate_t(loc=[0, 0], shape=np.eye(2), df=df).logpdf(x)
        if df > 1e6:
            # scipy's lgamma difference loses digits there; the normal limit differs by
            # O(delta^2 / nu), below 1e-6 for these rows
            ref = stats.multivariate_normal(mean=[0, 0]).logpdf(x)
            np.testing.assert_allclose(p.log_prob(x, params)[:, 0], ref, atol=1e-6)
        else:
            np.testing.assert_allclose(p.log_prob(x, params)[:, 0], ref, atol=1e-10)


# ---------------------------------------------------------------------------- known truth
def test_recovers_planted_locations_scales_and_df():
    x, _ = t_mixture(6000, [0.6, 0.4], LOCS, SHAPES, [4.0, 4.0], seed=7)
    model = emcli.fit(x, 2, family="t", **SETTINGS)
    order = np.argsort(model.means[:, 0])
    np.testing.assert_allclose(model.weights[order], [0.6, 0.4], atol=0.03)
    np.testing.assert_allclose(model.means[order], LOCS, atol=0.08)
    np.testing.assert_allclose(model.full_covariances()[order], SHAPES, atol=0.12)
    assert np.all(np.abs(model.params.df - 4.0) < 0.8), model.params.df
    shared = emcli.fit(x, 2, family="t", df_shared=True, **SETTINGS)
    assert shared.params.df[0] == shared.params.df[1]
    assert abs(shared.params.df[0] - 4.0) < 0.6
    assert shared.n_parameters == model.n_parameters - 1
    # heavy tails: the Gaussian needs more components for the same data (BIC)
    gauss = [emcli.fit(x, k, **SETTINGS).bic for k in (1, 2, 3)]
    assert model.bic < min(gauss)


def test_outlier_does_not_move_the_location():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((300, 2))
    x[0] = [200.0, -150.0]
    t = emcli.fit(x, 1, family="t", **SETTINGS)
    g = emcli.fit(x, 1, **SETTINGS)
    assert np.abs(t.means[0]).max() < 0.2 < np.abs(g.means[0]).max()
    labels, u, log_density = t.outlier_scores(x)
    assert np.argmin(u) == 0 and u[0] < 1e-3 and np.all(labels == 0)
    np.testing.assert_allclose(log_density, t.score_samples(x), atol=1e-12)


# ---------------------------------------------------------------------------- nu -> infinity
@pytest.mark.parametrize("kind", COVARIANCE_TYPES)
def test_df_1e8_gives_the_gaussian_fit(kind, data3):
    # converged tightly, so that the two stop at the same point of the optimum
    tight = {**SETTINGS, "tol": 1e-13}
    gauss = emcli.fit(data3, 2, covariance_type=kind, **tight)
    t = emcli.fit(data3, 2, family="t", covariance_type=kind, df=1e8, **tight)
    assert t.log_likelihood == pytest.approx(gauss.log_likelihood, rel=1e-7)
    np.testing.assert_allclose(t.means, gauss.means, atol=1e-5)
    np.testing.assert_allclose(t.covariances, gauss.covariances, atol=1e-5)
    assert t.n_parameters == gauss.n_parameters  # a fixed df is no free parameter


# ---------------------------------------------------------------------------- E-step paths
@pytest.mark.parametrize("kind", COVARIANCE_TYPES)
@pytest.mark.parametrize("weighted", [False, True])
def test_kernel_path_equals_plain_path(kind, weighted, data3):
    fam = get_family("t", covariance_type=kind)
    rng = np.random.default_rng(0)
    params = fam.start(data3, 2, "kmeans", rng)
    params = TParams(params.gauss, np.array([3.0, 12.0]))
    w = rng.integers(0, 4, data3.shape[0]).astype(float) if weighted else None
    plan = fam.prepare(params)
    fast = fam.e_step(data3, plan, w, gaps=False)
    plain = fam._plain(data3, plan, w)
    assert fast.log_likelihood == pytest.approx(plain.log_likelihood, rel=1e-12)
    np.testing.assert_allclose(fast.n_r, plain.n_r, rtol=1e-11)
    np.testing.assert_allclose(fast.df_term, plain.df_term, rtol=1e-10)
    a, b = fam.m_step(fast, plan), fam.m_step(plain, plan)
    np.testing.assert_allclose(a.means, b.means, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(a.covariances, b.covariances, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(a.df, b.df, rtol=1e-9)


@pytest.mark.parametrize("kind", ["full", "diag"])
def test_weights_equal_repeated_rows(kind, data3):
    x = data3[:200]
    w = np.random.default_rng(2).integers(1, 4, 200)
    weighted = emcli.fit(x, 2, family="t", covariance_type=kind, sample_weight=w, **SETTINGS)
    repeated = emcli.fit(np.repeat(x, w, axis=0), 2, family="t", covariance_type=kind,
                         **SETTINGS)  # fmt: skip
    assert weighted.log_likelihood == pytest.approx(repeated.log_likelihood, rel=1e-8)
    # the same optimum from other hc trees (identical rows start alone, as in mclust, and
    # together when weighted): the likelihood is flat in df, which agrees to its tolerance
    np.testing.assert_allclose(weighted.params.df, repeated.params.df, rtol=1e-4)


def test_gaps_fit_and_impute(data3):
    x = data3.copy()
    x[::4, 1] = np.nan
    x[2::9, 0] = np.nan
    model = emcli.fit(x, 2, family="t", **SETTINGS)
    assert not likelihood_decreases(model.history)
    filled = model.impute(x)
    assert not np.isnan(filled).any()
    np.testing.assert_array_equal(filled[~np.isnan(x)], x[~np.isnan(x)])
    # the conditional mean of a t: that of the Gaussian with its scale matrix
    row = np.flatnonzero(np.isnan(x[:, 1]) & ~np.isnan(x[:, 0]))[0]
    resp = model.predict_proba(x[row : row + 1])[0]
    full = model.full_covariances()
    expect = sum(
        resp[j]
        * (model.means[j, 1] + full[j, 1, [0, 2]] @ np.linalg.solve(
            full[j][np.ix_([0, 2], [0, 2])], x[row, [0, 2]] - model.means[j, [0, 2]]))
        for j in range(2)
    )  # fmt: skip
    assert filled[row, 1] == pytest.approx(expect, rel=1e-10)


# ---------------------------------------------------------------------------- monotone EM
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    kind=st.sampled_from(COVARIANCE_TYPES),
    k=st.integers(1, 3),
    df_mode=st.sampled_from(["estimated", "shared", "fixed"]),
    gaps=st.booleans(),
)
def test_likelihood_never_decreases(seed, kind, k, df_mode, gaps):
    rng = np.random.default_rng(seed)
    n, d = int(rng.integers(40, 160)), int(rng.integers(1, 4))
    x = rng.standard_t(df=float(rng.uniform(1.0, 30.0)), size=(n, d)) * rng.uniform(0.1, 10)
    x[: n // 2] += rng.normal(0, 5, size=d)
    if gaps and d > 1:
        x[rng.random((n, d)) < 0.1] = np.nan
    options = {"shared": {"df_shared": True}, "fixed": {"df": 2.5}}.get(df_mode, {})
    model = emcli.fit(
        x, k, family="t", covariance_type=kind, n_restarts=1, max_iter=60, tol=0, seed=seed,
        **options,
    )  # fmt: skip
    assert not likelihood_decreases(model.history), np.diff(model.history).min()
    assert np.all(np.isfinite(model.params.df))
    assert (
        DF_BOUNDS[0] <= model.params.df.min()
        and model.params.df.max() <= DF_BOUNDS[1]
        or (df_mode == "fixed")
    )


def test_df_reaches_its_bounds_without_nan():
    rng = np.random.default_rng(0)
    normal = emcli.fit(rng.standard_normal((3000, 2)), 1, family="t", **SETTINGS)
    assert normal.params.df[0] > 50 and np.isfinite(normal.log_likelihood)
    cauchy = emcli.fit(rng.standard_cauchy((2000, 2)) ** 3, 1, family="t", **SETTINGS)
    assert cauchy.params.df[0] == pytest.approx(DF_BOUNDS[0])
    assert np.isfinite(cauchy.log_likelihood) and np.isfinite(cauchy.covariances).all()
    assert not likelihood_decreases(cauchy.history)


def test_accelerated_reaches_the_same_optimum(data3):
    plain = emcli.fit(data3, 2, family="t", **SETTINGS)
    fast = emcli.fit(data3, 2, family="t", accelerate=True, **SETTINGS)
    assert fast.log_likelihood == pytest.approx(plain.log_likelihood, rel=1e-7)
    assert not likelihood_decreases(fast.history)


# ---------------------------------------------------------------------------- engines
@pytest.fixture(scope="module")
def csv_file(tmp_path_factory, data3):
    path = tmp_path_factory.mktemp("t") / "t.csv"
    with open(path, "w") as f:
        f.write("a,b,c\n")
        for row in data3:
            f.write(",".join(repr(float(v)) for v in row) + "\n")
    return path


def test_stream_equals_memory(csv_file, data3):
    ref = emcli.fit(data3, 2, columns=["a", "b", "c"], family="t", **SETTINGS)
    model = api.fit_file(str(csv_file), 2, engine="stream", block_rows=128, family="t",
                         **SETTINGS)  # fmt: skip
    assert model.log_likelihood == pytest.approx(ref.log_likelihood, rel=1e-9)
    np.testing.assert_allclose(model.params.df, ref.params.df, rtol=1e-6)
    np.testing.assert_array_equal(model.predict(data3), ref.predict(data3))


def test_dask_equals_memory(csv_file, data3, local_client):
    from emcli.engines.dask import DaskEngine

    ref = emcli.fit(data3, 2, columns=["a", "b", "c"], family="t", **SETTINGS)
    with DaskEngine(str(csv_file), client=local_client, block_rows=150) as engine:
        model = api.fit_engine(engine, 2, family="t", **SETTINGS)
    assert model.log_likelihood == pytest.approx(ref.log_likelihood, rel=1e-9)
    np.testing.assert_allclose(model.params.df, ref.params.df, rtol=1e-6)


# ---------------------------------------------------------------------------- model file
def test_model_file_round_trip_and_schema(tmp_path, data3):
    model = emcli.fit(data3, 2, family="t", covariance_type="diag", **SETTINGS)
    path = tmp_path / "m.json"
    model.save(path)
    data = json.loads(path.read_text())
    assert data["family"] == "t" and len(data["df"]) == 2
    assert np.shape(data["covariances"]) == (2, 3)  # native diag shape: the scales
    jsonschema = pytest.importorskip("jsonschema")
    from importlib.resources import files

    spec = json.loads(files("emcli").joinpath("schema/model.schema.json").read_text())
    jsonschema.validate(data, spec)
    back = emcli.load(path)
    assert back.family_name == "t"
    np.testing.assert_array_equal(back.params.df, model.params.df)
    np.testing.assert_allclose(back.score_samples(data3), model.score_samples(data3), rtol=1e-14)
    del data["df"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(data, spec)
    for bad in (None, [4.0], [4.0, -1.0], [4.0, "x"]):
        broken = dict(data, **({} if bad is None else {"df": bad}))
        path.write_text(json.dumps(broken))
        with pytest.raises(ModelFileError, match="df"):
            emcli.load(path)


def test_settings_are_checked():
    x = np.random.default_rng(0).standard_normal((50, 2))
    with pytest.raises(UsageError, match="df"):
        emcli.fit(x, 1, df=4.0)  # a Gaussian has no df
    with pytest.raises(UsageError, match="df_shared"):
        emcli.fit(x, 1, family="t", df=4.0, df_shared=True)
    for bad in (0.0, -1.0, math.inf, math.nan):
        with pytest.raises(UsageError, match="df"):
            emcli.fit(x, 1, family="t", df=bad)


def test_sample_draws_t_tails():
    fam = get_family("t", covariance_type="full")
    params = TParams.from_scales(
        fam.model, np.array([1.0]), np.zeros((1, 1)), np.array([[[2.0]]]), np.array([5.0])
    )
    x, comp = fam.sample(params, 40_000, np.random.default_rng(0))
    assert np.all(comp == 0)
    # a t with nu = 5 and scale 2: variance 2 * 5 / 3; the KS test against scipy's t
    assert x.var() == pytest.approx(10.0 / 3.0, rel=0.05)
    assert stats.kstest(x[:, 0] / math.sqrt(2.0), "t", args=(5.0,)).pvalue > 1e-3


def test_selection_over_k_and_models():
    x = np.loadtxt(SAMPLE_DATA / "eustock_returns.csv", delimiter=",", skiprows=1)[:600]
    from emcli.em.selection import select

    winner, cands = select(x, list("abcd"), [1, 2], ["full", "diag"], family="t", jobs=1,
                           n_restarts=1, seed=0)  # fmt: skip
    assert winner is not None and len(cands) == 4
    assert all(c.model is not None and c.model.family_name == "t" for c in cands)
    assert winner.model is not None and winner.model.bic == min(c.model.bic for c in cands)


# ---------------------------------------------------------------------------- the CLI
def test_cli_fit_t_with_outlier_scores(tmp_path):
    data = SAMPLE_DATA / "eustock_returns.csv"
    out, params = tmp_path / "u.csv", tmp_path / "m.json"
    res = run("fit", data, "-k", "1", "--family", "t", "-n", "2", "--outlier-scores", out,
              "--params", params, "-q")  # fmt: skip
    assert res.exit_code == 0, res.output
    assert res.stdout == ""
    lines = out.read_text().splitlines()
    assert lines[0] == "cluster,u,log_density" and len(lines) == 1834
    table = np.loadtxt(out, delimiter=",", skiprows=1)
    model = emcli.load(params)
    x = np.loadtxt(data, delimiter=",", skiprows=1)
    labels, u, log_density = model.outlier_scores(x)
    np.testing.assert_allclose(table[:, 1], u, rtol=1e-12)
    np.testing.assert_allclose(table[:, 2], model.score_samples(x), rtol=1e-12)
    assert 0 < u.min() < 0.2 and u.max() < (model.params.df[0] + 4) / model.params.df[0]
    # predict, score, sample, describe read the t model file
    for args in (("predict", params, data), ("score", params, data), ("sample", params, "-n", 5)):
        res = run(*args)
        assert res.exit_code == 0, res.output
    res = run("describe", params)
    assert res.exit_code == 0 and "df" in res.stdout
    res = run("describe", params, "--json")
    assert json.loads(res.stdout)["components"][0]["df"] == pytest.approx(model.params.df[0])
    # a warm start from the t model file
    res = run("fit", data, "-k", "1", "--family", "t", "--init", params, "-q", "--params",
              tmp_path / "again.json")  # fmt: skip
    assert res.exit_code == 0, res.output


@pytest.mark.parametrize(
    "args,message",
    [
        (
            ("--df", "3"),
            "Error: --df is not a setting of --family gaussian; it is one of --family t\n",
        ),
        (("--df-shared",), "Error: --df-shared is not a setting of --family gaussian"),
        (("--outlier-scores", "OUT"), "Error: --outlier-scores writes the expected weight u"),
        (("--family", "t", "--df", "3", "--df-shared"), "Error: --df fixes the degrees"),
        (("--family", "t", "--df", "0"), "Error: Invalid value for '--df'"),
    ],
)
def test_cli_refuses_bad_t_options(tmp_path, args, message):
    args = tuple(str(tmp_path / "o.csv") if a == "OUT" else a for a in args)
    res = run("fit", SAMPLE_DATA / "faithful.csv", "-k", "2", "-n", "1", *args)
    assert res.exit_code == 2, res.output
    assert res.stderr.startswith(message)
    assert "Traceback" not in res.output
    assert not (tmp_path / "o.csv").exists()


def test_plotted_marginal_is_the_t_marginal(tmp_path):
    from emcli.plot import component_density

    grid = np.linspace(-30, 30, 2001)
    ref = stats.t(df=3.5, loc=1.0, scale=2.0).pdf(grid)
    np.testing.assert_allclose(component_density(grid, 1.0, 4.0, 3.5), ref, rtol=1e-12)
    pytest.importorskip("matplotlib")
    data = SAMPLE_DATA / "eustock_returns.csv"
    params = tmp_path / "m.json"
    assert run("fit", data, "-k", "1", "--family", "t", "-n", "1", "--params", params,
               "-q").exit_code == 0  # fmt: skip
    for kind in ("density", "clusters"):
        res = run("plot", params, data, "--kind", kind, "-o", tmp_path / f"{kind}.png")
        assert res.exit_code == 0, res.output
        assert (tmp_path / f"{kind}.png").stat().st_size > 1000

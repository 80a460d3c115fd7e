"""EM over missing values (issue 4).

References are independent of the code under test: scipy's multivariate normal on the
observed sub-vectors for densities, a per-row textbook computation of the conditional
moments (np.linalg.solve on the sub-matrices) for the statistics, and generated data with
known truth for the estimates.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pytest
from clirun import run
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

import emcli
from emcli.api import fit
from emcli.em import likelihood_decreases
from emcli.engines.memory import MemoryEngine
from emcli.errors import DataError
from emcli.families import gaussian
from emcli.families.gaussian.missing import (
    block_stats_with_gaps,
    gap_stats,
    impute,
    log_resp_and_norm,
)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
KINDS = ("full", "tied", "diag", "spherical")


def two_blobs(n: int = 400, d: int = 3, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    corr = np.full((d, d), 0.6) + 0.4 * np.eye(d)
    a = rng.multivariate_normal(np.zeros(d), corr, size=n // 2)
    b = rng.multivariate_normal(np.full(d, 4.0), 0.5 * corr, size=n - n // 2)
    return np.concatenate([a, b])


def with_gaps(x: np.ndarray, fraction: float, seed: int = 1) -> np.ndarray:
    out = x.copy()
    out[np.random.default_rng(seed).random(x.shape) < fraction] = np.nan
    return out


def some_params(kind: str, d: int = 3, seed: int = 3, k: int = 3) -> gaussian.GaussianParams:
    rng = np.random.default_rng(seed)
    means = rng.normal(0, 2, size=(k, d))
    full = []
    for _ in range(k):
        a = rng.normal(size=(d, d))
        full.append(a @ a.T + 0.5 * np.eye(d))
    full = np.stack(full)
    if kind == "tied":
        full = np.repeat(full[:1], k, axis=0)
    cov = gaussian.from_full_covariances(kind, full)
    weights = rng.dirichlet(np.full(k, 2.0))
    return gaussian.GaussianParams.from_covariances(kind, weights, means, cov)


def scipy_rows(params: gaussian.GaussianParams, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row: log sum_j w_j N(x_o; mu_o, Sigma_oo) and responsibilities, by scipy."""
    full = params.full_covariances()
    norms, resps = [], []
    for row in x:
        o = ~np.isnan(row)
        if not o.any():
            norms.append(0.0)
            resps.append(params.weights)
            continue
        terms = np.array(
            [
                np.log(params.weights[j])
                + multivariate_normal(params.means[j][o], full[j][np.ix_(o, o)]).logpdf(row[o])
                for j in range(params.n_components)
            ]
        )
        norms.append(logsumexp(terms))
        resps.append(np.exp(terms - logsumexp(terms)))
    return np.array(norms), np.array(resps)


def textbook_moments(params: gaussian.GaussianParams, x: np.ndarray):
    """Per row and component: E[x | x_o, j] (d,) and Cov[x | x_o, j] (d, d), row by row."""
    full = params.full_covariances()
    n, d = x.shape
    xhat = np.empty((n, params.n_components, d))
    cond = np.zeros((n, params.n_components, d, d))
    for i, row in enumerate(x):
        o, m = ~np.isnan(row), np.isnan(row)
        for j in range(params.n_components):
            mu, s = params.means[j], full[j]
            xhat[i, j] = np.where(o, row, mu)
            if o.any():
                reg = np.linalg.solve(s[np.ix_(o, o)], s[np.ix_(o, m)]).T  # Sigma_mo Sigma_oo^-1
                xhat[i, j, m] = mu[m] + reg @ (row[o] - mu[o])
                cond[i, j][np.ix_(m, m)] = s[np.ix_(m, m)] - reg @ s[np.ix_(o, m)]
            else:
                cond[i, j] = s
    return xhat, cond


# ---------------------------------------------------------------------------- textbook EM
REG = 1e-6


def textbook_em(params: gaussian.GaussianParams, x: np.ndarray, n_iter: int):
    """EM with missing values written out from the textbook (Ghahramani & Jordan 1994),
    row by row with scipy and numpy only: the log-likelihood of each step's parameters and
    the final (weights, means, full covariances), for any covariance type."""
    kind = params.covariance_type
    weights, means = params.weights.copy(), params.means.copy()
    full = params.full_covariances()
    n, d = x.shape
    history = []
    for _ in range(n_iter + 1):
        current = gaussian.GaussianParams.from_covariances(
            kind, weights, means, gaussian.from_full_covariances(kind, full)
        )
        norms, resp = scipy_rows(current, x)
        history.append(norms.sum())
        if len(history) > n_iter:
            break
        xhat, cond = textbook_moments(current, x)
        nk = resp.sum(axis=0)
        weights = nk / n
        means = np.einsum("ik,ikd->kd", resp, xhat) / nk[:, None]
        dev = xhat - means[None]
        scatter = np.einsum("ik,ikd,ike->kde", resp, dev, dev) + np.einsum(
            "ik,ikde->kde", resp, cond
        )
        cov = scatter / nk[:, None, None]
        if kind == "tied":
            cov = np.repeat((scatter.sum(axis=0) / n)[None], len(nk), axis=0)
        elif kind == "diag":
            cov = np.stack([np.diag(np.diag(c)) for c in cov])
        elif kind == "spherical":
            cov = np.stack([np.trace(c) / d * np.eye(d) for c in cov])
        full = cov + REG * np.eye(d)[None]
    return history, (weights, means, full)


@pytest.mark.parametrize("fraction", [0.0, 0.25])
@pytest.mark.parametrize("kind", KINDS)
def test_em_matches_a_textbook_em_written_here(kind, fraction):
    # The same start; emcli's E-step (the kernels for complete rows, the gap path for the
    # others) against the row-by-row textbook EM above, to 1e-9, for 8 iterations.
    from gaussian_steps import gaussian_em

    x = with_gaps(two_blobs(90), fraction, seed=4)
    x = x[~np.isnan(x).all(axis=1)]
    p0 = some_params(kind, d=3, k=2, seed=5)
    params, _, n_iter, _, history = gaussian_em(MemoryEngine(x, block_size=37), p0, 8, 0.0, REG)
    assert n_iter == 8
    want, (weights, means, full) = textbook_em(p0, x, 8)
    np.testing.assert_allclose(history, want, rtol=1e-9)
    np.testing.assert_allclose(params.weights, weights, rtol=1e-8)
    np.testing.assert_allclose(params.means, means, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(params.full_covariances(), full, rtol=1e-8, atol=1e-10)


def test_without_gaps_the_outputs_are_the_plain_densities():
    x = two_blobs(300)
    for kind in KINDS:
        model = fit(x, 2, covariance_type=kind, n_restarts=2)
        norms, resp = scipy_rows(model.params, x)  # scipy's densities, not emcli's
        np.testing.assert_allclose(model.score_samples(x), norms, rtol=1e-10)
        np.testing.assert_allclose(model.predict_proba(x), resp, rtol=1e-8, atol=1e-12)
        assert np.array_equal(model.impute(x), x)
        assert model.extra["missing"] == {
            "policy": "em",
            "cells": 0,
            "rows": 0,
            "rows_all_missing": 0,
        }


# ---------------------------------------------------------------------------- densities
@pytest.mark.parametrize("kind", KINDS)
def test_log_likelihood_equals_scipy_marginal_densities(kind):
    x = with_gaps(two_blobs(240), 0.3)
    x[7] = np.nan  # a row with nothing observed
    model = fit(x, 2, covariance_type=kind, n_restarts=2)
    norms, resps = scipy_rows(model.params, x)
    assert model.log_likelihood == pytest.approx(norms.sum(), rel=1e-10)
    np.testing.assert_allclose(model.score_samples(x), norms, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(model.predict_proba(x), resps, atol=1e-10)
    np.testing.assert_allclose(model.predict_proba(x)[7], model.weights, rtol=1e-14)
    assert model.score_samples(x)[7] == 0.0


@pytest.mark.parametrize("kind", KINDS)
def test_statistics_equal_the_textbook_conditional_moments(kind):
    params = some_params(kind)
    x = with_gaps(np.random.default_rng(5).normal(0, 2, size=(150, 3)), 0.35)
    x[3] = np.nan
    rows = np.isnan(x).any(axis=1)
    xg = x[rows]
    stats = gap_stats(xg, params)
    _, resp = scipy_rows(params, xg)
    resp[np.isnan(xg).all(axis=1)] = 0.0  # rows with nothing observed carry no information
    xhat, cond = textbook_moments(params, xg)
    diff = xhat - params.means[None]
    np.testing.assert_allclose(stats.n_k, resp.sum(axis=0), rtol=1e-10)
    np.testing.assert_allclose(stats.sum_x, np.einsum("ik,ikd->kd", resp, diff), atol=1e-9)
    second = np.einsum("ik,ikd,ike->kde", resp, diff, diff) + np.einsum("ik,ikde->kde", resp, cond)
    expected = {
        "full": second,
        "tied": second.sum(axis=0),
        "diag": np.diagonal(second, axis1=1, axis2=2),
        "spherical": np.diagonal(second, axis1=1, axis2=2),
    }[kind]
    np.testing.assert_allclose(stats.sum_xx, expected, rtol=1e-9, atol=1e-9)
    norms, _ = scipy_rows(params, xg)
    assert stats.log_likelihood == pytest.approx(norms.sum(), rel=1e-10)


@settings(max_examples=30, deadline=None)
@given(
    kind=st.sampled_from(KINDS),
    d=st.integers(1, 5),
    k=st.integers(1, 3),
    n=st.integers(1, 40),
    fraction=st.floats(0.05, 0.9),
    seed=st.integers(0, 2**16),
)
def test_statistics_match_the_textbook_on_random_shapes(kind, d, k, n, fraction, seed):
    params = some_params(kind, d=d, seed=seed, k=k)
    rng = np.random.default_rng(seed + 1)
    x = rng.normal(0, 2, size=(n, d))
    x[rng.random(x.shape) < fraction] = np.nan
    x[0, 0] = np.nan  # at least one gap
    xg = x[np.isnan(x).any(axis=1)]
    stats = gap_stats(xg, params)
    norms, resp = scipy_rows(params, xg)
    resp[np.isnan(xg).all(axis=1)] = 0.0
    xhat, cond = textbook_moments(params, xg)
    diff = xhat - params.means[None]
    second = np.einsum("ik,ikd,ike->kde", resp, diff, diff) + np.einsum("ik,ikde->kde", resp, cond)
    if kind == "tied":
        second = second.sum(axis=0)
    elif kind in ("diag", "spherical"):
        second = np.diagonal(second, axis1=1, axis2=2)
    assert stats.log_likelihood == pytest.approx(norms.sum(), rel=1e-9, abs=1e-9)
    np.testing.assert_allclose(stats.n_k, resp.sum(axis=0), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(stats.sum_x, np.einsum("ik,ikd->kd", resp, diff), atol=1e-8)
    np.testing.assert_allclose(stats.sum_xx, second, rtol=1e-8, atol=1e-8)


@pytest.mark.parametrize("kind", KINDS)
def test_statistics_add_up_across_row_splits(kind):
    params = some_params(kind)
    x = with_gaps(np.random.default_rng(6).normal(0, 2, size=(300, 3)), 0.25)
    whole = block_stats_with_gaps(x, params)
    cut = np.random.default_rng(7).permutation(300)
    parts = [
        block_stats_with_gaps(x[np.sort(cut[a:b])], params)
        for a, b in ((0, 17), (17, 160), (160, 300))
    ]
    total = parts[0] + parts[1] + parts[2]
    for name in ("n_k", "sum_x", "sum_xx"):
        np.testing.assert_allclose(getattr(total, name), getattr(whole, name), atol=1e-9)
    assert total.log_likelihood == pytest.approx(whole.log_likelihood, rel=1e-12)
    assert total.n_samples == whole.n_samples == 300


@pytest.mark.parametrize("kind", KINDS)
def test_likelihood_never_decreases_with_gaps(kind):
    x = with_gaps(two_blobs(300, d=4), 0.3)
    model = fit(x, 3, covariance_type=kind, n_restarts=3, tol=0.0, max_iter=40, init="random")
    for start in model.starts:
        assert len(start["history"]) == 41
        assert likelihood_decreases(start["history"]) == []


def test_impute_is_the_responsibility_weighted_conditional_mean():
    params = some_params("full")
    x = with_gaps(np.random.default_rng(8).normal(0, 2, size=(80, 3)), 0.3)
    out = impute(x, params)
    gaps = np.isnan(x)
    assert np.array_equal(out[~gaps], x[~gaps])
    xhat, _ = textbook_moments(params, x)
    _, resp = scipy_rows(params, x)
    np.testing.assert_allclose(out, np.einsum("ik,ikd->id", resp, xhat), atol=1e-10)
    assert not np.isnan(out).any()


def test_mixed_block_matches_separate_paths():
    params = some_params("full")
    x = with_gaps(np.random.default_rng(9).normal(0, 2, size=(100, 3)), 0.15)
    lr, norm = log_resp_and_norm(x, params)
    complete = ~np.isnan(x).any(axis=1)
    lr_c, norm_c = gaussian.log_resp_and_norm(x[complete], params)
    assert np.array_equal(lr[complete], lr_c) and np.array_equal(norm[complete], norm_c)


# ---------------------------------------------------------------------------- known truth
@pytest.mark.parametrize("fraction", [0.1, 0.4])
def test_gaps_beat_mean_imputation_and_dropping_rows(fraction):
    from compare_missing import compare

    r = compare(n=1500, fraction=fraction, seed=0, restarts=2)
    assert r["em_mean_err"] + r["em_cov_err"] < r["drop_mean_err"] + r["drop_cov_err"]
    assert r["em_mean_err"] < r["mean_imputation_mean_err"]
    assert r["em_cov_err"] < r["mean_imputation_cov_err"]
    assert r["impute_rmse_em"] < r["impute_rmse_colmean"]


def test_initialisation_copes_with_no_complete_row():
    x = two_blobs(200, d=3)
    x[np.arange(200), np.arange(200) % 3] = np.nan  # every row misses one cell
    model = fit(x, 2, n_restarts=2)
    assert not model.collapsed
    assert sorted(np.round(model.means.mean(axis=1)).tolist()) == [0.0, 4.0]


def test_policies_in_the_library():
    x = with_gaps(two_blobs(200), 0.1)
    with pytest.raises(DataError, match=r"column 'x\d', data row \d+"):
        fit(x, 2, missing="error")
    complete = ~np.isnan(x).any(axis=1)
    dropped = fit(x, 2, missing="drop", n_restarts=2)
    ref = fit(x[complete], 2, n_restarts=2)
    assert dropped.n_samples == complete.sum()
    assert dropped.log_likelihood == ref.log_likelihood
    assert dropped.extra["missing"]["rows_dropped"] == (~complete).sum()
    assert any("dropped" in note for note in dropped.notes)
    assert dropped.predict(x).shape == (200,)
    x[:, 1] = np.nan
    with pytest.raises(DataError, match="column 'x1' has no values"):
        fit(x, 2)


def test_selection_with_gaps():
    from emcli.em.selection import select

    x = with_gaps(two_blobs(200), 0.2)
    winner, candidates = select(
        x, ["a", "b", "c"], [1, 2, 3], ["full", "diag"], jobs=1, n_restarts=2
    )
    assert winner is not None and winner.n_components == 2
    assert all(c.icl is not None and np.isfinite(c.icl) for c in candidates)


# ---------------------------------------------------------------------------- CLI
@pytest.fixture
def gappy_csv(tmp_path):
    x = with_gaps(two_blobs(120), 0.15)
    x[4] = np.nan
    lines = ["a,b,c"] + [",".join("" if np.isnan(v) else repr(float(v)) for v in row) for row in x]
    path = tmp_path / "gaps.csv"
    path.write_text("\n".join(lines) + "\n")
    return path, x


def test_cli_missing_error(gappy_csv):
    path, x = gappy_csv
    row, col = np.argwhere(np.isnan(x))[0]
    result = run("fit", path, "-k", "2", "--missing", "error", "--labels", "-")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert f"column '{'abc'[col]}', data row {row + 1}" in result.stderr
    # the library names the parameter (missing); the CLI's table of flags will show --missing
    assert re.search(r"(--missing|missing) em", result.stderr)


def test_cli_missing_em_and_imputed(gappy_csv, tmp_path):
    path, x = gappy_csv
    params = tmp_path / "model.json"
    result = run(
        "fit",
        path,
        "-k",
        "2",
        "-n",
        "2",
        "--labels",
        tmp_path / "labels.csv",
        "--params",
        params,
        "--imputed",
        "-",
    )
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "a,b,c" and len(lines) == 121
    filled = np.array([[float(v) for v in line.split(",")] for line in lines[1:]])
    gaps = np.isnan(x)
    assert np.array_equal(filled[~gaps], x[~gaps])
    model = emcli.load(str(params))
    np.testing.assert_allclose(filled, model.impute(x), rtol=1e-12)
    np.testing.assert_allclose(filled[4], model.weights @ model.means, rtol=1e-12)  # no cell
    assert model.to_dict()["missing"] == {
        "policy": "em",
        "cells": int(gaps.sum()),
        "rows": int(gaps.any(axis=1).sum()),
        "rows_all_missing": int(gaps.all(axis=1).sum()),
    }
    labels = (tmp_path / "labels.csv").read_text().splitlines()
    assert len(labels) == 121 and "" not in labels
    assert "have missing values" in result.stderr


def test_cli_missing_drop(gappy_csv):
    path, x = gappy_csv
    result = run("fit", path, "-k", "2", "-n", "2", "--missing", "drop", "--responsibilities", "-")
    assert result.exit_code == 0, result.stderr
    n_dropped = int(np.isnan(x).any(axis=1).sum())
    assert f"dropped {n_dropped} of 120 rows" in result.stderr
    rows = result.stdout.splitlines()
    assert rows[0] == "component_0,component_1" and len(rows) == 121


def test_cli_column_with_no_value(tmp_path):
    path = tmp_path / "empty_col.csv"
    path.write_text("a,b\n1,\n2,\n3,\n")
    result = run("fit", path, "-k", "1", "-c", "a,b")
    assert result.exit_code == 1
    assert "column 'b'" in result.stderr


def test_same_seed_same_model_with_gaps():
    x = with_gaps(two_blobs(150), 0.2)
    assert fit(x, 3, seed=4, n_restarts=2).to_json() == fit(x, 3, seed=4, n_restarts=2).to_json()


def test_many_columns_group_patterns_by_bytes():
    # More than 62 columns: patterns are keyed by the packed mask's bytes, not one integer.
    d = 70
    params = some_params("full", d=d, k=2)
    x = np.random.default_rng(11).normal(0, 2, size=(12, d))
    x[np.random.default_rng(12).random(x.shape) < 0.3] = np.nan
    x[5] = x[3]  # a repeated pattern
    stats = gap_stats(x, params)
    norms, resp = scipy_rows(params, x)
    assert stats.log_likelihood == pytest.approx(norms.sum(), rel=1e-9)
    np.testing.assert_allclose(stats.n_k, resp.sum(axis=0), rtol=1e-8, atol=1e-12)

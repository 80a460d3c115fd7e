"""The Gaussian family against independent references: scipy densities, closed-form
statistics and M-step, scikit-learn's parameter counts."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import COVARIANCE_TYPES, random_covariances
from gaussian_steps import engine_stats
from hypothesis import given, settings
from hypothesis import strategies as st
from mixtures import narrow_far_mixture
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

from emcli.engines.memory import MemoryEngine
from emcli.errors import FitError
from emcli.families.gaussian import (
    GaussianFamily,
    GaussianParams,
    block_stats,
    covariance_model,
    from_full_covariances,
    log_gaussian,
    log_resp_and_norm,
    m_step,
    to_full_covariances,
)

FULL = covariance_model("full")


def random_params(kind: str, k: int, d: int, seed: int, offset: float = 0.0) -> GaussianParams:
    rng = np.random.default_rng(seed)
    full = random_covariances(kind, k, d, rng)
    weights = rng.dirichlet(np.ones(k))
    means = rng.normal(scale=3.0, size=(k, d)) + offset
    return GaussianParams.from_covariances(kind, weights, means, from_full_covariances(kind, full))


def random_resp(n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    r = rng.dirichlet(np.ones(k), size=n)
    return r


# ---------------------------------------------------------------------------- densities
@pytest.mark.parametrize("kind", COVARIANCE_TYPES)
@pytest.mark.parametrize("d", [1, 3])
def test_log_gaussian_matches_scipy(kind: str, d: int) -> None:
    params = random_params(kind, k=3, d=d, seed=d)
    x = np.random.default_rng(5).normal(scale=4.0, size=(50, d))
    got = log_gaussian(x, params)
    full = params.full_covariances()
    want = np.column_stack(
        [multivariate_normal(params.means[j], full[j]).logpdf(x) for j in range(3)]
    )
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("kind", COVARIANCE_TYPES)
def test_log_gaussian_far_from_origin(kind: str) -> None:
    # Translating data and means together leaves every density unchanged; the code
    # centres the products, so data near 1e6 must not lose the digits scipy keeps.
    base = random_params(kind, k=2, d=2, seed=3)
    far = random_params(kind, k=2, d=2, seed=3, offset=1e6)
    x = np.random.default_rng(1).normal(scale=3.0, size=(40, 2))
    np.testing.assert_allclose(log_gaussian(x + 1e6, far), log_gaussian(x, base), atol=1e-6)


@pytest.mark.parametrize("kind", COVARIANCE_TYPES)
def test_log_gaussian_of_a_narrow_component_far_from_the_others(kind: str) -> None:
    # The density at the narrow component's own mean must stay exact (mixtures.py).
    params, x = narrow_far_mixture(kind)
    means = params.means
    got = log_gaussian(x, params)
    want = np.column_stack(
        [multivariate_normal(means[j], params.full_covariances()[j]).logpdf(x) for j in range(3)]
    )
    # rounding of x - shift at the scale 1e6 still costs ~1e-9 relative; the bug was O(1)
    np.testing.assert_allclose(got, want, rtol=1e-6)


@pytest.mark.parametrize("kind", COVARIANCE_TYPES)
def test_marginal_density_of_rows_with_gaps_near_a_narrow_component(kind: str) -> None:
    # The same situation for rows with a missing cell (the E-step of --missing em): the
    # marginal density of the observed cells, against scipy on the observed coordinates.
    from emcli.families.gaussian.missing import log_resp_and_norm as gap_log_resp_and_norm

    means = np.array([[0.0, 0.0, 0.0], [1e6, -1e6, 2e5], [-2e6, 5e5, 0.0]])
    if kind == "tied":
        full = np.repeat((np.eye(3) * 1e-6 + 2e-7)[None], 3, axis=0)
    else:
        full = np.stack([np.eye(3) * 1e-6, np.eye(3) * 1e11, np.diag([1e11, 4e11, 1e11])])
    params = GaussianParams.from_covariances(
        kind, np.array([0.2, 0.4, 0.4]), means, from_full_covariances(kind, full)
    )
    x = means + np.array([[1e-3, -2e-3, 5e-4], [3e5, 1e5, 0.0], [0.0, 0.0, 1.0]])
    x[0, 2] = x[1, 0] = x[2, 1] = np.nan
    log_resp, norm = gap_log_resp_and_norm(x, params)
    cov = params.full_covariances()
    for i in range(3):
        o = ~np.isnan(x[i])
        dens = [
            np.log(params.weights[j])
            + multivariate_normal(means[j, o], cov[j][np.ix_(o, o)]).logpdf(x[i, o])
            for j in range(3)
        ]
        assert norm[i] == pytest.approx(logsumexp(dens), rel=1e-6)
        np.testing.assert_allclose(np.exp(log_resp[i]), np.exp(dens - logsumexp(dens)), atol=1e-9)


@pytest.mark.parametrize("kind", COVARIANCE_TYPES)
def test_responsibilities_sum_to_one_and_norm_is_log_mixture_density(kind: str) -> None:
    params = random_params(kind, k=4, d=2, seed=7)
    x = np.random.default_rng(2).normal(scale=10.0, size=(200, 2))  # includes far outliers
    log_resp, norm = log_resp_and_norm(x, params)
    np.testing.assert_allclose(np.exp(log_resp).sum(axis=1), 1.0, rtol=1e-12)
    full = params.full_covariances()
    dens = np.column_stack(
        [
            np.log(params.weights[j]) + multivariate_normal(params.means[j], full[j]).logpdf(x)
            for j in range(4)
        ]
    )
    np.testing.assert_allclose(norm, logsumexp(dens, axis=1), rtol=1e-10)


def test_responsibilities_of_far_outliers_stay_finite() -> None:
    # Rows so far away that every density underflows in probability space.
    params = random_params("full", k=3, d=2, seed=1)
    x = np.array([[1e4, -1e4], [-3e4, 2e4]])
    log_resp, norm = log_resp_and_norm(x, params)
    assert np.all(np.isfinite(log_resp)) and np.all(np.isfinite(norm))
    np.testing.assert_allclose(np.exp(log_resp).sum(axis=1), 1.0)


@pytest.mark.parametrize("kind", COVARIANCE_TYPES)
def test_precision_cholesky_reproduces_inverse_covariance(kind: str) -> None:
    params = random_params(kind, k=3, d=3, seed=4)
    prec = params.precisions_cholesky
    cov = params.covariances
    if kind == "full":
        for j in range(3):
            np.testing.assert_allclose(prec[j] @ prec[j].T, np.linalg.inv(cov[j]), rtol=1e-9)
            assert np.allclose(prec[j], np.triu(prec[j]))  # sklearn's upper-triangular form
    elif kind == "tied":
        np.testing.assert_allclose(prec @ prec.T, np.linalg.inv(cov), rtol=1e-9)
    else:
        np.testing.assert_allclose(prec**2, 1.0 / cov, rtol=1e-12)


@pytest.mark.parametrize("kind", COVARIANCE_TYPES)
def test_full_covariances_round_trip(kind: str) -> None:
    params = random_params(kind, k=3, d=2, seed=9)
    full = params.full_covariances()
    assert full.shape == (3, 2, 2)
    np.testing.assert_array_equal(from_full_covariances(kind, full), params.covariances)
    np.testing.assert_array_equal(to_full_covariances(kind, params.covariances, 3, 2), full)


@pytest.mark.parametrize("kind", ["full", "tied"])
def test_singular_covariance_is_a_fit_error_naming_the_fix(kind: str) -> None:
    cov = np.array([[1.0, 1.0], [1.0, 1.0]])
    native = np.stack([np.eye(2), cov]) if kind == "full" else cov
    # The library names the parameter (the CLI shows its flag).
    with pytest.raises(FitError, match="reg_covar"):
        GaussianParams.from_covariances(kind, np.array([0.5, 0.5]), np.zeros((2, 2)), native)


@pytest.mark.parametrize("kind", COVARIANCE_TYPES)
@pytest.mark.parametrize("d", [1, 2, 5])
def test_n_parameters_equals_sklearn(kind: str, d: int) -> None:
    from sklearn.mixture import GaussianMixture

    for k in (1, 2, 7):
        gm = GaussianMixture(k, covariance_type=kind)
        gm.means_ = np.zeros((k, d))
        full = np.repeat(np.eye(d)[None], k, axis=0)
        params = GaussianParams.from_covariances(
            kind, np.full(k, 1.0 / k), np.zeros((k, d)), from_full_covariances(kind, full)
        )
        assert GaussianFamily(kind).n_parameters(params) == gm._n_parameters()
        # the covariance model's own count, plus means and weights
        model = covariance_model(kind)
        assert model.n_parameters(k, d) + k * d + k - 1 == gm._n_parameters()


@pytest.mark.parametrize("kind", COVARIANCE_TYPES)
def test_parameters_and_family_pickle_to_the_same_covariance_model(kind: str) -> None:
    # Model selection with several jobs ships fitted models between processes (pickle);
    # the rows of the model table hold functions, and code compares models by identity.
    import pickle

    params = random_params(kind, k=2, d=3, seed=1)
    back = pickle.loads(pickle.dumps(params))
    assert back.model is params.model is covariance_model(kind)
    np.testing.assert_array_equal(back.covariances, params.covariances)
    assert pickle.loads(pickle.dumps(GaussianFamily(kind, 1e-3))).model is params.model


# ---------------------------------------------------------------------------- statistics
def _stats_close(a, b) -> None:
    np.testing.assert_allclose(a.n_k, b.n_k, rtol=1e-12)
    np.testing.assert_allclose(a.sum_x, b.sum_x, rtol=1e-10, atol=1e-9)
    np.testing.assert_allclose(a.sum_xx, b.sum_xx, rtol=1e-10, atol=1e-9)
    np.testing.assert_allclose(a.log_likelihood, b.log_likelihood, rtol=1e-12)
    assert a.n_samples == b.n_samples


@settings(max_examples=25, deadline=None)
@given(
    kind=st.sampled_from(COVARIANCE_TYPES),
    n=st.integers(2, 60),
    d=st.integers(1, 3),
    k=st.integers(1, 4),
    seed=st.integers(0, 2**16),
    data=st.data(),
)
def test_sufficient_statistics_add_up_over_any_row_split(kind, n, d, k, seed, data) -> None:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)) * 3.0 + 10.0
    resp = random_resp(n, k, rng)
    centers = rng.normal(size=(k, d))
    ll = rng.normal(size=n)
    cuts = sorted(data.draw(st.lists(st.integers(1, n - 1), max_size=5, unique=True)))
    bounds = [0, *cuts, n]
    model = covariance_model(kind)
    whole = block_stats(x, resp, centers, model, ll.sum())
    parts = [
        block_stats(x[a:b], resp[a:b], centers, model, ll[a:b].sum())
        for a, b in zip(bounds, bounds[1:], strict=False)
    ]
    total = parts[0]
    for p in parts[1:]:
        total = total + p
    _stats_close(total, whole)


@pytest.mark.parametrize("kind", COVARIANCE_TYPES)
def test_memory_engine_block_size_does_not_change_the_statistics(kind: str) -> None:
    params = random_params(kind, k=3, d=2, seed=2)
    x = np.random.default_rng(0).normal(scale=3.0, size=(101, 2))
    ref = engine_stats(MemoryEngine(x, block_size=101), params)
    for size in (1, 7, 50):
        _stats_close(engine_stats(MemoryEngine(x, block_size=size), params), ref)


def closed_form_m_step(x, resp, kind, reg_covar):
    """Weighted means and covariances as the textbook writes them (two passes)."""
    n, d = x.shape
    n_k = resp.sum(axis=0)
    means = (resp.T @ x) / n_k[:, None]
    covs = np.stack(
        [
            ((x - means[j]) * resp[:, j : j + 1]).T @ (x - means[j]) / n_k[j]
            for j in range(resp.shape[1])
        ]
    )
    if kind == "full":
        native = covs + reg_covar * np.eye(d)
    elif kind == "tied":
        native = (covs * n_k[:, None, None]).sum(axis=0) / n + reg_covar * np.eye(d)
    elif kind == "diag":
        native = np.diagonal(covs, axis1=1, axis2=2) + reg_covar
    else:
        native = np.diagonal(covs, axis1=1, axis2=2).mean(axis=1) + reg_covar
    return n_k / n, means, native


@pytest.mark.parametrize("kind", COVARIANCE_TYPES)
@pytest.mark.parametrize("center_offset", [0.0, 3.0])
def test_m_step_equals_closed_forms(kind: str, center_offset: float) -> None:
    # The statistics are taken around the E-step's centres; the M-step must not depend on
    # where those centres were.
    rng = np.random.default_rng(3)
    x = rng.normal(size=(80, 3)) * [1.0, 2.0, 0.5] + 50.0
    resp = random_resp(80, 4, rng)
    centers = (resp.T @ x) / resp.sum(axis=0)[:, None] + center_offset * rng.normal(size=(4, 3))
    params = m_step(block_stats(x, resp, centers, covariance_model(kind), 0.0), reg_covar=1e-3)
    weights, means, cov = closed_form_m_step(x, resp, kind, 1e-3)
    np.testing.assert_allclose(params.weights, weights, rtol=1e-12)
    np.testing.assert_allclose(params.means, means, rtol=1e-12)
    np.testing.assert_allclose(params.covariances, cov, rtol=1e-9)


@pytest.mark.parametrize("kind", COVARIANCE_TYPES)
def test_m_step_equals_sklearn_estimate(kind: str) -> None:
    from sklearn.mixture._gaussian_mixture import _estimate_gaussian_parameters

    rng = np.random.default_rng(8)
    x = rng.normal(size=(60, 2))
    resp = random_resp(60, 3, rng)
    stats = block_stats(x, resp, np.zeros((3, 2)), covariance_model(kind), 0.0)
    params = m_step(stats, reg_covar=1e-6)
    nk, means, covs = _estimate_gaussian_parameters(x, resp, 1e-6, kind)
    np.testing.assert_allclose(params.weights, nk / 60, rtol=1e-12)
    np.testing.assert_allclose(params.means, means, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(params.covariances, covs, rtol=1e-9, atol=1e-12)


def test_m_step_of_an_empty_component_stays_finite() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 2))
    resp = np.zeros((30, 2))
    resp[:, 0] = 1.0  # component 1 owns nothing
    params = m_step(block_stats(x, resp, np.zeros((2, 2)), FULL, 0.0), reg_covar=1e-6)
    assert np.all(np.isfinite(params.means)) and np.all(np.isfinite(params.covariances))
    assert params.weights[1] < 1e-12


def test_m_step_without_floor_on_a_collapsed_component_is_a_fit_error() -> None:
    x = np.array([[0.0, 0.0], [0.0, 0.0], [1.0, 2.0], [2.0, 1.0], [3.0, 3.0]])
    resp = np.zeros((5, 2))
    resp[:2, 0] = 1.0
    resp[2:, 1] = 1.0
    with pytest.raises(FitError, match="component 0"):
        m_step(block_stats(x, resp, np.zeros((2, 2)), FULL, 0.0), reg_covar=0.0)

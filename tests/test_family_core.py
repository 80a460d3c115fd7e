"""The family core's promises, checked against independent references:

* frequency weights equal repeated rows (log-likelihood, BIC/AIC with n = sum of weights,
  parameters), for every covariance type, with and without missing values;
* a warm start from a saved model continues the same EM path (5 + 5 iterations = 10);
* moments stay exact when a component shrinks far from its old centre (long double
  reference computed here from the formulas, not by emcli).
"""

from __future__ import annotations

import numpy as np
import pytest

import emcli
from emcli.em.step import e_step
from emcli.engines.memory import MemoryEngine
from emcli.errors import DataError, UsageError
from emcli.families.gaussian import GaussianFamily, GaussianParams

TYPES = ["full", "tied", "diag", "spherical"]


def _blobs(seed: int = 0, n: int = 120) -> np.ndarray:
    rng = np.random.default_rng(seed)
    a = rng.normal([0.0, 0.0, 0.0], [1.0, 0.5, 2.0], size=(n, 3))
    b = rng.normal([4.0, -3.0, 1.0], [0.7, 1.2, 0.4], size=(n, 3))
    c = rng.normal([-4.0, 3.0, 5.0], [1.5, 0.6, 0.9], size=(n // 2, 3))
    return np.concatenate([a, b, c])


def _close(a, b, rtol=1e-9):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=rtol, atol=rtol)


def _start_model(x: np.ndarray, kind: str) -> emcli.GaussianMixtureModel:
    # A fixed, deliberately poor start shared by both runs: two EM iterations from k-means.
    return emcli.fit(x, 3, covariance_type=kind, n_restarts=1, max_iter=2, tol=0, seed=5)


@pytest.mark.parametrize("kind", TYPES)
@pytest.mark.parametrize("gaps", [False, True])
def test_weights_equal_repeated_rows(kind, gaps):
    x = _blobs()
    if gaps:
        rng = np.random.default_rng(1)
        x[rng.random(x.shape) < 0.08] = np.nan
        x[np.isnan(x).all(axis=1), 0] = 1.0
    w = np.random.default_rng(2).integers(0, 4, size=x.shape[0]).astype(float)
    w[:3] = [0.0, 3.0, 1.0]
    repeated = np.repeat(x, w.astype(int), axis=0)
    start = _start_model(repeated, kind)
    settings = dict(covariance_type=kind, init=start, max_iter=25, tol=0)
    weighted = emcli.fit(x, 3, sample_weight=w, **settings)
    plain = emcli.fit(repeated, 3, **settings)
    assert weighted.n_samples == plain.n_samples == int(w.sum())
    _close(weighted.log_likelihood, plain.log_likelihood)
    _close(weighted.bic, plain.bic)
    _close(weighted.aic, plain.aic)
    _close(weighted.weights, plain.weights)
    _close(weighted.means, plain.means)
    _close(weighted.covariances, plain.covariances)
    _close(weighted.history, plain.history)


def test_weights_default_start_reach_the_repeated_optimum():
    x = _blobs(3)
    w = np.random.default_rng(4).integers(1, 4, size=x.shape[0]).astype(float)
    repeated = np.repeat(x, w.astype(int), axis=0)
    # converged tightly: at the default tol the two stop at points of a flat ridge that
    # differ by ~1e-3 in the means (same optimum, same likelihood to 1e-10)
    weighted = emcli.fit(x, 3, sample_weight=w, covariance_type="full", tol=1e-13)
    plain = emcli.fit(repeated, 3, covariance_type="full", tol=1e-13)
    _close(weighted.log_likelihood, plain.log_likelihood, rtol=1e-7)
    _close(weighted.means, plain.means, rtol=1e-5)


def test_weight_zero_rows_still_get_labels():
    x = _blobs()
    w = np.ones(x.shape[0])
    w[::7] = 0.0
    model = emcli.fit(x, 3, sample_weight=w)
    labels = model.predict(x)
    assert labels.shape == (x.shape[0],)
    without = emcli.fit(x[w > 0], 3)
    _close(model.log_likelihood, without.log_likelihood, rtol=1e-7)


@pytest.mark.parametrize("bad, row", [(-1.0, 5), (np.nan, 2), (np.inf, 9)])
def test_bad_weights_name_the_row(bad, row):
    x = _blobs()
    w = np.ones(x.shape[0])
    w[row - 1] = bad
    with pytest.raises(DataError, match=f"data row {row}\\b"):
        emcli.fit(x, 3, sample_weight=w)


def test_all_zero_or_misshapen_weights_are_refused():
    x = _blobs()
    with pytest.raises(DataError, match="every weight in sample_weight is 0"):
        emcli.fit(x, 3, sample_weight=np.zeros(x.shape[0]))
    with pytest.raises(DataError, match="shape"):
        emcli.fit(x, 3, sample_weight=np.ones(4))


@pytest.mark.parametrize("kind", TYPES)
def test_warm_start_continues_the_same_run(kind, tmp_path):
    x = _blobs(7)
    one = emcli.fit(x, 3, covariance_type=kind, n_restarts=1, max_iter=10, tol=0, seed=3)
    first = emcli.fit(x, 3, covariance_type=kind, n_restarts=1, max_iter=5, tol=0, seed=3)
    path = tmp_path / "five.json"
    first.save(path)
    second = emcli.fit(x, 3, init=str(path), max_iter=5, tol=0)
    assert second.covariance_type == kind  # taken from the model file
    assert second.settings["init"] == "model" and len(second.starts) == 1
    _close(second.log_likelihood, one.log_likelihood)
    _close(second.means, one.means)
    _close(second.covariances, one.covariances)
    _close(second.weights, one.weights)


def test_warm_start_from_a_minimal_model_file(tmp_path):
    x = _blobs(8)
    path = tmp_path / "minimal.json"
    path.write_text(
        '{"format": "emcli-gaussian-mixture", "schema_version": 2, "family": "gaussian",'
        ' "covariance_type": "diag", "columns": ["x0", "x1", "x2"],'
        ' "weights": [0.4, 0.4, 0.2],'
        ' "means": [[0, 0, 0], [4, -3, 1], [-4, 3, 5]],'
        ' "covariances": [[1, 1, 1], [1, 1, 1], [1, 1, 1]]}'
    )
    model = emcli.fit(x, 3, init=str(path))
    reference = emcli.fit(x, 3, covariance_type="diag")
    _close(model.log_likelihood, reference.log_likelihood, rtol=1e-8)


def test_warm_start_must_match_the_settings(tmp_path):
    x = _blobs()
    start = emcli.fit(x, 3, covariance_type="diag", n_restarts=1, max_iter=3)
    with pytest.raises(UsageError, match="has 3 components"):
        emcli.fit(x, 2, init=start)
    with pytest.raises(UsageError, match="covariance_type diag"):
        emcli.fit(x, 3, init=start, covariance_type="full")


# ---------------------------------------------------------------------------- exact moments
def _long_double_moments(x, resp_j):
    """Weighted mean and covariance in long double, two passes (the plain formulas)."""
    xl = x.astype(np.longdouble)
    r = resp_j.astype(np.longdouble)
    n = r.sum()
    mean = (r[:, None] * xl).sum(axis=0) / n
    dev = xl - mean
    cov = (r[:, None, None] * dev[:, :, None] * dev[:, None, :]).sum(axis=0) / n
    return mean, cov


@pytest.mark.parametrize("kind", TYPES)
def test_shrinking_component_far_from_its_old_centre(kind):
    """A component of sd 33 whose rows sit 30 away, in a cluster of sd 1e-5, at offset 2000:
    moments about the old mean cancel (covariance off by ~200% before re-centring)."""
    rng = np.random.default_rng(11)
    near = 2030.0 + rng.normal(0.0, 1e-5, size=(400, 2))
    other = rng.normal(0.0, 1.0, size=(400, 2))
    x = np.concatenate([near, other])
    means = np.array([[2000.0, 2000.0], [0.0, 0.0]])
    full = np.array([np.eye(2) * 33.0**2, np.eye(2)])
    from emcli.families.gaussian import from_full_covariances

    params = GaussianParams.from_covariances(
        kind, np.array([0.5, 0.5]), means, from_full_covariances(kind, full)
    )
    family = GaussianFamily(kind, reg_covar=0.0)
    engine = MemoryEngine(x)
    stats, plan = e_step(engine, family, params)
    new = family.m_step(stats, plan)
    resp = np.exp(family.log_resp_and_norm(x, params)[0])
    m0, c0 = _long_double_moments(x, resp[:, 0])
    m1, c1 = _long_double_moments(x, resp[:, 1])
    np.testing.assert_allclose(new.means, np.array([m0, m1], dtype=float), rtol=1e-12, atol=1e-10)
    got = new.full_covariances()
    if kind == "full":
        want = np.array([c0, c1], dtype=float)
    elif kind == "tied":
        nk = resp.sum(axis=0)
        pooled = (nk[0] * c0 + nk[1] * c1) / nk.sum()
        want = np.array([pooled, pooled], dtype=float)
    else:
        d0, d1 = np.diag(c0).astype(float), np.diag(c1).astype(float)
        if kind == "spherical":
            d0, d1 = np.full(2, d0.mean()), np.full(2, d1.mean())
        want = np.array([np.diag(d0), np.diag(d1)])
    diag_got = np.diagonal(got, axis1=1, axis2=2)
    diag_want = np.diagonal(want, axis1=1, axis2=2)
    np.testing.assert_allclose(diag_got, diag_want, rtol=1e-8)


# ---------------------------------------------------------------------------- every engine
@pytest.fixture(scope="module")
def weighted_files(tmp_path_factory):
    """The same data twice: each row once with a weight column, and each row repeated."""
    d = tmp_path_factory.mktemp("weights")
    x = _blobs(9, n=80)
    x[::11, 1] = np.nan  # gaps too: weights and the marginal E-step together
    w = np.random.default_rng(10).integers(0, 4, size=x.shape[0])
    w[0] = 2

    def csv(path, rows, weights=None):
        head = "a,b,c" + (",w" if weights is not None else "")
        lines = [head]
        for i, r in enumerate(rows):
            cells = ["" if np.isnan(v) else repr(float(v)) for v in r]
            if weights is not None:
                cells.append(str(int(weights[i])))
            lines.append(",".join(cells))
        path.write_text("\n".join(lines) + "\n")
        return str(path)

    weighted = csv(d / "weighted.csv", x, w)
    repeated = csv(d / "repeated.csv", np.repeat(x, w, axis=0))
    return weighted, repeated, np.repeat(x, w, axis=0)


@pytest.mark.parametrize("engine", ["memory", "stream", "dask"])
@pytest.mark.parametrize("kind", ["full", "diag"])
def test_weights_equal_repeated_rows_in_every_engine(weighted_files, engine, kind):
    if engine == "dask":
        pytest.importorskip("distributed")
    weighted, repeated, rows = weighted_files
    start = _start_model(rows, kind)
    start.columns = ["a", "b", "c"]
    settings = dict(init=start, max_iter=15, tol=0)
    block = {"block_rows": 37} if engine != "memory" else {}
    got = emcli.api.fit_file(weighted, 3, engine=engine, weights="w", **block, **settings)
    want = emcli.api.fit_file(repeated, 3, engine="memory", **settings)
    assert got.columns == ["a", "b", "c"] and got.n_samples == want.n_samples
    _close(got.log_likelihood, want.log_likelihood)
    _close(got.means, want.means)
    _close(got.covariances, want.covariances)
    _close(got.weights, want.weights)

"""scikit-learn's own behavioural tests of GaussianMixture, run against emcli.sklearn's class.

A port (rewritten here, not copied) of the public-API tests in scikit-learn's
``sklearn/mixture/tests/test_gaussian_mixture.py`` and ``sklearn/mixture/tests/
test_mixture.py`` (scikit-learn 1.9, BSD-3-Clause; in the installed package under
``site-packages/sklearn/mixture/tests/``, or github.com/scikit-learn/scikit-learn).  Each test
keeps the original's name and what it asserts; the import is switched to
``emcli.sklearn.GaussianMixture``.  Left out: the tests of scikit-learn's private helpers
(``_estimate_gaussian_*``, ``_compute_*``, sufficient statistics, ``_initialize``), the
array-API tests and the mock of ``_estimate_gaussian_parameters``; emcli's own tests
cover its statistics and densities against scipy and scikit-learn.

Where emcli's behaviour differs by design the test says so in a comment:
* ``n_iter_`` counts M-steps up to the first iteration whose change is below ``tol``
  (emcli measures the likelihood *after* each M-step, scikit-learn before it), so
  emcli stops one iteration earlier on the same path;
* a singular fit raises ValueError with emcli's message (it names reg_covar the same way).
"""

from __future__ import annotations

import copy
import itertools
import sys
import warnings
from io import StringIO

import numpy as np
import pytest

pytest.importorskip(
    "sklearn", reason="scikit-learn is not installed (pip install 'emcli-mixture[sklearn]')"
)

from scipy import linalg
from sklearn.datasets import make_spd_matrix
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.metrics.cluster import adjusted_rand_score
from sklearn.utils._testing import (
    assert_allclose,
    assert_almost_equal,
    assert_array_almost_equal,
    assert_array_equal,
)

from emcli.sklearn import GaussianMixture

COVARIANCE_TYPE = ["full", "tied", "diag", "spherical"]
NOT_FITTED = (
    "This GaussianMixture instance is not fitted yet. Call 'fit' with appropriate arguments "
    "before using this estimator."
)


def generate_data(n_samples, n_features, weights, means, covariances, covariance_type):
    """Rows of each component in turn, round(w * n) of them (as scikit-learn's helper)."""
    rng = np.random.RandomState(0)
    parts = []
    for j, (w, m) in enumerate(zip(weights, means, strict=True)):
        cov = _covariance(covariances[covariance_type], j, covariance_type, n_features)
        parts.append(rng.multivariate_normal(m, cov, int(np.round(w * n_samples))))
    return np.vstack(parts)


def _covariance(c, j, covariance_type, n_features):
    """Component j's full covariance from the parameters of one covariance type."""
    if covariance_type == "spherical":
        return c[j] * np.eye(n_features)
    if covariance_type == "diag":
        return np.diag(c[j])
    return c if covariance_type == "tied" else c[j]


class RandomData:
    """A random mixture (weights, means, covariances per type) and data drawn from it."""

    def __init__(self, rng, n_samples=200, n_components=2, n_features=2, scale=50):
        self.n_samples, self.n_components, self.n_features = n_samples, n_components, n_features
        self.weights = rng.rand(n_components)
        self.weights = self.weights / self.weights.sum()
        self.means = rng.rand(n_components, n_features) * scale
        self.covariances = {
            "spherical": 0.5 + rng.rand(n_components),
            "diag": (0.5 + rng.rand(n_components, n_features)) ** 2,
            "tied": make_spd_matrix(n_features, random_state=rng),
            "full": np.array(
                [make_spd_matrix(n_features, random_state=rng) * 0.5 for _ in range(n_components)]
            ),
        }
        self.precisions = {
            "spherical": 1.0 / self.covariances["spherical"],
            "diag": 1.0 / self.covariances["diag"],
            "tied": linalg.inv(self.covariances["tied"]),
            "full": np.array([linalg.inv(c) for c in self.covariances["full"]]),
        }
        self.X = {
            t: generate_data(n_samples, n_features, self.weights, self.means, self.covariances, t)
            for t in COVARIANCE_TYPE
        }
        self.Y = np.hstack(
            [np.full(int(np.round(w * n_samples)), j) for j, w in enumerate(self.weights)]
        )


def test_gaussian_mixture_attributes():
    X = np.random.RandomState(0).rand(10, 2)
    gmm = GaussianMixture(
        n_components=2,
        tol=1e-4,
        n_init=3,
        max_iter=30,
        reg_covar=1e-1,
        covariance_type="full",
        init_params="random",
    ).fit(X)
    assert (gmm.n_components, gmm.covariance_type, gmm.tol) == (2, "full", 1e-4)
    assert (gmm.reg_covar, gmm.max_iter, gmm.n_init, gmm.init_params) == (1e-1, 30, 3, "random")


def test_check_weights():
    rng = np.random.RandomState(0)
    data = RandomData(rng)
    k, X = data.n_components, data.X["full"]
    g = GaussianMixture(n_components=k)
    g.weights_init = rng.rand(k, 1)
    with pytest.raises(ValueError, match="The parameter 'weights' should have the shape of"):
        g.fit(X)
    g.weights_init = rng.rand(k) + 1
    with pytest.raises(ValueError, match=r"should be in the range \[0, 1\]"):
        g.fit(X)
    bad = rng.rand(k)
    g.weights_init = bad / (bad.sum() + 1)
    with pytest.raises(ValueError, match="The parameter 'weights' should be normalized"):
        g.fit(X)
    g = GaussianMixture(weights_init=data.weights, n_components=k).fit(X)
    assert_array_equal(data.weights, g.weights_init)


def test_check_means():
    rng = np.random.RandomState(0)
    data = RandomData(rng)
    k, d, X = data.n_components, data.n_features, data.X["full"]
    g = GaussianMixture(n_components=k)
    g.means_init = rng.rand(k + 1, d)
    with pytest.raises(ValueError, match="The parameter 'means' should have the shape of "):
        g.fit(X)
    g.means_init = data.means
    g.fit(X)
    assert_array_equal(data.means, g.means_init)


def test_check_precisions():
    rng = np.random.RandomState(0)
    data = RandomData(rng)
    k, d = data.n_components, data.n_features
    bad_shape = {
        "full": np.ones((k + 1, d, d)),
        "tied": np.ones((d + 1, d + 1)),
        "diag": np.ones((k + 1, d)),
        "spherical": np.ones(k + 1),
    }
    not_pd = np.ones((k, d, d))
    not_pd[0] = np.eye(d)
    not_pd[0, 0, 0] = -1.0
    not_positive = {
        "full": not_pd,
        "tied": not_pd[0],
        "diag": np.full((k, d), -1.0),
        "spherical": np.full(k, -1.0),
    }
    wording = {
        "full": "symmetric, positive-definite",
        "tied": "symmetric, positive-definite",
        "diag": "positive",
        "spherical": "positive",
    }
    for kind in COVARIANCE_TYPE:
        X = RandomData(rng).X[kind]
        g = GaussianMixture(n_components=k, covariance_type=kind, random_state=rng)
        g.precisions_init = bad_shape[kind]
        with pytest.raises(ValueError, match=f"The parameter '{kind} precision' should have"):
            g.fit(X)
        g.precisions_init = not_positive[kind]
        with pytest.raises(ValueError, match=f"'{kind} precision' should be {wording[kind]}"):
            g.fit(X)
        g.precisions_init = data.precisions[kind]
        g.fit(X)
        assert_array_equal(data.precisions[kind], g.precisions_init)


def test_gaussian_mixture_predict_predict_proba():
    rng = np.random.RandomState(0)
    data = RandomData(rng)
    for kind in COVARIANCE_TYPE:
        X, Y = data.X[kind], data.Y
        g = GaussianMixture(
            n_components=data.n_components,
            random_state=rng,
            weights_init=data.weights,
            means_init=data.means,
            precisions_init=data.precisions[kind],
            covariance_type=kind,
        )
        with pytest.raises(NotFittedError, match=NOT_FITTED):
            g.predict(X)
        g.fit(X)
        Y_pred = g.predict(X)
        assert_array_equal(Y_pred, g.predict_proba(X).argmax(axis=1))
        assert adjusted_rand_score(Y, Y_pred) > 0.95


@pytest.mark.filterwarnings("ignore:.*did not converge.*")
@pytest.mark.parametrize(
    "seed, max_iter, tol", [(0, 2, 1e-7), (1, 2, 1e-1), (3, 300, 1e-7), (4, 300, 1e-1)]
)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_gaussian_mixture_fit_predict(seed, max_iter, tol, dtype):
    rng = np.random.RandomState(seed)
    data = RandomData(rng)
    for kind in COVARIANCE_TYPE:
        X, Y = data.X[kind].astype(dtype), data.Y
        g = GaussianMixture(
            n_components=data.n_components,
            random_state=rng,
            weights_init=data.weights,
            means_init=data.means,
            precisions_init=data.precisions[kind],
            covariance_type=kind,
            max_iter=max_iter,
            tol=tol,
        )
        f = copy.deepcopy(g)
        assert_array_equal(f.fit(X).predict(X), g.fit_predict(X))
        assert adjusted_rand_score(Y, g.predict(X)) > 0.95
        assert g.means_.dtype == g.weights_.dtype == g.precisions_.dtype == dtype


def test_gaussian_mixture_fit_predict_n_init():
    X = np.random.RandomState(0).randn(1000, 5)
    gm = GaussianMixture(n_components=5, n_init=5, random_state=0)
    assert_array_equal(gm.fit_predict(X), gm.predict(X))


def test_gaussian_mixture_fit():
    # Recover the ground truth.
    rng = np.random.RandomState(0)
    data = RandomData(rng)
    k, d = data.n_components, data.n_features
    for kind in COVARIANCE_TYPE:
        X = data.X[kind]
        g = GaussianMixture(
            n_components=k, n_init=20, reg_covar=0, random_state=rng, covariance_type=kind
        ).fit(X)
        assert_allclose(np.sort(g.weights_), np.sort(data.weights), rtol=0.1, atol=1e-2)
        order, truth = g.means_[:, 0].argsort(), data.means[:, 0].argsort()
        assert_allclose(g.means_[order], data.means[truth], rtol=0.1, atol=1e-2)
        full = {
            "full": lambda p: p,
            "tied": lambda p: np.array([p] * k),
            "diag": lambda p: np.array([np.diag(v) for v in p]),
            "spherical": lambda p: np.array([np.eye(d) * c for c in p]),
        }[kind]
        pred, test = full(g.precisions_), full(data.precisions[kind])
        i1 = np.trace(pred, axis1=1, axis2=2).argsort()
        i2 = np.trace(test, axis1=1, axis2=2).argsort()
        for a, b in zip(i1, i2, strict=True):
            # scikit-learn's EmpiricalCovariance.error_norm: the Frobenius norm of the
            # difference, squared and divided by the number of entries.
            assert np.sum((pred[a] - test[b]) ** 2) / d**2 < 0.15


def test_gaussian_mixture_fit_best_params():
    rng = np.random.RandomState(0)
    data = RandomData(rng)
    k, n_init = data.n_components, 10
    for kind in COVARIANCE_TYPE:
        X = data.X[kind]
        g = GaussianMixture(
            n_components=k, n_init=1, reg_covar=0, random_state=rng, covariance_type=kind
        )
        ll = []
        for _ in range(n_init):
            g.fit(X)
            ll.append(g.score(X))
        best = GaussianMixture(
            n_components=k, n_init=n_init, reg_covar=0, random_state=rng, covariance_type=kind
        ).fit(X)
        # scikit-learn asserts ll.min() == best score to 7 decimals: every start reaches
        # the same optimum on this data.  The best of n_init starts is at least each one.
        assert best.score(X) >= max(ll) - 1e-6
        assert_almost_equal(min(ll), best.score(X), decimal=5)


def test_gaussian_mixture_fit_convergence_warning():
    rng = np.random.RandomState(0)
    data = RandomData(rng, scale=1)
    for kind in COVARIANCE_TYPE:
        g = GaussianMixture(
            n_components=data.n_components,
            n_init=1,
            max_iter=1,
            reg_covar=0,
            random_state=rng,
            covariance_type=kind,
        )
        msg = (
            "Best performing initialization did not converge. Try different init parameters, "
            "or increase max_iter, tol, or check for degenerate data."
        )
        with pytest.warns(ConvergenceWarning, match=msg):
            g.fit(data.X[kind])


def test_multiple_init():
    # More starts are never worse than one.
    X = np.random.RandomState(0).randn(50, 5)
    for kind in COVARIANCE_TYPE:
        one = GaussianMixture(n_components=2, covariance_type=kind, random_state=0)
        five = GaussianMixture(n_components=2, covariance_type=kind, random_state=0, n_init=5)
        assert five.fit(X).score(X) >= one.fit(X).score(X)


def test_gaussian_mixture_n_parameters():
    rng = np.random.RandomState(0)
    X = rng.randn(50, 5)
    n_params = {"spherical": 13, "diag": 21, "tied": 26, "full": 41}
    for kind in COVARIANCE_TYPE:
        g = GaussianMixture(n_components=2, covariance_type=kind, random_state=rng).fit(X)
        assert g._n_parameters() == n_params[kind]


def test_bic_1d_1component():
    # Every covariance type gives the same BIC for one component in one dimension.
    rng = np.random.RandomState(0)
    X = rng.randn(100, 1)
    bic_full = GaussianMixture(1, covariance_type="full", random_state=rng).fit(X).bic(X)
    for kind in ["tied", "diag", "spherical"]:
        bic = GaussianMixture(1, covariance_type=kind, random_state=rng).fit(X).bic(X)
        assert_almost_equal(bic_full, bic)


def test_gaussian_mixture_aic_bic():
    rng = np.random.RandomState(0)
    n, d = 50, 3
    X = rng.randn(n, d)
    # the entropy of a standard Gaussian at the sample covariance
    sgh = 0.5 * (np.linalg.slogdet(np.cov(X.T, bias=1))[1] + d * (1 + np.log(2 * np.pi)))
    for kind in COVARIANCE_TYPE:
        g = GaussianMixture(2, covariance_type=kind, random_state=rng, max_iter=200).fit(X)
        aic = 2 * n * sgh + 2 * g._n_parameters()
        bic = 2 * n * sgh + np.log(n) * g._n_parameters()
        bound = d / np.sqrt(n)
        assert (g.aic(X) - aic) / n < bound
        assert (g.bic(X) - bic) / n < bound


def test_gaussian_mixture_verbose(capsys):
    rng = np.random.RandomState(0)
    data = RandomData(rng)
    for kind in COVARIANCE_TYPE:
        X = data.X[kind]
        for verbose in (1, 2):
            GaussianMixture(
                n_components=data.n_components,
                n_init=1,
                reg_covar=0,
                random_state=rng,
                covariance_type=kind,
                verbose=verbose,
                verbose_interval=1,
            ).fit(X)
            out = capsys.readouterr()
            # emcli writes progress to stderr (stdout stays for data).
            assert out.out == ""
            assert "Initialization 0" in out.err and "Iteration 1" in out.err
            assert ("ll change" in out.err) == (verbose == 2)


@pytest.mark.filterwarnings("ignore:.*did not converge.*")
@pytest.mark.parametrize("seed", (0, 1, 2))
def test_warm_start(seed):
    rng = np.random.RandomState(seed)
    X = rng.rand(500, 2)
    # Two warm fits of one iteration are one fit of two iterations.
    g = GaussianMixture(2, n_init=1, max_iter=2, reg_covar=0, random_state=seed)
    h = GaussianMixture(2, n_init=1, max_iter=1, reg_covar=0, random_state=seed, warm_start=True)
    g.fit(X)
    score1 = h.fit(X).score(X)
    score2 = h.fit(X).score(X)
    assert_almost_equal(g.weights_, h.weights_)
    assert_almost_equal(g.means_, h.means_)
    assert_almost_equal(g.precisions_, h.precisions_)
    assert score2 > score1
    # Warm starts reach convergence where one short fit does not.
    settings = dict(n_components=2, n_init=1, max_iter=5, reg_covar=0, random_state=seed, tol=1e-6)
    g = GaussianMixture(**settings).fit(X)
    assert not g.converged_
    h = GaussianMixture(**settings, warm_start=True).fit(X)
    for _ in range(1000):
        h.fit(X)
        if h.converged_:
            break
    assert h.converged_


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_convergence_detected_with_warm_start():
    rng = np.random.RandomState(0)
    data = RandomData(rng)
    X = data.X["full"]
    for max_iter in (1, 2, 50):
        gmm = GaussianMixture(
            n_components=data.n_components, warm_start=True, max_iter=max_iter, random_state=rng
        )
        for _ in range(100):
            gmm.fit(X)
            if gmm.converged_:
                break
        assert gmm.converged_
        assert max_iter >= gmm.n_iter_


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_score(dtype):
    rng = np.random.RandomState(0)
    data = RandomData(rng, scale=7)
    X = data.X["full"].astype(dtype)
    gmm1 = GaussianMixture(data.n_components, n_init=1, max_iter=1, reg_covar=0, random_state=rng)
    with pytest.raises(NotFittedError, match=NOT_FITTED):
        gmm1.score(X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        gmm1.fit(X)
    assert gmm1.means_.dtype == gmm1.covariances_.dtype == dtype
    samples = gmm1.score_samples(X)
    # score is the float64 mean (scikit-learn's is the mean in X's dtype): equal to
    # float32 rounding for float32 input.
    assert_almost_equal(gmm1.score(X), samples.mean(), decimal=7 if dtype == np.float64 else 5)
    assert samples.dtype == dtype
    gmm2 = GaussianMixture(data.n_components, n_init=1, reg_covar=0, random_state=rng).fit(X)
    assert gmm2.score(X) > gmm1.score(X)


def test_score_samples():
    rng = np.random.RandomState(0)
    data = RandomData(rng, scale=7)
    X = data.X["full"]
    gmm = GaussianMixture(data.n_components, n_init=1, reg_covar=0, random_state=rng)
    with pytest.raises(NotFittedError, match=NOT_FITTED):
        gmm.score_samples(X)
    assert gmm.fit(X).score_samples(X).shape[0] == data.n_samples


def test_monotonic_likelihood():
    # Each EM iteration without regularisation raises the training likelihood.
    rng = np.random.RandomState(0)
    data = RandomData(rng, scale=7)
    for kind in COVARIANCE_TYPE:
        X = data.X[kind]
        gmm = GaussianMixture(
            n_components=data.n_components,
            covariance_type=kind,
            reg_covar=0,
            warm_start=True,
            max_iter=1,
            random_state=rng,
            tol=1e-7,
        )
        current = -np.inf
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            for _ in range(600):
                previous, current = current, gmm.fit(X).score(X)
                assert current >= previous
                if gmm.converged_:
                    break
        assert gmm.converged_


def test_regularisation():
    # Two clusters of zero covariance: with reg_covar=0 the fit fails with a ValueError;
    # with reg_covar=1e-6 it succeeds.
    rng = np.random.RandomState(0)
    n, d = 10, 5
    X = np.vstack((np.ones((n // 2, d)), np.zeros((n // 2, d))))
    for kind in COVARIANCE_TYPE:
        gmm = GaussianMixture(n_components=n, reg_covar=0, covariance_type=kind, random_state=rng)
        # emcli's message (scikit-learn's says "ill-defined empirical covariance"; both
        # name reg_covar).
        with pytest.raises(ValueError, match="singular.*reg_covar"):
            gmm.fit(X)
        gmm.set_params(reg_covar=1e-6).fit(X)
        assert gmm.model_.collapsed  # emcli reports the collapsed components


@pytest.mark.parametrize("kind", COVARIANCE_TYPE)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_fitted_precision_covariance_concistency(kind, dtype):
    rng = np.random.RandomState(0)
    data = RandomData(rng, scale=7)
    X = data.X[kind].astype(dtype)
    gmm = GaussianMixture(data.n_components, covariance_type=kind, random_state=rng, n_init=5)
    gmm.fit(X)
    assert gmm.precisions_.dtype == gmm.covariances_.dtype == dtype
    decimal = 6 if dtype == np.float64 else 3
    if kind == "full":
        for prec, cov in zip(gmm.precisions_, gmm.covariances_, strict=True):
            assert_allclose(linalg.inv(prec.astype(float)), cov, rtol=10.0**-decimal)
    elif kind == "tied":
        assert_allclose(linalg.inv(gmm.precisions_.astype(float)), gmm.covariances_, rtol=1e-3)
    else:
        assert_allclose(gmm.precisions_, 1.0 / gmm.covariances_, rtol=10.0**-decimal)


def test_sample():
    rng = np.random.RandomState(0)
    data = RandomData(rng, scale=7, n_components=3)
    d, k = data.n_features, data.n_components
    for kind in COVARIANCE_TYPE:
        X = data.X[kind]
        gmm = GaussianMixture(n_components=k, covariance_type=kind, random_state=rng)
        with pytest.raises(NotFittedError, match="This GaussianMixture instance is not fitted"):
            gmm.sample(0)
        gmm.fit(X)
        with pytest.raises(ValueError, match="Invalid value for 'n_samples'"):
            gmm.sample(0)
        n = 20000
        X_s, y_s = gmm.sample(n)
        for j in range(k):
            rows = X_s[y_s == j]
            expected = gmm.covariances_ if kind == "tied" else gmm.covariances_[j]
            if kind in ("full", "tied"):
                got = np.cov(rows.T)
            elif kind == "diag":
                got = np.diag(np.cov(rows.T))
            else:
                got = np.var(rows - gmm.means_[j])
            assert_array_almost_equal(expected, got, decimal=1)
        means_s = np.array([X_s[y_s == j].mean(axis=0) for j in range(k)])
        assert_array_almost_equal(gmm.means_, means_s, decimal=1)
        assert X_s.shape == (n, d)
        for size in range(1, 100):
            assert gmm.sample(size)[0].shape == (size, d)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_init():
    # More starts give a better lower bound.
    for random_state in range(15):
        data = RandomData(np.random.RandomState(random_state), n_samples=50, scale=1)
        X = data.X["full"]
        k = data.n_components
        gmm1 = GaussianMixture(k, n_init=1, max_iter=1, random_state=random_state).fit(X)
        gmm2 = GaussianMixture(k, n_init=10, max_iter=1, random_state=random_state).fit(X)
        assert gmm2.lower_bound_ >= gmm1.lower_bound_


def test_gaussian_mixture_setting_best_params():
    # Starting parameters that diverge (scikit-learn issue 18216): no error, attributes set.
    rnd = np.random.RandomState(0)
    X = rnd.uniform(size=(30, 3))
    means_init = np.array(
        [
            [0.670637869618158, 0.21038256107384043, 0.12892629765485303],
            [0.09394051075844147, 0.5759464955561779, 0.929296197576212],
            [0.5033230372781258, 0.9569852381759425, 0.08654043447295741],
            [0.18578301420435747, 0.5531158970919143, 0.19388943970532435],
            [0.4548589928173794, 0.35182513658825276, 0.568146063202464],
            [0.609279894978321, 0.7929063819678847, 0.9620097270828052],
        ]
    )
    precisions_init = np.array(
        [999999.999604483, 999999.9990869573, 553.7603944542167, 204.78596008931834]
        + [15.867423501783637, 85.4595728389735]
    )
    weights_init = [
        0.03333333333333341,
        0.03333333333333341,
        0.06666666666666674,
        0.06666666666666674,
        0.7000000000000001,
        0.10000000000000007,
    ]
    # Components 0 and 1 (sd 0.001) hold one row each after the first E-step, so with
    # reg_covar=0 their variance is exactly 0: emcli refuses (scikit-learn's expanded
    # formula happens to leave rounding noise above 0).  With a floor the fit goes on.
    settings = dict(
        covariance_type="spherical",
        means_init=means_init,
        weights_init=weights_init,
        n_components=len(weights_init),
        precisions_init=precisions_init,
        max_iter=1,
    )
    # (or, as in scikit-learn, rounding leaves the variance a hair above 0: then it fits)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        try:
            GaussianMixture(**settings, reg_covar=0).fit(X)
        except ValueError as exc:
            assert "singular" in str(exc)
    gmm = GaussianMixture(
        covariance_type="spherical",
        reg_covar=1e-6,
        means_init=means_init,
        weights_init=weights_init,
        random_state=rnd,
        n_components=len(weights_init),
        precisions_init=precisions_init,
        max_iter=1,
    )
    with pytest.warns(ConvergenceWarning):
        gmm.fit(X)
    assert not gmm.converged_
    for attr in ["weights_", "means_", "covariances_", "precisions_cholesky_", "n_iter_"]:
        assert hasattr(gmm, attr)
    assert hasattr(gmm, "lower_bound_") and hasattr(gmm, "lower_bounds_")


@pytest.mark.parametrize("init_params", ["random", "random_from_data", "k-means++", "kmeans"])
@pytest.mark.parametrize("seed", [0, 1, 42])
def test_init_means_not_duplicated(init_params, seed):
    rng = np.random.RandomState(seed)
    data = RandomData(rng, scale=5)
    gmm = GaussianMixture(
        n_components=data.n_components, init_params=init_params, random_state=rng, max_iter=0
    ).fit(data.X["full"])
    for a, b in itertools.combinations(gmm.means_, r=2):
        assert not np.allclose(a, b)


@pytest.mark.parametrize("init_params", ["random", "random_from_data", "k-means++", "kmeans"])
@pytest.mark.parametrize("seed", [0, 1, 42])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_means_for_all_inits(init_params, seed, dtype):
    rng = np.random.RandomState(seed)
    data = RandomData(rng, scale=5)
    X = data.X["full"].astype(dtype)
    gmm = GaussianMixture(
        n_components=data.n_components, init_params=init_params, random_state=rng
    ).fit(X)
    assert gmm.means_.shape == (data.n_components, X.shape[1])
    assert np.all(X.min(axis=0) <= gmm.means_)
    assert np.all(gmm.means_ <= X.max(axis=0))
    assert gmm.converged_
    assert gmm.means_.dtype == gmm.covariances_.dtype == gmm.weights_.dtype == dtype


def test_max_iter_zero():
    # max_iter=0 returns the start: the given means, in the given order.
    rng = np.random.RandomState(0)
    data = RandomData(rng, scale=5)
    means_init = [[20, 30], [30, 25]]
    gmm = GaussianMixture(
        n_components=data.n_components,
        random_state=rng,
        means_init=means_init,
        tol=1e-06,
        max_iter=0,
    ).fit(data.X["full"])
    assert_allclose(gmm.means_, means_init)


def test_gaussian_mixture_precisions_init_diag():
    # Giving the precisions a start would compute gives the same fit, in as many
    # iterations (scikit-learn issue 16944).  The start's precisions are taken from
    # emcli's own k-means start (max_iter=0), where scikit-learn takes its KMeans'.
    rng = np.random.RandomState(0)
    shifted = rng.randn(300, 2) + np.array([20, 20])
    stretched = np.dot(rng.randn(300, 2), np.array([[0.0, -0.7], [3.5, 0.7]]))
    X = np.vstack([shifted, stretched])
    settings = dict(n_components=2, covariance_type="diag", reg_covar=1e-6, random_state=0)
    start = GaussianMixture(**settings, max_iter=0).fit(X)
    with_init = GaussianMixture(**settings, precisions_init=start.precisions_).fit(X)
    without = GaussianMixture(**settings).fit(X)
    assert without.n_iter_ == with_init.n_iter_
    assert_allclose(with_init.precisions_cholesky_, without.precisions_cholesky_)


def test_gaussian_mixture_single_component_stable():
    X = np.random.RandomState(0).multivariate_normal(np.zeros(2), np.identity(2), size=3)
    GaussianMixture(n_components=1).fit(X).sample()


# ------------------------------------------------ sklearn/mixture/tests/test_mixture.py
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_gaussian_mixture_n_iter():
    # One component starts at its optimum: emcli sees no change after the one iteration
    # and calls it converged (scikit-learn needs two bounds to compare); n_iter_ is 1.
    X = np.random.RandomState(0).rand(10, 5)
    est = GaussianMixture(max_iter=1).fit(X)
    assert est.n_iter_ == 1
    est = GaussianMixture(n_components=3, max_iter=1, tol=1e-12, random_state=0).fit(X)
    assert est.n_iter_ == 1 and not est.converged_


def test_mixture_n_components_greater_than_n_samples_error():
    X = np.random.RandomState(0).rand(10, 5)
    with pytest.raises(ValueError, match="Expected n_samples >= n_components"):
        GaussianMixture(n_components=12).fit(X)


def test_verbose_goes_to_stderr_not_stdout():
    # scikit-learn prints to stdout; emcli keeps stdout for data (checked with sys.stdout
    # swapped as scikit-learn's verbose test does).
    old, sys.stdout = sys.stdout, StringIO()
    try:
        X = RandomData(np.random.RandomState(0)).X["full"]
        GaussianMixture(2, verbose=2, random_state=0).fit(X)
        assert sys.stdout.getvalue() == ""
    finally:
        sys.stdout = old

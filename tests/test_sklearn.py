"""emcli.sklearn: scikit-learn's estimator checks, agreement with scikit-learn's class from
the same start, and what it adds (sample_weight, NaN cells, model_, any family).

scikit-learn's own GaussianMixture tests, ported, are in test_sklearn_port.py.
"""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest

pytest.importorskip(
    "sklearn", reason="scikit-learn is not installed (pip install 'emcli-mixture[sklearn]')"
)

from conftest import ROOT, planted_mixture
from scipy.special import logsumexp
from scipy.stats import multivariate_normal
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture as SkGaussianMixture
from sklearn.utils.estimator_checks import parametrize_with_checks

import emcli
from emcli.sklearn import GaussianMixture, MixtureModel

TYPES = ("full", "tied", "diag", "spherical")


def expected_failures(estimator) -> dict[str, str]:
    if estimator.n_components == 1:  # one component: no local optima, the check passes
        return {}
    return {
        "check_sample_weight_equivalence_on_dense_data": (
            "EM from a random start: integer weights and repeated rows take different "
            "random starts, so they may reach different local optima. From the same start "
            "they agree (test_integer_weights_equal_repeated_rows_against_sklearn)."
        )
    }


@parametrize_with_checks(
    [
        GaussianMixture(),
        GaussianMixture(n_components=2, covariance_type="diag"),
        GaussianMixture(missing="error"),
        MixtureModel(),
    ],
    expected_failed_checks=expected_failures,
)
def test_sklearn_estimator_checks(estimator, check) -> None:
    check(estimator)


# ---------------------------------------------------------------- the same as scikit-learn
def start_of(x: np.ndarray, k: int, kind: str) -> dict:
    """Starting parameters (a scikit-learn fit of 0 iterations), as the three *_init."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        gm = SkGaussianMixture(k, covariance_type=kind, max_iter=1, random_state=0).fit(x)
    return dict(weights_init=gm.weights_, means_init=gm.means_, precisions_init=gm.precisions_)


def fit_both(x, k, kind, iters=15, weights=None, x_sklearn=None):
    init = start_of(x, k, kind)
    settings = dict(covariance_type=kind, tol=0.0, max_iter=iters, **init)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = GaussianMixture(k, **settings).fit(x, sample_weight=weights)
        theirs = SkGaussianMixture(k, init_params="random_from_data", **settings)
        theirs.fit(x if x_sklearn is None else x_sklearn)
    return ours, theirs


@pytest.mark.parametrize("kind", TYPES)
def test_same_fit_as_sklearn_from_the_same_start(kind: str) -> None:
    planted = planted_mixture(kind, k=3, d=3, n=1500, seed=4)
    x = planted.x
    ours, theirs = fit_both(x, 3, kind)
    assert ours.n_iter_ == theirs.n_iter_ == 15
    for name in ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_"):
        got, want = getattr(ours, name), getattr(theirs, name)
        assert got.shape == want.shape, name
        np.testing.assert_allclose(got, want, rtol=1e-7, atol=1e-9, err_msg=name)
    np.testing.assert_allclose(ours.score_samples(x), theirs.score_samples(x), rtol=1e-10)
    np.testing.assert_allclose(ours.predict_proba(x), theirs.predict_proba(x), atol=1e-8)
    assert ours.score(x) == pytest.approx(theirs.score(x), rel=1e-12)
    assert ours.bic(x) == pytest.approx(theirs.bic(x), rel=1e-12)
    assert ours.aic(x) == pytest.approx(theirs.aic(x), rel=1e-12)
    # The trajectories, one step apart (emcli's bound after its M-step t, scikit-learn's
    # before its M-step t + 1).
    np.testing.assert_allclose(ours.lower_bounds_[:-1], theirs.lower_bounds_[1:], rtol=1e-10)


@pytest.mark.parametrize("kind", ("full", "diag"))
def test_integer_weights_equal_repeated_rows_against_sklearn(kind: str) -> None:
    planted = planted_mixture(kind, k=2, d=2, n=400, seed=8)
    w = np.random.default_rng(3).integers(0, 4, size=400)
    repeated = np.repeat(planted.x, w, axis=0)
    # emcli with weights on the rows; scikit-learn on the rows repeated (its start from
    # the repeated rows too, so both run from one start).
    init = start_of(repeated, 2, kind)
    settings = dict(covariance_type=kind, tol=0.0, max_iter=10, **init)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = GaussianMixture(2, **settings).fit(planted.x, sample_weight=w)
        theirs = SkGaussianMixture(2, init_params="random_from_data", **settings).fit(repeated)
    np.testing.assert_allclose(ours.weights_, theirs.weights_, rtol=1e-9)
    np.testing.assert_allclose(ours.means_, theirs.means_, rtol=1e-9)
    np.testing.assert_allclose(ours.covariances_, theirs.covariances_, rtol=1e-8)
    assert ours.lower_bound_ == pytest.approx(theirs.score(repeated), rel=1e-10)
    assert ours.score(planted.x, sample_weight=w) == pytest.approx(theirs.score(repeated))


def test_tol_is_on_the_mean_log_likelihood_per_row() -> None:
    x = planted_mixture("full", k=3, d=2, n=2000, seed=2).x
    gm = GaussianMixture(3, tol=1e-4, random_state=0, max_iter=500).fit(x)
    bounds = np.array([gm.model_.history[0] / 2000, *gm.lower_bounds_])
    changes = np.abs(np.diff(bounds))
    assert gm.converged_ and changes[-1] < 1e-4 and np.all(changes[:-1] >= 1e-4)
    assert np.all(np.diff(bounds) > -1e-12)  # EM never lowers the likelihood


# ---------------------------------------------------------------- beyond scikit-learn
def test_nan_cells_are_fitted_by_their_marginal_density() -> None:
    planted = planted_mixture("full", k=2, d=3, n=600, seed=5)
    x = planted.x.copy()
    gaps = np.random.default_rng(1).random(x.shape) < 0.1
    x[gaps] = np.nan
    gm = GaussianMixture(2, random_state=0).fit(x)
    assert gm.model_.extra["missing"]["cells"] == int(gaps.sum())
    # Independent reference: log sum_j w_j N(x_o | m_jo, S_joo) by scipy, row by row.
    logp = gm.score_samples(x)
    for i in np.flatnonzero(gaps.any(axis=1))[:20]:
        o = ~gaps[i]
        if not o.any():
            assert logp[i] == pytest.approx(0.0)
            continue
        terms = [
            np.log(gm.weights_[j])
            + multivariate_normal(gm.means_[j][o], gm.covariances_[j][np.ix_(o, o)]).logpdf(x[i, o])
            for j in range(2)
        ]
        assert logp[i] == pytest.approx(logsumexp(terms), rel=1e-10)
    assert np.isfinite(gm.predict_proba(x)).all()
    # The fit recovers the planted means despite the gaps.
    order = np.argsort(gm.means_[:, 0])
    truth = np.argsort(planted.means[:, 0])
    np.testing.assert_allclose(gm.means_[order], planted.means[truth], atol=0.3)


def test_missing_error_refuses_nan() -> None:
    x = np.random.default_rng(0).normal(size=(50, 2))
    x[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        GaussianMixture(missing="error").fit(x)
    gm = GaussianMixture(missing="drop").fit(x)
    assert gm.model_.extra["missing"]["rows_dropped"] == 1
    assert np.isfinite(gm.predict_proba(x)).all()


def test_model_is_the_emcli_model(tmp_path) -> None:
    x = planted_mixture("diag", k=2, d=2, n=300, seed=1).x
    gm = GaussianMixture(2, covariance_type="diag", random_state=0).fit(x)
    assert isinstance(gm.model_, emcli.GaussianMixtureModel)
    path = tmp_path / "model.json"
    gm.model_.save(path)
    loaded = emcli.load(str(path))
    np.testing.assert_array_equal(loaded.predict(x), gm.predict(x))
    np.testing.assert_allclose(loaded.score_samples(x), gm.score_samples(x), rtol=1e-12)
    from emcli.apply import describe

    assert len(describe(loaded)["components"]) == 2
    # A saved model warm-starts an estimator's library fit the same way.
    again = emcli.fit(x, 2, init=loaded, max_iter=0, reorder=False)
    np.testing.assert_allclose(again.means, gm.means_)


def test_feature_names_from_a_dataframe() -> None:
    pd = pytest.importorskip("pandas")
    x = planted_mixture("full", k=2, d=2, n=200, seed=3).x
    df = pd.DataFrame(x, columns=["height", "weight"])
    gm = GaussianMixture(2, random_state=0).fit(df)
    assert list(gm.feature_names_in_) == ["height", "weight"]
    assert gm.model_.columns == ["height", "weight"]
    with pytest.warns(UserWarning, match="does not have valid feature names"):
        np.testing.assert_array_equal(gm.predict(df), gm.predict(x))
    with pytest.raises(ValueError, match="feature names"):
        gm.predict(df.rename(columns={"weight": "mass"}))


@pytest.mark.parametrize(
    ("mclust", "kind"), [("VVV", "full"), ("EEE", "tied"), ("VII", "spherical")]
)
def test_mclust_names_are_the_same_models(mclust: str, kind: str) -> None:
    x = planted_mixture(kind, k=2, d=3, n=400, seed=6).x
    a = GaussianMixture(2, covariance_type=mclust, random_state=1).fit(x)
    b = GaussianMixture(2, covariance_type=kind, random_state=1).fit(x)
    assert a.covariances_.shape == b.covariances_.shape
    np.testing.assert_allclose(a.covariances_, b.covariances_)


def test_library_errors_are_value_errors() -> None:
    x = np.random.default_rng(0).normal(size=(20, 2))
    with pytest.raises(ValueError, match="covariance_type"):
        GaussianMixture(covariance_type="banana").fit(x)
    with pytest.raises(ValueError, match="covariance type"):
        GaussianMixture(covariance_type="banana", precisions_init=np.ones(1)).fit(x)
    with pytest.raises(ValueError, match="covariance_type"):
        GaussianMixture(covariance_type="banana", means_init=np.zeros((1, 2))).fit(x)
    with pytest.raises(ValueError, match="Expected n_samples >= n_components"):
        GaussianMixture(n_components=21).fit(x)
    with pytest.raises(ValueError, match="sample_weight"):
        GaussianMixture().fit(x, sample_weight=np.ones(19))
    with pytest.raises(ValueError, match="sample_weight"):
        GaussianMixture().fit(x, sample_weight=-np.ones(20))
    with pytest.raises(ValueError, match="family"):
        MixtureModel(family="no-such-family").fit(x)
    with pytest.raises(ValueError, match="init_params"):
        GaussianMixture(init_params="kmeans2").fit(x)
    warm = GaussianMixture(2, warm_start=True, random_state=0).fit(x)
    with pytest.raises(ValueError, match="columns"):
        warm.fit(np.random.default_rng(1).normal(size=(20, 3)))


def test_generic_estimator_over_the_family_registry() -> None:
    x = planted_mixture("diag", k=2, d=2, n=300, seed=9).x
    generic = MixtureModel(2, family="gaussian", covariance_type="diag", random_state=4).fit(x)
    gaussian = GaussianMixture(2, covariance_type="diag", random_state=4).fit(x)
    assert generic.model_.family_name == "gaussian"
    np.testing.assert_allclose(generic.weights_, gaussian.weights_)
    np.testing.assert_allclose(generic.score_samples(x), gaussian.score_samples(x))
    assert generic.bic(x) == pytest.approx(gaussian.bic(x))
    assert clone(generic).get_params()["family"] == "gaussian"
    for init in ("random", "random_from_data", "k-means++"):
        fitted = MixtureModel(2, init_params=init, random_state=0, n_init=2).fit(x)
        assert fitted.converged_


def test_random_state_int_is_emcli_seed() -> None:
    x = planted_mixture("full", k=3, d=2, n=500, seed=7).x
    gm = GaussianMixture(3, random_state=5, n_init=3).fit(x)
    model = emcli.fit(
        x, 3, seed=5, n_restarts=3, tol=1e-3, max_iter=100, reorder=False, init="kmeans"
    )
    assert gm.model_.log_likelihood == model.log_likelihood
    np.testing.assert_array_equal(gm.means_, model.means)
    draws = gm.sample(50)[0]
    np.testing.assert_array_equal(draws, gm.sample(50)[0])  # an int seeds every call alike


def test_pipeline_and_grid_search() -> None:
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x = planted_mixture("full", k=3, d=2, n=600, seed=12).x * 100.0
    pipe = make_pipeline(StandardScaler(), GaussianMixture(3, random_state=0)).fit(x)
    assert pipe.predict(x).shape == (600,)
    grid = GridSearchCV(
        GaussianMixture(random_state=0),
        {"n_components": [1, 2, 3, 4], "covariance_type": ["full", "diag"]},
        cv=3,
    ).fit(x)
    # score is the held-out mean log-likelihood; the planted k=3 (or more) wins.
    assert grid.best_params_["n_components"] >= 3


# ---------------------------------------------------------------- optional dependency
def test_import_emcli_never_imports_sklearn() -> None:
    code = (
        "import sys, numpy as np, emcli\n"
        "m = emcli.fit(np.random.default_rng(0).normal(size=(50, 2)), 2)\n"
        "assert 'sklearn' not in sys.modules, 'emcli imported sklearn'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_without_sklearn_the_error_names_the_extra() -> None:
    code = (
        "import sys\n"
        "sys.modules['sklearn'] = None  # as if scikit-learn were not installed\n"
        "try:\n"
        "    import emcli.sklearn\n"
        "except ImportError as exc:\n"
        "    assert \"pip install 'emcli-mixture[sklearn]'\" in str(exc), exc\n"
        "else:\n"
        "    raise SystemExit('no ImportError')\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_benchmark_quick_run(tmp_path) -> None:
    import importlib.util
    import json

    spec = importlib.util.spec_from_file_location(
        "bench_sklearn", ROOT / "benchmarks" / "bench_sklearn.py"
    )
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    assert bench.main(["--quick", "--out", str(tmp_path)]) == 0
    (result,) = tmp_path.glob("quick-*.json")
    cases = json.loads(result.read_text())["cases"]
    assert [c["type"] for c in cases] == ["full", "diag"]
    for case in cases:
        # Both estimators ran the same iterations from the same start.
        assert case["rel_score_diff"] <= 1e-10
        assert case["max_rel_trajectory_diff"] <= 1e-10
        assert case["emcli_fit_s"] > 0 and case["sklearn_fit_s"] > 0
    assert (tmp_path / result.name.replace(".json", ".txt")).read_text().count("shared") == 1

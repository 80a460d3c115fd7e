"""``emcli.fit`` and the fitted model, against scikit-learn at the same parameters."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from conftest import COVARIANCE_TYPES, planted_mixture, sklearn_at

import emcli
from emcli.engines.memory import MemoryEngine
from emcli.errors import DataError, UsageError
from emcli.families.gaussian import GaussianParams
from emcli.model import GaussianMixtureModel


def model_from_sklearn(gm, x: np.ndarray) -> GaussianMixtureModel:
    """An emcli model holding a fitted scikit-learn mixture's parameters; its
    log-likelihood is emcli's own E-step over x."""
    params = GaussianParams.from_covariances(
        gm.covariance_type, gm.weights_, gm.means_, gm.covariances_
    )
    ll = MemoryEngine(x, block_size=13).e_step(params).log_likelihood
    return GaussianMixtureModel(params, [f"x{j}" for j in range(x.shape[1])], ll, x.shape[0])


@pytest.mark.parametrize("kind", COVARIANCE_TYPES)
def test_bic_aic_and_parameter_count_equal_sklearn(kind: str) -> None:
    from sklearn.mixture import GaussianMixture

    x = planted_mixture(kind, k=3, d=3, n=400, seed=2, separation=3.0).x
    gm = GaussianMixture(3, covariance_type=kind, tol=1e-10, max_iter=2000, random_state=0)
    gm.fit(x)
    assert gm.converged_
    model = model_from_sklearn(gm, x)
    assert model.n_parameters == gm._n_parameters()
    assert model.bic == pytest.approx(gm.bic(x), rel=1e-10)
    assert model.aic == pytest.approx(gm.aic(x), rel=1e-10)
    # and emcli's own fit, judged by scikit-learn at emcli's parameters
    fitted = emcli.fit(x, 3, covariance_type=kind, n_restarts=3)
    assert fitted.bic == pytest.approx(sklearn_at(fitted).bic(x), rel=1e-10)
    assert fitted.aic == pytest.approx(sklearn_at(fitted).aic(x), rel=1e-10)
    # emcli converges at least as far as scikit-learn does
    assert fitted.log_likelihood >= model.log_likelihood - 1e-6 * abs(model.log_likelihood)


@pytest.mark.parametrize("kind", COVARIANCE_TYPES)
def test_predictions_equal_sklearn_at_the_same_parameters(kind: str) -> None:
    planted = planted_mixture(kind, k=3, d=2, n=300, seed=8, separation=2.0)
    model = emcli.fit(planted.x, 3, covariance_type=kind, n_restarts=2)
    gm = sklearn_at(model)
    x_new = np.random.default_rng(0).normal(scale=5.0, size=(100, 2))
    np.testing.assert_allclose(
        model.predict_proba(x_new), gm.predict_proba(x_new), rtol=1e-8, atol=1e-12
    )
    np.testing.assert_allclose(model.score_samples(x_new), gm.score_samples(x_new), rtol=1e-10)
    np.testing.assert_array_equal(model.predict(x_new), gm.predict(x_new))
    assert model.log_likelihood == pytest.approx(gm.score(planted.x) * 300, rel=1e-10)


def test_classic_sample(classic_csv) -> None:
    table = emcli.read_table(str(classic_csv))
    model = emcli.fit(table.x, 2, columns=table.columns)
    assert model.columns == ["x"] and model.n_samples == 1000
    order = np.argsort(model.means[:, 0])
    np.testing.assert_allclose(model.means[order, 0], [0.0, 5.0], atol=0.15)
    np.testing.assert_allclose(model.weights[order], [0.3, 0.7], atol=0.03)
    np.testing.assert_allclose(model.covariances[order, 0, 0], [1.0, 1.0], atol=0.2)
    assert model.converged and not model.collapsed


def test_fit_reaches_sklearns_optimum_on_classic(classic_csv) -> None:
    from sklearn.mixture import GaussianMixture

    x = emcli.read_table(str(classic_csv)).x
    gm = GaussianMixture(2, tol=1e-12, max_iter=5000, n_init=3, random_state=0).fit(x)
    model = emcli.fit(x, 2)
    assert model.log_likelihood == pytest.approx(gm.score(x) * len(x), rel=1e-8)


def test_dataframe_columns_are_kept_and_history_is_monotone() -> None:
    planted = planted_mixture("full", k=2, d=2, n=200, seed=1)
    frame = pd.DataFrame(planted.x, columns=["height", "mass"])
    model = emcli.fit(frame, 2, n_restarts=2)
    assert model.columns == ["height", "mass"]
    assert model.history[-1] == model.log_likelihood
    assert len(model.history) == model.n_iter + 1
    steps = zip(model.history, model.history[1:], strict=False)
    assert all(b >= a - 1e-9 * abs(a) for a, b in steps)
    assert [s["start"] for s in model.starts] == [0, 1]


def test_same_seed_gives_the_same_model_file() -> None:
    x = planted_mixture("full", k=3, d=2, n=300, seed=3, separation=2.5).x
    a = emcli.fit(x, 3, seed=5, n_restarts=3).to_json()
    b = emcli.fit(x, 3, seed=5, n_restarts=3).to_json()
    assert a == b


def test_model_file_round_trip(tmp_path) -> None:
    planted = planted_mixture("tied", k=3, d=2, n=300, seed=6)
    model = emcli.fit(planted.x, 3, covariance_type="tied", n_restarts=2)
    path = tmp_path / "model.json"
    model.save(path)
    data = json.loads(path.read_text())
    assert np.array(data["covariances"]).shape == (3, 2, 2)
    back = emcli.load(str(path))
    assert back.covariance_type == "tied"
    np.testing.assert_array_equal(back.covariances, model.covariances)
    np.testing.assert_array_equal(back.predict_proba(planted.x), model.predict_proba(planted.x))
    assert back.bic == model.bic


def test_non_convergence_is_a_warning() -> None:
    x = planted_mixture("full", k=3, d=2, n=300, seed=3, separation=1.5).x
    model = emcli.fit(x, 3, max_iter=2, tol=1e-12, n_restarts=1)
    assert not model.converged and model.n_iter == 2
    assert any("--max-iter" in w for w in model.warnings)


@pytest.mark.parametrize(
    ("x", "k", "message"),
    [
        (np.array([[1.0, 2.0], [np.inf, 1.0], [3.0, 3.0]]), 2, "infinite"),
        (np.arange(6.0).reshape(3, 2), 4, "at most n_components 3"),
        (np.array([[1.0, 2.0], [1e160, 1.0], [3.0, 3.0]]), 2, "too large"),
        (np.empty((0, 2)), 1, "no rows"),
        (np.zeros((2, 2, 2)), 1, "2-D"),
    ],
)
def test_data_errors(x, k, message) -> None:
    with pytest.raises(DataError, match=message):
        emcli.fit(x, k)


def test_missing_values_are_refused_on_request() -> None:
    x = np.array([[1.0, 2.0], [np.nan, 1.0], [3.0, 3.0]])
    with pytest.raises(DataError, match="missing value"):
        emcli.fit(x, 2, missing="error")


@pytest.mark.parametrize(
    "options",
    [
        {"n_components": 0},
        {"covariance_type": "banana"},
        {"init": "nope"},
        {"n_restarts": 0},
        {"tol": -1.0},
        {"tol": math.nan},
        {"reg_covar": -1e-6},
        {"max_iter": -1},
    ],
)
def test_invalid_settings_are_usage_errors(options) -> None:
    x = np.random.default_rng(0).normal(size=(20, 2))
    kwargs = {"n_components": 2, **options}
    with pytest.raises(UsageError):
        emcli.fit(x, **kwargs)


def test_k_equal_to_rows_is_flagged_degenerate_without_nan() -> None:
    x = np.random.default_rng(1).normal(size=(5, 2))
    model = emcli.fit(x, 5, n_restarts=2)
    assert model.collapsed
    text = model.to_json()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text)["degenerate"] is True
    assert np.all(np.isfinite(model.predict_proba(x)))

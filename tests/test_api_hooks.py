"""The library hooks the scikit-learn estimator uses: ``init`` as a start function,
``reorder=False``, and Gaussian parameters from precision matrices."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import planted_mixture

import emcli
from emcli.families.gaussian import GaussianParams


def test_start_function_is_called_once_per_start_with_its_own_stream() -> None:
    x = planted_mixture("full", k=2, d=2, n=300, seed=1).x

    def recording(log):
        def start(sample, k, rng, weights):
            log.append(rng.random())
            means = sample[rng.choice(sample.shape[0], size=k, replace=False)]
            return GaussianParams.from_covariances(
                "diag", np.full(k, 1.0 / k), means, np.ones((k, sample.shape[1]))
            )

        return start

    calls: list[float] = []
    model = emcli.fit(x, 2, covariance_type="diag", init=recording(calls), n_restarts=3, seed=4)
    assert len(calls) == 3 and len(set(calls)) == 3
    assert model.settings["init"] == "function"
    again: list[float] = []
    emcli.fit(x, 2, covariance_type="diag", init=recording(again), n_restarts=3, seed=4)
    assert again == calls  # the same seed gives every start the same stream


def test_reorder_false_keeps_the_start_order() -> None:
    x = planted_mixture("full", k=2, d=2, n=400, seed=2).x
    model = emcli.fit(x, 2, seed=0)
    order = np.argsort(-model.weights)
    assert np.array_equal(order, [0, 1])  # canonical: decreasing weight
    flipped = GaussianParams.from_covariances(
        "full", model.weights[::-1].copy(), model.means[::-1].copy(), model.covariances[::-1]
    )

    def start(sample, k, rng, weights):
        return flipped

    kept = emcli.fit(x, 2, init=start, n_restarts=1, reorder=False, max_iter=0)
    np.testing.assert_array_equal(kept.means, flipped.means)
    sorted_again = emcli.fit(x, 2, init=start, n_restarts=1, max_iter=0)
    np.testing.assert_array_equal(sorted_again.means, model.means)


@pytest.mark.parametrize("kind", ["full", "tied", "diag", "spherical"])
def test_params_from_precisions_invert_them(kind: str) -> None:
    rng = np.random.default_rng(0)
    k, d = 3, 4
    a = rng.normal(size=(k, d, d))
    full = a @ a.transpose(0, 2, 1) + d * np.eye(d)
    cov = {
        "full": full,
        "tied": full[0],
        "diag": np.diagonal(full, axis1=1, axis2=2).copy(),
        "spherical": full[:, 0, 0].copy(),
    }[kind]
    prec = np.linalg.inv(cov) if kind in ("full", "tied") else 1.0 / cov
    params = GaussianParams.from_precisions(kind, np.full(k, 1 / k), rng.normal(size=(k, d)), prec)
    np.testing.assert_allclose(params.covariances, cov, rtol=1e-10)
    np.testing.assert_allclose(params.precisions(), prec, rtol=1e-10)
    with pytest.raises(emcli.FitError, match="singular"):
        GaussianParams.from_precisions(kind, np.full(k, 1 / k), np.zeros((k, d)), -prec)

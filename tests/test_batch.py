"""The batched loop of several starts (``small.run_batch``, model selection's exploratory
runs): each start's trajectory is scikit-learn's from that start, every model's reported
log-likelihood is the mixture density of its parameters (scipy), a failing start leaves the
batch alone, and a selection's explore phase takes it."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import logsumexp
from scipy.stats import multivariate_normal
from test_em import overlapping_data, sklearn_trajectory

from emcli.errors import FitError
from emcli.families.gaussian import GaussianFamily, small
from emcli.families.gaussian.models import MCLUST_MODELS

REG = 1e-6


def _starts(x, kind, k, n=3):
    family = GaussianFamily(kind, reg_covar=REG)
    methods = ["hc", "kmeans", "kmeans++", "random"]
    return [family.start(x, k, methods[i % 4], np.random.default_rng(i)) for i in range(n)]


def _scipy_loglik(x, params):
    cov = params.full_covariances()
    dens = [
        np.log(params.weights[j]) + multivariate_normal(params.means[j], cov[j]).logpdf(x)
        for j in range(params.n_components)
    ]
    return float(logsumexp(np.array(dens), axis=0).sum())


@pytest.mark.parametrize("kind", ["full", "tied", "diag", "spherical"])
def test_each_start_follows_sklearns_trajectory(kind):
    x = overlapping_data(seed=3)
    starts = _starts(x, kind, 3, n=4)
    out = small.run_batch(x, None, starts, REG, 30, 0.0)
    assert len(out) == 4
    for p0, (params, ll, n_iter, converged, history) in zip(starts, out, strict=True):
        want, gm = sklearn_trajectory(x, p0, 30, REG)
        assert n_iter == 30 and not converged
        np.testing.assert_allclose(history, want, rtol=1e-8, atol=0)
        np.testing.assert_allclose(params.means, gm.means_, rtol=1e-6, atol=1e-8)
        np.testing.assert_allclose(params.covariances, gm.covariances_, rtol=1e-6, atol=1e-8)
        assert ll == history[-1]
    # the starts differ, so the batch is not one start four times
    assert len({round(o[1], 6) for o in out}) > 1


@pytest.mark.parametrize("name", MCLUST_MODELS)
def test_every_model_reports_the_likelihood_of_its_parameters(name):
    x = overlapping_data(seed=7, d=3)
    out = small.run_batch(x, None, _starts(x, name, 3), REG, 200, 1e-7)
    for params, ll, n_iter, converged, history in out:
        assert ll == pytest.approx(_scipy_loglik(x, params), rel=1e-9)
        assert all(b >= a - 1e-9 * abs(a) for a, b in zip(history, history[1:], strict=False))
        assert converged == (abs(history[-1] - history[-2]) / len(x) < 1e-7)
        assert len(history) == n_iter + 1


def test_weights_count_as_repeated_rows():
    x = overlapping_data(seed=2, n=80)
    counts = np.random.default_rng(0).integers(1, 4, size=len(x))
    starts = _starts(x, "VEV", 2)
    weighted = small.run_batch(x, counts.astype(float), starts, REG, 15, 0.0)
    repeated = small.run_batch(np.repeat(x, counts, axis=0), None, starts, REG, 15, 0.0)
    for a, b in zip(weighted, repeated, strict=True):
        np.testing.assert_allclose(a[4], b[4], rtol=1e-9)


def test_a_failing_start_leaves_the_others_running():
    from emcli.families.gaussian import GaussianParams
    from emcli.families.gaussian.stats import params_from_labels

    x = np.random.default_rng(1).normal(size=(60, 2))
    model = GaussianFamily("full").model
    labels = (x[:, 0] > 0).astype(int)
    centers = np.array([x[labels == j].mean(axis=0) for j in range(2)])
    good = params_from_labels(x, labels, centers, model, 0.0, None)
    # a component far from every row with a tiny covariance: no row is its own, and with
    # no floor (reg_covar 0) its next covariance is singular
    cov = good.covariances.copy()
    cov[1] = 1e-12 * np.eye(2)
    means = np.array([x.mean(axis=0), [50.0, 50.0]])
    bad = GaussianParams.from_covariances(model, np.array([0.5, 0.5]), means, cov)
    out = small.run_batch(x, None, [bad, good], 0.0, 50, 1e-8)
    assert isinstance(out[0], FitError)
    params, ll, *_ = out[1]
    assert ll == pytest.approx(_scipy_loglik(x, params), rel=1e-9)
    alone = small.run(x, None, good, 0.0, 50, 1e-8)
    assert alone[1] == ll


def _batch_sizes(monkeypatch) -> list[int]:
    """The number of starts of every call of ``small.run_batch`` from now on."""
    calls: list[int] = []
    real = small.run_batch

    def spy(x, weights, starts, *args, **kwargs):
        calls.append(len(starts))
        return real(x, weights, starts, *args, **kwargs)

    monkeypatch.setattr(small, "run_batch", spy)
    return calls


def test_selection_explores_and_polishes_its_starts_in_batches(monkeypatch):
    import emcli.em.selection as selection

    calls = _batch_sizes(monkeypatch)
    x = overlapping_data(seed=5)
    winner, cands = selection.select(x, ["a", "b"], range(1, 6), ["VVV", "EEE"], jobs=1)
    assert winner is not None and len(cands) > selection.CONTENDERS  # screened
    # every candidate's screening fit is its hc start alone (SQUAREM, no batch); each
    # contender's 10 starts go in one batch, and the two starts each of those fits polishes
    # (the hc start and the best other) in another
    assert selection.SCREEN_STARTS == 1
    refitted = [c for c in cands if c.model.settings["n_restarts"] == 10]
    assert refitted and calls.count(10) >= len(refitted) and calls.count(2) >= 1
    assert set(calls) == {10, 2}


def test_a_coarse_tolerance_explores_in_batches_too(monkeypatch):
    """A tolerance coarser than the exploration's (1e-5 per row) used to turn the two phases
    off: every start then ran alone by plain EM, and a selection took 4 times longer than
    at the default tolerance.  Now the starts explore to that tolerance in one batch, and
    a candidate's best start meets it."""
    import emcli.em.selection as selection

    calls = _batch_sizes(monkeypatch)
    x = overlapping_data(seed=5)
    winner, cands = selection.select(x, ["a", "b"], range(1, 6), ["VVV", "EEE"], jobs=1, tol=1e-4)
    assert winner is not None
    assert calls.count(10) >= 1  # the contenders' refits
    rows = [c.row() for c in cands]
    assert all(r["status"] == "ok" and r["converged"] for r in rows), rows
    # the same winner as at the default tolerance, its log-likelihood within the tolerance's
    # reach (1e-4 per row, over the rows)
    fine, _ = selection.select(x, ["a", "b"], range(1, 6), ["VVV", "EEE"], jobs=1)
    assert (winner.n_components, winner.covariance_type) == (
        fine.n_components,
        fine.covariance_type,
    )
    assert abs(winner.model.log_likelihood - fine.model.log_likelihood) < 1e-4 * len(x) * 50

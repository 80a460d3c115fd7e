"""Properties of EM (issue 8), over random shapes, scales, seeds and every covariance type.

Hypothesis draws the data's shape, scale, offset and seed; each property is checked against
a fact of the mathematics, not against numbers emcli produced earlier:

* EM never lowers the log-likelihood (beyond rounding), in every start;
* responsibilities are probabilities that sum to 1; nothing is NaN or inf;
* from the same starting point, EM on the rows in another order follows the same path;
* EM commutes with x -> s x + c: the log-likelihood moves by -n d log s (the Jacobian), the
  parameters transform, the partition is the same;
* degenerate data (a component on one point, a component that loses all its weight) gives
  no NaN and is reported in the model and on stderr.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from clirun import run
from gaussian_steps import gaussian_em
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import emcli
from emcli.em import likelihood_decreases
from emcli.engines.memory import MemoryEngine
from emcli.families.gaussian import GaussianFamily, GaussianParams, collapsed_components

KINDS = ("full", "tied", "diag", "spherical")
BOUNDED = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def mixture_data(
    seed: int,
    n: int,
    d: int,
    k: int,
    scale: float = 1.0,
    shift: float = 0.0,
    separation: float = 3.0,
) -> np.ndarray:
    """n rows from k Gaussian blobs (centres ``separation`` apart per unit spread)."""
    rng = np.random.default_rng(seed)
    centres = separation * rng.normal(size=(k, d))
    x = centres[np.arange(n) % k] + rng.normal(size=(n, d))
    return scale * x + shift


def separated_data(seed: int, n: int, d: int, k: int = 3, separation: float = 25.0):
    """k blobs whose centres lie ``separation`` unit spreads apart on a random line."""
    rng = np.random.default_rng(seed)
    direction = rng.normal(size=d)
    direction /= np.linalg.norm(direction)
    centres = separation * np.arange(k)[:, None] * direction[None, :]
    return centres[np.arange(n) % k] + rng.normal(size=(n, d))


def start_params(x: np.ndarray, k: int, kind: str, seed: int) -> GaussianParams:
    """A deterministic starting point that does not depend on the row order: the means are
    k rows chosen by value (sorted), the covariances the data's own."""
    rng = np.random.default_rng(seed)
    rows = x[np.lexsort(x.T[::-1])]
    means = rows[np.sort(rng.choice(len(rows), size=k, replace=False))].copy()
    d = x.shape[1]
    cov = np.atleast_2d(np.cov(x, rowvar=False)) + 1e-3 * np.var(x) * np.eye(d)
    native = {
        "full": np.repeat(cov[None], k, axis=0),
        "tied": cov,
        "diag": np.repeat(np.diag(cov)[None], k, axis=0),
        "spherical": np.full(k, np.trace(cov) / d),
    }[kind]
    return GaussianParams.from_covariances(kind, np.full(k, 1.0 / k), means, native)


def transformed(params: GaussianParams, scale: float, shift: float) -> GaussianParams:
    return GaussianParams.from_covariances(
        params.covariance_type,
        params.weights,
        scale * params.means + shift,
        scale**2 * params.covariances,
    )


def same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    pairs = set(zip(a.tolist(), b.tolist(), strict=True))
    return len(pairs) == len(set(a.tolist())) == len(set(b.tolist()))


def assert_all_finite(model) -> None:
    for value in (model.weights, model.means, model.covariances, model.history):
        assert np.all(np.isfinite(value))
    assert math.isfinite(model.log_likelihood) and math.isfinite(model.bic)


shapes = st.fixed_dictionaries(
    {
        "seed": st.integers(0, 2**32 - 1),
        "n": st.integers(8, 80),
        "d": st.integers(1, 4),
        "k": st.integers(1, 4),
        "kind": st.sampled_from(KINDS),
        "log_scale": st.floats(-4, 4),
        "shift": st.floats(-1e4, 1e4),
        # Rows per E-step block: n is larger than one block, so the row order and the sums
        # cross block boundaries (a shuffle moves rows between blocks).
        "block": st.integers(3, 7),
    }
)


# ---------------------------------------------------------------------------- fit
@BOUNDED
@given(shapes, st.sampled_from(("kmeans", "kmeans++", "random")))
def test_fit_never_lowers_the_likelihood_and_outputs_are_finite(p, init):
    scale = 10.0 ** p["log_scale"]
    x = mixture_data(p["seed"], p["n"], p["d"], p["k"], scale, p["shift"])
    model = emcli.fit(
        x,
        p["k"],
        covariance_type=p["kind"],
        init=init,
        n_restarts=2,
        max_iter=40,
        tol=0,
        reg_covar=1e-6 * scale**2,
        seed=p["seed"] % 1000,
    )
    for start in model.starts:
        assert likelihood_decreases(start["history"]) == [], start
    assert likelihood_decreases(model.history) == []
    assert model.history[-1] == pytest.approx(model.log_likelihood, rel=1e-12)
    assert_all_finite(model)
    resp = model.predict_proba(x)
    assert np.all(np.isfinite(resp)) and np.all(resp >= 0) and np.all(resp <= 1)
    np.testing.assert_allclose(resp.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    assert np.all(np.isfinite(model.score_samples(x)))
    assert model.weights.sum() == pytest.approx(1.0, abs=1e-12)


# ---------------------------------------------------------------------------- row order
@BOUNDED
@given(shapes)
def test_em_from_one_start_ignores_the_row_order(p):
    x = mixture_data(p["seed"], p["n"], p["d"], p["k"])
    k = min(p["k"], len(np.unique(x, axis=0)))
    params = start_params(x, k, p["kind"], p["seed"])
    perm = np.random.default_rng(p["seed"]).permutation(len(x))
    assert len(x) > p["block"]  # several blocks, rows shuffled across them
    a = gaussian_em(MemoryEngine(x, block_size=p["block"]), params, 15, 0.0, 1e-6)
    b = gaussian_em(MemoryEngine(x[perm], block_size=p["block"] + 1), params, 15, 0.0, 1e-6)
    np.testing.assert_allclose(b[4], a[4], rtol=1e-8, atol=1e-8 * len(x))
    np.testing.assert_allclose(b[0].means, a[0].means, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(b[0].weights, a[0].weights, rtol=1e-6, atol=1e-10)


@BOUNDED
@given(st.integers(0, 2**32 - 1), st.sampled_from(KINDS), st.integers(1, 3))
def test_fit_on_separated_clusters_ignores_the_row_order(seed, kind, d):
    x = separated_data(seed, 90, d)
    perm = np.random.default_rng(seed).permutation(len(x))
    a = emcli.fit(x, 3, covariance_type=kind, n_restarts=3, seed=1)
    b = emcli.fit(x[perm], 3, covariance_type=kind, n_restarts=3, seed=1)
    assert b.log_likelihood == pytest.approx(a.log_likelihood, rel=1e-8)
    assert same_partition(b.predict(x), a.predict(x))
    assert same_partition(a.predict(x), np.arange(90) % 3)  # the planted truth


# ---------------------------------------------------------------------------- x -> s x + c
@BOUNDED
@given(shapes)
def test_em_commutes_with_shifting_and_scaling(p):
    scale, shift = 10.0 ** p["log_scale"], p["shift"]
    x = mixture_data(p["seed"], p["n"], p["d"], p["k"])
    n, d = x.shape
    k = min(p["k"], len(np.unique(x, axis=0)))
    params = start_params(x, k, p["kind"], p["seed"])
    a = gaussian_em(MemoryEngine(x, block_size=p["block"]), params, 15, 0.0, 1e-4)
    b = gaussian_em(
        MemoryEngine(scale * x + shift, block_size=p["block"]),
        transformed(params, scale, shift),
        15,
        0.0,
        1e-4 * scale**2,
    )
    expected = np.asarray(a[4]) - n * d * math.log(scale)
    np.testing.assert_allclose(b[4], expected, rtol=1e-7, atol=1e-7 * (n * d + abs(shift)))
    np.testing.assert_allclose(
        b[0].means, scale * a[0].means + shift, rtol=1e-6, atol=1e-6 * (scale + abs(shift))
    )
    np.testing.assert_allclose(b[0].weights, a[0].weights, rtol=1e-6, atol=1e-9)


@BOUNDED
@given(st.integers(0, 2**32 - 1), st.sampled_from(KINDS), st.floats(-6, 6), st.floats(-1e6, 1e6))
def test_fit_commutes_with_shifting_and_scaling(seed, kind, log_scale, shift):
    scale = 10.0**log_scale
    x = separated_data(seed, 60, 2)
    a = emcli.fit(x, 3, covariance_type=kind, n_restarts=2, seed=3)
    b = emcli.fit(
        scale * x + shift, 3, covariance_type=kind, n_restarts=2, seed=3, reg_covar=1e-6 * scale**2
    )
    assert same_partition(b.predict(scale * x + shift), a.predict(x))
    assert b.log_likelihood == pytest.approx(
        a.log_likelihood - 120 * math.log(scale), rel=1e-6, abs=1e-6 * 120 * abs(log_scale)
    )
    assert_all_finite(b)


# ---------------------------------------------------------------------------- degenerate data
@pytest.mark.parametrize("kind", ["full", "diag", "spherical"])
def test_component_on_one_point_is_reported_not_nan(tmp_path, kind):
    rng = np.random.default_rng(0)
    x = np.vstack([rng.normal(size=(50, 2)), np.full((10, 2), 20.0)])
    source = tmp_path / "point.csv"
    np.savetxt(source, x, delimiter=",", header="a,b", comments="")
    code, _, stderr = run(
        "fit", source, "-k", "2", "-n", "3", "--covariance", kind, "--params", tmp_path / "m.json"
    )
    assert code == 0
    model = json.loads((tmp_path / "m.json").read_text())
    assert model["degenerate"] is True and model["collapsed_components"] == [1]
    assert all(s["collapsed"] for s in model["starts"])
    assert len(model["starts"]) == 6  # the re-seeded round of starts
    assert model["warnings"] and "--reg-covar" in model["warnings"][0]
    assert any(line.startswith("Warning: ") and "-k" in line for line in stderr.splitlines())
    np.testing.assert_allclose(model["means"][1], [20.0, 20.0])
    for key in ("weights", "means", "covariances"):
        assert np.all(np.isfinite(np.asarray(model[key], dtype=float)))


def test_component_on_one_point_without_floor_is_a_clear_error(tmp_path):
    rng = np.random.default_rng(0)
    x = np.vstack([rng.normal(size=(50, 2)), np.full((10, 2), 20.0)])
    source = tmp_path / "point.csv"
    np.savetxt(source, x, delimiter=",", header="a,b", comments="")
    code, _, stderr = run(
        "fit", source, "-k", "2", "-n", "2", "--reg-covar", "0", "--params", tmp_path / "m.json"
    )
    assert code == 1
    assert stderr.startswith("Error: ") and len(stderr.splitlines()) == 1
    assert "--reg-covar" in stderr and "-k" in stderr
    assert not (tmp_path / "m.json").exists()


@pytest.mark.parametrize("kind", KINDS)
def test_component_that_loses_all_its_weight(kind):
    """A component started far from every row gets no responsibility: EM keeps it finite
    (weight ~0, covariance at the floor) and the collapse rule flags it."""
    x = mixture_data(4, 60, 2, 1)
    params = start_params(x, 2, kind, 0)
    means = params.means.copy()
    means[1] = [1e6, 1e6]
    params = GaussianParams.from_covariances(kind, params.weights, means, params.covariances)
    out, ll, _, _, history = gaussian_em(MemoryEngine(x), params, 20, 0.0, 1e-6)
    assert likelihood_decreases(history) == []
    for value in (out.weights, out.means, out.covariances, out.precisions_cholesky):
        assert np.all(np.isfinite(value))
    assert math.isfinite(ll)
    assert out.weights[1] * len(x) < 1.0
    empty = set(np.flatnonzero(out.weights * len(x) < 1.0).tolist())
    flagged = set(collapsed_components(out, 1e-6, x.std(axis=0))) | empty
    assert 1 in flagged and 0 not in set(collapsed_components(out, 1e-6, x.std(axis=0)))


def test_weightless_component_is_reported_through_the_cli(tmp_path, monkeypatch):
    """Every start puts one component far away: the model says degenerate, names it, and
    warns on stderr; nothing is NaN."""
    real = GaussianFamily.start

    def far(self, sample, k, method, rng, weights=None):
        params = real(self, sample, k, method, rng, weights)
        means = params.means.copy()
        means[-1] = 1e6
        return GaussianParams.from_covariances(
            params.model, params.weights, means, params.covariances
        )

    monkeypatch.setattr(GaussianFamily, "start", far)
    source = tmp_path / "one.csv"
    np.savetxt(source, mixture_data(5, 80, 2, 1), delimiter=",", header="a,b", comments="")
    code, _, stderr = run("fit", source, "-k", "2", "-n", "2", "--params", tmp_path / "m.json")
    assert code == 0
    model = json.loads((tmp_path / "m.json").read_text())
    assert model["degenerate"] is True
    assert model["collapsed_components"] == [1]  # the weightless one, last by weight
    assert model["weights"][1] * 80 < 1.0
    assert all(s["collapsed"] for s in model["starts"])
    assert "Warning: " in stderr
    for key in ("weights", "means", "covariances"):
        assert np.all(np.isfinite(np.asarray(model[key], dtype=float)))

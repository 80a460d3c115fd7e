"""mclust's 14 covariance models (Celeux & Govaert 1995; Fraley & Raftery 2002) and the hc start.

References used here, none of them emcli:

* mclust's parameter counts (``nVarParams``/``nMclustParams``, written out below from the
  mclust manual's formulas);
* published mclust log-likelihoods: faithful EEE,3 -1126.33 (the mclust vignette), diabetes
  VVV,3 -2303.50 (mclust's ``diabetes``: glucose, insulin, sspg), iris VEV,2 -215.73;
  and the whole k = 2 row of iris as R 6.0.0 mclust reports it (``Mclust(iris[,1:4], G = 2,
  modelNames = m)$loglik``, run here with R 4.2.2);
* mclust's hierarchical partitions of iris (``hclass(hc(iris[,1:4], "VVV", use = "SVD"),
  1:9)``, tests/data/mclust_hc_iris.json);
* the definitions: each model's constraint on lambda_k D_k A_k D_k^T, and the expected
  complete-data log-likelihood that an M-step maximises.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from clirun import run
from sklearn.metrics import adjusted_rand_score

import emcli
from emcli.em.hc import cut, hc_tree
from emcli.families.gaussian.models import (
    MCLUST_MODELS,
    MODELS,
    Scatter,
    covariance_model,
    resolve_covariances,
    to_full,
)

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"


def _numeric(path: Path, columns=None) -> np.ndarray:
    frame = pd.read_csv(path)
    if columns is not None:
        frame = frame[columns]
    return frame.select_dtypes("number").to_numpy(float)


IRIS = _numeric(ROOT / "sample_data" / "iris.csv")
FAITHFUL = _numeric(ROOT / "sample_data" / "faithful.csv")
DIABETES = _numeric(DATA / "diabetes.csv", ["glucose", "insulin", "sspg"])


# ---------------------------------------------------------------------------- counts
def mclust_var_params(name: str, d: int, g: int) -> int:
    """mclust's nVarParams, from its manual."""
    t = d * (d - 1) // 2
    return {
        "E": 1,
        "V": g,
        "EII": 1,
        "VII": g,
        "EEI": d,
        "VEI": g + (d - 1),
        "EVI": 1 + g * (d - 1),
        "VVI": g * d,
        "EEE": d * (d + 1) // 2,
        "EVE": 1 + g * (d - 1) + t,
        "VEE": g + (d - 1) + t,
        "VVE": g + g * (d - 1) + t,
        "EEV": 1 + (d - 1) + g * t,
        "VEV": g + (d - 1) + g * t,
        "EVV": 1 - g + g * d * (d + 1) // 2,
        "VVV": g * d * (d + 1) // 2,
    }[name]


@pytest.mark.parametrize("name", [*MCLUST_MODELS, "E", "V"])
def test_parameter_counts_equal_mclusts(name):
    for d in (1, 2, 3, 5, 8) if len(name) == 3 else (1,):
        for g in range(1, 10):
            assert covariance_model(name).n_parameters(g, d) == mclust_var_params(name, d, g)


def test_model_parameter_count_is_nmclustparams():
    # nMclustParams = nVarParams + G d + (G - 1); the example, EEV
    model = emcli.fit(IRIS, 3, covariance_type="EEV", n_restarts=2)
    g, d = 3, 4
    assert model.n_parameters == g * d + (g - 1) + 1 + (d - 1) + g * d * (d - 1) // 2


def test_names_and_aliases():
    assert [covariance_model(n).mclust for n in ("full", "tied", "diag", "spherical")] == [
        "VVV",
        "EEE",
        "VVI",
        "VII",
    ]
    assert covariance_model("vev").name == "VEV"
    assert covariance_model("full").same(covariance_model("VVV"))
    assert resolve_covariances(["all"], 4) == list(MCLUST_MODELS)
    assert len(MCLUST_MODELS) == 14
    assert resolve_covariances(["all"], 1) == ["E", "V"]
    with pytest.raises(ValueError, match="one column"):
        resolve_covariances(["E"], 3)


# ---------------------------------------------------------------------------- published
IRIS_G2_MCLUST = {  # R 6.0.0 mclust, Mclust(iris[, 1:4], G = 2, modelNames = m)$loglik
    "EII": -536.6526938,
    "VII": -478.5590958,
    "EEI": -488.914829,
    "VEI": -443.0666874,
    "EVI": -463.5690296,
    "VVI": -386.1853469,
    "EEE": -296.4475748,
    "VEE": -278.0571501,
    "EVE": -273.4961519,
    "VVE": -244.9697409,
    "EEV": -259.6669085,
    "VEV": -215.7259722,
    "EVV": -259.0164213,
    "VVV": -214.3547044,
}


@pytest.mark.parametrize("name", MCLUST_MODELS)
def test_iris_two_components_reach_mclust(name):
    model = emcli.fit(IRIS, 2, covariance_type=name, reg_covar=0.0)
    # at least mclust's optimum (mclust stops at a relative change of 1e-5: 0.005 here)
    assert model.log_likelihood >= IRIS_G2_MCLUST[name] - 0.01
    assert model.n_parameters == mclust_var_params(name, 4, 2) + 2 * 4 + 1


@pytest.mark.parametrize(
    "x, k, name, published",
    [
        (FAITHFUL, 3, "EEE", -1126.33),
        (DIABETES, 3, "VVV", -2303.50),
        (IRIS, 2, "VEV", -215.73),
    ],
)
def test_published_mclust_log_likelihoods(x, k, name, published):
    model = emcli.fit(x, k, covariance_type=name, reg_covar=0.0)
    # the published figure to its 2 decimals, or above it by less than mclust's stopping
    # rule leaves (a relative change of 1e-5 per iteration: R gives faithful -1126.3262,
    # emcli converged further to -1126.3159)
    assert published - 0.005 <= model.log_likelihood <= published + 0.02


# ---------------------------------------------------------------------------- M-steps
def _q(cov_full: np.ndarray, w: np.ndarray, n_k: np.ndarray) -> float:
    """The covariance part of the expected complete-data log-likelihood (times -2, negated):
    -sum_k [n_k log det Sigma_k + tr(W_k Sigma_k^-1)]."""
    total = 0.0
    for s, wk, nk in zip(cov_full, w, n_k, strict=True):
        sign, logdet = np.linalg.slogdet(s)
        assert sign > 0
        total -= nk * logdet + np.trace(np.linalg.solve(s, wk))
    return total


def _scatter(rng, k, d):
    n_k = rng.uniform(5.0, 50.0, size=k)
    w = np.empty((k, d, d))
    for j in range(k):
        a = rng.normal(size=(d, d)) * rng.uniform(0.3, 3.0, size=d)
        w[j] = (a @ a.T + 0.1 * np.eye(d)) * n_k[j] / d
    return n_k, w


def _stats_of(model, n_k, w):
    if model.stats == "diag":
        return Scatter(n_k, np.diagonal(w, axis1=1, axis2=2).copy())
    if model.stats == "pooled":
        return Scatter(n_k, w.sum(axis=0))
    return Scatter(n_k, w.copy())


def _full(model, cov, k, d):
    return to_full(model.form, cov, k, d)


@pytest.mark.parametrize("name", MCLUST_MODELS)
def test_m_step_never_lowers_the_expected_log_likelihood(name):
    """From any feasible previous covariance of the model, the M-step's result is at least as
    good for the expected complete-data log-likelihood (a GEM step): the iterative M-steps
    start from the previous parameters."""
    model = covariance_model(name)
    rng = np.random.default_rng(7)
    for trial in range(6):
        k, d = int(rng.integers(2, 5)), int(rng.integers(2, 6))
        n_k, w = _scatter(rng, k, d)
        # a feasible point of the model: its M-step on other statistics
        n0, w0 = _scatter(rng, k, d)
        previous = model.m_step(_stats_of(model, n0, w0), 0.0, None)
        w_used = w if model.stats == "full" else None
        if model.stats == "diag":
            w_used = np.array([np.diag(np.diag(m)) for m in w])
        elif model.stats == "pooled":
            w_used = w
        q_prev = _q(_full(model, previous, k, d), w_used, n_k)
        # EVE and VVE start from the orientation their last M-step ended with when given its
        # covariances (VEI, VEE and VEV from its volumes), and recover it from a copy: both
        # are GEM steps
        if model.mclust in ("EVE", "VVE", "VEI", "VEE", "VEV"):
            from emcli.families.gaussian import models

            what = "orientation" if model.mclust in ("EVE", "VVE") else "volumes"
            assert models._remembered(previous, what) is not None
        for prev in (previous, previous.copy()):
            new = model.m_step(_stats_of(model, n_k, w), 0.0, prev)
            q_new = _q(_full(model, new, k, d), w_used, n_k)
            assert q_new >= q_prev - 1e-9 * abs(q_prev), (trial, q_new, q_prev)


@pytest.mark.parametrize("name", ["EVE", "VVE"])
def test_two_column_orientation_is_the_maximum(name):
    """With two columns the common orientation is a rotation by one angle t.  For each t of a
    fine grid the best diagonals have a closed form (VVE: c_kj = (D^T W_k D)_jj / n_k; EVE:
    Sigma_k = lambda D A_k D^T with A_k = diag(D^T W_k D) / its det^(1/2), lambda = sum_k
    det^(1/2) / n), so the M-step from no previous parameters (iterated to its tolerance)
    must reach at least the best of the grid: the maximum of the expected complete-data
    log-likelihood within the model."""
    model = covariance_model(name)
    rng = np.random.default_rng(11)
    for trial in range(5):
        k = int(rng.integers(2, 6))
        n_k, w = _scatter(rng, k, 2)
        best = -np.inf
        for t in np.linspace(0.0, np.pi, 20001):
            rot = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
            m = np.einsum("ij,kil,lj->kj", rot, w, rot)  # diag(D^T W_k D)
            if name == "VVE":
                diag = m / n_k[:, None]
            else:
                g = np.sqrt(m.prod(axis=1))
                diag = (g.sum() / n_k.sum()) * m / g[:, None]
            cov = np.einsum("ij,kj,lj->kil", rot, diag, rot)
            best = max(best, _q(cov, w, n_k))
        got = _q(model.m_step(_stats_of(model, n_k, w), 0.0, None), w, n_k)
        assert got >= best - 1e-7 * abs(best), (trial, got, best)


def _decompose(cov):
    """(volumes (k,), shapes (k, d) descending with det 1, orientations (k, d, d))."""
    values, vectors = np.linalg.eigh(cov)
    values, vectors = values[:, ::-1], vectors[:, :, ::-1]
    d = cov.shape[-1]
    vol = np.exp(np.log(values).sum(axis=1) / d)
    return vol, values / vol[:, None], vectors


def _same_orientation(vectors, cov):
    # every covariance is diagonal in the basis of the first one
    rotated = np.swapaxes(vectors[0], 0, 1)[None] @ cov @ vectors[0][None]
    off = rotated * (1 - np.eye(cov.shape[-1]))[None]
    return np.max(np.abs(off)) <= 1e-7 * np.max(np.abs(rotated))


@pytest.mark.parametrize("name", MCLUST_MODELS)
def test_m_step_result_has_the_models_structure(name):
    model = covariance_model(name)
    rng = np.random.default_rng(3)
    k, d = 3, 4
    n_k, w = _scatter(rng, k, d)
    cov = _full(model, model.m_step(_stats_of(model, n_k, w), 0.0, None), k, d)
    vol, shape, vectors = _decompose(cov)
    letter_v, letter_s, letter_o = name
    close = dict(rtol=1e-7, atol=0)
    if letter_v == "E":
        np.testing.assert_allclose(vol, vol[0], **close)
    else:
        assert np.ptp(vol) > 1e-3 * vol.mean()
    if letter_s == "I":
        np.testing.assert_allclose(shape, 1.0, **close)
    elif letter_s == "E":
        np.testing.assert_allclose(shape, shape[:1].repeat(k, 0), **close)
    if letter_o == "I":
        offdiag = cov * (1 - np.eye(d))[None]
        assert np.max(np.abs(offdiag)) == 0.0
    elif letter_o == "E":
        assert _same_orientation(vectors, cov)
    else:
        assert not _same_orientation(vectors, cov)


@pytest.mark.parametrize("name", ["VEI", "VEE", "EVE", "VVE", "VEV", "EEV", "EVV", "EVI"])
def test_m_step_is_a_maximum_within_the_model(name):
    """Perturbing the M-step's result within the model's constraint (volumes, shapes,
    orientation) never raises the expected complete-data log-likelihood."""
    model = covariance_model(name)
    rng = np.random.default_rng(5)
    k, d = 3, 3
    n_k, w = _scatter(rng, k, d)
    stats = _stats_of(model, n_k, w)
    w_used = w if model.stats == "full" else np.array([np.diag(np.diag(m)) for m in w])
    best = _full(model, model.m_step(stats, 0.0, None), k, d)
    q_best = _q(best, w_used, n_k)
    vol, shape, vectors = _decompose(best)
    for _ in range(40):
        v2 = vol * np.exp(
            rng.normal(0, 0.02) * (np.ones(k) if name[0] == "E" else rng.normal(size=k))
        )
        s2 = shape * np.exp(rng.normal(0, 0.02, size=(1 if name[1] == "E" else k, d)))
        s2 /= np.exp(np.log(s2).mean(axis=1))[:, None]
        s2 = np.broadcast_to(s2, shape.shape)
        if name[2] == "I":
            o2 = vectors
        else:
            a = rng.normal(0, 0.02, size=(d, d))
            rot = np.linalg.qr(np.eye(d) + a - a.T)[0]
            o2 = (
                vectors @ rot
                if name[2] == "E"
                else vectors @ np.linalg.qr(np.eye(d) + rng.normal(0, 0.02, size=(k, d, d)))[0]
            )
            if name[2] == "E":
                o2 = np.broadcast_to(vectors[0] @ rot, vectors.shape)
        trial = (o2 * (v2[:, None] * s2)[:, None, :]) @ np.swapaxes(o2, 1, 2)
        assert _q(trial, w_used, n_k) <= q_best + 1e-9 * abs(q_best)


@pytest.mark.parametrize("name", MCLUST_MODELS)
def test_m_step_of_stacked_starts_is_each_starts_own(name):
    """The batched loop's M-step takes several starts at once (a leading axis): from
    previous covariances each start's result is a GEM step for its own statistics, and from
    none each is a maximum within the model (perturbing it never raises its expected
    complete-data log-likelihood), though the starts' inner iterations take different
    numbers of rounds."""
    model = covariance_model(name)
    rng = np.random.default_rng(11)
    k, d, r = 3, 3, 4
    scatters = [_scatter(rng, k, d) for _ in range(r)]
    # the starts differ in scale by orders of magnitude, so their iterations differ too
    scatters = [(n_k, w * 10.0**i) for i, (n_k, w) in enumerate(scatters)]
    stats = [_stats_of(model, n_k, w) for n_k, w in scatters]
    stacked = Scatter(np.stack([s.n_k for s in stats]), np.stack([s.w for s in stats]))
    previous = np.stack([model.m_step(_stats_of(model, *_scatter(rng, k, d)), 0.0, None)])
    previous = np.concatenate([previous] * r)
    for prev in (None, previous):
        out = model.m_step(stacked, 0.0, prev)
        assert out.shape == (r, *model.m_step(stats[0], 0.0, None).shape)
        for i, (n_k, w) in enumerate(scatters):
            w_used = w if model.stats != "diag" else np.array([np.diag(np.diag(m)) for m in w])
            q_new = _q(_full(model, out[i], k, d), w_used, n_k)
            if prev is not None:
                q_prev = _q(_full(model, prev[i], k, d), w_used, n_k)
                assert q_new >= q_prev - 1e-9 * abs(q_prev), (i, q_new, q_prev)
                continue
            # a maximum: small moves of the volumes along the model's freedom lose
            vol = _decompose(_full(model, out[i], k, d))[0]
            for step in (0.98, 1.02):
                scale = (
                    np.full(k, step) if name[0] == "E" else 1.0 + (step - 1) * rng.normal(size=k)
                )
                moved = _full(model, out[i], k, d) * scale[:, None, None]
                assert _q(moved, w_used, n_k) <= q_new + 1e-9 * abs(q_new), (i, step, vol)


# ---------------------------------------------------------------------------- everywhere
@pytest.mark.parametrize("name", ["VEI", "EVE", "VEV", "EEV", "VVE"])
def test_new_models_with_missing_values_and_weights(name):
    rng = np.random.default_rng(2)
    x = IRIS.copy()
    x[rng.random(x.shape) < 0.05] = np.nan
    model = emcli.fit(x, 2, covariance_type=name, n_restarts=3)
    assert np.isfinite(model.log_likelihood)
    history = model.history
    assert all(b >= a - 1e-9 * abs(a) for a, b in zip(history, history[1:], strict=False))
    w = rng.integers(1, 4, size=IRIS.shape[0]).astype(float)
    weighted = emcli.fit(IRIS, 2, covariance_type=name, sample_weight=w, tol=1e-12)
    repeated = emcli.fit(np.repeat(IRIS, w.astype(int), axis=0), 2, covariance_type=name, tol=1e-12)
    assert weighted.log_likelihood == pytest.approx(repeated.log_likelihood, rel=1e-8)


@pytest.mark.parametrize("name", MCLUST_MODELS)
def test_stream_engine_equals_memory_for_every_model(name, tmp_path):
    path = tmp_path / "iris.csv"
    pd.DataFrame(IRIS, columns=list("abcd")).to_csv(path, index=False)
    memory = emcli.api.fit_file(
        str(path), 2, engine="memory", covariance_type=name, n_restarts=2, seed=1
    )
    stream = emcli.api.fit_file(
        str(path), 2, engine="stream", block_rows=40, covariance_type=name, n_restarts=2, seed=1
    )
    assert stream.log_likelihood == pytest.approx(memory.log_likelihood, rel=1e-9)
    np.testing.assert_allclose(stream.means, memory.means, rtol=1e-6, atol=1e-9)
    assert stream.n_iter == memory.n_iter


def test_model_file_keeps_the_spelling_and_adds_the_mclust_name(tmp_path):
    for spelled, shape in (("full", (2, 4, 4)), ("VEV", (2, 4, 4)), ("EEI", (2, 4)), ("EII", (2,))):
        model = emcli.fit(IRIS, 2, covariance_type=spelled, n_restarts=2)
        data = json.loads(model.to_json())
        assert data["covariance_type"] == spelled
        assert data["model_name"] == covariance_model(spelled).mclust
        assert np.shape(data["covariances"]) == shape
        path = tmp_path / f"{spelled}.json"
        path.write_text(model.to_json())
        back = emcli.MixtureModel.load(str(path))
        np.testing.assert_allclose(back.predict_proba(IRIS), model.predict_proba(IRIS))


# ---------------------------------------------------------------------------- hc start
@pytest.mark.parametrize("d", [1, 2, 3, 4, 5])
def test_hc_log_determinants_equal_lapacks(d):
    """The tree's log det(W / n), in closed form up to four columns, for scatters and for
    merged ones (W_a + W_o + c d d^T, never formed), equals numpy's slogdet (LAPACK's LU);
    a singular scatter is -inf or below every regular one."""
    from emcli.em import hc

    rng = np.random.default_rng(d)
    a = rng.normal(size=(400, d, d + 2))
    w = a @ a.swapaxes(-1, -2)
    n = rng.uniform(d + 1.0, 60.0, size=400)
    want = np.linalg.slogdet(w / n[:, None, None])[1]
    np.testing.assert_allclose(hc._logdet(w, n), want, rtol=1e-10, atol=1e-10)
    co, do = rng.uniform(0.1, 5.0, size=400), rng.normal(size=(400, d))
    merged = w[0][None] + w + co[:, None, None] * do[:, :, None] * do[:, None, :]
    want = np.linalg.slogdet(merged / n[:, None, None])[1]
    got = hc._merged_logdet(w[0], w, co, do, n)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)
    if d > 1:
        flat = rng.normal(size=(50, d, d - 1))
        singular = hc._logdet(flat @ flat.swapaxes(-1, -2), np.full(50, 10.0))
        assert np.all(singular < want.min() - 10)


def test_hc_partitions_equal_mclusts_on_iris():
    ref = json.loads((DATA / "mclust_hc_iris.json").read_text())["labels"]
    merges, groups = hc_tree(IRIS)
    for k in range(1, 10):
        assert adjusted_rand_score(ref[str(k)], cut(merges, groups, k)) == 1.0


@pytest.mark.parametrize(
    "name,path",
    [("faithful", ROOT / "sample_data" / "faithful.csv"), ("geyser", DATA / "geyser.csv")],
)
def test_hc_partitions_equal_mclusts_on_rounded_data(name, path):
    """faithful and geyser are rounded (faithful has 16 pairs of identical rows): mclust
    starts every row alone and takes the last of equally cheap pairs in its order, and the
    tree is the same only if emcli does too."""
    ref = json.loads((DATA / f"mclust_hc_{name}.json").read_text())["partitions"]
    x = np.loadtxt(path, delimiter=",", skiprows=1, usecols=(0, 1))
    merges, groups = hc_tree(x)
    assert len(np.unique(groups)) == len(x)  # identical rows start apart, as in mclust
    for k in range(1, 10):
        assert adjusted_rand_score(ref[k - 1], cut(merges, groups, k)) == 1.0


@pytest.mark.parametrize("name", ["EVE", "VVE"])
def test_start_from_a_partition_is_a_generalised_m_step(name):
    """A start's M-step from a hard partition (``params_from_labels``) begins the
    orientation at the summed scatter's eigenvectors and takes the warm rounds: the result
    has the model's structure and is no worse for the expected complete-data
    log-likelihood than that beginning (``start_guess``)."""
    from emcli.families.gaussian.models import start_guess

    model = covariance_model(name)
    rng = np.random.default_rng(11)
    for _ in range(4):
        k, d = int(rng.integers(2, 5)), int(rng.integers(2, 6))
        n_k, w = _scatter(rng, k, d)
        stats = _stats_of(model, n_k, w)
        guess = start_guess(model, stats, 0.0)
        new = model.m_step(stats, 0.0, guess)
        vol, shape, vectors = _decompose(new)
        assert _same_orientation(vectors, new)
        if name == "EVE":
            np.testing.assert_allclose(vol, vol[0], rtol=1e-9)
        assert _q(new, w, n_k) >= _q(guess, w, n_k) - 1e-9 * abs(_q(guess, w, n_k))
    assert start_guess(covariance_model("VVV"), stats, 0.0) is None


def test_hc_start_reaches_mclust_on_iris_vve_5():
    """mclust 6.0.0 ``Mclust(iris[, 1:4], G = 5, modelNames = "VVE")``: -190.837 from its
    hc start; emcli's default fit, and its hc start alone as a selection screens it (with
    SQUAREM), reach at least that."""
    for options in ({}, {"init": "hc", "n_restarts": 1, "accelerate": True}):
        model = emcli.fit(IRIS, 5, covariance_type="VVE", **options)
        assert model.log_likelihood >= -190.837 - 0.01, options


def test_hc_start_and_auto_start():
    hc = emcli.fit(DIABETES, 3, covariance_type="VVV", init="hc", n_restarts=1, reg_covar=0.0)
    assert hc.log_likelihood == pytest.approx(-2303.50, abs=0.01)
    auto = emcli.fit(DIABETES, 3, covariance_type="VVV", reg_covar=0.0)
    assert auto.log_likelihood >= hc.log_likelihood - 1e-9 * abs(hc.log_likelihood)


# ---------------------------------------------------------------------------- CLI
def test_cli_accepts_mclust_names_and_all(tmp_path):
    csv = ROOT / "sample_data" / "iris.csv"
    sel = tmp_path / "sel.csv"
    result = run("fit", csv, "-k", "2", "--covariance", "vev,EII,tied", "--selection", sel, "-q")
    assert result.exit_code == 0, result.stderr
    table = pd.read_csv(sel)
    assert list(table["covariance"]) == ["VEV", "EII", "tied"]
    assert list(table["model_name"]) == ["VEV", "EII", "EEE"]
    bad = run("fit", csv, "-k", "2", "--covariance", "VVX")
    assert bad.exit_code == 2 and bad.stderr.startswith("Error:")


def test_no_k_selects_over_1_to_9_with_a_note(tmp_path):
    csv = ROOT / "sample_data" / "faithful.csv"
    sel = tmp_path / "sel.csv"
    result = run("fit", csv, "--covariance", "EII,VVV", "--selection", sel, "-n", "3")
    assert result.exit_code == 0, result.stderr
    assert "no -k given" in result.stderr
    table = pd.read_csv(sel)
    assert sorted(set(table["components"])) == list(range(1, 10))


def test_wide_data_skips_models_that_cannot_be_estimated(tmp_path):
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(size=(6, 12)), rng.normal(size=(6, 12)) + 4])
    path = tmp_path / "wide.csv"
    pd.DataFrame(x, columns=[f"g{j}" for j in range(12)]).to_csv(path, index=False)
    sel = tmp_path / "sel.csv"
    result = run("fit", path, "-k", "1..2", "--covariance", "all", "--selection", sel, "-q")
    assert result.exit_code == 0, result.stderr
    table = pd.read_csv(sel)
    skipped = set(table.loc[table["status"] == "skipped", "model_name"])
    fitted = set(table.loc[table["status"] != "skipped", "model_name"])
    assert fitted == {"EII", "VII", "EEI", "VEI", "EVI", "VVI"}
    assert skipped == set(MCLUST_MODELS) - fitted


def test_every_model_row_is_reachable_by_name():
    for name, row in MODELS.items():
        assert covariance_model(name.lower()) is row


@pytest.mark.parametrize("name", ["EII", "VEI", "EVE", "VVE", "EEV", "VEV", "EVV", "VEE"])
def test_dask_engine_equals_memory(local_client, name, tmp_path):
    from emcli.engines.dask import DaskEngine

    path = tmp_path / "iris.csv"
    pd.DataFrame(IRIS, columns=list("abcd")).to_csv(path, index=False)
    settings = dict(covariance_type=name, n_restarts=2, seed=3)
    memory = emcli.fit(IRIS, 2, columns=list("abcd"), **settings)
    with DaskEngine(str(path), client=local_client, block_rows=30) as engine:
        model = emcli.api.fit_engine(engine, 2, **settings)
    assert model.log_likelihood == pytest.approx(memory.log_likelihood, rel=1e-9)
    np.testing.assert_allclose(model.means, memory.means, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(model.full_covariances(), memory.full_covariances(), rtol=1e-6)
    assert model.n_iter == memory.n_iter


@pytest.mark.parametrize("name", ["VVE", "EEV", "full", "VII"])
def test_one_column_models_are_named_e_or_v_as_mclust_names_them(name, tmp_path):
    """mclust has two models on one column, E and V: emcli's model_name follows, while
    covariance_type keeps the name given; the parameter count is the same either way."""
    x = np.random.default_rng(0).normal(size=(200, 1)) * np.repeat([1.0, 3.0], 100)[:, None]
    model = emcli.fit(x, 2, covariance_type=name, n_restarts=2)
    want = "E" if name[0] == "E" else "V"
    data = model.to_dict()
    assert data["model_name"] == want and data["covariance_type"] == name
    same = emcli.fit(x, 2, covariance_type=want, n_restarts=2)
    assert model.n_parameters == same.n_parameters
    assert model.log_likelihood == pytest.approx(same.log_likelihood, rel=1e-9)


@pytest.mark.parametrize(
    ("fitted", "claimed", "what"),
    [
        ("VVV", "EEV", "volumes"),
        ("VVV", "VVE", "orientations"),
        ("VVV", "EVV", "volumes"),
        ("VVI", "EEI", "volumes"),
        ("VVI", "VEI", "shapes"),
        ("VII", "EII", "variances"),
    ],
)
def test_model_file_covariances_must_meet_their_models_constraint(fitted, claimed, what):
    """A model file whose covariances break the named model's constraint (edited by hand,
    or written by another tool) is refused with what is broken; every model's own fit
    loads (the constraint holds to rounding)."""
    from emcli.errors import ModelFileError

    x = IRIS
    data = emcli.fit(x, 3, covariance_type=fitted, n_restarts=2).to_dict()
    data["covariance_type"] = claimed
    with pytest.raises(ModelFileError, match=what):
        emcli.MixtureModel.from_dict(json.loads(json.dumps(data)))


@pytest.mark.parametrize(
    "name",
    [
        "EII",
        "VII",
        "EEI",
        "VEI",
        "EVI",
        "VVI",
        "EEE",
        "VEE",
        "EVE",
        "VVE",
        "EEV",
        "VEV",
        "EVV",
        "VVV",
    ],
)
def test_every_models_own_fit_meets_its_constraint_in_the_file(name):
    x = IRIS
    model = emcli.fit(x, 3, covariance_type=name, n_restarts=2)
    again = emcli.MixtureModel.from_dict(json.loads(model.to_json()))
    assert again.log_likelihood == model.log_likelihood

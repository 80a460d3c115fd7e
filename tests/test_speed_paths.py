"""The fast E-step (``GaussianFamily.e_step``: emcli.families.gaussian.kernels, via
MemoryEngine) against a plain reference written here from the formulas and against the
plain per-block statistics (``missing.block_stats_with_gaps``), against scikit-learn's
trajectory, and for determinism; SQUAREM (--accelerate) for monotonicity and the optimum it
reaches."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from gaussian_steps import REG, engine_stats, gaussian_em, initial_params, rows_stats
from mixtures import narrow_far_mixture
from scipy.special import logsumexp

from emcli.em import EMSettings, fit_em, likelihood_decreases
from emcli.engines.memory import MemoryEngine, reduce_rows
from emcli.families.gaussian import (
    GaussianFamily,
    GaussianParams,
    from_full_covariances,
    kernels,
    log_resp_and_norm,
)
from emcli.families.gaussian.missing import block_stats_with_gaps

KINDS = ("full", "tied", "diag", "spherical")
ROOT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------------- reference
def reference_stats(x: np.ndarray, p: GaussianParams) -> dict:
    """Plain per-component E-step: densities from (x - m_j) and the covariance's Cholesky
    factor, log-sum-exp by scipy, moments around each component's own mean."""
    k, d = p.means.shape
    cov = p.full_covariances()
    logp = np.empty((x.shape[0], k))
    for j in range(k):
        chol = np.linalg.cholesky(cov[j])
        z = np.linalg.solve(chol, (x - p.means[j]).T)
        logp[:, j] = (
            np.log(p.weights[j])
            - 0.5 * d * np.log(2 * np.pi)
            - np.log(np.diag(chol)).sum()
            - 0.5 * (z * z).sum(axis=0)
        )
    norm = logsumexp(logp, axis=1)
    resp = np.exp(logp - norm[:, None])
    n_k = resp.sum(axis=0)
    sum_x = np.stack([resp[:, j] @ (x - p.means[j]) for j in range(k)])
    if p.covariance_type in ("full", "tied"):
        sum_xx = np.stack(
            [(resp[:, j, None] * (x - p.means[j])).T @ (x - p.means[j]) for j in range(k)]
        )
        if p.covariance_type == "tied":
            sum_xx = sum_xx.sum(axis=0)
    else:
        sum_xx = np.stack([resp[:, j] @ (x - p.means[j]) ** 2 for j in range(k)])
    return {"n_k": n_k, "sum_x": sum_x, "sum_xx": sum_xx, "ll": norm.sum()}


def random_params(
    rng, kind: str, k: int, d: int, spread: float = 3.0, offset: float = 0.0
) -> GaussianParams:
    a = rng.normal(size=(k, d, d)) / np.sqrt(d)
    cov = a @ a.transpose(0, 2, 1) + 0.5 * np.eye(d)
    means = rng.normal(scale=spread, size=(k, d)) + offset
    weights = rng.dirichlet(np.full(k, 3.0))
    return GaussianParams.from_covariances(kind, weights, means, from_full_covariances(kind, cov))


def sample(rng, p: GaussianParams, n: int) -> np.ndarray:
    labels = rng.choice(p.n_components, size=n, p=p.weights)
    chol = np.linalg.cholesky(p.full_covariances())
    z = rng.normal(size=(n, p.n_features))
    return p.means[labels] + np.einsum("nd,ned->ne", z, chol[labels])


def kernel_resp_and_norm(x: np.ndarray, p: GaussianParams) -> tuple[np.ndarray, np.ndarray]:
    """Responsibilities (n, k) and per-row log-likelihood (n,) as the kernels compute them
    inside ``kernels.block_raw``: the feature-product densities, then ``log_sum_exp_t``."""
    plan = kernels.make_plan(p)
    ws = kernels.Workspace()
    lp = kernels.log_prob_t(plan, kernels.features(plan, x, ws), ws)  # (k, n), its own array
    norm = kernels.log_sum_exp_t(lp, ws).copy()  # lp -> responsibilities, in place
    return np.ascontiguousarray(lp.T), norm


def assert_stats_close(stats, ref: dict, rtol: float) -> None:
    for name in ("n_k", "sum_x", "sum_xx"):
        got, want = getattr(stats, name), ref[name]
        scale = np.abs(want).max()
        assert np.abs(got - want).max() <= rtol * scale, name
    assert abs(stats.log_likelihood - ref["ll"]) <= rtol * abs(ref["ll"])


# ---------------------------------------------------------------------------- E-step
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("block_size", [1, 7, 333, None])
def test_fast_e_step_matches_plain_reference(kind: str, block_size: int | None) -> None:
    rng = np.random.default_rng(11)
    p = random_params(rng, kind, k=4, d=5)
    x = sample(rng, p, 1000)
    stats = engine_stats(MemoryEngine(x, block_size=block_size), p)
    assert_stats_close(stats, reference_stats(x, p), 1e-10)
    assert stats.sum_xx.shape == {"full": (4, 5, 5), "tied": (5, 5)}.get(kind, (4, 5))
    assert stats.n_samples == 1000


@pytest.mark.parametrize("kind", KINDS)
def test_result_does_not_depend_on_the_number_of_threads(kind: str) -> None:
    rng = np.random.default_rng(5)
    p = random_params(rng, kind, k=3, d=4)
    x = sample(rng, p, 5000)
    one = rows_stats(x, p, block_size=256, n_threads=1)
    two = rows_stats(x, p, block_size=256, n_threads=2)
    for name in ("n_k", "sum_x", "sum_xx"):
        assert np.array_equal(getattr(one, name), getattr(two, name))
    assert one.log_likelihood == two.log_likelihood


@pytest.mark.parametrize("kind", KINDS)
def test_far_apart_components_keep_their_digits(kind: str) -> None:
    # Components 1e7 standard deviations apart (and the data far from 0): around the shared
    # centre the second moments would cancel; the kernels take them around each mean.
    rng = np.random.default_rng(3)
    p = random_params(rng, kind, k=3, d=3, spread=1e7, offset=1e9)
    x = sample(rng, p, 600)
    plan = kernels.make_plan(p)
    assert len(plan.exact) > 0
    assert_stats_close(
        engine_stats(MemoryEngine(x, block_size=101), p), reference_stats(x, p), 1e-9
    )


@pytest.mark.parametrize("kind", ["full", "tied"])
@pytest.mark.parametrize("direct", [False, True])
def test_direct_and_mixed_plans_match_the_reference(monkeypatch, kind: str, direct: bool) -> None:
    # Two components far from the others: in a direct plan every component is computed
    # around its own mean (no features); in a mixed plan the two far ones are computed
    # apart beside the feature products of the others.
    monkeypatch.setattr(kernels, "go_direct", lambda *args: direct)
    rng = np.random.default_rng(8)
    near = random_params(rng, kind, k=6, d=4)
    means = near.means.copy()
    means[:2] += 1e4 * rng.normal(size=(2, 4))  # far, and light (the centre stays near)
    weights = np.r_[0.005, 0.005, 0.99 * near.weights[2:] / near.weights[2:].sum()]
    p = GaussianParams.from_covariances(kind, weights, means, near.covariances)
    x = sample(rng, p, 3000)
    plan = kernels.make_plan(p)
    assert plan.direct == direct
    assert set(plan.exact) == ({0, 1, 2, 3, 4, 5} if plan.direct else {0, 1})
    assert_stats_close(
        engine_stats(MemoryEngine(x, block_size=97), p), reference_stats(x, p), 1e-10
    )
    np.testing.assert_allclose(
        kernel_resp_and_norm(x, p)[1], log_resp_and_norm(x, p)[1], rtol=1e-12
    )


@pytest.mark.parametrize("kind", ["full", "tied"])
@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("x_moments", [False, True])
def test_direct_plan_on_separated_clusters_dense_and_sparse(
    monkeypatch, kind: str, sparse: bool, x_moments: bool
) -> None:
    # d = 20, eight clusters far apart, in a direct plan: most responsibilities underflow,
    # so the second moments of each component take only its own rows (sparse), or all
    # rows when SPARSE_FILL is 0 (dense); over y_j = P_j^T (x - m_j) mapped back, or over
    # x - m_j (x_moments, as for few rows).  All match the plain reference.
    monkeypatch.setattr(kernels, "X_MOMENTS_ROWS", 1e9 if x_moments else 0.0)
    rng = np.random.default_rng(21)
    p = random_params(rng, kind, k=8, d=20, spread=10.0)
    x = sample(rng, p, 4000)
    monkeypatch.setattr(kernels, "go_direct", lambda *args: True)
    if not sparse:
        monkeypatch.setattr(kernels, "SPARSE_FILL", 0.0)
    assert kernels.make_plan(p, n_rows=4000).x_moments == x_moments
    stats = engine_stats(MemoryEngine(x, block_size=600), p)
    assert_stats_close(stats, reference_stats(x, p), 1e-11)
    resp = np.exp(log_resp_and_norm(x, p)[0])
    assert (resp > 1e-30).mean() < 0.3  # the sparse branch is taken when allowed


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("rows_with_gaps", [0.05, 0.6])
def test_data_with_gaps_complete_rows_through_the_kernels(
    monkeypatch, kind: str, rows_with_gaps: float
) -> None:
    # With few rows with gaps, GaussianFamily.e_step sends the complete rows of each block
    # to the kernels and the others to the gap path (families.gaussian.missing); with many,
    # whole blocks go to the gap path.  Either way: the plain per-block statistics
    # (block_stats_with_gaps: complete rows by the plain complete-data formulas), for the
    # memory engine and for the stream engine's way over uneven chunks, to rounding.
    rng = np.random.default_rng(4)
    p = random_params(rng, kind, k=3, d=5)
    x = sample(rng, p, 3000)
    rows = rng.random(3000) < rows_with_gaps
    x[rows, rng.integers(0, 5, size=rows.sum())] = np.nan
    want = block_stats_with_gaps(x[:1000], p)
    for start in (1000, 2000):
        want = want + block_stats_with_gaps(x[start : start + 1000], p)
    kernel_rows = []
    block_raw = kernels.block_raw

    def counting(plan, xb, *args, **kwargs):
        kernel_rows.append(len(xb))
        return block_raw(plan, xb, *args, **kwargs)

    monkeypatch.setattr(kernels, "block_raw", counting)
    engine = MemoryEngine(x)
    memory = engine_stats(engine, p)
    # the route: complete rows through the kernels unless most rows of the block have gaps
    assert sum(kernel_rows) == (0 if rows_with_gaps > 0.25 else int((~rows).sum()))
    family = GaussianFamily(kind)
    plan = family.prepare(p)
    chunked = None  # as the stream engine sums its blocks
    for chunk in np.array_split(x, [5, 900, 901]):
        chunked = reduce_rows(family, plan, chunk, total=chunked)
    for got in (memory, family.finish(chunked, plan)):
        for name in ("n_k", "sum_x", "sum_xx"):
            np.testing.assert_allclose(
                getattr(got, name),
                getattr(want, name),
                rtol=1e-11,
                atol=1e-11 * np.abs(getattr(want, name)).max(),
            )
        assert got.log_likelihood == pytest.approx(want.log_likelihood, rel=1e-12)
        assert got.n_samples == 3000


@pytest.mark.parametrize("kind", KINDS)
def test_kernel_responsibilities_and_norm_match_plain(kind: str) -> None:
    rng = np.random.default_rng(8)
    p = random_params(rng, kind, k=3, d=4)
    x = sample(rng, p, 300)
    fast_resp, fast_norm = kernel_resp_and_norm(x, p)
    plain_resp, plain_norm = log_resp_and_norm(x, p)
    np.testing.assert_allclose(fast_norm, plain_norm, rtol=1e-11, atol=1e-11)
    np.testing.assert_allclose(fast_resp, np.exp(plain_resp), atol=1e-12)


def test_float32_stats_are_close_to_float64() -> None:
    rng = np.random.default_rng(2)
    p = random_params(rng, "full", k=3, d=4)
    x = sample(rng, p, 4000)
    s64 = rows_stats(x, p)
    s32 = rows_stats(x.astype(np.float32), p)
    assert abs(s32.log_likelihood - s64.log_likelihood) <= 1e-5 * abs(s64.log_likelihood)
    np.testing.assert_allclose(s32.n_k, s64.n_k, rtol=1e-4)


# ---------------------------------------------------------------------------- trajectory
def sklearn_history(x: np.ndarray, p0: GaussianParams, n_iter: int) -> list[float]:
    from sklearn.mixture import GaussianMixture

    gm = GaussianMixture(p0.n_components, covariance_type=p0.covariance_type, reg_covar=REG)
    gm.weights_, gm.means_ = p0.weights.copy(), p0.means.copy()
    gm.covariances_ = np.array(p0.covariances, copy=True)
    gm.precisions_cholesky_ = np.array(p0.precisions_cholesky, copy=True)
    history = []
    for _ in range(n_iter + 1):
        log_prob_norm, log_resp = gm._e_step(x)
        history.append(log_prob_norm * x.shape[0])
        gm._m_step(x, log_resp)
    return history


@pytest.mark.parametrize("kind", KINDS)
def test_trajectory_matches_sklearn_with_odd_blocks(kind: str) -> None:
    rng = np.random.default_rng(21)
    truth = random_params(rng, kind, k=3, d=3, spread=1.5)
    x = sample(rng, truth, 700)
    p0 = initial_params(x, 3, "random", kind, REG, np.random.default_rng(1))
    _, _, n_iter, _, history = gaussian_em(MemoryEngine(x, block_size=97), p0, 15, 0.0, REG)
    assert n_iter == 15
    np.testing.assert_allclose(history, sklearn_history(x, p0, 15), rtol=1e-10)


# ---------------------------------------------------------------------------- SQUAREM
def overlapping(seed: int, n: int = 600) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.normal(0.0, 1.0, (n // 2, 2)), rng.normal(1.3, 1.0, (n // 2, 2))])


@pytest.mark.parametrize("kind", KINDS)
def test_squarem_never_decreases_and_reaches_the_plain_optimum(kind: str) -> None:
    x = overlapping(4)
    p0 = initial_params(x, 2, "kmeans++", kind, REG, np.random.default_rng(0))
    engine = MemoryEngine(x)
    plain = gaussian_em(engine, p0, 5000, 1e-10, REG)
    fast = gaussian_em(engine, p0, 5000, 1e-10, REG, accelerate=True)
    assert plain[3] and fast[3]  # both converged
    assert likelihood_decreases(fast[4]) == []
    assert fast[2] < plain[2]
    # The same optimum: plain EM stops a little short of it on this slow, flat problem.
    assert fast[1] >= plain[1] - 1e-6 * abs(plain[1])
    np.testing.assert_allclose(fast[0].means, plain[0].means, atol=2e-2)


def test_tol_zero_runs_plain_em_even_when_accelerated() -> None:
    x = overlapping(5, 300)
    p0 = initial_params(x, 2, "random", "full", REG, np.random.default_rng(0))
    plain = gaussian_em(MemoryEngine(x), p0, 12, 0.0, REG)
    acc = gaussian_em(MemoryEngine(x), p0, 12, 0.0, REG, accelerate=True)
    assert acc[2] == 12 and acc[4] == plain[4]


def test_squarem_fewer_iterations_on_faithful_tied() -> None:
    import pandas as pd

    x = pd.read_csv(ROOT / "sample_data" / "faithful.csv").to_numpy(dtype=float)
    runs = {}
    for acc in (False, True):
        settings = EMSettings(n_components=3, n_restarts=3, accelerate=acc)
        runs[acc] = fit_em(MemoryEngine(x), GaussianFamily("tied", REG), settings)
    plain, fast = runs[False], runs[True]
    assert sum(s.n_iter for s in fast.starts) < sum(s.n_iter for s in plain.starts)
    for a, b in zip(plain.starts, fast.starts, strict=True):  # no start lands on a worse optimum
        assert b.log_likelihood >= a.log_likelihood - 1e-6 * abs(a.log_likelihood)
        assert likelihood_decreases(b.history) == []


def test_cli_accelerate_flag(tmp_path: Path) -> None:
    from clirun import run

    out = {}
    for flag in ("--no-accelerate", "--accelerate"):
        path = tmp_path / f"m{flag}.json"
        res = run(
            "fit",
            ROOT / "sample_data" / "faithful.csv",
            "-k",
            "3",
            "--covariance",
            "tied",
            "-n",
            "2",
            flag,
            "--params",
            path,
            "-q",
        )
        assert res.exit_code == 0, res.output
        out[flag] = json.loads(path.read_text())
    assert out["--accelerate"]["settings"]["accelerate"] is True
    assert out["--accelerate"]["n_iter"] < out["--no-accelerate"]["n_iter"]
    assert out["--accelerate"]["log_likelihood"] >= out["--no-accelerate"]["log_likelihood"] - 1e-3


# ---------------------------------------------------------------------------- parallel starts
def test_parallel_starts_give_the_same_result_as_sequential(monkeypatch) -> None:
    x = overlapping(6, 900)
    settings = EMSettings(n_components=3, n_restarts=4, tol=1e-6)
    family = GaussianFamily("full", REG)
    monkeypatch.setenv("EMCLI_THREADS", "2")
    par = fit_em(MemoryEngine(x), family, settings)
    monkeypatch.setenv("EMCLI_THREADS", "1")
    seq = fit_em(MemoryEngine(x), family, settings)
    assert [s.history for s in par.starts] == [s.history for s in seq.starts]
    assert par.best.start == seq.best.start
    assert np.array_equal(par.best.params.covariances, seq.best.params.covariances)


def test_interrupt_in_a_parallel_start_stops_every_start(monkeypatch) -> None:
    from emcli import parallel

    class Interrupting:
        def start(self, start, n_starts):
            pass

        def iteration(self, start, n_iter, log_likelihood, delta):
            if start == 1 and n_iter == 3:
                raise KeyboardInterrupt

        def end(self, result):
            pass

    monkeypatch.setenv("EMCLI_THREADS", "2")
    x = overlapping(7, 5000)
    settings = EMSettings(n_components=3, n_restarts=2, max_iter=100_000, tol=0)
    with pytest.raises(KeyboardInterrupt):
        fit_em(MemoryEngine(x), GaussianFamily("full", REG), settings, Interrupting())
    assert not parallel._CANCEL.is_set()


@pytest.mark.parametrize("kind", KINDS)
def test_kernel_density_of_a_narrow_component_far_from_the_others(kind: str) -> None:
    # A component with sd 1e-3 among components spread over 1e6: expanded around the shared
    # centre its quadratic form would cancel 1e18 against 1e18; the kernels must notice.
    from scipy.stats import multivariate_normal

    p, x = narrow_far_mixture(kind)
    means, weights = p.means, p.weights
    plan = kernels.make_plan(p)
    ws = kernels.Workspace()
    got = kernels.log_prob_t(plan, kernels.features(plan, x, ws), ws).T
    want = np.column_stack(
        [
            np.log(weights[j]) + multivariate_normal(means[j], p.full_covariances()[j]).logpdf(x)
            for j in range(3)
        ]
    )
    np.testing.assert_allclose(got, want, rtol=1e-6)


# ---------------------------------------------------------------------------- every plan
def _plan_switches(monkeypatch, plan: str) -> None:
    """Force one plan of the kernels (module constants and ``go_direct``, test-only)."""
    direct = plan in ("direct", "sparse moments", "dense moments", "far", "x-moments")
    monkeypatch.setattr(kernels, "go_direct", lambda *args: direct)
    monkeypatch.setattr(kernels, "X_MOMENTS_ROWS", 1e9 if plan == "x-moments" else 0.0)
    if plan == "exact":  # every component around its own mean, chosen by its offset ratio
        monkeypatch.setattr(kernels, "EXACT_RATIO", -1.0)
    if plan == "far":  # exact components whitened after the subtraction
        monkeypatch.setattr(kernels, "FAR_OFFSET", -1.0)
    if plan == "dense moments":
        monkeypatch.setattr(kernels, "SPARSE_FILL", 0.0)


PLANS = [
    *[(plan, kind) for plan in ("features", "exact", "direct", "float32") for kind in KINDS],
    *[
        (plan, kind)
        for plan in ("sparse moments", "dense moments", "far", "x-moments")
        for kind in ("full", "tied")
    ],
]


@pytest.mark.parametrize(("plan", "kind"), PLANS)
def test_trajectory_matches_sklearn_through_every_plan(monkeypatch, plan: str, kind: str) -> None:
    # The same start as scikit-learn's own E- and M-steps; blocks of 97 rows (many blocks,
    # a short last one); every plan of the kernels to 1e-10 (float32: 1e-5).
    rng = np.random.default_rng(33)
    separated = plan in ("sparse moments", "dense moments")
    truth = random_params(rng, kind, k=3, d=4, spread=40.0 if separated else 1.5)
    x = sample(rng, truth, 1500)
    p0 = initial_params(x, 3, "kmeans++", kind, REG, np.random.default_rng(2))
    _plan_switches(monkeypatch, plan)
    made = kernels.make_plan(p0, n_rows=len(x))
    expect_direct = plan not in ("features", "float32")
    assert made.direct == expect_direct and len(made.exact) == (3 if expect_direct else 0)
    if kind in ("full", "tied"):
        assert made.far == (3 if plan == "far" else 0)
        assert made.x_moments == (plan == "x-moments")
    if separated:  # most responsibilities underflow: the sparse branch is the one allowed
        assert (np.exp(log_resp_and_norm(x, p0)[0]) > 1e-30).mean() < 0.5
    dtype = "float32" if plan == "float32" else "float64"
    engine = MemoryEngine(x, block_size=97, dtype=dtype)
    _, _, n_iter, _, history = gaussian_em(engine, p0, 8, 0.0, REG)
    assert n_iter == 8
    expected = sklearn_history(x, p0, 8)
    np.testing.assert_allclose(history, expected, rtol=1e-5 if plan == "float32" else 1e-10)
    if plan != "float32":
        assert not likelihood_decreases(history)


def three_clusters(seed: int, n: int = 450) -> np.ndarray:
    rng = np.random.default_rng(seed)
    a = rng.normal(0.0, 1.0, (n // 3, 3)) * [1.0, 2.0, 0.5]
    b = rng.normal(0.0, 1.0, (n // 3, 3)) * [2.0, 1.0, 1.0] + [2.0, 1.0, 0.0]
    c = rng.normal(0.0, 1.0, (n // 3, 3)) * [0.7, 0.7, 2.0] + [-1.0, 2.5, 1.0]
    return np.concatenate([a, b, c])


@pytest.mark.parametrize("model", ["VVE", "EVE", "VEV", "EVI", "VEI", "EVV"])
def test_squarem_on_models_a_linear_step_leaves(model: str) -> None:
    # mclust's constrained models: an extrapolated point is outside the model, so SQUAREM
    # takes one EM step back into it; the result is still a member of the model, the
    # likelihood never falls, and the optimum is plain EM's.
    x = three_clusters(7)
    p0 = initial_params(x, 3, "kmeans", model, REG, np.random.default_rng(1))
    plain = gaussian_em(MemoryEngine(x), p0, 5000, 1e-10, REG)
    fast = gaussian_em(MemoryEngine(x), p0, 5000, 1e-10, REG, accelerate=True)
    assert fast[3] and likelihood_decreases(fast[4]) == []
    assert fast[1] >= plain[1] - 1e-6 * abs(plain[1])
    cov = fast[0].covariances
    cov = np.array([np.diag(c) for c in cov]) if cov.ndim == 2 else cov
    dets = np.linalg.det(cov)
    if model[0] == "E":  # equal volume
        np.testing.assert_allclose(dets, dets[0], rtol=1e-8)
    if model[2] == "E":  # equal orientation: the covariances commute
        for a in cov:
            for b in cov:
                np.testing.assert_allclose(a @ b, b @ a, atol=1e-8 * np.abs(a @ b).max())
    if model[1] == "E":  # equal shape: the same eigenvalues after scaling to volume 1
        shapes = [
            np.sort(np.linalg.eigvalsh(c / d ** (1 / 3))) for c, d in zip(cov, dets, strict=True)
        ]
        np.testing.assert_allclose(shapes, np.broadcast_to(shapes[0], (3, 3)), rtol=1e-6)

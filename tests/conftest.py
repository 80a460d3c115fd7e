"""Shared fixtures: sample-data paths, generated mixtures with known truth (the CLI runner is
``clirun.run``).

Generated data is the independent reference of most tests: the planted weights, means and
covariances are known exactly, so a fit can be checked against the truth rather than
against numbers the code produced itself.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
# Test the checkout this file lives in, even when plain `pytest` would import another
# installed emcli (git worktrees share one environment).
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
SAMPLE_DATA = ROOT / "sample_data"
COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")


def _hypothesis_profiles() -> None:
    """Hypothesis draws the same examples on every run ("ci", the default: derandomized,
    no example database); ``HYPOTHESIS_PROFILE=explore`` draws new ones (locally)."""
    try:
        from hypothesis import settings
    except ImportError:  # pragma: no cover - hypothesis is in the test extra
        return
    import os

    settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
    settings.register_profile("explore", derandomize=False)
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


_hypothesis_profiles()


# ---------------------------------------------------------------------------- sample data
@pytest.fixture(scope="session")
def sample_dir() -> Path:
    return SAMPLE_DATA


@pytest.fixture(scope="session")
def classic_csv() -> Path:
    """300 draws from N(0, 1) and 700 from N(5, 1), one column ``x``."""
    return SAMPLE_DATA / "classic.csv"


@pytest.fixture(scope="session")
def faithful_csv() -> Path:
    """Old Faithful (R's datasets::faithful), 272 rows: eruptions, waiting."""
    return SAMPLE_DATA / "faithful.csv"


@pytest.fixture(scope="session")
def iris_csv() -> Path:
    """Fisher's iris: four numeric columns and a text column ``species``."""
    return SAMPLE_DATA / "iris.csv"


# ---------------------------------------------------------------------------- planted mixtures
@dataclass
class Planted:
    """Data drawn from a known mixture (covariances as k full d x d matrices)."""

    x: np.ndarray
    labels: np.ndarray
    weights: np.ndarray
    means: np.ndarray
    covariances: np.ndarray
    covariance_type: str


def random_covariances(kind: str, k: int, d: int, rng: np.random.Generator) -> np.ndarray:
    """k full (d x d) covariances with the structure of ``kind`` (scales in [0.3, 1])."""

    def full_matrix() -> np.ndarray:
        a = rng.normal(size=(d, d))
        q, _ = np.linalg.qr(a)
        return (q * rng.uniform(0.3, 1.0, size=d) ** 2) @ q.T

    if kind == "full":
        return np.stack([full_matrix() for _ in range(k)])
    if kind == "tied":
        return np.repeat(full_matrix()[None], k, axis=0)
    if kind == "diag":
        return np.stack([np.diag(rng.uniform(0.3, 1.0, size=d) ** 2) for _ in range(k)])
    if kind == "spherical":
        return np.stack([np.eye(d) * rng.uniform(0.3, 1.0) ** 2 for _ in range(k)])
    raise ValueError(kind)


def planted_mixture(
    kind: str = "full",
    k: int = 3,
    d: int = 2,
    n: int = 600,
    seed: int = 0,
    separation: float = 8.0,
    weights: Sequence[float] | None = None,
    covariances: np.ndarray | None = None,
) -> Planted:
    """Draw n rows from a k-component mixture whose means are ``separation`` apart or more.

    Means sit on a random simplex-like layout (multiples of ``separation`` along random
    directions), so the clusters are well separated compared with their spread (<= 1).
    Every component gets exactly round(n * weight) rows (rows shuffled).  ``covariances``
    (k full d x d matrices) replaces the random ones of ``random_covariances``.
    """
    rng = np.random.default_rng(seed)
    w = np.asarray(weights if weights is not None else rng.uniform(1.0, 2.0, size=k))
    w = w / w.sum()
    means = np.zeros((k, d))
    for j in range(1, k):
        while True:  # rejection: every pair at least `separation` apart
            cand = rng.uniform(-1.0, 1.0, size=d) * separation * k
            if np.all(np.linalg.norm(means[:j] - cand, axis=1) >= separation):
                means[j] = cand
                break
    covs = random_covariances(kind, k, d, rng)
    if covariances is not None:
        covs = np.asarray(covariances, dtype=np.float64)
    counts = np.round(w * n).astype(int)
    counts[-1] = n - counts[:-1].sum()
    parts, labels = [], []
    for j in range(k):
        parts.append(rng.multivariate_normal(means[j], covs[j], size=counts[j]))
        labels.append(np.full(counts[j], j))
    x, lab = np.concatenate(parts), np.concatenate(labels)
    order = rng.permutation(n)
    return Planted(x[order], lab[order], counts / n, means, covs, kind)


@pytest.fixture(scope="session")
def make_planted() -> Callable[..., Planted]:
    """The ``planted_mixture`` factory (session scope, so hypothesis tests may use it)."""
    return planted_mixture


def match_components(true_means: np.ndarray, fitted_means: np.ndarray) -> np.ndarray:
    """perm such that fitted component perm[j] is the one closest to true component j."""
    from scipy.optimize import linear_sum_assignment

    cost = np.linalg.norm(true_means[:, None, :] - fitted_means[None, :, :], axis=2)
    rows, cols = linear_sum_assignment(cost)
    return cols[np.argsort(rows)]


@pytest.fixture(scope="session")
def match() -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    return match_components


def write_csv(path: Path, x: np.ndarray, names: Sequence[str] | None = None) -> Path:
    """A plain CSV of x (repr floats, so the file round-trips exactly)."""
    names = list(names) if names is not None else [f"x{j}" for j in range(x.shape[1])]
    lines = [",".join(names)]
    lines += [",".join(repr(float(v)) for v in row) for row in x]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="session")
def to_csv() -> Callable[..., Path]:
    return write_csv


@pytest.fixture(scope="session")
def blobs_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """300 rows, 2 columns, 3 well-separated clusters (a small input for CLI tests)."""
    planted = planted_mixture("full", k=3, d=2, n=300, seed=11)
    return write_csv(tmp_path_factory.mktemp("blobs") / "blobs.csv", planted.x, ["a", "b"])


def integer_column_data(seed: int = 0, n: int = 200, step: float = 2.0) -> np.ndarray:
    """Two clusters; the second column is rounded to a multiple of ``step`` (few distinct
    values), so a component can sit on one value of it with zero spread."""
    rng = np.random.default_rng(seed)
    a = rng.normal([0.0, 50.0], [1.0, 3.0], size=(n // 2, 2))
    b = rng.normal([6.0, 80.0], [1.0, 3.0], size=(n - n // 2, 2))
    x = np.concatenate([a, b])
    x[:, 1] = np.round(x[:, 1] / step) * step
    return x


def sklearn_at(model):
    """A scikit-learn GaussianMixture holding exactly the parameters of ``model``."""
    from sklearn.mixture import GaussianMixture

    p = model.params
    gm = GaussianMixture(p.n_components, covariance_type=p.covariance_type)
    gm.weights_, gm.means_ = p.weights.copy(), p.means.copy()
    gm.covariances_, gm.precisions_cholesky_ = p.covariances.copy(), p.precisions_cholesky.copy()
    gm.converged_, gm.n_iter_, gm.lower_bound_ = True, 1, 0.0
    gm.n_features_in_ = p.n_features
    return gm


@pytest.fixture(scope="module")
def local_client():
    """A Dask client on an in-process cluster of two one-thread workers, one per test module
    (skipped without dask and distributed)."""
    distributed = pytest.importorskip("distributed")
    pytest.importorskip("dask.dataframe")
    import logging

    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=False,
        dashboard_address=":0",
        silence_logs=logging.ERROR,
    ) as cluster:
        with distributed.Client(cluster) as client:
            yield client

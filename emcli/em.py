"""The EM driver: initialise, iterate to convergence, restart, keep the best.

It is generic over engines (where the rows are) and reports progress through a ``Monitor``;
it knows nothing of terminals or files.

Rules (documented in the README and the man page):

* Convergence: the change of the mean log-likelihood per row between two iterations is below
  ``tol``.  ``tol == 0`` runs exactly ``max_iter`` EM iterations.
* The reported log-likelihood is that of the reported parameters (computed by the last
  E-step), and ``n_iter`` counts M-steps.
* Collapsed components: a component is *collapsed* when its covariance before the
  ``reg_covar`` floor, scaled to unit variance per column of the initialisation sample, has
  an eigenvalue below ``COLLAPSE_TOL``, or when it holds less than one row's worth of
  responsibility.  Columns constant over the whole sample are left out of the test (a
  property of the data, not a collapse).  A start that ends collapsed never wins over one
  that does not; when every start collapses, as many fresh starts again are tried once, and
  if those collapse too the best collapsed start is returned and flagged ``degenerate``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from .errors import FitError
from .families.gaussian import COVARIANCE_TYPES, GaussianParams, m_step
from .families.missing import observed_std
from .init import INIT_METHODS, initial_params, sample_indices

Array = NDArray[np.float64]
COLLAPSE_TOL = 1e-8
# A decrease of the log-likelihood beyond this relative size is not rounding: EM is broken.
DECREASE_TOL = 1e-9


@dataclass(frozen=True)
class EMSettings:
    """How to run EM; the values the CLI and ``emcli.fit`` share."""

    n_components: int
    covariance_type: str = "full"
    init: str = "kmeans"
    n_restarts: int = 10
    max_iter: int = 1000
    tol: float = 1e-8
    reg_covar: float = 1e-6
    seed: int = 0
    init_sample: int = 100_000
    accelerate: bool = False
    dtype: str = "float64"

    def validate(self) -> None:
        """Raise ValueError for values no data could make sense of."""
        checks = [
            (self.n_components >= 1, "n_components must be at least 1"),
            (self.covariance_type in COVARIANCE_TYPES, f"covariance_type must be one of "
             f"{', '.join(COVARIANCE_TYPES)}"),
            (self.init in INIT_METHODS, f"init must be one of {', '.join(INIT_METHODS)}"),
            (self.n_restarts >= 1, "n_restarts must be at least 1"),
            (self.max_iter >= 0, "max_iter must be 0 or more"),
            (self.tol >= 0 and math.isfinite(self.tol), "tol must be a finite number >= 0"),
            (self.reg_covar >= 0 and math.isfinite(self.reg_covar),
             "reg_covar must be a finite number >= 0"),
            (self.init_sample >= 1, "init_sample must be at least 1"),
            (self.dtype in ("float64", "float32"), "dtype must be float64 or float32"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)


@dataclass
class StartResult:
    """What one EM start produced (``params`` is None when it failed)."""

    start: int
    params: GaussianParams | None
    log_likelihood: float
    n_iter: int
    converged: bool
    history: list[float] = field(default_factory=list)
    collapsed: list[int] = field(default_factory=list)
    error: str | None = None

    @property
    def usable(self) -> bool:
        return self.params is not None

    def rank_key(self) -> tuple[int, float, int]:
        # Higher is better: usable and not collapsed first, then likelihood, then the
        # earliest start (so ties are broken the same way every run).
        return (
            int(self.usable) + int(self.usable and not self.collapsed),
            self.log_likelihood if self.usable else -math.inf,
            -self.start,
        )


@dataclass
class FitOutcome:
    best: StartResult
    starts: list[StartResult]
    reseeded: bool
    degenerate: bool
    warnings: list[str]


class Engine(Protocol):
    @property
    def n_samples(self) -> int: ...

    @property
    def n_features(self) -> int: ...

    def take(self, indices: NDArray[np.intp]) -> Array: ...

    def e_step(self, params: GaussianParams): ...  # -> SufficientStats


class Monitor(Protocol):
    """Receives progress; ``emcli.progress`` has the terminal and silent versions."""

    def start(self, start: int, n_starts: int) -> None: ...

    def iteration(self, start: int, n_iter: int, log_likelihood: float, delta: float) -> None: ...

    def end(self, result: StartResult) -> None: ...


class SilentMonitor:
    def start(self, start: int, n_starts: int) -> None:
        pass

    def iteration(self, start: int, n_iter: int, log_likelihood: float, delta: float) -> None:
        pass

    def end(self, result: StartResult) -> None:
        pass


def start_rng(seed: int, stream: int) -> np.random.Generator:
    """Independent random stream ``stream`` of a run (0: the sample, 1 + i: start i).

    Start i gets the same stream whatever the number of starts, so more restarts can
    only add candidates: the best of 20 is never worse than the best of 10.
    """
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(stream,)))


def run_em(
    engine: Engine,
    params: GaussianParams,
    max_iter: int,
    tol: float,
    reg_covar: float,
    on_iteration=None,
    accelerate: bool = False,
) -> tuple[GaussianParams, float, int, bool, list[float]]:
    """Plain EM from ``params`` (SQUAREM when ``accelerate`` and ``tol > 0``).

    Returns (params, log_likelihood, n_iter, converged, history) where history[t] is the
    total log-likelihood of the parameters after t M-steps (for accelerated EM: of each
    accepted point, see ``emcli.accelerate``).  ``tol == 0`` always runs exactly
    ``max_iter`` plain EM iterations.
    """
    if accelerate and tol > 0:
        from .accelerate import squarem

        return squarem(engine, params, max_iter, tol, reg_covar, on_iteration)
    n = engine.n_samples
    history: list[float] = []
    converged = False
    n_iter = 0
    while True:
        stats = engine.e_step(params)
        ll = float(stats.log_likelihood)
        delta = ll - history[-1] if history else math.nan
        history.append(ll)
        if on_iteration is not None:
            on_iteration(n_iter, ll, delta)
        if not math.isfinite(ll):
            raise FitError(
                "the log-likelihood is not finite; scale the data or increase --reg-covar"
            )
        if history[:-1] and tol > 0 and abs(delta) / n < tol:
            converged = True
            break
        if n_iter >= max_iter:
            break
        params = m_step(stats, reg_covar)
        n_iter += 1
    return params, history[-1], n_iter, converged, history


def collapsed_components(params: GaussianParams, reg_covar: float, scale: Array) -> list[int]:
    """Components whose covariance, before the floor, is singular (see module docstring).

    Args:
        scale: standard deviation of each column of the data, shape (n_features,); columns
            with 0 are constant and left out.
    """
    live = scale > 0
    inv = 1.0 / scale[live]
    k, d = params.n_components, int(live.sum())
    kind = params.covariance_type
    if d == 0:
        # Every column constant: nothing is left to collapse (inf, not 0, so no component is).
        smallest = np.full(k, np.inf)
    elif kind in ("diag", "spherical"):
        # The eigenvalues of a diagonal matrix are its diagonal: no (k, d, d) arrays, no
        # O(d^3) eigen-solver (500 columns took seconds per start).
        var = np.broadcast_to(params.covariances.reshape(k, -1), (k, params.n_features))
        smallest = ((var[:, live] - reg_covar) * inv[None, :] ** 2).min(axis=1)
    else:
        covs = params.covariances[None] if kind == "tied" else params.covariances
        raw = covs[:, live][:, :, live] - reg_covar * np.eye(d)[None]
        standard = raw * inv[None, :, None] * inv[None, None, :]
        smallest = np.broadcast_to(np.linalg.eigvalsh(standard)[:, 0], (k,))
    return [int(j) for j in np.flatnonzero(smallest < COLLAPSE_TOL)]


def fit_em(engine: Engine, settings: EMSettings, monitor: Monitor | None = None) -> FitOutcome:
    """EM with ``settings.n_restarts`` starts; the best start is kept (module docstring)."""
    settings.validate()
    monitor = monitor or SilentMonitor()
    n = engine.n_samples
    sample = engine.take(sample_indices(n, settings.init_sample, start_rng(settings.seed, 0)))
    scale = observed_std(sample)  # sample.std(axis=0), over observed cells when gaps
    starts = _run_starts(engine, sample, scale, settings, range(settings.n_restarts),
                         settings.n_restarts, monitor)
    reseeded = False
    if not any(s.usable and not s.collapsed for s in starts):
        reseeded = True
        more = range(settings.n_restarts, 2 * settings.n_restarts)
        starts += _run_starts(engine, sample, scale, settings, more,
                              2 * settings.n_restarts, monitor)
    best = max(starts, key=StartResult.rank_key)
    if not best.usable:
        raise FitError(best.error or "every start failed")
    warnings = []
    degenerate = bool(best.collapsed)
    if degenerate:
        warnings.append(
            f"every start ended with a collapsed component (component(s) "
            f"{', '.join(map(str, best.collapsed))} of the best start sit on too few distinct "
            f"values, so the likelihood is held up only by --reg-covar): the result is a "
            f"spurious optimum. Try a smaller -k, a simpler --covariance, or a larger --reg-covar"
        )
    elif settings.tol > 0 and not best.converged:
        warnings.append(
            f"EM did not converge within --max-iter {settings.max_iter} iterations "
            f"(tolerance {settings.tol:g}); increase --max-iter or --tol"
        )
    return FitOutcome(best, starts, reseeded, degenerate, warnings)


def _run_starts(engine: Engine, sample: Array, scale: Array, settings: EMSettings,
                indices: range, n_starts: int, monitor: Monitor) -> list[StartResult]:
    """Run starts on ``parallel.threads()`` threads (each start's E-step then on one thread,
    BLAS on one thread); every start is computed alone, so the results are identical to a
    sequential run whatever the number of threads."""
    from . import parallel

    n_threads = min(parallel.threads(), len(indices))
    if n_threads > 1 and getattr(engine, "parallel_starts", False):
        monitor = _LockedMonitor(monitor)
    else:
        n_threads = 1
    return parallel.worker_map(
        lambda i: _one_start(engine, sample, scale, settings, i, n_starts, monitor),
        indices, n_threads)


class _LockedMonitor:
    """Serialises progress calls coming from parallel starts."""

    def __init__(self, inner: Monitor) -> None:
        import threading

        self._inner, self._lock = inner, threading.Lock()

    def __getattr__(self, name: str):
        attr = getattr(self._inner, name)
        if not callable(attr):
            return attr

        def call(*args, **kwargs):
            with self._lock:
                return attr(*args, **kwargs)

        return call


def _one_start(
    engine: Engine,
    sample: Array,
    scale: Array,
    settings: EMSettings,
    index: int,
    n_starts: int,
    monitor: Monitor,
) -> StartResult:
    monitor.start(index, n_starts)
    rng = start_rng(settings.seed, 1 + index)
    try:
        params0 = initial_params(
            sample,
            settings.n_components,
            settings.init,
            settings.covariance_type,
            settings.reg_covar,
            rng,
        )
        params, ll, n_iter, converged, history = run_em(
            engine,
            params0,
            settings.max_iter,
            settings.tol,
            settings.reg_covar,
            lambda it, ll, delta: monitor.iteration(index, it, ll, delta),
            accelerate=settings.accelerate,
        )
    except FitError as exc:
        result = StartResult(index, None, -math.inf, 0, False, error=str(exc))
    else:
        collapsed = collapsed_components(params, settings.reg_covar, scale)
        empty = np.flatnonzero(params.weights * engine.n_samples < 1.0)
        collapsed = sorted(set(collapsed) | {int(j) for j in empty})
        result = StartResult(index, params, ll, n_iter, converged, history, collapsed)
    monitor.end(result)
    return result


def canonical_order(params: GaussianParams) -> NDArray[np.intp]:
    """Component order: decreasing weight, ties broken by the means (lexicographic)."""
    keys = [params.means[:, c] for c in range(params.n_features - 1, -1, -1)]
    return np.lexsort([*keys, -params.weights])


def likelihood_decreases(history: list[float]) -> list[int]:
    """Iterations at which the log-likelihood fell by more than rounding (a bug if any)."""
    return [
        t
        for t in range(1, len(history))
        if history[t] < history[t - 1] - DECREASE_TOL * max(1.0, abs(history[t - 1]))
    ]

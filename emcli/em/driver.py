"""The EM driver: initialise, iterate to convergence, restart, keep the best.

It is generic over families (``emcli.families.base.Family``: it calls only their methods)
and over engines (where the rows are: ``Engine.e_step(family, plan)`` sums the family's
E-step over every row), and reports progress through a ``Monitor``; it knows nothing of
terminals or files.

Rules (documented in the README and the man page):

* Convergence: the change of the mean log-likelihood per row between two iterations is below
  ``tol``.  ``tol == 0`` runs exactly ``max_iter`` EM iterations.
* The reported log-likelihood is that of the reported parameters (computed by the last
  E-step), and ``n_iter`` counts M-steps.
* Collapsed components (``Family.collapsed``; for the Gaussian family a covariance that,
  before the ``reg_covar`` floor and scaled to unit variance per column of the
  initialisation sample, has an eigenvalue below 1e-8, or less than one row's worth of
  responsibility).  A start that ends collapsed never wins over one that does not; when
  every start collapses, as many fresh starts again are tried once, and if those collapse
  too the best collapsed start is returned and flagged ``degenerate``.
* A warm start (``init`` given as parameters) is the one start of the run.
* With ``EMSettings.explore`` (model selection sets it) restarts run in two phases: every
  start runs ``EXPLORE_ITER`` iterations (or until its mean log-likelihood per row changes
  by less than ``EXPLORE_TOL``, 1e-5 per row, or the requested tolerance when that is
  coarser; mclust's own default stops at a relative change of 1e-5 of the total), then start 0
  and the ``POLISH`` best of the others (not collapsed first) carry on from where they
  stopped to the requested tolerance, and the best of those wins (the short-runs strategy
  of Biernacki, Celeux & Govaert 2003).  Most of the cost of a start is its slow approach
  to an optimum, so ten starts cost about as much as three; a start that is not polished is
  reported with the log-likelihood it reached (``converged`` false, unless it met the
  requested tolerance already), and one that met it is not polished further.  A single fit runs
  every start to the requested tolerance, so that more restarts never end worse.  Where
  the family offers a batched loop on rows in memory (``em_on_rows_batch``), the
  exploratory runs of all starts, and the plain iterations that begin the polishing, go
  through it at once, each start with its own iterations.
* A start function (``starter``, e.g. scikit-learn's ``means_init`` over k-means labels) is
  called instead of ``Family.start`` for every start, with the same arguments less the
  method: ``starter(sample, n_components, rng, sample_weights) -> params``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from ..errors import FitError, Message, UsageError
from .init import INIT_METHODS, sample_indices, start_method
from .monitor import Monitor, SilentMonitor, locked
from .squarem import squarem
from .step import e_step, finite_log_likelihood

Array = NDArray[np.float64]
# A decrease of the log-likelihood beyond this relative size is not rounding: EM is broken.
DECREASE_TOL = 1e-9
# Starts whose log-likelihoods differ by less than this (relative) reached the same optimum.
TIE_TOL = 1e-10
# Restarts run in two phases (module docstring): every start for at most EXPLORE_ITER
# iterations or to EXPLORE_TOL, then start 0 and the best POLISH others on to the requested
# tolerance (Biernacki, Celeux & Govaert 2003's short-runs strategy).  POLISH = 1 against 2:
# 16% less time over mclust's seven data sets, one cell more below mclust's (851 of 865).
EXPLORE_TOL = 1e-5
EXPLORE_ITER = 25
POLISH = 1
# The polish phase runs POLISH_PLAIN plain iterations, then SQUAREM (``emcli.em.squarem``)
# for a start still not converged: the same optimum in 2-4x fewer iterations on a slow
# approach, without SQUAREM's extra E-steps where plain EM converges at once (measured on
# mclust's data sets: SQUAREM throughout cost 12-15% more on banknote and thyroid and 2x
# less on faithful).
POLISH_ACCELERATE = True
POLISH_PLAIN = 20
# Explored starts within this relative distance of a start already chosen for polishing
# sit at the same point: polishing them again would find the same optimum.
SAME_POINT_TOL = 1e-9


@dataclass(frozen=True)
class EMSettings:
    """How to run EM, whatever the family; the values the CLI and ``emcli.fit`` share."""

    n_components: int
    init: str = "auto"
    n_restarts: int = 10
    max_iter: int = 1000
    tol: float = 1e-8
    seed: int = 0
    init_sample: int = 100_000
    accelerate: bool = False
    dtype: str = "float64"
    explore: bool = False

    def validate(self) -> None:
        """Raise UsageError for values no data could make sense of."""
        checks = [
            (self.n_components >= 1, "{n_components} must be at least 1"),
            (
                self.init in INIT_METHODS,
                f"{{init}} must be one of {', '.join(INIT_METHODS)}, or a fitted model",
            ),
            (self.n_restarts >= 1, "{n_restarts} must be at least 1"),
            (self.max_iter >= 0, "{max_iter} must be 0 or more"),
            (self.tol >= 0 and math.isfinite(self.tol), "{tol} must be a finite number >= 0"),
            (self.init_sample >= 1, "{init_sample} must be at least 1"),
            (self.dtype in ("float64", "float32"), "{dtype} must be float64 or float32"),
        ]
        for ok, message in checks:
            if not ok:
                raise UsageError(message)


@dataclass
class StartResult:
    """What one EM start produced (``params`` is None when it failed)."""

    start: int
    params: Any
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
    """Where the rows are (``emcli.engines``); it never imports a family."""

    @property
    def n_samples(self) -> int: ...

    @property
    def n_features(self) -> int: ...

    @property
    def dtype(self) -> Any: ...

    def take(self, indices: NDArray[np.intp]) -> tuple[Array, Array | None]: ...

    def e_step(self, family: Any, plan: Any) -> Any: ...  # the family's stats, summed


def start_rng(seed: int, stream: int) -> np.random.Generator:
    """Independent random stream ``stream`` of a run (0: the sample, 1 + i: start i).

    Start i gets the same stream whatever the number of starts, so more restarts can
    only add candidates: the best of 20 is never worse than the best of 10.
    """
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(stream,)))


def run_em(
    engine: Engine,
    family: Any,
    params: Any,
    max_iter: int,
    tol: float,
    on_iteration=None,
    accelerate: bool = False,
) -> tuple[Any, float, int, bool, list[float]]:
    """Plain EM from ``params`` (SQUAREM when ``accelerate`` and ``tol > 0``).

    Returns (params, log_likelihood, n_iter, converged, history) where history[t] is the
    total log-likelihood of the parameters after t M-steps (for accelerated EM: of each
    accepted point, see ``emcli.em.squarem``).  ``tol == 0`` always runs exactly
    ``max_iter`` plain EM iterations.  Convergence is judged per unit of weight (per row
    without frequency weights).
    """
    fused = getattr(family, "em_on_rows", None)
    rows = getattr(engine, "rows_in_memory", lambda: None)() if fused is not None else None
    if rows is not None and fused is not None:
        # A family's fused loop over rows held in memory (the same iterations, less overhead)
        done = fused(rows[0], rows[1], params, max_iter, tol, on_iteration, accelerate=accelerate)
        if done is not None:
            return done
    if accelerate and tol > 0:
        return squarem(engine, family, params, max_iter, tol, on_iteration)
    history: list[float] = []
    converged = False
    n_iter = 0
    while True:
        stats, plan = e_step(engine, family, params)
        ll = float(stats.log_likelihood)
        delta = ll - history[-1] if history else math.nan
        history.append(ll)
        if on_iteration is not None:
            on_iteration(n_iter, ll, delta)
        finite_log_likelihood(stats)
        if history[:-1] and tol > 0 and abs(delta) / max(stats.n_samples, 1e-300) < tol:
            converged = True
            break
        if n_iter >= max_iter:
            break
        params = family.m_step(stats, plan)
        n_iter += 1
    return params, history[-1], n_iter, converged, history


def fit_em(
    engine: Engine,
    family: Any,
    settings: EMSettings,
    monitor: Monitor | None = None,
    init_params: Any = None,
    starter: Callable[..., Any] | None = None,
) -> FitOutcome:
    """EM with ``settings.n_restarts`` starts (or from ``init_params``, one start); the best
    start is kept (module docstring).  ``starter`` replaces ``family.start`` (module
    docstring)."""
    settings.validate()
    monitor = monitor or SilentMonitor()
    n = engine.n_samples
    sample, sample_w = engine.take(
        sample_indices(n, settings.init_sample, start_rng(settings.seed, 0))
    )
    scale = family.reference_scale(sample)
    run = _Run(engine, family, settings, sample, sample_w, scale, monitor, init_params, starter)
    n_starts = 1 if init_params is not None else settings.n_restarts
    two_phase = settings.explore and n_starts > POLISH + 1 and settings.tol > 0
    starts = run.starts(range(n_starts), n_starts, two_phase)
    reseeded = False
    if init_params is None and not any(s.usable and not s.collapsed for s in starts):
        reseeded = True
        starts += run.starts(range(n_starts, 2 * n_starts), 2 * n_starts, two_phase)
    if two_phase:
        starts = run.polish(starts)
    best = best_start(starts)
    if not best.usable:
        raise FitError(best.error or "every start failed")
    return FitOutcome(
        best, starts, reseeded, bool(best.collapsed), _warnings(best, settings, family)
    )


def best_start(starts: list[StartResult]) -> StartResult:
    """The winner: usable and not collapsed first, then the highest log-likelihood; starts
    within ``TIE_TOL`` (relative) of the highest count as tied and the earliest of them wins,
    so that rounding (a different summation order, another engine) never changes which of
    several starts at the same optimum is reported."""
    top = max(starts, key=StartResult.rank_key)
    if not top.usable:
        return top
    tol = TIE_TOL * max(1.0, abs(top.log_likelihood))
    tied = [
        s
        for s in starts
        if s.rank_key()[0] == top.rank_key()[0] and s.log_likelihood >= top.log_likelihood - tol
    ]
    return min(tied, key=lambda s: s.start)


def _warnings(best: StartResult, settings: EMSettings, family: Any = None) -> list[str]:
    said = getattr(family, "collapse_warning", None)
    if best.collapsed and said is not None:  # the family's words for a collapse
        return [Message(said(best.collapsed))]
    if best.collapsed:
        return [
            Message(
                f"every start ended with a collapsed component (component(s) "
                f"{', '.join(map(str, best.collapsed))} of the best start sit on too few distinct "
                f"values, so the likelihood is held up only by {{reg_covar}}): the result is a "
                f"spurious optimum. Try a smaller {{n_components}}, a simpler {{covariance_type}}, "
                f"or a larger {{reg_covar}}"
            )
        ]
    if settings.tol > 0 and not best.converged:
        return [
            Message(
                f"EM did not converge within {{max_iter}} {settings.max_iter} iterations "
                f"(tolerance {settings.tol:g}); increase {{max_iter}} or {{tol}}"
            )
        ]
    return []


@dataclass
class _Run:
    """What every start of one fit shares."""

    engine: Engine
    family: Any
    settings: EMSettings
    sample: Array
    sample_weights: Array | None
    scale: Any
    monitor: Monitor
    init_params: Any = None
    starter: Callable[..., Any] | None = None

    def starts(self, indices: range, n_starts: int, explore: bool = False) -> list[StartResult]:
        """Run starts on ``parallel.threads()`` threads (each start's E-step then on one
        thread, BLAS on one thread); every start is computed alone, so the results are
        identical to a sequential run whatever the number of threads."""
        from .. import parallel

        n_threads = min(parallel.threads(), len(indices))
        monitor = self.monitor
        if n_threads > 1 and getattr(self.engine, "parallel_starts", False):
            monitor = locked(monitor)
        else:
            n_threads = 1
        tol = max(EXPLORE_TOL, self.settings.tol) if explore else self.settings.tol
        max_iter = min(EXPLORE_ITER, self.settings.max_iter) if explore else self.settings.max_iter
        if explore and not self.settings.accelerate:
            batched = self._batch(indices, n_starts, tol, max_iter)
            if batched is not None:
                return batched
        return parallel.worker_map(
            lambda i: self.one(i, n_starts, monitor, tol, max_iter), indices, n_threads
        )

    def _batch(
        self, indices: range, n_starts: int, tol: float, max_iter: int
    ) -> list[StartResult] | None:
        """The starts run through the family's batched loop (``em_on_rows_batch``: one
        loop for all of them, on rows in memory), or None where it has none: the same
        iterations as ``one`` for each start, in one pass."""
        rows = self._batch_rows(len(indices))
        if rows is None or self.init_params is not None:
            return None
        first: dict[int, Any] = {}
        failed: dict[int, StartResult] = {}
        for index in indices:
            self.monitor.start(index, n_starts)
            try:
                first[index] = self._start_params(index)
            except FitError as exc:
                failed[index] = self._result(index, exc)
        live = list(first)
        monitor = self.monitor
        outcomes = self.family.em_on_rows_batch(
            rows[0],
            rows[1],
            [first[i] for i in live],
            max_iter,
            tol,
            lambda r, it, ll, delta: monitor.iteration(live[r], it, ll, delta),
        )
        results = dict(failed)
        for index, done in zip(live, outcomes, strict=True):
            results[index] = self._result(index, done)
        out = [results[i] for i in indices]
        for r in out:
            self.monitor.end(r)
        return out

    def _batch_rows(self, n_starts: int) -> tuple[Array, Array | None] | None:
        """(rows, weights) in memory when the family's batched loop takes ``n_starts`` starts
        on them (``Family.batches``), else None."""
        fits = getattr(self.family, "batches", None)
        rows = getattr(self.engine, "rows_in_memory", lambda: None)() if fits else None
        if rows is None or fits is None:
            return None
        return rows if fits(*rows[0].shape, self.settings.n_components, n_starts) else None

    def _result(self, index: int, done: Any) -> StartResult:
        """A start's StartResult from run_em's value, or from the FitError that ended it."""
        if isinstance(done, FitError):
            return StartResult(index, None, -math.inf, 0, False, error=done.args[0])
        params, ll, n_iter, converged, history = done
        collapsed = self.family.collapsed(params, self.scale, total_weight(self.engine))
        return StartResult(index, params, ll, n_iter, converged, history, collapsed)

    def _start_params(self, index: int) -> Any:
        """Start ``index``'s parameters (``starter``, else the family's start method)."""
        s = self.settings
        if self.starter is not None:
            return self.starter(
                self.sample, s.n_components, start_rng(s.seed, 1 + index), self.sample_weights
            )
        return self.family.start(
            self.sample,
            s.n_components,
            start_method(s.init, index),
            start_rng(s.seed, 1 + index),
            self.sample_weights,
        )

    def polish(self, starts: list[StartResult]) -> list[StartResult]:
        """The ``POLISH`` best explored starts carried on to the requested tolerance (in
        the order of their index, so the result does not depend on threads)."""
        ranked = sorted((r for r in starts if r.usable), key=StartResult.rank_key, reverse=True)
        kept = [r.log_likelihood for r in starts if r.start == 0 and r.usable]
        chosen = {0} if kept else set()  # a start that failed (singular) stays failed
        for r in ranked:
            if len(chosen) > POLISH:
                break
            if r.start == 0 or any(
                abs(r.log_likelihood - ll) <= SAME_POINT_TOL * max(1.0, abs(ll)) for ll in kept
            ):
                continue
            chosen.add(r.start)
            kept.append(r.log_likelihood)
        # explored to the requested tolerance already (a coarse one, ``starts``): done
        met = self.settings.tol >= EXPLORE_TOL
        carried = [r for r in starts if r.start in chosen and not (met and r.converged)]
        plain = self._plain_batch(carried)
        out = []
        for r in starts:
            if r not in carried:
                out.append(replace(r, converged=False) if r.usable and not met else r)
                continue
            try:
                params, ll, n_iter, converged, history = self._carry_on(r, plain.get(r.start))
            except FitError as exc:
                out.append(StartResult(r.start, None, -math.inf, 0, False, error=exc.args[0]))
                continue
            collapsed = self.family.collapsed(params, self.scale, total_weight(self.engine))
            result = StartResult(
                r.start,
                params,
                ll,
                r.n_iter + n_iter,
                converged,
                r.history + history[1:],
                collapsed,
            )
            self.monitor.end(result)
            out.append(result)
        return out

    def _plain_batch(self, picked: list[StartResult]) -> dict[int, Any]:
        """The plain iterations that ``_carry_on`` begins with, for several starts through
        the family's batched loop (as ``_batch``), by start index; empty where they run
        alone (one start, no batched loop, or fewer iterations left for some)."""
        s = self.settings
        if len(picked) < 2 or s.accelerate or not POLISH_ACCELERATE:
            return {}
        rows = self._batch_rows(len(picked))
        if rows is None or any(s.max_iter - r.n_iter < POLISH_PLAIN for r in picked):
            return {}
        monitor = self.monitor
        outcomes = self.family.em_on_rows_batch(
            rows[0],
            rows[1],
            [r.params for r in picked],
            POLISH_PLAIN,
            s.tol,
            lambda i, it, ll, delta: monitor.iteration(
                picked[i].start, picked[i].n_iter + it, ll, delta
            ),
        )
        return {r.start: done for r, done in zip(picked, outcomes, strict=True)}

    def _carry_on(
        self, r: StartResult, plain: Any = None
    ) -> tuple[Any, float, int, bool, list[float]]:
        """EM from an explored start to the requested tolerance: ``POLISH_PLAIN`` plain
        iterations (``plain``: their outcome, already run by ``_plain_batch``), then
        (``POLISH_ACCELERATE``) SQUAREM for a start still not converged; ``run_em``'s
        return value over both."""
        s = self.settings
        left = max(0, s.max_iter - r.n_iter)

        def run(params: Any, n: int, done: int, accelerate: bool) -> Any:
            return run_em(
                self.engine,
                self.family,
                params,
                n,
                s.tol,
                lambda it, ll, delta, i=r.start: self.monitor.iteration(i, done + it, ll, delta),
                accelerate=accelerate,
            )

        if s.accelerate or not POLISH_ACCELERATE:
            return run(r.params, left, r.n_iter, s.accelerate)  # type: ignore[no-any-return]
        if isinstance(plain, FitError):
            raise plain
        params, ll, n_iter, converged, history = plain or run(
            r.params, min(POLISH_PLAIN, left), r.n_iter, False
        )
        if converged or n_iter >= left:
            return params, ll, n_iter, converged, history
        params, ll, more, converged, rest = run(params, left - n_iter, r.n_iter + n_iter, True)
        return params, ll, n_iter + more, converged, history + rest[1:]

    def one(
        self, index: int, n_starts: int, monitor: Monitor, tol: float, max_iter: int
    ) -> StartResult:
        s = self.settings
        monitor.start(index, n_starts)
        try:
            params0 = (
                self.init_params if self.init_params is not None else self._start_params(index)
            )
            params, ll, n_iter, converged, history = run_em(
                self.engine,
                self.family,
                params0,
                max_iter,
                tol,
                lambda it, ll, delta: monitor.iteration(index, it, ll, delta),
                accelerate=s.accelerate,
            )
        except FitError as exc:
            result = self._result(index, exc)
        else:
            result = self._result(index, (params, ll, n_iter, converged, history))
        monitor.end(result)
        return result


def total_weight(engine: Engine) -> float:
    """The engine's total frequency weight (its number of rows when unweighted)."""
    total = getattr(engine, "total_weight", None)
    return float(engine.n_samples if total is None else total)


def likelihood_decreases(history: list[float]) -> list[int]:
    """Iterations at which the log-likelihood fell by more than rounding (a bug if any)."""
    return [
        t
        for t in range(1, len(history))
        if history[t] < history[t - 1] - DECREASE_TOL * max(1.0, abs(history[t - 1]))
    ]

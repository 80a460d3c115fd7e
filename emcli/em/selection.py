"""Model selection: fit every (k, covariance type) candidate and rank them by BIC, ICL or AIC.

Criteria use scikit-learn's sign (lower is better)::

    BIC = -2 log L + p ln n
    AIC = -2 log L + 2 p
    ICL = BIC + 2 * entropy,   entropy = -sum_i sum_j r_ij ln r_ij   (Biernacki et al. 2000)

mclust reports BIC as 2 log L - p ln n (higher is better): mclust's value is minus ours.

A candidate is *degenerate* when its best start is collapsed (every start collapsed, see
``emcli.em``): like mclust's singular models it gets no criterion value and never wins.  A
candidate that cannot be fitted at all (k larger than the rows, every start singular) is a
row with its reason.  Each candidate is fitted exactly as ``fit`` would, with the same seed,
so the table does not depend on the number of parallel jobs.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..errors import DataError, EmcliError, FitError, Message
from ..model import MixtureModel
from ..workers import pool as _pool
from ..workers import pool_jobs
from ..workers import stop_workers as _stop_workers
from .driver import TIE_TOL

Array = NDArray[np.float64]
CRITERIA = ("bic", "icl", "aic")
SKIP_REASON = (
    "not estimable: {d} columns and only {n} rows (d >= n); as mclust, only the diagonal and "
    "spherical models are fitted. Reduce the columns first ({{pca}})"
)


@dataclass
class Candidate:
    """One row of the selection table."""

    n_components: int
    covariance_type: str
    model: MixtureModel | None = None
    icl: float | None = None
    reason: str | None = None
    skipped: bool = False

    @property
    def model_name(self) -> str:
        """mclust's name of the covariance model (``covariance`` keeps the user's): the fitted
        model's, else the name as given (``all`` gives mclust's names)."""
        return str(getattr(getattr(self.model, "params", None), "model_name", self.covariance_type))

    @property
    def degenerate(self) -> bool:
        return self.model is not None and bool(self.model.collapsed)

    def criterion(self, name: str) -> float | None:
        """The criterion's value, or None for a failed or degenerate candidate."""
        if self.model is None or self.degenerate:
            return None
        return {"bic": self.model.bic, "aic": self.model.aic, "icl": self.icl}[name]

    def row(self) -> dict[str, Any]:
        m = self.model
        ok = m is not None and not self.degenerate
        status = "ok" if ok else ("degenerate" if self.degenerate else "failed")
        if self.skipped:
            status = "skipped"
        return {
            "components": self.n_components,
            "covariance": self.covariance_type,
            "model_name": self.model_name,
            "status": status,
            "log_likelihood": m.log_likelihood if ok and m is not None else None,
            "n_parameters": m.n_parameters if m is not None else None,
            "bic": self.criterion("bic"),
            "aic": self.criterion("aic"),
            "icl": self.criterion("icl"),
            "converged": m.converged if m is not None else None,
            "n_iter": m.n_iter if m is not None else None,
            "reason": self.reason or "",
        }


def parse_components(spec: str) -> Sequence[int]:
    """'3' -> [3]; '1..9' -> range(1, 10) (not expanded: ``check_components`` checks it
    against the rows first); '2,3,5' -> [2, 3, 5]."""
    text = spec.strip()
    try:
        if ".." in text:
            lo, hi = (int(v) for v in text.split("..", 1))
            if hi < lo:
                raise ValueError
            if lo >= 1:
                return range(lo, hi + 1)
            values = [lo]  # refused below
        else:
            values = [int(v) for v in text.split(",")]
    except ValueError:
        raise ValueError(
            f"'{spec}' is not a number of components; give 3, a range 1..9 or a list 2,3,5"
        ) from None
    if not values or min(values) < 1:
        raise ValueError(f"'{spec}': the number of components must be at least 1")
    return list(dict.fromkeys(values))


def check_components(components: Sequence[int], n_rows: int) -> None:
    """DataError when the data cannot take the -k values: all of them above the rows, or a
    range reaching past them (checked by its ends: a range is never expanded for this)."""
    if isinstance(components, range) and len(components):
        lo, hi = components[0], components[-1]
    elif components:
        lo, hi = min(components), 0
    else:
        return
    if lo > n_rows:
        raise DataError(
            f"every {{n_components}} value is more components than the {n_rows} data rows; "
            f"use at most {{n_components}} {n_rows}"
        )
    if hi > n_rows:
        raise DataError(
            f"{{n_components}} {lo}..{hi} reaches more components than the {n_rows} data "
            f"rows; use at most {{n_components}} {lo}..{n_rows}"
        )


def entropy(model: MixtureModel, x: Array) -> float:
    """-sum r log r over rows and components (0 log 0 = 0)."""
    total = 0.0
    size = 8192
    for s in range(0, x.shape[0], size):
        log_resp = model.log_resp_and_norm(x[s : s + size])[0]
        resp = np.exp(log_resp)
        total -= float(np.sum(resp * np.where(resp > 0, log_resp, 0.0)))
    return total


def _fit_candidate(
    x: Array, columns: Sequence[str], k: int, kind: str, options: dict[str, Any]
) -> Candidate:
    from ..api import fit

    cand = Candidate(k, kind)
    try:
        cand.model = fit(x, k, columns=columns, covariance_type=kind, **options)
    except EmcliError as exc:
        cand.reason = Message(exc.args[0] if exc.args else str(exc))
        return cand
    if options.get("missing") == "drop":  # the model was fitted on the complete rows
        x = x[~np.isnan(x).any(axis=1)]
    cand.icl = cand.model.bic + 2.0 * entropy(cand.model, x)
    if cand.degenerate:
        cand.reason = "collapsed component in every start (singular covariance)"
    return cand


# Screening (``select``): every candidate is first fitted from its first start alone (the
# hierarchical start, mclust's only one), with SQUAREM, to SCREEN_TOL (per row, or the
# requested tolerance when that is coarser): a thousandth of a log-likelihood unit on a few
# hundred rows, far below what ranks candidates.  Then ``_repair`` starts again every
# candidate that a nested model (or its own model with one component fewer) beat, from that
# fit; and the CONTENDERS best by the criterion, and any within CONTENDER_MARGIN of the
# best, are fitted again with every restart.  Measured over mclust's seven data sets: 4
# screening starts (hc, k-means, k-means++, random; two of them polished) took 1.6x the CPU
# time of this, and left 9 cells below mclust's log-likelihood where this leaves 13.
SCREEN_STARTS = 1
# With this many restarts or fewer every candidate is fitted with all of them (as fit would).
SCREEN_ABOVE = 4
SCREEN_TOL = 1e-6
CONTENDERS = 6
CONTENDER_MARGIN = 10.0
# A fit beaten by more than this (relative) by a nested model's is started again from it.
REPAIR_TOL = 1e-7


def select(
    x: Array,
    columns: Sequence[str],
    components: Sequence[int],
    covariance_types: Sequence[str],
    criterion: str = "bic",
    jobs: int | None = None,
    on_candidate: Callable[[int, int, Candidate], None] | None = None,
    skipped: Sequence[str] = (),
    **options: Any,
) -> tuple[Candidate | None, list[Candidate]]:
    """Fit every candidate; return (winner or None, all candidates in grid order).

    ``covariance_types`` are names of covariance models (``families.gaussian.models.
    covariance_grid`` resolves ``all`` and finds the ``skipped`` ones, which d >= n cannot
    estimate: they are rows of the table with their reason, not fitted).
    ``options`` are passed to ``emcli.fit`` (restarts, tolerance, seed, ...).  With
    ``jobs`` > 1 the candidates are shared between this process and ``jobs - 1`` worker
    processes (one BLAS thread each, ``_share``).

    With more than ``SCREEN_ABOVE`` restarts, the grid is *screened*: every candidate is
    fitted with its first ``SCREEN_STARTS`` restart (the hc start, mclust's) with SQUAREM,
    then the ``CONTENDERS`` best by the criterion, and every candidate within
    ``CONTENDER_MARGIN`` of the best, are fitted again with all restarts and keep the
    better of their two fits.  The screening fits stop at ``SCREEN_TOL`` per row (the
    requested tolerance when it is coarser).  The others are reported from the screening
    fit (their model's ``settings.n_restarts`` and ``settings.tol`` say how it was fitted).
    Gaussian candidates below a model nested in them are fitted again from it (``_repair``).
    """
    if criterion not in CRITERIA:
        raise ValueError(f"criterion must be one of {', '.join(CRITERIA)}")
    check_components(components, x.shape[0])  # as for one -k: a DataError, status 1
    width = int(options.get("pca") or x.shape[1])  # the columns EM sees
    kinds = list(covariance_types)
    options = {"explore": True, **options}
    n_rows = x.shape[0]
    grid = [(k, kind) for kind in kinds for k in components if kind not in skipped]
    jobs = pool_jobs(jobs, len(grid))
    restarts = int(options.get("n_restarts", 10))
    screen = (
        restarts > SCREEN_ABOVE and len(grid) > CONTENDERS and not callable(options.get("init"))
    )
    tol = float(options.get("tol", 1e-8))
    first = (
        {
            **options,
            "n_restarts": SCREEN_STARTS,
            "tol": max(tol, SCREEN_TOL) if tol > 0 else tol,
            "accelerate": True,
        }
        if screen
        else options
    )
    pool = _pool(jobs) if jobs > 1 else None
    from concurrent.futures.process import BrokenProcessPool

    try:
        done = _fit_grid(x, columns, grid, first, pool, on_candidate)
        progress = _Progress(len(grid), on_candidate)
        again = _contenders(done, criterion) if screen else []

        gaussian = options.get("family", "gaussian") == "gaussian"

        def repair(idle: Callable[[], bool] | None = None) -> None:
            if gaussian:
                _repair(x, columns, grid, done, first, pool, progress, idle)

        # the contenders' refits go to the workers while this process makes the repairs,
        # which it shares with them once they are done
        refits = _fit_grid(x, columns, [grid[i] for i in again], options, pool, progress, repair)
        for i, cand in zip(again, refits, strict=True):
            done[i] = _better(done[i], cand, criterion)
        if screen:  # candidates the repairs made contenders
            later = [i for i in _contenders(done, criterion) if i not in again]
            refits = _fit_grid(x, columns, [grid[i] for i in later], options, pool, progress)
            for i, cand in zip(later, refits, strict=True):
                done[i] = _better(done[i], cand, criterion)
            again += later
        if again:  # a refit above a candidate that contains it
            repair()
    except BrokenProcessPool:  # a worker was killed (e.g. by the out-of-memory killer)
        if pool is not None:
            _stop_workers(pool)
        raise FitError(
            "a worker process of the model selection ended abruptly (killed, or out of "
            "memory); run it again, or with {jobs} 1"
        ) from None
    except BaseException:
        # Ctrl-C, SIGTERM or an error: stop the workers now.  Leaving normally would wait
        # for every running candidate (minutes), and workers left behind keep computing
        # after emcli has exited.
        if pool is not None:
            _stop_workers(pool)
        raise
    if pool is not None:
        # every candidate is back and the workers are idle: stopping them takes 0.01 s,
        # waiting for them to exit on their own 0.12 s (their interpreters' teardown)
        _stop_workers(pool)
    candidates = list(done)
    for kind in skipped:
        for k in components:
            reason = SKIP_REASON.format(d=width, n=n_rows)
            candidates.append(Candidate(k, kind, reason=reason, skipped=True))
    scored = [
        (value, c)
        for c in candidates
        if (value := c.criterion(criterion)) is not None and math.isfinite(value)
    ]
    winner = min(scored, key=lambda vc: vc[0])[1] if scored else None
    return winner, candidates


class _Progress:
    """``on_candidate`` for the fits after the grid's (repairs, refits): they count on
    from the grid's candidates, each phase adding its fits to the total as it begins."""

    def __init__(self, n_grid: int, report: Callable[[int, int, Candidate], None] | None):
        self.done = self.total = n_grid
        self.report = report

    def begin(self, n: int) -> None:
        self.total += n

    def __call__(self, i: int, total: int, cand: Candidate) -> None:
        self.done += 1
        if self.report:
            self.report(self.done - 1, self.total, cand)


class _FromFit:
    """A start function (``emcli.fit``'s ``init``) that starts from given parameters: a
    candidate's start from another candidate's fit (``_repair``); picklable, for workers."""

    recorded_init = "nested"

    def __init__(self, params: Any) -> None:
        self.params = params

    def __call__(self, sample: Any, k: int, rng: Any, weights: Any = None) -> Any:
        return self.params


def _log_likelihood(cand: Candidate) -> float | None:
    m = cand.model
    return None if m is None or cand.degenerate else float(m.log_likelihood)


def _repair(
    x: Array,
    columns: Sequence[str],
    grid: Sequence[tuple[int, str]],
    done: list[Candidate],
    options: dict[str, Any],
    pool: Any,
    on_candidate: Callable[[int, int, Candidate], None] | None,
    idle: Callable[[], bool] | None = None,
) -> None:
    """Start again, in place in ``done``, every candidate whose fit ends below that of a
    candidate it contains, from that fit: a model nested in it at the same k
    (``models.nested_in``; its parameters are a point of this model, so EM from there ends
    at least as high), or its own model with one component fewer, the heaviest component
    split in two (``GaussianParams.split``).  The new fit replaces the old one when its
    log-likelihood is higher.  A candidate is started again once, and only when none of
    the candidates it contains (at its k or fewer) waits for its own: those that are ready
    go together, shared between the processes as the grid's are (but only this process's
    while ``idle`` says the workers are busy).  Each uses ``options`` with one start and
    SQUAREM."""
    # the covariance models, from the fits (this module imports no family); a kind none of
    # whose candidates was fitted is not repaired
    fitted = {c.covariance_type: c.model.params.model for c in done if c.model is not None}
    names = [fitted.get(kind) for _, kind in grid]
    ks = [k for k, _ in grid]

    def within(j: int, i: int) -> bool:  # candidate j is contained in candidate i
        # (two spellings of one model, ``full`` and ``VVV``, at the same k: neither)
        a, b = names[j], names[i]
        return (
            j != i and ks[j] <= ks[i] and a is not None and b is not None
            and ((a.same(b) and ks[j] < ks[i]) or a.nested_in(b))
        )  # fmt: skip

    below = [[j for j in range(len(grid)) if within(j, i)] for i in range(len(grid))]

    def source(i: int) -> tuple[int, bool] | None:
        """(the candidate to start i from, whether by a split), or None."""
        own = _log_likelihood(done[i])
        best, found = -math.inf if own is None else own + REPAIR_TOL * max(1.0, abs(own)), None
        for j in below[i]:
            ll = _log_likelihood(done[j])
            split = ks[j] == ks[i] - 1 and names[j] == names[i]
            if ll is not None and ll > best and (split or ks[j] == ks[i]):
                best, found = ll, (j, split)
        return found

    start = {**options, "n_restarts": 1, "accelerate": True}
    tried: set[int] = set()
    while True:
        waiting = {i: src for i in range(len(grid)) if i not in tried and (src := source(i))}
        ready = [i for i in waiting if not any(j in waiting for j in below[i])]
        if not ready:
            return
        todo: list[tuple[int, Any]] = []
        for i in ready:
            tried.add(i)
            j, split = waiting[i]
            params = done[j].model.params  # type: ignore[union-attr]
            try:
                todo.append((i, params.split() if split else params.as_model(names[i])))
            except EmcliError:  # the split's covariance is singular: no start
                continue
        fits = _fit_grid(
            x,
            columns,
            [grid[i] for i, _ in todo],
            [{**start, "init": _FromFit(p)} for _, p in todo],
            pool if idle is None or idle() else None,
            on_candidate,
        )
        for (i, _), cand in zip(todo, fits, strict=True):
            new, old = _log_likelihood(cand), _log_likelihood(done[i])
            if new is not None and (old is None or new > old):
                done[i] = cand


def _contenders(done: Sequence[Candidate], criterion: str) -> list[int]:
    """Indices of the candidates screening puts forward for every restart (``select``)."""
    values = [(v, i) for i, c in enumerate(done) if (v := c.criterion(criterion)) is not None]
    values = [(v, i) for v, i in values if math.isfinite(v)]
    if not values:
        return []
    values.sort()
    best = values[0][0]
    chosen = {i for _, i in values[:CONTENDERS]}
    chosen |= {i for v, i in values if v <= best + CONTENDER_MARGIN}
    return sorted(chosen)


def _better(screened: Candidate, full: Candidate, criterion: str) -> Candidate:
    """The fit with all restarts, unless the screening fit (or its repair) is better by
    the criterion beyond rounding (a two-phase run polishes other starts, so it can end
    lower; a screening fit at the same optimum can end a rounding above it)."""
    a, b = screened.criterion(criterion), full.criterion(criterion)
    if b is None or (a is not None and a < b - TIE_TOL * max(1.0, abs(b))):
        return screened
    return full


def _fit_grid(
    x: Array,
    columns: Sequence[str],
    grid: Sequence[tuple[int, str]],
    options: dict[str, Any] | Sequence[dict[str, Any]],
    pool: Any,
    on_candidate: Callable[[int, int, Candidate], None] | None,
    meanwhile: Callable[[Callable[[], bool]], None] | None = None,
) -> list[Candidate]:
    """Every (k, kind) of ``grid`` fitted with ``options`` (one dict for all, or one per
    candidate), in grid order: here, or shared between this process and the worker
    processes of ``pool`` (``_share``).  ``meanwhile(idle)`` runs in this process first,
    while the workers begin on the grid; ``idle()`` says whether they are done with it."""
    each = [options] * len(grid) if isinstance(options, dict) else list(options)
    done: list[Candidate | None] = [None] * len(grid)
    if isinstance(on_candidate, _Progress):
        on_candidate.begin(len(grid))
    if pool is None or len(grid) <= 1:
        if meanwhile is not None:
            meanwhile(lambda: True)
        for i, (k, kind) in enumerate(grid):
            cand = done[i] = _fit_candidate(x, columns, k, kind, each[i])
            if on_candidate:
                on_candidate(i, len(grid), cand)
        return [c for c in done if c is not None]
    each = [{k: v for k, v in o.items() if k != "monitor"} for o in each]  # not picklable
    for n_done, (i, cand) in enumerate(_share(x, list(columns), grid, each, pool, meanwhile)):
        done[i] = cand
        if on_candidate:
            on_candidate(n_done, len(grid), cand)
    return [c for c in done if c is not None]


# Each worker process has this many candidates sent ahead of the one it is fitting, so that
# it never waits for this process (busy with its own candidate) to send the next.
QUEUED_PER_WORKER = 2


def _share(
    x: Array,
    columns: list[str],
    grid: Sequence[tuple[int, str]],
    options: Sequence[dict[str, Any]],
    pool: Any,
    meanwhile: Callable[[Callable[[], bool]], None] | None = None,
) -> Iterator[tuple[int, Candidate]]:
    """Fit the candidates of ``grid`` (candidate i with ``options[i]``) on the workers of
    ``pool`` and in this process, and yield (grid index, candidate) as each is done.  The
    candidates go out with the most components first (the longest fits start early, and the
    last ones to finish are short, so nobody waits long at the end); a worker is sent the
    next as each of its candidates comes back.  This process takes the next one itself
    whenever it is free, with one thread and BLAS on one thread as in a worker, so a
    candidate is fitted the same wherever it runs: the table does not depend on ``--jobs``,
    and a command line starts one interpreter fewer than it has jobs."""
    import queue
    import threading

    from .. import parallel

    pending = deque(sorted(range(len(grid)), key=lambda i: -grid[i][0]))
    lock = threading.Lock()
    back: queue.SimpleQueue[tuple[int, Any]] = queue.SimpleQueue()
    state = {"open": True, "out": 0}

    def send() -> None:
        # from this thread, and from the pool's thread as a candidate comes back
        with lock:
            if not (state["open"] and pending):
                return
            i = pending.popleft()
            try:
                future = pool.submit(_fit_candidate, x, columns, *grid[i], options[i])
            except RuntimeError:  # the pool is stopping or broken: this process takes the rest
                pending.appendleft(i)
                state["open"] = False
                return
            state["out"] += 1
        future.add_done_callback(lambda f, i=i: _returned(f, i))

    def _returned(future: Any, i: int) -> None:
        with lock:
            state["out"] -= 1
        back.put((i, future))
        if not future.cancelled():
            send()

    def idle() -> bool:  # the workers have nothing of this grid left
        with lock:
            return not pending and not state["out"]

    def take() -> int | None:
        with lock:
            return pending.popleft() if pending else None

    try:
        workers = int(getattr(pool, "_max_workers", 1))
        for _ in range(min(QUEUED_PER_WORKER * workers, len(grid) - 1)):  # one left here
            send()
        if meanwhile is not None:
            with parallel.as_worker(), parallel.single_blas():
                meanwhile(idle)
        n_done = 0
        while True:
            i = take()
            if i is None:
                break
            with parallel.as_worker(), parallel.single_blas():
                cand = _fit_candidate(x, columns, *grid[i], options[i])
            n_done += 1
            yield i, cand
            while True:  # what the workers finished meanwhile
                try:
                    j, future = back.get_nowait()
                except queue.Empty:
                    break
                n_done += 1
                yield j, future.result()
        while n_done < len(grid):
            j, future = back.get()
            n_done += 1
            yield j, future.result()
    finally:
        with lock:
            state["open"] = False


def selection_record(winner: Candidate, candidates: Sequence[Candidate], criterion: str) -> dict:
    """What the winner's model file records of the selection."""
    values = sorted(v for c in candidates if (v := c.criterion(criterion)) is not None)
    margin = values[1] - values[0] if len(values) > 1 else None
    return {
        "criterion": criterion,
        "winner": {"components": winner.n_components, "covariance": winner.covariance_type},
        "runner_up_margin": margin,
        "table": [c.row() for c in candidates],
    }

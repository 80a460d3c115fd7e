"""The worker processes of a model selection: started early, one BLAS thread each, stopped
at once.

This module imports nothing but the standard library, so the command line can start the
workers before it imports numpy and reads its data (``prestart``; a worker takes about
0.15 s to start Python and import emcli, the time the command line spends on its own
imports), and a worker unpickles its initializer without importing numpy first.
``emcli.em.selection`` shares the candidates between this process and the workers.
"""

from __future__ import annotations

import os
from typing import Any

_READY: dict[int, Any] = {}


def pool_jobs(jobs: int | None, n_candidates: int) -> int:
    """How many processes a selection of ``n_candidates`` runs on, this one included (1:
    this one alone)."""
    return max(1, min(jobs or os.cpu_count() or 1, max(1, n_candidates)))


def worker_init() -> None:
    """Each worker process does its BLAS work on one thread (no oversubscription), and
    EMCLI_THREADS=1 keeps its E-step on one thread; set before the worker imports numpy,
    and BLAS limited at run time as well in case something imported it already."""
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "EMCLI_THREADS"):
        os.environ[var] = "1"
    # Ctrl-C at a terminal reaches the whole process group: the parent alone reacts (and
    # stops the workers), so no worker prints a KeyboardInterrupt traceback.
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)


def warm_up() -> None:
    """Import what a candidate's fit imports (numpy.random, the hc tree and the small-data
    loop only when a fit first needs them: 10 ms more of the first candidate otherwise)."""
    import numpy.random  # noqa: F401

    from . import api  # noqa: F401
    from .em import hc  # noqa: F401
    from .families.gaussian import small  # noqa: F401


def pool(jobs: int) -> Any:
    """The ``jobs - 1`` worker processes that fit candidates beside this one (spawned, one
    BLAS thread each): the ones ``prestart`` started for this many jobs, else new ones."""
    from concurrent.futures import ProcessPoolExecutor

    ready = _READY.pop(jobs, None)
    discard_prestarted()  # any started for another number of jobs: not needed
    if ready is not None and not getattr(ready, "_broken", False):
        return ready
    if ready is not None:
        stop_workers(ready)
    from .spawn import Spawn

    return ProcessPoolExecutor(jobs - 1, mp_context=Spawn(), initializer=worker_init)


def prestart(jobs: int | None, n_candidates: int) -> None:
    """Start a selection's worker processes now, so that they start Python and import emcli
    while the caller imports and reads its data; ``pool`` (a selection) with the same
    number of jobs takes them."""
    n = pool_jobs(jobs, n_candidates)
    if n > 1 and n not in _READY:
        _READY[n] = pool(n)
        for _ in range(n - 1):
            _READY[n].submit(warm_up)


def discard_prestarted() -> None:
    """Stop the worker processes ``prestart`` started that no selection took (the run
    ended before its selection, or made none): at once, so that a run that stops on an
    error does not wait for them to finish starting before it exits."""
    for ready in list(_READY.values()):
        stop_workers(ready)
    _READY.clear()


def stop_workers(workers: Any) -> None:
    """Terminate a ProcessPoolExecutor's workers at once and reap them."""
    processes = list(getattr(workers, "_processes", {}).values())
    workers.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        process.join(timeout=5)

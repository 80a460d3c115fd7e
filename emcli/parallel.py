"""Threads for the E-step and for restarts, without oversubscribing BLAS.

Measured on the 2-core machines here: OpenBLAS on two threads is erratic for the tall, thin
products of an E-step, while two Python threads over row blocks, each calling BLAS on one
thread, are steady (numpy releases the GIL inside BLAS and large ufunc loops).  So:

* ``threads()`` is how many threads may work on one task: ``EMCLI_THREADS`` if set, else the
  number of cores (at most ``MAX_THREADS``), and 1 inside a worker that is already one of
  several parallel tasks (``as_worker``), so restarts in parallel do not nest block threads.
* ``single_blas()`` pins BLAS to one thread while parallel Python threads run (threadpoolctl),
  and restores it afterwards.
* ``ordered_map`` runs a function over items on a thread pool and yields results in item
  order, so every sum is taken in the same order whatever the number of threads: results do
  not depend on the parallelism.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")
MAX_THREADS = 8
_LOCAL = threading.local()
_POOL_LOCK = threading.Lock()
_POOLS: dict[int, Any] = {}
_CONTROLLER: Any = None


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def threads() -> int:
    """Threads one task may use (module docstring)."""
    if getattr(_LOCAL, "worker", False):
        return 1
    env = os.environ.get("EMCLI_THREADS", "").strip()
    if env.isdigit() and int(env) >= 1:
        return int(env)
    return max(1, min(MAX_THREADS, cpu_count()))


@contextlib.contextmanager
def as_worker() -> Iterator[None]:
    """Mark the current thread as one of several parallel tasks (no nested threads)."""
    before = getattr(_LOCAL, "worker", False)
    _LOCAL.worker = True
    try:
        yield
    finally:
        _LOCAL.worker = before


def _controller() -> Any:
    global _CONTROLLER
    if _CONTROLLER is None:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:  # without it, BLAS keeps its own thread count
            _CONTROLLER = False
        else:
            _CONTROLLER = ThreadpoolController()
    return _CONTROLLER


@contextlib.contextmanager
def single_blas(active: bool = True) -> Iterator[None]:
    """BLAS on one thread inside the block (when ``active``), restored afterwards."""
    ctl = _controller() if active else None
    if not ctl:
        yield
        return
    with ctl.limit(limits=1, user_api="blas"):
        yield


def _pool(n: int):
    from concurrent.futures import ThreadPoolExecutor

    with _POOL_LOCK:
        pool = _POOLS.get(n)
        if pool is None:
            pool = _POOLS[n] = ThreadPoolExecutor(n, thread_name_prefix="emcli")
        return pool


def ordered_map(fn: Callable[[T], R], items: Iterable[T], n_threads: int) -> Iterator[R]:
    """``map(fn, items)`` on ``n_threads`` threads; results in item order."""
    if n_threads <= 1:
        yield from map(fn, items)
        return
    pool = _pool(n_threads)
    items = list(items)
    # At most 2 * n_threads tasks in flight, so finished results do not pile up.
    window = 2 * n_threads
    futures = [pool.submit(fn, item) for item in items[:window]]
    for i in range(len(items)):
        result = futures[i].result()
        futures[i] = None  # type: ignore[call-overload]
        if i + window < len(items):
            futures.append(pool.submit(fn, items[i + window]))
        yield result


class Cancelled(BaseException):
    """Raised inside workers when the main thread stopped (Ctrl-C, SIGTERM, an error)."""


_CANCEL = threading.Event()


def check_cancelled() -> None:
    """Called between row blocks: lets parallel starts stop within a block."""
    if _CANCEL.is_set():
        raise Cancelled()


def worker_map(fn: Callable[[T], R], items: Iterable[T], n_threads: int) -> list[R]:
    """``[fn(item) for item in items]`` on ``n_threads`` threads, each task a worker (one
    thread inside, BLAS on one thread); results in item order.  If waiting is interrupted,
    the running tasks are stopped at their next row block before the exception goes on."""
    from concurrent.futures import FIRST_EXCEPTION, wait

    def run(item: T) -> R:
        with as_worker():
            return fn(item)

    items = list(items)
    if n_threads <= 1:
        return [fn(item) for item in items]
    pool = _pool(n_threads)
    with single_blas():
        futures = [pool.submit(run, item) for item in items]
        try:
            # Wake up at the first failure, not only when its turn in the order comes.
            wait(futures, return_when=FIRST_EXCEPTION)
            for f in futures:
                if f.done() and f.exception() is not None:
                    f.result()  # raises the first failure now
            return [f.result() for f in futures]
        except BaseException:
            _CANCEL.set()
            for f in futures:
                f.cancel()
            wait(futures)
            _CANCEL.clear()
            raise

"""Progress of a fit: the monitor protocol the driver reports to, and a silent one.

``emcli.cli.display`` has the terminal versions; the driver only calls these methods.
"""

from __future__ import annotations

import threading
from typing import Any, Protocol


class Monitor(Protocol):
    """Receives progress (hmmlearn's ``ConvergenceMonitor`` in spirit)."""

    def start(self, start: int, n_starts: int) -> None: ...

    def iteration(self, start: int, n_iter: int, log_likelihood: float, delta: float) -> None: ...

    def end(self, result: Any) -> None: ...


class SilentMonitor:
    def start(self, start: int, n_starts: int) -> None:
        pass

    def iteration(self, start: int, n_iter: int, log_likelihood: float, delta: float) -> None:
        pass

    def end(self, result: Any) -> None:
        pass


class _LockedMonitor:
    """Serialises progress calls coming from parallel starts."""

    def __init__(self, inner: Monitor) -> None:
        self._inner, self._lock = inner, threading.Lock()

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return attr(*args, **kwargs)

        return call


def locked(monitor: Monitor) -> Monitor:
    """``monitor`` made safe to call from several threads."""
    return _LockedMonitor(monitor)  # type: ignore[return-value]

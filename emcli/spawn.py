"""The spawn context of a selection's worker processes (``emcli.workers``), in a module of
its own: multiprocessing is 6 ms of import that a run without a selection does without.

A spawned process runs the parent's main script again, from its path.  A script read from
standard input (``python - < script``) has the path ``<stdin>``, which is no file, and the
worker would fail to start: such a script is not run again, as for ``python -c``.
"""

from __future__ import annotations

import multiprocessing.context
import os
import sys


class Process(multiprocessing.context.SpawnProcess):
    """A spawned worker process that does not run a main "script" that is no file."""

    def start(self) -> None:
        main = sys.modules.get("__main__")
        path = getattr(main, "__file__", None)
        if main is None or path is None or os.path.isfile(path):
            super().start()
            return
        del main.__file__
        try:
            super().start()
        finally:
            main.__file__ = path


class Spawn(multiprocessing.context.SpawnContext):
    """multiprocessing's spawn context, with ``Process``."""

    Process = Process

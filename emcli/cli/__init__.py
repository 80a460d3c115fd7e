"""The command layer: click commands, their options, the display; the only place click and
rich are imported.

``cli`` is the click group and ``main`` the entry point (the ``emcli`` console script and
``python -m emcli``).  One module per command group registers its commands on ``cli``:

    app.py      the group, signals, error translation (``click_error``), exit statuses
    options.py  shared option groups, the EMCLI_ environment names, the FLAGS table
    fit.py      emcli fit: one pipeline for every engine
    apply.py    emcli predict, score, sample, describe
    plot.py     emcli plot
    segment.py  emcli segment (images)
    outputs.py  destinations, row outputs by blocks, Parquet parts, the selection table
    display.py  progress, notes and summaries (rich)

Only click is imported at start-up (``emcli --help`` stays fast); numpy, pyarrow and rich load
inside the commands.
"""

from . import apply, fit, plot, segment  # noqa: F401  (each registers its commands on ``cli``)
from .app import cli, main

__all__ = ["cli", "main"]

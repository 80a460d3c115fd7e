"""What the row outputs carry of the input (``--with-input``, ``--id-column``), and the
notes on the columns a fit uses (printed at a terminal and in ``-v`` logs)."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import Any

import click

from ..errors import UsageError
from .options import in_flags

ROW_OUTPUT_NAMES = ("labels", "responsibilities", "output")


def carrier_for(source: Any, carry: Mapping[str, Any], paths: Mapping[str, str]) -> Any:
    """The ``RowCarrier`` for ``--with-input`` / ``--id-column`` (None without them);
    opened now, so a missing column or standard input fails before any work."""
    with_input, id_column = carry.get("with_input"), carry.get("id_column")
    if not with_input and not id_column:
        return None
    if not any(name in paths for name in ROW_OUTPUT_NAMES):
        flag = "--with-input" if with_input else "--id-column"
        raise UsageError(
            f"{flag} adds columns to the row outputs; give --labels, "
            "--responsibilities or -o DIR (predict: or nothing, for stdout)"
        )
    from ..data.passthrough import RowCarrier

    columns = None if with_input else [str(id_column)]
    return RowCarrier(source.path, source.fmt, source.delimiter, columns)


def column_notes(engine: Any, columns: Sequence[str] | None, quiet: bool, verbose: bool) -> None:
    """Say which columns are fitted (at a terminal, or with -v) when -c/--columns is absent,
    and flag those that look like a row index or an identifier (unless -q)."""
    if quiet or columns:
        return
    import numpy as np

    from ..data.checks import index_like_columns

    names = list(engine.columns)
    if sys.stderr.isatty() or verbose:
        click.echo(f"Note: fitting {len(names)} column(s): {', '.join(names)}", err=True)
    n = min(int(engine.n_samples), 10_000)
    if n:
        head = engine.take(np.arange(n))[0]
        for note in index_like_columns(np.asarray(head, dtype=np.float64), names):
            click.echo(f"Note: {in_flags(note)}", err=True)

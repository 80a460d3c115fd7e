"""Which engine runs a fit, and opening it: memory sizes, the automatic choice.

Default: the memory engine, or the stream engine when the input's estimated size in memory
(rows x chosen numeric columns x 8 bytes; rows from the Parquet metadata, or estimated from
the file size and the width of the first rows for CSV/TSV) exceeds the memory limit.  The
limit is ``memory_limit`` (``--memory-limit``) if given, else half the physical memory.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import UsageError

ENGINES = ("memory", "stream", "dask")
_UNITS = {
    "": 1,
    "B": 1,
    "K": 1e3,
    "KB": 1e3,
    "M": 1e6,
    "MB": 1e6,
    "G": 1e9,
    "GB": 1e9,
    "T": 1e12,
    "TB": 1e12,
    "KIB": 1024,
    "MIB": 1024**2,
    "GIB": 1024**3,
    "TIB": 1024**4,
}


def parse_size(text: str) -> int:
    """'512MB' -> 512_000_000; '2GB', '1.5G', '800MiB', '1000000' (bytes) also work.

    Raises:
        UsageError: not a positive size.
    """
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([A-Za-z]*)\s*", str(text))
    unit = match.group(2).upper() if match else ""
    if not match or unit not in _UNITS:
        raise UsageError(
            f"invalid size {text!r}; write a number with a unit, e.g. 512MB, 2GB or 800MiB"
        )
    size = int(float(match.group(1)) * _UNITS[unit])
    if size < 1:
        raise UsageError(f"invalid size {text!r}; the memory limit must be positive")
    return size


def format_size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def default_memory_limit() -> int:
    """Half the physical memory (or 2 GB where the platform does not tell)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2)
    except (ValueError, OSError, AttributeError):
        return 2_000_000_000


@dataclass
class Choice:
    engine: str
    note: str | None = None


def choose_engine(
    source: str,
    engine: str | None,
    memory_limit: int | None,
    fmt: str | None = None,
    columns: Sequence[str] | None = None,
    delimiter: str | None = None,
    weights: str | None = None,
) -> Choice:
    """The engine to run: ``engine`` when given, else by the estimated size (module doc)."""
    if engine is not None:
        if engine not in ENGINES:
            raise UsageError(f"engine must be one of {', '.join(ENGINES)}")
        return Choice(engine)
    if source == "-" or not os.path.isfile(source):
        return Choice("memory")  # stdin's size is unknown; errors come from the reader
    limit = memory_limit if memory_limit is not None else default_memory_limit()
    if _text_table(source, fmt) and 4 * (os.path.getsize(source) + 1) <= limit:
        # a CSV cell takes at least two bytes (a digit and a separator): at most 8 bytes
        # of float64 for every 2 bytes of the file, whatever the columns
        return Choice("memory")
    size = estimated_bytes(source, fmt, columns, delimiter, weights)
    if size is None or size <= limit:
        return Choice("memory")
    origin = "{memory_limit}" if memory_limit is not None else "half the physical memory"
    return Choice(
        "stream",
        f"the input needs about {format_size(size)} in memory, more than "
        f"the limit of {format_size(limit)} ({origin}): using {{engine}} stream",
    )


def _text_table(source: str, fmt: str | None) -> bool:
    """Whether ``source`` is a CSV or TSV file by its extension (not Parquet; not a
    compressed file read with ``--format``, which pyarrow would decompress)."""
    from ..data.formats import EXTENSIONS

    return fmt is None and EXTENSIONS.get(os.path.splitext(source)[1].lower()) in ("csv", "tsv")


def estimated_bytes(
    source: str,
    fmt: str | None,
    columns: Sequence[str] | None,
    delimiter: str | None,
    weights: str | None = None,
) -> int | None:
    """rows x (numeric columns + weights) x 8, or None when the file cannot be read (the
    reader says why)."""
    from ..data.formats import detect_format, guarded, select_columns
    from ..data.reader import estimated_rows, read_head
    from ..errors import DataError

    try:
        kind = detect_format(source, fmt)
        head = guarded(source, kind, lambda: read_head(source, kind, delimiter))
        names, _ = select_columns(head, columns, check_values=False, weights=weights)
        return estimated_rows(source, kind) * (len(names) + (weights is not None)) * 8
    except (DataError, OSError):
        return None


@contextlib.contextmanager
def open_engine(
    engine: str,
    source: str,
    fmt: str | None = None,
    columns: Sequence[str] | None = None,
    delimiter: str | None = None,
    block_rows: int | None = None,
    scheduler: str | None = None,
    weights: str | None = None,
    encode: dict[str, Any] | None = None,
) -> Iterator[Any]:
    """An engine over ``source`` with ``.columns``, ``.notes`` and ``.weights_column`` (the
    column of frequency weights, ``weights``); closed on exit.

    ``encode`` (memory and stream engines): {"family", "types", "like"} of
    ``emcli.data.encode``: text, boolean and count columns encoded as floats; the engine's
    ``.schema`` then lists each column's kind and levels."""
    if engine == "memory" and encode is not None:
        from ..data.encode import read_encoded
        from .memory import MemoryEngine

        table, schema = read_encoded(
            source, fmt=fmt, columns=columns, delimiter=delimiter, weights=weights, **encode
        )
        mem = MemoryEngine(table.x, weights=table.weights)
        mem.columns, mem.notes = table.columns, table.notes  # type: ignore[attr-defined]
        mem.weights_column = table.weights_column  # type: ignore[attr-defined]
        mem.schema = schema  # type: ignore[attr-defined]
        yield mem
    elif engine == "memory":
        from ..data.reader import read_table
        from .memory import MemoryEngine

        table = read_table(source, fmt=fmt, columns=columns, delimiter=delimiter, weights=weights)
        mem = MemoryEngine(table.x, weights=table.weights)
        mem.columns, mem.notes = table.columns, table.notes  # type: ignore[attr-defined]
        mem.weights_column = table.weights_column  # type: ignore[attr-defined]
        yield mem
    elif engine == "stream":
        from .stream import DEFAULT_BLOCK_ROWS, StreamEngine

        with StreamEngine(
            source,
            fmt,
            columns,
            delimiter,
            block_rows or DEFAULT_BLOCK_ROWS,
            weights=weights,
            encode=encode,
        ) as stream:
            yield stream
    elif engine == "dask":
        from .dask import DaskEngine

        if encode is not None and encode.get("family") in ("categorical", "mixed"):
            raise UsageError(
                f"the dask engine reads numbers only; --family {encode['family']} runs on "
                "--engine memory or stream"
            )

        with DaskEngine(
            source,
            fmt,
            columns,
            delimiter,
            scheduler=scheduler,
            block_rows=block_rows,
            weights=weights,
        ) as dask_engine:
            yield dask_engine
    else:
        raise UsageError(f"engine must be one of {', '.join(ENGINES)}")

"""The stream engine: one pass over the file per EM iteration, memory bounded by the block.

The rows come from ``emcli.data.reader.open_blocks`` (Parquet by record batches, CSV/TSV in
pieces cut at record ends, only the chosen columns, as float64), cut into blocks of
``block_rows`` rows.  At most one piece (plus, for Parquet, the row group being decoded) is
in memory at a time, whatever the file size.

Passes over the file: one *scan* when the engine opens (row count, column checks, variances
for the notes: the same checks and messages as the memory path), one to collect the
initialisation sample, one per EM iteration (E-step), and one to write labels and
responsibilities (both in the same pass).

Standard input is first copied to a temporary file (in ``$TMPDIR``), in bounded memory,
because the engine reads its input many times; the copy is removed by ``close()``.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..data.checks import ColumnSummary
from ..data.formats import check_input_path, detect_format, field_delimiter, guarded, select_columns
from ..data.reader import Block, open_blocks, read_head
from .memory import reduce_rows
from .scanned import ScannedEngine, complete_rows

Array = NDArray[np.float64]
DEFAULT_BLOCK_ROWS = 65_536


class StreamEngine(ScannedEngine):
    """EM over a CSV/TSV/Parquet file read block by block (see module docstring).

    Args:
        source: a file path, or ``-`` for standard input (copied to a temporary file).
        fmt: ``csv``, ``tsv`` or ``parquet``; by default from the extension.
        columns: the columns to use (default: every numeric column but ``weights``).
        delimiter: CSV field separator.
        block_rows: rows per block read from the file (bounds the memory).
        weights: the column of frequency weights (``weights_column``), or None.

    Raises:
        DataError: unreadable input, unknown or non-numeric columns, no rows, infinite or
            missing values, bad weights (the memory path's checks and messages).
    """

    def __init__(
        self,
        source: str,
        fmt: str | None = None,
        columns: Sequence[str] | None = None,
        delimiter: str | None = None,
        block_rows: int = DEFAULT_BLOCK_ROWS,
        weights: str | None = None,
        encode: dict[str, Any] | None = None,
    ) -> None:
        if block_rows < 1:
            raise ValueError("block_rows must be at least 1")
        self.source = source
        self.kind = detect_format(source, fmt)
        self.block_rows = int(block_rows)
        self.delimiter = field_delimiter(self.kind, delimiter)
        self.weights_column = weights
        self._temp: str | None = None
        check_input_path(source)
        self.path = self._spool_stdin() if source == "-" else source
        # encode ({"family", "types", "like"}: emcli.data.encode): text, boolean and count
        # columns as floats, the levels of categorical columns found in a first pass.
        self.schema: Any = None
        if encode is not None:
            from ..data.encode import scan_specs

            self.schema = scan_specs(
                self.path, fmt=self.kind, columns=columns, delimiter=delimiter,
                weights=weights, block_rows=self.block_rows, **encode,
            )  # fmt: skip
            self.columns, self.notes = [s.name for s in self.schema], list[str]()
        else:
            head = guarded(
                source, self.kind, lambda: read_head(self.path, self.kind, self.delimiter)
            )
            self.columns, self.notes = select_columns(
                head, columns, check_values=False, weights=weights
            )
        # complete_only (--missing drop): EM sees the rows without a missing cell only;
        # blocks() still gives every row, for the outputs.
        self.complete_only = False
        self.summary, self.complete = self._scan()

    # ------------------------------------------------------------------ protocol
    @property
    def n_samples(self) -> int:
        return self.fitted_summary.n_rows

    @property
    def dtype(self) -> Any:
        return np.float64

    def take(self, indices: NDArray[np.intp]) -> tuple[Array, Array | None]:
        """Rows ``indices`` (sorted) and their weights, collected in one pass."""
        indices = np.asarray(indices)
        out = np.empty((len(indices), self.n_features))
        w_out = None if self.weights_column is None else np.empty(len(indices))
        offset = 0
        for xb, wb in self._fit_blocks():
            lo, hi = np.searchsorted(indices, [offset, offset + len(xb)])
            out[lo:hi] = xb[indices[lo:hi] - offset]
            if w_out is not None and wb is not None:
                w_out[lo:hi] = wb[indices[lo:hi] - offset]
            offset += len(xb)
        return out, w_out

    def e_step(self, family: Any, plan: Any) -> Any:
        """The family's statistics summed over the file, block by block (one pass)."""
        total = None
        for xb, wb in self._fit_blocks():
            total = reduce_rows(family, plan, xb, wb, total=total)
        return family.e_step(np.empty((0, self.n_features)), plan) if total is None else total

    def blocks(self, n_components: int) -> Iterator[tuple[Array, Array | None]]:
        """Every row, in input order: ``(x, w)`` blocks of at most ``block_rows`` rows,
        ``w`` the weights of shape (rows,) or None without a weights column."""
        for block in self._blocks():
            yield block.x, block.w

    def close(self) -> None:
        if self._temp is not None:
            try:
                os.unlink(self._temp)
            except OSError:
                pass
            self._temp = None

    def __enter__(self) -> StreamEngine:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ------------------------------------------------------------------ reading
    def _scan(self) -> tuple[ColumnSummary, ColumnSummary]:
        """Summaries of all rows and of the complete rows (no missing cell)."""
        empty = ColumnSummary.of_block(
            np.empty((0, self.n_features)),
            0,
            None if self.weights_column is None else np.empty(0),
            moments=True,
        )
        total, complete = empty, empty
        for block in self._blocks():
            total = total + ColumnSummary.of_block(block.x, block.first, block.w, moments=True)
            complete = complete + ColumnSummary.of_block(*_complete(block), moments=True)
        return total, complete

    def _fit_blocks(self) -> Iterator[tuple[Array, Array | None]]:
        """The ``(x, w)`` blocks EM sees: every row, or the complete rows only
        (``complete_only``)."""
        for block in self._blocks():
            yield complete_rows(block.x, block.w) if self.complete_only else (block.x, block.w)

    def _fit_arrays(self) -> Iterator[Array]:
        """The rows of ``_fit_blocks`` without their weights."""
        for xb, _ in self._fit_blocks():
            yield xb

    def _blocks(self) -> Iterator[Block]:
        """The chosen columns (and weights), block by block, in input order."""
        if self.schema is not None:
            from ..data.encode import encoded_blocks
            from ..data.reader import rebatch

            pieces = encoded_blocks(
                self.path, self.schema, self.columns, self.kind, self.delimiter,
                self.block_rows, weights=self.weights_column,
            )  # fmt: skip
            return rebatch((Block(*piece) for piece in pieces), self.block_rows)
        # One parsing thread: pyarrow's thread arenas raised the peak memory (measured by
        # tests/test_engines.py::test_stream_peak_memory_bounded).
        reader = open_blocks(
            self.path,
            self.columns,
            self.kind,
            self.delimiter,
            weights=self.weights_column,
            block_rows=self.block_rows,
            name=self.source,
            threads=False,
        )
        return reader.blocks(self.block_rows)

    def _spool_stdin(self) -> str:
        fd, temp = tempfile.mkstemp(prefix="emcli-stdin-", suffix=f".{self.kind}")
        self._temp = temp
        with os.fdopen(fd, "wb") as handle:
            shutil.copyfileobj(sys.stdin.buffer, handle, 1 << 20)
        return temp


def _complete(block: Block) -> tuple[Array, int, Array | None]:
    """The complete rows of ``block`` as ``ColumnSummary.of_block`` arguments (offset 0:
    their row numbers are not those of the input)."""
    x, w = complete_rows(block.x, block.w)
    return x, 0, w


def _complete_rows(xb: Array) -> Array:
    """The rows of ``xb`` without a missing (NaN) cell."""
    return complete_rows(xb)[0]

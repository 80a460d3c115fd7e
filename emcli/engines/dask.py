"""The dask engine: the rows live on a Dask cluster; only statistics come back.

The workers read the input (a path, a directory of Parquet files or a glob such as
``data/part-*.parquet``) by the parts of ``emcli.data.parts``: Parquet by row group (cut into
pieces of ``block_rows`` rows when given), CSV by byte ranges cut at line ends, each parsed
exactly as the stream engine parses it (same types, nulls and errors).  Each partition
becomes ``(x, w)``, a float64 array of the chosen columns and the weights (None without a
weights column), kept in the workers' memory (read once, not per iteration).  Each EM iteration maps
the E-step (``memory.reduce_rows``: the family's E-step, one thread per task) over
the partitions and adds the statistics up a tree of fixed shape on the workers; the M-step
runs on the client.  Rows are numbered across partitions in input order (files in sorted
name order, then file order), so the initialisation sample picks the same rows as the memory
engine for the same input and seed, and the log-likelihood agrees to rounding.

Install with ``pip install "emcli-mixture[dask]"``.  Without a scheduler address a ``LocalCluster``
with one single-threaded worker process per core is started and stopped with the engine.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..data.checks import ColumnSummary, total_summary
from ..data.formats import CellError, detect_format, field_delimiter, guarded, select_columns
from ..data.parts import input_files, plan_parts, read_part
from ..data.reader import read_head
from ..errors import DataError, EmcliError, UsageError
from .memory import reduce_rows
from .scanned import ScannedEngine, complete_rows

Array = NDArray[np.float64]
Partition = tuple[Array, "Array | None"]  # (x, w) on a worker
FAN_IN = 8  # statistics added per task of the reduction tree
MISSING_DASK = 'the dask engine needs dask and distributed: pip install "emcli-mixture[dask]"'


def import_dask() -> Any:
    """``distributed``, or the one-line error that names the extra to install."""
    try:
        import dask.bytes  # noqa: F401
        import distributed
    except ImportError:
        raise EmcliError(MISSING_DASK) from None
    return distributed


class DaskEngine(ScannedEngine):
    """EM over a table read and held by Dask workers (see module docstring).

    Args:
        source: a file path, a directory of Parquet files, or a glob.
        fmt: ``csv``, ``tsv`` or ``parquet``; by default from the extension.
        columns: the columns to use (default: every numeric column but ``weights``).
        delimiter: CSV field separator.
        scheduler: address of a running scheduler (``tcp://host:8786``); None starts a
            local cluster with one worker process per core.
        client: an existing ``distributed.Client`` (overrides ``scheduler``; not closed).
        block_rows: rows per partition for CSV input (default: dask's 64 MB blocks); for
            Parquet any value gives one partition per row group.
        weights: the column of frequency weights (``weights_column``), or None.
    """

    def __init__(
        self,
        source: str,
        fmt: str | None = None,
        columns: Sequence[str] | None = None,
        delimiter: str | None = None,
        scheduler: str | None = None,
        client: Any = None,
        block_rows: int | None = None,
        weights: str | None = None,
    ) -> None:
        distributed = import_dask()
        if source == "-":
            raise UsageError(
                "--engine dask reads the input on the workers, not from standard "
                "input; give a file path or a glob (or use --engine stream)"
            )
        self.source = source
        self.files = input_files(source)
        self.kind = (
            "parquet" if os.path.isdir(source) and not fmt else detect_format(self.files[0], fmt)
        )
        self.delimiter = field_delimiter(self.kind, delimiter)
        self.weights_column = weights
        head = guarded(
            source, self.kind, lambda: read_head(self.files[0], self.kind, self.delimiter)
        )
        self.columns, self.notes = select_columns(
            head, columns, check_values=False, weights=weights
        )
        self._own: list[Any] = []
        try:
            self.client = client or self._connect(distributed, scheduler)
            self.parts = self._load(block_rows)
            self.lengths = self._lengths()
            self._offsets = _offsets(self.lengths)
            self._complete_offsets = _offsets(
                self.client.gather(self.client.map(_count_complete, self.parts))
            )
            self.summary = self._reduce(
                self.client.map(_part_summary, self.parts, list(self._offsets[:-1])),
                total_summary,
            )
            self.complete = self._reduce(
                self.client.map(_part_summary, self.parts, complete_only=True), total_summary
            )
            # complete_only (--missing drop): EM sees the rows without a missing cell only.
            self.complete_only = False
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------------ protocol
    @property
    def offsets(self) -> NDArray[np.intp]:
        """Index of the first row (that EM sees) of each partition, and the total."""
        return self._complete_offsets if self.complete_only else self._offsets

    @property
    def n_samples(self) -> int:
        return int(self.offsets[-1])

    @property
    def dtype(self) -> Any:
        return np.float64

    def take(self, indices: NDArray[np.intp]) -> tuple[Array, Array | None]:
        indices = np.asarray(indices)
        futures = []
        for part, lo, hi in zip(self.parts, self.offsets[:-1], self.offsets[1:], strict=True):
            a, b = np.searchsorted(indices, [lo, hi])
            if b > a:
                futures.append(
                    self.client.submit(_take, part, indices[a:b] - lo, self.complete_only)
                )
        rows = self.client.gather(futures)
        if not rows:
            return np.empty((0, self.n_features)), None
        x = np.concatenate([r[0] for r in rows])
        w = None if rows[0][1] is None else np.concatenate([r[1] for r in rows])
        return x, w

    def e_step(self, family: Any, plan: Any) -> Any:
        """``family.e_step`` on every partition (on the workers), tree-summed."""
        return self._reduce(
            self.client.map(
                _part_e_step, self.parts, family=family, plan=plan, complete_only=self.complete_only
            ),
            _sum_stats,
        )

    def blocks(self, n_components: int) -> Iterator[Partition]:
        """The partitions in order, ``(x, w)``, fetched to the client one at a time."""
        for part in self.parts:
            yield self.client.gather(part)

    def map_parts(self, function: Callable[..., Any], *args: Sequence[Any], **kwargs: Any):
        """``function((x, w), *args_i, **kwargs)`` on each partition (futures)."""
        return self.client.map(function, self.parts, *args, **kwargs)

    def close(self) -> None:
        release(getattr(self, "parts", None) or [], self._own)
        self.parts = []

    def __enter__(self) -> DaskEngine:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ------------------------------------------------------------------ internals
    def _connect(self, distributed: Any, scheduler: str | None) -> Any:
        return connect(distributed, scheduler, self._own)

    def _load(self, block_rows: int | None) -> list[Any]:
        """Tasks that read one partition each on the workers, computed and kept there."""
        import dask

        parts = plan_parts(self.files, self.kind, block_rows)
        tasks = [
            dask.delayed(read_part)(part, self.columns, self.weights_column, self.delimiter)
            for part in parts
        ]
        return list(self.client.compute(tasks))

    def _lengths(self) -> list[int]:
        """Rows of each partition; a bad cell (CellError, row counted from its partition's
        first row) is raised with its row in the input."""
        import distributed

        futures = self.client.map(_part_rows, self.parts)
        distributed.wait(futures)
        for i, future in enumerate(futures):
            if future.status == "error":
                error = future.exception()
                if isinstance(error, CellError):
                    before = self.client.gather(futures[:i])
                    raise error.shifted(sum(before)) from None
                raise error
        return [int(n) for n in self.client.gather(futures)]

    def _reduce(self, futures: list[Any], combine: Callable[[Sequence[Any]], Any]) -> Any:
        """Add results up a tree of fixed shape (deterministic order) on the workers."""
        if not futures:
            raise DataError(f"'{self.source}' has no data rows")
        return tree_sum(self.client, futures, combine)


def connect(distributed: Any, scheduler: str | None, own: list[Any]) -> Any:
    """A client of the scheduler at ``scheduler``, or of a new local cluster with one
    single-threaded worker process per core; what must be closed is added to ``own``."""
    import logging

    if scheduler:
        try:
            client = distributed.Client(scheduler, timeout="20s")
        except (OSError, TimeoutError) as exc:
            raise DataError(
                f"cannot reach the Dask scheduler at {scheduler}: {exc}; "
                "start it with 'dask scheduler' (see man emcli)"
            ) from None
        own.append(client)
        return client
    # ":0": the scheduler's web server on a free port (on 8787 it warns when it is taken).
    cluster = distributed.LocalCluster(
        n_workers=os.cpu_count() or 1,
        threads_per_worker=1,
        processes=True,
        dashboard_address=":0",
        silence_logs=logging.ERROR,
    )
    own.append(cluster)
    client = distributed.Client(cluster)
    own.append(client)
    return client


def release(parts: Sequence[Any], own: list[Any]) -> None:
    """Release the partitions' futures, then close what the engine opened (newest first)."""
    for future in parts:
        future.release()
    for resource in reversed(own):
        try:
            resource.close()
        except Exception:  # closing a cluster that is already gone
            pass
    own.clear()


def tree_sum(client: Any, futures: list[Any], combine: Callable[[Sequence[Any]], Any]) -> Any:
    """Add results up a tree of fixed shape (deterministic order) on the workers."""
    while len(futures) > 1:
        futures = [
            client.submit(combine, futures[i : i + FAN_IN]) for i in range(0, len(futures), FAN_IN)
        ]
    return futures[0].result()


# Functions run on the workers (module level, so they pickle by reference); a partition is
# ``(x, w)`` as ``emcli.data.parts.read_part`` returns it.
def _part_rows(part: Partition) -> int:
    return len(part[0])


def _part_summary(part: Partition, offset: int = 0, complete_only: bool = False) -> ColumnSummary:
    x, w = complete_rows(*part) if complete_only else part
    return ColumnSummary.of_block(x, 0 if complete_only else int(offset), w, moments=True)


def _count_complete(part: Partition) -> int:
    return int((~np.isnan(part[0]).any(axis=1)).sum())


def _part_e_step(part: Partition, family: Any, plan: Any, complete_only: bool = False) -> Any:
    x, w = complete_rows(*part) if complete_only else part
    # One thread per task: the workers' own threads are the parallelism here.
    total = reduce_rows(family, plan, x, w, n_threads=1)
    return family.e_step(x[:0], plan) if total is None else total


def _sum_stats(parts: Sequence[Any]) -> Any:
    total = parts[0]
    for part in parts[1:]:
        total = total + part
    return total


def _take(part: Partition, local: NDArray[np.intp], complete_only: bool = False) -> Partition:
    x, w = complete_rows(*part) if complete_only else part
    return x[local], None if w is None else w[local]


def _offsets(lengths: Sequence[int]) -> NDArray[np.intp]:
    return np.concatenate([[0], np.cumsum(lengths)]).astype(np.intp)

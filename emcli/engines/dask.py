"""The dask engine: the rows live on a Dask cluster; only statistics come back.

The workers read the input (a path, a directory of Parquet files or a glob such as
``data/part-*.parquet``): Parquet by row group (cut into pieces of ``block_rows`` rows when
given), CSV by byte ranges cut at line ends (``dask.bytes.read_bytes``, as
``dask.dataframe.read_csv`` does), each parsed by pyarrow exactly as the stream engine parses
it (same types, nulls and errors).  Each partition becomes a float64 array of the chosen
columns kept in the workers' memory (read once, not per iteration).  Each EM iteration maps
the E-step (``memory.chunked_e_step``: the memory engine's kernels, one thread per task) over
the partitions and adds the statistics up a tree of fixed shape on the workers; the M-step
runs on the client.  Rows are numbered across partitions in input order (files in sorted
name order, then file order), so the initialisation sample picks the same rows as the memory
engine for the same input and seed, and the log-likelihood agrees to rounding.

Install with ``pip install "emcli-mixture[dask]"``.  Without a scheduler address a ``LocalCluster``
with one single-threaded worker process per core is started and stopped with the engine.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..errors import DataError, EmcliError, UsageError
from ..families.gaussian import GaussianParams, SufficientStats
from ..io import detect_format, select_columns, to_array
from .memory import chunked_e_step
from .stream import _complete_rows, guarded, parse_csv, read_head
from .summary import ColumnSummary, ScannedEngine, total_summary

Array = NDArray[np.float64]
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
        columns: the columns to use (default: every numeric column).
        delimiter: CSV field separator.
        scheduler: address of a running scheduler (``tcp://host:8786``); None starts a
            local cluster with one worker process per core.
        client: an existing ``distributed.Client`` (overrides ``scheduler``; not closed).
        block_rows: rows per partition for CSV input (default: dask's 64 MB blocks); for
            Parquet any value gives one partition per row group.
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
    ) -> None:
        distributed = import_dask()
        if source == "-":
            raise UsageError("--engine dask reads the input on the workers, not from standard "
                             "input; give a file path or a glob (or use --engine stream)")
        self.source = source
        self.files = _input_files(source)
        self.kind = "parquet" if os.path.isdir(source) and not fmt else detect_format(
            self.files[0], fmt)
        self.delimiter = delimiter or ("\t" if self.kind == "tsv" else ",")
        head = guarded(source, self.kind, lambda: read_head(self.files[0], self.kind,
                                                            self.delimiter))
        self.columns, self.notes = select_columns(head, columns, check_values=False)
        self._own: list[Any] = []
        try:
            self.client = client or self._connect(distributed, scheduler)
            self.parts = self._load(block_rows)
            self.lengths = [int(n) for n in self.client.gather(self.client.map(len, self.parts))]
            self._offsets = _offsets(self.lengths)
            self._complete_offsets = _offsets(
                self.client.gather(self.client.map(_count_complete, self.parts)))
            self.summary = self._reduce(
                self.client.map(_part_summary, self.parts, list(self._offsets[:-1])),
                total_summary,
            )
            self.complete = self._reduce(
                self.client.map(_part_summary, self.parts, complete_only=True), total_summary)
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

    def take(self, indices: NDArray[np.intp]) -> Array:
        indices = np.asarray(indices)
        futures = []
        for part, lo, hi in zip(self.parts, self.offsets[:-1], self.offsets[1:], strict=True):
            a, b = np.searchsorted(indices, [lo, hi])
            if b > a:
                futures.append(self.client.submit(_take, part, indices[a:b] - lo,
                                                  self.complete_only))
        rows = self.client.gather(futures)
        return np.concatenate(rows) if rows else np.empty((0, self.n_features))

    def e_step(self, params: GaussianParams) -> SufficientStats:
        return self._reduce(self.client.map(_part_e_step, self.parts, params=params,
                                            complete_only=self.complete_only), _sum_stats)

    def blocks(self, n_components: int) -> Iterator[Array]:
        """The partitions in order, fetched to the client one at a time."""
        for part in self.parts:
            yield self.client.gather(part)

    def map_parts(self, function: Callable[..., Any], *args: Sequence[Any], **kwargs: Any):
        """``function(partition_array, *args_i, **kwargs)`` on each partition (futures)."""
        return self.client.map(function, self.parts, *args, **kwargs)

    def close(self) -> None:
        parts = getattr(self, "parts", None)
        if parts:
            for future in parts:
                future.release()
            self.parts = []
        for resource in reversed(self._own):
            try:
                resource.close()
            except Exception:  # closing a cluster that is already gone
                pass
        self._own.clear()

    def __enter__(self) -> DaskEngine:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ------------------------------------------------------------------ internals
    def _connect(self, distributed: Any, scheduler: str | None) -> Any:
        import logging

        if scheduler:
            try:
                client = distributed.Client(scheduler, timeout="20s")
            except (OSError, TimeoutError) as exc:
                raise DataError(f"cannot reach the Dask scheduler at {scheduler}: {exc}; "
                                "start it with 'dask scheduler' (see man emcli)") from None
            self._own.append(client)
            return client
        # ":0": the scheduler's web server on a free port (on 8787 it warns when it is taken).
        cluster = distributed.LocalCluster(
            n_workers=os.cpu_count() or 1, threads_per_worker=1, processes=True,
            dashboard_address=":0", silence_logs=logging.ERROR,
        )
        self._own.append(cluster)
        client = distributed.Client(cluster)
        self._own.append(client)
        return client

    def _load(self, block_rows: int | None) -> list[Any]:
        """Tasks that read one partition each on the workers, computed and kept there."""
        import dask

        if self.kind == "parquet":
            tasks = [dask.delayed(_read_parquet_part)(path, group, start, stop, self.columns)
                     for path, group, start, stop in _parquet_parts(self.files, block_rows)]
        else:
            tasks = self._csv_tasks(block_rows)
        return list(self.client.compute(tasks))

    def _csv_tasks(self, block_rows: int | None) -> list[Any]:
        import dask
        from dask.bytes import read_bytes

        blocksize = max(64, block_rows * _bytes_per_row(self.files[0])) if block_rows \
            else 64_000_000
        tasks = []
        for path in self.files:
            with open(path, "rb") as handle:
                header = handle.readline()
            _, blocks = read_bytes(path, delimiter=b"\n", blocksize=blocksize, sample=False)
            for i, block in enumerate(blocks[0]):
                tasks.append(dask.delayed(_read_csv_part)(
                    block, None if i == 0 else header, self.columns, self.delimiter, path))
        return tasks

    def _reduce(self, futures: list[Any], combine: Callable[[Sequence[Any]], Any]) -> Any:
        """Add results up a tree of fixed shape (deterministic order) on the workers."""
        if not futures:
            raise DataError(f"'{self.source}' has no data rows")
        while len(futures) > 1:
            futures = [self.client.submit(combine, futures[i : i + FAN_IN])
                       for i in range(0, len(futures), FAN_IN)]
        return futures[0].result()


def _input_files(source: str) -> list[str]:
    if os.path.isdir(source):
        files = sorted(str(p) for p in Path(source).rglob("*.parquet"))
        if not files:
            raise DataError(f"directory '{source}' holds no .parquet file")
        return files
    files = sorted(glob.glob(source))
    if not files:
        if glob.has_magic(source):
            raise DataError(f"no file matches '{source}'")
        raise DataError(f"input file '{source}' does not exist")
    return files


def _bytes_per_row(path: str) -> int:
    with open(path, "rb") as handle:
        head = handle.read(1 << 16)
    return max(1, len(head) // max(1, head.count(b"\n")))


def _parquet_parts(files: Sequence[str], block_rows: int | None):
    """(file, row group, first row, end row) of each partition: row groups, cut in pieces of
    ``block_rows`` rows when given."""
    import pyarrow.parquet as pq

    for path in files:
        meta = pq.ParquetFile(path).metadata
        for group in range(meta.num_row_groups):
            rows = meta.row_group(group).num_rows
            step = block_rows or max(rows, 1)
            for start in range(0, max(rows, 1), step):
                yield path, group, start, min(rows, start + step)


# Functions run on the workers (module level, so they pickle by reference).  They read with
# pyarrow exactly as the stream engine does: the same types, nulls and errors.
def _read_parquet_part(path: str, group: int, start: int, stop: int, names: list[str]) -> Array:
    import pyarrow.parquet as pq

    table = guarded(path, "parquet", lambda: pq.ParquetFile(path).read_row_group(
        group, columns=names, use_threads=False))
    return to_array(table.slice(start, stop - start), names)


def _read_csv_part(block: bytes, header: bytes | None, names: list[str], delimiter: str,
                   path: str) -> Array:
    data = block if header is None else header + block
    table = guarded(path, "csv", lambda: parse_csv(data, names, delimiter))
    return to_array(table, names)


def _part_summary(x: Array, offset: int = 0, complete_only: bool = False) -> ColumnSummary:
    return ColumnSummary.of_block(_complete_rows(x) if complete_only else x, int(offset))


def _count_complete(x: Array) -> int:
    return int((~np.isnan(x).any(axis=1)).sum())


def _part_e_step(x: Array, params: GaussianParams, complete_only: bool = False
                 ) -> SufficientStats:
    if complete_only:
        x = _complete_rows(x)
    # One thread per task: the workers' own threads are the parallelism here.
    return chunked_e_step([x], params, n_threads=1)


def _sum_stats(parts: Sequence[SufficientStats]) -> SufficientStats:
    total = parts[0]
    for part in parts[1:]:
        total = total + part
    return total


def _take(x: Array, local: NDArray[np.intp], complete_only: bool = False) -> Array:
    return (_complete_rows(x) if complete_only else x)[local]


def _offsets(lengths: Sequence[int]) -> NDArray[np.intp]:
    return np.concatenate([[0], np.cumsum(lengths)]).astype(np.intp)

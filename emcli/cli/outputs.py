"""The files a command writes: destinations checked before the work, rows written by blocks.

Every output goes through ``OutputSet`` (a temporary file per output, renamed into place when
all are complete).  Labels and responsibilities are written in one pass over the rows of the
engine (``engine.blocks()``), the same for every engine.  With ``--engine dask`` a labels or
responsibilities path that does not end in ``.csv`` (nor is ``-``) is partitioned Parquet: a
directory of ``part.NNNNN.parquet`` files written by the workers into a temporary directory
that is renamed into place at the end.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np

from ..data.writers import OutputSet, csv_header, replace_dir, staged_dir
from ..errors import OutputError

ROW_OUTPUTS = ("labels", "responsibilities")
# Per-run outputs and the file each gets inside -o/--output-dir.
DIR_NAMES = {"labels": "labels.csv", "responsibilities": "responsibilities.csv"}


def plan_outputs(
    outputs: OutputSet,
    paths: Mapping[str, str | None],
    output_dir: str | None = None,
    in_dir: Mapping[str, str] = DIR_NAMES,
) -> dict[str, str]:
    """The destination of each output (explicit paths win over -o DIR), checked now, before
    any work: ``{"labels": ..., "params": ...}`` for the outputs asked for."""
    planned: dict[str, str] = {}
    if output_dir:
        target = Path(output_dir)
        if target.exists() and not target.is_dir():
            raise OutputError(
                f"--output-dir '{output_dir}' exists and is not a directory; "
                "give a new or an existing directory"
            )
        if not target.exists():
            outputs.create_dir(output_dir)
        planned.update({name: str(target / filename) for name, filename in in_dir.items()})
    planned.update({name: path for name, path in paths.items() if path})
    for path in planned.values():
        outputs.check(path)
    return planned


# ---------------------------------------------------------------------------- CSV blocks
def write_block(handle: IO[bytes], columns: Sequence[Any]) -> None:
    """Rows of equal-length columns as CSV lines (no header), as ``io.write_csv`` writes them."""
    import pyarrow as pa
    import pyarrow.csv as pcsv

    table = pa.table({str(i): v for i, v in enumerate(columns)})
    if table.num_rows:
        pcsv.write_csv(table, handle, pcsv.WriteOptions(include_header=False))


def column_names(what: str, n_components: int) -> list[str]:
    """The header of a labels or responsibilities output."""
    if what == "labels":
        return ["cluster"]
    return [f"component_{j}" for j in range(n_components)]


def row_columns(what: str, resp: np.ndarray) -> list[np.ndarray]:
    """The columns of one block of a labels or responsibilities output."""
    if what == "labels":
        return [np.argmax(resp, axis=1).astype(np.int64)]
    return [resp[:, j] for j in range(resp.shape[1])]


def row_writer(
    wanted: Sequence[str], n_components: int, responsibilities: Iterable[np.ndarray]
) -> Callable[[list[IO[bytes]]], None]:
    """A group writer (``OutputSet.add_group``) that fills the ``wanted`` row outputs in one
    pass over ``responsibilities`` (blocks of shape (rows, k), in row order)."""

    def write(handles: list[IO[bytes]]) -> None:
        for what, handle in zip(wanted, handles, strict=True):
            handle.write(csv_header(column_names(what, n_components)).encode())
        for resp in responsibilities:
            for what, handle in zip(wanted, handles, strict=True):
                write_block(handle, row_columns(what, resp))

    return write


def add_row_outputs(outputs: OutputSet, paths: Mapping[str, str], model: Any, engine: Any) -> None:
    """Stage the labels and responsibilities that ``paths`` asks for: one pass over
    ``engine.blocks()`` at commit time (the rows stay where the engine keeps them)."""
    wanted = [name for name in ROW_OUTPUTS if name in paths]
    if wanted:
        blocks = (model.predict_proba(xb) for xb, _ in engine.blocks(model.n_components))
        writer = row_writer(wanted, model.n_components, blocks)
        outputs.add_group([paths[name] for name in wanted], writer)


def add_outlier_scores(outputs: OutputSet, path: str, model: Any, engine: Any) -> None:
    """Stage ``--outlier-scores``: cluster, u and log_density of every row, in row order
    (``MixtureModel.outlier_scores``), one pass over ``engine.blocks()`` at commit time."""

    def write(handle: IO[bytes]) -> None:
        handle.write(csv_header(["cluster", "u", "log_density"]).encode())
        for xb, _ in engine.blocks(model.n_components):
            labels, u, log_density = model.outlier_scores(xb)
            write_block(handle, [labels.astype(np.int64), u, log_density])

    outputs.add(path, write)


def add_text(outputs: OutputSet, path: str, text: str) -> None:
    def write(handle: IO[bytes]) -> None:
        handle.write(text.encode())

    outputs.add(path, write)


# ---------------------------------------------------------------------------- Parquet parts
def parquet_outputs(paths: Mapping[str, str | None]) -> dict[str, str]:
    """The row outputs that ``--engine dask`` writes as partitioned Parquet directories."""
    return {
        name: path
        for name in ROW_OUTPUTS
        if (path := paths.get(name)) and path != "-" and not path.lower().endswith(".csv")
    }


@contextlib.contextmanager
def staged_parts(directories: Mapping[str, str]) -> Iterator[dict[str, str]]:
    """Temporary directories for the Parquet outputs, moved into place when the block ends
    without error and removed otherwise."""
    staged = {name: staged_dir(path) for name, path in directories.items()}
    try:
        yield staged
        for name, directory in list(staged.items()):
            replace_dir(directory, directories[name])
            del staged[name]
    finally:
        for directory in staged.values():
            shutil.rmtree(directory, ignore_errors=True)


def write_parquet_parts(engine: Any, model: Any, what: str, directory: str) -> None:
    """One ``part.NNNNN.parquet`` per partition, written by the Dask workers."""
    files = [str(Path(directory) / f"part.{i:05d}.parquet") for i in range(len(engine.parts))]
    engine.client.gather(engine.map_parts(_write_part, files, model=model, what=what))


def _write_part(part: tuple[np.ndarray, Any], path: str, model: Any, what: str) -> str:
    # Runs on a worker: the directory must be on storage the workers share with the client.
    import pyarrow as pa
    import pyarrow.parquet as pq

    resp = model.predict_proba(part[0])
    names = column_names(what, model.n_components)
    pq.write_table(pa.table(dict(zip(names, row_columns(what, resp), strict=True))), path)
    return path


# ---------------------------------------------------------------------------- selection table
def write_selection(handle: IO[bytes], candidates: Sequence[Any]) -> None:
    """The candidates of a model selection as CSV, one row each (``Candidate.row()``)."""
    import csv
    import io

    rows = [c.row() for c in candidates]
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _csv_cell(v) for k, v in row.items()})
    handle.write(text.getvalue().encode())


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)

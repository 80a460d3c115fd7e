"""The files a command writes: destinations checked before the work, rows written by blocks.

Every output goes through ``OutputSet`` (a temporary file per output, renamed into place when
all are complete).  Labels and responsibilities are written in one pass over the rows of the
engine (``engine.blocks()``), the same for every engine: one file per path, in the format of
its extension (CSV, TSV, Parquet, JSON lines; ``emcli.data.writers.row_format``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np

from ..data.writers import OutputSet, csv_header, row_format
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
    for name, path in planned.items():
        outputs.check(path)
        if name in ROW_OUTPUTS:
            row_format(path)  # an extension no row output has fails now, before any work
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


def row_table(names: Sequence[str], columns: Sequence[Any], carried: Any = None) -> Any:
    """One block of a row output as a pyarrow Table: the carried input columns (``--id-column``
    or ``--with-input``) first, then ``names``."""
    import pyarrow as pa

    table = pa.table(dict(zip(names, columns, strict=True)))
    if carried is None:
        return table
    for i, name in enumerate(carried.column_names):
        table = table.add_column(i, name, carried.column(i))
    return table


def check_carried(carried_names: Sequence[str], names: Sequence[str]) -> None:
    """The carried input columns must not take a name the output gives its own column."""
    clash = sorted(set(carried_names) & set(names))
    if clash:
        raise OutputError(
            f"the input has a column named '{clash[0]}', the name of a column emcli writes; "
            "rename that column of the input"
        )


def row_writer(
    wanted: Sequence[str],
    n_components: int,
    responsibilities: Iterable[np.ndarray],
    paths: Sequence[str] | None = None,
    carrier: Any = None,
) -> Callable[[list[IO[bytes]]], None]:
    """A group writer (``OutputSet.add_group``) that fills the ``wanted`` row outputs in one
    pass over ``responsibilities`` (blocks of shape (rows, k), in row order), each in the
    format of its path's extension (``row_format``), with the ``carrier``'s input columns
    (``RowCarrier``) in front when given."""
    from ..data.writers import RowSink, row_format

    formats = [row_format(p) for p in paths] if paths else ["csv"] * len(wanted)
    if carrier is not None:
        for what in wanted:
            check_carried(carrier.names, column_names(what, n_components))

    def write(handles: list[IO[bytes]]) -> None:
        sinks = [RowSink(h, f) for h, f in zip(handles, formats, strict=True)]
        if carrier is not None:
            carrier.start()
        for resp in responsibilities:
            carried = carrier.take(len(resp)) if carrier is not None else None
            for what, sink in zip(wanted, sinks, strict=True):
                names = column_names(what, n_components)
                sink.write(row_table(names, row_columns(what, resp), carried))
        for what, sink in zip(wanted, sinks, strict=True):
            names = column_names(what, n_components)
            empty = [np.empty(0, np.int64 if what == "labels" else np.float64)] * len(names)
            sink.close(row_table(names, empty, carrier.empty() if carrier else None))

    return write


def add_row_outputs(
    outputs: OutputSet, paths: Mapping[str, str], model: Any, engine: Any, carrier: Any = None
) -> None:
    """Stage the labels and responsibilities that ``paths`` asks for: one pass over
    ``engine.blocks()`` at commit time (the rows stay where the engine keeps them), the
    same for every engine: one file per path, its format from the extension."""
    wanted = [name for name in ROW_OUTPUTS if name in paths]
    if wanted:
        blocks = (model.predict_proba(xb) for xb, _ in engine.blocks(model.n_components))
        chosen = [paths[name] for name in wanted]
        writer = row_writer(wanted, model.n_components, blocks, chosen, carrier)
        outputs.add_group(chosen, writer)


def add_top_words(outputs: OutputSet, path: str, model: Any, n_words: int) -> None:
    """Stage ``--top-words``: CSV cluster,rank,word,probability, the ``n_words`` most
    probable words of each cluster of a document mixture (rank 1 the most probable)."""
    from ..data.writers import write_csv

    top = model.family.top_words(model.params, n_words)
    rows = [(j, r + 1, w, p) for j, words in enumerate(top) for r, (w, p) in enumerate(words)]
    columns = {
        "cluster": np.array([r[0] for r in rows], dtype=np.int64),
        "rank": np.array([r[1] for r in rows], dtype=np.int64),
        "word": np.array([r[2] for r in rows], dtype=object),
        "probability": np.array([r[3] for r in rows], dtype=np.float64),
    }
    outputs.add(path, lambda handle: write_csv(handle, columns))


def add_outlier_scores(outputs: OutputSet, path: str, model: Any, engine: Any) -> None:
    """Stage ``--outlier-scores``: cluster, u and log_density of every row, in row order
    (``MixtureModel.outlier_scores``), one pass over ``engine.blocks()`` at commit time."""

    def write(handle: IO[bytes]) -> None:
        handle.write(csv_header(["cluster", "u", "log_density"]).encode())
        for xb, _ in engine.blocks(model.n_components):
            labels, u, log_density = model.outlier_scores(xb)
            rows = (
                f"{int(c)},{float(a)!r},{float(b)!r}\n"
                for c, a, b in zip(labels, u, log_density, strict=True)
            )
            handle.write("".join(rows).encode())

    outputs.add(path, write)


def add_text(outputs: OutputSet, path: str, text: str) -> None:
    def write(handle: IO[bytes]) -> None:
        handle.write(text.encode())

    outputs.add(path, write)


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

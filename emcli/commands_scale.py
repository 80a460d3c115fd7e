"""``emcli fit`` with the stream and dask engines (issue 7): choose, fit, write by blocks.

Like ``commands``, this layer holds no mathematics: it opens an engine, calls
``api.fit_engine`` and writes the outputs, labels and responsibilities block by block from a
final pass over the rows (CSV through ``OutputSet``: temporary file, then rename).  With
``--engine dask`` a labels or responsibilities path that does not end in ``.csv`` (nor is
``-``) is written as partitioned Parquet: a directory of ``part.NNNNN.parquet`` files, one per
partition, written by the workers into a temporary directory renamed into place at the end.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
import numpy as np

from .data.writers import OutputSet, csv_header, replace_dir, staged_dir
from .errors import UsageError
from .model import GaussianMixtureModel
from .progress import make_display, print_summary, stderr_console

ROW_OUTPUTS = ("labels", "responsibilities")


def chosen_engine(source: str, options: dict[str, Any], n_candidates: int, quiet: bool) -> str:
    """The engine for this run (``engines.choose``); prints the automatic choice's note."""
    from .engines.choose import choose_engine

    engine, scheduler = options.get("engine"), options.get("scheduler")
    if scheduler and engine not in (None, "dask"):
        raise UsageError(f"--scheduler is for --engine dask, not --engine {engine}")
    if scheduler:
        engine = "dask"
    choice = choose_engine(source, engine, options.get("memory_limit"), options.get("fmt"),
                           _columns(options), options.get("delimiter"))
    if choice.engine != "memory" and n_candidates > 1:
        raise UsageError(
            f"model selection over a range of -k or --covariance runs on the memory engine; "
            f"with --engine {choice.engine} fit one -k and one --covariance per run"
            + (" (or raise --memory-limit)" if choice.note else "")
        )
    if choice.note and not quiet:
        click.echo(f"Note: {choice.note}", err=True)
    return choice.engine


def _columns(options: dict[str, Any]) -> list[str] | None:
    from .commands import split_columns

    return split_columns(options.get("columns"))


def run_fit_scaled(source: str, k: int, kind: str, engine_name: str, options: dict[str, Any],
                   quiet: bool, verbose: bool) -> None:
    from . import api
    from .commands import plan_row_outputs
    from .engines.choose import open_engine

    if options.get("selection_path"):
        raise UsageError("--selection needs a range of -k or several --covariance types")
    parquet_dirs = {}
    if engine_name == "dask":
        for name in ROW_OUTPUTS:
            path = options.get(name)
            if path and path != "-" and not path.lower().endswith(".csv"):
                parquet_dirs[name] = path
                options = {**options, name: None}
    outputs = OutputSet()
    paths = plan_row_outputs(outputs, options, extra=[("params", "params.json")])
    staged = {name: staged_dir(path) for name, path in parquet_dirs.items()}
    try:
        with open_engine(engine_name, source, fmt=options.get("fmt"), columns=_columns(options),
                         delimiter=options.get("delimiter"), block_rows=options.get("block_rows"),
                         scheduler=options.get("scheduler")) as engine:
            if not quiet:
                for note in engine.notes:
                    click.echo(f"Note: {note}", err=True)
            settings = dict(
                init=options["init"], n_restarts=options["restarts"],
                max_iter=options["max_iter"], tol=options["tol"],
                reg_covar=options["reg_covar"], seed=options["seed"],
                init_sample=options["init_sample"], missing=options.get("missing", "em"),
            )
            if options.get("accelerate"):  # SQUAREM works on any engine
                settings["accelerate"] = True
            with make_display(quiet, verbose) as display:
                model = api.fit_engine(engine, k, covariance_type=kind, monitor=display,
                                       **settings)
            for note in model.notes:
                if not quiet:
                    click.echo(f"Note: {note}", err=True)
            for warning in model.warnings:
                click.echo(f"Warning: {warning}", err=True)
            wanted = [name for name in ROW_OUTPUTS if name in paths]
            if wanted:
                outputs.add_group([paths[name] for name in wanted],
                                  _csv_writer(engine, model, wanted))
            for name, directory in staged.items():
                _write_parquet_parts(engine, model, name, directory)
            if "params" in paths:
                text = model.to_json()
                outputs.add(paths["params"], lambda h: h.write(text.encode()))
            outputs.commit()
        for name, directory in staged.items():
            replace_dir(directory, parquet_dirs[name])
        staged.clear()
    finally:
        import shutil

        for directory in staged.values():
            shutil.rmtree(directory, ignore_errors=True)
    if not quiet and (sys.stderr.isatty() or not (paths or parquet_dirs)):
        print_summary(stderr_console(), model)


def row_columns(model: GaussianMixtureModel, what: str, x: np.ndarray,
                resp: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The output columns of one block of rows: {'cluster': ...} or {'component_j': ...}."""
    if resp is None:
        resp = model.predict_proba(x)
    if what == "labels":
        return {"cluster": np.argmax(resp, axis=1).astype(np.int64)}
    return {f"component_{j}": resp[:, j] for j in range(model.n_components)}


def _names(model: GaussianMixtureModel, what: str) -> list[str]:
    if what == "labels":
        return ["cluster"]
    return [f"component_{j}" for j in range(model.n_components)]


def _csv_writer(engine: Any, model: GaussianMixtureModel, wanted: list[str]):
    """Write the ``wanted`` CSV outputs in one pass over the engine's blocks."""
    import pyarrow as pa
    import pyarrow.csv as pcsv

    def write(handles) -> None:
        for what, handle in zip(wanted, handles, strict=True):
            handle.write(csv_header(_names(model, what)).encode())
        options = pcsv.WriteOptions(include_header=False)
        for xb, _ in engine.blocks(model.n_components):
            resp = model.predict_proba(xb)
            for what, handle in zip(wanted, handles, strict=True):
                columns = row_columns(model, what, xb, resp)
                table = pa.table({str(i): v for i, v in enumerate(columns.values())})
                pcsv.write_csv(table, handle, options)

    return write


def _write_parquet_parts(engine: Any, model: GaussianMixtureModel, what: str,
                         directory: str) -> None:
    files = [str(Path(directory) / f"part.{i:05d}.parquet") for i in range(len(engine.parts))]
    engine.client.gather(engine.map_parts(_write_part, files, model=model, what=what))


def _write_part(part: tuple[np.ndarray, Any], path: str, model: GaussianMixtureModel,
                what: str) -> str:
    # Runs on a worker: the directory must be on storage the workers share with the client.
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table(row_columns(model, what, part[0])), path)
    return path

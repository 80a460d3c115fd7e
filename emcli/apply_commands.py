"""What ``predict``, ``score``, ``sample`` and ``describe`` do once click has parsed them.

Like ``commands.py`` this layer reads, calls the library and writes through ``OutputSet``; it
holds no mathematics.  Inputs are read block by block (``emcli.data.reader``) and outputs are
written block by block into temporary files that are renamed into place at the end, so the
commands work on files larger than memory and still leave either complete outputs or none.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable, Iterator
from typing import IO, Any

import click
import numpy as np

from .data.writers import OutputSet, csv_header
from .errors import ModelFileError, UsageError
from .model import GaussianMixtureModel
from .modelfile import finite as _finite


# ---------------------------------------------------------------------------- shared
def load_model(path: str) -> GaussianMixtureModel:
    """The model file at ``path`` (``-``: standard input)."""
    if path != "-":
        return GaussianMixtureModel.load(path)
    try:
        data = json.loads(sys.stdin.buffer.read().decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelFileError(
            f"standard input is not an emcli model file (not JSON: {exc}); give the JSON "
            "file written by 'emcli fit --params'"
        ) from None
    return GaussianMixtureModel.from_dict(data)


def model_and_reader(model_path: str, source: str, options: dict[str, Any]):
    """Load the model, then open INPUT on the model's columns (or those of -c/--columns).

    Opening reads the header, so a missing column fails here, before any output.
    """
    from .commands import split_columns
    from .data.reader import open_blocks

    if model_path == "-" and source == "-":
        raise UsageError("MODEL and INPUT cannot both be standard input ('-')")
    model = load_model(model_path)
    columns = split_columns(options.get("columns")) or list(model.columns)
    if len(columns) != model.n_features:
        raise UsageError(
            f"-c/--columns names {len(columns)} column(s) but the model has "
            f"{model.n_features} ({', '.join(model.columns)}); give one input column for "
            "each, in that order"
        )
    if len(set(columns)) != len(columns):
        raise UsageError("-c/--columns names a column twice")
    return model, open_blocks(source, columns, options.get("fmt"), options.get("delimiter"))


def write_block(handle: IO[bytes], columns: list[Any]) -> None:
    """Rows of equal-length columns as CSV lines (no header), as ``write_csv`` writes them."""
    import pyarrow as pa
    import pyarrow.csv as pcsv

    table = pa.table({str(i): v for i, v in enumerate(columns)})
    if table.num_rows:
        pcsv.write_csv(table, handle, pcsv.WriteOptions(include_header=False))


def _scored(model: GaussianMixtureModel, reader: Any,
            density_only: bool = False) -> Iterator[tuple[int, Any, Any]]:
    from .apply import apply_blocks

    return apply_blocks(model, reader, reader.columns, density_only=density_only)


# ---------------------------------------------------------------------------- predict
def run_predict(model_path: str, source: str, options: dict[str, Any]) -> None:
    from .commands import plan_row_outputs

    outputs = OutputSet()
    paths = plan_row_outputs(outputs, options)
    if not paths:
        outputs.check("-")
        paths = {"labels": "-"}
    names = [n for n in ("labels", "responsibilities") if n in paths]
    model, reader = model_and_reader(model_path, source, options)
    k = model.n_components

    def writer(handles: list[IO[bytes]]) -> None:
        out = dict(zip(names, handles, strict=True))
        if "labels" in out:
            out["labels"].write(csv_header(["cluster"]).encode())
        if "responsibilities" in out:
            out["responsibilities"].write(
                csv_header([f"component_{j}" for j in range(k)]).encode())
        for _, log_resp, _ in _scored(model, reader):
            resp = np.exp(log_resp)
            if "labels" in out:
                write_block(out["labels"], [np.argmax(resp, axis=1).astype(np.int64)])
            if "responsibilities" in out:
                write_block(out["responsibilities"], [resp[:, j] for j in range(k)])

    outputs.add_group([paths[n] for n in names], writer)
    try:
        outputs.commit()
    finally:
        reader.close()


# ---------------------------------------------------------------------------- score
def run_score(model_path: str, source: str, options: dict[str, Any]) -> None:
    from .apply import LowestRows

    below, lowest = options.get("below"), options.get("lowest")
    if below is not None and math.isnan(below):
        raise click.BadParameter("--below must be a number, not nan", param_hint="--below")
    output = options.get("output") or "-"
    outputs = OutputSet()
    outputs.check(output)
    model, reader = model_and_reader(model_path, source, options)
    filtered = below is not None or lowest is not None
    totals = {"rows": 0, "sum": 0.0, "kept": 0}

    def writer(handles: list[IO[bytes]]) -> None:
        (handle,) = handles
        handle.write(csv_header(["row", "log_likelihood"] if filtered
                                else ["log_likelihood"]).encode())
        keep = LowestRows(lowest) if lowest is not None else None
        for first, _, norm in _scored(model, reader, density_only=True):
            totals["rows"] += len(norm)
            totals["sum"] += float(norm.sum())
            if not filtered:
                write_block(handle, [norm])
                continue
            rows = np.arange(first, first + len(norm), dtype=np.int64)
            if below is not None:
                mask = norm < below
                rows, norm = rows[mask], norm[mask]
            if keep is not None:
                keep.add(rows, norm)
            else:
                write_block(handle, [rows, norm])
                totals["kept"] += len(rows)
        if keep is not None:
            rows, norm = keep.result()
            write_block(handle, [rows, norm])
            totals["kept"] = len(rows)

    outputs.add_group([output], writer)
    try:
        outputs.commit()
    finally:
        reader.close()
    if not options.get("quiet") and (sys.stderr.isatty() or options.get("verbose")):
        n = totals["rows"]
        mean = f"{totals['sum'] / n:.6f}" if n else "-"
        kept = f"; {totals['kept']} row(s) kept" if filtered else ""
        click.echo(f"{n} row(s): total log-likelihood {totals['sum']:.6f}, mean {mean} per "
                   f"row{kept}", err=True)


# ---------------------------------------------------------------------------- sample
def run_sample(model_path: str, n_samples: int, seed: int, output: str) -> None:
    from .families.gaussian.sampling import sample_blocks

    model = load_model(model_path)
    if "component" in model.columns:
        raise UsageError("the model has a column named 'component', the name of the column "
                         "sample adds; rename that column and refit")
    outputs = OutputSet()
    outputs.check(output)

    def writer(handles: list[IO[bytes]]) -> None:
        (handle,) = handles
        handle.write(csv_header([*model.columns, "component"]).encode())
        rng = np.random.default_rng(seed)
        for x, component in sample_blocks(model.params, n_samples, rng):
            write_block(handle, [*(x[:, j] for j in range(model.n_features)), component])

    outputs.add_group([output], writer)
    outputs.commit()


# ---------------------------------------------------------------------------- describe
def run_describe(model_path: str, as_json: bool) -> None:
    from .apply import describe

    model = load_model(model_path)
    summary = describe(model, full_covariances=as_json)
    if as_json:
        text = json.dumps(_finite(summary), indent=2, allow_nan=False) + "\n"
        sys.stdout.buffer.write(text.encode())
        sys.stdout.buffer.flush()
        return
    _print_description(summary)


def _print_description(s: dict[str, Any]) -> None:
    from rich import box
    from rich.console import Console
    from rich.table import Table

    console = Console(file=sys.stdout, highlight=False, soft_wrap=True)
    plain = not console.is_terminal
    out: Callable[..., None] = console.print
    state = "converged" if s["converged"] else "NOT converged"
    if s["degenerate"]:
        state += f", DEGENERATE (collapsed: {', '.join(map(str, s['collapsed_components']))})"
    mean = s["mean_log_likelihood"]
    out(f"{s['n_components']} component(s), {s['covariance_type']} covariance, "
        f"{s['n_features']} column(s): {', '.join(s['columns'])}")
    out(f"fitted on {s['n_samples']} rows: log-likelihood {s['log_likelihood']:.6f}"
        + (f" ({mean:.6f} per row)" if mean is not None else "")
        + f", {s['n_parameters']} parameters, BIC {s['bic']:.4f}, AIC {s['aic']:.4f}")
    start = "" if s["best_start"] is None else f", best start {s['best_start']}"
    out(f"EM: {s['n_iter']} iterations, {state}; {s['n_starts']} start(s){start}"
        + (", re-seeded after collapses" if s["reseeded"] else ""))
    if s["settings"]:
        out("settings: " + ", ".join(f"{k} {v}" for k, v in s["settings"].items()))
    sel = s.get("selection")
    if sel:
        winner = sel.get("winner") or {}
        margin = sel.get("runner_up_margin")
        out(f"selection: by {str(sel.get('criterion')).upper()} among {sel['n_candidates']} "
            f"candidates, winner k={winner.get('components')} {winner.get('covariance')}"
            + (f", runner-up {margin:.3f} worse" if margin is not None else ""))
    table = Table(box=box.ASCII if plain else box.SIMPLE_HEAD, show_edge=not plain)
    wide = s["n_features"] <= 2  # else one row per (component, column): any width fits
    for name in (["component", "weight"] + [f"{t} {c}" for c in s["columns"]
                                            for t in ("mean", "sd")]
                 if wide else ["component", "weight", "column", "mean", "sd"]):
        table.add_column(name, justify="left" if name == "column" else "right")
    for comp in s["components"]:
        head = [str(comp["component"]), f"{comp['weight']:.4f}"]
        if wide:
            table.add_row(*head, *(f"{comp[t][c]:.4g}" for c in s["columns"]
                                   for t in ("mean", "sd")))
            continue
        for i, c in enumerate(s["columns"]):
            table.add_row(*(head if i == 0 else ["", ""]), c, f"{comp['mean'][c]:.4g}",
                          f"{comp['sd'][c]:.4g}")
    out(table)
    for note in s["notes"]:
        out(f"note: {note}")
    for warning in s["warnings"]:
        out(f"warning: {warning}")

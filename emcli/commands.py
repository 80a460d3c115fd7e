"""What the CLI commands do once click has parsed them (loaded lazily by ``cli.py``).

This layer reads inputs, calls the library, and writes outputs through ``OutputSet``; it
holds no mathematics.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import click
import numpy as np

from .data.formats import parse_delimiter
from .data.reader import Table, read_table
from .data.writers import OutputSet, write_csv
from .errors import OutputError, UsageError
from .model import GaussianMixtureModel
from .progress import make_display, print_summary, stderr_console


def split_columns(spec: str | None) -> list[str] | None:
    if not spec:
        return None
    return [c.strip() for c in spec.split(",") if c.strip()]


def read_input(source: str, options: dict[str, Any], quiet: bool) -> Table:
    table = read_table(
        source,
        fmt=options.get("fmt"),
        columns=split_columns(options.get("columns")),
        delimiter=options.get("delimiter"),
    )
    if not quiet:
        for note in table.notes:
            click.echo(f"Note: {note}", err=True)
    return table


def plan_row_outputs(outputs: OutputSet, options: dict[str, Any],
                     extra: Sequence[tuple[str, str]] = ()) -> dict[str, str]:
    """Destinations of each output (explicit paths win over -o DIR), checked before work."""
    paths: dict[str, str] = {}
    directory = options.get("output_dir")
    if directory:
        target = Path(directory)
        if target.exists() and not target.is_dir():
            raise OutputError(f"--output-dir '{directory}' exists and is not a directory; "
                              "give a new or an existing directory")
        if not target.exists():
            outputs.create_dir(directory)
        for name, filename in (("labels", "labels.csv"),
                               ("responsibilities", "responsibilities.csv"),
                               *extra):
            paths[name] = str(target / filename)
    for name in ("labels", "responsibilities", "params_path", "selection_path", "imputed"):
        value = options.get(name)
        if value:
            paths[name.replace("_path", "")] = value
    for path in paths.values():
        outputs.check(path)
    return paths


def row_writers(outputs: OutputSet, paths: dict[str, str], model: GaussianMixtureModel,
                x: np.ndarray) -> None:
    """Stage the labels and responsibilities outputs (one pass over the rows)."""
    if "labels" not in paths and "responsibilities" not in paths:
        return
    resp = model.predict_proba(x)
    if "labels" in paths:
        labels = np.argmax(resp, axis=1).astype(np.int64)
        outputs.add(paths["labels"], lambda h: write_csv(h, {"cluster": labels}))
    if "responsibilities" in paths:
        cols = {f"component_{j}": resp[:, j] for j in range(model.n_components)}
        outputs.add(paths["responsibilities"], lambda h: write_csv(h, cols))


def run_fit(source: str, k_spec: str, covariance_spec: str, options: dict[str, Any]) -> None:
    from . import api
    from .em.selection import parse_components
    from .families.gaussian.models import parse_covariances

    quiet, verbose = options.pop("quiet"), options.pop("verbose")
    try:
        ks = parse_components(k_spec)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'-k' / '--components'") from None
    try:
        kinds = parse_covariances(covariance_spec)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'--covariance'") from None
    for name, flag in (("tol", "--tol"), ("reg_covar", "--reg-covar")):
        if not math.isfinite(options[name]):  # click's FloatRange lets nan and inf through
            raise click.BadParameter(f"{options[name]} is not a finite number",
                                     param_hint=f"'{flag}'")
    options["delimiter"] = parse_delimiter(options.get("delimiter"))  # before any engine reads
    from .commands_scale import chosen_engine, run_fit_scaled

    engine = chosen_engine(source, options, len(ks) * len(kinds), quiet)
    if engine != "memory":
        return run_fit_scaled(source, ks[0], kinds[0], engine, options, quiet, verbose)
    outputs = OutputSet()
    paths = plan_row_outputs(outputs, options, extra=[("params", "params.json")])
    if "selection" in paths and len(ks) * len(kinds) == 1:
        raise UsageError("--selection needs a range of -k or several --covariance types")
    table = read_input(source, options, quiet)
    settings = dict(
        init=options["init"], n_restarts=options["restarts"], max_iter=options["max_iter"],
        tol=options["tol"], reg_covar=options["reg_covar"], seed=options["seed"],
        init_sample=options["init_sample"], missing=options.get("missing", "em"),
    )
    if options.get("accelerate"):
        settings["accelerate"] = True
    if options.get("dtype", "float64") != "float64":
        settings["dtype"] = options["dtype"]
    console = stderr_console()
    if len(ks) * len(kinds) == 1:
        with make_display(quiet, verbose) as display:
            model = api.fit(table.x, ks[0], columns=table.columns, covariance_type=kinds[0],
                            monitor=display, **settings)
        selection = None
    else:
        model, selection = _run_selection(table, ks, kinds, options, settings, quiet, verbose)
    for note in model.notes:
        if not quiet:
            click.echo(f"Note: {note}", err=True)
    for warning in model.warnings:
        click.echo(f"Warning: {warning}", err=True)
    row_writers(outputs, paths, model, table.x)
    if "imputed" in paths:
        filled = model.impute(table.x)
        cols = {name: filled[:, j] for j, name in enumerate(table.columns)}
        outputs.add(paths["imputed"], lambda h: write_csv(h, cols))
    if "params" in paths:
        text = model.to_json()
        outputs.add(paths["params"], lambda h: h.write(text.encode()))
    if selection is not None and "selection" in paths:
        outputs.add(paths["selection"], lambda h: _write_selection(h, selection))
    outputs.commit()
    if not quiet and (sys.stderr.isatty() or not paths):
        print_summary(console, model)


def _run_selection(table: Table, ks: list[int], kinds: list[str], options: dict[str, Any],
                   settings: dict[str, Any], quiet: bool, verbose: bool):
    from .errors import FitError
    from .progress import print_selection
    from .em.selection import select, selection_record

    criterion = options["criterion"]
    display = make_display(quiet, verbose)
    grid = len(ks) * len(kinds)

    def on_candidate(i: int, total: int, cand) -> None:
        ll = cand.row()["log_likelihood"]
        display.candidate(i, total, f"k={cand.n_components} {cand.covariance_type} "
                          f"log-lik {'-' if ll is None else f'{ll:.4f}'}")

    with display:
        winner, candidates = select(
            table.x, table.columns, ks, kinds, criterion=criterion, jobs=options.get("jobs"),
            on_candidate=on_candidate, monitor=display, **settings,
        )
    if not quiet:
        print_selection(stderr_console(), candidates, winner, criterion)
    if winner is None:
        raise FitError(
            f"none of the {grid} candidates could be fitted without a collapsed component; "
            "try smaller -k values, simpler --covariance types, or a larger --reg-covar"
        )
    model = winner.model
    model.extra["selection"] = selection_record(winner, candidates, criterion)
    return model, candidates


def _write_selection(handle: IO[bytes], candidates) -> None:
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

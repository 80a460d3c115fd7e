"""``emcli fit``: one pipeline for every engine.

Parse the options into a ``FitConfig``; check every destination; choose the engine
(``engines.choose``) and open it; fit one model (``api.fit_engine``) or select among a grid
(memory engine only); write labels and responsibilities in one pass over ``engine.blocks()``,
then ``--params``, ``--imputed`` and ``--selection``, all through one ``OutputSet``.
"""

from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass, field
from typing import Any

import click
from click.core import ParameterSource

from ..errors import FitError, UsageError
from .app import cli
from .options import (
    CONTEXT,
    CRITERIA,
    INIT_METHODS,
    PATH,
    complete_covariances,
    display_options,
    family_names,
    file_argument,
    in_flags,
    input_options,
    option,
    output_options,
    row_options,
    scale_options,
    split_columns,
)

# Where an option that was not given gets its value from.
DEFAULTS = (ParameterSource.DEFAULT, ParameterSource.DEFAULT_MAP, None)


@dataclass(frozen=True)
class Source:
    """The input table and how to read it (``engines.choose.open_engine``'s arguments)."""

    path: str
    fmt: str | None = None
    columns: list[str] | None = None
    delimiter: str | None = None
    weights: str | None = None  # the column of frequency weights (not a feature)

    def read_options(self) -> dict[str, Any]:
        """The reading arguments that are set (unset ones keep the library's default)."""
        values = {"fmt": self.fmt, "columns": self.columns, "delimiter": self.delimiter}
        values["weights"] = self.weights
        return {key: value for key, value in values.items() if value is not None}


@dataclass(frozen=True)
class FitConfig:
    """Everything ``emcli fit`` was asked to do (black's ``Mode``: one value, not 30
    parameters)."""

    source: Source
    ks: list[int]
    kinds: list[str]
    covariance_given: bool  # else the library's default (or the --init model's type)
    init: str  # a method of INIT_METHODS or the path of a model file
    family: str | None  # None: the library's default family
    em: dict[str, Any]  # n_restarts, max_iter, tol, reg_covar, seed, init_sample, missing
    accelerate: bool
    dtype: str
    criterion: str
    jobs: int | None
    engine: str | None
    memory_limit: int | None
    block_rows: int | None
    scheduler: str | None
    paths: dict[str, str | None] = field(default_factory=dict)
    output_dir: str | None = None
    carry: dict[str, Any] = field(default_factory=dict)  # with_input, id_column
    quiet: bool = False
    verbose: bool = False

    @property
    def n_candidates(self) -> int:
        return len(self.ks) * len(self.kinds)

    @property
    def warm_start(self) -> bool:
        return self.init not in INIT_METHODS

    def engine_options(self) -> dict[str, Any]:
        """The keyword arguments of ``open_engine`` that are set."""
        where = {"block_rows": self.block_rows, "scheduler": self.scheduler}
        where = {key: value for key, value in where.items() if value is not None}
        return {**self.source.read_options(), **where}


def _parsed(parse: Any, spec: str, hint: str) -> list[Any]:
    try:
        return parse(spec)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=hint) from None


def build_config(
    source: str, k_spec: str, covariance_spec: str, options: dict[str, Any], given: set[str]
) -> FitConfig:
    """The ``FitConfig`` of the parsed options (``given``: the names of those set on the
    command line or in the environment); usage errors for what click cannot check."""
    from ..data.formats import parse_delimiter
    from ..em.selection import parse_components
    from ..families.gaussian.models import parse_covariances

    ks = _parsed(parse_components, k_spec, "'-k' / '--components'")
    kinds = _parsed(parse_covariances, covariance_spec, "'--covariance'")
    for name, flag in (("tol", "--tol"), ("reg_covar", "--reg-covar")):
        if not math.isfinite(options[name]):  # click's FloatRange lets nan and inf through
            raise click.BadParameter(
                f"{options[name]} is not a finite number", param_hint=f"'{flag}'"
            )
    check_init(options["init"])
    reading = Source(
        source,
        options["fmt"],
        split_columns(options["columns"]),
        parse_delimiter(options["delimiter"]),
        options["weights"],
    )
    check_weights_column(reading)
    em = {key: options[key] for key in ("max_iter", "tol", "reg_covar", "seed", "init_sample")}
    em.update(n_restarts=options["restarts"], missing=options["missing"])
    paths = {name: options[name] for name in ("labels", "responsibilities", "imputed")}
    paths.update(params=options["params_path"], selection=options["selection_path"])
    return FitConfig(
        source=reading,
        ks=ks,
        kinds=kinds,
        covariance_given="covariance_spec" in given,
        init=options["init"],
        family=options["family"] if "family" in given else None,
        em=em,
        accelerate=options["accelerate"],
        dtype=options["dtype"],
        criterion=options["criterion"],
        jobs=options["jobs"],
        engine=options["engine"],
        memory_limit=options["memory_limit"],
        block_rows=options["block_rows"],
        scheduler=options["scheduler"],
        paths=paths,
        output_dir=options["output_dir"],
        carry={key: options[key] for key in ("with_input", "id_column")},
        quiet=options["quiet"],
        verbose=options["verbose"],
    )


def check_init(value: str) -> None:
    """--init is a start method or the path of a model file (loaded later, in ``run_fit``)."""
    if value in INIT_METHODS or os.path.isfile(value):
        return
    raise click.BadParameter(
        f"'{value}' is neither a start method ({', '.join(INIT_METHODS)}) nor an existing "
        "model file; give a method, or the path of a model file written by 'emcli fit "
        "--params' to start from it",
        param_hint="'--init'",
    )


def check_weights_column(source: Source) -> None:
    if source.weights and source.weights in (source.columns or ()):
        raise click.BadParameter(
            f"column '{source.weights}' is the weights column; leave it out of -c/--columns: "
            "weights are not a feature",
            param_hint="'--weights'",
        )


# ---------------------------------------------------------------------------- the command
@cli.command(context_settings=CONTEXT)
@file_argument("input", "INPUT")
@input_options
@option(
    "-k",
    "--components",
    "k_spec",
    required=True,
    metavar="K",
    help="Number of components: 3, a range 1..9 or a list 2,3,5 (chooses by --criterion).",
)
@option(
    "--covariance",
    "covariance_spec",
    default="full",
    show_default=True,
    metavar="TYPE",
    shell_complete=complete_covariances,
    help="full, tied, diag, spherical, a comma list, or 'all' (with --init MODEL.json: "
    "the model's type unless given).",
)
@option(
    "--family",
    type=click.Choice(family_names()),
    default="gaussian",
    show_default=True,
    help="The mixture family.",
)
@option(
    "--criterion",
    type=click.Choice(CRITERIA),
    default="bic",
    show_default=True,
    help="How a range of -k / --covariance picks its winner.",
)
@option(
    "--init",
    default="kmeans",
    show_default=True,
    metavar="METHOD|MODEL.json",
    help="Starting values: kmeans (k-means++ seeded k-means), kmeans++ (its centres) or "
    "random (random rows); or a model file written by 'fit --params', whose "
    "parameters are the one start (a warm start).",
)
@option(
    "-n",
    "--restarts",
    type=click.IntRange(min=1),
    default=10,
    show_default=True,
    help="Independent EM starts; the best non-collapsed log-likelihood wins.",
)
@option(
    "--max-iter",
    type=click.IntRange(min=0),
    default=1000,
    show_default=True,
    help="Maximum EM iterations per start.",
)
@option(
    "--tol",
    type=click.FloatRange(min=0),
    default=1e-8,
    show_default=True,
    help="Stop when the mean log-likelihood per row changes less; 0 runs exactly "
    "--max-iter iterations.",
)
@option(
    "--reg-covar",
    type=click.FloatRange(min=0),
    default=1e-6,
    show_default=True,
    help="Added to every covariance diagonal (floor against collapse).",
)
@option(
    "--seed",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Random seed; the same seed and input give byte-identical outputs.",
)
@option(
    "--init-sample",
    type=click.IntRange(min=1),
    default=100_000,
    show_default=True,
    help="Initialise on at most this many rows (a uniform random sample).",
)
@option(
    "--accelerate/--no-accelerate",
    default=False,
    show_default=True,
    help="SQUAREM-accelerated EM: fewer iterations to the same optimum, likelihood "
    "still non-decreasing. Ignored with --tol 0.",
)
@option(
    "--dtype",
    type=click.Choice(("float64", "float32")),
    default="float64",
    show_default=True,
    help="Precision of the E-step: float32 is faster, log-likelihood to ~1e-6 relative "
    "(--engine memory).",
)
@option(
    "--missing",
    type=click.Choice(("em", "drop", "error")),
    default="em",
    show_default=True,
    help="Missing cells: EM over the observed cells of each row, drop incomplete rows, "
    "or refuse them.",
)
@option(
    "--weights",
    metavar="COL",
    help="Column of frequency weights: a row of weight 3 counts as three identical rows. "
    "The column is not a feature.",
)
@option(
    "--jobs",
    type=click.IntRange(min=1),
    default=None,
    help="Parallel candidates in a model selection [default: number of cores].",
)
@scale_options
@output_options
@row_options
@option(
    "--params",
    "params_path",
    metavar="PATH",
    type=PATH,
    help="Write the fitted model as JSON (the model file predict/score/sample read).",
)
@option(
    "--imputed",
    metavar="PATH",
    type=PATH,
    help="Write the input columns as CSV with each missing cell replaced by its "
    "expectation under the fitted mixture (--engine memory).",
)
@option(
    "--selection",
    "selection_path",
    metavar="PATH",
    type=PATH,
    help="With a range of -k/--covariance, write the table of candidates as CSV.",
)
@display_options
@click.pass_context
def fit(ctx: click.Context, input: str, k_spec: str, covariance_spec: str, **options: Any) -> None:
    """Fit a Gaussian mixture to INPUT (.csv, .tsv, .parquet, or - for CSV on stdin).

    EM runs from --restarts starts and keeps the best; components are numbered by
    decreasing weight.  With a range of -k or several --covariance types, every candidate is
    fitted and the best by --criterion is written.  --init MODEL.json starts from a model
    file instead (e.g. yesterday's model in a nightly refit).  With no output option, a
    summary is printed on stderr.

    \b
    Example:
      emcli fit sample_data/classic.csv -k 2
      emcli fit sample_data/iris.csv -k 3 --covariance diag -o results/
      cat data.csv | emcli fit - -k 3 --labels - | sort | uniq -c
      emcli fit sample_data/faithful.csv -k 1..9 --covariance all --selection -
      emcli fit today.csv -k 3 --init yesterday.json --params today.json
    """
    given = {name for name in ctx.params if ctx.get_parameter_source(name) not in DEFAULTS}
    run_fit(build_config(input, k_spec, covariance_spec, options, given))


# ---------------------------------------------------------------------------- the pipeline
def run_fit(config: FitConfig) -> None:
    """Fit as ``config`` says and write its outputs (all of them, or none on failure)."""
    from ..data.writers import OutputSet
    from ..engines.choose import open_engine
    from .display import echo_notes, print_summary, stderr_console
    from .outputs import DIR_NAMES, plan_outputs
    from .rows import carrier_for, column_notes

    engine_name = choose(config)
    outputs = OutputSet()
    paths = plan_outputs(
        outputs, config.paths, config.output_dir, {**DIR_NAMES, "params": "params.json"}
    )
    check_run(config, engine_name, paths)
    carrier = carrier_for(config.source, config.carry, paths)
    start = warm_start_model(config)
    with open_engine(engine_name, config.source.path, **config.engine_options()) as engine:
        echo_notes(engine.notes, config.quiet)
        column_notes(engine, config.source.columns, config.quiet, config.verbose)
        model, candidates = fit_model(engine, engine_name, config, start)
        stage_outputs(outputs, paths, model, engine, candidates, carrier)
        outputs.commit()
    if not config.quiet and (sys.stderr.isatty() or not paths):
        print_summary(stderr_console(), model)


def choose(config: FitConfig) -> str:
    """The engine for this run (``engines.choose``); prints the automatic choice's note."""
    from ..engines.choose import choose_engine

    engine, scheduler = config.engine, config.scheduler
    if scheduler and engine not in (None, "dask"):
        raise UsageError(f"--scheduler is for --engine dask, not --engine {engine}")
    reading = config.source.read_options()
    limit = config.memory_limit
    choice = choose_engine(config.source.path, "dask" if scheduler else engine, limit, **reading)
    if choice.engine != "memory" and config.n_candidates > 1:
        raise UsageError(
            f"model selection over a range of -k or --covariance runs on the memory engine; "
            f"with --engine {choice.engine} fit one -k and one --covariance per run"
            + (" (or raise --memory-limit)" if choice.note else "")
        )
    if choice.note and not config.quiet:
        click.echo(f"Note: {in_flags(choice.note)}", err=True)
    if config.dtype != "float64" and choice.engine != "memory" and not config.quiet:
        click.echo(
            f"Note: --dtype {config.dtype} applies to --engine memory; --engine "
            f"{choice.engine} computes in float64",
            err=True,
        )
    return choice.engine


def check_run(config: FitConfig, engine_name: str, paths: dict[str, str]) -> None:
    """Outputs (and a warm start) that this run cannot give, refused before any work."""
    if "selection" in paths and config.n_candidates == 1:
        raise UsageError("--selection needs a range of -k or several --covariance types")
    if "imputed" in paths and engine_name != "memory":
        raise UsageError(
            f"--imputed needs every row in memory; with --engine {engine_name} leave it out, "
            "or use --engine memory"
        )
    if config.warm_start and config.n_candidates > 1:
        raise UsageError(
            "--init MODEL.json starts one fit from that model; give one -k and one "
            "--covariance (or leave --covariance out)"
        )


def warm_start_model(config: FitConfig) -> Any:
    """The model of ``--init MODEL.json`` (ModelFileError names the file), else None."""
    if not config.warm_start:
        return None
    from ..model import GaussianMixtureModel

    return GaussianMixtureModel.load(config.init)


# ---------------------------------------------------------------------------- fitting
def library_settings(config: FitConfig, engine_name: str, start: Any) -> dict[str, Any]:
    """The keyword settings of ``api.fit_engine`` (and of each candidate of a selection).

    Options left at their default are not passed, so the library's own defaults apply
    (for --covariance after --init MODEL.json: the model's covariance type).
    """
    settings = {**config.em, "init": config.init if start is None else start}
    if config.covariance_given and config.n_candidates == 1:
        settings["covariance_type"] = config.kinds[0]
    if config.family is not None:
        settings["family"] = config.family
    if config.accelerate:  # SQUAREM works on any engine
        settings["accelerate"] = True
    if config.dtype != "float64" and engine_name == "memory":  # others read float64 blocks
        settings["dtype"] = config.dtype
    return settings


def fit_model(engine: Any, engine_name: str, config: FitConfig, start: Any):
    """(the model, the candidates of a selection or None); notes and warnings shown."""
    from .. import api
    from .display import echo_notes, echo_warnings, make_display

    settings = library_settings(config, engine_name, start)
    candidates = None
    if config.n_candidates == 1:
        with make_display(config.quiet, config.verbose) as display:
            model = api.fit_engine(engine, config.ks[0], monitor=display, **settings)
    else:
        model, candidates = run_selection(engine, config, settings)
    # The model file the CLI writes names flags in its notes and warnings, as stderr does.
    model.notes[:] = [in_flags(message) for message in model.notes]
    model.warnings[:] = [in_flags(message) for message in model.warnings]
    echo_notes(model.notes, config.quiet)
    echo_warnings(model.warnings)
    return model, candidates


def run_selection(engine: Any, config: FitConfig, settings: dict[str, Any]):
    """Every (k, covariance) candidate on the memory engine's rows; the winner by
    --criterion, with the selection recorded in its model file."""
    from ..em.selection import select, selection_record
    from .display import make_display, print_selection, stderr_console

    display = make_display(config.quiet, config.verbose)
    weights = getattr(engine, "weights", None)
    if weights is not None:
        settings = {**settings, "sample_weight": weights}

    def on_candidate(i: int, total: int, cand: Any) -> None:
        ll = cand.row()["log_likelihood"]
        display.candidate(
            i,
            total,
            f"k={cand.n_components} {cand.covariance_type} "
            f"log-lik {'-' if ll is None else f'{ll:.4f}'}",
        )

    with display:
        winner, candidates = select(
            engine.x,
            engine.columns,
            config.ks,
            config.kinds,
            criterion=config.criterion,
            jobs=config.jobs,
            on_candidate=on_candidate,
            monitor=display,
            **settings,
        )
    for cand in candidates:  # why a candidate failed, in the flags of the table and display
        cand.reason = cand.reason and in_flags(cand.reason)
    if not config.quiet:
        print_selection(stderr_console(), candidates, winner, config.criterion)
    if winner is None:
        raise FitError(
            f"none of the {config.n_candidates} candidates could be fitted without a collapsed "
            "component; try smaller -k values, simpler --covariance types, or a larger "
            "--reg-covar"
        )
    model = winner.model
    assert model is not None  # a winner was fitted
    model.extra["selection"] = selection_record(winner, candidates, config.criterion)
    return model, candidates


def stage_outputs(
    outputs: Any,
    paths: dict[str, str],
    model: Any,
    engine: Any,
    candidates: list[Any] | None,
    carrier: Any = None,
) -> None:
    """Every CSV/JSON output of the fit, written when ``outputs`` commits."""
    from ..data.writers import write_csv
    from .outputs import add_row_outputs, add_text, write_selection

    add_row_outputs(outputs, paths, model, engine, carrier)
    if "imputed" in paths:  # the memory engine (check_run): every row is in engine.x
        filled = model.impute(engine.x)
        columns = {name: filled[:, j] for j, name in enumerate(engine.columns)}
        outputs.add(paths["imputed"], lambda handle: write_csv(handle, columns))
    if "params" in paths:
        add_text(outputs, paths["params"], model.to_json())
    if candidates is not None and "selection" in paths:
        outputs.add(paths["selection"], lambda handle: write_selection(handle, candidates))

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
    alpha_option,
    complete_covariances,
    display_options,
    document_options,
    family_names,
    file_argument,
    in_flags,
    input_options,
    option,
    output_options,
    row_options,
    scale_options,
    split_columns,
    tokeniser_options,
    types_option,
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
    alpha: float | None = None  # None: the family's default
    types: dict[str, str] = field(default_factory=dict)  # --types of --family mixed
    paths: dict[str, str | None] = field(default_factory=dict)
    output_dir: str | None = None
    carry: dict[str, Any] = field(default_factory=dict)  # with_input, id_column
    quiet: bool = False
    verbose: bool = False

    default_grid: bool = False  # no -k: mclust's default selection
    documents: Any = None  # a DocumentSource when INPUT holds documents (multinomial)
    tokeniser: Any = None  # the Tokeniser of the documents (None: a warm start's)
    n_top_words: int = 10

    @property
    def n_candidates(self) -> int:
        kinds = 14 if self.kinds == ["all"] else len(self.kinds)
        return len(self.ks) * kinds

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


DEFAULT_COMPONENTS = "1..9"


def early_prestart(
    k_spec: str | None, covariance_spec: str, options: dict[str, Any], given: set[str]
) -> None:
    """Start a selection's worker processes before ``build_config`` imports numpy, so that
    they start Python and import emcli while this process does (``emcli.workers``; run_fit's
    ``prestart`` with the exact count takes them).  The number of candidates is counted from
    the spellings alone: a run that turns out to be no selection discards them."""
    try:
        if k_spec is None:
            n_k = 9
        elif ".." in k_spec:
            lo, hi = (int(v) for v in k_spec.split("..", 1))
            n_k = hi - lo + 1
        else:
            n_k = len(k_spec.split(","))
    except ValueError:
        return  # build_config says what is wrong
    if k_spec is None and "covariance_spec" not in given:
        n_kinds = 14
    else:
        n_kinds = 14 if covariance_spec.strip().lower() == "all" else covariance_spec.count(",") + 1
    if n_k * n_kinds > 1 and options["init"] in INIT_METHODS:
        from .. import workers

        workers.prestart(options["jobs"], n_k * n_kinds)


def build_config(
    source: str, k_spec: str | None, covariance_spec: str, options: dict[str, Any], given: set[str]
) -> FitConfig:
    """The ``FitConfig`` of the parsed options (``given``: the names of those set on the
    command line or in the environment); usage errors for what click cannot check."""
    from ..data.encode import ENCODED_FAMILIES, parse_types
    from ..data.formats import parse_delimiter
    from ..em.selection import parse_components
    from ..families.gaussian.models import parse_covariances

    default_grid = k_spec is None
    if k_spec is None:
        k_spec = DEFAULT_COMPONENTS
        if "covariance_spec" not in given and not (
            options["init"] not in INIT_METHODS and os.path.isfile(options["init"])
        ):
            covariance_spec = "all"
    ks = _parsed(parse_components, k_spec, "'-k' / '--components'")
    family = options["family"] if "family" in given else None
    documents, tokeniser = document_config(source, options, given, family)
    if documents is not None or family == "multinomial":
        family = "multinomial"
        if "covariance_spec" in given:
            raise click.BadParameter(
                "documents have no covariance: leave --covariance out with --family multinomial",
                param_hint="'--covariance'",
            )
        covariance_spec = "full"
        if default_grid:
            ks = _parsed(parse_components, "1..9", "'-k' / '--components'")
    kinds = _parsed(parse_covariances, covariance_spec, "'--covariance'")
    if family == "multinomial":
        kinds = ["multinomial"]
    if family in ENCODED_FAMILIES and "covariance_spec" not in given:
        kinds = ["diag"]  # the Gaussian block of --family mixed: diagonal by default
    types: dict[str, str] = _parsed(parse_types, options["types"], "'--types'")  # type: ignore[assignment]
    if types and family != "mixed":
        raise click.BadParameter(
            "--types gives columns their own kinds: use --family mixed", param_hint="'--types'"
        )
    if options["alpha"] is not None and family not in (*ENCODED_FAMILIES, "multinomial"):
        raise click.BadParameter(
            "--alpha is for the categorical, bernoulli, mixed and multinomial families, not "
            "--family "
            f"{family or 'gaussian'}",
            param_hint="'--alpha'",
        )
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
    if options.get("pca") is not None:
        em["pca"] = options["pca"]
    if options["df"] is not None or options["df_shared"]:  # family t's (api checks that)
        em.update(df=options["df"], df_shared=options["df_shared"])
    paths = {name: options[name] for name in ("labels", "responsibilities", "imputed")}
    paths["outlier_scores"] = options["outlier_scores"]
    paths["top_words"] = options["top_words"]
    if options["top_words"] and family != "multinomial":
        raise click.BadParameter(
            "--top-words lists the most probable words of each cluster of documents; fit "
            "documents (a .txt file, --text-column, or --family multinomial)",
            param_hint="'--top-words'",
        )
    paths.update(params=options["params_path"], selection=options["selection_path"])
    return FitConfig(
        source=reading,
        ks=ks,
        kinds=kinds,
        default_grid=default_grid,
        covariance_given="covariance_spec" in given or kinds == ["all"],
        init=options["init"],
        family=family,
        alpha=options["alpha"],
        types=types,
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
        documents=documents,
        tokeniser=tokeniser,
        n_top_words=options["n_top_words"],
    )


TOKENISER_OPTIONS = ("stop_words", "min_df", "max_df", "max_vocab")


def document_config(
    source: str, options: dict[str, Any], given: set[str], family: str | None
) -> tuple[Any, Any]:
    """(the ``DocumentSource`` when INPUT holds documents, else None; the ``Tokeniser`` of
    the options, or None when none is given and the defaults apply)."""
    from ..data.documents import DocumentSource, document_format
    from ..data.formats import parse_delimiter
    from ..data.text import Tokeniser

    fmt = document_format(source, options["fmt"], options["text_column"])
    tokenising = [name for name in TOKENISER_OPTIONS if options[name] is not None]
    if fmt is None:  # (--text-column always makes documents)
        if options["vocabulary_file"] is not None:
            raise click.BadParameter(
                "--vocabulary names the terms of an .mtx count matrix; give a .mtx INPUT "
                "(or --format mtx)",
                param_hint="'--vocabulary'",
            )
        if tokenising and family != "multinomial":
            flag = "--" + tokenising[0].replace("_", "-")
            raise click.BadParameter(
                f"{flag} is a rule for tokenising documents; give documents (a .txt file, "
                "--format text or --text-column COL)",
                param_hint=f"'{flag}'",
            )
        return None, None
    if family not in (None, "multinomial"):
        raise click.BadParameter(
            f"INPUT holds documents ({fmt}), which the multinomial family fits, not "
            f"--family {family}; leave --family out",
            param_hint="'--family'",
        )
    if fmt == "mtx" and tokenising:
        flag = "--" + tokenising[0].replace("_", "-")
        raise click.BadParameter(
            f"{flag} applies to texts; an .mtx file holds counts already",
            param_hint=f"'{flag}'",
        )
    if options["vocabulary_file"] is not None and fmt != "mtx":
        raise click.BadParameter(
            "--vocabulary names the terms of an .mtx count matrix; texts make their own",
            param_hint="'--vocabulary'",
        )
    if options["columns"] is not None:
        raise click.BadParameter(
            "-c/--columns selects columns of numbers; documents are read from "
            + ("--text-column" if options["text_column"] else "each line"),
            param_hint="'-c/--columns'",
        )
    if options["weights"] is not None and options["text_column"] is None:
        raise click.BadParameter(
            "--weights names a column of a table; with documents give it next to --text-column COL",
            param_hint="'--weights'",
        )
    documents = DocumentSource(
        source,
        fmt,
        options["text_column"],
        parse_delimiter(options["delimiter"]),
        options["vocabulary_file"],
        options["weights"],
    )
    tokeniser = None
    if tokenising:
        try:
            tokeniser = Tokeniser.from_options(*(options[name] for name in TOKENISER_OPTIONS))
            tokeniser.validate()
        except UsageError as exc:
            raise click.BadParameter(in_flags(exc.args[0])) from None
    return documents, tokeniser


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
@document_options
@tokeniser_options
@option(
    "-k",
    "--components",
    "k_spec",
    default=None,
    metavar="K",
    help="Number of components: 3, a range 1..9 or a list 2,3,5 (chooses by --criterion). "
    "Without -k: 1..9 and, unless --covariance is given, all 14 covariance models "
    "(mclust's default).",
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
    help="The mixture family: gaussian; t; categorical (latent class analysis), bernoulli "
    "(0/1), poisson (counts), or mixed (each column its own kind; docs/categorical.md); "
    "multinomial (documents: implied by a .txt or .mtx INPUT or --text-column; "
    "docs/documents.md).",
)
@alpha_option
@types_option
@option(
    "--df",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    metavar="NU",
    help="--family t: fix every component's degrees of freedom to NU (e.g. 1e8: a Gaussian) "
    "[default: estimated per component, in 0.5..1000].",
)
@option(
    "--df-shared",
    is_flag=True,
    help="--family t: estimate one degrees of freedom shared by all components.",
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
    default="auto",
    show_default=True,
    metavar="METHOD|MODEL.json",
    help="Starting values: auto (start 1 hc, then kmeans, kmeans++ and random in turn), hc "
    "(mclust's model-based hierarchical clustering), kmeans (k-means++ seeded k-means), "
    "kmeans++ (its centres) or random (random rows); or a model file written by 'fit "
    "--params', whose parameters are the one start (a warm start).",
)
@option(
    "--pca",
    type=click.IntRange(min=1),
    default=None,
    metavar="N",
    help="Fit on the first N principal axes of the columns (for more columns than rows, "
    "e.g. gene expression); the model file records the projection and predict/score apply "
    "it. Memory engine.",
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
    "--outlier-scores",
    metavar="PATH",
    help="--family t: write a CSV of cluster, u (the row's expected weight under its "
    "component: small for rows the fit discounts) and log_density, one row per input row.",
)
@option(
    "--top-words",
    metavar="PATH",
    type=PATH,
    help="Documents: write CSV cluster,rank,word,probability, the --n-top-words most "
    "probable words of each cluster ('-' for stdout).",
)
@option(
    "--n-top-words",
    type=click.IntRange(min=1),
    default=10,
    show_default=True,
    metavar="N",
    help="Words per cluster in --top-words and in the summary.",
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
def fit(
    ctx: click.Context, input: str, k_spec: str | None, covariance_spec: str, **options: Any
) -> None:
    """Fit a mixture to INPUT (.csv, .tsv, .parquet, or - for stdin).

    Gaussian by default; --family t fits multivariate t components (heavy tails, robust
    to outliers; --df, --df-shared, --outlier-scores); --family categorical, bernoulli,
    poisson or mixed fit tables of text, boolean, count and numeric columns (latent class
    analysis for categorical); documents (one per line of a .txt file, a --text-column, or
    an .mtx count matrix) are clustered by a mixture of multinomials (topics).

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
      emcli fit sample_data/faithful.csv            # k = 1..9, all 14 models, by BIC
      emcli fit today.csv -k 3 --init yesterday.json --params today.json
      emcli fit sample_data/penguins.csv -k 3 --family mixed --params penguins.json
      emcli fit sample_data/eustock_returns.csv -k 1..3 --family t --outlier-scores u.csv
      emcli fit sample_data/books.csv --text-column text -k 6 --top-words -
    """
    given = {name for name in ctx.params if ctx.get_parameter_source(name) not in DEFAULTS}
    from .. import workers  # the standard library only: no numpy yet

    if input == "-" or os.path.exists(input):  # else the run stops at once: no workers
        early_prestart(k_spec, covariance_spec, options, given)
    try:
        run_fit(build_config(input, k_spec, covariance_spec, options, given))
    finally:
        workers.discard_prestarted()  # any that no selection took


# ---------------------------------------------------------------------------- the pipeline
def run_fit(config: FitConfig) -> None:
    """Fit as ``config`` says and write its outputs (all of them, or none on failure)."""
    from ..data.writers import OutputSet
    from .outputs import DIR_NAMES, plan_outputs
    from .rows import carrier_for

    engine_name = choose(config) if config.documents is None else document_engine(config)
    outputs = OutputSet()
    paths = plan_outputs(
        outputs, config.paths, config.output_dir, {**DIR_NAMES, "params": "params.json"}
    )
    check_run(config, engine_name, paths)
    carrier = carrier_for(config.source, config.carry, paths)
    from .. import workers

    if config.n_candidates > 1 and engine_name == "memory":
        workers.prestart(config.jobs, config.n_candidates)  # they start as the data is read
        try:
            _fit_and_write(config, engine_name, outputs, paths, carrier)
        finally:
            workers.discard_prestarted()  # the run ended before its selection took them
    else:
        workers.discard_prestarted()  # started early for a selection this run does not make
        _fit_and_write(config, engine_name, outputs, paths, carrier)


def _fit_and_write(
    config: FitConfig, engine_name: str, outputs: Any, paths: Any, carrier: Any
) -> None:
    """``run_fit`` once its outputs are planned: read, fit, write, and the summary."""
    from ..engines.choose import open_engine
    from .display import echo_notes, print_summary, stderr_console
    from .rows import column_notes

    start = warm_start_model(config)
    if config.documents is not None:
        opened = open_corpus(config, engine_name, start)
    else:
        encode = encoding(config, engine_name, start)
        opened = open_engine(engine_name, config.source.path, **config.engine_options(), **encode)
    with opened as engine:
        echo_notes(engine.notes, config.quiet)
        if config.documents is None:
            column_notes(engine, config.source.columns, config.quiet, config.verbose)
        if config.default_grid:
            models = (
                "mclust's 14 covariance models"
                if config.kinds == ["all"]
                else ("--covariance " + ",".join(config.kinds))
            )
            grid = (
                f"no -k given: selecting over k = {DEFAULT_COMPONENTS} by "
                f"{config.criterion.upper()}; give -k K to fit one"
                if config.documents is not None or config.family == "multinomial"
                else f"no -k given: selecting over k = {DEFAULT_COMPONENTS} and {models} "
                f"by {config.criterion.upper()} (as mclust's Mclust); give -k K to fit one"
            )
            echo_notes([grid], config.quiet)
        model, candidates = fit_model(engine, engine_name, config, start)
        stage_outputs(outputs, paths, model, engine, candidates, carrier, config.n_top_words)
        outputs.commit()
    if not config.quiet and (sys.stderr.isatty() or not paths):
        print_summary(stderr_console(), model, config.n_top_words)


def document_engine(config: FitConfig) -> str:
    """The engine of a fit of documents: memory unless --engine stream is asked for."""
    engine = config.engine or ("dask" if config.scheduler else _documents_by_size(config))
    if config.scheduler and engine != "dask":
        raise UsageError(f"--scheduler is for --engine dask, not --engine {engine}")
    if engine == "dask" and config.documents.fmt != "text":
        raise UsageError(
            "--engine dask reads documents from a text file, one per line; a table's "
            "--text-column or an .mtx runs on --engine memory or stream"
        )
    if engine != "memory" and config.n_candidates > 1:
        raise UsageError(
            "model selection over a range of -k runs on the memory engine; with --engine "
            f"{engine} fit one -k per run"
        )
    return engine


def _documents_by_size(config: FitConfig) -> str:
    """memory, or stream (with a note) for a text file larger than the memory limit (the
    texts, then their counts, are held in memory otherwise)."""
    from ..engines.choose import default_memory_limit, format_size

    docs = config.documents
    if docs.path == "-" or docs.counts_given or not os.path.isfile(docs.path):
        return "memory"
    limit = config.memory_limit or default_memory_limit()
    size = os.path.getsize(docs.path)
    if size <= limit or config.n_candidates > 1:
        return "memory"
    if not config.quiet:
        origin = "--memory-limit" if config.memory_limit else "half the physical memory"
        click.echo(
            f"Note: the documents take {format_size(size)}, more than the limit of "
            f"{format_size(limit)} ({origin}): using --engine stream",
            err=True,
        )
    return "stream"


def open_corpus(config: FitConfig, engine_name: str, start: Any) -> Any:
    """The engine over the documents: a warm start counts in its model's vocabulary, with
    its model's tokeniser unless tokenising options are given."""
    from ..engines.documents import open_documents

    vocabulary = tokeniser = None
    if start is not None:
        if start.family_name != "multinomial":
            raise UsageError(
                f"the --init model is of family {start.family_name!r}; documents need a "
                "multinomial model"
            )
        vocabulary = list(start.family.vocabulary)
        tokeniser = start.family.tokeniser
    if config.tokeniser is not None:
        tokeniser = config.tokeniser
    return open_documents(
        engine_name,
        config.documents,
        tokeniser,
        vocabulary,
        block_rows=config.block_rows,
        scheduler=config.scheduler,
    )


def encoding(config: FitConfig, engine_name: str, start: Any) -> dict[str, Any]:
    """How the memory engine encodes text, boolean and count columns for a product family
    (``emcli.data.encode``), as keyword arguments of ``open_engine``; {} for the Gaussian."""
    from ..data.encode import ENCODED_FAMILIES

    family = config.family or (start.family_name if start is not None else None)
    if family not in ENCODED_FAMILIES:
        return {}
    if engine_name == "dask" and family in ("categorical", "mixed"):
        raise UsageError(
            f"--family {family} reads text columns with --engine memory or stream, not dask "
            "(the dask engine takes --family bernoulli and poisson)"
        )
    if engine_name == "dask":
        return {}
    like = getattr(start.family, "columns", None) if start is not None else None
    return {"encode": {"family": family, "types": config.types, "like": like}}


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
    if config.documents is not None:
        for key, flag in (("with_input", "--with-input"), ("id_column", "--id-column")):
            if config.carry.get(key):
                raise UsageError(
                    f"{flag} carries input columns of a table; documents have none (the "
                    "labels are in input order, one row per document)"
                )
        if "imputed" in paths:
            raise UsageError("--imputed fills missing cells of a table; documents have none")
    if "selection" in paths and config.n_candidates == 1:
        raise UsageError("--selection needs a range of -k or several --covariance types")
    if "imputed" in paths and engine_name != "memory":
        raise UsageError(
            f"--imputed needs every row in memory; with --engine {engine_name} leave it out, "
            "or use --engine memory"
        )
    if "outlier_scores" in paths and config.family != "t":
        raise UsageError(
            "--outlier-scores writes the expected weight u of each row under a t mixture; "
            "add --family t"
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
    elif start is not None and start.family_name != "gaussian":
        settings["family"] = start.family_name
    if config.alpha is not None:
        settings["alpha"] = config.alpha
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
            model = api.fit_engine(
                engine, config.ks[0], monitor=display, refuse_singular=True, **settings
            )
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
    if getattr(engine, "schema", None) is not None:  # encoded columns: their kinds, levels
        settings = {**settings, "schema": engine.schema}
    if getattr(engine, "tokeniser", None) is not None:  # documents: their tokeniser
        settings = {**settings, "tokeniser": engine.tokeniser}

    def on_candidate(i: int, total: int, cand: Any) -> None:
        ll = cand.row()["log_likelihood"]
        display.candidate(
            i,
            total,
            f"k={cand.n_components} {cand.covariance_type} "
            f"log-lik {'-' if ll is None else f'{ll:.4f}'}",
        )

    kinds, skipped = list(config.kinds), list[str]()
    if (config.family or "gaussian") in ("gaussian", "t"):
        from ..families.gaussian.models import covariance_grid

        width = settings.get("pca") or engine.x.shape[1]
        try:
            kinds, skipped = covariance_grid(kinds, engine.x.shape[0], width)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    with display:
        winner, candidates = select(
            engine.x,
            engine.columns,
            config.ks,
            kinds,
            skipped=skipped,
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
    n_top_words: int = 10,
) -> None:
    """Every CSV/JSON output of the fit, written when ``outputs`` commits."""
    from ..data.writers import write_csv
    from .outputs import (
        add_outlier_scores,
        add_row_outputs,
        add_text,
        add_top_words,
        write_selection,
    )

    add_row_outputs(outputs, paths, model, engine, carrier)
    if "imputed" in paths:  # the memory engine (check_run): every row is in engine.x
        filled = model.impute(engine.x)
        columns = {name: filled[:, j] for j, name in enumerate(engine.columns)}
        if hasattr(model.family, "decode"):  # level labels, not their codes
            columns = dict(zip(engine.columns, model.family.decode(filled).values(), strict=True))
        outputs.add(paths["imputed"], lambda handle: write_csv(handle, columns))
    if "outlier_scores" in paths:
        add_outlier_scores(outputs, paths["outlier_scores"], model, engine)
    if "top_words" in paths:
        add_top_words(outputs, paths["top_words"], model, n_top_words)
    if "params" in paths:
        add_text(outputs, paths["params"], model.to_json())
    if candidates is not None and "selection" in paths:
        outputs.add(paths["selection"], lambda handle: write_selection(handle, candidates))

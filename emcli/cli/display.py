"""What a person reads: progress on stderr (a live rich display at a terminal, plain lines
for logs, or nothing), notes and warnings, and the summaries of a fit, a selection and a
model file.  rich is imported here only, inside the functions (``emcli --help`` stays fast).

Progress, notes and summaries go to stderr; ``print_description`` (``emcli describe``) is the
one printer for stdout, where it is the data a user asked for.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from typing import Any

import click

from ..em import SilentMonitor, StartResult
from .options import in_flags


def echo_notes(messages: list[str], quiet: bool) -> None:
    """``Note: ...`` lines on stderr (none with --quiet); ``{parameter}`` names as flags."""
    if not quiet:
        for message in messages:
            click.echo(f"Note: {in_flags(message)}", err=True)


def echo_warnings(messages: list[str]) -> None:
    """``Warning: ...`` lines on stderr, shown even with --quiet."""
    for message in messages:
        click.echo(f"Warning: {in_flags(message)}", err=True)


def stderr_console(force_plain: bool = False):
    from rich.console import Console

    plain = force_plain or not sys.stderr.isatty()
    return Console(
        stderr=True,
        force_terminal=None if not plain else False,
        no_color=plain,
        highlight=False,
        soft_wrap=True,
        width=LOG_WIDTH if plain else None,  # logs whole, not cut to 80 columns
    )


# The width of rich output that is not going to a terminal (a pipe, a log file, cron): wide
# enough that no table or line is cut; tables still take only the width they need.
LOG_WIDTH = 10_000


class NullDisplay(SilentMonitor):
    """The silent twin: pipes, cron, --quiet."""

    def __enter__(self) -> NullDisplay:
        return self

    def __exit__(self, *exc: Any) -> None:
        pass

    def candidate(self, index: int, total: int, label: str) -> None:
        pass


class LineDisplay(NullDisplay):
    """One plain line per iteration on stderr (``-v`` where stderr is not a terminal)."""

    def __init__(self) -> None:
        self.t0 = time.perf_counter()

    def candidate(self, index: int, total: int, label: str) -> None:
        sys.stderr.write(f"{index + 1}/{total} candidates done; last: {label}\n")
        sys.stderr.flush()

    def start(self, start: int, n_starts: int) -> None:
        self.n_starts = n_starts

    def iteration(self, start: int, n_iter: int, log_likelihood: float, delta: float) -> None:
        d = "" if math.isnan(delta) else f" delta {delta:.6g}"
        sys.stderr.write(
            f"start {start + 1}/{self.n_starts} iter {n_iter} "
            f"log-likelihood {log_likelihood:.10g}{d} "
            f"elapsed {time.perf_counter() - self.t0:.2f}s\n"
        )

    def end(self, result: StartResult) -> None:
        state = _state(result)
        ll = f"{result.log_likelihood:.10g}" if result.usable else "-"
        sys.stderr.write(
            f"start {result.start + 1} done: {result.n_iter} iterations, "
            f"log-likelihood {ll}, {state}\n"
        )
        sys.stderr.flush()


def _state(result: StartResult) -> str:
    if not result.usable:
        return f"failed ({result.error})"
    if result.collapsed:
        return "collapsed"
    return "converged" if result.converged else "not converged"


class LiveDisplay(NullDisplay):
    """rich live display at a terminal: one row per EM start (starts may run in parallel)
    with its iteration, log-likelihood, change and state, then the best so far."""

    SHOWN = 8  # rows of starts on screen; finished starts scroll off first

    def __init__(self, console) -> None:
        from rich.live import Live

        self.console = console
        self.t0 = time.perf_counter()
        self.live = Live(console=console, refresh_per_second=8, transient=True)
        self.rows: dict[int, dict[str, Any]] = {}
        self.n_starts = 1
        self.best: float | None = None
        self.title = ""

    def __enter__(self) -> LiveDisplay:
        self.live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.live.__exit__(*exc)

    def candidate(self, index: int, total: int, label: str) -> None:
        self.title = f"{index + 1}/{total} candidates done; last: {label}"
        self.rows.clear()
        self.best = None
        self._refresh()

    def start(self, start: int, n_starts: int) -> None:
        self.n_starts = n_starts
        self.rows[start] = {"iter": 0, "ll": None, "delta": math.nan, "state": "running"}
        self._refresh()

    def iteration(self, start: int, n_iter: int, log_likelihood: float, delta: float) -> None:
        row = self.rows.setdefault(start, {"state": "running"})
        row.update(iter=n_iter, ll=log_likelihood, delta=delta)
        self._refresh()

    def end(self, result: StartResult) -> None:
        row = self.rows.setdefault(
            result.start, {"iter": result.n_iter, "ll": None, "delta": math.nan}
        )
        row["state"] = _state(result)
        if (
            result.usable
            and not result.collapsed
            and (self.best is None or result.log_likelihood > self.best)
        ):
            self.best = result.log_likelihood
        self._refresh()

    def _refresh(self) -> None:
        from rich import box
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
        for name in ("start", "iter", "log-likelihood", "change", "state"):
            table.add_column(name, justify="left" if name == "state" else "right")
        running = [i for i, r in self.rows.items() if r["state"] == "running"]
        done = [i for i in self.rows if i not in running]
        shown = sorted((done[-max(0, self.SHOWN - len(running)) :] if done else []) + running)
        for i in shown:
            r = self.rows[i]
            table.add_row(
                f"{i + 1}/{self.n_starts}",
                str(r.get("iter", 0)),
                "-" if r.get("ll") is None else f"{r['ll']:.6f}",
                "" if math.isnan(r.get("delta", math.nan)) else f"{r['delta']:+.3e}",
                r["state"],
            )
        elapsed = f"{time.perf_counter() - self.t0:.1f}s"
        parts: list[Any] = [Text(self.title, style="bold")] if self.title else []
        if self.rows:  # starts of this fit (in a selection: when candidates run one by one)
            best = "-" if self.best is None else f"{self.best:.6f}"
            parts += [
                table,
                Text(
                    f"best {best}   {len(done)}/{self.n_starts} starts done   {elapsed}",
                    style="cyan",
                ),
            ]
        else:
            parts.append(Text(elapsed, style="cyan"))
        self.live.update(Group(*parts))


def make_display(quiet: bool, verbose: bool) -> NullDisplay:
    """Live display at a terminal, plain lines with -v elsewhere, else nothing."""
    if quiet:
        return NullDisplay()
    if sys.stderr.isatty():
        return LiveDisplay(stderr_console())
    if verbose:
        return LineDisplay()
    return NullDisplay()


def print_summary(console, model, n_top_words: int = 10) -> None:
    """The result at a glance: figures of the fit and a row per component."""
    from rich import box
    from rich.table import Table

    plain = not console.is_terminal
    state = "converged" if model.converged else "NOT converged"
    if model.collapsed:
        state += ", DEGENERATE (collapsed component)"
    if model.family_name == "multinomial":
        _document_summary(console, model, state, plain, n_top_words)
        return
    kind = _model_kind(model.family_name, model.covariance_type)
    console.print(
        f"{model.n_components} component(s), {kind}, "
        f"{model.n_samples} rows x {model.n_features} columns"
    )
    if not hasattr(model.params, "full_covariances"):  # a product family (categorical, ...)
        console.print(
            f"log-likelihood {model.log_likelihood:.6f}, BIC {model.bic:.4f}, AIC "
            f"{model.aic:.4f}, {model.n_iter} iterations, {state}"
        )
        rows = model.family.describe(model.params, model.columns)
        console.print(_component_table(rows, model.columns, plain))
        return
    console.print(
        f"log-likelihood {model.log_likelihood:.6f}, BIC {model.bic:.4f}, AIC {model.aic:.4f}, "
        f"{model.n_iter} iterations, {state}"
    )
    if model.family_name == "t":
        console.print(t_line(list(model.params.df)))
    # As many columns as fit the terminal (about 24 characters per mean/sd pair).
    shown = model.columns[: max(1, min(6, (console.width - 22) // 24))]
    table = Table(box=box.ASCII if plain else box.SIMPLE_HEAD, show_edge=not plain)
    table.add_column("component", justify="right")
    table.add_column("weight", justify="right")
    for name in shown:
        table.add_column(f"mean {name}", justify="right")
        table.add_column(f"sd {name}", justify="right")
    full = model.params.full_covariances()
    for j in range(model.n_components):
        cells = [str(j), f"{model.weights[j]:.4f}"]
        for c in range(len(shown)):
            cells += [f"{model.means[j, c]:.4g}", f"{math.sqrt(full[j, c, c]):.4g}"]
        table.add_row(*cells)
    console.print(table)
    if len(model.columns) > len(shown):
        console.print(f"({len(model.columns) - len(shown)} more column(s) in --params)")


def _document_summary(console: Any, model: Any, state: str, plain: bool, n_words: int = 10) -> None:
    """A document mixture: its figures, then each cluster's weight and top words."""
    from rich import box
    from rich.table import Table

    console.print(
        f"{model.n_components} cluster(s), multinomial (documents), {model.n_samples} "
        f"documents x {model.n_features} terms, alpha {model.family.alpha:g}"
    )
    console.print(
        f"log-likelihood {model.log_likelihood:.6f}, BIC {model.bic:.4f}, AIC "
        f"{model.aic:.4f}, {model.n_iter} iterations, {state}"
    )
    table = Table(box=box.ASCII if plain else box.SIMPLE_HEAD, show_edge=not plain)
    table.add_column("cluster", justify="right")
    table.add_column("weight", justify="right")
    table.add_column("top words", justify="left")
    for j, words in enumerate(model.family.top_words(model.params, n_words)):
        table.add_row(str(j), f"{model.weights[j]:.4f}", " ".join(w for w, _ in words))
    console.print(table)


def t_line(df: list[Any]) -> str:
    """The t family's line: what mean and sd are, and each component's degrees of freedom."""
    values = ", ".join("-" if v is None else f"{float(v):.4g}" for v in df)
    return f"Student-t components (mean: location, sd: of the scale matrix); df {values}"


TERMINAL_ROWS = 15


def print_selection(console, candidates, winner, criterion: str) -> None:
    """The candidates ranked by the criterion, the winner marked, the runner-up's margin."""
    from rich import box
    from rich.table import Table

    plain = not console.is_terminal
    table = Table(
        box=box.ASCII if plain else box.SIMPLE_HEAD,
        show_edge=not plain,
        title=f"model selection by {criterion.upper()} (lower is better)",
    )
    for name in ("", "k", "covariance", "log-likelihood", "params", "BIC", "ICL", "AIC", "note"):
        table.add_column(name, justify="left" if name in ("covariance", "note") else "right")

    def key(c):
        v = c.criterion(criterion)
        return (v is None, v if v is not None else 0.0, c.covariance_type, c.n_components)

    def fmt(v):
        return "-" if v is None else f"{v:.3f}"

    ranked_rows = sorted(candidates, key=key)
    # At a terminal the best TERMINAL_ROWS (a grid of 126 does not fit a screen); the log
    # and the --selection file have them all.
    shown = ranked_rows if plain else ranked_rows[:TERMINAL_ROWS]
    for c in shown:
        row = c.row()
        table.add_row(
            "*" if c is winner else "",
            str(c.n_components),
            c.covariance_type,
            fmt(row["log_likelihood"]),
            str(row["n_parameters"] or "-"),
            fmt(row["bic"]),
            fmt(row["icl"]),
            fmt(row["aic"]),
            row["reason"] if plain else row["reason"][:60],
        )
    console.print(table)
    if len(shown) < len(ranked_rows):
        console.print(
            f"({len(ranked_rows) - len(shown)} more candidates, worse or not fitted: "
            "--selection PATH writes the whole table)"
        )
    ranked = sorted(v for v in (c.criterion(criterion) for c in candidates) if v is not None)
    if winner is not None:
        margin = f"; runner-up {ranked[1] - ranked[0]:.3f} worse" if len(ranked) > 1 else ""
        console.print(
            f"winner: k={winner.n_components}, {winner.covariance_type} "
            f"({criterion.upper()} {ranked[0]:.3f}{margin})"
        )


def print_description(s: dict[str, Any]) -> None:
    """``emcli describe``: the summary of a model file, on stdout (``apply.describe``)."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    console = Console(file=sys.stdout, highlight=False, soft_wrap=True)
    plain = not console.is_terminal
    if plain:
        console = Console(file=sys.stdout, highlight=False, soft_wrap=True, width=LOG_WIDTH)
    out: Callable[..., None] = console.print
    state = "converged" if s["converged"] else "NOT converged"
    if s["degenerate"]:
        state += f", DEGENERATE (collapsed: {', '.join(map(str, s['collapsed_components']))})"
    mean = s["mean_log_likelihood"]
    name = s.get("model_name")
    kind = s["covariance_type"]
    if s["family"] == "multinomial":  # documents: the vocabulary is too long to list
        out(
            f"{s['n_components']} cluster(s), multinomial (documents), a vocabulary of "
            f"{s['n_features']} terms"
        )
    else:
        out(
            f"{s['n_components']} component(s), {_model_kind(s['family'], kind)}, "
            f"{s['n_features']} column(s): {', '.join(s['columns'])}"
        )
    out(
        f"fitted on {s['n_samples']} rows: log-likelihood {s['log_likelihood']:.6f}"
        + (f" ({mean:.6f} per row)" if mean is not None else "")
        + f", {s['n_parameters']} parameters, BIC {s['bic']:.4f}, AIC {s['aic']:.4f}"
    )
    start = "" if s["best_start"] is None else f", best start {s['best_start']}"
    out(
        f"EM: {s['n_iter']} iterations, {state}; {s['n_starts']} start(s){start}"
        + (", re-seeded after collapses" if s["reseeded"] else "")
    )
    if s["settings"]:
        out("settings: " + ", ".join(f"{k} {v}" for k, v in s["settings"].items()))
    sel = s.get("selection")
    if sel:
        winner = sel.get("winner") or {}
        margin = sel.get("runner_up_margin")
        out(
            f"selection: by {str(sel.get('criterion')).upper()} among {sel['n_candidates']} "
            f"candidates, winner k={winner.get('components')} {winner.get('covariance')}"
            + (f", runner-up {margin:.3f} worse" if margin is not None else "")
        )
    if s["family"] == "t":
        out(t_line([c.get("df") for c in s["components"]]))
    if s["family"] == "multinomial":
        table = Table(box=box.ASCII if plain else box.SIMPLE_HEAD, show_edge=not plain)
        for name in ("cluster", "weight", "top words"):
            table.add_column(name, justify="left" if name == "top words" else "right")
        for comp in s["components"]:
            table.add_row(str(comp["component"]), f"{comp['weight']:.4f}", comp["top_words"])
        out(table)
        for note in s["notes"]:
            out(f"note: {note}")
        for warning in s["warnings"]:
            out(f"warning: {warning}")
        return
    if any("mean" not in comp or len(comp["mean"]) < len(s["columns"]) for comp in s["components"]):
        out(_component_table(s["components"], s["columns"], plain))
        for note in s["notes"]:
            out(f"note: {note}")
        for warning in s["warnings"]:
            out(f"warning: {warning}")
        return
    table = Table(box=box.ASCII if plain else box.SIMPLE_HEAD, show_edge=not plain)
    wide = s["n_features"] <= 2  # else one row per (component, column): any width fits
    for name in (
        ["component", "weight"] + [f"{t} {c}" for c in s["columns"] for t in ("mean", "sd")]
        if wide
        else ["component", "weight", "column", "mean", "sd"]
    ):
        table.add_column(name, justify="left" if name == "column" else "right")
    for comp in s["components"]:
        head = [str(comp["component"]), f"{comp['weight']:.4f}"]
        if wide:
            table.add_row(
                *head, *(f"{comp[t][c]:.4g}" for c in s["columns"] for t in ("mean", "sd"))
            )
            continue
        for i, c in enumerate(s["columns"]):
            table.add_row(
                *(head if i == 0 else ["", ""]), c, f"{comp['mean'][c]:.4g}", f"{comp['sd'][c]:.4g}"
            )
    out(table)
    if name and s["n_features"] > 1:
        out(
            f"covariance model mclust {name} ({s.get('model_description')}); "
            "geometry (Sigma = volume x D diag(shape) D^T): "
            + "; ".join(
                f"{c['component']}: volume {c['volume']:.4g}, shape "
                + "/".join(f"{v:.3g}" for v in c["shape"])
                for c in s["components"]
            )
        )
    for note in s["notes"]:
        out(f"note: {note}")
    for warning in s["warnings"]:
        out(f"warning: {warning}")


def _model_kind(family: str, covariance_type: str | None) -> str:
    if family == "gaussian":
        return f"{covariance_type} covariance"
    return f"{family} family" + (f" ({covariance_type} Gaussian block)" if covariance_type else "")


def _component_table(components: list[dict[str, Any]], columns: list[str], plain: bool) -> Any:
    """One row per (component, column) of a product family: the most likely level and its
    probability, the probability of a 1, the rate, or the mean and sd."""
    from rich import box
    from rich.table import Table

    table = Table(box=box.ASCII if plain else box.SIMPLE_HEAD, show_edge=not plain)
    for name in ("component", "weight", "column", "estimate", "spread"):
        table.add_column(name, justify="left" if name in ("column", "estimate") else "right")
    for comp in components:
        head = [str(comp["component"]), f"{comp['weight']:.4f}"]
        for i, c in enumerate(columns):
            if c in comp.get("levels", {}):
                best = comp["levels"][c]
                cells = [f"{best['level']} (p {best['probability']:.3f})", ""]
            elif c in comp.get("p", {}):
                cells = [f"P(1) {comp['p'][c]:.4g}", ""]
            elif c in comp.get("rate", {}):
                cells = [f"rate {comp['rate'][c]:.4g}", ""]
            else:
                cells = [f"mean {comp['mean'][c]:.4g}", f"sd {comp['sd'][c]:.4g}"]
            table.add_row(*(head if i == 0 else ["", ""]), c, *cells)
    return table

"""Progress on stderr: a live rich display at a terminal, plain lines for logs, or nothing.

stdout is never touched here: it carries only the data a user asked for.
"""

from __future__ import annotations

import math
import sys
import time
from typing import Any

from .em import SilentMonitor, StartResult


def stderr_console(force_plain: bool = False):
    from rich.console import Console

    plain = force_plain or not sys.stderr.isatty()
    return Console(stderr=True, force_terminal=None if not plain else False,
                   no_color=plain, highlight=False, soft_wrap=True)


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
        self.prefix = ""

    def candidate(self, index: int, total: int, label: str) -> None:
        self.prefix = f"candidate {index + 1}/{total} {label} "

    def start(self, start: int, n_starts: int) -> None:
        self.n_starts = n_starts

    def iteration(self, start: int, n_iter: int, log_likelihood: float, delta: float) -> None:
        d = "" if math.isnan(delta) else f" delta {delta:.6g}"
        sys.stderr.write(
            f"{self.prefix}start {start + 1}/{self.n_starts} iter {n_iter} "
            f"log-likelihood {log_likelihood:.10g}{d} "
            f"elapsed {time.perf_counter() - self.t0:.2f}s\n"
        )

    def end(self, result: StartResult) -> None:
        state = _state(result)
        ll = f"{result.log_likelihood:.10g}" if result.usable else "-"
        sys.stderr.write(
            f"{self.prefix}start {result.start + 1} done: {result.n_iter} iterations, "
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
    """rich live display at a terminal: start i of N, iteration, log-likelihood, change."""

    def __init__(self, console) -> None:
        from rich.live import Live

        self.console = console
        self.t0 = time.perf_counter()
        self.live = Live(console=console, refresh_per_second=8, transient=True)
        self.state: dict[str, Any] = {"start": 0, "n_starts": 1, "iter": 0, "ll": None,
                                      "delta": math.nan, "best": None, "candidate": ""}

    def __enter__(self) -> LiveDisplay:
        self.live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.live.__exit__(*exc)

    def candidate(self, index: int, total: int, label: str) -> None:
        self.state["candidate"] = f"candidate {index + 1}/{total}  {label}   "
        self.state["best"] = None
        self._refresh()

    def start(self, start: int, n_starts: int) -> None:
        self.state.update(start=start, n_starts=n_starts, iter=0, ll=None, delta=math.nan)
        self._refresh()

    def iteration(self, start: int, n_iter: int, log_likelihood: float, delta: float) -> None:
        self.state.update(iter=n_iter, ll=log_likelihood, delta=delta)
        self._refresh()

    def end(self, result: StartResult) -> None:
        best = self.state["best"]
        better = best is None or result.log_likelihood > best
        if result.usable and not result.collapsed and better:
            self.state["best"] = result.log_likelihood
        self._refresh()

    def _refresh(self) -> None:
        from rich.text import Text

        s = self.state
        ll = "-" if s["ll"] is None else f"{s['ll']:.6f}"
        delta = "" if math.isnan(s["delta"]) else f"{s['delta']:+.3e}"
        best = "" if s["best"] is None else f"   best {s['best']:.6f}"
        line = (
            f"{s['candidate']}start {s['start'] + 1}/{s['n_starts']}   iter {s['iter']:>4}   "
            f"log-lik {ll}  {delta}{best}   {time.perf_counter() - self.t0:6.1f}s"
        )
        self.live.update(Text(line, style="cyan"))


def make_display(quiet: bool, verbose: bool) -> NullDisplay:
    """Live display at a terminal, plain lines with -v elsewhere, else nothing."""
    if quiet:
        return NullDisplay()
    if sys.stderr.isatty():
        return LiveDisplay(stderr_console())
    if verbose:
        return LineDisplay()
    return NullDisplay()


def print_summary(console, model) -> None:
    """The result at a glance: figures of the fit and a row per component."""
    from rich import box
    from rich.table import Table

    plain = not console.is_terminal
    state = "converged" if model.converged else "NOT converged"
    if model.collapsed:
        state += ", DEGENERATE (collapsed component)"
    console.print(
        f"{model.n_components} component(s), {model.covariance_type} covariance, "
        f"{model.n_samples} rows x {model.n_features} columns: "
        f"log-likelihood {model.log_likelihood:.6f}, BIC {model.bic:.4f}, AIC {model.aic:.4f}, "
        f"{model.n_iter} iterations, {state}"
    )
    shown = model.columns[:6]
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


def print_selection(console, candidates, winner, criterion: str) -> None:
    """The candidates ranked by the criterion, the winner marked, the runner-up's margin."""
    from rich import box
    from rich.table import Table

    plain = not console.is_terminal
    table = Table(box=box.ASCII if plain else box.SIMPLE_HEAD, show_edge=not plain,
                  title=f"model selection by {criterion.upper()} (lower is better)")
    for name in ("", "k", "covariance", "log-likelihood", "params", "BIC", "ICL", "AIC", "note"):
        table.add_column(name, justify="left" if name in ("covariance", "note") else "right")

    def key(c):
        v = c.criterion(criterion)
        return (v is None, v if v is not None else 0.0, c.covariance_type, c.n_components)

    def fmt(v):
        return "-" if v is None else f"{v:.3f}"

    for c in sorted(candidates, key=key):
        row = c.row()
        table.add_row("*" if c is winner else "", str(c.n_components), c.covariance_type,
                      fmt(row["log_likelihood"]), str(row["n_parameters"] or "-"),
                      fmt(row["bic"]), fmt(row["icl"]), fmt(row["aic"]),
                      row["reason"][:60])
    console.print(table)
    ranked = sorted(v for v in (c.criterion(criterion) for c in candidates) if v is not None)
    if winner is not None:
        margin = f"; runner-up {ranked[1] - ranked[0]:.3f} worse" if len(ranked) > 1 else ""
        console.print(f"winner: k={winner.n_components}, {winner.covariance_type} "
                      f"({criterion.upper()} {ranked[0]:.3f}{margin})")

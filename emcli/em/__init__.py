"""The EM driver (starts, the loop, the best start, reseeding), its monitor, SQUAREM,
starting values and model selection.  Generic over families and engines."""

from .driver import EMSettings, FitOutcome, StartResult, fit_em, likelihood_decreases, run_em
from .monitor import Monitor, SilentMonitor

__all__ = [
    "EMSettings",
    "FitOutcome",
    "Monitor",
    "SilentMonitor",
    "StartResult",
    "fit_em",
    "likelihood_decreases",
    "run_em",
]

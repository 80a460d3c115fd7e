"""emcli: cluster tabular data with Expectation-Maximization for Gaussian mixtures.

The library behind the ``emcli`` command::

    import emcli
    model = emcli.fit(x, n_components=3)          # x: array or DataFrame
    labels = model.predict(x)
    topics = emcli.fit_documents(texts, n_components=20)   # texts: a list of strings
    model.save("model.json"); emcli.load("model.json")

Heavy modules (numpy, pyarrow) load on first use, so ``emcli --help`` stays fast.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_LAZY = {
    "fit": ("emcli.api", "fit"),
    "fit_file": ("emcli.api", "fit_file"),
    "fit_engine": ("emcli.api", "fit_engine"),
    "fit_documents": ("emcli.api", "fit_documents"),
    "MixtureModel": ("emcli.model", "MixtureModel"),
    "GaussianMixtureModel": ("emcli.model", "GaussianMixtureModel"),
    "read_table": ("emcli.data.reader", "read_table"),
    "EmcliError": ("emcli.errors", "EmcliError"),
    "DataError": ("emcli.errors", "DataError"),
    "FitError": ("emcli.errors", "FitError"),
    "ModelFileError": ("emcli.errors", "ModelFileError"),
}

__all__ = [*_LAZY, "load", "__version__"]


def _version() -> str:
    """The installed package's version (importlib.metadata: 15 ms of every run, so looked up
    when first asked for)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("emcli-mixture")
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "0+unknown"


def __getattr__(name: str) -> Any:
    if name == "__version__":
        value = globals()["__version__"] = _version()
        return value
    if name in _LAZY:
        module, attr = _LAZY[name]
        return getattr(import_module(module), attr)
    raise AttributeError(f"module 'emcli' has no attribute {name!r}")


def load(path: str) -> Any:
    """Load a model file written by ``emcli fit --params`` or ``model.save``."""
    from .model import GaussianMixtureModel

    return GaussianMixtureModel.load(path)

"""Mixture families and their registry.

A family (the contract is ``base.Family``) is one module or package here plus one line in
``_REGISTRY``: its name and where its class lives (imported on first use, so ``emcli --help``
stays fast).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_REGISTRY: dict[str, str] = {
    "gaussian": "emcli.families.gaussian.family:GaussianFamily",
    "categorical": "emcli.families.discrete.family:CategoricalFamily",
    "bernoulli": "emcli.families.discrete.family:BernoulliFamily",
    "poisson": "emcli.families.discrete.family:PoissonFamily",
    "mixed": "emcli.families.discrete.family:MixedFamily",
    "t": "emcli.families.t.family:TFamily",
    "multinomial": "emcli.families.multinomial.family:MultinomialFamily",
}
FAMILIES: tuple[str, ...] = tuple(_REGISTRY)


def family_class(name: str) -> Any:
    """The class of family ``name``.

    Raises:
        UsageError: no family of that name.
    """
    if name not in _REGISTRY:
        from ..errors import UsageError

        raise UsageError(f"unknown {{family}} {name!r}; choose from {', '.join(FAMILIES)}")
    module, attr = _REGISTRY[name].split(":")
    return getattr(import_module(module), attr)


def get_family(name: str = "gaussian", **settings: Any) -> Any:
    """A family object with its settings, e.g. ``get_family("gaussian", covariance_type="diag",
    reg_covar=1e-6)``."""
    return family_class(name)(**settings)

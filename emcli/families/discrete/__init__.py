"""Product families: categorical (latent class analysis), bernoulli, poisson and mixed."""

from .family import (
    BernoulliFamily,
    CategoricalFamily,
    MixedFamily,
    PoissonFamily,
    ProductFamily,
    ProductParams,
    ProductStats,
    default_columns,
)

__all__ = [
    "BernoulliFamily",
    "CategoricalFamily",
    "MixedFamily",
    "PoissonFamily",
    "ProductFamily",
    "ProductParams",
    "ProductStats",
    "default_columns",
]

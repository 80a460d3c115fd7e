"""The Student-t family: mixtures of multivariate t distributions (docs/t.md)."""

from .family import TFamily, TPlan, TStats
from .params import DF_BOUNDS, DF_START, TParams

__all__ = ["DF_BOUNDS", "DF_START", "TFamily", "TParams", "TPlan", "TStats"]

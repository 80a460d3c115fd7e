"""Document mixtures: the mixture of multinomials ("mixture of unigrams")."""

from .family import DEFAULT_ALPHA, MultinomialFamily, MultinomialParams

__all__ = ["DEFAULT_ALPHA", "MultinomialFamily", "MultinomialParams"]

"""Documents as a sparse count matrix: texts tokenised, or counts given as they are.

The multinomial family (``emcli.families.multinomial``) fits a CSR matrix of counts, one row
per document and one column per term of the vocabulary.  ``document_matrix`` builds it from
what ``emcli.fit`` is given (texts, a sparse or dense count matrix, a DataFrame of counts);
``check_counts`` is the data check of such a matrix (finite counts >= 0).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import DataError


def is_sparse(x: Any) -> bool:
    return hasattr(x, "tocsr") and hasattr(x, "nnz")


def _is_texts(x: Any) -> bool:
    if isinstance(x, (list, tuple)):
        return bool(x) and all(isinstance(d, str) for d in x)
    dtype = getattr(x, "dtype", None)
    if hasattr(x, "tolist") and getattr(x, "ndim", 2) == 1 and dtype is not None:
        return dtype.kind in "OUS"
    return False


def tokeniser_of(tokeniser: Any) -> Any:
    """A ``Tokeniser`` from None (the defaults), a dict (a model file's) or itself."""
    from .text import Tokeniser

    if tokeniser is None:
        return Tokeniser()
    if isinstance(tokeniser, dict):
        return Tokeniser.from_dict(tokeniser)
    return tokeniser


def document_matrix(
    x: Any, columns: Sequence[str] | None = None, tokeniser: Any = None
) -> tuple[Any, list[str], Any]:
    """(CSR counts (n, V), the vocabulary, the ``Tokeniser`` or None for given counts).

    ``x``: texts (a list, tuple or 1-D array/Series of strings; the vocabulary is built by
    ``tokeniser``'s rules), or counts (scipy sparse, a 2-D array, a DataFrame whose columns
    are the terms; ``columns`` names the terms, default the DataFrame's or w0, w1, ...).
    """
    import scipy.sparse as sp

    if _is_texts(x):
        from .text import build_vocabulary, count_matrix

        tok = tokeniser_of(tokeniser)
        tok.validate()
        docs = [str(d) for d in (x.tolist() if hasattr(x, "tolist") else x)]
        vocabulary = list(columns) if columns is not None else build_vocabulary(docs, tok)[0]
        return count_matrix(docs, vocabulary, tok), vocabulary, tok
    names: list[str] | None = None
    if hasattr(x, "columns") and hasattr(x, "to_numpy"):
        names = [str(c) for c in x.columns]
        x = x.to_numpy(dtype=np.float64, na_value=np.nan)
    if is_sparse(x):
        counts = sp.csr_matrix(x, dtype=np.float64)
    else:
        try:
            dense = np.asarray(x, dtype=np.float64)
        except (TypeError, ValueError):
            raise DataError(
                "documents must be texts (strings) or a matrix of counts (numbers)"
            ) from None
        if dense.ndim != 2:
            raise DataError(
                f"expected texts or a 2-D count matrix (documents x terms), got {dense.shape}"
            )
        counts = sp.csr_matrix(dense)
    counts.sort_indices()
    if columns is not None:
        names = [str(c) for c in columns]
    if names is None:
        names = [f"w{j}" for j in range(counts.shape[1])]
    if len(names) != counts.shape[1]:
        raise DataError(f"{len(names)} term names for {counts.shape[1]} columns of counts")
    if len(set(names)) != len(names):
        raise DataError("the vocabulary repeats a term; each column must be a distinct term")
    check_counts(counts)
    return counts, names, None


def check_counts(counts: Any) -> None:
    """DataError unless every count is a finite number >= 0 and there is a document."""
    data = counts.data
    if data.size and not np.all(np.isfinite(data)):
        raise DataError("the counts hold a missing or infinite value; counts must be finite")
    if data.size and float(data.min()) < 0:
        raise DataError("the counts hold a negative value; counts must be >= 0")
    if counts.shape[0] == 0:
        raise DataError("no document to fit")
    if counts.shape[1] == 0:
        raise DataError("the vocabulary is empty: no term to fit")


def empty_documents(counts: Any) -> int:
    """Documents with no term of the vocabulary (rows without a count > 0)."""
    return int(np.count_nonzero(np.asarray(counts.sum(axis=1)).ravel() <= 0))

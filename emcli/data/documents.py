"""Documents as a sparse count matrix: texts tokenised, or counts given as they are.

The multinomial family (``emcli.families.multinomial``) fits a CSR matrix of counts, one row
per document and one column per term of the vocabulary.  ``document_matrix`` builds it from
what ``emcli.fit`` is given (texts, a sparse or dense count matrix, a DataFrame of counts);
``check_counts`` is the data check of such a matrix (finite counts >= 0).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
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


# ---------------------------------------------------------------------------- files
# The formats that hold only documents (a table holds them in --text-column).
DOCUMENT_ONLY_FORMATS = ("text", "mtx")
# Documents per block when reading or applying a model block by block.
BLOCK_DOCUMENTS = 8192


@dataclass(frozen=True)
class DocumentSource:
    """Where documents come from: one per line of a text file (``text``), a column of a
    table (``csv``, ``tsv``, ``parquet`` with ``text_column``), or a Matrix Market count
    matrix (``mtx``, with the terms in ``vocabulary_file``)."""

    path: str
    fmt: str
    text_column: str | None = None
    delimiter: str | None = None
    vocabulary_file: str | None = None
    weights: str | None = None  # a table's column of frequency weights (with text_column)

    @property
    def counts_given(self) -> bool:
        return self.fmt == "mtx"


def document_format(path: str, fmt: str | None, text_column: str | None) -> str | None:
    """The format of ``path`` when it holds documents (``text``, ``mtx``, or a table's
    format with ``text_column``), None when it is a table of numbers."""
    from pathlib import Path

    if fmt in DOCUMENT_ONLY_FORMATS:
        return fmt
    suffix = Path(path).suffix.lower() if path != "-" else ""
    if fmt is None and suffix == ".txt":
        return "text"
    if fmt is None and suffix == ".mtx":
        return "mtx"
    if text_column is not None:
        from .formats import detect_format

        return detect_format(path, fmt)
    return None


def read_weights(source: DocumentSource) -> Any:
    """The frequency weights of a table's documents (``source.weights``), one per row of
    its text column, as floats (checked: finite, >= 0, not all 0)."""
    from .text import read_documents

    if source.weights is None or source.text_column is None:
        raise DataError("frequency weights of documents come from a table's column")
    cells = read_documents(source.path, source.fmt, source.weights, source.delimiter)
    values = np.empty(len(cells))
    for i, cell in enumerate(cells):
        try:
            values[i] = float(cell) if cell.strip() else np.nan
        except ValueError:
            raise DataError(
                f"weights column '{source.weights}' holds {cell!r} at data row {i + 1}; "
                "weights must be numbers >= 0"
            ) from None
    bad = ~np.isfinite(values) | (values < 0)
    if bad.any():
        row = int(np.argmax(bad)) + 1
        raise DataError(
            f"weights column '{source.weights}' holds {cells[row - 1]!r} at data row {row}; "
            "weights must be finite numbers >= 0"
        )
    if values.size and not values.sum() > 0:
        raise DataError(f"every weight in column '{source.weights}' is 0: nothing to fit")
    return values


def read_corpus(
    source: DocumentSource, tokeniser: Any = None, vocabulary: Sequence[str] | None = None
) -> tuple[Any, list[str], Any, list[str]]:
    """(CSR counts, vocabulary, the Tokeniser or None, notes) of a whole input.

    With ``vocabulary`` (a warm start's or a model's) the texts are counted in it (terms
    outside it ignored); otherwise it is built by the tokeniser's rules.
    """
    from .text import build_vocabulary, count_matrix, read_documents, read_mtx, read_vocabulary

    if source.counts_given:
        counts = read_mtx(source.path)
        if source.vocabulary_file is not None:
            terms = read_vocabulary(source.vocabulary_file, counts.shape[1])
            notes = []
        else:
            terms = [f"w{j}" for j in range(counts.shape[1])]
            notes = [
                f"no {{vocabulary}} file: the {counts.shape[1]} terms are named w0, w1, ... "
                "(give one term per line to see words)"
            ]
        if vocabulary is not None and list(vocabulary) != terms:
            raise DataError(
                "the terms of the count matrix differ from the model's vocabulary; give the "
                "model's vocabulary file, in its order"
            )
        check_counts(counts)
        return counts, terms, None, notes
    tok = tokeniser_of(tokeniser)
    tok.validate()
    docs = read_documents(source.path, source.fmt, source.text_column, source.delimiter)
    if not docs:
        raise DataError(f"'{source.path}' holds no document")
    if vocabulary is None:
        vocabulary, _ = build_vocabulary(docs, tok)
    counts = count_matrix(docs, vocabulary, tok)
    notes = [
        f"{counts.shape[0]} documents, a vocabulary of {len(vocabulary)} terms "
        f"({counts.nnz} non-zero counts)"
    ]
    return counts, list(vocabulary), tok, notes


class DocumentBlocks:
    """The documents of an input as ``Block``s of CSR counts in a model's vocabulary, in
    input order (for predict and score); iterate once.  Texts are tokenised by the model's
    rules, block by block."""

    documents = True

    def __init__(self, source: DocumentSource, vocabulary: Sequence[str], tokeniser: Any) -> None:
        self.source = source
        self.columns = list(vocabulary)
        self.weights_column = None
        self.tokeniser = tokeniser_of(tokeniser) if tokeniser is not None else None
        if not source.counts_given and self.tokeniser is None:
            from ..errors import UsageError

            raise UsageError(
                "this model was fitted on a document-term matrix (.mtx), so it has no "
                "tokeniser: give counts in its vocabulary (.mtx), not texts"
            )

    def __iter__(self) -> Any:
        from .reader import Block
        from .text import count_matrix, iter_documents, read_documents, read_mtx

        first = 0
        if self.source.counts_given:
            counts = read_mtx(self.source.path)
            if counts.shape[1] != len(self.columns):
                raise DataError(
                    f"the count matrix has {counts.shape[1]} columns but the model's "
                    f"vocabulary has {len(self.columns)} terms"
                )
            check_counts(counts)
            for s in range(0, counts.shape[0], BLOCK_DOCUMENTS):
                yield Block(s, counts[s : s + BLOCK_DOCUMENTS], None)
            return
        src, tokeniser = self.source, self.tokeniser
        assert tokeniser is not None  # (texts need one: __init__)
        if src.path == "-":
            docs = read_documents(src.path, src.fmt, src.text_column, src.delimiter)
            parts: Any = (
                docs[s : s + BLOCK_DOCUMENTS] for s in range(0, len(docs), BLOCK_DOCUMENTS)
            )
        else:
            parts = iter_documents(
                src.path, src.fmt, src.text_column, src.delimiter, BLOCK_DOCUMENTS
            )
        for docs in parts:
            yield Block(first, count_matrix(docs, self.columns, tokeniser), None)
            first += len(docs)

    def close(self) -> None:
        return None

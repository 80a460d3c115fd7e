"""Engines over documents: their counts in memory (CSR), or streamed from disk in blocks.

``open_documents`` reads a corpus (``emcli.data.documents.DocumentSource``) for the
multinomial family.  ``memory``: the whole CSR count matrix in a ``MemoryEngine`` (memory
grows with the non-zero counts).  ``stream``: ``DocumentStreamEngine``, for corpora past
memory.  It takes two passes over the text when it opens: the first counts document
frequencies and builds the vocabulary (the same rules, so the same vocabulary, as in
memory), the second tokenises each block of documents once and spills its CSR counts to a
temporary file; every EM iteration then reads those blocks one at a time.  At most one block
of documents is in memory, plus the k x V statistics.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..data.documents import BLOCK_DOCUMENTS, DocumentSource, check_counts, read_corpus
from ..errors import DataError, UsageError
from .memory import MemoryEngine, reduce_rows

Array = NDArray[np.float64]


class DocumentStreamEngine:
    """EM over the documents of a text file or a table's text column, block by block
    (module docstring).

    Args:
        source: the input (a file: standard input and .mtx are the memory engine's).
        tokeniser: ``emcli.data.text.Tokeniser``.
        vocabulary: count in this vocabulary (a warm start's) instead of building one.
        block_rows: documents per block.
    """

    parallel_starts = False
    weights = None
    weights_column = None
    sparse = True

    def __init__(
        self,
        source: DocumentSource,
        tokeniser: Any,
        vocabulary: Sequence[str] | None = None,
        block_rows: int | None = None,
    ) -> None:
        from ..data.text import VocabularyCounter, count_matrix, iter_documents

        if source.path == "-":
            raise UsageError(
                "{engine} stream reads its input several times: give a file, not stdin"
            )
        if source.counts_given:
            raise UsageError("a .mtx count matrix is read whole: use {engine} memory")
        if source.weights is not None:
            raise UsageError("{weights} with documents needs {engine} memory")
        self.tokeniser = tokeniser
        self.block_rows = int(block_rows or BLOCK_DOCUMENTS)
        self.notes: list[str] = []

        def documents() -> Iterator[list[str]]:
            return iter_documents(
                source.path, source.fmt, source.text_column, source.delimiter, self.block_rows
            )

        if vocabulary is None:
            counter = VocabularyCounter(tokeniser)
            for docs in documents():
                counter.update(docs)
            vocabulary = counter.vocabulary()
        self.columns = list(vocabulary)
        self._dir: str | None = tempfile.mkdtemp(prefix="emcli-docs-")
        self._files: list[str] = []
        self._starts: list[int] = []
        n, nnz = 0, 0
        try:
            import scipy.sparse as sp

            for i, docs in enumerate(documents()):
                counts = count_matrix(docs, self.columns, tokeniser)
                check_counts(counts)
                path = os.path.join(self._dir, f"block{i:06d}.npz")
                sp.save_npz(path, counts, compressed=False)
                self._files.append(path)
                self._starts.append(n)
                n += counts.shape[0]
                nnz += counts.nnz
        except BaseException:
            self.close()
            raise
        if n == 0:
            self.close()
            raise DataError(f"'{source.path}' holds no document")
        self._n = n
        self.notes.append(
            f"{n} documents, a vocabulary of {len(self.columns)} terms ({nnz} non-zero "
            f"counts), streamed in blocks of {self.block_rows}"
        )

    # ------------------------------------------------------------------ the engine
    @property
    def n_samples(self) -> int:
        return self._n

    @property
    def n_features(self) -> int:
        return len(self.columns)

    @property
    def dtype(self) -> Any:
        return np.float64

    @property
    def total_weight(self) -> float:
        return float(self._n)

    def _load(self, i: int) -> Any:
        import scipy.sparse as sp

        return sp.load_npz(self._files[i]).tocsr()

    def _blocks(self) -> Iterator[Any]:
        for i in range(len(self._files)):
            yield self._load(i)

    def take(self, indices: NDArray[np.intp]) -> tuple[Any, None]:
        """The rows at ``indices`` (sorted), as one CSR matrix."""
        import scipy.sparse as sp

        indices = np.asarray(indices, dtype=np.intp)
        parts = []
        bounds = [*self._starts, self._n]
        for i in range(len(self._files)):
            lo, hi = np.searchsorted(indices, [bounds[i], bounds[i + 1]])
            if hi > lo:
                parts.append(self._load(i)[indices[lo:hi] - bounds[i]])
        if not parts:
            return sp.csr_matrix((0, self.n_features)), None
        return sp.vstack(parts, format="csr"), None

    def e_step(self, family: Any, plan: Any) -> Any:
        total = None
        for block in self._blocks():
            total = reduce_rows(family, plan, block, None, False, total=total)
        return total

    def blocks(self, *_: Any) -> Iterator[tuple[Any, None]]:
        """Every document, in input order, as ``(counts, None)`` blocks."""
        for block in self._blocks():
            yield block, None

    def close(self) -> None:
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __enter__(self) -> DocumentStreamEngine:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


@contextlib.contextmanager
def open_documents(
    engine: str,
    source: DocumentSource,
    tokeniser: Any = None,
    vocabulary: Sequence[str] | None = None,
    block_rows: int | None = None,
) -> Iterator[Any]:
    """An engine over the documents of ``source`` with ``.columns`` (the vocabulary),
    ``.notes`` and ``.tokeniser`` (None for given counts); closed on exit."""
    if engine == "memory":
        counts, terms, tok, notes = read_corpus(source, tokeniser, vocabulary)
        weights = None
        if source.weights is not None:
            from ..data.documents import read_weights

            weights = read_weights(source)
        mem = MemoryEngine(counts, weights=weights)
        mem.columns, mem.notes = terms, notes  # type: ignore[attr-defined]
        mem.weights_column = source.weights  # type: ignore[attr-defined]
        mem.tokeniser = tok  # type: ignore[attr-defined]
        yield mem
    elif engine == "stream":
        from ..data.documents import tokeniser_of

        tok = tokeniser_of(tokeniser)
        tok.validate()
        with DocumentStreamEngine(source, tok, vocabulary, block_rows) as stream:
            yield stream
    else:
        raise UsageError(
            f"documents run on {{engine}} memory or stream, not {engine} (the dask engine "
            "reads tables of numbers)"
        )

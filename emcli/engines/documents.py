"""Engines over documents: their counts in memory (CSR), or streamed from disk in blocks.

``open_documents`` reads a corpus (``emcli.data.documents.DocumentSource``) for the
multinomial family.  ``memory``: the whole CSR count matrix in a ``MemoryEngine`` (memory
grows with the non-zero counts).  ``stream``: ``DocumentStreamEngine``, for corpora past
memory.  It takes two passes over the text when it opens: the first counts document
frequencies and builds the vocabulary (the same rules, so the same vocabulary, as in
memory), the second tokenises each block of documents once and spills its CSR counts to a
temporary file; every EM iteration then reads those blocks one at a time.  At most one block
of documents is in memory, plus the k x V statistics.  ``dask``: ``DaskDocumentEngine``, a
text file's documents counted and held by Dask workers, partition by partition.
"""

from __future__ import annotations

import abc
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


class _Corpus(abc.ABC):
    """What the document engines share: CSR count parts, in input order, whose first rows
    are ``_offsets`` (the last entry: the number of documents)."""

    parallel_starts = False
    weights = None
    weights_column = None
    sparse = True
    columns: list[str]
    _offsets: NDArray[np.intp]

    @property
    def n_samples(self) -> int:
        return int(self._offsets[-1])

    @property
    def n_features(self) -> int:
        return len(self.columns)

    @property
    def dtype(self) -> Any:
        return np.float64

    @property
    def total_weight(self) -> float:
        return float(self.n_samples)

    @abc.abstractmethod
    def _rows_of(self, i: int, local: NDArray[np.intp]) -> Any:
        """Rows ``local`` of part ``i`` (or a future of them)."""

    def _gather(self, rows: list[Any]) -> list[Any]:
        return rows

    def take(self, indices: NDArray[np.intp]) -> tuple[Any, None]:
        """The rows at ``indices`` (sorted), as one CSR matrix."""
        import scipy.sparse as sp

        indices = np.asarray(indices, dtype=np.intp)
        found = []
        for i, (lo, hi) in enumerate(zip(self._offsets[:-1], self._offsets[1:], strict=True)):
            a, b = np.searchsorted(indices, [lo, hi])
            if b > a:
                found.append(self._rows_of(i, indices[a:b] - lo))
        rows = self._gather(found)
        if not rows:
            return sp.csr_matrix((0, self.n_features)), None
        return sp.vstack(rows, format="csr"), None

    @abc.abstractmethod
    def close(self) -> None:
        """Remove what the engine holds (spilled files, workers' partitions)."""

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class DocumentStreamEngine(_Corpus):
    """EM over the documents of a text file or a table's text column, block by block
    (module docstring).

    Args:
        source: the input (a file: standard input and .mtx are the memory engine's).
        tokeniser: ``emcli.data.text.Tokeniser``.
        vocabulary: count in this vocabulary (a warm start's) instead of building one.
        block_rows: documents per block.
    """

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
        starts: list[int] = []
        n, nnz = 0, 0
        try:
            import scipy.sparse as sp

            for i, docs in enumerate(documents()):
                counts = count_matrix(docs, self.columns, tokeniser)
                check_counts(counts)
                path = os.path.join(self._dir, f"block{i:06d}.npz")
                sp.save_npz(path, counts, compressed=False)
                self._files.append(path)
                starts.append(n)
                n += counts.shape[0]
                nnz += counts.nnz
        except BaseException:
            self.close()
            raise
        if n == 0:
            self.close()
            raise DataError(f"'{source.path}' holds no document")
        self._offsets = np.array([*starts, n], dtype=np.intp)
        self.notes.append(
            f"{n} documents, a vocabulary of {len(self.columns)} terms ({nnz} non-zero "
            f"counts), streamed in blocks of {self.block_rows}"
        )

    # ------------------------------------------------------------------ the engine
    def _load(self, i: int) -> Any:
        import scipy.sparse as sp

        return sp.load_npz(self._files[i]).tocsr()

    def _blocks(self) -> Iterator[Any]:
        for i in range(len(self._files)):
            yield self._load(i)

    def _rows_of(self, i: int, local: NDArray[np.intp]) -> Any:
        return self._load(i)[local]

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


@contextlib.contextmanager
def open_documents(
    engine: str,
    source: DocumentSource,
    tokeniser: Any = None,
    vocabulary: Sequence[str] | None = None,
    block_rows: int | None = None,
    scheduler: str | None = None,
    client: Any = None,
) -> Iterator[Any]:
    """An engine over the documents of ``source`` with ``.columns`` (the vocabulary),
    ``.notes`` and ``.tokeniser`` (None for given counts); closed on exit.  ``scheduler``
    and ``client``: the dask engine's cluster (``DaskDocumentEngine``)."""
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
    elif engine == "dask":
        from ..data.documents import tokeniser_of

        tok = tokeniser_of(tokeniser)
        tok.validate()
        with DaskDocumentEngine(
            source, tok, vocabulary, block_rows, scheduler=scheduler, client=client
        ) as dask_engine:
            yield dask_engine
    else:
        raise UsageError(f"{{engine}} must be memory, stream or dask, not {engine}")


class DaskDocumentEngine(_Corpus):
    """EM over the documents of a text file held by Dask workers as CSR count partitions.

    Each worker reads the lines that start in its byte range of the file
    (``emcli.data.text.read_text_range``) and counts their words; the counters add up a
    tree to the vocabulary (the same rules, so the same vocabulary, as the memory engine);
    then each worker keeps its documents' counts in that vocabulary, and each EM iteration
    maps the family's E-step over the partitions and adds the statistics up a tree.

    Args:
        source: a text file (one document per line) that every worker can read.
        tokeniser: ``emcli.data.text.Tokeniser``.
        vocabulary: count in this vocabulary (a warm start's) instead of building one.
        block_rows: about this many documents per partition (default: 64 MB of text).
        scheduler: a Dask scheduler's address; None starts a local cluster.
        client: an existing ``distributed.Client`` (not closed).
    """

    def __init__(
        self,
        source: DocumentSource,
        tokeniser: Any,
        vocabulary: Sequence[str] | None = None,
        block_rows: int | None = None,
        scheduler: str | None = None,
        client: Any = None,
    ) -> None:
        from ..data.parts import CSV_PART_BYTES
        from ..data.text import text_ranges
        from .dask import connect, import_dask, tree_sum

        distributed = import_dask()
        if source.path == "-" or source.fmt != "text" or not os.path.isfile(source.path):
            raise UsageError(
                "{engine} dask reads documents from a text file (one per line) that the "
                "workers read; for stdin, a table's text column or .mtx use {engine} memory "
                "or stream"
            )
        self.tokeniser = tokeniser
        self._own: list[Any] = []
        self.parts: list[Any] = []
        try:
            self.client = client or connect(distributed, scheduler, self._own)
            size = CSV_PART_BYTES
            if block_rows:
                size = max(64, block_rows * _bytes_per_line(source.path))
            ranges = text_ranges(source.path, size)
            paths = [source.path] * len(ranges)
            texts = self.client.map(
                _read_range, paths, [a for a, _ in ranges], [b for _, b in ranges]
            )
            if vocabulary is None:
                counters = self.client.map(_count_words, texts, tokeniser=tokeniser)
                vocabulary = tree_sum(self.client, counters, _merge_counters).vocabulary()
            self.columns = list(vocabulary)
            self.parts = self.client.map(
                _count_matrix, texts, vocabulary=self.columns, tokeniser=tokeniser
            )
            lengths = self.client.gather(self.client.map(_n_rows, self.parts))
            nnz = sum(self.client.gather(self.client.map(_nnz, self.parts)))
            for future in texts:
                future.release()
        except BaseException:
            self.close()
            raise
        self._offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.intp)
        if self._offsets[-1] == 0:
            self.close()
            raise DataError(f"'{source.path}' holds no document")
        self.notes = [
            f"{self.n_samples} documents, a vocabulary of {len(self.columns)} terms ({nnz} "
            f"non-zero counts), in {len(self.parts)} partitions on the Dask workers"
        ]

    def _rows_of(self, i: int, local: NDArray[np.intp]) -> Any:
        return self.client.submit(_take_rows, self.parts[i], local)

    def _gather(self, rows: list[Any]) -> list[Any]:
        return list(self.client.gather(rows))

    def e_step(self, family: Any, plan: Any) -> Any:
        """``family.e_step`` on every partition (on the workers), tree-summed."""
        from .dask import _part_e_step, _sum_stats, tree_sum

        parts = self.client.map(_as_partition, self.parts)
        stats = self.client.map(_part_e_step, parts, family=family, plan=plan)
        return tree_sum(self.client, stats, _sum_stats)

    def blocks(self, *_: Any) -> Iterator[tuple[Any, None]]:
        """The partitions in order, ``(counts, None)``, fetched one at a time."""
        for part in self.parts:
            yield self.client.gather(part), None

    def close(self) -> None:
        from .dask import release

        release(getattr(self, "parts", []), self._own)
        self.parts = []


def _bytes_per_line(path: str) -> int:
    with open(path, "rb") as handle:
        head = handle.read(1 << 20)
    return max(1, len(head) // max(1, head.count(b"\n")))


# Functions run on the workers (module level, so they pickle by reference).
def _read_range(path: str, start: int, stop: int) -> list[str]:
    from ..data.text import read_text_range

    return read_text_range(path, start, stop)


def _count_words(docs: list[str], tokeniser: Any) -> Any:
    from ..data.text import VocabularyCounter

    counter = VocabularyCounter(tokeniser)
    counter.update(docs)
    return counter


def _merge_counters(counters: Sequence[Any]) -> Any:
    total = counters[0]
    for other in counters[1:]:
        total = total.merge(other)
    return total


def _count_matrix(docs: list[str], vocabulary: list[str], tokeniser: Any) -> Any:
    from ..data.text import count_matrix

    return count_matrix(docs, vocabulary, tokeniser)


def _n_rows(counts: Any) -> int:
    return int(counts.shape[0])


def _nnz(counts: Any) -> int:
    return int(counts.nnz)


def _take_rows(counts: Any, local: NDArray[np.intp]) -> Any:
    return counts[local]


def _as_partition(counts: Any) -> tuple[Any, None]:
    return counts, None

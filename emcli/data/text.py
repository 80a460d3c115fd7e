"""Documents for the multinomial ("mixture of unigrams") family: tokens, vocabulary, counts.

A ``Tokeniser`` turns a document (a string) into words: compose it (Unicode NFC), lower-case
it, take the maximal runs of Unicode letters and digits (the regular expression
``[^\\W_]+``: underscores and punctuation split words), then drop tokens made only of
digits, one-character tokens and stop words.  ``build_vocabulary`` (or
``VocabularyCounter`` block by block, for streaming) keeps the terms that pass the
document-frequency and size rules (``min_df``, ``max_df``, ``max_vocab``);
``count_matrix`` counts each document's vocabulary terms into a sparse (n_documents, V)
matrix, ignoring every other word.

Readers: ``read_documents`` / ``iter_documents`` (a text file with one document per line, or
a column of a CSV, TSV or Parquet table), ``read_mtx`` (a ready-made document-term matrix in
Matrix Market format) and ``read_vocabulary`` (its column names, one term per line).

Messages name settings as ``{min_df}``, ``{text_column}``, ... (the CLI shows them as flags).
"""

from __future__ import annotations

import codecs
import functools
import io
import os
import re
import sys
import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

import numpy as np

from ..errors import DataError, UsageError
from .formats import EXTENSIONS, check_input_path, display_name, parse_delimiter
from .stopwords import ENGLISH_STOP_WORDS

if TYPE_CHECKING:
    from scipy.sparse import csr_matrix

__all__ = [
    "DOCUMENT_FORMATS",
    "ENGLISH_STOP_WORDS",
    "TOKEN_PATTERN",
    "Tokeniser",
    "VocabularyCounter",
    "build_vocabulary",
    "count_matrix",
    "iter_documents",
    "read_documents",
    "read_mtx",
    "read_vocabulary",
]

TOKEN_PATTERN = r"[^\W_]+"
_TOKEN = re.compile(TOKEN_PATTERN)
DOCUMENT_FORMATS = ("text", "csv", "tsv", "parquet")
_STOP_WORD_NAMES = ("english", "none")
_SETTINGS = ("lowercase", "token_pattern", "stop_words", "min_df", "max_df", "max_vocab")
_READ_BYTES = 1 << 20  # bytes read at a time when locating a UTF-8 error


@functools.lru_cache(maxsize=16)
def _stop_words(stop_words: str | tuple[str, ...]) -> frozenset[str]:
    if stop_words == "english":
        return ENGLISH_STOP_WORDS
    if stop_words == "none":
        return frozenset()
    return frozenset(word.lower() for word in stop_words)


def _is_int(value: object) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)


def _is_number(value: object) -> bool:
    return _is_int(value) or isinstance(value, float | np.floating)


@dataclass(frozen=True)
class Tokeniser:
    """How documents become words, and which words make the vocabulary.

    Attributes:
        stop_words: ``"english"`` (``ENGLISH_STOP_WORDS``), ``"none"``, or the stop words
            themselves as a tuple (compared after lower-casing).
        min_df: keep only terms found in at least this many documents (>= 1).
        max_df: drop terms found in more than this fraction of the documents
            (0 < max_df <= 1; 1 drops nothing).
        max_vocab: keep at most this many terms, those with the largest total count (ties
            broken alphabetically); >= 1.
    """

    stop_words: str | tuple[str, ...] = "english"
    min_df: int = 2
    max_df: float = 0.5
    max_vocab: int = 20000

    def validate(self) -> None:
        """Raise UsageError for a setting out of range."""
        words = self.stop_words
        if isinstance(words, str):
            if words not in _STOP_WORD_NAMES:
                raise UsageError(
                    f"{{stop_words}} {words!r} must be 'english', 'none' or a file of stop "
                    "words, one per line"
                )
        elif not isinstance(words, tuple) or not all(isinstance(w, str) for w in words):
            raise UsageError("{stop_words} must be 'english', 'none' or a tuple of words")
        if not _is_int(self.min_df) or self.min_df < 1:
            raise UsageError(
                f"{{min_df}} must be a whole number of documents, at least 1 (got {self.min_df!r})"
            )
        if not _is_number(self.max_df) or not 0 < self.max_df <= 1:
            raise UsageError(
                "{max_df} must be a fraction of the documents above 0 and at most 1, "
                f"e.g. {{max_df}} 0.5 (got {self.max_df!r})"
            )
        if not _is_int(self.max_vocab) or self.max_vocab < 1:
            raise UsageError(
                f"{{max_vocab}} must be a whole number of terms, at least 1 "
                f"(got {self.max_vocab!r})"
            )

    def stop_set(self) -> frozenset[str]:
        """The stop words, lower-case."""
        return _stop_words(self.stop_words)

    def tokens(self, doc: str) -> list[str]:
        """The words of ``doc``, in order, repeats kept.

        The rule: ``doc.lower()``, then every maximal run of Unicode letters and digits
        (``re.findall(r"[^\\W_]+")``, so underscores, punctuation and spaces all separate
        words), then drop tokens of one character, tokens made only of digits
        (``str.isdigit``) and stop words.  The text is first put in Unicode's composed form
        (NFC), so a decomposed accent (e + a combining acute) is the same letter as the
        composed one (é) and does not split the word.
        """
        stop = self.stop_set()
        return [
            token
            for token in _TOKEN.findall(unicodedata.normalize("NFC", doc).lower())
            if len(token) > 1 and not token.isdigit() and token not in stop
        ]

    def to_dict(self) -> dict[str, Any]:
        """The settings as JSON values, for a model file (``from_dict`` reads them back)."""
        words = self.stop_words
        return {
            "lowercase": True,
            "token_pattern": TOKEN_PATTERN,
            "stop_words": words if isinstance(words, str) else list(words),
            "min_df": int(self.min_df),
            "max_df": float(self.max_df),
            "max_vocab": int(self.max_vocab),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Tokeniser:
        """The tokeniser ``to_dict`` wrote.

        Raises:
            ValueError: not a mapping of exactly the ``to_dict`` keys, a tokenising rule this
                version does not implement, or a value of the wrong type or out of range.
        """
        if not isinstance(data, dict):
            raise ValueError(f"tokeniser settings must be a mapping, not {type(data).__name__}")
        keys = set(data)
        if keys != set(_SETTINGS):
            missing = sorted(set(_SETTINGS) - keys)
            extra = sorted(keys - set(_SETTINGS))
            raise ValueError(
                "tokeniser settings: "
                + "; ".join(
                    part
                    for part in (
                        f"missing {', '.join(missing)}" if missing else "",
                        f"unknown {', '.join(extra)}" if extra else "",
                    )
                    if part
                )
            )
        if data["lowercase"] is not True or data["token_pattern"] != TOKEN_PATTERN:
            raise ValueError(
                "tokeniser settings: only lowercase true and token_pattern "
                f"{TOKEN_PATTERN!r} are supported"
            )
        words = data["stop_words"]
        if isinstance(words, list):
            words = tuple(words)
        tokeniser = cls(words, data["min_df"], data["max_df"], data["max_vocab"])
        try:
            tokeniser.validate()
        except UsageError as exc:
            raise ValueError(f"tokeniser settings: {exc}") from None
        return cls(words, int(tokeniser.min_df), float(tokeniser.max_df), int(tokeniser.max_vocab))

    @classmethod
    def from_options(
        cls,
        stop_words: str | None,
        min_df: int | None,
        max_df: float | None,
        max_vocab: int | None,
    ) -> Tokeniser:
        """A validated tokeniser from command-line values; None means the default.

        ``stop_words`` is ``"english"``, ``"none"`` or the path of a file of stop words: one
        per line (UTF-8), lower-cased, surrounding spaces, blank lines and lines starting with
        ``#`` skipped.

        Raises:
            DataError: the stop-word file cannot be read.
            UsageError: a setting out of range.
        """
        default = cls()
        words: str | tuple[str, ...] = default.stop_words
        if stop_words is not None:
            words = stop_words if stop_words in _STOP_WORD_NAMES else _read_stop_words(stop_words)
        tokeniser = cls(
            stop_words=words,
            min_df=default.min_df if min_df is None else min_df,
            max_df=default.max_df if max_df is None else max_df,
            max_vocab=default.max_vocab if max_vocab is None else max_vocab,
        )
        tokeniser.validate()
        return tokeniser


def _read_stop_words(path: str) -> tuple[str, ...]:
    """The words of a stop-word file, lower-case, sorted, each once."""
    try:
        with open(path, encoding="utf-8-sig") as handle:
            lines = handle.read().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise DataError(
            f"cannot read stop-word file {path}: {reason}; give {{stop_words}} english, none "
            "or a UTF-8 file with one word per line"
        ) from None
    words = {line.strip().lower() for line in lines}
    return tuple(sorted(w for w in words if w and not w.startswith("#")))


class VocabularyCounter:
    """``build_vocabulary`` one block of documents at a time (for streaming).

    Call ``update`` with each block, then ``vocabulary()``.  Memory grows with the number of
    distinct words seen, not with the number of documents.

    Attributes:
        tokeniser: the tokenising and vocabulary rules.
        n_documents: documents counted so far.
    """

    def __init__(self, tokeniser: Tokeniser) -> None:
        tokeniser.validate()
        self.tokeniser = tokeniser
        self.n_documents = 0
        self._document_frequency: Counter[str] = Counter()
        self._total: Counter[str] = Counter()

    def update(self, docs: Iterable[str]) -> None:
        """Count the words of ``docs`` (any iterable of strings)."""
        tokens = self.tokeniser.tokens
        frequency, total = self._document_frequency, self._total
        n = 0
        for doc in docs:
            words = tokens(doc)
            total.update(words)
            frequency.update(set(words))
            n += 1
        self.n_documents += n

    def merge(self, other: VocabularyCounter) -> VocabularyCounter:
        """This counter plus ``other``'s counts (counters of parts of one input, e.g. on
        Dask workers, add up to the counter of the whole)."""
        self.n_documents += other.n_documents
        self._document_frequency.update(other._document_frequency)
        self._total.update(other._total)
        return self

    def vocabulary(self) -> list[str]:
        """The kept terms, sorted alphabetically.

        A term is kept when it is in at least ``min_df`` documents and in at most a fraction
        ``max_df`` of them (document frequency / n_documents <= max_df); of those, the
        ``max_vocab`` with the largest total counts (ties: alphabetical order).

        Raises:
            DataError: no documents, or no term passes the rules (the message says which
                setting to relax).
        """
        settings = self.tokeniser
        n = self.n_documents
        if n == 0:
            raise DataError("there are no documents: the input is empty")
        frequency = self._document_frequency
        if not frequency:
            raise DataError(
                f"the {n} documents have no words once stop words, numbers and one-letter "
                "tokens are dropped; check the input, or use {stop_words} none"
            )
        common = [term for term, df in frequency.items() if df >= settings.min_df]
        if not common:
            most = max(frequency.values())
            raise DataError(
                f"no word is in {settings.min_df} or more documents ({{min_df}}; the most "
                f"common is in {most} of {n}): lower {{min_df}} or give more documents"
            )
        kept = [term for term in common if frequency[term] / n <= settings.max_df]
        if not kept:
            raise DataError(
                f"every word in {settings.min_df} or more documents is in more than a fraction "
                f"{settings.max_df:g} of the {n} documents ({{max_df}}): raise {{max_df}}"
            )
        if len(kept) > settings.max_vocab:
            total = self._total
            kept.sort(key=lambda term: (-total[term], term))
            del kept[settings.max_vocab :]
        return sorted(kept)


def text_ranges(path: str, size: int) -> list[tuple[int, int]]:
    """Byte ranges of about ``size`` bytes covering a text file, in order; a line belongs to
    the range it starts in (``read_text_range``)."""
    total = os.path.getsize(path)
    size = max(1, int(size))
    return [(start, min(start + size, total)) for start in range(0, max(total, 1), size)]


def read_text_range(path: str, start: int, stop: int) -> list[str]:
    """The documents (lines) of a text file that start in bytes ``start .. stop``, as
    ``read_documents`` reads them (no line end, no BOM, UTF-8; the ranges of
    ``text_ranges`` together give every line once)."""
    out: list[str] = []
    with open(path, "rb") as handle:
        if start > 0:
            handle.seek(start - 1)
            if handle.read(1) != b"\n":
                handle.readline()  # the rest of a line that started in the range before
        at = handle.tell()
        while at < stop or (at == stop == 0 and start == 0):
            line = handle.readline()
            if not line:
                break
            if at == 0 and line.startswith(codecs.BOM_UTF8):
                line = line[len(codecs.BOM_UTF8) :]
            if line.endswith(b"\r\n"):
                line = line[:-2]
            elif line.endswith(b"\n"):
                line = line[:-1]
            try:
                out.append(line.decode("utf-8"))
            except UnicodeDecodeError:
                raise DataError(
                    f"'{path}' is not UTF-8 text near byte {at}; convert it first, e.g. "
                    "iconv -f LATIN1 -t UTF-8"
                ) from None
            at = handle.tell()
    return out


def build_vocabulary(docs: Iterable[str], tokeniser: Tokeniser) -> tuple[list[str], int]:
    """The vocabulary of ``docs`` under ``tokeniser``'s rules, in one pass.

    Returns:
        (vocabulary, n_documents): the kept terms sorted alphabetically (the rules are in
        ``VocabularyCounter.vocabulary``), and the number of documents read.

    Raises:
        DataError: no documents, or no term passes the rules.
        UsageError: a tokeniser setting out of range.
    """
    counter = VocabularyCounter(tokeniser)
    counter.update(docs)
    return counter.vocabulary(), counter.n_documents


def count_matrix(
    docs: Sequence[str] | Iterable[str], vocabulary: Sequence[str], tokeniser: Tokeniser
) -> csr_matrix:
    """Term counts: ``X[i, j]`` is how often ``vocabulary[j]`` occurs in document ``i``.

    Words outside the vocabulary are ignored (so new documents with unseen words can be
    predicted).  Built from index arrays, never a dense matrix.

    Args:
        docs: the documents, n of them (any iterable of strings).
        vocabulary: V distinct terms; the columns, in this order.
        tokeniser: how documents become words (only its tokenising rule is used).

    Returns:
        scipy.sparse.csr_matrix of shape (n, V), float64, duplicates summed, sorted indices.

    Raises:
        DataError: a term repeats in ``vocabulary``.
    """
    import scipy.sparse

    index: dict[str, int] = {}
    for j, term in enumerate(vocabulary):
        if index.setdefault(term, j) != j:
            raise DataError(f"the vocabulary repeats the term {term!r}; each must be unique")
    tokens = tokeniser.tokens
    columns: list[int] = []
    indptr = [0]
    for doc in docs:
        columns.extend(index[word] for word in tokens(doc) if word in index)
        indptr.append(len(columns))
    n, v = len(indptr) - 1, len(index)
    index_dtype = np.int32 if max(len(columns), v) < 2**31 else np.int64
    matrix = scipy.sparse.csr_matrix(
        (
            np.ones(len(columns), dtype=np.float64),
            np.asarray(columns, dtype=index_dtype),
            np.asarray(indptr, dtype=index_dtype),
        ),
        shape=(n, v),
    )
    matrix.sum_duplicates()  # also sorts the indices
    return matrix


# --- reading documents -----------------------------------------------------------------------


def _document_format(path: str, fmt: str | None) -> str:
    if fmt is None:
        return EXTENSIONS.get(os.path.splitext(path)[1].lower(), "text")
    if fmt not in DOCUMENT_FORMATS:
        raise UsageError(
            f"unknown document format {fmt!r}: use {{fmt}} {'|'.join(DOCUMENT_FORMATS)}"
        )
    return fmt


def _not_utf8(path: str, line: int, offset: int, what: str = "text") -> DataError:
    return DataError(
        f"{display_name(path)} is not UTF-8 {what}: line {line} (byte {offset}) is not valid "
        "UTF-8; convert it first, e.g. iconv -f LATIN1 -t UTF-8"
    )


def _utf8_error(path: str, stream: IO[bytes], what: str = "text") -> DataError | None:
    """The error for the first byte of ``stream`` that is not UTF-8 (None if all are)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    position = newlines = 0
    while chunk := stream.read(_READ_BYTES):
        pending = len(decoder.getstate()[0])
        try:
            decoder.decode(chunk)
        except UnicodeDecodeError as exc:
            offset = position - pending + exc.start
            before = chunk[: max(offset - position, 0)].count(b"\n")
            return _not_utf8(path, newlines + before + 1, offset, what)
        position += len(chunk)
        newlines += chunk.count(b"\n")
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return _not_utf8(path, newlines + 1, position - len(decoder.getstate()[0]), what)
    return None


def _open_bytes(path: str) -> IO[bytes]:
    """``path`` opened for binary reading (not stdin), with OS errors as DataError."""
    check_input_path(path)
    try:
        return open(path, "rb")
    except OSError as exc:
        raise DataError(f"cannot read {display_name(path)}: {exc.strerror or exc}") from None


def _read_bytes(path: str) -> bytes:
    """All of ``path`` (``-``: standard input)."""
    if path == "-":
        return sys.stdin.buffer.read()
    with _open_bytes(path) as handle:
        try:
            return handle.read()
        except OSError as exc:
            raise DataError(f"cannot read {display_name(path)}: {exc.strerror or exc}") from None


def _lines(path: str, stream: Iterable[bytes]) -> Iterator[str]:
    """The lines of a binary stream, decoded, without their line ends (``\\n`` or ``\\r\\n``).

    A final line end does not start another line; a UTF-8 byte-order mark is dropped.
    """
    offset = 0
    for number, raw in enumerate(stream, 1):
        end = len(raw)
        if raw.endswith(b"\n"):
            end -= 2 if raw.endswith(b"\r\n") else 1
        try:
            line = raw[:end].decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _not_utf8(path, number, offset + exc.start) from None
        if number == 1 and line.startswith("\ufeff"):
            line = line[1:]
        offset += len(raw)
        yield line


def _check_table_args(path: str, kind: str, text_column: str | None) -> str:
    if kind == "text":
        if text_column is not None:
            raise UsageError(
                "{text_column} is for csv, tsv and parquet tables; a text file has one "
                "document per line (use {fmt} csv|tsv|parquet for a table)"
            )
        return ""
    if text_column is None:
        raise DataError(
            f"{display_name(path)} is a {kind} table: name the column that holds the "
            "documents with {text_column}"
        )
    return text_column


def _unknown_column(path: str, column: str, names: Sequence[str]) -> DataError:
    shown = ", ".join(repr(str(name)) for name in names[:20])
    more = f" and {len(names) - 20} more" if len(names) > 20 else ""
    return DataError(
        f"{display_name(path)} has no column {column!r} ({{text_column}}); its columns are "
        f"{shown or 'none'}{more}"
    )


def _csv_options(kind: str, delimiter: str | None) -> dict[str, Any]:
    separator = parse_delimiter(delimiter) or ("\t" if kind == "tsv" else ",")
    return {"sep": separator, "dtype": str, "keep_default_na": False, "index_col": False}


def _csv_columns(path: str, source: Any, options: dict[str, Any]) -> list[str]:
    import pandas as pd

    try:
        return [str(name) for name in pd.read_csv(source, nrows=0, **options).columns]
    except pd.errors.EmptyDataError:
        raise DataError(f"{display_name(path)} is empty: a table needs a header line") from None
    except (pd.errors.ParserError, ValueError) as exc:
        raise DataError(_csv_message(path, exc)) from None


def _csv_message(path: str, exc: BaseException) -> str:
    reason = " ".join(str(exc).split())
    return f"cannot parse {display_name(path)} as a table: {reason}"


def _as_texts(values: Any) -> list[str]:
    """A pandas column of str (or missing) cells as a list of str, missing as ""."""
    return [value if isinstance(value, str) else "" for value in values.tolist()]


def _read_csv(path: str, kind: str, column: str, delimiter: str | None) -> list[str]:
    import pandas as pd

    data = _read_bytes(path)
    error = _utf8_error(path, io.BytesIO(data))
    if error is not None:
        raise error
    options = _csv_options(kind, delimiter)
    names = _csv_columns(path, io.BytesIO(data), options)
    if column not in names:
        raise _unknown_column(path, column, names)
    try:
        frame = pd.read_csv(io.BytesIO(data), usecols=[column], **options)
    except (pd.errors.ParserError, ValueError) as exc:
        raise DataError(_csv_message(path, exc)) from None
    return _as_texts(frame[column])


def _iter_csv(
    path: str, kind: str, column: str, delimiter: str | None, block: int
) -> Iterator[list[str]]:
    options = _csv_options(kind, delimiter)
    with _open_bytes(path) as handle:
        names = _csv_columns(path, handle, options)
    if column not in names:
        raise _unknown_column(path, column, names)
    return _csv_blocks(path, column, options, block)


def _csv_blocks(path: str, column: str, options: dict[str, Any], block: int) -> Iterator[list[str]]:
    import pandas as pd

    try:
        with pd.read_csv(path, usecols=[column], chunksize=block, **options) as reader:
            for frame in reader:
                yield _as_texts(frame[column])
    except UnicodeDecodeError:
        with _open_bytes(path) as handle:
            error = _utf8_error(path, handle)
        raise error or DataError(f"{display_name(path)} is not UTF-8 text") from None
    except (pd.errors.ParserError, ValueError) as exc:
        raise DataError(_csv_message(path, exc)) from None


def _parquet_file(path: str, source: Any) -> Any:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(source)
    except (pa.ArrowException, OSError) as exc:
        reason = " ".join(str(exc).split())
        raise DataError(f"{display_name(path)} is not a valid Parquet file ({reason})") from None


def _parquet_texts(path: str, column: str, values: Any) -> list[str]:
    """A pyarrow column (any type pyarrow casts to string) as str, nulls as ""."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_dictionary(values.type):
        values = values.cast(values.type.value_type)
    if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
        try:
            values = pc.cast(values, pa.string())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise DataError(
                f"column {column!r} of {display_name(path)} holds {values.type}, not text "
                "({text_column} must name a text column)"
            ) from None
    return [value if value is not None else "" for value in values.to_pylist()]


def _parquet_column(path: str, file: Any, column: str) -> None:
    names = list(file.schema_arrow.names)
    if column not in names:
        raise _unknown_column(path, column, names)


def _read_parquet(path: str, column: str) -> list[str]:
    import pyarrow as pa

    source = io.BytesIO(sys.stdin.buffer.read()) if path == "-" else path
    if path != "-":
        check_input_path(path)
    file = _parquet_file(path, source)
    _parquet_column(path, file, column)
    try:
        table = file.read(columns=[column])
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"cannot read {display_name(path)}: {' '.join(str(exc).split())}") from None
    return _parquet_texts(path, column, table.column(column))


def _iter_parquet(path: str, column: str, block: int) -> Iterator[list[str]]:
    check_input_path(path)
    file = _parquet_file(path, path)
    _parquet_column(path, file, column)
    return _parquet_blocks(path, file, column, block)


def _parquet_blocks(path: str, file: Any, column: str, block: int) -> Iterator[list[str]]:
    import pyarrow as pa

    try:
        for batch in file.iter_batches(batch_size=block, columns=[column]):
            yield _parquet_texts(path, column, batch.column(0))
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"cannot read {display_name(path)}: {' '.join(str(exc).split())}") from None


def _text_blocks(path: str, block: int) -> Iterator[list[str]]:
    with _open_bytes(path) as handle:
        docs: list[str] = []
        for line in _lines(path, handle):
            docs.append(line)
            if len(docs) == block:
                yield docs
                docs = []
        if docs:
            yield docs


def read_documents(
    path: str,
    fmt: str | None = "text",
    text_column: str | None = None,
    delimiter: str | None = None,
) -> list[str]:
    """Every document of a file (``-``: standard input, read as UTF-8 bytes).

    Args:
        path: the file.
        fmt: ``"text"``: one document per line (line ends stripped, empty lines kept as empty
            documents so that row i is line i + 1; a final line end makes no extra document).
            ``"csv"``, ``"tsv"``, ``"parquet"``: the ``text_column`` of a table with a header,
            missing cells as ``""`` (CSV/TSV cells are read as strings, and blank lines are
            skipped as in any table).  None: from the extension (.csv, .tsv, .parquet or .pq;
            anything else is text).
        text_column: the column holding the documents (tables only).
        delimiter: the CSV/TSV field delimiter (default ``,`` for csv, a tab for tsv).

    Returns:
        The documents, n of them, in file order.

    Raises:
        DataError: a missing or unreadable file, text that is not UTF-8 (the message gives
            the line and byte), a table without ``text_column`` or without that column.
        UsageError: an unknown ``fmt``, a bad ``delimiter``, ``text_column`` for a text file.
    """
    kind = _document_format(path, fmt)
    column = _check_table_args(path, kind, text_column)
    if kind == "text":
        return list(_lines(path, io.BytesIO(_read_bytes(path))))
    if kind == "parquet":
        return _read_parquet(path, column)
    return _read_csv(path, kind, column, delimiter)


def iter_documents(
    path: str,
    fmt: str | None = "text",
    text_column: str | None = None,
    delimiter: str | None = None,
    block: int = 10000,
) -> Iterator[list[str]]:
    """The documents of ``read_documents`` in lists of at most ``block`` (for streaming).

    Memory is bounded by the block, whatever the file's size.  Each call reads the file
    anew, so a streaming fit can make several passes.  ``path`` must be a file: standard
    input cannot be read twice.

    Raises:
        UsageError: ``path`` is ``-``, ``block`` < 1, or as ``read_documents``.
        DataError: as ``read_documents``: a missing file, a missing ``text_column`` or an
            unknown column at the call, bad content when the iteration reaches it.
    """
    if path == "-":
        raise UsageError("the stream engine needs a file, not stdin: save the input to a file")
    if not _is_int(block) or block < 1:
        raise UsageError(f"the block size must be at least 1 document (got {block!r})")
    kind = _document_format(path, fmt)
    column = _check_table_args(path, kind, text_column)
    if kind == "parquet":
        return _iter_parquet(path, column, block)
    if kind != "text":
        return _iter_csv(path, kind, column, delimiter, block)
    check_input_path(path)
    return _text_blocks(path, block)


# --- ready-made document-term matrices -------------------------------------------------------


def read_mtx(path: str) -> csr_matrix:
    """A document-term matrix in Matrix Market format, documents as rows.

    ``-`` reads standard input (buffered in memory).  Dense ("array") files are accepted
    too; symmetric ones are expanded.

    Returns:
        scipy.sparse.csr_matrix of shape (n_documents, n_terms), float64, duplicates summed,
        sorted indices.

    Raises:
        DataError: a missing, unreadable or corrupt file, complex values, a value that is
            negative or not finite, or a matrix without rows or columns.
    """
    import scipy.io
    import scipy.sparse

    source: Any
    if path == "-":
        source = io.BytesIO(sys.stdin.buffer.read())
    else:
        check_input_path(path)
        source = path
    name = display_name(path)
    try:
        raw = scipy.io.mmread(source)
    except PermissionError:
        raise DataError(f"cannot read {name}: permission denied") from None
    except (ValueError, OSError, IndexError, TypeError, OverflowError, EOFError) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise DataError(f"{name} is not a valid Matrix Market file ({reason})") from None
    if np.iscomplexobj(raw):
        raise DataError(f"{name} holds complex numbers: counts must be finite numbers >= 0")
    matrix = scipy.sparse.csr_matrix(raw, dtype=np.float64)
    if matrix.shape[0] == 0 or matrix.shape[1] == 0:
        rows, columns = matrix.shape
        raise DataError(
            f"{name} is an empty matrix ({rows} documents x {columns} terms): "
            "it needs at least one row and one column"
        )
    values = matrix.data
    if not np.isfinite(values).all() or (values < 0).any():
        bad = values[~np.isfinite(values) | (values < 0)][0]
        raise DataError(f"{name} holds the value {bad:g}: counts must be finite numbers >= 0")
    matrix.sum_duplicates()
    return matrix


def read_vocabulary(path: str, n_terms: int) -> list[str]:
    """The terms of a document-term matrix's columns: one per line, in column order.

    Args:
        path: a UTF-8 file (``-``: standard input); line ends are stripped, a final one
            makes no extra term.
        n_terms: the matrix's number of columns.

    Returns:
        n_terms distinct strings.

    Raises:
        DataError: an unreadable file or one that is not UTF-8, a number of lines other than
            ``n_terms``, an empty line, or a term that repeats.
    """
    terms = list(_lines(path, io.BytesIO(_read_bytes(path))))
    name = display_name(path)
    if len(terms) != n_terms:
        raise DataError(
            f"the vocabulary {name} has {len(terms)} terms (lines) but the matrix has "
            f"{n_terms} columns: give one term per column"
        )
    seen: dict[str, int] = {}
    for line, term in enumerate(terms, 1):
        if not term:
            raise DataError(f"line {line} of the vocabulary {name} is empty: give one term a line")
        first = seen.setdefault(term, line)
        if first != line:
            raise DataError(
                f"the vocabulary {name} repeats the term {term!r} (lines {first} and {line}); "
                "each term must be unique"
            )
    return terms

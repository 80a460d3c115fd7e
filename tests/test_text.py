"""emcli.data.text: the tokeniser, the vocabulary rules, count matrices and document readers.

References are independent of the code: hand-built corpora with counts worked out by hand,
scikit-learn's CountVectorizer for the counts, scipy.io.mmwrite for Matrix Market files.
"""

from __future__ import annotations

import io
import sys

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import scipy.io
import scipy.sparse
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS as SKLEARN_STOP_WORDS
from sklearn.feature_extraction.text import CountVectorizer

from emcli.data.stopwords import ENGLISH_STOP_WORDS as STOPWORDS_MODULE
from emcli.data.text import (
    ENGLISH_STOP_WORDS,
    TOKEN_PATTERN,
    Tokeniser,
    VocabularyCounter,
    build_vocabulary,
    count_matrix,
    iter_documents,
    read_documents,
    read_mtx,
    read_vocabulary,
)
from emcli.errors import DataError, UsageError

ALL = Tokeniser(stop_words="none", min_df=1, max_df=1.0)  # keeps every token


class _Stdin:
    """A stand-in for sys.stdin with a binary ``buffer``."""

    def __init__(self, data: bytes) -> None:
        self.buffer = io.BytesIO(data)


@pytest.fixture
def stdin(monkeypatch):
    def feed(data: bytes) -> None:
        monkeypatch.setattr(sys, "stdin", _Stdin(data))

    return feed


# ---------------------------------------------------------------------------- stop words
def test_stop_words_are_the_classic_list():
    assert ENGLISH_STOP_WORDS is STOPWORDS_MODULE
    assert ENGLISH_STOP_WORDS == SKLEARN_STOP_WORDS
    assert all(w == w.lower() and w.isalpha() for w in ENGLISH_STOP_WORDS)


def test_stop_words_removed():
    doc = "The cat and the hat are on a mat because it was there"
    assert Tokeniser().tokens(doc) == ["cat", "hat", "mat"]
    assert Tokeniser(stop_words="none").tokens(doc)[:3] == ["the", "cat", "and"]
    assert Tokeniser(stop_words=("Cat", "mat")).tokens("the cat, the MAT") == ["the", "the"]
    assert Tokeniser(stop_words=()).stop_set() == frozenset()
    assert Tokeniser(stop_words="none").stop_set() == frozenset()
    assert Tokeniser().stop_set() == ENGLISH_STOP_WORDS


# ---------------------------------------------------------------------------- tokens
def test_unicode_words_lower_cased():
    tokens = ALL.tokens("Café naïve Ελληνικά東京 ÉCOLE Straße")
    # letters of any script are word characters: Greek runs straight into the Kanji
    assert tokens == ["café", "naïve", "ελληνικά東京", "école", "straße"]


def test_underscores_and_punctuation_split():
    assert ALL.tokens("snake_case, e-mail;dot.com (paren)[x]!?") == [
        "snake",
        "case",
        "mail",
        "dot",
        "com",
        "paren",
    ]


def test_digit_only_and_one_letter_tokens_dropped():
    assert ALL.tokens("in 2024 a b2 7 11 covid19 x ٣٤ 3d") == ["in", "b2", "covid19", "3d"]


def test_empty_and_blank_documents_have_no_tokens():
    assert ALL.tokens("") == []
    assert ALL.tokens(" \t ... 42 ") == []


# ---------------------------------------------------------------------------- settings
@pytest.mark.parametrize(
    ("settings", "name"),
    [
        ({"min_df": 0}, "min_df"),
        ({"min_df": 1.5}, "min_df"),
        ({"min_df": True}, "min_df"),
        ({"max_df": 0.0}, "max_df"),
        ({"max_df": 1.5}, "max_df"),
        ({"max_df": float("nan")}, "max_df"),
        ({"max_vocab": 0}, "max_vocab"),
        ({"stop_words": "french"}, "stop_words"),
        ({"stop_words": ("a", 1)}, "stop_words"),
    ],
)
def test_validate_refuses_bad_settings(settings, name):
    with pytest.raises(UsageError) as info:
        Tokeniser(**settings).validate()
    assert name in str(info.value)
    flag = "--" + name.replace("_", "-")
    assert flag in info.value.render({name: flag})
    assert "\n" not in str(info.value)


def test_validate_accepts_edges():
    Tokeniser(min_df=1, max_df=1, max_vocab=1).validate()
    Tokeniser(stop_words=()).validate()


def test_to_dict_round_trip():
    for tokeniser in (
        Tokeniser(),
        Tokeniser(stop_words="none", min_df=1, max_df=1.0, max_vocab=5),
        Tokeniser(stop_words=("alpha", "beta"), min_df=3, max_df=0.25, max_vocab=100),
    ):
        data = tokeniser.to_dict()
        assert data["lowercase"] is True and data["token_pattern"] == TOKEN_PATTERN
        assert Tokeniser.from_dict(data) == tokeniser
    assert Tokeniser(stop_words=("x",)).to_dict()["stop_words"] == ["x"]


@pytest.mark.parametrize(
    "change",
    [
        {"lowercase": False},
        {"token_pattern": r"\w+"},
        {"min_df": 0},
        {"min_df": "2"},
        {"max_df": 2.0},
        {"max_vocab": None},
        {"stop_words": 3},
        {"extra": 1},
    ],
)
def test_from_dict_refuses_malformed(change):
    data = {**Tokeniser().to_dict(), **change}
    with pytest.raises(ValueError):
        Tokeniser.from_dict(data)


def test_from_dict_refuses_missing_keys_and_non_mappings():
    data = Tokeniser().to_dict()
    del data["max_vocab"]
    with pytest.raises(ValueError, match="max_vocab"):
        Tokeniser.from_dict(data)
    with pytest.raises(ValueError):
        Tokeniser.from_dict(["not", "a", "dict"])  # type: ignore[arg-type]


def test_from_options_defaults_and_values():
    assert Tokeniser.from_options(None, None, None, None) == Tokeniser()
    assert Tokeniser.from_options("none", 1, 0.9, 10) == Tokeniser("none", 1, 0.9, 10)
    with pytest.raises(UsageError, match="min_df"):
        Tokeniser.from_options(None, 0, None, None)


def test_from_options_reads_a_stop_word_file(tmp_path):
    path = tmp_path / "stop.txt"
    path.write_text("# my words\nFoo\n\n  bar  \nfoo\n#comment\n", encoding="utf-8")
    tokeniser = Tokeniser.from_options(str(path), None, None, None)
    assert tokeniser.stop_words == ("bar", "foo")
    assert tokeniser.tokens("foo the BAR baz") == ["the", "baz"]


def test_from_options_missing_stop_word_file(tmp_path):
    missing = tmp_path / "nope.txt"
    with pytest.raises(DataError, match="cannot read stop-word file .*nope.txt"):
        Tokeniser.from_options(str(missing), None, None, None)


# ---------------------------------------------------------------------------- vocabulary
# Document frequencies (documents containing the term) and total counts, by hand:
#   apple  df 4, total 6     banana df 3, total 3     cherry df 2, total 5
#   date   df 1, total 1     egg    df 5, total 5
CORPUS = [
    "apple apple egg cherry cherry cherry",
    "apple banana egg",
    "apple banana egg cherry cherry",
    "apple apple banana egg",
    "egg date",
]


def test_min_df():
    assert build_vocabulary(CORPUS, Tokeniser("none", 1, 1.0)) == (
        ["apple", "banana", "cherry", "date", "egg"],
        5,
    )
    assert build_vocabulary(CORPUS, Tokeniser("none", 2, 1.0))[0] == [
        "apple",
        "banana",
        "cherry",
        "egg",
    ]
    assert build_vocabulary(CORPUS, Tokeniser("none", 3, 1.0))[0] == ["apple", "banana", "egg"]
    assert build_vocabulary(CORPUS, Tokeniser("none", 5, 1.0))[0] == ["egg"]


def test_max_df_is_a_fraction_of_documents_inclusive():
    # egg is in 5/5, apple 4/5 = 0.8, banana 3/5 = 0.6, cherry 2/5, date 1/5
    assert build_vocabulary(CORPUS, Tokeniser("none", 1, 0.8))[0] == [
        "apple",
        "banana",
        "cherry",
        "date",
    ]
    assert build_vocabulary(CORPUS, Tokeniser("none", 1, 0.6))[0] == ["banana", "cherry", "date"]
    assert build_vocabulary(CORPUS, Tokeniser("none", 1, 0.59))[0] == ["cherry", "date"]
    assert build_vocabulary(CORPUS, Tokeniser("none", 1, 0.2))[0] == ["date"]


def test_max_vocab_keeps_the_most_frequent_ties_alphabetical():
    # totals: apple 6, cherry 5, egg 5, banana 3, date 1
    rules = {"stop_words": "none", "min_df": 1, "max_df": 1.0}
    assert build_vocabulary(CORPUS, Tokeniser(**rules, max_vocab=1))[0] == ["apple"]
    # cherry and egg tie at 5: cherry comes first alphabetically
    assert build_vocabulary(CORPUS, Tokeniser(**rules, max_vocab=2))[0] == ["apple", "cherry"]
    assert build_vocabulary(CORPUS, Tokeniser(**rules, max_vocab=3))[0] == [
        "apple",
        "cherry",
        "egg",
    ]
    assert build_vocabulary(CORPUS, Tokeniser(**rules, max_vocab=99))[0] == [
        "apple",
        "banana",
        "cherry",
        "date",
        "egg",
    ]


def test_max_vocab_applies_after_the_document_frequency_rules():
    # max_df 0.8 drops egg; of the rest by total: apple 6, cherry 5, banana 3
    assert build_vocabulary(CORPUS, Tokeniser("none", 1, 0.8, max_vocab=2))[0] == [
        "apple",
        "cherry",
    ]


def test_vocabulary_takes_any_iterable():
    vocabulary, n = build_vocabulary(iter(CORPUS), Tokeniser("none", 2, 1.0))
    assert n == 5 and "date" not in vocabulary


def test_no_documents():
    with pytest.raises(DataError, match="no documents"):
        build_vocabulary([], Tokeniser())


def test_no_words_at_all():
    with pytest.raises(DataError, match="stop_words"):
        build_vocabulary(["the and of", "", "42 a"], Tokeniser(min_df=1))


def test_nothing_survives_min_df_says_so():
    with pytest.raises(DataError) as info:
        build_vocabulary(["apple", "banana", "cherry"], Tokeniser(min_df=2))
    message = info.value.render({"min_df": "--min-df"})
    assert "lower --min-df" in message and "\n" not in message


def test_every_common_word_too_common():
    with pytest.raises(DataError) as info:
        build_vocabulary(["apple pie", "apple tart", "apple"], Tokeniser(min_df=2, max_df=0.5))
    assert "raise --max-df" in info.value.render({"max_df": "--max-df"})


def test_bad_settings_refused_before_counting():
    with pytest.raises(UsageError):
        build_vocabulary(CORPUS, Tokeniser(max_vocab=0))


def test_counter_over_blocks_equals_one_pass():
    tokeniser = Tokeniser("none", 2, 0.9, max_vocab=3)
    counter = VocabularyCounter(tokeniser)
    counter.update(CORPUS[:2])
    assert counter.n_documents == 2
    counter.update(iter(CORPUS[2:]))
    assert counter.n_documents == 5
    assert (counter.vocabulary(), counter.n_documents) == build_vocabulary(CORPUS, tokeniser)


@given(
    st.lists(
        st.lists(st.sampled_from(["ab", "cd", "ef", "gh", "ij", "the", "7", "x"]), max_size=8).map(
            " ".join
        ),
        min_size=1,
        max_size=30,
    ),
    st.integers(0, 30),
    st.integers(1, 3),
    st.sampled_from([0.3, 0.5, 1.0]),
    st.integers(1, 4),
)
def test_counter_blocks_property(docs, cut, min_df, max_df, max_vocab):
    tokeniser = Tokeniser("english", min_df, max_df, max_vocab)
    counter = VocabularyCounter(tokeniser)
    counter.update(docs[:cut])
    counter.update(docs[cut:])
    try:
        expected = build_vocabulary(docs, tokeniser)
    except DataError as exc:
        with pytest.raises(DataError) as info:
            counter.vocabulary()
        assert str(info.value) == str(exc)
        return
    assert (counter.vocabulary(), counter.n_documents) == expected


# ---------------------------------------------------------------------------- count matrix
def test_count_matrix_by_hand():
    matrix = count_matrix(CORPUS, ["egg", "apple", "cherry"], ALL)
    assert isinstance(matrix, scipy.sparse.csr_matrix)
    assert matrix.dtype == np.float64 and matrix.shape == (5, 3)
    assert matrix.has_sorted_indices and matrix.has_canonical_format
    expected = [[1, 2, 3], [1, 1, 0], [1, 1, 2], [1, 2, 0], [1, 0, 0]]
    np.testing.assert_array_equal(matrix.toarray(), expected)


def test_count_matrix_ignores_unseen_words_and_keeps_empty_rows():
    matrix = count_matrix(["zebra apple zebra", "", "quince"], ["apple", "banana"], ALL)
    np.testing.assert_array_equal(matrix.toarray(), [[1, 0], [0, 0], [0, 0]])
    assert matrix.nnz == 1


def test_count_matrix_from_a_generator_and_empty_inputs():
    matrix = count_matrix((d for d in CORPUS), ["date"], ALL)
    assert matrix.shape == (5, 1) and matrix.sum() == 1
    assert count_matrix([], ["a1"], ALL).shape == (0, 1)


def test_count_matrix_refuses_a_repeated_term():
    with pytest.raises(DataError, match="repeats"):
        count_matrix(CORPUS, ["apple", "egg", "apple"], ALL)


NEWS = [
    "The quick brown fox jumps over the lazy dog.",
    "Café society: naïve critics and quick-witted FOXES!",
    "Dogs, dogs, DOGS and more dogs; a dog's life.",
    "Ελληνικά κείμενα και Ελληνικά γράμματα",
    "",
    "snake_case identifiers split at the underscore",
    "Mixed b2b and covid19 tokens, x y z single letters",
]


def test_count_matrix_matches_sklearn_countvectorizer():
    tokeniser = Tokeniser(stop_words="english", min_df=1, max_df=1.0)
    vocabulary, n = build_vocabulary(NEWS, tokeniser)
    assert n == len(NEWS) and "dogs" in vocabulary and "ελληνικά" in vocabulary
    ours = count_matrix(NEWS, vocabulary, tokeniser)
    reference = CountVectorizer(
        lowercase=True,
        token_pattern=r"(?u)[^\W_]{2,}",
        stop_words=None,
        vocabulary=vocabulary,
        dtype=np.float64,
    ).transform(NEWS)
    assert ours.shape == reference.shape
    assert (ours != reference).nnz == 0


def test_vocabulary_matches_sklearn_document_frequency_rules():
    docs = [d for d in NEWS if d] * 2 + ["fox dog", "dogs fox"]
    tokeniser = Tokeniser(stop_words="english", min_df=3, max_df=0.5)
    vocabulary, _ = build_vocabulary(docs, tokeniser)
    reference = CountVectorizer(
        token_pattern=r"(?u)[^\W_]{2,}",
        stop_words=sorted(ENGLISH_STOP_WORDS),
        min_df=3,
        max_df=0.5,
    ).fit(docs)
    assert vocabulary == sorted(reference.vocabulary_)


# ---------------------------------------------------------------------------- read_documents
def test_text_one_document_per_line(tmp_path):
    path = tmp_path / "docs.txt"
    path.write_bytes(b"first doc\n\nthird line\r\nlast\n")
    assert read_documents(str(path)) == ["first doc", "", "third line", "last"]
    path.write_bytes(b"no final newline\nend")
    assert read_documents(str(path)) == ["no final newline", "end"]
    path.write_bytes(b"")
    assert read_documents(str(path)) == []
    path.write_bytes(b"\n\n")
    assert read_documents(str(path)) == ["", ""]


def test_text_keeps_other_line_separators_and_drops_a_bom(tmp_path):
    path = tmp_path / "docs.txt"
    path.write_bytes("\ufeffone\u2028same\x0bline\ntwo\n".encode())
    assert read_documents(str(path)) == ["one\u2028same\x0bline", "two"]


def test_text_from_stdin(stdin):
    stdin("café\n\nnaïve\n".encode())
    assert read_documents("-") == ["café", "", "naïve"]


def test_text_not_utf8_names_line_and_byte(tmp_path, stdin):
    path = tmp_path / "latin.txt"
    path.write_bytes(b"fine\nalso fine\ncaf\xe9\n")
    with pytest.raises(DataError) as info:
        read_documents(str(path))
    assert "line 3 (byte 18)" in str(info.value) and "UTF-8" in str(info.value)
    stdin(b"\xff\n")
    with pytest.raises(DataError, match="standard input .*line 1 \\(byte 0\\)"):
        read_documents("-")


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        read_documents(str(tmp_path / "missing.txt"))
    with pytest.raises(DataError, match="directory"):
        read_documents(str(tmp_path))
    with pytest.raises(DataError, match="does not exist"):
        read_documents(str(tmp_path / "missing.csv"), "csv", "text")


def test_unknown_format_and_text_column_on_text(tmp_path):
    path = tmp_path / "docs.txt"
    path.write_text("a\n", encoding="utf-8")
    with pytest.raises(UsageError, match="fmt"):
        read_documents(str(path), "json")
    with pytest.raises(UsageError, match="text_column"):
        read_documents(str(path), "text", "body")


TABLE = pd.DataFrame({"id": ["1", "2", "3", "4"], "body": ["Café au lait", "", "x, y", "NA"]})


def test_csv_text_column(tmp_path):
    path = tmp_path / "docs.csv"
    path.write_text('id,body,other\n1,Café au lait,z\n2,,z\n3,"x, y",z\n4,NA,z\n', encoding="utf-8")
    assert read_documents(str(path), "csv", "body") == TABLE["body"].tolist()
    assert read_documents(str(path), None, "body") == TABLE["body"].tolist()
    assert read_documents(str(path), "csv", "id") == ["1", "2", "3", "4"]


def test_csv_quoted_newlines_short_rows_and_delimiter(tmp_path):
    path = tmp_path / "docs.csv"
    path.write_text('id;body\n1;"two\nlines"\n2\n3;""\n', encoding="utf-8")
    assert read_documents(str(path), "csv", "body", delimiter=";") == ["two\nlines", "", ""]


def test_tsv_text_column(tmp_path, stdin):
    path = tmp_path / "docs.tsv"
    TABLE.to_csv(path, sep="\t", index=False)
    assert read_documents(str(path), "tsv", "body") == TABLE["body"].tolist()
    stdin(path.read_bytes())
    assert read_documents("-", "tsv", "body") == TABLE["body"].tolist()


def test_parquet_text_column_nulls_and_stdin(tmp_path, stdin):
    path = tmp_path / "docs.parquet"
    table = pa.table(
        {
            "body": pa.array(["hello world", None, "naïve"], pa.string()),
            "n": pa.array([1, 2, 3]),
            "cat": pa.array(["a", "b", None]).dictionary_encode(),
        }
    )
    pq.write_table(table, path)
    assert read_documents(str(path), "parquet", "body") == ["hello world", "", "naïve"]
    assert read_documents(str(path), None, "cat") == ["a", "b", ""]
    assert read_documents(str(path), "parquet", "n") == ["1", "2", "3"]
    stdin(path.read_bytes())
    assert read_documents("-", "parquet", "body") == ["hello world", "", "naïve"]


def test_table_needs_text_column(tmp_path):
    path = tmp_path / "docs.csv"
    TABLE.to_csv(path, index=False)
    with pytest.raises(DataError, match="text_column"):
        read_documents(str(path), "csv")


def test_unknown_column_lists_the_available_ones(tmp_path):
    csv = tmp_path / "docs.csv"
    TABLE.to_csv(csv, index=False)
    with pytest.raises(DataError) as info:
        read_documents(str(csv), "csv", "text")
    assert "'text'" in str(info.value) and "'id', 'body'" in str(info.value)
    parquet = tmp_path / "docs.parquet"
    TABLE.to_parquet(parquet)
    with pytest.raises(DataError, match="'id', 'body'"):
        read_documents(str(parquet), "parquet", "text")


def test_csv_not_utf8(tmp_path):
    path = tmp_path / "docs.csv"
    path.write_bytes(b"id,body\n1,ok\n2,caf\xe9\n")
    with pytest.raises(DataError, match="line 3 \\(byte 18\\)"):
        read_documents(str(path), "csv", "body")


def test_bad_tables(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with pytest.raises(DataError, match="empty"):
        read_documents(str(empty), "csv", "body")
    broken = tmp_path / "broken.csv"
    broken.write_bytes(b'body\n"never closed\n')
    with pytest.raises(DataError, match="cannot parse"):
        read_documents(str(broken), "csv", "body")
    not_parquet = tmp_path / "fake.parquet"
    not_parquet.write_bytes(b"body\nhello\n")
    with pytest.raises(DataError, match="not a valid Parquet"):
        read_documents(str(not_parquet), "parquet", "body")


# ---------------------------------------------------------------------------- iter_documents
@pytest.mark.parametrize("block", [1, 2, 3, 100])
def test_iter_documents_blocks_equal_read_documents(tmp_path, block):
    lines = [f"document {i}" if i % 3 else "" for i in range(7)]
    text = tmp_path / "docs.txt"
    text.write_text("\n".join(lines) + "\n", encoding="utf-8")
    frame = pd.DataFrame({"body": lines})
    frame.to_csv(tmp_path / "docs.csv", index=False)
    frame.to_csv(tmp_path / "docs.tsv", sep="\t", index=False)
    frame.to_parquet(tmp_path / "docs.parquet")
    for name, fmt, column in [
        ("docs.txt", "text", None),
        ("docs.csv", "csv", "body"),
        ("docs.tsv", "tsv", "body"),
        ("docs.parquet", "parquet", "body"),
    ]:
        path = str(tmp_path / name)
        blocks = list(iter_documents(path, fmt, column, block=block))
        assert all(0 < len(b) <= block for b in blocks)
        assert sum(blocks, []) == read_documents(path, fmt, column), name


def test_iter_documents_feeds_the_counter(tmp_path):
    path = tmp_path / "docs.txt"
    path.write_text("\n".join(CORPUS) + "\n", encoding="utf-8")
    tokeniser = Tokeniser("none", 2, 0.9)
    counter = VocabularyCounter(tokeniser)
    for block in iter_documents(str(path), block=2):
        counter.update(block)
    assert (counter.vocabulary(), counter.n_documents) == build_vocabulary(CORPUS, tokeniser)


def test_iter_documents_refuses_stdin_at_the_call():
    with pytest.raises(UsageError, match="needs a file, not stdin"):
        iter_documents("-")


def test_iter_documents_errors_at_the_call(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        iter_documents(str(tmp_path / "missing.txt"))
    csv = tmp_path / "docs.csv"
    TABLE.to_csv(csv, index=False)
    with pytest.raises(DataError, match="'id', 'body'"):
        iter_documents(str(csv), "csv", "text")
    with pytest.raises(DataError, match="text_column"):
        iter_documents(str(csv), "csv")
    with pytest.raises(UsageError, match="block"):
        iter_documents(str(csv), "csv", "body", block=0)


def test_iter_documents_not_utf8(tmp_path):
    text = tmp_path / "docs.txt"
    text.write_bytes(b"ok\nok\n\xc3(\n")
    with pytest.raises(DataError, match="line 3 \\(byte 6\\)"):
        list(iter_documents(str(text), block=1))
    csv = tmp_path / "docs.csv"
    csv.write_bytes(b"body\n" + b"fine\n" * 5000 + b"caf\xe9\n")
    with pytest.raises(DataError, match="line 5002 "):
        list(iter_documents(str(csv), "csv", "body", block=100))


# ---------------------------------------------------------------------------- read_mtx
def test_read_mtx_round_trip(tmp_path, stdin):
    rng = np.random.default_rng(0)
    dense = rng.poisson(0.7, size=(6, 9)).astype(np.float64)
    dense[2] = 0.0  # a document without known words stays a row
    path = tmp_path / "counts.mtx"
    scipy.io.mmwrite(str(path), scipy.sparse.coo_matrix(dense))
    matrix = read_mtx(str(path))
    assert isinstance(matrix, scipy.sparse.csr_matrix) and matrix.dtype == np.float64
    assert matrix.has_canonical_format
    np.testing.assert_array_equal(matrix.toarray(), dense)
    stdin(path.read_bytes())
    np.testing.assert_array_equal(read_mtx("-").toarray(), dense)


def test_read_mtx_integer_dense_and_duplicates(tmp_path):
    path = tmp_path / "counts.mtx"
    scipy.io.mmwrite(str(path), np.array([[1, 0], [0, 3]]))
    np.testing.assert_array_equal(read_mtx(str(path)).toarray(), [[1, 0], [0, 3]])
    path.write_text(
        "%%MatrixMarket matrix coordinate integer general\n2 2 3\n1 1 2\n1 1 3\n2 2 1\n"
    )
    matrix = read_mtx(str(path))
    np.testing.assert_array_equal(matrix.toarray(), [[5, 0], [0, 1]])
    assert matrix.nnz == 2


@pytest.mark.parametrize("value", ["-1", "nan", "inf"])
def test_read_mtx_refuses_negative_and_non_finite(tmp_path, value):
    path = tmp_path / "bad.mtx"
    header = "%%MatrixMarket matrix coordinate real general\n"
    path.write_text(f"{header}2 2 2\n1 1 1\n2 2 {value}\n")
    with pytest.raises(DataError, match="counts must be finite numbers >= 0"):
        read_mtx(str(path))


def test_read_mtx_refuses_corrupt_missing_empty_and_complex(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        read_mtx(str(tmp_path / "missing.mtx"))
    corrupt = tmp_path / "corrupt.mtx"
    corrupt.write_text("this is not a matrix\n")
    with pytest.raises(DataError, match="not a valid Matrix Market"):
        read_mtx(str(corrupt))
    truncated = tmp_path / "truncated.mtx"
    truncated.write_text("%%MatrixMarket matrix coordinate real general\n3 3 4\n1 1 1\n")
    with pytest.raises(DataError, match="not a valid Matrix Market"):
        read_mtx(str(truncated))
    empty = tmp_path / "empty.mtx"
    empty.write_text("%%MatrixMarket matrix coordinate real general\n0 4 0\n")
    with pytest.raises(DataError, match="empty matrix"):
        read_mtx(str(empty))
    complex_ = tmp_path / "complex.mtx"
    complex_.write_text("%%MatrixMarket matrix coordinate complex general\n1 1 1\n1 1 1 2\n")
    with pytest.raises(DataError, match="complex"):
        read_mtx(str(complex_))


# ---------------------------------------------------------------------------- read_vocabulary
def test_read_vocabulary(tmp_path, stdin):
    path = tmp_path / "vocab.txt"
    path.write_bytes("apple\nnew york\ncafé\r\n".encode())
    assert read_vocabulary(str(path), 3) == ["apple", "new york", "café"]
    stdin(b"a\nb")
    assert read_vocabulary("-", 2) == ["a", "b"]


def test_read_vocabulary_length_mismatch_names_both_numbers(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text("a\nb\nc\n", encoding="utf-8")
    with pytest.raises(DataError) as info:
        read_vocabulary(str(path), 4)
    assert "3 terms" in str(info.value) and "4 columns" in str(info.value)


def test_read_vocabulary_repeats_empty_and_unreadable(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text("a\nb\na\n", encoding="utf-8")
    with pytest.raises(DataError, match="repeats the term 'a' \\(lines 1 and 3\\)"):
        read_vocabulary(str(path), 3)
    path.write_text("a\n\nb\n", encoding="utf-8")
    with pytest.raises(DataError, match="line 2 .* is empty"):
        read_vocabulary(str(path), 3)
    path.write_bytes(b"a\n\xff\n")
    with pytest.raises(DataError, match="UTF-8"):
        read_vocabulary(str(path), 2)
    with pytest.raises(DataError, match="does not exist"):
        read_vocabulary(str(tmp_path / "missing.txt"), 1)


def test_decomposed_accents_are_the_composed_letter():
    from emcli.data.text import Tokeniser

    tok = Tokeniser(stop_words="none")
    assert tok.tokens("Cafe\u0301 na\u0131ve") == tok.tokens("Café naıve") == ["café", "naıve"]


@given(
    lines=st.lists(st.text(alphabet="ab é\r", max_size=8), max_size=12),
    final=st.booleans(),
    bom=st.booleans(),
    size=st.integers(1, 40),
)
@settings(max_examples=200, deadline=None)
def test_byte_ranges_give_every_document_once_in_order(tmp_path_factory, lines, final, bom, size):
    from emcli.data.text import read_text_range, text_ranges

    path = tmp_path_factory.mktemp("ranges") / "d.txt"
    text = ("\ufeff" if bom else "") + "\n".join(lines) + ("\n" if final else "")
    path.write_bytes(text.encode("utf-8"))
    want = read_documents(str(path), "text")
    got = [doc for a, b in text_ranges(str(path), size) for doc in read_text_range(str(path), a, b)]
    assert got == want

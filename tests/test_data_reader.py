"""The one reader (emcli.data): every format, standard input, blocks and parts, weights.

The reference is the hand-made table itself (values written into small files here), and
the three ways of reading it (whole, by blocks, by parts) must give the same numbers.
"""

from __future__ import annotations

import io
import sys

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import emcli
from emcli.data import reader
from emcli.data.formats import CellError
from emcli.data.parts import input_files, plan_parts, read_part
from emcli.data.reader import Block, open_blocks, read_table
from emcli.errors import DataError, UsageError

# 13 rows: a, b (features, with gaps), w (weights), name (text, skipped by default).
A = np.array([1.5, -2.0, 3.25, np.nan, 5.0, 6.0, -7.5, 8.0, 9.0, 10.0, 11.0, 12.5, 13.0])
B = np.array([0.0, 1.0, 2.0, 3.0, np.nan, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 1e3])
W = np.array([1.0, 2.0, 0.0, 1.0, 3.0, 1.0, 1.0, 0.5, 2.0, 1.0, 1.0, 4.0, 1.0])
N = len(A)


def _cell(v: float) -> str:
    return "" if np.isnan(v) else repr(float(v))


def csv_text(sep: str = ",", quoted: bool = False) -> str:
    q = '"' if quoted else ""
    lines = [sep.join(f"{q}{c}{q}" for c in ("a", "name", "b", "w"))]
    for i in range(N):
        lines.append(
            sep.join([f"{q}{_cell(A[i])}{q}", f"{q}row {i}{q}", _cell(B[i]), repr(float(W[i]))])
        )
    return "\n".join(lines) + "\n"


def arrow_table() -> pa.Table:
    return pa.table({"a": A, "name": [f"row {i}" for i in range(N)], "b": B, "w": W})


@pytest.fixture()
def files(tmp_path):
    """The same table in every format and spelling the reader takes."""
    out = {
        "csv": tmp_path / "t.csv",
        "tsv": tmp_path / "t.tsv",
        "tab": tmp_path / "t.tab",
        "parquet": tmp_path / "t.parquet",
        "pq": tmp_path / "t.pq",
        "quoted-bom-crlf": tmp_path / "odd.csv",
    }
    out["csv"].write_text(csv_text())
    out["tsv"].write_text(csv_text("\t"))
    out["tab"].write_text(csv_text("\t"))
    pq.write_table(arrow_table(), out["parquet"], row_group_size=4)
    pq.write_table(arrow_table(), out["pq"], row_group_size=5)
    odd = csv_text(quoted=True).replace("\n", "\r\n")
    out["quoted-bom-crlf"].write_bytes(b"\xef\xbb\xbf" + odd.encode())
    return out


def stdin(monkeypatch, data: bytes) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))


def expected_x(columns=("a", "b")) -> np.ndarray:
    return np.column_stack([{"a": A, "b": B}[c] for c in columns])


# ---------------------------------------------------------------------------- read_table
@pytest.mark.parametrize("kind", ["csv", "tsv", "tab", "parquet", "pq", "quoted-bom-crlf"])
def test_read_table_every_format(files, kind):
    table = read_table(str(files[kind]))
    assert table.columns == ["a", "b", "w"]
    assert table.notes == ["skipped non-numeric column(s): name"]
    np.testing.assert_array_equal(table.x, np.column_stack([A, B, W]))
    assert table.x.dtype == np.float64 and table.x.flags.c_contiguous
    assert table.weights is None and table.weights_column is None


@pytest.mark.parametrize("kind", ["csv", "parquet", "quoted-bom-crlf"])
def test_read_table_weights_column(files, kind):
    table = read_table(str(files[kind]), weights="w")
    assert table.columns == ["a", "b"]  # numeric, but weights are not a feature
    np.testing.assert_array_equal(table.x, expected_x())
    assert table.weights.dtype == np.float64 and table.weights.shape == (N,)
    np.testing.assert_array_equal(table.weights, W)
    assert table.weights_column == "w"
    chosen = read_table(str(files[kind]), columns=["b"], weights="w")
    np.testing.assert_array_equal(chosen.x, expected_x(["b"]))
    np.testing.assert_array_equal(chosen.weights, W)


def test_read_table_from_stdin_csv_and_parquet(files, monkeypatch):
    stdin(monkeypatch, files["csv"].read_bytes())
    table = read_table("-", weights="w")
    np.testing.assert_array_equal(table.x, expected_x())
    np.testing.assert_array_equal(table.weights, W)
    stdin(monkeypatch, files["parquet"].read_bytes())
    table = read_table("-", fmt="parquet", columns=["b", "a"])
    np.testing.assert_array_equal(table.x, expected_x(["b", "a"]))


def test_format_option_and_delimiter(files, tmp_path):
    blob = tmp_path / "t.txt"
    blob.write_text(csv_text(";"))
    with pytest.raises(DataError, match="cannot tell the format") as error:
        read_table(str(blob))
    assert "fmt csv|tsv|parquet" in str(error.value)  # the parameter, not a CLI flag
    table = read_table(str(blob), fmt="csv", delimiter=";", weights="w")
    np.testing.assert_array_equal(table.x, expected_x())
    assert read_table(str(files["tsv"]), fmt="csv", delimiter="tab").columns == ["a", "b", "w"]
    with pytest.raises(UsageError, match="delimiter ';;' must be one character"):
        read_table(str(files["csv"]), delimiter=";;")


def test_lazy_emcli_read_table(files):
    assert emcli.read_table is read_table
    np.testing.assert_array_equal(emcli.read_table(str(files["csv"]), weights="w").weights, W)


# ---------------------------------------------------------------------------- blocks
@pytest.mark.parametrize("kind", ["csv", "tsv", "parquet", "quoted-bom-crlf"])
@pytest.mark.parametrize("weights", [None, "w"])
def test_blocks_equal_read_table(files, monkeypatch, kind, weights):
    monkeypatch.setattr(reader, "CSV_BLOCK_BYTES", 23)  # a few rows per piece
    monkeypatch.setattr(reader, "PARQUET_BATCH_ROWS", 3)
    whole = read_table(str(files[kind]), columns=["b", "a"], weights=weights)
    with open_blocks(str(files[kind]), ["b", "a"], weights=weights) as blocks:
        assert blocks.columns == ["b", "a"] and blocks.weights_column == weights
        got = list(blocks)
    assert len(got) > 3
    assert [b.first for b in got] == list(np.cumsum([0] + [len(b.x) for b in got[:-1]]))
    np.testing.assert_array_equal(np.vstack([b.x for b in got]), whole.x)
    if weights is None:
        assert all(b.w is None for b in got)
    else:
        np.testing.assert_array_equal(np.concatenate([b.w for b in got]), W)
        assert all(len(b.w) == len(b.x) for b in got)


def test_blocks_cut_to_block_rows_and_rebatched(files):
    got = list(open_blocks(str(files["parquet"]), ["a"], weights="w", block_rows=5).blocks(2))
    assert max(len(b.x) for b in got) <= 2
    again = list(reader.rebatch(got, 4))
    assert [len(b.x) for b in again] == [4, 4, 4, 1]
    np.testing.assert_array_equal(np.concatenate([b.w for b in again]), W)
    assert [b.first for b in again] == [0, 4, 8, 12]


def test_blocks_from_stdin(files, monkeypatch):
    monkeypatch.setattr(reader, "CSV_BLOCK_BYTES", 40)
    for kind, fmt in (("csv", None), ("parquet", "parquet")):
        stdin(monkeypatch, files[kind].read_bytes())
        got = list(open_blocks("-", ["a", "b"], fmt=fmt, weights="w"))
        np.testing.assert_array_equal(np.vstack([b.x for b in got]), expected_x())
        np.testing.assert_array_equal(np.concatenate([b.w for b in got]), W)


def test_blocks_name_a_late_bad_cell_by_row(tmp_path, monkeypatch):
    monkeypatch.setattr(reader, "CSV_BLOCK_BYTES", 16)
    path = tmp_path / "late.csv"
    path.write_text("a,w\n" + "".join(f"{i},1\n" for i in range(40)) + "7,x\n8,oops\n")
    with pytest.raises(
        CellError,
        match=r"weights column 'w' is not numeric \(it holds 'x', "
        r"data row 41\)",
    ):
        list(open_blocks(str(path), ["a"], weights="w"))
    with pytest.raises(
        CellError,
        match=r"column 'w' is not numeric \(it holds 'x', data row "
        r"41\); choose numeric columns with columns",
    ):
        list(open_blocks(str(path), ["a", "w"]))


def test_blocks_refuse_unknown_and_doubled_columns(files):
    with pytest.raises(DataError, match="unknown weights column 'zz'.*with weights$"):
        open_blocks(str(files["csv"]), ["a"], weights="zz")
    with pytest.raises(DataError, match="no column 'c'"):
        open_blocks(str(files["parquet"]), ["a", "c"])
    with pytest.raises(DataError, match="is the weights column"):
        open_blocks(str(files["csv"]), ["a", "w"], weights="w")
    with pytest.raises(CellError, match="'name' is not numeric.*data row 1"):
        open_blocks(str(files["parquet"]), ["name"])


# ---------------------------------------------------------------------------- parts
@pytest.mark.parametrize("kind", ["csv", "parquet", "quoted-bom-crlf"])
@pytest.mark.parametrize("block_rows", [None, 1, 3])
def test_parts_equal_read_table(files, kind, block_rows):
    path = str(files[kind])
    whole = read_table(path, columns=["a", "b"], weights="w")
    fmt = "parquet" if kind == "parquet" else "csv"
    parts = plan_parts(input_files(path), fmt, block_rows)
    if block_rows:
        assert len(parts) > 3
    read = [read_part(p, ["a", "b"], "w", ",") for p in parts]
    np.testing.assert_array_equal(np.vstack([x for x, _ in read]), whole.x)
    np.testing.assert_array_equal(np.concatenate([w for _, w in read]), W)
    unweighted = [read_part(p, ["b"]) for p in parts]
    assert all(w is None for _, w in unweighted)
    np.testing.assert_array_equal(np.vstack([x for x, _ in unweighted]), expected_x(["b"]))


def test_parts_of_a_glob_in_name_order(tmp_path):
    for i, rows in enumerate(np.array_split(np.arange(N), 3)):
        pq.write_table(arrow_table().take(rows), tmp_path / f"part-{i}.parquet", row_group_size=2)
    files = input_files(str(tmp_path / "part-*.parquet"))
    assert files == sorted(files) and len(files) == 3
    read = [read_part(p, ["a"], "w") for p in plan_parts(files, "parquet")]
    np.testing.assert_array_equal(np.vstack([x for x, _ in read]), expected_x(["a"]))
    np.testing.assert_array_equal(np.concatenate([w for _, w in read]), W)
    assert input_files(str(tmp_path)) == files  # a directory of Parquet files
    with pytest.raises(DataError, match="no file matches"):
        input_files(str(tmp_path / "nothing-*.csv"))


def test_a_bad_cell_in_a_part_counts_rows_from_the_part(tmp_path):
    path = tmp_path / "late.csv"
    path.write_text("a,w\n" + "".join(f"{i},1\n" for i in range(10)) + "7,x\n")
    parts = plan_parts([str(path)], "csv", block_rows=2)
    rows = 0
    for part in parts:
        try:
            rows += len(read_part(part, ["a"], "w")[0])
        except CellError as error:
            assert error.weights and error.value == "x"
            assert str(error.shifted(rows)).startswith(
                "weights column 'w' is not numeric (it holds 'x', data row 11)"
            )
            break
    else:
        pytest.fail("no CellError")


def test_csv_piece_ends_follow_records():
    text = b'a,s\n1,"two\nlines, and ""quotes"""\n2,plain\n3,"x\n\ny"\n4,z'
    for size in (1, 3, 7, 1000):
        pieces = list(reader.record_pieces(io.BytesIO(text), size))
        assert b"".join(pieces) == text
        rows = [pcsv.read_csv(io.BytesIO(b"a,s\n" + p)).num_rows for p in pieces[1:]]
        assert sum(rows) + pcsv.read_csv(io.BytesIO(pieces[0])).num_rows == 4


def test_block_is_a_named_tuple():
    block = Block(3, np.zeros((2, 1)), None)
    first, x, w = block
    assert (first, x.shape, w) == (3, (2, 1), None)


# ---------------------------------------------------------------------------- Parquet on stdin
def test_parquet_on_stdin_is_recognised_by_its_magic(files, monkeypatch):
    # Without fmt: Parquet's magic bytes PAR1 (then a binary page header) say Parquet.
    stdin(monkeypatch, files["parquet"].read_bytes())
    no_whole_table(monkeypatch)
    table = read_table("-", columns=["b", "a"], weights="w")
    np.testing.assert_array_equal(table.x, expected_x(("b", "a")))
    np.testing.assert_array_equal(table.weights, W)
    stdin(monkeypatch, files["parquet"].read_bytes())
    got = list(open_blocks("-", ["a"]).blocks())
    np.testing.assert_array_equal(np.concatenate([b.x for b in got]), expected_x(("a",)))


def test_csv_on_stdin_whose_first_column_is_named_par1_stays_csv(monkeypatch):
    stdin(monkeypatch, b"PAR1,b\n1,2\n3,4\n")
    table = read_table("-")
    assert table.columns == ["PAR1", "b"]
    np.testing.assert_array_equal(table.x, [[1.0, 2.0], [3.0, 4.0]])


def test_fit_reads_parquet_piped_without_format(files):
    from clirun import run

    result = run(
        "fit", "-", "-k", "2", "-c", "a,b", "--params", "-", stdin=files["parquet"].read_bytes()
    )
    assert result.exit_code == 0, result.output
    assert '"n_samples": 13' in result.stdout.replace("\n", " ").replace("  ", " ")


def test_truncated_parquet_on_stdin_says_parquet(files, monkeypatch):
    data = files["parquet"].read_bytes()
    stdin(monkeypatch, data[: len(data) // 2])
    with pytest.raises(DataError, match="not a valid Parquet file"):
        read_table("-")


# ---------------------------------------------------------------------------- read in pieces
def no_whole_table(monkeypatch) -> None:
    """Make the whole-table fallback fail: the piece-wise path must have read the input."""

    def whole(*_):
        raise AssertionError("read as a whole Arrow table")

    monkeypatch.setattr(reader, "_whole_arrow", whole)


@pytest.mark.parametrize("kind", ["csv", "tsv", "quoted-bom-crlf"])
def test_csv_read_in_many_pieces_gives_the_table(files, monkeypatch, kind):
    # Pieces of 64 bytes: a few rows each, every piece parsed on its own into the array.
    monkeypatch.setattr(reader, "CSV_BLOCK_BYTES", 64)
    no_whole_table(monkeypatch)
    table = read_table(str(files[kind]), weights="w")
    assert table.columns == ["a", "b"] and table.notes == ["skipped non-numeric column(s): name"]
    np.testing.assert_array_equal(table.x, expected_x())
    np.testing.assert_array_equal(table.weights, W)
    assert table.x.flags.c_contiguous and table.x.flags.owndata


def test_csv_whose_column_turns_to_text_in_a_later_piece(tmp_path, monkeypatch):
    # The whole file decides a column's type: c is numbers for 40 rows, then text.
    monkeypatch.setattr(reader, "CSV_BLOCK_BYTES", 64)
    rows = [f"{i},{i * 0.5}" for i in range(40)] + ["40,oops"]
    path = tmp_path / "late.csv"
    path.write_text("a,c\n" + "\n".join(rows) + "\n")
    table = read_table(str(path))
    assert table.columns == ["a"] and table.notes == ["skipped non-numeric column(s): c"]
    np.testing.assert_array_equal(table.x[:, 0], np.arange(41.0))
    with pytest.raises(
        CellError, match=r"column 'c' is not numeric \(it holds 'oops', data row 41\)"
    ):
        read_table(str(path), columns=["c"])


def test_csv_longer_than_its_estimate_grows_the_array(tmp_path, monkeypatch):
    # Short rows first (a small estimate of the row count), then many more.
    monkeypatch.setattr(reader, "CSV_BLOCK_BYTES", 256)
    monkeypatch.setattr(reader, "estimated_rows", lambda *_: 3)
    no_whole_table(monkeypatch)
    x = np.random.default_rng(1).normal(size=(5000, 3))
    path = tmp_path / "long.csv"
    np.savetxt(path, x, delimiter=",", header="p,q,r", comments="", fmt="%.17g")
    np.testing.assert_array_equal(read_table(str(path)).x, x)


def test_csv_column_of_empty_cells_only_has_no_values(tmp_path, monkeypatch):
    monkeypatch.setattr(reader, "CSV_BLOCK_BYTES", 64)
    path = tmp_path / "empty-col.csv"
    path.write_text("a,e\n" + "".join(f"{i},\n" for i in range(30)))
    with pytest.raises(DataError, match="column 'e' has no values"):
        read_table(str(path))


@pytest.mark.parametrize("group_bytes", [0, 1 << 40])
def test_parquet_read_by_row_groups_and_by_columns(tmp_path, monkeypatch, group_bytes):
    # 0: every row group is "large" (read a column at a time); 2^40: whole row groups.
    monkeypatch.setattr(reader, "ROW_GROUP_BYTES", group_bytes)
    no_whole_table(monkeypatch)
    ints = pa.array([None if i % 5 == 0 else i for i in range(N)], type=pa.int32())
    path = tmp_path / "groups.parquet"
    pq.write_table(arrow_table().append_column("i", ints), path, row_group_size=3)
    table = read_table(str(path), weights="w")
    assert table.columns == ["a", "b", "i"] and table.notes == [
        "skipped non-numeric column(s): name"
    ]
    want_i = np.array([np.nan if i % 5 == 0 else i for i in range(N)])
    np.testing.assert_array_equal(table.x, np.column_stack([A, B, want_i]))
    np.testing.assert_array_equal(table.weights, W)


def test_parquet_column_of_nulls_only_has_no_values(tmp_path):
    path = tmp_path / "nulls.parquet"
    pq.write_table(pa.table({"a": A, "z": pa.array([None] * N, type=pa.float64())}), path)
    with pytest.raises(DataError, match="column 'z' has no values"):
        read_table(str(path))


@pytest.mark.parametrize(
    "values",
    [[1.5, None, -2.0, None, 7.25, 3.0, None, 8.0, 9.0, 10.0], [None, None], [0.5, 2.0], []],
)
def test_float_values_equal_pyarrows_conversion(values):
    """A column's values from its buffers equal pyarrow's own conversion (nulls as NaN),
    for slices at every offset (a chunk's view of a longer buffer)."""
    from emcli.data.formats import float_values

    whole = pa.array(values, type=pa.float64())
    for start in range(len(values) + 1):
        for stop in range(start, len(values) + 1):
            part = whole.slice(start, stop - start)
            want = part.to_numpy(zero_copy_only=False)
            got = float_values(part)
            assert got.dtype == np.float64 and got.shape == want.shape
            np.testing.assert_array_equal(got, want)


def test_a_numeric_fit_does_not_load_pandas(tmp_path):
    """pandas takes a quarter of a second to import: a fit of a numeric CSV, with gaps,
    runs without it."""
    import subprocess

    data = tmp_path / "x.csv"
    data.write_text("a,b\n1,2\n,3\n4,\n5,6\n7,8.5\n")
    code = (
        "import sys\n"
        "from emcli.cli import main\n"
        f"try:\n    main(['fit', {str(data)!r}, '-k', '1', '-q', '--params', "
        f"{str(tmp_path / 'm.json')!r}])\nexcept SystemExit as e:\n    assert not e.code\n"
        "print('pandas' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip().splitlines()[-1] == "False"
    assert (tmp_path / "m.json").exists()


@pytest.mark.parametrize(
    "kind", [pa.int8(), pa.uint16(), pa.int32(), pa.int64(), pa.uint64(), pa.float32(), pa.bool_()]
)
def test_numeric_columns_of_every_type_read_as_pyarrow_casts_them(kind) -> None:
    """Integer chunks are converted from their buffers (no pyarrow.compute): sliced chunks
    (an offset), several chunks and nulls give what pyarrow's own cast gives."""
    from emcli.data.formats import to_array

    ints = [pa.array(range(0, 9), type=pa.int64()).slice(2, 5), pa.array([7, 0, 120])]
    nulls = [pa.array([None, 3, 1, None, 5], type=pa.int64()).slice(1)]
    table = pa.table(
        {
            "a": pa.chunked_array([c.cast(kind) for c in ints]),
            "b": pa.chunked_array([c.cast(kind) for c in ints[::-1]]),
        }
    )
    got = to_array(table, ["a", "b"])
    want = np.column_stack([table.column(n).cast(pa.float64()).to_numpy() for n in "ab"])
    assert got.flags.c_contiguous and np.array_equal(got, want)
    with_nulls = pa.table({"c": pa.chunked_array([c.cast(kind) for c in nulls])})
    column = with_nulls.column("c").cast(pa.float64()).to_numpy(zero_copy_only=False)
    assert np.array_equal(to_array(with_nulls, ["c"])[:, 0], column, equal_nan=True)


# ---------------------------------------------------------------------------- small files
_CELLS = st.one_of(
    st.integers(-(10**15) + 1, 10**15 - 1).map(str),
    st.floats(allow_nan=False, allow_infinity=False, width=64).map(repr),
    st.floats(-1e6, 1e6, allow_nan=False).map(lambda v: f"{v:.3e}"),
    st.floats(-1e3, 1e3, allow_nan=False).map(lambda v: f"{v:.4f}"),
    st.sampled_from(["", "NA", "nan", "NaN", "null", "-0", "0", "-0.0", "007", "1e5", "2E-3"]),
    st.sampled_from([" 1", "+1", ".5", "1.", "inf", "-inf", "1,5", '"2"', "x", "1e400", "0x1"]),
)


@settings(max_examples=60, deadline=None)
@given(
    n_cols=st.integers(1, 4),
    rows=st.lists(st.lists(_CELLS, min_size=4, max_size=4), min_size=1, max_size=12),
    crlf=st.booleans(),
    sep=st.sampled_from([",", "\t", ";"]),
)
def test_a_small_csv_reads_as_pyarrow_reads_it(tmp_path_factory, n_cols, rows, crlf, sep):
    """A small file of plain numbers is parsed without pyarrow (``_small_plain_csv``); every
    file, plain or not, reads to the same values (sign of zero included), names, notes and
    errors as through pyarrow."""
    path = tmp_path_factory.mktemp("small") / ("t.tsv" if sep == "\t" else "t.csv")
    end = "\r\n" if crlf else "\n"
    lines = [sep.join(f"c{j}" for j in range(n_cols))]
    lines += [sep.join(row[:n_cols]) for row in rows]
    path.write_text(end.join(lines) + end)
    delimiter = None if sep in (",", "\t") else sep

    def outcome(small_bytes: int):
        try:
            with pytest.MonkeyPatch.context() as m:
                m.setattr(reader, "SMALL_CSV_BYTES", small_bytes)
                t = read_table(str(path), delimiter=delimiter)
        except DataError as exc:
            return ("error", str(exc))
        return ("table", t.columns, t.notes, t.x.tobytes(), t.x.shape)

    assert outcome(reader.SMALL_CSV_BYTES) == outcome(0)


def test_a_small_plain_csv_is_read_without_pyarrow(tmp_path):
    """The fast path takes the plain files it is for (and only them): mclust's data sets
    are such files."""
    plain = tmp_path / "plain.csv"
    plain.write_text("a,b\n1,2.5\n-0,NA\n300,4e0\n")
    table = reader._small_plain_csv(str(plain), ",")
    assert table is not None and table.columns == ["a", "b"]
    np.testing.assert_array_equal(table.x, [[1.0, 2.5], [0.0, np.nan], [300.0, 4.0]])
    assert not np.signbit(table.x[1, 0])  # "-0" in an integer column is 0, as in pyarrow
    for text in ('a,b\n"1",2\n', "a,b\n1,x\n", "a,b\n1\n", "\ufeffa,b\n1,2\n", "a,b\n,\n"):
        other = tmp_path / "other.csv"
        other.write_text(text)
        assert reader._small_plain_csv(str(other), ",") is None, text

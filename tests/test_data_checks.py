"""The one set of data checks (emcli.data.checks): weights, and the same message on every path.

Every bad weight is refused with one line naming its data row (1-based), whether the table
is read whole (``read_table``), scanned block by block (the stream engine's summaries) or
given as an array (``sample_weight``); summaries of blocks add up to the whole's.
"""

from __future__ import annotations

import numpy as np
import pytest

from emcli import api
from emcli.data.checks import ColumnSummary, check_fittable, total_summary
from emcli.data.reader import read_table
from emcli.engines.choose import open_engine
from emcli.engines.memory import MemoryEngine
from emcli.engines.stream import StreamEngine
from emcli.errors import DataError

GOOD = "a,b,w\n1,2,1\n3,4,2\n5,6,0\n7,9,3\n2,1,1\n"
# name: (the w cells of rows 1..5, the message; row 3 is the bad one)
BAD_WEIGHTS = {
    "negative": ("1,2,-2,1,1", r"weights column 'w' has a negative weight \(-2, data row 3\)"),
    "empty": ("1,2,,1,1", r"weights column 'w' has a missing weight \(data row 3\)"),
    "NA": ("1,2,NA,1,1", r"weights column 'w' has a missing weight \(data row 3\)"),
    "inf": ("1,2,inf,1,1", r"weights column 'w' has an infinite weight \(data row 3\)"),
    "text": ("1,2,lots,1,1", r"weights column 'w' is not numeric \(it holds 'lots', data row 3\)"),
    "all zero": ("0,0,0,0,0", r"every weight in weights column 'w' is 0"),
}


def table_with(weights: str) -> str:
    rows = [f"{i},{2 * i % 7},{w}" for i, w in enumerate(weights.split(","), start=1)]
    return "a,b,w\n" + "\n".join(rows) + "\n"


@pytest.mark.parametrize("case", list(BAD_WEIGHTS), ids=list(BAD_WEIGHTS))
def test_bad_weights_are_refused_by_read_table(tmp_path, case):
    cells, message = BAD_WEIGHTS[case]
    path = tmp_path / "w.csv"
    path.write_text(table_with(cells))
    with pytest.raises(DataError, match=message) as error:
        read_table(str(path), weights="w")
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("case", list(BAD_WEIGHTS), ids=list(BAD_WEIGHTS))
def test_bad_weights_are_refused_by_the_stream_engine(tmp_path, case):
    cells, message = BAD_WEIGHTS[case]
    path = tmp_path / "w.csv"
    path.write_text(table_with(cells))
    with pytest.raises(DataError, match=message):
        with StreamEngine(str(path), block_rows=2, weights="w") as engine:
            api.fit_engine(engine, 1, n_restarts=1)


def test_bad_weights_in_an_array_name_sample_weight():
    x = np.arange(10.0).reshape(5, 2)
    for w, message in (
        ([1, 2, -1, 1, 1], r"sample_weight has a negative weight \(-1, data row 3\)"),
        ([1, 2, 1, np.nan, 1], r"sample_weight has a missing weight \(data row 4\)"),
        ([np.inf, 2, 1, 1, 1], r"sample_weight has an infinite weight \(data row 1\)"),
        ([0, 0, 0, 0, 0], r"every weight in sample_weight is 0"),
        ([1, 1], r"2 weights for 5 rows"),
    ):
        with pytest.raises(DataError, match=message):
            check_fittable(x, ["a", "b"], 1, weights=np.asarray(w, dtype=float))
    summary = check_fittable(x, ["a", "b"], 1, weights=np.array([1.0, 0, 2, 0, 1]))
    assert summary.weight_sum == 4.0 and summary.weight_max == 2.0


def test_unknown_weights_column_and_weights_as_a_feature(tmp_path):
    path = tmp_path / "good.csv"
    path.write_text(GOOD)
    for make in (
        lambda: read_table(str(path), weights="zz"),
        lambda: StreamEngine(str(path), weights="zz"),
    ):
        with pytest.raises(
            DataError,
            match=r"^unknown weights column 'zz'; the input has: "
            r"'a', 'b', 'w'; choose the weights column with "
            r"weights$",
        ):
            make()
    with pytest.raises(DataError, match="'w' is the weights column"):
        read_table(str(path), columns=["a", "w"], weights="w")


def test_summaries_of_blocks_add_up_to_the_whole():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(40, 3))
    x[[3, 17, 17, 30], [0, 1, 2, 2]] = np.nan
    x[25, 1] = np.inf
    x[33, 0] = -1e120
    w = rng.uniform(0, 2, size=40)
    w[21] = -0.5
    whole = ColumnSummary.of_block(x, 0, w, moments=True)
    cuts = [0, 1, 7, 20, 26, 40]
    parts = [
        ColumnSummary.of_block(x[a:b], a, w[a:b], moments=True)
        for a, b in zip(cuts[:-1], cuts[1:], strict=True)
    ]
    total = total_summary(parts)
    for name in (
        "n_rows",
        "n_missing",
        "first_inf",
        "first_huge",
        "rows_with_gaps",
        "rows_all_missing",
        "first_bad_weight",
        "weight_max",
    ):
        assert getattr(total, name) == getattr(whole, name), name
    assert total.first_missing[:2] == whole.first_missing[:2]  # its value is NaN
    np.testing.assert_array_equal(total.count, whole.count)
    assert total.weight_sum == pytest.approx(whole.weight_sum, rel=1e-12)
    assert total.first_missing[:2] == (3, 0) and total.first_inf[:2] == (25, 1)
    assert total.first_huge == (33, 0, -1e120) and total.first_bad_weight == (21, -0.5)
    observed = x[~np.isnan(x[:, 2]), 2]  # column 2: gaps, no inf
    assert total.variances()[2] == pytest.approx(observed.var(), rel=1e-12)


def _memory_check(path: str) -> None:
    table = read_table(path)  # the memory path: read (refuses inf), then check
    api.check_fittable(table.x, table.columns, 1, "error")


def _stream_check(path: str) -> None:
    StreamEngine(path, block_rows=1).check(1, "error")


def test_in_memory_and_streamed_checks_give_the_same_message(tmp_path):
    cases = {
        "inf.csv": "a,b\n1,2\n3,inf\n5,6\n",
        "huge.csv": "a,b\n1,2\n3,1e150\n5,6\n",
        "empty-column.csv": "a,b\n,1\n,2\n",
        "gaps.csv": "a,b\n1,2\n3,\n5,6\n",
    }
    for name, text in cases.items():
        path = tmp_path / name
        path.write_text(text)
        messages = []
        for check in (_memory_check, _stream_check):
            with pytest.raises(DataError) as error:
                check(str(path))
            messages.append(str(error.value))
        assert messages[0] == messages[1], name


def test_engines_store_the_weights(tmp_path):
    path = tmp_path / "good.csv"
    path.write_text(GOOD)
    weights = np.array([1.0, 2.0, 0.0, 3.0, 1.0])
    with open_engine("memory", str(path), weights="w") as engine:
        np.testing.assert_array_equal(engine.weights, weights)
        assert engine.columns == ["a", "b"] and engine.weights_column == "w"
    assert MemoryEngine(np.zeros((5, 2))).weights is None
    with pytest.raises(ValueError, match="weights of shape"):
        MemoryEngine(np.zeros((5, 2)), weights=np.ones(4))
    with open_engine("stream", str(path), weights="w", block_rows=2) as engine:
        assert engine.weights_column == "w" and engine.columns == ["a", "b"]
        blocks = list(engine.blocks(1))
        assert [len(x) for x, _ in blocks] == [2, 2, 1]
        np.testing.assert_array_equal(np.concatenate([w for _, w in blocks]), weights)
        assert engine.summary.weight_sum == 7.0
    with StreamEngine(str(path)) as engine:
        assert engine.weights_column is None and engine.columns == ["a", "b", "w"]
        assert all(w is None for _, w in engine.blocks(1))


def test_dropped_rows_drop_their_weights(monkeypatch):
    x = np.array([[1.0, 2.0], [np.nan, 1.0], [3.0, 1.0], [4.0, 0.0]])
    engine = MemoryEngine(x, weights=np.array([1.0, 5.0, 2.0, 3.0]))
    seen = {}
    real = api.fit_em

    def spy(engine, *args, **kwargs):
        seen["weights"] = engine.weights
        return real(engine, *args, **kwargs)

    monkeypatch.setattr(api, "fit_em", spy)
    api.fit_engine(engine, 1, missing="drop", n_restarts=1)
    np.testing.assert_array_equal(seen["weights"], [1.0, 2.0, 3.0])

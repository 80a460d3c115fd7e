"""Tricky but valid input (issue 8): each must work, through the real entry point.

References are independent of emcli's arithmetic: the same data written plainly (LF, no BOM,
plain decimals, comma separated) must give byte-identical outputs; rescaled data must give the
same partition (labels equal up to a permutation); planted clusters must be recovered.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from clirun import Run, run


def ok(*args: object, stdin: bytes | None = None) -> Run:
    result = run(*args, stdin=stdin)
    assert result.exit_code == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result


def clusters(n: int = 90, d: int = 2, seed: int = 5) -> np.ndarray:
    """Three well-separated clusters; row i belongs to cluster i % 3."""
    rng = np.random.default_rng(seed)
    centres = np.zeros((3, d))
    centres[1, 0] = 10.0
    centres[2, d - 1 if d > 1 else 0] = -10.0 if d == 1 else 10.0
    return centres[np.arange(n) % 3] + rng.normal(size=(n, d))


def csv_text(x: np.ndarray, names: list[str], sep: str = ",", fmt=repr) -> str:
    lines = [sep.join(names)] + [sep.join(fmt(float(v)) for v in row) for row in x]
    return "\n".join(lines) + "\n"


def fit_outputs(tmp: Path, source: Path, *options: object, stdin: bytes | None = None):
    """Run fit with labels + params; return (labels, params dict, stderr)."""
    labels, params = tmp / f"{source.stem}.labels.csv", tmp / f"{source.stem}.json"
    result = ok("fit", source, "--labels", labels, "--params", params, *options, stdin=stdin)
    cluster = np.array([int(v) for v in labels.read_text().split()[1:]])
    return cluster, json.loads(params.read_text()), result.stderr


def same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    """Labels equal up to renaming the components."""
    pairs = set(zip(a.tolist(), b.tolist(), strict=True))
    return len(pairs) == len(set(a.tolist())) == len(set(b.tolist()))


def assert_finite_model(params: dict) -> None:
    for key in ("weights", "means", "covariances"):
        assert np.all(np.isfinite(np.asarray(params[key], dtype=float))), key
    assert math.isfinite(params["log_likelihood"])


K3 = ("-k", "3", "-n", "2", "--seed", "1")


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    """The reference: plain CSV of ``clusters()`` and fit's outputs on it."""
    tmp = tmp_path_factory.mktemp("plain")
    x = clusters()
    path = tmp / "plain.csv"
    path.write_text(csv_text(x, ["a", "b"]))
    labels, params, _ = fit_outputs(tmp, path, *K3)
    assert same_partition(labels, np.arange(len(x)) % 3)  # planted truth recovered
    return x, labels, params


@pytest.mark.parametrize(
    "variant",
    ["bom", "crlf", "quoted", "no-final-newline", "scientific", "semicolon", "tsv", "stdin"],
)
def test_spellings_of_the_same_table_give_the_same_fit(variant, plain, tmp_path):
    x, labels0, params0 = plain
    text = csv_text(x, ["a", "b"])
    options: list[object] = []
    stdin = None
    suffix = ".csv"
    if variant == "bom":
        data = b"\xef\xbb\xbf" + text.encode()
    elif variant == "crlf":
        data = text.replace("\n", "\r\n").encode()
    elif variant == "quoted":
        data = csv_text(x, ['"a"', '"b"'], fmt=lambda v: f'"{v!r}"').encode()
    elif variant == "no-final-newline":
        data = text.rstrip("\n").encode()
    elif variant == "scientific":
        data = csv_text(x, ["a", "b"], fmt=lambda v: f"{v:.17e}").encode()
    elif variant == "semicolon":
        data = csv_text(x, ["a", "b"], sep=";").encode()
        options = ["--delimiter", ";"]
    elif variant == "tsv":
        data = csv_text(x, ["a", "b"], sep="\t").encode()
        suffix = ".tsv"
    else:
        data, stdin = b"", text.encode()
    source = tmp_path / f"input{suffix}"
    source.write_bytes(data)
    labels, params, _ = fit_outputs(
        tmp_path, Path("-") if stdin else source, *K3, *options, stdin=stdin
    )
    assert params["columns"] == ["a", "b"]
    assert np.array_equal(labels, labels0)
    assert params["log_likelihood"] == params0["log_likelihood"]
    assert params["means"] == params0["means"]


def test_tab_delimiter_spelled_as_backslash_t(plain, tmp_path):
    x, labels0, _ = plain
    source = tmp_path / "tabs.txt.csv"
    source.write_text(csv_text(x, ["a", "b"], sep="\t"))
    labels, _, _ = fit_outputs(tmp_path, source, *K3, "--delimiter", "\\t")
    assert np.array_equal(labels, labels0)


def test_id_text_column_is_skipped_with_a_note(plain, tmp_path):
    x, labels0, _ = plain
    source = tmp_path / "ids.csv"
    rows = [f"id{i},{a!r},{b!r}" for i, (a, b) in enumerate(x.tolist())]
    source.write_text("id,a,b\n" + "\n".join(rows) + "\n")
    labels, params, stderr = fit_outputs(tmp_path, source, *K3)
    assert params["columns"] == ["a", "b"]
    assert np.array_equal(labels, labels0)
    notes = [line for line in stderr.splitlines() if line.startswith("Note: ")]
    assert any("id" in line and "non-numeric" in line for line in notes), stderr
    # -q silences the note
    assert "Note" not in ok("fit", source, *K3, "-q", "--labels", tmp_path / "q.csv").stderr


def test_integer_columns(tmp_path):
    x = np.round(clusters() * 10).astype(int)
    source = tmp_path / "ints.csv"
    source.write_text("a,b\n" + "\n".join(f"{a},{b}" for a, b in x.tolist()) + "\n")
    labels, params, _ = fit_outputs(tmp_path, source, *K3)
    assert same_partition(labels, np.arange(len(x)) % 3)
    assert_finite_model(params)


def test_constant_column_fits_with_a_note_and_is_not_a_collapse(plain, tmp_path):
    x, labels0, _ = plain
    source = tmp_path / "const.csv"
    source.write_text(csv_text(np.column_stack([x, np.full(len(x), 7.0)]), ["a", "b", "c"]))
    for kind in ("full", "tied", "diag", "spherical"):
        labels, params, stderr = fit_outputs(tmp_path, source, *K3, "--covariance", kind)
        assert same_partition(labels, labels0), kind
        assert_finite_model(params)
        assert params["degenerate"] is False and params["collapsed_components"] == []
        assert not any(s["collapsed"] for s in params["starts"])
        assert any(
            "constant" in line and "c" in line
            for line in stderr.splitlines()
            if line.startswith("Note: ")
        ), stderr
        assert "Warning" not in stderr
        means = np.asarray(params["means"])
        assert np.allclose(means[:, 2], 7.0)


def test_k_equal_to_the_rows_works_and_is_flagged_degenerate(tmp_path):
    x = clusters(n=6)
    source = tmp_path / "six.csv"
    source.write_text(csv_text(x, ["a", "b"]))
    labels, params, stderr = fit_outputs(tmp_path, source, "-k", "6", "-n", "2")
    assert_finite_model(params)
    assert params["degenerate"] is True
    assert params["collapsed_components"]
    assert all(s["collapsed"] for s in params["starts"])
    assert params["warnings"] and "--reg-covar" in params["warnings"][0]
    assert any(line.startswith("Warning: ") and "-k" in line for line in stderr.splitlines())
    assert sorted(labels.tolist()) == list(range(6))  # one row per component


def test_duplicated_rows(plain, tmp_path):
    x, _, _ = plain
    doubled = np.repeat(x, 2, axis=0)
    source = tmp_path / "dup.csv"
    source.write_text(csv_text(doubled, ["a", "b"]))
    labels, params, _ = fit_outputs(tmp_path, source, *K3)
    assert np.array_equal(labels[0::2], labels[1::2])
    assert same_partition(labels[0::2], np.arange(len(x)) % 3)
    assert_finite_model(params)
    assert params["degenerate"] is False


@pytest.mark.parametrize("scale, reg_covar", [(1e12, "1e-6"), (1e-12, "1e-30")])
def test_tiny_and_huge_values_give_the_same_partition(plain, tmp_path, scale, reg_covar):
    x, labels0, params0 = plain
    source = tmp_path / "scaled.csv"
    source.write_text(csv_text(x * scale, ["a", "b"]))
    labels, params, stderr = fit_outputs(tmp_path, source, *K3, "--reg-covar", reg_covar)
    assert same_partition(labels, labels0)
    assert_finite_model(params)
    assert params["degenerate"] is False
    # log-likelihood shifts by n d log(scale) (the density's Jacobian)
    shift = len(x) * 2 * math.log(scale)
    assert params["log_likelihood"] == pytest.approx(
        params0["log_likelihood"] - shift, rel=1e-6, abs=1e-6 * abs(shift)
    )


def test_tiny_values_with_the_default_floor_get_a_note(plain, tmp_path):
    x, _, _ = plain
    source = tmp_path / "tiny.csv"
    source.write_text(csv_text(x * 1e-12, ["a", "b"]))
    result = ok("fit", source, *K3, "--params", tmp_path / "m.json")
    assert "--reg-covar" in result.stderr and "scale the data" in result.stderr


def test_values_around_1e12_with_unit_spread(plain, tmp_path):
    """An offset of 1e9 leaves float64 ~1e-7 resolution: the fit must not cancel."""
    x, labels0, _ = plain
    source = tmp_path / "offset.csv"
    source.write_text(csv_text(x + 1e9, ["a", "b"]))
    labels, params, _ = fit_outputs(tmp_path, source, *K3)
    assert same_partition(labels, labels0)
    assert_finite_model(params)
    assert params["degenerate"] is False


def test_one_hundred_components(tmp_path):
    rng = np.random.default_rng(2)
    centres = rng.uniform(-100, 100, size=(100, 2))
    x = centres[np.arange(400) % 100] + 0.1 * rng.normal(size=(400, 2))
    source = tmp_path / "many.csv"
    source.write_text(csv_text(x, ["a", "b"]))
    labels, params, _ = fit_outputs(
        tmp_path, source, "-k", "100", "-n", "1", "--max-iter", "20", "--covariance", "diag"
    )
    assert_finite_model(params)
    assert len(params["weights"]) == 100
    assert labels.min() >= 0 and labels.max() < 100


@pytest.mark.parametrize("kind, iterations", [("diag", "3"), ("spherical", "3"), ("full", "1")])
def test_five_hundred_columns(tmp_path, kind, iterations):
    rng = np.random.default_rng(4)
    x = 3.0 * (np.arange(60) % 3)[:, None] + rng.normal(size=(60, 500))  # apart in every column
    source = tmp_path / "wide.csv"
    source.write_text(csv_text(x, [f"c{j}" for j in range(500)]))
    resp_path = tmp_path / "resp.csv"
    if kind == "full":
        # 500 columns and 60 rows: no full covariance can be estimated (d >= n); emcli says so
        # at once and suggests a diagonal model or --pca, as mclust refuses such models
        res = run("fit", source, "-k", "3", "--covariance", "full", "-o", tmp_path / "out")
        assert res.exit_code == 1 and res.stderr.startswith("Error:") and "--pca" in res.stderr
        assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
        return
    ok(
        "fit",
        source,
        "-k",
        "3",
        "-n",
        "1",
        "--max-iter",
        iterations,
        "--covariance",
        kind,
        "--responsibilities",
        resp_path,
    )
    resp = np.loadtxt(resp_path, delimiter=",", skiprows=1)
    assert resp.shape == (60, 3) and np.all(np.isfinite(resp))
    assert np.allclose(resp.sum(axis=1), 1.0)
    assert same_partition(resp.argmax(axis=1), np.arange(60) % 3)


def test_predict_and_score_take_the_same_spellings(plain, tmp_path):
    """BOM, CRLF, quotes and ';' also work for the block reader of predict and score."""
    x, labels0, params0 = plain
    model = tmp_path / "model.json"
    model.write_text(json.dumps(params0))
    text = csv_text(x, ['"a"', '"b"'], sep=";", fmt=lambda v: f'"{v!r}"').replace("\n", "\r\n")
    source = tmp_path / "odd.csv"
    source.write_bytes(b"\xef\xbb\xbf" + text.rstrip("\r\n").encode())
    out = ok("predict", model, source, "--delimiter", ";").stdout.split()
    assert out[0] == "cluster" and np.array_equal(np.array(out[1:], dtype=int), labels0)
    score = ok("score", model, source, "--delimiter", ";").stdout.split()
    assert len(score) == len(x) + 1 and all(math.isfinite(float(v)) for v in score[1:])


@pytest.mark.parametrize("aligned", [True, False])
def test_table_to_array_any_chunking(aligned: bool) -> None:
    # pyarrow tables come in chunks (per CSV block, per Parquet row group); columns may be
    # chunked alike (the fast path) or not, hold integers and nulls: the float64 array is
    # the same as column-wise numpy conversion.
    import pyarrow as pa

    from emcli.data.formats import to_array

    rng = np.random.default_rng(3)
    a = rng.normal(size=1000)
    b = rng.integers(-5, 5, size=1000)
    c = rng.normal(size=1000)
    c[rng.random(1000) < 0.1] = np.nan
    cuts_a = [0, 1, 400, 999, 1000]
    cuts_b = cuts_a if aligned else [0, 700, 1000]

    def chunked(values, cuts, mask=None):
        return pa.chunked_array(
            [
                pa.array(values[lo:hi], mask=None if mask is None else mask[lo:hi])
                for lo, hi in zip(cuts[:-1], cuts[1:], strict=True)
            ]
        )

    table = pa.table(
        {"a": chunked(a, cuts_a), "b": chunked(b, cuts_b), "c": chunked(c, cuts_a, np.isnan(c))}
    )
    assert table.column("c").null_count == np.isnan(c).sum() > 0
    got = to_array(table, ["c", "a", "b"])
    want = np.column_stack([c, a, b.astype(float)])
    assert got.flags.c_contiguous and got.dtype == np.float64
    np.testing.assert_array_equal(got, want)  # NaN where null, in the same places
    assert to_array(table.slice(0, 0), ["a"]).shape == (0, 1)

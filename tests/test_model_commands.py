"""Saved models (issue 5): the model file and its schema, predict, score, sample, describe.

References are independent of the code under test: scipy's multivariate normal for
densities, sorting for the least likely rows, planted parameters for sampling, and fit's own
outputs for predict (which must reproduce them byte for byte).  Self-contained (no conftest).
"""

from __future__ import annotations

import json
import math
from importlib.resources import files
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest
from clirun import Run, run
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

import emcli
from emcli.apply import LowestRows, describe
from emcli.errors import ModelFileError
from emcli.families.gaussian import GaussianParams
from emcli.model import GaussianMixtureModel
from emcli.modelfile import SCHEMA_VERSION

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")
SAMPLE_DATA = Path(__file__).resolve().parents[1] / "sample_data"


# ---------------------------------------------------------------------------- helpers
def ok(*args: str, stdin: str | bytes | None = None) -> Run:
    result = run(*args, stdin=stdin)
    assert result.exit_code == 0, result.stderr
    return result


def assert_one_line_error(result: Run, *fragments: str, code: int = 1) -> None:
    assert result.exit_code == code
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def read_csv(path_or_text: Path | str) -> dict[str, np.ndarray]:
    if isinstance(path_or_text, Path):
        table = pcsv.read_csv(path_or_text)
    else:
        table = pcsv.read_csv(pa.py_buffer(path_or_text.encode()))
    return {name: table.column(name).to_numpy() for name in table.column_names}


def write_csv(path: Path, x: np.ndarray, columns: list[str]) -> Path:
    pcsv.write_csv(pa.table({c: x[:, j] for j, c in enumerate(columns)}), path)
    return path


def planted(n: int = 600, seed: int = 1) -> np.ndarray:
    """Three well-separated 2-D clusters (weights .5/.3/.2)."""
    rng = np.random.default_rng(seed)
    sizes = [n // 2, 3 * n // 10, n - n // 2 - 3 * n // 10]
    means = [(0.0, 0.0), (6.0, 1.0), (2.0, 7.0)]
    covs = [[[1.0, 0.5], [0.5, 1.5]], [[0.6, -0.2], [-0.2, 0.4]], [[2.0, 0.0], [0.0, 0.5]]]
    x = np.concatenate(
        [rng.multivariate_normal(m, c, size=s) for m, c, s in zip(means, covs, sizes, strict=True)]
    )
    return x[rng.permutation(n)]


@pytest.fixture(scope="module")
def train(tmp_path_factory) -> Path:
    return write_csv(tmp_path_factory.mktemp("train") / "train.csv", planted(), ["a", "b"])


@pytest.fixture(scope="module", params=COVARIANCE_TYPES)
def fitted(request, train, tmp_path_factory) -> dict[str, Path]:
    """fit's own outputs on ``train`` (k=3) for one covariance type."""
    out = tmp_path_factory.mktemp(f"fit_{request.param}")
    ok(
        "fit",
        train,
        "-k",
        "3",
        "-n",
        "2",
        "--covariance",
        request.param,
        "-q",
        "--labels",
        out / "labels.csv",
        "--responsibilities",
        out / "resp.csv",
        "--params",
        out / "model.json",
    )
    return {
        "dir": out,
        "model": out / "model.json",
        "labels": out / "labels.csv",
        "resp": out / "resp.csv",
    }


@pytest.fixture(scope="module")
def model_file(train, tmp_path_factory) -> Path:
    """One full-covariance model of ``train`` (k=3), for tests that need just a model."""
    path = tmp_path_factory.mktemp("model") / "model.json"
    ok("fit", train, "-k", "3", "-n", "2", "-q", "--params", path)
    return path


def scipy_log_density(model: GaussianMixtureModel, x: np.ndarray) -> np.ndarray:
    """log sum_j w_j N(x | mu_j, Sigma_j) by scipy, from the full covariance matrices."""
    full = model.params.full_covariances()
    per = np.column_stack(
        [
            math.log(w) + multivariate_normal(mean=m, cov=c).logpdf(x)
            for w, m, c in zip(model.weights, model.means, full, strict=True)
        ]
    )
    return logsumexp(per, axis=1)


def schema() -> dict:
    return json.loads(files("emcli").joinpath("schema/model.schema.json").read_text())


# ---------------------------------------------------------------------------- the model file
def test_schema_validates_fit_outputs_and_documents_every_field(tmp_path, fitted):
    jsonschema = pytest.importorskip("jsonschema")
    spec = schema()
    jsonschema.Draft202012Validator.check_schema(spec)
    selected = tmp_path / "selected.json"
    ok(
        "fit",
        SAMPLE_DATA / "faithful.csv",
        "-k",
        "1..2",
        "--covariance",
        "diag,full",
        "-n",
        "2",
        "--jobs",
        "1",
        "-q",
        "--params",
        selected,
    )
    for path in (fitted["model"], selected):
        data = json.loads(path.read_text())
        jsonschema.validate(data, spec)
        # Every field fit writes is documented, with a description.
        for key in data:
            assert key in spec["properties"], key
        for key in data["settings"]:
            assert key in spec["properties"]["settings"]["properties"], key
        for key in data["starts"][0]:
            assert key in spec["properties"]["starts"]["items"]["properties"], key
    # ... and every documented top-level field is written by a selection fit, but for
    # sample_weight, which only a fit with frequency weights writes (emcli.fit's
    # sample_weight=; test_schema_validates_warm_start_and_weighted_fits).
    # blocks: the parameters of the product families (tests/test_categorical.py); pca: a
    # fit --pca (tests/test_pca.py); df: family t (tests/test_t_family.py validates one);
    # vocabulary, word_probabilities: family multinomial (tests/test_multinomial.py).
    others = {"sample_weight", "blocks", "pca", "df", "vocabulary", "word_probabilities"}
    written = set(json.loads(selected.read_text())) | others
    assert written == set(spec["properties"])
    for key, prop in spec["properties"].items():
        assert prop.get("description"), key


def test_schema_rejects_what_the_loader_rejects(model_file):
    jsonschema = pytest.importorskip("jsonschema")
    data = json.loads(model_file.read_text())
    newer = SCHEMA_VERSION + 1
    for broken in (
        {"a": 1},
        {**data, "schema_version": newer},
        {**data, "format": "other"},
        {k: v for k, v in data.items() if k != "weights"},
    ):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(broken, schema())
        with pytest.raises(ModelFileError):
            GaussianMixtureModel.from_dict(broken)


def test_schema_validates_warm_start_and_weighted_fits(model_file):
    jsonschema = pytest.importorskip("jsonschema")
    x = planted(200, seed=3)
    start = emcli.load(str(model_file))
    warm = emcli.fit(x, 3, init=start, columns=["a", "b"], max_iter=3)
    weighted = emcli.fit(x, 3, columns=["a", "b"], n_restarts=1, sample_weight=np.arange(200) % 3)
    assert warm.settings["init"] == "model"
    for model in (warm, weighted):
        jsonschema.validate(json.loads(model.to_json()), schema())
    assert json.loads(weighted.to_json())["sample_weight"] == {"rows": 200, "total": 199}


@pytest.mark.parametrize("kind", COVARIANCE_TYPES)
def test_round_trip_gives_the_same_numbers(tmp_path, kind):
    x = planted(300, seed=2)
    model = emcli.fit(x, 3, covariance_type=kind, n_restarts=2, columns=["a", "b"])
    path = tmp_path / "m.json"
    model.save(path)
    back = emcli.load(str(path))
    assert back.covariance_type == kind and back.columns == ["a", "b"]
    np.testing.assert_array_equal(back.weights, model.weights)
    np.testing.assert_array_equal(back.means, model.means)
    np.testing.assert_array_equal(back.covariances, model.covariances)
    np.testing.assert_allclose(back.predict_proba(x), model.predict_proba(x), rtol=0, atol=1e-12)
    assert back.log_likelihood == model.log_likelihood
    assert math.isclose(back.score_samples(x).sum(), model.log_likelihood, rel_tol=1e-9)
    assert (back.bic, back.aic, back.n_parameters) == (model.bic, model.aic, model.n_parameters)
    assert back.to_json() == model.to_json()


def test_newer_schema_version_is_refused(tmp_path, model_file):
    data = json.loads(model_file.read_text())
    data["schema_version"] = SCHEMA_VERSION + 1
    newer = tmp_path / "newer.json"
    newer.write_text(json.dumps(data))
    assert_one_line_error(
        run("describe", newer), f"schema version {SCHEMA_VERSION + 1}", "upgrade emcli"
    )


def _broken_models(data: dict) -> dict[str, tuple[object, str]]:
    k, d = len(data["weights"]), len(data["columns"])
    not_pd = json.loads(json.dumps(data))
    not_pd["covariances"][0] = [[1.0 if i == j else 2.0 for j in range(d)] for i in range(d)]
    not_pd["covariance_type"] = "full"
    asym = json.loads(json.dumps(data))
    asym["covariance_type"] = "full"
    asym["covariances"][1][0][1] += 0.5
    short = json.loads(json.dumps(data))
    short["means"] = short["means"][:-1]
    ragged = json.loads(json.dumps(data))
    ragged["means"][0] = ragged["means"][0] + [1.0]
    weights = json.loads(json.dumps(data))
    weights["weights"] = [1.0] * k
    wrong_k = {**data, "n_components": k + 1}
    twice = {**data, "columns": [data["columns"][0]] * d}
    return {
        "not json": ("{ not json", "not JSON"),
        "not a model": ({"hello": "world"}, "not an emcli model file"),
        "future version": ({**data, "schema_version": 99}, "schema version 99"),
        "not positive definite": (not_pd, "component 0 is not positive definite"),
        "not symmetric": (asym, "component 1 is not symmetric"),
        # k comes from the means; the covariances must have its native shape
        "shape mismatch": (short, f"'full' must have shape {k - 1} x {d} x {d}"),
        "ragged means": (ragged, "means must be"),
        "weights": (weights, "weights must be"),
        "n_components": (wrong_k, "n_components"),
        "duplicate columns": (twice, "column names are not unique"),
        "missing field": ({k2: v for k2, v in data.items() if k2 != "means"}, "no field 'means'"),
    }


BROKEN = [
    "not json",
    "not a model",
    "future version",
    "not positive definite",
    "not symmetric",
    "shape mismatch",
    "ragged means",
    "weights",
    "n_components",
    "duplicate columns",
    "missing field",
]


@pytest.mark.parametrize("case", BROKEN)
@pytest.mark.parametrize("command", ["predict", "score", "sample", "describe"])
def test_bad_model_files_give_one_line_errors_and_no_output(
    tmp_path, train, model_file, case, command
):
    content, fragment = _broken_models(json.loads(model_file.read_text()))[case]
    bad = tmp_path / "bad.json"
    bad.write_text(content if isinstance(content, str) else json.dumps(content))
    out = tmp_path / "out.csv"
    args = {
        "predict": ["predict", bad, train, "--labels", out],
        "score": ["score", bad, train, "--output", out],
        "sample": ["sample", bad, "-n", "5", "--output", out],
        "describe": ["describe", bad],
    }[command]
    assert_one_line_error(run(*args), str(bad), fragment)
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["bad.json"]  # no temporary files left


def test_missing_model_file(tmp_path, train):
    assert_one_line_error(run("predict", tmp_path / "none.json", train), "does not exist")


# ---------------------------------------------------------------------------- predict
def test_predict_reproduces_fit_byte_for_byte(tmp_path, train, fitted):
    ok(
        "predict",
        fitted["model"],
        train,
        "--labels",
        tmp_path / "l.csv",
        "--responsibilities",
        tmp_path / "r.csv",
    )
    assert (tmp_path / "l.csv").read_bytes() == fitted["labels"].read_bytes()
    assert (tmp_path / "r.csv").read_bytes() == fitted["resp"].read_bytes()
    result = ok("predict", fitted["model"], train, "-o", tmp_path / "dir")
    assert result.stdout == "" and result.stderr == ""
    assert (tmp_path / "dir" / "labels.csv").read_bytes() == fitted["labels"].read_bytes()
    assert (tmp_path / "dir" / "responsibilities.csv").read_bytes() == fitted["resp"].read_bytes()
    # No output option: the labels on stdout, nothing on stderr.
    result = ok("predict", fitted["model"], train)
    assert result.stdout == fitted["labels"].read_text() and result.stderr == ""


def test_predict_responsibilities_match_the_loaded_model(fitted, train):
    model = emcli.load(str(fitted["model"]))
    x = np.column_stack(list(read_csv(train).values()))
    resp = read_csv(fitted["resp"])
    got = np.column_stack([resp[f"component_{j}"] for j in range(model.n_components)])
    np.testing.assert_allclose(got.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    np.testing.assert_allclose(got, model.predict_proba(x), rtol=0, atol=1e-12)
    np.testing.assert_array_equal(read_csv(fitted["labels"])["cluster"], model.predict(x))


def test_predict_reads_columns_by_the_models_names(tmp_path, train, fitted):
    data = read_csv(train)
    n = len(data["a"])
    shuffled = tmp_path / "shuffled.csv"
    pcsv.write_csv(
        pa.table({"note": ["r"] * n, "b": data["b"], "extra": np.ones(n), "a": data["a"]}), shuffled
    )
    assert ok("predict", fitted["model"], shuffled).stdout == fitted["labels"].read_text()
    renamed = tmp_path / "renamed.csv"
    pcsv.write_csv(pa.table({"y": data["b"], "x": data["a"]}), renamed)
    result = ok("predict", fitted["model"], renamed, "-c", "x,y")
    assert result.stdout == fitted["labels"].read_text()
    assert_one_line_error(
        run("predict", fitted["model"], renamed, "-c", "x"),
        "-c/--columns names 1 column(s) but the model has 2",
        code=2,
    )


def test_quoted_header_and_rows_beyond_the_first_read(tmp_path, train, fitted, monkeypatch):
    """The header is found wherever the first read ends (quotes, CRLF, a newline in a name)."""
    import emcli.data.reader

    data = read_csv(train)
    lines = ['"note\nwith newline","b","a"']
    lines += [f"x,{float(b)!r},{float(a)!r}" for a, b in zip(data["a"], data["b"], strict=True)]
    source = tmp_path / "quoted.csv"
    source.write_bytes(("\r\n".join(lines) + "\r\n").encode())
    for head_chunk in (65536, 100, 7):  # the first read: whole file, some rows, part of header
        monkeypatch.setattr(emcli.data.reader, "CSV_BLOCK_BYTES", head_chunk)
        result = ok("predict", fitted["model"], source, "--responsibilities", "-")
        assert result.stdout == fitted["resp"].read_text()


def test_predict_input_without_a_model_column(tmp_path, fitted):
    partial = tmp_path / "partial.csv"
    partial.write_text("a,c\n1,2\n")
    out = tmp_path / "labels.csv"
    result = run("predict", fitted["model"], partial, "--labels", out)
    assert_one_line_error(result, "no column 'b'", "the input has a, c")
    assert not out.exists()
    result = run("score", fitted["model"], partial, "--output", out)
    assert_one_line_error(result, "no column 'b'")
    assert not out.exists()


def test_predict_parquet_tsv_and_stdin_equal_csv(tmp_path, train, fitted):
    table = pcsv.read_csv(train)
    pq.write_table(table, tmp_path / "t.parquet", row_group_size=100)
    pcsv.write_csv(table, tmp_path / "t.tsv", pcsv.WriteOptions(delimiter="\t"))
    expected = fitted["labels"].read_text()
    assert ok("predict", fitted["model"], tmp_path / "t.parquet").stdout == expected
    assert ok("predict", fitted["model"], tmp_path / "t.tsv").stdout == expected
    assert ok("predict", fitted["model"], "-", stdin=train.read_bytes()).stdout == expected
    parquet_stdin = (tmp_path / "t.parquet").read_bytes()
    result = ok("predict", fitted["model"], "-", "--format", "parquet", stdin=parquet_stdin)
    assert result.stdout == expected
    # The model itself may come on stdin.
    result = ok("predict", "-", train, stdin=fitted["model"].read_bytes())
    assert result.stdout == expected


def test_small_blocks_give_the_in_memory_results(tmp_path, train, fitted, monkeypatch):
    import emcli.data.reader
    import emcli.families.gaussian.family

    model = emcli.load(str(fitted["model"]))
    x = np.column_stack(list(read_csv(train).values()))
    expected_resp = model.predict_proba(x)  # one block: the in-memory path
    expected_ll = model.score_samples(x)
    table = pcsv.read_csv(train)
    pq.write_table(table, tmp_path / "t.parquet", row_group_size=64)
    monkeypatch.setattr(emcli.data.reader, "CSV_BLOCK_BYTES", 3)  # the header spans reads
    monkeypatch.setattr(emcli.data.reader, "PARQUET_BATCH_ROWS", 13)
    # 256-row compute blocks (the plain paths' blocks: GaussianFamily.log_resp_and_norm)
    monkeypatch.setattr(emcli.families.gaussian.family, "_REFERENCE_ELEMENTS", 1)
    for source in (train, tmp_path / "t.parquet"):
        out = tmp_path / source.suffix[1:]
        ok("predict", fitted["model"], source, "-o", out)
        resp = read_csv(out / "responsibilities.csv")
        got = np.column_stack([resp[f"component_{j}"] for j in range(model.n_components)])
        np.testing.assert_allclose(got, expected_resp, rtol=0, atol=1e-12)
        np.testing.assert_array_equal(
            read_csv(out / "labels.csv")["cluster"], np.argmax(expected_resp, axis=1)
        )
        scored = read_csv(ok("score", fitted["model"], source).stdout)
        np.testing.assert_allclose(scored["log_likelihood"], expected_ll, rtol=1e-13)
        lowest = read_csv(ok("score", fitted["model"], source, "--lowest", "7").stdout)
        np.testing.assert_array_equal(lowest["row"], np.argsort(expected_ll, kind="stable")[:7])
    # With fit on the same compute blocks, predict is byte-identical again.
    ok("fit", train, "-k", "3", "-n", "2", "-q", "-o", tmp_path / "fit256")
    ok("predict", tmp_path / "fit256" / "params.json", train, "-o", tmp_path / "pred256")
    for name in ("labels.csv", "responsibilities.csv"):
        assert (tmp_path / "pred256" / name).read_bytes() == (
            tmp_path / "fit256" / name
        ).read_bytes()


def test_a_bad_value_late_in_the_file_leaves_no_output(tmp_path, fitted, monkeypatch):
    import emcli.data.reader

    monkeypatch.setattr(emcli.data.reader, "CSV_BLOCK_BYTES", 64)
    source = tmp_path / "late.csv"
    source.write_text("a,b\n" + "1.0,2.0\n" * 500 + "3.0,oops\n")
    keep = tmp_path / "labels.csv"
    keep.write_text("old\n")
    result = run("predict", fitted["model"], source, "--labels", keep, "-o", tmp_path / "newdir")
    assert_one_line_error(result, "column 'b' is not numeric", "'oops'")
    assert keep.read_text() == "old\n"
    assert not (tmp_path / "newdir").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labels.csv", "late.csv"]
    result = run("score", fitted["model"], source)  # stdout gets all or nothing
    assert_one_line_error(result, "'oops'")


def test_an_interrupt_while_streaming_leaves_nothing(tmp_path, train, fitted, monkeypatch):
    """Ctrl-C after the first block: exit 130, no output file, no directory, no temp file."""
    from emcli.families.gaussian import missing

    calls = {"n": 0}
    original = missing.log_resp_and_norm  # one block of GaussianFamily.log_resp_and_norm

    def interrupted(x, params):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return original(x, params)

    monkeypatch.setattr(missing, "log_resp_and_norm", interrupted)
    monkeypatch.setattr("emcli.families.gaussian.family._REFERENCE_ELEMENTS", 1)  # 256 rows
    result = run(
        "predict", fitted["model"], train, "-o", tmp_path / "out", "--labels", tmp_path / "l.csv"
    )
    assert result.exit_code == 130 and result.stdout == ""
    assert result.stderr.strip() == "Error: interrupted"
    assert calls["n"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_infinite_values_are_refused(tmp_path, fitted):
    source = tmp_path / "inf.csv"
    source.write_text("a,b\n1,2\n3,inf\n")
    for command in ("predict", "score"):
        result = run(command, fitted["model"], source)
        assert_one_line_error(result, "has an infinite value", "column 'b', data row 2")


@pytest.mark.parametrize("cell", ["", "NA"])
def test_rows_with_gaps_use_the_marginal_density(tmp_path, fitted, cell):
    """A row with a gap is scored by the density of its observed cells (scipy reference)."""
    source = tmp_path / "gap.csv"
    source.write_text(f"a,b\n1,2\n3,{cell}\n{cell},{cell}\n")
    model = emcli.load(str(fitted["model"]))
    full = model.params.full_covariances()
    a = model.columns.index("a")
    expected = logsumexp(
        [
            math.log(w) + multivariate_normal(m[a], c[a, a]).logpdf(3.0)
            for w, m, c in zip(model.weights, model.means, full, strict=True)
        ]
    )
    scores = read_csv(ok("score", fitted["model"], source).stdout)["log_likelihood"]
    assert scores[1] == pytest.approx(expected, rel=1e-10)
    assert scores[2] == 0.0  # nothing observed: the empty product
    resp = read_csv(ok("predict", fitted["model"], source, "--responsibilities", "-").stdout)
    row = np.array([resp[f"component_{j}"][2] for j in range(model.n_components)])
    assert np.allclose(row, model.weights, rtol=1e-12)


@pytest.mark.parametrize("kind", COVARIANCE_TYPES)
def test_rows_beyond_the_float_range(tmp_path, train, kind):
    """A row at 1e200 has a log-density below -1e300: score says -inf, predict refuses."""
    model = tmp_path / "m.json"
    ok("fit", train, "-k", "2", "-n", "1", "-q", "--covariance", kind, "--params", model)
    source = tmp_path / "far.csv"
    source.write_text("a,b\n1,2\n1e200,1\n3,-1e160\n2,1\n")
    result = ok("score", model, source)
    assert result.stderr == ""  # no RuntimeWarning
    ll = read_csv(result.stdout)["log_likelihood"]
    assert np.isfinite(ll[[0, 3]]).all() and np.all(ll[[1, 2]] == -np.inf)
    assert read_csv(ok("score", model, source, "--lowest", "2").stdout)["row"].tolist() == [1, 2]
    assert_one_line_error(run("predict", model, source), "data row 2 is too far")


def test_header_only_input_gives_header_only_output(tmp_path, fitted):
    source = tmp_path / "empty.csv"
    source.write_text("a,b\n")
    assert ok("predict", fitted["model"], source).stdout == "cluster\n"
    assert ok("score", fitted["model"], source).stdout == "log_likelihood\n"
    empty = tmp_path / "nothing.csv"
    empty.write_text("")
    assert_one_line_error(run("predict", fitted["model"], empty), "is empty")


# ---------------------------------------------------------------------------- score
def test_score_sums_to_the_fit_and_matches_scipy(train, fitted):
    model = emcli.load(str(fitted["model"]))
    result = ok("score", fitted["model"], train)
    assert result.stderr == ""  # no summary: stderr is not a terminal
    values = read_csv(result.stdout)
    assert list(values) == ["log_likelihood"]
    ll = values["log_likelihood"]
    assert math.isclose(math.fsum(ll), model.log_likelihood, rel_tol=1e-9)
    x = np.column_stack(list(read_csv(train).values()))
    np.testing.assert_allclose(ll, scipy_log_density(model, x), rtol=1e-10)


def test_score_summary_on_stderr_with_verbose(train, fitted):
    model = emcli.load(str(fitted["model"]))
    result = ok("score", fitted["model"], train, "-v")
    summary = result.stderr.strip()
    assert len(summary.splitlines()) == 1 and summary.startswith("600 row(s): ")
    total = float(summary.split("total log-likelihood ")[1].split(",")[0])
    mean = float(summary.split("mean ")[1].split(" ")[0])
    assert math.isclose(total, model.log_likelihood, abs_tol=1e-6)
    assert math.isclose(mean, model.log_likelihood / 600, abs_tol=1e-6)
    assert read_csv(result.stdout)["log_likelihood"].shape == (600,)
    assert ok("score", fitted["model"], train, "-v", "-q").stderr == ""


def test_score_keeps_the_least_likely_rows(tmp_path, train, fitted):
    ll = read_csv(ok("score", fitted["model"], train).stdout)["log_likelihood"]
    order = np.argsort(ll, kind="stable")
    lowest = read_csv(ok("score", fitted["model"], train, "--lowest", "10").stdout)
    assert list(lowest) == ["row", "log_likelihood"]
    np.testing.assert_array_equal(lowest["row"], order[:10])
    np.testing.assert_array_equal(lowest["log_likelihood"], ll[order[:10]])
    cut = float(np.quantile(ll, 0.05))
    below = read_csv(ok("score", fitted["model"], train, "--below", str(cut)).stdout)
    np.testing.assert_array_equal(below["row"], np.flatnonzero(ll < cut))
    np.testing.assert_array_equal(below["log_likelihood"], ll[ll < cut])
    both = read_csv(
        ok("score", fitted["model"], train, "--below", str(cut), "--lowest", "1000").stdout
    )
    np.testing.assert_array_equal(np.sort(both["row"]), np.flatnonzero(ll < cut))
    out = tmp_path / "few.csv"
    result = ok("score", fitted["model"], train, "--lowest", "3", "--output", out, "-v")
    assert result.stdout == "" and "3 row(s) kept" in result.stderr
    np.testing.assert_array_equal(read_csv(out)["row"], order[:3])
    assert run("score", fitted["model"], train, "--lowest", "0").exit_code == 2


def test_planted_outlier_is_the_least_likely_row(tmp_path, fitted):
    x = planted(300, seed=5)
    x[123] = (30.0, -30.0)
    source = write_csv(tmp_path / "x.csv", x, ["a", "b"])
    lowest = read_csv(ok("score", fitted["model"], source, "--lowest", "1").stdout)
    assert lowest["row"].tolist() == [123]


def test_lowest_rows_against_a_full_sort():
    rng = np.random.default_rng(3)
    values = rng.integers(0, 50, size=1000).astype(float)  # many ties
    for n in (1, 5, 37, 1000, 2000):
        keep = LowestRows(n)
        for s in range(0, 1000, 33):
            keep.add(np.arange(s, min(s + 33, 1000)), values[s : s + 33])
        rows, got = keep.result()
        expected = np.lexsort((np.arange(1000), values))[:n]
        np.testing.assert_array_equal(rows, expected)
        np.testing.assert_array_equal(got, values[expected])


@given(sizes=st.lists(st.integers(0, 40), max_size=12), rows=st.integers(1, 30))
@settings(max_examples=60, deadline=None)
def test_rebatch_gives_the_same_rows_in_fixed_blocks(sizes, rows):
    from emcli.data.reader import Block, rebatch

    data = np.arange(sum(sizes) * 2, dtype=float).reshape(-1, 2)
    weights = np.arange(sum(sizes), dtype=float)
    starts = np.cumsum([0, *sizes])[:-1]
    blocks = [
        Block(int(s), data[s : s + n], weights[s : s + n])
        for s, n in zip(starts, sizes, strict=True)
    ]
    out = list(rebatch(iter(blocks), rows))
    assert [len(b.x) for b in out[:-1]] == [rows] * (len(out) - 1)
    assert all(0 < len(b.x) <= rows and len(b.w) == len(b.x) for b in out)
    assert [b.first for b in out] == [rows * i for i in range(len(out))]
    joined = np.concatenate([b.x for b in out]) if out else np.empty((0, 2))
    np.testing.assert_array_equal(joined, data)
    np.testing.assert_array_equal(np.concatenate([b.w for b in out]) if out else [], weights)


# ---------------------------------------------------------------------------- sample
def _known_model(tmp_path: Path, kind: str = "full") -> tuple[Path, GaussianMixtureModel]:
    weights = np.array([0.7, 0.3])
    means = np.array([[0.0, 0.0], [6.0, 4.0]])
    full = np.array([[[1.0, 0.6], [0.6, 2.0]], [[0.5, -0.2], [-0.2, 0.8]]])
    from emcli.families.gaussian import from_full_covariances

    params = GaussianParams.from_covariances(
        kind, weights, means, from_full_covariances(kind, full)
    )
    model = GaussianMixtureModel(params=params, columns=["u", "v"], log_likelihood=0.0, n_samples=1)
    path = tmp_path / "known.json"
    model.save(path)
    return path, model


def test_sample_is_deterministic_and_shaped(tmp_path):
    path, _ = _known_model(tmp_path)
    first = ok("sample", path, "-n", "50", "--seed", "4")
    assert first.stderr == ""
    assert first.stdout == ok("sample", path, "-n", "50", "--seed", "4").stdout
    assert first.stdout != ok("sample", path, "-n", "50", "--seed", "5").stdout
    data = read_csv(first.stdout)
    assert list(data) == ["u", "v", "component"] and len(data["u"]) == 50
    assert set(data["component"]) <= {0, 1}
    ok("sample", path, "-n", "50", "--seed", "4", "--output", tmp_path / "s.csv")
    assert (tmp_path / "s.csv").read_text() == first.stdout
    assert ok("sample", path, "-n", "0").stdout == "u,v,component\n"
    # A prefix of a longer draw is not promised, but the same n and seed always agree.
    assert run("sample", path).exit_code == 2  # -n is required


@pytest.mark.parametrize("kind", ["full", "diag"])
def test_sample_moments_match_the_model(tmp_path, kind):
    """Per component, the drawn rows have the model's mean and covariance (5 standard errors)."""
    _, model = _known_model(tmp_path, kind)
    n = 40_000
    x, component = model.sample(n, np.random.default_rng(0))
    counts = np.bincount(component, minlength=2)
    se_w = np.sqrt(model.weights * (1 - model.weights) / n)
    assert np.all(np.abs(counts / n - model.weights) < 5 * se_w)
    full = model.params.full_covariances()
    for j in range(2):
        xj = x[component == j]
        se_mean = np.sqrt(np.diag(full[j]) / len(xj))
        assert np.all(np.abs(xj.mean(axis=0) - model.means[j]) < 5 * se_mean)
        cov = np.cov(xj, rowvar=False)
        # se of a sample covariance: sqrt((s_ab^2 + s_aa s_bb) / m)
        se_cov = np.sqrt((full[j] ** 2 + np.outer(np.diag(full[j]), np.diag(full[j]))) / len(xj))
        assert np.all(np.abs(cov - full[j]) < 5 * se_cov)


def test_samples_refit_by_emcli_give_the_model_back(tmp_path):
    """N = 4000: se(weight) ~ 0.007, se(mean) <= 0.04; tolerances are 5 standard errors."""
    path, model = _known_model(tmp_path)
    n = 4000
    ok("sample", path, "-n", str(n), "--seed", "11", "--output", tmp_path / "s.csv")
    ok(
        "fit",
        tmp_path / "s.csv",
        "-k",
        "2",
        "-n",
        "2",
        "-c",
        "u,v",
        "-q",
        "--params",
        tmp_path / "refit.json",
    )
    refit = emcli.load(str(tmp_path / "refit.json"))
    se_w = np.sqrt(model.weights * (1 - model.weights) / n)
    assert np.all(np.abs(refit.weights - model.weights) < 5 * se_w)
    full = model.params.full_covariances()
    for j in range(2):
        se_mean = np.sqrt(np.diag(full[j]) / (n * model.weights[j]))
        assert np.all(np.abs(refit.means[j] - model.means[j]) < 5 * se_mean)


# ---------------------------------------------------------------------------- describe
def test_describe_json_and_text(tmp_path, model_file):
    model = emcli.load(str(model_file))
    result = ok("describe", model_file, "--json")
    assert result.stderr == ""
    data = json.loads(result.stdout)
    # --json adds each component's full d x d covariance (the file stores native shapes)
    assert data == json.loads(json.dumps(describe(model, full_covariances=True)))
    np.testing.assert_array_equal(
        [c["covariance"] for c in data["components"]], model.full_covariances()
    )
    assert [c["weight"] for c in data["components"]] == model.weights.tolist()
    means = dict(zip(model.columns, model.means[0].tolist(), strict=True))
    assert data["components"][0]["mean"] == means
    sd = np.sqrt(np.diagonal(model.params.full_covariances(), axis1=1, axis2=2))
    assert data["components"][1]["sd"]["b"] == pytest.approx(sd[1, 1], rel=1e-15)
    assert data["log_likelihood"] == model.log_likelihood and data["bic"] == model.bic
    assert data["settings"]["n_restarts"] == 2 and "selection" not in data
    text = ok("describe", model_file)
    assert text.stderr == ""
    assert f"3 component(s), {model.covariance_type} covariance" in text.stdout
    assert f"log-likelihood {model.log_likelihood:.6f}" in text.stdout
    assert f"{model.weights[0]:.4f}" in text.stdout and "BIC" in text.stdout


def test_describe_shows_the_selection(tmp_path):
    path = tmp_path / "sel.json"
    ok(
        "fit",
        SAMPLE_DATA / "iris.csv",
        "-k",
        "1..2",
        "--covariance",
        "diag,full",
        "-n",
        "2",
        "--jobs",
        "1",
        "-q",
        "--params",
        path,
    )
    data = json.loads(ok("describe", path, "--json").stdout)
    assert data["selection"]["n_candidates"] == 4 and data["selection"]["criterion"] == "bic"
    text = ok("describe", path).stdout
    assert "selection: by BIC among 4 candidates" in text
    assert "petal_width" in text  # wide models: one row per (component, column)


# ---------------------------------------------------------------------------- help
@pytest.mark.parametrize("command", ["predict", "score", "sample", "describe"])
def test_help(command):
    result = ok(command, "--help")
    assert "Example:" in result.stdout and result.stderr == ""

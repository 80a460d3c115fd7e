"""fit --pca N: the projection (against scikit-learn's PCA), the model file, predict on the
input columns, and wide tables (more columns than rows)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from clirun import run
from sklearn.decomposition import PCA
from sklearn.metrics import adjusted_rand_score

import emcli
from emcli.pca import fit_projection


def _wide(seed=0, n_per=12, d=400, k=4):
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 2.0, size=(k, d)) * (rng.random(d) < 0.1)
    labels = np.repeat(np.arange(k), n_per)
    return centers[labels] + rng.normal(size=(k * n_per, d)), labels


def test_projection_equals_sklearn_pca():
    x, _ = _wide()
    ours = fit_projection(x, 5, [f"g{j}" for j in range(x.shape[1])])
    ref = PCA(5).fit(x)
    np.testing.assert_allclose(np.abs(ours.components), np.abs(ref.components_), atol=1e-8)
    np.testing.assert_allclose(ours.explained_variance, ref.explained_variance_, rtol=1e-10)
    np.testing.assert_allclose(np.abs(ours.transform(x)), np.abs(ref.transform(x)), atol=1e-8)


def test_wide_table_with_pca_recovers_the_groups(tmp_path):
    x, labels = _wide()
    path = tmp_path / "wide.csv"
    pd.DataFrame(x, columns=[f"g{j}" for j in range(x.shape[1])]).to_csv(path, index=False)
    refused = run("fit", path, "-k", "4")
    assert refused.exit_code == 1
    assert refused.stderr.startswith("Error:") and "--pca" in refused.stderr
    model_path, labels_path = tmp_path / "m.json", tmp_path / "l.csv"
    res = run("fit", path, "-k", "4", "--pca", "5", "--params", model_path, "--labels", labels_path)
    assert res.exit_code == 0, res.stderr
    got = pd.read_csv(labels_path)["cluster"]
    assert adjusted_rand_score(labels, got) == 1.0
    data = json.loads(model_path.read_text())
    assert data["columns"] == ["PC1", "PC2", "PC3", "PC4", "PC5"]
    assert np.shape(data["pca"]["components"]) == (5, x.shape[1])
    jsonschema = pytest.importorskip("jsonschema")
    schema_path = Path(emcli.__file__).parent / "schema" / "model.schema.json"
    schema = json.loads(schema_path.read_text())
    jsonschema.validate(data, schema)
    # predict reads the input columns and projects them
    pred = run("predict", model_path, path)
    assert pred.exit_code == 0, pred.stderr
    assert list(pd.read_csv(io.StringIO(pred.stdout))["cluster"]) == list(got)
    model = emcli.MixtureModel.load(model_path)
    assert model.input_columns == [f"g{j}" for j in range(x.shape[1])]
    np.testing.assert_array_equal(model.predict(x), got.to_numpy())


def test_pca_errors():
    x, _ = _wide()
    with pytest.raises(emcli.DataError, match="principal axes"):
        emcli.fit(x[:10], 2, pca=20)
    gaps = x.copy()
    gaps[0, 0] = np.nan
    with pytest.raises(emcli.DataError, match="complete rows"):
        emcli.fit(gaps, 2, pca=3)


def test_sample_of_a_pca_model_draws_rows_of_the_input_columns(tmp_path):
    """The rows drawn from a --pca model are points of the input space, mapped back from
    the principal axes: each component's sample mean is its mean mapped back."""
    rng = np.random.default_rng(0)
    z = np.r_[rng.normal(0, 1, (150, 2)), rng.normal(6, 1, (150, 2))]
    x = z @ rng.normal(size=(2, 8)) + rng.normal(0, 0.01, (300, 8))
    names = [f"g{i}" for i in range(8)]
    pd.DataFrame(x, columns=names).to_csv(tmp_path / "wide.csv", index=False)
    model_path = tmp_path / "m.json"
    assert (
        run(
            "fit", tmp_path / "wide.csv", "-k", "2", "--pca", "2", "--params", model_path, "-q"
        ).exit_code
        == 0
    )
    r = run("sample", model_path, "-n", "20000", "--seed", "3")
    assert r.exit_code == 0, r.output
    rows = pd.read_csv(io.StringIO(r.stdout))
    assert list(rows.columns) == [*names, "component"]
    model = emcli.load(str(model_path))
    data = json.loads(model_path.read_text())["pca"]
    mapped = np.asarray(model.means) @ np.asarray(data["components"]) + np.asarray(data["mean"])
    for j in range(2):
        got = rows[rows.component == j][names].mean().to_numpy()
        np.testing.assert_allclose(got, mapped[j], atol=0.1 * np.abs(mapped).max())

"""The R mclust reference files in tests/data/ hold what they say (checked without R).

Their figures against independent sources: the published log-likelihoods, mclust's parameter
counts against the Celeux & Govaert (1995) counts, BIC = 2 loglik - npar log n, the one-
component cells against the closed-form Gaussian fit, and the data against sample_data/.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest

DATA = Path(__file__).resolve().parent / "data"
SAMPLE = Path(__file__).resolve().parents[1] / "sample_data"
MODELS = (
    "EII", "VII", "EEI", "VEI", "EVI", "VVI", "EEE",
    "VEE", "EVE", "VVE", "EEV", "VEV", "EVV", "VVV",
)  # fmt: skip


def covariance_terms(model: str, g: int, d: int) -> int:
    """Free covariance parameters of Sigma_k = lambda_k D_k A_k D_k^T (Celeux & Govaert)."""
    volume = {"E": 1, "V": g}[model[0]]
    shape = {"E": d - 1, "V": g * (d - 1), "I": 0}[model[1]]
    rotation = d * (d - 1) // 2
    orientation = {"E": rotation, "V": g * rotation, "I": 0}[model[2]]
    return volume + shape + orientation


def reference() -> dict:
    return json.loads((DATA / "mclust_reference.json").read_text())


def load_x(name: str) -> np.ndarray:
    if name == "diabetes":
        return np.loadtxt(DATA / "diabetes.csv", delimiter=",", skiprows=1, usecols=(0, 1, 2))
    usecols = {"faithful": (0, 1), "iris": (0, 1, 2, 3)}[name]
    return np.loadtxt(SAMPLE / f"{name}.csv", delimiter=",", skiprows=1, usecols=usecols)


def cells(name: str) -> dict[tuple[str, int], dict]:
    return {(c["model"], c["G"]): c for c in reference()["datasets"][name]["cells"]}


def test_published_figures() -> None:
    assert reference()["mclust"] == "6.0.0"
    assert round(cells("faithful")[("EEE", 3)]["loglik"], 2) == -1126.33
    assert round(cells("diabetes")[("VVV", 3)]["loglik"], 2) == -2303.50
    assert round(cells("iris")[("VEV", 2)]["loglik"], 2) == -215.73
    for name, (model, g) in {"faithful": ("EEE", 3), "diabetes": ("VVV", 3)}.items():
        chosen = reference()["datasets"][name]["chosen"]
        assert (chosen["model"], chosen["G"]) == (model, g)


@pytest.mark.parametrize("name", ["faithful", "iris", "diabetes"])
def test_cells_are_complete_and_consistent(name: str) -> None:
    ds = reference()["datasets"][name]
    x = load_x(name)
    assert x.shape == (ds["n"], ds["d"])
    n, d = x.shape
    table = cells(name)
    assert set(table) == {(m, g) for m in MODELS for g in range(1, 6)}
    for (model, g), cell in table.items():
        assert cell["npar"] == g * d + (g - 1) + covariance_terms(model, g, d), (model, g)
        if cell["code"] != 0:
            assert cell["loglik"] is None and cell["bic"] is None
            continue
        assert abs(cell["bic"] - (2 * cell["loglik"] - cell["npar"] * math.log(n))) < 1e-8


@pytest.mark.parametrize("name", ["faithful", "iris", "diabetes"])
def test_one_component_cells_are_the_closed_form_fit(name: str) -> None:
    x = load_x(name)
    n, d = x.shape
    s = np.cov(x, rowvar=False, bias=True)

    def loglik(cov: np.ndarray) -> float:
        r = x - x.mean(axis=0)
        quad = np.einsum("ij,jk,ik->", r, np.linalg.inv(cov), r)
        return -0.5 * (n * d * math.log(2 * math.pi) + n * np.linalg.slogdet(cov)[1] + quad)

    spherical = loglik(np.trace(s) / d * np.eye(d))
    diagonal = loglik(np.diag(np.diag(s)))
    full = loglik(s)
    for (model, g), cell in cells(name).items():
        if g == 1:
            want = spherical if model[1:] == "II" else diagonal if model[2] == "I" else full
            assert abs(cell["loglik"] - want) < 1e-6 * abs(want), model


def test_diabetes_csv() -> None:
    with (DATA / "diabetes.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 145 and list(rows[0]) == ["glucose", "insulin", "sspg", "class"]
    counts = {c: sum(r["class"] == c for r in rows) for c in ("Chemical", "Normal", "Overt")}
    assert counts == {"Chemical": 36, "Normal": 76, "Overt": 33}  # Reaven & Miller's groups


@pytest.mark.parametrize("name,n", [("faithful", 272), ("geyser", 299)])
def test_hc_partitions(name: str, n: int) -> None:
    hc = json.loads((DATA / f"mclust_hc_{name}.json").read_text())
    assert hc["n"] == n and hc["same_as_Mclust_initialization"]
    assert len(hc["merge"]) == n - 1
    for g, (labels, sizes) in enumerate(
        zip(hc["partitions"], hc["group_sizes"], strict=True), start=1
    ):
        assert len(labels) == n and sorted(set(labels)) == list(range(1, g + 1))
        assert [labels.count(j) for j in range(1, g + 1)] == sizes
    # hclass cuts one tree: each partition refines the next coarser one.
    for fine, coarse in zip(hc["partitions"][1:], hc["partitions"][:-1], strict=True):
        assert len({(f, c) for f, c in zip(fine, coarse, strict=True)}) == len(set(fine))
    # The figure: geyser VVV, 3 from mclust's hierarchical start.
    if name == "geyser":
        assert round(hc["vvv_loglik_from_hc_start"][2], 2) == -1364.94

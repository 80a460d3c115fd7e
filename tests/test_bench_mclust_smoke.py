"""benchmarks/bench_mclust.py: the --quick path without R, and its cell comparison."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def load_bench():
    path = ROOT / "benchmarks" / "bench_mclust.py"
    spec = importlib.util.spec_from_file_location("bench_mclust", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench


def test_quick_run_without_r(tmp_path: Path, capsys) -> None:
    bench = load_bench()
    missing = str(tmp_path / "no-such-Rscript")
    argv = ["--quick", "--api", "--rscript", missing, "--out", str(tmp_path)]
    assert bench.main(argv) == 0
    out = capsys.readouterr().out
    assert "R not found" in out and "skipping mclust" in out
    assert "sample_data/ only" in out
    (result,) = tmp_path.glob("mclust-quick-*.json")
    data = json.loads(result.read_text())
    # --render prints the saved text report again from the JSON.
    text = (tmp_path / result.name.replace(".json", ".txt")).read_text()
    assert bench.main(["--render", str(result)]) == 0
    assert capsys.readouterr().out == text
    assert "shared" in data["machine"] and data["machine"]["loadavg_end"]
    (ds,) = data["datasets"]
    assert ds["name"] == "faithful" and "mclust" not in ds and "comparison" not in ds
    emcli = ds["emcli"]
    assert emcli["wall_s"] > 0 and "error" not in emcli
    cells = emcli["cells"]
    # Every model emcli's 'all' fits, for G = 1..2 (--quick), named by its mclust name.
    models = {key.split(",")[0] for key in cells}
    assert {"VVV", "EEE", "VVI", "VII"} <= models
    assert set(cells) == {f"{m},{g}" for m in models for g in (1, 2)}
    chosen = emcli["chosen"]
    cell = cells[f"{chosen['model']},{chosen['G']}"]
    assert cell["status"] == "ok" and abs(cell["loglik"] - chosen["loglik"]) < 1e-9
    # The in-process selection (same settings and seed) picks the same model.
    api = ds["api"]["winner"]
    assert (api["components"], api["log_likelihood"]) == (chosen["G"], chosen["loglik"])
    assert bench.model_name(api) == chosen["model"]
    # G = 1 of the full-covariance model is one Gaussian: the closed-form log-likelihood.
    import numpy as np

    x = np.loadtxt(ROOT / "sample_data" / "faithful.csv", delimiter=",", skiprows=1)
    n, d = x.shape
    cov = np.cov(x, rowvar=False, bias=True)
    ll = -0.5 * n * (d * np.log(2 * np.pi) + np.linalg.slogdet(cov)[1] + d)
    assert abs(cells["VVV,1"]["loglik"] - ll) < 1e-6


def test_without_r_skips_data_sets_not_shipped(tmp_path: Path, capsys) -> None:
    bench = load_bench()
    argv = ["--datasets", "diabetes", "--no-mclust", "--out", str(tmp_path)]
    assert bench.main(argv) == 0
    assert "skipping diabetes: not in sample_data/" in capsys.readouterr().out
    (result,) = tmp_path.glob("mclust-*.json")
    assert json.loads(result.read_text())["datasets"] == []


def test_compare_sorts_cells() -> None:
    bench = load_bench()

    def m(ll, npar=5, code=0):
        return {"loglik": ll, "bic": None, "npar": npar, "code": code}

    def e(ll, status="ok", npar=5, reason=""):
        return {"loglik": ll, "status": status, "npar": npar, "reason": reason}

    mclust = {
        ("VVV", 1): m(-100.0),
        ("VVV", 2): m(-90.0),
        ("VVV", 3): m(-80.0),
        ("VVV", 4): m(None, code=-1),
        ("EEE", 2): m(-95.0),
        ("EEE", 3): m(-85.0),
        ("EVE", 2): m(-93.0),
    }
    emcli = {
        ("VVV", 1): e(-100.00005),  # within the 1e-4 tolerance
        ("VVV", 2): e(-90.5),  # below
        ("VVV", 3): e(None, "degenerate", reason="collapsed"),
        ("VVV", 4): e(-70.0),
        ("EEE", 2): e(-94.0, npar=6),  # above; parameter count differs
        ("EEE", 3): e(-85.01),  # below: 0.01 > max(1e-4, 8.5e-5)
    }
    c = bench.compare(emcli, mclust)
    assert c["compared"] == 4 and c["at_least"] == 2
    assert [(x["model"], x["G"]) for x in c["above"]] == [("EEE", 2)]
    assert [(x["model"], x["G"]) for x in c["below"]] == [("EEE", 3), ("VVV", 2)]
    assert abs(c["below"][1]["diff"] + 0.5) < 1e-12
    assert [(x["model"], x["G"], x["reason"]) for x in c["refused"]] == [("VVV", 3, "collapsed")]
    assert [(x["model"], x["G"], x["emcli"]) for x in c["mclust_na"]] == [("VVV", 4, -70.0)]
    assert c["not_fitted"] == 1
    assert [(x["model"], x["emcli_npar"], x["mclust_npar"]) for x in c["npar_mismatch"]] == [
        ("EEE", 6, 5)
    ]


def test_model_names() -> None:
    bench = load_bench()
    assert bench.model_name({"covariance": "tied"}) == "EEE"
    assert bench.model_name({"covariance": "full", "model_name": ""}) == "VVV"
    assert bench.model_name({"covariance": "vev", "model_name": "VEV"}) == "VEV"
    assert bench.model_name({"covariance": "eev"}) == "EEV"

"""benchmarks/run.py --quick runs end to end and reports agreeing log-likelihoods."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def load_bench():
    spec = importlib.util.spec_from_file_location("bench_run", ROOT / "benchmarks" / "run.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench


def test_benchmark_quick_run(tmp_path: Path, capsys) -> None:
    bench = load_bench()
    # --skip-cli: the end-to-end and start-up timings are subprocess runs of emcli itself,
    # which the CLI tests cover; the rest of the script runs as a user would run it.
    assert bench.main(["--quick", "--skip-cli", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "machine bound" in out and "SQUAREM" in out and "float32" in out
    (result,) = tmp_path.glob("quick-*.json")
    data = json.loads(result.read_text())
    assert len(data["cases"]) == 5
    for case in data["cases"]:
        # emcli and scikit-learn ran from the same start: same log-likelihoods.
        assert case["max_rel_ll_diff"] <= 1e-10
        assert case["emcli_s_per_iter"] > 0 and case["sklearn_s_per_iter"] > 0
    assert data["cases"][0]["mem_emcli"]["extra"] >= 0
    assert data["bound"]["bound_s"] > 0
    assert data["bound"]["emcli_dense_s_per_iter"] > 0
    assert all(r["starts_worse"] == [] for r in data["squarem"])
    assert data["float32"][0]["max_rel_ll_diff"] < 1e-4


def test_benchmark_read_speed_small() -> None:
    # The CSV reading comparison (part of the CLI section) on a 1 MiB file.
    result = load_bench().read_speed(1 << 20, 1)
    assert 0.5 * (1 << 20) < result["bytes"] <= 1 << 20
    assert all(result[name] > 0 for name in ("emcli", "pyarrow", "pandas"))

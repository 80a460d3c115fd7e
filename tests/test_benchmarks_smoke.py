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


def test_docs_figures_are_the_committed_result_file() -> None:
    # README.md and docs/speed.md show the block benchmarks/run.py wrote from
    # benchmarks/results/latest.json, the file that run committed: the same text.
    bench = load_bench()
    results = json.loads(bench.LATEST.read_text())
    block = bench.docs_block(results)
    for path in bench.DOCS:
        text = path.read_text()
        assert text.count(bench.BEGIN) == 1 and text.count(bench.END) == 1, path
        shown = bench.BEGIN + text.split(bench.BEGIN, 1)[1].split(bench.END, 1)[0] + bench.END
        assert shown == block, f"{path}: rerun benchmarks/run.py (the block is stale)"
    # The run that wrote it passed its own checks: same start, same iterations, 1e-10.
    assert all(c["max_rel_ll_diff"] <= 1e-10 for c in results["cases"])
    assert results["machine"]["git"]["commit"] and results["machine"]["blas"]


def test_benchmark_fails_when_log_likelihoods_differ(tmp_path: Path, monkeypatch) -> None:
    bench = load_bench()
    real = bench.time_sklearn

    def off(x, params, iters):
        times, lls = real(x, params, iters)
        return times, [ll * (1 + 1e-8) for ll in lls]

    monkeypatch.setattr(bench, "time_sklearn", off)
    args = ["--quick", "--skip-cli", "--skip-accelerate", "--skip-memory", "--out", str(tmp_path)]
    assert bench.main([*args, "--shape", "500,2,2,full"]) == 1

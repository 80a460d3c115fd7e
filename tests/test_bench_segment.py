"""benchmarks/bench_segment.py --quick runs end to end; its yardstick (scipy) agrees with the
log-likelihood emcli and scikit-learn report for themselves."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_bench_segment_quick(tmp_path: Path) -> None:
    pytest.importorskip("PIL")
    spec = importlib.util.spec_from_file_location(
        "bench_segment", ROOT / "benchmarks" / "bench_segment.py"
    )
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    report = bench.main(["--quick", "-k", "3", "--out", str(tmp_path)])
    assert report["pixels"] == 60 * 80
    runs = {r["method"].split()[0]: r for r in report["runs"]}
    assert {"emcli", "scikit-learn"} <= set(runs)
    for run in runs.values():
        assert run["seconds"] > 0
        assert run["log_likelihood"] == pytest.approx(run["reported_log_likelihood"], rel=1e-6)
    assert len(list(tmp_path.glob("segment-*.md"))) == 1

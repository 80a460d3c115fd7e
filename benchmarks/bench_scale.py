"""Benchmark of the engines (issue 7): larger-than-memory streaming, and per-iteration costs.

Two parts:

1. ``big``: a Parquet file several times larger in memory than ``--memory-limit`` is fitted
   by the ``emcli fit`` command (a child process) with ``--memory-limit`` and no ``--engine``,
   so the automatic choice must pick the stream engine; reports the child's peak RSS against
   the limit, time per EM iteration and rows per second.
2. ``overhead``: on a table that fits in memory, the median time per EM iteration of the
   stream engine and of the dask engine (a LocalCluster of 2 single-threaded worker
   processes) divided by the memory engine's.

Run from the repository root::

    python benchmarks/bench_scale.py                      # both parts, default sizes
    python benchmarks/bench_scale.py big --rows 20000000 --memory-limit 512MB
    python benchmarks/bench_scale.py overhead --rows 2000000 --repeat 3

Files go to ``benchmarks/results/`` (git-ignored, ``--workdir`` to change); the figures are
printed and written to ``benchmarks/results/bench_scale.json``.  Times on a shared machine
vary: every figure is given with its spread (min, median, max over iterations and repeats).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

N_FEATURES = 10
N_COMPONENTS = 3


def write_mixture_parquet(
    path: Path, n_rows: int, seed: int = 0, group_rows: int = 500_000
) -> None:
    """n_rows x 10 columns from a 3-component mixture, written row group by row group."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    means = rng.normal(scale=5.0, size=(N_COMPONENTS, N_FEATURES))
    names = [f"x{j}" for j in range(N_FEATURES)]
    schema = pa.schema([(n, pa.float64()) for n in names])
    with pq.ParquetWriter(path, schema) as writer:
        for start in range(0, n_rows, group_rows):
            m = min(group_rows, n_rows - start)
            labels = rng.integers(N_COMPONENTS, size=m)
            x = means[labels] + rng.normal(size=(m, N_FEATURES))
            writer.write_table(
                pa.table({n: x[:, j] for j, n in enumerate(names)}), row_group_size=group_rows
            )


def spread(values: list[float]) -> dict[str, float]:
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


# ---------------------------------------------------------------------------- big
# Runs ``emcli`` and reports the peak RSS of its own process image (VmHWM) on stderr;
# ru_maxrss would also count the parent's peak when the child is started by vfork.
PEAK_WRAPPER = """
import sys
from emcli.cli import main
try:
    main(sys.argv[1:])
finally:
    with open("/proc/self/status") as status:
        hwm = next(line.split()[1] for line in status if line.startswith("VmHWM:"))
    print("VmHWM", hwm, file=sys.stderr)
"""


def bench_big(
    workdir: Path, n_rows: int, memory_limit: str, max_iter: int, covariance: str
) -> dict:
    from emcli.engines.choose import parse_size

    path = workdir / f"big_{n_rows}.parquet"
    if not path.exists():
        t0 = time.perf_counter()
        write_mixture_parquet(path, n_rows)
        print(
            f"wrote {path} ({path.stat().st_size / 1e9:.2f} GB) in "
            f"{time.perf_counter() - t0:.0f} s",
            file=sys.stderr,
        )
    args = [
        sys.executable,
        "-c",
        PEAK_WRAPPER,
        "fit",
        str(path),
        "-k",
        str(N_COMPONENTS),
        "--covariance",
        covariance,
        "-n",
        "1",
        "--max-iter",
        str(max_iter),
        "--tol",
        "0",
        "--memory-limit",
        memory_limit,
        "-v",
        "--params",
        str(workdir / "big_model.json"),
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    t0 = time.perf_counter()
    run = subprocess.run(args, capture_output=True, text=True, env=env, check=True)
    wall = time.perf_counter() - t0
    peak = int(re.search(r"VmHWM (\d+)", run.stderr).group(1)) * 1024  # bytes
    elapsed = [float(v) for v in re.findall(r"elapsed ([0-9.]+)s", run.stderr)]
    per_iter = np.diff(elapsed).tolist()  # each: one M-step and one streamed E-step pass
    limit = parse_size(memory_limit)
    result = {
        "rows": n_rows,
        "columns": N_FEATURES,
        "components": N_COMPONENTS,
        "covariance": covariance,
        "in_memory_bytes": n_rows * N_FEATURES * 8,
        "file_bytes": path.stat().st_size,
        "memory_limit_bytes": limit,
        "auto_stream_note": [ln for ln in run.stderr.splitlines() if "engine stream" in ln],
        "peak_rss_bytes": peak,
        "peak_rss_under_limit": peak < limit,
        "seconds_per_iteration": spread(per_iter),
        "rows_per_second": n_rows / statistics.median(per_iter),
        "wall_seconds": wall,
        "iterations": len(per_iter),
    }
    return result


# ---------------------------------------------------------------------------- overhead
class Timer:
    """A Monitor that records the time of every EM iteration callback."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def start(self, start: int, n_starts: int) -> None:
        pass

    def iteration(self, start: int, n_iter: int, log_likelihood: float, delta: float) -> None:
        self.times.append(time.perf_counter())

    def end(self, result) -> None:
        pass

    def per_iteration(self) -> list[float]:
        return np.diff(self.times).tolist()


def bench_overhead(
    workdir: Path, n_rows: int, max_iter: int, repeat: int, covariance: str, workers: int
) -> dict:
    import distributed

    from emcli import api
    from emcli.data.reader import read_table
    from emcli.engines.dask import DaskEngine
    from emcli.engines.memory import MemoryEngine
    from emcli.engines.stream import StreamEngine

    path = workdir / f"fits_{n_rows}.parquet"
    if not path.exists():
        write_mixture_parquet(path, n_rows, group_rows=250_000)
    settings = dict(
        covariance_type=covariance, n_restarts=1, max_iter=max_iter, tol=0.0, init_sample=20_000
    )
    times: dict[str, list[float]] = {"memory": [], "stream": [], "dask": []}
    lls: dict[str, float] = {}
    table = read_table(str(path))
    cluster = distributed.LocalCluster(
        n_workers=workers,
        threads_per_worker=1,
        processes=True,
        dashboard_address=":0",
        silence_logs=logging.ERROR,
    )
    client = distributed.Client(cluster)
    try:
        for _ in range(repeat):
            for name in ("memory", "stream", "dask"):
                timer = Timer()
                if name == "memory":
                    model = api.fit_engine(
                        MemoryEngine(table.x),
                        N_COMPONENTS,
                        columns=table.columns,
                        monitor=timer,
                        **settings,
                    )
                elif name == "stream":
                    with StreamEngine(str(path)) as engine:
                        model = api.fit_engine(engine, N_COMPONENTS, monitor=timer, **settings)
                else:
                    with DaskEngine(str(path), client=client) as engine:
                        model = api.fit_engine(engine, N_COMPONENTS, monitor=timer, **settings)
                times[name] += timer.per_iteration()
                lls[name] = model.log_likelihood
    finally:
        client.close()
        cluster.close()
    med = {k: statistics.median(v) for k, v in times.items()}
    return {
        "rows": n_rows,
        "columns": N_FEATURES,
        "components": N_COMPONENTS,
        "covariance": covariance,
        "dask_workers": workers,
        "repeats": repeat,
        "iterations_per_repeat": max_iter,
        "seconds_per_iteration": {k: spread(v) for k, v in times.items()},
        "ratio_stream_over_memory": med["stream"] / med["memory"],
        "ratio_dask_over_memory": med["dask"] / med["memory"],
        "log_likelihood_rel_diff": {
            k: abs(lls[k] - lls["memory"]) / abs(lls["memory"]) for k in ("stream", "dask")
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("part", nargs="?", choices=("all", "big", "overhead"), default="all")
    parser.add_argument("--rows", type=int, help="rows (big: 20M, overhead: 2M)")
    parser.add_argument("--memory-limit", default="512MB")
    parser.add_argument("--max-iter", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--covariance", default="full")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    out = {
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "note": "shared machine; figures vary run to run",
        }
    }
    if args.part in ("all", "big"):
        out["big"] = bench_big(
            args.workdir, args.rows or 20_000_000, args.memory_limit, args.max_iter, args.covariance
        )
        print(json.dumps(out["big"], indent=2))
    if args.part in ("all", "overhead"):
        out["overhead"] = bench_overhead(
            args.workdir,
            args.rows or 2_000_000,
            args.max_iter,
            args.repeat,
            args.covariance,
            args.workers,
        )
        print(json.dumps(out["overhead"], indent=2))
    target = args.workdir / "bench_scale.json"
    previous = json.loads(target.read_text()) if target.exists() else {}
    target.write_text(json.dumps({**previous, **out}, indent=2) + "\n")


if __name__ == "__main__":
    main()

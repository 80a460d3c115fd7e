"""Peak memory of a fit from a Parquet file: emcli against scikit-learn, each in a process
of its own.

    python benchmarks/bench_memory.py                       # 1e6 x 10, k = 8
    python benchmarks/bench_memory.py --rows 200000         # smaller, on a shared machine
    python benchmarks/bench_memory.py --before /tmp/old     # also emcli from another checkout

Every side runs as a child process under ``/usr/bin/time`` (its peak RSS, ``%M``), twice:
on the data file and on a 1,000-row file of the
same columns, whose peak is the side's fixed cost (Python, imports, pyarrow's first read).

* emcli: ``python -m emcli fit DATA.parquet -k K -n 1 --max-iter I --tol 0 -q`` (the reader,
  the checks and EM; the code of this checkout, or of ``--before`` through ``PYTHONPATH``);
* emcli, reading only: ``emcli.read_table`` (what ``fit`` reads the file with);
* scikit-learn: ``pyarrow.parquet.read_table`` then one float64 array (the usual way to get
  a Parquet file into scikit-learn), ``GaussianMixture(K, n_init=1, max_iter=I, tol=0)``.

The figure the reader and EM are judged by: peak - fixed cost, in units of the data (the
float64 array, n x d x 8 bytes) and of data + responsibilities (n x k x 8 bytes).  Results go
to ``benchmarks/results/memory/`` (JSON and the printed table).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent

EMCLI_READ = "import sys; from emcli.data.reader import read_table; read_table(sys.argv[1])"
SKLEARN_FIT = """
import sys, warnings
import numpy as np, pyarrow.parquet as pq
from sklearn.mixture import GaussianMixture
warnings.simplefilter("ignore")
table = pq.read_table(sys.argv[1])
x = np.column_stack([c.to_numpy() for c in table.columns]); del table
GaussianMixture(int(sys.argv[2]), n_init=1, max_iter=int(sys.argv[3]), tol=0.0,
                random_state=0).fit(x)
"""


def write_parquet(path: Path, n: int, d: int, k: int, seed: int = 0) -> None:
    """A planted mixture of k spherical clusters, float64 columns x0..x{d-1}."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    means = rng.normal(scale=5.0, size=(k, d))
    x = means[rng.integers(0, k, size=n)] + rng.normal(size=(n, d))
    pq.write_table(pa.table({f"x{j}": x[:, j] for j in range(d)}), path)


def peak_rss(cmd: list[str], code: Path) -> tuple[int, float]:
    """(peak RSS in bytes, seconds) of ``cmd`` run with ``code`` on PYTHONPATH, measured by
    ``/usr/bin/time`` (a child forked from this large process would inherit its peak)."""
    env = {**os.environ, "PYTHONPATH": str(code)}
    with tempfile.NamedTemporaryFile("r") as report:
        t = time.perf_counter()
        done = subprocess.run(
            ["/usr/bin/time", "-f", "%M", "-o", report.name, *cmd],
            env=env,
            cwd=code,
            stdout=subprocess.DEVNULL,
        )
        seconds = time.perf_counter() - t
        if done.returncode != 0:
            raise SystemExit(f"failed: {' '.join(cmd)}")
        return int(report.read().split()[-1]) * 1024, seconds


def commands(data: Path, k: int, iters: int) -> dict[str, list[str]]:
    py = sys.executable
    fit = [py, "-m", "emcli", "fit", str(data), "-k", str(k), "-n", "1"]
    return {
        "emcli fit": [*fit, "--max-iter", str(iters), "--tol", "0", "-q"],
        "emcli read_table": [py, "-c", EMCLI_READ, str(data)],
        "sklearn fit": [py, "-c", SKLEARN_FIT, str(data), str(k), str(iters)],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--features", type=int, default=10)
    ap.add_argument("-k", type=int, default=8)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--before", type=Path, help="a checkout of emcli to measure as 'before'")
    ap.add_argument("--skip-sklearn", action="store_true")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "memory")
    args = ap.parse_args(argv)
    n, d, k = args.rows, args.features, args.k
    data_mib = n * d * 8 / 2**20
    resp_mib = n * k * 8 / 2**20
    codes = {"after": ROOT, **({"before": args.before.resolve()} if args.before else {})}
    rows = []
    lines: list[str] = []

    def say(text: str = "") -> None:
        print(text, flush=True)
        lines.append(text)

    say(
        f"peak RSS, {n} x {d} Parquet (data {data_mib:.1f} MiB, responsibilities "
        f"{resp_mib:.1f} MiB), k = {k}, {args.iters} iterations; load average "
        f"{os.getloadavg()[0]:.2f} (the machine is shared: run while others worked)"
    )
    say(
        f"{'side':<26} {'peak MiB':>9} {'fixed MiB':>10} {'beyond fixed':>13} "
        f"{'- data':>8} {'x data':>7} {'seconds':>8}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        big, small = Path(tmp) / "data.parquet", Path(tmp) / "small.parquet"
        write_parquet(big, n, d, k)
        write_parquet(small, 1000, d, k)
        for version, code in codes.items():
            for side, cmd in commands(big, k, args.iters).items():
                if side.startswith("sklearn") and (version != "after" or args.skip_sklearn):
                    continue
                fixed, _ = peak_rss(commands(small, k, args.iters)[side], code)
                peak, seconds = peak_rss(cmd, code)
                beyond = (peak - fixed) / 2**20
                row = {
                    "side": side,
                    "version": version if side.startswith("emcli") else "sklearn",
                    "peak_mib": peak / 2**20,
                    "fixed_mib": fixed / 2**20,
                    "beyond_fixed_mib": beyond,
                    "beyond_data_mib": beyond - data_mib,
                    "beyond_over_data": beyond / data_mib,
                    "seconds": seconds,
                }
                rows.append(row)
                label = f"{side} ({version})" if side.startswith("emcli") else side
                say(
                    f"{label:<26} {row['peak_mib']:>9.1f} {row['fixed_mib']:>10.1f} "
                    f"{beyond:>13.1f} {row['beyond_data_mib']:>8.1f} "
                    f"{row['beyond_over_data']:>7.2f} {seconds:>8.1f}"
                )
    target = data_mib + resp_mib + 1.5 * data_mib
    say(
        f"target for a fit (issue 20): fixed + data + responsibilities + 1.5 x data = fixed "
        f"+ {target:.1f} MiB"
    )
    results = {
        "n": n,
        "d": d,
        "k": k,
        "iters": args.iters,
        "data_mib": data_mib,
        "responsibilities_mib": resp_mib,
        "target_beyond_fixed_mib": target,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "loadavg": os.getloadavg(),
        "rows": rows,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    (args.out / f"memory-{n}-{stamp}.json").write_text(json.dumps(results, indent=1))
    (args.out / f"memory-{n}-{stamp}.txt").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

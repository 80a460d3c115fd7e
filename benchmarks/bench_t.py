"""Cost of one EM iteration of the t family against the Gaussian family, side by side.

One iteration = one E-step over all rows (memory engine) + the M-step, from the same start
(the t family's start is the Gaussian start plus nu = 10).  The data: n rows in d dimensions
from a k-component mixture of t distributions (nu = 4).  The two families are timed in
alternation, ``--repeat`` iterations each, so a load that comes and goes on a shared machine
hits both alike; the median, min and max are printed with the ratio of the medians.  The t
family estimates nu per component (its most expensive setting).

Run:  python benchmarks/bench_t.py [--n 1000000] [--d 10] [--k 8] [--kinds full]
      [--repeat 5] [--out benchmarks/results/t-family]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from emcli.em.step import e_step
from emcli.engines.memory import MemoryEngine
from emcli.families import get_family


def data(n: int, d: int, k: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 4, size=(k, d))
    z = rng.integers(k, size=n)
    g = rng.normal(size=(n, d)) @ (0.3 * rng.normal(size=(d, d)) + np.eye(d))
    tau = rng.chisquare(4.0, size=n) / 4.0
    return centres[z] + g / np.sqrt(tau)[:, None]


def one(engine: MemoryEngine, family, params):
    t0 = time.perf_counter()
    params = family.m_step(*e_step(engine, family, params))
    return params, time.perf_counter() - t0


def compare(x: np.ndarray, k: int, kind: str, repeat: int) -> dict:
    engine = MemoryEngine(x)
    rng = np.random.default_rng(1)
    gauss, t = get_family("gaussian", covariance_type=kind), get_family("t", covariance_type=kind)
    pg = gauss.start(x[:20_000], k, "kmeans", rng)
    pt = t.from_responsibilities(x[:20_000], np.exp(gauss.log_resp_and_norm(x[:20_000], pg)[0]))
    pg, _ = one(engine, gauss, pg)  # warm up: buffers, realistic parameters
    pt, _ = one(engine, t, pt)
    times: dict[str, list[float]] = {"gaussian": [], "t": []}
    for _ in range(repeat):
        pg, dt = one(engine, gauss, pg)
        times["gaussian"].append(dt)
        pt, dt = one(engine, t, pt)
        times["t"].append(dt)
    med = {name: statistics.median(v) for name, v in times.items()}
    return {
        "kind": kind,
        "gaussian_s": times["gaussian"],
        "t_s": times["t"],
        "median_gaussian_s": med["gaussian"],
        "median_t_s": med["t"],
        "ratio": med["t"] / med["gaussian"],
        "df_after": [float(v) for v in pt.df],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--d", type=int, default=10)
    ap.add_argument("--k", type=int, default=8)
    ap.add_argument("--kinds", default="full")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--out", default=None, help="directory for a JSON and a text record")
    ap.add_argument("--note", default="", help="a remark for the record (machine load, ...)")
    args = ap.parse_args(argv)
    x = data(args.n, args.d, args.k)
    lines = [
        f"t family vs Gaussian family, one EM iteration (E-step + M-step), n={args.n} "
        f"d={args.d} k={args.k}, {args.repeat} alternating repeats, threads="
        f"{os.environ.get('EMCLI_THREADS', 'default')}, {os.cpu_count()} cores"
    ]
    if args.note:
        lines.append(f"note: {args.note}")
    results = []
    for kind in args.kinds.split(","):
        r = compare(x, args.k, kind, args.repeat)
        results.append(r)
        lines.append(
            f"{kind:9s} gaussian {r['median_gaussian_s']:.3f}s "
            f"[{min(r['gaussian_s']):.3f}, {max(r['gaussian_s']):.3f}]  "
            f"t {r['median_t_s']:.3f}s [{min(r['t_s']):.3f}, {max(r['t_s']):.3f}]  "
            f"ratio t/gaussian {r['ratio']:.2f}x"
        )
    print("\n".join(lines))
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        record = {
            "argv": sys.argv[1:] if argv is None else argv,
            "python": platform.python_version(),
            "numpy": np.__version__,
            "note": args.note,
            "results": results,
        }
        (out / f"t-vs-gaussian-{stamp}.json").write_text(json.dumps(record, indent=2) + "\n")
        (out / f"t-vs-gaussian-{stamp}.txt").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

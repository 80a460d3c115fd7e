"""Cost of one EM iteration with 20% of the cells missing, against the same data complete.

One iteration = one E-step over all rows (memory engine) + the M-step.  The data: n rows in
d dimensions from a k-component mixture; the same array with 20% of its cells removed
completely at random (so ~0.8^d of the rows stay complete and nearly every missingness
pattern occurs).  Each covariance type is timed ``--repeat`` times; the median, min and max
are printed, and the ratio of the medians.

Run:  python benchmarks/bench_missing.py [--n 100000] [--d 10] [--k 5] [--repeat 5]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from emcli.em.step import e_step
from emcli.engines.memory import MemoryEngine
from emcli.families.gaussian import GaussianFamily


def data(n: int, d: int, k: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 4, size=(k, d))
    z = rng.integers(k, size=n)
    return centres[z] + rng.normal(size=(n, d)) @ (0.3 * rng.normal(size=(d, d)) + np.eye(d))


def iteration_times(x: np.ndarray, k: int, kind: str, repeat: int) -> list[float]:
    rng = np.random.default_rng(1)
    sample = x[:20_000]
    family = GaussianFamily(kind, 1e-6)
    params = family.start(sample, k, "kmeans", rng)
    engine = MemoryEngine(x)
    params = family.m_step(*e_step(engine, family, params))  # warm up, realistic parameters
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        params = family.m_step(*e_step(engine, family, params))
        times.append(time.perf_counter() - t0)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--d", type=int, default=10)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--fraction", type=float, default=0.2)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    x = data(args.n, args.d, args.k)
    xm = x.copy()
    xm[np.random.default_rng(2).random(x.shape) < args.fraction] = np.nan
    gaps = np.isnan(xm)
    print(
        f"n={args.n} d={args.d} k={args.k}; {gaps.mean():.1%} cells missing, "
        f"{gaps.any(axis=1).mean():.1%} rows with gaps; {args.repeat} repeats, seconds per "
        "iteration as median [min-max]"
    )
    for kind in ("full", "tied", "diag", "spherical"):
        full = iteration_times(x, args.k, kind, args.repeat)
        gappy = iteration_times(xm, args.k, kind, args.repeat)
        med_f, med_g = float(np.median(full)), float(np.median(gappy))
        print(
            f"{kind:9s} complete {med_f:.4f} [{min(full):.4f}-{max(full):.4f}]  "
            f"{args.fraction:.0%} missing {med_g:.4f} [{min(gappy):.4f}-{max(gappy):.4f}]  "
            f"ratio {med_g / med_f:.1f}x"
        )


if __name__ == "__main__":
    main()

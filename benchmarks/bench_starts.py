"""Do restarts differ?  Distinct optima and the best log-likelihood per start method.

For each data set and k, every method of ``--init`` runs N starts (each to convergence, as
``emcli fit`` does), and the benchmark reports how many distinct optima the starts reach
(log-likelihoods more than 1e-6 relative apart), the best, and the spread.  A method whose
ten starts all reach one optimum is worth one start.

Data: scikit-learn's ``china.jpg`` pixels (r, g, b; 273,280 rows; ``--pixels`` subsamples
them with a fixed seed), geyser-like and the shipped sample data.

Run: ``python benchmarks/bench_starts.py [--pixels 60000] [--starts 10]``; results are
written to benchmarks/results/starts/ (JSON and a text table).
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import emcli  # noqa: E402
from emcli.em.driver import EMSettings, fit_em  # noqa: E402
from emcli.engines.memory import MemoryEngine  # noqa: E402
from emcli.families import get_family  # noqa: E402

METHODS = ("kmeans", "kmeans++", "random", "hc", "auto")


def datasets(pixels: int) -> list[tuple[str, np.ndarray, list[tuple[int, str]]]]:
    out = []
    try:
        from sklearn.datasets import load_sample_image

        img = load_sample_image("china.jpg").reshape(-1, 3).astype(float)
        if pixels and pixels < img.shape[0]:
            img = img[np.random.default_rng(0).choice(img.shape[0], pixels, replace=False)]
        out.append((f"china.jpg ({img.shape[0]} px)", img, [(4, "full"), (8, "full")]))
    except ImportError:
        print("scikit-learn is not installed: china.jpg skipped", file=sys.stderr)
    faithful = pd.read_csv(ROOT / "sample_data" / "faithful.csv").to_numpy(float)
    out.append(("faithful", faithful, [(3, "VVV"), (4, "VVV"), (6, "VEV")]))
    iris = pd.read_csv(ROOT / "sample_data" / "iris.csv").select_dtypes("number").to_numpy(float)
    out.append(("iris", iris, [(3, "VVV"), (5, "VEV")]))
    return out


def run_method(x, k, model, method, n_starts):
    family = get_family("gaussian", covariance_type=model, reg_covar=1e-6)
    t = time.perf_counter()
    outcome = fit_em(MemoryEngine(x), family, EMSettings(k, init=method, n_restarts=n_starts))
    seconds = time.perf_counter() - t
    lls = sorted((s.log_likelihood for s in outcome.starts if s.usable), reverse=True)
    distinct: list[float] = []
    for ll in lls:
        if all(abs(ll - other) > 1e-6 * abs(other) for other in distinct):
            distinct.append(ll)
    return {
        "method": method,
        "best": outcome.best.log_likelihood,
        "worst": lls[-1] if lls else None,
        "distinct_optima": len(distinct),
        "seconds": seconds,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pixels", type=int, default=60000, help="china.jpg pixels (0: all)")
    ap.add_argument("--starts", type=int, default=10)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "starts"))
    args = ap.parse_args()
    rows = []
    for name, x, cells in datasets(args.pixels):
        for k, model in cells:
            for method in METHODS:
                r = run_method(x, k, model, method, args.starts)
                r.update(data=name, k=k, model=model)
                rows.append(r)
                print(
                    f"{name:24s} k={k} {model:4s} {method:9s} best {r['best']:.3f} "
                    f"distinct {r['distinct_optima']:2d} {r['seconds']:.1f}s",
                    flush=True,
                )
    rev = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
    ).stdout.strip()
    stamp = time.strftime("%Y%m%dT%H%M%S")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    record = {
        "revision": rev,
        "machine": platform.platform(),
        "emcli": emcli.__version__,
        "starts": args.starts,
        "pixels": args.pixels,
        "rows": rows,
        "note": "the machine was shared with other jobs: times are indicative only",
    }
    (out / f"starts-{stamp}.json").write_text(json.dumps(record, indent=2) + "\n")
    lines = [
        f"{r['data']:24s} k={r['k']} {r['model']:4s} {r['method']:9s} best {r['best']:.3f} "
        f"distinct {r['distinct_optima']:2d} {r['seconds']:.1f}s"
        for r in rows
    ]
    (out / f"starts-{stamp}.txt").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()

"""``emcli.sklearn.GaussianMixture.fit`` against ``sklearn.mixture.GaussianMixture.fit``.

    python benchmarks/bench_sklearn.py            # (2e5, 10, 8) full and (1e6, 10, 8) diag
    python benchmarks/bench_sklearn.py --quick    # tiny sizes: a smoke test of the script

Both estimators get the same data (a planted mixture, ``run.make_data``) and the same
starting parameters (``weights_init``, ``means_init``, ``precisions_init`` from one k-means++
start, ``run.start_params``), ``tol=0`` and the same ``max_iter``, so both run exactly
``max_iter`` EM iterations on the same path: the whole ``fit`` is timed (validation, the
iterations, scikit-learn's final E-step; emcli's data checks).  scikit-learn is given
``init_params="random_from_data"`` so that its start costs nothing (with all three
``*_init`` given it overrides the start anyway; "kmeans" would time a KMeans fit).

The log-likelihoods must agree: the mean log-likelihood of the fitted models on the data
(``score``), and the per-iteration trajectories (``lower_bounds_``; scikit-learn's entry t is
the bound before its M-step t+1, emcli's the likelihood after its M-step t+1, so they are
compared one step apart).  Each fit is repeated ``--repeat`` times, the two sides alternating
(so a drift in the speed of a shared machine weighs on both alike); medians and the ratio
are printed and saved under benchmarks/results/sklearn/ (JSON and text).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CASES = [(200_000, 10, 8, "full"), (1_000_000, 10, 8, "diag")]
QUICK_CASES = [(3000, 3, 2, "full"), (3000, 3, 2, "diag")]
REG_COVAR = 1e-6


def _run_module():
    spec = importlib.util.spec_from_file_location("bench_run", ROOT / "benchmarks" / "run.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def estimators(params, iters: int):
    """(emcli's, scikit-learn's) unfitted estimators from the same start."""
    from sklearn.mixture import GaussianMixture as SkGaussianMixture

    from emcli.sklearn import GaussianMixture

    common = dict(
        n_components=params.n_components,
        covariance_type=params.covariance_type,
        tol=0.0,
        max_iter=iters,
        reg_covar=REG_COVAR,
        weights_init=params.weights,
        means_init=params.means,
        precisions_init=params.precisions(),
        random_state=0,
    )
    return GaussianMixture(**common), SkGaussianMixture(**common, init_params="random_from_data")


def timed_fit(estimator, x: np.ndarray) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tol=0 never converges: ConvergenceWarning
        t = time.perf_counter()
        estimator.fit(x)
        return time.perf_counter() - t


def run_case(n: int, d: int, k: int, kind: str, iters: int, repeat: int, bench) -> dict:
    x = bench.make_data(n, d, k)
    params = bench.start_params(x, k, kind)
    ours, theirs = estimators(params, iters)
    t_ours, t_theirs = [], []
    for _ in range(repeat):
        t_ours.append(timed_fit(ours, x))
        t_theirs.append(timed_fit(theirs, x))
    assert ours.n_iter_ == theirs.n_iter_ == iters
    score_ours, score_theirs = ours.score(x), theirs.score(x)
    traj_ours = np.asarray(ours.lower_bounds_[:-1])
    traj_theirs = np.asarray(theirs.lower_bounds_[1:])
    return {
        "n": n,
        "d": d,
        "k": k,
        "type": kind,
        "iterations": iters,
        "emcli_fit_s": statistics.median(t_ours),
        "sklearn_fit_s": statistics.median(t_theirs),
        "ratio": statistics.median(t_theirs) / statistics.median(t_ours),
        "emcli_times": t_ours,
        "sklearn_times": t_theirs,
        "emcli_score": score_ours,
        "sklearn_score": score_theirs,
        "rel_score_diff": abs(score_ours - score_theirs) / abs(score_theirs),
        "max_rel_trajectory_diff": float(
            np.max(np.abs(traj_ours - traj_theirs) / np.abs(traj_theirs))
        ),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes (smoke test)")
    ap.add_argument("--iters", type=int, default=None, help="EM iterations per fit")
    ap.add_argument("--repeat", type=int, default=None, help="fits per side")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "sklearn"))
    args = ap.parse_args(argv)
    bench = _run_module()
    info = bench.machine_info()
    cases = QUICK_CASES if args.quick else CASES
    iters = args.iters or (3 if args.quick else 10)
    repeat = args.repeat or (1 if args.quick else 3)
    lines: list[str] = []

    def say(text: str = "") -> None:
        print(text, flush=True)
        lines.append(text)

    say(
        f"emcli.sklearn.GaussianMixture.fit against sklearn.mixture.GaussianMixture.fit, "
        f"{iters} EM iterations from the same start, {repeat} fits per side (medians); "
        f"load average at start {info['loadavg_start'][0]:.2f}, {info['cpus']} cpus"
    )
    say()
    say(
        f"{'n':>9} {'d':>3} {'k':>3} {'type':<6} {'emcli s':>8} {'sklearn s':>10} "
        f"{'ratio':>6} {'rel d score':>12} {'rel d traj':>11}"
    )
    results: dict = {"machine": info, "cases": []}
    for n, d, k, kind in cases:
        row = run_case(n, d, k, kind, iters, repeat, bench)
        results["cases"].append(row)
        say(
            f"{n:>9} {d:>3} {k:>3} {kind:<6} {row['emcli_fit_s']:>8.3f} "
            f"{row['sklearn_fit_s']:>10.3f} {row['ratio']:>5.1f}x {row['rel_score_diff']:>12.1e} "
            f"{row['max_rel_trajectory_diff']:>11.1e}"
        )
    results["machine"]["loadavg_end"] = os.getloadavg()
    say()
    say(
        "The machine was shared with other work while this ran (load average above): the "
        "ratios are the figures to read; absolute seconds move with the load."
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    name = f"{'quick' if args.quick else 'estimator'}-{stamp}"
    (out / f"{name}.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / f"{name}.txt").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""emcli's mixed family against Weka's EM (diagonal normals + nominal) on the penguins table.

    python benchmarks/compare_weka.py [--out benchmarks/results/weka] [--seeds 10]

Weka's ``weka.clusterers.EM`` models a numeric attribute by one normal per cluster and a
nominal one by per-cluster level counts that start at 1 (a Laplace count); emcli's
``--family mixed`` with ``--covariance diag --alpha 1`` is that same model.  Weka replaces
missing values by the column's mean or mode before EM, emcli marginalises them, so the
comparison runs on the complete rows (333 of 344) where both see the same data.

Reported, side by side in one run: the mean log-likelihood per row each tool reports for
its best fit (Weka: the best of ``--seeds`` runs, one start each, as Weka has no restarts;
emcli: ``--restarts`` starts), the adjusted Rand index of each clustering against the
species (not given to either) and between the two, and wall times (Weka's include the JVM
start).  Skipped, with a message, where Weka is not installed (Debian: apt-get install
weka; or set WEKA_JAR).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
COLUMNS = ["island", "bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g", "sex"]


def weka_jar() -> str | None:
    for path in (os.environ.get("WEKA_JAR"), "/usr/share/java/weka.jar"):
        if path and Path(path).is_file() and shutil.which("java"):
            return path
    return None


def write_arff(frame: pd.DataFrame, path: Path) -> None:
    lines = ["@relation penguins"]
    for c in COLUMNS:
        if pd.api.types.is_numeric_dtype(frame[c]):
            lines.append(f"@attribute {c} numeric")
        else:
            lines.append(f"@attribute {c} {{{','.join(sorted(frame[c].unique()))}}}")
    lines.append("@data")
    lines += [",".join(str(v) for v in row) for row in frame[COLUMNS].itertuples(index=False)]
    path.write_text("\n".join(lines) + "\n")


def run_weka(jar: str, arff: Path, k: int, seed: int) -> tuple[float, np.ndarray, float]:
    """(Weka's mean log-likelihood per row, its cluster of each row, seconds)."""
    base = ["java", "-cp", jar, "weka.clusterers.EM", "-t", str(arff), "-N", str(k)]
    base += ["-S", str(seed), "-I", "1000", "-M", "1.0E-6"]
    t0 = time.perf_counter()
    out = subprocess.run(base, capture_output=True, text=True, check=True).stdout
    seconds = time.perf_counter() - t0
    found = re.search(r"Log likelihood:\s*(-?[0-9.]+)", out)
    if found is None:
        raise RuntimeError(f"no log likelihood in Weka's output:\n{out}")
    pred = subprocess.run([*base, "-p", "0"], capture_output=True, text=True, check=True).stdout
    labels = np.array([int(line.split()[1]) for line in pred.splitlines() if line.strip()])
    return float(found.group(1)), labels, seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "weka"))
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("-k", type=int, default=3)
    args = parser.parse_args(argv)
    jar = weka_jar()
    if jar is None:
        print("skipped: Weka is not installed (Debian: apt-get install weka; or set WEKA_JAR)")
        return 0
    from sklearn.metrics import adjusted_rand_score

    import emcli
    from emcli.data.encode import encode_frame

    frame = pd.read_csv(ROOT / "sample_data" / "penguins.csv").dropna().reset_index(drop=True)
    species = frame["species"].to_numpy()
    with tempfile.TemporaryDirectory() as tmp:
        arff = Path(tmp) / "penguins.arff"
        write_arff(frame, arff)
        runs = [run_weka(jar, arff, args.k, seed) for seed in range(1, args.seeds + 1)]
    weka_ll, weka_labels, _ = max(runs, key=lambda r: r[0])
    weka_seconds = sum(r[2] for r in runs)
    table = frame[COLUMNS]
    results = {}
    for alpha in (1.0, 0.0):
        t0 = time.perf_counter()
        model = emcli.fit(
            table, args.k, family="mixed", covariance_type="diag", alpha=alpha, n_restarts=10
        )
        seconds = time.perf_counter() - t0
        x, _ = encode_frame(table, "mixed", like=model.family.columns)
        labels = model.predict(x)
        results[f"alpha={alpha:g}"] = {
            "mean_log_likelihood": model.log_likelihood / model.n_samples,
            "ari_species": adjusted_rand_score(species, labels),
            "ari_weka": adjusted_rand_score(weka_labels, labels),
            "seconds": seconds,
            "n_iter": model.n_iter,
        }
    record = {
        "data": f"sample_data/penguins.csv, complete rows ({len(frame)}), columns {COLUMNS}",
        "k": args.k,
        "machine": "shared (about seven engineers on 2 cores): times are indicative",
        "weka": {
            "jar": jar,
            "best_of_seeds": args.seeds,
            "mean_log_likelihood": weka_ll,
            "ari_species": adjusted_rand_score(species, weka_labels),
            "seconds_all_seeds": weka_seconds,
        },
        "emcli": results,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "penguins.json").write_text(json.dumps(record, indent=2) + "\n")
    print(
        f"Weka EM, best of {args.seeds} seeds: mean log-likelihood {weka_ll:.5f}, "
        f"ARI vs species {record['weka']['ari_species']:.3f}, {weka_seconds:.1f} s in all"
    )
    for name, r in results.items():
        print(
            f"emcli mixed {name}: mean log-likelihood {r['mean_log_likelihood']:.5f}, "
            f"ARI vs species {r['ari_species']:.3f}, ARI vs Weka {r['ari_weka']:.3f}, "
            f"{r['seconds']:.2f} s"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

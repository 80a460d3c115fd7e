"""emcli's model selection against R mclust's ``Mclust(X, G = 1:9)``, side by side, per data set.

For each data set (faithful, iris, diabetes, banknote, wreath, thyroid, crabs; the columns
below) this script

1. exports the data from R to CSV in a temporary directory (every value reads back to the
   same double), so both sides read the same file;
2. runs ``emcli fit data.csv -k 1..9 --covariance all --selection sel.csv --params
   model.json`` (emcli's defaults: 10 starts, hc first, ``--jobs`` = the number of cores) as a
   process, timing its wall time and CPU time (its worker processes included);
3. runs ``Mclust(X, G = 1:9)`` (all 14 models, mclust's defaults: one hierarchical start) in
   ``Rscript benchmarks/bench_mclust.R``, timed inside R around the call (``proc.time``) and
   as wall time since R started (start-up, ``library(mclust)`` and reading the CSV included);
   then ``Mclust`` again on the models emcli fitted alone (the like-for-like time) and a few
   cells refitted one by one to check the log-likelihoods below;
4. compares every (model, G) cell.  mclust's ``$BIC`` holds BIC = 2 loglik - npar log n, so
   loglik = (BIC + npar log n) / 2 with npar = ``nMclustParams(model, d, G)``; the script
   checks this against ``Mclust(X, G = g, modelNames = m)$loglik`` on the chosen cell, VVV,4
   and EVE,3 of each data set (``loglik_check_max_abs``).

Each side runs ``--repeat`` times per data set (3 by default), the two alternating, and the
times reported are the medians: the machine is shared, and one run of each was 10-20% off
either way.

A cell counts as *at least mclust's* when emcli's log-likelihood >= mclust's - tol, with
tol = max(1e-4, 1e-6 |mclust's|); *below* otherwise (the amounts are listed).  *Refused*:
mclust reports a value and emcli's row is degenerate (collapsed in every start) or failed.
*mclust NA*: mclust reports no value (singular fit); what emcli has there is listed.  Cells
of models emcli does not fit are counted as *not fitted* (none since emcli's ``all`` is
mclust's 14); the selection table's ``model_name`` column names each cell.

Without R (or without mclust) the script says so, skips mclust, and runs emcli on the
data sets shipped in sample_data/ (faithful, iris) only.  Results go to
benchmarks/results/mclust/ as mclust-<UTC time>.json and .txt (machine, load average, git
revision).

Run:  python benchmarks/bench_mclust.py [--datasets faithful,iris] [--quick] [--api] [--repeat N]
"""

from __future__ import annotations

import argparse
import compileall
import csv
import json
import math
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
R_SCRIPT = Path(__file__).with_name("bench_mclust.R")
OUT_DIR = ROOT / "benchmarks" / "results" / "mclust"

# name -> (the R source, the columns used)
DATASETS: dict[str, tuple[str, str]] = {
    "faithful": ("R datasets::faithful", "eruptions, waiting"),
    "iris": ("R datasets::iris", "Sepal.Length, Sepal.Width, Petal.Length, Petal.Width"),
    "diabetes": ("mclust::diabetes", "glucose, insulin, sspg"),
    "banknote": ("mclust::banknote", "Length, Left, Right, Bottom, Top, Diagonal"),
    "wreath": ("mclust::wreath", "x1, x2"),
    "thyroid": ("mclust::thyroid", "RT3U, T4, T3, TSH, DTSH"),
    "crabs": ("MASS::crabs", "FL, RW, CL, CW, BD"),
}
NEEDS_MASS = {"crabs"}
# Without R: the data sets shipped in sample_data/ and their numeric columns.
SAMPLE_DATA = {
    "faithful": ("faithful.csv", ["eruptions", "waiting"]),
    "iris": ("iris.csv", ["sepal_length", "sepal_width", "petal_length", "petal_width"]),
}
MCLUST_MODELS = (
    "EII", "VII", "EEI", "VEI", "EVI", "VVI", "EEE",
    "VEE", "EVE", "VVE", "EEV", "VEV", "EVV", "VVV",
)  # fmt: skip
# mclust's me*() return codes of a cell it reports as NA
MCLUST_CODES = {
    -1: "singular covariance",
    -2: "a z column sum fell below threshold",
    -3: "a mixing proportion fell below threshold",
}
SKLEARN_NAMES = {"full": "VVV", "tied": "EEE", "diag": "VVI", "spherical": "VII"}
SHARED_NOTE = (
    "The machine (2 cores) was shared with several other engineers' jobs during the run: "
    "absolute times are noisy and inflated; the CPU-time ratios and the side-by-side wall "
    "ratios (each data set's runs of the two sides alternating) are the figures to read."
)


def tolerance(ll: float) -> float:
    return max(1e-4, 1e-6 * abs(ll))


# ---------------------------------------------------------------------------- R side
def find_r(rscript: str) -> tuple[str | None, bool, str]:
    """(the Rscript path or None, whether MASS is there, a message)."""
    path = shutil.which(rscript)
    if path is None:
        return None, False, f"R not found ({rscript!r} is not on PATH): skipping mclust"
    probe = subprocess.run(
        [path, "-e", "cat(as.character(packageVersion('mclust')))"],
        capture_output=True,
        text=True,
    )
    if probe.returncode != 0:
        return None, False, "R has no mclust package (install r-cran-mclust): skipping mclust"
    mass = subprocess.run(
        [path, "-e", "suppressWarnings(library(MASS))"], capture_output=True, text=True
    )
    return path, mass.returncode == 0, f"R mclust {probe.stdout.strip()} at {path}"


def r_versions(rscript: str) -> dict[str, str]:
    out = subprocess.run(
        [
            rscript,
            "-e",
            "cat(R.version.string, as.character(packageVersion('mclust')), sep='\\n')",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    return {"R": out[0], "mclust": out[1]}


def read_csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def number(text: str | None) -> float | None:
    if text is None or text in ("", "NA", "NaN"):
        return None
    value = float(text)
    return value if math.isfinite(value) else None


def run_mclust(
    rscript: str, data: Path, workdir: Path, gmax: int, subset: list[str]
) -> dict[str, Any]:
    prefix = workdir / f"{data.stem}-mclust"
    cmd = [rscript, str(R_SCRIPT), "fit", str(data), str(prefix), str(gmax)]
    cmd += [",".join(subset) if subset else "-", "auto"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip()[-2000:]}
    summary = {r["key"]: r["value"] for r in read_csv_rows(Path(f"{prefix}-summary.csv"))}
    n = int(summary["n"])
    cells = {}
    for r in read_csv_rows(Path(f"{prefix}-cells.csv")):
        cells[(r["model"], int(r["G"]))] = {
            "loglik": number(r["loglik"]),
            "bic": number(r["bic"]),
            "npar": int(r["npar"]),
            "code": int(r["code"]),
        }
    checks = []
    check_file = Path(f"{prefix}-checks.csv")
    for r in read_csv_rows(check_file) if check_file.exists() else []:
        cell = cells[(r["model"], int(r["G"]))]
        refit = number(r["refit_loglik"])
        derived = cell["loglik"]
        diff = None if refit is None or derived is None else derived - refit
        checks.append(
            {"model": r["model"], "G": int(r["G"]), "refit": refit, "derived": derived}
            | {"diff": diff}
        )
    diffs = [abs(c["diff"]) for c in checks if c["diff"] is not None]
    return {
        "time_in_r_s": float(summary["elapsed"]),
        "cpu_in_r_s": float(summary["user"]) + float(summary["system"]),
        "wall_since_r_start_s": float(summary["since_start"]),
        "process_wall_s": wall,
        "process_cpu_s": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
        "subset_models": subset,
        "subset_time_in_r_s": number(summary["subset_elapsed"]),
        "subset_cpu_in_r_s": (
            None
            if number(summary["subset_user"]) is None
            else float(summary["subset_user"]) + float(summary["subset_system"])
        ),
        "chosen": {
            "model": summary["model"],
            "G": int(summary["G"]),
            "loglik": float(summary["loglik"]),
            "bic_emcli_sign": -float(summary["bic"]),
        },
        "n": n,
        "d": int(summary["d"]),
        "cells": cells,
        "loglik_checks": checks,
        "loglik_check_max_abs": max(diffs) if diffs else None,
    }


MCLUST_TIMES = (
    "time_in_r_s",
    "cpu_in_r_s",
    "wall_since_r_start_s",
    "process_wall_s",
    "process_cpu_s",
    "subset_time_in_r_s",
    "subset_cpu_in_r_s",
)


def medians(runs: list[dict[str, Any]], keys: tuple[str, ...]) -> dict[str, Any]:
    """The first run's record with each time in ``keys`` the median over ``runs`` (every
    run's own under ``runs``); the cells are the first run's (both sides are deterministic)."""
    out = dict(runs[0])
    for key in keys:
        values = [r[key] for r in runs if r.get(key) is not None]
        if values:
            values.sort()
            mid = len(values) // 2
            out[key] = values[mid] if len(values) % 2 else 0.5 * (values[mid - 1] + values[mid])
    out["runs"] = [{key: r.get(key) for key in keys} for r in runs]
    return out


# ---------------------------------------------------------------------------- emcli side
def emcli_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def model_name(row: dict[str, str]) -> str:
    name = row.get("model_name") or ""
    if name:
        return name.upper()
    kind = row["covariance"]
    return SKLEARN_NAMES.get(kind.lower(), kind.upper())


def run_emcli_cli(
    data: Path, workdir: Path, gmax: int, jobs: int | None, extra: list[str]
) -> dict[str, Any]:
    sel = workdir / f"{data.stem}-selection.csv"
    params = workdir / f"{data.stem}-model.json"
    cmd = [sys.executable, "-m", "emcli", "fit", str(data), "-k", f"1..{gmax}"]
    cmd += ["--covariance", "all", "--selection", str(sel), "--params", str(params), "-q"]
    if jobs is not None:
        cmd += ["--jobs", str(jobs)]
    cmd += extra
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=emcli_env())
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    command = " ".join(["emcli", *cmd[3:]]).replace(str(workdir) + os.sep, "")
    if proc.returncode != 0:
        return {"command": command, "error": proc.stderr.strip()[-2000:], "wall_s": wall}
    cells = {}
    kinds: list[str] = []
    for r in read_csv_rows(sel):
        if r["covariance"] not in kinds:
            kinds.append(r["covariance"])
        cells[(model_name(r), int(r["components"]))] = {
            "covariance": r["covariance"],
            "status": r["status"],
            "loglik": number(r["log_likelihood"]),
            "npar": None if not r["n_parameters"] else int(r["n_parameters"]),
            "bic": number(r["bic"]),
            "converged": r["converged"],
            "n_iter": None if not r["n_iter"] else int(r["n_iter"]),
            "reason": r["reason"],
        }
    model = json.loads(params.read_text())
    chosen_name = model.get("model_name") or SKLEARN_NAMES.get(
        model["covariance_type"], model["covariance_type"]
    )
    return {
        "command": command,
        "wall_s": wall,
        "cpu_s": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
        "kinds": kinds,
        "cells": cells,
        "chosen": {
            "model": chosen_name.upper(),
            "G": model["n_components"],
            "loglik": model["log_likelihood"],
            "bic": model["bic"],
        },
    }


def run_emcli_api(
    data: Path, kinds: list[str], gmax: int, jobs: int | None, options: dict[str, Any]
) -> dict[str, Any]:
    """The same selection in this process (no interpreter start-up, no file output)."""
    sys.path.insert(0, str(ROOT))
    import emcli
    from emcli.em.selection import select

    x = emcli.read_table(str(data))

    def cpu() -> float:
        own, kids = (
            resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
        )
        return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime

    c0, t0 = cpu(), time.perf_counter()
    ks = list(range(1, gmax + 1))
    winner, _ = select(x.x, x.columns, ks, kinds, jobs=jobs, **options)
    wall, used = time.perf_counter() - t0, cpu() - c0
    return {"wall_s": wall, "cpu_s": used, "winner": None if winner is None else winner.row()}


# ---------------------------------------------------------------------------- comparison
def compare(emcli_cells: dict, mclust_cells: dict) -> dict[str, Any]:
    at_least, above, below, refused, mclust_na, not_fitted = [], [], [], [], [], []
    npar_mismatch = []
    for key in sorted(mclust_cells, key=lambda k: (MCLUST_MODELS.index(k[0]), k[1])):
        m = mclust_cells[key]
        e = emcli_cells.get(key)
        cell = {"model": key[0], "G": key[1], "mclust": m["loglik"]}
        if e is None:
            not_fitted.append(cell)
            continue
        cell |= {"emcli": e["loglik"], "status": e["status"]}
        if e["npar"] is not None and e["npar"] != m["npar"]:
            npar_mismatch.append(cell | {"emcli_npar": e["npar"], "mclust_npar": m["npar"]})
        if m["loglik"] is None:
            mclust_na.append(cell | {"mclust_code": m["code"], "reason": e["reason"]})
        elif e["status"] != "ok" or e["loglik"] is None:
            refused.append(cell | {"reason": e["reason"]})
        else:
            diff = e["loglik"] - m["loglik"]
            cell["diff"] = diff
            if diff >= -tolerance(m["loglik"]):
                at_least.append(cell)
                if diff > tolerance(m["loglik"]):
                    above.append(cell)
            else:
                below.append(cell)
    only_emcli = sorted(set(emcli_cells) - set(mclust_cells))
    return {
        "compared": len(at_least) + len(below),
        "at_least": len(at_least),
        "above": above,
        "below": below,
        "refused": refused,
        "mclust_na": mclust_na,
        "not_fitted": len(not_fitted),
        "npar_mismatch": npar_mismatch,
        "emcli_only": [f"{m},{g}" for m, g in only_emcli],
    }


# ---------------------------------------------------------------------------- output
def machine_info() -> dict[str, Any]:
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "loadavg_start": os.getloadavg(),
        "shared": SHARED_NOTE,
    }
    try:
        import numpy

        info["numpy"] = numpy.__version__
    except ImportError:
        pass
    git = ["git", "-C", str(ROOT)]
    try:
        rev = subprocess.run(git + ["rev-parse", "HEAD"], capture_output=True, text=True)
        dirty = subprocess.run(
            git + ["status", "--porcelain", "--", "emcli"], capture_output=True, text=True
        )
        info["git_revision"] = rev.stdout.strip() or None
        info["emcli_tree_dirty"] = bool(dirty.stdout.strip())
    except OSError:
        info["git_revision"] = None
    return info


def fmt(value: float | None, spec: str = ".2f") -> str:
    return "-" if value is None else format(value, spec)


def ratio(a: float | None, b: float | None) -> str:
    return "-" if not a or not b else f"{a / b:.2f}x"


def text_report(result: dict[str, Any]) -> str:
    lines = [
        f"emcli vs R mclust model selection, {result['time']} "
        f"(git {str(result['machine'].get('git_revision'))[:10]}"
        f"{', emcli/ modified' if result['machine'].get('emcli_tree_dirty') else ''})",
        result["mclust_status"],
        result["machine"]["shared"],
        f"load average at start {result['machine']['loadavg_start'][0]:.2f}, at end "
        f"{result['machine']['loadavg_end'][0]:.2f} on {result['machine']['cpus']} cores",
        f"log-likelihood tolerance: max(1e-4, 1e-6 |mclust's|); G = 1..{result['gmax']}",
        f"times: the median of {result.get('repeat', 1)} run(s) of each side per data set, "
        "the two sides alternating",
        "",
    ]
    head = (
        f"{'data':9s} {'n':>5s} {'d':>2s} | {'wall':>7s} {'cpu':>6s} | {'in R':>6s} "
        f"{'cpu':>5s} {'+start':>6s} | {'in R':>5s} {'cpu':>5s} | {'wall':>7s} {'cpu':>7s} "
        f"{'wall':>7s} {'cpu':>7s} | {'>=':>3s} {'<':>3s} {'ref':>3s} {'NA':>3s} | "
        "choice: emcli / mclust"
    )
    lines += [
        "Seconds. emcli: the `emcli fit` process (wall, CPU with its workers); mclust: "
        "Mclust(X, G = 1:G) on all 14 models timed inside R (wall, CPU), and wall since R "
        "started (+start); same models: Mclust on the models emcli fitted only.  Ratios "
        "emcli / mclust, against all 14 models and against the same models.  Cells: >= at "
        "least mclust's, < below, ref refused by emcli, NA none in mclust.",
        f"{'':18s} | {'emcli':^14s} | {'mclust, 14 models':^19s} | {'same models':^11s} | "
        f"{'ratio, 14 models':^15s} {'same models':^15s} |",
        head,
        "-" * len(head),
    ]
    totals = {"compared": 0, "at_least": 0, "below": 0, "refused": 0, "mclust_na": 0}
    for ds in result["datasets"]:
        e, m, c = ds.get("emcli", {}), ds.get("mclust"), ds.get("comparison")
        if "error" in e:
            lines.append(f"{ds['name']:9s} emcli failed: {e['error'].splitlines()[-1]}")
            continue
        ch = f"{e['chosen']['model']},{e['chosen']['G']}"
        if m and "error" not in m and c:
            ch += f" / {m['chosen']['model']},{m['chosen']['G']}"
            for key in totals:
                totals[key] += c[key] if isinstance(c[key], int) else len(c[key])
            lines.append(
                f"{ds['name']:9s} {m['n']:5d} {m['d']:2d} | {e['wall_s']:7.2f} "
                f"{e['cpu_s']:6.2f} | {m['time_in_r_s']:6.2f} {m['cpu_in_r_s']:5.2f} "
                f"{m['wall_since_r_start_s']:6.2f} | {fmt(m['subset_time_in_r_s']):>5s} "
                f"{fmt(m['subset_cpu_in_r_s']):>5s} | "
                f"{ratio(e['wall_s'], m['time_in_r_s']):>7s} "
                f"{ratio(e['cpu_s'], m['cpu_in_r_s']):>7s} "
                f"{ratio(e['wall_s'], m['subset_time_in_r_s']):>7s} "
                f"{ratio(e['cpu_s'], m['subset_cpu_in_r_s']):>7s} | {c['at_least']:3d} "
                f"{len(c['below']):3d} {len(c['refused']):3d} {len(c['mclust_na']):3d} | {ch}"
            )
        else:
            why = "mclust skipped" if m is None else "mclust failed"
            lines.append(
                f"{ds['name']:9s} {'':5s} {'':2s} | {e['wall_s']:7.2f} {e['cpu_s']:6.2f} | "
                f"{why:60s} | {ch}"
            )
    if totals["compared"]:
        lines.append(
            f"all: {totals['compared']} cells compared, {totals['at_least']} at least mclust's, "
            f"{totals['below']} below ({totals['below'] / totals['compared']:.1%}); "
            f"{totals['refused']} refused by emcli; {totals['mclust_na']} NA in mclust"
        )
    for ds in result["datasets"]:
        c, e, m = ds.get("comparison"), ds.get("emcli", {}), ds.get("mclust")
        lines += ["", f"{ds['name']}: {ds['source']} ({ds['columns']})"]
        if "command" in e:
            lines.append(f"  {e['command']}")
        if "api" in ds:
            api = ds["api"]
            lines.append(
                f"  in-process emcli.em.selection.select: {api['wall_s']:.2f} s wall, "
                f"{fmt(api.get('cpu_s'))} s CPU (workers included)"
            )
        if not c:
            continue
        lines.append(
            f"  {c['compared']} cells compared: {c['at_least']} at least mclust's "
            f"({len(c['above'])} above by more than the tolerance), {len(c['below'])} below; "
            f"{len(c['refused'])} refused by emcli; {len(c['mclust_na'])} NA in mclust; "
            f"{c['not_fitted']} of mclust's cells in models emcli does not fit"
        )
        lines.append(
            f"  mclust loglik from BIC vs refitted cells: max |diff| "
            f"{fmt(m['loglik_check_max_abs'], '.2e')} on "
            + ", ".join(f"{x['model']},{x['G']}" for x in m["loglik_checks"])
        )
        lines.append(
            f"  chosen: emcli {e['chosen']['model']},{e['chosen']['G']} loglik "
            f"{e['chosen']['loglik']:.3f} BIC {e['chosen']['bic']:.3f}; mclust "
            f"{m['chosen']['model']},{m['chosen']['G']} loglik {m['chosen']['loglik']:.3f} "
            f"BIC {m['chosen']['bic_emcli_sign']:.3f} (emcli's sign)"
        )
        for label, key in (("below", "below"), ("above", "above")):
            if c[key]:
                lines.append(
                    f"  {label}: "
                    + "; ".join(
                        f"{x['model']},{x['G']} {x['emcli']:.3f} vs {x['mclust']:.3f} "
                        f"({x['diff']:+.3f})"
                        for x in c[key]
                    )
                )
        for x in c["refused"]:
            lines.append(
                f"  refused: {x['model']},{x['G']} ({x['status']}: {x['reason']}) where "
                f"mclust has {x['mclust']:.3f}"
            )
        for x in c["mclust_na"]:
            why = MCLUST_CODES.get(x["mclust_code"], f"code {x['mclust_code']}")
            lines.append(
                f"  mclust NA ({why}): {x['model']},{x['G']}; emcli "
                f"{x['status']} {fmt(x['emcli'], '.3f')}"
            )
        for x in c["npar_mismatch"]:
            lines.append(
                f"  parameter count differs: {x['model']},{x['G']} emcli {x['emcli_npar']} "
                f"mclust {x['mclust_npar']}"
            )
        lines += diff_grid(ds, result["gmax"])
    return "\n".join(lines) + "\n"


def diff_grid(ds: dict[str, Any], gmax: int) -> list[str]:
    """emcli - mclust per cell, models emcli fitted as rows, G as columns."""
    e, m = ds["emcli"]["cells"], ds["mclust"]["cells"]
    models = [name for name in MCLUST_MODELS if any((name, g) in e for g in range(1, gmax + 1))]
    out = ["  emcli - mclust log-likelihood (d: emcli degenerate/failed, NA: mclust none)"]
    out.append("  " + f"{'G':>5s}" + "".join(f"{g:>9d}" for g in range(1, gmax + 1)))
    for name in models:
        row = f"  {name:>5s}"
        for g in range(1, gmax + 1):
            ec, mc = e.get((name, g)), m.get((name, g))
            if ec is None or mc is None:
                cell = ""
            elif mc["loglik"] is None:
                cell = "NA"
            elif ec["status"] != "ok" or ec["loglik"] is None:
                cell = "d"
            else:
                cell = f"{ec['loglik'] - mc['loglik']:+.3f}"
            row += f"{cell:>9s}"
        out.append(row)
    return out


def jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {
            (",".join(map(str, k)) if isinstance(k, tuple) else k): jsonable(v)
            for k, v in obj.items()
        }
    if isinstance(obj, list | tuple):
        return [jsonable(v) for v in obj]
    return obj


def from_json(result: dict[str, Any]) -> dict[str, Any]:
    """A saved result with its cells keyed by (model, G) again."""
    for ds in result["datasets"]:
        for side in ("emcli", "mclust"):
            if "cells" in (ds.get(side) or {}):
                ds[side]["cells"] = {
                    (key.split(",")[0], int(key.split(",")[1])): cell
                    for key, cell in ds[side]["cells"].items()
                }
    return result


# ---------------------------------------------------------------------------- main
def export_sample_data(name: str, workdir: Path) -> Path:
    """The numeric columns of a sample_data/ file (without R)."""
    filename, columns = SAMPLE_DATA[name]
    rows = read_csv_rows(ROOT / "sample_data" / filename)
    path = workdir / f"{name}.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        writer.writerows([r[c] for c in columns] for r in rows)
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--datasets",
        default=",".join(DATASETS),
        help=f"comma list of data sets [default: {','.join(DATASETS)}]",
    )
    ap.add_argument(
        "--quick",
        action="store_true",
        help="smoke test: faithful only (unless --datasets), G = 1..2, emcli -n 1 --jobs 1",
    )
    ap.add_argument("--gmax", type=int, default=None, help="G = 1..GMAX [default: 9]")
    ap.add_argument("--jobs", type=int, default=None, help="emcli --jobs [default: emcli's]")
    ap.add_argument(
        "--api", action="store_true", help="also time the selection in-process (Python API)"
    )
    ap.add_argument(
        "--rscript", default="Rscript", help="the Rscript command [default: %(default)s]"
    )
    ap.add_argument(
        "--repeat",
        type=int,
        default=None,
        help="runs of each side per data set, alternating; the times reported are the "
        "medians [default: 3, 1 with --quick]",
    )
    ap.add_argument("--no-mclust", action="store_true", help="skip R mclust")
    ap.add_argument("--out", type=Path, default=OUT_DIR, help="results directory")
    ap.add_argument(
        "--render", type=Path, metavar="JSON", help="print the text report of a saved result"
    )
    args = ap.parse_args(argv)
    if args.render:
        print(text_report(from_json(json.loads(args.render.read_text()))), end="")
        return 0

    names = [n.strip() for n in args.datasets.split(",") if n.strip()]
    if args.quick and args.datasets == ap.get_default("datasets"):
        names = ["faithful"]
    unknown = [n for n in names if n not in DATASETS]
    if unknown:
        ap.error(f"unknown data set(s) {', '.join(unknown)}; choose from {', '.join(DATASETS)}")
    gmax = args.gmax or (2 if args.quick else 9)
    repeat = max(1, args.repeat if args.repeat is not None else (1 if args.quick else 3))
    jobs = args.jobs if args.jobs is not None else (1 if args.quick else None)
    extra = ["-n", "1"] if args.quick else []

    if args.no_mclust:
        rscript, has_mass, status = None, False, "mclust skipped (--no-mclust)"
    else:
        rscript, has_mass, status = find_r(args.rscript)
    if rscript is None:
        kept = [n for n in names if n in SAMPLE_DATA]
        dropped = [n for n in names if n not in SAMPLE_DATA]
        status += "; running emcli on sample_data/ only" + (
            f" (skipping {', '.join(dropped)}: not in sample_data/)" if dropped else ""
        )
        names = kept
    elif not has_mass and NEEDS_MASS & set(names):
        status += "; no MASS package: skipping crabs"
        names = [n for n in names if n not in NEEDS_MASS]
    print(status, flush=True)

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    result: dict[str, Any] = {
        "time": stamp,
        "mclust_status": status,
        "machine": machine_info(),
        "gmax": gmax,
        "quick": args.quick,
        "emcli_jobs": jobs if jobs is not None else f"emcli's default ({os.cpu_count()} cores)",
        "tolerance": "max(1e-4, 1e-6 * |mclust loglik|)",
        "repeat": repeat,
        "datasets": [],
    }
    if rscript:
        result["machine"] |= r_versions(rscript)
    # emcli's bytecode as an installed copy has it: where PYTHONDONTWRITEBYTECODE is set (as
    # on these machines) every emcli process, and each of its workers, would otherwise
    # compile the sources again (about 0.15 s each)
    compileall.compile_dir(str(ROOT / "emcli"), quiet=1)
    result["machine"]["bytecode"] = "emcli/ compiled (compileall) before timing"
    with tempfile.TemporaryDirectory(prefix="bench_mclust_") as tmp:
        work = Path(tmp)
        if rscript and names:
            subprocess.run([rscript, str(R_SCRIPT), "export", tmp, *names], check=True)
        for name in names:
            data = work / f"{name}.csv" if rscript else export_sample_data(name, work)
            ds: dict[str, Any] = {
                "name": name,
                "source": DATASETS[name][0] if rscript else f"sample_data/{SAMPLE_DATA[name][0]}",
                "columns": DATASETS[name][1],
                "loadavg": os.getloadavg(),
            }
            print(f"{name}: emcli ...", end=" ", flush=True)
            ds["emcli"] = run_emcli_cli(data, work, gmax, jobs, extra)
            print(f"{ds['emcli']['wall_s']:.1f} s", end="", flush=True)
            if "error" not in ds["emcli"] and rscript is None and repeat > 1:
                runs = [ds["emcli"]] + [
                    run_emcli_cli(data, work, gmax, jobs, extra) for _ in range(repeat - 1)
                ]
                ds["emcli"] = medians(runs, ("wall_s", "cpu_s"))
            if "error" in ds["emcli"]:
                print(f" (failed: {ds['emcli']['error'].splitlines()[-1]})", flush=True)
                result["datasets"].append(ds)
                continue
            if args.api:
                options = {"n_restarts": 1} if args.quick else {}
                ds["api"] = run_emcli_api(data, ds["emcli"]["kinds"], gmax, jobs, options)
            if rscript:
                fitted = sorted({key[0] for key in ds["emcli"]["cells"]} & set(MCLUST_MODELS))
                subset = fitted if len(fitted) < len(MCLUST_MODELS) else []
                print("; mclust ...", end=" ", flush=True)
                ds["mclust"] = run_mclust(rscript, data, work, gmax, subset)
                if repeat > 1 and "error" not in ds["mclust"]:
                    # the two sides alternate, so a change of the machine's load over the
                    # run shows in both
                    e_runs, m_runs = [ds["emcli"]], [ds["mclust"]]
                    for _ in range(repeat - 1):
                        e_runs.append(run_emcli_cli(data, work, gmax, jobs, extra))
                        m_runs.append(run_mclust(rscript, data, work, gmax, subset))
                    if not any("error" in r for r in e_runs + m_runs):
                        ds["emcli"] = medians(e_runs, ("wall_s", "cpu_s"))
                        ds["mclust"] = medians(m_runs, MCLUST_TIMES)
                if "error" in ds["mclust"]:
                    print(f"failed: {ds['mclust']['error'].splitlines()[-1]}", flush=True)
                else:
                    print(f"{ds['mclust']['time_in_r_s']:.1f} s", flush=True)
                    ds["comparison"] = compare(ds["emcli"]["cells"], ds["mclust"]["cells"])
            else:
                print(flush=True)
            result["datasets"].append(ds)
    result["machine"]["loadavg_end"] = os.getloadavg()
    text = text_report(result)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    base = args.out / f"mclust-{'quick-' if args.quick else ''}{stamp}"
    base.with_suffix(".json").write_text(json.dumps(jsonable(result), indent=1) + "\n")
    base.with_suffix(".txt").write_text(text)
    print(f"wrote {base}.json and .txt")
    return 0


if __name__ == "__main__":
    sys.exit(main())

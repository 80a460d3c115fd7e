"""emcli against scikit-learn's GaussianMixture, side by side, on this machine.

    python benchmarks/run.py            # the full run (several minutes, ~3 GB of memory)
    python benchmarks/run.py --quick    # tiny sizes: a smoke test of the script itself

For every size it generates a planted mixture, takes ONE set of starting parameters (emcli's
k-means++ on a 10,000-row sample), and runs from it

* emcli's core: ``emcli.em.run_em`` on ``MemoryEngine`` with ``tol=0`` (plain EM), and
* scikit-learn: ``weights_/means_/covariances_/precisions_cholesky_`` set to the same values,
  then its own ``_e_step`` / ``_m_step`` (what ``GaussianMixture.fit`` runs per iteration),

in this process, checks that both log-likelihood trajectories agree (1e-10 relative), and
reports the median seconds per iteration and the ratio (two rounds of both sides, emcli then
scikit-learn, pooled).  Peak memory is measured for each
side in a child process of its own (peak RSS minus the RSS once the data is in memory).
The machine bound at (2e5, 50, 16) full is the flop count of the E- and M-step matrix
products at the GEMM rate numpy reaches here, or the memory-bandwidth time, whichever is
larger.  Then: end-to-end ``emcli fit`` on a CSV against a pandas.read_csv + scikit-learn
script, SQUAREM (``--accelerate``) against plain EM, and the CLI's start-up time.

Results go to benchmarks/results/ (JSON and the printed table).  The figures are meant as
ratios: other work on the machine moves absolute times, so timings are repeated and medians
reported, with the load average printed beside them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from emcli.em import run_em  # noqa: E402
from emcli.engines.memory import MemoryEngine  # noqa: E402
from emcli.families.gaussian import (  # noqa: E402
    GaussianFamily,
    GaussianParams,
    kernels,
)

FULL_CASES = [
    (1_000_000, 10, 8, "full"),
    (1_000_000, 10, 8, "diag"),
    (1_000_000, 10, 8, "tied"),
    (1_000_000, 10, 8, "spherical"),
    (200_000, 50, 16, "full"),
]
QUICK_CASES = [(3000, 3, 2, kind) for kind in ("full", "diag", "tied", "spherical")] + [
    (2000, 6, 3, "full")
]
BOUND_CASE = {"full": (200_000, 50, 16, "full"), "quick": (2000, 6, 3, "full")}
REG_COVAR = 1e-6


# ---------------------------------------------------------------------------- data
def make_data(n: int, d: int, k: int, seed: int = 0) -> np.ndarray:
    """A planted mixture with correlated, overlapping components (made in chunks, so the
    process peak while generating stays near the size of the data itself)."""
    rng = np.random.default_rng(seed)
    means = rng.normal(scale=3.0, size=(k, d))
    factors = rng.normal(scale=1.0 / np.sqrt(d), size=(k, d, d)) + np.eye(d)[None]
    weights = rng.dirichlet(np.full(k, 5.0))
    x = np.empty((n, d))
    chunk = 10_000
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        labels = rng.choice(k, size=stop - start, p=weights)
        z = rng.normal(size=(stop - start, d))
        for j in range(k):
            rows = labels == j
            z[rows] = z[rows] @ factors[j] + means[j]
        x[start:stop] = z
    return x


def start_params(x: np.ndarray, k: int, kind: str) -> GaussianParams:
    rng = np.random.default_rng(1)
    sample = x[np.sort(rng.choice(x.shape[0], size=min(10_000, x.shape[0]), replace=False))]
    return GaussianFamily(kind, REG_COVAR).start(sample, k, "kmeans++", np.random.default_rng(2))


def sklearn_model(params: GaussianParams):
    from sklearn.mixture import GaussianMixture

    gm = GaussianMixture(
        params.n_components, covariance_type=params.covariance_type, reg_covar=REG_COVAR
    )
    gm.weights_ = params.weights.copy()
    gm.means_ = params.means.copy()
    gm.covariances_ = np.array(params.covariances, copy=True)
    gm.precisions_cholesky_ = np.array(params.precisions_cholesky, copy=True)
    return gm


# ---------------------------------------------------------------------------- per iteration
def time_emcli(
    x: np.ndarray, params: GaussianParams, iters: int, dtype: str = "float64"
) -> tuple[list[float], list[float]]:
    """Seconds per EM iteration and the log-likelihood history (run_em, tol=0)."""
    stamps: list[float] = []
    engine = MemoryEngine(x, dtype=dtype)
    t0 = time.perf_counter()
    family = GaussianFamily(params.model, REG_COVAR)
    _, _, _, _, history = run_em(
        engine, family, params, iters, 0.0, lambda it, ll, delta: stamps.append(time.perf_counter())
    )
    # M-step + E-step of each iteration: stamps after every E-step, the first interval (the
    # cold first E-step alone: buffers, BLAS warm-up) dropped, as in time_sklearn.
    times = np.diff([t0, *stamps])[1:].tolist()
    return times, history


@contextlib.contextmanager
def single_thread():
    """One thread on both sides: BLAS (threadpoolctl) and emcli's own (EMCLI_THREADS)."""
    from threadpoolctl import threadpool_limits

    before = os.environ.get("EMCLI_THREADS")
    os.environ["EMCLI_THREADS"] = "1"
    try:
        with threadpool_limits(limits=1):
            yield
    finally:
        if before is None:
            del os.environ["EMCLI_THREADS"]
        else:
            os.environ["EMCLI_THREADS"] = before


def time_sklearn(
    x: np.ndarray, params: GaussianParams, iters: int
) -> tuple[list[float], list[float]]:
    """As ``time_emcli``, with scikit-learn's own steps: ``iters`` M-steps and ``iters + 1``
    E-steps (the log-likelihood of the start and after each M-step), a time stamp after
    every E-step, the first interval (the cold first E-step alone) dropped on both sides."""
    gm = sklearn_model(params)
    lls = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        log_prob_norm, log_resp = gm._e_step(x)
        stamps = [time.perf_counter()]
        lls.append(float(log_prob_norm) * x.shape[0])
        for _ in range(iters):
            gm._m_step(x, log_resp)
            log_prob_norm, log_resp = gm._e_step(x)
            stamps.append(time.perf_counter())
            lls.append(float(log_prob_norm) * x.shape[0])
    return np.diff([t0, *stamps])[1:].tolist(), lls


def peak_child(side: str, n: int, d: int, k: int, kind: str, iters: int) -> dict:
    """Run one side in a fresh process; its peak RSS beyond the data (bytes)."""
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        side,
        "--case",
        f"{n},{d},{k},{kind}",
        "--iters",
        str(iters),
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _rss_now() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _reset_peak() -> bool:
    # Linux: writing 5 to clear_refs resets the peak RSS (VmHWM) to the current RSS.
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _peak_rss() -> int:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def child_main(side: str, case: str, iters: int) -> None:
    n, d, k, kind = case.split(",")
    n, d, k = int(n), int(d), int(k)
    if side == "sklearn":
        import sklearn.mixture  # noqa: F401  (imports before the baseline)
    x = make_data(n, d, k)
    params = start_params(x, k, kind)
    reset = _reset_peak()
    base = _rss_now()
    peak_before = _peak_rss()
    if side == "emcli":
        time_emcli(x, params, iters)
    else:
        time_sklearn(x, params, iters)
    peak = _peak_rss()
    print(
        json.dumps(
            {
                "data_bytes": x.nbytes,
                "base_rss": base,
                "peak_rss": peak,
                "peak_before": peak_before,
                "peak_reset": reset,
                "extra": max(0, peak - base),
            }
        )
    )


# ---------------------------------------------------------------------------- machine bound
def gemm_rate(size: int, repeat: int = 5) -> float:
    """Best numpy GEMM rate (flop/s) on square matrices, BLAS threads as configured."""
    rng = np.random.default_rng(0)
    a, b = rng.random((size, size)), rng.random((size, size))
    a @ b
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t)
    return 2.0 * size**3 / min(times)


def bandwidth(nbytes: int, repeat: int = 5) -> float:
    """Memory bandwidth (bytes/s): the best of a streaming read (sum) and a copy."""
    a = np.ones(nbytes // 8)
    b = np.empty_like(a)
    best = 0.0
    for _ in range(repeat):
        t = time.perf_counter()
        a.sum()
        best = max(best, a.nbytes / (time.perf_counter() - t))
        t = time.perf_counter()
        np.copyto(b, a)
        best = max(best, 2 * a.nbytes / (time.perf_counter() - t))
    return best


def em_flops(n: int, d: int, k: int, fill: float = 1.0) -> float:
    """Flops of one iteration's matrix products in the standard form: per row and
    component, (x - m_j) P_j (2 d^2), r x (2 d) and the update r (x - m_j)(x - m_j)^T,
    counted as d^2 (it is symmetric: d (d + 1) / 2 multiply-adds) for the share ``fill`` of
    (row, component) pairs that take part in it (1: dense; less: the sparse moments)."""
    return float(n) * k * (2.0 * d * d + 2.0 * d + fill * d * d)


def sparse_fill(x: np.ndarray, params: GaussianParams, block: int) -> float:
    """The share of (row, component) pairs kept in the second moments by the kernels'
    sparse rule (``kernels.SPARSE_RATIO`` of the component's largest in the block; blocks of
    ``block`` rows), at the responsibilities of ``params``; 1 where a block keeps at least
    ``kernels.SPARSE_FILL`` of them (it then runs dense)."""
    gm = sklearn_model(params)
    kept = 0.0
    for start in range(0, x.shape[0], block):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            r = np.exp(gm._estimate_log_prob_resp(x[start : start + block])[1])
        keep = np.count_nonzero(r > kernels.SPARSE_RATIO * r.max(axis=0, keepdims=True))
        kept += r.size if keep >= kernels.SPARSE_FILL * r.size else keep
    return kept / (x.shape[0] * params.n_components)


# ---------------------------------------------------------------------------- end to end
SKLEARN_SCRIPT = """
import sys, warnings, pandas as pd
from sklearn.mixture import GaussianMixture
warnings.simplefilter("ignore")
x = pd.read_csv(sys.argv[1]).to_numpy()
gm = GaussianMixture(int(sys.argv[2]), covariance_type="full", max_iter=int(sys.argv[3]),
                     tol=0.0, n_init=1, init_params="k-means++", random_state=0).fit(x)
gm.predict(x)
"""


def end_to_end(n: int, d: int, k: int, iters: int, repeat: int) -> dict:
    import pyarrow as pa
    import pyarrow.csv as pcsv

    x = make_data(n, d, k, seed=3)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "data.csv")
        pcsv.write_csv(pa.table({f"x{j}": x[:, j] for j in range(d)}), path)
        script = os.path.join(tmp, "sk.py")
        Path(script).write_text(SKLEARN_SCRIPT)
        commands = {
            "emcli": [
                sys.executable,
                "-m",
                "emcli",
                "fit",
                path,
                "-k",
                str(k),
                "-n",
                "1",
                "--init",
                "kmeans++",
                "--max-iter",
                str(iters),
                "--tol",
                "0",
                "--labels",
                os.path.join(tmp, "labels.csv"),
                "-q",
            ],
            "sklearn": [sys.executable, script, path, str(k), str(iters)],
        }
        result: dict = {"n": n, "d": d, "k": k, "iters": iters, "csv_bytes": os.path.getsize(path)}
        for name, cmd in commands.items():
            times = []
            for _ in range(repeat):
                t = time.perf_counter()
                subprocess.run(cmd, check=True, cwd=ROOT, capture_output=True)
                times.append(time.perf_counter() - t)
            result[name] = statistics.median(times)
        result["ratio"] = result["sklearn"] / result["emcli"]
    return result


# ---------------------------------------------------------------------------- reading CSV
def read_speed(target_bytes: int, repeat: int) -> dict:
    """Seconds to read a numeric CSV of about ``target_bytes`` into a float64 array:
    emcli's reader (``emcli.read_table``, what ``emcli fit`` runs), pyarrow's multi-threaded
    ``read_csv`` alone, and ``pandas.read_csv`` (its default C parser, one thread)."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.csv as pcsv

    from emcli.data.reader import read_table

    d = 10
    rng = np.random.default_rng(5)
    chunk = rng.normal(size=(max(100, min(10_000, target_bytes // 400)), d)) * 10.0
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "big.csv")
        table = pa.table({f"x{j}": chunk[:, j] for j in range(d)})
        with open(path, "wb") as out:
            pcsv.write_csv(table, out)
            one = out.tell()
            body = Path(path).read_bytes().split(b"\n", 1)[1]
            while out.tell() + len(body) <= target_bytes:
                out.write(body)
        size = os.path.getsize(path)
        readers = {
            "emcli": lambda: read_table(path).x,
            "pyarrow": lambda: np.column_stack([c.to_numpy() for c in pcsv.read_csv(path).columns]),
            "pandas": lambda: pd.read_csv(path).to_numpy(),
        }
        result: dict = {"bytes": size, "rows": size * len(chunk) // max(1, one)}
        pcsv.read_csv(path)  # the file in the page cache, pyarrow's threads started
        for name, read in readers.items():
            times = []
            for _ in range(repeat):
                t = time.perf_counter()
                read()
                times.append(time.perf_counter() - t)
            result[name] = min(times)
    result["pandas_over_emcli"] = result["pandas"] / result["emcli"]
    result["emcli_over_pyarrow"] = result["emcli"] / result["pyarrow"]
    return result


# ---------------------------------------------------------------------------- SQUAREM
def accelerate_cases(quick: bool) -> list[tuple[str, object, int, str]]:
    import pandas as pd

    faithful = pd.read_csv(ROOT / "sample_data" / "faithful.csv").to_numpy(dtype=float)
    iris = pd.read_csv(ROOT / "sample_data" / "iris.csv").select_dtypes("number").to_numpy()
    rng = np.random.default_rng(7)
    n = 2000 if quick else 20_000
    overlap = np.concatenate(
        [rng.normal(0.0, 1.0, size=(n // 2, 2)), rng.normal(1.2, 1.0, size=(n // 2, 2))]
    )
    cases = [
        ("faithful k=3 tied", faithful, 3, "tied"),
        ("faithful k=2 full", faithful, 2, "full"),
        ("iris k=3 full", iris, 3, "full"),
        (f"overlapping 2 clusters n={n} k=2 full", overlap, 2, "full"),
    ]
    if not quick:
        cases.append(("planted (1e5, 10, 8) full", make_data(100_000, 10, 8, seed=5), 8, "full"))
    return cases


def squarem_report(quick: bool, restarts: int) -> list[dict]:
    from emcli.api import fit

    rows = []
    for name, x, k, kind in accelerate_cases(quick):
        row: dict = {"case": name}
        models = {}
        for acc in (False, True):
            t = time.perf_counter()
            model = fit(x, k, covariance_type=kind, n_restarts=restarts, accelerate=acc)
            row[f"seconds_{'squarem' if acc else 'plain'}"] = time.perf_counter() - t
            models[acc] = model
        plain, fast = models[False], models[True]
        row["iters_plain"] = sum(s["n_iter"] for s in plain.starts)
        row["iters_squarem"] = sum(s["n_iter"] for s in fast.starts)
        row["ll_plain"] = plain.log_likelihood
        row["ll_squarem"] = fast.log_likelihood
        # A start that lands on a worse optimum with acceleration than without:
        worse = [
            a["start"]
            for a, b in zip(plain.starts, fast.starts, strict=True)
            if a["log_likelihood"] is not None
            and b["log_likelihood"] is not None
            and b["log_likelihood"] < a["log_likelihood"] - 1e-4 * abs(a["log_likelihood"])
        ]
        row["starts_worse"] = worse
        rows.append(row)
    return rows


# ---------------------------------------------------------------------------- start-up
def startup(repeat: int) -> dict:
    out = {}
    for flag in ("--help", "--version"):
        times = []
        for _ in range(repeat):
            t = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "emcli", flag], check=True, cwd=ROOT, capture_output=True
            )
            times.append(time.perf_counter() - t)
        out[flag] = statistics.median(times)
    t = []
    for _ in range(repeat):
        s = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True, capture_output=True)
        t.append(time.perf_counter() - s)
    out["python -c pass"] = statistics.median(t)
    return out


# ---------------------------------------------------------------------------- main
THREAD_VARIABLES = (
    "EMCLI_THREADS",
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_CORETYPE",
)


def _plain(value: object) -> object:
    """A JSON value as it is, anything else as its text."""
    return value if isinstance(value, (str, int, float, bool, type(None))) else str(value)


def git_revision() -> dict:
    """The commit measured, and whether the work tree had changes beside it."""

    def git(*args: str) -> str:
        try:
            out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        except OSError:
            return ""
        return out.stdout.strip() if out.returncode == 0 else ""

    return {"commit": git("rev-parse", "HEAD") or None, "dirty": bool(git("status", "--porcelain"))}


def machine_info() -> dict:
    from threadpoolctl import threadpool_info

    from emcli import parallel

    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "machine": platform.machine(),
        "processor": _cpu_model(),
        "cpus": os.cpu_count(),
        # BLAS and its kernel ("architecture": the core OpenBLAS chose, e.g. Haswell).
        "blas": [
            {
                # (str: scipy.io's fast_matrix_market pool gives a function as its version)
                k: _plain(i.get(k))
                for k in (
                    "internal_api",
                    "version",
                    "architecture",
                    "threading_layer",
                    "num_threads",
                )
            }
            for i in threadpool_info()
        ],
        # Thread settings; both sides run in this process (or its children) under the same
        # ones, OPENBLAS_CORETYPE included.
        "threads": {
            "emcli": parallel.threads(),
            **{name: os.environ.get(name) for name in THREAD_VARIABLES},
        },
        "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
        "git": git_revision(),
        "loadavg_start": os.getloadavg(),
    }


def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


# ---------------------------------------------------------------------------- the docs block
DOCS = (ROOT / "README.md", ROOT / "docs" / "speed.md")
LATEST = ROOT / "benchmarks" / "results" / "latest.json"
BEGIN = "<!-- benchmarks/run.py: begin (written from benchmarks/results/latest.json) -->"
END = "<!-- benchmarks/run.py: end -->"


def docs_block(results: dict) -> str:
    """The figures of a run as the markdown the README and docs/speed.md show."""
    m = results["machine"]
    blas = ", ".join(
        f"{b['internal_api']} {b['version']} ({b['architecture']})"
        for b in m["blas"]
        if b["internal_api"] != "openmp"
    )
    rev = (m["git"]["commit"] or "unknown")[:10] + (" + changes" if m["git"]["dirty"] else "")
    lines = [
        BEGIN,
        "",
        f"`python benchmarks/run.py {' '.join(results['argv'])}`".replace(" `", "`"),
        f"at {rev}, {m['cpus']} cpus ({m['processor']}), BLAS {blas}, "
        f"OPENBLAS_CORETYPE {m['OPENBLAS_CORETYPE'] or 'not set'}; load average "
        f"{m['loadavg_start'][0]:.1f} at the start, {m['loadavg_end'][0]:.1f} at the end"
        + (" (the machine was shared with other work)" if results.get("shared") else "")
        + f"; {results['iters']} iterations per side, the first dropped on both.",
        "",
        "| n, d, k | type | emcli s/it | sklearn s/it | ratio | 1 thread each: ratio | "
        "max rel dLL |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for c in results["cases"]:
        one = f"{c['ratio_1thread']:.1f}x" if "ratio_1thread" in c else "-"
        lines.append(
            f"| {c['n']:.0e}, {c['d']}, {c['k']} | {c['type']} | {c['emcli_s_per_iter']:.4f} | "
            f"{c['sklearn_s_per_iter']:.4f} | {c['ratio']:.1f}x | {one} | "
            f"{c['max_rel_ll_diff']:.0e} |".replace("e+0", "e")
        )
    b = results.get("bound")
    if b:
        lines += [
            "",
            f"Machine bound at {tuple(b['case'])} full (the symmetric update counted as d^2): "
            f"dense {b['bound_s']:.4f} s, with the sparse moments' share of pairs "
            f"({b['fill']:.2f}) {b['sparse_bound_s']:.4f} s; emcli "
            f"{b['emcli_over_sparse_bound']:.2f}x its sparse bound, "
            f"{b['emcli_dense_over_bound']:.2f}x the dense bound with every responsibility "
            f"in the moments; scikit-learn {b['sklearn_over_bound']:.1f}x the dense bound.",
        ]
    lines += ["", END]
    return "\n".join(lines)


def write_docs(results: dict, paths: tuple[Path, ...] = DOCS) -> None:
    """Replace the marked block of each of ``paths`` by ``docs_block(results)``."""
    block = docs_block(results)
    for path in paths:
        text = path.read_text()
        if BEGIN not in text or END not in text:
            raise SystemExit(f"{path} has no benchmark block ({BEGIN} ... {END})")
        head, rest = text.split(BEGIN, 1)
        tail = rest.split(END, 1)[1]
        path.write_text(head + block + tail)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes (smoke test)")
    ap.add_argument("--iters", type=int, default=None, help="EM iterations timed per side")
    ap.add_argument("--skip-memory", action="store_true")
    ap.add_argument("--skip-cli", action="store_true")
    ap.add_argument("--skip-accelerate", action="store_true")
    ap.add_argument(
        "--shape",
        action="append",
        metavar="N,D,K,TYPE",
        help="time these sizes instead of the standard ones (repeatable), e.g. "
        "--shape 300,1000,3,full; skips the machine bound and float32 parts",
    )
    ap.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="rows of the standard sizes times this (e.g. 0.2 on a shared machine)",
    )
    ap.add_argument(
        "--shared",
        action="store_true",
        help="say in the results that the machine was shared with other work",
    )
    ap.add_argument(
        "--no-docs",
        action="store_true",
        help="do not write benchmarks/results/latest.json nor the README/docs block",
    )
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    ap.add_argument("--child", choices=("emcli", "sklearn"), help=argparse.SUPPRESS)
    ap.add_argument("--case", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child_main(args.child, args.case, args.iters or 2)
        return 0

    quick = args.quick
    scale = args.scale

    def scaled(case: tuple[int, int, int, str]) -> tuple[int, int, int, str]:
        return (max(1000, int(case[0] * scale)), *case[1:])  # type: ignore[return-value]

    cases = QUICK_CASES if quick else [scaled(c) for c in FULL_CASES]
    if args.shape:
        try:
            cases = [
                (int(n), int(d), int(k), kind)
                for n, d, k, kind in (item.split(",") for item in args.shape)
            ]
        except ValueError:
            ap.error("--shape takes N,D,K,TYPE, e.g. 300,1000,3,full")
    iters = args.iters or (4 if quick else 5)
    info = machine_info()
    if info["OPENBLAS_CORETYPE"]:
        print(
            f"note: OPENBLAS_CORETYPE={info['OPENBLAS_CORETYPE']} is set; it may slow numpy "
            "(see the docs note)",
            file=sys.stderr,
        )
    lines: list[str] = []

    def say(text: str = "") -> None:
        print(text, flush=True)
        lines.append(text)

    say(
        f"emcli benchmark ({'quick' if quick else 'full'}), load average at start "
        f"{info['loadavg_start'][0]:.2f}, {info['cpus']} cpus, BLAS "
        + ", ".join(
            f"{b['internal_api']} {b['version']} {b['architecture'] or ''}"
            for b in info["blas"]
            if b["internal_api"] != "openmp"
        )
    )
    say()
    say(
        f"{'n':>9} {'d':>3} {'k':>3} {'type':<9} {'emcli s/it':>11} {'sklearn s/it':>12} "
        f"{'ratio':>7} {'max rel dLL':>11} {'extra RSS emcli':>16} {'extra RSS sklearn':>18}"
    )
    results: dict = {
        "argv": list(argv if argv is not None else sys.argv[1:]),
        "machine": info,
        "iters": iters,
        "scale": 1.0 if quick else scale,
        "shared": args.shared,
        "cases": [],
    }
    bound_case = BOUND_CASE["quick"] if quick else scaled(BOUND_CASE["full"])
    failures: list[str] = []
    for n, d, k, kind in cases:
        x = make_data(n, d, k)
        params = start_params(x, k, kind)
        # Two rounds, emcli then scikit-learn each time, medians over both: a drift in the
        # machine's speed (other tenants of the host) then weighs on both sides alike.  The
        # same number of iterations on both sides, from the same start.
        e_times, e_hist = time_emcli(x, params, iters)
        s_times, s_lls = time_sklearn(x, params, iters)
        if not quick:
            e_times += time_emcli(x, params, iters)[0]
            s_times += time_sklearn(x, params, iters)[0]
        if len(e_hist) != len(s_lls) or len(e_times) != len(s_times):
            failures.append(f"{(n, d, k, kind)}: {len(e_hist)} iterations against {len(s_lls)}")
        m = min(len(s_lls), len(e_hist))
        rel = max(abs(a - b) / abs(b) for a, b in zip(e_hist[:m], s_lls[:m], strict=True))
        # One thread against one thread (BLAS and emcli's own), same iterations.
        with single_thread():
            e1 = time_emcli(x, params, iters)[0]
            s1 = time_sklearn(x, params, iters)[0]
        row = {
            "n": n,
            "d": d,
            "k": k,
            "type": kind,
            "emcli_s_per_iter": statistics.median(e_times),
            "sklearn_s_per_iter": statistics.median(s_times),
            "emcli_times": e_times,
            "sklearn_times": s_times,
            "max_rel_ll_diff": rel,
            "data_bytes": x.nbytes,
            "iters": m,
            "emcli_1thread_s_per_iter": statistics.median(e1),
            "sklearn_1thread_s_per_iter": statistics.median(s1),
        }
        row["ratio"] = row["sklearn_s_per_iter"] / row["emcli_s_per_iter"]
        row["ratio_1thread"] = row["sklearn_1thread_s_per_iter"] / row["emcli_1thread_s_per_iter"]
        if (n, d, k, kind) == bound_case:
            block = kernels.block_rows_for(kind, k, d, d >= kernels.DIRECT_MIN_FEATURES)
            row["sparse_fill"] = sparse_fill(x, params, block)
            # The same data with the sparse moments of the exact components turned off
            # (every responsibility takes part, as in the bound's flop count).
            saved = kernels.SPARSE_FILL
            kernels.SPARSE_FILL = 0.0
            try:
                row["emcli_dense_s_per_iter"] = statistics.median(time_emcli(x, params, iters)[0])
            finally:
                kernels.SPARSE_FILL = saved
        if not args.skip_memory and not (quick and results["cases"]):
            row["mem_emcli"] = peak_child("emcli", n, d, k, kind, 2)
            row["mem_sklearn"] = peak_child("sklearn", n, d, k, kind, 2)
        mem = (
            (
                "{:>10.2f}x data".format(row["mem_emcli"]["extra"] / x.nbytes),
                "{:>12.2f}x data".format(row["mem_sklearn"]["extra"] / x.nbytes),
            )
            if "mem_emcli" in row
            else ("-", "-")
        )
        say(
            f"{n:>9} {d:>3} {k:>3} {kind:<9} {row['emcli_s_per_iter']:>11.4f} "
            f"{row['sklearn_s_per_iter']:>12.4f} {row['ratio']:>7.1f} {rel:>11.1e} "
            f"{mem[0]:>16} {mem[1]:>18}"
        )
        say(
            f"{'':>27} one thread each: emcli {row['emcli_1thread_s_per_iter']:.4f}, sklearn "
            f"{row['sklearn_1thread_s_per_iter']:.4f}, ratio {row['ratio_1thread']:.1f}"
        )
        if not rel <= 1e-10:
            say(f"  !! log-likelihoods differ by {rel:.1e} relative (> 1e-10)")
            failures.append(f"{(n, d, k, kind)}: log-likelihoods differ by {rel:.1e} relative")
        results["cases"].append(row)
        del x

    if not args.shape:  # the bound and float32 parts are about the standard sizes
        bn, bd, bk, bkind = bound_case
        rate = max(gemm_rate(600 if quick else 2000), 1.0)
        bw = bandwidth((16 if quick else 400) * 2**20)
        flops = em_flops(bn, bd, bk)
        bound = max(flops / rate, bn * bd * 8 / bw)
        case = next(
            c
            for c in results["cases"]
            if (c["n"], c["d"], c["k"], c["type"]) == (bn, bd, bk, bkind)
        )
        sparse_flops = em_flops(bn, bd, bk, case["sparse_fill"])
        sparse_bound = max(sparse_flops / rate, bn * bd * 8 / bw)
        results["bound"] = {
            "case": [bn, bd, bk],
            "gemm_flops_per_s": rate,
            "bandwidth_bytes_per_s": bw,
            "flops_per_iter": flops,
            "bound_s": bound,
            "fill": case["sparse_fill"],
            "sparse_flops_per_iter": sparse_flops,
            "sparse_bound_s": sparse_bound,
            "emcli_over_bound": case["emcli_s_per_iter"] / bound,
            "emcli_over_sparse_bound": case["emcli_s_per_iter"] / sparse_bound,
            "sklearn_over_bound": case["sklearn_s_per_iter"] / bound,
        }
        dense = case["emcli_dense_s_per_iter"]
        results["bound"]["emcli_dense_s_per_iter"] = dense
        results["bound"]["emcli_dense_over_bound"] = dense / bound
        results["bound"]["sklearn_over_emcli_dense"] = case["sklearn_s_per_iter"] / dense
        say()
        say(
            f"machine bound at ({bn}, {bd}, {bk}) {bkind}: GEMM {rate / 1e9:.1f} GFLOP/s, memory "
            f"{bw / 1e9:.1f} GB/s, {flops / 1e9:.2f} GFLOP per iteration -> {bound:.4f} s; "
            f"emcli {results['bound']['emcli_over_bound']:.2f}x the bound, sklearn "
            f"{results['bound']['sklearn_over_bound']:.1f}x"
        )
        say(
            f"  sparse moments keep {case['sparse_fill']:.2f} of the (row, component) pairs: "
            f"bound {sparse_bound:.4f} s, emcli "
            f"{results['bound']['emcli_over_sparse_bound']:.2f}x it"
        )
        say(
            f"  with every responsibility in the M-step (no sparse moments): emcli "
            f"{dense:.4f} s/it, {dense / bound:.2f}x the bound, sklearn/emcli "
            f"{case['sklearn_s_per_iter'] / dense:.1f}"
        )

        say()
        say(
            f"{'--dtype float32 vs float64':<30} {'s/it f64':>9} {'s/it f32':>9} {'speed-up':>8} "
            f"{'max rel dLL over the run':>25}"
        )
        results["float32"] = []
        for n, d, k, kind in (
            [(3000, 3, 2, "full")]
            if quick
            else [
                scaled(c)
                for c in [
                    (1_000_000, 10, 8, "full"),
                    (1_000_000, 10, 8, "diag"),
                    (200_000, 50, 16, "full"),
                ]
            ]
        ):
            x = make_data(n, d, k)
            params = start_params(x, k, kind)
            t64, h64 = time_emcli(x, params, iters)
            t32, h32 = time_emcli(x, params, iters, dtype="float32")
            rel = max(abs(a - b) / abs(b) for a, b in zip(h32, h64, strict=True))
            row = {
                "n": n,
                "d": d,
                "k": k,
                "type": kind,
                "f64": statistics.median(t64),
                "f32": statistics.median(t32),
                "max_rel_ll_diff": rel,
            }
            results["float32"].append(row)
            say(
                f"{f'({n}, {d}, {k}) {kind}':<30} {row['f64']:>9.4f} {row['f32']:>9.4f} "
                f"{row['f64'] / row['f32']:>8.2f} {rel:>25.1e}"
            )
            del x

    if not args.skip_cli:
        e2e = end_to_end(
            *((5000, 3, 3) if quick else (200_000, 10, 8)),
            iters=5 if quick else 10,
            repeat=1 if quick else 3,
        )
        results["end_to_end"] = e2e
        say()
        say(
            f"end to end, CSV of {e2e['n']} x {e2e['d']} ({e2e['csv_bytes'] / 1e6:.0f} MB), "
            f"k={e2e['k']} full, {e2e['iters']} iterations, labels written: emcli fit "
            f"{e2e['emcli']:.2f} s, pandas.read_csv + scikit-learn {e2e['sklearn']:.2f} s, "
            f"ratio {e2e['ratio']:.1f}"
        )
        rd = read_speed(5 * 2**20 if quick else 2**30, 2)
        results["read_csv"] = rd
        say(
            f"reading a {rd['bytes'] / 2**20:.0f} MiB numeric CSV into float64 (best of runs): "
            f"emcli {rd['emcli']:.2f} s, pyarrow.csv.read_csv {rd['pyarrow']:.2f} s "
            f"(emcli/pyarrow {rd['emcli_over_pyarrow']:.2f}), pandas.read_csv {rd['pandas']:.2f} s "
            f"(pandas/emcli {rd['pandas_over_emcli']:.1f})"
        )
        results["startup"] = startup(1 if quick else 7)
        say(
            "start-up (median): "
            + ", ".join(f"{k} {v:.3f} s" for k, v in results["startup"].items())
        )

    if not args.skip_accelerate:
        rows = squarem_report(quick, restarts=2 if quick else 10)
        results["squarem"] = rows
        say()
        say(
            f"{'SQUAREM (--accelerate), all starts':<40} {'iters plain':>11} {'iters sq':>9} "
            f"{'s plain':>8} {'s sq':>7} {'dLL (sq - plain)':>17} {'worse starts':>12}"
        )
        for r in rows:
            say(
                f"{r['case']:<40} {r['iters_plain']:>11} {r['iters_squarem']:>9} "
                f"{r['seconds_plain']:>8.2f} {r['seconds_squarem']:>7.2f} "
                f"{r['ll_squarem'] - r['ll_plain']:>17.2e} {len(r['starts_worse']):>12}"
            )

    results["machine"]["loadavg_end"] = os.getloadavg()
    say()
    say(
        f"load average at end {results['machine']['loadavg_end'][0]:.2f} (the machine is "
        "shared: read the figures as ratios)"
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    tag = "quick" if quick else "full"
    (out / f"{tag}-{stamp}.json").write_text(json.dumps(results, indent=1, default=float))
    (out / f"{tag}-{stamp}.txt").write_text("\n".join(lines) + "\n")
    if not (quick or args.shape or args.no_docs) and not failures:
        # The committed figures: this file, and the docs' block copied from it.
        LATEST.write_text(json.dumps(results, indent=1, default=float) + "\n")
        write_docs(results)
    for failure in failures:
        print(f"FAILED: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

"""The document family: its EM iteration against plain scipy, its clusters against k-means.

speed: one EM iteration of a mixture of multinomials on a synthetic document-term matrix
(``--docs`` x ``--terms`` CSR counts with about ``--nnz`` non-zeros, drawn from a known
``--k``-component mixture over a Zipf-like vocabulary), emcli against a plain scipy
implementation written here (``plain_iteration``: the two sparse-dense products and a
log-sum-exp over k, nothing else).  Both start from the same parameters and are timed in
alternation, ``--repeat`` iterations each, so a load that comes and goes on a shared machine
hits both alike; medians, [min, max] and the ratio emcli/plain of the medians.  Peak memory
of one iteration of each (tracemalloc, which sees numpy's buffers), measured in a separate,
untimed iteration.

quality: the sample corpus sample_data/books.csv (3000 passages from six novels, category =
the book): NMI and ARI of emcli's clusters against the books, next to k-means on tf-idf
(scikit-learn's TfidfVectorizer + KMeans with the same tokeniser settings), both for several
seeds, k = the number of books; and which k emcli's BIC picks over ``--bic-range``.

Run:  PYTHONPATH=. python benchmarks/bench_documents.py [--docs 100000] [--terms 20000]
      [--nnz 5000000] [--k 20] [--repeat 5] [--seeds 5] [--bic-range 2..10]
      [--only speed|quality] [--quick] [--out benchmarks/results/documents]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import scipy
import scipy.sparse as sp

ROOT = Path(__file__).resolve().parents[1]
BOOKS = ROOT / "sample_data" / "books.csv"


# --------------------------------------------------------------------------- synthetic data


def _topics(n_terms: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """k word distributions of shape (k, n_terms): a shared Zipf-like base (rank^-1.05),
    each topic re-weighting every word by a log-normal factor and boosting 1% of the
    vocabulary (its own words) twenty-fold."""
    base = 1.0 / (np.arange(n_terms) + 10.0) ** 1.05
    theta = base * np.exp(rng.normal(0.0, 1.0, size=(k, n_terms)))
    for j in range(k):
        own = rng.choice(n_terms, size=max(1, n_terms // 100), replace=False)
        theta[j, own] *= 20.0
    return theta / theta.sum(axis=1, keepdims=True)


def _counts(theta, z, lengths, rng) -> sp.csr_matrix:
    n_docs, n_terms = len(z), theta.shape[1]
    rows, cols = [], []
    for j in range(theta.shape[0]):
        docs = np.flatnonzero(z == j)
        if len(docs) == 0:
            continue
        cdf = np.cumsum(theta[j])
        cdf /= cdf[-1]
        n_tokens = int(lengths[docs].sum())
        cols.append(np.minimum(np.searchsorted(cdf, rng.random(n_tokens)), n_terms - 1))
        rows.append(np.repeat(docs, lengths[docs]))
    r, c = np.concatenate(rows), np.concatenate(cols)
    x = sp.coo_matrix((np.ones(len(r)), (r, c)), shape=(n_docs, n_terms)).tocsr()
    x.sum_duplicates()
    x.sort_indices()
    return x


def synthetic(n_docs: int, n_terms: int, nnz: int, k: int, seed: int = 0):
    """(x, z, theta, weights): CSR counts of shape (n_docs, n_terms) with about ``nnz``
    non-zeros, each document drawn from one of k multinomials (z its component).  The mean
    document length is found by bisection on a small sample so that the distinct terms per
    document come out at nnz / n_docs."""
    rng = np.random.default_rng(seed)
    theta = _topics(n_terms, k, rng)
    weights = rng.dirichlet(np.full(k, 5.0))
    target = nnz / n_docs
    lo, hi = target, 20.0 * target
    probe = min(n_docs, 4000)
    for _ in range(12):
        mid = 0.5 * (lo + hi)
        zs = rng.choice(k, size=probe, p=weights)
        ls = rng.poisson(mid, size=probe) + 1
        got = _counts(theta, zs, ls, rng).nnz / probe
        lo, hi = (mid, hi) if got < target else (lo, mid)
    z = rng.choice(k, size=n_docs, p=weights)
    lengths = rng.poisson(0.5 * (lo + hi), size=n_docs) + 1
    return _counts(theta, z, lengths, rng), z, theta, weights


# ------------------------------------------------------------------- the plain reference


def plain_iteration(x: sp.csr_matrix, log_theta: np.ndarray, log_weights: np.ndarray, alpha):
    """One EM iteration of a mixture of multinomials, written plainly with scipy.

    x: counts of shape (n_docs, n_terms), CSR; log_theta of shape (k, n_terms); log_weights
    of shape (k,).  Returns the new (log_theta, log_weights) and the log-likelihood at the
    old parameters (without the multinomial coefficient)."""
    log_p = x @ log_theta.T  # (n_docs, k): sum_w N_dw log theta_kw
    log_p += log_weights
    top = log_p.max(axis=1, keepdims=True)
    log_norm = top[:, 0] + np.log(np.exp(log_p - top).sum(axis=1))
    resp = np.exp(log_p - log_norm[:, None])
    n_kw = (x.T @ resp).T  # (k, n_terms)
    n_k = n_kw.sum(axis=1, keepdims=True)
    theta = (alpha + n_kw) / (x.shape[1] * alpha + n_k)
    weights = resp.sum(axis=0) / x.shape[0]
    return np.log(theta), np.log(weights), float(log_norm.sum())


def random_start(x: sp.csr_matrix, k: int, alpha: float, rng: np.random.Generator):
    """The M-step of a random hard assignment: (theta, weights)."""
    z = rng.integers(k, size=x.shape[0])
    resp = sp.csr_matrix((np.ones(x.shape[0]), (np.arange(x.shape[0]), z)), shape=(x.shape[0], k))
    n_kw = np.asarray((x.T @ resp).T.todense())
    theta = (alpha + n_kw) / (x.shape[1] * alpha + n_kw.sum(axis=1, keepdims=True))
    return theta, np.bincount(z, minlength=k) / x.shape[0]


def plain_fit(x: sp.csr_matrix, k: int, alpha: float, seed: int, n_init: int, max_iter: int):
    """Best of ``n_init`` random starts of ``plain_iteration`` (stopping when the
    log-likelihood per document changes by less than 1e-8): (labels, log-likelihood)."""
    rng = np.random.default_rng(seed)
    best: tuple[float, Any] = (-np.inf, None)
    for _ in range(n_init):
        theta, weights = random_start(x, k, alpha, rng)
        lt, lw = np.log(theta), np.log(np.maximum(weights, 1e-300))
        old = -np.inf
        for _ in range(max_iter):
            lt, lw, ll = plain_iteration(x, lt, lw, alpha)
            if abs(ll - old) < 1e-8 * x.shape[0]:
                break
            old = ll
        if ll > best[0]:
            best = (ll, (lt, lw))
    lt, lw = best[1]
    return np.asarray((x @ lt.T + lw).argmax(axis=1)).ravel(), best[0]


# ------------------------------------------------------------------------------- emcli side


def emcli_available() -> str | None:
    """None when emcli has the document family, else why not."""
    try:
        import emcli
        from emcli.families import FAMILIES
    except ImportError as e:
        return f"emcli not importable ({e})"
    if "multinomial" not in FAMILIES:
        return f"emcli at {Path(emcli.__file__).parent} has no multinomial family"
    if "fit_documents" not in getattr(emcli, "__all__", ()):
        return f"emcli at {Path(emcli.__file__).parent} has no fit_documents"
    return None


# ------------------------------------------------------------------------------------ timing


def _timed(fn, *args):
    t0 = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t0


def _peak_mib(fn, *args) -> float:
    """Peak of the memory tracemalloc sees (numpy buffers included) during fn(*args)."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    fn(*args)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return (peak - base) / 2**20


def _summary(times: list[float]) -> dict[str, float]:
    return {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times)}


# --------------------------------------------------------------------------------- quality


def read_books(path: Path = BOOKS) -> tuple[list[str], np.ndarray, list[str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    names = sorted({r["book"] for r in rows})
    return [r["text"] for r in rows], np.array([names.index(r["book"]) for r in rows]), names


def _scores(truth: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    return {
        "nmi": float(normalized_mutual_info_score(truth, labels)),
        "ari": float(adjusted_rand_score(truth, labels)),
    }


# The tokeniser settings of the comparison, as emcli.fit_documents's defaults (issue 17):
# lower-case Unicode word characters, the English stop words, min_df 2, max_df 0.5,
# at most 20000 terms.
TOKENS = {"stop_words": "english", "min_df": 2, "max_df": 0.5, "max_vocab": 20000}


def _sklearn_vectorizer(kind: str):
    from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer

    cls = TfidfVectorizer if kind == "tfidf" else CountVectorizer
    return cls(
        lowercase=True,
        token_pattern=r"(?u)\b[^\W_]{2,}\b",  # emcli's rule, but for digit-only tokens
        stop_words=TOKENS["stop_words"],
        min_df=TOKENS["min_df"],
        max_df=TOKENS["max_df"],
        max_features=TOKENS["max_vocab"],
    )


def kmeans_runs(texts, truth, k: int, seeds: list[int], n_init: int) -> list[dict]:
    from sklearn.cluster import KMeans

    x = _sklearn_vectorizer("tfidf").fit_transform(texts)
    out = []
    for seed in seeds:
        t0 = time.perf_counter()
        labels = KMeans(n_clusters=k, n_init=n_init, random_state=seed).fit_predict(x)
        out.append({"seed": seed, "s": time.perf_counter() - t0, **_scores(truth, labels)})
    return out


def plain_runs(texts, truth, k: int, seeds: list[int], n_init: int, alpha: float) -> list[dict]:
    x = _sklearn_vectorizer("count").fit_transform(texts).astype(np.float64).tocsr()
    out = []
    for seed in seeds:
        t0 = time.perf_counter()
        labels, ll = plain_fit(x, k, alpha, seed, n_init, max_iter=1000)
        out.append(
            {"seed": seed, "s": time.perf_counter() - t0, "log_likelihood": ll}
            | _scores(truth, labels)
        )
    return out


def oracle_run(texts, truth, k: int, alpha: float) -> dict:
    """Plain EM started from the true books: the fit the model can reach (not a method)."""
    x = _sklearn_vectorizer("count").fit_transform(texts).astype(np.float64).tocsr()
    resp = sp.csr_matrix(
        (np.ones(len(truth)), (np.arange(len(truth)), truth)), shape=(len(truth), k)
    )
    n_kw = np.asarray((x.T @ resp).T.todense())
    lt = np.log((alpha + n_kw) / (x.shape[1] * alpha + n_kw.sum(axis=1, keepdims=True)))
    lw = np.log(np.bincount(truth, minlength=k) / len(truth))
    old = -np.inf
    for _ in range(1000):
        lt, lw, ll = plain_iteration(x, lt, lw, alpha)
        if abs(ll - old) < 1e-8 * x.shape[0]:
            break
        old = ll
    labels = np.asarray((x @ lt.T + lw).argmax(axis=1)).ravel()
    return {"log_likelihood": ll} | _scores(truth, labels)


# ------------------------------------------------------------------------------ the emcli side


def emcli_start(x: sp.csr_matrix, k: int, alpha: float, seed: int):
    """emcli's own start after one iteration (``api.fit``, one start, max_iter=1): the model,
    and its (word_probabilities, weights) as the plain side's start."""
    from emcli import api

    model = api.fit(
        x,
        n_components=k,
        family="multinomial",
        alpha=alpha,
        n_restarts=1,
        max_iter=1,
        tol=0.0,
        seed=seed,
        reorder=False,
    )
    d = model.to_dict()
    return model, np.asarray(d["word_probabilities"], float), np.asarray(d["weights"], float)


def emcli_fit_time(x, model, alpha: float, n_iter: int) -> float:
    """Seconds of ``api.fit`` warm-started from ``model`` for exactly n_iter iterations."""
    from emcli import api

    t0 = time.perf_counter()
    api.fit(
        x,
        n_components=model.n_components,
        family="multinomial",
        alpha=alpha,
        init=model,
        n_restarts=1,
        max_iter=n_iter,
        tol=0.0,
        reorder=False,
    )
    return time.perf_counter() - t0


def emcli_documents(texts, k: int, seed: int, alpha: float):
    """emcli.fit_documents with the issue's default tokeniser: (model, labels of texts)."""
    import emcli

    model = emcli.fit_documents(texts, k, alpha=alpha, seed=seed, **TOKENS)
    return model, np.asarray(model.predict(texts))


# ------------------------------------------------------------------------------------- runs


def speed(args, lines: list[str]) -> dict:
    t0 = time.perf_counter()
    x, _, _, _ = synthetic(args.docs, args.terms, args.nnz, args.k, seed=0)
    lines.append(
        f"data: {x.shape[0]} documents x {x.shape[1]} terms, {x.nnz} non-zeros "
        f"({x.nnz / x.shape[0]:.1f} per document, {x.sum() / x.shape[0]:.1f} tokens), "
        f"k={args.k}, alpha={args.alpha}; generated in {time.perf_counter() - t0:.1f}s"
    )
    record: dict[str, Any] = {"shape": list(x.shape), "nnz": int(x.nnz), "k": args.k}
    why = emcli_available()
    if why is None:
        model, theta0, weights0 = emcli_start(x, args.k, args.alpha, seed=0)
        start = "emcli's own start after one iteration (api.fit, 1 start, max_iter=1)"
    else:
        model = None
        theta0, weights0 = random_start(x, args.k, args.alpha, np.random.default_rng(0))
        start = "the M-step of a random hard assignment"
    lines.append(f"start (both sides): {start}")
    state = [np.log(theta0), np.log(np.maximum(weights0, 1e-300))]

    def plain_block(n_iter: int) -> float:
        t = time.perf_counter()
        for _ in range(n_iter):
            state[0], state[1], _ = plain_iteration(x, state[0], state[1], args.alpha)
        return time.perf_counter() - t

    plain_block(1)  # warm-up
    m = args.iters
    times: dict[str, list[float]] = {"plain": [], "emcli_marginal": [], "emcli_fit": []}
    for _ in range(args.repeat):
        times["plain"].append(plain_block(m) / m)
        if model is not None:
            t_one = emcli_fit_time(x, model, args.alpha, 1)
            t_many = emcli_fit_time(x, model, args.alpha, m + 1)
            times["emcli_marginal"].append((t_many - t_one) / m)
            times["emcli_fit"].append(t_many / (m + 1))
    record["times"] = times
    record["plain"] = _summary(times["plain"])
    p = record["plain"]
    lines.append(
        f"plain scipy iteration: {p['median_s']:.4f}s [{p['min_s']:.4f}, {p['max_s']:.4f}] "
        f"(median of {args.repeat} blocks of {m} iterations)"
    )
    record["plain_peak_mib"] = _peak_mib(plain_block, 1)
    if model is None:
        lines.append(f"emcli: skipped, {why}")
        return record
    for key, what in (
        ("emcli_marginal", f"(fit of {m + 1} iterations - fit of 1) / {m}"),
        ("emcli_fit", f"whole fit of {m + 1} iterations / {m + 1} (set-up included)"),
    ):
        s = record[key] = _summary(times[key])
        record[key]["ratio"] = s["median_s"] / p["median_s"]
        lines.append(
            f"emcli {what}: {s['median_s']:.4f}s [{s['min_s']:.4f}, {s['max_s']:.4f}]  "
            f"ratio emcli/plain {s['ratio']:.2f}x"
        )
    record["emcli_fit1_peak_mib"] = _peak_mib(emcli_fit_time, x, model, args.alpha, 1)
    lines.append(
        f"peak memory (tracemalloc): plain iteration {record['plain_peak_mib']:.0f} MiB; "
        f"emcli fit of 1 iteration {record['emcli_fit1_peak_mib']:.0f} MiB "
        f"(x itself: {(x.data.nbytes + x.indices.nbytes + x.indptr.nbytes) / 2**20:.0f} MiB)"
    )
    return record


def _row(name: str, runs: list[dict], note: str = "") -> str:
    def cell(key: str) -> str:
        v = [r[key] for r in runs]
        return f"{statistics.median(v):.3f} [{min(v):.3f}, {max(v):.3f}]"

    t = statistics.median(r["s"] for r in runs)
    return f"| {name} | {cell('nmi')} | {cell('ari')} | {t:.2f} | {note} |"


def quality(args, lines: list[str]) -> dict:
    texts, truth, names = read_books()
    k = len(names)
    seeds = list(range(args.seeds))
    lines.append(
        f"corpus: {BOOKS.relative_to(ROOT)}, {len(texts)} passages, k = {k} books; "
        f"seeds {seeds}; tokeniser {TOKENS}, alpha={args.alpha}"
    )
    record: dict[str, Any] = {"books": names, "seeds": seeds}
    record["kmeans_tfidf"] = kmeans_runs(texts, truth, k, seeds, n_init=10)
    record["plain_em"] = plain_runs(texts, truth, k, seeds, n_init=10, alpha=args.alpha)
    record["oracle"] = oracle_run(texts, truth, k, args.alpha)
    table = [
        "| method | NMI median [min, max] | ARI median [min, max] | s per fit | note |",
        "|---|---|---|---|---|",
    ]
    why = emcli_available()
    if why is None:
        runs = []
        for seed in seeds:
            t0 = time.perf_counter()
            model, labels = emcli_documents(texts, k, seed, args.alpha)
            runs.append(
                {
                    "seed": seed,
                    "s": time.perf_counter() - t0,
                    "log_likelihood": float(model.log_likelihood),
                }
                | _scores(truth, labels)
            )
        record["emcli"] = runs
        table.append(_row("emcli fit_documents", runs, "default restarts"))
    table.append(_row("k-means on tf-idf (scikit-learn)", record["kmeans_tfidf"], "n_init=10"))
    table.append(
        _row("plain EM, this script", record["plain_em"], "10 random hard-assignment starts")
    )
    o = record["oracle"]
    table.append(
        f"| plain EM started from the true books | {o['nmi']:.3f} | {o['ari']:.3f} | - | "
        f"not a method: the optimum near the truth, log-lik {o['log_likelihood']:.0f} |"
    )
    lines.extend(table)
    if why is not None:
        lines.append(f"emcli: skipped, {why}")
        return record
    lines.append(
        "log-likelihood (same tokeniser? see notes): emcli "
        + ", ".join(f"{r['log_likelihood']:.0f}" for r in record["emcli"])
        + "; plain EM "
        + ", ".join(f"{r['log_likelihood']:.0f}" for r in record["plain_em"])
    )
    lo, hi = (int(v) for v in args.bic_range.split(".."))
    bic = []
    for kk in range(lo, hi + 1):
        model, labels = emcli_documents(texts, kk, 0, args.alpha)
        bic.append({"k": kk, "bic": float(model.bic)} | _scores(truth, labels))
    record["bic"] = bic
    best = min(bic, key=lambda r: r["bic"])
    lines.append(f"BIC over k = {lo}..{hi} (seed 0): picks k = {best['k']}")
    lines.extend(
        f"  k={r['k']:2d}  BIC {r['bic']:.1f}  NMI {r['nmi']:.3f}  ARI {r['ari']:.3f}" for r in bic
    )
    return record


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=100_000)
    ap.add_argument("--terms", type=int, default=20_000)
    ap.add_argument("--nnz", type=int, default=5_000_000)
    ap.add_argument("--k", type=int, default=20)
    ap.add_argument("--alpha", type=float, default=0.01)
    ap.add_argument("--repeat", type=int, default=5, help="timed blocks per side")
    ap.add_argument("--iters", type=int, default=10, help="iterations per timed block")
    ap.add_argument("--seeds", type=int, default=5, help="seeds per method (quality)")
    ap.add_argument("--bic-range", default="2..10")
    ap.add_argument("--only", choices=["speed", "quality"], default=None)
    ap.add_argument("--quick", action="store_true", help="a small smoke run")
    ap.add_argument("--out", default=None, help="directory for a JSON and a text record")
    ap.add_argument("--note", default="", help="a remark for the record")
    args = ap.parse_args(argv)
    if args.quick:
        args.docs, args.terms, args.nnz, args.k = 2000, 1000, 40_000, 5
        args.repeat, args.iters, args.seeds, args.bic_range = 2, 2, 2, "5..7"
    import emcli

    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    lines = [
        f"bench_documents: emcli from {Path(emcli.__file__).parent}, python "
        f"{platform.python_version()}, numpy {np.__version__}, scipy {scipy.__version__}, "
        f"{os.cpu_count()} cores, EMCLI_THREADS={os.environ.get('EMCLI_THREADS', 'default')}",
        f"uptime at start: {uptime}",
    ]
    if args.note:
        lines.append(f"note: {args.note}")
    record: dict[str, Any] = {"argv": sys.argv[1:] if argv is None else argv, "note": args.note}
    if args.only in (None, "speed"):
        lines.append("== speed: one EM iteration, emcli against plain scipy")
        record["speed"] = speed(args, lines)
    if args.only in (None, "quality"):
        lines.append("== quality: clusters of sample_data/books.csv against the books")
        record["quality"] = quality(args, lines)
    lines.append(
        "uptime at end: "
        + subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    )
    record["lines"] = lines
    print("\n".join(lines))
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        name = "quick" if args.quick else (args.only or "all")
        (out / f"{name}-{stamp}.json").write_text(json.dumps(record, indent=2) + "\n")
        (out / f"{name}-{stamp}.txt").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

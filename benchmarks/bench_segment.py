"""``emcli segment`` against OpenCV's cv2.ml.EM and scikit-learn's GaussianMixture on the
same pixels: time and log-likelihood (total and per pixel), run side by side.

The photo is scikit-learn's china.jpg (427 x 640, BSD-3 via scikit-learn).  Every method
fits a k-component full ("generic") covariance Gaussian mixture to the RGB values of all
273,280 pixels (0..255):

* emcli: ``emcli.segment.segment`` with --features rgb and the defaults of ``emcli
  segment`` (10 restarts; the distinct colours as frequency weights, which is the fit on
  every pixel);
* OpenCV: one ``cv2.ml.EM.trainEM`` (its default start, k-means; default term criteria);
* scikit-learn: ``GaussianMixture(k, covariance_type="full")``, its defaults (one start).

Each log-likelihood is recomputed from the method's fitted weights, means and covariances
with scipy.stats.multivariate_normal on all pixels, so the three are measured by one
independent yardstick.  A second part times emcli alone on a 12-megapixel version of the
photo (resized to 4256 x 2832, bicubic), k = 6.

OpenCV (``pip install "opencv-python-headless<5"``; version 5 moved ``ml`` out) is skipped
with a message when it is not installed.

Run:  PYTHONPATH=. python benchmarks/bench_segment.py [-k 4] [--skip-opencv] [--skip-large]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np


def log_likelihood(x: np.ndarray, weights, means, covariances) -> float:
    """Total log-likelihood of the rows under a full-covariance mixture (scipy)."""
    from scipy.special import logsumexp
    from scipy.stats import multivariate_normal

    parts = np.column_stack(
        [
            np.log(w) + multivariate_normal(m, c, allow_singular=False).logpdf(x)
            for w, m, c in zip(weights, means, covariances, strict=True)
        ]
    )
    return float(logsumexp(parts, axis=1).sum())


def china() -> np.ndarray:
    from sklearn.datasets import load_sample_image

    return load_sample_image("china.jpg")


def run_emcli(image: np.ndarray, k: int, features: str = "rgb") -> dict:
    from emcli.image import Picture
    from emcli.segment import segment

    picture = Picture(image, 8)
    t = time.perf_counter()
    result = segment(picture, k, features=features)
    seconds = time.perf_counter() - t
    model = result.model
    return {
        "seconds": seconds,
        "params": (model.weights, model.means, model.full_covariances()),
        "n_iter": [s["n_iter"] for s in model.starts],
        "restarts": len(model.starts),
        "warnings": list(model.warnings),
        "reported_log_likelihood": model.log_likelihood,
    }


def run_opencv(x: np.ndarray, k: int) -> dict | None:
    try:
        import cv2
    except ImportError:
        print('OpenCV skipped: pip install "opencv-python-headless<5" to compare with it')
        return None
    em = cv2.ml.EM_create()
    em.setClustersNumber(k)
    em.setCovarianceMatrixType(cv2.ml.EM_COV_MAT_GENERIC)
    t = time.perf_counter()
    ok, per_row, _, _ = em.trainEM(x)
    seconds = time.perf_counter() - t
    covs = np.array(em.getCovs())
    return {
        "seconds": seconds,
        "params": (em.getWeights().ravel(), em.getMeans(), covs),
        "version": cv2.__version__,
        "threads": cv2.getNumThreads(),
        "reported_log_likelihood": float(per_row.sum()),
        "term_criteria": list(em.getTermCriteria()),
    }


def run_sklearn(x: np.ndarray, k: int) -> dict:
    import sklearn
    from sklearn.mixture import GaussianMixture

    t = time.perf_counter()
    gm = GaussianMixture(k, covariance_type="full", random_state=0).fit(x)
    seconds = time.perf_counter() - t
    return {
        "seconds": seconds,
        "params": (gm.weights_, gm.means_, gm.covariances_),
        "version": sklearn.__version__,
        "n_iter": int(gm.n_iter_),
        "reported_log_likelihood": float(gm.score(x) * x.shape[0]),
    }


def large(k: int) -> dict:
    from PIL import Image

    from emcli.image import Picture, render_labels
    from emcli.segment import pixel_rows, segment

    big = np.asarray(Image.fromarray(china()).resize((4256, 2832), Image.Resampling.BICUBIC))
    picture = Picture(big, 8)
    distinct = pixel_rows(picture, "lab").x.shape[0]
    t = time.perf_counter()
    result = segment(picture, k)
    seconds = time.perf_counter() - t
    render_labels(result.labels, k)
    return {
        "pixels": int(big.shape[0] * big.shape[1]),
        "distinct_colours": int(distinct),
        "k": k,
        "features": "lab (the default)",
        "seconds": seconds,
        "log_likelihood_per_pixel": result.model.log_likelihood / result.model.n_samples,
        "sample": result.model.extra.get("sample"),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-k", type=int, nargs="+", default=[4])
    parser.add_argument("--skip-opencv", action="store_true")
    parser.add_argument("--skip-large", action="store_true")
    parser.add_argument("--quick", action="store_true", help="a 60 x 80 crop, no 12 MP part")
    parser.add_argument("--out", default="benchmarks/results/segment")
    args = parser.parse_args(argv)
    image = china()
    if args.quick:
        image, args.skip_large = np.ascontiguousarray(image[150:210, 300:380]), True
    x = image.reshape(-1, 3).astype(np.float64)
    n = x.shape[0]
    report: dict = {
        "photo": f"sklearn china.jpg {image.shape[0]}x{image.shape[1]}",
        "pixels": n,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, shared with other jobs",
        "runs": [],
    }
    lines = [
        "# emcli segment against OpenCV and scikit-learn (china.jpg, RGB, full covariance)",
        "",
        f"{image.shape[0]} x {image.shape[1]} = {n} pixels; log-likelihood recomputed with "
        "scipy from each fitted model.  The "
        "machine (2 cores) was shared with other jobs during the run, so times are noisy; "
        "the methods ran one after the other in one process.",
        "",
        "| k | method | seconds | log-likelihood | per pixel | vs OpenCV time |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for k in args.k:
        runs = {"emcli segment (10 restarts)": run_emcli(image, k)}
        if not args.skip_opencv:
            cv = run_opencv(x.copy(), k)
            if cv is not None:
                runs["OpenCV trainEM (1 start)"] = cv
        runs["scikit-learn GaussianMixture (1 start)"] = run_sklearn(x, k)
        cv_time = runs.get("OpenCV trainEM (1 start)", {}).get("seconds")
        for name, r in runs.items():
            r["log_likelihood"] = log_likelihood(x, *r.pop("params"))
            ratio = f"{cv_time / r['seconds']:.1f}x faster" if cv_time else "-"
            lines.append(
                f"| {k} | {name} | {r['seconds']:.1f} | {r['log_likelihood']:.1f} | "
                f"{r['log_likelihood'] / n:.5f} | {ratio} |"
            )
            report["runs"].append({"k": k, "method": name, **r})
            print(lines[-1], flush=True)
    if not args.skip_large:
        big = large(6)
        report["large"] = big
        lines += [
            "",
            f"12-megapixel photo (china.jpg resized to 4256 x 2832, {big['pixels']} pixels, "
            f"{big['distinct_colours']} distinct colours), `emcli segment -k 6` defaults "
            f"(lab): {big['seconds']:.1f} s for the fit and the labels of every pixel; "
            f"log-likelihood per pixel {big['log_likelihood_per_pixel']:.5f}.",
        ]
        print(lines[-1], flush=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"segment-{stamp}.json").write_text(json.dumps(report, indent=2, default=str))
    (out / f"segment-{stamp}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return report


if __name__ == "__main__":
    main()

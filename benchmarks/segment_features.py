"""Which --features should ``emcli segment`` use by default?  Log-likelihoods of different
feature spaces are not comparable, so this measures what a user sees: the share of pixels
put in their true region, on synthetic scenes whose regions are known, under three kinds of
image formation:

* sensor: flat colours plus Gaussian noise in RGB (sigma 6);
* shading: each colour times a smooth illumination field (0.55 .. 1, as a lamp to one side
  gives) plus noise (sigma 4) -- what photographs of objects look like;
* jpeg: shading, then saved as JPEG at quality 75 (block artefacts, chroma subsampling).

Each scene has six regions; two pairs of them differ mostly in hue at a similar luminance
and one pair mostly in lightness.  Every space is fitted with the same k (the true number of
regions) and emcli's defaults otherwise.

Run:  PYTHONPATH=. python benchmarks/segment_features.py [--seeds 3] [--out FILE]
"""

from __future__ import annotations

import argparse
import io
import time
from pathlib import Path

import numpy as np

# Six region colours: red/green-brown at similar luma, blue/purple at similar luma, and a
# light and a dark beige (mostly lightness).
COLOURS = np.array(
    [
        [170, 70, 60],
        [90, 120, 50],
        [60, 80, 160],
        [120, 60, 150],
        [215, 200, 160],
        [140, 125, 95],
    ],
    dtype=float,
)


def scene(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """Known regions 0..5: a grid of blocks with a disc and a stripe, shuffled per seed."""
    rows, cols = np.mgrid[0:height, 0:width]
    truth = (rows * 2 // height) * 3 + (cols * 3 // width)
    cy, cx = rng.uniform(0.3, 0.7) * height, rng.uniform(0.3, 0.7) * width
    truth[(rows - cy) ** 2 + (cols - cx) ** 2 < (0.18 * height) ** 2] = 5
    truth[np.abs(rows - cols * height / width) < 0.04 * height] = 4
    return rng.permutation(6)[truth]


def render(truth: np.ndarray, condition: str, rng: np.random.Generator) -> np.ndarray:
    height, width = truth.shape
    colours = COLOURS[truth]
    if condition == "sensor":
        values = colours + rng.normal(0, 6, colours.shape)
    else:
        rows, cols = np.mgrid[0:height, 0:width]
        light = 0.55 + 0.45 * np.exp(-(((cols / width) - 0.1) ** 2 + ((rows / height) - 0.2) ** 2))
        values = colours * light[:, :, None] + rng.normal(0, 4, colours.shape)
    values = np.clip(np.rint(values), 0, 255).astype(np.uint8)
    if condition == "jpeg":
        from PIL import Image

        buffer = io.BytesIO()
        Image.fromarray(values).save(buffer, format="JPEG", quality=75)
        with Image.open(io.BytesIO(buffer.getvalue())) as image:
            values = np.asarray(image.convert("RGB"))
    return values


def accuracy(found: np.ndarray, truth: np.ndarray) -> float:
    from scipy.optimize import linear_sum_assignment

    k = int(max(found.max(), truth.max())) + 1
    table = np.zeros((k, k))
    np.add.at(table, (found.ravel(), truth.ravel()), 1)
    r, c = linear_sum_assignment(-table)
    return float(table[r, c].sum() / truth.size)


def main() -> None:
    from emcli.image import Picture
    from emcli.segment import segment

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--size", type=int, nargs=2, default=(120, 160))
    parser.add_argument("--out", default="benchmarks/results/segment-features.md")
    args = parser.parse_args()
    spaces = ("rgb", "lab", "gray")
    conditions = ("sensor", "shading", "jpeg")
    scores: dict[tuple[str, str], list[float]] = {}
    t0 = time.perf_counter()
    for seed in range(args.seeds):
        rng = np.random.default_rng(seed)
        truth = scene(*args.size, rng)
        for condition in conditions:
            picture = Picture(render(truth, condition, rng), 8)
            for space in spaces:
                result = segment(picture, 6, features=space, seed=seed)
                scores.setdefault((condition, space), []).append(accuracy(result.labels, truth))
    lines = [
        "# Default features of `emcli segment`: pixels in their true region",
        "",
        f"Synthetic scenes of {args.size[0]} x {args.size[1]} pixels, six known regions, "
        f"{args.seeds} seeds, k = 6, emcli's defaults otherwise "
        f"(`python benchmarks/segment_features.py`, {time.perf_counter() - t0:.0f} s; the "
        "machine was shared with other jobs, which changes the time only).  Mean (worst) "
        "share of pixels in their true region, under the best matching of components to "
        "regions.",
        "",
        "| image formation | " + " | ".join(spaces) + " |",
        "| --- | " + " | ".join("---" for _ in spaces) + " |",
    ]
    for condition in conditions:
        cells = [
            f"{np.mean(scores[condition, s]):.4f} ({np.min(scores[condition, s]):.4f})"
            for s in spaces
        ]
        lines.append(f"| {condition} | " + " | ".join(cells) + " |")
    text = "\n".join(lines) + "\n"
    Path(args.out).write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()

"""``emcli segment`` and ``emcli.image``: colour conversions against published values and an
independent implementation, synthetic images with known regions, every input mode, the
outputs' sizes and colours, bad inputs, and a saved model applied to other images."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from clirun import run
from conftest import ROOT

PIL = pytest.importorskip("PIL")
from PIL import Image  # noqa: E402

from emcli import image as pictures  # noqa: E402
from emcli.segment import apply_model, pixel_rows, segment  # noqa: E402

# Region colours far apart in every feature space (lumas 98, 132, 51, 207), and 3.7 noise
# sigmas from 0 and 255, so that clipping makes no spikes of saturated pixels.
COLOURS = np.array([[210, 50, 50], [40, 190, 70], [30, 45, 140], [225, 215, 120]])


def regions(height: int = 60, width: int = 80) -> np.ndarray:
    """Known regions: four blocks, one a disc, shape (height, width), values 0..3."""
    rows, cols = np.mgrid[0:height, 0:width]
    truth = (rows >= height // 2).astype(int) * 2 + (cols >= width // 2)
    disc = (rows - height * 0.3) ** 2 + (cols - width * 0.3) ** 2 < (height * 0.15) ** 2
    truth[disc] = 3
    return truth


def noisy_rgb(truth: np.ndarray, noise: float = 8.0, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    values = COLOURS[truth] + rng.normal(0, noise, (*truth.shape, 3))
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


def accuracy(found: np.ndarray, truth: np.ndarray) -> float:
    """Share of pixels right under the best matching of found labels to true regions."""
    from scipy.optimize import linear_sum_assignment

    k = int(max(found.max(), truth.max())) + 1
    table = np.zeros((k, k))
    np.add.at(table, (found.ravel(), truth.ravel()), 1)
    rows, cols = linear_sum_assignment(-table)
    return float(table[rows, cols].sum() / truth.size)


def read_png(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image)


# ---------------------------------------------------------------------------- colour spaces
# sRGB (D65) -> CIELAB reference values as published by Bruce Lindbloom's calculator and
# colour-science (IEC 61966-2-1 sRGB, CIE 1976 L*a*b*, D65 white).
LAB_REFERENCE = [
    ((255, 255, 255), (100.0, 0.0, 0.0)),
    ((0, 0, 0), (0.0, 0.0, 0.0)),
    ((255, 0, 0), (53.2408, 80.0925, 67.2032)),
    ((0, 255, 0), (87.7347, -86.1827, 83.1793)),
    ((0, 0, 255), (32.2970, 79.1875, -107.8602)),
    ((128, 128, 128), (53.5850, 0.0, 0.0)),
]


@pytest.mark.parametrize(("rgb", "lab"), LAB_REFERENCE)
def test_lab_matches_published_values(rgb, lab) -> None:
    got = pictures.srgb_to_lab(np.array([rgb], dtype=float))[0]
    np.testing.assert_allclose(got, lab, atol=2e-3)


def test_lab_matches_scikit_image() -> None:
    color = pytest.importorskip("skimage.color")
    rgb = np.random.default_rng(0).integers(0, 256, (500, 3)).astype(float)
    ours = pictures.srgb_to_lab(rgb)
    theirs = color.rgb2lab(rgb[None] / 255.0)[0]
    # skimage rounds the sRGB matrix to 6 digits and takes the white point (0.95047, 1,
    # 1.08883) apart from it: a* and b* differ by up to ~0.005.
    np.testing.assert_allclose(ours, theirs, atol=1e-2)


def test_lab_round_trip() -> None:
    rgb = np.random.default_rng(1).integers(0, 256, (1000, 3)).astype(float)
    np.testing.assert_allclose(pictures.lab_to_srgb(pictures.srgb_to_lab(rgb)), rgb, atol=1e-6)


def test_gray_is_pillows_luma() -> None:
    rgb = np.random.default_rng(2).integers(0, 256, (20, 30, 3)).astype(np.uint8)
    pillow = np.asarray(Image.fromarray(rgb).convert("L")).astype(float)
    ours = pictures.rgb_to_gray(rgb.astype(float))
    assert np.abs(ours - pillow).max() <= 0.5 + 1e-9  # Pillow rounds to integers


# ---------------------------------------------------------------------------- known regions
@pytest.mark.parametrize("features", ["rgb", "lab", "gray"])
def test_known_regions_are_found(tmp_path: Path, features: str) -> None:
    truth = regions()
    Image.fromarray(noisy_rgb(truth)).save(tmp_path / "in.png")
    out = tmp_path / "out"
    result = run("segment", tmp_path / "in.png", "-k", 4, "--features", features, "-o", out)
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    labels = read_png(out / "labels.png")
    assert labels.shape == truth.shape and labels.dtype == np.uint8
    assert accuracy(labels, truth) >= 0.99
    assert sorted(np.unique(labels)) == [0, 1, 2, 3]
    model = json.loads((out / "params.json").read_text())
    assert model["image"] == {"features": features, "xy": 0.0}
    assert model["n_samples"] == truth.size


def test_outputs_sizes_and_colours(tmp_path: Path) -> None:
    truth = regions(45, 70)
    rgb = noisy_rgb(truth)
    Image.fromarray(rgb).save(tmp_path / "in.png")
    out = tmp_path / "out"
    assert run("segment", tmp_path / "in.png", "-k", 4, "-o", out, "-q").exit_code == 0
    labels = read_png(out / "labels.png")
    segmented = read_png(out / "segmented.png")
    overlay = read_png(out / "overlay.png")
    assert segmented.shape == overlay.shape == (45, 70, 3)
    # segmented: exactly k colours, each near its region's true colour (the mean)
    flat = segmented.reshape(-1, 3)
    assert len(np.unique(flat, axis=0)) == 4
    for j in range(4):
        region_true = np.bincount(truth[labels == j]).argmax()
        painted = segmented[labels == j][0].astype(float)
        assert np.abs(painted - COLOURS[region_true]).max() < 6, (j, painted)
    # overlay: the original, with yellow only on boundaries between regions
    edge = pictures.boundaries(labels.astype(np.intp))
    assert (overlay[edge] == [255, 255, 0]).all()
    np.testing.assert_array_equal(overlay[~edge], rgb[~edge])
    assert 0.02 < edge.mean() < 0.2


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    Image.fromarray(noisy_rgb(regions())).save(tmp_path / "in.png")
    for name in ("a", "b"):
        assert run("segment", tmp_path / "in.png", "-k", 3, "-o", tmp_path / name).exit_code == 0
    for file in ("labels.png", "segmented.png", "overlay.png", "params.json"):
        assert (tmp_path / "a" / file).read_bytes() == (tmp_path / "b" / file).read_bytes()


def test_outputs_one_by_one(tmp_path: Path) -> None:
    Image.fromarray(noisy_rgb(regions())).save(tmp_path / "in.png")
    args = ["--labels", tmp_path / "l.png", "--segmented", tmp_path / "s.png"]
    args += ["--overlay", tmp_path / "o.png", "--params", tmp_path / "m.json"]
    result = run("segment", tmp_path / "in.png", "-k", 4, *args)
    assert result.exit_code == 0, result.output
    assert {p.name for p in tmp_path.iterdir()} == {"in.png", "l.png", "s.png", "o.png", "m.json"}


def test_xy_separates_regions_of_one_colour(tmp_path: Path) -> None:
    """Left and right thirds share a colour; only position tells them apart."""
    truth = np.zeros((40, 90), dtype=int)
    truth[:, 30:60] = 1
    truth[:, 60:] = 2
    colour_of = np.array([0, 1, 0])[truth]
    Image.fromarray(noisy_rgb(colour_of, noise=4)).save(tmp_path / "in.png")
    plain = run("segment", tmp_path / "in.png", "-k", 2, "--labels", tmp_path / "a.png")
    assert plain.exit_code == 0, plain.output
    assert accuracy(read_png(tmp_path / "a.png"), colour_of) >= 0.99
    result = run("segment", tmp_path / "in.png", "-k", 3, "--xy", 1, "--labels", tmp_path / "b.png")
    assert result.exit_code == 0, result.output
    assert accuracy(read_png(tmp_path / "b.png"), truth) >= 0.99


def test_k_range_picks_the_number_of_regions_by_bic(tmp_path: Path) -> None:
    # The noise is Gaussian in RGB, so the mixture is exactly right in rgb features (in
    # lab the transformed noise is not Gaussian and BIC may want a fifth component).
    Image.fromarray(noisy_rgb(regions())).save(tmp_path / "in.png")
    result = run(
        "segment", tmp_path / "in.png", "-k", "2..6", "--covariance", "full,diag",
        "--features", "rgb",
        "--restarts", 2, "--params", tmp_path / "m.json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    model = json.loads((tmp_path / "m.json").read_text())
    assert model["selection"]["winner"]["components"] == 4
    assert len(model["selection"]["table"]) == 10


@pytest.mark.parametrize("kind", ["full", "tied", "diag", "spherical"])
def test_every_covariance_model(tmp_path: Path, kind: str) -> None:
    truth = regions()
    Image.fromarray(noisy_rgb(truth)).save(tmp_path / "in.png")
    args = ["-k", 4, "--covariance", kind, "--restarts", 3, "--labels", tmp_path / "l.png"]
    result = run("segment", tmp_path / "in.png", *args, "--params", tmp_path / "m.json")
    assert result.exit_code == 0, result.output
    assert accuracy(read_png(tmp_path / "l.png"), truth) >= 0.99


# ---------------------------------------------------------------------------- every pixel
def test_fit_equals_scikit_learn_on_every_pixel() -> None:
    """Distinct colours with counts are the fit on every pixel: the log-likelihood and
    means are scikit-learn's GaussianMixture on all pixels (an independent fit)."""
    from sklearn.mixture import GaussianMixture

    truth = regions()
    picture = pictures.Picture(noisy_rgb(truth, noise=12), 8)
    result = segment(picture, 4, features="rgb", tol=1e-10)
    x = picture.colours().reshape(-1, 3)
    reference = GaussianMixture(4, tol=1e-10, max_iter=2000, n_init=3, random_state=0).fit(x)
    ll = reference.score(x) * x.shape[0]
    assert result.model.log_likelihood == pytest.approx(ll, rel=1e-7)
    order = np.lexsort(reference.means_.T[::-1])
    mine = np.lexsort(result.model.means.T[::-1])
    np.testing.assert_allclose(result.model.means[mine], reference.means_[order], atol=1e-3)


def test_large_image_starts_on_a_sample_then_fits_every_pixel() -> None:
    from sklearn.mixture import GaussianMixture

    truth = regions(80, 100)
    picture = pictures.Picture(noisy_rgb(truth, noise=12), 8)
    distinct = pixel_rows(picture, "rgb").x.shape[0]
    assert distinct > 2000
    result = segment(picture, 4, features="rgb", sample=2000, tol=1e-10)
    model = result.model
    assert model.extra["sample"]["pixels"] == 2000
    assert model.n_samples == truth.size
    assert any("sample of 2000" in note for note in model.notes)
    x = picture.colours().reshape(-1, 3)
    reference = GaussianMixture(4, tol=1e-10, max_iter=2000, n_init=2, random_state=0).fit(x)
    assert model.log_likelihood == pytest.approx(reference.score(x) * x.shape[0], rel=1e-7)
    assert accuracy(result.labels, truth) >= 0.99


# ---------------------------------------------------------------------------- input modes
def _save(tmp_path: Path, image: Image.Image, name: str, **kw) -> Path:
    path = tmp_path / name
    image.save(path, **kw)
    return path


def _labels_of(tmp_path: Path, path: Path, *args) -> np.ndarray:
    out = tmp_path / (path.stem + "-labels.png")
    result = run("segment", path, "-k", 4, "--labels", out, *args)
    assert result.exit_code == 0, result.output
    return read_png(out)


def test_grayscale_modes(tmp_path: Path) -> None:
    truth = regions()
    noise = np.random.default_rng(3).normal(0, 5, truth.shape)
    gray = np.clip(np.array([30, 90, 160, 230])[truth] + noise, 0, 255)
    gray8 = np.rint(gray).astype(np.uint8)
    p8 = _save(tmp_path, Image.fromarray(gray8), "g8.png")
    labels8 = _labels_of(tmp_path, p8)
    assert accuracy(labels8, truth) >= 0.99
    # 16-bit, the same picture scaled: the same regions, 0..255 features
    g16 = (gray8.astype(np.uint16) * 257).astype(np.uint16)
    p16 = _save(tmp_path, Image.fromarray(g16), "g16.png")
    with Image.open(p16) as image:
        assert image.mode.startswith("I")
    labels16 = _labels_of(tmp_path, p16, "--params", tmp_path / "m16.json")
    np.testing.assert_array_equal(labels16, labels8)
    means = json.loads((tmp_path / "m16.json").read_text())["means"]
    assert all(0 <= m[0] <= 255 for m in means)
    # 1-bit and gray + alpha
    binary = _save(tmp_path, Image.fromarray(truth >= 2).convert("1"), "b.png")
    result = run("segment", binary, "-k", 2, "--labels", tmp_path / "bl.png")
    assert result.exit_code == 0, result.output
    assert accuracy(read_png(tmp_path / "bl.png"), (truth >= 2).astype(int)) == 1.0
    # rgb features need colour
    result = run("segment", p8, "-k", 2, "--features", "rgb", "--labels", tmp_path / "x.png")
    assert result.exit_code == 2 and "use --features gray" in result.stderr
    assert not (tmp_path / "x.png").exists()


def test_rgba_transparent_pixels_are_left_out(tmp_path: Path) -> None:
    truth = regions()
    rgb = noisy_rgb(truth)
    alpha = np.full(truth.shape, 255, dtype=np.uint8)
    alpha[:10, :] = 0  # a transparent band
    alpha[10:12, :] = 128  # half transparent: still fitted
    path = _save(tmp_path, Image.fromarray(np.dstack([rgb, alpha])), "a.png")
    out = tmp_path / "out"
    result = run("segment", path, "-k", 4, "-o", out)
    assert result.exit_code == 0, result.output
    labels = read_png(out / "labels.png")
    assert (labels[:10] == pictures.BACKGROUND[8]).all()
    assert accuracy(labels[10:], truth[10:]) >= 0.99
    assert json.loads((out / "params.json").read_text())["n_samples"] == truth.size - 800
    segmented = read_png(out / "segmented.png")
    overlay = read_png(out / "overlay.png")
    assert segmented.shape == overlay.shape == (*truth.shape, 4)
    np.testing.assert_array_equal(segmented[..., 3], alpha)
    np.testing.assert_array_equal(overlay[..., 3], alpha)


def test_palette_image_with_transparency(tmp_path: Path) -> None:
    truth = regions()
    indices = truth.astype(np.uint8)
    indices[:, :5] = 4  # palette entry 4 is transparent
    image = Image.frombytes("P", (truth.shape[1], truth.shape[0]), indices.tobytes())
    image.putpalette([*COLOURS.ravel().tolist(), 0, 0, 0])
    path = _save(tmp_path, image, "p.png", transparency=4)
    with Image.open(path) as opened:
        assert opened.mode == "P"
    result = run("segment", path, "-k", 4, "--labels", tmp_path / "l.png")
    assert result.exit_code == 0, result.output
    labels = read_png(tmp_path / "l.png")
    assert (labels[:, :5] == 255).all()
    assert accuracy(labels[:, 5:], truth[:, 5:]) == 1.0


@pytest.mark.parametrize("ext", ["jpg", "tiff", "bmp", "webp", "gif"])
def test_file_formats(tmp_path: Path, ext: str) -> None:
    truth = regions()
    image = Image.fromarray(noisy_rgb(truth, noise=4))
    if ext == "gif":
        image = image.quantize(64)
    path = _save(tmp_path, image, f"in.{ext}", **({"quality": 95} if ext == "jpg" else {}))
    assert accuracy(_labels_of(tmp_path, path), truth) >= 0.99


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    truth = regions(40, 70)
    image = Image.fromarray(noisy_rgb(truth, noise=3))
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated: display turns it 90 degrees clockwise
    path = _save(tmp_path, image, "r.jpg", exif=exif, quality=95)
    labels = _labels_of(tmp_path, path)
    assert labels.shape == (70, 40)
    assert accuracy(labels, np.rot90(truth, -1)) >= 0.99


def test_sixteen_bit_labels_when_k_exceeds_255(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    values = rng.integers(0, 256, (24, 25, 3))
    path = _save(tmp_path, Image.fromarray(values.astype(np.uint8)), "many.png")
    args = ["-k", 256, "--covariance", "spherical", "--restarts", 1, "--max-iter", 3]
    result = run("segment", path, *args, "--labels", tmp_path / "l.png", "-q")
    assert result.exit_code == 0, result.output
    with Image.open(tmp_path / "l.png") as image:
        assert image.mode.startswith("I")
        labels = np.asarray(image)
    assert labels.shape == (24, 25) and labels.max() <= 255 and labels.min() >= 0


def test_render_labels_depth_and_background() -> None:
    labels = np.array([[0, 1], [-1, 2]])
    eight = pictures.render_labels(labels, 255)
    assert eight.dtype == np.uint8 and eight[1, 0] == 255
    sixteen = pictures.render_labels(labels, 256)
    assert sixteen.dtype == np.uint16 and sixteen[1, 0] == 65535


# ---------------------------------------------------------------------------- a saved model
def test_model_reuse_gives_the_same_regions_and_colours(tmp_path: Path) -> None:
    truth = regions()
    Image.fromarray(noisy_rgb(truth, seed=1)).save(tmp_path / "a.png")
    other = np.flipud(truth)  # another frame: the regions moved, the colours stayed
    Image.fromarray(noisy_rgb(other, seed=2)).save(tmp_path / "b.png")
    assert run("segment", tmp_path / "a.png", "-k", 4, "-o", tmp_path / "fit").exit_code == 0
    model = tmp_path / "fit" / "params.json"
    result = run("segment", tmp_path / "b.png", "--model", model, "-o", tmp_path / "applied")
    assert result.exit_code == 0, result.output
    first = read_png(tmp_path / "fit" / "labels.png")
    second = read_png(tmp_path / "applied" / "labels.png")
    # the same component numbers for the same colours, not only the same partition
    assert (np.flipud(second) == first).mean() >= 0.98
    palette_a = np.unique(read_png(tmp_path / "fit" / "segmented.png").reshape(-1, 3), axis=0)
    palette_b = np.unique(read_png(tmp_path / "applied" / "segmented.png").reshape(-1, 3), axis=0)
    np.testing.assert_array_equal(palette_a, palette_b)
    # the library agrees: apply_model on the picture is model.predict on its pixels
    from emcli.model import MixtureModel

    loaded = MixtureModel.load(model)
    picture = pictures.read_image(str(tmp_path / "b.png"))
    applied = apply_model(picture, loaded)
    lab = pictures.srgb_to_lab(picture.colours().reshape(-1, 3))
    np.testing.assert_array_equal(applied.labels.ravel(), loaded.predict(lab))


def test_init_from_a_model_file(tmp_path: Path) -> None:
    Image.fromarray(noisy_rgb(regions())).save(tmp_path / "a.png")
    assert (
        run("segment", tmp_path / "a.png", "-k", 4, "--params", tmp_path / "m.json").exit_code == 0
    )
    result = run(
        "segment", tmp_path / "a.png", "-k", 4, "--init", tmp_path / "m.json",
        "--params", tmp_path / "m2.json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    refit = json.loads((tmp_path / "m2.json").read_text())
    assert refit["settings"]["init"] == "model"
    first = json.loads((tmp_path / "m.json").read_text())
    assert refit["log_likelihood"] >= first["log_likelihood"] - 1e-6 * abs(first["log_likelihood"])


def test_model_with_fit_options_is_a_usage_error(tmp_path: Path) -> None:
    Image.fromarray(noisy_rgb(regions())).save(tmp_path / "a.png")
    assert (
        run("segment", tmp_path / "a.png", "-k", 2, "--params", tmp_path / "m.json").exit_code == 0
    )
    result = run("segment", tmp_path / "a.png", "--model", tmp_path / "m.json", "-k", 3)
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: --model applies a fitted model")


def test_model_from_fit_is_refused(tmp_path: Path, classic_csv: Path) -> None:
    Image.fromarray(noisy_rgb(regions())).save(tmp_path / "a.png")
    assert run("fit", classic_csv, "-k", 2, "--params", tmp_path / "m.json").exit_code == 0
    result = run(
        "segment", tmp_path / "a.png", "--model", tmp_path / "m.json", "-o", tmp_path / "o"
    )
    assert result.exit_code == 1
    assert "not written by 'emcli segment'" in result.stderr
    assert not (tmp_path / "o").exists()


# ---------------------------------------------------------------------------- bad inputs
def _bad_files(tmp_path: Path) -> dict[str, Path]:
    good = tmp_path / "good.png"
    Image.fromarray(noisy_rgb(regions())).save(good)
    data = good.read_bytes()
    files = {
        "missing": tmp_path / "nope.png",
        "truncated": tmp_path / "cut.png",
        "text": tmp_path / "table.csv",
        "directory": tmp_path / "adir",
        "empty": tmp_path / "empty.png",
        "jpeg-truncated": tmp_path / "cut.jpg",
    }
    files["truncated"].write_bytes(data[: len(data) // 2])
    files["text"].write_text("x,y\n1,2\n")
    files["directory"].mkdir()
    files["empty"].write_bytes(b"")
    Image.fromarray(noisy_rgb(regions())).save(tmp_path / "full.jpg")
    jpeg = (tmp_path / "full.jpg").read_bytes()
    files["jpeg-truncated"].write_bytes(jpeg[: len(jpeg) // 3])
    return files


@pytest.mark.parametrize(
    "case", ["missing", "truncated", "text", "directory", "empty", "jpeg-truncated"]
)
def test_bad_image_is_one_error_line_and_no_output(tmp_path: Path, case: str) -> None:
    path = _bad_files(tmp_path)[case]
    out = tmp_path / "out"
    result = run("segment", path, "-k", 2, "-o", out, "--labels", tmp_path / "l.png")
    assert result.exit_code == 1, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert "Traceback" not in result.output and result.stdout == ""
    assert not out.exists() and not (tmp_path / "l.png").exists()


def test_more_components_than_distinct_colours(tmp_path: Path) -> None:
    flat = np.zeros((20, 20, 3), dtype=np.uint8)
    flat[:, 10:] = [200, 10, 10]
    flat[:5, :5] = [10, 200, 10]
    Image.fromarray(flat).save(tmp_path / "three.png")
    result = run("segment", tmp_path / "three.png", "-k", 4, "-o", tmp_path / "out")
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "Error: the image has only 3 distinct colours (non-transparent), fewer than -k 4; "
        "use at most -k 3"
    )
    assert not (tmp_path / "out").exists()
    ok = run("segment", tmp_path / "three.png", "-k", 3, "--labels", tmp_path / "l.png")
    assert ok.exit_code == 0, ok.output
    colour_ids = np.unique(flat.reshape(-1, 3), axis=0, return_inverse=True)[1]
    assert accuracy(read_png(tmp_path / "l.png"), colour_ids.reshape(20, 20)) == 1.0


def test_fully_transparent_image(tmp_path: Path) -> None:
    Image.fromarray(np.zeros((5, 5, 4), dtype=np.uint8)).save(tmp_path / "clear.png")
    result = run("segment", tmp_path / "clear.png", "-k", 2, "-o", tmp_path / "out")
    assert result.exit_code == 1
    assert "every pixel of the image is transparent" in result.stderr


def test_standard_input(tmp_path: Path) -> None:
    Image.fromarray(noisy_rgb(regions())).save(tmp_path / "a.png")
    data = (tmp_path / "a.png").read_bytes()
    result = run("segment", "-", "-k", 4, "--labels", tmp_path / "l.png", stdin=data)
    assert result.exit_code == 0, result.output
    assert accuracy(read_png(tmp_path / "l.png"), regions()) >= 0.99


def test_k_is_required_without_model(tmp_path: Path) -> None:
    result = run("segment", tmp_path / "a.png")
    assert result.exit_code == 2 and "-k" in result.stderr


def test_bad_boundary_colour(tmp_path: Path) -> None:
    Image.fromarray(noisy_rgb(regions())).save(tmp_path / "a.png")
    result = run("segment", tmp_path / "a.png", "-k", 2, "--boundary-colour", "nocolour")
    assert result.exit_code == 2 and "--boundary-colour" in result.stderr


def test_without_pillow_the_error_names_the_extra(tmp_path: Path, monkeypatch) -> None:
    for name in [m for m in sys.modules if m == "PIL" or m.startswith("PIL.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "PIL", None)
    result = run("segment", tmp_path / "a.png", "-k", 2, "-o", tmp_path / "out")
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "Error: reading and writing images needs Pillow: pip install 'emcli-mixture[image]'"
    )


def test_help_does_not_import_pillow() -> None:
    code = "import sys; from emcli.cli import cli; print('PIL' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.stdout.strip() == "False", out.stderr


def test_init_model_must_match_the_features(tmp_path: Path) -> None:
    Image.fromarray(noisy_rgb(regions())).save(tmp_path / "a.png")
    args = ["-k", 2, "--features", "rgb", "--params", tmp_path / "m.json"]
    assert run("segment", tmp_path / "a.png", *args).exit_code == 0
    init = ["--init", tmp_path / "m.json", "--labels", tmp_path / "l.png"]
    result = run("segment", tmp_path / "a.png", "-k", 2, "--features", "lab", *init)
    assert result.exit_code == 2
    assert "fitted on --features rgb, not lab" in result.stderr
    assert not (tmp_path / "l.png").exists()
    # without --features, the model's are used
    assert run("segment", tmp_path / "a.png", "-k", 2, *init).exit_code == 0


@pytest.mark.parametrize("n", [5000, 1_200_000])  # sorted, and the histogram of 24-bit codes
def test_distinct_colours_and_counts(n: int) -> None:
    from emcli.segment import _decode, _distinct_colours

    raw = np.random.default_rng(5).integers(0, 256, (n, 3)).astype(np.uint8)
    raw[: n // 2] = raw[n // 2 : 2 * (n // 2)]  # repeated colours
    distinct, row_of, counts = _distinct_colours(raw, 8)
    colours, inverse, expected = np.unique(raw, axis=0, return_inverse=True, return_counts=True)
    np.testing.assert_array_equal(_decode(distinct, 3, 8), colours)
    np.testing.assert_array_equal(row_of, inverse.ravel())
    np.testing.assert_array_equal(counts, expected)

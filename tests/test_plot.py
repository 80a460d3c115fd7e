"""emcli plot and emcli.plot: pictures rendered headless (Agg) and checked as images.

References are independent of the plotting code: image sizes are read from the PNG header
and the SVG root element, colours from the decoded pixels; the principal axes are checked
against scikit-learn's PCA, ellipses against the Mahalanobis distance, the density curve
against scipy.stats.norm, and the selection and convergence lines against the model file.
"""

from __future__ import annotations

import re
import struct
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("matplotlib")

from clirun import run

import emcli
from emcli import plot as eplot
from emcli.em.selection import select, selection_record

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


# ---------------------------------------------------------------------------- fixtures
def _blobs(rng: np.random.Generator, means: np.ndarray, n_per: int, scale: float) -> np.ndarray:
    d = means.shape[1]
    parts = []
    for m in means:
        a = rng.normal(size=(d, d)) * 0.3 + np.eye(d)
        parts.append(m + scale * rng.normal(size=(n_per, d)) @ a)
    return np.vstack(parts)


@pytest.fixture(scope="module")
def data3(tmp_path_factory) -> tuple[np.ndarray, Path]:
    """Three well separated clusters in three columns a, b, c (and the CSV)."""
    rng = np.random.default_rng(1)
    x = _blobs(rng, np.array([[0.0, 0, 0], [6, 1, -2], [1, 7, 3]]), 60, 1.0)
    path = tmp_path_factory.mktemp("plot") / "three.csv"
    np.savetxt(path, x, delimiter=",", header="a,b,c", comments="", fmt="%.6f")
    return x, path


@pytest.fixture(scope="module")
def model3(data3, tmp_path_factory):
    x, _ = data3
    # Random starts: they differ, so the convergence plot has more than one curve to show.
    model = emcli.fit(x, 3, columns=["a", "b", "c"], n_restarts=4, init="random", seed=0)
    path = tmp_path_factory.mktemp("plot") / "three.json"
    model.save(path)
    return model, path


@pytest.fixture(scope="module")
def model1(tmp_path_factory):
    """Two normals in one column, the classic example."""
    rng = np.random.default_rng(2)
    x = np.concatenate([rng.normal(0, 1, 150), rng.normal(5, 1, 350)])[:, None]
    folder = tmp_path_factory.mktemp("plot")
    np.savetxt(folder / "one.csv", x, header="x", comments="", fmt="%.6f")
    model = emcli.fit(x, 2, columns=["x"], n_restarts=2, seed=0)
    model.save(folder / "one.json")
    return model, folder / "one.json", folder / "one.csv", x


@pytest.fixture(scope="module")
def selection_model(tmp_path_factory):
    """A model holding a selection over k 1..3 x (full, diag, spherical), 2 columns."""
    rng = np.random.default_rng(3)
    x = _blobs(rng, np.array([[0.0, 0], [5, 4]]), 70, 1.0)
    winner, candidates = select(
        x, ["u", "v"], [1, 2, 3], ["full", "diag", "spherical"], jobs=1, n_restarts=2, seed=0
    )
    model = winner.model
    model.extra["selection"] = selection_record(winner, candidates, "bic")
    path = tmp_path_factory.mktemp("plot") / "selection.json"
    model.save(path)
    return model, path


# ---------------------------------------------------------------------------- image readers
def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, "not a PNG file"
    length, chunk = struct.unpack(">I4s", data[8:16])
    assert chunk == b"IHDR" and length == 13
    return struct.unpack(">II", data[16:24])


def svg_size(path: Path) -> tuple[float, float]:
    root = ET.parse(path).getroot()
    assert root.tag.endswith("svg")
    return tuple(float(root.get(a).removesuffix("pt")) for a in ("width", "height"))


def hex_rgb(colour: str) -> np.ndarray:
    return np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)], dtype=float) / 255


def colour_pixels(path: Path, colour: str, tol: float = 0.03) -> int:
    """How many pixels of the PNG are ``colour`` (within tol per channel)."""
    from matplotlib.image import imread

    rgb = imread(str(path))[..., :3]
    return int(np.all(np.abs(rgb - hex_rgb(colour)) <= tol, axis=-1).sum())


def distinct_colours(path: Path, min_pixels: int = 20) -> int:
    """Distinct 8-bit colours covering at least min_pixels pixels each."""
    from matplotlib.image import imread

    rgb = np.round(imread(str(path))[..., :3] * 255).astype(np.int64)
    codes = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    _, counts = np.unique(codes, return_counts=True)
    return int((counts >= min_pixels).sum())


# ---------------------------------------------------------------------------- every kind, PNG + SVG
@pytest.fixture(scope="module")
def levels_model(tmp_path_factory):
    """A latent class model of the carcinoma ratings (categorical family)."""
    frame = pd.read_csv(Path(__file__).parent / "data" / "carcinoma.csv")
    model = emcli.fit(frame, 2, family="categorical", n_restarts=2)
    path = tmp_path_factory.mktemp("plot") / "lca.json"
    model.save(path)
    return model, path


def _kind_cases(model3, model1, selection_model, data3, levels_model=None):
    _, path3 = model3
    _, path1, csv1, _ = model1
    _, path_sel = selection_model
    _, csv3 = data3
    p = eplot.PALETTE
    return {
        "clusters": ([path3, csv3, "--kind", "clusters"], p[:3]),
        "convergence": ([path3, "--kind", "convergence"], (p[3], p[5])),
        "selection": ([path_sel, "--kind", "selection"], (p[0], p[2], p[3])),
        "density": ([path1, csv1, "--kind", "density"], (p[0], p[1], "#C8C8C8")),
        "levels": ([levels_model and levels_model[1], "--kind", "levels"], p[:2]),
    }


@pytest.mark.parametrize("kind", eplot.KINDS)
def test_each_kind_renders_png_of_requested_size_and_colours(
    kind, model3, model1, selection_model, data3, levels_model, tmp_path, capsys
):
    args, colours = _kind_cases(model3, model1, selection_model, data3, levels_model)[kind]
    out = tmp_path / f"{kind}.png"
    code, stdout, stderr = run("plot", *args, "-o", out, "--size", "6x4.5", "--dpi", 80)
    assert (code, stdout, stderr) == (0, "", "")
    assert png_size(out) == (480, 360)
    for colour in colours:
        assert colour_pixels(out, colour) >= 15, f"{kind}: colour {colour} missing"
    assert distinct_colours(out) >= 5


@pytest.mark.parametrize("kind", eplot.KINDS)
def test_each_kind_renders_svg_of_requested_size_and_colours(
    kind, model3, model1, selection_model, data3, levels_model, tmp_path, capsys
):
    args, colours = _kind_cases(model3, model1, selection_model, data3, levels_model)[kind]
    out = tmp_path / f"{kind}.svg"
    code, stdout, _ = run("plot", *args, "-o", out, "--width", 5, "--height", 4)
    assert (code, stdout) == (0, "")
    assert svg_size(out) == (5 * 72, 4 * 72)
    text = out.read_text().lower()
    found = set(re.findall(r"#[0-9a-f]{6}", text))
    assert {c.lower() for c in colours} <= found
    assert len(found) >= 4


def test_pdf_and_pair_grid(model3, data3, tmp_path, capsys):
    _, path = model3
    _, csv = data3
    out = tmp_path / "pairs.pdf"
    code, _, _ = run("plot", path, csv, "--pairs", "-o", out)
    assert code == 0
    assert out.read_bytes()[:5] == b"%PDF-"
    fig = eplot.plot(model3[0], "clusters", data3[0], pairs=True)
    assert len(fig.axes) == 9
    assert [ax.get_xlabel() for ax in fig.axes[6:9]] == ["a", "b", "c"]


def test_default_size_and_dpi(model3, tmp_path, capsys):
    out = tmp_path / "c.png"
    assert run("plot", model3[1], "-o", out)[0] == 0
    assert png_size(out) == (700, 500)
    out2 = tmp_path / "d.png"
    # --width alone keeps the default 7:5 aspect ratio.
    assert run("plot", model3[1], "-o", out2, "--width", 3.5, "--dpi", 40)[0] == 0
    assert png_size(out2) == (140, 100)


@pytest.mark.parametrize("fmt", ["png", "svg", "pdf"])
def test_same_input_gives_the_same_bytes(model3, data3, tmp_path, capsys, fmt):
    outs = [tmp_path / f"{i}.{fmt}" for i in range(2)]
    for out in outs:
        assert run("plot", model3[1], data3[1], "-o", out)[0] == 0
    assert outs[0].read_bytes() == outs[1].read_bytes()


def test_large_inputs_show_a_fixed_sample_of_rows(model3, data3, monkeypatch):
    monkeypatch.setattr(eplot, "MAX_POINTS", 50)
    fig = eplot.plot_clusters(model3[0], data3[0])
    ax = fig.axes[0]
    assert sum(len(c.get_offsets()) for c in ax.collections) == 50
    assert "50 of 180 rows shown" in ax.get_title()


def test_rows_with_missing_values_are_left_out_and_said(model3, data3):
    x = data3[0].copy()
    x[[0, 5, 7], [0, 1, 2]] = np.nan
    ax = eplot.plot_clusters(model3[0], x).axes[0]
    assert sum(len(c.get_offsets()) for c in ax.collections) == x.shape[0] - 3
    assert "3 rows with missing values left out" in ax.get_title()
    ax = eplot.plot_density(model3[0], x, column="b").axes[0]
    assert "1 missing left out" in ax.get_title() and ax.get_xlabel() == "b"


# ---------------------------------------------------------------------------- geometry
def test_principal_axes_match_sklearn_pca(data3):
    from sklearn.decomposition import PCA

    x, _ = data3
    center, axes, share = eplot.principal_axes(x)
    pca = PCA(n_components=2).fit(x)
    np.testing.assert_allclose(center, pca.mean_, atol=1e-12)
    np.testing.assert_allclose(share, pca.explained_variance_ratio_, rtol=1e-10)
    for i in range(2):  # same axis up to its sign
        assert abs(abs(axes[:, i] @ pca.components_[i]) - 1) < 1e-10


@pytest.mark.parametrize("radius", [1.0, 2.0])
def test_ellipse_boundary_is_at_mahalanobis_radius(radius):
    from matplotlib.patches import Ellipse

    rng = np.random.default_rng(4)
    a = rng.normal(size=(2, 2))
    cov = a @ a.T + 0.1 * np.eye(2)
    mean = np.array([1.5, -2.0])
    width, height, angle = eplot.ellipse_geometry(cov, radius)
    patch = Ellipse(tuple(mean), width, height, angle=angle)
    boundary = patch.get_patch_transform().transform(patch.get_path().vertices)
    diff = boundary - mean
    maha = np.einsum("ij,ij->i", diff, np.linalg.solve(cov, diff.T).T)
    # Bezier control points lie slightly off the curve; the on-curve ones are every third.
    np.testing.assert_allclose(np.sqrt(maha[::3]), radius, rtol=1e-9)


def test_clusters_projection_places_means_and_labels(model3, data3):
    from matplotlib.patches import Ellipse
    from sklearn.decomposition import PCA

    model, _ = model3
    x, _ = data3
    fig = eplot.plot_clusters(model, x)
    ax = fig.axes[0]
    assert ax.get_xlabel().startswith("PC1 (") and "% of variance)" in ax.get_xlabel()
    pca = PCA(n_components=2).fit(x)
    signs = np.sign(np.sum(eplot.principal_axes(x)[1] * pca.components_.T, axis=0))
    expected = pca.transform(model.means) * signs
    ellipses = [p for p in ax.patches if isinstance(p, Ellipse)]
    assert len(ellipses) == 2 * model.n_components
    centres = np.array([e.center for e in ellipses[::2]])
    np.testing.assert_allclose(centres, expected, atol=1e-9)
    # Each scatter holds the rows of one label; together, every row once.
    sizes = [len(c.get_offsets()) for c in ax.collections]
    assert sizes == list(np.bincount(model.predict(x), minlength=model.n_components))


def test_clusters_with_chosen_columns(model3, data3):
    fig = eplot.plot_clusters(model3[0], data3[0], x_column="c", y_column="a")
    ax = fig.axes[0]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("c", "a")
    offsets = np.vstack([c.get_offsets() for c in ax.collections])
    np.testing.assert_allclose(np.sort(offsets[:, 0]), np.sort(data3[0][:, 2]))


def test_density_curve_is_the_mixture_marginal(model1):
    from scipy.stats import norm

    model, _, _, x = model1
    fig = eplot.plot_density(model, x)
    ax = fig.axes[0]
    (mixture,) = [line for line in ax.lines if line.get_label() == "mixture density"]
    grid, values = mixture.get_data()
    sd = np.sqrt(model.covariances.reshape(model.n_components, -1)[:, 0])
    expected = sum(
        w * norm.pdf(grid, m, s)
        for w, m, s in zip(model.weights, model.means[:, 0], sd, strict=True)
    )
    np.testing.assert_allclose(values, expected, rtol=1e-10, atol=1e-300)
    # Histogram bars are a density too: their area is 1.
    area = sum(p.get_width() * p.get_height() for p in ax.patches if hasattr(p, "get_width"))
    assert area == pytest.approx(1.0, rel=1e-9)
    assert ax.get_xlabel() == "x"


def test_selection_lines_follow_the_table(selection_model):
    model, _ = selection_model
    record = model.extra["selection"]
    fig = eplot.plot_selection(model)
    ax = fig.axes[0]
    for kind in ("full", "diag", "spherical"):
        (line,) = [ln for ln in ax.lines if ln.get_label() == kind]
        rows = sorted(
            (r for r in record["table"] if r["covariance"] == kind), key=lambda r: r["components"]
        )
        np.testing.assert_allclose(line.get_ydata(), [r["bic"] for r in rows])
    (ring,) = [ln for ln in ax.lines if ln.get_label().startswith("best")]
    best = min((r for r in record["table"] if r["bic"] is not None), key=lambda r: r["bic"])
    assert ring.get_xdata()[0] == best["components"]
    assert (best["components"], best["covariance"]) == (
        record["winner"]["components"],
        record["winner"]["covariance"],
    )
    assert ax.get_ylabel() == "BIC (lower is better)"


def test_selection_shows_degenerate_candidates_as_gaps(selection_model):
    import copy

    model = copy.deepcopy(selection_model[0])
    row = next(
        r
        for r in model.extra["selection"]["table"]
        if r["covariance"] == "diag" and r["components"] == 2
    )
    row.update(status="degenerate", bic=None, aic=None, icl=None)
    ax = eplot.plot_selection(model).axes[0]
    (line,) = [ln for ln in ax.lines if ln.get_label() == "diag"]
    assert np.isnan(line.get_ydata()[1]) and not np.isnan(line.get_ydata()[0])
    (hollow,) = [ln for ln in ax.lines if ln.get_label().startswith("no value")]
    assert list(hollow.get_xdata()) == [2] and hollow.get_markerfacecolor() == "white"


def test_convergence_highlights_the_kept_start(model3):
    model, _ = model3
    fig = eplot.plot_convergence(model)
    top = fig.axes[0]
    (best,) = [ln for ln in top.lines if ln.get_label().startswith("kept start")]
    np.testing.assert_allclose(best.get_ydata(), model.history)
    others = [ln for ln in top.lines if ln.get_color() == eplot.PALETTE[5]]
    assert len(others) == len(model.starts) - 1
    assert {tuple(ln.get_ydata()) for ln in others} == {
        tuple(s["history"]) for s in model.starts if s["start"] != model.extra["best_start"]
    }
    assert best.get_linewidth() > max(ln.get_linewidth() for ln in others)


# ---------------------------------------------------------------------------- default kind
def test_default_kind_follows_what_the_model_holds(model3, model1, selection_model):
    assert eplot.default_kind(selection_model[0], has_data=True) == "selection"
    assert eplot.default_kind(model3[0], has_data=True) == "clusters"
    assert eplot.default_kind(model3[0], has_data=False) == "convergence"
    assert eplot.default_kind(model1[0], has_data=True) == "density"


# ---------------------------------------------------------------------------- errors
def test_missing_matplotlib_names_the_extra(model3, tmp_path, capsys, monkeypatch):
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    out = tmp_path / "x.png"
    code, stdout, stderr = run("plot", model3[1], "-o", out)
    assert code == 1 and stdout == ""
    assert stderr.count("\n") == 1 and stderr.startswith("Error: ")
    assert 'pip install "emcli-mixture[plot]"' in stderr
    assert not out.exists()


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--kind", "selection"], "holds no model selection"),
        (["--kind", "clusters"], "needs the data"),
        (["--kind", "convergence", "--column", "a"], "--column applies to --kind density"),
        (["--size", "5x4", "--width", "3"], "either --size"),
        (["--size", "big"], "WIDTHxHEIGHT"),
        (["--size", "2x1.5"], "too small"),
    ],
)
def test_bad_requests_are_usage_errors(model3, tmp_path, capsys, extra, message):
    out = tmp_path / "x.png"
    out.write_bytes(b"old")
    code, stdout, stderr = run("plot", model3[1], "-o", out, *extra)
    assert (code, stdout) == (2, "")
    assert message in stderr and stderr.startswith("Error: ")
    assert out.read_bytes() == b"old"  # an earlier file is left as it was


def test_bad_extension_and_unknown_column(model3, data3, tmp_path, capsys):
    code, _, stderr = run("plot", model3[1], "-o", tmp_path / "x.gif")
    assert code == 2 and ".png, .svg or .pdf" in stderr
    code, _, stderr = run("plot", model3[1], data3[1], "-o", tmp_path / "x.png", "--x", "zz")
    assert code == 2 and "--x 'zz' is not a column" in stderr and "a, b, c" in stderr


def test_clusters_of_one_column_points_to_density(model1, tmp_path, capsys):
    _, path, csv, _ = model1
    code, _, stderr = run("plot", path, csv, "--kind", "clusters", "-o", tmp_path / "x.png")
    assert code == 2 and "use --kind density" in stderr


def test_input_without_the_model_columns_is_a_data_error(model3, tmp_path, capsys):
    other = tmp_path / "other.csv"
    other.write_text("p,q\n1,2\n3,4\n")
    code, _, stderr = run("plot", model3[1], other, "-o", tmp_path / "x.png")
    assert code == 1 and "unknown column" in stderr


def test_plot_help_has_an_example(capsys):
    code, stdout, _ = run("plot", "--help")
    assert code == 0 and "Example:" in stdout and "--kind" in stdout

"""Images in and out: read a picture into pixel colours, convert colour spaces, render
label, segmented and overlay pictures, and encode them as PNG.

Pillow is an optional dependency (``pip install 'emcli-mixture[image]'``), imported only
inside the functions that read or write files; the colour conversions and renderings are
numpy only.

Colours are on the 0..255 scale whatever the input's depth (16-bit channels are scaled by
255/65535).  A pixel whose alpha is 0 is *transparent*: it takes no part in a fit and gets
the background value in every output (``BACKGROUND``).
"""

from __future__ import annotations

import io
import struct
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any

import numpy as np
from numpy.typing import NDArray

from .errors import DataError, UsageError

Array = NDArray[np.float64]
INSTALL_HINT = "pip install 'emcli-mixture[image]'"
# The feature spaces of a pixel's colour, and the columns each gives.
FEATURES = ("rgb", "lab", "gray")
COLUMNS = {"rgb": ("r", "g", "b"), "lab": ("L", "a", "b"), "gray": ("gray",)}
XY_COLUMNS = ("x", "y")
# The labels.png value of a transparent pixel: the largest value of the image's depth
# (255 in an 8-bit labels image, whose components are 0..254 since k <= 255 there).
BACKGROUND = {8: 255, 16: 65535}

# sRGB (IEC 61966-2-1) linear RGB -> CIE XYZ, D65 white; the white point is its row sums,
# so sRGB white is exactly L* = 100, a* = b* = 0.
_RGB_TO_XYZ = np.array(
    [
        [0.4124564, 0.3575761, 0.1804375],
        [0.2126729, 0.7151522, 0.0721750],
        [0.0193339, 0.1191920, 0.9503041],
    ]
)
_XYZ_TO_RGB = np.linalg.inv(_RGB_TO_XYZ)
_WHITE = _RGB_TO_XYZ.sum(axis=1)
_DELTA = 6.0 / 29.0
# ITU-R BT.601 luma, the weights of Pillow's convert("L").
_LUMA = np.array([0.299, 0.587, 0.114])


def pillow() -> Any:
    """The PIL package, or a DataError that names the extra to install."""
    try:
        import PIL.Image
        import PIL.ImageOps
    except ImportError:
        raise DataError(f"reading and writing images needs Pillow: {INSTALL_HINT}") from None
    return PIL


# ---------------------------------------------------------------------------- reading
@dataclass
class Picture:
    """A decoded image.

    Attributes:
        raw: the channel values as stored, shape (height, width, channels), uint8 or uint16;
            channels is 1 (grayscale) or 3 (RGB).
        depth: bits per channel of ``raw`` (8 or 16).
        alpha: the alpha channel (uint8, 0..255) of shape (height, width), or None.
        mode: the Pillow mode of the file ("RGB", "P", "I;16", ...).
        notes: remarks for the user (first frame of an animation, orientation applied).
    """

    raw: NDArray[Any]
    depth: int
    alpha: NDArray[np.uint8] | None = None
    mode: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def height(self) -> int:
        return int(self.raw.shape[0])

    @property
    def width(self) -> int:
        return int(self.raw.shape[1])

    @property
    def is_gray(self) -> bool:
        return self.raw.shape[2] == 1

    @property
    def opaque(self) -> NDArray[np.bool_]:
        """Pixels that take part in the fit, shape (height, width): alpha > 0."""
        if self.alpha is None:
            return np.ones((self.height, self.width), dtype=bool)
        return self.alpha > 0

    @property
    def scale(self) -> float:
        """Factor from ``raw`` to the 0..255 scale."""
        return 255.0 / float((1 << self.depth) - 1)

    def colours(self) -> Array:
        """Every pixel's colour on the 0..255 scale, shape (height, width, channels)."""
        return self.raw.astype(np.float64) * self.scale

    def rgb8(self) -> NDArray[np.uint8]:
        """The picture as 8-bit RGB, shape (height, width, 3) (grayscale repeated)."""
        values = np.rint(self.colours()).astype(np.uint8)
        return np.repeat(values, 3, axis=2) if self.is_gray else values


def read_image(source: str | bytes) -> Picture:
    """Decode an image file (a path, or the bytes of a file) with Pillow.

    PNG, JPEG, TIFF, BMP, WebP, GIF and whatever else Pillow reads; EXIF orientation is
    applied; palette images are expanded (their transparency kept); 16-bit grayscale keeps
    16 bits; the first frame of an animation is used.

    Raises:
        DataError: the file is missing, unreadable, truncated or not an image.
    """
    pil = pillow()
    name = "standard input" if isinstance(source, bytes) else f"'{source}'"
    stream: Any = io.BytesIO(source) if isinstance(source, bytes) else source
    try:
        with warnings.catch_warnings():
            # A very large picture is the user's own file, not an attack on a server.
            warnings.simplefilter("ignore", pil.Image.DecompressionBombWarning)
            with pil.Image.open(stream) as image:
                n_frames = int(getattr(image, "n_frames", 1))
                image.load()
                oriented = pil.ImageOps.exif_transpose(image)
                picture = _from_pillow(oriented if oriented is not None else image)
                picture.mode = image.mode
    except FileNotFoundError:
        raise DataError(f"cannot read {name}: no such file") from None
    except IsADirectoryError:
        raise DataError(f"cannot read {name}: it is a directory; give an image file") from None
    except PermissionError:
        raise DataError(f"cannot read {name}: permission denied") from None
    except pil.UnidentifiedImageError:
        raise DataError(
            f"{name} is not an image Pillow can read (PNG, JPEG, TIFF, BMP, WebP, GIF, ...)"
        ) from None
    except pil.Image.DecompressionBombError as exc:
        raise DataError(f"{name} is too large to decode: {exc}") from None
    except (OSError, SyntaxError, ValueError, EOFError, struct.error) as exc:
        raise DataError(f"cannot decode {name} (truncated or corrupt?): {exc}") from None
    if picture.height == 0 or picture.width == 0:
        raise DataError(f"{name} has no pixels")
    if n_frames > 1:
        picture.notes.append(f"{name} has {n_frames} frames; the first one is segmented")
    return picture


def _from_pillow(image: Any) -> Picture:
    """A loaded Pillow image as a ``Picture`` (every mode to gray or RGB, alpha kept)."""
    mode = image.mode
    if mode.startswith("I"):  # 16-bit grayscale ("I;16", "I;16B", ...) or 32-bit "I"
        values = np.asarray(image)
        if values.min() < 0 or values.max() > 65535:
            raise ValueError("32-bit integer pixel values beyond 16 bits are not supported")
        return Picture(values.astype(np.uint16)[:, :, None], 16)
    if mode == "F":
        raise ValueError(
            "floating-point pixel values are not supported; save the image with 8 or 16 "
            "bits per channel"
        )
    if mode in ("1", "L", "LA", "La"):
        gray = np.asarray(image.convert("LA"))
        return Picture(gray[:, :, :1].copy(), 8, _alpha_or_none(gray[:, :, 1]))
    has_alpha = mode in ("RGBA", "RGBa", "PA") or (mode == "P" and "transparency" in image.info)
    values = np.asarray(image.convert("RGBA" if has_alpha else "RGB"))
    if has_alpha:
        return Picture(values[:, :, :3].copy(), 8, _alpha_or_none(values[:, :, 3]))
    return Picture(values.copy(), 8)


def _alpha_or_none(alpha: NDArray[np.uint8]) -> NDArray[np.uint8] | None:
    """The alpha channel, or None when every pixel is fully opaque."""
    return None if bool((alpha == 255).all()) else alpha.copy()


# ---------------------------------------------------------------------------- colour spaces
def srgb_to_lab(rgb: Array) -> Array:
    """sRGB on the 0..255 scale -> CIELAB (D65), shape (..., 3) -> (..., 3).

    L* is 0..100; a*, b* are about -128..128.  sRGB's transfer curve (IEC 61966-2-1), its
    D65 matrix to XYZ, then CIE 1976 L*a*b* with the linear segment near black.
    """
    c = np.asarray(rgb, dtype=np.float64) / 255.0
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    xyz = linear @ _RGB_TO_XYZ.T / _WHITE
    f = np.where(xyz > _DELTA**3, np.cbrt(xyz), xyz / (3 * _DELTA**2) + 4.0 / 29.0)
    lab = np.empty_like(f)
    lab[..., 0] = 116.0 * f[..., 1] - 16.0
    lab[..., 1] = 500.0 * (f[..., 0] - f[..., 1])
    lab[..., 2] = 200.0 * (f[..., 1] - f[..., 2])
    return lab


def lab_to_srgb(lab: Array) -> Array:
    """CIELAB (D65) -> sRGB on the 0..255 scale (clipped to the gamut), the inverse of
    ``srgb_to_lab``."""
    lab = np.asarray(lab, dtype=np.float64)
    fy = (lab[..., 0] + 16.0) / 116.0
    f = np.stack([fy + lab[..., 1] / 500.0, fy, fy - lab[..., 2] / 200.0], axis=-1)
    xyz = np.where(f > _DELTA, f**3, 3 * _DELTA**2 * (f - 4.0 / 29.0)) * _WHITE
    linear = np.clip(xyz @ _XYZ_TO_RGB.T, 0.0, 1.0)
    c = np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear ** (1 / 2.4) - 0.055)
    return np.clip(c, 0.0, 1.0) * 255.0


def rgb_to_gray(rgb: Array) -> Array:
    """Luma (ITU-R BT.601, as Pillow's convert("L")) on the 0..255 scale, (..., 3) -> (...)."""
    return np.asarray(rgb, dtype=np.float64) @ _LUMA


def colour_features(colours: Array, features: str) -> Array:
    """Pixel colours (n, 1 or 3) on the 0..255 scale as the columns of ``features``."""
    if features not in FEATURES:
        raise UsageError(f"{{features}} must be one of {', '.join(FEATURES)}, not {features!r}")
    if colours.shape[1] == 1:
        if features != "gray":
            raise UsageError(
                f"the image is grayscale: it has no colour for {{features}} {features}; "
                "use {features} gray"
            )
        return colours
    if features == "rgb":
        return colours
    if features == "lab":
        return srgb_to_lab(colours)
    return rgb_to_gray(colours)[:, None]


def feature_colours(values: Array, features: str) -> Array:
    """Feature-space colours (k, d) back to display colours on the 0..255 scale: (k, 3) for
    rgb and lab, (k, 1) for gray."""
    if features == "lab":
        return lab_to_srgb(values)
    return np.clip(values, 0.0, 255.0)


# ---------------------------------------------------------------------------- rendering
def labels_depth(n_components: int) -> int:
    """8 bits for labels.png when every component and the background fit in a byte."""
    return 8 if n_components <= 255 else 16


def render_labels(labels: NDArray[np.intp], n_components: int) -> NDArray[Any]:
    """labels.png's pixels: the component index, ``BACKGROUND`` where ``labels`` is -1."""
    depth = labels_depth(n_components)
    out = labels.astype(np.uint8 if depth == 8 else np.uint16)
    out[labels < 0] = BACKGROUND[depth]
    return out


def render_segmented(
    labels: NDArray[np.intp], palette: Array, alpha: NDArray[np.uint8] | None
) -> NDArray[np.uint8]:
    """Each pixel painted with its component's colour (``palette``: (k, 1 or 3) on the
    0..255 scale); transparent pixels stay transparent (the input's alpha is kept)."""
    colours = np.rint(np.clip(palette, 0, 255)).astype(np.uint8)
    out = colours[np.maximum(labels, 0)]
    out[labels < 0] = 0
    return _add_alpha(out, alpha)


def boundaries(labels: NDArray[np.intp]) -> NDArray[np.bool_]:
    """Pixels on a region boundary: a 4-neighbour to the right or below has another label
    (transparent pixels, -1, have none)."""
    edge = np.zeros(labels.shape, dtype=bool)
    opaque = labels >= 0
    right = (labels[:, :-1] != labels[:, 1:]) & opaque[:, :-1] & opaque[:, 1:]
    down = (labels[:-1, :] != labels[1:, :]) & opaque[:-1, :] & opaque[1:, :]
    edge[:, :-1] |= right
    edge[:-1, :] |= down
    return edge


def render_overlay(
    picture: Picture, labels: NDArray[np.intp], colour: tuple[int, int, int]
) -> NDArray[np.uint8]:
    """The picture (as 8-bit RGB, its alpha kept) with region boundaries in ``colour``."""
    out = picture.rgb8()
    out[boundaries(labels)] = np.asarray(colour, dtype=np.uint8)
    return _add_alpha(out, picture.alpha)


def _add_alpha(values: NDArray[np.uint8], alpha: NDArray[np.uint8] | None) -> NDArray[np.uint8]:
    if alpha is None:
        return values
    return np.concatenate([values, alpha[:, :, None]], axis=2)


def parse_colour(spec: str) -> tuple[int, int, int]:
    """A colour name or #rrggbb as an RGB triple (Pillow's ImageColor)."""
    pillow()
    from PIL import ImageColor

    try:
        value = ImageColor.getrgb(spec)
    except ValueError:
        raise UsageError(
            f"{{boundary_colour}} {spec!r} is not a colour; give a name (red, white) or #rrggbb"
        ) from None
    return int(value[0]), int(value[1]), int(value[2])


# ---------------------------------------------------------------------------- writing
def png_writer(values: NDArray[Any]) -> Callable[[IO[bytes]], None]:
    """A writer (``OutputSet.add``) of ``values`` as PNG: (h, w) uint8 or uint16 gray,
    (h, w, 2) gray + alpha, (h, w, 3) RGB, (h, w, 4) RGBA."""
    pil = pillow()
    if values.ndim == 3 and values.shape[2] == 1:
        values = values[:, :, 0]
    image = pil.Image.fromarray(np.ascontiguousarray(values))  # mode from dtype and shape

    def write(handle: IO[bytes]) -> None:
        image.save(handle, format="PNG")

    return write

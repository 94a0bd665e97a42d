"""What image subtasks mean, and the measurements that tools and checks share.

The vocabulary (named colours, shapes, text positions, crop regions, each subtask type's
parameters) and the measurements (hue labels, foreground, noise, sharpness, text masks).
The tools in :mod:`.ops` and the checks in :mod:`.verify` both build on this module.

OCR (``pytesseract`` and the ``tesseract`` program) is optional; without it the text
checks use pixel counts only.
"""

from __future__ import annotations

import functools
import re
import shutil
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from toolpath.errors import MissingDependencyError, ToolArgumentsError, ToolError

try:
    import cv2
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise MissingDependencyError(
        "the image tools need OpenCV and Pillow: pip install opencv-python-headless pillow"
    ) from exc

Image = npt.NDArray[Any]
"""An RGB image: ``uint8``, shape ``(H, W, 3)`` (typed loosely, as OpenCV returns it)."""
Mask = npt.NDArray[Any]
"""A boolean mask, shape ``(H, W)``."""
Box = tuple[int, int, int, int]
"""``(x, y, w, h)`` in pixels."""

COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 20, 20), "orange": (255, 128, 0), "yellow": (240, 220, 0),
    "green": (30, 180, 30), "cyan": (0, 200, 210), "blue": (30, 60, 220),
    "purple": (140, 40, 200), "magenta": (220, 30, 190),
    "black": (0, 0, 0), "white": (255, 255, 255), "gray": (128, 128, 128),
}  # fmt: skip
"""Named colours (RGB). The first eight are the chromatic ones, told apart by hue."""
HUES: dict[str, int] = {
    n: int(cv2.cvtColor(np.array([[c]], np.uint8), cv2.COLOR_RGB2HSV)[0, 0, 0])
    for n, c in list(COLORS.items())[:8]
}
"""OpenCV hue (0-179) of each chromatic colour."""
SHAPES = {"circle": "circle", "disk": "circle", "disc": "circle", "square": "square",
          "rectangle": "square", "box": "square", "triangle": "triangle"}  # fmt: skip
"""Shape words and the shape each names."""
POSITIONS: dict[str, tuple[float, float, float, float]] = {
    "top": (0, 0, 1, 0.3), "bottom": (0, 0.7, 1, 1), "center": (0, 0.3, 1, 0.7),
    "top-left": (0, 0, 0.6, 0.3), "top-right": (0.4, 0, 1, 0.3),
    "bottom-left": (0, 0.7, 0.6, 1), "bottom-right": (0.4, 0.7, 1, 1),
}  # fmt: skip
"""Text positions and the band ``(x0, y0, x1, y1)`` (fractions) the text must land in."""
REGIONS: dict[str, tuple[float, float, float, float]] = {
    "left half": (0, 0, 0.5, 1), "right half": (0.5, 0, 1, 1), "top half": (0, 0, 1, 0.5),
    "bottom half": (0, 0.5, 1, 1), "center": (0.25, 0.25, 0.75, 0.75),
    "top-left quarter": (0, 0, 0.5, 0.5), "top-right quarter": (0.5, 0, 1, 0.5),
    "bottom-left quarter": (0, 0.5, 0.5, 1), "bottom-right quarter": (0.5, 0.5, 1, 1),
}  # fmt: skip
"""Named crop regions ``(x0, y0, x1, y1)`` as fractions of the image."""

_S = {"type": "string"}
_TARGET = {"target": {**_S, "description": "the object, e.g. 'red circle', 'triangle', 'face'"}}
SUBTASK_SCHEMAS: dict[str, dict[str, Any]] = {
    "locate": {"properties": _TARGET, "required": ["target"]},
    "segment": {"properties": _TARGET, "required": ["target"]},
    "recolor": {"properties": {**_TARGET, "color": {**_S, "enum": list(COLORS)}}, "required": ["target", "color"]},
    "remove": {"properties": _TARGET, "required": ["target"]},
    "remove_text": {"properties": {}, "required": []},
    "add_text": {"properties": {"text": _S, "position": {**_S, "enum": list(POSITIONS)}, "color": _S}, "required": ["text"]},
    "crop": {"properties": {"region": {"description": f"[x, y, w, h] or one of {list(REGIONS)}"}}, "required": ["region"]},
    "resize": {"properties": {"width": {"type": "integer"}, "height": {"type": "integer"}, "scale": {"type": "number"}}, "required": []},
    "rotate": {"properties": {"angle": {"type": "number", "description": "degrees clockwise"}}, "required": ["angle"]},
    "denoise": {"properties": {}, "required": []},
    "sharpen": {"properties": {"amount": {"type": "number"}}, "required": []},
    "blur_background": {"properties": _TARGET, "required": ["target"]},
}  # fmt: skip
"""Each subtask type's parameters (JSON Schema ``properties`` and ``required``)."""


def validate_params(subtask: str, params: Mapping[str, Any]) -> None:
    """:class:`ToolArgumentsError` for an unknown subtask type or a missing parameter."""
    if subtask not in SUBTASK_SCHEMAS:
        known = ", ".join(SUBTASK_SCHEMAS)
        raise ToolArgumentsError(f"unknown subtask type {subtask!r}; known: {known}")
    missing = [p for p in SUBTASK_SCHEMAS[subtask]["required"] if params.get(p) is None]
    if missing:
        raise ToolArgumentsError(f"{subtask} needs {', '.join(missing)}")


# --- vocabulary helpers ----------------------------------------------------------------------


def key(target: str) -> str:
    """The mask key for a target phrase: lower case, single spaces, no leading "the"."""
    words = str(target).lower().split()
    return " ".join(words[1:] if words[:1] == ["the"] else words)


def parse_target(target: str) -> tuple[str | None, str | None]:
    """``(colour, shape)`` named in a target phrase, e.g. ``("red", "circle")``."""
    words = key(target).replace("-", " ").split()
    colour = next((w for w in words if w in HUES), None)
    shape = next((SHAPES[w] for w in words if w in SHAPES), None)
    return colour, shape


def color_rgb(color: str | Sequence[int]) -> tuple[int, int, int]:
    """A named colour or an ``[r, g, b]`` list as an RGB tuple."""
    if isinstance(color, str):
        if color.lower() not in COLORS:
            raise ToolArgumentsError(f"unknown colour {color!r}; use one of: {', '.join(COLORS)}")
        return COLORS[color.lower()]
    r, g, b = (int(v) for v in color)
    return (r, g, b)


def crop_box(shape: tuple[int, ...], region: Any) -> Box:
    """The box for a named region (``"left half"``) or an ``[x, y, w, h]`` list."""
    h, w = shape[:2]
    if isinstance(region, str) and key(region) in REGIONS:
        x0, y0, x1, y1 = REGIONS[key(region)]
        bx, by = round(x0 * w), round(y0 * h)
        return bx, by, round(x1 * w) - bx, round(y1 * h) - by
    try:
        x, y, bw, bh = (int(v) for v in region)
    except (TypeError, ValueError):
        names = ", ".join(REGIONS)
        raise ToolArgumentsError(f"bad region {region!r}; use [x, y, w, h] or: {names}") from None
    if bw <= 0 or bh <= 0 or x < 0 or y < 0 or x + bw > w or y + bh > h:
        raise ToolArgumentsError(f"region {region!r} is not inside the {w}x{h} image")
    return x, y, bw, bh


def resize_size(shape: tuple[int, ...], params: Mapping[str, Any]) -> tuple[int, int]:
    """``(width, height)`` for resize params: ``width``/``height`` (one alone keeps the
    aspect ratio) or ``scale``."""
    h, w = shape[:2]
    if params.get("scale") is not None:
        s = float(params["scale"])
        return max(1, round(w * s)), max(1, round(h * s))
    width, height = params.get("width"), params.get("height")
    if width is None and height is not None:
        return max(1, round(w * int(height) / h)), int(height)
    if width is None:
        raise ToolArgumentsError("resize needs width and/or height, or scale")
    return int(width), int(height) if height is not None else max(1, round(h * int(width) / w))


def rotate_exact_array(a: np.ndarray, angle: float) -> np.ndarray:
    """Rotate an array by a multiple of 90 degrees clockwise, losslessly."""
    if float(angle) % 90:
        raise ToolError(f"rotate_exact only turns by multiples of 90 degrees, not {angle}")
    return np.ascontiguousarray(np.rot90(a, k=-int(float(angle) // 90) % 4))


def band_mask(shape: tuple[int, ...], position: str) -> Mask:
    """The pixels of the band that text at ``position`` must land in."""
    if position not in POSITIONS:
        known = ", ".join(POSITIONS)
        raise ToolArgumentsError(f"unknown position {position!r}; use one of: {known}")
    h, w = shape[:2]
    x0, y0, x1, y1 = POSITIONS[position]
    m = np.zeros((h, w), bool)
    m[round(y0 * h) : round(y1 * h), round(x0 * w) : round(x1 * w)] = True
    return m


# --- measurements ----------------------------------------------------------------------------


def hue_labels(img: Image, min_sat: int = 90, min_val: int = 50) -> np.ndarray:
    """Per pixel, the index into :data:`HUES` of the nearest named hue; -1 where grey."""
    hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV)
    d = np.abs(hsv[..., :1].astype(np.int16) - np.array(list(HUES.values()), np.int16))
    labels = np.minimum(d, 180 - d).argmin(-1)
    labels[(hsv[..., 1] < min_sat) | (hsv[..., 2] < min_val)] = -1
    return labels


def dark_mask(img: Image) -> Mask:
    """Dark grey pixels (what synthetic text is drawn in)."""
    hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV)
    return (hsv[..., 2] < 100) & (hsv[..., 1] < 80)


def largest_component(mask: np.ndarray) -> Mask:
    """The largest 8-connected component of ``mask``."""
    n, lab, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if n < 2:
        return np.zeros(mask.shape, bool)
    return np.asarray(lab == 1 + int(stats[1:, cv2.CC_STAT_AREA].argmax()))


def classify_shape(contour: np.ndarray) -> str:
    """``triangle``, ``square``, ``circle`` or ``other`` for an outer contour, by how much of
    its smallest enclosing (rotated) rectangle it fills: a triangle half, a circle pi/4, a
    square all; this holds for small and rotated shapes too."""
    area, peri = cv2.contourArea(contour), cv2.arcLength(contour, True)
    (_, (w, h), _) = cv2.minAreaRect(contour)
    if area < 20 or peri == 0 or min(w, h) == 0:
        return "other"
    extent, aspect = area / (w * h), w / h
    if extent < 0.66:
        return "triangle"
    if extent > 0.9 and 0.75 < aspect < 1.33:
        return "square"
    return "circle" if 4 * np.pi * area / peri**2 > 0.75 and 0.8 < aspect < 1.25 else "other"


def mask_shape(mask: Mask) -> str:
    """:func:`classify_shape` of a mask's largest outer contour."""
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, 2)
    return classify_shape(max(contours, key=cv2.contourArea)) if contours else "other"


def foreground(img: Image, threshold: float = 45) -> Mask:
    """Pixels that differ from a linear (solid or gradient) background fitted to the border."""
    h, w = img.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    border = np.zeros((h, w), bool)
    border[:2], border[-2:], border[:, :2], border[:, -2:] = True, True, True, True
    f = img.astype(np.float32).reshape(-1, 3)
    design = np.stack([xx.ravel(), yy.ravel(), np.ones(h * w)], 1).astype(np.float32)
    keep = border.ravel()
    for _ in range(2):  # fit, then refit without the outliers
        coef = np.linalg.lstsq(design[keep], f[keep], rcond=None)[0]
        resid = np.abs(f - design @ coef).max(1)
        inliers = border.ravel() & (resid < 30)
        keep = inliers if inliers.sum() > 8 else keep
    fg = (resid > threshold).reshape(h, w).astype(np.uint8)
    return cv2.morphologyEx(fg, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8)) > 0


def estimate_noise(img: Image) -> float:
    """Noise sigma by Immerkær's method (fast, on the grey image)."""
    g = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float64)
    k = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float64)
    conv = cv2.filter2D(g, -1, k)[1:-1, 1:-1]
    h, w = g.shape
    return float(np.sqrt(np.pi / 2) * np.abs(conv).sum() / (6 * (w - 2) * (h - 2)))


def sharpness(img: Image, mask: Mask | None = None) -> float:
    """Variance of the Laplacian, summed over the RGB channels (within ``mask`` if given)."""
    lap = cv2.Laplacian(img.astype(np.float64), cv2.CV_64F)
    return float(
        sum(lap[..., c][mask].var() if mask is not None else lap[..., c].var() for c in range(3))
    )


def text_mask_blackhat(img: Image) -> Mask:
    """Thin dark grey strokes (text): black-hat transform, thresholded, low saturation."""
    gray = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    hat = cv2.morphologyEx(gray, cv2.MORPH_BLACKHAT, np.ones((9, 9), np.uint8))
    sat = cv2.cvtColor(img, cv2.COLOR_RGB2HSV)[..., 1]
    return (hat > 40) & (sat < 80)


def text_mask_lines(img: Image) -> Mask:
    """Dark grey pixels grouped into wide, short lines (text lines)."""
    hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV)
    dark = ((hsv[..., 2] < 110) & (hsv[..., 1] < 80)).astype(np.uint8)
    h, w = dark.shape
    lines = cv2.morphologyEx(dark, cv2.MORPH_CLOSE, np.ones((3, max(5, w // 16)), np.uint8))
    n, lab, stats, _ = cv2.connectedComponentsWithStats(lines)
    keep = [i for i in range(1, n) if stats[i, 2] > stats[i, 3] and stats[i, 3] < h // 4]
    return np.isin(lab, keep) & (dark > 0)


@functools.cache
def ocr_available() -> bool:
    """Whether ``pytesseract`` and the ``tesseract`` program are both installed."""
    try:
        import pytesseract  # noqa: F401
    except ImportError:
        return False
    return shutil.which("tesseract") is not None


def ocr_words(img: Image) -> set[str]:
    """Upper-case words of 3+ letters or digits that tesseract reads (empty without OCR)."""
    if not ocr_available():
        return set()
    import pytesseract

    big = cv2.resize(img, None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC)
    text = pytesseract.image_to_string(big, config="--psm 11")
    return {w for w in re.findall(r"[A-Z0-9]{3,}", text.upper())}

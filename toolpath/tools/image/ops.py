"""Image-editing tools for cost-sensitive tool-path search (CoSTA*).

Images are ``uint8`` RGB numpy arrays of shape ``(H, W, 3)``. Tools pass an
:class:`ImageState` along: the image plus the masks and boxes found so far, keyed by the
target phrase (``"red circle"``), so a ``locate`` step's mask is what ``recolor`` or
``remove`` then edit. Every tool is ``fn(state, **params) -> state`` and never mutates its
input. :data:`TOOLS` is the catalog; :func:`catalog` gives it as plain data for a generic
search (name, subtask types served, input/output types, required subtask types, and a prior
``(cost_s, quality)`` per served subtask type). :data:`SUBTASK_SCHEMAS` holds each subtask
type's parameters as JSON Schema (defined, with the colours, positions and regions, in
:mod:`toolpath.tools.image.verify`, which also holds the verifiers).

This module needs OpenCV and Pillow; ``import toolpath.tools`` does not import it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from toolpath.errors import ImageError, ToolArgumentsError, ToolError
from toolpath.tools.image.vocabulary import (
    COLORS as COLORS,
)
from toolpath.tools.image.vocabulary import (
    HUES,
    POSITIONS,
    Box,
    Image,
    Mask,
    classify_shape,
    color_rgb,
    crop_box,
    estimate_noise,
    foreground,
    hue_labels,
    key,
    largest_component,
    parse_target,
    resize_size,
    rotate_exact_array,
    text_mask_blackhat,
    text_mask_lines,
)
from toolpath.tools.image.vocabulary import (
    REGIONS as REGIONS,
)
from toolpath.tools.image.vocabulary import (
    SUBTASK_SCHEMAS as SUBTASK_SCHEMAS,
)
from toolpath.tools.image.vocabulary import (
    validate_params as validate_params,
)

# --- images, files, state ------------------------------------------------------------------


def as_image(array: Any) -> Image:
    """``array`` as a contiguous RGB ``uint8`` image (grey is stacked, alpha dropped)."""
    a = np.asarray(array)
    if a.ndim == 2:
        a = np.stack([a] * 3, axis=-1)
    if a.ndim != 3 or a.shape[2] not in (3, 4) or a.dtype != np.uint8 or 0 in a.shape:
        raise ImageError(f"expected a uint8 RGB image (H, W, 3), got {a.dtype} {a.shape}")
    return np.ascontiguousarray(a[..., :3])


def load_image(path: str | Path) -> Image:
    """Read an image file as RGB. A missing, unreadable or non-image file raises
    :class:`~toolpath.errors.ImageError` saying which."""
    from PIL import Image as PILImage
    from PIL import UnidentifiedImageError

    p = Path(path)
    if not p.exists():
        raise ImageError(f"image file not found: {p}")
    if not p.is_file():
        raise ImageError(f"not a file: {p}")
    try:
        with PILImage.open(p) as im:
            im.load()
            rgb = im.convert("RGB")
    except UnidentifiedImageError:
        raise ImageError(f"{p} is not an image (expected PNG, JPEG, BMP, ...)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageError(f"{p} is damaged or truncated and cannot be decoded: {exc}") from None
    return as_image(np.asarray(rgb))


def save_image(img: Image, path: str | Path) -> Path:
    """Write ``img`` to ``path``; the format follows the extension (``.png``, ``.jpg``...)."""
    from PIL import Image as PILImage

    p = Path(path)
    try:
        PILImage.fromarray(as_image(img)).save(p)
    except (OSError, ValueError, KeyError) as exc:
        raise ImageError(f"cannot write image {p}: {exc}") from None
    return p


def box_of(mask: Mask) -> Box:
    """The bounding box of a mask's pixels; ``(0, 0, 0, 0)`` for an empty mask."""
    ys, xs = np.nonzero(mask)
    if not len(xs):
        return (0, 0, 0, 0)
    x0, y0 = int(xs.min()), int(ys.min())
    return (x0, y0, int(xs.max()) - x0 + 1, int(ys.max()) - y0 + 1)


@dataclass(frozen=True, eq=False)
class ImageState:
    """What tools pass along: the image, the masks and boxes found so far (by target key),
    and the names of the tools applied."""

    image: Image
    masks: Mapping[str, Mask] = field(default_factory=dict)
    boxes: Mapping[str, Box] = field(default_factory=dict)
    history: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "image", as_image(self.image))

    def edited(self, image: Image, tool: str) -> ImageState:
        """A new state with ``image`` and ``tool`` appended to the history."""
        return replace(self, image=as_image(image), history=(*self.history, tool))

    def with_mask(self, target: str, mask: Mask, tool: str, box: Box | None = None) -> ImageState:
        """A new state with ``mask`` (and its box) stored under ``target``'s key."""
        k = key(target)
        return replace(
            self,
            masks={**self.masks, k: mask.astype(bool)},
            boxes={**self.boxes, k: box or box_of(mask)},
            history=(*self.history, tool),
        )

    def mask(self, target: str) -> Mask:
        """The mask found for ``target``; :class:`ToolError` if no step found one."""
        m = self.masks.get(key(target))
        if m is None:
            found = ", ".join(sorted(self.masks)) or "none"
            raise ToolError(f"no mask for {key(target)!r} (found: {found}); locate it first")
        return m

    def geometry(self, fn: Callable[[np.ndarray, bool], np.ndarray], tool: str) -> ImageState:
        """Apply a geometric transform ``fn(array, is_mask)`` to the image and every mask."""
        masks = {k: fn(m.astype(np.uint8), True) > 0 for k, m in self.masks.items()}
        masks = {k: m for k, m in masks.items() if m.any()}
        return ImageState(
            fn(self.image, False), masks, {k: box_of(m) for k, m in masks.items()},
            (*self.history, tool),
        )  # fmt: skip


# --- shared analysis -------------------------------------------------------------------------


def _dilate(mask: np.ndarray, size: int, iterations: int = 1) -> np.ndarray:
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
    return cv2.dilate(mask.astype(np.uint8), kernel, iterations=iterations)


def _composite(img: Image, new: np.ndarray, alpha: np.ndarray) -> Image:
    a = alpha.astype(np.float32)[..., None]
    out = img.astype(np.float32) * (1 - a) + new.astype(np.float32) * a
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


# --- locate and segment ----------------------------------------------------------------------


def locate_color(state: ImageState, target: str, **_extra: Any) -> ImageState:
    """Fast: the largest region of the target's colour (HSV hue). Ignores shape words."""
    colour, _shape = parse_target(target)
    if colour is None:
        raise ToolError(f"locate_color needs a colour in the target, got {target!r}")
    raw = (hue_labels(state.image) == list(HUES).index(colour)).astype(np.uint8)
    mask = largest_component(cv2.morphologyEx(raw, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8)))
    if mask.sum() < 20:
        raise ToolError(f"no {colour} region found")
    return state.with_mask(target, mask, "locate_color")


def locate_shape(state: ImageState, target: str, **_extra: Any) -> ImageState:
    """Robust: foreground contours classified by shape and coloured by their median hue."""
    colour, shape = parse_target(target)
    img = state.image
    labels = hue_labels(img, min_sat=60)
    fg = foreground(img).astype(np.uint8)
    contours, _ = cv2.findContours(fg, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    best: tuple[float, Mask] | None = None
    for c in contours:
        m = np.zeros(fg.shape, np.uint8)
        cv2.drawContours(m, [c], -1, 1, cv2.FILLED)
        lab = labels[m > 0]
        coloured = lab[lab >= 0]
        if len(coloured) < 0.5 * len(lab) or len(lab) < 40:
            continue  # grey (text) or a speck
        c_name = list(HUES)[int(np.bincount(coloured).argmax())]
        matches = colour in (None, c_name) and shape in (None, classify_shape(c))
        if matches and (best is None or len(lab) > best[0]):
            best = (len(lab), m > 0)
    if best is None:
        raise ToolError(f"no {key(target)!r} found")
    return state.with_mask(target, best[1], "locate_shape")


@functools.cache
def _face_cascade() -> Any:
    path = Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"  # type: ignore[attr-defined]
    return cv2.CascadeClassifier(str(path))


def locate_face(state: ImageState, target: str = "face", **_extra: Any) -> ImageState:
    """Faces only: OpenCV's bundled Haar cascade; the mask is the ellipse in the box."""
    if "face" not in key(target):
        raise ToolError(f"locate_face only finds faces, not {target!r}")
    cascade = _face_cascade()
    gray = cv2.equalizeHist(cv2.cvtColor(state.image, cv2.COLOR_RGB2GRAY))
    found = cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(24, 24))
    if len(found) == 0:
        raise ToolError("no face found")
    x, y, w, h = (int(v) for v in max(found, key=lambda b: b[2] * b[3]))
    mask = np.zeros(gray.shape, np.uint8)
    cv2.ellipse(mask, (x + w // 2, y + h // 2), (w // 2, h // 2), 0, 0, 360, 1, cv2.FILLED)
    return state.with_mask(target, mask > 0, "locate_face", (x, y, w, h))


def _roi(state: ImageState, target: str, pad: int) -> Box:
    if key(target) not in state.boxes:
        raise ToolError(f"no box for {key(target)!r}; locate it first")
    x, y, w, h = state.boxes[key(target)]
    ih, iw = state.image.shape[:2]
    x0, y0 = max(0, x - pad), max(0, y - pad)
    return x0, y0, min(iw, x + w + pad) - x0, min(ih, y + h + pad) - y0


def segment_threshold(state: ImageState, target: str, **_extra: Any) -> ImageState:
    """Otsu threshold on the distance from the box's border colour, then morphology."""
    x, y, w, h = _roi(state, target, 6)
    roi = state.image[y : y + h, x : x + w].astype(np.int16)
    ring = np.concatenate([roi[0], roi[-1], roi[:, 0], roi[:, -1]])
    dist = np.abs(roi - np.median(ring, 0)).max(-1).clip(0, 255).astype(np.uint8)
    _, m = cv2.threshold(dist, 0, 1, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))
    m = cv2.morphologyEx(cv2.morphologyEx(m, cv2.MORPH_CLOSE, k), cv2.MORPH_OPEN, k)
    contours, _ = cv2.findContours(largest_component(m).astype(np.uint8), 0, 2)
    full = np.zeros(state.image.shape[:2], np.uint8)
    cv2.drawContours(full[y : y + h, x : x + w], contours, -1, 1, cv2.FILLED)
    return state.with_mask(target, full > 0, "segment_threshold")


def segment_grabcut(state: ImageState, target: str, **_extra: Any) -> ImageState:
    """GrabCut initialised with the located box (plus a margin); 4 iterations."""
    x, y, w, h = _roi(state, target, 6)
    gc = np.zeros(state.image.shape[:2], np.uint8)
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.grabCut(state.image, gc, (x, y, w, h), bgd, fgd, 4, cv2.GC_INIT_WITH_RECT)
    mask = largest_component((gc == cv2.GC_FGD) | (gc == cv2.GC_PR_FGD))
    if not mask.any():
        raise ToolError(f"GrabCut found no foreground for {key(target)!r}")
    return state.with_mask(target, mask, "segment_grabcut")


# --- recolor, remove, text -------------------------------------------------------------------


def recolor_hue(state: ImageState, target: str, color: str, **_extra: Any) -> ImageState:
    """Set the hue inside the (slightly grown) mask, keeping saturation and shading."""
    rgb = color_rgb(color)
    hsv = cv2.cvtColor(state.image, cv2.COLOR_RGB2HSV)
    new = cv2.cvtColor(np.array([[rgb]], np.uint8), cv2.COLOR_RGB2HSV)[0, 0]
    region = _dilate(state.mask(target), 3) > 0
    hsv[..., 0][region] = new[0]
    if new[1] < 40:  # black, white, grey: no hue to shift to
        hsv[..., 1][region] = new[1]
        hsv[..., 2][region] = new[2]
    out = state.image.copy()
    out[region] = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[region]  # HSV round trips are lossy
    return state.edited(out, "recolor_hue")


def recolor_fill(state: ImageState, target: str, color: str, **_extra: Any) -> ImageState:
    """Flat fill with edge-aware blending: edge pixels are filled by their likeness to the
    object's own colour, so anti-aliased edges stay smooth."""
    mask = state.mask(target)
    img = state.image.astype(np.float32)
    mean = img[mask].mean(0)
    likeness = np.exp(-np.abs(img - mean).max(-1) / 60)
    alpha = np.where(mask, 1.0, likeness * (_dilate(mask, 5) > 0))
    fill = np.broadcast_to(np.array(color_rgb(color), np.float32), img.shape)
    return state.edited(_composite(state.image, fill, alpha), "recolor_fill")


def _inpaint(state: ImageState, target: str, flag: int, name: str) -> ImageState:
    region = _dilate(state.mask(target), 5, 2)
    return state.edited(cv2.inpaint(state.image, region, 5, flag), name)


def remove_telea(state: ImageState, target: str, **_extra: Any) -> ImageState:
    """Remove the object: grow its mask and inpaint (Telea's fast marching)."""
    return _inpaint(state, target, cv2.INPAINT_TELEA, "remove_telea")


def remove_ns(state: ImageState, target: str, **_extra: Any) -> ImageState:
    """Remove the object: grow its mask and inpaint (Navier-Stokes)."""
    return _inpaint(state, target, cv2.INPAINT_NS, "remove_ns")


def remove_patch(state: ImageState, target: str, patch: int = 9, **_extra: Any) -> ImageState:
    """Remove the object by exemplar fill: repeatedly take the hole-border pixel with the
    most known neighbours and copy the best-matching known patch (SSD over known pixels)
    from a band around the hole. Slower; keeps texture and noise."""
    img = state.image.astype(np.float32).copy()
    hole = _dilate(state.mask(target), 5, 2) > 0
    h, w = hole.shape
    r = patch // 2
    band = (_dilate(hole, 4 * patch + 1) > 0) & ~(_dilate(hole, 3) > 0)
    ys, xs = np.nonzero(band[r : h - r, r : w - r])
    if not len(ys):
        raise ToolError("no known pixels around the region to copy from")
    pick = np.random.default_rng(0).permutation(len(ys))[:400]
    src = np.stack(
        [img[y : y + patch, x : x + patch] for y, x in zip(ys[pick], xs[pick], strict=True)]
    )
    pad_img = cv2.copyMakeBorder(img, r, r, r, r, cv2.BORDER_REFLECT)
    known = cv2.copyMakeBorder((~hole).astype(np.float32), r, r, r, r, cv2.BORDER_CONSTANT, value=0)
    while hole.any():
        score = cv2.boxFilter(known, -1, (patch, patch), normalize=False)[r:-r, r:-r]
        front = hole & (_dilate(~hole, 3) > 0)
        fy, fx = np.nonzero(front)
        i = int(score[fy, fx].argmax())
        y, x = int(fy[i]), int(fx[i])
        tgt, kn = pad_img[y : y + patch, x : x + patch], known[y : y + patch, x : x + patch]
        ssd = (((src - tgt) ** 2).sum(-1) * kn).sum((1, 2))
        best = src[int(ssd.argmin())]
        fill = kn == 0
        tgt[fill] = best[fill]  # views into pad_img
        kn[fill] = 1
        hole[max(0, y - r) : y + r + 1, max(0, x - r) : x + r + 1] = False
    out = np.clip(pad_img[r:-r, r:-r] + 0.5, 0, 255).astype(np.uint8)
    return state.edited(out, "remove_patch")


def remove_text_telea(state: ImageState, **_extra: Any) -> ImageState:
    """Remove text: black-hat stroke mask, dilated, inpainted with Telea."""
    mask = _dilate(text_mask_blackhat(state.image), 3, 2)
    return state.edited(cv2.inpaint(state.image, mask, 3, cv2.INPAINT_TELEA), "remove_text_telea")


def remove_text_ns(state: ImageState, **_extra: Any) -> ImageState:
    """Remove text: dark pixels on wide text lines, dilated, inpainted with Navier-Stokes."""
    mask = _dilate(text_mask_lines(state.image), 5)
    return state.edited(cv2.inpaint(state.image, mask, 5, cv2.INPAINT_NS), "remove_text_ns")


def text_origin(size: tuple[int, int], box: tuple[int, int], position: str) -> tuple[int, int]:
    """Top-left corner of a ``box`` (w, h) at ``position`` in an image of ``size`` (w, h)."""
    if position not in POSITIONS:
        raise ToolArgumentsError(
            f"unknown position {position!r}; use one of: {', '.join(POSITIONS)}"
        )
    (iw, ih), (tw, th), m = size, box, int(0.04 * min(size))
    x = m if "left" in position else iw - m - tw if "right" in position else (iw - tw) // 2
    y = m if "top" in position else ih - m - th if "bottom" in position else (ih - th) // 2
    return max(0, x), max(0, y)


def _max_text_width(w: int, position: str) -> float:
    return w * (0.55 if "left" in position or "right" in position else 0.9)


def add_text_cv2(
    state: ImageState, text: str, position: str = "top", color: Any = "black", **_extra: Any
) -> ImageState:
    """Draw ``text`` with OpenCV's Hershey font (fast, plain)."""
    img = state.image.copy()
    h, w = img.shape[:2]
    font, thick = cv2.FONT_HERSHEY_SIMPLEX, max(1, round(h / 128))
    (tw, th), _ = cv2.getTextSize(text, font, 1.0, thick)
    scale = min(h * 0.08 / th, _max_text_width(w, position) / tw)
    (tw, th), _ = cv2.getTextSize(text, font, scale, thick)
    x, y = text_origin((w, h), (tw, th), position)
    cv2.putText(img, text, (x, y + th), font, scale, color_rgb(color), thick, cv2.LINE_AA)
    return state.edited(img, "add_text_cv2")


def add_text_pil(
    state: ImageState, text: str, position: str = "top", color: Any = "black", **_extra: Any
) -> ImageState:
    """Draw ``text`` with Pillow's scalable default font (anti-aliased, slower)."""
    from PIL import Image as PILImage
    from PIL import ImageDraw, ImageFont

    pil = PILImage.fromarray(state.image)
    draw = ImageDraw.Draw(pil)
    w, h = pil.size
    size = max(8, int(h * 0.1))
    while True:
        font = ImageFont.load_default(size=size)
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
        if right - left <= _max_text_width(w, position) or size <= 8:
            break
        size -= 2
    x, y = text_origin((w, h), (int(right - left), int(bottom - top)), position)
    draw.text((x - left, y - top), text, fill=color_rgb(color), font=font)
    return state.edited(np.asarray(pil), "add_text_pil")


# --- geometry --------------------------------------------------------------------------------


def crop(state: ImageState, region: Any, **_extra: Any) -> ImageState:
    """Crop to a named region (``"left half"``) or ``[x, y, w, h]``."""
    x, y, w, h = crop_box(state.image.shape, region)
    return state.geometry(lambda a, _m: np.ascontiguousarray(a[y : y + h, x : x + w]), "crop")


def _resize(state: ImageState, params: dict[str, Any], interp: int, name: str) -> ImageState:
    size = resize_size(state.image.shape, params)
    return state.geometry(
        lambda a, m: cv2.resize(a, size, interpolation=cv2.INTER_NEAREST if m else interp), name
    )


def resize_area(state: ImageState, **params: Any) -> ImageState:
    """Resize with pixel-area averaging (good for shrinking, fast)."""
    return _resize(state, params, cv2.INTER_AREA, "resize_area")


def resize_lanczos(state: ImageState, **params: Any) -> ImageState:
    """Resize with Lanczos-4 interpolation (sharper, slower)."""
    return _resize(state, params, cv2.INTER_LANCZOS4, "resize_lanczos")


def rotate_exact(state: ImageState, angle: float, **_extra: Any) -> ImageState:
    """Rotate clockwise by a multiple of 90 degrees, losslessly."""
    return state.geometry(lambda a, _m: rotate_exact_array(a, angle), "rotate_exact")


def rotate_affine(state: ImageState, angle: float, **_extra: Any) -> ImageState:
    """Rotate clockwise by any angle (bicubic); the canvas grows to fit, edges replicated."""
    h, w = state.image.shape[:2]
    m = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), -float(angle), 1.0)
    cos, sin = abs(m[0, 0]), abs(m[0, 1])
    nw, nh = round(w * cos + h * sin), round(w * sin + h * cos)
    m[0, 2] += (nw - w) / 2  # keep the centre in the centre of the grown canvas
    m[1, 2] += (nh - h) / 2

    def warp(a: np.ndarray, is_mask: bool) -> np.ndarray:
        flags = cv2.INTER_NEAREST if is_mask else cv2.INTER_CUBIC
        border = cv2.BORDER_CONSTANT if is_mask else cv2.BORDER_REPLICATE
        return cv2.warpAffine(a, m, (nw, nh), flags=flags, borderMode=border)

    return state.geometry(warp, "rotate_affine")


# --- filters ---------------------------------------------------------------------------------


def denoise_gaussian(state: ImageState, **_extra: Any) -> ImageState:
    """Gaussian blur, 5x5: fast, also softens edges."""
    return state.edited(cv2.GaussianBlur(state.image, (5, 5), 1.2), "denoise_gaussian")


def denoise_nlmeans(state: ImageState, **_extra: Any) -> ImageState:
    """Non-local means, strength set from the estimated noise: slow, keeps edges."""
    h = max(3.0, 1.2 * estimate_noise(state.image))
    out = cv2.fastNlMeansDenoisingColored(state.image, None, h, h, 7, 21)
    return state.edited(out, "denoise_nlmeans")


def sharpen_unsharp(state: ImageState, amount: float = 1.0, **_extra: Any) -> ImageState:
    """Unsharp mask: ``img + amount * (img - gaussian(img, 1.5))``."""
    blur = cv2.GaussianBlur(state.image, (0, 0), 1.5)
    return state.edited(
        cv2.addWeighted(state.image, 1 + amount, blur, -amount, 0), "sharpen_unsharp"
    )


def sharpen_laplacian(state: ImageState, **_extra: Any) -> ImageState:
    """Subtract the 4-neighbour Laplacian (a 3x3 kernel): crisp but amplifies noise."""
    kernel = np.array([[0, -1, 0], [-1, 5, -1], [0, -1, 0]], np.float32)
    return state.edited(cv2.filter2D(state.image, -1, kernel), "sharpen_laplacian")


def _blur_bg(state: ImageState, target: str, blurred: np.ndarray, name: str) -> ImageState:
    alpha = cv2.GaussianBlur(_dilate(state.mask(target), 3).astype(np.float32), (0, 0), 1.5)
    return state.edited(_composite(blurred, state.image, alpha), name)


def blur_bg_gaussian(state: ImageState, target: str, **_extra: Any) -> ImageState:
    """Blur everything but the target (Gaussian, sigma 6), feathered at the mask edge."""
    return _blur_bg(state, target, cv2.GaussianBlur(state.image, (0, 0), 6), "blur_bg_gaussian")


def blur_bg_bilateral(state: ImageState, target: str, **_extra: Any) -> ImageState:
    """Blur everything but the target with three bilateral passes (smooths, keeps strong edges)."""
    out = state.image
    for _ in range(3):
        out = cv2.bilateralFilter(out, 15, 120, 9)
    return _blur_bg(state, target, out, "blur_bg_bilateral")


# --- catalog ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageTool:
    """One tool: what it serves, what it needs first, and its prior per subtask type.

    ``requires`` lists subtask types of which one must have run on the same target first
    (any one of them); ``priors`` maps each served type to ``(cost_seconds, quality)``.
    """

    name: str
    fn: Callable[..., ImageState] = field(repr=False)
    priors: Mapping[str, tuple[float, float]]
    requires: tuple[str, ...] = ()
    input: str = "image"
    output: str = "image"

    @property
    def serves(self) -> tuple[str, ...]:
        return tuple(self.priors)

    def __call__(self, state: ImageState, **params: Any) -> ImageState:
        return self.fn(state, **params)

    def spec(self) -> dict[str, Any]:
        """Plain data for a generic search; ``cost``/``quality`` are the first served type's."""
        cost, quality = next(iter(self.priors.values()))
        return {
            "name": self.name, "serves": list(self.serves), "input": self.input,
            "output": self.output, "requires": list(self.requires), "cost": cost,
            "quality": quality, "priors": {t: {"cost": c, "quality": q} for t, (c, q) in self.priors.items()},
            "description": (self.fn.__doc__ or "").split("\n")[0],
        }  # fmt: skip


_MASK = ("locate", "segment")
# Priors, measured once by a throwaway script on generate(60, seed=11) tasks (2-core Intel
# Xeon VM, OpenCV 4.14, a benchmark running beside it, so only relative sizes mean much).
# cost: median seconds per call on 256x256 scenes. quality: mean verifier score of the
# tool's steps (the other steps done by the reference tools), averaged over the clean inputs
# and the same with Gaussian noise (sigma 15) added; segment: mean IoU with the true mask
# from locate_color's box; rotate also counts 30 and 45 degree turns, which rotate_exact
# cannot do; locate_face finds faces only (0 on shapes); blur_background had 5 cases.
TOOLS: dict[str, ImageTool] = {t.name: t for t in [
    ImageTool("locate_color", locate_color, {"locate": (0.0026, 0.81)}, output="mask"),
    ImageTool("locate_shape", locate_shape, {"locate": (0.0097, 0.97), "segment": (0.0097, 0.93)}, output="mask"),
    ImageTool("locate_face", locate_face, {"locate": (0.0200, 0.02)}, output="mask"),
    ImageTool("segment_threshold", segment_threshold, {"segment": (0.0005, 0.90)}, ("locate",), "image+box", "mask"),
    ImageTool("segment_grabcut", segment_grabcut, {"segment": (0.0470, 0.88)}, ("locate",), "image+box", "mask"),
    ImageTool("recolor_hue", recolor_hue, {"recolor": (0.0002, 1.00)}, _MASK, "image+mask"),
    ImageTool("recolor_fill", recolor_fill, {"recolor": (0.0045, 1.00)}, _MASK, "image+mask"),
    ImageTool("remove_telea", remove_telea, {"remove": (0.0020, 1.00)}, _MASK, "image+mask"),
    ImageTool("remove_ns", remove_ns, {"remove": (0.0023, 1.00)}, _MASK, "image+mask"),
    ImageTool("remove_patch", remove_patch, {"remove": (0.0530, 0.98)}, _MASK, "image+mask"),
    ImageTool("remove_text_telea", remove_text_telea, {"remove_text": (0.0016, 0.79)}),
    ImageTool("remove_text_ns", remove_text_ns, {"remove_text": (0.0034, 0.60)}),
    ImageTool("add_text_cv2", add_text_cv2, {"add_text": (0.0001, 1.00)}),
    ImageTool("add_text_pil", add_text_pil, {"add_text": (0.0008, 1.00)}),
    ImageTool("crop", crop, {"crop": (0.0001, 1.00)}),
    ImageTool("resize_area", resize_area, {"resize": (0.0001, 1.00)}),
    ImageTool("resize_lanczos", resize_lanczos, {"resize": (0.0005, 0.88)}),
    ImageTool("rotate_exact", rotate_exact, {"rotate": (0.0003, 0.83)}),
    ImageTool("rotate_affine", rotate_affine, {"rotate": (0.0008, 1.00)}),
    ImageTool("denoise_gaussian", denoise_gaussian, {"denoise": (0.0002, 1.00)}),
    ImageTool("denoise_nlmeans", denoise_nlmeans, {"denoise": (0.0890, 1.00)}),
    ImageTool("sharpen_unsharp", sharpen_unsharp, {"sharpen": (0.0003, 1.00)}),
    ImageTool("sharpen_laplacian", sharpen_laplacian, {"sharpen": (0.0001, 0.53)}),
    ImageTool("blur_bg_gaussian", blur_bg_gaussian, {"blur_background": (0.0033, 1.00)}, _MASK, "image+mask"),
    ImageTool("blur_bg_bilateral", blur_bg_bilateral, {"blur_background": (0.0400, 0.62)}, _MASK, "image+mask"),
]}  # fmt: skip
"""The catalog, by tool name."""


def catalog() -> list[dict[str, Any]]:
    """The catalog as plain data (see :meth:`ImageTool.spec`)."""
    return [t.spec() for t in TOOLS.values()]


def tools_for(subtask: str) -> list[ImageTool]:
    """The tools that serve a subtask type."""
    return [t for t in TOOLS.values() if subtask in t.priors]

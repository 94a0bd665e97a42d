"""How to check an image edit.

:func:`verify` scores an edit in ``[0, 1]`` from the images alone (and a ground-truth mask
where there is one), and :func:`passes` compares the score with the subtask's
:data:`THRESHOLDS`. :class:`VLMVerifier` asks a vision chat model instead.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Mapping
from typing import Any

import cv2
import numpy as np

from toolpath.errors import ToolError
from toolpath.tools.image.ops import ImageState, locate_shape, rotate_affine
from toolpath.tools.image.vocabulary import (
    HUES,
    Image,
    Mask,
    band_mask,
    color_rgb,
    crop_box,
    dark_mask,
    estimate_noise,
    hue_labels,
    key,
    mask_shape,
    ocr_words,
    parse_target,
    resize_size,
    rotate_exact_array,
    sharpness,
    validate_params,
)

# --- verifiers -------------------------------------------------------------------------------

THRESHOLDS: dict[str, float] = {"segment": 0.7}
"""Pass thresholds by subtask type; 0.5 for the rest."""
_Check = Callable[["ImageState", "ImageState", Mapping[str, Any], "Mask | None"], float]


def _erode(mask: np.ndarray, px: int) -> Mask:
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * px + 1, 2 * px + 1))
    out = cv2.erode(mask.astype(np.uint8), k) > 0
    return out if out.sum() >= 10 else mask.astype(bool)


def _grow(mask: np.ndarray, px: int) -> Mask:
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * px + 1, 2 * px + 1))
    return cv2.dilate(mask.astype(np.uint8), k) > 0


def _mad(a: np.ndarray, b: np.ndarray, mask: Mask | None = None) -> float:
    d = np.abs(a.astype(np.float32) - b.astype(np.float32))
    return float(d[mask].mean() if mask is not None else d.mean()) if d.size else 0.0


def _clip(x: float) -> float:
    return float(min(1.0, max(0.0, x)))


def _region(before: ImageState, after: ImageState, target: str, truth: Mask | None) -> Mask:
    """The object's mask: the ground truth, else found again in ``before`` (independently of
    the tools under test), else the mask the tools stored."""

    if truth is not None:
        return truth.astype(bool)
    try:
        return locate_shape(before, target).mask(target)
    except ToolError:
        for state in (before, after):
            if key(target) in state.masks:
                return np.asarray(state.masks[key(target)], bool)
    raise ToolError(f"cannot find {key(target)!r} to check the edit")


def _locate(
    before: ImageState, after: ImageState, p: Mapping[str, Any], truth: Mask | None
) -> float:
    found = after.masks.get(key(p["target"]))
    if found is None or not found.any():
        return 0.0
    if truth is not None:
        return float((found & truth).sum() / max(1, (found | truth).sum()))
    colour, shape = parse_target(p["target"])
    if colour is None and shape is None:
        return 0.5  # a face, say: nothing to check without ground truth
    share = 1.0
    if colour is not None:
        share = float((hue_labels(after.image, 60)[found] == list(HUES).index(colour)).mean())
    return share * (1.0 if shape in (None, mask_shape(found)) else 0.3)


def _recolor(
    before: ImageState, after: ImageState, p: Mapping[str, Any], truth: Mask | None
) -> float:
    region = _region(before, after, p["target"], truth)
    core, img = _erode(region, 2), after.image
    if isinstance(p["color"], str) and p["color"].lower() in HUES:
        share = float((hue_labels(img, 60)[core] == list(HUES).index(p["color"].lower())).mean())
    else:
        share = float((np.abs(img[core].astype(int) - color_rgb(p["color"])).max(-1) < 60).mean())
    outside = ~_grow(region, 7)
    return share * _clip(1 - (_mad(before.image, img, outside) - 2) / 10)


def _remove(
    before: ImageState, after: ImageState, p: Mapping[str, Any], truth: Mask | None
) -> float:
    region = _region(before, after, p["target"], truth)
    core = _erode(region, 2)
    lab_before = hue_labels(before.image, 60)[core]
    coloured = lab_before[lab_before >= 0]
    left = 0.0
    if len(coloured):
        left = float((hue_labels(after.image, 60)[core] == np.bincount(coloured).argmax()).mean())
    ring = _grow(region, 12) & ~_grow(region, 5)
    inside, around = np.median(after.image[core], 0), np.median(after.image[ring], 0)
    gap = float(np.abs(inside - around).max())
    return (1 - left) * _clip(1 - (gap - 10) / 40)


def _remove_text(
    before: ImageState, after: ImageState, p: Mapping[str, Any], truth: Mask | None
) -> float:
    area = _grow(truth, 2) if truth is not None else np.ones(before.image.shape[:2], bool)
    n_before, n_after = dark_mask(before.image)[area].sum(), dark_mask(after.image)[area].sum()
    score = 1.0 if n_before == 0 else _clip(1 - (n_after / n_before) / 0.2)
    if score > 0.2 and ocr_words(before.image) & ocr_words(after.image):
        score = 0.2  # OCR still reads a word that was there before
    return score


def _add_text(
    before: ImageState, after: ImageState, p: Mapping[str, Any], truth: Mask | None
) -> float:
    rgb = color_rgb(p.get("color") or "black")
    near = [np.abs(s.image.astype(int) - rgb).max(-1) < 90 for s in (before, after)]
    new = near[1] & ~near[0]
    band = band_mask(after.image.shape, p.get("position") or "top")
    inside = float(new[band].sum())
    score = inside / max(1.0, float(new.sum())) * _clip(inside / band.sum() / 0.005)
    words = set(re.findall(r"[A-Z0-9]{3,}", str(p["text"]).upper()))
    ys, xs = np.nonzero(band)
    if words and words <= ocr_words(after.image[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]):
        score = max(score, 0.9)
    return score


def _similar(expected: Image, after: Image, tolerance: int = 0) -> float:
    (eh, ew), (ah, aw) = expected.shape[:2], after.shape[:2]
    if abs(eh - ah) > tolerance or abs(ew - aw) > tolerance:
        return 0.0
    if (eh, ew) != (ah, aw):
        after = cv2.resize(after, (ew, eh), interpolation=cv2.INTER_AREA)
    inner = (slice(3, -3), slice(3, -3)) if min(eh, ew) > 12 else (slice(None), slice(None))
    return _clip(1 - _mad(expected[inner], after[inner]) / 20)


def _crop(before: ImageState, after: ImageState, p: Mapping[str, Any], truth: Mask | None) -> float:
    x, y, w, h = crop_box(before.image.shape, p["region"])
    return _similar(before.image[y : y + h, x : x + w], after.image)


def _resize(
    before: ImageState, after: ImageState, p: Mapping[str, Any], truth: Mask | None
) -> float:
    size = resize_size(before.image.shape, p)
    return _similar(cv2.resize(before.image, size, interpolation=cv2.INTER_AREA), after.image)


def _rotate(
    before: ImageState, after: ImageState, p: Mapping[str, Any], truth: Mask | None
) -> float:
    if float(p["angle"]) % 90 == 0:
        return _similar(rotate_exact_array(before.image, p["angle"]), after.image, 2)

    return _similar(rotate_affine(before, p["angle"]).image, after.image, 2)


def _kept(before: Image, after: Image, sigma: float = 2.0) -> float:
    """1 while the coarse content is unchanged, falling to 0 as it changes."""
    lo = [cv2.GaussianBlur(i, (0, 0), sigma) for i in (before, after)]
    return _clip(1 - (_mad(*lo) - 3) / 10)


def _denoise(
    before: ImageState, after: ImageState, p: Mapping[str, Any], truth: Mask | None
) -> float:
    nb, na = estimate_noise(before.image), estimate_noise(after.image)
    drop = float(na <= nb + 0.5) if nb < 2 else _clip((1 - na / nb) / 0.6)
    return drop * _kept(before.image, after.image)


def _sharpen(
    before: ImageState, after: ImageState, p: Mapping[str, Any], truth: Mask | None
) -> float:
    ratio = sharpness(after.image) / max(1e-6, sharpness(before.image))
    return _clip((ratio - 1) / 0.5) * _kept(before.image, after.image, 3.0)


def _blur_background(
    before: ImageState, after: ImageState, p: Mapping[str, Any], truth: Mask | None
) -> float:
    region = _region(before, after, p["target"], truth)
    keep = _clip(1 - _mad(before.image, after.image, _erode(region, 3)) / 15)
    outside = ~_grow(region, 6)
    sb, sa = sharpness(before.image, outside), sharpness(after.image, outside)
    return keep * (1.0 if sb < 5 else _clip((1 - sa / sb) / 0.6))


VERIFIERS: dict[str, _Check] = {
    "locate": _locate, "segment": _locate, "recolor": _recolor, "remove": _remove,
    "remove_text": _remove_text, "add_text": _add_text, "crop": _crop, "resize": _resize,
    "rotate": _rotate, "denoise": _denoise, "sharpen": _sharpen, "blur_background": _blur_background,
}  # fmt: skip
"""The programmatic check of each subtask type."""


def _state(x: Any) -> ImageState:

    return x if isinstance(x, ImageState) else ImageState(x)


def verify(
    subtask: str, before: Any, after: Any, params: Mapping[str, Any], *, truth: Mask | None = None
) -> float:
    """Score in ``[0, 1]`` for one edit. ``before``/``after`` are images or
    :class:`~toolpath.tools.image.ops.ImageState` (locate and segment are checked on the mask
    stored in ``after``); ``truth`` is a ground-truth mask (the object; the text for
    ``remove_text``) where one is known. An edit that cannot be checked scores 0."""
    validate_params(subtask, params)
    try:
        return _clip(VERIFIERS[subtask](_state(before), _state(after), params, truth))
    except ToolError:
        return 0.0


def passes(
    subtask: str, before: Any, after: Any, params: Mapping[str, Any], *, truth: Mask | None = None
) -> bool:
    """Whether :func:`verify`'s score reaches the subtask's threshold."""
    return verify(subtask, before, after, params, truth=truth) >= THRESHOLDS.get(subtask, 0.5)


def data_url(img: Image) -> str:
    """A PNG ``data:`` URL for an image, as OpenAI-style ``image_url`` parts take."""
    ok, png = cv2.imencode(".png", cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ToolError("could not encode the image as PNG")
    return "data:image/png;base64," + base64.b64encode(png.tobytes()).decode("ascii")


class VLMVerifier:
    """Asks a vision chat model (any toolpath ``ChatModel`` behind an OpenAI-compatible
    vision endpoint) whether an edit was done, with the signature of every CoSTA* verifier:
    ``verifier(kind, before, after, params) -> (score, ok)``. "yes" scores 1, "no" 0, a number
    in ``[0, 1]`` scores itself, anything else 0; the step passes at ``pass_at``."""

    PROMPT = (
        "The first image is before an edit, the second after it. The edit asked for: "
        "{instruction}\nWas it done correctly, with nothing else changed? Answer yes or no."
    )

    def __init__(self, model: Any, *, max_tokens: int = 8, pass_at: float = 0.5) -> None:
        self.model, self.max_tokens, self.pass_at = model, max_tokens, pass_at

    @staticmethod
    def instruction(kind: str, params: Mapping[str, Any]) -> str:
        """The edit in words: ``recolor (target: red circle, color: blue)``."""
        args = ", ".join(f"{k}: {v}" for k, v in params.items())
        return f"{kind.replace('_', ' ')} ({args})" if args else kind.replace("_", " ")

    def messages(self, instruction: str, before: Any, after: Any) -> list[dict[str, Any]]:
        """The request: one user message with the question and both images."""
        parts: list[dict[str, Any]] = [
            {"type": "text", "text": self.PROMPT.format(instruction=instruction)}
        ]
        parts += [
            {"type": "image_url", "image_url": {"url": data_url(_pixels(i))}}
            for i in (before, after)
        ]
        return [{"role": "user", "content": parts}]

    @staticmethod
    def parse(answer: str) -> float:
        """The score an answer gives."""
        text = answer.strip().lower()
        word = re.match(r"\W*(yes|no)\b", text)
        if word:
            return 1.0 if word.group(1) == "yes" else 0.0
        number = re.match(r"\W*(\d+(?:\.\d+)?)", text)
        return _clip(float(number.group(1))) if number else 0.0

    def __call__(
        self, kind: str, before: Any, after: Any, params: Mapping[str, Any]
    ) -> tuple[float, bool]:
        """Ask the model about one step; its score and whether that passes."""
        request = self.messages(self.instruction(kind, params), before, after)
        reply = self.model.complete(request, max_tokens=self.max_tokens, temperature=0.0)
        score = self.parse(reply.content)
        return score, score >= self.pass_at


def _pixels(obj: Any) -> Image:
    """The RGB array of an image or of an :class:`ImageState`."""
    return obj.image if isinstance(obj, ImageState) else obj

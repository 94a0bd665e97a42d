"""Synthetic multi-step image-editing tasks with known ground truth, for CoSTA*.

A scene is a solid or gradient background with 1-4 coloured shapes (each colour+shape pair
unique), maybe a line of dark text and maybe Gaussian noise; it is stored as its
description and rendered on demand, so a task is small JSON. An instruction chains 1-8
subtasks ("Recolor the red circle blue, then remove the text, then crop to the left
half."); its ground truth is the subtask list (type, params, parents; object edits come
with their ``locate`` step), and :meth:`CostaTask.check` decides success exactly from what
the scene is known to contain, following every mask through the geometry steps.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from toolpath.errors import ConfigError
from toolpath.tools.image.ops import TOOLS, ImageState, save_image
from toolpath.tools.image.vocabulary import (
    COLORS,
    HUES,
    Image,
    band_mask,
    crop_box,
    dark_mask,
    estimate_noise,
    hue_labels,
    resize_size,
    rotate_exact_array,
    sharpness,
)

KINDS = ("circle", "square", "triangle")
WORDS = ("SALE", "HELLO", "OPEN", "DRAFT", "PROMO", "COPY", "NEW")
CROPS = ("left half", "right half", "top half", "bottom half", "center")
NEW_WORDS = ("Hi", "Welcome", "Summer", "Cats", "Demo", "Toolpath")
TEXT_RGB = (35, 35, 35)
REFERENCE = {
    "locate": "locate_shape", "segment": "segment_grabcut", "recolor": "recolor_hue",
    "remove": "remove_telea", "remove_text": "remove_text_telea", "add_text": "add_text_cv2",
    "crop": "crop", "resize": "resize_area", "rotate": "rotate_exact",
    "denoise": "denoise_nlmeans", "sharpen": "sharpen_unsharp", "blur_background": "blur_bg_gaussian",
}  # fmt: skip
"""The tool :func:`solve_reference` uses for each subtask type."""


@dataclass
class Shape:
    """A filled shape: centre ``(x, y)`` and radius (half the side, for a square)."""

    kind: str
    color: str
    x: int
    y: int
    r: int


@dataclass
class Scene:
    """Everything needed to render a task's input image."""

    size: int
    background: list[list[int]]  # one colour, or the two ends of a gradient
    direction: str  # solid, horizontal, vertical, diagonal
    shapes: list[Shape]
    text: str | None = None
    text_org: list[int] = field(default_factory=lambda: [0, 0])  # baseline-left corner
    text_scale: float = 1.0
    noise: float = 0.0
    noise_seed: int = 0


@dataclass
class Subtask:
    """One ground-truth step. ``obj`` indexes the scene's shape it acts on."""

    id: int
    type: str
    params: dict[str, Any]
    parents: list[int]
    obj: int | None = None


@dataclass
class Rendered:
    image: Image
    background: Image
    masks: list[np.ndarray]
    text_mask: np.ndarray


def _draw(canvas: np.ndarray, sh: Shape, value: Any, line: int) -> None:
    x, y, r = sh.x, sh.y, sh.r
    if sh.kind == "circle":
        cv2.circle(canvas, (x, y), r, value, cv2.FILLED, line)
    elif sh.kind == "square":
        cv2.rectangle(canvas, (x - r, y - r), (x + r, y + r), value, cv2.FILLED, line)
    else:
        pts = np.array([[x, y - r], [x - r, y + r * 3 // 4], [x + r, y + r * 3 // 4]])
        cv2.fillPoly(canvas, [pts], value, line)


def render(scene: Scene) -> Rendered:
    """Draw the scene; the masks are exact (no anti-aliasing), the image is anti-aliased."""
    s = scene.size
    t = {"solid": 0.0, "horizontal": np.linspace(0, 1, s)[None, :],
         "vertical": np.linspace(0, 1, s)[:, None],
         "diagonal": np.add.outer(np.linspace(0, 0.5, s), np.linspace(0, 0.5, s))}[scene.direction]  # fmt: skip
    c0, c1 = (np.array(c, np.float32) for c in (scene.background * 2)[:2])
    t = np.broadcast_to(np.asarray(t, np.float32), (s, s))[..., None]
    background = np.clip(c0 * (1 - t) + c1 * t + 0.5, 0, 255).astype(np.uint8)
    img, masks = background.copy(), []
    for sh in scene.shapes:
        m = np.zeros((s, s), np.uint8)
        for canvas, value, line in ((img, COLORS[sh.color], cv2.LINE_AA), (m, 1, cv2.LINE_8)):
            _draw(canvas, sh, value, line)
        masks.append(m > 0)
    text_mask = np.zeros((s, s), np.uint8)
    if scene.text:
        thick = max(2, s // 128)
        font, org = cv2.FONT_HERSHEY_SIMPLEX, (scene.text_org[0], scene.text_org[1])
        for canvas, value, line in ((img, TEXT_RGB, cv2.LINE_AA), (text_mask, 1, cv2.LINE_8)):
            cv2.putText(canvas, scene.text, org, font, scene.text_scale, value, thick, line)
    if scene.noise:
        noise = np.random.default_rng(scene.noise_seed).normal(0, scene.noise, img.shape)
        img = np.clip(img + noise, 0, 255).astype(np.uint8)
    return Rendered(img, background, masks, text_mask > 0)


def _geometry(st: Subtask, a: np.ndarray, nearest: bool) -> np.ndarray:
    if st.type == "crop":
        x, y, w, h = crop_box(a.shape, st.params["region"])
        return np.ascontiguousarray(a[y : y + h, x : x + w])
    if st.type == "rotate":
        return rotate_exact_array(a, st.params["angle"])
    interp = cv2.INTER_NEAREST if nearest else cv2.INTER_AREA
    out = cv2.resize(a.astype(np.uint8), resize_size(a.shape, st.params), interpolation=interp)
    return out > 0 if nearest else out


def _edge_band(mask: np.ndarray) -> np.ndarray:
    k = np.ones((5, 5), np.uint8)
    m = mask.astype(np.uint8)
    return (cv2.dilate(m, k) > 0) & ~(cv2.erode(m, k) > 0)


def _core(mask: np.ndarray, px: int) -> np.ndarray:
    return cv2.erode(mask.astype(np.uint8), np.ones((2 * px + 1, 2 * px + 1), np.uint8)) > 0


@dataclass
class CostaTask:
    """One task: the scene, the instruction, and the ground-truth subtasks."""

    id: str
    instruction: str
    scene: Scene
    subtasks: list[Subtask]

    @property
    def image(self) -> Image:
        """The input image (rendered from the scene)."""
        return render(self.scene).image

    def check(self, final: Image) -> bool:
        """Whether ``final`` does everything the instruction asks."""
        return all(self.check_report(final).values())

    def check_report(self, final: Image) -> dict[str, bool]:
        """Each requirement and whether ``final`` meets it."""
        r = render(self.scene)
        masks, text, ref, bg = list(r.masks), r.text_mask, r.image, r.background
        color = [sh.color for sh in self.scene.shapes]
        removed, edited = [False] * len(color), [False] * len(color)
        band, band_left, flags, fg = np.zeros(text.shape, bool), 0.0, set(), None
        for st in self.subtasks:
            if st.type in ("crop", "rotate", "resize"):
                area = ref.size
                masks = [_geometry(st, m, True) for m in masks]
                text, band = _geometry(st, text, True), _geometry(st, band, True)
                ref, bg = _geometry(st, ref, False), _geometry(st, bg, False)
                band_left *= area / ref.size if st.type == "resize" else 1.0
            elif st.type == "recolor" and st.obj is not None:
                color[st.obj], edited[st.obj] = st.params["color"], True
            elif st.type == "remove" and st.obj is not None:
                removed[st.obj] = edited[st.obj] = True
            elif st.type == "add_text":
                band = band_mask(ref.shape, st.params.get("position", "top"))
                band_left = float(band.sum())  # the band's area, followed through resizes
            elif st.type == "blur_background":
                fg = st.obj
            flags.add(st.type)
        out = {"size": final.shape[:2] == ref.shape[:2]}
        if not out["size"]:
            return out
        labels = hue_labels(final, 60)
        for i, (sh, m) in enumerate(zip(self.scene.shapes, masks, strict=True)):
            core = _core(m, 2 if edited[i] else 4)
            if core.sum() < 15:
                continue  # cropped away
            if removed[i]:
                gone = (labels[core] == list(HUES).index(sh.color)).mean() < 0.05
                gap = np.abs(np.median(final[core], 0) - np.median(bg[core], 0)).max()
                out[f"{sh.color} {sh.kind} removed"] = bool(gone and gap < 30)
            else:
                share = (labels[core] == list(HUES).index(color[i])).mean()
                ok = share >= (0.8 if edited[i] else 0.7)
                out[f"{sh.color} {sh.kind} is {color[i]}"] = bool(ok)
        if "remove_text" in flags and text.sum() >= 10:
            out["text removed"] = bool(dark_mask(final)[text].mean() < 0.1)
        if "add_text" in flags and band.sum() >= 0.5 * band_left:  # else mostly cropped away
            out["text added"] = bool(dark_mask(final)[band].sum() >= max(20, 0.004 * band.sum()))
        if "denoise" in flags:
            out["denoised"] = estimate_noise(final) < 0.6 * estimate_noise(ref)
        keep = [m for i, m in enumerate(masks) if not edited[i] and i != fg and m.any()]
        if "sharpen" in flags and keep:
            edges = np.any([_edge_band(m) for m in keep], 0)
            out["sharpened"] = sharpness(final, edges) > 1.2 * sharpness(ref, edges)
        if "blur_background" in flags and keep:
            edges = np.any([_edge_band(m) for m in keep], 0)
            out["background blurred"] = sharpness(final, edges) < 0.5 * sharpness(ref, edges)
        return out

    def to_json(self) -> dict[str, Any]:
        """Plain JSON data; :meth:`from_json` restores the task (and its image)."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CostaTask:
        scene = dict(data["scene"])
        scene["shapes"] = [Shape(**s) for s in scene["shapes"]]
        steps = [Subtask(**s) for s in data["subtasks"]]
        return cls(data["id"], data["instruction"], Scene(**scene), steps)


def solve_reference(task: CostaTask, tools: dict[str, str] | None = None) -> Image:
    """Apply the ground-truth subtasks with the reference tools (``tools`` overrides some
    subtask types' tool names); the final image."""
    choice = {**REFERENCE, **(tools or {})}
    state = ImageState(task.image)
    for st in task.subtasks:
        state = TOOLS[choice[st.type]](state, **st.params)
    return state.image


# --- generation ------------------------------------------------------------------------------


_REACH = {"circle": 1.0, "square": 1.42, "triangle": 1.25}


def _scene(rng: np.random.Generator, size: int) -> Scene:
    light = [[int(v) for v in rng.integers(185, 250, 3)] for _ in range(2)]
    direction = str(rng.choice(["solid", "horizontal", "vertical", "diagonal"]))
    pairs = [(k, c) for k in KINDS for c in HUES]
    shapes: list[Shape] = []
    wanted = int(rng.integers(1, 5))
    for _ in range(200):
        if len(shapes) == wanted:
            break
        kind, colour = pairs[int(rng.integers(len(pairs)))]
        r = int(rng.integers(round(0.06 * size), round(0.09 * size) + 1))
        x = int(rng.integers(r + 4, size - r - 4))
        y = int(rng.integers(round(0.3 * size) + r, round(0.7 * size) - r + 1))
        clash = any((kind, colour) == (s.kind, s.color) for s in shapes)
        reach = r * _REACH[kind]  # the centre's distance to the farthest corner
        gaps = [np.hypot(x - s.x, y - s.y) - reach - s.r * _REACH[s.kind] for s in shapes]
        if not clash and min(gaps, default=99) > 8:
            shapes.append(Shape(kind, colour, x, y, r))
    scene = Scene(size, light[: 1 if direction == "solid" else 2], direction, shapes)
    if rng.random() < 0.5:
        scene.text, scene.text_scale = str(rng.choice(WORDS)), 0.9 * size / 256
        font, thick = cv2.FONT_HERSHEY_SIMPLEX, max(2, size // 128)
        (tw, _), _ = cv2.getTextSize(scene.text, font, scene.text_scale, thick)
        scene.text_org = [int(rng.integers(4, max(5, size - tw - 4))), round(0.9 * size)]
    if rng.random() < 0.25:
        scene.noise, scene.noise_seed = float(rng.uniform(8, 14)), int(rng.integers(2**31))
    return scene


Step = tuple[str, dict[str, Any], int | None]
"""A planned instruction step: subtask type, params, and the object it acts on."""


def _plan(rng: np.random.Generator, scene: Scene, budget: int) -> list[Step] | None:
    """Choose steps costing exactly ``budget`` subtasks (an object edit costs two: its
    locate and itself), in a fixed phase order; ``None`` if the scene cannot."""
    n = len(scene.shapes)
    colour = [s.color for s in scene.shapes]
    touched, reserved = [False] * n, [False] * n
    chosen: list[tuple[int, str, dict[str, Any], int | None]] = []
    used: set[str] = set()
    if scene.noise:
        chosen.append((0, "denoise", {}, None))
    while (cost := sum(1 + (o is not None) for _, _, _, o in chosen)) < budget:
        room, free = budget - cost, [i for i in range(n) if not touched[i] and not reserved[i]]
        kinds = ["add_text", "crop", "rotate", "resize"]
        kinds += ["remove_text"] if scene.text else []
        kinds += ["recolor", "remove"] * 2 if room >= 2 and free else []
        if not scene.noise and len(free) >= 1 and not used & {"sharpen", "blur_background"}:
            kinds += ["sharpen"] + (["blur_background"] if room >= 2 and len(free) >= 2 else [])
        kinds = [k for k in kinds if k not in used or k in ("recolor", "remove")]
        if not kinds:
            return None
        kind = kinds[int(rng.integers(len(kinds)))]
        used.add(kind)
        obj: int | None = None
        params: dict[str, Any] = {}
        phase = {"remove_text": 1, "add_text": 3, "sharpen": 4}.get(kind, 5)
        if kind in ("recolor", "remove", "blur_background"):
            obj = free[int(rng.integers(len(free)))]
            phase = 1 if kind != "blur_background" else 2
            touched[obj] = kind != "blur_background"
            if kind == "recolor":
                same = [j for j in range(n) if scene.shapes[j].kind == scene.shapes[obj].kind]
                taken = {colour[j] for j in same}
                options = [c for c in HUES if c not in taken]
                colour[obj] = params["color"] = options[int(rng.integers(len(options)))]
        if kind in ("sharpen", "blur_background"):
            keep = [i for i in free if i != obj]
            reserved[keep[int(rng.integers(len(keep)))]] = True
            if obj is not None:
                reserved[obj] = True
        if kind == "add_text":
            spots = ["top", "top-left", "top-right"] + ([] if scene.text else ["bottom"])
            params = {"text": str(rng.choice(NEW_WORDS)), "position": str(rng.choice(spots))}
            params["color"] = "black"
        elif kind == "crop":
            params = {"region": str(rng.choice(CROPS))}
        elif kind == "rotate":
            params = {"angle": int(rng.choice([90, 180, 270]))}
        elif kind == "resize":
            half = scene.size // 2
            params = {"scale": 0.5} if rng.random() < 0.5 else {"width": half, "height": half}
        chosen.append((phase, kind, params, obj))
    if cost != budget:
        return None
    return [(k, p, o) for _, k, p, o in sorted(chosen, key=lambda c: c[0])]


_PHRASES = {
    "recolor": ["recolor the {d} {c}", "make the {d} {c}", "change the color of the {d} to {c}"],
    "remove": ["remove the {d}", "erase the {d}", "delete the {d} from the picture"],
    "remove_text": ["remove the text", "erase the caption", "delete the writing"],
    "add_text": ['add the text "{t}" {p}', 'write "{t}" {p}'],
    "crop": ["crop to the {r}", "crop the image to its {r}", "keep only the {r}"],
    "rotate": ["rotate the image {a} degrees clockwise", "turn the picture {a} degrees clockwise"],
    "resize": ["resize the image to {w}x{h}", "scale the image to {w} by {h} pixels"],
    "denoise": ["remove the noise", "denoise the image", "clean up the grain"],
    "sharpen": ["sharpen the image", "make the image crisper"],
    "blur_background": ["blur the background behind the {d}", "blur everything except the {d}"],
}
_SPOTS = {"top": "at the top", "bottom": "at the bottom", "top-left": "in the top-left corner",
          "top-right": "in the top-right corner"}  # fmt: skip


def _task(rng: np.random.Generator, size: int, budget: int, task_id: str) -> CostaTask:
    for _ in range(500):
        scene = _scene(rng, size)
        plan = _plan(rng, scene, budget)
        if plan is not None:
            break
    else:  # pragma: no cover - every budget up to 8 is reachable with enough tries
        raise ConfigError(f"could not plan a task with {budget} subtasks")
    shapes, colour = scene.shapes, [s.color for s in scene.shapes]
    alive = [True] * len(shapes)
    subtasks: list[Subtask] = []
    phrases: list[str] = []

    def last() -> list[int]:  # each step works on the previous step's output
        return [len(subtasks) - 1] if subtasks else []

    shape = (size, size)  # (height, width) so far: a resize after a crop names the real size
    for kind, params, obj in plan:
        get = params.get
        fields = {"c": get("color"), "t": get("text"), "r": get("region"), "a": get("angle")}
        fields["p"] = _SPOTS.get(get("position", ""))
        if kind == "crop":
            _, _, width, height = crop_box(shape, params["region"])
            shape = (height, width)
        elif kind == "rotate" and params["angle"] % 180:
            shape = shape[::-1]
        elif kind == "resize":
            width, height = resize_size(shape, params)
            fields["w"], fields["h"], shape = width, height, (height, width)
        if obj is not None:
            kinds = [shapes[j].kind for j in range(len(shapes)) if alive[j]]
            colours = [colour[j] for j in range(len(shapes)) if alive[j]]
            names = [f"{colour[obj]} {shapes[obj].kind}"]
            names += [shapes[obj].kind] if kinds.count(shapes[obj].kind) == 1 else []
            names += [f"{colour[obj]} shape"] if colours.count(colour[obj]) == 1 else []
            pick = int(rng.integers(len(names))) if rng.random() < 0.4 else 0
            fields["d"] = target = names[pick]
            subtasks.append(Subtask(len(subtasks), "locate", {"target": target}, last(), obj))
            params = {"target": target, **params}
            if kind == "recolor":
                colour[obj] = params["color"]
            alive[obj] = kind != "remove"
        subtasks.append(Subtask(len(subtasks), kind, params, last(), obj))
        phrases.append(str(rng.choice(_PHRASES[kind])).format(**fields))
    text = phrases[0][0].upper() + phrases[0][1:]
    for p in phrases[1:]:
        text += str(rng.choice([", then ", ", and then ", ". Next, ", ". After that, "])) + p
    return CostaTask(task_id, text + ".", scene, subtasks)


def generate(
    n: int, *, seed: int, min_subtasks: int = 1, max_subtasks: int = 8, size: int = 256
) -> list[CostaTask]:
    """``n`` tasks, each of ``min_subtasks``..``max_subtasks`` ground-truth subtasks
    (locate steps included), on ``size``x``size`` images. Task ``i`` depends only on
    ``seed`` and ``i``, so a longer set starts with a shorter one."""
    if not 1 <= min_subtasks <= max_subtasks <= 8 or size < 64:
        raise ConfigError("need 1 <= min_subtasks <= max_subtasks <= 8 and size >= 64")
    tasks = []
    for i in range(n):
        rng = np.random.default_rng([seed, i])
        budget = int(rng.integers(min_subtasks, max_subtasks + 1))
        tasks.append(_task(rng, size, budget, f"costa-{seed}-{i:04d}"))
    return tasks


def write_tasks(tasks: list[CostaTask], folder: str | Path) -> Path:
    """Write ``images/<id>.png`` and ``tasks.jsonl`` (one task per line, with its image's
    relative path) under ``folder``; the path of ``tasks.jsonl``."""
    root = Path(folder)
    (root / "images").mkdir(parents=True, exist_ok=True)
    with (root / "tasks.jsonl").open("w") as f:
        for t in tasks:
            save_image(t.image, root / "images" / f"{t.id}.png")
            f.write(json.dumps({**t.to_json(), "image": f"images/{t.id}.png"}) + "\n")
    return root / "tasks.jsonl"


def read_tasks(folder: str | Path) -> list[CostaTask]:
    """The tasks :func:`write_tasks` wrote."""
    path = Path(folder) / "tasks.jsonl"
    if not path.is_file():
        raise ConfigError(f"no tasks.jsonl in {folder}")
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    return [CostaTask.from_json(json.loads(line)) for line in lines]

"""The image domain for CoSTA*: tools, verifiers, and the synthetic task generator."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

np = pytest.importorskip("numpy")
cv2 = pytest.importorskip("cv2")
pytest.importorskip("PIL")

from toolpath.errors import ConfigError, ImageError, ToolArgumentsError, ToolError  # noqa: E402
from toolpath.evals.costa.tasks import (  # noqa: E402
    CostaTask,
    Scene,
    Shape,
    generate,
    read_tasks,
    render,
    solve_reference,
    write_tasks,
)
from toolpath.tools.image.ops import (  # noqa: E402
    HUES,
    TOOLS,
    ImageState,
    catalog,
    load_image,
    save_image,
    tools_for,
    validate_params,
)
from toolpath.tools.image.verify import VLMVerifier, passes, verify  # noqa: E402
from toolpath.tools.image.vocabulary import (  # noqa: E402
    band_mask,
    dark_mask,
    estimate_noise,
    hue_labels,
    ocr_available,
    ocr_words,
    parse_target,
    sharpness,
)

BG = (225, 220, 205)
SCENE = Scene(
    256,
    [list(BG)],
    "solid",
    [Shape("circle", "red", 70, 100, 28), Shape("square", "blue", 180, 100, 24),
     Shape("triangle", "green", 128, 165, 24)],
    text="HELLO",
    text_org=[70, 235],
    text_scale=0.9,
)  # fmt: skip
R = render(SCENE)
RED, BLUE, GREEN = R.masks


def state() -> ImageState:
    return ImageState(R.image)


def core(mask: Any, px: int = 3) -> Any:
    return cv2.erode(mask.astype(np.uint8), np.ones((2 * px + 1,) * 2, np.uint8)) > 0


def grow(mask: Any, px: int) -> Any:
    return cv2.dilate(mask.astype(np.uint8), np.ones((2 * px + 1,) * 2, np.uint8)) > 0


def share(img: Any, mask: Any, colour: str) -> float:
    return float((hue_labels(img, 60)[mask] == list(HUES).index(colour)).mean())


def iou(a: Any, b: Any) -> float:
    return float((a & b).sum() / (a | b).sum())


def noisy(img: Any, sigma: float = 12) -> Any:
    noise = np.random.default_rng(0).normal(0, sigma, img.shape)
    return np.clip(img + noise, 0, 255).astype(np.uint8)


# -- files and state ----------------------------------------------------------------------------


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    path = save_image(R.image, tmp_path / "scene.png")
    assert np.array_equal(load_image(path), R.image)


def test_load_image_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="not found"):
        load_image(tmp_path / "missing.png")
    (tmp_path / "notes.txt").write_text("not a picture")
    with pytest.raises(ImageError, match="not an image"):
        load_image(tmp_path / "notes.txt")
    good = save_image(R.image, tmp_path / "good.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(good[: len(good) // 2])
    with pytest.raises(ImageError, match="damaged or truncated"):
        load_image(tmp_path / "cut.png")
    with pytest.raises(ImageError, match="not a file"):
        load_image(tmp_path)
    assert ImageError.exit_code == 2
    with pytest.raises(ImageError, match="uint8 RGB"):
        ImageState(np.zeros((4, 4, 3), np.float32))


def test_tools_need_a_located_mask_and_never_mutate_their_input() -> None:
    s = state()
    with pytest.raises(ToolError, match="locate it first"):
        TOOLS["recolor_hue"](s, target="red circle", color="blue")
    located = TOOLS["locate_shape"](s, target="the red circle")
    out = TOOLS["recolor_fill"](located, target="red circle", color="blue")
    assert np.array_equal(s.image, R.image) and not s.masks
    assert out.history == ("locate_shape", "recolor_fill")
    cropped = TOOLS["crop"](located, region="left half")
    assert cropped.masks["red circle"].shape == (256, 128)
    assert cropped.boxes["red circle"] == located.boxes["red circle"]  # circle is in the left half
    assert "red circle" not in TOOLS["crop"](located, region="right half").masks


# -- tools do what their names say --------------------------------------------------------------


@pytest.mark.parametrize("name", ["locate_color", "locate_shape"])
def test_locate(name: str) -> None:
    for target, truth in (("red circle", RED), ("blue square", BLUE), ("green triangle", GREEN)):
        out = TOOLS[name](state(), target=target)
        assert iou(out.masks[target], truth) > 0.85
        assert passes("locate", R.image, out, {"target": target}, truth=truth)
        assert passes("locate", R.image, out, {"target": target})  # colour + shape heuristic
    wrong = TOOLS[name](state(), target="blue square")
    assert not passes("locate", R.image, wrong, {"target": "blue square"}, truth=RED)


def test_locate_by_shape_alone_needs_contour_analysis() -> None:
    out = TOOLS["locate_shape"](state(), target="triangle")
    assert iou(out.masks["triangle"], GREEN) > 0.85
    with pytest.raises(ToolError, match="needs a colour"):
        TOOLS["locate_color"](state(), target="triangle")
    with pytest.raises(ToolError, match="no 'yellow circle' found"):
        TOOLS["locate_shape"](state(), target="yellow circle")
    assert parse_target("The Red disk") == ("red", "circle")


def _face() -> Any:
    yy, xx = np.mgrid[0:256, 0:256].astype(np.float32)

    def blob(cx: float, cy: float, sx: float, sy: float) -> Any:
        return np.exp(-(((xx - cx) / sx) ** 2 + ((yy - cy) / sy) ** 2) / 2)

    f = np.full((256, 256), 60, np.float32)
    f[((xx - 128) / 55) ** 2 + ((yy - 130) / 72) ** 2 <= 1] = 200
    f = cv2.GaussianBlur(f, (0, 0), 4) * (1 - 0.25 * (1 - blob(128, 130, 50, 72)))
    for dx in (-22, 22):
        f *= (1 - 0.6 * blob(128 + dx, 116, 9, 5)) * (1 - 0.5 * blob(128 + dx, 100, 12, 3))
    f *= (1 - 0.2 * blob(128, 144, 5, 4)) * (1 - 0.4 * blob(128, 164, 15, 4))
    return np.stack([f, f * 0.85, f * 0.75], -1).clip(0, 255).astype(np.uint8)


def test_locate_face_with_the_haar_cascade() -> None:
    out = TOOLS["locate_face"](ImageState(_face()), target="face")
    x, y, w, h = out.boxes["face"]
    assert x < 128 < x + w and y < 130 < y + h and w > 80
    assert out.masks["face"][130, 128]
    with pytest.raises(ToolError, match="no face found"):
        TOOLS["locate_face"](state(), target="face")
    with pytest.raises(ToolError, match="only finds faces"):
        TOOLS["locate_face"](state(), target="red circle")


@pytest.mark.parametrize("name", ["segment_threshold", "segment_grabcut"])
def test_segment_refines_a_located_box(name: str) -> None:
    located = TOOLS["locate_color"](state(), target="red circle")
    out = TOOLS[name](located, target="red circle")
    assert iou(out.masks["red circle"], RED) > 0.85
    assert passes("segment", R.image, out, {"target": "red circle"}, truth=RED)
    with pytest.raises(ToolError, match="no box"):
        TOOLS[name](state(), target="red circle")


@pytest.mark.parametrize("name", ["recolor_hue", "recolor_fill"])
def test_recolor(name: str) -> None:
    located = TOOLS["locate_shape"](state(), target="red circle")
    out = TOOLS[name](located, target="red circle", color="blue").image
    assert share(out, core(RED), "blue") > 0.95
    outside = ~grow(RED, 4)
    assert np.abs(out[outside].astype(int) - R.image[outside]).max() == 0
    params = {"target": "red circle", "color": "blue"}
    assert passes("recolor", R.image, out, params, truth=RED)
    assert passes("recolor", R.image, out, params)  # finds the circle itself
    assert verify("recolor", R.image, out, {**params, "color": "green"}) < 0.2  # wrong colour
    assert verify("recolor", R.image, R.image, params) < 0.2  # nothing done
    with pytest.raises(ToolArgumentsError, match="unknown colour"):
        TOOLS[name](located, target="red circle", color="teal")


@pytest.mark.parametrize("name", ["remove_telea", "remove_ns", "remove_patch"])
def test_remove(name: str) -> None:
    located = TOOLS["locate_shape"](state(), target="red circle")
    out = TOOLS[name](located, target="red circle").image
    assert share(out, RED, "red") < 0.01
    assert np.abs(np.median(out[RED], 0) - BG).max() < 12
    assert share(out, core(BLUE), "blue") > 0.95  # the other objects stay
    assert passes("remove", R.image, out, {"target": "red circle"}, truth=RED)
    assert not passes("remove", R.image, R.image, {"target": "red circle"}, truth=RED)
    recoloured = TOOLS["recolor_fill"](located, target="red circle", color="blue").image
    assert not passes("remove", R.image, recoloured, {"target": "red circle"}, truth=RED)


@pytest.mark.parametrize("name", ["remove_text_telea", "remove_text_ns"])
def test_remove_text(name: str) -> None:
    out = TOOLS[name](state()).image
    before, after = dark_mask(R.image)[R.text_mask].sum(), dark_mask(out)[R.text_mask].sum()
    assert after < 0.1 * before
    assert share(out, core(RED), "red") > 0.95
    assert passes("remove_text", R.image, out, {})
    assert passes("remove_text", R.image, out, {}, truth=R.text_mask)
    assert not passes("remove_text", R.image, R.image, {})


@pytest.mark.parametrize("name", ["add_text_cv2", "add_text_pil"])
def test_add_text(name: str) -> None:
    params = {"text": "Summer", "position": "top-left", "color": "black"}
    out = TOOLS[name](state(), **params).image
    band = band_mask(out.shape, "top-left")
    assert dark_mask(out)[band].sum() > 100 + dark_mask(R.image)[band].sum()
    assert np.array_equal(out[~band], R.image[~band])
    assert passes("add_text", R.image, out, params)
    assert not passes("add_text", R.image, out, {**params, "position": "bottom"})
    assert not passes("add_text", R.image, R.image, params)


def test_crop() -> None:
    out = TOOLS["crop"](state(), region="left half").image
    assert out.shape == (256, 128, 3) and np.array_equal(out, R.image[:, :128])
    assert TOOLS["crop"](state(), region=[10, 20, 30, 40]).image.shape == (40, 30, 3)
    assert passes("crop", R.image, out, {"region": "left half"})
    assert not passes("crop", R.image, out, {"region": "right half"})
    assert not passes("crop", R.image, R.image, {"region": "left half"})
    with pytest.raises(ToolArgumentsError, match="not inside"):
        TOOLS["crop"](state(), region=[200, 0, 100, 10])
    with pytest.raises(ToolArgumentsError, match="left half"):
        TOOLS["crop"](state(), region="the middle bit")


@pytest.mark.parametrize("name", ["resize_area", "resize_lanczos"])
def test_resize(name: str) -> None:
    out = TOOLS[name](state(), scale=0.5).image
    assert out.shape == (128, 128, 3)
    assert TOOLS[name](state(), width=64).image.shape == (64, 64, 3)  # keeps the aspect ratio
    assert passes("resize", R.image, out, {"scale": 0.5})
    assert not passes("resize", R.image, out, {"width": 100, "height": 128})


@pytest.mark.parametrize("name", ["rotate_exact", "rotate_affine"])
def test_rotate(name: str) -> None:
    wide = TOOLS["crop"](state(), region="top half")
    out = TOOLS[name](wide, angle=90)
    assert out.image.shape == (256, 128, 3)
    assert np.array_equal(out.image[:, -1], wide.image[0])  # clockwise: the top row goes right
    assert passes("rotate", wide.image, out, {"angle": 90})
    assert not passes("rotate", wide.image, out, {"angle": 270})


def test_rotate_by_any_angle() -> None:
    with pytest.raises(ToolError, match="multiples of 90"):
        TOOLS["rotate_exact"](state(), angle=45)
    out = TOOLS["rotate_affine"](state(), angle=45).image
    assert out.shape[0] == out.shape[1] == round(256 * 2**0.5)
    assert passes("rotate", R.image, out, {"angle": 45})


@pytest.mark.parametrize("name", ["denoise_gaussian", "denoise_nlmeans"])
def test_denoise(name: str) -> None:
    grainy = noisy(R.image)
    out = TOOLS[name](ImageState(grainy)).image
    assert estimate_noise(out) < 0.6 * estimate_noise(grainy)
    assert passes("denoise", grainy, out, {})
    assert not passes("denoise", grainy, grainy, {})


@pytest.mark.parametrize("name", ["sharpen_unsharp", "sharpen_laplacian"])
def test_sharpen(name: str) -> None:
    soft = cv2.GaussianBlur(R.image, (0, 0), 1.5)
    out = TOOLS[name](ImageState(soft)).image
    assert sharpness(out) > 1.5 * sharpness(soft)
    assert passes("sharpen", soft, out, {})
    assert not passes("sharpen", soft, soft, {})
    assert not passes("sharpen", R.image, soft, {})


@pytest.mark.parametrize("name", ["blur_bg_gaussian", "blur_bg_bilateral"])
def test_blur_background(name: str) -> None:
    grainy = noisy(R.image, 10)  # a textured background, the easy case for both
    located = TOOLS["locate_shape"](ImageState(grainy), target="red circle")
    out = TOOLS[name](located, target="red circle").image
    outside = ~grow(RED, 8)
    assert sharpness(out, outside) < 0.5 * sharpness(grainy, outside)
    assert np.array_equal(out[core(RED, 4)], grainy[core(RED, 4)])
    assert passes("blur_background", grainy, out, {"target": "red circle"}, truth=RED)
    assert not passes("blur_background", grainy, grainy, {"target": "red circle"}, truth=RED)


# -- the catalog ----------------------------------------------------------------------------------


def test_catalog_is_plain_data_with_alternatives_per_type() -> None:
    specs = catalog()
    assert len(specs) >= 12 and json.loads(json.dumps(specs)) == specs
    by_type: dict[str, list[dict[str, Any]]] = {}
    for spec in specs:
        assert {
            "name",
            "serves",
            "input",
            "output",
            "requires",
            "cost",
            "quality",
            "priors",
        } <= set(spec)
        for t in spec["serves"]:
            by_type.setdefault(t, []).append(spec)
    multi = {t: s for t, s in by_type.items() if len(s) >= 2}
    assert len(by_type) >= 6 and len(multi) >= 6
    for t, specs_t in multi.items():
        priors = {(s["priors"][t]["cost"], s["priors"][t]["quality"]) for s in specs_t}
        assert len(priors) == len(specs_t), t  # alternatives differ in cost or quality
    assert {s["name"] for s in by_type["recolor"]} == {t.name for t in tools_for("recolor")}
    assert all(s["requires"] for s in by_type["recolor"] + by_type["remove"])
    validate_params("recolor", {"target": "red circle", "color": "blue"})
    with pytest.raises(ToolArgumentsError, match="needs color"):
        validate_params("recolor", {"target": "red circle"})
    with pytest.raises(ToolArgumentsError, match="unknown subtask"):
        validate_params("paint", {})


def test_importing_toolpath_tools_does_not_import_opencv() -> None:
    code = "import sys, toolpath.tools; assert 'cv2' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


# -- verifiers ------------------------------------------------------------------------------------


@dataclass
class _Reply:
    content: str


class _FakeVLM:
    def __init__(self, answer: str) -> None:
        self.answer, self.calls = answer, []  # type: ignore[var-annotated]

    def complete(self, messages: list[dict[str, Any]], **kwargs: Any) -> _Reply:
        self.calls.append((messages, kwargs))
        return _Reply(self.answer)


def test_vlm_verifier_request_and_answers() -> None:
    model = _FakeVLM("Yes, the circle is blue.")
    small = R.image[:32, :48]
    verifier = VLMVerifier(model)
    params = {"target": "red circle", "color": "blue"}
    assert verifier("recolor", ImageState(small), small, params) == (1.0, True)
    (messages, kwargs), = model.calls  # fmt: skip
    assert kwargs["temperature"] == 0.0
    (msg,) = messages
    text, first, second = msg["content"]
    assert msg["role"] == "user" and "recolor (target: red circle, color: blue)" in text["text"]
    assert first["type"] == second["type"] == "image_url"
    head, data = first["image_url"]["url"].split(",", 1)
    assert head == "data:image/png;base64"
    png = cv2.imdecode(np.frombuffer(base64.b64decode(data), np.uint8), cv2.IMREAD_COLOR)
    assert png.shape == (32, 48, 3)
    assert [VLMVerifier.parse(a) for a in ("No.", " yes", "0.7", "maybe", "")] == [0, 1, 0.7, 0, 0]
    assert VLMVerifier(_FakeVLM("0.4"), pass_at=0.3)("denoise", small, small, {}) == (0.4, True)


def test_text_checks_work_without_ocr(monkeypatch: pytest.MonkeyPatch) -> None:
    from toolpath.tools.image import vocabulary

    monkeypatch.setattr(vocabulary, "ocr_available", lambda: False)
    assert ocr_words(R.image) == set()
    out = TOOLS["remove_text_ns"](state()).image
    assert passes("remove_text", R.image, out, {})
    assert not passes("remove_text", R.image, R.image, {})
    written = TOOLS["add_text_cv2"](state(), text="Cats", position="top").image
    assert passes("add_text", R.image, written, {"text": "Cats", "position": "top"})


@pytest.mark.skipif(not ocr_available(), reason="OCR needs pytesseract and the tesseract program")
def test_ocr_reads_the_scene_text() -> None:
    assert "HELLO" in ocr_words(R.image)
    assert "HELLO" not in ocr_words(TOOLS["remove_text_telea"](state()).image)


# -- the task generator ---------------------------------------------------------------------------


def test_generator_is_deterministic_and_sized() -> None:
    tasks = generate(40, seed=7)
    assert [t.to_json() for t in tasks[:10]] == [t.to_json() for t in generate(10, seed=7)]
    assert [t.to_json() for t in tasks[:10]] != [t.to_json() for t in generate(10, seed=8)]
    counts = {len(t.subtasks) for t in tasks}
    assert min(counts) >= 1 and max(counts) <= 8 and len(counts) >= 5
    assert {len(t.subtasks) for t in generate(5, seed=1, min_subtasks=8)} == {8}
    small = generate(3, seed=1, size=128)
    assert all(t.image.shape == (128, 128, 3) for t in small)
    with pytest.raises(ConfigError):
        generate(1, seed=0, min_subtasks=3, max_subtasks=2)


def test_generated_references_are_unambiguous() -> None:
    for task in generate(40, seed=3):
        colour = [s.color for s in task.scene.shapes]
        alive = [True] * len(colour)
        for st in task.subtasks:
            assert st.parents == ([st.id - 1] if st.id else [])
            if st.type == "locate":
                c, k = parse_target(st.params["target"])
                hits = [
                    i for i, s in enumerate(task.scene.shapes)
                    if alive[i] and c in (None, colour[i]) and k in (None, s.kind)
                ]  # fmt: skip
                assert hits == [st.obj], (task.instruction, st.params)
            elif st.type == "recolor":
                colour[st.obj] = st.params["color"]
            elif st.type == "remove":
                alive[st.obj] = False


def test_json_round_trip_and_folder(tmp_path: Path) -> None:
    tasks = generate(3, seed=5, min_subtasks=4)
    again = CostaTask.from_json(json.loads(json.dumps(tasks[0].to_json())))
    assert again.to_json() == tasks[0].to_json()
    assert np.array_equal(again.image, tasks[0].image)
    jsonl = write_tasks(tasks, tmp_path / "set")
    lines = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert [line["id"] for line in lines] == [t.id for t in tasks]
    assert np.array_equal(load_image(tmp_path / "set" / lines[1]["image"]), tasks[1].image)
    assert [t.to_json() for t in read_tasks(tmp_path / "set")] == [t.to_json() for t in tasks]


def test_exact_check_passes_for_reference_edits_and_fails_unedited() -> None:
    tasks = generate(16, seed=2)
    assert any(st.type == "locate" for t in tasks for st in t.subtasks)
    for task in tasks:
        assert task.check(solve_reference(task)), (
            task.instruction,
            task.check_report(solve_reference(task)),
        )
        assert not task.check(task.image), task.instruction


def test_exact_check_catches_the_wrong_colour_and_the_wrong_crop() -> None:
    shapes = [Shape("circle", "red", 70, 120, 24), Shape("square", "yellow", 180, 120, 22)]
    scene = Scene(256, [[230, 230, 230], [200, 210, 220]], "horizontal", shapes)
    task = CostaTask("t", "Recolor the red circle blue, then crop to the left half.", scene, [])
    from toolpath.evals.costa.tasks import Subtask

    task.subtasks = [
        Subtask(0, "locate", {"target": "red circle"}, [], 0),
        Subtask(1, "recolor", {"target": "red circle", "color": "blue"}, [0], 0),
        Subtask(2, "crop", {"region": "left half"}, [1]),
    ]
    assert task.check(solve_reference(task))
    assert not task.check(solve_reference(task, {"recolor": "recolor_hue"})[:, :, ::-1])
    wrong = TOOLS["recolor_fill"](TOOLS["locate_shape"](ImageState(task.image), target="red circle"),
                                  target="red circle", color="green").image  # fmt: skip
    assert not task.check(wrong[:, :128])
    assert not task.check(solve_reference(task)[:, :127])

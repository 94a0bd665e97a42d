"""The image-editing domain for CoSTA*: the catalog, priors, tree completion, run and verify."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from toolpath.agents.costa.search import ToolInfo
from toolpath.tools.image.ops import TOOLS, ImageState, load_image, save_image
from toolpath.tools.image.verify import THRESHOLDS, verify
from toolpath.tools.image.vocabulary import SUBTASK_SCHEMAS, key, validate_params

NEEDS_MASK = ("recolor", "remove", "blur_background", "segment")
EXAMPLE = (
    '"Make the red circle green, then crop to the left half" -> {"subtasks": ['
    '{"id": "s1", "type": "locate", "params": {"target": "red circle"}, "parents": []}, '
    '{"id": "s2", "type": "recolor", "params": {"target": "red circle", "color": "green"}, '
    '"parents": ["s1"]}, '
    '{"id": "s3", "type": "crop", "params": {"region": "left half"}, "parents": ["s2"]}]}'
)


class ImageDomain:
    """Image editing on the CPU (Pillow and OpenCV tools, programmatic verifiers)."""

    subtask_schemas: Mapping[str, Mapping[str, Any]] = SUBTASK_SCHEMAS
    example = EXAMPLE
    start_types: Sequence[str] = ("image",)
    context_types: Sequence[type] = (ImageState,)

    def __init__(self) -> None:
        # a tool's needs (a located object) are expressed as parents in the tree instead
        self.tools: Sequence[ToolInfo] = [
            ToolInfo(t.name, frozenset(t.serves)) for t in TOOLS.values()
        ]

    def priors(self) -> dict[tuple[str, str], tuple[float, float]]:
        return {(t.name, kind): prior for t in TOOLS.values() for kind, prior in t.priors.items()}

    def complete_tree(self, subtasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Check each subtask's parameters, and give every edit of an object a ``locate`` of
        that object among its ancestors (inserted when the model left it out)."""
        out: list[dict[str, Any]] = []
        by_id = {str(s.get("id")): s for s in subtasks}
        for s in subtasks:
            s = {
                **s,
                "id": str(s.get("id")),
                "params": dict(s.get("params") or {}),
                "parents": [str(p) for p in s.get("parents") or []],
            }
            if s.get("type") in SUBTASK_SCHEMAS:
                validate_params(s["type"], s["params"])
            target = s["params"].get("target")
            if s.get("type") in NEEDS_MASK and target and not _located(s, target, by_id):
                locate = {
                    "id": f"{s['id']}-locate",
                    "type": "locate",
                    "params": {"target": target},
                    "parents": list(s["parents"]),
                }
                out.append(locate)
                s["parents"] = [locate["id"]]
            out.append(s)
        return out

    @staticmethod
    def load_input(path: str) -> ImageState:
        """The image at ``path`` as the working object."""
        return ImageState(load_image(path))

    @staticmethod
    def save_output(context: ImageState, path: str) -> Path:
        """Write the edited image; its path."""
        return save_image(context.image, path)

    def run(self, tool: str, kind: str, params: Mapping[str, Any], context: Any) -> ImageState:
        state = context if isinstance(context, ImageState) else ImageState(context)
        return TOOLS[tool](state, **params)

    def verify(
        self, kind: str, before: Any, after: Any, params: Mapping[str, Any]
    ) -> tuple[float, bool]:
        score = verify(kind, before, after, params)
        return score, score >= THRESHOLDS.get(kind, 0.5)


def _located(s: dict[str, Any], target: str, by_id: dict[str, dict[str, Any]]) -> bool:
    """Whether an ancestor of ``s`` locates or segments ``target``."""
    seen, todo = set(), [str(p) for p in s.get("parents") or []]
    while todo:
        pid = todo.pop()
        if pid in seen or pid not in by_id:
            continue
        seen.add(pid)
        parent = by_id[pid]
        if parent.get("type") in ("locate", "segment") and key(
            str((parent.get("params") or {}).get("target", ""))
        ) == key(target):
            return True
        todo += [str(p) for p in parent.get("parents") or []]
    return False

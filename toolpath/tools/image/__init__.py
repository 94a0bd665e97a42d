"""CoSTA*'s image domain as tools: the subtask vocabulary (:data:`SUBTASK_SCHEMAS`), the
Pillow/OpenCV operations (:class:`ImageTool`, :data:`TOOLS`, :func:`tools_for`) over an
:class:`ImageState`, and the programmatic verifiers (:func:`passes`, :class:`VLMVerifier`).
OpenCV loads only when an operation runs."""

from typing import TYPE_CHECKING

from toolpath.lazy import lazy_exports

_WHERE = {
    "SUBTASK_SCHEMAS": "toolpath.tools.image.vocabulary",
    "validate_params": "toolpath.tools.image.vocabulary",
    "ImageState": "toolpath.tools.image.ops",
    "ImageTool": "toolpath.tools.image.ops",
    "TOOLS": "toolpath.tools.image.ops",
    "load_image": "toolpath.tools.image.ops",
    "save_image": "toolpath.tools.image.ops",
    "tools_for": "toolpath.tools.image.ops",
    "VERIFIERS": "toolpath.tools.image.verify",
    "VLMVerifier": "toolpath.tools.image.verify",
    "passes": "toolpath.tools.image.verify",
}
__all__ = sorted(_WHERE)
__getattr__, __dir__ = lazy_exports(__name__, _WHERE)

if TYPE_CHECKING:
    from toolpath.tools.image.ops import TOOLS as TOOLS
    from toolpath.tools.image.ops import ImageState as ImageState
    from toolpath.tools.image.ops import ImageTool as ImageTool
    from toolpath.tools.image.ops import load_image as load_image
    from toolpath.tools.image.ops import save_image as save_image
    from toolpath.tools.image.ops import tools_for as tools_for
    from toolpath.tools.image.verify import VERIFIERS as VERIFIERS
    from toolpath.tools.image.verify import VLMVerifier as VLMVerifier
    from toolpath.tools.image.verify import passes as passes
    from toolpath.tools.image.vocabulary import SUBTASK_SCHEMAS as SUBTASK_SCHEMAS
    from toolpath.tools.image.vocabulary import validate_params as validate_params

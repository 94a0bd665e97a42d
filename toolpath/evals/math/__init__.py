"""GSM8K and MATH: the task family (:class:`MathTask`, made by :func:`task`), the agent for a
method name (:func:`math_agent_for`: ``dotamath``, ``pot``, ``cot``), the ToRA grading
(:func:`grade`, :func:`is_equiv`, :func:`is_strict`, :func:`normalize`) and the datasets
(:func:`gsm8k`, :func:`math500`, :func:`math_full`; :func:`download` fetches them)."""

from typing import TYPE_CHECKING

from toolpath.lazy import lazy_exports

_WHERE = {
    "METHODS": "toolpath.evals.math.tasks",
    "MathTask": "toolpath.evals.math.tasks",
    "math_agent_for": "toolpath.evals.math.tasks",
    "task": "toolpath.evals.math.tasks",
    "Grade": "toolpath.evals.math.grading",
    "grade": "toolpath.evals.math.grading",
    "is_equiv": "toolpath.evals.math.grading",
    "is_strict": "toolpath.evals.math.grading",
    "normalize": "toolpath.evals.math.grading",
    "download": "toolpath.evals.math.datasets",
    "gsm8k": "toolpath.evals.math.datasets",
    "math500": "toolpath.evals.math.datasets",
    "math_full": "toolpath.evals.math.datasets",
}
__all__ = sorted(_WHERE)
__getattr__, __dir__ = lazy_exports(__name__, _WHERE)

if TYPE_CHECKING:
    from toolpath.evals.math.datasets import download as download
    from toolpath.evals.math.datasets import gsm8k as gsm8k
    from toolpath.evals.math.datasets import math500 as math500
    from toolpath.evals.math.datasets import math_full as math_full
    from toolpath.evals.math.grading import Grade as Grade
    from toolpath.evals.math.grading import grade as grade
    from toolpath.evals.math.grading import is_equiv as is_equiv
    from toolpath.evals.math.grading import is_strict as is_strict
    from toolpath.evals.math.grading import normalize as normalize
    from toolpath.evals.math.tasks import METHODS as METHODS
    from toolpath.evals.math.tasks import MathTask as MathTask
    from toolpath.evals.math.tasks import math_agent_for as math_agent_for
    from toolpath.evals.math.tasks import task as task

"""DotaMath (:func:`math_agent`) and its baselines, program of thought (:func:`pot_agent`) and
chain of thought (:func:`cot_agent`), over one shared state and kernel handling (:mod:`.common`).

:func:`extract_answer` and :func:`extract_boxed` read the answer out of a reply; the grading in
:mod:`toolpath.evals.math` uses them too. :func:`math_demos` are the worked demonstrations
(GSM8K *train* problems).
"""

from typing import TYPE_CHECKING

from toolpath.lazy import lazy_exports

_WHERE = {
    "math_agent": "toolpath.agents.math.dotamath",
    "cot_agent": "toolpath.agents.math.baselines",
    "pot_agent": "toolpath.agents.math.baselines",
    "MathState": "toolpath.agents.math.common",
    "extract_code": "toolpath.agents.math.common",
    "extract_answer": "toolpath.agents.math.answers",
    "extract_boxed": "toolpath.agents.math.answers",
    "math_demos": "toolpath.agents.math.prompts",
}
__all__ = sorted(_WHERE)
__getattr__, __dir__ = lazy_exports(__name__, _WHERE)

if TYPE_CHECKING:
    from toolpath.agents.math.answers import extract_answer as extract_answer
    from toolpath.agents.math.answers import extract_boxed as extract_boxed
    from toolpath.agents.math.baselines import cot_agent as cot_agent
    from toolpath.agents.math.baselines import pot_agent as pot_agent
    from toolpath.agents.math.common import MathState as MathState
    from toolpath.agents.math.common import extract_code as extract_code
    from toolpath.agents.math.dotamath import math_agent as math_agent
    from toolpath.agents.math.prompts import math_demos as math_demos

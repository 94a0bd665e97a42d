"""TPTU's comparison: one-step planning against sequential planning (and α-UMi), on executable
multi-call tasks.

:mod:`.world` makes the synthetic catalog's APIs executable and deterministic (:data:`CATALOG`);
:mod:`.fixture` holds eight hand-written tasks over six small tools; :mod:`.tasks` generates
tasks over the catalog (:func:`generate`) and runs gold calls (:func:`run_gold`);
:mod:`.scoring` checks answers and calls exactly; :mod:`.compare` runs the agents through the
harness and writes the report (:func:`run_compare`, :class:`OneStepEval`).
"""

from typing import TYPE_CHECKING

from toolpath.lazy import lazy_exports

_WHERE = {
    "AGENTS": "toolpath.evals.one_step.compare",
    "OneStepEval": "toolpath.evals.one_step.compare",
    "agent_factory": "toolpath.evals.one_step.compare",
    "run_compare": "toolpath.evals.one_step.compare",
    "write_report": "toolpath.evals.one_step.compare",
    "answer_matches": "toolpath.evals.one_step.scoring",
    "calls_cover": "toolpath.evals.one_step.scoring",
    "Task": "toolpath.evals.one_step.tasks",
    "all_tasks": "toolpath.evals.one_step.tasks",
    "generate": "toolpath.evals.one_step.tasks",
    "run_gold": "toolpath.evals.one_step.tasks",
    "CATALOG": "toolpath.evals.one_step.world",
}
__all__ = sorted(_WHERE)
__getattr__, __dir__ = lazy_exports(__name__, _WHERE)

if TYPE_CHECKING:
    from toolpath.evals.one_step.compare import AGENTS as AGENTS
    from toolpath.evals.one_step.compare import OneStepEval as OneStepEval
    from toolpath.evals.one_step.compare import agent_factory as agent_factory
    from toolpath.evals.one_step.compare import run_compare as run_compare
    from toolpath.evals.one_step.compare import write_report as write_report
    from toolpath.evals.one_step.scoring import answer_matches as answer_matches
    from toolpath.evals.one_step.scoring import calls_cover as calls_cover
    from toolpath.evals.one_step.tasks import Task as Task
    from toolpath.evals.one_step.tasks import all_tasks as all_tasks
    from toolpath.evals.one_step.tasks import generate as generate
    from toolpath.evals.one_step.tasks import run_gold as run_gold
    from toolpath.evals.one_step.world import CATALOG as CATALOG

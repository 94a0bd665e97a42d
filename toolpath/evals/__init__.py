"""The benchmark harness and, one subpackage per seed system, its task families.

:func:`run_eval` (async; :func:`run_eval_sync` for plain callers) runs a :class:`TaskFamily`'s
:class:`Example` episodes concurrently, appends one durable JSONL :data:`Record` per episode,
resumes after an interruption, and writes the summary and plot (:class:`RunResult`).
:func:`run_eval_ray` shards the same run over Ray workers, each building its agent from a
picklable factory such as :class:`MathAgentFactory`; :func:`run_math_eval` is what
``toolpath eval gsm8k|math500`` runs. The families: :mod:`.math`, :mod:`.alpha_umi`,
:mod:`.costa` and :mod:`.web`.
"""

from typing import TYPE_CHECKING

from toolpath.lazy import lazy_exports

_WHERE = {
    "Example": "toolpath.evals.harness",
    "Record": "toolpath.evals.harness",
    "RunResult": "toolpath.evals.harness",
    "TaskFamily": "toolpath.evals.harness",
    "load_records": "toolpath.evals.harness",
    "run_eval": "toolpath.evals.harness",
    "run_eval_sync": "toolpath.evals.harness",
    "summarize": "toolpath.evals.harness",
    "MathAgentFactory": "toolpath.evals.ray_executor",
    "run_eval_ray": "toolpath.evals.ray_executor",
    "run_eval_ray_sync": "toolpath.evals.ray_executor",
    "run_math_eval": "toolpath.evals.ray_executor",
}
__all__ = sorted(_WHERE)
__getattr__, __dir__ = lazy_exports(__name__, _WHERE)

if TYPE_CHECKING:
    from toolpath.evals.harness import Example as Example
    from toolpath.evals.harness import Record as Record
    from toolpath.evals.harness import RunResult as RunResult
    from toolpath.evals.harness import TaskFamily as TaskFamily
    from toolpath.evals.harness import load_records as load_records
    from toolpath.evals.harness import run_eval as run_eval
    from toolpath.evals.harness import run_eval_sync as run_eval_sync
    from toolpath.evals.harness import summarize as summarize
    from toolpath.evals.ray_executor import MathAgentFactory as MathAgentFactory
    from toolpath.evals.ray_executor import run_eval_ray as run_eval_ray
    from toolpath.evals.ray_executor import run_eval_ray_sync as run_eval_ray_sync
    from toolpath.evals.ray_executor import run_math_eval as run_math_eval

"""CoSTA*'s benchmark: synthetic image-editing tasks with exact checks (:func:`generate`,
:class:`CostaTask`, :func:`write_tasks`, :func:`read_tasks`) and the comparison of CoSTA* with
its baselines at each α (:func:`run_bench`, :class:`CostaBench`, :func:`tradeoff_plot`)."""

from typing import TYPE_CHECKING

from toolpath.lazy import lazy_exports

_WHERE = {
    "CostaBench": "toolpath.evals.costa.benchmark",
    "costa_summary": "toolpath.evals.costa.benchmark",
    "run_bench": "toolpath.evals.costa.benchmark",
    "tradeoff_plot": "toolpath.evals.costa.benchmark",
    "CostaTask": "toolpath.evals.costa.tasks",
    "Scene": "toolpath.evals.costa.tasks",
    "generate": "toolpath.evals.costa.tasks",
    "read_tasks": "toolpath.evals.costa.tasks",
    "render": "toolpath.evals.costa.tasks",
    "solve_reference": "toolpath.evals.costa.tasks",
    "write_tasks": "toolpath.evals.costa.tasks",
}
__all__ = sorted(_WHERE)
__getattr__, __dir__ = lazy_exports(__name__, _WHERE)

if TYPE_CHECKING:
    from toolpath.evals.costa.benchmark import CostaBench as CostaBench
    from toolpath.evals.costa.benchmark import costa_summary as costa_summary
    from toolpath.evals.costa.benchmark import run_bench as run_bench
    from toolpath.evals.costa.benchmark import tradeoff_plot as tradeoff_plot
    from toolpath.evals.costa.tasks import CostaTask as CostaTask
    from toolpath.evals.costa.tasks import Scene as Scene
    from toolpath.evals.costa.tasks import generate as generate
    from toolpath.evals.costa.tasks import read_tasks as read_tasks
    from toolpath.evals.costa.tasks import render as render
    from toolpath.evals.costa.tasks import solve_reference as solve_reference
    from toolpath.evals.costa.tasks import write_tasks as write_tasks

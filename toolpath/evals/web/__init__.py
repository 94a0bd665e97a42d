"""CompWoB and MiniWoB++ episodes: the task family (:class:`WebTask`, over
:func:`miniwob_examples` and :func:`compwob_examples`), the compositional page generator
(:func:`generate`, :func:`sample_bases`, :data:`COMPOSABLE`), the benchmark suite
(:func:`build_suite`, :func:`write_suite`, :data:`SPLITS`), the failure analysis
(:func:`classify`) and the deterministic solvers of the base tasks (:data:`SOLVERS`,
:func:`run_scripted`)."""

from typing import TYPE_CHECKING

from toolpath.lazy import lazy_exports

_WHERE = {
    "COMPOSABLE": "toolpath.evals.web.compose",
    "generate": "toolpath.evals.web.compose",
    "sample_bases": "toolpath.evals.web.compose",
    "task_name": "toolpath.evals.web.compose",
    "BASE_SUITE": "toolpath.evals.web.suite",
    "SPLITS": "toolpath.evals.web.suite",
    "build_suite": "toolpath.evals.web.suite",
    "write_suite": "toolpath.evals.web.suite",
    "classify": "toolpath.evals.web.failures",
    "split_composed": "toolpath.evals.web.oracle",
    "SOLVERS": "toolpath.evals.web.oracle",
    "run_scripted": "toolpath.evals.web.oracle",
    "WebTask": "toolpath.evals.web.tasks",
    "compwob_examples": "toolpath.evals.web.tasks",
    "miniwob_examples": "toolpath.evals.web.tasks",
    "per_task": "toolpath.evals.web.tasks",
}
__all__ = sorted(_WHERE)
__getattr__, __dir__ = lazy_exports(__name__, _WHERE)

if TYPE_CHECKING:
    from toolpath.evals.web.compose import COMPOSABLE as COMPOSABLE
    from toolpath.evals.web.compose import generate as generate
    from toolpath.evals.web.compose import sample_bases as sample_bases
    from toolpath.evals.web.compose import task_name as task_name
    from toolpath.evals.web.failures import classify as classify
    from toolpath.evals.web.oracle import SOLVERS as SOLVERS
    from toolpath.evals.web.oracle import run_scripted as run_scripted
    from toolpath.evals.web.oracle import split_composed as split_composed
    from toolpath.evals.web.suite import BASE_SUITE as BASE_SUITE
    from toolpath.evals.web.suite import SPLITS as SPLITS
    from toolpath.evals.web.suite import build_suite as build_suite
    from toolpath.evals.web.suite import write_suite as write_suite
    from toolpath.evals.web.tasks import WebTask as WebTask
    from toolpath.evals.web.tasks import compwob_examples as compwob_examples
    from toolpath.evals.web.tasks import miniwob_examples as miniwob_examples
    from toolpath.evals.web.tasks import per_task as per_task

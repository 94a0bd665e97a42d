"""Running a CoSTA* plan outside the graph: :func:`execute_plan` runs each planned step through
a caller's ``run_step``, learns the real cost and quality into the table, and re-plans with
:func:`~toolpath.agents.costa.search.astar` from the executed prefix after a failure (the
:func:`~toolpath.agents.costa.agent.costa_agent` graph does the same with a domain's tools)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from toolpath.agents.costa.search import (
    SearchResult,
    Step,
    SubtaskTree,
    ToolInfo,
    astar,
    path_cost,
)
from toolpath.agents.costa.table import CostTable
from toolpath.errors import PlanError


@dataclass(frozen=True)
class Attempt:
    """One run of a planned step: whether the verifier passed it and what it really cost."""

    step: Step
    ok: bool
    cost: float
    quality: float | None


@dataclass
class Execution:
    """The outcome of :func:`execute_plan`. ``steps`` are the executed steps with real costs and
    qualities; ``total_cost`` also counts failed attempts; ``reason`` says why a failed
    execution stopped."""

    steps: list[Step]
    attempts: list[Attempt]
    total_cost: float
    final_quality: float
    objective: float
    expanded: int
    replans: int
    success: bool
    reason: str = ""
    plans: list[SearchResult] = field(default_factory=list)


RunStep = Callable[[Step], tuple[bool, float, float | None]]


def execute_plan(
    tree: SubtaskTree,
    tools: Sequence[ToolInfo],
    table: CostTable,
    run_step: RunStep,
    *,
    alpha: float = 1.0,
    q_threshold: float = 0.8,
    threshold: str = "product",
    max_replans: int = 10,
    start_types: Sequence[str] = ("image",),
) -> Execution:
    """Plan with :func:`astar`, then run the plan's steps one by one through ``run_step(step) ->
    (ok, observed_cost, observed_quality or None)``, which the caller supplies (it runs the tool
    and the verifier). A success records the real cost (and score) in ``table`` and the plan
    goes on; a failure records the cost and lowers the tool's quality
    (:meth:`CostTable.record_failure`), then A* re-plans from the executed prefix, which stays as
    it is. Raises :class:`PlanError` only when there is no plan at all before anything ran; once
    steps have run it returns ``success=False`` with a ``reason`` when no plan remains or after
    ``max_replans`` re-plans."""
    kind = {s.id: s.type for s in tree}

    def search(steps: Sequence[Step]) -> SearchResult:
        return astar(
            tree, tools, table, alpha=alpha, q_threshold=q_threshold, threshold=threshold,
            done=steps, start_types=start_types,
        )  # fmt: skip

    plan = search([])
    plans: list[SearchResult] = [plan]
    steps: list[Step] = []
    attempts: list[Attempt] = []
    replans, reason = 0, ""
    while len(steps) < len(tree):
        planned = plan.path[len(steps)]
        ok, cost, quality = run_step(planned)
        attempts.append(Attempt(planned, ok, cost, quality))
        if ok:
            table.record_success(planned.tool, kind[planned.subtask_id], cost, quality)
            real_q = planned.quality if quality is None else quality
            steps.append(Step(planned.subtask_id, planned.tool, cost, real_q))
            continue
        table.record_failure(planned.tool, kind[planned.subtask_id], cost)
        if replans == max_replans:
            reason = f"step {planned} failed after {max_replans} re-plans"
            break
        try:
            plan = search(steps)
        except PlanError as exc:
            reason = f"step {planned} failed and no plan remains: {exc}"
            break
        replans += 1
        plans.append(plan)
    total = math.fsum(a.cost for a in attempts)
    final_q = math.prod(s.quality for s in steps)
    return Execution(
        steps=steps,
        attempts=attempts,
        total_cost=total,
        final_quality=final_q,
        objective=path_cost([total], [final_q], alpha),
        expanded=sum(pl.expanded for pl in plans),
        replans=replans,
        success=len(steps) == len(tree),
        reason=reason,
        plans=plans,
    )

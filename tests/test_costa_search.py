"""CoSTA* search: optimality against exhaustive enumeration, admissibility, alpha and threshold
behaviour, re-planning after a failure, the cost table's persistence, and tree validation."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from toolpath.agents.costa.plan import execute_plan
from toolpath.agents.costa.search import (
    ANY,
    CostTable,
    SearchResult,
    Step,
    Subtask,
    SubtaskTree,
    ToolInfo,
    astar,
    count_search_tree,
    exhaustive,
    greedy,
    heuristic,
    lower_bound,
    path_cost,
    prune,
    thresholds,
    uniform_cost,
)
from toolpath.errors import ConfigError, PlanError


@dataclass
class Problem:
    tree: SubtaskTree
    tools: list[ToolInfo]
    table: CostTable
    alpha: float
    q_threshold: float


costs = st.floats(0.1, 10.0, allow_nan=False)
qualities = st.floats(0.5, 1.0, allow_nan=False)


@st.composite
def problems(draw: st.DrawFn, max_subtasks: int = 5) -> Problem:
    """2..max_subtasks subtasks with random DAG parents over 1-3 types, 2-4 tools per type, some
    tools serving a second type, some requiring a tool of another type."""
    n = draw(st.sampled_from(range(2, max_subtasks + 1)))
    n_types = draw(st.integers(1, 3))
    subtasks = []
    for i in range(n):
        parents = draw(st.sets(st.integers(0, i - 1), max_size=2)) if i else set()
        kind = f"k{draw(st.integers(0, n_types - 1))}"
        subtasks.append(Subtask(f"s{i}", kind, tuple(f"s{p}" for p in sorted(parents))))
    tree = SubtaskTree(subtasks)
    kinds = sorted(tree.types())
    tools, priors = [], {}
    for kind in kinds:
        for j in range(draw(st.sampled_from([2, 3, 4]))):
            name = f"{kind}_t{j}"
            serves = {kind}
            if len(kinds) > 1 and draw(st.integers(0, 5)) == 0:
                serves.add(draw(st.sampled_from([k for k in kinds if k != kind])))
            requires: tuple[str, ...] = ()
            if len(kinds) > 1 and draw(st.integers(0, 5)) == 0:
                other = draw(st.sampled_from([k for k in kinds if k != kind]))
                requires = (f"{other}_t0",)
            tools.append(ToolInfo(name, frozenset(serves), requires=requires))
            for k in serves:
                priors[(name, k)] = (draw(costs), draw(qualities))
    alpha = draw(st.floats(0.0, 2.0, allow_nan=False))
    q_threshold = draw(st.sampled_from([0.0, 0.5, 0.8]))
    return Problem(tree, tools, CostTable(priors), alpha, q_threshold)


def solve(
    search: Callable[..., SearchResult], pr: Problem, done: list[Step] | None = None
) -> SearchResult | None:
    """The search's result, or None when it finds there is no path."""
    try:
        return search(
            pr.tree, pr.tools, pr.table, alpha=pr.alpha, q_threshold=pr.q_threshold, done=done or []
        )
    except PlanError:
        return None


@settings(max_examples=150, deadline=None)
@given(problems())
def test_astar_matches_exhaustive_and_expands_fewer_nodes(pr: Problem) -> None:
    best = solve(exhaustive, pr)
    found = solve(astar, pr)
    ucs = solve(uniform_cost, pr)
    if best is None:
        assert found is None and ucs is None
        return
    assert found is not None and ucs is not None
    assert found.objective == pytest.approx(best.objective, rel=1e-9, abs=1e-9)
    assert ucs.objective == pytest.approx(best.objective, rel=1e-9, abs=1e-9)
    assert found.expanded <= best.expanded
    assert count_search_tree(pr.tree, pr.tools) == (best.expanded, best.paths)
    # The path is valid: every subtask once, parents first, requirements met, values add up.
    seen: list[str] = []
    for step in found.path:
        sub = pr.tree[step.subtask_id]
        assert set(sub.parents) <= set(seen) and step.subtask_id not in seen
        tool = next(t for t in pr.tools if t.name == step.tool)
        used = {s.tool for s in found.path[: len(seen)]}
        assert set(tool.requires) <= used
        assert (step.cost, step.quality) == pr.table.get(step.tool, sub.type)
        seen.append(step.subtask_id)
    assert len(seen) == len(pr.tree)
    assert found.quality >= pr.q_threshold
    costs_ = [s.cost for s in found.path]
    quals = [s.quality for s in found.path]
    assert path_cost(costs_, quals, pr.alpha) == pytest.approx(found.objective, rel=1e-12)


@settings(max_examples=100, deadline=None)
@given(problems(max_subtasks=4), st.data())
def test_heuristic_is_admissible(pr: Problem, data: st.DataObject) -> None:
    # A random executed prefix, with real costs and qualities that differ from the table's.
    try:
        usable = prune(pr.tools, pr.tree)
    except PlanError:
        assert solve(astar, pr) is None and solve(exhaustive, pr) is None
        return
    done: list[Step] = []
    kinds = {s.id: s.type for s in pr.tree}
    for _ in range(data.draw(st.integers(0, len(pr.tree) - 1))):
        ids = {s.subtask_id for s in done}
        used = {s.tool for s in done}
        moves = [
            (sub.id, t.name)
            for sub in pr.tree
            if sub.id not in ids and set(sub.parents) <= ids
            for t in usable
            if sub.type in t.serves and set(t.requires) <= used
        ]
        if not moves:
            break
        sid, tool = data.draw(st.sampled_from(moves))
        done.append(Step(sid, tool, data.draw(costs), data.draw(qualities)))
        assert pr.table.get(tool, kinds[sid])  # the pair exists
    best = solve(exhaustive, pr, done)
    h = heuristic(pr.tree, pr.tools, pr.table, done, alpha=pr.alpha)
    assert h >= -1e-12
    if best is not None:
        g = path_cost([s.cost for s in done], [s.quality for s in done], pr.alpha)
        assert h <= best.objective - g + 1e-9
        found = solve(astar, pr, done)
        assert found is not None and found.path[: len(done)] == done
        assert found.objective == pytest.approx(best.objective, rel=1e-9, abs=1e-9)


def one_type(
    *rows: tuple[str, float, float], kind: str = "edit"
) -> tuple[list[ToolInfo], CostTable]:
    tools = [ToolInfo(name, frozenset({kind})) for name, _, _ in rows]
    return tools, CostTable({(name, kind): (c, q) for name, c, q in rows})


def test_path_cost_edges() -> None:
    assert path_cost([], [], 0.0) == 1.0  # 0**0 == 1, (2 - 1)**2 == 1
    assert path_cost([0.0], [1.0], 1.0) == 0.0
    assert path_cost([1.0, 2.0], [0.5, 0.5], 2.0) == 9.0
    assert path_cost([3.0], [0.5], 0.0) == pytest.approx(2.25)
    with pytest.raises(ConfigError):
        astar(SubtaskTree([Subtask("a", "edit")]), *one_type(("x", 1, 1)), alpha=3.0)


def test_alpha_extremes_choose_quality_or_cost() -> None:
    tree = SubtaskTree([Subtask("a", "edit"), Subtask("b", "edit", ("a",))])
    tools, table = one_type(("cheap", 0.5, 0.9), ("good", 8.0, 0.99))
    by_quality = astar(tree, tools, table, alpha=0.0, q_threshold=0.0)
    by_cost = astar(tree, tools, table, alpha=2.0, q_threshold=0.0)
    assert [s.tool for s in by_quality.path] == ["good", "good"]
    assert [s.tool for s in by_cost.path] == ["cheap", "cheap"]
    assert by_quality.objective == pytest.approx((2 - 0.99**2) ** 2)
    assert by_cost.objective == pytest.approx(1.0)


def test_quality_threshold_prunes_cheap_low_quality_tool() -> None:
    tree = SubtaskTree([Subtask("a", "edit"), Subtask("b", "edit", ("a",))])
    tools, table = one_type(("cheap", 0.1, 0.85), ("good", 5.0, 0.99))
    # Unconstrained, cost-only picks the cheap tool twice (quality 0.7225).
    assert {s.tool for s in astar(tree, tools, table, alpha=2.0, q_threshold=0.0).path} == {"cheap"}
    # At 0.8 cheap can be used once at most (0.85 * 0.99 >= 0.8 > 0.85**2).
    r = astar(tree, tools, table, alpha=2.0, q_threshold=0.8)
    assert sorted(s.tool for s in r.path) == ["cheap", "good"] and r.quality >= 0.8
    # At 0.9 it is never chosen; above the best reachable quality there is no plan.
    r = astar(tree, tools, table, alpha=2.0, q_threshold=0.9)
    assert [s.tool for s in r.path] == ["good", "good"]
    with pytest.raises(PlanError, match="quality"):
        astar(tree, tools, table, alpha=2.0, q_threshold=0.99)


def test_failure_replans_from_frontier_and_table_persists(tmp_path: Path) -> None:
    tree = SubtaskTree.from_json(
        {"subtasks": [{"id": "s1", "type": "segment", "parents": []},
                      {"id": "s2", "type": "recolor", "parents": ["s1"]}]}
    )  # fmt: skip
    tools = [
        ToolInfo("seg", frozenset({"segment"})),
        ToolInfo("fast", frozenset({"recolor"}), requires=("seg",)),
        ToolInfo("slow", frozenset({"recolor"})),
    ]
    priors = {("seg", "segment"): (1.0, 0.99), ("fast", "recolor"): (1.0, 0.95),
              ("slow", "recolor"): (2.0, 0.9)}  # fmt: skip
    table = CostTable(priors)
    calls: list[Step] = []

    def run_step(step: Step) -> tuple[bool, float, float | None]:
        calls.append(step)
        if step.tool == "fast" and sum(c.tool == "fast" for c in calls) == 1:
            return False, 3.0, None  # the verifier rejects fast's first result
        return True, step.cost * 1.5, None

    ex = execute_plan(tree, tools, table, run_step, alpha=1.0, q_threshold=0.8)
    assert ex.success and ex.replans == 1 and ex.reason == ""
    assert [c.tool for c in calls] == ["seg", "fast", "slow"]  # seg is not run again
    assert [(s.subtask_id, s.tool) for s in ex.steps] == [("s1", "seg"), ("s2", "slow")]
    assert ex.total_cost == pytest.approx(1.5 + 3.0 + 3.0)
    assert ex.final_quality == pytest.approx(0.99 * 0.9)
    assert ex.expanded == sum(p.expanded for p in ex.plans) and len(ex.plans) == 2
    assert ex.plans[1].path[0] == ex.steps[0]  # the re-plan started from the executed prefix
    assert table.get("fast", "recolor") == pytest.approx(((1.0 + 3.0) / 2, 0.475))
    assert table.get("seg", "segment") == pytest.approx((1.25, 0.99))
    assert table.entry("fast", "recolor").failures == 1
    path = tmp_path / "costs.json"
    table.save(path)
    assert not [p for p in tmp_path.iterdir() if p.name != "costs.json"]  # no temp file left
    loaded = CostTable.load(path, priors | {("new", "recolor"): (0.3, 0.9)})
    assert loaded.get("fast", "recolor") == pytest.approx((2.0, 0.475))
    assert loaded.get("new", "recolor") == (0.3, 0.9)
    assert CostTable.load(tmp_path / "missing.json", priors).get("slow", "recolor") == (2.0, 0.9)
    # A re-plan with the loaded table avoids the failing tool from the start.
    tools.append(ToolInfo("new", frozenset({"recolor"})))
    assert [s.tool for s in astar(tree, tools, loaded).path] == ["seg", "new"]


def test_execution_fails_cleanly_when_no_plan_remains() -> None:
    tree = SubtaskTree([Subtask("a", "edit")])
    tools, table = one_type(("only", 1.0, 0.9))
    ex = execute_plan(tree, tools, table, lambda s: (False, 2.0, None), q_threshold=0.8)
    assert not ex.success and ex.replans == 0 and "no plan remains" in ex.reason
    assert ex.steps == [] and ex.total_cost == 2.0
    tools, table = one_type(("only", 1.0, 0.9))
    ex = execute_plan(tree, tools, table, lambda s: (False, 1.0, None), q_threshold=0.0,
                      max_replans=3)  # fmt: skip
    assert not ex.success and ex.replans == 3 and len(ex.attempts) == 4
    with pytest.raises(PlanError):
        execute_plan(tree, tools, table, lambda s: (True, 1.0, None), q_threshold=0.99)


def test_success_with_verifier_score_updates_quality() -> None:
    table = CostTable({("t", "k"): (2.0, 0.8)})
    table.record_success("t", "k", 4.0, 1.0)
    assert table.get("t", "k") == pytest.approx((3.0, 0.9))
    table.record_failure("t", "k", 0.0)
    assert table.get("t", "k") == pytest.approx((2.0, 0.45))
    with pytest.raises(ConfigError):
        table.get("t", "other")
    with pytest.raises(ConfigError):
        CostTable({("t", "k"): (1.0, 1.5)})
    with pytest.raises(ConfigError):
        CostTable.from_json({"format": "nope"})


def test_alternative_orders_and_requires() -> None:
    # Two independent subtasks: either order. "fill" requires "mask" to have run first.
    tree = SubtaskTree([Subtask("fill_it", "inpaint"), Subtask("find", "segment")])
    tools = [
        ToolInfo("fill", frozenset({"inpaint"}), requires=("mask",)),
        ToolInfo("mask", frozenset({"segment"})),
    ]
    table = CostTable({("fill", "inpaint"): (1.0, 0.9), ("mask", "segment"): (1.0, 0.9)})
    r = astar(tree, tools, table, q_threshold=0.0)
    assert [s.tool for s in r.path] == ["mask", "fill"]  # the tree lists fill_it first
    assert exhaustive(tree, tools, table, q_threshold=0.0).paths == 1  # one order is valid
    tools.append(ToolInfo("fill2", frozenset({"inpaint"})))
    table.set_prior("fill2", "inpaint", 1.0, 0.9)
    assert exhaustive(tree, tools, table, q_threshold=0.0).paths == 3
    assert count_search_tree(tree, tools) == (1 + 2 + 3, 3)
    g = greedy(tree, tools, table)
    assert [s.tool for s in g.path] == ["fill2", "mask"]
    # An executed prefix that breaks the parent order is rejected.
    chain = SubtaskTree([Subtask("a", "inpaint"), Subtask("b", "segment", ("a",))])
    with pytest.raises(PlanError, match="not a valid next step"):
        astar(chain, tools, table, done=[Step("b", "mask", 1.0, 0.9)])


def test_equal_plans_keep_the_tree_order() -> None:
    # Independent subtasks whose costs sum to different floats in different orders
    # (0.1 + 0.2 + 0.3 != 0.3 + 0.2 + 0.1): every search keeps the order the tree lists, as
    # edits that do not commute (a crop before a locate) need when the tree leaves it open.
    kinds = ("a", "b", "c")
    tools = [ToolInfo(f"t{k}", frozenset({k})) for k in kinds]
    for costs in [(0.1, 0.2, 0.3), (0.3, 0.2, 0.1), (0.7, 0.1, 0.2), (1e-3, 0.37, 0.0123)]:
        table = CostTable({(f"t{k}", k): (c, 0.9) for k, c in zip(kinds, costs, strict=True)})
        for order in [("a", "b", "c"), ("c", "a", "b"), ("b", "c", "a")]:
            tree = SubtaskTree([Subtask(f"s_{k}", k) for k in order])
            for search in (astar, uniform_cost, exhaustive):
                for alpha in (0.0, 0.5, 1.0, 2.0):
                    r = search(tree, tools, table, alpha=alpha, q_threshold=0.0)
                    assert [s.subtask_id for s in r.path] == [f"s_{k}" for k in order], (
                        search,
                        costs,
                        alpha,
                    )


def test_greedy_is_myopic() -> None:
    tree = SubtaskTree([Subtask("a", "x"), Subtask("b", "y", ("a",))])
    tools = [
        ToolInfo("x_cheap", frozenset({"x"})),
        ToolInfo("x_key", frozenset({"x"})),
        ToolInfo("y_fast", frozenset({"y"}), requires=("x_key",)),
        ToolInfo("y_slow", frozenset({"y"})),
    ]
    table = CostTable({("x_cheap", "x"): (1.0, 0.95), ("x_key", "x"): (1.5, 0.95),
                       ("y_fast", "y"): (0.5, 0.95), ("y_slow", "y"): (10.0, 0.95)})  # fmt: skip
    g = greedy(tree, tools, table, alpha=2.0)
    a = astar(tree, tools, table, alpha=2.0, q_threshold=0.0)
    assert [s.tool for s in g.path] == ["x_cheap", "y_slow"]
    assert [s.tool for s in a.path] == ["x_key", "y_fast"] and a.objective < g.objective
    assert lower_bound(tree, tools, table, alpha=2.0) == pytest.approx(1.5**2)


def test_every_search_takes_the_same_arguments() -> None:
    import inspect
    import pickle

    tree = SubtaskTree([Subtask("a", "x"), Subtask("b", "y", ("a",))])
    tools = [ToolInfo("tx", frozenset({"x"})), ToolInfo("ty", frozenset({"y"}))]
    table = CostTable({("tx", "x"): (1.0, 0.9), ("ty", "y"): (2.0, 0.9)})
    done = [Step("a", "tx", 1.5, 0.95)]
    for search in (astar, uniform_cost, exhaustive, greedy):
        params = inspect.signature(search).parameters
        assert list(params) == [
            "tree",
            "tools",
            "table",
            "alpha",
            "q_threshold",
            "threshold",
            "done",
            "start_types",
        ]
        assert search.__name__ in repr(search) and search.__doc__
        assert pickle.loads(pickle.dumps(search)) is search
        r = search(tree, tools, table, alpha=1.0, q_threshold=0.5, done=done)
        assert [(s.subtask_id, s.tool) for s in r.path] == [("a", "tx"), ("b", "ty")]
        assert r.cost == pytest.approx(3.5) and r.quality == pytest.approx(0.95 * 0.9)
        with pytest.raises(ConfigError, match="q_threshold"):
            search(tree, tools, table, q_threshold=1.5)
    # greedy ignores the threshold: its path is the same at any
    assert greedy(tree, tools, table, q_threshold=1.0).path == greedy(tree, tools, table).path


def test_prune_and_tree_validation() -> None:
    tree = SubtaskTree([Subtask("a", "recolor"), Subtask("b", "upscale", ("a",))])
    tools = [
        ToolInfo("paint", frozenset({"recolor"})),
        ToolInfo("unused", frozenset({"caption"})),
        ToolInfo("on_mask", frozenset({"recolor"}), input_type="mask"),
        ToolInfo("loop1", frozenset({"recolor"}), requires=("loop2",)),
        ToolInfo("loop2", frozenset({"recolor"}), requires=("loop1",)),
    ]
    with pytest.raises(PlanError, match=r"'upscale'.*subtask b.*no tool serves it"):
        prune(tools, tree)
    tools.append(ToolInfo("sr", frozenset({"upscale"}), input_type="latent"))
    with pytest.raises(PlanError, match=r"'upscale'.*sr cannot run"):
        prune(tools, tree)
    tools.append(ToolInfo("sr2", frozenset({"upscale"})))
    assert [t.name for t in prune(tools, tree)] == ["paint", "sr2"]
    tools.append(ToolInfo("masker", frozenset({"upscale"}), output_type="mask"))
    assert [t.name for t in prune(tools, tree)] == ["paint", "on_mask", "sr2", "masker"]
    with pytest.raises(ConfigError, match="duplicate"):
        prune([*tools, tools[0]], tree)

    with pytest.raises(PlanError, match="unknown parent 'z'"):
        SubtaskTree([Subtask("a", "x", ("z",))])
    with pytest.raises(PlanError, match="cycle through a, b"):
        SubtaskTree([Subtask("a", "x", ("b",)), Subtask("b", "x", ("a",)), Subtask("c", "x")])
    with pytest.raises(PlanError, match="cycle"):
        SubtaskTree([Subtask("a", "x", ("a",))])
    with pytest.raises(PlanError, match="duplicate"):
        SubtaskTree([Subtask("a", "x"), Subtask("a", "y")])
    with pytest.raises(PlanError, match="no subtasks"):
        SubtaskTree([])
    with pytest.raises(PlanError, match="must look like"):
        SubtaskTree.from_json({"subtasks": [{"id": "a"}]})
    with pytest.raises(PlanError, match="must look like"):
        SubtaskTree.from_json('{"subtasks": [{"id": "a", "type": "x", "parents": "b"}]}')
    t = SubtaskTree.from_json(json.dumps({"subtasks": [{"id": "a", "type": "x"}]}))
    assert t["a"] == Subtask("a", "x") and len(t) == 1


def test_data_types_order_the_path() -> None:
    """The working object's type flows through the path: a tool runs only on the type it
    takes, so a chart cannot be cleaned, and the search orders the free subtasks by type."""
    tree = SubtaskTree(
        [Subtask("s1", "load"), Subtask("s2", "clean", ("s1",)), Subtask("s3", "plot", ("s1",))]
    )
    tools = [
        ToolInfo("read", frozenset({"load"}), "Source", "Frame"),
        ToolInfo("fix", frozenset({"clean"}), "Frame", "Frame"),
        ToolInfo("draw", frozenset({"plot"}), "Frame", "Chart"),
        ToolInfo("note", frozenset({"clean"}), ANY, ANY),  # takes anything, keeps its type
    ]
    table = CostTable(
        {("read", "load"): (1.0, 0.99), ("fix", "clean"): (1.0, 0.99),
         ("draw", "plot"): (1.0, 0.99), ("note", "clean"): (5.0, 0.99)}
    )  # fmt: skip
    best = exhaustive(tree, tools, table, start_types=("Source",))
    for search in (astar, uniform_cost, greedy):
        r = search(tree, tools, table, start_types=("Source",))
        assert [(s.subtask_id, s.tool) for s in r.path] == [
            ("s1", "read"), ("s2", "fix"), ("s3", "draw")
        ]  # fmt: skip
        assert r.objective == pytest.approx(best.objective)
    # orders: s1 then (s2 fix|note, s3) or (s3, s2 note): 2 + 1 complete paths
    assert count_search_tree(tree, tools, start_types=("Source",)) == (1 + 1 + 3 + 3, 3)
    assert best.paths == 3
    with pytest.raises(PlanError, match=r"'load'.*read cannot run"):
        astar(tree, tools, table)  # the default start type, an image, is not a Source
    done = [Step("s1", "read", 1.0, 0.99), Step("s3", "draw", 1.0, 0.99)]
    r = astar(tree, tools, table, start_types=("Source",), done=done)
    assert [s.tool for s in r.path] == ["read", "draw", "note"]  # only `note` takes a Chart


def test_threshold_rules() -> None:
    """The paper's rule bounds the whole plan's quality, so long plans of good tools fail it;
    the per-step and length-normalised rules do not grow stricter with the plan's length."""
    tree = SubtaskTree([Subtask(f"s{i}", "x", (f"s{i - 1}",) if i else ()) for i in range(3)])
    tools = [ToolInfo("good", frozenset({"x"})), ToolInfo("poor", frozenset({"x"}))]
    table = CostTable({("good", "x"): (2.0, 0.85), ("poor", "x"): (1.0, 0.6)})
    assert thresholds(0.8, "product", 3) == (0.0, 0.8)
    assert thresholds(0.8, "step", 3) == (0.8, 0.0)
    assert thresholds(0.8, "normalized", 3) == (0.0, pytest.approx(0.512))
    with pytest.raises(PlanError, match=r"quality >= 0.8"):
        astar(tree, tools, table, q_threshold=0.8)  # 0.85 ** 3 = 0.61
    for rule in ("step", "normalized"):
        for search in (astar, uniform_cost, exhaustive):
            r = search(tree, tools, table, q_threshold=0.8, threshold=rule, alpha=2.0)
            assert [s.tool for s in r.path] == ["good"] * 3  # the cheap tool is below 0.8
    with pytest.raises(PlanError, match=r"per-step quality threshold 0.9"):
        astar(tree, tools, table, q_threshold=0.9, threshold="step")
    r = greedy(tree, tools, table, q_threshold=0.9, threshold="step", alpha=2.0)
    assert [s.tool for s in r.path] == ["poor"] * 3  # greedy ignores every threshold
    with pytest.raises(ConfigError, match="unknown threshold"):
        astar(tree, tools, table, threshold="median")

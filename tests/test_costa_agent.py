"""The CoSTA* agent graph on the real image tools, driven by the scripted model."""

from __future__ import annotations

import json

import pytest

from toolpath.agents.costa.agent import costa_agent
from toolpath.agents.costa.image import ImageDomain
from toolpath.errors import PlanError
from toolpath.evals.costa.tasks import generate
from toolpath.tools.image.ops import ImageState


def tree_reply(task, *, drop_locate: bool = False) -> str:
    subtasks = [
        {
            "id": f"s{s.id}",
            "type": s.type,
            "params": s.params,
            "parents": [f"s{p}" for p in s.parents],
        }
        for s in task.subtasks
    ]
    if drop_locate:  # the model forgot to locate the object before editing it
        located = {s["id"] for s in subtasks if s["type"] == "locate"}
        subtasks = [s for s in subtasks if s["id"] not in located]
        for s in subtasks:
            s["parents"] = [p for p in s["parents"] if p not in located]
    return json.dumps({"subtasks": subtasks})


@pytest.fixture(scope="module")
def tasks():
    return generate(12, seed=5, min_subtasks=2, max_subtasks=4)


def solve(agent, task):
    return agent.invoke({"request": task.instruction, "context": ImageState(task.image)})


def test_ground_truth_trees_are_solved_and_pass_the_exact_check(scripted, tasks):
    for task in tasks[:6]:
        state = solve(costa_agent(scripted([tree_reply(task)])), task)
        assert state["status"] == "done", (task.instruction, state.get("reason"))
        assert task.check(state["context"].image), task.instruction
        assert len(state["executed"]) == len(task.subtasks)
        assert all(step.cost >= 0 and 0 <= step.quality <= 1 for step in state["executed"])
        assert state["expanded"] > 0


def test_a_missing_locate_step_is_added(scripted, tasks):
    task = next(
        t for t in tasks if any(s.type == "recolor" or s.type == "remove" for s in t.subtasks)
    )
    state = solve(costa_agent(scripted([tree_reply(task, drop_locate=True)])), task)
    assert any(s["type"] == "locate" for s in state["tree"])
    assert state["status"] == "done" and task.check(state["context"].image)


def test_malformed_tree_is_repaired_once_then_refused(scripted, tasks):
    task = tasks[0]
    model = scripted(['{"subtasks": [', tree_reply(task)])
    state = solve(costa_agent(model), task)
    assert state["status"] == "done"
    assert "not usable" in model.requests[1].messages[-1]["content"]
    with pytest.raises(PlanError, match="after one repair"):
        solve(costa_agent(scripted(["nope", '{"subtasks": []}'])), task)


def test_unsupported_subtask_type_is_named(scripted, tasks):
    bad = json.dumps({"subtasks": [{"id": "a", "type": "teleport", "params": {}, "parents": []}]})
    with pytest.raises(PlanError, match="teleport"):
        solve(costa_agent(scripted([bad, bad])), tasks[0])


class FlakyDomain(ImageDomain):
    """The image domain with one tool that crashes the first time it runs."""

    def __init__(self, broken: str) -> None:
        super().__init__()
        self.broken, self.crashes = broken, 0

    def run(self, tool, kind, params, context):
        if tool == self.broken and self.crashes == 0:
            self.crashes += 1
            raise RuntimeError("device lost")
        return super().run(tool, kind, params, context)


def test_a_crashing_tool_updates_the_table_and_the_search_replans(scripted, tasks, tmp_path):
    task = next(t for t in tasks if any(s.type == "locate" for s in t.subtasks))
    domain = FlakyDomain("locate_shape")  # the best-quality locate tool
    table_path = tmp_path / "table.json"
    agent = costa_agent(
        scripted([tree_reply(task)]),
        domain=domain,
        alpha=0.0,
        q_threshold=0.5,
        table_path=table_path,
    )
    before = agent.table.get("locate_shape", "locate")
    state = solve(agent, task)
    assert domain.crashes == 1
    assert state["replans"] >= 1
    failed = [a for a in state["attempts"] if not a["ok"]]
    assert failed[0]["tool"] == "locate_shape" and "device lost" in failed[0]["error"]
    assert state["status"] == "done" and task.check(state["context"].image)
    saved = json.loads(table_path.read_text())
    entry = next(
        e for e in saved["entries"] if e["tool"] == "locate_shape" and e["type"] == "locate"
    )
    assert entry["quality"] < before[1] and entry["failures"] == 1


@pytest.mark.parametrize("search", ["astar", "ucs", "exhaustive", "greedy"])
def test_a_given_tree_skips_the_model_for_every_search(scripted, tasks, search):
    task = tasks[1]
    tree = json.loads(tree_reply(task))["subtasks"]
    model = scripted([])  # would fail if asked
    agent = costa_agent(model, search=search, q_threshold=0.5)
    state = agent.invoke(
        {"request": task.instruction, "context": ImageState(task.image), "tree": tree}
    )
    assert model.requests == []
    assert state["status"] == "done" and task.check(state["context"].image)


def test_alpha_extremes_pick_quality_or_cost(scripted, tasks):
    task = next(t for t in tasks if any(s.type == "locate" for s in t.subtasks))
    tree = json.loads(tree_reply(task))["subtasks"]
    chosen = {}
    for alpha in (0.0, 2.0):
        agent = costa_agent(scripted([]), alpha=alpha, q_threshold=0.0)
        state = agent.invoke(
            {"request": task.instruction, "context": ImageState(task.image), "tree": tree}
        )
        chosen[alpha] = {a["tool"] for a in state["attempts"] if a["type"] == "locate"}
    assert "locate_shape" in chosen[0.0]  # best quality (0.97) at any cost
    assert "locate_color" in chosen[2.0]  # cheapest (0.0026 s)


def test_the_benchmark_builds_trees_once_and_compares_searches(scripted, tmp_path):
    from toolpath.evals.costa.benchmark import run_bench

    tasks = generate(3, seed=0)
    model = scripted([tree_reply(t) for t in tasks])
    summary = run_bench(
        model,
        tmp_path,
        n=3,
        seed=0,
        alphas=(0.0, 2.0),
        searches=("astar", "greedy"),
        rules=[("product", 0.5)],
        progress=False,
    )
    assert len(model.requests) == 3  # one tree per task, shared by all four methods
    names = {"astar-product0.5-a0", "astar-product0.5-a2", "greedy-product0.5-a0"}
    assert set(summary["methods"]) == {*names, "greedy-product0.5-a2"}
    for row in summary["methods"].values():
        assert row["n"] == 3 and row["errors"] == 0
    assert summary["methods"]["astar-product0.5-a0"]["success"] > 0
    files = ("tradeoff.png", "costa_summary.md", "trees/trees.jsonl", "astar-product0.5-a0.jsonl")
    for name in files:
        assert (tmp_path / name).exists(), name
    assert (tmp_path / "tradeoff.png").read_bytes()[:4] == b"\x89PNG"
    trees = [json.loads(line) for line in (tmp_path / "trees/trees.jsonl").read_text().splitlines()]
    assert all(t["tokens"]["prompt"] > 0 and t["tokens"]["completion"] > 0 for t in trees)
    # a second run resumes: nothing is asked of the model again
    run_bench(
        scripted([]),
        tmp_path,
        n=3,
        seed=0,
        alphas=(0.0, 2.0),
        searches=("astar", "greedy"),
        rules=[("product", 0.5)],
        progress=False,
    )


# --- the agent contract: nodes alone, trace records, statuses, checkpointing ------------------


def test_each_node_runs_alone(scripted, tasks):
    from toolpath.agents.costa.agent import CostaSteps
    from toolpath.agents.costa.table import CostTable

    task = tasks[0]
    domain = ImageDomain()
    steps = CostaSteps(scripted([tree_reply(task)]), domain, CostTable(domain.priors()))
    state = {"request": task.instruction, "context": ImageState(task.image)}
    state |= steps.build_tree(state)
    assert state["status"] == "running" and state["trace"][0]["node"] == "build_tree"
    state |= steps.search(state)
    assert len(state["plan"]) == len(state["tree"]) and steps.after_search(state) == "execute"
    state |= steps.execute(state)
    (attempt,) = state["attempts"]
    assert attempt["tool"] == state["plan"][0].tool
    record = state["trace"][-1]
    assert record == {
        "node": "execute",
        "tool": attempt["tool"],
        "seconds": attempt["cost"],
        "ok": attempt["ok"],
    }


def test_too_many_replans_is_the_step_limit(scripted, tasks):
    task = next(t for t in tasks if any(s.type == "locate" for s in t.subtasks))
    agent = costa_agent(
        scripted([tree_reply(task)]),
        domain=FlakyDomain("locate_shape"),
        alpha=0.0,
        q_threshold=0.5,
        max_replans=0,
    )
    state = solve(agent, task)
    assert state["status"] == "step_limit" and "re-plans" in state["reason"]
    assert state["trace"][-1]["error"] == "RuntimeError: device lost"


class PoorDomain(ImageDomain):
    """The image domain with every tool's prior quality at 0.5."""

    def priors(self):
        return {pair: (cost, 0.5) for pair, (cost, _) in super().priors().items()}


def test_no_tool_path_left_is_a_failure(scripted, tasks):
    task = tasks[1]
    tree = json.loads(tree_reply(task))["subtasks"]
    agent = costa_agent(scripted([]), domain=PoorDomain(), q_threshold=0.9, threshold="product")
    state = agent.invoke(
        {"request": task.instruction, "context": ImageState(task.image), "tree": tree}
    )
    assert state["status"] == "failed" and "quality >= 0.9" in state["reason"]
    assert state["attempts"] == []


def test_a_checkpointed_thread_keeps_the_run_and_takes_the_next_request(scripted, tasks, tmp_path):
    from toolpath.agents.base import sqlite_checkpointer

    first_task, second_task = tasks[0], tasks[2]
    db = tmp_path / "c.db"
    config = {"configurable": {"thread_id": "t"}}
    model = scripted([tree_reply(first_task), tree_reply(second_task)])
    agent = costa_agent(model, checkpointer=sqlite_checkpointer(db))
    first = solve_on(agent, first_task, config)
    assert first["status"] == "done"

    # reopened with a serializer that loads only the types it is told of (LangGraph's strict
    # mode): the agent tells it of the steps and the domain's context
    reopened = costa_agent(scripted([]), checkpointer=strict_checkpointer(db))
    saved = reopened.get_state(config)
    assert not saved.next and saved.values["status"] == "done"
    assert isinstance(saved.values["context"], ImageState)
    assert first_task.check(saved.values["context"].image)
    assert saved.values["executed"] == first["executed"]
    assert saved.values["attempts"] == first["attempts"]

    # a new request on the thread gets its own tree (not the one the thread holds)
    second = solve_on(agent, second_task, config)
    assert len(model.requests) == 2
    assert second["status"] == "done" and second_task.check(second["context"].image)
    assert len(second["executed"]) == len(second_task.subtasks)
    # the same request again reuses the thread's tree: the model is not asked
    again = solve_on(
        costa_agent(scripted([]), checkpointer=sqlite_checkpointer(db)), second_task, config
    )
    assert again["status"] == "done" and again["tree"] == second["tree"]


def strict_checkpointer(path):
    import sqlite3

    from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
    from langgraph.checkpoint.sqlite import SqliteSaver

    serde = JsonPlusSerializer(allowed_msgpack_modules=None)
    return SqliteSaver(sqlite3.connect(str(path), check_same_thread=False), serde=serde)


def solve_on(agent, task, config):
    return agent.invoke({"request": task.instruction, "context": ImageState(task.image)}, config)


def test_each_benchmark_task_starts_from_the_priors(scripted, tmp_path):
    """What one task learned (here: every tool spoiled) does not reach the next task, unless
    the run asks for learning across tasks."""
    import asyncio

    from toolpath.evals.costa.benchmark import CostaBench

    for learn, expected in ((False, "done"), (True, "failed")):
        bench = CostaBench(n=2, seed=0, learn_across=learn)
        (example, _) = list(bench.load())
        task = bench._tasks[example.id]
        bench.trees = {example.id: json.loads(tree_reply(task))["subtasks"]}
        agent = costa_agent(scripted([]), q_threshold=0.5)
        for (tool, kind), (cost, _q) in bench.priors.items():
            agent.table.set_prior(tool, kind, cost, 0.01)
        record = asyncio.run(bench.run_one(example, agent))
        assert record["status"] == expected

"""TPTU's one-step agent: the whole plan in one constrained reply, references to earlier
results, the plan's check, a re-plan with the error, and the end when no re-plan is left."""

from __future__ import annotations

import json
from typing import Any

import pytest

from toolpath.agents.one_step import check_plan, fill, one_step_agent
from toolpath.errors import ConfigError, ToolError
from toolpath.tools import tool


@tool
def add(a: float, b: float) -> float:
    """Add two numbers."""
    return a + b


@tool
def multiply(a: float, b: float) -> float:
    """Multiply two numbers."""
    return a * b


@tool
def divide(a: float, b: float) -> float:
    """Divide a by b."""
    if b == 0:
        raise ToolError("cannot divide by zero")
    return a / b


def plan(*steps: tuple[str, dict[str, Any]]) -> str:
    return json.dumps({"steps": [{"name": n, "arguments": a} for n, a in steps]})


def test_a_plan_with_a_reference_runs_in_order_then_answers(scripted):
    model = scripted([plan(("add", {"a": 2, "b": 3}), ("multiply", {"a": "$1", "b": 4})), "20"])
    state = one_step_agent(model, [add, multiply]).invoke("What is (2 + 3) * 4?")
    assert state["status"] == "done" and state["answer"] == "20"
    assert state["results"] == ["5.0", "20.0"] and state["replans"] == 0
    assert [r["node"] for r in state["trace"]] == ["plan", "run", "run", "answer"]
    first, second = model.requests
    steps = first.response_format["json_schema"]["schema"]["properties"]["steps"]
    names = [o["properties"]["name"]["const"] for o in steps["items"]["anyOf"]]
    assert names == ["add", "multiply"]  # constrained to the tools, references allowed:
    arg = steps["items"]["anyOf"][1]["properties"]["arguments"]["properties"]["a"]
    assert arg["anyOf"][1]["pattern"] == r"^\$[1-9][0-9]?$"
    assert (
        "2. multiply" in second.messages[-1]["content"]
        and "-> 20.0" in second.messages[-1]["content"]
    )


def test_a_plan_that_does_not_check_is_planned_again_with_the_reason(scripted):
    ahead = plan(("multiply", {"a": "$2", "b": 4}), ("add", {"a": 2, "b": 3}))
    model = scripted(
        [ahead, plan(("add", {"a": 2, "b": 3}), ("multiply", {"a": "$1", "b": 4})), "20"]
    )
    state = one_step_agent(model, [add, multiply]).invoke("What is (2 + 3) * 4?")
    assert state["status"] == "done" and state["replans"] == 1
    again = model.requests[1].messages[-1]["content"]
    assert "The last plan failed" in again and "step 1 uses $2" in again


def test_a_failed_step_is_planned_again_once_then_the_run_fails(scripted):
    bad = plan(("divide", {"a": 1, "b": 0}))
    model = scripted([bad, bad])
    state = one_step_agent(model, [divide]).invoke("What is 1 / 0?")
    assert state["status"] == "failed" and state["replans"] == 1
    assert "step 1 (divide) failed: cannot divide by zero" in state["reason"]
    assert "cannot divide by zero" in model.requests[1].messages[-1]["content"]
    assert state.get("answer") is None


def test_no_replans_means_the_first_failure_ends_the_run(scripted):
    model = scripted(["not a plan"])
    state = one_step_agent(model, [add], replans=0).invoke("2 + 2?")
    assert state["status"] == "failed" and "not usable" in state["reason"]


def test_check_plan_and_fill():
    tools = {"add": add}
    with pytest.raises(ValueError, match="not a tool"):
        check_plan(plan(("sub", {"a": 1})), tools)
    with pytest.raises(ValueError, match="only steps before it"):
        check_plan(plan(("add", {"a": "$1", "b": 1})), tools)
    with pytest.raises(ValueError, match="not JSON"):
        check_plan("{", tools)
    assert fill({"a": "$1", "note": "got $2 apples", "xs": ["$2"]}, ["5", "three"]) == {
        "a": 5,
        "note": "got three apples",
        "xs": ["three"],
    }
    with pytest.raises(ConfigError):
        one_step_agent(None, [])


@pytest.mark.model
def test_the_embedded_model_writes_a_plan_llama_cpp_can_constrain(local_model):
    state = one_step_agent(local_model, [add, multiply]).invoke(
        "Add 2 and 3, then multiply the sum by 4."
    )
    assert state["status"] in ("done", "failed")
    plans = [r for r in state["trace"] if r["node"] == "plan"]
    assert plans and all(r["tokens_out"] > 0 for r in plans)
    assert state["plan"] or state["reason"]  # a checked plan, or why none checked
    for step in state["plan"]:
        assert step["name"] in ("add", "multiply")

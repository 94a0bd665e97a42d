"""Control flow of the single-model tool agent, driven by the shared scripted model."""

from __future__ import annotations

import asyncio
import json
import operator
import time
from typing import Annotated, Any, TypedDict
from unittest.mock import ANY

import pytest
from langgraph.graph import END, START, StateGraph

from toolpath.agents import sqlite_checkpointer
from toolpath.agents.react import ToolSteps, tool_agent
from toolpath.errors import BackendError, ToolError
from toolpath.llm.base import ToolCall
from toolpath.tools import calculator, tool


def call(name: str, **args: object) -> str:
    return json.dumps({"tool": name, "arguments": args})


def final(text: str) -> str:
    return json.dumps({"final_answer": text})


def allowed_replies(request) -> list[str]:
    """Which top-level reply shapes a request's response_format allows."""
    schema = request.response_format["json_schema"]["schema"]
    shapes = []
    for option in schema.get("anyOf", [schema]):
        if "final_answer" in option["properties"]:
            shapes.append("final_answer")
            continue
        calls = option["properties"]["tool_calls"]["items"]
        shapes += [c["properties"]["name"]["const"] for c in calls.get("anyOf", [calls])]
    return shapes


def test_tool_call_then_answer(scripted):
    model = scripted([call("calculator", expression="1234 * 5678"), final("7006652")])
    state = tool_agent(model, [calculator]).invoke("What is 1234 * 5678?")
    assert state["answer"] == "7006652"
    assert state["status"] == "done"
    # the real calculator ran and its result reached the model as an observation
    second = model.requests[1].messages
    assert "Observation from calculator: 7006652" in second[-1]["content"]
    assert second[-1]["role"] == "user"  # json mode shows tool results as plain text
    assert [r["node"] for r in state["trace"]] == ["model", "tool", "model"]
    assert all(r["seconds"] >= 0 for r in state["trace"])
    assert state["trace"][0]["tokens_out"] > 0 and state["trace"][0]["model"] == "scripted"
    assert state["trace"][1] == {"node": "tool", "tool": "calculator", "seconds": ANY, "ok": True}
    # canonical history keeps OpenAI tool_calls and tool messages
    roles = [m["role"] for m in state["messages"]]
    assert roles == ["user", "assistant", "tool", "assistant"]
    assert state["messages"][1]["tool_calls"][0]["function"]["name"] == "calculator"


def test_json_mode_constrains_reply_to_tools_or_final(scripted):
    model = scripted([final("hi")])
    tool_agent(model, [calculator]).invoke("hello")
    req = model.requests[0]
    assert allowed_replies(req) == ["calculator", "final_answer"]
    assert "expression (string, required)" in req.messages[0]["content"]
    assert "none of the tools can do what is asked" in " ".join(req.messages[0]["content"].split())
    assert req.tools is None


def test_invalid_reply_is_repaired(scripted):
    model = scripted(["not json at all", final("42")])
    state = tool_agent(model, [calculator]).invoke("q")
    assert state["answer"] == "42"
    note = model.requests[1].messages[-1]
    assert note["role"] == "user" and "could not be used" in note["content"]


def test_repairs_are_bounded(scripted):
    model = scripted(["bad"] * 10)
    state = tool_agent(model, [calculator], max_repairs=2).invoke("q")
    assert state["status"] == "failed"
    assert state["answer"] is None
    assert len(model.requests) == 3


def test_unknown_tool_and_bad_arguments_become_observations(scripted):
    model = scripted([call("nope", x=1), call("calculator", expr="1+1"), final("2")])
    state = tool_agent(model, [calculator]).invoke("q")
    assert state["answer"] == "2"
    assert "no tool named 'nope'" in model.requests[1].messages[-1]["content"]
    assert "expression" in model.requests[2].messages[-1]["content"]


def test_tool_exception_becomes_observation(scripted):
    @tool
    def flaky(x: int) -> int:
        """Fails on purpose."""
        raise ToolError("service down")

    model = scripted([call("flaky", x=1), final("gave up")])
    state = tool_agent(model, [flaky]).invoke("q")
    assert state["answer"] == "gave up"
    assert "Error from flaky: service down" in model.requests[1].messages[-1]["content"]
    assert state["trace"][1] == {**state["trace"][1], "node": "tool", "ok": False}


def test_repeated_identical_call_forces_an_answer(scripted):
    model = scripted([call("calculator", expression="2+2")] * 2 + [final("4")])
    state = tool_agent(model, [calculator]).invoke("q")
    assert state["answer"] == "4"
    assert allowed_replies(model.requests[1]) == ["calculator", "final_answer"]
    assert allowed_replies(model.requests[2]) == ["final_answer"]
    assert "already made this exact call" in model.requests[2].messages[-1]["content"]


def test_step_cap_forces_final_answer(scripted):
    replies = [call("calculator", expression=f"{i}+1") for i in range(10)]
    model = scripted([*replies[:3], final("done")])
    state = tool_agent(model, [calculator], max_steps=4).invoke("q")
    assert state["answer"] == "done"
    assert state["steps"] == 4
    assert allowed_replies(model.requests[3]) == ["final_answer"]


def test_native_mode_with_json_block_fallback(scripted):
    model = scripted(
        [
            ToolCall("calculator", {"expression": "6*7"}),
            'Let me compute.\n```json\n{"tool": "calculator", "arguments": {"expression": "42+1"}}\n```',
            "The answer is 43.",
        ],
        tool_mode="native",
    )
    state = tool_agent(model, [calculator]).invoke("q")
    assert state["answer"] == "The answer is 43."
    assert model.requests[0].tools[0]["function"]["name"] == "calculator"
    tool_msgs = [m for m in state["messages"] if m["role"] == "tool"]
    assert "42" in tool_msgs[0]["content"] and "43" in tool_msgs[1]["content"]


def test_stream_emits_tokens_and_updates(scripted):
    model = scripted([call("calculator", expression="3*3"), final("9")])
    agent = tool_agent(model, [calculator])
    events = list(agent.stream("q", stream_mode=["updates", "custom"]))
    tokens = "".join(e[1]["delta"] for e in events if e[0] == "custom")
    assert '"final_answer"' in tokens and "3*3" in tokens
    nodes = [next(iter(e[1])) for e in events if e[0] == "updates"]
    assert nodes == ["start", "model", "tools", "model"]


async def test_async_invoke(scripted):
    model = scripted([final("async ok")])
    state = await tool_agent(model, [calculator]).ainvoke("q")
    assert state["answer"] == "async ok"


async def test_async_runs_take_the_models_async_path(scripted, monkeypatch):
    model = scripted([call("calculator", expression="3*3"), final("9")] * 2)

    def no_sync_stream(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("an async run called the sync stream")

    monkeypatch.setattr(model, "stream", no_sync_stream)
    agent = tool_agent(model, [calculator])
    state = await agent.ainvoke("q")
    assert state["answer"] == "9" and state["status"] == "done"
    events = [e async for e in agent.astream("q", stream_mode=["updates", "custom"])]
    tokens = "".join(e[1]["delta"] for e in events if e[0] == "custom")
    assert '"final_answer"' in tokens and "3*3" in tokens
    assert [next(iter(e[1])) for e in events if e[0] == "updates"] == [
        "start", "model", "tools", "model"
    ]  # fmt: skip
    with pytest.raises(AssertionError, match="sync stream"):
        # a sync run asked for tokens does use it: the patch above really bites
        agent.invoke("q", {"configurable": {"stream_tokens": True}})


def test_checkpointer_resumes_by_thread_id(scripted, tmp_path):
    runs = []

    @tool
    def lookup(key: str) -> str:
        """Look a key up."""
        runs.append(key)
        return f"value-of-{key}"

    def down(_messages):
        raise BackendError("endpoint went away")

    model = scripted([call("lookup", key="a"), down, final("value-of-a")])
    agent = tool_agent(model, [lookup], checkpointer=sqlite_checkpointer(tmp_path / "cp.db"))
    config = {"configurable": {"thread_id": "t1"}}
    with pytest.raises(BackendError):
        agent.invoke("what is a?", config)
    # resume from the last checkpoint: the tool is not run again
    state = agent.invoke(None, config)
    assert state["answer"] == "value-of-a"
    assert runs == ["a"]
    # the same thread continues as a conversation
    model.replies.append(final("still here"))
    state = agent.invoke("and now?", config)
    assert state["answer"] == "still here"
    assert [m["role"] for m in state["messages"]].count("user") == 2


def test_native_mode_reads_bare_json_and_hermes_tags(scripted):
    model = scripted(
        [
            '{"name": "calculator", "arguments": {"expression": "2*21"}}',
            '<tool_call>\n{"name": "calculator", "arguments": {"expression": "42-1"}}\n</tool_call>',
            '{"name": "Bob", "age": 3}',
        ],
        tool_mode="native",
    )
    state = tool_agent(model, [calculator]).invoke("q")
    results = [m["content"] for m in state["messages"] if m["role"] == "tool"]
    assert "calculator: 42\n" in results[0] and "calculator: 41\n" in results[1]
    assert state["answer"] == '{"name": "Bob", "age": 3}'  # JSON that is not a call is an answer


def test_works_as_a_subgraph_with_dict_input(scripted):
    class Parent(TypedDict, total=False):
        messages: Annotated[list[dict[str, Any]], operator.add]
        answer: str | None
        status: str

    model = scripted([call("calculator", expression="6*7"), final("42"), final("again")])
    parent = StateGraph(Parent)
    parent.add_node("agent", tool_agent(model, [calculator]))
    parent.add_edge(START, "agent")
    parent.add_edge("agent", END)
    graph = parent.compile()
    state = graph.invoke({"messages": [{"role": "user", "content": "6*7?"}]})
    assert state["answer"] == "42" and state["status"] == "done"
    # a later run that carries the finished status in still runs (start resets it)
    again = graph.invoke({**state, "messages": [{"role": "user", "content": "more?"}]})
    assert again["answer"] == "again"
    # streamed by the parent in custom mode, the subgraph's tokens reach the parent's reader
    model.replies.append(final("streamed"))
    events = list(graph.stream({"messages": [{"role": "user", "content": "x"}]},
                               stream_mode="custom", subgraphs=True))  # fmt: skip
    assert '"streamed"' in "".join(e[1]["delta"] for e in events)


def test_tokens_are_streamed_only_when_someone_reads_them(scripted, monkeypatch):
    model = scripted([final("a")] * 5)
    real_stream, streamed = model.stream, []

    def counting_stream(*args: Any, **kwargs: Any) -> Any:
        streamed.append(1)
        yield from real_stream(*args, **kwargs)

    monkeypatch.setattr(model, "stream", counting_stream)
    agent = tool_agent(model, [calculator])
    agent.invoke("q")  # invoke never delivers token events: whole replies
    list(agent.stream("q", stream_mode="updates"))
    assert streamed == [] and len(model.requests) == 2
    events = list(agent.stream("q", stream_mode=["updates", "custom"]))
    assert streamed == [1] and any(kind == "custom" for kind, _ in events)
    agent.invoke("q", {"configurable": {"stream_tokens": True}})  # the caller decides
    assert streamed == [1, 1]


def test_the_old_argument_order_still_works_with_a_warning(scripted):
    model = scripted([call("calculator", expression="2*3"), final("6")])
    with pytest.warns(DeprecationWarning, match=r"tool_agent\(model, tools\): the model comes"):
        agent = tool_agent([calculator], model)  # type: ignore[arg-type]
    assert agent.invoke("q")["answer"] == "6"
    with pytest.warns(DeprecationWarning):
        tool_agent([calculator])  # tools alone, in the old first place: the default model
    with pytest.warns(DeprecationWarning):
        tool_agent(None, model)  # type: ignore[arg-type]


def test_nodes_can_be_called_alone(scripted):
    model = scripted([call("calculator", expression="6*7")])
    steps = ToolSteps(model, [calculator], max_steps=3)
    state: dict[str, Any] = {"messages": [{"role": "user", "content": "6*7?"}]}
    state.update(steps.start(state))
    assert state["status"] == "running" and state["run_start"] == 0
    update = steps.call_model(state)  # outside a graph run: no token stream
    assert update["steps"] == 1 and "status" not in update
    assert update["trace"][0]["node"] == "model" and update["trace"][0]["model"] == "scripted"
    state["messages"] = state["messages"] + update["messages"]
    update = steps.call_tools(state)
    assert update["failures"] == 0 and update["force_final"] is False
    assert update["messages"][0]["role"] == "tool"
    assert update["messages"][0]["content"].startswith("Observation from calculator: 42\n")
    # the same call again is flagged and forces the answer
    state["messages"] = state["messages"] + update["messages"] + state["messages"][-1:]
    again = steps.call_tools(state)
    assert again["force_final"] is True and "already made this exact call" in str(again["messages"])


def slow_tools() -> list[Any]:
    @tool
    def slow_double(x: int) -> int:
        """Double a number, slowly."""
        time.sleep(0.5)
        return 2 * x

    @tool
    async def slow_square(x: int) -> int:
        """Square a number, slowly."""
        await asyncio.sleep(0.5)
        return x * x

    return [slow_double, slow_square]


def two_calls_in_one_turn() -> dict[str, Any]:
    calls = [ToolCall("slow_double", {"x": 3}, id="c1"), ToolCall("slow_square", {"x": 5}, id="c2")]
    return {"role": "assistant", "content": None, "tool_calls": [c.to_openai() for c in calls]}


@pytest.mark.parametrize("run", ["stream", "astream"])
async def test_the_calls_of_one_turn_run_concurrently(scripted, run):
    model = scripted([two_calls_in_one_turn(), "6 and 25"], tool_mode="native")
    agent = tool_agent(model, slow_tools())
    modes = ["updates", "values"]
    if run == "stream":
        events = [(e, time.perf_counter()) for e in agent.stream("q", stream_mode=modes)]
    else:
        events = [(e, time.perf_counter()) async for e in agent.astream("q", stream_mode=modes)]
    updates = [(next(iter(chunk)), at) for (mode, chunk), at in events if mode == "updates"]
    assert [node for node, _ in updates] == ["start", "model", "tools", "model"]
    # the tools node took as long as one tool: the two, one after the other, would take 1 s
    assert 0.5 <= updates[2][1] - updates[1][1] < 0.8
    state = events[-1][0][1]
    results = [(m["tool_call_id"], m["content"]) for m in state["messages"] if m["role"] == "tool"]
    assert [(i, text.splitlines()[0]) for i, text in results] == [
        ("c1", "Observation from slow_double: 6"),
        ("c2", "Observation from slow_square: 25"),
    ]
    assert state["answer"] == "6 and 25" and state["status"] == "done"
    assert [(r["tool"], r["ok"]) for r in state["trace"] if r["node"] == "tool"] == [
        ("slow_double", True),
        ("slow_square", True),
    ]

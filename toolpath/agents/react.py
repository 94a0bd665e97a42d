"""A single-model tool agent: a model node and a tool node in a loop, with a step cap.

    START -> start -> model -> (tools -> model)* -> END

``start`` resets the run's bookkeeping (so the graph also works as a subgraph and on a
thread that continues a conversation). The model node asks the model for its next move
(:func:`toolpath.agents.toolcall.decide`, or :func:`~toolpath.agents.toolcall.adecide` under
``ainvoke``/``astream``).
A tool call goes to the tool node; a final answer ends the run; a reply that cannot be
used goes back to the model with the error, at most ``max_repairs`` times in a row.
A tool failure is an observation too. Near the step cap, or after the model repeats an
identical call, the model may only answer.
"""

from __future__ import annotations

import json
import operator
import time
from collections.abc import Sequence
from typing import Annotated, Any, Literal, TypedDict

from langchain_core.runnables import RunnableLambda
from langgraph.config import get_stream_writer
from langgraph.graph import END, START, StateGraph

from toolpath.agents.base import AgentGraph, as_model, finish, model_record, tokens_wanted
from toolpath.errors import ConfigError, ToolError
from toolpath.llm.base import ChatModel, Message, tool_message, user
from toolpath.agents.toolcall import TOOL_ERROR, Decision, adecide, decide, observation
from toolpath.tools.base import Tool, as_tools

Status = Literal["running", "answered", "step_limit", "failed"]


class ToolAgentState(TypedDict, total=False):
    messages: Annotated[list[Message], operator.add]
    answer: str | None
    status: Status
    steps: int
    failures: int
    force_final: bool
    run_start: int
    trace: Annotated[list[dict[str, Any]], operator.add]


def tool_agent(
    tools: Sequence[Tool | Any] = (),
    model: ChatModel | str | None = None,
    *,
    instructions: str = "",
    max_steps: int = 8,
    max_repairs: int = 2,
    max_tokens: int = 512,
    checkpointer: Any = None,
    planner: ChatModel | str | None = None,
    caller: ChatModel | str | None = None,
    summarizer: ChatModel | str | None = None,
    retriever: Any = None,
    demos: Any = None,
) -> AgentGraph:
    """Build the single-model tool agent as a compiled LangGraph graph.

    ``model`` is a ChatModel or a spec such as ``"local:qwen2.5-coder-0.5b"``.
    ``checkpointer`` (for example :func:`toolpath.agents.sqlite_checkpointer`) lets a run
    resume by ``config={"configurable": {"thread_id": ...}}``.
    Invoke it with a question string or ``{"messages": [...]}``; the result state has
    ``answer``, ``status``, ``messages`` and a ``trace`` of timed steps.

    Passing any of ``planner``, ``caller`` or ``summarizer`` builds the α-UMi multi-role agent
    instead (:func:`toolpath.agents.alpha_umi.agent.alpha_umi_agent`, ``model`` being the default
    for the roles not given), which also takes ``retriever`` and ``demos``.
    """
    if planner is not None or caller is not None or summarizer is not None:
        if instructions:
            raise ConfigError("instructions= applies to the single-model agent only")
        from toolpath.agents.alpha_umi.agent import alpha_umi_agent

        return alpha_umi_agent(
            tools,
            model,
            planner=planner,
            caller=caller,
            summarizer=summarizer,
            retriever=retriever,
            demos=demos,
            max_steps=max_steps,
            checkpointer=checkpointer,
        )
    if retriever is not None or demos is not None:
        raise ConfigError(
            "retriever= and demos= belong to the multi-role agent: also pass planner=, "
            "caller= or summarizer= (the same model for all roles is fine)"
        )
    llm = as_model(model)
    toolset = as_tools(tools)
    by_name = {t.name: t for t in toolset}

    def start(state: ToolAgentState) -> dict[str, Any]:
        """Reset the per-run bookkeeping; earlier turns of the thread stay in ``messages``."""
        return {
            "answer": None,
            "status": "running",
            "steps": 0,
            "failures": 0,
            "force_final": False,
            "run_start": len(state.get("messages", [])) - 1,
        }

    def model_options(state: ToolAgentState) -> dict[str, Any]:
        steps = state.get("steps", 0) + 1
        write = get_stream_writer()
        return {
            "instructions": instructions,
            "force_final": state.get("force_final", False) or steps >= max_steps,
            "max_tokens": max_tokens,
            "on_delta": (
                (lambda d: write({"type": "token", "node": "model", "delta": d}))
                if tokens_wanted()
                else None
            ),
        }

    def model_update(state: ToolAgentState, decision: Decision) -> dict[str, Any]:
        steps = state.get("steps", 0) + 1
        assert decision.completion is not None
        record = model_record("model", decision.completion)
        update: dict[str, Any] = {"steps": steps, "messages": [decision.message], "trace": [record]}
        if decision.final is not None:
            return {**update, "answer": decision.final, "status": "answered"}
        if decision.error is not None:
            failures = state.get("failures", 0) + 1
            note = user(f"Your reply could not be used: {decision.error}")
            status: Status = "failed" if failures > max_repairs else "running"
            if steps >= max_steps:
                status = "step_limit"
            record["error"] = decision.error
            return {
                **update,
                "messages": [decision.message, note],
                "failures": failures,
                "status": status,
            }
        if steps >= max_steps:
            update["status"] = "step_limit"
        return update

    def call_model(state: ToolAgentState) -> dict[str, Any]:
        decision = decide(llm, state["messages"], toolset, **model_options(state))
        return model_update(state, decision)

    async def acall_model(state: ToolAgentState) -> dict[str, Any]:
        decision = await adecide(llm, state["messages"], toolset, **model_options(state))
        return model_update(state, decision)

    def call_tools(state: ToolAgentState) -> dict[str, Any]:
        last = state["messages"][-1]
        done = _previous_calls(state["messages"][state.get("run_start", 0) : -1])
        results: list[Message] = []
        trace: list[dict[str, Any]] = []
        failures, force = state.get("failures", 0), False
        for raw in last.get("tool_calls", []):
            name, args = raw["function"]["name"], json.loads(raw["function"]["arguments"])
            key = _call_key(name, args)
            start = time.perf_counter()
            try:
                result = by_name[name].run(args)
                text, ok, failures = observation(name, result), True, 0
            except ToolError as exc:
                text, ok, failures = TOOL_ERROR.format(name=name, error=exc), False, failures + 1
            if key in done:
                text += "\nYou already made this exact call. Reply with final_answer now."
                force = True
            results.append(tool_message(raw["id"], text))
            trace.append(
                {"node": "tool", "tool": name, "ok": ok, "latency_s": time.perf_counter() - start}
            )
        update: dict[str, Any] = {
            "messages": results,
            "trace": trace,
            "failures": failures,
            "force_final": force,
        }
        if failures > max_repairs:
            update["status"] = "failed"
        return update

    def after_model(state: ToolAgentState) -> str:
        if state.get("status") != "running":
            return END
        last = state["messages"][-1]
        return "tools" if last.get("tool_calls") else "model"

    def after_tools(state: ToolAgentState) -> str:
        return END if state.get("status") != "running" else "model"

    g = StateGraph(ToolAgentState)
    g.add_node("start", start)
    # sync for invoke/stream; async for ainvoke/astream, where a waiting episode holds no thread
    g.add_node("model", RunnableLambda(call_model, afunc=acall_model, name="model"))
    g.add_node("tools", call_tools)
    g.add_edge(START, "start")
    g.add_edge("start", "model")
    g.add_conditional_edges("model", after_model, ["tools", "model", END])
    g.add_conditional_edges("tools", after_tools, ["model", END])
    return finish(g.compile(checkpointer=checkpointer), lambda q: {"messages": [user(q)]})


def _call_key(name: str, args: dict[str, Any]) -> str:
    return name + json.dumps(args, sort_keys=True)


def _previous_calls(messages: Sequence[Message]) -> set[str]:
    keys = set()
    for m in messages:
        for raw in m.get("tool_calls") or []:
            try:
                keys.add(
                    _call_key(raw["function"]["name"], json.loads(raw["function"]["arguments"]))
                )
            except (KeyError, ValueError):
                continue
    return keys

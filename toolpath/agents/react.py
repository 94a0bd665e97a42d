"""A single-model tool agent: a model node and a tool node in a loop, with a step cap.

    START -> start -> model -> (tools -> model)* -> END

``start`` resets the run's bookkeeping (so the graph also works as a subgraph and on a
thread that continues a conversation). The model node asks the model for its next move
(:func:`toolpath.agents.toolcall.decide`, or :func:`~toolpath.agents.toolcall.adecide` under
``ainvoke``/``astream``).
A tool call goes to the tool node, which runs all of the turn's calls at once
(:func:`toolpath.agents.base.execute_calls`); a final answer ends the run; a reply that cannot
be used goes back to the model with the error, at most ``max_repairs`` times in a row.
A tool failure is an observation too. Near the step cap, or after the model repeats an
identical call, the model may only answer.

The nodes are the methods of :class:`ToolSteps`; :func:`tool_agent` wires them.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, TypedDict

from langchain_core.runnables import RunnableLambda
from langgraph.config import get_stream_writer
from langgraph.graph import END, START, StateGraph

from toolpath.agents.approval import Approve, check_approve, pausable
from toolpath.agents.base import (
    AgentGraph,
    Status,
    ToolOutcome,
    TraceRecord,
    as_model,
    execute_calls,
    finish,
    model_first,
    model_record,
    tokens_wanted,
)
from toolpath.agents.budget import Budget
from toolpath.agents.toolcall import (
    REPAIR_NOTE,
    TOOL_ERROR,
    DecideOptions,
    Decision,
    OnDelta,
    adecide,
    decide,
    observation,
)
from toolpath.llm.base import ChatModel, Message, tool_message, user
from toolpath.tools.base import Tool, as_tools

REPEATED = "\nYou already made this exact call. Reply with final_answer now."


class ToolAgentState(TypedDict, total=False):
    messages: Annotated[list[Message], operator.add]
    """The conversation: OpenAI-format messages, tool calls and tool results included."""
    answer: str | None
    status: Status
    steps: int
    """Model turns in this run."""
    failures: int
    """Unusable replies or failed tool calls in a row."""
    force_final: bool
    """Whether the next model turn may only answer (after a repeated call)."""
    run_start: int
    """Where this run's messages start (earlier ones are the thread's earlier runs)."""
    trace: Annotated[list[TraceRecord], operator.add]


def tool_agent(
    model: ChatModel | str | None = None,
    tools: Sequence[Tool | Any] = (),
    *,
    instructions: str = "",
    max_steps: int = 8,
    max_repairs: int = 2,
    max_tokens: int = 512,
    check_fit: float | None = None,
    approve: Approve = "never",
    budget: Budget | None = None,
    checkpointer: Any = None,
) -> AgentGraph:
    """Build the single-model tool agent as a compiled LangGraph graph.

    ``model`` is a ChatModel or a spec such as ``"local:qwen2.5-coder-0.5b"``; ``tools`` are
    Tools, typed functions or a :class:`~toolpath.tools.catalog.formats.Catalog`.
    ``checkpointer`` (for example :func:`toolpath.agents.sqlite_checkpointer`) lets a run
    resume by ``config={"configurable": {"thread_id": ...}}``.
    Invoke it with a question string or ``{"messages": [...]}``; the result state has
    ``answer``, ``status``, ``messages`` and a ``trace`` of timed steps.
    ``check_fit``: decline a request whose calls fail the fit check at this threshold (see
    :attr:`~toolpath.agents.toolcall.DecideOptions.check_fit`; default off).
    ``approve``: which calls wait for a human decision (:mod:`toolpath.agents.approval`);
    ``budget``: limits on the run (:mod:`toolpath.agents.budget`).
    """
    model, tools = model_first("tool_agent", model, tools)
    steps = ToolSteps(
        as_model(model),
        as_tools(tools),
        instructions,
        max_steps,
        max_repairs,
        max_tokens,
        check_fit,
        check_approve(approve),
    )
    g = StateGraph(ToolAgentState)
    g.add_node("start", steps.start)
    # the model node has an async body for ainvoke/astream, where a waiting episode holds no
    # thread; the tools node stays a plain function (LangGraph runs it in a worker thread under
    # ainvoke), since a RunnableLambda inspects its function's signature at every call
    g.add_node("model", RunnableLambda(steps.call_model, afunc=steps.acall_model, name="model"))
    g.add_node("tools", steps.call_tools)
    g.add_edge(START, "start")
    g.add_edge("start", "model")
    g.add_conditional_edges("model", after_model, ["tools", "model", END])
    g.add_conditional_edges("tools", after_tools, ["model", END])
    compiled = g.compile(checkpointer=pausable(approve, checkpointer), name="tool_agent")
    return finish(compiled, lambda q: {"messages": [user(q)]}, budget=budget)


@dataclass
class ToolSteps:
    """The tool agent's nodes, with its model, tools and options; each takes the state and
    returns its update, so a test can call one alone."""

    model: ChatModel
    tools: list[Tool]
    instructions: str = ""
    max_steps: int = 8
    max_repairs: int = 2
    max_tokens: int = 512
    check_fit: float | None = None
    approve: Approve = None
    by_name: dict[str, Tool] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.by_name = {t.name: t for t in self.tools}

    def start(self, state: ToolAgentState) -> dict[str, Any]:
        """Reset the per-run bookkeeping; earlier turns of the thread stay in ``messages``."""
        return {
            "answer": None,
            "status": "running",
            "steps": 0,
            "failures": 0,
            "force_final": False,
            "run_start": len(state.get("messages", [])) - 1,
        }

    def call_model(self, state: ToolAgentState) -> dict[str, Any]:
        """The model's next move (a tool call, an answer, or a reply to repair)."""
        options = self._options(state)
        return self._decided(state, decide(self.model, state["messages"], self.tools, **options))

    async def acall_model(self, state: ToolAgentState) -> dict[str, Any]:
        """:meth:`call_model` on the model's async API."""
        options = self._options(state)
        decision = await adecide(self.model, state["messages"], self.tools, **options)
        return self._decided(state, decision)

    def call_tools(self, state: ToolAgentState) -> dict[str, Any]:
        """Run the last turn's tool calls (concurrently) and show the model what came back."""
        turn = state["messages"][-1]
        calls = turn.get("tool_calls") or []
        outcomes = execute_calls(calls, self.by_name, approve=self.approve, reason=_said(turn))
        return self._observed(state, outcomes)

    def _options(self, state: ToolAgentState) -> DecideOptions:
        steps = state.get("steps", 0) + 1
        return {
            "instructions": self.instructions,
            "force_final": state.get("force_final", False) or steps >= self.max_steps,
            "max_tokens": self.max_tokens,
            "on_delta": token_writer("model"),
            "check_fit": self.check_fit,
        }

    def _decided(self, state: ToolAgentState, decision: Decision) -> dict[str, Any]:
        """The state update for one model turn."""
        steps = state.get("steps", 0) + 1
        assert decision.completion is not None
        record = model_record("model", decision.completion, self.model.name)
        checks = [model_record("check", c, self.model.name) for c in decision.checks]
        update: dict[str, Any] = {
            "steps": steps,
            "messages": [decision.message],
            "trace": [record, *checks],
        }
        if decision.final is not None:
            return {**update, "answer": decision.final, "status": "done"}
        if decision.error is not None:
            failures = state.get("failures", 0) + 1
            note = user(REPAIR_NOTE.format(error=decision.error))
            status: Status = "failed" if failures > self.max_repairs else "running"
            if steps >= self.max_steps:
                status = "step_limit"
            record["error"] = decision.error
            return {
                **update,
                "messages": [decision.message, note],
                "failures": failures,
                "status": status,
            }
        if steps >= self.max_steps:
            update["status"] = "step_limit"
        return update

    def _observed(self, state: ToolAgentState, outcomes: list[ToolOutcome]) -> dict[str, Any]:
        """The state update for one turn's tool outcomes, in call order: an observation (or
        the error) per call, failures counted in a row, and a note on a call this run made
        before (after which the model may only answer)."""
        done = previous_calls(state["messages"][state.get("run_start", 0) : -1])
        failures, force = state.get("failures", 0), False
        results: list[Message] = []
        for o in outcomes:
            if o.ok:
                text, failures = observation(o.name, o.result), 0
            else:
                text, failures = TOOL_ERROR.format(name=o.name, error=o.error), failures + 1
            if o.arguments is not None and call_key(o.name, o.arguments) in done:
                text += REPEATED
                force = True
            results.append(tool_message(o.id, text))
        update: dict[str, Any] = {
            "messages": results,
            "trace": [o.record("tool") for o in outcomes],
            "failures": failures,
            "force_final": force,
        }
        if failures > self.max_repairs:
            update["status"] = "failed"
        return update


def after_model(state: ToolAgentState) -> str:
    """Where a model turn leads: the tools, the model again (a repair), or the end."""
    if state.get("status") != "running":
        return END
    return "tools" if state["messages"][-1].get("tool_calls") else "model"


def after_tools(state: ToolAgentState) -> str:
    return END if state.get("status") != "running" else "model"


def token_writer(node: str) -> OnDelta | None:
    """A callback that sends each piece of a reply to LangGraph's ``custom`` stream as
    ``{"type": "token", "node": node, "delta": ...}``, or None when nobody reads tokens."""
    if not tokens_wanted():
        return None
    write = get_stream_writer()
    return lambda delta: write({"type": "token", "node": node, "delta": delta})


def call_key(name: str, args: dict[str, Any]) -> str:
    """A tool call's identity: its name and its arguments (key order aside)."""
    return name + json.dumps(args, sort_keys=True)


def previous_calls(messages: Sequence[Message]) -> set[str]:
    """The :func:`call_key` of every tool call in ``messages``."""
    keys = set()
    for m in messages:
        for raw in m.get("tool_calls") or []:
            try:
                keys.add(
                    call_key(raw["function"]["name"], json.loads(raw["function"]["arguments"]))
                )
            except (KeyError, ValueError):
                continue
    return keys


def _said(turn: Message) -> str:
    """What the model wrote beside its tool calls (nothing when its reply was the calls' JSON)."""
    text = str(turn.get("content") or "").strip()
    if text.startswith("{"):
        try:
            json.loads(text)
            return ""
        except ValueError:
            pass
    return text

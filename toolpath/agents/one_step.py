"""TPTU's one-step agent: plan every tool call first, in one reply, then run them.

    START -> plan -> run -> answer -> END     (a failed plan or step: back to plan, once)

``plan`` asks the model for the whole plan as one constrained JSON object,
``{"steps": [{"name": TOOL, "arguments": {...}}, ...]}``. An argument may be ``"$N"``: the
result of step N, for a value an earlier step computes (inside a longer text, ``$N`` is
replaced by that result's text). The plan is checked (a reference must point to an earlier
step), then ``run`` executes the steps in order through the shared tool step
(:func:`~toolpath.agents.base.execute_calls`, so approval and tracing apply). A step that
fails, or a plan that does not check, sends the agent back to ``plan`` with the error, at
most ``replans`` times. ``answer`` reads the results and answers in one more model call.

A run costs two model calls when the plan holds, against one per step plus one for the
sequential tool agent (:func:`~toolpath.agents.react.tool_agent`), which sees each result
before it decides the next call.
"""

from __future__ import annotations

import copy
import json
import operator
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any, TypedDict

from langgraph.graph import END, START, StateGraph

from toolpath.agents.approval import Approve, check_approve, pausable
from toolpath.agents.base import (
    AgentGraph,
    Status,
    TraceRecord,
    as_model,
    execute_calls,
    finish,
    generate,
    model_first,
    model_record,
)
from toolpath.agents.budget import Budget
from toolpath.agents.toolcall import describe_tools, wire_names
from toolpath.errors import ConfigError
from toolpath.llm.base import ChatModel, ToolCall, closed_object, json_schema_format, system, user
from toolpath.tools.base import Tool, as_tools

PLAN = """You plan every tool call a task needs in one reply; then the calls run, in order.

The tools:
{tools}

Reply with one JSON object {{"steps": [{{"name": "<tool>", "arguments": {{...}}}}, ...]}}: the
calls in the order they must run. Where an argument is a value that an earlier step computes,
write "$N" for the result of step N (steps count from 1). You will not see any result before
every call has run, so plan them all now."""

ANSWER = "Answer the task from the results of the tool calls. Reply with the answer only."

REF = re.compile(r"\$(\d+)")


class OneStepState(TypedDict, total=False):
    question: str
    plan: list[dict[str, Any]]
    """The checked plan: ``[{"name", "arguments"}]``."""
    results: list[str]
    error: str | None
    """Why the last plan or its run failed (shown to the next plan)."""
    replans: int
    answer: str | None
    status: Status
    reason: str | None
    trace: Annotated[list[TraceRecord], operator.add]


def one_step_agent(
    model: ChatModel | str | None = None,
    tools: Sequence[Tool | Any] = (),
    *,
    replans: int = 1,
    max_tokens: int = 512,
    approve: Approve = "never",
    budget: Budget | None = None,
    checkpointer: Any = None,
) -> AgentGraph:
    """Build TPTU's one-step agent as a compiled LangGraph graph.

    ``tools`` are Tools, typed functions or a Catalog. Invoke it with a question; the result
    state has ``answer``, ``status`` (``done`` or ``failed``), the ``plan`` that ran, its
    ``results``, ``replans`` and a ``trace``. ``replans``: how often a failed plan or step is
    planned again with the error.
    """
    model, tools = model_first("one_step_agent", model, tools)
    if replans < 0 or max_tokens < 1:
        raise ConfigError("one_step_agent: replans must be >= 0 and max_tokens >= 1")
    toolset = as_tools(tools)
    if not toolset:
        raise ConfigError("one_step_agent needs at least one tool")
    steps = OneStepSteps(as_model(model), toolset, replans, max_tokens, check_approve(approve))
    g = StateGraph(OneStepState)
    g.add_node("plan", steps.plan)
    g.add_node("run", steps.run)
    g.add_node("answer", steps.answer)
    g.add_edge(START, "plan")
    g.add_conditional_edges("plan", lambda s: _next(s, "run"), ["plan", "run", END])
    g.add_conditional_edges("run", lambda s: _next(s, "answer"), ["plan", "answer", END])
    g.add_edge("answer", END)
    compiled = g.compile(checkpointer=pausable(approve, checkpointer), name="one_step")
    return finish(compiled, lambda q: {"question": q}, budget=budget)


@dataclass
class OneStepSteps:
    """The one-step agent's nodes, with its model, tools and options."""

    model: ChatModel
    tools: list[Tool]
    replans: int = 1
    max_tokens: int = 512
    approve: Approve = None

    def plan(self, state: OneStepState) -> dict[str, Any]:
        """Ask for the whole plan (again, with the error, after a failure); check it."""
        question, error = state["question"], state.get("error")
        replans = state.get("replans", 0) + (error is not None)
        ask = f"Task: {question}"
        if error is not None:
            ask += f"\n\nThe last plan failed: {error}\nPlan again, avoiding that."
        messages = [system(PLAN.format(tools=describe_tools(self.tools, question))), user(ask)]
        c = generate(
            self.model,
            messages,
            node="plan",
            response_format=plan_schema(self.tools),
            max_tokens=self.max_tokens,
            temperature=0.0,
        )
        update: dict[str, Any] = {"replans": replans, "status": "running", "reason": None}
        update["trace"] = [model_record("plan", c, self.model.name)]
        try:
            update.update(plan=check_plan(c.content, wire_names(self.tools)), error=None)
        except ValueError as exc:
            update.update(plan=[], error=f"the plan is not usable: {exc}")
            update.update(self._failed(replans, update["error"]))
        return update

    def _failed(self, replans: int, error: str) -> dict[str, Any]:
        """The end of the run when no re-plan is left, else nothing."""
        return {"status": "failed", "reason": error} if replans >= self.replans else {}

    def run(self, state: OneStepState) -> dict[str, Any]:
        """Run the plan's steps in order, each with the earlier results filled in."""
        results: list[str] = []
        trace: list[TraceRecord] = []
        by_wire = wire_names(self.tools)
        for i, step in enumerate(state["plan"], 1):
            args = fill(step["arguments"], results)
            call = ToolCall(by_wire[step["name"]].name, args, f"step_{i}").to_openai()
            [outcome] = execute_calls([call], {t.name: t for t in self.tools}, approve=self.approve)
            trace.append(outcome.record("run"))
            if not outcome.ok:
                error = f"step {i} ({step['name']}) failed: {outcome.error}"
                failed = self._failed(state.get("replans", 0), error)
                return {"results": results, "error": error, "trace": trace, **failed}
            results.append(outcome.result)
        return {"results": results, "error": None, "trace": trace}

    def answer(self, state: OneStepState) -> dict[str, Any]:
        """Answer from the results."""
        lines = [
            f"{i}. {s['name']}({json.dumps(s['arguments'], ensure_ascii=False)}) -> {r}"
            for i, (s, r) in enumerate(zip(state["plan"], state["results"], strict=True), 1)
        ]
        task = f"Task: {state['question']}\nCalls and results:\n" + "\n".join(lines)
        c = generate(self.model, [system(ANSWER), user(task)], node="answer", max_tokens=256)
        answer = c.content.strip()
        return {
            "answer": answer,
            "status": "done",
            "trace": [model_record("answer", c, self.model.name)],
        }


def _next(state: OneStepState, then: str) -> str:
    """After plan or run: end a finished run, plan again after an error, else go on."""
    if state.get("status") != "running":
        return END
    return "plan" if state.get("error") is not None else then


def plan_schema(tools: Sequence[Tool]) -> dict[str, Any]:
    """The constrained plan: steps, each one of the tools with its argument schema, where any
    argument may instead be a reference ``"$N"``."""
    options = []
    for t in tools:
        params = copy.deepcopy({k: v for k, v in t.parameters.items() if k != "$defs"})
        for name, schema in (params.get("properties") or {}).items():
            ref = {"type": "string", "pattern": r"^\$[1-9][0-9]?$"}
            params["properties"][name] = {"anyOf": [schema, ref]}
        params.setdefault("additionalProperties", False)
        option = closed_object({"name": {"const": t.wire_name}, "arguments": params})
        if "$defs" in t.parameters:
            option["$defs"] = t.parameters["$defs"]
        options.append(option)
    step = options[0] if len(options) == 1 else {"anyOf": options}
    steps = {"type": "array", "items": step, "minItems": 1, "maxItems": 12}
    return json_schema_format("plan", closed_object({"steps": steps}))


def check_plan(text: str, tools: dict[str, Tool]) -> list[dict[str, Any]]:
    """The plan in a reply, checked: known tools, object arguments, references to earlier
    steps only. A ``ValueError`` says what is wrong."""
    try:
        raw = json.loads(text)
    except ValueError:
        raise ValueError("the reply is not JSON") from None
    steps = raw.get("steps") if isinstance(raw, dict) else None
    if not isinstance(steps, list) or not steps:
        raise ValueError('no "steps" list')
    plan = []
    for i, step in enumerate(steps, 1):
        name, args = (
            (step.get("name"), step.get("arguments")) if isinstance(step, dict) else (None, None)
        )
        if name not in tools:
            raise ValueError(f"step {i} calls {name!r}, which is not a tool")
        if not isinstance(args, dict):
            raise ValueError(f"step {i}: the arguments must be an object")
        for ref in REF.findall(json.dumps(args)):
            if not 1 <= int(ref) < i:
                raise ValueError(f"step {i} uses ${ref}, but only steps before it have results")
        plan.append({"name": name, "arguments": args})
    return plan


def fill(value: Any, results: list[str]) -> Any:
    """``value`` with every ``$N`` replaced by step N's result: a whole ``"$N"`` by the result
    as JSON when it parses (a number stays a number), a ``$N`` inside a text by its text."""
    if isinstance(value, dict):
        return {k: fill(v, results) for k, v in value.items()}
    if isinstance(value, list):
        return [fill(v, results) for v in value]
    if not isinstance(value, str):
        return value
    whole = REF.fullmatch(value)
    if whole:
        result = results[int(whole.group(1)) - 1]
        try:
            return json.loads(result)
        except ValueError:
            return result
    return REF.sub(lambda m: results[int(m.group(1)) - 1], value)

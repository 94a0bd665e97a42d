"""α-UMi: a planner, a caller and a summarizer (one model each, or all one), with TPTU-v2 retrieval.

    START -> retrieve -> planner
    planner    -> caller      (Next: caller; also when the tag is missing)
               -> summarizer  (Next: conclusion, or the step cap was reached)
               -> planner     (an empty reply, retried at most ``max_empty`` times)
               -> END         (Next: give up, or too many empty replies)
    caller     -> tool -> planner
    summarizer -> END

``retrieve`` picks the tools the roles see for this task (the retriever's top ``k_tools``, or
the whole catalog without a retriever) and the demonstrations (TPTU-v2's demo selector).
The planner thinks and ends with a ``Next:`` tag; the caller writes ``Action:`` /
``Action Input:``; the tool node runs the call and records what came back (a result, or an
error the planner can act on: an unknown tool name with the closest real names, bad JSON,
bad arguments, a failing tool); the summarizer writes the answer from the observations.

Each role's prompt is :func:`~toolpath.agents.alpha_umi.format.role_messages` (the same text the
SFT export uses), plus at most a one-line note for small models: after a real tool result the
planner is reminded it may conclude (without it the 0.5B model called the same tool again), after
an empty reply it is asked again, and at the step cap the summarizer is told the steps ran out.

The history is the GLPFT conversation of :mod:`toolpath.agents.alpha_umi.format` (state key
``conversation``), so a run's state feeds the static evaluation and the SFT export unchanged.

Result state: ``answer``, ``status`` and a ``trace`` with one entry per node run (role nodes
name their model). Status values:

``answered``    the summarizer answered after ``Next: conclusion``;
``gave_up``     the planner said ``Next: give up``; the answer is
                ``"Could not complete the task: <the planner's reason>"``;
``step_limit``  the planner still wanted a tool after ``max_steps`` planner turns; the
                summarizer answers from what was observed and is told the steps ran out,
                so the answer may say what is missing (the status says it was cut short);
``failed``      the planner kept replying with nothing, or the summarizer did (answer None).
"""

from __future__ import annotations

import difflib
import json
import operator
import re
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypedDict

from langgraph.graph import END, START, StateGraph

from toolpath.agents.alpha_umi.format import (
    Next,
    Turn,
    format_action,
    format_plan,
    parse_action,
    parse_next,
    render_demos,
    role_messages,
    turn,
)
from toolpath.agents.base import AgentGraph, as_model, finish, generate, model_record
from toolpath.errors import ConfigError, ToolError
from toolpath.llm.base import ChatModel, Message, user
from toolpath.agents.toolcall import reply_schema
from toolpath.tools.base import Tool, as_tools

if TYPE_CHECKING:
    from toolpath.retrieval.api_retriever import Retriever
    from toolpath.retrieval.demos import Demo, DemoSelector

Status = Literal["running", "answered", "gave_up", "step_limit", "failed"]

GAVE_UP = "Could not complete the task: {reason}"
OBSERVED = (
    "The last observation is what {tool} returned. If it answers the task, end with "
    "'Next: conclusion'."
)
EMPTY_RETRY = (
    "Your last reply was empty. Write one or two sentences about what to do next, then end "
    "with a line 'Next: caller', 'Next: conclusion' or 'Next: give up'."
)
OUT_OF_STEPS = (
    "The step limit was reached before the task was finished. Answer from the observations "
    "above; if they do not answer the task, say what is still missing."
)
CALLER_JSON = (
    'Reply with one JSON object: {"tool": "<tool name>", "arguments": {...}}. '
    "It is recorded as the Action and Action Input."
)
# Each role stops where it would start writing another role's turn (4 stops: OpenAI's limit).
PLANNER_STOP = ["\nobservation:", "\ncaller:", "\nAction:", "\nuser:"]
CALLER_STOP = ["\nobservation:", "\nObservation:", "\nassistant:", "\nuser:"]
SUMMARIZER_STOP = ["\nuser:", "\nassistant:", "\ncaller:", "\nobservation:"]
_ROLE_LINE = re.compile(
    r"^\s*(user|assistant|planner|caller|observation|conclusion|summarizer)\s*:", re.I | re.M
)


class PendingCall(TypedDict):
    """The caller's parsed action, for the tool node."""

    name: str | None
    arguments: dict[str, Any] | None
    problem: str | None


class AlphaUMiState(TypedDict, total=False):
    conversation: Annotated[list[Turn], operator.add]
    question: str
    tools: list[str]
    """Names of the tools the roles see in this run (retrieved, or the whole catalog)."""
    demos: str
    """The rendered demonstrations the planner and caller see."""
    next: Next | None
    """The planner's last tag (None after an empty reply)."""
    call: PendingCall | None
    observed: str | None
    """The tool whose result is the last turn (None after an error or a planner turn)."""
    steps: int
    """Planner turns in this run."""
    empty: int
    """Empty planner replies in a row."""
    answer: str | None
    status: Status
    run_start: int
    trace: Annotated[list[dict[str, Any]], operator.add]


def alpha_umi_agent(
    tools: Sequence[Tool | Any] = (),
    model: ChatModel | str | None = None,
    *,
    planner: ChatModel | str | None = None,
    caller: ChatModel | str | None = None,
    summarizer: ChatModel | str | None = None,
    retriever: Retriever | None = None,
    demos: DemoSelector | Sequence[Demo] | None = None,
    k_tools: int = 6,
    k_demos: int = 2,
    max_steps: int = 8,
    max_empty: int = 2,
    planner_tokens: int = 192,
    caller_tokens: int = 128,
    summarizer_tokens: int = 256,
    caller_json: bool = False,
    checkpointer: Any = None,
) -> AgentGraph:
    """Build the α-UMi multi-LLM tool agent as a compiled LangGraph graph.

    ``planner``, ``caller`` and ``summarizer`` are ChatModels or specs (``"local:..."``);
    a role not given runs on ``model`` (``None``: the default local model). Specs that are
    equal load one model. ``tools`` is the catalog (Tools, typed functions or a
    :class:`~toolpath.tools.catalog.formats.Catalog`); with a ``retriever``
    (:class:`~toolpath.retrieval.api_retriever.APIRetriever` or ``BM25Retriever``) only its
    top ``k_tools`` for the task reach the prompts, and its catalog is callable too.

    ``demos``: a :class:`~toolpath.retrieval.demos.DemoSelector` (it picks its own ``k``), or a
    list of ``{"task", "calls"}`` demos: with an ``APIRetriever`` they go through a selector of
    ``k_demos``; otherwise the first ``k_demos`` that call a shown tool, then the rest, in order.

    ``max_steps`` caps planner turns; ``max_empty`` bounds retries of an empty planner reply.
    Each role has its own token budget and runs at temperature 0. ``caller_json`` constrains
    the caller's reply to ``{"tool", "arguments"}`` JSON (for ``tool_mode="json"`` models such
    as llama.cpp); the caller turn is still recorded as ``Action:`` / ``Action Input:`` text.

    Invoke with a question string or ``{"conversation": [{"from": "user", "value": ...}]}``.
    """
    if not isinstance(max_steps, int) or max_steps < 1:
        raise ConfigError(f"max_steps must be a positive integer, got {max_steps!r}")
    if not isinstance(k_tools, int) or k_tools < 1:
        raise ConfigError(f"k_tools must be a positive integer, got {k_tools!r}")
    roles, owned = _role_models(model, planner=planner, caller=caller, summarizer=summarizer)
    plan_llm, call_llm, sum_llm = roles["planner"], roles["caller"], roles["summarizer"]
    catalog = _catalog(tools)
    by_name = {t.name: t for t in catalog}
    if retriever is not None:  # the retriever's catalog is callable too
        for t in retriever.tools:
            by_name.setdefault(t.name, t)
    choose_demos = _demo_chooser(demos, retriever, k_demos)

    def shown(state: AlphaUMiState) -> list[Tool]:
        return [by_name[n] for n in state.get("tools", [])]

    def ask(
        llm: ChatModel, node: str, messages: list[Message], max_tokens: int, **kwargs: Any
    ) -> tuple[str, dict[str, Any]]:
        """One role call (tokens streamed under the role's node); its text and trace entry."""
        c = generate(llm, messages, node=node, max_tokens=max_tokens, temperature=0, **kwargs)
        return c.content or "", {**model_record(node, c), "model": llm.name}

    def retrieve(state: AlphaUMiState) -> dict[str, Any]:
        """Reset the run's bookkeeping, pick the tools and demos the roles see for the task."""
        conversation = state.get("conversation", [])
        if not conversation or conversation[-1].get("from") != "user":
            raise ConfigError(
                "the input needs a task: invoke with a question string or "
                '{"conversation": [{"from": "user", "value": "..."}]}'
            )
        task = conversation[-1]["value"]
        start = time.perf_counter()
        if retriever is not None:
            picked = [t for t, _ in retriever.retrieve(task, k_tools)]
        else:
            picked = list(catalog)
        chosen = choose_demos(task, picked)
        record = {
            "node": "retrieve",
            "tools": [t.name for t in picked],
            "demos": len(chosen),
            "latency_s": time.perf_counter() - start,
        }
        return {
            "question": task,
            "tools": [t.name for t in picked],
            "demos": render_demos([dict(d) for d in chosen]),
            "next": None,
            "call": None,
            "observed": None,
            "steps": 0,
            "empty": 0,
            "answer": None,
            "status": "running",
            "run_start": len(conversation) - 1,
            "trace": [record],
        }

    def plan(state: AlphaUMiState) -> dict[str, Any]:
        """The planner's thought and its Next tag; an empty reply is retried."""
        messages = role_messages("planner", shown(state), state["conversation"], state["demos"])
        if state.get("observed"):  # small models otherwise call the same tool again
            messages.append(user(OBSERVED.format(tool=state["observed"])))
        empty = state.get("empty", 0)
        if empty:
            messages.append(user(EMPTY_RETRY))
        raw, record = ask(plan_llm, "planner", messages, planner_tokens, stop=PLANNER_STOP)
        text = _own_turn(raw)
        if not text:
            empty += 1
            record["empty"] = True
            status: Status = "failed" if empty > max_empty else "running"
            return {"empty": empty, "next": None, "status": status, "trace": [record]}
        thought, tag = parse_next(text)
        steps = state.get("steps", 0) + 1
        # parse_next returns the text unchanged when it found no tag (then the caller is next)
        record.update(next=tag, tagged=thought != text.strip())
        update: dict[str, Any] = {
            "conversation": [turn("assistant", format_plan(thought, tag))],
            "next": tag,
            "observed": None,
            "steps": steps,
            "empty": 0,
            "trace": [record],
        }
        if tag == "give up":
            reason = thought or "the planner gave up without saying why"
            update.update(answer=GAVE_UP.format(reason=reason), status="gave_up")
        elif tag == "caller" and steps >= max_steps:
            update["status"] = "step_limit"
        return update

    def call(state: AlphaUMiState) -> dict[str, Any]:
        """The caller's ``Action:`` / ``Action Input:`` for the planner's last thought."""
        tools_now = shown(state)
        messages = role_messages("caller", tools_now, state["conversation"], state["demos"])
        constrained = caller_json and call_llm.tool_mode == "json" and bool(tools_now)
        if constrained:
            messages.append(user(CALLER_JSON))
            raw, record = ask(
                call_llm,
                "caller",
                messages,
                caller_tokens,
                response_format=reply_schema(tools_now, allow_final=False),
            )
            name, args, problem = _read_json_call(raw)
        else:
            raw, record = ask(call_llm, "caller", messages, caller_tokens, stop=CALLER_STOP)
            name, args, problem = parse_action(_own_turn(raw))
        value = format_action(name, args) if name and args is not None else _own_turn(raw)
        record["tool"] = name
        if problem:
            record["error"] = problem
        pending: PendingCall = {"name": name, "arguments": args, "problem": problem}
        return {"conversation": [turn("caller", value)], "call": pending, "trace": [record]}

    def run_tool(state: AlphaUMiState) -> dict[str, Any]:
        """Run the call and record what came back; every failure is an observation."""
        pending = state.get("call") or {"name": None, "arguments": None, "problem": "no call"}
        name, args = pending["name"], pending["arguments"]
        start = time.perf_counter()
        ok = False
        if pending["problem"] is not None or name is None or args is None:
            text = f"Error: the call could not be read: {pending['problem']}."
        elif name not in by_name:
            text = _unknown_tool(name, state.get("tools", []))
        else:
            try:
                text, ok = by_name[name].run(args), True
            except ToolError as exc:
                text = f"Error: {exc}"
            if _repeated(state, name, args):
                text += "\n(This exact call was made before; its result is above.)"
        record = {"node": "tool", "tool": name, "ok": ok, "latency_s": time.perf_counter() - start}
        return {
            "conversation": [turn("observation", text)],
            "call": None,
            "observed": name if ok else None,
            "trace": [record],
        }

    def summarize(state: AlphaUMiState) -> dict[str, Any]:
        """The final answer from the observations."""
        messages = role_messages("summarizer", shown(state), state["conversation"])
        cut_short = state.get("status") == "step_limit"
        if cut_short:
            messages.append(user(OUT_OF_STEPS))
        raw, record = ask(sum_llm, "summarizer", messages, summarizer_tokens, stop=SUMMARIZER_STOP)
        text = _own_turn(raw)
        if not text:
            record["empty"] = True
            return {"answer": None, "status": "failed", "trace": [record]}
        status: Status = "step_limit" if cut_short else "answered"
        return {
            "conversation": [turn("conclusion", text)],
            "answer": text,
            "status": status,
            "trace": [record],
        }

    def after_planner(state: AlphaUMiState) -> str:
        status = state.get("status")
        if status in ("gave_up", "failed"):
            return END
        if status == "step_limit":
            return "summarizer"
        tag = state.get("next")
        if tag is None:
            return "planner"
        return "caller" if tag == "caller" else "summarizer"

    g = StateGraph(AlphaUMiState)
    g.add_node("retrieve", retrieve)
    g.add_node("planner", plan)
    g.add_node("caller", call)
    g.add_node("tool", run_tool)
    g.add_node("summarizer", summarize)
    g.add_edge(START, "retrieve")
    g.add_edge("retrieve", "planner")
    g.add_conditional_edges("planner", after_planner, ["caller", "summarizer", "planner", END])
    g.add_edge("caller", "tool")
    g.add_edge("tool", "planner")
    g.add_edge("summarizer", END)

    def close() -> None:
        for llm in owned:
            llm.close()

    compiled = g.compile(checkpointer=checkpointer)
    return finish(compiled, lambda q: {"conversation": [turn("user", q)]}, on_close=close)


def _read_json_call(text: str) -> tuple[str | None, dict[str, Any] | None, str | None]:
    """A constrained caller reply ``{"tool", "arguments"}`` read like :func:`parse_action`."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, None, f"the reply is not valid JSON ({exc.msg})"
    if not isinstance(value, dict) or not isinstance(value.get("tool"), str):
        return None, None, 'the reply is not {"tool": ..., "arguments": {...}}'
    args = value.get("arguments", {})
    if not isinstance(args, dict):
        return value["tool"], None, "Action Input must be a JSON object"
    return value["tool"], args, None


def _own_turn(text: str) -> str:
    """A role's reply without a leading ``role:`` label, cut where it starts writing another
    turn (small models continue the transcript)."""
    text = _ROLE_LINE.sub("", text.strip(), count=1) if _ROLE_LINE.match(text) else text
    nxt = _ROLE_LINE.search(text)
    return (text[: nxt.start()] if nxt else text).strip()


def _unknown_tool(name: str, shown: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, shown, n=3, cutoff=0.4)
    if close:
        return f"Error: there is no tool named '{name}'. Did you mean: {', '.join(close)}?"
    listed = ", ".join(shown) or "(none)"
    return f"Error: there is no tool named '{name}'. The tools are: {listed}."


def _repeated(state: AlphaUMiState, name: str, args: dict[str, Any]) -> bool:
    """Whether this run's caller made exactly this call before (the last caller turn is it)."""
    current = format_action(name, args)
    turns = state["conversation"][state.get("run_start", 0) : -1]
    return any(t["from"] == "caller" and t["value"] == current for t in turns)


def _catalog(tools: Sequence[Tool | Any]) -> list[Tool]:
    """The callable tools (a Catalog's, or a list's; functions are wrapped by ``as_tools``).
    A list of uniquely named Tools is taken as it is (``as_tools`` is quadratic in its size)."""
    items = list(getattr(tools, "tools", tools))
    if all(isinstance(t, Tool) for t in items) and len({t.name for t in items}) == len(items):
        return items
    return as_tools(items)


def _role_models(
    model: ChatModel | str | None, **given: ChatModel | str | None
) -> tuple[dict[str, ChatModel], list[ChatModel]]:
    """One ChatModel per role (the default ``model`` where a role is not given); equal specs
    load once. Returns the roles and the models built here (closed with the agent)."""
    loaded: dict[str | None, ChatModel] = {}
    owned: list[ChatModel] = []
    roles: dict[str, ChatModel] = {}
    for role, choice in given.items():
        spec = model if choice is None else choice
        if not (spec is None or isinstance(spec, str)):
            roles[role] = spec
            continue
        if spec not in loaded:
            loaded[spec] = as_model(spec)
            owned.append(loaded[spec])
        roles[role] = loaded[spec]
    return roles, owned


def _demo_chooser(
    demos: DemoSelector | Sequence[Demo] | None, retriever: Retriever | None, k: int
) -> Callable[[str, list[Tool]], list[Demo]]:
    """How the demos for a task are picked (see :func:`alpha_umi_agent`)."""
    if demos is None:
        return lambda _task, _tools: []
    from toolpath.retrieval.api_retriever import APIRetriever
    from toolpath.retrieval.demos import DemoSelector, check_demo

    if isinstance(demos, DemoSelector):
        return demos.select
    listed = list(demos)
    if isinstance(retriever, APIRetriever):
        return DemoSelector(listed, retriever, k=k).select
    if not isinstance(k, int) or k < 1:
        raise ConfigError(f"k_demos must be a positive integer, got {k!r}")
    listed = [check_demo(d, i) for i, d in enumerate(listed)]

    def first_using_shown(_task: str, shown: list[Tool]) -> list[Demo]:
        names = {t.name for t in shown}
        ranked = sorted(
            range(len(listed)),
            key=lambda i: (not any(c["name"] in names for c in listed[i]["calls"]), i),
        )
        return [listed[i] for i in ranked[:k]]

    return first_using_shown

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

The nodes are the methods of :class:`AlphaUMiSteps`; :func:`alpha_umi_agent` wires them.

Result state: ``answer``, ``status`` and a ``trace`` with one entry per node run (role nodes
name their model). Status values (:data:`~toolpath.agents.base.Status`):

``done``        the summarizer answered after ``Next: conclusion``;
``gave_up``     the planner said ``Next: give up``; the answer is
                ``"Could not complete the task: <the planner's reason>"``;
``step_limit``  the planner still wanted a tool after ``max_steps`` planner turns; the
                summarizer answers from what was observed and is told the steps ran out,
                so the answer may say what is missing (the status says it was cut short);
``failed``      the planner kept replying with nothing, or the summarizer did (answer None).
"""

from __future__ import annotations

import difflib
import operator
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Annotated, Any, TypedDict

from langgraph.graph import END, START, StateGraph

from toolpath.agents.alpha_umi.constrained import as_text, constrain
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
from toolpath.agents.approval import Approve, check_approve, pausable
from toolpath.agents.base import (
    AgentGraph,
    Status,
    as_model,
    execute_calls,
    finish,
    generate,
    model_first,
    model_record,
    tool_record,
)
from toolpath.agents.budget import Budget
from toolpath.errors import ConfigError
from toolpath.llm.base import ChatModel, Message, user
from toolpath.tools.base import Tool, as_tools

if TYPE_CHECKING:
    from toolpath.retrieval.api_retriever import Retriever
    from toolpath.retrieval.demos import Demo, DemoSelector

GAVE_UP = "Could not complete the task: {reason}"
OBSERVED = (
    "The last observation is what {tool} returned. Check the observations against every part "
    "of the task: each item it names, and each lookup or conversion one result leads to. If "
    "they answer all of it, end with 'Next: conclusion'; if a part is still unknown, end with "
    "'Next: caller' and say which tool gets it."
)
FIRST_TURN = (
    "No tool has been called yet, so nothing is known beyond the task itself. The facts and "
    "numbers the task asks for must come from the tools above, not from memory, and so must "
    "calculations when a tool can do them. End with 'Next: caller' unless no listed tool can "
    "help with the task."
)
EMPTY_RETRY = (
    "Your last reply was empty. Write one or two sentences about what to do next, then end "
    "with a line 'Next: caller', 'Next: conclusion' or 'Next: give up'."
)
OUT_OF_STEPS = (
    "The step limit was reached before the task was finished. Answer from the observations "
    "above; if they do not answer the task, say what is still missing."
)
REPEATED = "\n(This exact call was made before; its result is above.)"
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
    """:class:`~toolpath.agents.base.TraceRecord` entries, some with a node's own keys
    (``tools``/``demos`` of retrieve, ``next``/``tagged``/``empty`` of the planner)."""


def alpha_umi_agent(
    model: ChatModel | str | None = None,
    tools: Sequence[Tool | Any] = (),
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
    planner_json: bool = False,
    approve: Approve = "never",
    budget: Budget | None = None,
    checkpointer: Any = None,
) -> AgentGraph:
    """Build the α-UMi multi-LLM tool agent. Roles not given run on ``model`` (equal specs
    load one model); with a ``retriever``, its top ``k_tools`` of ``tools`` reach the prompts;
    ``demos`` is a DemoSelector or ``{"task", "calls"}`` dicts; ``max_steps`` caps planner
    turns, ``max_empty`` retries of an empty planner reply; ``caller_json``/``planner_json``
    constrain JSON-mode models (:mod:`~toolpath.agents.alpha_umi.constrained`); ``approve``
    and ``budget`` as for every agent. Invoke with a question or
    ``{"conversation": [{"from": "user", "value": ...}]}``."""
    model, tools = model_first("alpha_umi_agent", model, tools)
    positive(max_steps=max_steps, k_tools=k_tools)
    roles, owned = role_models(model, planner=planner, caller=caller, summarizer=summarizer)
    s = AlphaUMiSteps(
        roles,
        tool_list(tools),
        retriever,
        demo_chooser(demos, retriever, k_demos),
        k_tools=k_tools,
        max_steps=max_steps,
        max_empty=max_empty,
        tokens=dict(planner=planner_tokens, caller=caller_tokens, summarizer=summarizer_tokens),
        caller_json=caller_json,
        planner_json=planner_json,
        approve=check_approve(approve),
    )
    g = StateGraph(AlphaUMiState)
    g.add_node("retrieve", s.retrieve)
    g.add_node("planner", s.plan)
    g.add_node("caller", s.call)
    g.add_node("tool", s.run_tool)
    g.add_node("summarizer", s.summarize)
    g.add_edge(START, "retrieve")
    g.add_edge("retrieve", "planner")
    g.add_conditional_edges("planner", after_planner, ["caller", "summarizer", "planner", END])
    g.add_edge("caller", "tool")
    g.add_edge("tool", "planner")
    g.add_edge("summarizer", END)
    compiled = g.compile(checkpointer=pausable(approve, checkpointer), name="alpha_umi")
    return finish(compiled, task_input, partial(close_all, owned), budget)


def task_input(question: str) -> dict[str, Any]:
    """The input state for a question string."""
    return {"conversation": [turn("user", question)]}


def no_demos(_task: str, _shown: list[Tool]) -> list[Demo]:
    """No demonstrations (the default demo chooser)."""
    return []


@dataclass
class AlphaUMiSteps:
    """The α-UMi nodes, with the role models, the catalog and the options; each takes the state
    and returns its update, so a test can call one alone."""

    roles: dict[str, ChatModel]
    """The ``planner``, ``caller`` and ``summarizer`` models."""
    catalog: list[Tool]
    retriever: Retriever | None = None
    choose_demos: Callable[[str, list[Tool]], list[Demo]] = no_demos
    k_tools: int = 6
    max_steps: int = 8
    max_empty: int = 2
    tokens: dict[str, int] = field(
        default_factory=lambda: {"planner": 192, "caller": 128, "summarizer": 256}
    )
    """Each role's token budget."""
    caller_json: bool = False
    planner_json: bool = False
    approve: Approve = None
    by_name: dict[str, Tool] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.by_name = {t.name: t for t in self.catalog}
        if self.retriever is not None:  # the retriever's catalog is callable too
            for t in self.retriever.tools:
                self.by_name.setdefault(t.name, t)
        for t in list(self.by_name.values()):  # the name the roles saw maps back
            self.by_name.setdefault(t.wire_name, t)

    def shown(self, state: AlphaUMiState) -> list[Tool]:
        """The tools the roles see in this run."""
        return [self.by_name[n] for n in state.get("tools", [])]

    def ask(self, role: str, messages: list[Message], **kwargs: Any) -> tuple[str, dict[str, Any]]:
        """One role call (tokens streamed under the role's node); its text and trace record."""
        llm = self.roles[role]
        c = generate(
            llm, messages, node=role, max_tokens=self.tokens[role], temperature=0, **kwargs
        )
        return c.content or "", dict(model_record(role, c, llm.name))

    def retrieve(self, state: AlphaUMiState) -> dict[str, Any]:
        """Reset the run's bookkeeping, pick the tools and demos the roles see for the task."""
        conversation = state.get("conversation", [])
        if not conversation or conversation[-1].get("from") != "user":
            raise ConfigError(
                "the input needs a task: invoke with a question string or "
                '{"conversation": [{"from": "user", "value": "..."}]}'
            )
        task = conversation[-1]["value"]
        start = time.perf_counter()
        if self.retriever is not None:
            picked = [t for t, _ in self.retriever.retrieve(task, self.k_tools)]
        else:
            picked = list(self.catalog)
        chosen = self.choose_demos(task, picked)
        record = {
            "node": "retrieve",
            "seconds": time.perf_counter() - start,
            "tools": [t.name for t in picked],
            "demos": len(chosen),
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

    def plan(self, state: AlphaUMiState) -> dict[str, Any]:
        """The planner's thought and its Next tag; an empty reply is retried."""
        messages = role_messages(
            "planner", self.shown(state), state["conversation"], state["demos"]
        )
        if state.get("observed"):  # small models otherwise call the same tool again
            messages.append(user(OBSERVED.format(tool=state["observed"])))
        elif not any(t["from"] == "caller" for t in state["conversation"]):
            # without it the 1.5B answers from memory at once (0 tool calls on 8 of 8 tasks)
            messages.append(user(FIRST_TURN))
        empty = state.get("empty", 0)
        if empty:
            messages.append(user(EMPTY_RETRY))
        if self.planner_json and self.roles["planner"].tool_mode == "json":
            schema = constrain("planner", messages, self.shown(state))
            raw, record = self.ask("planner", messages, response_format=schema)
            raw = as_text("planner", raw, ())
        else:
            raw, record = self.ask("planner", messages, stop=PLANNER_STOP)
        text = own_turn(raw)
        if not text:
            empty += 1
            record["empty"] = True
            status: Status = "failed" if empty > self.max_empty else "running"
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
        elif tag == "caller" and steps >= self.max_steps:
            update["status"] = "step_limit"
        return update

    def call(self, state: AlphaUMiState) -> dict[str, Any]:
        """The caller's ``Action:`` / ``Action Input:`` for the planner's last thought."""
        tools_now = self.shown(state)
        messages = role_messages("caller", tools_now, state["conversation"], state["demos"])
        if self.caller_json and self.roles["caller"].tool_mode == "json" and tools_now:
            schema = constrain("caller", messages, tools_now)
            raw, record = self.ask("caller", messages, response_format=schema)
            raw = as_text("caller", raw, tools_now)
        else:
            raw, record = self.ask("caller", messages, stop=CALLER_STOP)
        name, args, problem = parse_action(own_turn(raw))
        value = format_action(name, args) if name and args is not None else own_turn(raw)
        record["tool"] = name
        if problem:
            record["error"] = problem
        pending: PendingCall = {"name": name, "arguments": args, "problem": problem}
        return {"conversation": [turn("caller", value)], "call": pending, "trace": [record]}

    def run_tool(self, state: AlphaUMiState) -> dict[str, Any]:
        """Run the call and record what came back; every failure is an observation."""
        pending = state.get("call") or {"name": None, "arguments": None, "problem": "no call"}
        name, args = pending["name"], pending["arguments"]
        if pending["problem"] is not None or name is None or args is None:
            text = f"Error: the call could not be read: {pending['problem']}."
            record = tool_record("tool", name, 0.0, False, text)
        elif name not in self.by_name:
            text = unknown_tool(name, state.get("tools", []))
            record = tool_record("tool", name, 0.0, False, text)
        else:
            name = self.by_name[name].name  # a name shown sanitized maps back to the tool's own
            raw = {"id": "", "function": {"name": name, "arguments": args}}
            reason = next(
                (t["value"] for t in reversed(state["conversation"]) if t["from"] == "assistant"),
                "",
            )
            outcome = execute_calls([raw], self.by_name, approve=self.approve, reason=reason)[0]
            text = outcome.result if outcome.ok else f"Error: {outcome.error}"
            if repeated(state, name, args):
                text += REPEATED
            record = outcome.record("tool")
        return {
            "conversation": [turn("observation", text)],
            "call": None,
            "observed": name if record["ok"] else None,
            "trace": [record],
        }

    def summarize(self, state: AlphaUMiState) -> dict[str, Any]:
        """The final answer from the observations."""
        messages = role_messages("summarizer", self.shown(state), state["conversation"])
        cut_short = state.get("status") == "step_limit"
        if cut_short:
            messages.append(user(OUT_OF_STEPS))
        raw, record = self.ask("summarizer", messages, stop=SUMMARIZER_STOP)
        text = own_turn(raw)
        if not text:
            record["empty"] = True
            return {"answer": None, "status": "failed", "trace": [record]}
        status: Status = "step_limit" if cut_short else "done"
        return {
            "conversation": [turn("conclusion", text)],
            "answer": text,
            "status": status,
            "trace": [record],
        }


def after_planner(state: AlphaUMiState) -> str:
    """Where a planner turn leads (see the module docstring)."""
    status = state.get("status")
    if status in ("gave_up", "failed"):
        return END
    if status == "step_limit":
        return "summarizer"
    tag = state.get("next")
    if tag is None:
        return "planner"
    return "caller" if tag == "caller" else "summarizer"


def positive(**values: Any) -> None:
    """Raise :class:`ConfigError` unless every value is a positive integer."""
    for name, value in values.items():
        if not isinstance(value, int) or value < 1:
            raise ConfigError(f"{name} must be a positive integer, got {value!r}")


def close_all(models: Sequence[ChatModel]) -> None:
    for llm in models:
        llm.close()


def own_turn(text: str) -> str:
    """A role's reply without a leading ``role:`` label, cut where it starts writing another
    turn (small models continue the transcript)."""
    text = _ROLE_LINE.sub("", text.strip(), count=1) if _ROLE_LINE.match(text) else text
    nxt = _ROLE_LINE.search(text)
    return (text[: nxt.start()] if nxt else text).strip()


def unknown_tool(name: str, shown: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, shown, n=3, cutoff=0.4)
    if close:
        return f"Error: there is no tool named '{name}'. Did you mean: {', '.join(close)}?"
    listed = ", ".join(shown) or "(none)"
    return f"Error: there is no tool named '{name}'. The tools are: {listed}."


def repeated(state: AlphaUMiState, name: str, args: dict[str, Any]) -> bool:
    """Whether this run's caller made exactly this call before (the last caller turn is it)."""
    current = format_action(name, args)
    turns = state["conversation"][state.get("run_start", 0) : -1]
    return any(t["from"] == "caller" and t["value"] == current for t in turns)


def tool_list(tools: Sequence[Tool | Any]) -> list[Tool]:
    """The callable tools (a Catalog's, or a list's; functions are wrapped by ``as_tools``).
    A list of uniquely named Tools is taken as it is (``as_tools`` is quadratic in its size)."""
    items = list(getattr(tools, "tools", tools))
    if all(isinstance(t, Tool) for t in items) and len({t.name for t in items}) == len(items):
        return items
    return as_tools(items)


def role_models(
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


def demo_chooser(
    demos: DemoSelector | Sequence[Demo] | None, retriever: Retriever | None, k: int
) -> Callable[[str, list[Tool]], list[Demo]]:
    """How the demos for a task are picked: a ``DemoSelector`` picks its own ``k``; a list of
    demos goes through a selector of ``k`` with an ``APIRetriever``, otherwise the first ``k``
    that call a shown tool are taken, then the rest, in order."""
    if demos is None:
        return no_demos
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

"""The single-loop CompWoB web agent (the baseline; :mod:`.plan_act` is the default): split a
compositional instruction into ordered subtasks, then act on a real page one step at a time.

    START -> plan -> observe -> act -> execute -> observe -> ... -> END

``plan`` splits the instruction (", and then", "after", "before") into subtasks in the
order they must be done (:func:`split_instruction`). ``observe`` reads the page; the run
ends there, and only there, when the page itself has ended the episode or the step cap is
reached. ``act`` asks the model for one action through the project's constrained
tool-call machinery (:func:`toolpath.agents.toolcall.decide`), with every ``ref`` argument
limited to the refs on the page. ``execute`` runs it on the page. A ``done`` (or a final
answer) while the page is still running is answered with "not finished" and the agent
goes on: it never ends an episode early.

The page comes from the run's config: ``config={"configurable": {"env": env}}`` with a
:class:`toolpath.tools.web.browser.WebEnv` that was :meth:`~toolpath.tools.web.browser.WebEnv.reset`
to a task. The nodes are async (Playwright's async API), so run the graph with
``ainvoke``/``astream``.
"""

from __future__ import annotations

import asyncio
import json
import operator
import re
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Any, TypedDict

from langchain_core.runnables import RunnableConfig
from langgraph.config import get_stream_writer
from langgraph.graph import END, START, StateGraph

from toolpath.agents.approval import Approve, check_approve, pausable
from toolpath.agents.base import (
    AgentGraph,
    Status,
    TraceRecord,
    aexecute_calls,
    as_model,
    finish,
    model_record,
    tokens_wanted,
)
from toolpath.agents.budget import Budget
from toolpath.agents.toolcall import decide
from toolpath.errors import BrowserError, ConfigError
from toolpath.llm.base import ChatModel, user

PROMPT = (Path(__file__).with_name("prompt.md")).read_text(encoding="utf-8").strip()
"""The web agent's system prompt (``agents/web/prompt.md``)."""

VERBS = [
    "click",
    "select",
    "enter",
    "type",
    "press",
    "close",
    "focus",
    "check",
    "choose",
    "find",
    "drag",
    "use",
    "expand",
    "submit",
    "go",
    "navigate",
    "search",
    "copy",
    "paste",
    "answer",
    "login",
    "log",
    "book",
    "buy",
    "switch",
    "scroll",
    "move",
    "open",
    "set",
    "pick",
    "mark",
    "reply",
    "forward",
    "delete",
    "star",
    "fill",
    "write",
    "highlight",
]
"""Imperative verbs that start a subtask; a bare comma before one of them splits."""

_ING = {v + "ing" if not v.endswith("e") or v.endswith("ee") else v[:-1] + "ing": v for v in VERBS}
_ING.update({"dragging": "drag", "submitting": "submit", "setting": "set", "logging": "log"})
_VERB = r"(?:" + "|".join(sorted({*VERBS, *_ING}, key=len, reverse=True)) + r")\b"
_AND_THEN = re.compile(
    r",\s*(?:and\s+then|and|then)\s+|,\s+(?=" + _VERB + r"\s+(?!and\b)[^\s,])", re.I
)
_AND_THEN_ONLY = re.compile(r",\s*and\s+then\s+", re.I)
_AFTER = re.compile(r"(?:,\s*|\s+)after\s+(?=" + _VERB + ")", re.I)
_BEFORE = re.compile(r"(?:,\s*|\s+)before\s+(?=" + _VERB + ")", re.I)
_LEADING = re.compile(r"^(after|before)\s+(.+?),\s+(.+)$", re.I | re.S)
_QUOTED = re.compile(r'"[^"]*"')


def split_instruction(instruction: str, *, joins_only: bool = False) -> list[str]:
    """The subtasks of a compositional instruction, in the order they must be done.

    ``"A, and then B"`` and ``"A, B, and then C"`` keep their order; ``"B, after doing A"``
    and ``"B, and C, after doing A"`` (CompWoB's reverse wording) put A first;
    ``"A before doing B"``, ``"After doing A, B"`` and ``"Before doing B, A"`` are read
    the same way. Quoted text is never split, and gerunds become imperatives again
    ("clicking on ..." -> "Click on ..."). ``joins_only`` splits only where a composed page
    joins its tasks (", and then", "after", "before"), not at every comma before a verb: for a
    base task whose own instruction has several steps.
    """
    quotes: list[str] = []

    def hide(m: re.Match[str]) -> str:
        quotes.append(m.group(0))
        return f"\x00{len(quotes) - 1}\x00"

    text = _QUOTED.sub(hide, " ".join(instruction.split())).strip().rstrip(".")
    parts = _order(text, _AND_THEN_ONLY if joins_only else _AND_THEN)
    restore = re.compile("\x00(\\d+)\x00")
    out = []
    for part in parts:
        part = restore.sub(lambda m: quotes[int(m.group(1))], part).strip(" ,.")
        if part:
            out.append(_imperative(part) + ".")
    return out or [instruction.strip()]


def _order(text: str, joins: re.Pattern[str] = _AND_THEN) -> list[str]:
    lead = _LEADING.match(text)
    if lead and re.match(_VERB, lead.group(2), re.I):
        first, second = lead.group(2), lead.group(3)
        if lead.group(1).lower() == "before":
            first, second = second, first
        return _order(first, joins) + _order(second, joins)
    after = _AFTER.split(text)
    if len(after) > 1:  # "C, after B, after A": A first
        return [p for piece in reversed(after) for p in _order(piece, joins)]
    before = _BEFORE.split(text)
    if len(before) > 1:
        return [p for piece in before for p in _order(piece, joins)]
    return [p for p in joins.split(text) if p.strip()]


def _imperative(part: str) -> str:
    word, _, rest = part.partition(" ")
    verb = _ING.get(word.lower())
    if verb is not None:
        rest = re.sub(
            r"\band (\w+ing)\b", lambda m: "and " + _ING.get(m.group(1).lower(), m.group(1)), rest
        )
        word = verb
    return (word[:1].upper() + word[1:] + (" " + rest if rest else "")).strip()


class WebState(TypedDict, total=False):
    instruction: str
    subtasks: list[str]
    messages: Annotated[list[dict[str, Any]], operator.add]
    history: Annotated[list[str], operator.add]
    observation: str
    steps: int
    failures: int
    status: Status
    reward: float
    success: bool
    reason: str | None
    trace: Annotated[list[TraceRecord], operator.add]
    current: int
    """Plan-then-act: the index of the subtask being worked on."""
    mark: int
    """Plan-then-act: where in ``history`` the current subtask's actions start."""
    last_action: str
    last_page: str
    blocked: list[int]
    """Plan-then-act: refs the repeat guard refused on the page ``blocked_page`` (hidden from
    the model while the page stays as it was)."""
    blocked_page: str


STEP = """Task: {instruction}
{subtasks}Actions so far:
{history}
Page:
{page}
Your next action:"""


def page_env(config: RunnableConfig | None) -> Any:
    env = ((config or {}).get("configurable") or {}).get("env")
    if env is None:
        raise ConfigError(
            "the web agent needs a page: ainvoke(..., config={'configurable': {'env': env}}) "
            "with a WebEnv reset to a task"
        )
    return env


def check_options(max_steps: int | None, max_tokens: int, history_lines: int) -> None:
    """The web agents' shared option checks."""
    for name, value in (("max_tokens", max_tokens), ("history_lines", history_lines)):
        if value < 1:
            raise ConfigError(f"web_agent: {name} must be at least 1, not {value}")
    if max_steps is not None and max_steps < 1:
        raise ConfigError(f"web_agent: max_steps must be at least 1 (or None), not {max_steps}")


def web_react_agent(
    model: ChatModel | str | None = None,
    *,
    max_steps: int | None = None,
    max_tokens: int = 128,
    history_lines: int = 12,
    html: bool = False,
    approve: Approve = "never",
    budget: Budget | None = None,
    checkpointer: Any = None,
) -> AgentGraph:
    """Build the single-loop web agent (the baseline of the plan-then-act
    :func:`~toolpath.agents.web.plan_act.web_agent`) as a compiled LangGraph graph.

    ``max_steps`` caps the actions (each model turn counts, a rejected reply too); the
    default is ``max(10, 6 * number of subtasks)``. ``html=True`` adds the raw HTML of
    the task area to each observation. Run it with
    ``await agent.ainvoke(instruction_or_empty, config={"configurable": {"env": env}})``;
    the result state has ``status`` (``done`` or ``step_limit``), ``reward`` (the page's
    raw reward: +1 success, -1 failure, 0 if it never ended), ``success``, ``subtasks``,
    ``history`` and a ``trace`` of timed steps. The page is never part of the state, so a
    ``checkpointer`` saves runs like any other agent's. ``approve``: which actions wait for a
    human (:mod:`toolpath.agents.approval`); resume in the process that holds the page.
    """
    check_options(max_steps, max_tokens, history_lines)
    steps = WebSteps(as_model(model), max_steps, max_tokens, history_lines, html)
    return wire(steps, "web_react", approve, budget, checkpointer)


def wire(
    steps: WebSteps, name: str, approve: Approve, budget: Budget | None, checkpointer: Any
) -> AgentGraph:
    """The web agents' graph, ``plan -> observe -> act -> execute -> observe ...``, on
    ``steps``' nodes."""
    steps.approve = check_approve(approve)
    g = StateGraph(WebState)
    for node in (steps.plan, steps.observe, steps.act, steps.execute):
        g.add_node(node.__name__, node)
    g.add_edge(START, "plan")
    g.add_edge("plan", "observe")
    g.add_conditional_edges("observe", after_observe, ["act", END])
    g.add_conditional_edges("act", after_act, ["execute", "observe"])
    g.add_edge("execute", "observe")
    compiled = g.compile(checkpointer=pausable(approve, checkpointer), name=name)
    return finish(compiled, lambda q: {"instruction": q}, budget=budget)


@dataclass
class WebSteps:
    """The web agent's nodes, with the model and the options they share. Each node is an
    async method ``(state, config) -> update`` that reads the page from ``config`` and can be
    called alone."""

    model: ChatModel
    max_steps: int | None = None
    max_tokens: int = 128
    history_lines: int = 12
    html: bool = False
    approve: Approve = None

    def cap(self, state: WebState) -> int:
        """The action cap of this run."""
        return self.max_steps or max(10, 6 * len(state.get("subtasks") or [1]))

    async def plan(self, state: WebState, config: RunnableConfig) -> dict[str, Any]:
        """Read the instruction (from the page if not given) and split it into subtasks."""
        start = time.perf_counter()
        instruction = (state.get("instruction") or "").strip()
        if not instruction:
            instruction = (await page_env(config).observe()).instruction
        subtasks = split_instruction(instruction)
        return {
            "instruction": instruction,
            "subtasks": subtasks,
            "steps": 0,
            "failures": 0,
            "status": "running",
            "reward": 0.0,
            "success": False,
            "reason": None,
            "trace": [TraceRecord(node="plan", seconds=time.perf_counter() - start)],
        }

    async def observe(self, state: WebState, config: RunnableConfig) -> dict[str, Any]:
        """Read the page; end the run when the page ended the episode or at the step cap."""
        start = time.perf_counter()
        obs = await page_env(config).observe(html=self.html)
        record = TraceRecord(node="observe", seconds=time.perf_counter() - start)
        update: dict[str, Any] = {"observation": obs.text(html=self.html), "trace": [record]}
        if obs.status.done:
            update.update(
                status="done",
                reward=obs.status.raw_reward,
                success=obs.status.success,
                reason=obs.status.reason,
            )
        elif state.get("steps", 0) >= self.cap(state):
            update["status"] = "step_limit"
        return update

    async def act(self, state: WebState, config: RunnableConfig) -> dict[str, Any]:
        """Ask the model for the next action; a final answer instead of a tool call is answered
        with whether the page has ended the episode."""
        env = page_env(config)
        page = state.get("observation", "").split("\n", 1)
        text = STEP.format(
            instruction=state["instruction"],
            subtasks=_numbered(state["subtasks"]),
            history="\n".join(state.get("history", [])[-self.history_lines :]) or "(none yet)",
            page=page[1] if len(page) > 1 else page[0],
        )
        update, final = await self.ask(state, text, env.tools(env.last), PROMPT)
        if final:
            update["history"] = [f"- done: {not_finished(await env.status())}"]
        return update

    async def ask(
        self, state: WebState, text: str, tools: list[Any], instructions: str
    ) -> tuple[dict[str, Any], bool]:
        """One model turn for the next action (``done`` is a tool: the page, not the model, ends
        episodes): the state update, and whether the model answered instead of acting."""
        write = get_stream_writer()
        loop = asyncio.get_running_loop()  # the model runs in a thread; tokens go back here

        def on_delta(delta: str) -> None:
            loop.call_soon_threadsafe(write, {"type": "token", "node": "act", "delta": delta})

        decision = await asyncio.to_thread(
            decide,
            self.model,
            [user(text)],
            tools,
            instructions=instructions,
            max_tokens=self.max_tokens,
            on_delta=on_delta if tokens_wanted() else None,
            allow_final=False,
            max_calls=1,
        )
        assert decision.completion is not None
        record = model_record("act", decision.completion, self.model.name)
        update: dict[str, Any] = {
            "steps": state.get("steps", 0) + 1,
            "messages": [decision.message],
            "trace": [record],
        }
        if decision.error is not None:
            record["error"] = decision.error
            update["failures"] = state.get("failures", 0) + 1
            update["history"] = [f"- (your reply could not be used: {decision.error})"]
        return update, decision.error is None and decision.final is not None

    async def execute(self, state: WebState, config: RunnableConfig) -> dict[str, Any]:
        """Run the chosen action on the page through the shared tool-execution step; ``done``
        only asks the page whether it has ended the episode."""
        env = page_env(config)

        async def done() -> str:
            return not_finished(await env.status())

        tools = {t.name: t for t in env.tools(env.last)}
        tools["done"] = replace(tools["done"], fn=done)
        turn = state["messages"][-1]
        reason = str(turn.get("content") or "")
        [outcome] = await aexecute_calls(
            turn["tool_calls"][:1], tools, approve=self.approve, reason=reason
        )
        args = outcome.arguments or {}
        if not env.alive:
            raise BrowserError(f"the page died during {outcome.name}({_args(args)})")
        result = outcome.result if outcome.ok else f"error: {outcome.error}"
        shown = ", ".join(f"{k}={json.dumps(v)}" for k, v in args.items())
        return {
            "history": [f"- {outcome.name}({shown}): {result}"],
            "trace": [outcome.record("execute")],
        }


def after_observe(state: WebState) -> str:
    """Act while the run is running; otherwise end."""
    return "act" if state.get("status") == "running" else END


def after_act(state: WebState) -> str:
    """Execute a tool call; a reply without one goes back to observing the page."""
    return "execute" if state["messages"][-1].get("tool_calls") else "observe"


def not_finished(status: Any) -> str:
    if status.done:
        return status.describe()
    return (
        "the page has not ended the episode, so the task is not finished; "
        "do the next unfinished subtask"
    )


def _numbered(subtasks: list[str]) -> str:
    if len(subtasks) < 2:
        return ""
    lines = "\n".join(f"{i}. {s}" for i, s in enumerate(subtasks, 1))
    return f"Subtasks, in this order:\n{lines}\n"


def _args(args: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in args.items())

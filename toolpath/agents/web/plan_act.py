"""The plan-then-act web agent (the default): one subtask at a time, with guards.

    START -> plan -> observe -> act -> execute -> observe -> ... -> END

``plan`` orders the subtasks (:func:`~toolpath.agents.web.agent.split_instruction` reads
"after", "before", "then" and "first", so a reversed wording gives the order of execution).
``act`` shows the model only the current subtask's part of the page
(:func:`~toolpath.agents.web.focus.focus`), with the subtasks marked done, NOW and later, and
its actions on this subtask so far. ``execute`` runs the action, unless a guard refuses it
and says why:

- the **submit guard**: the click that finishes a subtask (its Submit, Login, OK...) waits
  until every text the subtask asks to type is in a field and every checkbox it names is
  ticked (:func:`~toolpath.agents.web.focus.unmet`);
- the **order guard**: a click on what finishes a *later* subtask is refused;
- the **repeat guard**: the same action again, on a page it did not change, is refused.

A subtask is over when the click that finishes it ran (or, for a subtask with nothing to
click, its first action did), or when the model calls ``done``. The page alone ends the
episode, as in the single-loop agent (:func:`~toolpath.agents.web.agent.web_react_agent`),
which stays as the baseline.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from langchain_core.runnables import RunnableConfig

from toolpath.agents.approval import Approve
from toolpath.agents.base import (
    AgentGraph,
    aexecute_calls,
    as_model,
    parse_call,
)
from toolpath.agents.budget import Budget
from toolpath.agents.web.agent import (
    WebState,
    WebSteps,
    check_options,
    not_finished,
    page_env,
    split_instruction,
    wire,
)
from toolpath.agents.web.focus import final_target, focus, matches, submit_like, unmet, view
from toolpath.errors import BrowserError
from toolpath.llm.base import ChatModel

PROMPT = (Path(__file__).with_name("plan_prompt.md")).read_text(encoding="utf-8").strip()

STEP = """Task: {instruction}
Subtasks:
{subtasks}
Your actions on subtask {now}:
{history}
Page elements for subtask {now}:
{page}
Your next action:"""


def web_agent(
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
    """Build the plan-then-act web agent as a compiled LangGraph graph.

    Options, running and the result state are those of
    :func:`~toolpath.agents.web.agent.web_react_agent`; the state also has ``current`` (the
    subtask it stopped on). Run it with
    ``await agent.ainvoke(instruction_or_empty, config={"configurable": {"env": env}})``.
    """
    check_options(max_steps, max_tokens, history_lines)
    steps = PlanActSteps(as_model(model), max_steps, max_tokens, history_lines, html)
    return wire(steps, "web", approve, budget, checkpointer)


@dataclass
class PlanActSteps(WebSteps):
    """The plan-then-act agent's nodes: ``plan`` and ``observe`` as the single-loop agent's,
    ``act`` and ``execute`` on the current subtask."""

    async def plan(self, state: WebState, config: RunnableConfig) -> dict[str, Any]:
        """The single-loop agent's plan, made to agree with a composed page's parts: when the
        page has one part per task and the split found more subtasks (a base task whose own
        instruction has steps), split only where the page joins its tasks."""
        update = await super().plan(state, config)
        parts = {e.section for e in (await page_env(config).observe()).shown}
        parts.discard(None)
        if len(parts) > 1 and len(update["subtasks"]) != len(parts):
            joined = split_instruction(update["instruction"], joins_only=True)
            if len(joined) == len(parts):
                update["subtasks"] = joined
        update.update(current=0, mark=0)
        return update

    async def act(self, state: WebState, config: RunnableConfig) -> dict[str, Any]:
        """Ask the model for the next action on the current subtask."""
        env = page_env(config)
        subtasks, now = state["subtasks"], state.get("current", 0)
        shown = _unblocked(focus(env.last, subtasks, now), state)
        mark = state.get("mark", 0)
        text = STEP.format(
            instruction=state["instruction"],
            subtasks=_marked(subtasks, now),
            now=now + 1,
            history="\n".join(state.get("history", [])[mark:][-self.history_lines :])
            or "(none yet)",
            page=view(shown),
        )
        tools = [
            replace(t, description="Say that subtask NOW is finished.") if t.name == "done" else t
            for t in env.tools(shown)
        ]
        update, _ = await self.ask(state, text, tools, PROMPT)
        return update

    async def execute(self, state: WebState, config: RunnableConfig) -> dict[str, Any]:
        """Run the action unless a guard refuses it; move on when it finished the subtask."""
        env = page_env(config)
        subtasks, now = state["subtasks"], state.get("current", 0)
        turn = state["messages"][-1]
        call = turn["tool_calls"][0]
        _, name, parsed = parse_call(call)
        args = parsed if isinstance(parsed, dict) else {}
        shown = focus(env.last, subtasks, now)
        page = view(shown)
        said = f"- {name}({', '.join(f'{k}={json.dumps(v)}' for k, v in args.items())})"
        if name == "done":
            if now + 1 < len(subtasks):
                return self._advance(state, f"{said}: subtask {now + 1} finished")
            return {"history": [f"{said}: {not_finished(await env.status())}"]}
        refusal = _guard(name, args, shown, subtasks, now)
        seen: dict[str, Any] = {"last_action": said, "last_page": page}
        if refusal is None and said == state.get("last_action") and page == state.get("last_page"):
            refusal = "you just did exactly this and the page did not change; do something else"
            if isinstance(args.get("ref"), int):  # not offered again while the page stays
                kept = state.get("blocked", []) if state.get("blocked_page") == page else []
                seen.update(blocked=[*kept, args["ref"]], blocked_page=page)
        if refusal is not None:
            return {"history": [f"{said}: refused: {refusal}"], **seen}
        [outcome] = await aexecute_calls(
            [call],
            {t.name: t for t in env.tools(shown)},
            approve=self.approve,
            reason=str(turn.get("content") or ""),
        )
        if not env.alive:
            raise BrowserError(f"the page died during {said[2:]}")
        result = outcome.result if outcome.ok else f"error: {outcome.error}"
        update: dict[str, Any] = {
            "history": [f"{said}: {result}"],
            "trace": [outcome.record("execute")],
        }
        if outcome.ok:  # a rejected or failed action may be tried again
            update.update(last_action=said, last_page=page)
        if outcome.ok and _finishes(name, args, shown, subtasks[now]) and now + 1 < len(subtasks):
            moved = self._advance(state, f"{said}: {result}; subtask {now + 1} finished")
            update.update(moved, trace=update["trace"])
        return update

    def _advance(self, state: WebState, line: str) -> dict[str, Any]:
        now = state.get("current", 0) + 1
        history = [line, f"- now subtask {now + 1}: {state['subtasks'][now]}"]
        return {"current": now, "mark": len(state.get("history", [])) + 1, "history": history}


def _unblocked(shown: Any, state: WebState) -> Any:
    """``shown`` without the refs the repeat guard refused, while the page is as it was then."""
    blocked = set(state.get("blocked", []))
    if not blocked or state.get("blocked_page") != view(shown):
        return shown
    kept = tuple(e for e in shown.elements if e.ref not in blocked)
    return replace(shown, elements=kept, by_ref={e.ref: e for e in kept})


def _guard(
    name: str, args: dict[str, Any], shown: Any, subtasks: list[str], now: int
) -> str | None:
    """Why the submit or order guard refuses this action (``None``: it may run)."""
    element = shown.by_ref.get(args.get("ref")) if name == "click" else None
    if element is None:
        return None
    target = final_target(subtasks[now])
    final = (target is not None and matches(element, target)) or submit_like(element)
    if final and (why := unmet(subtasks[now], shown)) is not None:
        return f'{why} before clicking "{" ".join(element.text.split()) or element.tag}"'
    if target is not None and matches(element, target):
        return None
    for later in range(now + 1, len(subtasks)):
        goal = final_target(subtasks[later])
        if goal is not None and goal != target and matches(element, goal):
            return f"that click finishes subtask {later + 1}; finish subtask {now + 1} first"
    return None


def _finishes(name: str, args: dict[str, Any], shown: Any, subtask: str) -> bool:
    """Whether this action, which ran, finished ``subtask``."""
    target = final_target(subtask)
    if target is None:
        return name in ("click", "type", "select")
    element = shown.by_ref.get(args.get("ref")) if name == "click" else None
    return element is not None and matches(element, target)


def _marked(subtasks: list[str], now: int) -> str:
    marks = ["done" if i < now else "NOW" if i == now else "later" for i in range(len(subtasks))]
    return "\n".join(
        f"{i}. [{m}] {s}" for i, (m, s) in enumerate(zip(marks, subtasks, strict=True), 1)
    )

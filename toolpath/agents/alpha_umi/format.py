"""The α-UMi conversation format (GLPFT), its role prompts and the parsers of each role's reply.

One format serves three things, so they can never drift apart:

- the multi-LLM agent (:mod:`toolpath.agents.alpha_umi.agent`) keeps its history in it;
- the static step-level evaluation (:mod:`toolpath.evals.alpha_umi.static`) reads it;
- ``toolpath export sft`` writes per-role training data from it.

A conversation is a list of turns ``{"from": ROLE, "value": TEXT}``. The roles are:

``user``
    the task.
``assistant``
    the planner: a thought that ends with ``Next: caller``, ``Next: conclusion`` or
    ``Next: give up``.
``caller``
    ``Action: NAME`` and ``Action Input: {json}``.
``observation``
    what the tool returned (or the error it raised).
``conclusion``
    the summarizer's final answer.

The prompts below are toolpath's own wording of the α-UMi roles; the turn layout and the tags
follow the GLPFT data, so models trained on it read them as they expect.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any, Literal, TypedDict

from toolpath.llm.base import Message, system, user
from toolpath.tools.base import Tool
from toolpath.tools.render import render_tools as shared_render

Role = Literal["user", "assistant", "caller", "observation", "conclusion"]
Next = Literal["caller", "conclusion", "give up"]
ROLES: tuple[Role, ...] = ("user", "assistant", "caller", "observation", "conclusion")
NEXT_TAGS: tuple[Next, ...] = ("caller", "conclusion", "give up")


Turn = TypedDict("Turn", {"from": str, "value": str})
"""One turn of a GLPFT conversation: ``{"from": role, "value": text}``."""


def turn(role: Role, value: str) -> Turn:
    return {"from": role, "value": value}


# -- rendering ---------------------------------------------------------------------------------


def render_tools(tools: Sequence[Tool]) -> str:
    """One block per tool with its whole contract, as every toolpath prompt shows tools
    (:func:`toolpath.tools.render.render_tools`)."""
    return shared_render(tools) or "(no tools)"


def render_history(turns: Sequence[Turn]) -> str:
    """The conversation so far, one ``role: text`` block per turn."""
    return "\n".join(f"{t['from']}: {t['value'].strip()}" for t in turns)


_DOC = "You can use these tools:\n{tools}\n\nThe conversation so far:\n{history}\n\n"

# The tags are named inside a sentence, not listed one per line: given a list, the 0.5B model
# copied it verbatim (so its reply ended with "Next: give up").
PLANNER = (
    _DOC + "You are the planner. First say in one sentence whether the observations above "
    "already answer the task, and if not, which tool should be called next and why. Then end "
    "with one line: 'Next: conclusion' if the observations answer the task, 'Next: caller' if a "
    "tool should be called, or 'Next: give up' if the task cannot be completed with these tools."
)
CALLER = (
    _DOC + "You are the caller. The planner's last thought says which tool to call. "
    "Reply with exactly two lines and nothing else:\n"
    "Action: <one tool name from the list>\n"
    'Action Input: <a JSON object of arguments, e.g. {{"city": "Paris"}}>'
)
SUMMARIZER = (
    _DOC + "You are the summarizer. Write the final answer to the user's task from the "
    "observations above. Be brief and state the result itself."
)
BACKBONE = (
    _DOC + "Decide the next step and reply in one of these forms.\n"
    "To call a tool: a short thought, then\nAction: <tool name>\nAction Input: <JSON object>\n"
    "To finish: a short thought, then\nconclusion: <the final answer>\n"
    "If the task cannot be done with these tools: give up."
)
PROMPTS = {"planner": PLANNER, "caller": CALLER, "summarizer": SUMMARIZER, "backbone": BACKBONE}
ROLE_OF_OUTPUT: dict[str, Role] = {
    "planner": "assistant",
    "caller": "caller",
    "summarizer": "conclusion",
}


def role_prompt(role: str, tools: Sequence[Tool], history: Sequence[Turn]) -> str:
    """The single prompt text a role model sees (``planner``, ``caller``, ``summarizer`` or
    ``backbone``); the same text is the ``instruction`` of an exported training example."""
    return PROMPTS[role].format(tools=render_tools(tools), history=render_history(history))


def role_messages(
    role: str, tools: Sequence[Tool], history: Sequence[Turn], demos: str = ""
) -> list[Message]:
    """The chat messages for one role call; ``demos`` (rendered demonstrations) go first."""
    messages: list[Message] = []
    if demos:
        messages.append(system("Examples of solved tasks:\n" + demos))
    messages.append(user(role_prompt(role, tools, history)))
    return messages


def render_demos(demos: Sequence[dict[str, Any]]) -> str:
    """TPTU-v2 demonstrations (``{"task", "calls"}``) as text for the planner and caller."""
    lines = []
    for d in demos:
        lines.append(f"Task: {d['task']}")
        for c in d.get("calls", []):
            lines.append(f"Action: {c['name']}\nAction Input: {json.dumps(c.get('arguments', {}))}")
        lines.append("")
    return "\n".join(lines).strip()


# -- parsing -----------------------------------------------------------------------------------

_NEXT = re.compile(r"next\s*[:：]\s*(caller|conclusion|summarizer|give\s*up)", re.I)
_ACTION = re.compile(r"action\s*:\s*`?([A-Za-z0-9_.\-/]+)`?", re.I)
_INPUT = re.compile(r"action\s+input\s*:\s*", re.I)


def parse_next(text: str) -> tuple[str, Next]:
    """Split a planner reply into its thought and its Next tag.

    The last tag in the text wins; ``summarizer`` is read as ``conclusion`` (older GLPFT data
    uses it). A reply without a tag routes to the caller, as α-UMi does.
    """
    found = list(_NEXT.finditer(text))
    if not found:
        return text.strip(), "caller"
    last = found[-1]
    raw = re.sub(r"\s+", " ", last[1].lower())
    tag: Next = "conclusion" if raw == "summarizer" else raw  # type: ignore[assignment]
    thought = (text[: last.start()] + text[last.end() :]).strip().rstrip(".").strip()
    return thought, tag


def parse_action(text: str) -> tuple[str | None, dict[str, Any] | None, str | None]:
    """Read ``Action: NAME`` / ``Action Input: {json}`` from a caller reply.

    Returns ``(name, arguments, problem)``: ``name`` is None when no action line was found,
    ``arguments`` is None when the input is not a JSON object, and ``problem`` says what was
    wrong in words a model can act on (None when both parts were read).
    """
    m = _ACTION.search(text)
    name = m[1].strip().rstrip(".,") if m else None
    im = _INPUT.search(text)
    if name is None:
        return None, None, "no 'Action: <tool name>' line"
    if im is None:
        return name, {}, None
    raw = text[im.end() :].strip()
    raw = re.sub(r"^```(?:json)?\s*|\s*```\s*$", "", raw)
    if raw in ("", "{}", "None", "none", "null"):
        return name, {}, None
    try:
        value, _ = json.JSONDecoder().raw_decode(raw)
    except json.JSONDecodeError as exc:
        return name, None, f"Action Input is not valid JSON ({exc.msg})"
    if not isinstance(value, dict):
        return name, None, "Action Input must be a JSON object"
    return name, value, None


def format_action(name: str, arguments: dict[str, Any]) -> str:
    """A caller turn's text for a call."""
    return f"Action: {name}\nAction Input: {json.dumps(arguments, ensure_ascii=False)}"


def format_plan(thought: str, tag: Next) -> str:
    """A planner turn's text: the thought and its tag."""
    thought = thought.strip()
    return f"{thought}\nNext: {tag}." if thought else f"Next: {tag}."

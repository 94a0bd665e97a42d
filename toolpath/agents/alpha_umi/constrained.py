"""The α-UMi roles' replies constrained by a JSON schema (for models in JSON mode), and turned
back into the GLPFT text the rest of the agent, the static evaluation and the SFT export read.

- planner: ``{"thought": ..., "next": "caller" | "conclusion" | "give up"}``: a free-text
  thought first, then a routing tag that cannot be anything else;
- caller: the shared tool-call reply (:func:`~toolpath.agents.toolcall.reply_schema`), one call;
- backbone (the single-model baseline): a thought, then one call, a conclusion or giving up.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from toolpath.agents.alpha_umi.format import NEXT_TAGS, format_action, format_plan
from toolpath.agents.toolcall import closed_object, json_schema_format, parse_reply, reply_schema
from toolpath.llm.base import Message, user
from toolpath.tools.base import Tool

PLANNER_JSON = (
    'Reply with one JSON object: {"thought": "<your thought, one sentence>", "next": '
    '"caller" | "conclusion" | "give up"}.'
)
CALLER_JSON = (
    'Reply with one JSON object: {"tool_calls": [{"name": "<tool name>", "arguments": {...}}]}, '
    "one call. It is recorded as the Action and Action Input."
)
BACKBONE_JSON = (
    'Reply with one JSON object: {"thought": "<your thought>", and then either "tool_calls": '
    '[{"name": "<tool name>", "arguments": {...}}] (one call), "conclusion": "<the final '
    'answer>", or "give_up": true}.'
)


def constrain(role: str, messages: list[Message], tools: Sequence[Tool]) -> dict[str, Any]:
    """Append ``role``'s JSON instruction to ``messages``; the ``response_format`` to ask with."""
    thought = {"type": "string"}
    if role == "planner":
        messages.append(user(PLANNER_JSON))
        return json_schema_format(
            "plan", closed_object({"thought": thought, "next": {"enum": list(NEXT_TAGS)}})
        )
    if role == "caller":
        messages.append(user(CALLER_JSON))
        return reply_schema(tools, allow_final=False, max_calls=1)
    if role == "backbone":
        messages.append(user(BACKBONE_JSON))
        calls = reply_schema(tools, allow_final=False, max_calls=1)["json_schema"]["schema"]
        options = [
            closed_object({"thought": thought, "tool_calls": calls["properties"]["tool_calls"]}),
            closed_object({"thought": thought, "conclusion": {"type": "string"}}),
            closed_object({"thought": thought, "give_up": {"const": True}}),
        ]
        return json_schema_format("step", {"anyOf": options})
    raise ValueError(f"the {role} role has no constrained form")


def as_text(role: str, reply: str, tools: Sequence[Tool]) -> str:
    """A constrained reply as the GLPFT text of ``role``'s turn; a reply that is not the JSON
    asked for is returned as it is, for the text parsers to make what they can of it."""
    try:
        obj = json.loads(reply)
    except (json.JSONDecodeError, RecursionError):
        return reply
    if not isinstance(obj, dict):
        return reply
    thought = str(obj.get("thought", "")).strip()
    if role == "planner" and obj.get("next") in NEXT_TAGS:
        return format_plan(thought, obj["next"])
    if "tool_calls" in obj:
        calls = parse_reply(reply)
        if isinstance(calls, list) and calls:
            wire = {t.wire_name: t.name for t in tools}
            action = format_action(wire.get(calls[0].name, calls[0].name), calls[0].arguments)
            return f"{thought}\n{action}".strip()
    if role == "backbone" and "conclusion" in obj:
        return f"{thought}\nconclusion: {obj['conclusion']}".strip()
    if role == "backbone" and obj.get("give_up") is True:
        return f"{thought}\ngive up".strip()
    return reply

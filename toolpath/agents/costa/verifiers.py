"""Model-judged CoSTA* verifiers, with the signature every verifier has:
``verifier(kind, before, after, params)`` (see :mod:`toolpath.agents.costa.domain`).

:class:`LLMVerifier` shows a chat model the subtask, its parameters and the working object
before and after the step as text, and asks for a verdict as constrained JSON. For images,
:class:`toolpath.tools.image.verify.VLMVerifier` shows a vision model both pictures instead.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from toolpath.agents.costa.domain import Verdict, describe_object
from toolpath.llm.base import ChatModel, system, user

PROMPT = (
    "You check one step of a multi-step task. A tool was asked to do the subtask below; "
    "compare the data before and after it. Pass the step only if the result does what the "
    "subtask asks and nothing else went wrong (lost rows, wrong columns, empty output). "
    'Reply with JSON: {"ok": true or false, "why": "one short sentence"}.'
)
SCHEMA = {
    "type": "json_schema",
    "json_schema": {
        "name": "verdict",
        "schema": {
            "type": "object",
            "properties": {"ok": {"type": "boolean"}, "why": {"type": "string"}},
            "required": ["ok", "why"],
        },
    },
}


class LLMVerifier:
    """A chat model as the verifier of every step: score 1 when it passes the step, else 0
    (an unreadable reply fails the step). ``describe`` turns a working object into short text
    (a domain's ``describe``; by default a table's shape and first rows, or the repr)."""

    def __init__(
        self,
        model: ChatModel,
        *,
        describe: Callable[[Any], str] | None = None,
        max_tokens: int = 96,
    ) -> None:
        self.model, self.max_tokens = model, max_tokens
        self.describe = describe or describe_object

    def messages(
        self, kind: str, before: Any, after: Any, params: Mapping[str, Any]
    ) -> list[dict[str, Any]]:
        """The request: the instructions, then the subtask and both states as text."""
        step = (
            f"Subtask: {kind} {json.dumps(dict(params), default=str)}\n\n"
            f"Before:\n{self.describe(before)}\n\nAfter:\n{self.describe(after)}"
        )
        return [system(PROMPT), user(step)]

    def __call__(self, kind: str, before: Any, after: Any, params: Mapping[str, Any]) -> Verdict:
        reply = self.model.complete(
            self.messages(kind, before, after, params),
            max_tokens=self.max_tokens,
            temperature=0.0,
            response_format=SCHEMA,
        )
        try:
            data = json.loads(reply.content)
            ok, why = bool(data["ok"]), str(data.get("why", ""))
        except (ValueError, KeyError, TypeError):
            return Verdict(0.0, False, f"unreadable verdict {reply.content[:80]!r}")
        return Verdict(1.0 if ok else 0.0, ok, "" if ok else why)

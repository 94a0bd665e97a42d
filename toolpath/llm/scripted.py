"""A deterministic chat model that replays given replies and records every request.

The whole test suite shares this one model for control-flow tests, and the overhead
benchmark uses it to time the framework without a real model in the way.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Unpack

from toolpath.errors import BackendError
from toolpath.llm.base import (
    ChatModelBase,
    Completion,
    GenerateOptions,
    Message,
    ToolCall,
    ToolMode,
    Usage,
    check_options,
)

Reply = str | Message | Completion | ToolCall | Callable[[Sequence[Message]], Any]
"""What a script entry may be: reply text, an assistant message, a whole completion, a
native tool call (``tool_mode="native"``), or a function of the request's messages that
returns any of these."""


@dataclass
class Request:
    """One recorded request."""

    messages: list[Message]
    tools: list[dict[str, Any]] | None
    response_format: dict[str, Any] | None
    stop: list[str] | None
    max_tokens: int | None
    temperature: float

    @classmethod
    def of(cls, messages: Sequence[Message], options: GenerateOptions) -> Request:
        """The record of a request: copies of its messages and its options."""
        check_options(options)
        tools, stop = options.get("tools"), options.get("stop")
        return cls(
            messages=[dict(m) for m in messages],
            tools=list(tools) if tools is not None else None,
            response_format=options.get("response_format"),
            stop=list(stop) if stop is not None else None,
            max_tokens=options.get("max_tokens"),
            temperature=options.get("temperature", 0.0),
        )


@dataclass
class ScriptedModel(ChatModelBase):
    """Replays ``replies`` in order; with ``cycle=True`` it starts over at the end.

    Token usage is counted as whitespace-separated words, which is deterministic.
    """

    provider = "scripted"

    replies: list[Reply] = field(default_factory=list)
    name: str = "scripted"
    tool_mode: ToolMode = "json"
    logprobs: bool = False
    """True: the script gives fit checks their replies (Completions with top_logprobs)."""
    cycle: bool = False
    requests: list[Request] = field(default_factory=list)
    _next: int = 0

    def complete(
        self, messages: Sequence[Message], **options: Unpack[GenerateOptions]
    ) -> Completion:
        start = time.perf_counter()
        self.requests.append(Request.of(messages, options))
        if self._next >= len(self.replies):
            if not (self.cycle and self.replies):
                raise BackendError(
                    f"ScriptedModel ran out of replies after {len(self.replies)}; "
                    "give it more replies or set cycle=True"
                )
            self._next = 0
        entry = self.replies[self._next]
        self._next += 1
        if callable(entry) and not isinstance(entry, ToolCall):
            entry = entry(messages)
        completion = _as_completion(entry)
        completion.usage = Usage(
            prompt_tokens=sum(len(str(m.get("content") or "").split()) for m in messages),
            completion_tokens=len(completion.content.split())
            + sum(
                len(json.dumps(tc["function"])) // 4
                for tc in completion.message.get("tool_calls") or []
            ),
        )
        completion.latency_s = time.perf_counter() - start
        return completion

    @property
    def remaining(self) -> int:
        return len(self.replies) - self._next


def _as_completion(entry: Any) -> Completion:
    if isinstance(entry, Completion):
        copy = Completion(dict(entry.message), entry.usage, entry.latency_s, entry.finish_reason)
        copy.top_logprobs = entry.top_logprobs
        return copy
    if isinstance(entry, ToolCall):
        return Completion(
            {"role": "assistant", "content": None, "tool_calls": [entry.to_openai()]},
            finish_reason="tool_calls",
        )
    if isinstance(entry, dict):
        return Completion({"role": "assistant", **entry})
    if isinstance(entry, str):
        return Completion({"role": "assistant", "content": entry})
    raise TypeError(f"unsupported scripted reply: {entry!r}")

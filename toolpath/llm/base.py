"""The one chat-model protocol and the few types every backend shares.

Messages are plain dicts in the OpenAI chat format, exactly
``{"role", "content", "tool_calls"?, "tool_call_id"?}``; there is no second format.
Generation options are keywords after the messages, typed once by :class:`GenerateOptions`.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, Self, TypedDict, Unpack, runtime_checkable

from toolpath.errors import BackendError
from toolpath.llm.traced import instrument

Message = dict[str, Any]
"""One chat message in the OpenAI format."""

ToolSpec = dict[str, Any]
"""One tool in the OpenAI ``tools=`` format: ``{"type": "function", "function": {...}}``."""

ToolMode = Literal["native", "json"]
"""How a backend gets tool calls: the API's own ``tool_calls``, or JSON-schema constrained text."""


def system(content: str) -> Message:
    return {"role": "system", "content": content}


def user(content: str) -> Message:
    return {"role": "user", "content": content}


def assistant(content: str | None, tool_calls: Sequence[ToolCall] = ()) -> Message:
    msg: Message = {"role": "assistant", "content": content}
    if tool_calls:
        msg["tool_calls"] = [tc.to_openai() for tc in tool_calls]
    return msg


def tool_message(tool_call_id: str, content: str) -> Message:
    return {"role": "tool", "tool_call_id": tool_call_id, "content": content}


def new_call_id() -> str:
    return "call_" + uuid.uuid4().hex[:12]


@dataclass(frozen=True)
class ToolCall:
    """A request from the model to call one tool with parsed JSON arguments."""

    name: str
    arguments: dict[str, Any]
    id: str = field(default_factory=lambda: new_call_id())

    def to_openai(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": json.dumps(self.arguments)},
        }

    @classmethod
    def from_openai(cls, raw: dict[str, Any]) -> ToolCall:
        """Parse an OpenAI ``tool_calls`` entry. Bad JSON arguments raise ``ValueError``."""
        fn = raw.get("function") or {}
        args = fn.get("arguments") or "{}"
        parsed = json.loads(args) if isinstance(args, str) else args
        if not isinstance(parsed, dict):
            raise ValueError(f"tool arguments must be a JSON object, got {args!r}")
        return cls(
            name=str(fn.get("name", "")), arguments=parsed, id=raw.get("id") or new_call_id()
        )


@dataclass
class Usage:
    """Token counts. ``cached_tokens`` is the part of the prompt the server had cached."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.cached_tokens + other.cached_tokens,
        )


@dataclass
class Completion:
    """One assistant reply with what it cost."""

    message: Message
    usage: Usage = field(default_factory=Usage)
    latency_s: float = 0.0
    finish_reason: str = "stop"
    top_logprobs: list[dict[str, float]] | None = None
    """With ``top_logprobs=k`` asked and a backend that gives them: per generated token, the
    ``k`` most likely tokens and their log-probabilities."""

    @property
    def content(self) -> str:
        return self.message.get("content") or ""

    @property
    def tool_calls(self) -> list[ToolCall]:
        """Native tool calls. Entries whose arguments are not valid JSON raise ``ValueError``."""
        return [ToolCall.from_openai(tc) for tc in self.message.get("tool_calls") or []]


@dataclass
class StreamEvent:
    """A piece of a streamed reply. The last event carries the whole ``completion``."""

    delta: str = ""
    completion: Completion | None = None


def collect(
    events: Iterable[StreamEvent], on_delta: Callable[[str], None], name: str
) -> Completion:
    """Pass a stream's text deltas to ``on_delta`` and return its final :class:`Completion`
    (``name``, the model's, goes into the error for a stream that ends without one)."""
    final: Completion | None = None
    for event in events:
        final = _passed(event, on_delta, final)
    return _final(final, name)


async def acollect(
    events: AsyncIterable[StreamEvent], on_delta: Callable[[str], None], name: str
) -> Completion:
    """:func:`collect` for an async stream."""
    final: Completion | None = None
    async for event in events:
        final = _passed(event, on_delta, final)
    return _final(final, name)


def _passed(
    event: StreamEvent, on_delta: Callable[[str], None], final: Completion | None
) -> Completion | None:
    """Pass on the event's delta; return the stream's completion so far."""
    if event.delta:
        on_delta(event.delta)
    return final if event.completion is None else event.completion


def _final(final: Completion | None, name: str) -> Completion:
    if final is None:
        raise BackendError(f"{name}: the stream ended without a completion")
    return final


def as_stream(completion: Completion) -> Iterator[StreamEvent]:
    """A finished completion as a stream: its whole text as one delta, then the completion."""
    if completion.content:
        yield StreamEvent(delta=completion.content)
    yield StreamEvent(completion=completion)


class GenerateOptions(TypedDict, total=False):
    """The generation options every backend takes, as keywords after the messages:
    ``model.complete(messages, tools=..., max_tokens=...)``. All are optional."""

    tools: Sequence[ToolSpec] | None
    """Tools the model may call (``tool_mode="native"`` backends send them to the API)."""
    response_format: dict[str, Any] | None
    """An OpenAI ``response_format``, e.g. a JSON schema that constrains the reply."""
    stop: Sequence[str] | None
    """Strings that end the reply."""
    max_tokens: int | None
    """The most tokens to generate (None: the backend's limit)."""
    temperature: float
    """Sampling temperature; 0.0 (greedy) when not given."""
    top_logprobs: int | None
    """Return the ``k`` most likely tokens at each position (:attr:`Completion.top_logprobs`);
    a backend that cannot leaves that None."""


def closed_object(properties: dict[str, Any]) -> dict[str, Any]:
    """A JSON schema of an object with exactly these properties, all required."""
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


def json_schema_format(name: str, schema: dict[str, Any], *, strict: bool = True) -> dict[str, Any]:
    """An OpenAI ``response_format`` that holds a reply to ``schema`` (``strict`` by default)."""
    spec: dict[str, Any] = {"name": name, "schema": schema}
    if strict:
        spec["strict"] = True
    return {"type": "json_schema", "json_schema": spec}


def stop_list(stop: Sequence[str] | str | None) -> list[str]:
    """``stop`` as a list (a lone string is one stop string; None is none)."""
    return [stop] if isinstance(stop, str) else list(stop or [])


def check_options(options: Mapping[str, Any], kind: Any = GenerateOptions) -> None:
    """Refuse a keyword that is not one of ``kind``'s options (a ``TypedDict`` like
    :class:`GenerateOptions`), as a misspelt keyword argument is refused."""
    if unknown := sorted(set(options) - set(kind.__annotations__)):
        raise TypeError(f"unexpected generation option(s): {', '.join(unknown)}")


@runtime_checkable
class ChatModel(Protocol):
    """What every backend implements. Everything backend-specific stays in its module."""

    name: str
    tool_mode: ToolMode

    def complete(
        self, messages: Sequence[Message], **options: Unpack[GenerateOptions]
    ) -> Completion: ...

    async def acomplete(
        self, messages: Sequence[Message], **options: Unpack[GenerateOptions]
    ) -> Completion: ...

    def stream(
        self, messages: Sequence[Message], **options: Unpack[GenerateOptions]
    ) -> Iterator[StreamEvent]: ...

    def close(self) -> None: ...


class ChatModelBase:
    """Default ``acomplete``/``stream``/``astream`` built on ``complete``.

    Backends subclass this and override what they can do better natively.
    """

    name: str = "model"
    provider: str = ""
    """What serves the model, as traces name it (``gen_ai.provider.name``; default: the class)."""
    tool_mode: ToolMode = "json"
    logprobs: bool = False
    """Whether ``top_logprobs=k`` gets :attr:`Completion.top_logprobs` back (what a fit check
    needs before toolpath asks for one)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Each backend's model calls open a span when tracing is on (:mod:`toolpath.tracing`)."""
        super().__init_subclass__(**kwargs)
        instrument(cls)

    def complete(
        self, messages: Sequence[Message], **options: Unpack[GenerateOptions]
    ) -> Completion:
        raise NotImplementedError

    async def acomplete(
        self, messages: Sequence[Message], **options: Unpack[GenerateOptions]
    ) -> Completion:
        return await asyncio.to_thread(self.complete, messages, **options)

    def stream(
        self, messages: Sequence[Message], **options: Unpack[GenerateOptions]
    ) -> Iterator[StreamEvent]:
        yield from as_stream(self.complete(messages, **options))

    async def astream(
        self, messages: Sequence[Message], **options: Unpack[GenerateOptions]
    ) -> AsyncIterator[StreamEvent]:
        for event in as_stream(await self.acomplete(messages, **options)):
            yield event

    def close(self) -> None:
        """Release what the backend holds (servers, connections). Safe to call twice."""

    async def aclose(self) -> None:
        """:meth:`close` from inside an event loop (backends with async connections override it)."""
        self.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"

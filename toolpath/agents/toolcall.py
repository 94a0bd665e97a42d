"""Getting tool calls out of any chat model, small ones included.

Three ways, in order of preference:

1. **native**: the backend returns OpenAI ``tool_calls``;
2. **json**: the prompt lists the tools and a JSON schema constrains the reply to
   ``{"tool": <one of the names>, "arguments": {...that tool's schema...}}`` or
   ``{"final_answer": "..."}``;
3. a last resort for either: a ```json block in plain text.

Whatever comes back is validated against the tool's schema. A reply that cannot be used
becomes a :class:`Decision` with ``error`` set; the agent shows that error to the model
and lets it repair, a bounded number of times. Nothing here raises on bad model output.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypedDict, Unpack

from toolpath.errors import NativeToolsUnsupportedError, ToolError
from toolpath.llm.base import (
    ChatModel,
    Completion,
    Message,
    ToolCall,
    ToolMode,
    acollect,
    assistant,
    collect,
)
from toolpath.tools.base import Tool

log = logging.getLogger(__name__)

OnDelta = Callable[[str], None]

JSON_MODE_PROMPT = """You can use tools. Reply with exactly one JSON object:
{{"tool": "<tool name>", "arguments": {{...}}}} to call a tool, or
{{"final_answer": "<your answer>"}} once you know the answer.

Tools:
{tools}"""

JSON_TOOLS_ONLY_PROMPT = """You can use tools. Reply with exactly one JSON object:
{{"tool": "<tool name>", "arguments": {{...}}}}

Tools:
{tools}"""

NATIVE_PROMPT = "Use the tools when they help. When you know the answer, reply with it directly."

OBSERVATION = (
    "Observation from {name}: {result}\nIf this answers the question, reply with final_answer now."
)
TOOL_ERROR = "Error from {name}: {error}\nFix the call, or reply with final_answer."


@dataclass
class Decision:
    """What one model turn decided."""

    message: Message
    """The assistant message to keep in the history (canonical OpenAI format)."""
    tool_calls: list[ToolCall] = field(default_factory=list)
    final: str | None = None
    error: str | None = None
    completion: Completion | None = None


def describe_tools(tools: Sequence[Tool]) -> str:
    """One compact line per tool: ``name(arg: type, ...): description``."""
    lines = []
    for t in tools:
        props = t.parameters.get("properties", {})
        required = set(t.parameters.get("required", []))
        args = ", ".join(
            f"{k}: {v.get('type', 'any')}" + ("" if k in required else "?")
            for k, v in props.items()
        )
        lines.append(f"- {t.name}({args}): {t.description}")
    return "\n".join(lines)


def reply_schema(
    tools: Sequence[Tool], *, allow_tools: bool = True, allow_final: bool = True
) -> dict[str, Any]:
    """JSON schema for a constrained reply: one tool call or (``allow_final``) a final answer."""
    options: list[dict[str, Any]] = []
    if allow_tools:
        for t in tools:
            params = {k: v for k, v in t.parameters.items() if k != "$defs"}
            option: dict[str, Any] = {
                "type": "object",
                "properties": {"tool": {"const": t.name}, "arguments": params},
                "required": ["tool", "arguments"],
                "additionalProperties": False,
            }
            if "$defs" in t.parameters:
                option["$defs"] = t.parameters["$defs"]
            options.append(option)
    if allow_final or not options:
        options.append(
            {
                "type": "object",
                "properties": {"final_answer": {"type": "string"}},
                "required": ["final_answer"],
                "additionalProperties": False,
            }
        )
    schema = options[0] if len(options) == 1 else {"anyOf": options}
    return {
        "type": "json_schema",
        "json_schema": {"name": "reply", "schema": schema, "strict": True},
    }


def system_prompt(
    tools: Sequence[Tool], mode: ToolMode, instructions: str = "", *, allow_final: bool = True
) -> str:
    template = JSON_MODE_PROMPT if allow_final else JSON_TOOLS_ONLY_PROMPT
    body = template.format(tools=describe_tools(tools)) if mode == "json" else NATIVE_PROMPT
    return f"{instructions.strip()}\n\n{body}" if instructions.strip() else body


def render_for_json_mode(messages: Sequence[Message]) -> list[Message]:
    """Rewrite tool calls and tool results as plain text a small model reads well."""
    names: dict[str, str] = {}
    out: list[Message] = []
    for m in messages:
        calls = m.get("tool_calls")
        if m["role"] == "assistant" and calls:
            parsed = [_loose_call(c) for c in calls]
            for c in parsed:
                names[c.id] = c.name
            text = "\n".join(json.dumps({"tool": c.name, "arguments": c.arguments}) for c in parsed)
            out.append({"role": "assistant", "content": text})
        elif m["role"] == "tool":
            out.append({"role": "user", "content": m.get("content") or ""})
        else:
            out.append({"role": m["role"], "content": m.get("content") or ""})
    return out


def observation(name: str, result: str) -> str:
    return OBSERVATION.format(name=name, result=result)


class DecideOptions(TypedDict, total=False):
    """How :func:`decide` asks for one move (every key optional)."""

    instructions: str
    """Text put before the tool instructions in the system prompt (default none)."""
    force_final: bool
    """Let the model only answer (at the step cap, after a repeated call); default False."""
    max_tokens: int | None
    """The reply's token budget (default 512)."""
    on_delta: OnDelta | None
    """Called with each piece of the reply as it streams (default: ask for the whole reply)."""
    allow_final: bool
    """False leaves the final answer out of the prompt and the JSON schema, so a constrained
    reply is always a tool call (default True)."""


def decide(
    model: ChatModel,
    messages: Sequence[Message],
    tools: Sequence[Tool],
    **options: Unpack[DecideOptions],
) -> Decision:
    """Ask ``model`` for its next move given the history and the tools (see
    :class:`DecideOptions`).

    A server that refuses native tool calls switches the model to constrained JSON mode for
    good, and the request is made again. Backend failures propagate as :class:`BackendError`;
    bad replies come back as a Decision with ``error`` set.
    """
    ask = _Ask(model, messages, tools, options)
    try:
        return ask.read(_complete(model, *ask.request()))
    except NativeToolsUnsupportedError as exc:
        return ask.read(_complete(model, *ask.fall_back(exc)))


async def adecide(
    model: ChatModel,
    messages: Sequence[Message],
    tools: Sequence[Tool],
    **options: Unpack[DecideOptions],
) -> Decision:
    """:func:`decide` on the model's async API, so an episode waiting on the model holds no
    thread (how the eval harness runs many episodes at once)."""
    ask = _Ask(model, messages, tools, options)
    try:
        return ask.read(await _acomplete(model, *ask.request()))
    except NativeToolsUnsupportedError as exc:
        return ask.read(await _acomplete(model, *ask.fall_back(exc)))


@dataclass
class _Ask:
    """One decision: the request for it, the JSON-mode request that replaces it when the server
    refuses native tool calls, and the reading of the reply in the mode it was asked in."""

    model: ChatModel
    messages: Sequence[Message]
    tools: Sequence[Tool]
    options: DecideOptions
    mode: ToolMode = "native"

    def request(self) -> tuple[list[Message], dict[str, Any], OnDelta | None]:
        """The messages to send, the completion options and the delta callback."""
        force_final = self.options.get("force_final", False)
        allow_final = self.options.get("allow_final", True)
        tools = self.tools
        self.mode = self.model.tool_mode if tools else "native"
        instructions = self.options.get("instructions", "")
        prompt = system_prompt(
            tools, self.mode, instructions, allow_final=allow_final or force_final
        )
        sys_msg: Message = {"role": "system", "content": prompt}
        kwargs: dict[str, Any] = {"max_tokens": self.options.get("max_tokens", 512)}
        if self.mode == "json":
            schema = reply_schema(tools, allow_tools=not force_final, allow_final=allow_final)
            request = [sys_msg, *render_for_json_mode(self.messages)]
            kwargs["response_format"] = schema
        else:
            request = [sys_msg, *self.messages]
            if tools and not force_final:
                kwargs["tools"] = [t.spec() for t in tools]
        return request, kwargs, self.options.get("on_delta")

    def fall_back(
        self, exc: NativeToolsUnsupportedError
    ) -> tuple[list[Message], dict[str, Any], OnDelta | None]:
        """Switch the model to constrained JSON mode for good; the request to make instead."""
        if self.model.tool_mode == "json":
            raise exc  # it was not a native request: nothing to fall back to
        log.warning(
            "%s: the server refused native tool calls (%s); using constrained JSON mode instead. "
            "For native calls, start vllm serve with --enable-auto-tool-choice --tool-call-parser "
            "NAME, or pass tool_mode='json' to skip this first request.",
            self.model.name,
            exc,
        )
        self.model.tool_mode = "json"
        return self.request()

    def read(self, completion: Completion) -> Decision:
        return parse_completion(completion, self.tools, mode=self.mode)


def _complete(
    model: ChatModel, request: list[Message], kwargs: dict[str, Any], on_delta: OnDelta | None
) -> Completion:
    if on_delta is None:
        return model.complete(request, **kwargs)
    return collect(model.stream(request, **kwargs), on_delta, model.name)


async def _acomplete(
    model: ChatModel, request: list[Message], kwargs: dict[str, Any], on_delta: OnDelta | None
) -> Completion:
    astream = getattr(model, "astream", None)  # ChatModelBase has it; a bare protocol may not
    if on_delta is None or astream is None:
        completion = await model.acomplete(request, **kwargs)
        if on_delta is not None and completion.content:
            on_delta(completion.content)
        return completion
    return await acollect(astream(request, **kwargs), on_delta, model.name)


def parse_completion(completion: Completion, tools: Sequence[Tool], *, mode: ToolMode) -> Decision:
    """Turn a raw completion into a validated Decision (never raises on model output)."""
    by_name = {t.name: t for t in tools}
    text = completion.content
    try:
        calls = completion.tool_calls
    except (ValueError, RecursionError) as exc:
        return _bad(completion, f"the tool call arguments are not valid JSON ({exc})")
    if not calls:
        parsed = _parse_json_reply(text, strict=(mode == "json"))
        if isinstance(parsed, str):
            return _bad(completion, parsed)
        if parsed is None:
            return Decision(message=assistant(text), final=text.strip(), completion=completion)
        if "final_answer" in parsed:
            answer = str(parsed["final_answer"]).strip()
            return Decision(message=assistant(answer), final=answer, completion=completion)
        calls = [
            ToolCall(
                name=str(parsed.get("tool") or parsed.get("name")),
                arguments=parsed.get("arguments") or {},
            )
        ]
    checked = []
    for call in calls:
        tool = by_name.get(call.name)
        if tool is None:
            known = ", ".join(by_name) or "none"
            return _bad(completion, f"there is no tool named {call.name!r}; the tools are: {known}")
        try:
            args = tool.validate(call.arguments)
        except ToolError as exc:
            return _bad(completion, str(exc))
        checked.append(ToolCall(name=call.name, arguments=args, id=call.id))
    return Decision(
        message=assistant(text or None, checked), tool_calls=checked, completion=completion
    )


_EMBEDDED_CALL = re.compile(
    r"```(?:json)?\s*(\{.*?\})\s*```|<tool_call>\s*(\{.*?\})\s*</tool_call>", re.DOTALL
)


def _parse_json_reply(text: str, *, strict: bool) -> dict[str, Any] | str | None:
    """A dict for a tool call or final answer, an error string, or None for plain text.

    Besides the whole reply, ```json blocks and Hermes-style ``<tool_call>`` tags are
    tried, since models asked for native calls often write one of those instead.
    """
    candidates = [text.strip()]
    candidates += [m.group(1) or m.group(2) for m in _EMBEDDED_CALL.finditer(text)]
    for raw in candidates:
        try:
            obj = json.loads(raw)
        except (
            json.JSONDecodeError,
            RecursionError,
        ):  # nested past the parser's stack: not a reply
            continue
        if not isinstance(obj, dict):
            continue
        if "final_answer" in obj or (("tool" in obj or "name" in obj) and "arguments" in obj):
            if not isinstance(obj.get("arguments", {}), dict):
                return "the tool arguments must be a JSON object"
            return obj
    if strict:
        return (
            'the reply was not the JSON object asked for; reply with {"tool": ..., '
            '"arguments": {...}} or {"final_answer": ...}'
        )
    return None


def _bad(completion: Completion, error: str) -> Decision:
    return Decision(message=assistant(completion.content or ""), error=error, completion=completion)


def _loose_call(raw: dict[str, Any]) -> ToolCall:
    try:
        return ToolCall.from_openai(raw)
    except (ValueError, RecursionError):
        fn = raw.get("function") or {}
        return ToolCall(
            name=str(fn.get("name", "")),
            arguments={"raw": fn.get("arguments")},
            id=raw.get("id") or "call_invalid",
        )

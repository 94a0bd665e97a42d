"""Getting tool calls out of any chat model, small ones included.

Three ways, in order of preference:

1. **native**: the backend returns OpenAI ``tool_calls``;
2. **json**: the prompt carries every tool's whole contract
   (:func:`~toolpath.tools.render.render_tools`) and a JSON schema constrains the reply to
   ``{"tool_calls": [{"name": <one of the names>, "arguments": {...that tool's schema...}},
   ...]}`` (several calls in one turn run concurrently) or ``{"final_answer": "..."}``, which
   is also how the model declines when no tool fits;
3. a last resort for either: ```json blocks or ``<tool_call>`` tags in plain text.

Tool names that OpenAI's rules reject (``math.factorial``) reach the model as their
:attr:`~toolpath.tools.base.Tool.wire_name` and come back under their own name, in calls and
in traces.

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

from toolpath.agents.fit import DECLINED, FIT_OPTIONS, fit_messages, fit_of
from toolpath.errors import NativeToolsUnsupportedError, ToolError, ToolSchemaError
from toolpath.llm.base import (
    ChatModel,
    Completion,
    Message,
    ToolCall,
    ToolMode,
    acollect,
    assistant,
    closed_object,
    collect,
    json_schema_format,
)
from toolpath.tools.base import Tool
from toolpath.tools.render import render_tools

log = logging.getLogger(__name__)

OnDelta = Callable[[str], None]

CALLS_FORMAT = '{{"tool_calls": [{{"name": "<tool name>", "arguments": {{...}}}}]}}'
JSON_MODE_PROMPT = f"""You can call tools. The tools:
{{tools}}

Reply with one JSON object, either
{CALLS_FORMAT}
to call tools: one call per action needed, several calls in one reply when the request asks for
several things or for the same thing with several values; or
{{{{"final_answer": "<text>"}}}}
only when no call is needed: the conversation already holds the answer (a tool's result), or
none of the tools can do what is asked (then say so). When a tool can do what is asked, call it:
never answer such a request from memory, and never call a tool that does not do what is asked.
Take each argument's value from the conversation; leave an optional argument out unless its value
is given."""

JSON_TOOLS_ONLY_PROMPT = f"""You can call tools. The tools:
{{tools}}

Reply with one JSON object:
{CALLS_FORMAT}
{{calls}}
Take each argument's value from the conversation; leave an optional argument out unless its value
is given."""

CALLS_TEXT = (
    "One call per action needed; several calls in one reply when the request asks for several "
    "things or for the same thing with several values."
)
JSON_TOOLS_ONLY_PROMPT = (
    """You can call tools. The tools:
{tools}

Reply with one JSON object:
"""
    + CALLS_FORMAT
    + """
{calls}
Take each argument's value from the conversation; leave an optional argument out unless its value
is given."""
)

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
    checks: list[Completion] = field(default_factory=list)
    """The fit checks asked before this decision stood (:mod:`toolpath.agents.fit`)."""


def describe_tools(tools: Sequence[Tool], query: str = "") -> str:
    """The tools' full contracts for a prompt (:func:`~toolpath.tools.render.render_tools`)."""
    return render_tools(tools, query=query)


def wire_names(tools: Sequence[Tool]) -> dict[str, Tool]:
    """The tools by the name models see (:attr:`Tool.wire_name`); two tools that would look
    alike to a model are a :class:`ToolSchemaError`."""
    by_wire: dict[str, Tool] = {}
    for t in tools:
        other = by_wire.setdefault(t.wire_name, t)
        if other is not t:
            raise ToolSchemaError(
                f"tools {other.name!r} and {t.name!r} both reach models as {t.wire_name!r}; "
                "rename one"
            )
    return by_wire


def reply_schema(
    tools: Sequence[Tool],
    *,
    allow_tools: bool = True,
    allow_final: bool = True,
    max_calls: int | None = None,
) -> dict[str, Any]:
    """JSON schema for a constrained reply: ``{"tool_calls": [...]}`` (each call one of the
    tools, with that tool's argument schema; at most ``max_calls``) or (``allow_final``)
    ``{"final_answer": "..."}``."""
    options: list[dict[str, Any]] = []
    if allow_tools and tools:
        calls: dict[str, Any] = {"type": "array", "items": _call_schema(tools), "minItems": 1}
        if max_calls is not None:
            calls["maxItems"] = max_calls
        options.append(closed_object({"tool_calls": calls}))
    if allow_final or not options:
        options.append(closed_object({"final_answer": {"type": "string"}}))
    return json_schema_format("reply", options[0] if len(options) == 1 else {"anyOf": options})


def _call_schema(tools: Sequence[Tool]) -> dict[str, Any]:
    one = []
    for t in tools:
        params = {k: v for k, v in t.parameters.items() if k != "$defs"}
        params.setdefault("additionalProperties", False)  # no invented arguments
        option = closed_object({"name": {"const": t.wire_name}, "arguments": params})
        if "$defs" in t.parameters:
            option["$defs"] = t.parameters["$defs"]
        one.append(option)
    return one[0] if len(one) == 1 else {"anyOf": one}


def system_prompt(
    tools: Sequence[Tool],
    mode: ToolMode,
    instructions: str = "",
    *,
    allow_final: bool = True,
    max_calls: int | None = None,
    query: str = "",
) -> str:
    """The system prompt of a decision: ``instructions``, then (JSON mode) the tools' contracts
    and the reply format, shortened for ``query`` when the tool list is long."""
    if mode != "json":
        body = NATIVE_PROMPT
    elif allow_final:
        body = JSON_MODE_PROMPT.format(tools=describe_tools(tools, query))
    else:
        calls = "Make exactly one call." if max_calls == 1 else CALLS_TEXT
        body = JSON_TOOLS_ONLY_PROMPT.format(tools=describe_tools(tools, query), calls=calls)
    return f"{instructions.strip()}\n\n{body}" if instructions.strip() else body


def render_for_json_mode(messages: Sequence[Message], tools: Sequence[Tool] = ()) -> list[Message]:
    """Rewrite tool calls and tool results as plain text a small model reads well (calls in
    the reply format, under the names the model sees)."""
    wire = {t.name: t.wire_name for t in tools}
    out: list[Message] = []
    for m in messages:
        calls = m.get("tool_calls")
        if m["role"] == "assistant" and calls:
            parsed = [_loose_call(c) for c in calls]
            shown = [{"name": wire.get(c.name, c.name), "arguments": c.arguments} for c in parsed]
            out.append({"role": "assistant", "content": json.dumps({"tool_calls": shown})})
        elif m["role"] == "tool":
            out.append({"role": "user", "content": m.get("content") or ""})
        else:
            out.append({"role": m["role"], "content": m.get("content") or ""})
    return out


def _wire_history(messages: Sequence[Message], tools: Sequence[Tool]) -> list[Message]:
    """The history with its tool calls under the names the model sees (native requests)."""
    wire = {t.name: t.wire_name for t in tools if t.name != t.wire_name}
    if not wire:
        return list(messages)
    out: list[Message] = []
    for m in messages:
        calls = m.get("tool_calls")
        if m["role"] == "assistant" and calls:
            renamed = []
            for c in calls:
                fn = dict(c.get("function") or {})
                fn["name"] = wire.get(fn.get("name", ""), fn.get("name", ""))
                renamed.append({**c, "function": fn})
            m = {**m, "tool_calls": renamed}
        out.append(m)
    return out


REPAIR_NOTE = "Your reply could not be used: {error}"
"""The user turn that shows a model why its reply could not be used, so it can repair it."""


def last_user_text(messages: Sequence[Message]) -> str:
    """The text of the last user request (what a long tool list is shortened for, and what a
    fit check asks about); repair notes are not requests."""
    repair = REPAIR_NOTE.split("{")[0]
    for m in reversed(messages):
        content = m.get("content")
        if m["role"] == "user" and isinstance(content, str) and not content.startswith(repair):
            return content
    return ""


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
    max_calls: int | None
    """How many calls one reply may make (default: any number, run concurrently)."""
    check_fit: float | None
    """Decline a fresh request's calls when, for every tool they use, the model's probability
    that the tool does what is asked is below this (default None: no check). The threshold is
    the model's own: :data:`~toolpath.agents.fit.FIT_THRESHOLD` was tuned for the embedded
    1.5B; the 0.5B doubts even a right calculator call at it. Backends that give no
    log-probabilities are not checked."""


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
        decision = ask.read(_complete(model, *ask.request()))
    except NativeToolsUnsupportedError as exc:
        decision = ask.read(_complete(model, *ask.fall_back(exc)))
    for tool in ask.to_check(decision):
        decision.checks.append(model.complete(fit_messages(ask.request_text, tool), **FIT_OPTIONS))
    return ask.settle(decision)


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
        decision = ask.read(await _acomplete(model, *ask.request()))
    except NativeToolsUnsupportedError as exc:
        decision = ask.read(await _acomplete(model, *ask.fall_back(exc)))
    for tool in ask.to_check(decision):
        check = await model.acomplete(fit_messages(ask.request_text, tool), **FIT_OPTIONS)
        decision.checks.append(check)
    return ask.settle(decision)


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
        max_calls = self.options.get("max_calls")
        tools = self.tools
        self.mode = self.model.tool_mode if tools else "native"
        prompt = system_prompt(
            tools,
            self.mode,
            self.options.get("instructions", ""),
            allow_final=allow_final or force_final,
            max_calls=max_calls,
            query=last_user_text(self.messages) if len(tools) > 1 else "",
        )
        sys_msg: Message = {"role": "system", "content": prompt}
        kwargs: dict[str, Any] = {"max_tokens": self.options.get("max_tokens", 512)}
        if self.mode == "json":
            kwargs["response_format"] = reply_schema(
                tools, allow_tools=not force_final, allow_final=allow_final, max_calls=max_calls
            )
            request = [sys_msg, *render_for_json_mode(self.messages, tools)]
        else:
            request = [sys_msg, *_wire_history(self.messages, tools)]
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
        max_calls = self.options.get("max_calls")
        return parse_completion(completion, self.tools, mode=self.mode, max_calls=max_calls)

    @property
    def request_text(self) -> str:
        return last_user_text(self.messages)

    def to_check(self, decision: Decision) -> list[Tool]:
        """The tools whose fit to a fresh request (the last message is the user's) is checked:
        those the decision calls, once each."""
        fresh = bool(self.messages) and self.messages[-1]["role"] == "user"
        if self.options.get("check_fit") is None or not fresh:
            return []
        if not getattr(self.model, "logprobs", False):
            return []
        if not self.options.get("allow_final", True) or not decision.tool_calls:
            return []
        by_name = {t.name: t for t in self.tools}
        return [by_name[n] for n in dict.fromkeys(c.name for c in decision.tool_calls)]

    def settle(self, decision: Decision) -> Decision:
        """The decision, or a decline when no checked tool fits (:mod:`toolpath.agents.fit`)."""
        threshold = self.options.get("check_fit")
        fits = [fit_of(c) for c in decision.checks]
        if not fits or threshold is None or any(f is None or f >= threshold for f in fits):
            return decision
        names = ", ".join(dict.fromkeys(c.name for c in decision.tool_calls))
        text = DECLINED.format(tools=names)
        return Decision(
            message=assistant(text),
            final=text,
            completion=decision.completion,
            checks=decision.checks,
        )


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


def parse_completion(
    completion: Completion, tools: Sequence[Tool], *, mode: ToolMode, max_calls: int | None = None
) -> Decision:
    """Turn a raw completion into a validated Decision (never raises on model output).

    Calls may name a tool by the name the model saw or by its own name; the Decision's calls
    carry the tool's own name. Every call must be valid for the Decision to have any.
    """
    by_wire = wire_names(tools)
    by_name = {t.name: t for t in tools}
    text = completion.content
    try:
        calls = completion.tool_calls
    except (ValueError, RecursionError) as exc:
        return _bad(completion, f"the tool call arguments are not valid JSON ({exc})")
    if not calls:
        parsed = parse_reply(text, strict=(mode == "json"))
        if isinstance(parsed, str):
            return _bad(completion, parsed)
        if parsed is None:
            return Decision(message=assistant(text), final=text.strip(), completion=completion)
        if isinstance(parsed, dict):
            answer = str(parsed["final_answer"]).strip()
            return Decision(message=assistant(answer), final=answer, completion=completion)
        calls = parsed
    if max_calls is not None and len(calls) > max_calls:
        return _bad(completion, f"make at most {max_calls} call(s) in one reply")
    checked = []
    for call in calls:
        tool = by_wire.get(call.name) or by_name.get(call.name)
        if tool is None:
            known = ", ".join(by_wire) or "none"
            return _bad(completion, f"there is no tool named {call.name!r}; the tools are: {known}")
        try:
            args = tool.validate(call.arguments)
        except ToolError as exc:
            return _bad(completion, str(exc))
        checked.append(ToolCall(name=tool.name, arguments=args, id=call.id))
    return Decision(
        message=assistant(text or None, checked), tool_calls=checked, completion=completion
    )


_EMBEDDED_CALL = re.compile(
    r"```(?:json)?\s*(\{.*?\})\s*```|<tool_call>\s*(\{.*?\})\s*</tool_call>", re.DOTALL
)


def parse_reply(text: str, *, strict: bool = True) -> list[ToolCall] | dict[str, Any] | str | None:
    """The calls of a reply, its ``{"final_answer"}`` dict, an error string, or None for plain
    text.

    Besides the whole reply, ```json blocks and Hermes-style ``<tool_call>`` tags are tried
    (all of them: a model asked for native calls often writes one tag per call). A call is
    ``{"name" or "tool": ..., "arguments": {...}}``, alone or in ``{"tool_calls": [...]}``.
    """
    whole = _reply_object(text.strip())
    if whole is not None:
        return whole
    found: list[ToolCall] = []
    for m in _EMBEDDED_CALL.finditer(text):
        reply = _reply_object(m.group(1) or m.group(2))
        if isinstance(reply, list):
            found += reply
        elif reply is not None:
            return reply
    if found:
        return found
    if strict:
        return (
            'the reply was not the JSON object asked for; reply with {"tool_calls": [{"name": '
            '..., "arguments": {...}}]} or {"final_answer": ...}'
        )
    return None


def _reply_object(raw: str) -> list[ToolCall] | dict[str, Any] | str | None:
    """What one JSON text says (see :func:`_parse_json_reply`); None if it is no reply."""
    try:
        obj = json.loads(raw)
    except (json.JSONDecodeError, RecursionError):  # nested past the parser's stack
        return None
    if not isinstance(obj, dict):
        return None
    if "final_answer" in obj:
        return obj
    items = obj.get("tool_calls") if "tool_calls" in obj else [obj]
    if not isinstance(items, list):
        return "tool_calls must be a list of calls"
    calls = []
    for item in items:
        if not isinstance(item, dict) or "arguments" not in item:
            return None if items == [obj] else 'each call must be {"name": ..., "arguments": {...}}'
        name = item.get("name", item.get("tool"))
        if not isinstance(name, str):
            return None if items == [obj] else "each call needs a tool name"
        if not isinstance(item["arguments"], dict):
            return "the tool arguments must be a JSON object"
        calls.append(ToolCall(name=name, arguments=item["arguments"]))
    return calls or "tool_calls is empty; call a tool or reply with final_answer"


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

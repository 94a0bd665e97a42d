"""The agent contract: what every toolpath agent builder and graph shares.

Every builder (``tool_agent``, ``alpha_umi_agent``, ``math_agent``, ``pot_agent``,
``cot_agent``, ``costa_agent``, ``web_agent``) follows one shape:

- ``model`` first (a :class:`~toolpath.llm.base.ChatModel` or a spec string), then the
  system's own inputs, everything else keyword-only, ``checkpointer=`` always accepted;
- it checks its arguments and wires the graph; the nodes are functions or methods that can
  be tested alone;
- a run's ``status`` is one of :data:`Status`, and its ``trace`` is a list of
  :class:`TraceRecord` (made by :func:`model_record` and :func:`tool_record`);
- tool calls run through :func:`execute_calls` (concurrently, every failure an outcome).

Every agent is a compiled LangGraph graph. :class:`AgentGraph` is LangGraph's own
``CompiledStateGraph`` with two conveniences: ``invoke``/``stream`` (and their async
twins) also accept a plain question string, which the agent turns into its input state;
and a run tells its nodes whether anyone reads token events (``configurable`` key
:data:`STREAM_TOKENS`). Only a run streamed in LangGraph's ``custom`` mode does, so the others
(``invoke``/``ainvoke`` included, as the eval harness runs episodes) ask the model for
whole replies, which costs the client less CPU than a token stream.
"""

from __future__ import annotations

import asyncio
import json
import time
import warnings
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypedDict

from langgraph.config import get_config, get_stream_writer
from langgraph.graph.state import CompiledStateGraph

from toolpath import tracing
from toolpath.agents.approval import Approve, review
from toolpath.agents.budget import Budget, Meter
from toolpath.errors import ToolError
from toolpath.llm.base import ChatModel, Completion, Message, ToolCall, collect
from toolpath.tools.base import Tool, run_blocking

Status = Literal["running", "done", "gave_up", "step_limit", "failed", "budget_exhausted"]
"""How a run stands: ``running`` until it ends ``done`` (it has its answer or result),
``gave_up`` (the agent decided it cannot), ``step_limit`` (out of steps or rounds),
``failed`` (repairs exhausted, or a step that cannot go on) or ``budget_exhausted`` (a
:class:`~toolpath.agents.budget.Budget` limit was reached; ``reason`` says which)."""


class TraceRecord(TypedDict, total=False):
    """One timed step of a run: a model call (``model``, tokens) or a tool call (``tool``, ``ok``)."""

    node: str
    model: str | None
    seconds: float
    tokens_in: int
    tokens_out: int
    tool: str | None
    ok: bool
    error: str


STREAM_TOKENS = "stream_tokens"
"""``configurable`` key: whether the model nodes stream tokens (default: only when the run is
streamed in ``custom`` mode; a caller may set it either way)."""


class AgentGraph(CompiledStateGraph):
    """A compiled LangGraph graph whose input may be a plain question string."""

    make_input: Callable[[str], dict[str, Any]]
    on_close: Callable[[], None] | None
    budget: Budget | None = None

    def close(self) -> None:
        """Release what the agent holds of its own (for example a code kernel)."""
        if self.on_close is not None:
            self.on_close()

    def _coerce(self, input: Any) -> Any:
        return self.make_input(input) if isinstance(input, str) else input

    def _flag_tokens(self, config: Any, kwargs: dict[str, Any]) -> Any:
        """``config`` with :data:`STREAM_TOKENS` set from the run's stream modes, unless the
        caller set it or this graph runs inside another graph's run (whose modes it cannot see)."""
        conf = dict((config or {}).get("configurable") or {})
        if STREAM_TOKENS in conf or any(str(k).startswith("__pregel_") for k in conf):
            return config
        modes = kwargs.get("stream_mode") or self.stream_mode
        conf[STREAM_TOKENS] = "custom" in ([modes] if isinstance(modes, str) else list(modes))
        return {**(config or {}), "configurable": conf}

    def stream(self, input: Any, config: Any = None, **kwargs: Any) -> Iterator[Any]:
        config, traced = self._flag_tokens(config, kwargs), tracing.active()
        if traced is None:
            return self._stream(input, config, kwargs)
        from toolpath.tracing.graph import traced_run

        return traced_run(
            traced.tracer, self.name, config, lambda c: self._stream(input, c, kwargs)
        )

    def astream(self, input: Any, config: Any = None, **kwargs: Any) -> AsyncIterator[Any]:
        config, traced = self._flag_tokens(config, kwargs), tracing.active()
        if traced is None:
            return self._astream(input, config, kwargs)
        from toolpath.tracing.graph import atraced_run

        run = atraced_run(
            traced.tracer, self.name, config, lambda c: self._astream(input, c, kwargs)
        )
        return run

    def _stream(self, input: Any, config: Any, kwargs: dict[str, Any]) -> Iterator[Any]:
        if getattr(self, "budget", None) is None or kwargs.get("version") == "v2":
            return super().stream(self._coerce(input), config, **kwargs)
        asked = self._metered_modes(kwargs)
        return self._metered(super().stream(self._coerce(input), config, **kwargs), asked, kwargs)

    def _astream(self, input: Any, config: Any, kwargs: dict[str, Any]) -> AsyncIterator[Any]:
        if getattr(self, "budget", None) is None or kwargs.get("version") == "v2":
            return super().astream(self._coerce(input), config, **kwargs)
        asked = self._metered_modes(kwargs)
        inner = super().astream(self._coerce(input), config, **kwargs)
        return self._ametered(inner, asked, kwargs)

    # -- budgets (toolpath.agents.budget): the run stops at the step that reaches a limit ------

    def _metered_modes(self, kwargs: dict[str, Any]) -> Any:
        """The stream modes the caller asked for; ``kwargs`` then asks for them plus values."""
        asked = kwargs.get("stream_mode") or self.stream_mode
        listed = [asked] if isinstance(asked, str) else list(asked)
        kwargs["stream_mode"] = [*listed, *(["values"] if "values" not in listed else [])]
        return asked

    def _metered(self, inner: Iterator[Any], asked: Any, kwargs: dict[str, Any]) -> Iterator[Any]:
        assert self.budget is not None
        meter, subgraphs = Meter(self.budget), bool(kwargs.get("subgraphs"))
        try:
            for chunk in inner:
                out, stop = _metered_chunk(chunk, asked, subgraphs, meter)
                yield from out
                if stop:
                    return
        finally:
            inner.close()  # type: ignore[attr-defined]

    async def _ametered(
        self, inner: AsyncIterator[Any], asked: Any, kwargs: dict[str, Any]
    ) -> AsyncIterator[Any]:
        assert self.budget is not None
        meter, subgraphs = Meter(self.budget), bool(kwargs.get("subgraphs"))
        try:
            async for chunk in inner:
                out, stop = _metered_chunk(chunk, asked, subgraphs, meter)
                for item in out:
                    yield item
                if stop:
                    return
        finally:
            await inner.aclose()  # type: ignore[attr-defined]


def _metered_chunk(chunk: Any, asked: Any, subgraphs: bool, meter: Meter) -> tuple[list[Any], bool]:
    """What the caller sees of one chunk of a metered stream (asked for ``asked`` modes; the
    inner stream had values added), and whether the run must stop at this step."""
    namespace, (mode, payload) = (chunk[0], chunk[1:]) if subgraphs else ((), chunk)
    listed = [asked] if isinstance(asked, str) else list(asked)

    def shaped(m: str, p: Any) -> Any:
        item = p if isinstance(asked, str) else (m, p)
        return (
            ((namespace, item) if isinstance(asked, str) else (namespace, m, p))
            if subgraphs
            else item
        )

    running = isinstance(payload, Mapping) and payload.get("status", "running") == "running"
    reason = meter.over(payload) if mode == "values" and not namespace and running else None
    if reason is None:
        return ([shaped(mode, payload)] if mode in listed else []), False
    stopped = {**payload, "status": "budget_exhausted", "reason": reason}
    if "values" in listed:
        return [shaped("values", stopped)], True
    if "updates" in listed:
        note = {"status": "budget_exhausted", "reason": reason}
        return [shaped("updates", {"budget": note})], True
    return [], True


def finish(
    compiled: CompiledStateGraph,
    make_input: Callable[[str], dict[str, Any]],
    on_close: Callable[[], None] | None = None,
    budget: Budget | None = None,
) -> AgentGraph:
    """Turn LangGraph's compiled graph into an :class:`AgentGraph` in place; ``budget`` limits
    each of its runs (:mod:`toolpath.agents.budget`)."""
    compiled.__class__ = AgentGraph
    assert isinstance(compiled, AgentGraph)
    compiled.make_input = make_input
    compiled.on_close = on_close
    compiled.budget = budget
    return compiled


def sqlite_checkpointer(path: str | Path) -> Any:
    """A LangGraph SQLite checkpointer on ``path``: runs resume by thread id, also from another
    process, under ``invoke`` and ``ainvoke`` alike (LangGraph's own ``SqliteSaver`` is
    sync-only; this one runs its async methods on a worker thread)."""
    import sqlite3

    from langgraph.checkpoint.sqlite import SqliteSaver

    class SqliteCheckpointer(SqliteSaver):
        async def aget_tuple(self, config: Any) -> Any:
            return await asyncio.to_thread(self.get_tuple, config)

        async def alist(self, config: Any, **kwargs: Any) -> AsyncIterator[Any]:
            for item in await asyncio.to_thread(lambda: list(self.list(config, **kwargs))):
                yield item

        async def aput(self, *args: Any) -> Any:
            return await asyncio.to_thread(self.put, *args)

        async def aput_writes(self, *args: Any, **kwargs: Any) -> None:
            await asyncio.to_thread(self.put_writes, *args, **kwargs)

        async def adelete_thread(self, thread_id: str) -> None:
            await asyncio.to_thread(self.delete_thread, thread_id)

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return SqliteCheckpointer(sqlite3.connect(str(path), check_same_thread=False))


def as_model(model: ChatModel | str | None) -> ChatModel:
    """Accept a ChatModel or a model spec string (``None`` means the default local model)."""
    if model is None or isinstance(model, str):
        from toolpath.llm.specs import load_model

        return load_model(model or "local")
    return model


def tokens_wanted() -> bool:
    """Whether the graph run this node belongs to has a reader for token events."""
    try:
        conf = get_config().get("configurable") or {}
    except RuntimeError:  # called outside a graph run: nothing to stream to
        return False
    return bool(conf.get(STREAM_TOKENS, True))


def generate(
    model: ChatModel, messages: Sequence[Message], *, node: str, **kwargs: Any
) -> Completion:
    """One model call from inside a graph node, streaming its tokens to LangGraph's
    ``custom`` stream as ``{"type": "token", "node": node, "delta": ...}`` when the run has a
    reader for them (:func:`tokens_wanted`), else asking for the whole reply."""
    if not tokens_wanted():
        return model.complete(messages, **kwargs)
    write = get_stream_writer()
    events = model.stream(messages, **kwargs)
    return collect(events, lambda d: write({"type": "token", "node": node, "delta": d}), model.name)


def model_record(node: str, c: Completion, model: str | None = None) -> TraceRecord:
    """The trace record of one model call made by ``node``."""
    return {
        "node": node,
        "model": model,
        "seconds": c.latency_s,
        "tokens_in": c.usage.prompt_tokens,
        "tokens_out": c.usage.completion_tokens,
    }


def tool_record(
    node: str, tool: str | None, seconds: float, ok: bool, error: str | None = None
) -> TraceRecord:
    """The trace record of one tool call run by ``node``."""
    record: TraceRecord = {"node": node, "tool": tool, "seconds": seconds, "ok": ok}
    if error is not None:
        record["error"] = error
    return record


def tokens(trace: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """Total prompt and completion tokens over a run's trace."""
    return {
        "prompt": sum(int(r.get("tokens_in") or 0) for r in trace),
        "completion": sum(int(r.get("tokens_out") or 0) for r in trace),
    }


# --- the builders' argument order ---------------------------------------------------------


def model_first(builder: str, model: Any, tools: Any) -> tuple[Any, Any]:
    """``(model, tools)`` of a tool-calling builder, for one release also when given in the old
    ``(tools, model)`` order (a list, tuple or Catalog of tools first, or a ChatModel or model
    spec second): then they are swapped, with a :class:`DeprecationWarning`."""
    if not (isinstance(tools, str | ChatModel) or _is_toolset(model)):
        return model, tools
    warnings.warn(
        f"{builder}(model, tools): the model comes first now", DeprecationWarning, stacklevel=3
    )
    swapped_model = None if isinstance(tools, tuple) and not tools else tools
    return swapped_model, (() if model is None else model)


def _is_toolset(value: Any) -> bool:
    if value is None or isinstance(value, str | ChatModel):
        return False
    if isinstance(value, list | tuple):
        return True
    from toolpath.tools.catalog.formats import Catalog

    return isinstance(value, Catalog)


# --- the one tool-execution step ---------------------------------------------------------


@dataclass
class ToolOutcome:
    """What one tool call gave: its ``result`` text, or the ``error`` it failed with."""

    id: str
    name: str
    arguments: dict[str, Any] | None
    ok: bool
    result: str
    error: str | None
    seconds: float

    def record(self, node: str = "tools") -> TraceRecord:
        """This call's trace record."""
        return tool_record(node, self.name, self.seconds, self.ok, self.error)


def parse_call(raw: Mapping[str, Any]) -> tuple[str, str, dict[str, Any] | str]:
    """``(id, name, arguments)`` of an OpenAI-format tool call; arguments that are not a JSON
    object come back as the problem's text."""
    fn = raw.get("function") or {}
    name = str(fn.get("name") or "")
    raw_args = fn.get("arguments")
    try:
        args = json.loads(raw_args) if isinstance(raw_args, str) else raw_args
    except ValueError as exc:
        return str(raw.get("id") or ""), name, f"the arguments are not valid JSON: {exc}"
    if args is None:
        args = {}
    if not isinstance(args, dict):
        return str(raw.get("id") or ""), name, "the arguments must be a JSON object"
    return str(raw.get("id") or ""), name, args


def _prepare(raw: Mapping[str, Any], tools: Mapping[str, Tool]) -> ToolOutcome | tuple[Any, ...]:
    """A failed outcome for a call that cannot run, else ``(id, name, arguments, tool)``."""
    call_id, name, args = parse_call(raw)
    if isinstance(args, str):
        return ToolOutcome(call_id, name, None, False, "", args, 0.0)
    tool = tools.get(name)
    if tool is None:
        known = ", ".join(sorted(tools)) or "none"
        error = f"there is no tool named {name!r}; the tools are: {known}"
        return ToolOutcome(call_id, name, args, False, "", error, 0.0)
    return call_id, name, args, tool


def _finish(call: tuple[Any, ...], start: float, result: str | ToolError, span: Any) -> ToolOutcome:
    call_id, name, args, _ = call
    seconds = time.perf_counter() - start
    if isinstance(result, ToolError):
        tracing.tool_result(span, None, str(result))
        return ToolOutcome(call_id, name, args, False, "", str(result), seconds)
    tracing.tool_result(span, result, None)
    return ToolOutcome(call_id, name, args, True, result, None, seconds)


async def _execute_one(raw: Mapping[str, Any], tools: Mapping[str, Tool]) -> ToolOutcome:
    call = _prepare(raw, tools)
    if isinstance(call, ToolOutcome):
        return call
    with tracing.tool_span(call[1], call[0], call[2]) as span:
        start = time.perf_counter()
        try:
            result: str | ToolError = await call[3].arun(call[2])
        except ToolError as exc:
            result = exc
        return _finish(call, start, result, span)


async def aexecute_calls(
    calls: Sequence[Mapping[str, Any]],
    tools: Mapping[str, Tool],
    *,
    approve: Approve = None,
    reason: str = "",
) -> list[ToolOutcome]:
    """Run one turn's tool calls concurrently, in the calls' order; a bad call, an unknown tool
    or a :class:`~toolpath.errors.ToolError` becomes a failed outcome, never an exception.
    Calls that ``approve`` selects wait for a reviewer first (:mod:`toolpath.agents.approval`;
    ``reason`` is what the agent said before the calls)."""
    calls, refused = _reviewed(calls, tools, approve, reason)
    outcomes = await asyncio.gather(
        *(_execute_one(c, tools) for i, c in enumerate(calls) if i not in refused)
    )
    return _merge(calls, refused, list(outcomes))


def execute_calls(
    calls: Sequence[Mapping[str, Any]],
    tools: Mapping[str, Tool],
    *,
    approve: Approve = None,
    reason: str = "",
) -> list[ToolOutcome]:
    """:func:`aexecute_calls` from sync code (a graph node run by ``invoke``). A single call
    runs right here, without an event loop of its own."""
    calls, refused = _reviewed(calls, tools, approve, reason)  # here: interrupt() needs the node
    if refused:
        left = [c for i, c in enumerate(calls) if i not in refused]
        return _merge(calls, refused, execute_calls(left, tools))
    if len(calls) != 1:
        return run_blocking(lambda: aexecute_calls(calls, tools)) if calls else []
    call = _prepare(calls[0], tools)
    if isinstance(call, ToolOutcome):
        return [call]
    with tracing.tool_span(call[1], call[0], call[2]) as span:
        start = time.perf_counter()
        try:
            result: str | ToolError = call[3].run(call[2])
        except ToolError as exc:
            result = exc
        return [_finish(call, start, result, span)]


def _reviewed(
    calls: Sequence[Mapping[str, Any]], tools: Mapping[str, Tool], approve: Approve, reason: str
) -> tuple[list[Mapping[str, Any]], dict[int, str]]:
    """The calls after review (edited ones with their new arguments), and the refused ones'
    texts by position."""
    changes = review([parse_call(c) for c in calls], tools, approve, reason)
    out, refused = list(calls), {}
    for i, change in changes.items():
        if isinstance(change, str):
            refused[i] = change
        else:
            call_id, name, _ = parse_call(calls[i])
            out[i] = ToolCall(name, change, call_id).to_openai()
    return out, refused


def _merge(
    calls: Sequence[Mapping[str, Any]], refused: Mapping[int, str], ran: list[ToolOutcome]
) -> list[ToolOutcome]:
    """The outcomes in the calls' order: the ones that ran, and a failed one per refused call."""
    out, done = [], iter(ran)
    for i, raw in enumerate(calls):
        if i in refused:
            call_id, name, args = parse_call(raw)
            arguments = args if isinstance(args, dict) else None
            out.append(ToolOutcome(call_id, name, arguments, False, "", refused[i], 0.0))
        else:
            out.append(next(done))
    return out

"""OpenTelemetry tracing of toolpath runs (optional extra ``trace``).

Off by default, and then free: nothing of OpenTelemetry is imported, and every hook is one
check of a module global. :func:`enable` turns it on for the process::

    from toolpath import tracing
    tracing.enable("runs/trace.jsonl")            # or "console", "otlp", "otlp:http://host:4318"
    agent.invoke("What is 2 + 3?")
    tracing.disable()                              # flushes and closes the exporters

Spans follow OpenTelemetry's GenAI semantic conventions:

- ``invoke_agent NAME``: one agent run (``AgentGraph.invoke``/``stream`` and their async
  twins), the root of its trace, with the run's total tokens;
- ``node NAME``: one graph node's execution (``toolpath.node``, ``toolpath.step``);
- ``chat MODEL``: one model call (``gen_ai.request.model``, ``gen_ai.usage.input_tokens``,
  ``gen_ai.usage.output_tokens``, ``gen_ai.response.finish_reasons``);
- ``execute_tool NAME``: one tool call (``gen_ai.tool.name``, ``gen_ai.tool.call.id``).

Errors set the span's status and ``error.type``. Prompts, completions, tool arguments and
results are recorded only with ``content=True``. ``toolpath trace view`` draws a JSONL trace
as an HTML page (:mod:`toolpath.tracing.viewer`).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from toolpath.tracing.viewer import write_viewer

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.trace import Span, Tracer

__all__ = [
    "Tracing",
    "active",
    "disable",
    "enable",
    "end_model_span",
    "episode",
    "start_model_span",
    "tool_result",
    "tool_span",
    "tracing",
    "write_viewer",
]

INSTALL_HINT = "tracing needs OpenTelemetry: pip install 'toolpath[trace]'"


@dataclass
class Tracing:
    """The tracing that :func:`enable` set up: its tracer, and whether content is recorded."""

    provider: TracerProvider
    tracer: Tracer
    content: bool
    owned: bool

    def flush(self) -> None:
        """Export every finished span now."""
        self.provider.force_flush()


_state: Tracing | None = None
_lock = threading.Lock()


def active() -> Tracing | None:
    """The tracing in force, or ``None`` when it is off (the cheap check every hook makes)."""
    return _state


def enable(
    *exporters: str | Path | SpanExporter,
    content: bool = False,
    provider: TracerProvider | None = None,
) -> Tracing:
    """Trace this process's runs into ``exporters`` (default: the console).

    An exporter is ``"console"``, ``"otlp"`` (OTLP over HTTP to ``$OTEL_EXPORTER_OTLP_ENDPOINT``
    or 127.0.0.1:4318), ``"otlp:URL"``, a path to a ``.jsonl`` file (appended to), or any
    OpenTelemetry ``SpanExporter``. ``provider``: record into an SDK ``TracerProvider`` you set
    up yourself (for example the global one of Phoenix or Langfuse) instead; then ``exporters``
    are added to it. ``content`` records prompts, completions and tool arguments and results.
    Enabling again replaces the tracing before (which is flushed and closed).
    """
    global _state
    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    except ImportError as exc:
        raise ImportError(INSTALL_HINT) from exc
    owned = provider is None
    if provider is None:
        provider = TracerProvider(resource=Resource.create({"service.name": "toolpath"}))
    for exporter in exporters or ("console",):
        made = _exporter(exporter)
        batched = type(made).__name__ == "OTLPSpanExporter"
        provider.add_span_processor(
            BatchSpanProcessor(made) if batched else SimpleSpanProcessor(made)
        )
    with _lock:
        before, _state = _state, Tracing(provider, provider.get_tracer("toolpath"), content, owned)
    if before is not None:
        _close(before)
    return _state


def disable() -> None:
    """Stop tracing: flush what is left and close the exporters :func:`enable` made."""
    global _state
    with _lock:
        before, _state = _state, None
    if before is not None:
        _close(before)


@contextmanager
def tracing(*exporters: str | Path | SpanExporter, content: bool = False) -> Iterator[Tracing]:
    """:func:`enable` for the block, then :func:`disable`."""
    state = enable(*exporters, content=content)
    try:
        yield state
    finally:
        disable()


def _close(state: Tracing) -> None:
    state.provider.force_flush()
    if state.owned:
        state.provider.shutdown()


def _exporter(spec: str | Path | SpanExporter) -> SpanExporter:
    if not isinstance(spec, str | Path):
        return spec
    text = str(spec)
    if text == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    if text == "otlp" or text.startswith("otlp:"):
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        except ImportError as exc:
            raise ImportError(INSTALL_HINT) from exc
        url = text[5:] or None
        if url is not None and url.count("/") == 2:  # http://host:port: the traces path
            url += "/v1/traces"
        return OTLPSpanExporter(endpoint=url)
    if text.endswith(".jsonl"):
        from toolpath.tracing.jsonl import JsonlExporter

        return JsonlExporter(Path(text))
    raise ValueError(
        f"unknown trace exporter {text!r}: use console, otlp, otlp:URL or a path ending in .jsonl"
    )


# --- the spans toolpath's layers open -----------------------------------------------------


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


def parent_context() -> Any:
    """The OpenTelemetry context a model or tool span opened here belongs under: the graph
    node running it (through LangGraph's run config), else the current context."""
    from toolpath.tracing.graph import node_context

    return node_context()


def start_model_span(
    model: str, provider: str, messages: Sequence[Mapping[str, Any]], options: Mapping[str, Any]
) -> Span | None:
    """Open a ``chat MODEL`` span (``None`` when tracing is off)."""
    state = _state
    if state is None:
        return None
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": provider,
        "gen_ai.request.model": model,
    }
    for key, attr in (("max_tokens", "max_tokens"), ("temperature", "temperature")):
        if options.get(key) is not None:
            attributes[f"gen_ai.request.{attr}"] = options[key]
    if state.content:
        attributes["gen_ai.input.messages"] = _text(list(messages))
    from opentelemetry.trace import SpanKind

    return state.tracer.start_span(
        f"chat {model}", context=parent_context(), kind=SpanKind.CLIENT, attributes=attributes
    )


def end_model_span(
    span: Span | None, completion: Any = None, error: BaseException | None = None
) -> None:
    """Close a model span with the reply's usage (a :class:`~toolpath.llm.base.Completion`)
    or the error it failed with."""
    if span is None:
        return
    if completion is not None:
        usage = completion.usage
        span.set_attribute("gen_ai.usage.input_tokens", usage.prompt_tokens)
        span.set_attribute("gen_ai.usage.output_tokens", usage.completion_tokens)
        span.set_attribute("gen_ai.response.finish_reasons", [completion.finish_reason])
        state = _state
        if state is not None and state.content:
            span.set_attribute("gen_ai.output.messages", _text([completion.message]))
        from toolpath.tracing.graph import add_usage

        add_usage(usage.prompt_tokens, usage.completion_tokens)
    _finish(span, error)


@contextmanager
def tool_span(name: str, call_id: str, arguments: Any) -> Iterator[Span | None]:
    """An ``execute_tool NAME`` span around one tool call (``None`` when tracing is off);
    :func:`tool_result` records how it went."""
    state = _state
    if state is None:
        yield None
        return
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": name,
        "gen_ai.tool.type": "function",
    }
    if call_id:
        attributes["gen_ai.tool.call.id"] = call_id
    if state.content and arguments is not None:
        attributes["gen_ai.tool.call.arguments"] = _text(arguments)
    span = state.tracer.start_span(
        f"execute_tool {name}", context=parent_context(), attributes=attributes
    )
    try:
        yield span
    except BaseException as exc:
        _finish(span, exc)
        raise
    span.end()


def tool_result(span: Span | None, result: str | None, error: str | None) -> None:
    """Record a tool call's result (kept only with content on) or the error it gave."""
    if span is None:
        return
    if error is not None:
        from opentelemetry.trace import Status, StatusCode

        span.set_status(Status(StatusCode.ERROR, error))
        span.set_attribute("error.type", "ToolError")
    else:
        state = _state
        if state is not None and state.content and result is not None:
            span.set_attribute("gen_ai.tool.call.result", result)


def _finish(span: Span, error: BaseException | None) -> None:
    if error is not None:
        from opentelemetry.trace import Status, StatusCode

        span.set_status(Status(StatusCode.ERROR, str(error) or type(error).__name__))
        span.set_attribute("error.type", type(error).__qualname__)
    span.end()


@contextmanager
def episode(example_id: str, method: str) -> Iterator[None]:
    """An ``episode ID`` span, current for the block, over one eval episode: the agent run
    inside becomes its child, so each episode is one trace named by its id."""
    state = _state
    if state is None:
        yield
        return
    from opentelemetry import context
    from opentelemetry.trace import set_span_in_context

    attributes = {"toolpath.episode": example_id, "toolpath.method": method}
    span = state.tracer.start_span(f"episode {example_id}", attributes=attributes)
    token = context.attach(set_span_in_context(span))
    try:
        yield
    except BaseException as exc:
        _finish(span, exc)
        raise
    else:
        span.end()
    finally:
        context.detach(token)

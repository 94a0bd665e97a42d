"""Agent-run and node spans of a LangGraph run, and where model and tool spans belong.

An agent run's span is opened by :func:`traced_run` (sync) or :func:`atraced_run` (async)
around the run's stream. A LangChain callback handler, :class:`RunTracer`, rides along in the
run's config: LangGraph calls it as each node starts and ends, and it opens a ``node NAME``
span under the run's. A model or tool call made inside a node finds that node's span through
the node's own config (LangGraph's callback manager there names the node's run), so nothing
depends on which thread or task the node runs on. An agent run inside another agent's node
gets its own handler one level deeper; each handler takes only the nodes of its own level
(LangGraph's checkpoint namespace says how deep a node is), and model and tool calls go to
the innermost run.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler, BaseCallbackManager
from langchain_core.runnables.config import var_child_runnable_config
from opentelemetry import context as otel_context
from opentelemetry.trace import Span, Status, StatusCode, Tracer, set_span_in_context

CONTROL_FLOW = {
    "GraphInterrupt",
    "NodeInterrupt",
    "GraphBubbleUp",
    "ParentCommand",
    "GeneratorExit",
}
"""LangGraph's exceptions that pause or redirect a run rather than fail it."""


class RunTracer(BaseCallbackHandler):
    """Opens a span per graph node under one agent run's span, and sums the run's tokens."""

    run_inline = True

    def __init__(self, tracer: Tracer, run_span: Span, level: int = 0) -> None:
        self.tracer, self.run_span = tracer, run_span
        self.level = level
        """How deep in other graphs' nodes this run is (0: a top-level run): its own nodes'
        checkpoint namespaces have ``level + 1`` parts; deeper ones are nested runs'."""
        self.root = set_span_in_context(run_span)
        self.spans: dict[UUID, Span] = {}
        self.nodes: dict[UUID, str] = {}
        self.parents: dict[UUID, UUID | None] = {}
        self.tokens = [0, 0]

    def context_of(self, run_id: UUID | None) -> Any:
        """The context of the nearest node span at or above LangChain run ``run_id``."""
        seen = 0
        while run_id is not None and seen < 64:
            span = self.spans.get(run_id)
            if span is not None:
                return set_span_in_context(span)
            run_id, seen = self.parents.get(run_id), seen + 1
        return self.root

    def on_chain_start(
        self,
        serialized: Any,
        inputs: Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        self.parents[run_id] = parent_run_id
        node = (metadata or {}).get("langgraph_node")
        if node is None or name != node or "langsmith:hidden" in (tags or ()):
            return
        namespace = str((metadata or {}).get("langgraph_checkpoint_ns") or "")
        if namespace and namespace.count("|") != self.level:  # a nested run's node
            return
        if (
            parent_run_id is not None and self.nodes.get(parent_run_id) == node
        ):  # the node's own runnable, inside its run
            return
        attributes = {"toolpath.node": str(node)}
        if (metadata or {}).get("langgraph_step") is not None:
            attributes["toolpath.step"] = metadata["langgraph_step"]  # type: ignore[index]
        self.nodes[run_id] = str(node)
        self.spans[run_id] = self.tracer.start_span(
            f"node {node}", context=self.context_of(parent_run_id), attributes=attributes
        )

    def on_chain_end(self, outputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._end(run_id, None)

    def on_chain_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._end(run_id, error)

    def _end(self, run_id: UUID, error: BaseException | None) -> None:
        self.parents.pop(run_id, None)
        self.nodes.pop(run_id, None)
        span = self.spans.pop(run_id, None)
        if span is None:
            return
        if error is not None and type(error).__name__ not in CONTROL_FLOW:
            span.set_status(Status(StatusCode.ERROR, str(error) or type(error).__name__))
            span.set_attribute("error.type", type(error).__qualname__)
        span.end()


def _here() -> tuple[RunTracer, UUID | None] | None:
    """The run tracer of the graph run this code is inside, and the LangChain run it is in."""
    config = var_child_runnable_config.get()
    manager = (config or {}).get("callbacks")
    if not isinstance(manager, BaseCallbackManager):
        return None
    tracers = [h for h in manager.handlers if isinstance(h, RunTracer)]
    if not tracers:
        return None
    return max(tracers, key=lambda t: t.level), manager.parent_run_id  # the innermost run's


def node_context() -> Any:
    """The context a span opened here belongs under (see the module's docstring)."""
    here = _here()
    return otel_context.get_current() if here is None else here[0].context_of(here[1])


def add_usage(prompt: int, completion: int) -> None:
    """Count one model call's tokens into the agent run this code is inside, if any."""
    here = _here()
    if here is not None:
        here[0].tokens[0] += prompt
        here[0].tokens[1] += completion


def _start(tracer: Tracer, name: str, config: Any) -> tuple[RunTracer, Any]:
    span = tracer.start_span(
        f"invoke_agent {name}",
        context=node_context(),
        attributes={"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": name},
    )
    enclosing = (var_child_runnable_config.get() or {}).get("metadata") or {}
    namespace = str(enclosing.get("langgraph_checkpoint_ns") or "")
    handler = RunTracer(tracer, span, namespace.count("|") + 1 if namespace else 0)
    config = dict(config or {})
    callbacks = config.get("callbacks")
    if isinstance(callbacks, BaseCallbackManager):
        callbacks = callbacks.copy()
        callbacks.add_handler(handler, inherit=True)
    else:
        callbacks = [*(callbacks or []), handler]
    config["callbacks"] = callbacks
    return handler, config


def _end(handler: RunTracer, error: BaseException | None, last: Any) -> None:
    span = handler.run_span
    span.set_attribute("gen_ai.usage.input_tokens", handler.tokens[0])
    span.set_attribute("gen_ai.usage.output_tokens", handler.tokens[1])
    status = _status(last)
    if status is not None:
        span.set_attribute("toolpath.status", status)
    if error is not None and type(error).__name__ not in CONTROL_FLOW:
        span.set_status(Status(StatusCode.ERROR, str(error) or type(error).__name__))
        span.set_attribute("error.type", type(error).__qualname__)
    span.end()


def _status(chunk: Any) -> str | None:
    """The run's ``status`` where the last streamed chunk shows it (values or updates)."""
    payload = chunk[-1] if isinstance(chunk, tuple) and chunk else chunk
    if not isinstance(payload, dict):
        return None
    if isinstance(payload.get("status"), str):
        return str(payload["status"])
    for update in payload.values():
        if isinstance(update, dict) and isinstance(update.get("status"), str):
            return str(update["status"])
    return None


def traced_run(tracer: Tracer, name: str, config: Any, run: Any) -> Iterator[Any]:
    """``run(config)``'s stream inside an ``invoke_agent NAME`` span."""
    handler, config = _start(tracer, name, config)
    last, error = None, None
    try:
        for last in run(config):
            yield last
    except BaseException as exc:
        error = exc
        raise
    finally:
        _end(handler, error, last)


async def atraced_run(tracer: Tracer, name: str, config: Any, run: Any) -> AsyncIterator[Any]:
    """Async :func:`traced_run`."""
    handler, config = _start(tracer, name, config)
    last, error = None, None
    try:
        async for last in run(config):
            yield last
    except BaseException as exc:
        error = exc
        raise
    finally:
        _end(handler, error, last)

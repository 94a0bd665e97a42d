"""What every toolpath agent graph shares: string input, the model argument, and streaming.

Every agent is a compiled LangGraph graph. :class:`AgentGraph` is LangGraph's own
``CompiledStateGraph`` with two conveniences: ``invoke``/``stream`` (and their async
twins) also accept a plain question string, which the agent turns into its input state;
and a run tells its nodes whether anyone reads token events (``configurable`` key
:data:`STREAM_TOKENS`). Only a run streamed in LangGraph's ``custom`` mode does, so the others
(``invoke``/``ainvoke`` included, as the eval harness runs episodes) ask the model for
whole replies, which costs the client less CPU than a token stream.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any

from langgraph.config import get_config, get_stream_writer
from langgraph.graph.state import CompiledStateGraph

from toolpath.llm.base import ChatModel, Completion, Message, collect

STREAM_TOKENS = "stream_tokens"
"""``configurable`` key: whether the model nodes stream tokens (default: only when the run is
streamed in ``custom`` mode; a caller may set it either way)."""


class AgentGraph(CompiledStateGraph):
    """A compiled LangGraph graph whose input may be a plain question string."""

    make_input: Callable[[str], dict[str, Any]]
    on_close: Callable[[], None] | None

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
        config = self._flag_tokens(config, kwargs)
        return super().stream(self._coerce(input), config, **kwargs)

    def astream(self, input: Any, config: Any = None, **kwargs: Any) -> AsyncIterator[Any]:
        config = self._flag_tokens(config, kwargs)
        return super().astream(self._coerce(input), config, **kwargs)


def finish(
    compiled: CompiledStateGraph,
    make_input: Callable[[str], dict[str, Any]],
    on_close: Callable[[], None] | None = None,
) -> AgentGraph:
    """Turn LangGraph's compiled graph into an :class:`AgentGraph` in place."""
    compiled.__class__ = AgentGraph
    assert isinstance(compiled, AgentGraph)
    compiled.make_input = make_input
    compiled.on_close = on_close
    return compiled


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


def model_record(node: str, c: Completion) -> dict[str, Any]:
    """A trace entry for one model call."""
    return {
        "node": node,
        "latency_s": c.latency_s,
        "prompt_tokens": c.usage.prompt_tokens,
        "completion_tokens": c.usage.completion_tokens,
    }

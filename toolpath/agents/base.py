"""What every toolpath agent graph shares: string input, and the model argument.

Every agent is a compiled LangGraph graph. :class:`AgentGraph` is LangGraph's own
``CompiledStateGraph`` with one convenience: ``invoke``/``stream`` (and their async
twins) also accept a plain string, which becomes the first user message.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

from langgraph.graph.state import CompiledStateGraph

from toolpath.llm.base import ChatModel, user


class AgentGraph(CompiledStateGraph):
    """A compiled LangGraph graph whose input may be a plain question string."""

    initial_state: dict[str, Any]

    def _coerce(self, input: Any) -> Any:
        if isinstance(input, str):
            return {**self.initial_state, "messages": [user(input)]}
        return input

    def stream(self, input: Any, config: Any = None, **kwargs: Any) -> Iterator[Any]:
        return super().stream(self._coerce(input), config, **kwargs)

    def astream(self, input: Any, config: Any = None, **kwargs: Any) -> AsyncIterator[Any]:
        return super().astream(self._coerce(input), config, **kwargs)


def finish(compiled: CompiledStateGraph, initial_state: dict[str, Any]) -> AgentGraph:
    """Turn LangGraph's compiled graph into an :class:`AgentGraph` in place."""
    compiled.__class__ = AgentGraph
    assert isinstance(compiled, AgentGraph)
    compiled.initial_state = initial_state
    return compiled


def as_model(model: ChatModel | str | None) -> ChatModel:
    """Accept a ChatModel or a model spec string (``None`` means the default local model)."""
    if model is None or isinstance(model, str):
        from toolpath.llm.specs import load_model

        return load_model(model or "local")
    return model

"""Agents: one builder per seed system, each returning a compiled LangGraph graph."""

from typing import TYPE_CHECKING

from toolpath.lazy import lazy_exports

_WHERE = {
    "AgentGraph": "toolpath.agents.base",
    "Status": "toolpath.agents.base",
    "TraceRecord": "toolpath.agents.base",
    "sqlite_checkpointer": "toolpath.agents.base",
}
__all__ = sorted(_WHERE)
__getattr__, __dir__ = lazy_exports(__name__, _WHERE)

if TYPE_CHECKING:
    from toolpath.agents.base import AgentGraph, Status, TraceRecord, sqlite_checkpointer

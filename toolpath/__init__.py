"""toolpath: LLM agents that use tools, each one a LangGraph graph.

The public API is small and imported lazily, so ``import toolpath`` stays fast:

- :func:`tool` turns a typed function into a :class:`Tool`;
- :func:`tool_agent` builds the single-model tool agent;
- :func:`math_agent` builds DotaMath, which writes and runs Python in a sandboxed kernel;
- :func:`load_model` turns a model spec (``"local"``, ``"openai:gpt-4o-mini"``, ...) into a ChatModel.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from toolpath.errors import ToolError, ToolpathError

__version__ = "0.1.0"

_LAZY = {
    "tool": "toolpath.tools.base",
    "Tool": "toolpath.tools.base",
    "tool_agent": "toolpath.agents.react",
    "math_agent": "toolpath.agents.math.dotamath",
    "costa_agent": "toolpath.agents.costa.agent",
    "web_agent": "toolpath.agents.web.agent",
    "load_model": "toolpath.llm.specs",
    "ChatModel": "toolpath.llm.base",
}

__all__ = [
    "ChatModel",
    "Tool",
    "ToolError",
    "ToolpathError",
    "costa_agent",
    "load_model",
    "math_agent",
    "tool",
    "tool_agent",
    "web_agent",
]

if TYPE_CHECKING:
    from toolpath.agents.costa.agent import costa_agent
    from toolpath.agents.math.dotamath import math_agent
    from toolpath.agents.react import tool_agent
    from toolpath.agents.web.agent import web_agent
    from toolpath.llm.base import ChatModel
    from toolpath.llm.specs import load_model
    from toolpath.tools.base import Tool, tool


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'toolpath' has no attribute {name!r}")

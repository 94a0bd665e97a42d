"""toolpath: LLM agents that use tools, each one a LangGraph graph.

The public API is imported lazily, so ``import toolpath`` stays fast (no langgraph, openai
or torch until a name is used). At the top level:

- models: :func:`load_model` turns a spec (``"local"``, ``"openai:gpt-4o-mini"``, ...) into a
  :class:`ChatModel`;
- tools: :func:`tool` turns a typed function into a :class:`Tool`; a failing tool raises
  :class:`ToolError`; :func:`load_catalog` reads many tools from a catalog file;
- agents, one builder per seed system, each taking ``model`` first and returning a compiled
  LangGraph graph: :func:`tool_agent` (single-model tool calling, sequential),
  :func:`one_step_agent` (TPTU's one-step planning: every call planned first), :func:`alpha_umi_agent`
  (α-UMi's planner, caller and summarizer), :func:`math_agent` (DotaMath), :func:`pot_agent`
  and :func:`cot_agent` (its baselines), :func:`costa_agent` (CoSTA*) and :func:`web_agent`
  (CompWoB, plan-then-act; :func:`web_react_agent` is its single-loop baseline);
  :func:`sqlite_checkpointer` makes their runs resumable by thread id;
- errors: every error toolpath raises derives from :class:`ToolpathError`.

Each area has its own package with a longer list: :mod:`toolpath.llm`, :mod:`toolpath.tools`,
:mod:`toolpath.retrieval`, :mod:`toolpath.agents`, :mod:`toolpath.evals`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from toolpath.lazy import lazy_exports

__version__ = "0.1.0"

_WHERE = {
    "ChatModel": "toolpath.llm",
    "load_model": "toolpath.llm",
    "Tool": "toolpath.tools",
    "tool": "toolpath.tools",
    "load_catalog": "toolpath.tools.catalog",
    "ToolError": "toolpath.errors",
    "ToolpathError": "toolpath.errors",
    "sqlite_checkpointer": "toolpath.agents",
    "tool_agent": "toolpath.agents",
    "alpha_umi_agent": "toolpath.agents",
    "math_agent": "toolpath.agents",
    "pot_agent": "toolpath.agents",
    "cot_agent": "toolpath.agents",
    "costa_agent": "toolpath.agents",
    "web_agent": "toolpath.agents",
    "web_react_agent": "toolpath.agents",
    "one_step_agent": "toolpath.agents",
}
"""Each name comes from its area's package, which knows the module that defines it."""
__all__ = sorted(_WHERE)
__getattr__, __dir__ = lazy_exports(__name__, _WHERE)

if TYPE_CHECKING:
    from toolpath.agents import alpha_umi_agent as alpha_umi_agent
    from toolpath.agents import costa_agent as costa_agent
    from toolpath.agents import cot_agent as cot_agent
    from toolpath.agents import math_agent as math_agent
    from toolpath.agents import one_step_agent as one_step_agent
    from toolpath.agents import pot_agent as pot_agent
    from toolpath.agents import sqlite_checkpointer as sqlite_checkpointer
    from toolpath.agents import tool_agent as tool_agent
    from toolpath.agents import web_agent as web_agent
    from toolpath.agents import web_react_agent as web_react_agent
    from toolpath.errors import ToolError as ToolError
    from toolpath.errors import ToolpathError as ToolpathError
    from toolpath.llm import ChatModel as ChatModel
    from toolpath.llm import load_model as load_model
    from toolpath.tools import Tool as Tool
    from toolpath.tools import tool as tool
    from toolpath.tools.catalog import load_catalog as load_catalog

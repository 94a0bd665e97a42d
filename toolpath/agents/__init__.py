"""Agents: one builder per seed system, each returning a compiled LangGraph graph.

Every builder follows the contract of :mod:`toolpath.agents.base`: ``model`` first, then the
system's own inputs, everything else keyword-only, ``checkpointer=`` always accepted; a run's
``status`` is a :data:`Status` and its ``trace`` a list of :class:`TraceRecord`; tool calls run
through :func:`execute_calls`. The builders: :func:`tool_agent` (here, in :mod:`.react`: sequential
planning) and :func:`one_step_agent` (in :mod:`.one_step`: TPTU's one-step planning), and
one subpackage per seed system: :mod:`.alpha_umi` (:func:`alpha_umi_agent`), :mod:`.math`
(:func:`math_agent`, :func:`pot_agent`, :func:`cot_agent`), :mod:`.costa`
(:func:`costa_agent`) and :mod:`.web` (:func:`web_agent`, :func:`web_react_agent`). :func:`decide` (in :mod:`.toolcall`)
asks a model for its next tool call, natively or as constrained JSON.
"""

from typing import TYPE_CHECKING

from toolpath.lazy import lazy_exports

_WHERE = {
    "AgentGraph": "toolpath.agents.base",
    "STREAM_TOKENS": "toolpath.agents.base",
    "Status": "toolpath.agents.base",
    "ToolOutcome": "toolpath.agents.base",
    "TraceRecord": "toolpath.agents.base",
    "aexecute_calls": "toolpath.agents.base",
    "as_model": "toolpath.agents.base",
    "execute_calls": "toolpath.agents.base",
    "finish": "toolpath.agents.base",
    "generate": "toolpath.agents.base",
    "model_record": "toolpath.agents.base",
    "sqlite_checkpointer": "toolpath.agents.base",
    "tokens": "toolpath.agents.base",
    "tool_record": "toolpath.agents.base",
    "Decision": "toolpath.agents.toolcall",
    "DecideOptions": "toolpath.agents.toolcall",
    "FIT_THRESHOLD": "toolpath.agents.fit",
    "adecide": "toolpath.agents.toolcall",
    "decide": "toolpath.agents.toolcall",
    "tool_agent": "toolpath.agents.react",
    "alpha_umi_agent": "toolpath.agents.alpha_umi.agent",
    "math_agent": "toolpath.agents.math.dotamath",
    "pot_agent": "toolpath.agents.math.baselines",
    "cot_agent": "toolpath.agents.math.baselines",
    "costa_agent": "toolpath.agents.costa.agent",
    "web_agent": "toolpath.agents.web.plan_act",
    "one_step_agent": "toolpath.agents.one_step",
    "web_react_agent": "toolpath.agents.web.agent",
}
__all__ = sorted(_WHERE)
__getattr__, __dir__ = lazy_exports(__name__, _WHERE)

if TYPE_CHECKING:
    from toolpath.agents.alpha_umi.agent import alpha_umi_agent as alpha_umi_agent
    from toolpath.agents.base import STREAM_TOKENS as STREAM_TOKENS
    from toolpath.agents.base import AgentGraph as AgentGraph
    from toolpath.agents.base import Status as Status
    from toolpath.agents.base import ToolOutcome as ToolOutcome
    from toolpath.agents.base import TraceRecord as TraceRecord
    from toolpath.agents.base import aexecute_calls as aexecute_calls
    from toolpath.agents.base import as_model as as_model
    from toolpath.agents.base import execute_calls as execute_calls
    from toolpath.agents.base import finish as finish
    from toolpath.agents.base import generate as generate
    from toolpath.agents.base import model_record as model_record
    from toolpath.agents.base import sqlite_checkpointer as sqlite_checkpointer
    from toolpath.agents.base import tokens as tokens
    from toolpath.agents.base import tool_record as tool_record
    from toolpath.agents.costa.agent import costa_agent as costa_agent
    from toolpath.agents.fit import FIT_THRESHOLD as FIT_THRESHOLD
    from toolpath.agents.math.baselines import cot_agent as cot_agent
    from toolpath.agents.math.baselines import pot_agent as pot_agent
    from toolpath.agents.math.dotamath import math_agent as math_agent
    from toolpath.agents.one_step import one_step_agent as one_step_agent
    from toolpath.agents.react import tool_agent as tool_agent
    from toolpath.agents.toolcall import DecideOptions as DecideOptions
    from toolpath.agents.toolcall import Decision as Decision
    from toolpath.agents.toolcall import adecide as adecide
    from toolpath.agents.toolcall import decide as decide
    from toolpath.agents.web.agent import web_react_agent as web_react_agent
    from toolpath.agents.web.plan_act import web_agent as web_agent

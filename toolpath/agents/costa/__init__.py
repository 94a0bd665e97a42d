"""CoSTA*: an LLM builds a subtask tree, cost-sensitive A* picks the tools, each step is verified.

:func:`costa_agent` is the graph; a tool domain plugs in through the :class:`Domain` protocol
(:class:`ImageDomain` is the image-editing one; :class:`ToolDomain` builds one from typed
functions or a YAML/JSON spec, with programmatic or :class:`LLMVerifier` checks). The search (:func:`astar` and the baselines
:func:`uniform_cost`, :func:`exhaustive`, :func:`greedy`) and the learned :class:`CostTable`
know nothing about images.
"""

from typing import TYPE_CHECKING

from toolpath.lazy import lazy_exports

_WHERE = {
    "Domain": "toolpath.agents.costa.agent",
    "SEARCHES": "toolpath.agents.costa.agent",
    "costa_agent": "toolpath.agents.costa.agent",
    "named_domain": "toolpath.agents.costa.agent",
    "tabular_domain": "toolpath.agents.costa.tabular",
    "subtask_tree": "toolpath.agents.costa.agent",
    "ImageDomain": "toolpath.agents.costa.image",
    "SubtaskType": "toolpath.agents.costa.domain",
    "ToolDomain": "toolpath.agents.costa.domain",
    "Verdict": "toolpath.agents.costa.domain",
    "costa_tool": "toolpath.agents.costa.domain",
    "LLMVerifier": "toolpath.agents.costa.verifiers",
    "execute_plan": "toolpath.agents.costa.plan",
    "SearchResult": "toolpath.agents.costa.search",
    "Step": "toolpath.agents.costa.search",
    "Subtask": "toolpath.agents.costa.search",
    "SubtaskTree": "toolpath.agents.costa.search",
    "ToolInfo": "toolpath.agents.costa.search",
    "astar": "toolpath.agents.costa.search",
    "exhaustive": "toolpath.agents.costa.search",
    "greedy": "toolpath.agents.costa.search",
    "path_cost": "toolpath.agents.costa.search",
    "uniform_cost": "toolpath.agents.costa.search",
    "CostTable": "toolpath.agents.costa.table",
}
__all__ = sorted(_WHERE)
__getattr__, __dir__ = lazy_exports(__name__, _WHERE)

if TYPE_CHECKING:
    from toolpath.agents.costa.agent import SEARCHES as SEARCHES
    from toolpath.agents.costa.agent import Domain as Domain
    from toolpath.agents.costa.agent import costa_agent as costa_agent
    from toolpath.agents.costa.agent import named_domain as named_domain
    from toolpath.agents.costa.agent import subtask_tree as subtask_tree
    from toolpath.agents.costa.domain import SubtaskType as SubtaskType
    from toolpath.agents.costa.domain import ToolDomain as ToolDomain
    from toolpath.agents.costa.domain import Verdict as Verdict
    from toolpath.agents.costa.domain import costa_tool as costa_tool
    from toolpath.agents.costa.image import ImageDomain as ImageDomain
    from toolpath.agents.costa.plan import execute_plan as execute_plan
    from toolpath.agents.costa.search import SearchResult as SearchResult
    from toolpath.agents.costa.search import Step as Step
    from toolpath.agents.costa.search import Subtask as Subtask
    from toolpath.agents.costa.search import SubtaskTree as SubtaskTree
    from toolpath.agents.costa.search import ToolInfo as ToolInfo
    from toolpath.agents.costa.search import astar as astar
    from toolpath.agents.costa.search import exhaustive as exhaustive
    from toolpath.agents.costa.search import greedy as greedy
    from toolpath.agents.costa.search import path_cost as path_cost
    from toolpath.agents.costa.search import uniform_cost as uniform_cost
    from toolpath.agents.costa.table import CostTable as CostTable
    from toolpath.agents.costa.tabular import tabular_domain as tabular_domain
    from toolpath.agents.costa.verifiers import LLMVerifier as LLMVerifier

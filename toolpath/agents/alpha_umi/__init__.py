"""α-UMi: a planner, a caller and a summarizer, each on its own model (:func:`alpha_umi_agent`).

The GLPFT conversation format, the role prompts and the ``Next:``/``Action:`` parsers live in
:mod:`.format`, the one place the agent, the static evaluation and the SFT export share.
"""

from typing import TYPE_CHECKING

from toolpath.lazy import lazy_exports

_WHERE = {
    "alpha_umi_agent": "toolpath.agents.alpha_umi.agent",
    "ROLES": "toolpath.agents.alpha_umi.format",
    "Turn": "toolpath.agents.alpha_umi.format",
    "format_action": "toolpath.agents.alpha_umi.format",
    "parse_action": "toolpath.agents.alpha_umi.format",
    "parse_next": "toolpath.agents.alpha_umi.format",
    "render_tools": "toolpath.agents.alpha_umi.format",
    "role_prompt": "toolpath.agents.alpha_umi.format",
}
__all__ = sorted(_WHERE)
__getattr__, __dir__ = lazy_exports(__name__, _WHERE)

if TYPE_CHECKING:
    from toolpath.agents.alpha_umi.agent import alpha_umi_agent as alpha_umi_agent
    from toolpath.agents.alpha_umi.format import ROLES as ROLES
    from toolpath.agents.alpha_umi.format import Turn as Turn
    from toolpath.agents.alpha_umi.format import format_action as format_action
    from toolpath.agents.alpha_umi.format import parse_action as parse_action
    from toolpath.agents.alpha_umi.format import parse_next as parse_next
    from toolpath.agents.alpha_umi.format import render_tools as render_tools
    from toolpath.agents.alpha_umi.format import role_prompt as role_prompt

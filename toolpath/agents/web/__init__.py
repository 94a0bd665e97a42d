"""CompWoB's web agent (:func:`web_agent`): it splits a compositional instruction into ordered
subtasks (:func:`split_instruction`) and acts on the page one tool call at a time."""

from typing import TYPE_CHECKING

from toolpath.lazy import lazy_exports

_WHERE = {
    "WebState": "toolpath.agents.web.agent",
    "split_instruction": "toolpath.agents.web.agent",
    "web_agent": "toolpath.agents.web.agent",
}
__all__ = sorted(_WHERE)
__getattr__, __dir__ = lazy_exports(__name__, _WHERE)

if TYPE_CHECKING:
    from toolpath.agents.web.agent import WebState as WebState
    from toolpath.agents.web.agent import split_instruction as split_instruction
    from toolpath.agents.web.agent import web_agent as web_agent

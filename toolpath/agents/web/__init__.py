"""CompWoB's web agents. :func:`web_agent` (plan-then-act, the default) works on one subtask
at a time, in the order :func:`split_instruction` reads from the instruction, with guards
against submitting early, skipping ahead and repeating; :func:`web_react_agent`, a single
loop over the whole task, is its baseline. Both act on the page one tool call at a time."""

from typing import TYPE_CHECKING

from toolpath.lazy import lazy_exports

_WHERE = {
    "WebState": "toolpath.agents.web.agent",
    "split_instruction": "toolpath.agents.web.agent",
    "web_agent": "toolpath.agents.web.plan_act",
    "web_react_agent": "toolpath.agents.web.agent",
}
__all__ = sorted(_WHERE)
__getattr__, __dir__ = lazy_exports(__name__, _WHERE)

if TYPE_CHECKING:
    from toolpath.agents.web.agent import WebState as WebState
    from toolpath.agents.web.agent import split_instruction as split_instruction
    from toolpath.agents.web.agent import web_react_agent as web_react_agent
    from toolpath.agents.web.plan_act import web_agent as web_agent

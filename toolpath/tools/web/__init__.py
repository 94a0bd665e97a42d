"""CompWoB's browser as tools: one headless chromium (:class:`Browser`) serving task pages
(:class:`TaskSite`) to episodes (:class:`WebEnv`, shared by a :class:`WebPool`), the compact
:class:`Observation` of a page, and the page actions as tools (:func:`action_tools`)."""

from typing import TYPE_CHECKING

from toolpath.lazy import lazy_exports

_WHERE = {
    "Browser": "toolpath.tools.web.browser",
    "TaskSite": "toolpath.tools.web.browser",
    "WebEnv": "toolpath.tools.web.browser",
    "WebPool": "toolpath.tools.web.browser",
    "is_allowed": "toolpath.tools.web.browser",
    "Element": "toolpath.tools.web.observation",
    "EpisodeStatus": "toolpath.tools.web.observation",
    "Observation": "toolpath.tools.web.observation",
    "Page": "toolpath.tools.web.observation",
    "action_tools": "toolpath.tools.web.observation",
}
__all__ = sorted(_WHERE)
__getattr__, __dir__ = lazy_exports(__name__, _WHERE)

if TYPE_CHECKING:
    from toolpath.tools.web.browser import Browser as Browser
    from toolpath.tools.web.browser import TaskSite as TaskSite
    from toolpath.tools.web.browser import WebEnv as WebEnv
    from toolpath.tools.web.browser import WebPool as WebPool
    from toolpath.tools.web.browser import is_allowed as is_allowed
    from toolpath.tools.web.observation import Element as Element
    from toolpath.tools.web.observation import EpisodeStatus as EpisodeStatus
    from toolpath.tools.web.observation import Observation as Observation
    from toolpath.tools.web.observation import Page as Page
    from toolpath.tools.web.observation import action_tools as action_tools

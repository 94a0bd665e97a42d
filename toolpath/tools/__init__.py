"""Tools agents can call: the :class:`Tool` type, the :func:`tool` decorator, and built-ins.

``get_tools(["calculator"])`` looks built-in tools up by name (the CLI's ``--tools``). The
tool families live in subpackages: :mod:`toolpath.tools.code` (the sandboxed Python kernel),
:mod:`toolpath.tools.catalog` (many tools from catalog files), :mod:`toolpath.tools.image`
(CoSTA*'s image operations) and :mod:`toolpath.tools.web` (the browser and its actions).

Unlike the other packages, this one imports its names eagerly: the built-in ``calculator``
tool has the name of its module, and only an eager import keeps ``toolpath.tools.calculator``
the tool rather than the module. It costs only pydantic (``toolpath.tools.base``).
"""

from __future__ import annotations

from collections.abc import Sequence

from toolpath.errors import ConfigError
from toolpath.tools.base import Tool, as_tools, coerce, tool
from toolpath.tools.calculator import calculator
from toolpath.tools.render import render_tools

BUILTIN_TOOLS: dict[str, Tool] = {"calculator": calculator}
"""Built-in tools by name."""


def get_tools(names: Sequence[str]) -> list[Tool]:
    """The built-in tools with these names, in order (repeats dropped).

    An unknown name raises :class:`~toolpath.errors.ConfigError` listing the available tools.
    """
    out: dict[str, Tool] = {}
    for name in (n.strip() for n in names):
        if name not in BUILTIN_TOOLS:
            available = ", ".join(sorted(BUILTIN_TOOLS)) or "none"
            raise ConfigError(f"unknown tool {name!r}; available tools: {available}")
        out.setdefault(name, BUILTIN_TOOLS[name])
    return list(out.values())


__all__ = [
    "BUILTIN_TOOLS",
    "Tool",
    "as_tools",
    "calculator",
    "coerce",
    "get_tools",
    "render_tools",
    "tool",
]

"""The :class:`Catalog` type, and what every catalog reader shares: adding an entry or
recording why it was skipped, one summary warning, and the checks for YAML input."""

from __future__ import annotations

import contextlib
import gc
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from toolpath.tools.base import Tool

log = logging.getLogger("toolpath.tools.catalog.formats")

MAX_YAML_VALUES = 5_000_000
"""The most values a YAML catalog may expand to (aliases counted each time they appear)."""
_MAX_WARNINGS = 20
_MAX_LISTED = 10


@dataclass
class Catalog:
    """Tools loaded from one source, the entries that were skipped with the reason why, and
    the tools whose names were sanitized (``renamed``: tool name -> the name the entry gave)."""

    tools: list[Tool]
    skipped: list[tuple[str, str]] = field(default_factory=list)
    source: str = ""
    renamed: dict[str, str] = field(default_factory=dict)
    _index: dict[str, Tool] = field(default_factory=dict, init=False, repr=False, compare=False)
    _indexed: tuple[int, int] = field(default=(0, 0), init=False, repr=False, compare=False)

    def __iter__(self) -> Iterator[Tool]:
        return iter(self.tools)

    def __len__(self) -> int:
        return len(self.tools)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._find(name) is not None

    def by_name(self, name: str) -> Tool:
        """The tool called ``name``, or renamed from it (a KeyError naming the catalog if none)."""
        found = self._find(name)
        if found is None:
            raise KeyError(f"no tool named {name!r} in the catalog {self.source or '(unnamed)'}")
        return found

    def original_name(self, name: str) -> str:
        """The name the catalog entry gave the tool now called ``name`` (``name`` itself unless
        it was sanitized): map a model's call back to the catalog's own name with this."""
        return self.renamed.get(name, name)

    def specs(self) -> list[Any]:
        """The tools in the OpenAI ``tools=`` format."""
        return [t.spec() for t in self.tools]

    def _lookup(self, name: str) -> Tool | None:
        if self._indexed != (id(self.tools), len(self.tools)):  # the list was replaced or resized
            self._index = {t.name: t for t in self.tools}
            self._indexed = (id(self.tools), len(self.tools))
        return self._index.get(name)

    def _find(self, name: str) -> Tool | None:
        found = self._lookup(name)
        if found is None and name in self.renamed.values():
            sanitized = next(k for k, v in self.renamed.items() if v == name)
            found = self._lookup(sanitized)
        return found


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while building many small objects (2-3x faster)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def add_entry(
    catalog: Catalog, label: str, result: Tool | str, original: str | None = None
) -> None:
    """Add a tool, or record why an entry was skipped; exact repeats are dropped quietly, and
    two different names that sanitize to the same one are a clash, reported, never merged."""
    if isinstance(result, Tool) and (first := catalog._lookup(result.name)) is not None:
        before, now = catalog.original_name(first.name), original or result.name
        if before != now:
            result = (
                f"name clash: {now!r} and {before!r} both become the tool name "
                f"'{result.name}'; the first one is kept, rename one of them"
            )
        elif (first.description, first.parameters) == (result.description, result.parameters):
            return  # e.g. ToolBench query files list the same API in many queries
        else:
            result = (
                f"duplicate tool name '{result.name}' (a different tool); the first one is kept"
            )
    if isinstance(result, Tool):
        catalog.tools.append(result)
        catalog._index[result.name] = result  # the lookup above left the index fresh
        catalog._indexed = (id(catalog.tools), len(catalog.tools))
        if original is not None and original != result.name:
            catalog.renamed[result.name] = original
        return
    catalog.skipped.append((label, result))
    if len(catalog.skipped) <= _MAX_WARNINGS:
        log.warning("catalog %s: skipped %s: %s", catalog.source, label, result)


def summarize(catalog: Catalog) -> None:
    if catalog.renamed:
        pairs = [f"{v!r} -> {k!r}" for k, v in list(catalog.renamed.items())[:_MAX_LISTED]]
        more = len(catalog.renamed) - len(pairs)
        log.warning(
            "catalog %s: renamed %d tool(s) whose names OpenAI rejects (1-64 of A-Z a-z 0-9 _ -)"
            ": %s%s; calls map back through Catalog.renamed",
            catalog.source,
            len(catalog.renamed),
            ", ".join(pairs),
            f" and {more} more" if more > 0 else "",
        )
    if len(catalog.skipped) > _MAX_WARNINGS:
        log.warning(
            "catalog %s: %d entries skipped in all (see Catalog.skipped)",
            catalog.source,
            len(catalog.skipped),
        )


def expanded_size(data: Any) -> int | None:
    """How many values ``data`` holds once shared parts (YAML aliases) are counted each time
    they appear; None if it contains itself. Each container is visited once."""
    sizes: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[Any, bool]] = [(data, False)]
    while stack:
        node, done = stack.pop()
        if not isinstance(node, dict | list):
            continue
        kids = list(node.values() if isinstance(node, dict) else node)
        if done:
            on_path.discard(id(node))
            sizes[id(node)] = 1 + sum(sizes.get(id(k), 1) for k in kids)
        elif id(node) in on_path:
            return None
        elif id(node) not in sizes:
            on_path.add(id(node))
            stack.append((node, True))
            stack += [(k, False) for k in kids if isinstance(k, dict | list)]
    return sizes.get(id(data), 1)


def yaml_scalar(value: Any) -> Any:
    """The JSON form of a YAML value JSON lacks: a date, a set or binary data."""
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, set | frozenset):
        return sorted(value, key=repr)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    raise TypeError(f"a YAML {type(value).__name__}")

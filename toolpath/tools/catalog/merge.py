"""Several catalog sources as one catalog: :func:`load_catalogs`."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from toolpath.tools.catalog.formats import Catalog, load_catalog
from toolpath.tools.catalog.schema import sanitize_name


def load_catalogs(sources: Sequence[str]) -> Catalog:
    """The tools of every source in ``sources``, in order, as one :class:`Catalog`.

    A tool name that two sources both use is prefixed, in every source that uses it, with
    the source's label: an MCP server's own name, else the file or module's name
    (``time_now`` and ``clock_now`` for two servers' ``now``). :attr:`Catalog.renamed` maps a
    prefixed name back to the name its source gave. One source gives its catalog unchanged.
    """
    catalogs = [load_catalog(s) for s in sources]
    if len(catalogs) == 1:
        return catalogs[0]
    counts = Counter(name for c in catalogs for name in {t.name for t in c.tools})
    merged = Catalog([], [], " + ".join(c.source for c in catalogs))
    for catalog in catalogs:
        label = sanitize_name(source_label(catalog.source))
        merged.skipped += catalog.skipped
        for tool in catalog.tools:
            original = catalog.original_name(tool.name)
            if counts[tool.name] > 1:
                tool = dataclasses.replace(tool, name=sanitize_name(f"{label}_{tool.name}"))
            if tool.name in merged:
                merged.skipped.append((tool.name, f"name clash after prefixing, from {label}"))
                continue
            merged.tools.append(tool)
            if original != tool.name:
                merged.renamed[tool.name] = original
    return merged


def source_label(source: str) -> str:
    """A short name for a catalog source: an MCP server's own name, else its file's stem."""
    from toolpath.tools.catalog.mcp import is_mcp_source, mcp_connection

    text = source.strip()
    if is_mcp_source(text):
        server = mcp_connection(text)
        if server.name:
            return server.name
        text = text.split("://", 1)[-1].split()[-1] if "://" in text else text.split()[-1]
    text = text.removeprefix("module:").removeprefix("openapi:").split(";", 1)[0]
    return Path(text.rstrip("/")).stem.split(".")[-1] or "source"

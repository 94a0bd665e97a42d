"""Tool catalogs: many tools at once, read from toolpath's own files, OpenAI tool lists,
ToolBench/GLPFT files, Python modules, MCP servers and OpenAPI specs (see :mod:`.formats`);
:func:`load_catalogs` joins several."""

from typing import TYPE_CHECKING

from toolpath.lazy import lazy_exports

_WHERE = {
    "FORMATS": "toolpath.tools.catalog.formats",
    "Catalog": "toolpath.tools.catalog.core",
    "load_catalog": "toolpath.tools.catalog.formats",
    "load_catalogs": "toolpath.tools.catalog.merge",
    "McpServer": "toolpath.tools.catalog.mcp",
    "McpText": "toolpath.tools.catalog.mcp",
    "mcp_catalog": "toolpath.tools.catalog.mcp",
    "mcp_connection": "toolpath.tools.catalog.mcp",
    "openapi_catalog": "toolpath.tools.catalog.openapi",
    "write_catalog": "toolpath.tools.catalog.formats",
    "described_only": "toolpath.tools.catalog.schema",
    "sanitize_name": "toolpath.tools.catalog.schema",
}
__all__ = sorted(_WHERE)
__getattr__, __dir__ = lazy_exports(__name__, _WHERE)

if TYPE_CHECKING:
    from toolpath.tools.catalog.core import Catalog as Catalog
    from toolpath.tools.catalog.formats import FORMATS as FORMATS
    from toolpath.tools.catalog.formats import load_catalog as load_catalog
    from toolpath.tools.catalog.formats import write_catalog as write_catalog
    from toolpath.tools.catalog.mcp import McpServer as McpServer
    from toolpath.tools.catalog.mcp import McpText as McpText
    from toolpath.tools.catalog.mcp import mcp_catalog as mcp_catalog
    from toolpath.tools.catalog.mcp import mcp_connection as mcp_connection
    from toolpath.tools.catalog.merge import load_catalogs as load_catalogs
    from toolpath.tools.catalog.openapi import openapi_catalog as openapi_catalog
    from toolpath.tools.catalog.schema import described_only as described_only
    from toolpath.tools.catalog.schema import sanitize_name as sanitize_name

"""``toolpath tools list``: the tools of any catalog source, and an MCP server's resources and
prompts."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from toolpath.cli.common import group, out

CatalogsOpt = Annotated[
    list[str],
    typer.Option(
        "--catalog",
        "-c",
        help="A catalog source; repeat for several. A file (toolpath/OpenAI/ToolBench JSON or "
        "YAML, .py), module:NAME, mcp:COMMAND ARGS (a stdio MCP server), mcp+http://HOST/PATH "
        "(a Streamable HTTP MCP server) or openapi:PATH_OR_URL (an OpenAPI 3 spec).",
    ),
]


def register(app: typer.Typer, eval_app: typer.Typer) -> None:
    """Add the ``toolpath tools`` group."""
    app.add_typer(group("Inspect tool catalogs.", {"list": tools_list}), name="tools")


def tools_list(
    catalog: CatalogsOpt,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the tools as OpenAI tool specs (JSON).")
    ] = False,
) -> None:
    """Print the tools of the catalogs: name, description and source.

    Each tool gets its name, a one-line description and where it comes from. Tools that two sources both name get the source's name as a prefix. For MCP servers the
    resources and prompts they offer are listed too (not with --json). Skipped entries are
    counted on stderr, with the reason for the first few.
    """
    from rich.table import Table

    from toolpath.tools.catalog import load_catalogs

    loaded = load_catalogs(catalog)
    if as_json:
        out.print_json(json.dumps(loaded.specs(), ensure_ascii=False))
        return
    table = Table("name", "description", "from", title=f"{len(loaded)} tools")
    table.columns[1].overflow = "fold"
    for t in loaded.tools:
        where = t.context or loaded.source
        table.add_row(t.name, _line(t.description), where)
    out.print(table)
    for source in catalog:
        _mcp_extras(source)
    if loaded.skipped:
        from toolpath.cli.common import err

        err.print(f"[yellow]{len(loaded.skipped)} entries skipped[/]")
        for label, why in loaded.skipped[:5]:
            err.print(f"  {label}: {why}", markup=False)


def _line(text: str, width: int = 100) -> str:
    first = (text or "").strip().splitlines()[0] if (text or "").strip() else ""
    return first if len(first) <= width else first[: width - 1] + "…"


def _mcp_extras(source: str) -> None:
    """The resources and prompts of an MCP source, as two small tables (none: nothing)."""
    from rich.table import Table

    from toolpath.tools.catalog.mcp import is_mcp_source, mcp_connection

    if not is_mcp_source(source):
        return
    server = mcp_connection(source)
    resources: list[Any] = server.resources()
    prompts: list[Any] = server.prompts()
    label = server.name or server.source
    if resources:
        table = Table("uri", "name", "description", title=f"{label}: resources")
        for r in resources:
            table.add_row(str(r.uri), r.name, _line(r.description or ""))
        out.print(table)
    if prompts:
        table = Table("name", "arguments", "description", title=f"{label}: prompts")
        for p in prompts:
            args = ", ".join(a.name + ("" if a.required else "?") for a in p.arguments or [])
            table.add_row(p.name, args, _line(p.description or ""))
        out.print(table)

"""Tools from Model Context Protocol servers, on the official ``mcp`` SDK (extra ``mcp``).

A catalog source names the server:

- ``mcp:COMMAND ARGS...`` starts a stdio server (``mcp:python -m mcp_server_time``);
- ``mcp+http://HOST/PATH`` (or ``mcp+https://``) reaches a Streamable HTTP server.

:func:`mcp_catalog` turns every tool the server lists into a :class:`~toolpath.tools.base.Tool`
with the server's input schema; calling it sends ``tools/call`` to the server. A result comes
back as :class:`McpText`: its text (the structured content as JSON when there is no text),
with the structured content and any images or audio kept beside it as attachments.

Connections (:class:`McpServer`, one per source, from :func:`connect`) start at first use,
are shared within the process and close at exit. They live on one background event loop,
so tools work the same from sync code, from any event loop and from worker threads. A server
that dies is restarted once and the call retried; after that its tools fail with a
:class:`~toolpath.errors.ToolError` that says so, with the end of the server's stderr.
"""

from __future__ import annotations

import asyncio
import atexit
import base64
import contextlib
import json
import shlex
import tempfile
import threading
from collections.abc import Coroutine
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, TypeVar

from toolpath.errors import CatalogError, MissingDependencyError, ToolError, ToolSchemaError
from toolpath.tools.base import Tool
from toolpath.tools.catalog.core import Catalog, add_entry, summarize
from toolpath.tools.catalog.schema import check_schema, sanitize_name

T = TypeVar("T")
MCP_TIMEOUT = 60.0
"""Seconds a tool call may take unless told otherwise."""
START_TIMEOUT = 60.0
"""Seconds a server may take to start and answer the handshake."""
PREFIXES = ("mcp:", "mcp+http://", "mcp+https://")


def is_mcp_source(source: str) -> bool:
    """Whether a catalog source names an MCP server."""
    return source.strip().startswith(PREFIXES)


@dataclass(frozen=True)
class Attachment:
    """Non-text content of a tool result: an image or audio clip (base64 ``data``), or a
    resource the server linked or embedded."""

    kind: str
    mime_type: str = ""
    data: str = ""
    uri: str = ""

    def raw(self) -> bytes:
        """The decoded bytes of ``data``."""
        return base64.b64decode(self.data)


class McpText(str):
    """A tool result's text; ``structured`` and ``attachments`` carry what text cannot."""

    structured: Any = None
    attachments: tuple[Attachment, ...] = ()

    @classmethod
    def of(cls, result: Any) -> McpText:
        """The text, structured content and attachments of an MCP ``CallToolResult``."""
        parts: list[str] = []
        found: list[Attachment] = []
        for block in result.content or []:
            kind = getattr(block, "type", "")
            if kind == "text":
                parts.append(block.text)
            elif kind in ("image", "audio"):
                found.append(Attachment(kind, block.mime_type, block.data))
                parts.append(f"[{kind} attached: {block.mime_type}]")
            elif kind == "resource_link":
                found.append(Attachment("resource", block.mime_type or "", uri=str(block.uri)))
                parts.append(f"[resource: {block.uri}]")
            elif kind == "resource":
                res = block.resource
                text = getattr(res, "text", None)
                found.append(Attachment("resource", res.mime_type or "", uri=str(res.uri)))
                parts.append(text if text is not None else f"[resource: {res.uri}]")
        structured = result.structured_content
        if structured is not None and not any(p.strip() for p in parts):
            parts = [json.dumps(structured, ensure_ascii=False)]
        out = cls("\n".join(parts))
        out.structured, out.attachments = structured, tuple(found)
        return out


class _Loop:
    """The background event loop every MCP connection of the process lives on."""

    _lock = threading.Lock()
    _loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def get(cls) -> asyncio.AbstractEventLoop:
        with cls._lock:
            if cls._loop is None or cls._loop.is_closed():
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, name="toolpath-mcp", daemon=True).start()
                cls._loop = loop
            return cls._loop

    @classmethod
    def submit(cls, coro: Coroutine[Any, Any, T]) -> Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, cls.get())


_SERVERS: dict[str, McpServer] = {}
_SERVERS_LOCK = threading.Lock()


def mcp_connection(source: str, *, timeout: float = MCP_TIMEOUT) -> McpServer:
    """The process's shared connection to the server ``source`` names (not started yet)."""
    key = source.strip()
    with _SERVERS_LOCK:
        if key not in _SERVERS:
            _SERVERS[key] = McpServer(key, timeout=timeout)
        return _SERVERS[key]


@atexit.register
def close_all() -> None:
    """Close every MCP connection of the process (run at exit)."""
    with _SERVERS_LOCK:
        servers = list(_SERVERS.values())
        _SERVERS.clear()
    for server in servers:
        server.close()


class McpServer:
    """One MCP server, started at first use; every method may be called from any thread.

    The sync methods block; the ``a``-prefixed ones await from any event loop.
    """

    def __init__(self, source: str, *, timeout: float = MCP_TIMEOUT) -> None:
        self.source = source.strip()
        self.timeout = timeout
        self.restarts = 0
        self.name = ""
        """The server's own name (from its handshake), known once it has started."""
        self._target = _target(self.source)
        self._client: Any = None
        self._holder: asyncio.Task[None] | None = None
        self._stop: asyncio.Event | None = None
        self._starting: asyncio.Lock | None = None
        self._stderr = tempfile.TemporaryFile(  # noqa: SIM115 - open while the server lives
            "w+", encoding="utf-8", errors="replace"
        )
        self._dead: str | None = None

    def __repr__(self) -> str:
        return f"McpServer({self.source!r})"

    # -- the calls ------------------------------------------------------------------------------

    def call(self, name: str, arguments: dict[str, Any], timeout: float | None = None) -> McpText:
        """Call the tool ``name``; raise :class:`ToolError` on a tool error or a dead server."""
        return _Loop.submit(self._call(name, arguments, timeout)).result()

    async def acall(
        self, name: str, arguments: dict[str, Any], timeout: float | None = None
    ) -> McpText:
        """:meth:`call` without blocking the caller's event loop."""
        return await asyncio.wrap_future(_Loop.submit(self._call(name, arguments, timeout)))

    def tools(self) -> list[Any]:
        """Every tool the server lists (the SDK's ``Tool`` objects), all pages."""
        return self._run(self._pages("list_tools", "tools"))

    def resources(self) -> list[Any]:
        """Every resource the server lists."""
        return self._run(self._pages("list_resources", "resources", "resources"))

    def read_resource(self, uri: str) -> str:
        """The text of the resource at ``uri`` (binary parts as a note of their size)."""
        result = self._run(self._request("read_resource", uri))
        parts = []
        for c in result.contents:
            text = getattr(c, "text", None)
            blob = getattr(c, "blob", "") or ""
            parts.append(text if text is not None else f"[{len(blob) * 3 // 4} bytes]")
        return "\n".join(parts)

    def prompts(self) -> list[Any]:
        """Every prompt the server lists."""
        return self._run(self._pages("list_prompts", "prompts", "prompts"))

    def get_prompt(
        self, name: str, arguments: dict[str, str] | None = None
    ) -> list[dict[str, str]]:
        """The prompt ``name`` filled with ``arguments``, as chat messages."""
        result = self._run(self._request("get_prompt", name, arguments or {}))
        return [
            {"role": m.role, "content": getattr(m.content, "text", "") or ""}
            for m in result.messages
        ]

    def close(self) -> None:
        """Stop the server (a later call starts it again)."""
        if self._holder is not None and _Loop._loop is not None and not _Loop._loop.is_closed():
            with contextlib.suppress(Exception):  # closing at exit must not raise
                _Loop.submit(self._shutdown()).result(timeout=10)

    # -- inside the background loop -------------------------------------------------------------

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return _Loop.submit(coro).result()

    async def _call(self, name: str, arguments: dict[str, Any], timeout: float | None) -> McpText:
        limit = self.timeout if timeout is None else timeout
        try:
            result = await self._request("call_tool", name, arguments, timeout=limit)
        except TimeoutError:
            raise ToolError(
                f"{name} timed out after {limit:g}s (MCP server {self.source})"
            ) from None
        text = McpText.of(result)
        if result.is_error:
            raise ToolError(f"{name} failed: {text.strip() or 'the server gave no reason'}")
        return text

    async def _pages(self, method: str, field: str, capability: str = "") -> list[Any]:
        """Every page of a listing; none when the server lacks the ``capability``."""
        client = await self._started()
        if capability and getattr(client.server_capabilities, capability, None) is None:
            return []
        out: list[Any] = []
        cursor = None
        for _ in range(1000):
            page = await self._request(method, cursor=cursor)
            out += getattr(page, field)
            cursor = page.next_cursor
            if not cursor:
                break
        return out

    async def _request(
        self, method: str, *args: Any, timeout: float | None = None, **kw: Any
    ) -> Any:
        """One request. A connection that closed is restarted once (see :meth:`_died`); a
        listing or a read is then sent again, but a tool call is not: it may have run."""
        import anyio
        from mcp.shared.exceptions import MCPError
        from mcp_types import CONNECTION_CLOSED

        for attempt in (0, 1):
            client = await self._started()
            try:
                async with asyncio.timeout(timeout):
                    return await getattr(client, method)(*args, **kw)
            except TimeoutError:  # an OSError, but not a closed connection
                raise
            except MCPError as exc:
                if exc.code != CONNECTION_CLOSED:
                    raise ToolError(f"MCP server {self.source}: {exc.error.message}") from None
            except (OSError, EOFError, anyio.ClosedResourceError, anyio.BrokenResourceError):
                pass
            await self._died()
            if method == "call_tool" or attempt:
                what = f"the call to {args[0]}" if method == "call_tool" else method
                raise ToolError(
                    f"MCP server {self.source} stopped during {what}; it was restarted, so "
                    "the call can be made again"
                )
        raise AssertionError("unreachable")

    async def _died(self) -> None:
        """The connection closed: restart the first time, give up (raising) the second."""
        await self._shutdown()
        if self.restarts >= 1:
            self._dead = "it stopped again after one restart"
            raise ToolError(self._death_note())
        self.restarts += 1

    async def _started(self) -> Any:
        if self._dead is not None:
            raise ToolError(self._death_note())
        if self._starting is None:
            self._starting = asyncio.Lock()
        async with self._starting:
            if self._holder is not None and self._holder.done():
                await self._died()  # the connection ended by itself
            if self._client is not None:
                return self._client
            ready: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            self._stop = asyncio.Event()
            self._holder = asyncio.create_task(self._hold(ready, self._stop))
            try:
                async with asyncio.timeout(START_TIMEOUT):
                    self._client = await asyncio.shield(ready)
            except TimeoutError:  # a failed start is not sticky: the next use tries again
                await self._shutdown()
                why = f"it did not start within {START_TIMEOUT:g}s"
                raise ToolError(self._death_note(why)) from None
            except Exception as exc:
                await self._shutdown()
                raise ToolError(
                    self._death_note(f"it could not start ({_first_line(exc)})")
                ) from None
            return self._client

    async def _hold(self, ready: asyncio.Future[Any], stop: asyncio.Event) -> None:
        """Keep one connection open until ``stop`` (anyio scopes exit in the task they began)."""
        try:
            from mcp import Client

            async with Client(self._transport()) as client:
                info = client.server_info
                self.name = getattr(info, "name", "") or ""
                ready.set_result(client)
                await stop.wait()
        except BaseException as exc:
            if not ready.done():
                ready.set_exception(exc if isinstance(exc, Exception) else RuntimeError(exc))
            if not isinstance(exc, Exception):
                raise

    def _transport(self) -> Any:
        kind, value = self._target
        if kind == "http":
            from mcp.client.streamable_http import streamable_http_client

            return streamable_http_client(value)
        from mcp.client.stdio import StdioServerParameters, stdio_client

        command, *args = value
        return stdio_client(StdioServerParameters(command=command, args=args), errlog=self._stderr)

    async def _shutdown(self) -> None:
        holder, stop = self._holder, self._stop
        self._client = self._holder = None
        if holder is None or stop is None:
            return
        stop.set()
        try:
            async with asyncio.timeout(5):
                await asyncio.shield(holder)
        except BaseException:
            holder.cancel()

    def _death_note(self, why: str = "") -> str:
        self._stderr.flush()
        self._stderr.seek(0)
        tail = [line.strip() for line in self._stderr.read().splitlines() if line.strip()][-3:]
        self._stderr.seek(0, 2)
        why = why or self._dead or "its connection closed"
        return f"MCP server {self.source} is unavailable: {why}" + (
            f"; its stderr ends: {' | '.join(tail)}" if tail else ""
        )


def _first_line(exc: BaseException) -> str:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _target(source: str) -> tuple[str, Any]:
    """``("http", url)`` or ``("stdio", [command, *args])`` for a source."""
    if source.startswith(("mcp+http://", "mcp+https://")):
        return "http", source.removeprefix("mcp+")
    if not source.startswith("mcp:"):
        raise CatalogError(
            f"not an MCP source: {source!r}; use mcp:COMMAND ARGS or mcp+http://HOST/PATH"
        )
    try:
        argv = shlex.split(source.removeprefix("mcp:"))
    except ValueError as exc:
        raise CatalogError(f"cannot split the MCP command {source!r}: {exc}") from None
    if not argv:
        raise CatalogError(
            "mcp: needs a command that starts the server, e.g. mcp:python -m mcp_server_time"
        )
    return "stdio", argv


def _require_sdk() -> None:
    try:
        import mcp  # noqa: F401
    except ImportError:
        raise MissingDependencyError(
            "MCP servers need the official SDK: pip install 'toolpath[mcp]'"
        ) from None


def mcp_catalog(source: str, *, timeout: float = MCP_TIMEOUT) -> Catalog:
    """Every tool of the MCP server ``source`` names, as Tools that call it.

    Raises :class:`~toolpath.errors.CatalogError` when the server cannot be started or
    reached. A tool whose input schema toolpath cannot use is skipped and recorded in
    :attr:`Catalog.skipped`; one whose name OpenAI rejects is renamed (see :class:`Catalog`).
    """
    _require_sdk()
    server = mcp_connection(source, timeout=timeout)
    try:
        listed = server.tools()
    except ToolError as exc:
        raise CatalogError(str(exc)) from None
    catalog = Catalog([], [], server.source)
    for spec in listed:
        original = spec.name
        try:
            parameters = check_schema(dict(spec.input_schema or {"type": "object"}))
            tool = Tool(
                sanitize_name(original),
                (spec.description or spec.title or "").strip(),
                parameters,
                _caller(server, original),
                timeout=None,  # the server's connection enforces its own (``timeout``)
                context=f"MCP server {server.name or server.source}",
            )
        except (ToolSchemaError, CatalogError) as exc:
            add_entry(catalog, original, str(exc))
            continue
        add_entry(catalog, original, tool, original)
    summarize(catalog)
    return catalog


def _caller(server: McpServer, name: str) -> Any:
    async def call_mcp_tool(**arguments: Any) -> McpText:
        return await server.acall(name, arguments)

    call_mcp_tool.__name__ = f"mcp_{sanitize_name(name)}"
    return call_mcp_tool

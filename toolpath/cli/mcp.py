"""``toolpath mcp serve``: toolpath's agents as tools of an MCP server (stdio or HTTP).

Any MCP client (Claude Desktop, Cursor, another toolpath through ``mcp:toolpath mcp serve``)
can then hand a whole task to a local small-model agent as one tool call:

- ``solve_math``: the math agent (DotaMath; ``samples`` > 1 votes);
- ``run_tools``: the tool agent over the catalog given with ``--catalog`` (retrieving the
  top-k tools per task), or over the built-in calculator;
- ``costa_edit_image``: CoSTA* on an image file of the server's machine.

Each agent step is sent as a progress notification while the tool runs. The model loads at
the first call and is shared by the tools; one agent runs at a time.
"""

# No "from __future__ import annotations": MCPServer reads the tools' annotations at runtime.

import asyncio
import functools
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import typer

from toolpath.cli.common import ModelOpt, err, group
from toolpath.errors import ConfigError, ToolpathError


def register(app: typer.Typer, eval_app: typer.Typer) -> None:
    """Add the ``toolpath mcp`` group."""
    app.add_typer(group("Serve toolpath's agents over MCP.", {"serve": serve}), name="mcp")


def serve(
    model: ModelOpt = "local",
    catalog: Annotated[
        list[str] | None,
        typer.Option(
            help="A catalog source for run_tools (repeatable): a file, module:NAME, "
            "mcp:COMMAND, mcp+http://URL or openapi:SPEC. Default: the built-in calculator."
        ),
    ] = None,
    http: Annotated[
        str | None,
        typer.Option(
            help="Serve Streamable HTTP on HOST:PORT (path /mcp) instead of stdio.",
            metavar="HOST:PORT",
        ),
    ] = None,
    top_k: Annotated[int, typer.Option(help="Tools run_tools retrieves per task.", min=1)] = 6,
) -> None:
    """Serve the math, tool and CoSTA* agents as MCP tools.

    Over stdio by default, or Streamable HTTP with --http. Example client configuration: command `toolpath`, arguments `mcp serve --model local`.
    Nothing but the protocol is written to stdout; the model loads at the first tool call.
    """
    server = mcp_server(model, catalog=catalog, top_k=top_k)
    if http is None:
        server.run("stdio")
        return
    host, _, port = http.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"--http takes HOST:PORT, e.g. 127.0.0.1:8765; got {http!r}")
    err.print(f"[dim]serving MCP on http://{host}:{port}/mcp[/]")
    server.run("streamable-http", host=host, port=int(port))


def mcp_server(model: Any = "local", *, catalog: list[str] | None = None, top_k: int = 6) -> Any:
    """The MCP server (the SDK's ``MCPServer``) whose tools run toolpath's agents.

    ``model`` is a model spec, loaded at the first call, or a model object (tests pass a
    scripted one).
    """
    try:
        from mcp.server.mcpserver import Context, MCPServer
    except ImportError:
        from toolpath.errors import MissingDependencyError

        raise MissingDependencyError(
            "toolpath mcp needs the SDK: pip install 'toolpath[mcp]'"
        ) from None
    from mcp.server.mcpserver.exceptions import ToolError as ServerToolError

    def reasons(fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        """Send toolpath's errors to the client with their message (the SDK hides others)."""

        @functools.wraps(fn)
        async def wrapped(*args: Any, **kwargs: Any) -> Any:
            try:
                return await fn(*args, **kwargs)
            except (ToolpathError, OSError, ValueError) as exc:
                raise ServerToolError(f"{type(exc).__name__}: {exc}") from exc

        return wrapped

    agents = _Agents(model, catalog, top_k)
    server = MCPServer("toolpath", instructions="Local small-model agents: math, tools, images.")

    @server.tool()
    @reasons
    async def solve_math(ctx: Context, problem: str, samples: int = 1) -> dict[str, Any]:
        """Solve a math word problem with toolpath's DotaMath agent: it writes Python, runs
        it and corrects itself. Returns the answer and the last program.

        Args:
            problem: The problem, in words.
            samples: Trajectories to vote over, 1 to 16 (1: one greedy run).
        """
        from toolpath.agents.math.dotamath import math_agent

        if not 1 <= samples <= 16:
            raise ValueError(f"samples must be from 1 to 16, not {samples}")
        agent = math_agent(model=await agents.model(), samples=samples)
        try:
            final = await agents.run(agent, problem, ctx)
        finally:
            agent.close()
        keys = ("answer", "status", "code", "output")
        return {k: final.get(k) for k in keys if final.get(k) is not None}

    @server.tool()
    @reasons
    async def run_tools(task: str, ctx: Context) -> dict[str, Any]:
        """Do a task with toolpath's tool agent over this server's tool catalog.

        Args:
            task: What to do, in words.
        """
        agent = await agents.tool_agent()
        final = await agents.run(agent, task, ctx)
        return {"answer": final.get("answer"), "status": final.get("status")}

    @server.tool()
    @reasons
    async def costa_edit_image(
        image_path: str, instruction: str, output_path: str, ctx: Context
    ) -> dict[str, Any]:
        """Edit an image file with CoSTA* (subtask tree, A* over image tools, verified steps).

        Args:
            image_path: The input image on the server's machine.
            instruction: The edit, in words.
            output_path: Where to write the edited image.
        """
        from toolpath.agents.costa.agent import costa_agent
        from toolpath.tools.image.ops import ImageState, load_image, save_image

        state = {"request": instruction, "context": ImageState(load_image(image_path))}
        agent = costa_agent(model=await agents.model())
        final = await agents.run(agent, state, ctx)
        done = final.get("status") == "done"
        if done:
            save_image(final["context"].image, output_path)
        steps = [
            f"{a['subtask']}: {a['tool']} ({'ok' if a['ok'] else 'failed'})"
            for a in final.get("attempts", [])
        ]
        return {
            "status": final.get("status"),
            "output_path": output_path if done else None,
            "steps": steps,
            "reason": final.get("reason"),
        }

    return server


class _Agents:
    """The model, loaded once at first use, and a lock so that one agent runs at a time."""

    def __init__(self, model: Any, catalog: list[str] | None, top_k: int) -> None:
        self.spec, self.catalog, self.top_k = model, catalog, top_k
        self._model: Any = None if isinstance(model, str) else model
        self._tool_agent: Any = None
        self._lock = asyncio.Lock()

    async def model(self) -> Any:
        if self._model is None:
            from toolpath.llm.specs import load_model

            self._model = await asyncio.to_thread(load_model, self.spec)
        return self._model

    async def tool_agent(self) -> Any:
        if self._tool_agent is None:
            model = await self.model()
            if self.catalog:
                self._tool_agent = await asyncio.to_thread(self._catalog_agent, model)
            else:
                from toolpath.agents.react import tool_agent
                from toolpath.tools import get_tools

                self._tool_agent = tool_agent(model=model, tools=get_tools(["calculator"]))
        return self._tool_agent

    def _catalog_agent(self, model: Any) -> Any:
        from toolpath.agents.alpha_umi.agent import alpha_umi_agent
        from toolpath.retrieval.kinds import build_retriever
        from toolpath.tools.catalog import load_catalogs

        tools = list(load_catalogs(self.catalog or []))
        pick = build_retriever("hybrid", tools, k=self.top_k)
        return alpha_umi_agent(model=model, tools=tools, retriever=pick)

    async def run(self, agent: Any, task: Any, ctx: Any) -> dict[str, Any]:
        """Run ``agent`` on ``task``, a progress notification per step; the final state."""
        final: dict[str, Any] = {}
        async with self._lock:
            step = 0
            async for mode, chunk in agent.astream(task, stream_mode=["updates", "values"]):
                if mode == "values":
                    final = chunk
                elif ctx is not None:
                    step += 1
                    await ctx.report_progress(step, None, f"step {step}: {', '.join(chunk)}")
        return final

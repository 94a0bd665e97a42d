"""``toolpath chat``: an interactive REPL around every toolpath agent.

:func:`chat` is the command (registered by :func:`register`).
:class:`ChatSession` holds everything but the terminal: the model, the enabled tools, the
conversation's thread id, the slash commands, and one adapter per agent
(:mod:`toolpath.cli.chat_agents`: tools, math, costa, alpha-umi, one-step;
:mod:`toolpath.cli.chat_web`: web) that builds the agent and renders its runs. It prints
through a rich Console, so tests drive it with ``handle(line)`` and a
``Console(file=StringIO())``. :func:`run_repl` adds the prompt_toolkit prompt: input history
kept in a file, and multi-line input (a line ending with ``\\`` continues on the next line;
Esc+Enter or Alt+Enter inserts a newline; Enter submits).

Conversations live in a LangGraph SQLite checkpointer. Every question of a conversation
runs the tool agent on the same thread id, so its ``messages`` accumulate across turns.
``/save NAME`` writes ``NAME -> thread id`` to a small JSON index beside the database, and
``/load NAME`` (in this process or a later one) switches back to that thread. A name is a
bookmark of the conversation, not a snapshot: later turns on that thread are kept too.
The other agents take each request on its own; CoSTA* keeps the image it edits
(``/image PATH``) and the web agent the page it acts on (``/url URL``) between requests.
"""

from __future__ import annotations

import json
import os
import threading
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, get_args

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from toolpath.cli.chat_agents import (
    STOPPED,
    Adapter,
    AlphaUmiAdapter,
    CostaAdapter,
    MathAdapter,
    OneStepAdapter,
    ToolsAdapter,
)
from toolpath.cli.chat_view import one_line
from toolpath.cli.chat_web import WebAdapter
from toolpath.cli.common import (
    APPROVE_HELP,
    MaxSecondsOpt,
    MaxTokensOpt,
    MaxUsdOpt,
    ModelOpt,
    PricesOpt,
    RoleOpt,
    approve_setting,
    budget_of,
    catalog_retriever,
    load,
    load_each,
    split,
)
from toolpath.errors import ConfigError, MissingDependencyError
from toolpath.llm.base import ChatModel, Message

if TYPE_CHECKING:
    from toolpath.tools.base import Tool

ADAPTERS: dict[str, type[Adapter]] = {
    a.name: a
    for a in (ToolsAdapter, MathAdapter, CostaAdapter, WebAdapter, AlphaUmiAdapter, OneStepAdapter)
}
"""The chat's agents, by name, in the order /help lists them."""
AGENTS = tuple(ADAPTERS)
AGENT_LIST = "\n".join(f"{'':4}{a.name:<10} {a.about}" for a in ADAPTERS.values())
HELP = f"""\
Type a request and press Enter. A line ending with \\ continues on the next line, and
Esc+Enter (or Alt+Enter) inserts a newline. Up/Down recall earlier inputs, also from
earlier runs. Ctrl-C stops a generation or clears the line; Ctrl-D or /exit quits.

  /help                   this help
  /model SPEC             load another model, e.g. local:qwen2.5-coder-0.5b, openai:gpt-4o-mini
  /agent NAME             switch agents (the model stays):
{AGENT_LIST}
  /image PATH [REQUEST]   costa: the image the next requests edit (switches to costa); each
                          edit is saved as NAME-editN.png beside it or in --out-dir
  /url URL [REQUEST]      web (also /page): open a page in headless chromium (file://, a
                          path, or http://127.0.0.1); each request is then a task on it
  /tools                  list the tools; /tools enable NAME, /tools disable NAME
  /reset                  start a new conversation
  /save NAME              name this conversation (tools agent)
  /load NAME              resume a named conversation (also after a restart)
  /trace                  the last run's steps, timed
  /exit                   quit"""
ROLE_HELP = get_args(RoleOpt)[1].help  # --planner, --caller, --summarizer as RoleOpt has it


def register(app: typer.Typer, eval_app: typer.Typer) -> None:
    """Add ``toolpath chat``."""
    app.command("chat")(chat)


def chat(
    agent: Annotated[
        str | None,
        typer.Option(
            help="tools (a conversation that can call tools), math (DotaMath), costa (CoSTA* "
            "image edits: /image PATH), web (tasks on a page: /url URL), alpha-umi (planner, "
            "caller, summarizer) or one-step (TPTU: every call planned at once). Default: "
            "tools, or costa with --image, web with --url. /agent NAME switches later."
        ),
    ] = None,
    model: ModelOpt = "local",
    tools: Annotated[
        str, typer.Option("--tools", "-t", help="Comma-separated built-in tools to enable.")
    ] = "calculator",
    catalog: Annotated[
        list[str] | None,
        typer.Option(
            help="A tool catalog, repeatable: toolpath/OpenAI/ToolBench/GLPFT JSON or YAML, a "
            ".py file, module:NAME, an MCP server (mcp:COMMAND ARGS or mcp+http://HOST/PATH) or "
            "an OpenAPI spec (openapi:PATH_OR_URL). Its tools join --tools; the tools, "
            "alpha-umi and one-step agents see the retriever's top-k for each request."
        ),
    ] = None,
    top_k: Annotated[
        int, typer.Option(help="Tools retrieved per request from --catalog.", min=1)
    ] = 6,
    retriever: Annotated[
        str,
        typer.Option(
            help="With --catalog: hybrid (dense + BM25 by rank fusion), dense "
            "(all-MiniLM-L6-v2 + faiss, TPTU-v2), bm25, trained or trained-hybrid."
        ),
    ] = "hybrid",
    index_dir: Annotated[
        str | None,
        typer.Option(help="Cache folder for the catalog's embedding index."),
    ] = None,
    planner: Annotated[
        str | None, typer.Option("--planner", "--planner-model", help=ROLE_HELP)
    ] = None,
    caller: Annotated[
        str | None, typer.Option("--caller", "--caller-model", help=ROLE_HELP)
    ] = None,
    summarizer: Annotated[
        str | None, typer.Option("--summarizer", "--summarizer-model", help=ROLE_HELP)
    ] = None,
    image: Annotated[
        str | None, typer.Option(help="costa: the image to edit first (as /image PATH).")
    ] = None,
    out_dir: Annotated[
        str | None,
        typer.Option(help="costa: folder for the edited images (default: beside the input)."),
    ] = None,
    url: Annotated[
        str | None, typer.Option(help="web: the page to open first (as /url URL).")
    ] = None,
    max_steps: Annotated[
        int | None,
        typer.Option(
            help="Most steps per request: tool agent and α-UMi model turns (default 8), web "
            "actions (default 6 per subtask, at least 10).",
            min=1,
        ),
    ] = None,
    history_file: Annotated[
        str | None,
        typer.Option(help="Input history file (default ~/.cache/toolpath/chat_history)."),
    ] = None,
    sessions: Annotated[
        str | None,
        typer.Option(
            help="SQLite file of conversations (default ~/.cache/toolpath/chat_sessions.db)."
        ),
    ] = None,
    approve: Annotated[str, typer.Option(help=APPROVE_HELP)] = "never",
    max_tokens_total: MaxTokensOpt = None,
    max_seconds: MaxSecondsOpt = None,
    max_usd: MaxUsdOpt = None,
    prices: PricesOpt = None,
) -> None:
    """Talk with any toolpath agent in a REPL that remembers conversations.

    Answers stream, tool calls and code runs show in panels, CoSTA* shows its subtask tree,
    tool path and verified steps, the web agent a panel per action; the tools agent's
    conversation is remembered (also after a restart). Enter submits; a line ending with `\\`
    continues, Esc+Enter (Alt+Enter) adds a newline; Ctrl-C stops a
    generation; Ctrl-D exits. The --max-* limits apply to each request. The commands:

    - /help: the commands and agents
    - /agent NAME: tools, math, costa, web, alpha-umi or one-step (the model stays)
    - /model SPEC: load another model
    - /image PATH [REQUEST]: costa's image; each edit is saved as NAME-editN.png beside it
      (or in --out-dir) and the next request edits that
    - /url URL [REQUEST] (or /page): open a page (file://, a path, http://127.0.0.1) for the
      web agent; each request is a task on it
    - /tools [enable|disable NAME], /reset, /save NAME, /load NAME, /trace, /exit
    """
    from toolpath.tools import get_tools

    name = check_agent(agent or ("web" if url else "costa" if image else "tools"))
    toolset: list[Any] = get_tools(split(tools))
    pick = None
    if catalog:
        toolset, pick = catalog_retriever(catalog, toolset, retriever, top_k, index_dir)
    startup = [f"/image {image}"] if image else []
    startup += [f"/url {url}"] if url else []
    if agent is not None and startup:
        startup.append(f"/agent {agent}")  # the agent asked for, after the input's own
    specs = {"planner": planner, "caller": caller, "summarizer": summarizer}
    models = load_each({"": model, **{role: spec for role, spec in specs.items() if spec}})
    session = ChatSession(
        models.pop(""),
        agent=name,
        tools=toolset,
        enabled=[t.name for t in toolset],
        sessions_db=sessions,
        loader=load,
        max_steps=max_steps,
        approve=approve_setting(approve),
        budget=budget_of(max_tokens_total, max_seconds, max_usd, prices),
        retriever=pick,
        top_k=top_k,
        roles=models,
        out_dir=out_dir,
        startup=startup,
    )
    run_repl(session, history_file)


def default_home() -> Path:
    """Where chat keeps history and sessions: ``$XDG_CACHE_HOME/toolpath``, ``~/.cache/toolpath``."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "toolpath"


class ChatSession:
    """The REPL without the terminal: ``handle(line)`` runs a request or a slash command.

    ``tools`` are the tools one may enable (default: the built-ins), ``enabled`` the names
    enabled at the start (default: all). ``loader`` turns a ``/model`` spec into a model.
    ``retriever`` ranks the tools per request (``top_k`` of them reach the tool agents);
    ``roles`` gives α-UMi roles their own models; ``out_dir`` is where CoSTA*'s edits go
    (default: beside the image); ``startup`` lines run after the greeting.
    """

    def __init__(
        self,
        model: ChatModel,
        *,
        console: Console | None = None,
        agent: str = "tools",
        tools: Sequence[Tool] | None = None,
        enabled: Sequence[str] | None = None,
        sessions_db: str | Path | None = None,
        loader: Callable[[str], ChatModel] | None = None,
        max_steps: int | None = None,
        approve: Any = "never",
        budget: Any = None,
        retriever: Any = None,
        top_k: int = 6,
        roles: dict[str, ChatModel] | None = None,
        out_dir: str | Path | None = None,
        startup: Sequence[str] = (),
    ) -> None:
        from toolpath.agents.base import sqlite_checkpointer
        from toolpath.tools import BUILTIN_TOOLS

        self.console = console or Console(highlight=False)
        self.available = {t.name: t for t in (BUILTIN_TOOLS.values() if tools is None else tools)}
        self.enabled = list(self.available if enabled is None else enabled)
        if unknown := [n for n in self.enabled if n not in self.available]:
            raise ConfigError(f"unknown tool {unknown[0]!r}; available: {self._tool_names()}")
        self.agent_name = check_agent(agent)
        self.sessions_db = Path(sessions_db or default_home() / "chat_sessions.db")
        self.index_path = self.sessions_db.with_name(self.sessions_db.stem + "_names.json")
        self.checkpointer = sqlite_checkpointer(self.sessions_db)
        self.model, self.loader, self.max_steps = model, loader, max_steps
        self.approve, self.budget = approve, budget
        self.retriever, self.top_k, self.roles = retriever, top_k, dict(roles or {})
        self.out_dir = Path(out_dir).expanduser() if out_dir else None
        self.startup = list(startup)
        self.thread_id = uuid.uuid4().hex
        self.running = True
        self.last_trace: list[dict[str, Any]] | None = None
        self.stop = threading.Event()
        self.adapters: dict[str, Adapter] = {}

    # ---- requests ----------------------------------------------------------------------

    def handle(self, line: str) -> None:
        """Run one input line: a slash command or a request for the current agent."""
        text = line.strip()
        if not text:
            return
        if not text.startswith("/"):
            self.ask(text)
            return
        name, _, arg = text[1:].partition(" ")
        command = getattr(self, f"cmd_{name.lower()}", None) if name.isidentifier() else None
        if command is None:
            self.say(f"unknown command /{name}; /help lists the commands", style="yellow")
        else:
            command(arg.strip())

    def ask(self, request: str) -> None:
        """Run one request with the current agent, streaming what it does, then tokens and
        seconds. Ctrl-C stops the turn; any error prints one line. Neither ends the session."""
        self.adapter().run(request)

    def adapter(self, name: str | None = None) -> Adapter:
        """The adapter of agent ``name`` (default: the current one), made on first use."""
        name = name or self.agent_name
        if name not in self.adapters:
            self.adapters[name] = ADAPTERS[name](self)
        return self.adapters[name]

    # ---- slash commands ----------------------------------------------------------------

    def cmd_help(self, arg: str) -> None:
        """``/help``."""
        self.say(HELP)

    def cmd_model(self, spec: str) -> None:
        """``/model SPEC``: load a model; a bad spec leaves the current one in place."""
        if not spec:
            self.say(f"model: {self.model.name}; /model SPEC loads another")
            return
        if self.loader is None:
            from toolpath.llm.specs import load_model

            self.loader = load_model
        try:
            model = self.loader(spec)
        except (Exception, KeyboardInterrupt) as exc:
            self.say(
                f"error: {one_line(exc) or 'interrupted'} (still using {self.model.name})",
                style="red",
            )
            return
        old, self.model = self.model, model
        self._drop_agents()
        if old is not model and old not in self.roles.values():
            old.close()
        self.say(f"model: {model.name}")

    def cmd_agent(self, name: str) -> None:
        """``/agent NAME``: switch agents; the model, the image and the page stay."""
        if not name:
            self.say(f"agent: {self.agent_name}; /agent {'|'.join(AGENTS)} switches")
        elif name not in AGENTS:
            self.say(f"unknown agent {name!r}; choose one of: {', '.join(AGENTS)}", style="yellow")
        else:
            self.agent_name = name
            hint = self.adapter().hint()
            self.say(f"agent: {name}" + (f" · {hint}" if hint else ""))

    def cmd_image(self, arg: str) -> None:
        """``/image PATH [REQUEST]``: the image CoSTA* edits; switches to costa."""
        costa = self.adapter("costa")
        assert isinstance(costa, CostaAdapter)
        loaded, request = costa.set_image(arg)
        if loaded and self.agent_name != "costa":
            self.agent_name = "costa"
            self.say("agent: costa")
        if loaded and request:
            self.ask(request)

    def cmd_url(self, arg: str) -> None:
        """``/url URL [REQUEST]``: the page the web agent acts on; switches to web."""
        web = self.adapter("web")
        assert isinstance(web, WebAdapter)
        target, _, request = arg.strip().partition(" ")
        if not web.open(target):
            return
        if self.agent_name != "web":
            self.agent_name = "web"
            self.say("agent: web")
        if request.strip():
            self.ask(request.strip())

    cmd_page = cmd_url

    def cmd_tools(self, arg: str) -> None:
        """``/tools``, ``/tools enable NAME``, ``/tools disable NAME``."""
        action, _, name = arg.partition(" ")
        name = name.strip()
        if not action:
            table = Table("", "tool", "status", "description", box=None)
            for tool in self.available.values():
                on = tool.name in self.enabled
                table.add_row(
                    "✓" if on else "✗",
                    tool.name,
                    "enabled" if on else "disabled",
                    tool.description.splitlines()[0] if tool.description else "",
                )
            self.console.print(table)
        elif action not in ("enable", "disable") or not name:
            self.say("usage: /tools, /tools enable NAME, /tools disable NAME", style="yellow")
        elif name not in self.available:
            self.say(f"unknown tool {name!r}; available: {self._tool_names()}", style="yellow")
        else:
            if action == "enable" and name not in self.enabled:
                self.enabled.append(name)
            elif action == "disable" and name in self.enabled:
                self.enabled.remove(name)
            self.say(f"{name}: {action}d")  # the tool agents rebuild for the new tool set

    def cmd_reset(self, arg: str) -> None:
        """``/reset``: a new conversation (a new thread id)."""
        self.thread_id = uuid.uuid4().hex
        self.say("new conversation")

    def cmd_save(self, name: str) -> None:
        """``/save NAME``: remember this conversation's thread id under NAME."""
        if not name:
            self.say("usage: /save NAME", style="yellow")
            return
        count = len(self._messages())
        if not count:
            self.say("nothing to save yet: ask the tools agent something first", style="yellow")
            return
        index = self._index()
        index[name] = {
            "thread_id": self.thread_id,
            "saved": datetime.now(UTC).isoformat(timespec="seconds"),
            "messages": count,
        }
        self.index_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.index_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(index, indent=2))
        tmp.replace(self.index_path)
        self.say(f"saved as {name} ({count} messages); /load {name} resumes it")

    def cmd_load(self, name: str) -> None:
        """``/load NAME``: continue a saved conversation with the tools agent."""
        index = self._index()
        if name not in index:
            known = ", ".join(sorted(index)) or "none yet (/save NAME names a conversation)"
            self.say(f"no saved conversation {name!r}; saved: {known}", style="yellow")
            return
        self.thread_id, self.agent_name = str(index[name]["thread_id"]), "tools"
        messages = self._messages()
        self.say(f"loaded {name} ({len(messages)} messages, agent: tools)")
        for role in ("user", "assistant"):  # the last exchange, as a reminder
            said = [m["content"] for m in messages if m.get("role") == role and m.get("content")]
            if said:
                self.say(f"  {role}: {' '.join(str(said[-1]).split())[:200]}", style="dim")

    def cmd_trace(self, arg: str) -> None:
        """``/trace``: the last run's steps with their timings and tokens."""
        if not self.last_trace:
            self.say("no run yet", style="yellow")
            return
        table = Table("#", "step", "seconds", "tokens", "note", title="last run")
        for i, rec in enumerate(self.last_trace, 1):
            node = str(rec.get("node"))
            ran = rec.get("tool") and "tokens_in" not in rec  # a tool call, not a model call
            step = f"tool {rec.get('tool')}" if node in ("tool", "tools") or ran else node
            secs = rec.get("seconds")
            used = f"{rec['tokens_in']}+{rec['tokens_out']}" if "tokens_in" in rec else ""
            note = rec.get("error") or ("" if rec.get("ok", True) else "failed")
            table.add_row(str(i), step, f"{secs:.2f}" if secs is not None else "", used, note)
        self.console.print(table)

    def cmd_exit(self, arg: str) -> None:
        """``/exit`` (or ``/quit``)."""
        self.running = False

    cmd_quit = cmd_exit

    # ---- helpers -----------------------------------------------------------------------

    def say(self, text: str, style: str = "") -> None:
        """Print plain text (no markup, not wrapped by rich), optionally styled."""
        self.console.print(Text(text, style=style), soft_wrap=True)

    def greet(self) -> None:
        """The banner the REPL starts with, then the ``startup`` lines."""
        tools = ", ".join(self.enabled[:8]) + (" …" if len(self.enabled) > 8 else "")
        more = f" ({len(self.enabled)})" if len(self.enabled) > 8 else ""
        self.say(
            f"toolpath chat · model {self.model.name} · agent {self.agent_name} · "
            f"tools {tools or 'none'}{more}",
            style="bold",
        )
        self.say("/help lists the commands; Ctrl-D or /exit quits.", style="dim")
        for line in self.startup:
            self.handle(line)

    def close(self) -> None:
        """Close the agents (the math kernel, the browser), the models and the database."""
        for adapter in self.adapters.values():
            adapter.close()
        self.adapters.clear()
        for model in {id(m): m for m in [self.model, *self.roles.values()]}.values():
            model.close()
        self.checkpointer.conn.close()

    def read(self, prompt: str) -> str:
        """A reply to an approval question (the tokens of the turn end first)."""
        self.console.print(prompt, end="", markup=False)
        return input()

    def _config(self) -> dict[str, Any]:
        return {"configurable": {"thread_id": self.thread_id}}

    def _drop_agents(self) -> None:
        for adapter in self.adapters.values():
            adapter.drop()

    def _messages(self) -> list[Message]:
        saved = self.checkpointer.get_tuple(self._config())
        return list(saved.checkpoint["channel_values"].get("messages", [])) if saved else []

    def _index(self) -> dict[str, Any]:
        try:
            data = json.loads(self.index_path.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _tool_names(self) -> str:
        return ", ".join(self.available) or "none"


def check_agent(name: str) -> str:
    """``name`` if it is a chat agent, else a :class:`ConfigError`."""
    if name not in AGENTS:
        raise ConfigError(f"unknown agent {name!r}; choose one of: {', '.join(AGENTS)}")
    return name


def run_repl(chat: ChatSession, history_file: str | Path | None = None) -> None:
    """Read lines with prompt_toolkit and hand them to ``chat`` until /exit or Ctrl-D."""
    try:
        from prompt_toolkit import PromptSession
        from prompt_toolkit.history import FileHistory
        from prompt_toolkit.key_binding import KeyBindings
    except ImportError as exc:
        raise MissingDependencyError(
            "toolpath chat needs prompt_toolkit: pip install prompt_toolkit"
        ) from exc

    path = Path(history_file or default_home() / "chat_history")
    path.parent.mkdir(parents=True, exist_ok=True)
    keys = KeyBindings()

    @keys.add("enter")
    def _submit_or_continue(event: Any) -> None:
        buffer = event.current_buffer
        if buffer.document.text_before_cursor.endswith("\\"):
            buffer.delete_before_cursor(1)
            buffer.insert_text("\n")
        else:
            buffer.validate_and_handle()

    @keys.add("escape", "enter")
    def _newline(event: Any) -> None:
        event.current_buffer.insert_text("\n")

    session: PromptSession[str] = PromptSession(
        history=FileHistory(str(path)),
        key_bindings=keys,
        multiline=True,
        prompt_continuation=lambda width, line, wrap: "." * (width - 1) + " ",
    )
    chat.greet()
    try:
        while chat.running:
            try:
                line = session.prompt(f"{chat.agent_name}> ")
            except KeyboardInterrupt:
                continue  # Ctrl-C at the prompt clears the line
            except EOFError:
                break
            try:
                chat.handle(line)
            except KeyboardInterrupt:
                chat.say(STOPPED, style="yellow")
    finally:
        chat.close()

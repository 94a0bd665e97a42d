"""``toolpath chat``: an interactive REPL around the tool agent and the math agent.

:func:`chat` is the command (registered by :func:`register`).
:class:`ChatSession` holds everything but the terminal: the model, the agents, the enabled
tools, the conversation's thread id, and the slash commands. It prints through a rich
Console, so tests drive it with ``handle(line)`` and a ``Console(file=StringIO())``.
:func:`run_repl` adds the prompt_toolkit prompt: input history kept in a file, and
multi-line input (a line ending with ``\\`` continues on the next line; Esc+Enter or
Alt+Enter inserts a newline; Enter submits).

Conversations live in a LangGraph SQLite checkpointer. Every question of a conversation
runs the tool agent on the same thread id, so its ``messages`` accumulate across turns.
``/save NAME`` writes ``NAME -> thread id`` to a small JSON index beside the database, and
``/load NAME`` (in this process or a later one) switches back to that thread. A name is a
bookmark of the conversation, not a snapshot: later turns on that thread are kept too.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from toolpath.cli.chat_view import TurnView, one_line
from toolpath.cli.common import (
    APPROVE_HELP,
    MaxSecondsOpt,
    MaxTokensOpt,
    MaxUsdOpt,
    ModelOpt,
    PricesOpt,
    approve_setting,
    ask_approval,
    budget_of,
    load,
    split,
    stream_approving,
)
from toolpath.errors import ConfigError, MissingDependencyError
from toolpath.llm.base import ChatModel, ChatModelBase, Completion, Message, StreamEvent, assistant

if TYPE_CHECKING:
    from toolpath.tools.base import Tool

AGENTS = ("tools", "math")
"""The chat agents: ``tools`` (a conversation that can call tools) and ``math`` (DotaMath)."""
STOPPED = "(stopped)"
HELP = """\
Type a question and press Enter. A line ending with \\ continues on the next line, and
Esc+Enter (or Alt+Enter) inserts a newline. Up/Down recall earlier inputs, also from
earlier runs. Ctrl-C stops a generation or clears the line; Ctrl-D or /exit quits.

  /help                   this help
  /model SPEC             load another model, e.g. local:qwen2.5-coder-0.5b, openai:gpt-4o-mini
  /agent tools|math       tools: a conversation that can call tools; math: DotaMath (each
                          problem on its own, code runs in a sandboxed kernel)
  /tools                  list the tools; /tools enable NAME, /tools disable NAME
  /reset                  start a new conversation
  /save NAME              name this conversation
  /load NAME              resume a named conversation (also after a restart)
  /trace                  the last run's steps, timed
  /exit                   quit"""


def register(app: typer.Typer, eval_app: typer.Typer) -> None:
    """Add ``toolpath chat``."""
    app.command("chat")(chat)


def chat(
    agent: Annotated[
        str, typer.Option(help="tools (a conversation that can call tools) or math (DotaMath).")
    ] = "tools",
    model: ModelOpt = "local",
    tools: Annotated[
        str, typer.Option("--tools", "-t", help="Comma-separated built-in tools to enable.")
    ] = "calculator",
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
    """Talk with an agent in a REPL that remembers conversations.

    Answers stream, tool calls and code runs show in panels, and the conversation is
    remembered (/save NAME, /load NAME, also after a restart). Enter submits; a line ending
    with \\ continues, Esc+Enter (Alt+Enter) adds a newline; Ctrl-C stops a generation;
    Ctrl-D exits. /help lists the commands. The --max-* limits apply to each answer.
    """
    from toolpath.tools import get_tools

    check_agent(agent)
    enabled = [t.name for t in get_tools(split(tools))]
    session = ChatSession(
        load(model),
        agent=agent,
        enabled=enabled,
        sessions_db=sessions,
        loader=load,
        approve=approve_setting(approve),
        budget=budget_of(max_tokens_total, max_seconds, max_usd, prices),
    )
    run_repl(session, history_file)


def default_home() -> Path:
    """Where chat keeps its history and sessions: ``$XDG_CACHE_HOME/toolpath`` or
    ``~/.cache/toolpath``."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "toolpath"


class GenerationStopped(Exception):
    """Raised inside a model call once the user asked to stop the generation."""


class StoppableModel(ChatModelBase):
    """Wraps a chat model so a generation running on LangGraph's worker thread ends at
    its next token once ``stop`` is set (the main thread sets it on Ctrl-C)."""

    def __init__(self, model: ChatModel, stop: threading.Event) -> None:
        self.inner, self.stop = model, stop
        self.name, self.tool_mode = model.name, model.tool_mode

    def _check(self) -> None:
        if self.stop.is_set():
            raise GenerationStopped("stopped by the user")

    def complete(self, messages: Sequence[Message], **kwargs: Any) -> Completion:
        self._check()
        return self.inner.complete(messages, **kwargs)

    def stream(self, messages: Sequence[Message], **kwargs: Any) -> Iterator[StreamEvent]:
        self._check()
        events = self.inner.stream(messages, **kwargs)
        try:
            for event in events:
                self._check()
                yield event
        finally:
            close = getattr(events, "close", None)
            if close is not None:
                close()  # ends the HTTP stream, so the server stops generating

    def close(self) -> None:
        self.inner.close()


class ChatSession:
    """The REPL without the terminal: ``handle(line)`` runs a question or a slash command.

    ``tools`` are the tools one may enable (default: the built-ins), ``enabled`` the names
    enabled at the start (default: all). ``loader`` turns a ``/model`` spec into a model.
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
        max_steps: int = 8,
        approve: Any = "never",
        budget: Any = None,
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
        self.thread_id = uuid.uuid4().hex
        self.running = True
        self.last_trace: list[dict[str, Any]] | None = None
        self._stop = threading.Event()
        self._agents: dict[str, Any] = {}

    # ---- questions ---------------------------------------------------------------------

    def handle(self, line: str) -> None:
        """Run one input line: a slash command or a question for the current agent."""
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

    def ask(self, question: str) -> None:
        """Stream one turn: answer tokens, tool and code panels, then tokens and seconds.

        Ctrl-C stops the turn (the conversation records it as stopped); any error prints
        one line. Neither ends the session.
        """
        agent = self._agent()
        math = self.agent_name == "math"
        view = TurnView(
            self.console, math=math, json_mode=self.model.tool_mode == "json" and bool(self.enabled)
        )
        config = None if math else self._config()
        final: dict[str, Any] = {}
        start = time.perf_counter()
        self._stop.clear()
        try:
            with self._sigint_stops():
                modes = ["custom", "updates", "values"]
                ask = partial(ask_approval, console=self.console, read=self._read)
                for mode, chunk in stream_approving(agent, question, config, modes, ask):
                    if mode == "values":
                        final = chunk
                    elif mode == "custom" and chunk.get("type") == "token":
                        view.token(chunk["node"], chunk["delta"])
                    elif mode == "updates":
                        view.update(chunk)
        except (KeyboardInterrupt, GenerationStopped):
            view.end_line()
            self.say(STOPPED, style="yellow")
            self._close_run(STOPPED)
        except Exception as exc:
            view.end_line()
            self.say(f"error: {one_line(exc)}", style="red")
            self._close_run("(failed)")
        else:
            view.end_line()
            answer, status = final.get("answer"), final.get("status")
            if status == "budget_exhausted":
                self.say(f"stopped: the budget ran out ({final.get('reason')})", style="yellow")
                self._close_run("(stopped: the budget ran out)")
            elif answer is None:
                self.say(f"no answer (status: {status})", style="yellow")
            elif math:
                self.say(f"answer: {answer}", style="bold")
            elif not view.answer_shown:
                self.say(str(answer))
        finally:
            self.last_trace = view.trace
        from toolpath.agents.base import tokens

        used = tokens(view.trace)
        seconds = time.perf_counter() - start
        self.say(f"{used['prompt']}+{used['completion']} tokens · {seconds:.1f} s", style="dim")

    @contextmanager
    def _sigint_stops(self) -> Iterator[None]:
        """While a turn runs, Ctrl-C first tells the model call to stop, then interrupts."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def on_sigint(signum: int, frame: Any) -> None:
            self._stop.set()
            raise KeyboardInterrupt

        previous = signal.signal(signal.SIGINT, on_sigint)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)

    def _close_run(self, marker: str) -> None:
        """End an unfinished tool-agent run in the checkpoint with an assistant ``marker``,
        so the conversation stays well formed and the next question starts cleanly."""
        if self.agent_name != "tools":
            return
        try:
            agent, config = self._agent(), self._config()
            if agent.get_state(config).next:
                agent.update_state(
                    config, {"messages": [assistant(marker)], "status": "failed"}, as_node="model"
                )
        except Exception as exc:  # the next question still works; only the record is rough
            self.say(f"(could not record the stop: {one_line(exc)})", style="dim")

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
        if old is not model:
            old.close()
        self.say(f"model: {model.name}")

    def cmd_agent(self, name: str) -> None:
        """``/agent tools|math``."""
        if not name:
            self.say(f"agent: {self.agent_name}; /agent {'|'.join(AGENTS)} switches")
        elif name not in AGENTS:
            self.say(f"unknown agent {name!r}; choose one of: {', '.join(AGENTS)}", style="yellow")
        else:
            self.agent_name = name
            self.say(f"agent: {name}")

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
            self._agents.pop("tools", None)
            self.say(f"{name}: {action}d")

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
            step = f"tool {rec.get('tool')}" if node in ("tool", "tools") else node
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
        """The banner the REPL starts with."""
        tools = ", ".join(self.enabled) or "none"
        self.say(
            f"toolpath chat · model {self.model.name} · agent {self.agent_name} · tools {tools}",
            style="bold",
        )
        self.say("/help lists the commands; Ctrl-D or /exit quits.", style="dim")

    def close(self) -> None:
        """Stop the math agent's kernel, close the model and the sessions database."""
        self._drop_agents()
        self.model.close()
        self.checkpointer.conn.close()

    def _read(self, prompt: str) -> str:
        """A reply to an approval question (the tokens of the turn end first)."""
        self.console.print(prompt, end="", markup=False)
        return input()

    def _config(self) -> dict[str, Any]:
        return {"configurable": {"thread_id": self.thread_id}}

    def _agent(self) -> Any:
        if self.agent_name not in self._agents:
            model = StoppableModel(self.model, self._stop)
            if self.agent_name == "math":
                from toolpath.agents.math.dotamath import math_agent

                self._agents["math"] = math_agent(model=model, budget=self.budget)
            else:
                from toolpath.agents.react import tool_agent

                self._agents["tools"] = tool_agent(
                    model=model,
                    tools=[self.available[n] for n in self.enabled],
                    max_steps=self.max_steps,
                    checkpointer=self.checkpointer,
                    approve=self.approve,
                    budget=self.budget,
                )
        return self._agents[self.agent_name]

    def _drop_agents(self) -> None:
        for agent in self._agents.values():
            agent.close()
        self._agents.clear()

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

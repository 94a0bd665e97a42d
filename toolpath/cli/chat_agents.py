"""The agents ``toolpath chat`` drives, one small adapter per agent kind.

Every adapter has the same shape: :meth:`Adapter.build` makes the agent's graph from the
session's options (the model, the tools, the budget...), and :meth:`Adapter.run` runs one
request line and renders it: the run streams into a view of :mod:`toolpath.cli.chat_view`,
Ctrl-C stops it, an error is one line, and a line of tokens and seconds ends it. An adapter
keeps what its agent works on between requests (CoSTA*'s image, the web agent's page), and
drops its graph when the model or the tools change.

:class:`Host` is what an adapter needs of the session (:class:`toolpath.cli.chat.ChatSession`),
so this module never imports the session's. The web agent's adapter, which needs a browser,
is in :mod:`toolpath.cli.chat_web`.
"""

from __future__ import annotations

import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from rich.console import Console

from toolpath.cli.chat_view import (
    CostaView,
    OneStepView,
    RoleView,
    TurnView,
    View,
    image_protocol,
    inline_image,
    one_line,
)
from toolpath.cli.common import ask_approval, stream_approving
from toolpath.llm.base import ChatModel, ChatModelBase, Completion, Message, StreamEvent, assistant

if TYPE_CHECKING:
    from toolpath.tools.base import Tool

STOPPED = "(stopped)"
MODES = ["custom", "updates", "values"]
ROLES = ("planner", "caller", "summarizer")


class GenerationStopped(Exception):
    """Raised inside a model call once the user asked to stop the generation."""


class StoppableModel(ChatModelBase):
    """Wraps a chat model so a generation running on LangGraph's worker thread ends at
    its next token once its run's stop event is set (the main thread sets it on Ctrl-C).

    ``stop`` gives the current run's event; a call keeps the event of the run it started in,
    so a generation a stopped run left behind still ends after the next run began."""

    def __init__(self, model: ChatModel, stop: Callable[[], threading.Event]) -> None:
        self.inner, self.stop = model, stop
        self.name, self.tool_mode = model.name, model.tool_mode

    def _check(self, stop: threading.Event) -> None:
        if stop.is_set():
            raise GenerationStopped("stopped by the user")

    def complete(self, messages: Sequence[Message], **kwargs: Any) -> Completion:
        self._check(self.stop())
        return self.inner.complete(messages, **kwargs)

    def stream(self, messages: Sequence[Message], **kwargs: Any) -> Iterator[StreamEvent]:
        stop = self.stop()
        self._check(stop)
        events = self.inner.stream(messages, **kwargs)
        try:
            for event in events:
                self._check(stop)
                yield event
        finally:
            close = getattr(events, "close", None)
            if close is not None:
                close()  # ends the HTTP stream, so the server stops generating

    def close(self) -> None:
        self.inner.close()


@contextmanager
def sigint_stops(stop: threading.Event) -> Iterator[None]:
    """While a turn runs, Ctrl-C first sets ``stop`` (the model call ends at its next token),
    then interrupts the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_sigint(signum: int, frame: Any) -> None:
        stop.set()
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


class Host(Protocol):
    """What an adapter uses of the chat session."""

    console: Console
    model: ChatModel
    roles: dict[str, ChatModel]
    """α-UMi role models given on their own (``--planner`` ...); the others use ``model``."""
    available: dict[str, Tool]
    enabled: list[str]
    retriever: Any
    """Ranks the tools for a request (with ``--catalog``), or None: every enabled tool."""
    top_k: int
    max_steps: int | None
    approve: Any
    budget: Any
    checkpointer: Any
    thread_id: str
    out_dir: Path | None
    stop: threading.Event
    """The current run's stop event (a new one per run)."""
    last_trace: list[dict[str, Any]] | None

    def say(self, text: str, style: str = "") -> None: ...
    def read(self, prompt: str) -> str: ...


class Adapter:
    """One agent kind in the chat: ``build`` its graph, ``run`` a request line."""

    name: ClassVar[str] = ""
    about: ClassVar[str] = ""
    """One line for ``/help`` and ``--help``."""

    def __init__(self, chat: Host) -> None:
        self.chat = chat
        self.agent: Any = None
        self.key: Any = None  # what the graph was built for (a tool set); another key rebuilds

    # ---- the graph ---------------------------------------------------------------------

    def build(self) -> Any:
        """The agent's compiled graph, on the session's model and options."""
        raise NotImplementedError

    def graph(self, key: Any = None) -> Any:
        """The graph, built on first use (again when ``key`` changed)."""
        if self.agent is None or key != self.key:
            self.drop()
            self.agent, self.key = self.build(), key
        return self.agent

    def model(self, role: str | None = None) -> ChatModel:
        """The session's model (or ``role``'s own), stoppable with Ctrl-C."""
        chosen = self.chat.roles.get(role or "", self.chat.model)
        return StoppableModel(chosen, lambda: self.chat.stop)

    def drop(self) -> None:
        """Forget the graph (the model or the tools changed); the next request builds it."""
        if self.agent is not None:
            self.agent.close()
        self.agent = self.key = None

    def close(self) -> None:
        """End the session: the graph and whatever the agent works on."""
        self.drop()

    # ---- a request ---------------------------------------------------------------------

    def missing(self) -> str | None:
        """Why a request cannot run yet (CoSTA* without an image...), or None."""
        return None

    def hint(self) -> str:
        """What ``/agent NAME`` adds after switching here (which command sets the input)."""
        return ""

    def view(self) -> View:
        return TurnView(self.chat.console, math=False, json_mode=False)

    def inputs(self, line: str) -> tuple[Any, Any]:
        """The run's input and config for a request line."""
        return line, self.fresh_config()

    def fresh_config(self) -> dict[str, Any] | None:
        """A config with a thread of its own when runs may pause for approval, else None."""
        if self.chat.approve in (None, "never"):
            return None
        return {"configurable": {"thread_id": uuid.uuid4().hex}}

    def run(self, line: str) -> None:
        """Run one request and render it; a stop or an error ends the turn, not the chat."""
        chat = self.chat
        problem = self.missing()
        if problem is not None:
            chat.say(problem, style="yellow")
            return
        view = self.view()
        start = time.perf_counter()
        chat.stop = threading.Event()  # this run's: one a stopped run left behind keeps its own
        try:
            with sigint_stops(chat.stop):
                final = self.stream(line, view)
        except (KeyboardInterrupt, GenerationStopped):
            view.end_line()
            chat.say(STOPPED, style="yellow")
            self.abort(STOPPED)
        except Exception as exc:
            view.end_line()
            chat.say(f"error: {one_line(exc)}", style="red")
            self.abort("(failed)")
        else:
            view.end_line()
            if final.get("status") == "budget_exhausted":
                chat.say(f"stopped: the budget ran out ({final.get('reason')})", style="yellow")
                self.abort("(stopped: the budget ran out)")
            else:
                try:
                    self.show(final, view)
                except Exception as exc:
                    chat.say(f"error: {one_line(exc)}", style="red")
        finally:
            chat.last_trace = view.trace
        from toolpath.agents.base import tokens

        used = tokens(view.trace)
        seconds = time.perf_counter() - start
        chat.say(f"{used['prompt']}+{used['completion']} tokens · {seconds:.1f} s", style="dim")

    def stream(self, line: str, view: View) -> dict[str, Any]:
        """Stream the run into ``view``, asking about paused tool calls; its final state."""
        first, config = self.inputs(line)
        agent = self.graph(self.tools_key(line))
        ask = partial(ask_approval, console=self.chat.console, read=self.chat.read)
        final: dict[str, Any] = {}
        for mode, chunk in stream_approving(agent, first, config, MODES, ask):
            if mode == "values":
                final = chunk
            elif mode == "custom" and chunk.get("type") == "token":
                view.token(chunk["node"], chunk["delta"])
            elif mode == "updates":
                view.update(chunk)
        return final

    def tools_key(self, line: str) -> Any:
        """What the graph depends on for this request (tool agents: the tool names)."""
        return None

    def show(self, final: dict[str, Any], view: View) -> None:
        """The end of a run: the answer, unless it streamed, or why there is none."""
        answer, status = final.get("answer"), final.get("status")
        if answer is None:
            self.chat.say(f"no answer (status: {status})", style="yellow")
        elif not getattr(view, "answer_shown", False):
            self.chat.say(str(answer))
        if answer is not None and status not in (None, "done"):
            self.chat.say(f"(status: {status})", style="yellow")

    def abort(self, marker: str) -> None:
        """A run was stopped or failed (``marker`` says which)."""


class ToolsAdapter(Adapter):
    """The tool agent: one conversation across requests (the session's thread)."""

    name = "tools"
    about = "a conversation that can call tools"

    def __init__(self, chat: Host) -> None:
        super().__init__(chat)
        self.tools: list[Tool] = []

    def build(self) -> Any:
        from toolpath.agents.react import tool_agent

        return tool_agent(
            model=self.model(),
            tools=self.tools,
            max_steps=self.chat.max_steps or 8,
            checkpointer=self.chat.checkpointer,
            approve=self.chat.approve,
            budget=self.chat.budget,
        )

    def tools_key(self, line: str) -> Any:
        self.tools = picked_tools(self.chat, line)
        return tuple(t.name for t in self.tools)

    def view(self) -> View:
        json_mode = self.chat.model.tool_mode == "json" and bool(self.chat.enabled)
        return TurnView(self.chat.console, math=False, json_mode=json_mode)

    def inputs(self, line: str) -> tuple[Any, Any]:
        return line, {"configurable": {"thread_id": self.chat.thread_id}}

    def abort(self, marker: str) -> None:
        """End the unfinished run in the checkpoint with an assistant ``marker``, so the
        conversation stays well formed and the next question starts cleanly."""
        config = {"configurable": {"thread_id": self.chat.thread_id}}
        try:
            agent = self.graph(self.key)
            if agent.get_state(config).next:
                agent.update_state(
                    config, {"messages": [assistant(marker)], "status": "failed"}, as_node="model"
                )
        except Exception as exc:  # the next question still works; only the record is rough
            self.chat.say(f"(could not record the stop: {one_line(exc)})", style="dim")


class MathAdapter(Adapter):
    """DotaMath: each problem on its own, its code run in a sandboxed kernel."""

    name = "math"
    about = "DotaMath: code in a sandboxed kernel, each problem on its own"

    def build(self) -> Any:
        from toolpath.agents.math.dotamath import math_agent

        return math_agent(model=self.model(), budget=self.chat.budget)

    def view(self) -> View:
        return TurnView(self.chat.console, math=True, json_mode=False)

    def inputs(self, line: str) -> tuple[Any, Any]:
        return line, None

    def show(self, final: dict[str, Any], view: View) -> None:
        if final.get("answer") is None:
            self.chat.say(f"no answer (status: {final.get('status')})", style="yellow")
        else:
            self.chat.say(f"answer: {final['answer']}", style="bold")


class AlphaUmiAdapter(Adapter):
    """α-UMi: a planner, a caller and a summarizer (``--planner`` ... or all the model)."""

    name = "alpha-umi"
    about = "α-UMi: planner, caller, summarizer (--planner/--caller/--summarizer)"

    def build(self) -> Any:
        from toolpath.agents.alpha_umi.agent import alpha_umi_agent

        chat = self.chat
        return alpha_umi_agent(
            model=None,  # every role is given
            tools=[chat.available[n] for n in chat.enabled],
            planner=self.model("planner"),
            caller=self.model("caller"),
            summarizer=self.model("summarizer"),
            retriever=chat.retriever,
            k_tools=chat.top_k,
            max_steps=chat.max_steps or 8,
            approve=chat.approve,
            budget=chat.budget,
        )

    def tools_key(self, line: str) -> Any:
        return tuple(self.chat.enabled)

    def view(self) -> View:
        return RoleView(self.chat.console)


class OneStepAdapter(Adapter):
    """TPTU's one-step agent: the whole plan of tool calls first, then the calls, then the answer."""

    name = "one-step"
    about = "TPTU one-step: every tool call planned at once, then run"

    def __init__(self, chat: Host) -> None:
        super().__init__(chat)
        self.tools: list[Tool] = []

    def build(self) -> Any:
        from toolpath.agents.one_step import one_step_agent

        return one_step_agent(
            model=self.model(), tools=self.tools, approve=self.chat.approve, budget=self.chat.budget
        )

    def missing(self) -> str | None:
        if not self.chat.enabled:
            return "the one-step agent needs a tool: /tools enable NAME"
        return None

    def tools_key(self, line: str) -> Any:
        self.tools = picked_tools(self.chat, line)
        return tuple(t.name for t in self.tools)

    def view(self) -> View:
        return OneStepView(self.chat.console)


class CostaAdapter(Adapter):
    """CoSTA*: edits the image ``/image PATH`` set; each edit is saved as a new file, which
    the next request edits in turn."""

    name = "costa"
    about = "CoSTA*: edits the /image PATH image (subtask tree, A*, verified steps)"

    def __init__(self, chat: Host) -> None:
        super().__init__(chat)
        self.path: Path | None = None  # the image the next request edits
        self.image: Any = None
        self.base: Path | None = None  # the first image: edits are named after it
        self.edits = 0

    def build(self) -> Any:
        from toolpath.agents.costa.agent import costa_agent

        return costa_agent(self.model(), approve=self.chat.approve, budget=self.chat.budget)

    def set_image(self, arg: str) -> tuple[bool, str]:
        """``/image PATH [REQUEST]``: load the image; whether it loaded, and any request
        written after the path (a path with spaces can be quoted)."""
        from toolpath.tools.image.ops import load_image

        text = arg.strip()
        if not text:
            where = str(self.path) if self.path else "none yet"
            self.chat.say(f"image: {where}; /image PATH sets the image to edit")
            return False, ""
        name, request = text, ""
        if not Path(name).expanduser().is_file():
            name, request = split_path(text)
        path = Path(name).expanduser()
        try:
            image = load_image(path)
        except Exception as exc:
            self.chat.say(f"error: {one_line(exc)}", style="red")
            return False, ""
        self.path = self.base = path.resolve()
        self.image, self.edits = image, 0
        height, width = image.shape[:2]
        folder = self.chat.out_dir or self.path.parent
        self.chat.say(
            f"image: {self.path} ({width}×{height}); the next requests edit it, "
            f"and each edit is saved in {folder}"
        )
        return True, request

    def missing(self) -> str | None:
        if self.image is None:
            return "no image yet: /image PATH sets the image to edit"
        return None

    def hint(self) -> str:
        return f"editing {self.path}" if self.path else "/image PATH sets the image to edit"

    def view(self) -> View:
        return CostaView(self.chat.console)

    def inputs(self, line: str) -> tuple[Any, Any]:
        from toolpath.tools.image.ops import ImageState

        return {"request": line, "context": ImageState(self.image)}, self.fresh_config()

    def show(self, final: dict[str, Any], view: View) -> None:
        from toolpath.tools.image.ops import save_image

        executed = final.get("executed") or []
        quality = 1.0
        for step in executed:
            quality *= step.quality
        if executed:
            self.chat.say(
                f"total cost {sum(s.cost for s in executed):.4f} s · final quality {quality:.3f}"
                f" · nodes expanded {final.get('expanded', 0)} · re-plans {final.get('replans', 0)}",
                style="dim",
            )
        if final.get("status") != "done":
            why = final.get("reason") or final.get("status")
            self.chat.say(f"the edit did not complete: {why}; nothing saved", style="yellow")
            return
        image = final["context"].image
        path = save_image(image, self.output_path())
        self.path, self.image = path.resolve(), image
        self.chat.say(f"saved: {self.path} (the next requests edit it)", style="bold green")
        protocol = image_protocol()
        if protocol is not None and self.chat.console.is_terminal:
            self.chat.console.file.write(inline_image(image, protocol))
            self.chat.console.file.flush()

    def output_path(self) -> Path:
        """A new file beside the first image (or in ``--out-dir``): ``NAME-edit1.png``..."""
        assert self.base is not None
        folder = self.chat.out_dir or self.base.parent
        folder.mkdir(parents=True, exist_ok=True)
        while True:
            self.edits += 1
            path = folder / f"{self.base.stem}-edit{self.edits}.png"
            if not path.exists():
                return path


def picked_tools(chat: Host, question: str) -> list[Tool]:
    """The enabled tools a tool agent sees for ``question``: with a retriever (``--catalog``),
    its top ``top_k`` of them (said on a dim line) and any it does not know; else all."""
    enabled = [chat.available[n] for n in chat.enabled]
    if chat.retriever is None:
        return enabled
    known = {t.name for t in chat.retriever.tools}
    off = len(known - set(chat.enabled))
    ranked = chat.retriever.retrieve(question, min(len(known), chat.top_k + off))
    picked = [t for t, _ in ranked if t.name in chat.enabled][: chat.top_k]
    chat.say(f"tools for this request: {', '.join(t.name for t in picked) or 'none'}", "dim")
    return [t for t in enabled if t.name not in known] + picked


def split_path(text: str) -> tuple[str, str]:
    """``PATH REST`` or ``"PATH WITH SPACES" REST`` as ``(path, rest)``."""
    if text[:1] in ("'", '"'):
        end = text.find(text[0], 1)
        if end > 0:
            return text[1:end], text[end + 1 :].strip()
    path, _, rest = text.partition(" ")
    return path, rest.strip()


BASE_ADAPTERS: tuple[type[Adapter], ...] = (
    ToolsAdapter,
    MathAdapter,
    CostaAdapter,
    AlphaUmiAdapter,
    OneStepAdapter,
)

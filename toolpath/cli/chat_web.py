"""The web agent in ``toolpath chat``: ``/url URL`` opens a page in headless chromium, then
each request line is a task on that page, shown one panel per action.

:class:`PageEnv` is a :class:`~toolpath.tools.web.browser.WebEnv` on any page. A MiniWoB
task page (it loads MiniWoB's ``core.js``) keeps its own episodes and its reward. Any other
page is read by a generic DOM walker (every visible element gets a ``[ref]``, as MiniWoB's
``getDOMInfo`` gives), and since such a page never ends an episode by itself, its episode
ends when the agent says the task is done (``done`` on the last subtask) or when the click
that finishes the task's last subtask ran (its button or link, e.g. "... and click Submit").
The browser is the project's (:class:`~toolpath.tools.web.browser.Browser`: Debian's
chromium, only ``file://`` and loopback requests), so ``file://`` pages and
``http://127.0.0.1`` servers work, and nothing else is reached.

:class:`WebView` shows each action in a panel once the page was read again after it: the
action, its target element, the guard's refusal or the result, and what changed on the
page. :class:`WebAdapter` runs the async agent on an event loop of its own, which the
browser lives on between requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import Coroutine, Mapping
from pathlib import Path
from typing import Any, TypeVar

from rich.console import Group
from rich.panel import Panel
from rich.text import Text

from toolpath.cli.chat_agents import MODES, Adapter, Host
from toolpath.cli.chat_view import View, one_line
from toolpath.cli.common import ask_approval
from toolpath.errors import BrowserError, ConfigError
from toolpath.tools.web.browser import Browser, WebEnv, is_allowed
from toolpath.tools.web.observation import EpisodeStatus, Observation

T = TypeVar("T")

PAGE_JS = """
({episode, html}) => {
  if (window.__toolpathRef === undefined) window.__toolpathRef = 0;
  const SKIP = new Set(['SCRIPT', 'STYLE', 'NOSCRIPT', 'TEMPLATE', 'HEAD', 'META', 'LINK']);
  const WHOLE = new Set(['button', 'a', 'summary', 'option', 'select', 'textarea']);
  const squash = (t) => (t || '').replace(/\\s+/g, ' ').trim();
  const own = (el) => squash(Array.from(el.childNodes)
    .filter((n) => n.nodeType === 3).map((n) => n.textContent).join(' '));
  const visible = (el) => {
    if (el.hidden) return false;
    const s = getComputedStyle(el);
    if (s.display === 'none' || s.visibility === 'hidden') return false;
    return el.getClientRects().length > 0 || s.display === 'contents';
  };
  const tagOf = (el) => {
    const t = el.tagName.toLowerCase();
    return t === 'input' ? 'input_' + (el.getAttribute('type') || 'text').toLowerCase() : t;
  };
  const elements = [];
  const visit = (el) => {
    if (SKIP.has(el.tagName) || (el !== document.body && !visible(el))) return;
    const tag = tagOf(el);
    if (tag === 'input_hidden') return;
    if (!el.dataset.wob_ref) el.dataset.wob_ref = String(++window.__toolpathRef);
    el.dataset.wob_eps = 'e' + episode;
    const whole = WHOLE.has(tag);
    let text = whole ? squash(el.innerText) : own(el);
    let value = null, options = null;
    if (tag === 'input_checkbox' || tag === 'input_radio') value = el.checked;
    else if (['input_submit', 'input_button', 'input_reset'].includes(tag)) text = squash(el.value);
    else if (el instanceof HTMLInputElement || el instanceof HTMLTextAreaElement) {
      value = el.value;
      text = squash(el.getAttribute('placeholder') || el.getAttribute('aria-label'));
    }
    if (el instanceof HTMLSelectElement) {
      options = Array.from(el.options).map((o) => squash(o.text));
      value = el.selectedIndex >= 0 ? squash(el.options[el.selectedIndex].text) : '';
      text = '';
    }
    elements.push({
      ref: +el.dataset.wob_ref, tag: tag, id: el.id || '',
      classes: typeof el.className === 'string' ? el.className : '', text: text, value: value,
      options: options, focused: document.activeElement === el, section: null,
    });
    if (!whole) for (const kid of el.children) visit(kid);
  };
  visit(document.body);
  return {elements: elements, html: html ? document.body.outerHTML : null};
}
"""
"""A generic page's elements in the shape of MiniWoB's observation (refs stay with their
element while the document lives; ``data-wob_eps`` makes the actions' selectors find them)."""

IS_MINIWOB_JS = "() => typeof core !== 'undefined' && typeof genProblem === 'function'"
SAID_DONE = "the agent said the task is done"


class _Direct:
    """A stand-in for a TaskSite: a page's name is its URL."""

    def url(self, page: str) -> str:
        return page


class PageEnv(WebEnv):
    """A :class:`WebEnv` on any page (see the module docstring)."""

    def __init__(self, browser: Browser, **options: Any) -> None:
        super().__init__(browser, _Direct(), **options)  # type: ignore[arg-type]
        self.url: str | None = None
        self.title = ""
        self.miniwob = False
        self.instruction = ""
        self.finished: str | None = None
        """Why a plain page's episode is over (None while it runs)."""
        self.final: str | None = None
        """The button or link whose click finishes the task's last subtask."""
        self.episode = 0
        self.seed = 0
        self._acting = False

    async def load(self, url: str) -> Observation:
        """Open ``url``; a page that does not load is a :class:`BrowserError` saying why."""
        if not self.alive:
            await self.recover()
        self.task = url
        try:
            response = await self.page.goto(url, wait_until="load", timeout=30_000)
        except Exception as exc:
            lines = [x.strip() for x in str(exc).splitlines() if x.strip()]
            with contextlib.suppress(Exception):
                await self.recover()  # a fresh page: the failed one is still navigating
            self.url = None
            raise BrowserError(f"cannot load {url}: {lines[0] if lines else exc}") from exc
        if response is not None and response.status >= 400:
            self.url = None
            raise BrowserError(f"cannot load {url}: HTTP {response.status}")
        self.url, self.title = url, await self.page.title()
        self.miniwob = bool(await self.page.evaluate(IS_MINIWOB_JS))
        self.episode, self.finished = self.episode + 1, None
        if self.miniwob:
            self._url = url  # loaded: reset starts the episode without loading again
            return await self.reset(url, self.seed)
        return await self.observe()

    async def begin(self, instruction: str) -> None:
        """Make the page ready for a new task: a MiniWoB page whose episode ended starts the
        next one; a plain page just runs on, reading the task's final click."""
        from toolpath.agents.web.agent import split_instruction
        from toolpath.agents.web.focus import final_target

        self.instruction = instruction
        if self.miniwob:
            if (await self.status()).done:
                self.seed += 1
                await self.reset(str(self.url), self.seed)
            return
        self.finished = None
        self.final = final_target(split_instruction(instruction)[-1])
        await self.observe()

    async def observe(self, *, html: bool = False) -> Observation:
        if self.miniwob:
            return await super().observe(html=html)
        raw = await self._js(PAGE_JS, {"episode": self.episode, "html": html})
        raw.update(self._status_fields(), reason=self.finished, instruction=self.instruction)
        self.last = Observation.from_js(raw)
        return self.last

    async def status(self) -> EpisodeStatus:
        """The episode's status. On a plain page, asked outside an action, it is the agent
        saying it is done (its ``done``), which ends the episode."""
        if self.miniwob:
            return await super().status()
        if not self._acting and self.finished is None:
            self.finished = SAID_DONE
        return EpisodeStatus(self.episode, self.finished is not None, 0.0, 0.0, self.finished)

    def _status_fields(self) -> dict[str, Any]:
        done = self.finished is not None
        return {"episode": self.episode, "done": done, "reward": 0.0, "raw_reward": 0.0}

    async def _act(self, what: str, ref: int | None, action: Any) -> str:
        self._acting = True
        try:
            return await super()._act(what, ref, action)
        finally:
            self._acting = False

    async def click(self, ref: int) -> str:
        from toolpath.agents.web.focus import matches

        element = self.last.by_ref.get(ref) if self.last is not None else None
        result = await super().click(ref)
        last = self.final is not None and element is not None and matches(element, self.final)
        if not self.miniwob and last and self.finished is None and element is not None:
            what = " ".join(element.text.split()) or str(element.value or self.final)
            self.finished = f'the task\'s last step ran (clicked "{what}")'
        return result


class WebView(View):
    """One panel per action: the action, its target, the guard's refusal or the result, and
    the page's change (shown once the page was read after it)."""

    def __init__(self, console: Any) -> None:
        super().__init__(console)
        self.page: dict[int, str] = {}
        self.pending: dict[str, Any] | None = None
        self.actions = 0

    def node(self, node: str, delta: dict[str, Any]) -> None:
        if node == "plan" and len(delta.get("subtasks") or []) > 1:
            lines = [f"{i}. {s}" for i, s in enumerate(delta["subtasks"], 1)]
            self._block(Text("subtasks:\n" + "\n".join(lines), style="dim"))
        elif node == "observe" and "observation" in delta:
            after = element_lines(delta["observation"])
            if after or delta.get("status") != "done":  # an ended episode shows no elements:
                self.flush(after)  # its last action waits for the adapter's reading
                self.page = after
        elif node == "act":
            for line in delta.get("history") or []:
                self._block(Text(f"reply not usable: {line.strip('- ()')}", style="dim red"))
            messages = delta.get("messages") or []
            calls = (messages[-1].get("tool_calls") or []) if messages else []
            if calls:
                name, args = _call(calls[0])
                why = str(messages[-1].get("content") or "").strip()
                self.pending = {"name": name, "args": args, "why": "" if _is_json(why) else why}
        elif node == "execute" and self.pending is not None:
            lines = delta.get("history") or []
            self.pending["outcome"] = _outcome(self.pending, lines[0] if lines else "")
            self.pending["ran"] = bool(delta.get("trace"))

    def flush(self, after: dict[int, str] | None = None) -> None:
        """Show the pending action's panel; ``after``: the page as read after it."""
        action, self.pending = self.pending, None
        if action is None or "outcome" not in action:
            return
        self.actions += 1
        self._block(action_panel(self.actions, action, self.page, after))


def action_panel(
    number: int, action: Mapping[str, Any], before: Mapping[int, str], after: Any
) -> Panel:
    """The panel of one action (see :class:`WebView`)."""
    name, args, outcome = action["name"], action["args"], str(action["outcome"])
    shown = ", ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in args.items())
    parts: list[Any] = [Text(f"{name}({shown})", style="bold")]
    ref = args.get("ref")
    if isinstance(ref, int):
        parts.append(Text(f"target: {before.get(ref, f'[{ref}] (not on the page)')}"))
    if action.get("why"):
        parts.append(Text(f"why: {' '.join(str(action['why']).split())}", style="dim"))
    if outcome.startswith("refused: "):
        style, title = "yellow", "refused by a guard"
        parts.append(Text(f"guard refused: {outcome.removeprefix('refused: ')}", style="yellow"))
    elif outcome.startswith("error: "):
        style, title = "red", "rejected" if "rejected this call" in outcome else "failed"
        parts.append(Text(outcome, style="red"))
    else:
        style, title = "green", "done" if name == "done" else "ran"
        parts.append(Text(f"result: {outcome}"))
    if after is not None:
        parts.append(page_change(before, after))
    return Panel(
        Group(*parts),
        title=f"action {number} · {name} · {title}",
        title_align="left",
        border_style=style,
    )


def page_change(before: Mapping[int, str], after: Mapping[int, str], most: int = 8) -> Text:
    """What changed between two readings of the page: elements added (+), gone (-) and
    changed (~), or "page unchanged"."""
    lines = [("+ ", after[r], "green") for r in after if r not in before]
    lines += [("- ", before[r], "red") for r in before if r not in after]
    lines += [("~ ", after[r], "yellow") for r in after if r in before and after[r] != before[r]]
    if not lines:
        return Text("page: unchanged", style="dim")
    text = Text("page:")
    for mark, line, style in lines[:most]:
        text.append(f"\n  {mark}{line}", style=style)
    if len(lines) > most:
        text.append(f"\n  … {len(lines) - most} more changes", style="dim")
    return text


def element_lines(observation: str) -> dict[int, str]:
    """``{ref: line}`` of an observation's element lines."""
    lines: dict[int, str] = {}
    for line in observation.splitlines():
        if line.startswith("[") and "]" in line:
            head = line[1 : line.index("]")]
            if head.isdigit():
                lines[int(head)] = line
    return lines


def _call(call: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    fn = call.get("function") or {}
    args = fn.get("arguments")
    if isinstance(args, str):
        try:
            args = json.loads(args)
        except ValueError:
            args = {}
    return str(fn.get("name") or "?"), args if isinstance(args, dict) else {}


def _is_json(text: str) -> bool:
    """Whether ``text`` is a JSON reply (the constrained call itself, no reasoning)."""
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def _outcome(action: Mapping[str, Any], line: str) -> str:
    """The result part of the agent's history line ``- name(args): RESULT``."""
    args = action["args"]
    said = f"- {action['name']}({', '.join(f'{k}={json.dumps(v)}' for k, v in args.items())})"
    if line.startswith(said + ": "):
        return line[len(said) + 2 :]
    return line.split("): ", 1)[-1]


class WebAdapter(Adapter):
    """The plan-then-act web agent on the page ``/url URL`` opened."""

    name = "web"
    about = "the web agent: each request is a task on the /url URL page"

    def __init__(self, chat: Host) -> None:
        super().__init__(chat)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.browser: Browser | None = None
        self.env: PageEnv | None = None

    def build(self) -> Any:
        from toolpath.agents.web import web_agent

        chat = self.chat
        return web_agent(
            self.model(), max_steps=chat.max_steps, approve=chat.approve, budget=chat.budget
        )

    def call(self, work: Coroutine[Any, Any, T]) -> T:
        """Run ``work`` on the browser's event loop; Ctrl-C cancels it."""
        if self.loop is None:
            self.loop = asyncio.new_event_loop()
        task = self.loop.create_task(work)
        try:
            return self.loop.run_until_complete(task)
        except KeyboardInterrupt:
            task.cancel()
            with contextlib.suppress(BaseException):  # the cancellation, or the task's end
                self.loop.run_until_complete(task)
            raise

    def open(self, arg: str) -> bool:
        """``/url URL``: open the page; whether it opened (else one line says why)."""
        try:
            url = page_url(arg)
            if url is None:
                where = self.env.url if self.env is not None and self.env.url else "none yet"
                self.chat.say(f"page: {where}; /url URL opens a page (file:// or http://127.0.0.1)")
                return False
            obs = self.call(self._open(url))
        except KeyboardInterrupt:
            self.chat.say("(stopped)", style="yellow")
            return False
        except Exception as exc:
            self.chat.say(f"error: {one_line(exc)}", style="red")
            return False
        env = self.env
        assert env is not None
        count = len(obs.shown)
        kind = "a MiniWoB task page" if env.miniwob else f"{count} element{'s' * (count != 1)}"
        title = f" ({env.title})" if env.title else ""
        self.chat.say(f"page: {url}{title}, {kind}; each request is a task on it")
        if env.miniwob:
            self.chat.say(f"the page's own task: {obs.instruction}", style="dim")
        lines = [e.line() for e in obs.shown]
        for line in lines[:12]:
            self.chat.say(f"  {line}", style="dim")
        if len(lines) > 12:
            self.chat.say(f"  … {len(lines) - 12} more", style="dim")
        return True

    async def _open(self, url: str) -> Observation:
        if self.browser is None:
            self.browser = Browser()
        if self.env is None:
            await self.browser.start()
            self.env = PageEnv(self.browser)
            await self.env.open()
        return await self.env.load(url)

    def missing(self) -> str | None:
        if self.env is None or self.env.url is None:
            return "no page open: /url URL opens one (file:// or http://127.0.0.1)"
        return None

    def hint(self) -> str:
        if self.env is not None and self.env.url:
            return f"on {self.env.url}"
        return "/url URL opens the page to act on"

    def view(self) -> View:
        return WebView(self.chat.console)

    def stream(self, line: str, view: View) -> dict[str, Any]:
        return self.call(self._stream(line, view))

    async def _stream(self, line: str, view: View) -> dict[str, Any]:
        from langgraph.types import Command

        env = self.env
        assert env is not None
        await env.begin(line)
        agent = self.graph()
        config = {"configurable": {"env": env, "thread_id": uuid.uuid4().hex}}
        run_input: Any = line
        final: dict[str, Any] = {}
        while True:
            pending = None
            async for mode, chunk in agent.astream(run_input, config, stream_mode=MODES):
                if mode == "values":
                    final = chunk
                elif mode == "updates" and "__interrupt__" in chunk:
                    pending = chunk["__interrupt__"][0].value
                elif mode == "updates":
                    view.update(chunk)
            if pending is None:
                break
            run_input = Command(resume=ask_approval(pending, self.chat.console, self.chat.read))
        if isinstance(view, WebView):  # the last action, with the page as it is now
            shown = env.last.shown if env.last is not None else []
            view.flush({e.ref: e.line() for e in shown} or None)
        return final

    def show(self, final: dict[str, Any], view: View) -> None:
        env, status = self.env, final.get("status")
        assert env is not None
        actions = getattr(view, "actions", 0)
        if status == "done" and env.miniwob:
            reward = float(final.get("reward") or 0.0)
            verdict = "success" if final.get("success") else "failure"
            why = f"; {final['reason']}" if final.get("reason") else ""
            line, style = f"{verdict} (reward {reward:+.2f}{why})", "green" if reward > 0 else "red"
        elif status == "done":
            line, style = str(final.get("reason") or SAID_DONE), "green"
        elif status == "step_limit":
            line, style = "the step cap was reached before the task was done", "yellow"
        else:
            line, style = f"status {status}", "yellow"
        plural = "" if actions == 1 else "s"
        self.chat.say(f"episode over: {line} · {actions} action{plural}", style=style)

    def close(self) -> None:
        super().close()
        if self.loop is None:
            return
        try:
            if self.env is not None:
                self.call(self.env.close())
            if self.browser is not None:
                self.call(self.browser.close())
        except (Exception, KeyboardInterrupt):
            pass
        finally:
            self.loop.close()
            self.loop = self.browser = self.env = None


def page_url(arg: str) -> str | None:
    """The URL ``/url`` opens: ``file://``, ``http(s)://`` on loopback, or an existing file's
    path; None without an argument. A URL the browser would block is a ConfigError."""
    text = arg.strip().strip("'\"")
    if not text:
        return None
    if "://" not in text and not text.startswith(("about:", "data:")):
        path = Path(text).expanduser()
        if path.is_file():
            return path.resolve().as_uri()
        if text.startswith(("localhost", "127.")):
            text = "http://" + text
        else:
            raise ConfigError(f"no such file: {text} (a page is file://..., a path or a local URL)")
    if not is_allowed(text):
        raise ConfigError(
            f"{text} is not local: the browser opens only file:// pages and loopback servers "
            "(http://127.0.0.1, localhost)"
        )
    return text

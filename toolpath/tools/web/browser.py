"""A headless chromium for MiniWoB and CompWoB task pages, driven by Playwright's async API.

- :class:`Browser` launches Debian's chromium (``/usr/lib/chromium/chromium``; never a
  Playwright download) with the flags below. Every page lives in its own browser context
  whose requests are routed through :meth:`Browser._route`: only ``file://``, ``data:`` and
  loopback (127.0.0.0/8, ::1, localhost) go through; everything else is aborted and
  recorded in :attr:`Browser.blocked`. As a second layer, chromium's host resolver maps
  every name except localhost, 127.0.0.1 and ::1 to nothing (so even a request that
  bypassed routing could not reach another host), and service workers are blocked. Playwright gives every
  launch a fresh temporary ``--user-data-dir`` (it refuses the flag itself) and deletes it
  on close.
- :class:`TaskSite` is the folder the pages are served from: a temporary directory that
  links the installed ``miniwob`` wheel's ``core/``, ``common/`` and base tasks
  (``miniwob/``) beside any other task folders (a CompWoB release, generated pages), so
  their ``../core/core.js`` references resolve. Pages are opened as ``file://`` URLs: the
  task pages are static (no XHR anywhere), so a file URL needs no server thread or port, is
  the fastest to load, and the blocking rule already admits it.
- :class:`WebEnv` is one page: episodes are controlled through the page's own JS
  (``Math.seedrandom``, ``core.EPISODE_MAX_TIME``, ``core.startEpisodeReal()``,
  ``WOB_DONE_GLOBAL``, ``WOB_RAW_REWARD_GLOBAL``, ``core.getUtterance()``), and actions
  address elements by ``[data-wob_ref=N][data-wob_eps="e<WOB_EPISODE_ID>"]``.
- :class:`WebPool` shares one browser among several pages. A crashed page or browser
  raises :class:`~toolpath.errors.BrowserError` in the episode that saw it;
  :meth:`WebEnv.recover` then restarts what died (the browser at most once, however many
  pages noticed), so the next episode works.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from toolpath.errors import BrowserError, ConfigError, MissingDependencyError, ToolError
from toolpath.tools.web import observation
from toolpath.tools.web.observation import OBSERVE_JS, EpisodeStatus, Observation, action_tools

if TYPE_CHECKING:
    from toolpath.tools.base import Tool

CHROMIUM = "/usr/lib/chromium/chromium"
"""Debian's chromium binary (``/usr/bin/chromium`` is a wrapper script)."""

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1, EXCLUDE [::1]",
)

INSTALL_HINT = (
    "install chromium with: apt-get install -y chromium chromium-driver "
    "(or set TOOLPATH_CHROMIUM to a chromium binary)"
)

_STATUS_JS = """() => ({episode: WOB_EPISODE_ID, done: WOB_DONE_GLOBAL, reward: WOB_REWARD_GLOBAL,
  raw_reward: WOB_RAW_REWARD_GLOBAL, reason: WOB_REWARD_REASON})"""

_RESET_JS = """({seed, ms}) => {
  if (typeof core === 'undefined' || typeof genProblem !== 'function') return null;
  if (core.EP_TIMER !== null && !WOB_DONE_GLOBAL) core.endEpisode(-1, false, 'abandoned');
  if (window.jQuery) jQuery.fx.off = true;  // no half-drawn widgets (date pickers) to observe
  Math.seedrandom(seed);
  core.EPISODE_MAX_TIME = ms;
  core.startEpisodeReal();
  return WOB_EPISODE_ID;
}"""


def chromium_path() -> str:
    """The chromium binary: ``$TOOLPATH_CHROMIUM`` or Debian's."""
    path = os.environ.get("TOOLPATH_CHROMIUM") or CHROMIUM
    if not os.access(path, os.X_OK):
        raise MissingDependencyError(f"no chromium at {path}; {INSTALL_HINT}")
    return path


def miniwob_html() -> Path:
    """The ``html/`` folder of the installed ``miniwob`` wheel."""
    try:
        import miniwob
    except ImportError as exc:
        raise MissingDependencyError(
            "web tasks need the miniwob wheel: pip install 'toolpath[web]'"
        ) from exc
    return Path(miniwob.__file__).parent / "html"


def is_allowed(url: str) -> bool:
    """Whether a request may leave the page: ``file:``, ``data:``, ``about:`` or loopback."""
    parts = urlsplit(url)
    if parts.scheme in ("file", "data", "about", "blob"):
        return True
    host = (parts.hostname or "").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _short(exc: BaseException) -> str:
    lines = [x.strip() for x in str(exc).strip().splitlines() if x.strip()]
    return lines[0][:300] if lines else type(exc).__name__


class TaskSite:
    """A temporary folder of task pages next to MiniWoB's ``core/`` and ``common/``.

    ``folders`` maps a name to a folder of ``*.html`` pages (for example
    ``{"compositional": Path("compwob/compositional")}``); the wheel's own ``miniwob/``
    base tasks are always there. Folders are linked, never copied; :meth:`close` removes
    only the links.
    """

    def __init__(self, folders: Mapping[str, str | Path] | None = None) -> None:
        html = miniwob_html()
        self.root = Path(tempfile.mkdtemp(prefix="toolpath-web-"))
        for entry in html.iterdir():
            if entry.is_dir():
                (self.root / entry.name).symlink_to(entry, target_is_directory=True)
        for name, folder in (folders or {}).items():
            self.add(name, folder)

    def add(self, name: str, folder: str | Path) -> None:
        """Link ``folder`` into the site as ``name/``."""
        folder = Path(folder).expanduser().resolve()
        if not name or "/" in name or name.startswith(".") or name in ("core", "common"):
            raise ConfigError(f"bad task folder name {name!r}")
        if not folder.is_dir():
            raise ConfigError(f"task folder {folder} does not exist")
        link = self.root / name
        if link.is_symlink():
            link.unlink()
        elif link.exists():
            raise ConfigError(f"the task site already has a folder named {name!r}")
        link.symlink_to(folder, target_is_directory=True)

    def path(self, page: str) -> Path:
        """The file of ``page`` (``"miniwob/click-button"``, ``.html`` optional)."""
        rel = page if page.endswith(".html") else f"{page}.html"
        path = self.root / rel
        if ".." in Path(rel).parts or not path.is_file():
            folder = (self.root / rel).parent
            known = sorted(p.stem for p in folder.glob("*.html"))[:8] if folder.is_dir() else []
            hint = f"; e.g. {', '.join(known)}" if known else ""
            raise ConfigError(f"no task page {page!r} in {folder.name}/{hint}")
        return path

    def url(self, page: str) -> str:
        return self.path(page).as_uri()

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> TaskSite:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Browser:
    """One chromium process shared by many pages, restarted when it dies."""

    def __init__(
        self,
        *,
        executable: str | None = None,
        extra_args: tuple[str, ...] = (),
        launch_timeout_s: float = 60.0,
    ) -> None:
        self.executable = executable
        self.extra_args = extra_args
        self.launch_timeout_s = launch_timeout_s
        self.blocked: list[dict[str, str]] = []
        """Every request that was stopped: ``{"url", "type", "page"}``."""
        self.generation = 0
        """How many times chromium was (re)started."""
        self.pid: int | None = None
        self._pw: Any = None
        self._browser: Any = None
        self._lock = asyncio.Lock()
        self._marker = ""

    @property
    def connected(self) -> bool:
        return self._browser is not None and self._browser.is_connected()

    async def start(self) -> Browser:
        """Launch chromium if it is not running (again, if it died)."""
        async with self._lock:
            if self.connected:
                return self
            await self._launch()
        return self

    async def _launch(self) -> None:
        try:
            from playwright.async_api import async_playwright
        except ImportError as exc:
            raise MissingDependencyError(
                "the browser needs playwright: pip install 'toolpath[web]' "
                "(never `playwright install`: chromium comes from apt)"
            ) from exc
        executable = self.executable or chromium_path()
        if self._browser is not None:
            with contextlib.suppress(Exception):
                await self._browser.close()
        if self._pw is None:
            self._pw = await async_playwright().start()
        self._marker = f"--toolpath-browser={uuid.uuid4().hex}"  # finds the process below
        try:
            self._browser = await self._pw.chromium.launch(
                executable_path=executable,
                args=[*FLAGS, *self.extra_args, self._marker],
                timeout=self.launch_timeout_s * 1000,
            )
        except Exception as exc:
            raise BrowserError(f"chromium did not start: {_short(exc)}; {INSTALL_HINT}") from exc
        self.generation += 1
        self.pid = _find_pid(self._marker)

    async def restart(self, seen_generation: int) -> None:
        """Start chromium again unless someone already did since ``seen_generation``."""
        async with self._lock:
            if self.generation == seen_generation or not self.connected:
                await self._launch()

    async def new_context(self) -> Any:
        """A fresh browser context with request blocking."""
        await self.start()
        try:
            context = await self._browser.new_context(
                viewport={"width": 500, "height": 800}, service_workers="block"
            )
            await context.route("**/*", self._route)
            await context.route_web_socket("**/*", self._route_ws)
        except Exception as exc:
            raise BrowserError(f"cannot open a page: {_short(exc)}") from exc
        return context

    async def _route(self, route: Any) -> None:
        request = route.request
        with contextlib.suppress(Exception):  # the page may be gone by now
            if is_allowed(request.url):
                await route.continue_()
                return
        if is_allowed(request.url):
            return
        page = ""
        with contextlib.suppress(Exception):
            page = request.frame.page.url
        self.blocked.append({"url": request.url, "type": request.resource_type, "page": page})
        with contextlib.suppress(Exception):
            await route.abort("blockedbyclient")

    async def _route_ws(self, ws: Any) -> None:
        if is_allowed(ws.url.replace("ws", "http", 1)):
            ws.connect_to_server()
            return
        self.blocked.append({"url": ws.url, "type": "websocket", "page": ""})
        await ws.close()

    async def env(self, site: TaskSite, **options: Any) -> WebEnv:
        """A new page on this browser, ready for :meth:`WebEnv.reset`."""
        env = WebEnv(self, site, **options)
        await env.open()
        return env

    async def close(self) -> None:
        if self._browser is not None:
            with contextlib.suppress(Exception):
                await self._browser.close()
            self._browser = None
        if self._pw is not None:
            with contextlib.suppress(Exception):
                await self._pw.stop()
            self._pw = None

    async def __aenter__(self) -> Browser:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def _gone(exc: BaseException) -> bool:
    """Whether a Playwright error says the page or browser is gone (not a script error)."""
    return type(exc).__name__ == "TargetClosedError" or "Target crashed" in str(exc)


def _find_pid(marker: str) -> int | None:
    """The browser process whose command line holds ``marker`` (Linux ``/proc``)."""
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            cmd = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if marker.encode() in cmd and not any(a.startswith(b"--type=") for a in cmd):
            return int(entry.name)
    return None


class WebEnv:
    """One page of a shared :class:`Browser`, showing one task at a time.

    ``max_time_s`` becomes ``core.EPISODE_MAX_TIME`` (MiniWoB's 10 s default times out
    LLM agents); ``action_timeout_s`` bounds how long a click waits for its element.
    """

    def __init__(
        self,
        browser: Browser,
        site: TaskSite,
        *,
        max_time_s: float = 900.0,
        action_timeout_s: float = 3.0,
    ) -> None:
        self.browser = browser
        self.site = site
        self.max_time_s = max_time_s
        self.action_timeout_s = action_timeout_s
        self.page: Any = None
        self.task: str | None = None
        self.last: Observation | None = None
        self.crashed = False
        self._context: Any = None
        self._url: str | None = None
        self._generation = 0

    # ------------------------------------------------------------------ lifecycle

    async def open(self) -> None:
        """Open (or reopen) this env's page."""
        self._context = await self.browser.new_context()
        self._generation = self.browser.generation
        try:
            self.page = await self._context.new_page()
        except Exception as exc:
            raise BrowserError(f"cannot open a page: {_short(exc)}") from exc
        self.page.on("crash", self._on_crash)
        self.page.on("close", self._on_crash)
        self.crashed = False
        self._url = None
        self.last = None

    def _on_crash(self, *_: Any) -> None:
        self.crashed = True

    @property
    def alive(self) -> bool:
        return (
            not self.crashed
            and self.page is not None
            and self.browser.connected
            and self.browser.generation == self._generation
        )

    async def recover(self) -> None:
        """Replace a crashed page, restarting chromium first if it died."""
        if not self.browser.connected:
            await self.browser.restart(self._generation)
        if self.page is not None:
            with contextlib.suppress(Exception):
                self.page.remove_listener("close", self._on_crash)
        if self._context is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._context.close(), 5)
        await self.open()

    async def close(self) -> None:
        if self._context is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._context.close(), 5)
            self._context = None

    def _dead(self, exc: BaseException | None = None) -> BrowserError:
        self.crashed = True
        died = not self.browser.connected or self.browser.generation != self._generation
        what = "the browser died" if died else "the page crashed"
        detail = f": {_short(exc)}" if exc is not None else ""
        return BrowserError(f"{what} during task {self.task}{detail}")

    async def _js(self, script: str, arg: Any = None) -> Any:
        if not self.alive:
            raise self._dead()
        try:
            return await self.page.evaluate(script, arg)
        except Exception as exc:
            if not self.alive or _gone(exc):
                raise self._dead(exc) from exc
            raise ConfigError(f"the task page {self.task} failed: {_short(exc)}") from exc

    # ------------------------------------------------------------------ episodes

    async def reset(
        self, task: str, seed: int = 0, *, max_time_s: float | None = None
    ) -> Observation:
        """Start a new episode of ``task`` (a page of the site) with ``seed``."""
        url = self.site.url(task)
        self.task = task
        if not self.alive:
            await self.recover()
        if self._url != url:
            try:
                await self.page.goto(url, wait_until="load", timeout=30_000)
            except Exception as exc:
                if not self.alive or _gone(exc):
                    raise self._dead(exc) from exc
                raise BrowserError(f"cannot load {task}: {_short(exc)}") from exc
            self._url = url
        ms = int(1000 * (max_time_s if max_time_s is not None else self.max_time_s))
        episode = await self._js(_RESET_JS, {"seed": seed, "ms": ms})
        if episode is None:
            self._url = None
            raise ConfigError(f"{task} is not a MiniWoB task page (no core.js or genProblem)")
        return await self.observe()

    async def observe(self, *, html: bool = False) -> Observation:
        """The instruction, the element list and the episode status."""
        raw = await self._js(OBSERVE_JS, {"html": html})
        self.last = Observation.from_js(raw)
        return self.last

    async def status(self) -> EpisodeStatus:
        raw = await self._js(_STATUS_JS)
        return EpisodeStatus(
            episode=int(raw["episode"]),
            done=bool(raw["done"]),
            reward=float(raw["reward"]),
            raw_reward=float(raw["raw_reward"]),
            reason=raw.get("reason"),
        )

    def tools(self, obs: Observation | None = None) -> list[Tool]:
        """The action tools for this page (refs limited to ``obs``'s, when given)."""
        return action_tools(self, obs)

    # ------------------------------------------------------------------ actions

    def _locator(self, ref: int) -> Any:
        obs = self.last
        if obs is None:
            raise ToolError("observe the page before acting on it")
        if obs.status.done:
            raise ToolError(obs.status.describe())
        if ref not in obs.by_ref:
            refs = ", ".join(str(e.ref) for e in obs.shown[:30])
            raise ToolError(f"there is no element [{ref}] on the page; the elements are: {refs}")
        selector = f'[data-wob_ref="{ref}"][data-wob_eps="e{obs.status.episode}"]'
        return self.page.locator(selector)

    async def _act(self, what: str, ref: int | None, action: Any) -> str:
        """Run one Playwright action; report its effect on the episode."""
        if not self.alive:
            action.close()
            raise self._dead()
        try:
            await action
        except ToolError:
            raise
        except Exception as exc:
            if not self.alive or _gone(exc):
                raise self._dead(exc) from exc
            raise ToolError(f"{what} failed: {_short(exc)}") from exc
        status = await self.status()
        target = ""
        if ref is not None and self.last is not None and ref in self.last.by_ref:
            target = " " + self.last.by_ref[ref].line()
        ended = " " + status.describe() if status.done else ""
        return f"{what}{target}.{ended}"

    async def click(self, ref: int) -> str:
        """A real mouse click on element ``ref``."""
        loc = self._locator(ref)
        return await self._act("clicked", ref, self._mouse_click(loc))

    async def _mouse_click(self, loc: Any) -> None:
        """Press and release the mouse on ``loc`` where it is not covered (see
        :data:`~toolpath.tools.web.observation.CLICK_BOX_JS`), scrolled into view. Playwright's
        ``locator.click`` first waits for the element to be stable over several animation
        frames (about 30 ms per click); MiniWoB elements do not move, so this looks once.
        """
        timeout = self.action_timeout_s * 1000
        box = await loc.evaluate(observation.CLICK_BOX_JS, timeout=timeout)
        view = self.page.viewport_size or {"width": 0, "height": 0}
        inside = box is not None and (
            0 <= box["x"] + box["width"] / 2 < view["width"]
            and 0 <= box["y"] + box["height"] / 2 < view["height"]
        )
        if box is not None and not inside:
            await loc.scroll_into_view_if_needed(timeout=timeout)
            box = await loc.evaluate(observation.CLICK_BOX_JS, timeout=timeout)
        if box is None or box["width"] <= 0 or box["height"] <= 0:
            raise ToolError("that element is not visible, so it cannot be clicked")
        await self.page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)

    async def type(self, ref: int, text: str) -> str:
        """Click into element ``ref``, clear it and type ``text`` key by key."""
        loc = self._locator(ref)
        if not self.last or not self.last.by_ref[ref].takes_text:
            tag = self.last.by_ref[ref].tag if self.last else "?"
            raise ToolError(f"[{ref}] is a {tag}, not a text field; click it instead")

        async def typing() -> None:
            await self._mouse_click(loc)
            await loc.fill("", timeout=self.action_timeout_s * 1000)
            await self.page.keyboard.type(text)

        return await self._act(f"typed {text!r} into", ref, typing())

    async def press(self, key: str) -> str:
        """Press ``key`` (Playwright key names: Enter, Tab, ArrowDown, Control+A, ...)."""
        if self.last is not None and self.last.status.done:
            raise ToolError(self.last.status.describe())
        return await self._act(f"pressed {key}", None, self.page.keyboard.press(key))

    async def select(self, ref: int, option: str) -> str:
        """Choose the option labelled (or valued) ``option`` of the ``<select>`` ``ref``."""
        loc = self._locator(ref)
        if not self.last or self.last.by_ref[ref].tag != "select":
            tag = self.last.by_ref[ref].tag if self.last else "?"
            raise ToolError(f"[{ref}] is a {tag}, not a <select> list; click it instead")

        async def choose() -> None:
            timeout = self.action_timeout_s * 1000
            try:
                await loc.select_option(label=option, timeout=timeout)
            except Exception:
                await loc.select_option(value=option, timeout=timeout)

        return await self._act(f"selected {option!r} in", ref, choose())


class WebPool:
    """``size`` pages on one browser, leased one episode at a time."""

    def __init__(
        self, site: TaskSite, size: int = 1, *, browser: Browser | None = None, **options: Any
    ) -> None:
        if size < 1:
            raise ConfigError(f"the page pool needs at least one page, not {size}")
        self.site = site
        self.size = size
        self.browser = browser or Browser()
        self.options = options
        self._free: asyncio.Queue[WebEnv] = asyncio.Queue()
        self._envs: list[WebEnv] = []

    async def start(self) -> WebPool:
        await self.browser.start()
        for _ in range(self.size - len(self._envs)):
            env = await self.browser.env(self.site, **self.options)
            self._envs.append(env)
            self._free.put_nowait(env)
        return self

    @contextlib.asynccontextmanager
    async def lease(self) -> AsyncIterator[WebEnv]:
        """One page for one episode; a page that crashed is recovered before reuse."""
        if not self._envs:
            await self.start()
        env = await self._free.get()
        try:
            yield env
        finally:
            if not env.alive:
                with contextlib.suppress(BrowserError):
                    await env.recover()
            self._free.put_nowait(env)

    async def close(self) -> None:
        for env in self._envs:
            await env.close()
        self._envs.clear()
        await self.browser.close()

    async def __aenter__(self) -> WebPool:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

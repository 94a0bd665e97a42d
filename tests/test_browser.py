"""The headless browser against a real chromium: episodes, observation, actions, request
blocking, crash recovery and sharing one browser among pages."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import threading
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import pytest_asyncio

from toolpath.errors import BrowserError, ConfigError, ToolError
from toolpath.evals.web.oracle import run_scripted
from toolpath.tools.web.browser import Browser, TaskSite, WebEnv, WebPool, is_allowed

PROBE = """<!DOCTYPE html><html><head><title>probe</title></head><body>
<img src="https://example.org/pixel.png">
<script>
var RESULTS = {};
async function probe(name, url) {
  try { var r = await fetch(url); RESULTS[name] = 'ok ' + (await r.text()); }
  catch (e) { RESULTS[name] = 'failed'; }
}
var ws = new WebSocket('ws://example.net/socket');
ws.onopen = function () { RESULTS.ws = 'open'; };
ws.onclose = function () { if (RESULTS.ws === undefined) RESULTS.ws = 'closed'; };
</script></body></html>"""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TaskSite]:
    pages = tmp_path_factory.mktemp("pages")
    (pages / "probe.html").write_text(PROBE, encoding="utf-8")
    with TaskSite({"probe": pages}) as s:
        yield s


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with Browser() as b:
        yield b


@pytest_asyncio.fixture(loop_scope="module")
async def env(browser: Browser, site: TaskSite) -> AsyncIterator[WebEnv]:
    e = await browser.env(site)
    yield e
    await e.close()


@pytest.fixture
def local_server() -> Iterator[tuple[str, list[str]]]:
    """A real HTTP server on 127.0.0.1 that records the paths it served."""
    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            body = b"local"
            self.send_response(200)
            self.send_header("Access-Control-Allow-Origin", "*")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", hits
    server.shutdown()
    server.server_close()


def test_only_local_addresses_are_allowed() -> None:
    for url in (
        "file:///tmp/x.html",
        "data:text/plain,hi",
        "http://127.0.0.1:8000/a",
        "http://localhost/a",
        "http://[::1]:9/a",
        "https://127.4.5.6/",
        "about:blank",
    ):
        assert is_allowed(url), url
    for url in (
        "http://example.com/",
        "https://8.8.8.8/",
        "ws://example.net/s",
        "http://10.0.0.1/",
        "ftp://127.0.0.1.evil.com/",
        "https://localhost.evil.com/",
    ):
        assert not is_allowed(url), url


def test_task_site_links_the_wheel_and_rejects_unknown_pages(site: TaskSite) -> None:
    for name in ("core", "common", "miniwob"):
        assert (site.root / name).is_symlink()
    assert (site.root / "core" / "core.js").is_file()
    assert site.url("miniwob/click-button").startswith("file://")
    with pytest.raises(ConfigError, match="no task page"):
        site.path("miniwob/no-such-task")
    with pytest.raises(ConfigError, match="does not exist"):
        site.add("extra", "/no/such/folder")


@pytest.mark.browser
@pytest.mark.asyncio(loop_scope="module")
async def test_observation_format(env: WebEnv) -> None:
    obs = await env.reset("miniwob/login-user", seed=0)
    text = obs.text()
    lines = text.splitlines()
    m = re.fullmatch(
        r'Instruction: Enter the username "(\w+)" and the password "(\w+)" .*', lines[0]
    )
    assert m, lines[0]
    assert all(re.fullmatch(r"\[\d+\] [a-z_0-9]+\S*( .*)?", line) for line in lines[1:]), text
    assert any(re.fullmatch(r'\[\d+\] input_text#username value=""', x) for x in lines)
    assert any(re.fullmatch(r'\[\d+\] input_password#password value=""', x) for x in lines)
    assert any(re.fullmatch(r'\[\d+\] button#subbtn\.secondary-action "Login"', x) for x in lines)
    assert 40 < len(text) / 4 < 150  # ~4 characters a token
    # every listed ref addresses exactly one element of this episode
    for e in obs.shown:
        selector = f'[data-wob_ref="{e.ref}"][data-wob_eps="e{obs.status.episode}"]'
        assert await env.page.locator(selector).count() == 1
    field = next(e for e in obs.shown if e.id == "username")
    await env.type(field.ref, m.group(1))
    after = await env.observe(html=True)
    assert f'input_text#username value="{m.group(1)}"' in after.text()
    assert after.html is not None and 'id="subbtn"' in after.html
    assert "HTML:" in after.text(html=True)

    listing = await env.reset("miniwob/choose-list", seed=0)
    select = next(e for e in listing.shown if e.tag == "select")
    assert len(select.options) >= 3
    assert f'options="{select.options[0]} | {select.options[1]}' in select.line()


@pytest.mark.browser
@pytest.mark.asyncio(loop_scope="module")
async def test_seeds_reproduce_episodes(env: WebEnv) -> None:
    a = await env.reset("miniwob/click-checkboxes", seed=7)
    b = await env.reset("miniwob/click-checkboxes", seed=7)
    assert a.instruction == b.instruction
    assert [e.line() for e in a.shown] == [e.line() for e in b.shown]
    others = {(await env.reset("miniwob/click-checkboxes", seed=s)).instruction for s in range(4)}
    assert len(others) > 1


@pytest.mark.browser
@pytest.mark.asyncio(loop_scope="module")
async def test_wrong_click_fails_and_reset_abandons_the_episode(env: WebEnv) -> None:
    obs = await env.reset("miniwob/click-button", seed=3)
    want = re.search(r'"(.+)"', obs.instruction)
    assert want
    wrong = next(e for e in obs.shown if e.tag == "button" and e.text != want.group(1))
    result = await env.click(wrong.ref)
    assert "ended with reward -1.00" in result
    status = await env.status()
    assert status.done and status.raw_reward == -1 and not status.success

    first = await env.reset("miniwob/click-button", seed=4)  # left unfinished
    second = await env.reset("miniwob/click-button", seed=5)
    assert second.status.episode == first.status.episode + 1
    assert not second.status.done
    for e in second.shown:  # no stale refs from the abandoned episode
        sel = f'[data-wob_ref="{e.ref}"][data-wob_eps="e{second.status.episode}"]'
        assert await env.page.locator(sel).count() == 1


@pytest.mark.browser
@pytest.mark.asyncio(loop_scope="module")
async def test_bad_actions_raise_tool_errors(env: WebEnv) -> None:
    obs = await env.reset("miniwob/enter-text", seed=1)
    button = next(e for e in obs.shown if e.tag == "button")
    with pytest.raises(ToolError, match="no element \\[999\\]"):
        await env.click(999)
    with pytest.raises(ToolError, match="not a text field"):
        await env.type(button.ref, "x")
    with pytest.raises(ToolError, match="not a <select>"):
        await env.select(button.ref, "x")
    with pytest.raises(ToolError, match="pressed NoSuchKey failed"):
        await env.press("NoSuchKey")
    tools = {t.name: t for t in env.tools(obs)}
    assert set(tools) == {"click", "type", "press", "done"}  # no <select> on this page
    assert "still running" in await tools["done"].arun({})
    with pytest.raises(ConfigError, match="not a MiniWoB task page"):
        await env.reset("probe/probe", seed=0)


@pytest.mark.browser
@pytest.mark.asyncio(loop_scope="module")
async def test_episode_time_limit_ends_with_minus_one(env: WebEnv) -> None:
    await env.reset("miniwob/click-button", seed=0, max_time_s=0.3)
    await asyncio.sleep(0.8)
    status = await env.status()
    assert status.done and status.raw_reward == -1 and status.reason == "timed out"


@pytest.mark.browser
@pytest.mark.asyncio(loop_scope="module")
async def test_no_request_leaves_loopback_or_file(
    env: WebEnv, browser: Browser, local_server: tuple[str, list[str]]
) -> None:
    seen: list[str] = []
    env.page.on("request", lambda r: seen.append(r.url))
    status = await run_scripted(env, "miniwob/login-user", ["login-user"], seed=2)
    assert status.raw_reward == 1
    assert seen and all(u.startswith("file://") for u in seen), seen

    url, hits = local_server
    before = len(browser.blocked)
    await env.page.goto(env.site.url("probe/probe"))
    await env.page.evaluate(
        "(u) => Promise.all([probe('local', u + '/hello'), probe('far', 'http://example.com/x')])",
        url,
    )
    await env.page.wait_for_function("() => RESULTS.ws !== undefined", timeout=5000)
    results = await env.page.evaluate("() => RESULTS")
    assert results == {"local": "ok local", "far": "failed", "ws": "closed"}
    assert hits == ["/hello"]
    blocked = {b["url"]: b["type"] for b in browser.blocked[before:]}
    assert blocked.get("http://example.com/x") == "fetch"
    assert blocked.get("https://example.org/pixel.png") == "image"
    assert blocked.get("ws://example.net/socket") == "websocket"
    assert not any(is_allowed(u) for u in blocked)


async def _crash_page(env: WebEnv) -> None:
    session = await env.page.context.new_cdp_session(env.page)
    with contextlib.suppress(Exception):  # the call never answers: its target is gone
        await asyncio.wait_for(session.send("Page.crash"), 0.5)
    for _ in range(50):
        if env.crashed:
            return
        await asyncio.sleep(0.1)
    raise AssertionError("the page did not crash")


@pytest.mark.browser
@pytest.mark.asyncio(loop_scope="module")
async def test_crashed_page_fails_its_episode_and_is_replaced(env: WebEnv) -> None:
    obs = await env.reset("miniwob/click-button", seed=1)
    await _crash_page(env)
    assert not env.alive
    with pytest.raises(BrowserError, match="page crashed"):
        await env.click(obs.shown[0].ref)
    with pytest.raises(BrowserError):
        await env.observe()
    await env.recover()
    status = await run_scripted(env, "miniwob/click-button", ["click-button"], seed=1)
    assert status.raw_reward == 1


@pytest.mark.browser
@pytest.mark.asyncio(loop_scope="module")
async def test_killed_browser_is_restarted_once_for_all_pages(tmp_path: Path) -> None:
    with TaskSite() as site:
        async with WebPool(site, 2) as pool:
            one, two = pool._envs
            await one.reset("miniwob/enter-text", seed=0)
            await two.reset("miniwob/click-button", seed=0)
            pid, generation = pool.browser.pid, pool.browser.generation
            assert pid is not None
            os.kill(pid, signal.SIGKILL)
            for e in (one, two):
                with pytest.raises(BrowserError, match="browser died"):
                    for _ in range(50):
                        await e.observe()
                        await asyncio.sleep(0.1)
            await asyncio.gather(one.recover(), two.recover())
            assert pool.browser.generation == generation + 1
            assert pool.browser.pid not in (None, pid)
            for e, task in ((one, "enter-text"), (two, "click-button")):
                status = await run_scripted(e, f"miniwob/{task}", [task], seed=3)
                assert status.raw_reward == 1


@pytest.mark.browser
@pytest.mark.asyncio(loop_scope="module")
async def test_pages_share_one_browser_concurrently() -> None:
    with TaskSite() as site:
        async with WebPool(site, 3) as pool:

            async def one(seed: int, task: str) -> float:
                async with pool.lease() as e:
                    return (await run_scripted(e, f"miniwob/{task}", [task], seed=seed)).raw_reward

            jobs = [one(s, t) for s in range(3) for t in ("login-user", "click-option")]
            assert await asyncio.gather(*jobs) == [1.0] * 6
            assert pool.browser.generation == 1
            assert len({id(e.page) for e in pool._envs}) == 3

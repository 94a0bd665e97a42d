"""``toolpath chat`` with every agent: switching, ``/help``, bad input and each adapter's
rendering on the scripted model (the web agent in a real chromium, marked ``browser``), and
two sessions in a pseudo-terminal on the embedded 0.5B model (marked ``model``): a CoSTA*
image edit and a web task on a local page."""

from __future__ import annotations

import http.server
import io
import json
import re
import socket
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from conftest import embedded_chat
from rich.console import Console

from toolpath.cli.chat import AGENTS, HELP, ChatSession
from toolpath.cli.chat_view import image_protocol, inline_image
from toolpath.cli.chat_web import element_lines, page_change, page_url
from toolpath.errors import ConfigError
from toolpath.tools import calculator, tool

STATS = re.compile(r"\d+\+\d+ tokens · \d+\.\d s")
TREE = json.dumps(
    {
        "subtasks": [
            {"id": "s1", "type": "locate", "params": {"target": "red circle"}, "parents": []},
            {
                "id": "s2",
                "type": "recolor",
                "params": {"target": "red circle", "color": "blue"},
                "parents": ["s1"],
            },
        ]
    }
)
PAGE = """<!doctype html><html><head><title>Tiny form</title></head><body>
<h1>Sign up</h1>
<input id="name" type="text" placeholder="Your name">
<button onclick="document.getElementById('out').textContent =
  'Thanks, ' + document.getElementById('name').value + '!'">Submit</button>
<p id="out"></p>
</body></html>"""
BUTTON_PAGE = """<!doctype html><html><head><title>One button</title></head><body>
<button onclick="this.textContent = 'Clicked'">OK</button>
</body></html>"""


def call(name: str, **args: object) -> str:
    return json.dumps({"tool": name, "arguments": args})


class Chat:
    """A ChatSession printing into a string, on a sessions db in ``folder``."""

    def __init__(self, model: Any, folder: Path, **options: Any) -> None:
        self.buffer = io.StringIO()
        console = options.pop("console", None) or Console(
            file=self.buffer, width=120, color_system=None, highlight=False
        )
        self.session = ChatSession(
            model, console=console, sessions_db=folder / "sessions.db", **options
        )
        self.model = model

    def __call__(self, line: str) -> str:
        """Handle ``line``; return what it printed."""
        start = self.buffer.tell()
        self.session.handle(line)
        return self.buffer.getvalue()[start:]


@pytest.fixture
def chat(scripted, tmp_path) -> Iterator[Any]:
    made: list[Chat] = []

    def make(replies, **options) -> Chat:
        made.append(Chat(scripted(list(replies)), tmp_path, **options))
        return made[-1]

    yield make
    for c in made:
        c.session.close()


def red_circle(path: Path) -> Path:
    """A small PNG: a red circle on white."""
    from PIL import Image, ImageDraw

    picture = Image.new("RGB", (96, 96), "white")
    ImageDraw.Draw(picture).ellipse((24, 24, 72, 72), fill=(220, 20, 20))
    picture.save(path)
    return path


# ---- every agent: switching, help, bad input ------------------------------------------------


def test_help_lists_every_agent_and_command(chat):
    text = chat([])("/help")
    for name in AGENTS:
        assert re.search(rf"^\s+{re.escape(name)}\s+\S", text, re.M), name
    for command in ("/image PATH", "/url URL", "/page", "/agent NAME", "/model SPEC", "/trace"):
        assert command in text
    assert AGENTS == ("tools", "math", "costa", "web", "alpha-umi", "one-step")
    assert text.strip() == HELP.strip()


def test_agent_switch_keeps_the_model_and_names_the_input_command(chat):
    c = chat([])
    model = c.session.model
    assert "agent: costa · /image PATH sets the image to edit" in c("/agent costa")
    assert "agent: web · /url URL opens the page to act on" in c("/agent web")
    assert c("/agent one-step").strip() == "agent: one-step"
    assert c.session.model is model and c.session.agent_name == "one-step"
    text = c("/agent wizard")
    assert text.count("\n") == 1
    assert "unknown agent 'wizard'; choose one of: " + ", ".join(AGENTS) in text
    assert c.session.agent_name == "one-step" and c.session.running
    assert "agent: one-step; /agent tools|math|costa|web|alpha-umi|one-step" in c("/agent")


def test_requests_without_their_input_say_which_command_sets_it(chat):
    c = chat([])
    c("/agent costa")
    assert c("make it blue").strip() == "no image yet: /image PATH sets the image to edit"
    c("/agent web")
    assert "no page open: /url URL opens one" in c("click the button")
    assert c.model.requests == []  # no model call was made


def test_bad_images_are_one_line_errors(chat, tmp_path):
    c = chat([])
    text = c(f"/image {tmp_path / 'missing.png'}")
    assert text.count("\n") == 1 and "error: image file not found" in text
    (tmp_path / "notes.txt").write_text("not a picture")
    assert "is not an image" in c(f"/image {tmp_path / 'notes.txt'}")
    assert c.session.agent_name == "tools"  # nothing loaded, so no switch
    assert "image: none yet" in c("/image")


def test_bad_urls_are_one_line_errors(chat, tmp_path):
    c = chat([])
    for url, why in [
        (str(tmp_path / "missing.html"), "no such file"),
        ("https://example.com/", "is not local"),
    ]:
        text = c(f"/url {url}")
        assert text.count("\n") == 1 and why in text, text
    assert "page: none yet" in c("/page")
    assert c.session.agent_name == "tools"


def test_page_url_accepts_paths_and_local_urls(tmp_path):
    page = tmp_path / "p.html"
    page.write_text(PAGE)
    assert page_url(str(page)) == page.resolve().as_uri()
    assert page_url("127.0.0.1:8000/x") == "http://127.0.0.1:8000/x"
    assert page_url("http://localhost:1/") == "http://localhost:1/"
    assert page_url("  ") is None
    with pytest.raises(ConfigError, match="not local"):
        page_url("http://10.0.0.1/")


# ---- CoSTA* ----------------------------------------------------------------------------------


def test_costa_shows_the_plan_the_verified_steps_and_saves_the_edit(chat, tmp_path):
    image = red_circle(tmp_path / "circle.png")
    c = chat([TREE, TREE])
    text = c(f"/image {image}")
    assert f"image: {image.resolve()} (96×96)" in text and f"saved in {tmp_path}" in text
    assert "agent: costa" in text and c.session.agent_name == "costa"
    text = c("make the red circle blue")
    assert "plan: subtask tree" in text
    assert re.search(r's1 locate target="red circle".*\n.*s2 recolor target="red circle"', text)
    assert "tool path" in text and re.search(r"s1 locate → \w+\s+est\. cost", text)
    assert re.search(r"✓ s1 locate · \w+ · ok · quality \d\.\d\d · cost \d\.\d{4} s", text)
    assert re.search(r"✓ s2 recolor · \w+ · ok", text)
    out = tmp_path / "circle-edit1.png"
    assert f"saved: {out.resolve()}" in text and out.is_file()
    assert STATS.search(text.splitlines()[-1])
    trace = c("/trace")
    assert "build_tree" in trace and re.search(r"tool locate_\w+", trace)

    # the next request edits the edit: the circle is blue now, so there is no red to find
    text = c("make the red circle blue")
    assert "✗ s1 locate" in text and "re-planning around" in text
    assert "re-plan 1: tool path" in text
    assert "the edit did not complete" in text and "nothing saved" in text
    assert not (tmp_path / "circle-edit2.png").exists()


def test_costa_image_and_request_on_one_line_with_an_out_dir(chat, tmp_path):
    image = red_circle(tmp_path / "my picture.png")
    c = chat([TREE], out_dir=tmp_path / "edits")
    text = c(f'/image "{image}" make the red circle blue')
    assert f"saved in {tmp_path / 'edits'}" in text
    out = tmp_path / "edits" / "my picture-edit1.png"
    assert f"saved: {out.resolve()}" in text and out.is_file()
    from PIL import Image

    r, _, b = Image.open(out).convert("RGB").getpixel((48, 48))
    assert b > 150 and r < 100  # the circle is blue


def test_costa_shows_the_image_inline_in_kitty(scripted, tmp_path, monkeypatch):
    monkeypatch.setenv("TERM", "xterm-kitty")
    buffer = io.StringIO()
    console = Console(file=buffer, width=120, force_terminal=True, color_system=None)
    c = Chat(scripted([TREE]), tmp_path, console=console)
    try:
        c(f"/image {red_circle(tmp_path / 'c.png')}")
        c("make the red circle blue")
    finally:
        c.session.close()
    assert "\x1b_Ga=T,f=100" in buffer.getvalue()


def test_inline_images_only_where_the_terminal_says_so():
    import numpy as np

    assert image_protocol({"TERM": "xterm-kitty"}) == "kitty"
    assert image_protocol({"TERM_PROGRAM": "iTerm.app"}) == "iterm"
    assert image_protocol({"TERM": "xterm-256color"}) is None
    picture = np.zeros((600, 800, 3), dtype=np.uint8)
    iterm = inline_image(picture, "iterm")
    assert iterm.startswith("\x1b]1337;File=inline=1;") and iterm.endswith("\x07\n")
    kitty = inline_image(picture, "kitty")
    assert kitty.startswith("\x1b_Ga=T,f=100,m=") and kitty.endswith("\x1b\\\n")


# ---- α-UMi and one-step -------------------------------------------------------------------


def test_alpha_umi_shows_each_role_the_tool_call_and_the_answer(chat, scripted):
    planner = scripted(
        [
            "I will multiply with the calculator.\nNext: caller",
            "The calculator gave 42.\nNext: conclusion",
        ],
        name="planner-model",
    )
    c = chat(
        ['Action: calculator\nAction Input: {"expression": "6*7"}', "6 times 7 is 42."],
        roles={"planner": planner},
    )
    assert "agent: alpha-umi" in c("/agent alpha-umi")
    text = c("What is 6 times 7?")
    assert "tools for this task: calculator" in text
    roles = re.findall(r"^(planner|caller|summarizer) ─", text, re.M)
    assert roles == ["planner", "caller", "planner", "summarizer"]
    assert "tool · calculator" in text and "result: 42" in text
    assert "6 times 7 is 42." in text and text.count("6 times 7 is 42.") == 1
    assert STATS.search(text)
    assert len(planner.requests) == 2 and len(c.model.requests) == 2  # the planner's own model
    trace = c("/trace")
    assert re.search(r"│ caller\s+│", trace) and re.search(r"│ tool calculator\s+│", trace)


def test_one_step_shows_the_plan_each_step_and_replans_after_a_failure(chat):
    plan = {"steps": [{"name": "calculator", "arguments": {"expression": "6*7"}}]}
    plan["steps"].append({"name": "calculator", "arguments": {"expression": "$1 + 1"}})
    bad = {"steps": [{"name": "calculator", "arguments": {"expression": "1/0"}}]}
    good = {"steps": [{"name": "calculator", "arguments": {"expression": "1/1"}}]}
    c = chat([json.dumps(plan), "42, then 43.", json.dumps(bad), json.dumps(good), "1"])
    c("/agent one-step")
    text = c("6*7, then add one")
    assert re.search(r'1\. calculator\(\{"expression": "6\*7"\}\)', text)
    assert "step 1 · calculator" in text and "result: 42" in text
    assert "step 2 · calculator" in text and "result: 43" in text
    assert "42, then 43." in text
    text = c("1/0 please")
    assert "error: step 1 (calculator) failed" in text and "re-plan 1: plan" in text
    assert text.rstrip().splitlines()[-2].strip() == "1"
    c("/tools disable calculator")
    assert "the one-step agent needs a tool" in c("anything")


def test_a_retriever_narrows_the_tools_per_request(chat):
    pytest.importorskip("rank_bm25")
    from toolpath.retrieval.api_retriever import BM25Retriever

    @tool
    def weather(city: str) -> str:
        """Get the weather forecast for a city.

        Args:
            city: the city
        """
        return f"sunny in {city}"

    @tool
    def stock_quote(symbol: str) -> str:
        """Get the latest stock price quote for a ticker symbol.

        Args:
            symbol: the ticker
        """
        return "100"

    tools = [calculator, weather, stock_quote]
    c = chat(
        [call("weather", city="Oslo"), json.dumps({"final_answer": "Sunny."})],
        tools=tools,
        retriever=BM25Retriever(tools, k=1),
        top_k=1,
    )
    text = c("What is the weather forecast in Oslo?")
    assert "tools for this request: weather" in text
    assert "tool · weather" in text and "sunny in Oslo" in text
    prompt = c.model.requests[0].messages[0]["content"]
    assert "- weather:" in prompt and "stock_quote" not in prompt and "calculator" not in prompt


def test_the_command_wires_catalogs_roles_and_the_first_image(scripted, tmp_path, monkeypatch):
    """``toolpath chat`` options reach the session (the REPL itself is replaced)."""
    pytest.importorskip("rank_bm25")
    import toolpath.cli.chat as chat_module
    from toolpath.cli import main

    seen: dict[str, Any] = {}
    specs: list[dict[str, str]] = []

    def load_each(wanted):
        specs.append(dict(wanted))
        return {role: scripted([], name=spec) for role, spec in wanted.items()}

    def repl(session, history_file=None):
        seen["session"] = session
        session.console = Console(file=io.StringIO(), width=120)
        session.greet()
        seen["out"] = session.console.file.getvalue()
        session.close()

    monkeypatch.setattr(chat_module, "load_each", load_each)
    monkeypatch.setattr(chat_module, "run_repl", repl)
    catalog = Path(__file__).parent / "fixtures" / "retrieval_catalog.json"
    image = red_circle(tmp_path / "c.png")
    argv = ["chat", "--catalog", str(catalog), "--retriever", "bm25", "--top-k", "3"]
    argv += ["--planner-model", "p-spec", "--caller", "c-spec", "--image", str(image)]
    argv += ["--out-dir", str(tmp_path / "out"), "--sessions", str(tmp_path / "s.db")]
    assert main(argv) == 0
    session = seen["session"]
    assert specs == [{"": "local", "planner": "p-spec", "caller": "c-spec"}]
    assert session.roles["planner"].name == "p-spec" and "summarizer" not in session.roles
    assert "get_weather_forecast" in session.enabled and "calculator" in session.enabled
    assert type(session.retriever).__name__ == "BM25Retriever" and session.top_k == 3
    assert session.agent_name == "costa" and session.out_dir == tmp_path / "out"
    assert "agent costa" in seen["out"] and f"image: {image.resolve()}" in seen["out"]
    assert main(["chat", "--agent", "wizard"]) == 2


# ---- the web agent in a real chromium -------------------------------------------------------


@pytest.fixture
def page(tmp_path) -> Path:
    path = tmp_path / "form.html"
    path.write_text(PAGE)
    return path


def fill_and_submit(script: list[str]):
    """Replies that read the page like a model: first Submit (the guard refuses it), then
    type the name, then Submit."""

    def reply(messages) -> str:
        text = str(messages[-1]["content"])
        step = script.pop(0)
        if step == "click":
            return call("click", ref=int(re.search(r'\[(\d+)\] button "Submit"', text)[1]))
        return call("type", ref=int(re.search(r"\[(\d+)\] input_text", text)[1]), text="Ada")

    return reply


@pytest.mark.browser
def test_web_agent_acts_on_a_local_page_one_panel_per_action(chat, page):
    steps = ["click", "type", "click"]
    c = chat([fill_and_submit(steps)] * 3)
    text = c(f"/url {page.as_uri()}")
    assert f"page: {page.as_uri()} (Tiny form), 3 elements" in text and "agent: web" in text
    assert re.search(r'\[\d+\] input_text#name "Your name" value=""', text)
    text = c('Type "Ada" into the name field and click Submit')
    assert "action 1 · click · refused by a guard" in text
    assert re.search(r'target: \[\d+\] button "Submit"', text)
    assert 'guard refused: first type "Ada" into its field' in text
    assert "page: unchanged" in text
    assert "action 2 · type · ran" in text and "typed 'Ada' into" in text
    assert re.search(r'~ \[\d+\] input_text#name "Your name" value="Ada"', text)
    assert "action 3 · click · ran" in text and re.search(r'\+ \[\d+\] p#out "Thanks, Ada!"', text)
    assert 'episode over: the task\'s last step ran (clicked "Submit") · 3 actions' in text
    assert STATS.search(text.splitlines()[-1])
    assert "tool click" in c("/trace")


@pytest.mark.browser
def test_web_episode_ends_when_the_agent_says_done_or_at_the_step_cap(chat, tmp_path):
    path = tmp_path / "button.html"
    path.write_text(BUTTON_PAGE)
    c = chat([call("done"), call("press", key="Tab"), call("press", key="Tab")], max_steps=2)
    c(f"/page {path}")  # a plain path works too
    text = c("Look at the page")
    assert "action 1 · done · done" in text
    assert "episode over: the agent said the task is done · 1 action" in text
    text = c("Look at the page again")  # a new request on the same page starts a new episode
    assert "action 2 · press" in text
    assert "episode over: the step cap was reached before the task was done · 2 actions" in text


@pytest.mark.browser
def test_web_actions_wait_for_approval(chat, page):
    c = chat([fill_and_submit(["type", "type", "click"])] * 3, approve="always")
    answers = iter(["n", "not that name", "y", "y"])
    c.session.read = lambda prompt: next(answers)
    c(f"/url {page}")
    text = c('Type "Ada" into the name field and click Submit')
    assert text.count("approve this tool call?") == 3
    assert "action 1 · type · rejected" in text and "not that name" in text
    assert "action 2 · type · ran" in text and "action 3 · click · ran" in text
    assert "episode over: the task's last step ran" in text


@pytest.mark.browser
def test_web_on_a_miniwob_page_and_over_local_http(chat, tmp_path):
    from toolpath.tools.web.browser import miniwob_html

    def click_asked(messages) -> str:
        text = str(messages[-1]["content"])
        want = re.search(r'Click on the "([^"]+)" button', text)[1]
        return call("click", ref=int(re.search(rf'\[(\d+)\] button "{re.escape(want)}"', text)[1]))

    c = chat([click_asked])
    text = c(f"/url {(miniwob_html() / 'miniwob' / 'click-button.html').as_uri()}")
    assert "a MiniWoB task page" in text
    task = re.search(r"the page's own task: (.+)", text)[1]
    text = c(task)
    assert "episode over: success (reward +1.00) · 1 action" in text

    (tmp_path / "form.html").write_text(PAGE)
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *args: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        assert "(Tiny form), 3 elements" in c(f"/url http://127.0.0.1:{port}/form.html")
        text = c(f"/url http://127.0.0.1:{port}/missing.html")
        assert text.count("\n") == 1 and "HTTP 404" in text
    finally:
        server.shutdown()
        server.server_close()
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        free = s.getsockname()[1]
    text = c(f"/url http://127.0.0.1:{free}/")
    assert text.count("\n") == 1 and "ERR_CONNECTION_REFUSED" in text
    assert "Tiny form" in c(f"/url {tmp_path / 'form.html'}")  # the browser still works


def test_page_change_lists_added_removed_and_changed_elements():
    before = element_lines('Instruction: x\n[1] h1 "Hi"\n[2] input_text value=""')
    after = element_lines('Instruction: x\n[2] input_text value="a"\n[3] p "Thanks"')
    text = page_change(before, after).plain
    assert '+ [3] p "Thanks"' in text and '- [1] h1 "Hi"' in text
    assert '~ [2] input_text value="a"' in text
    assert page_change(after, after).plain == "page: unchanged"


# ---- the embedded 0.5B model in a pseudo-terminal ---------------------------------------------


@pytest.mark.model
def test_costa_edits_an_image_in_a_terminal_with_the_embedded_model(local_model_path, tmp_path):
    pexpect = pytest.importorskip("pexpect")
    image = red_circle(tmp_path / "circle.png")
    log = io.StringIO()
    try:
        child = embedded_chat(local_model_path, tmp_path, log, "--agent", "costa")
        child.expect_exact("costa> ")
        child.sendline(f"/image {image}")
        child.expect_exact("(96×96)")
        child.expect_exact("costa> ")
        child.sendline("make the red circle blue")
        child.expect_exact("plan: subtask tree")
        child.expect(r"recolor")
        child.expect_exact("tool path")
        child.expect(r"✓ s\S* locate")
        child.expect(r"✓ s\S* recolor")
        child.expect(r"saved: (\S+\.png)")
        saved = Path(child.match.group(1))
        child.expect(STATS.pattern)
        child.expect_exact("costa> ")
        child.sendline("/exit")
        child.expect(pexpect.EOF)
        child.close()
        assert child.exitstatus == 0
        assert saved == (tmp_path / "circle-edit1.png").resolve() and saved.is_file()
    finally:
        print(log.getvalue())  # shown by pytest when the test fails


@pytest.mark.browser
@pytest.mark.model
def test_web_task_in_a_terminal_with_the_embedded_model(local_model_path, tmp_path):
    pexpect = pytest.importorskip("pexpect")
    page = tmp_path / "button.html"
    page.write_text(BUTTON_PAGE)
    log = io.StringIO()
    try:
        child = embedded_chat(local_model_path, tmp_path, log, "--max-steps", "3")
        child.expect_exact("tools> ")
        child.sendline(f"/url {page.as_uri()}")
        child.expect_exact("(One button), 1 element;")
        child.expect_exact("web> ")
        child.sendline('Click the "OK" button')
        child.expect(r"action 1 · \w+")
        child.expect(r"episode over: .+ · \d actions?")
        child.expect(STATS.pattern)
        child.expect_exact("web> ")
        child.sendline("/exit")
        child.expect(pexpect.EOF)
        child.close()
        assert child.exitstatus == 0
    finally:
        print(log.getvalue())

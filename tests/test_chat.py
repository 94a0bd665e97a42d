"""The ``toolpath chat`` REPL: its commands and rendering with the scripted model, and one
real session in a pseudo-terminal with the embedded 0.5B model."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import sys
import threading
from pathlib import Path

import pytest
from conftest import embedded_chat
from rich.console import Console

from toolpath.cli.chat import ChatSession
from toolpath.cli.chat_view import streamed_answer, tool_result
from toolpath.errors import BackendError
from toolpath.llm.specs import load_model
from toolpath.tools import calculator, tool

STATS = re.compile(r"\d+\+\d+ tokens · \d+\.\d s")


def call(name: str, **args: object) -> str:
    return json.dumps({"tool": name, "arguments": args})


def final(text: str) -> str:
    return json.dumps({"final_answer": text})


class Chat:
    """A ChatSession printing into a string, on a sessions db in ``tmp_path``."""

    def __init__(self, model, tmp_path: Path, **options) -> None:
        self.buffer = io.StringIO()
        console = Console(file=self.buffer, width=120, color_system=None, highlight=False)
        self.session = ChatSession(
            model, console=console, sessions_db=tmp_path / "sessions.db", **options
        )
        self.model = model

    def __call__(self, line: str) -> str:
        """Handle ``line``; return what it printed."""
        start = self.buffer.tell()
        self.session.handle(line)
        return self.buffer.getvalue()[start:]


@pytest.fixture
def chat(scripted, tmp_path):
    """Build a Chat on the scripted model with the given replies."""
    made: list[Chat] = []

    def make(replies, **options) -> Chat:
        made.append(Chat(scripted(list(replies)), tmp_path, **options))
        return made[-1]

    yield make
    for c in made:
        c.session.close()


def test_help_lists_commands_and_keys(chat):
    text = chat([])("/help")
    for command in ("/model SPEC", "/agent", "/tools", "/reset", "/save", "/load", "/trace"):
        assert command in text
    assert "Esc+Enter" in text and "Ctrl-C" in text


def test_unknown_command_keeps_running(chat):
    c = chat([])
    assert "unknown command /frobnicate; /help" in c("/frobnicate now")
    assert c.session.running
    c("/exit")
    assert not c.session.running


def test_tool_call_panel_answer_and_stats(chat):
    c = chat([call("calculator", expression="1234 * 5678"), final("7006652")])
    text = c("What is 1234 * 5678?")
    assert "tool · calculator" in text
    assert '"expression": "1234 * 5678"' in text
    assert "result: 7006652" in text
    assert "Observation from" not in text and "final_answer" not in text  # no agent plumbing
    assert text.rstrip().splitlines()[-2].strip() == "7006652"  # the streamed answer
    assert STATS.search(text.splitlines()[-1])
    assert not text.splitlines()[-1].startswith("0+0")  # the trace's token counts are read


def test_a_tool_that_raises_is_an_error_observation(chat, scripted, tmp_path):
    @tool
    def flaky(x: int) -> int:
        """Fail."""
        raise RuntimeError("disk on fire")

    c = chat([call("flaky", x=1), final("sorry")], tools=[flaky, calculator])
    text = c("try it")
    assert "tool · flaky" in text and "error: " in text and "disk on fire" in text
    assert "sorry" in text and c.session.running


def test_backend_error_prints_one_line_and_the_chat_goes_on(chat):
    def down(_messages):
        raise BackendError("endpoint went away")

    c = chat([down, final("back")])
    text = c("hello")
    assert "error: endpoint went away" in text
    assert STATS.search(text)
    assert "back" in c("hello again")
    # the failed turn was closed in the conversation, so the history stays well formed
    roles = [m["role"] for m in c.model.requests[-1].messages]
    assert roles == ["system", "user", "assistant", "user"]


def test_a_budget_stops_an_answer_and_the_chat_goes_on(chat):
    from toolpath.agents.budget import Budget

    c = chat(
        [
            call("calculator", expression="1 + 1"),
            call("calculator", expression="2 + 2"),
            final("4"),
        ],
        budget=Budget(tool_calls=1),
    )
    text = c("add things")
    assert "stopped: the budget ran out (tool_calls: 1 used of 1)" in text
    assert "4" in c("and now?")  # the stopped turn was closed: the next one runs
    roles = [m["role"] for m in c.model.requests[-1].messages]
    assert roles[-2:] == ["assistant", "user"] and "budget ran out" in str(
        c.model.requests[-1].messages[-2]["content"]
    )


def test_tools_list_enable_disable(chat):
    c = chat([final("plain"), final("with tools")])
    assert re.search(r"✓\s+calculator\s+enabled", c("/tools"))
    assert "calculator: disabled" in c("/tools disable calculator")
    assert re.search(r"✗\s+calculator\s+disabled", c("/tools"))
    c("hi")
    assert c.model.requests[-1].response_format is None  # no tools: a plain reply
    assert "unknown tool 'nope'; available: calculator" in c("/tools enable nope")
    assert "usage" in c("/tools frob calculator")
    c("/tools enable calculator")
    c("hi")
    assert "- calculator: " in c.model.requests[-1].messages[0]["content"]


def test_model_command_keeps_the_old_model_on_a_bad_spec(chat, scripted):
    c = chat([final("still fine")], loader=load_model)
    text = c("/model bogus:x")
    assert text.count("\n") == 1 and "unknown model spec 'bogus:x'" in text
    assert "still using scripted" in text
    assert "still fine" in c("question")

    other = scripted([final("from the other model")], name="other")
    c.session.loader = lambda spec: other
    assert "model: other" in c("/model other")
    assert "from the other model" in c("question")


def test_agent_command(chat):
    c = chat([])
    assert "unknown agent 'wizard'; choose one of: tools, math" in c("/agent wizard")
    assert "agent: math" in c("/agent math")
    assert c.session.agent_name == "math"


def test_conversation_memory_and_reset(chat):
    c = chat([final("Hello Ada."), final("Ada"), final("I don't know.")])
    c("My name is Ada.")
    c("What is my name?")
    seen = [m["content"] for m in c.model.requests[-1].messages]
    assert seen[1:] == ["My name is Ada.", "Hello Ada.", "What is my name?"]
    assert "new conversation" in c("/reset")
    c("What is my name?")
    assert [m["content"] for m in c.model.requests[-1].messages][1:] == ["What is my name?"]


def test_save_and_load_in_a_fresh_session(chat):
    first = chat([final("Hello Ada.")])
    assert "nothing to save yet" in first("/save early")
    first("My name is Ada.")
    assert "saved as s1 (2 messages)" in first("/save s1")
    first.session.close()

    second = chat([final("Your name is Ada.")])  # a new session object on the same db
    assert "no saved conversation 'nope'; saved: s1" in second("/load nope")
    text = second("/load s1")
    assert "loaded s1 (2 messages" in text and "My name is Ada." in text
    second("What is my name?")
    seen = [m["content"] for m in second.model.requests[-1].messages]
    assert seen[1:] == ["My name is Ada.", "Hello Ada.", "What is my name?"]


def test_load_with_no_saved_sessions(chat):
    assert "no saved conversation 'x'; saved: none yet" in chat([])("/load x")


def test_trace_shows_the_last_run(chat):
    c = chat([call("calculator", expression="2+2"), final("4")])
    assert "no run yet" in c("/trace")
    c("2+2?")
    text = c("/trace")
    assert "last run" in text
    assert re.search(r"1\s+│\s+model\s+│\s+\d+\.\d\d\s+│\s+\d+\+\d+", text)
    assert re.search(r"2\s+│\s+tool calculator\s+│\s+\d+\.\d\d\s", text)
    assert re.search(r"3\s+│\s+model", text)


def test_ctrl_c_stops_a_generation_and_the_chat_goes_on(chat):
    started, turn_over = threading.Event(), threading.Event()

    def slow(_messages):
        started.set()
        turn_over.wait(20)  # still "generating" until the chat has given up on this reply
        return final("too late")

    def press_ctrl_c() -> None:
        started.wait(10)
        os.kill(os.getpid(), signal.SIGINT)

    c = chat([slow, final("fine")])
    before = signal.getsignal(signal.SIGINT)  # SIG_IGN when the suite runs in the background
    threading.Thread(target=press_ctrl_c, daemon=True).start()
    text = c("Tell me a long story.")
    turn_over.set()  # only now may the abandoned generation finish
    assert "(stopped)" in text and "too late" not in text
    assert signal.getsignal(signal.SIGINT) is before  # the chat put the old handler back
    assert "fine" in c("Still there?")
    seen = [m["content"] for m in c.model.requests[-1].messages]
    assert seen[1:] == ["Tell me a long story.", "(stopped)", "Still there?"]


def test_math_agent_shows_code_and_interpreter_output(chat):
    pytest.importorskip("jupyter_client")
    c = chat(
        ["```python\n# 1. Multiply 6 by 7.\nprint('product:', 6 * 7)\n```"],
        agent="math",
    )
    text = c("What is 6 times 7?")
    assert "code" in text and "print('product:', 6 * 7)" in text
    assert "interpreter output" in text and "product: 42" in text
    assert "answer: 42" in text
    assert STATS.search(text)


def test_streamed_answer_decodes_a_partial_json_string():
    full = json.dumps({"final_answer": 'A "cat"\n\\ é 😀 end'})
    shown = ""
    for k in range(len(full) + 1):
        now = streamed_answer(full[:k])
        assert now.startswith(shown)
        shown = now
    assert shown == 'A "cat"\n\\ é 😀 end'
    assert streamed_answer('{"tool": "calculator"') == ""


def test_tool_result_strips_the_agent_instructions():
    text = "Observation from calculator: 42\nIf this answers the question, reply with final_answer now."
    assert tool_result("calculator", text) == "42"
    assert tool_result("x", "Error from x: bad\nFix the call, or reply with final_answer.") == "bad"


DRIVER = """
import json, sys
from toolpath.cli.chat import ChatSession, run_repl
from toolpath.llm.scripted import ScriptedModel

def echo(messages):
    return json.dumps({"final_answer": "got " + json.dumps(messages[-1]["content"])})

chat = ChatSession(ScriptedModel([echo], cycle=True), sessions_db=sys.argv[1] + "/s.db")
run_repl(chat, sys.argv[1] + "/history")
"""


def test_prompt_multiline_history_ctrl_c_and_ctrl_d(tmp_path):
    """The real prompt_toolkit prompt in a pseudo-terminal, on the scripted model."""
    pexpect = pytest.importorskip("pexpect")
    (tmp_path / "driver.py").write_text(DRIVER)
    env = {**os.environ, "TERM": "xterm", "PROMPT_TOOLKIT_NO_CPR": "1"}
    env["PYTHONPATH"] = str(Path(__file__).parents[1])

    def spawn():
        child = pexpect.spawn(
            sys.executable,
            [str(tmp_path / "driver.py"), str(tmp_path)],
            env=env,
            encoding="utf-8",
            timeout=60,
            dimensions=(30, 120),
        )
        child.expect_exact("tools>")
        return child

    child = spawn()
    child.send("hello \\\r")  # a line ending with a backslash continues
    child.expect_exact("......")
    child.send("world\r")
    child.expect_exact('got "hello \\nworld"')
    child.expect_exact("tools>")
    child.send("one\x1b\r")  # Esc+Enter (what Alt+Enter sends) inserts a newline
    child.expect_exact("......")
    child.send("two\r")
    child.expect_exact('got "one\\ntwo"')
    child.expect_exact("tools>")
    child.send("half a question")
    child.expect_exact("question")
    child.sendintr()  # Ctrl-C at the prompt drops the line
    child.send("/agent\r")
    child.expect_exact("agent: tools;")  # not "half a question/agent"
    child.expect_exact("tools>")
    child.sendeof()  # Ctrl-D on an empty line quits
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0

    child = spawn()  # history survives the restart: Up recalls earlier inputs
    child.send("\x1b[A")
    child.expect_exact("/agent")
    child.send("\x1b[A")
    child.expect_exact("two")
    child.send("\r")
    child.expect_exact('got "one\\ntwo"')
    child.expect_exact("tools>")
    child.sendline("/exit")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert "half a question" not in (tmp_path / "history").read_text()


@pytest.mark.model
def test_chat_in_a_terminal_with_the_embedded_model(local_model_path, tmp_path):
    pexpect = pytest.importorskip("pexpect")
    prompt = "tools> "

    def spawn():
        return embedded_chat(local_model_path, tmp_path, log, prompt="tools> ")

    def send(child, line: str) -> None:
        child.sendline(line)
        child.expect_exact(line)  # the echo, so later expects see only the reply

    log = io.StringIO()
    try:
        child = spawn()
        send(child, "What is 1234 * 5678? Use the calculator.")
        child.expect("tool · calculator")
        child.expect("7006652")
        child.expect(STATS.pattern)
        child.expect_exact(prompt)
        send(child, "/tools")
        child.expect(r"calculator\s+enabled")
        child.expect_exact(prompt)
        send(child, "/save s1")
        child.expect_exact("saved as s1")
        child.expect_exact(prompt)
        child.sendline("/exit")
        child.expect(pexpect.EOF)
        child.close()
        assert child.exitstatus == 0

        child = spawn()  # a new process: the conversation comes back from SQLite
        send(child, "/load s1")
        child.expect_exact("loaded s1")
        child.expect_exact(prompt)
        # only the restored conversation holds these numbers
        send(child, "What was the result of the previous calculation? Reply with just the number.")
        child.expect(r"7,?006,?652")
        child.expect(STATS.pattern)
        child.expect_exact(prompt)
        # a plain-text reply (no tools, no calculator context): the story streams at once
        for line in ("/reset", "/tools disable calculator"):
            send(child, line)
            child.expect_exact(prompt)
        send(child, "Write a 300-word story about a cat.")
        child.expect(r"\w+\W+\w+\W+\w+")  # three words of the story have arrived
        child.sendintr()
        child.expect_exact("(stopped)")
        child.expect_exact(prompt)
        child.sendline("/exit")
        child.expect(pexpect.EOF)
        child.close()
        assert child.exitstatus == 0
    finally:
        print(log.getvalue())  # shown by pytest when the test fails


@pytest.mark.model
def test_chat_approves_one_call_and_rejects_the_next(local_model_path, tmp_path):
    """``toolpath chat --approve calculator`` in a terminal, on the embedded 0.5B model."""
    pexpect = pytest.importorskip("pexpect")
    log = io.StringIO()
    try:
        child = embedded_chat(
            local_model_path, tmp_path, log, "--approve", "calculator", prompt="tools> "
        )
        child.sendline("What is 1234 * 5678? Use the calculator.")
        child.expect_exact("approve this tool call?")
        child.expect_exact("calculator")
        child.expect_exact("[y]es / [e]dit / [n]o: ")
        child.sendline("y")
        child.expect("tool · calculator")
        child.expect("7006652")
        child.expect(STATS.pattern)
        child.expect_exact("tools> ")
        child.sendline("Now use the calculator for 99 * 99.")
        child.expect_exact("approve this tool call?")
        child.expect_exact("[y]es / [e]dit / [n]o: ")
        for _ in range(4):  # a small model may ask again after a rejection: refuse each time
            child.sendline("n")
            child.expect_exact("why (the model sees this; Enter to skip): ")
            child.sendline("no more calculations today")
            child.expect("rejected this call")
            if child.expect([STATS.pattern, re.escape("[y]es / [e]dit / [n]o: ")]) == 0:
                break
        else:
            pytest.fail("the run did not end after four rejections")
        child.expect_exact("tools> ")
        assert "result: 9801" not in log.getvalue()  # the rejected call never ran
        child.sendline("/exit")
        child.expect(pexpect.EOF)
        child.close()
        assert child.exitstatus == 0
    finally:
        print(log.getvalue())

"""The web agent graph on real task pages in a real chromium, with the shared scripted model
(and, marked ``model``, the embedded 0.5B model); its nodes alone on a stand-in page."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from toolpath.agents.base import sqlite_checkpointer
from toolpath.agents.web.agent import WebSteps, web_react_agent
from toolpath.errors import BrowserError, ConfigError, ToolError
from toolpath.evals.web.compose import generate
from toolpath.llm.scripted import ScriptedModel
from toolpath.tools.base import Tool, tool
from toolpath.tools.web.browser import Browser, TaskSite, WebEnv
from toolpath.tools.web.observation import EpisodeStatus

pytestmark = pytest.mark.asyncio(loop_scope="module")
browser = pytest.mark.browser


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TaskSite]:
    pages = tmp_path_factory.mktemp("gen")
    generate(["click-button", "enter-text"], pages)
    with TaskSite({"gen": pages}) as s:
        yield s


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def env(site: TaskSite) -> AsyncIterator[WebEnv]:
    async with Browser() as browser:
        yield await browser.env(site)


def _prompt(messages: Sequence[dict[str, Any]]) -> str:
    return str(messages[-1]["content"])


def _call(tool: str, **arguments: Any) -> str:
    return json.dumps({"tool": tool, "arguments": arguments})


def _ref(page: str, pattern: str) -> int:
    m = re.search(r"\[(\d+)\] " + pattern, page)
    assert m, f"{pattern!r} not on the page:\n{page}"
    return int(m.group(1))


def click_asked_button(messages: Sequence[dict[str, Any]]) -> str:
    """Read the prompt like a model would: find the asked-for button and click it."""
    text = _prompt(messages)
    want = re.search(r'Click on the "([^"]+)" button', text)
    assert want
    return _call("click", ref=_ref(text, 'button "' + re.escape(want.group(1)) + '"'))


@browser
async def test_agent_acts_until_the_page_ends_the_episode(env: WebEnv) -> None:
    await env.reset("miniwob/click-button", seed=2)
    model = ScriptedModel(
        replies=[_call("done"), '{"final_answer": "finished"}', "not json", click_asked_button]
    )
    state = await web_react_agent(model=model).ainvoke("", {"configurable": {"env": env}})
    assert state["status"] == "done" and state["reward"] == 1.0 and state["success"]
    assert state["steps"] == 4 and model.remaining == 0
    history = state["history"]
    assert "task is not finished" in history[0] and "task is not finished" in history[1]
    assert "could not be used" in history[2]
    assert re.match(
        r'- click\(ref=\d+\): clicked \[\d+\] button ".+"\. The episode has ended', history[3]
    )
    first = model.requests[0]
    assert _prompt(first.messages).startswith('Task: Click on the "')
    assert "Subtasks" not in _prompt(first.messages)  # one subtask: no plan shown
    reply = first.response_format["json_schema"]["schema"]
    assert "final_answer" not in reply["properties"]  # done is a tool
    assert reply["properties"]["tool_calls"]["maxItems"] == 1  # one action a step
    schema = reply["properties"]["tool_calls"]["items"]["anyOf"]
    click = next(o for o in schema if o["properties"]["name"]["const"] == "click")
    refs = click["properties"]["arguments"]["properties"]["ref"]["enum"]
    listed = re.findall(r"^\[(\d+)\]", _prompt(first.messages), re.M)
    assert refs == sorted(int(r) for r in listed)
    nodes = [t["node"] for t in state["trace"]]
    assert nodes[0] == "plan" and nodes.count("act") == 4 and nodes.count("execute") == 2
    acts = [t for t in state["trace"] if t["node"] == "act"]
    assert all(t["model"] == "scripted" and t["tokens_out"] > 0 for t in acts)
    assert "error" in acts[2] and "error" not in acts[3]
    done, click = (t for t in state["trace"] if t["node"] == "execute")
    assert (done["tool"], done["ok"], click["tool"], click["ok"]) == ("done", True, "click", True)
    assert all(t["seconds"] >= 0 for t in state["trace"])


@browser
async def test_agent_solves_a_composed_task_in_order(env: WebEnv) -> None:
    def fill(messages: Sequence[dict[str, Any]]) -> str:
        text = _prompt(messages)
        word = re.search(r'2\. Enter "([^"]+)"', text)
        assert word
        return _call("type", ref=_ref(text, "input_text#tt"), text=word.group(1))

    def submit(messages: Sequence[dict[str, Any]]) -> str:
        return _call(
            "click", ref=_ref(_prompt(messages), 'button#subbtn.secondary-action "Submit"')
        )

    obs = await env.reset("gen/click-button_enter-text", seed=5)
    model = ScriptedModel(replies=[click_asked_button, _call("done"), fill, submit])
    state = await web_react_agent(model).ainvoke(obs.instruction, {"configurable": {"env": env}})
    assert state["subtasks"] == [
        obs.instruction.split(", and then ")[0] + ".",
        "E" + obs.instruction.split(", and then ")[1][1:],
    ]
    assert state["status"] == "done" and state["reward"] == 1.0
    assert "1. Click on the" in _prompt(model.requests[0].messages)
    second = _prompt(model.requests[1].messages)
    assert "- click(ref=" in second and "-- part 2 --" in second


@browser
async def test_step_cap_stops_the_agent_without_ending_the_episode(env: WebEnv) -> None:
    obs = await env.reset("miniwob/enter-text", seed=1)
    field = next(e for e in obs.shown if e.tag == "input_text")
    model = ScriptedModel(replies=[_call("type", ref=field.ref, text="nope")], cycle=True)
    state = await web_react_agent(model, max_steps=3).ainvoke("", {"configurable": {"env": env}})
    assert state["status"] == "step_limit" and state["steps"] == 3
    assert state["reward"] == 0.0 and not state["success"]
    status = await env.status()
    assert not status.done  # the agent never ends the episode itself


@browser
async def test_agent_streams_tokens_and_updates(env: WebEnv) -> None:
    await env.reset("miniwob/click-button", seed=8)
    agent = web_react_agent(ScriptedModel(replies=[click_asked_button]))
    events = [
        (mode, chunk)
        async for mode, chunk in agent.astream(
            "", {"configurable": {"env": env}}, stream_mode=["custom", "updates"]
        )
    ]
    tokens = [c for m, c in events if m == "custom"]
    assert tokens and tokens[0]["node"] == "act" and '"tool": "click"' in tokens[0]["delta"]
    nodes = [next(iter(c)) for m, c in events if m == "updates"]
    assert nodes == ["plan", "observe", "act", "execute", "observe"]


async def test_agent_needs_a_page() -> None:
    with pytest.raises(ConfigError, match="needs a page"):
        await web_react_agent(ScriptedModel(replies=[])).ainvoke("Click on the button.")


@pytest.mark.parametrize(
    "options", [{"max_steps": 0}, {"max_tokens": 0}, {"history_lines": 0}], ids=str
)
async def test_builder_checks_its_options(options: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match="at least 1"):
        web_react_agent(ScriptedModel(replies=[]), **options)


@browser
async def test_runs_are_checkpointed_and_resume(env: WebEnv, tmp_path: Path) -> None:
    await env.reset("miniwob/click-button", seed=4)
    db = tmp_path / "c.db"
    agent = web_react_agent(
        model=ScriptedModel(replies=[click_asked_button]), checkpointer=sqlite_checkpointer(db)
    )
    config: Any = {"configurable": {"env": env, "thread_id": "episode-4"}}
    paused = await agent.ainvoke("", config, interrupt_before=["execute"])
    assert paused["steps"] == 1 and not paused["history"]
    snapshot = agent.get_state(config)
    assert snapshot.next == ("execute",) and snapshot.values["status"] == "running"
    assert not (await env.status()).done

    # another agent on the same database (as another process would) resumes the thread
    again = web_react_agent(model=ScriptedModel(replies=[]), checkpointer=sqlite_checkpointer(db))
    state = await again.ainvoke(None, config)
    assert state["status"] == "done" and state["success"] and state["steps"] == 1
    assert state["history"][0].startswith("- click(ref=")
    final = again.get_state(config)
    assert final.next == () and final.values["status"] == "done"
    assert final.values["history"] == state["history"]
    assert [t["node"] for t in final.values["trace"]] == [
        "plan",
        "observe",
        "act",
        "execute",
        "observe",
    ]


class StandInPage:
    """Just what the ``execute`` node reads of a page: its tools, status and liveness."""

    def __init__(self, *, ended: bool = False, dies: bool = False) -> None:
        self.last = None
        self.alive = True
        self.ended = ended
        self.dies = dies

    def tools(self, obs: object = None) -> list[Tool]:
        def click(ref: int) -> str:
            """Click element ``ref``."""
            if ref == 0:
                raise ToolError("there is no element [0] on the page")
            self.alive = not self.dies
            return f"clicked [{ref}]."

        def done() -> str:
            """Say the task is finished."""
            raise AssertionError("done is answered by the agent, not run")

        return [tool(click), tool(done)]

    async def status(self) -> EpisodeStatus:
        return EpisodeStatus(1, self.ended, 1.0, 1.0 if self.ended else 0.0, "solved")


def _turn(name: str, **arguments: Any) -> dict[str, Any]:
    call = {"id": "c1", "type": "function", "function": {"name": name}}
    call["function"]["arguments"] = json.dumps(arguments)
    return {"messages": [{"role": "assistant", "content": "", "tool_calls": [call]}]}


async def test_execute_node_alone() -> None:
    steps = WebSteps(ScriptedModel(replies=[]))
    page = StandInPage()
    config: Any = {"configurable": {"env": page}}
    update = await steps.execute(_turn("click", ref=3), config)
    assert update["history"] == ["- click(ref=3): clicked [3]."]
    [record] = update["trace"]
    assert record["node"] == "execute" and record["tool"] == "click" and record["ok"]
    assert record["seconds"] >= 0

    update = await steps.execute(_turn("click", ref=0), config)
    assert update["history"] == ["- click(ref=0): error: there is no element [0] on the page"]
    assert not update["trace"][0]["ok"] and "no element" in update["trace"][0]["error"]

    update = await steps.execute(_turn("done"), config)
    assert update["history"][0].startswith("- done(): the page has not ended the episode")
    assert update["trace"][0]["tool"] == "done" and update["trace"][0]["ok"]
    update = await steps.execute(_turn("done"), {"configurable": {"env": StandInPage(ended=True)}})
    assert update["history"] == ["- done(): The episode has ended with reward +1.00 (solved)."]

    with pytest.raises(BrowserError, match=r"the page died during click\(ref=5\)"):
        await steps.execute(
            _turn("click", ref=5), {"configurable": {"env": StandInPage(dies=True)}}
        )


@browser
@pytest.mark.model
async def test_embedded_model_drives_a_real_page(
    env: WebEnv, local_model: Any, tmp_path: Path
) -> None:
    await env.reset("miniwob/click-button", seed=0)
    state = await web_react_agent(local_model, max_steps=2).ainvoke(
        "", {"configurable": {"env": env}}
    )
    assert state["status"] in ("done", "step_limit")
    acts = [t for t in state["trace"] if t["node"] == "act"]
    assert acts and all(t["tokens_out"] > 0 for t in acts)
    # constrained decoding: every reply was a usable tool call
    assert not any("error" in t for t in acts), state["history"]


@browser
async def test_an_action_waits_for_approval_and_a_rejection_is_shown(env: WebEnv) -> None:
    from langgraph.types import Command

    await env.reset("miniwob/click-button", seed=5)
    model = ScriptedModel(replies=[click_asked_button, click_asked_button])
    agent = web_react_agent(model, approve={"click"})
    config: Any = {"configurable": {"env": env, "thread_id": "approve-5"}}
    paused = await agent.ainvoke("", config)
    (pending,) = paused["__interrupt__"]
    assert pending.value["tool"] == "click" and isinstance(pending.value["arguments"]["ref"], int)
    assert not (await env.status()).done  # nothing was clicked yet
    reject = {"action": "reject", "message": "look again"}
    paused = await agent.ainvoke(Command(resume=reject), config)
    assert "The user rejected this call: look again" in paused["history"][-1]
    assert not (await env.status()).done
    state = await agent.ainvoke(Command(resume=True), config)
    assert state["status"] == "done" and state["success"] and state["steps"] == 2


@browser
async def test_an_edited_action_runs_with_the_reviewers_arguments(env: WebEnv) -> None:
    from langgraph.types import Command

    await env.reset("miniwob/click-button", seed=5)
    asked: list[dict[str, Any]] = []

    def click_elsewhere(messages: Sequence[dict[str, Any]]) -> str:
        right = json.loads(click_asked_button(messages))
        asked.append(right)
        return _call("click", ref=int(right["arguments"]["ref"]) + 1000)  # no such element

    agent = web_react_agent(ScriptedModel(replies=[click_elsewhere]), approve="always")
    config: Any = {"configurable": {"env": env, "thread_id": "edit-5"}}
    paused = await agent.ainvoke("", config)
    (pending,) = paused["__interrupt__"]
    assert pending.value["arguments"]["ref"] == asked[0]["arguments"]["ref"] + 1000
    edit = {"action": "edit", "arguments": {"ref": asked[0]["arguments"]["ref"]}}
    state = await agent.ainvoke(Command(resume=edit), config)
    assert state["status"] == "done" and state["success"] and state["steps"] == 1

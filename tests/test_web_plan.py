"""The plan-then-act web agent on real pages in a real chromium: the subtask order for composed
and reversed wordings, the current subtask's part of the page only, the submit, order and
repeat guards, approval, and one episode with the embedded 0.5B model. The text rules behind
the guards are checked without a page."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

import pytest
import pytest_asyncio

from toolpath.agents.web import web_agent
from toolpath.agents.web.focus import typed_values
from toolpath.evals.web.compose import generate
from toolpath.llm.scripted import ScriptedModel
from toolpath.tools.web.browser import Browser, TaskSite, WebEnv

browser = pytest.mark.browser
PAGES = [["click-button", "enter-text"], ["enter-text", "click-checkboxes"]]
STEPPED = ["click-button-sequence", "enter-text"]  # the first base task's own text has two steps


def _now(messages: Sequence[dict[str, Any]]) -> tuple[str, str]:
    """The NOW subtask and the page part of the prompt."""
    text = str(messages[-1]["content"])
    now = re.search(r"\[NOW\] (.+)", text)
    assert now, text
    return now.group(1), text.split("Page elements for subtask", 1)[1]


def _ref(page: str, pattern: str) -> int:
    m = re.search(r"\[(\d+)\] " + pattern, page)
    assert m, f"{pattern!r} not on the page:\n{page}"
    return int(m.group(1))


def _call(tool: str, **arguments: Any) -> str:
    return json.dumps({"tool": tool, "arguments": arguments})


def solver(messages: Sequence[dict[str, Any]]) -> str:
    """A careful policy: type what is asked, tick what is named, then press the button."""
    subtask, page = _now(messages)
    for text in typed_values(subtask):
        field = re.search(r'\[(\d+)\] input_text\S* value="([^"]*)"', page)
        if field and field.group(2) != text:
            return _call("type", ref=int(field.group(1)), text=text)
    if subtask.startswith("Select"):
        names = re.findall(r"[\w]+", subtask.split(" and click")[0])[1:]
        for name in names:
            box = re.search(
                rf'\[\d+\] label "{re.escape(name)}"\n\[(\d+)\] input_checkbox\S* checked=false',
                page,
            )
            if box:
                return _call("click", ref=int(box.group(1)))
    asked = re.search(r'Click on the "([^"]+)" button', subtask)
    label = asked.group(1) if asked else "Submit"
    return _call("click", ref=_ref(page, rf'button\S* "{re.escape(label)}"'))


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TaskSite]:
    pages = tmp_path_factory.mktemp("plan")
    generate(STEPPED, pages)
    for base in PAGES:
        generate(base, pages)
        generate(base, pages, reverse=True)
    with TaskSite({"gen": pages}) as s:
        yield s


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def env(site: TaskSite) -> AsyncIterator[WebEnv]:
    async with Browser() as b:
        yield await b.env(site)


pytestmark = pytest.mark.asyncio(loop_scope="module")


@browser
@pytest.mark.parametrize("base", PAGES, ids="_".join)
@pytest.mark.parametrize("reverse", [False, True], ids=["composed", "reversed"])
async def test_subtasks_in_order_of_execution_and_one_part_at_a_time(
    env: WebEnv, base: list[str], reverse: bool
) -> None:
    name = "_".join(base) + ("-reverse" if reverse else "")
    obs = await env.reset(f"gen/{name}", seed=3)
    model = ScriptedModel([solver], cycle=True)
    state = await web_agent(model).ainvoke(obs.instruction, {"configurable": {"env": env}})
    assert state["status"] == "done" and state["success"], state["history"]
    first = "Click on the" if base[0] == "click-button" else "Enter"
    assert state["subtasks"][0].startswith(first)  # reversed wording, same order of execution
    prompts = [str(r.messages[-1]["content"]) for r in model.requests]
    assert "[NOW]" in prompts[0] and "[done]" not in prompts[0]
    assert "[done]" in prompts[-1] and state["current"] == 1
    # the first prompt shows the first part only: the second subtask's button is not there
    first_page = prompts[0].split("Page elements for subtask 1:")[1]
    second_part = [e for e in obs.shown if e.section == 1]
    assert second_part and all(f"[{e.ref}]" not in first_page for e in second_part)


@browser
async def test_the_submit_guard_refuses_a_submit_before_the_typing(env: WebEnv) -> None:
    obs = await env.reset("gen/enter-text_click-checkboxes", seed=4)
    submit_first = lambda m: _call("click", ref=_ref(_now(m)[1], r'button\S* "Submit"'))  # noqa: E731
    model = ScriptedModel([submit_first, solver], cycle=True)
    state = await web_agent(model).ainvoke(obs.instruction, {"configurable": {"env": env}})
    assert "refused: first type" in state["history"][0] and "still empty" in state["history"][0]
    assert state["status"] == "done" and state["success"], state["history"]


@browser
async def test_the_repeat_guard_refuses_an_action_that_changed_nothing(env: WebEnv) -> None:
    obs = await env.reset("gen/click-button_enter-text", seed=5)
    text = next(e for e in obs.shown if e.section == 0 and e.tag not in ("button", "body"))
    stuck = lambda m: _call("click", ref=text.ref)  # noqa: E731
    model = ScriptedModel([stuck, stuck] + [solver] * 6)
    state = await web_agent(model, max_steps=8).ainvoke(
        obs.instruction, {"configurable": {"env": env}}
    )
    history = state["history"]
    assert not history[0].endswith("refused") and "refused: you just did exactly this" in history[1]
    third = str(model.requests[2].messages[-1]["content"]).split("Page elements for subtask 1:")[1]
    assert f"[{text.ref}]" not in third  # the refused element is not offered again
    assert state["success"], history


@browser
async def test_approval_pauses_the_plan_then_act_agent(env: WebEnv) -> None:
    from langgraph.types import Command

    obs = await env.reset("gen/click-button_enter-text", seed=6)
    agent = web_agent(ScriptedModel([solver], cycle=True), approve={"type"})
    config: Any = {"configurable": {"env": env, "thread_id": "plan-approve"}}
    paused = await agent.ainvoke(obs.instruction, config)
    (pending,) = paused["__interrupt__"]
    assert pending.value["tool"] == "type" and paused["current"] == 1
    state = await agent.ainvoke(Command(resume={"action": "reject", "message": "not yet"}), config)
    assert "The user rejected this call: not yet" in state["history"][-1]
    assert state["__interrupt__"][0].value["tool"] == "type"  # tried again, asks again
    state = await agent.ainvoke(Command(resume=True), config)
    assert state["success"], state["history"]


@browser
@pytest.mark.model
async def test_embedded_model_on_a_two_subtask_page(env: WebEnv, local_model: Any) -> None:
    obs = await env.reset("gen/click-button_enter-text", seed=0)
    state = await web_agent(local_model, max_steps=3).ainvoke(
        obs.instruction, {"configurable": {"env": env}}
    )
    assert state["status"] in ("done", "step_limit") and len(state["subtasks"]) == 2
    acts = [t for t in state["trace"] if t["node"] == "act"]
    assert acts and all(t["tokens_out"] > 0 for t in acts)
    assert not any("error" in t for t in acts), state["history"]  # every reply a usable call


@browser
async def test_the_plan_has_one_subtask_per_part_of_a_composed_page(env: WebEnv) -> None:
    from toolpath.agents.web.plan_act import PlanActSteps

    obs = await env.reset("gen/" + "_".join(STEPPED), seed=1)
    steps = PlanActSteps(ScriptedModel([]))
    update = await steps.plan({"instruction": obs.instruction}, {"configurable": {"env": env}})
    assert len(update["subtasks"]) == 2 and ", then click" in update["subtasks"][0]
    assert update["current"] == 0

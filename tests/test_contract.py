"""The agent contract (``toolpath/agents/base.py``), checked on every builder.

Each builder runs with the shared scripted model and a SQLite checkpointer; then a second
checkpointer on the same file (as another process would open it) sees the finished run, and
the thread goes on from there. The one tool-execution step runs a turn's calls concurrently.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from toolpath.agents.base import execute_calls, sqlite_checkpointer
from toolpath.llm.scripted import ScriptedModel
from toolpath.tools import calculator, tool

Run = Callable[[Any, Any, dict[str, Any]], dict[str, Any]]


@tool
def secret_code(name: str) -> str:
    """Look up the secret code of a person.

    Args:
        name: the person's first name
    """
    return "SC-" + hashlib.sha256(name.lower().encode()).hexdigest()[:6].upper()


def thread(name: str) -> dict[str, Any]:
    return {"configurable": {"thread_id": name}}


def code(src: str) -> str:
    return f"```python\n{src}\n```"


@pytest.fixture(scope="module")
def kernel() -> Iterator[Any]:
    from toolpath.tools.code.kernel import PythonKernel

    k = PythonKernel()
    k.start()
    yield k
    k.shutdown()


def check_resume(make: Callable[[Any], Any], run: Run, db: Path) -> None:
    """Run once on a thread, reopen the database with a new checkpointer and agent, check the
    saved state, then run the same thread again."""
    first = make(sqlite_checkpointer(db))
    done = run(first, "first", thread("t"))
    assert done["status"] == "done", done
    reopened = make(sqlite_checkpointer(db))
    saved = reopened.get_state(thread("t"))
    assert saved.values["status"] == "done"
    assert not saved.next  # the run finished; nothing is pending
    assert [k for k in done if k not in saved.values] == []
    again = run(reopened, "second", thread("t"))
    assert again["status"] == "done"
    history = list(reopened.get_state_history(thread("t")))
    assert len(history) > len(list(first.get_state_history(thread("t")))) / 2
    assert reopened.get_state(thread("other")).values == {}


def test_tool_agent_checkpoints_and_resumes(tmp_path: Path) -> None:
    from toolpath.agents.react import tool_agent

    replies = [
        json.dumps({"tool": "calculator", "arguments": {"expression": "2 + 3"}}),
        json.dumps({"final_answer": "5"}),
        json.dumps({"final_answer": "still 5"}),
    ]
    model = ScriptedModel(replies)

    def make(cp: Any) -> Any:
        return tool_agent(model=model, tools=[calculator], checkpointer=cp)

    def run(agent: Any, q: str, cfg: dict[str, Any]) -> dict[str, Any]:
        return agent.invoke(q, cfg)

    check_resume(make, run, tmp_path / "c.db")
    state = tool_agent(
        model=model, tools=[calculator], checkpointer=sqlite_checkpointer(tmp_path / "c.db")
    ).get_state(thread("t"))
    contents = [m.get("content") for m in state.values["messages"]]
    assert "first" in contents and "second" in contents  # one conversation across both runs
    assert state.values["answer"] == "still 5"


def test_alpha_umi_agent_checkpoints_and_resumes(tmp_path: Path) -> None:
    from toolpath.agents.alpha_umi.agent import alpha_umi_agent

    call = 'Action: secret_code\nAction Input: {"name": "Alice"}'
    planner = ScriptedModel(["Next: caller", "Next: conclusion"], cycle=True, name="planner")
    caller = ScriptedModel([call], cycle=True, name="caller")
    summarizer = ScriptedModel(["The code is known."], cycle=True, name="summarizer")

    def make(cp: Any) -> Any:
        return alpha_umi_agent(
            model=planner,
            tools=[secret_code],
            planner=planner,
            caller=caller,
            summarizer=summarizer,
            checkpointer=cp,
        )

    def run(agent: Any, q: str, cfg: dict[str, Any]) -> dict[str, Any]:
        return agent.invoke(q, cfg)

    check_resume(make, run, tmp_path / "c.db")


@pytest.mark.parametrize("method", ["dotamath", "pot", "cot"])
def test_math_agents_checkpoint_and_resume(tmp_path: Path, kernel: Any, method: str) -> None:
    from toolpath.agents.math.baselines import cot_agent, pot_agent
    from toolpath.agents.math.dotamath import math_agent

    replies = {
        "dotamath": ["1. Add.", code("print(48 + 24)"), "\\boxed{72}"],
        "pot": [code("print(48 + 24)")],
        "cot": ["48 + 24 = 72. \\boxed{72}"],
    }[method]
    builder = {"dotamath": math_agent, "pot": pot_agent, "cot": cot_agent}[method]
    model = ScriptedModel(replies, cycle=True)

    def make(cp: Any) -> Any:
        return builder(model=model, checkpointer=cp)

    def run(agent: Any, q: str, cfg: dict[str, Any]) -> dict[str, Any]:
        conf = {"configurable": {**cfg["configurable"], "kernel": kernel}}
        state = agent.invoke(f"What is 48 + 24? ({q})", conf)
        assert state["answer"] == "72"
        return state

    check_resume(make, run, tmp_path / "c.db")


def test_costa_agent_checkpoints_and_resumes(tmp_path: Path) -> None:
    from toolpath.agents.costa.agent import costa_agent
    from toolpath.evals.costa.tasks import generate
    from toolpath.tools.image.ops import ImageState

    task = generate(1, seed=3, min_subtasks=2, max_subtasks=2)[0]
    tree = {
        "subtasks": [
            {
                "id": f"s{s.id}",
                "type": s.type,
                "params": s.params,
                "parents": [f"s{p}" for p in s.parents],
            }
            for s in task.subtasks
        ]
    }
    model = ScriptedModel([json.dumps(tree)], cycle=True)

    def make(cp: Any) -> Any:
        return costa_agent(model=model, checkpointer=cp)

    def run(agent: Any, q: str, cfg: dict[str, Any]) -> dict[str, Any]:
        state = agent.invoke({"request": task.instruction, "context": ImageState(task.image)}, cfg)
        assert task.check(state["context"].image)
        return state

    check_resume(make, run, tmp_path / "c.db")


@pytest.mark.browser
def test_web_agent_checkpoints_and_resumes(tmp_path: Path) -> None:
    from toolpath.agents.web import web_agent
    from toolpath.tools.web.browser import Browser, TaskSite

    def click_asked(messages: Any) -> str:
        text = str(messages[-1]["content"])
        want = re.search(r'Click on the "([^"]+)" button', text)
        assert want
        ref = re.search(r"\[(\d+)\] button \"" + re.escape(want.group(1)) + '"', text)
        assert ref
        return json.dumps({"tool": "click", "arguments": {"ref": int(ref.group(1))}})

    model = ScriptedModel([click_asked], cycle=True)

    async def main(site: TaskSite) -> None:
        async with Browser() as browser:
            env = await browser.env(site)

            def make(cp: Any) -> Any:
                return web_agent(model=model, checkpointer=cp)

            async def arun(agent: Any, q: str, cfg: dict[str, Any]) -> dict[str, Any]:
                await env.reset("miniwob/click-button", seed=2 if q == "first" else 3)
                conf = {"configurable": {**cfg["configurable"], "env": env}}
                return await agent.ainvoke("", conf)

            db = tmp_path / "c.db"
            first = await arun(make(sqlite_checkpointer(db)), "first", thread("t"))
            assert first["status"] == "done" and first["success"]
            reopened = make(sqlite_checkpointer(db))
            saved = await reopened.aget_state(thread("t"))
            assert saved.values["status"] == "done" and not saved.next
            again = await arun(reopened, "second", thread("t"))
            assert again["status"] == "done"

    with TaskSite({}) as site:
        asyncio.run(main(site))


def test_one_turns_tool_calls_run_concurrently() -> None:
    @tool
    def slow_sync(x: int) -> int:
        """Sleeps half a second in a thread."""
        time.sleep(0.5)
        return x

    @tool
    async def slow_async(x: int) -> int:
        """Sleeps half a second on the loop."""
        await asyncio.sleep(0.5)
        return x * 10

    calls = [
        {"id": "a", "function": {"name": "slow_sync", "arguments": '{"x": 1}'}},
        {"id": "b", "function": {"name": "slow_async", "arguments": '{"x": 2}'}},
        {"id": "c", "function": {"name": "missing", "arguments": "{}"}},
        {"id": "d", "function": {"name": "slow_sync", "arguments": "not json"}},
    ]
    tools = {t.name: t for t in (slow_sync, slow_async)}
    start = time.perf_counter()
    out = execute_calls(calls, tools)
    took = time.perf_counter() - start
    assert took < 0.8, f"two 0.5 s tools took {took:.2f} s: not concurrent"
    assert [o.id for o in out] == ["a", "b", "c", "d"]
    assert [(o.ok, o.result) for o in out[:2]] == [(True, "1"), (True, "20")]
    assert not out[2].ok and "no tool named 'missing'" in (out[2].error or "")
    assert not out[3].ok and "not valid JSON" in (out[3].error or "")
    assert out[0].record("tools") == {
        "node": "tools",
        "tool": "slow_sync",
        "seconds": out[0].seconds,
        "ok": True,
    }

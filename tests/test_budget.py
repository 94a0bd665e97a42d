"""Run budgets: each kind of limit stops a run at a step boundary with ``budget_exhausted``."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from toolpath.agents.budget import Budget, Prices
from toolpath.agents.react import tool_agent
from toolpath.errors import ConfigError
from toolpath.tools import calculator, tool


def calc(expression: str) -> str:
    return json.dumps({"tool": "calculator", "arguments": {"expression": expression}})


def final(text: str) -> str:
    return json.dumps({"final_answer": text})


LOOP = [calc("1 + 1"), calc("2 + 2"), calc("3 + 3"), calc("4 + 4"), final("done")]


@tool
def slow(seconds: float) -> str:
    """Wait, then say so."""
    time.sleep(seconds)
    return "waited"


def test_no_budget_runs_to_the_end(scripted):
    state = tool_agent(scripted(LOOP), [calculator], max_steps=10).invoke("go")
    assert state["status"] == "done" and state["answer"] == "done"


def test_tool_calls(scripted):
    model = scripted(LOOP)
    agent = tool_agent(model, [calculator], max_steps=10, budget=Budget(tool_calls=2))
    state = agent.invoke("go")
    assert state["status"] == "budget_exhausted"
    assert state["reason"] == "tool_calls: 2 used of 2"
    assert len(model.requests) == 2  # stopped right after the second call's step


def test_tokens(scripted):
    model = scripted(LOOP)
    first = tool_agent(scripted(LOOP), [calculator], max_steps=10).invoke("go")
    per_turn = first["trace"][0]["tokens_in"] + first["trace"][0]["tokens_out"]
    agent = tool_agent(model, [calculator], max_steps=10, budget=Budget(tokens=per_turn + 1))
    state = agent.invoke("go")
    assert state["status"] == "budget_exhausted" and state["reason"].startswith("tokens: ")
    assert len(model.requests) == 2  # the second turn passed the limit


def test_seconds(scripted):
    model = scripted([json.dumps({"tool": "slow", "arguments": {"seconds": 0.5}}), final("x")])
    state = tool_agent(model, [slow], budget=Budget(seconds=0.3)).invoke("go")
    assert state["status"] == "budget_exhausted" and state["reason"].startswith("seconds: ")
    assert len(model.requests) == 1


def test_usd_on_a_priced_model_and_free_local_models(scripted):
    model = scripted(LOOP, name="openai:gpt-4o-mini")
    state = tool_agent(model, [calculator], max_steps=10, budget=Budget(usd=1e-6)).invoke("go")
    assert state["status"] == "budget_exhausted" and state["reason"].startswith("usd: $")
    local = scripted(LOOP, name="local:qwen2.5-coder-1.5b")
    state = tool_agent(local, [calculator], max_steps=10, budget=Budget(usd=1e-6)).invoke("go")
    assert state["status"] == "done"
    assert Prices().usd("openai:gpt-4o@http://h/v1", 1_000_000, 0) == pytest.approx(2.5)


def test_an_unpriced_remote_model_is_an_error_not_free(scripted):
    model = scripted(LOOP, name="openai:mystery-model")
    with pytest.raises(ConfigError, match="no price for the model 'openai:mystery-model'"):
        tool_agent(model, [calculator], budget=Budget(usd=1.0)).invoke("go")


def test_stream_modes_and_async(scripted):
    agent = tool_agent(scripted(LOOP), [calculator], max_steps=10, budget=Budget(tool_calls=1))
    updates = list(agent.stream("go", stream_mode="updates"))
    assert updates[-1] == {
        "budget": {"status": "budget_exhausted", "reason": "tool_calls: 1 used of 1"}
    }
    agent = tool_agent(scripted(LOOP), [calculator], max_steps=10, budget=Budget(tool_calls=1))
    state = asyncio.run(agent.ainvoke("go"))
    assert state["status"] == "budget_exhausted"
    agent = tool_agent(scripted(LOOP), [calculator], max_steps=10, budget=Budget(tool_calls=1))
    pairs = list(agent.stream("go", stream_mode=["updates", "values"]))
    assert pairs[-1][0] == "values" and pairs[-1][1]["status"] == "budget_exhausted"
    assert {mode for mode, _ in pairs} == {"updates", "values"}


def test_the_math_agent_takes_a_budget(scripted):
    from toolpath.agents.math.dotamath import math_agent

    agent = math_agent(scripted(["```python\nprint(1/0)\n```"] * 4), budget=Budget(tool_calls=1))
    try:
        state = agent.invoke("What is 1/0?")
    finally:
        agent.close()
    assert state["status"] == "budget_exhausted" and state["rounds"] == 1


def test_price_tables_and_bad_limits(tmp_path):
    toml = tmp_path / "prices.toml"
    toml.write_text("[my-model]\ninput = 1.0\noutput = 3.0\n")
    prices = Prices.load(toml)
    assert prices.usd("openai:my-model", 1_000_000, 1_000_000) == pytest.approx(4.0)
    assert prices.usd("gpt-4o-mini", 1_000_000, 0) == pytest.approx(0.15)  # defaults kept
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"m": {"input": "cheap"}}))
    with pytest.raises(ConfigError, match="needs numbers 'input' and 'output'"):
        Prices.load(bad)
    with pytest.raises(ConfigError, match="must be positive"):
        Budget(tokens=0)


@pytest.fixture
def models(monkeypatch):
    import toolpath.llm.specs

    table: dict[str, object] = {}
    monkeypatch.setattr(toolpath.llm.specs, "load_model", lambda spec, **kw: table[spec])
    return table


def test_run_stops_at_its_budget_and_says_which(models, scripted, capsys):
    from toolpath.cli.app import main

    models["m"] = scripted(LOOP)
    assert main(["run", "go", "-m", "m", "--max-tokens-total", "5"]) == 1
    assert "the run stopped at its budget (tokens: " in capsys.readouterr().err
    assert main(["run", "go", "-m", "m", "--prices", "p.json"]) == 2
    assert "--prices prices the runs for --max-usd" in capsys.readouterr().err

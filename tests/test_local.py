"""The real embedded 0.5B model end to end, and the openai backend against its llama.cpp server."""

from __future__ import annotations

import json

import pytest

from toolpath.agents.react import tool_agent
from toolpath.llm.openai_compat import OpenAICompatModel
from toolpath.llm.specs import load_model
from toolpath.tools import calculator

pytestmark = pytest.mark.model


def test_plain_completion(local_model):
    reply = local_model.complete(
        [{"role": "user", "content": "What is the capital of France? Answer in one word."}],
        max_tokens=10,
    )
    assert "paris" in reply.content.lower()
    assert reply.usage.prompt_tokens > 5
    assert reply.usage.completion_tokens > 0
    assert reply.latency_s > 0
    assert reply.finish_reason in ("stop", "length")


def test_stream_matches_completion(local_model):
    events = list(
        local_model.stream([{"role": "user", "content": "Count from 1 to 5."}], max_tokens=30)
    )
    final = events[-1].completion
    assert final is not None
    assert "".join(e.delta for e in events) == final.content
    assert len([e for e in events if e.delta]) > 3
    assert final.usage.completion_tokens > 3


def test_constrained_json_reply(local_model):
    schema = {
        "type": "object",
        "properties": {"answer": {"type": "integer"}},
        "required": ["answer"],
    }
    reply = local_model.complete(
        [{"role": "user", "content": "What is 2 + 3? Reply in JSON."}],
        response_format={"type": "json_schema", "json_schema": {"name": "r", "schema": schema}},
        max_tokens=20,
    )
    assert json.loads(reply.content) == {"answer": 5}


def test_prompt_cache_is_reused_across_turns(local_model):
    history = [
        {"role": "system", "content": "You are a terse assistant. " * 20},
        {"role": "user", "content": "Name a colour."},
    ]
    first = local_model.complete(history, max_tokens=8)
    history += [first.message, {"role": "user", "content": "Name another one."}]
    second = local_model.complete(history, max_tokens=8)
    assert second.usage.cached_tokens >= first.usage.prompt_tokens - 2


def test_agent_calls_the_real_calculator(local_model):
    state = tool_agent(model=local_model, tools=[calculator]).invoke(
        "What is 1234 * 5678? Use the calculator."
    )
    assert state["status"] == "done"
    assert "7006652" in state["answer"].replace(",", "")
    tool_results = [m["content"] for m in state["messages"] if m["role"] == "tool"]
    assert any("Observation from calculator: 7006652" in r for r in tool_results)


def test_agent_plain_answer_without_tools(local_model):
    state = tool_agent(model=local_model).invoke(
        "What is the capital of France? Answer in one word."
    )
    assert state["status"] == "done"
    assert "paris" in state["answer"].lower()
    assert [r["node"] for r in state["trace"]] == ["model"]


def test_openai_backend_against_llama_cpp_server(local_model):
    """The `openai` backend talking HTTP to a real llama.cpp server on 127.0.0.1."""
    assert local_model.base_url.startswith("http://127.0.0.1:")
    remote = OpenAICompatModel("qwen", base_url=local_model.base_url)
    reply = remote.complete([{"role": "user", "content": "Say the word: yes"}], max_tokens=5)
    assert reply.content.strip()
    assert reply.usage.completion_tokens > 0
    chunks = list(remote.stream([{"role": "user", "content": "Say: ok"}], max_tokens=5))
    assert chunks[-1].completion is not None
    remote.close()


def test_url_spec_lists_the_served_model(local_model):
    remote = load_model(local_model.base_url)  # no "#MODEL": asks the server's /models
    assert remote.name
    state = tool_agent(model=remote, tools=[calculator]).invoke(
        "What is 1234 * 5678? Use the calculator."
    )
    # native mode on llama.cpp: the model writes a ```json block, which is parsed as a last resort
    assert "7006652" in (state["answer"] or "").replace(",", "")
    remote.close()


def test_dotamath_solves_a_problem_end_to_end(local_model):
    from toolpath.agents.math.dotamath import math_agent

    agent = math_agent(local_model)
    try:
        state = agent.invoke(
            "Natalia sold clips to 48 of her friends in April, and then she sold half as many "
            "clips in May. How many clips did Natalia sell altogether in April and May?"
        )
    finally:
        agent.close()
    assert state["answer"] is not None and state["rounds"] >= 1
    assert "72" in state["answer"]
    assert "72" in (state["output"] or "")  # the real interpreter printed it

"""The α-UMi agent end to end on two real embedded models in one graph.

The planner and summarizer run on the session's 0.5B server (``local_model``, n_ctx 4096); the
caller runs on a second llama.cpp server started here from the same file with another
configuration (n_ctx 2048). The tool is a real Python function whose output the model cannot
guess, so a right answer proves the call really ran and its result reached the summarizer.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from typing import Any

import pytest

from toolpath.agents.alpha_umi.agent import alpha_umi_agent
from toolpath.tools import tool

pytestmark = pytest.mark.model

calls: list[str] = []


@tool
def secret_code(name: str) -> str:
    """Look up the secret code of a person.

    Args:
        name: the person's first name
    """
    calls.append(name)
    return "SC-" + hashlib.sha256(name.strip().lower().encode()).hexdigest()[:6].upper()


@tool
def word_count(text: str) -> int:
    """Count the words in a text."""
    return len(text.split())


@pytest.fixture(scope="module")
def second_model(local_model_path: str) -> Iterator[Any]:
    from toolpath.llm.local import LocalModel

    model = LocalModel(local_model_path, n_ctx=2048)
    model.name = "local:qwen2.5-coder-0.5b@2048"  # tell the two servers apart in the trace
    yield model
    model.close()


def test_two_real_models_in_one_graph(local_model: Any, second_model: Any) -> None:
    assert local_model.base_url != second_model.base_url  # two llama.cpp servers
    code = secret_code.run({"name": "Alice"})
    calls.clear()
    agent = alpha_umi_agent(
        tools=[secret_code, word_count],
        planner=local_model,
        caller=second_model,
        summarizer=local_model,
        max_steps=4,
    )
    start = time.perf_counter()
    state = agent.invoke("What is the secret code of Alice?")
    seconds = time.perf_counter() - start
    by_node = [(r["node"], r.get("model")) for r in state["trace"]]
    print(f"\nα-UMi two-model run: {seconds:.1f} s; trace:")
    for r in state["trace"]:
        print(f"  {r['node']:<10} {r.get('model', ''):<40} {r['seconds']:.2f} s")
    for t in state["conversation"]:
        print(f"  {t['from']}: {t['value']!r}")

    assert state["status"] == "done", state["conversation"]
    assert code in state["answer"]
    assert [c.strip().lower() for c in calls] == ["alice"]  # the real tool ran, once
    assert ("planner", local_model.name) in by_node
    assert ("caller", second_model.name) in by_node
    assert ("summarizer", local_model.name) in by_node
    assert by_node[-1][0] == "summarizer"
    assert [t["from"] for t in state["conversation"]][-3:] == [
        "observation",
        "assistant",
        "conclusion",
    ]
    assert all(r["tokens_out"] > 0 for r in state["trace"] if "model" in r)

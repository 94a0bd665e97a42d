"""A small tool-using eval for the replica, Ray and scaling tests and the scaling benchmark.

Each episode asks the real tool agent (:func:`toolpath.agents.react.tool_agent`, json tool
mode) to compute an arithmetic expression with the real calculator tool. The model side is
a fixed policy, :func:`calculator_policy`: the first request gets a calculator call with the
question's expression, the request after the observation gets ``final_answer`` with the
value the tool returned. So an episode is exactly two model requests, and its answer comes
from executing the tool, never from the policy.

The policy runs inside the shared :class:`~toolpath.llm.scripted.ScriptedModel` (a callable
reply with ``cycle=True``, safe for concurrent episodes since it depends only on the
request) or behind the fault server (``FaultServer(respond=server_policy)``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from toolpath.agents.base import tokens
from toolpath.evals.harness import Example, Record
from toolpath.llm.base import Message

OBSERVATION_PREFIX = "Observation from calculator:"


def arithmetic_examples(n: int, *, wrong_gold: Sequence[int] = ()) -> list[Example]:
    """``n`` questions ``Compute a * b + c.`` with their values as gold; the indexes in
    ``wrong_gold`` get a gold off by one, so scores are not all 100%."""
    out = []
    for i in range(n):
        expr = f"{i + 3} * {(i * 7) % 11 + 2} + {i % 5}"
        value = (i + 3) * ((i * 7) % 11 + 2) + i % 5
        gold = value + 1 if i in wrong_gold else value
        out.append(Example(id=f"q-{i:04d}", question=f"Compute {expr}.", gold=str(gold)))
    return out


def calculator_policy(messages: Sequence[Message]) -> str:
    """The scripted reply (json tool mode) to a tool agent's request."""
    last = str(messages[-1].get("content") or "")
    if last.startswith(OBSERVATION_PREFIX):
        value = last[len(OBSERVATION_PREFIX) :].splitlines()[0].strip()
        return json.dumps({"final_answer": value})
    question = next(str(m["content"]) for m in messages if m["role"] == "user")
    expr = question.removeprefix("Compute ").removesuffix(".")
    return json.dumps({"tool": "calculator", "arguments": {"expression": expr}})


def server_policy(body: dict[str, Any]) -> str:
    """:func:`calculator_policy` for ``FaultServer(respond=...)``."""
    return calculator_policy(body.get("messages") or [])


def calculator_agent(model: Any) -> Any:
    """The real tool agent with the real calculator tool on ``model``."""
    from toolpath.agents.react import tool_agent
    from toolpath.tools import calculator

    return tool_agent(model=model, tools=[calculator], max_steps=4)


def scripted_agent(task: Any = None) -> Any:
    """An agent factory (picklable, for Ray workers): the tool agent on the scripted model."""
    from toolpath.llm.scripted import ScriptedModel

    return calculator_agent(ScriptedModel([calculator_policy], cycle=True))


class ArithmeticTask:
    """The task family: load the questions, run one episode, score exact match."""

    name = "arithmetic"

    def __init__(self, n: int = 16) -> None:
        self.n = n

    def load(self, *, data: str | Path | None = None, limit: int | None = None) -> list[Example]:
        return arithmetic_examples(limit or self.n)

    async def run_one(self, example: Example, agent: Any) -> Record:
        state = await agent.ainvoke(example.question)
        trace = state.get("trace", [])
        return {
            "id": example.id,
            "question": example.question,
            "answer": state.get("answer"),
            "gold": example.gold,
            "status": state.get("status"),
            "tool_rounds": sum(1 for t in trace if t.get("node") == "tool"),
            "tokens": tokens(trace),
        }

    def score(self, record: Record) -> dict[str, float]:
        return {"exact": float(str(record.get("answer")) == str(record.get("gold")))}


# --------------------------------------------------------------------------- math (CoT)

_SUM = re.compile(r"What is (\d+) plus (\d+)\?")


def gsm8k_file(folder: Path, n: int, *, wrong_gold: Sequence[int] = ()) -> Path:
    """A GSM8K-format file of ``n`` sums ("What is A plus B?", ``#### A+B``)."""
    path = folder / "test.jsonl"
    rows = []
    for i in range(n):
        a, b = 10 + i, 7 * i + 3
        gold = a + b + (1 if i in wrong_gold else 0)
        rows.append({"question": f"What is {a} plus {b}?", "answer": f"{a} + {b}\n#### {gold}"})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def sum_policy(body: dict[str, Any]) -> str:
    """A chain-of-thought reply to the last sum question of a request (for the fault server)."""
    text = str((body.get("messages") or [{}])[-1].get("content") or "")
    match = _SUM.search(text)
    if match is None:
        return "I cannot tell."
    a, b = int(match[1]), int(match[2])
    return f"{a} + {b} = {a + b}. The answer is \\boxed{{{a + b}}}."

"""Baselines for the math agent, on the same model, demonstrations and kernel.

- **PoT** (program of thought): write one program; its last printed line is the answer.
      START -> write_code -> run_code -> END
- **CoT** (chain of thought): reason in text and give a boxed answer.
      START -> reason -> END
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph

from toolpath.agents.base import AgentGraph, as_model, finish, tool_record
from toolpath.agents.budget import Budget
from toolpath.agents.math.answers import extract_answer, extract_boxed
from toolpath.agents.math.common import CODE_STOP, MathState, MathSteps, extract_code, initial_state
from toolpath.agents.math.prompts import math_demos, prompt
from toolpath.llm.base import ChatModel, Message, assistant, system, user

PROBLEM = "Problem: {question}"


def few_shot(name: str, demos: int, solution: Callable[[dict[str, Any]], str]) -> list[Message]:
    """The system prompt ``prompts/<name>.md``, then the first ``demos`` demonstrations, each
    a problem and its ``solution``. Zero-shot (``demos=0``) uses ``prompts/<name>-zero.md``,
    which asks for the reasoning the demonstrations would otherwise show."""
    prefix: list[Message] = [system(prompt(name if demos else f"{name}-zero"))]
    for d in math_demos()[:demos]:
        prefix += [user(PROBLEM.format(question=d["question"])), assistant(solution(d))]
    return prefix


def pot_prefix(demos: int) -> list[Message]:
    """PoT's system prompt and ``demos`` worked programs (zero-shot: reasoning in comments)."""
    return few_shot("pot", demos, lambda d: f"```python\n{d['pot']}\n```")


class ProgramOfThought(MathSteps):
    """PoT's nodes: one program, executed once; its last printed line is the answer."""

    def write_code(self, state: MathState, config: RunnableConfig) -> dict[str, Any]:
        self.kernels.get(config, fresh=True)
        turn = user(PROBLEM.format(question=state["question"]))
        text, record = self.reply("write_code", [turn], stop=CODE_STOP)
        return {"messages": [turn, assistant(text)], "code": extract_code(text), "trace": [record]}

    def run_code(self, state: MathState, config: RunnableConfig) -> dict[str, Any]:
        code = state.get("code")
        if code is None:
            return {"status": "failed", "rounds": 0, "output": "(no program)"}
        result, seconds = self.run(code, config)
        answer = last_printed(result.stdout) if result.ok else None
        return {
            "output": result.text(),
            "rounds": 1,
            "answer": answer,
            "failed": not result.ok,
            "status": "done" if answer else "failed",
            "trace": [tool_record("run_code", "python", seconds, result.ok, result.error)],
        }


def last_printed(stdout: str) -> str | None:
    """The answer on the last non-blank line a program printed (:func:`printed_answer`)."""
    lines = [ln.strip() for ln in stdout.splitlines() if ln.strip()]
    return printed_answer(lines[-1]) if lines else None


def printed_answer(line: str) -> str | None:
    """The answer on a program's last printed line: the line when it is a value (``42``,
    ``3/4``, ``\\frac{1}{2}``, ``2*sqrt(3)``), else what follows its last colon when that is
    one (``Answer: 3/4``), else the ToRA extraction (``The answer is 18``, the last number).
    A whole number printed as a float (``72.0``, from a division) is given as ``72``."""
    line = line.replace("\b", "\\b")  # print("\boxed{3}") prints a backspace
    rest = line.rsplit(":", 1)[-1].strip()
    if "\\boxed" in line:
        answer = extract_boxed(line)
    elif not _WORDS.search(line):
        answer = line
    elif rest and not _WORDS.search(rest):
        answer = rest
    else:
        answer = extract_answer(line)
    if answer and _WHOLE_FLOAT.fullmatch(answer):
        return answer.split(".")[0]
    return answer


_WHOLE_FLOAT = re.compile(r"-?\d+\.0+")
_WORDS = re.compile(r"(?<![\\a-zA-Z])[a-zA-Z]{3,}\b(?!\s*\()")
"""A word of three letters or more that is neither a LaTeX command nor a call (``sqrt(2)``)."""


class ChainOfThought(MathSteps):
    """CoT's one node: reasoning in text ending with ``\\boxed{}``; no code is run."""

    def reason(self, state: MathState) -> dict[str, Any]:
        turn = user(PROBLEM.format(question=state["question"]))
        text, record = self.reply("reason", [turn])
        answer = extract_answer(text)
        return {
            "messages": [turn, assistant(text)],
            "answer": answer,
            "rounds": 0,
            "status": "done" if answer else "failed",
            "trace": [record],
        }


def pot_agent(
    model: ChatModel | str | None = None,
    *,
    demos: int = 0,
    code_timeout: float = 15.0,
    max_tokens: int = 512,
    budget: Budget | None = None,
    checkpointer: Any = None,
) -> AgentGraph:
    """Program of thought: one program, executed once; its last printed line is the answer.
    Kernels, results and checkpointing as for :func:`~toolpath.agents.math.dotamath.math_agent`.

    Zero-shot by default (``prompts/pot-zero.md``: reasoning in code comments), the stronger
    variant on GSM8K train (75% against 55% with ``demos=3`` on its first 20 problems,
    ``benchmarks/results/2026-12-07/math``)."""
    steps = ProgramOfThought(
        as_model(model), pot_prefix(demos), max_tokens=max_tokens, code_timeout=code_timeout
    )
    g = StateGraph(MathState).add_sequence([steps.write_code, steps.run_code])
    g.add_edge(START, "write_code")
    g.add_edge("run_code", END)
    compiled = g.compile(checkpointer=checkpointer, name="pot")
    return finish(compiled, initial_state, steps.kernels.close, budget)


def cot_agent(
    model: ChatModel | str | None = None,
    *,
    demos: int = 0,
    max_tokens: int = 512,
    temperature: float = 0.0,
    budget: Budget | None = None,
    checkpointer: Any = None,
) -> AgentGraph:
    """Chain of thought: reasoning in text ending with ``\\boxed{}``; no code is run.

    Zero-shot by default (``prompts/cot-zero.md``), the stronger variant on GSM8K train (50%
    against 35% with ``demos=3`` on its first 20 problems, ``benchmarks/results/2026-12-07/math``)."""
    prefix = few_shot("cot", demos, lambda d: f"{d['cot']} \\boxed{{{d['answer']}}}")
    steps = ChainOfThought(as_model(model), prefix, max_tokens=max_tokens, temperature=temperature)
    g = StateGraph(MathState).add_sequence([steps.reason])
    g.add_edge(START, "reason")
    g.add_edge("reason", END)
    return finish(g.compile(checkpointer=checkpointer, name="cot"), initial_state, budget=budget)

"""Baselines for the math agent, on the same model, demonstrations and kernel.

- **PoT** (program of thought): write one program; its last printed line is the answer.
      START -> write_code -> run_code -> END
- **CoT** (chain of thought): reason in text and give a boxed answer.
      START -> reason -> END
"""

from __future__ import annotations

import time
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph

from toolpath.agents.base import AgentGraph, as_model, finish, generate, model_record
from toolpath.agents.math.common import (
    CODE_STOP,
    KernelSource,
    MathState,
    execute,
    extract_code,
    initial_state,
)
from toolpath.agents.math.prompts import math_demos, prompt
from toolpath.agents.math.answers import extract_answer
from toolpath.llm.base import ChatModel, Message, assistant, system, user

PROBLEM = "Problem: {question}"


def pot_agent(
    model: ChatModel | str | None = None,
    *,
    demos: int = 3,
    code_timeout: float = 15.0,
    max_tokens: int = 512,
) -> AgentGraph:
    """Program of thought: one program, executed once; its last printed line is the answer."""
    llm = as_model(model)
    prefix: list[Message] = [system(prompt("pot"))]
    for d in math_demos()[:demos]:
        prefix += [
            user(PROBLEM.format(question=d["question"])),
            assistant(f"```python\n{d['pot']}\n```"),
        ]
    kernels = KernelSource()

    def write_code(state: MathState, config: RunnableConfig) -> dict[str, Any]:
        kernels.get(config, fresh=True)
        turn = user(PROBLEM.format(question=state["question"]))
        c = generate(llm, [*prefix, turn], node="write_code", max_tokens=max_tokens, stop=CODE_STOP)
        return {
            "messages": [turn, assistant(c.content)],
            "code": extract_code(c.content),
            "trace": [model_record("write_code", c)],
        }

    def run_code(state: MathState, config: RunnableConfig) -> dict[str, Any]:
        start = time.perf_counter()
        code = state.get("code")
        if code is None:
            return {"status": "failed", "rounds": 0, "output": "(no program)"}
        result = execute(kernels.get(config), code, code_timeout)
        lines = [ln.strip() for ln in result.stdout.splitlines() if ln.strip()]
        answer = lines[-1] if result.ok and lines else None
        record = {"node": "run_code", "seconds": time.perf_counter() - start, "ok": result.ok}
        return {
            "output": result.text(),
            "rounds": 1,
            "answer": answer,
            "failed": not result.ok,
            "status": "answered" if answer else "failed",
            "trace": [record],
        }

    g = StateGraph(MathState)
    g.add_node("write_code", write_code)
    g.add_node("run_code", run_code)
    g.add_edge(START, "write_code")
    g.add_edge("write_code", "run_code")
    g.add_edge("run_code", END)
    return finish(g.compile(), initial_state, on_close=kernels.close)


def cot_agent(
    model: ChatModel | str | None = None, *, demos: int = 3, max_tokens: int = 512
) -> AgentGraph:
    """Chain of thought: reasoning in text ending with ``\\boxed{}``; no code is run."""
    llm = as_model(model)
    prefix: list[Message] = [system(prompt("cot"))]
    for d in math_demos()[:demos]:
        prefix += [
            user(PROBLEM.format(question=d["question"])),
            assistant(f"{d['cot']} \\boxed{{{d['answer']}}}"),
        ]

    def reason(state: MathState) -> dict[str, Any]:
        turn = user(PROBLEM.format(question=state["question"]))
        c = generate(llm, [*prefix, turn], node="reason", max_tokens=max_tokens)
        answer = extract_answer(c.content)
        return {
            "messages": [turn, assistant(c.content)],
            "answer": answer,
            "rounds": 0,
            "status": "answered" if answer else "failed",
            "trace": [model_record("reason", c)],
        }

    g = StateGraph(MathState)
    g.add_node("reason", reason)
    g.add_edge(START, "reason")
    g.add_edge("reason", END)
    return finish(g.compile(), initial_state)

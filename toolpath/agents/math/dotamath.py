"""DotaMath: decompose a math problem, write Python, run it, read the real output, correct.

    START -> decompose -> write_code -> run_code
    run_code  -> reflect  (error or implausible output, rounds left) | conclude
    reflect   -> run_code (corrected program) | conclude
    conclude  -> run_code (the model chose to fix its program, rounds left) | END

The model never sees output it wrote itself: code generation stops where a model would
start an "output" block, and the kernel's real output is inserted instead. The answer is
the last ``\\boxed{}`` the model writes; without one, the ToRA fallbacks apply (program
output, then the last number).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
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
    looks_wrong,
)
from toolpath.agents.math.prompts import math_demos, prompt
from toolpath.agents.math.answers import extract_answer, extract_boxed
from toolpath.llm.base import ChatModel, Message, assistant, system, user

DECOMPOSE = "Problem: {question}\nList the subtasks."
WRITE = "Write the program."
READ_OK = (
    "```output\n{output}\n```\nIf this output solves the problem, give the final answer as "
    "\\boxed{{}}. Otherwise say what is wrong and write a corrected program."
)
READ_FAILED = (
    "```output\n{output}\n```\nThe program failed: {why}. Say what went wrong in one "
    "sentence, then write a corrected program."
)
WRITE_FIX = "Write the corrected program."
REPEATED = (
    "this program is the same as one that already ran, so its output cannot change; find "
    "the mistake in the reasoning and write a different program"
)
GIVE_UP = (
    "```output\n{output}\n```\nNo more runs are left. Give your best final answer as \\boxed{{}}."
)


def demo_messages(n: int) -> list[Message]:
    """The first ``n`` demonstrations as complete DotaMath conversations."""
    out: list[Message] = []
    for d in math_demos()[:n]:
        out += [
            user(DECOMPOSE.format(question=d["question"])),
            assistant(d["subtasks"]),
            user(WRITE),
            assistant(f"```python\n{d['code']}\n```"),
            user(READ_OK.format(output=d["output"])),
            assistant(f"{d['conclusion']} \\boxed{{{d['answer']}}}"),
        ]
    return out


def math_agent(
    model: ChatModel | str | None = None,
    *,
    max_rounds: int = 4,
    demos: int = 3,
    code_timeout: float = 15.0,
    max_tokens: int = 512,
) -> AgentGraph:
    """Build the DotaMath agent. ``max_rounds`` bounds the program runs per problem (ToRA: 4).

    Invoke it with the problem text; the result state has ``answer`` (the boxed content),
    ``messages`` (the trajectory), ``rounds`` and a timed ``trace``. Pass a kernel per run with
    ``config={"configurable": {"kernel": k}}`` to run problems concurrently.
    """
    llm = as_model(model)
    prefix = [system(prompt("dotamath")), *demo_messages(demos)]
    kernels = KernelSource()

    def ask(
        state: MathState, turn: str, node: str, before: Sequence[Message] = (), **kw: Any
    ) -> tuple[str, dict[str, Any]]:
        messages = [*prefix, *state.get("messages", []), *before, user(turn)]
        c = generate(llm, messages, node=node, max_tokens=max_tokens, **kw)
        update = {"messages": [user(turn), assistant(c.content)], "trace": [model_record(node, c)]}
        return c.content, update

    def decompose(state: MathState, config: RunnableConfig) -> dict[str, Any]:
        kernels.get(config, fresh=True)
        _, update = ask(
            state, DECOMPOSE.format(question=state["question"]), "decompose", stop=["```"]
        )
        return update

    def write_code(state: MathState) -> dict[str, Any]:
        text, update = ask(state, WRITE, "write_code", stop=CODE_STOP)
        return {**update, "code": extract_code(text)}

    def run_code(state: MathState, config: RunnableConfig) -> dict[str, Any]:
        code, rounds = state.get("code"), state.get("rounds", 0) + 1
        start = time.perf_counter()
        why: str | None
        if code is None:
            output, why = "(no program)", "no ```python block was written"
        elif _same_program(code, state.get("programs", [])):
            # the output on screen is that program's only if it was the latest one run
            latest = _same_program(code, state.get("programs", [])[-1:])
            output = (state.get("output") or "") if latest else "(not run again)"
            why = REPEATED
        else:
            result = execute(kernels.get(config), code, code_timeout)
            output = result.text()
            why = result.error if not result.ok else looks_wrong(result.stdout, state["question"])
            if result.timed_out:
                why = f"it ran longer than {code_timeout:g} s"
        record = {"node": "run_code", "seconds": time.perf_counter() - start, "ok": why is None}
        return {
            "programs": [code] if code is not None else [],
            "output": output,
            "failed": why is not None,
            "rounds": rounds,
            "why": why,
            "trace": [record],
        }

    def reflect(state: MathState) -> dict[str, Any]:
        turn = READ_FAILED.format(output=state.get("output"), why=state.get("why"))
        text, update = ask(state, turn, "reflect", stop=CODE_STOP)
        if extract_boxed(text) is None and extract_code(text) is None:
            # It explained the failure but wrote no fix: ask for the program once.
            text, more = ask(state, WRITE_FIX, "reflect", update["messages"], stop=CODE_STOP)
            update = {k: update[k] + more[k] for k in update}
        return {**update, **_answer_or_code(text, state, allow_code=True, fallback=False)}

    def conclude(state: MathState) -> dict[str, Any]:
        out_of_rounds = state.get("rounds", 0) >= max_rounds
        template = GIVE_UP if out_of_rounds else READ_OK
        text, update = ask(
            state, template.format(output=state.get("output")), "conclude", stop=CODE_STOP
        )
        return {
            **update,
            **_answer_or_code(text, state, allow_code=not out_of_rounds, fallback=True),
        }

    def after_run(state: MathState) -> str:
        if state.get("failed") and state.get("rounds", 0) < max_rounds:
            return "reflect"
        return "conclude"

    def after_fix(state: MathState) -> str:
        if state.get("status") != "running":
            return END
        return "run_code" if state.get("code_changed") else "conclude"

    g = StateGraph(MathState)
    g.add_node("decompose", decompose)
    g.add_node("write_code", write_code)
    g.add_node("run_code", run_code)
    g.add_node("reflect", reflect)
    g.add_node("conclude", conclude)
    g.add_edge(START, "decompose")
    g.add_edge("decompose", "write_code")
    g.add_edge("write_code", "run_code")
    g.add_conditional_edges("run_code", after_run, ["reflect", "conclude"])
    g.add_conditional_edges("reflect", after_fix, ["run_code", "conclude", END])
    g.add_conditional_edges("conclude", after_fix, ["run_code", END])
    return finish(g.compile(), initial_state, on_close=kernels.close)


def _answer_or_code(
    text: str, state: MathState, *, allow_code: bool, fallback: bool
) -> dict[str, Any]:
    """A boxed answer ends the run; a new program (if allowed) goes back to the kernel;
    otherwise, with ``fallback``, the ToRA extraction order gives the answer."""
    boxed = extract_boxed(text)
    if boxed is not None:
        return {"answer": boxed, "status": "answered", "code_changed": False}
    code = extract_code(text) if allow_code else None
    if code is not None:
        return {"code": code, "code_changed": True}
    if fallback:
        output = None if state.get("failed") else _last_value(state.get("output") or "")
        answer = extract_answer(text, program_output=output)
        return {
            "answer": answer,
            "status": "answered" if answer else "failed",
            "code_changed": False,
        }
    return {"code_changed": False}


def _same_program(code: str, programs: Sequence[str]) -> bool:
    """Whether ``code`` already ran, ignoring blank lines, comment lines and indentation."""

    def key(src: str) -> list[str]:
        lines = (ln.strip() for ln in src.splitlines())
        return [ln for ln in lines if ln and not ln.startswith("#")]

    return any(key(code) == key(p) for p in programs)


def _last_value(output: str) -> str | None:
    """The value on the program's last printed line, without its ``label:`` (our prints
    are labelled by design)."""
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    return lines[-1].rsplit(":", 1)[-1].strip() or None if lines else None

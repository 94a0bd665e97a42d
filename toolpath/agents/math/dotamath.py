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

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph

from toolpath.agents.base import AgentGraph, as_model, finish, tool_record
from toolpath.agents.math.answers import extract_answer, extract_boxed
from toolpath.agents.math.common import (
    CODE_STOP,
    MathState,
    MathSteps,
    extract_code,
    initial_state,
    looks_wrong,
)
from toolpath.agents.math.prompts import math_demos, prompt
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


@dataclass(eq=False)
class DotaMath(MathSteps):
    """DotaMath's nodes and routes, each callable alone on a :class:`MathState`."""

    max_rounds: int = 4

    def ask(
        self, state: MathState, turn: str, node: str, before: Sequence[Message] = (), **kw: Any
    ) -> tuple[str, dict[str, Any]]:
        """The reply to ``turn`` after the conversation so far, and the state update."""
        text, record = self.reply(node, [*state.get("messages", []), *before, user(turn)], **kw)
        return text, {"messages": [user(turn), assistant(text)], "trace": [record]}

    def decompose(self, state: MathState, config: RunnableConfig) -> dict[str, Any]:
        self.kernels.get(config, fresh=True)
        turn = DECOMPOSE.format(question=state["question"])
        return self.ask(state, turn, "decompose", stop=["```"])[1]

    def write_code(self, state: MathState) -> dict[str, Any]:
        text, update = self.ask(state, WRITE, "write_code", stop=CODE_STOP)
        return {**update, "code": extract_code(text)}

    def run_code(self, state: MathState, config: RunnableConfig) -> dict[str, Any]:
        code, programs = state.get("code"), state.get("programs", [])
        why: str | None
        seconds = 0.0
        if code is None:
            output, why = "(no program)", "no ```python block was written"
        elif _same_program(code, programs):
            # the output on screen is that program's only if it was the latest one run
            latest = _same_program(code, programs[-1:])
            output = (state.get("output") or "") if latest else "(not run again)"
            why = REPEATED
        else:
            result, seconds = self.run(code, config)
            output = result.text()
            why = result.error if not result.ok else looks_wrong(result.stdout, state["question"])
            if result.timed_out:
                why = f"it ran longer than {self.code_timeout:g} s"
        return {
            "programs": [code] if code is not None else [],
            "output": output,
            "failed": why is not None,
            "rounds": state.get("rounds", 0) + 1,
            "why": why,
            "trace": [tool_record("run_code", "python", seconds, why is None, why)],
        }

    def reflect(self, state: MathState) -> dict[str, Any]:
        turn = READ_FAILED.format(output=state.get("output"), why=state.get("why"))
        text, update = self.ask(state, turn, "reflect", stop=CODE_STOP)
        if extract_boxed(text) is None and extract_code(text) is None:
            # It explained the failure but wrote no fix: ask for the program once.
            text, more = self.ask(state, WRITE_FIX, "reflect", update["messages"], stop=CODE_STOP)
            update = {k: update[k] + more[k] for k in update}
        return {**update, **_answer_or_code(text, state, allow_code=True, fallback=False)}

    def conclude(self, state: MathState) -> dict[str, Any]:
        out_of_rounds = state.get("rounds", 0) >= self.max_rounds
        turn = (GIVE_UP if out_of_rounds else READ_OK).format(output=state.get("output"))
        text, update = self.ask(state, turn, "conclude", stop=CODE_STOP)
        return {
            **update,
            **_answer_or_code(text, state, allow_code=not out_of_rounds, fallback=True),
        }

    def after_run(self, state: MathState) -> str:
        if state.get("failed") and state.get("rounds", 0) < self.max_rounds:
            return "reflect"
        return "conclude"

    def after_fix(self, state: MathState) -> str:
        if state.get("status") != "running":
            return END
        return "run_code" if state.get("code_changed") else "conclude"


def math_agent(
    model: ChatModel | str | None = None,
    *,
    max_rounds: int = 4,
    demos: int = 3,
    code_timeout: float = 15.0,
    max_tokens: int = 512,
    samples: int = 1,
    mixed: bool = False,
    temperature: float = 0.7,
    parallel: int = 2,
    checkpointer: Any = None,
) -> AgentGraph:
    """Build the DotaMath agent. ``max_rounds`` bounds the program runs per problem (ToRA: 4).

    Invoke it with the problem text; the result state has ``answer`` (the boxed content),
    ``status`` (``done``; ``failed`` without an answer, ``step_limit`` when the rounds ran out
    without one), ``messages`` (the trajectory), ``rounds`` and a timed ``trace``. Pass a kernel
    per run with ``config={"configurable": {"kernel": k}}`` to run problems concurrently. On a
    ``checkpointer``'s thread, each new problem starts afresh.

    ``samples=K`` > 1 votes over up to K trajectories (:mod:`~toolpath.agents.math.vote`): the
    first greedy, the others at ``temperature``, ``parallel`` at once with a kernel each,
    stopping once the vote is settled; ``mixed`` makes every second one chain of thought. The
    result adds ``samples`` (every trajectory, with its answer, vote, tokens and seconds) and
    ``vote``; ``messages`` is the winning trajectory.
    """
    llm = as_model(model)
    options = {"max_tokens": max_tokens, "code_timeout": code_timeout, "max_rounds": max_rounds}
    if samples == 1:
        return _single(llm, demos, checkpointer=checkpointer, **options)
    from toolpath.agents.math.baselines import cot_agent
    from toolpath.agents.math.vote import voting_agent

    greedy = _single(llm, demos, **options)
    sampled = _single(llm, demos, temperature=temperature, **options)
    cot = cot_agent(llm, max_tokens=max_tokens, temperature=temperature)  # its default variant
    return voting_agent(
        greedy,
        sampled,
        cot,
        samples=samples,
        mixed=mixed,
        parallel=parallel,
        checkpointer=checkpointer,
    )


def _single(
    model: ChatModel, demos: int, *, checkpointer: Any = None, **options: Any
) -> AgentGraph:
    """One DotaMath trajectory per run (``options``: :class:`DotaMath`'s fields)."""
    steps = DotaMath(model, [system(prompt("dotamath")), *demo_messages(demos)], **options)
    chain: list[Any] = [steps.decompose, steps.write_code, steps.run_code]  # nodes of two shapes
    g = StateGraph(MathState).add_sequence(chain)
    g.add_node(steps.reflect)
    g.add_node(steps.conclude)
    g.add_edge(START, "decompose")
    g.add_conditional_edges("run_code", steps.after_run, ["reflect", "conclude"])
    g.add_conditional_edges("reflect", steps.after_fix, ["run_code", "conclude", END])
    g.add_conditional_edges("conclude", steps.after_fix, ["run_code", END])
    compiled = g.compile(checkpointer=checkpointer)
    return finish(compiled, initial_state, on_close=steps.kernels.close)


def _answer_or_code(
    text: str, state: MathState, *, allow_code: bool, fallback: bool
) -> dict[str, Any]:
    """A boxed answer ends the run; a new program (if allowed) goes back to the kernel;
    otherwise, with ``fallback``, the ToRA extraction order gives the answer (none: the run
    ``failed``, or reached its ``step_limit`` when no program may be written any more)."""
    boxed = extract_boxed(text)
    if boxed is not None:
        return {"answer": boxed, "status": "done", "code_changed": False}
    code = extract_code(text) if allow_code else None
    if code is not None:
        return {"code": code, "code_changed": True}
    if fallback:
        output = None if state.get("failed") else _last_value(state.get("output") or "")
        answer = extract_answer(text, program_output=output)
        unanswered = "failed" if allow_code else "step_limit"
        return {"answer": answer, "status": "done" if answer else unanswered, "code_changed": False}
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

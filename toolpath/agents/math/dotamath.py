"""DotaMath: decompose a math problem, write Python, run it, read the real output, correct.

    START -> write_code -> run_code
    run_code -> END      (a plausible answer printed; with ``recheck``, once checked)
              | recheck  (a plausible answer printed, not yet checked)
              | reflect  (an error or an implausible result, rounds left)
              | conclude (an error or an implausible result, no rounds left)
    reflect  -> run_code (a corrected program) | END (a boxed answer) | conclude
    recheck  -> run_code (a corrected program) | END
    conclude -> END

The decomposition and the reasoning live in the program, as comments: the first turn is
PoT's zero-shot one (each quantity named and commented), which beat a separate decomposition
turn with three worked demonstrations on GSM8K train-20, 75% to 40%
(``benchmarks/results/2026-12-07/math-v2``). The model never sees output it wrote itself:
code generation stops where a model would start an "output" block, and the kernel's real
output is inserted instead. The answer is the program's last printed value; after a
failure, it is the last ``\\boxed{}`` the model writes, else the ToRA fallbacks (program
output, then the last number).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph

from toolpath.agents.base import AgentGraph, as_model, finish, tool_record
from toolpath.agents.budget import Budget
from toolpath.agents.math.answers import extract_answer, extract_boxed
from toolpath.agents.math.baselines import PROBLEM, last_printed, pot_prefix
from toolpath.agents.math.common import (
    CODE_STOP,
    MathState,
    MathSteps,
    extract_code,
    initial_state,
    looks_wrong,
)
from toolpath.llm.base import ChatModel, Message, assistant, user

READ_FAILED = (
    "```output\n{output}\n```\nThe program failed: {why}. Say what went wrong in one "
    "sentence, then write a corrected program."
)
WRITE_FIX = "Write the corrected program."
REPEATED = (
    "this program is the same as one that already ran, so its output cannot change; find "
    "the mistake in the reasoning and write a different program"
)
RECHECK = (
    "```output\n{output}\n```\nThe program's answer is {answer}. Re-read the problem: does "
    "{answer} answer exactly what it asks for (the right quantity, in the unit it asks for)? "
    "If it does, reply \\boxed{{{answer}}}. If not, say what is wrong and write a corrected "
    "program."
)
GIVE_UP = (
    "```output\n{output}\n```\nNo more runs are left. Give your best final answer as \\boxed{{}}."
)


@dataclass(eq=False)
class DotaMath(MathSteps):
    """DotaMath's nodes and routes, each callable alone on a :class:`MathState`."""

    max_rounds: int = 4
    recheck: bool = False

    def ask(
        self, state: MathState, turn: str, node: str, before: Sequence[Message] = (), **kw: Any
    ) -> tuple[str, dict[str, Any]]:
        """The reply to ``turn`` after the conversation so far, and the state update."""
        text, record = self.reply(node, [*state.get("messages", []), *before, user(turn)], **kw)
        return text, {"messages": [user(turn), assistant(text)], "trace": [record]}

    def write_code(self, state: MathState, config: RunnableConfig) -> dict[str, Any]:
        self.kernels.get(config, fresh=True)
        turn = PROBLEM.format(question=state["question"])
        text, update = self.ask(state, turn, "write_code", stop=CODE_STOP)
        return {**update, "code": extract_code(text)}

    def run_code(self, state: MathState, config: RunnableConfig) -> dict[str, Any]:
        """Run the program; a plausible printed answer is taken (it ends the run unless it
        is still to be rechecked), anything else is a failure to reflect on."""
        code, programs = state.get("code"), state.get("programs", [])
        why: str | None
        seconds, answer = 0.0, None
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
            if why is None:  # looks_wrong passed: something was printed
                answer = last_printed(result.stdout)
                why = None if answer else "the last printed line holds no answer"
        update: dict[str, Any] = {
            "programs": [code] if code is not None else [],
            "output": output,
            "failed": why is not None,
            "rounds": state.get("rounds", 0) + 1,
            "why": why,
            "trace": [tool_record("run_code", "python", seconds, why is None, why)],
        }
        if answer is not None:
            update["answer"] = answer
            if not self.recheck or state.get("checked"):
                update["status"] = "done"
        return update

    def reflect(self, state: MathState) -> dict[str, Any]:
        turn = READ_FAILED.format(output=state.get("output"), why=state.get("why"))
        # a greedy model that repeated itself would repeat the repeat: let this reply vary
        vary: dict[str, Any] = {}
        if state.get("why") == REPEATED:
            vary["temperature"] = max(self.temperature, 0.7)
        text, update = self.ask(state, turn, "reflect", stop=CODE_STOP, **vary)
        if extract_boxed(text) is None and extract_code(text) is None:
            # It explained the failure but wrote no fix: ask for the program once.
            text, more = self.ask(state, WRITE_FIX, "reflect", update["messages"], stop=CODE_STOP)
            update = {k: update[k] + more[k] for k in update}
        return {**update, **_program_or_answer(text)}

    def check(self, state: MathState) -> dict[str, Any]:
        """Re-read the problem against the printed answer: confirm it (a boxed answer, or
        none at all, keeps the program's) or write a corrected program."""
        answer = state.get("answer")
        turn = RECHECK.format(output=state.get("output"), answer=answer)
        text, update = self.ask(state, turn, "recheck", stop=CODE_STOP)
        update["checked"] = True
        code = extract_code(text)
        if code is not None and extract_boxed(text) is None:
            return {**update, "code": code, "code_changed": True}
        return {**update, "answer": extract_boxed(text) or answer, "status": "done"}

    def conclude(self, state: MathState) -> dict[str, Any]:
        turn = GIVE_UP.format(output=state.get("output"))
        text, update = self.ask(state, turn, "conclude", stop=CODE_STOP)
        # only failed runs lead here, so no program output can stand in for the answer
        boxed = extract_boxed(text)
        answer = boxed if boxed is not None else extract_answer(text)
        out_of_rounds = state.get("rounds", 0) >= self.max_rounds
        done = boxed is not None or answer
        status = "done" if done else "step_limit" if out_of_rounds else "failed"
        return {**update, "answer": answer, "status": status, "code_changed": False}

    def after_run(self, state: MathState) -> str:
        if state.get("status") != "running":
            return END
        if not state.get("failed"):
            return "recheck"
        return "reflect" if state.get("rounds", 0) < self.max_rounds else "conclude"

    def after_fix(self, state: MathState) -> str:
        if state.get("status") != "running":
            return END
        return "run_code" if state.get("code_changed") else "conclude"


def math_agent(
    model: ChatModel | str | None = None,
    *,
    max_rounds: int = 4,
    demos: int = 0,
    recheck: bool = False,
    code_timeout: float = 15.0,
    max_tokens: int = 512,
    samples: int = 1,
    mixed: bool = False,
    temperature: float = 0.7,
    parallel: int = 2,
    confidence: float = 0.95,
    budget: Budget | None = None,
    checkpointer: Any = None,
) -> AgentGraph:
    """Build the DotaMath agent. ``max_rounds`` bounds the program runs per problem (ToRA: 4);
    ``recheck`` adds a turn that re-reads the problem against the printed answer; ``demos``
    puts PoT's worked programs before the problem (zero-shot by default: the first turn is
    :func:`~toolpath.agents.math.baselines.pot_agent`'s). Invoke it with the problem text; the result state has ``answer``, ``status`` (``done``;
    ``failed`` without an answer, ``step_limit`` when the rounds ran out without one),
    ``messages`` (the trajectory), ``rounds`` and a timed ``trace``. Pass a kernel per run with
    ``config={"configurable": {"kernel": k}}`` to run problems concurrently. On a
    ``checkpointer``'s thread, each new problem starts afresh.

    ``samples=K`` > 1 votes over up to K trajectories (:mod:`~toolpath.agents.math.vote`): the
    first greedy, the others at ``temperature``, ``parallel`` at once with a kernel each,
    stopping once the leader wins the whole budget's vote with probability ``confidence``
    (1: only when the remaining trajectories cannot change the winner; at 0.95, two that agree
    out of five settle it); ``mixed`` makes every second one chain of thought. The
    result adds ``samples`` (every trajectory, with its answer, vote, tokens and seconds) and
    ``vote``; ``messages`` is the winning trajectory.
    """
    llm = as_model(model)
    options: dict[str, Any] = {
        "max_tokens": max_tokens,
        "code_timeout": code_timeout,
        "max_rounds": max_rounds,
        "recheck": recheck,
    }
    if samples == 1:
        return _single(llm, demos, checkpointer=checkpointer, budget=budget, **options)
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
        confidence=confidence,
        budget=budget,
        checkpointer=checkpointer,
    )


def _single(
    model: ChatModel,
    demos: int,
    *,
    checkpointer: Any = None,
    budget: Budget | None = None,
    **options: Any,
) -> AgentGraph:
    """One DotaMath trajectory per run (``options``: :class:`DotaMath`'s fields)."""
    # The first turn is PoT's (zero-shot: a program that plans in its comments), so DotaMath
    # starts where PoT ends and adds what PoT lacks: reading the output, checks, corrections.
    steps = DotaMath(model, pot_prefix(demos), **options)
    g = StateGraph(MathState).add_sequence([steps.write_code, steps.run_code])
    g.add_node("recheck", steps.check)
    g.add_node(steps.reflect)
    g.add_node(steps.conclude)
    g.add_edge(START, "write_code")
    g.add_conditional_edges("run_code", steps.after_run, ["recheck", "reflect", "conclude", END])
    g.add_conditional_edges("reflect", steps.after_fix, ["run_code", "conclude", END])
    g.add_conditional_edges("recheck", steps.after_fix, ["run_code", END])
    g.add_edge("conclude", END)
    compiled = g.compile(checkpointer=checkpointer, name="dotamath")
    return finish(compiled, initial_state, steps.kernels.close, budget)


def _program_or_answer(text: str) -> dict[str, Any]:
    """A reflection's outcome: a new program goes back to the kernel (a boxed answer beside
    it was never run); else a boxed answer ends the run; else nothing was decided."""
    code = extract_code(text)
    if code is not None:
        return {"code": code, "code_changed": True}
    boxed = extract_boxed(text)
    if boxed is not None:
        return {"answer": boxed, "status": "done", "code_changed": False}
    return {"code_changed": False}


def _same_program(code: str, programs: Sequence[str]) -> bool:
    """Whether ``code`` already ran, ignoring blank lines, comment lines and indentation."""

    def key(src: str) -> list[str]:
        lines = (ln.strip() for ln in src.splitlines())
        return [ln for ln in lines if ln and not ln.startswith("#")]

    return any(key(code) == key(p) for p in programs)

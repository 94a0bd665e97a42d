"""Self-consistency over DotaMath trajectories, stopped as soon as the vote is settled
(``math_agent(samples=K)``).

    START -> sample -> vote -> END
               ^         | (not settled yet)
               +---------+

``sample`` runs a wave of trajectories at once, each in a thread with its own sandboxed
kernel; on llama.cpp they run in the model's parallel slots and share the prompt prefix
(system prompt and demonstrations) in its cache, on vLLM they are batched. The first is the
greedy one, so ``samples=1`` is the single-sample agent; the others sample at
``temperature``. With ``mixed=True`` every second trajectory is chain of thought, whose
answer votes like the others at a fraction of the tokens.

A trajectory votes with its answer's canonical form (the grader's,
:func:`~toolpath.agents.math.answers.normalize`), and only when it ended ``done`` with an answer: a crashed program, a dead
kernel or an unanswered run is counted as no vote. The vote is settled once the leader wins
the whole budget's vote with probability ``confidence`` (:func:`keeps_lead`; at 1, only when
no outcome of the trajectories left could change the winner); each wave is the fewest
trajectories that could settle it. Ties go to the answer that was voted for first (in
trajectory order).
"""

from __future__ import annotations

import math
import operator
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Annotated, Any, TypedDict

from langgraph.config import get_stream_writer
from langgraph.graph import END, START, StateGraph

from toolpath.agents.base import (
    STREAM_TOKENS,
    AgentGraph,
    Status,
    TraceRecord,
    finish,
    tokens,
)
from toolpath.agents.budget import Budget
from toolpath.agents.math.answers import normalize
from toolpath.errors import ConfigError
from toolpath.llm.base import Message


class VoteState(TypedDict, total=False):
    question: str
    samples: Annotated[list[dict[str, Any]], operator.add]
    vote: dict[str, Any]
    answer: str | None
    status: Status
    messages: list[Message]
    rounds: int
    trace: Annotated[list[TraceRecord], operator.add]


def initial_vote_state(question: str) -> dict[str, Any]:
    from langgraph.types import Overwrite

    from toolpath.agents.math.common import initial_state

    state = initial_state(question)  # refuses an empty question
    return {
        "question": state["question"],
        "samples": Overwrite([]),
        "vote": {},
        "answer": None,
        "status": "running",
        "messages": [],
        "rounds": 0,
        "trace": Overwrite([]),
    }


def ballot(sample: dict[str, Any]) -> str | None:
    """What a finished trajectory votes for: its answer's canonical form, or None."""
    answer = sample.get("answer")
    if sample.get("status") != "done" or not answer or sample.get("error"):
        return None
    return normalize(str(answer)) or None


def tally(samples: Sequence[dict[str, Any]]) -> list[tuple[str, int]]:
    """``(canonical answer, votes)``, most votes first; a tie keeps trajectory order."""
    counts: dict[str, int] = {}
    for s in sorted(samples, key=lambda s: int(s["index"])):
        key = ballot(s)
        if key is not None:
            counts[key] = counts.get(key, 0) + 1
    return sorted(counts.items(), key=lambda kv: -kv[1])  # stable: first voted wins a tie


def still_needed(samples: Sequence[dict[str, Any]], budget: int, confidence: float = 1.0) -> int:
    """The fewest further trajectories that could settle the vote (0: it is settled).

    Settled means the leader wins the vote of the whole ``budget`` with probability at least
    ``confidence`` (:func:`keeps_lead`). ``confidence=1`` is the exact rule: the leader's lead
    over the runner-up is larger than the number of trajectories left.
    """
    left = budget - len(samples)
    if left <= 0:
        return 0
    counts = [n for _, n in tally(samples)] + [0, 0]
    lead, second = counts[0], counts[1]
    for more in range(left + 1):  # ``more`` further votes, all for the leader
        if keeps_lead(lead + more, second, left - more) >= confidence - 1e-9:
            return more
    return left


def keeps_lead(lead: int, second: int, left: int) -> float:
    """The probability that the leader still has more votes than the runner-up once the
    ``left`` trajectories have voted (a tie counts as lost).

    As in Adaptive-Consistency's Beta rule (Aggarwal et al., 2023), the leader's share of the
    two answers' votes has a uniform prior, so its posterior is Beta(lead + 1, second + 1)
    and the votes to come are beta-binomial; each further vote is taken to go to one of the
    two, the worst case for the leader. It is 1 exactly when the lead cannot be overturned.
    """
    if lead > second + left:
        return 1.0
    a, b = lead + 1, second + 1

    def log_beta(x: float, y: float) -> float:
        return math.lgamma(x) + math.lgamma(y) - math.lgamma(x + y)

    p = 0.0
    for x in range(left + 1):  # x of the left votes go to the leader
        if lead + x > second + left - x:
            log_choose = math.lgamma(left + 1) - math.lgamma(x + 1) - math.lgamma(left - x + 1)
            p += math.exp(log_choose + log_beta(x + a, left - x + b) - log_beta(a, b))
    return min(p, 1.0)


@dataclass(eq=False)
class Voting:
    """The sampling agent's two nodes. ``greedy``/``sampled``/``cot`` are the single-sample
    graphs a trajectory runs on; ``kernels`` lends each running trajectory its own kernel."""

    greedy: Any
    sampled: Any
    cot: Any
    kernels: Any
    budget: int
    mixed: bool = False
    confidence: float = 1.0

    def graph_for(self, index: int) -> tuple[str, Any]:
        if index == 0:
            return "dotamath", self.greedy
        if self.mixed and index % 2 == 1:
            return "cot", self.cot
        return "dotamath", self.sampled

    def sample(self, state: VoteState) -> dict[str, Any]:
        done = state.get("samples", [])
        wave = still_needed(done, self.budget, self.confidence)
        write = _writer()
        new = []
        with ThreadPoolExecutor(wave, thread_name_prefix="toolpath-sample") as pool:
            runs = [pool.submit(self._one, len(done) + i, state["question"]) for i in range(wave)]
            for run in as_completed(runs):  # reported from this thread, as each one ends
                new.append(run.result())
                if write is not None:
                    shown = ("index", "method", "answer", "status", "seconds", "vote")
                    write({"type": "sample", **{k: new[-1][k] for k in shown}})
        new.sort(key=lambda s: int(s["index"]))
        return {
            "samples": new,
            "rounds": state.get("rounds", 0) + sum(int(s.get("rounds") or 0) for s in new),
            "trace": [r for s in new for r in s.pop("_trace")],
        }

    def _one(self, index: int, question: str) -> dict[str, Any]:
        """One trajectory, in its own thread and kernel."""
        method, graph = self.graph_for(index)
        start = time.perf_counter()
        sample: dict[str, Any] = {"index": index, "method": method}
        try:
            with self.kernels.kernel() as kernel:
                config = {"configurable": {"kernel": kernel, STREAM_TOKENS: False}}
                final = graph.invoke(question, config)
            trace = final.get("trace", [])
            sample.update(
                answer=final.get("answer"),
                status=final.get("status"),
                rounds=final.get("rounds", 0),
                tokens=tokens(trace),
                messages=final.get("messages", []),
                _trace=trace,
            )
        except Exception as exc:  # a dead kernel or a failed call: this trajectory has no vote
            sample.update(answer=None, status="error", error=f"{type(exc).__name__}: {exc}")
            sample.update(tokens={"prompt": 0, "completion": 0}, messages=[], _trace=[])
        sample["seconds"] = round(time.perf_counter() - start, 3)
        sample["vote"] = ballot(sample)
        return sample

    def vote(self, state: VoteState) -> dict[str, Any]:
        samples = state.get("samples", [])
        if still_needed(samples, self.budget, self.confidence):
            return {}
        counts = tally(samples)
        winner = counts[0][0] if counts else None
        chosen = next((s for s in samples if winner is not None and s["vote"] == winner), None)
        result = {
            "counts": dict(counts),
            "winner": winner,
            "used": len(samples),
            "budget": self.budget,
        }
        _emit({"type": "vote", **result})
        return {
            "vote": result,
            "answer": chosen["answer"] if chosen else None,
            "status": "done" if chosen else "failed",
            "messages": chosen["messages"] if chosen else [],
        }

    def after_vote(self, state: VoteState) -> str:
        return END if state.get("vote") else "sample"


def _writer() -> Any:
    try:
        return get_stream_writer()
    except RuntimeError:  # outside a streamed run
        return None


def _emit(event: dict[str, Any]) -> None:
    write = _writer()
    if write is not None:
        write(event)


def voting_agent(
    greedy: AgentGraph,
    sampled: AgentGraph,
    cot: AgentGraph,
    *,
    samples: int,
    mixed: bool,
    parallel: int,
    confidence: float = 1.0,
    budget: Budget | None = None,
    checkpointer: Any = None,
) -> AgentGraph:
    """The sampling agent over single-trajectory graphs (built by ``math_agent``)."""
    from toolpath.tools.code.kernel import KernelPool

    if samples < 1 or parallel < 1:
        raise ConfigError("samples and parallel must be at least 1")
    if not 0.5 < confidence <= 1:
        raise ConfigError(f"confidence must be above 0.5 and at most 1, not {confidence}")
    pool = KernelPool(size=parallel, prestart=False)
    steps = Voting(greedy, sampled, cot, pool, samples, mixed, confidence)
    g = StateGraph(VoteState).add_sequence([steps.sample, steps.vote])
    g.add_edge(START, "sample")
    g.add_conditional_edges("vote", steps.after_vote, ["sample", END])

    def close() -> None:
        for agent in (greedy, sampled, cot):
            agent.close()
        pool.close()

    compiled = g.compile(checkpointer=checkpointer, name="math_vote")
    return finish(compiled, initial_vote_state, on_close=close, budget=budget)

"""One-step planning against sequential planning (and α-UMi) on the same executable tasks.

TPTU compares a one-step agent, which plans every call before it sees any result, with a
sequential agent, which decides each call after the last one's result. :class:`OneStepEval`
runs any agent on the tasks of :mod:`.tasks` through the harness
(:func:`~toolpath.evals.harness.run_eval`): ``OUT/<agent>.jsonl``, one durable line per task,
resumable, with the harness's ``summary.md`` and ``plot.png``. The agents (:data:`AGENTS`):

- ``one-step``: :func:`~toolpath.agents.one_step.one_step_agent` (plan, run, answer);
- ``tools``: :func:`~toolpath.agents.react.tool_agent`, the sequential agent;
- ``alpha-umi``: :func:`~toolpath.agents.alpha_umi.agent.alpha_umi_agent`, planner, caller
  and summarizer on the one model.

Each episode gets fresh copies of its task's tools that log every call they execute (name,
arguments after validation, result), whichever agent made it. The record keeps the answer,
``success`` and ``calls_match`` (:mod:`.scoring`), the executed ``calls``, ``model_calls``,
``tool_calls``, ``tokens`` (prompt and completion) and the harness's ``seconds``.
:func:`write_report` puts the agents side by side in ``report.md``/``report.json``, over all
tasks and over the fixture, the generated tasks and the tasks whose calls depend on each other.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from toolpath.agents.base import tokens
from toolpath.errors import ConfigError
from toolpath.evals.harness import Example, Record, load_records, run_eval, summarize
from toolpath.evals.one_step.scoring import answer_matches, calls_cover
from toolpath.evals.one_step.tasks import TOOLS, Task, all_tasks, run_gold
from toolpath.llm.base import ChatModel
from toolpath.tools.base import Tool

AGENTS = ("one-step", "tools", "alpha-umi")
MakeAgent = Callable[[list[Tool]], Any]
"""What :meth:`OneStepEval.run_one` takes as its agent: a builder of an agent graph for the
episode's tools."""
SUBSETS: dict[str, Callable[[Record], bool]] = {
    "all": lambda r: True,
    "fixture": lambda r: r.get("source") == "fixture",
    "generated": lambda r: r.get("source") == "generated",
    "dependent": lambda r: bool(r.get("dependent")),
}
"""The report's rows per agent: which records each counts."""


def agent_factory(name: str, model: ChatModel) -> MakeAgent:
    """The builder of agent ``name`` (one of :data:`AGENTS`) on ``model``, with its defaults."""
    if name == "one-step":
        from toolpath.agents.one_step import one_step_agent

        return lambda tools: one_step_agent(model, tools)
    if name == "tools":
        from toolpath.agents.react import tool_agent

        return lambda tools: tool_agent(model, tools)
    if name == "alpha-umi":
        from toolpath.agents.alpha_umi.agent import alpha_umi_agent

        return lambda tools: alpha_umi_agent(model, tools)
    raise ConfigError(f"unknown agent {name!r}; use one of: {', '.join(AGENTS)}")


def logged_tools(names: Sequence[str], log: list[dict[str, Any]]) -> list[Tool]:
    """Copies of the named tools that append each call they execute to ``log``."""
    return [_logged(TOOLS[name], log) for name in names]


def _logged(tool: Tool, log: list[dict[str, Any]]) -> Tool:
    def run(**kwargs: Any) -> Any:
        entry: dict[str, Any] = {"name": tool.name, "arguments": kwargs, "ok": False}
        log.append(entry)
        result = tool.fn(**kwargs)
        entry.update(ok=True, result=result)
        return result

    return dataclasses.replace(tool, fn=run)


def model_calls(trace: Sequence[dict[str, Any]]) -> int:
    """How many model calls a trace holds (its records with token counts)."""
    return sum(1 for r in trace if "tokens_in" in r)


@dataclass
class OneStepEval:
    """The tasks of :func:`~toolpath.evals.one_step.tasks.all_tasks` as a task family."""

    generated: int = 50
    seed: int = 0
    fixture_only: bool = False
    name: str = "one-step"
    tasks: dict[str, Task] = field(default_factory=dict)

    def load(self, *, data: str | Path | None = None, limit: int | None = None) -> list[Example]:
        """The tasks as examples (the first ``limit``: the fixture's come first)."""
        if data is not None:
            raise ConfigError("the one-step tasks are built in; they take no data path")
        tasks = all_tasks(self.generated, self.seed, fixture_only=self.fixture_only)[:limit]
        self.tasks = {t.id: t for t in tasks}
        return [Example(t.id, t.request, json.dumps(t.answer), meta={"task": t}) for t in tasks]

    async def run_one(self, example: Example, agent: MakeAgent) -> Record:
        task: Task = example.meta["task"]
        log: list[dict[str, Any]] = []
        graph = agent(logged_tools(task.tools, log))
        try:
            state = await graph.ainvoke(task.request)
        finally:
            graph.close()
        _, gold_calls = run_gold(task)
        trace = state.get("trace") or []
        answer = state.get("answer")
        return {
            "id": example.id,
            "question": task.request,
            "source": task.source,
            "template": task.template,
            "dependent": task.dependent,
            "tools": task.tools,
            "answer": answer,
            "status": state.get("status"),
            "reason": state.get("reason"),
            "gold": task.answer,
            "gold_calls": gold_calls,
            "calls": log,
            "success": answer_matches(answer, task.answer),
            "calls_match": calls_cover(log, gold_calls),
            "model_calls": model_calls(trace),
            "tool_calls": len(log),
            "tokens": tokens(trace),
        }

    def score(self, record: Record) -> dict[str, float]:
        gold = record.get("gold")
        gold = json.loads(gold) if isinstance(gold, str) else gold or []
        gold_calls = record.get("gold_calls") or []
        covered = bool(gold_calls) and calls_cover(record.get("calls") or [], gold_calls)
        return {
            "success": float(answer_matches(record.get("answer"), gold)),
            "calls_match": float(covered),
        }


async def run_compare(
    model: ChatModel,
    agents: Sequence[str],
    *,
    out_dir: Path,
    generated: int = 50,
    limit: int | None = None,
    seed: int = 0,
    fixture_only: bool = False,
    episode_timeout: float | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Every agent on the same tasks, one after the other, into ``out_dir/<agent>.jsonl``
    (resumable); then the report (:func:`write_report`) over every agent in ``out_dir``."""
    family = OneStepEval(generated, seed, fixture_only)
    examples = family.load(limit=limit)
    for name in agents:
        await run_eval(
            family,
            examples,
            agent_factory(name, model),
            out_dir=out_dir,
            method=name,
            progress=progress,
            episode_timeout=episode_timeout,
            model=model,
        )
    return write_report(out_dir, family)


def _mean(values: Sequence[float]) -> float | None:
    return round(sum(values) / len(values), 2) if values else None


def agent_row(family: OneStepEval, records: Sequence[Record]) -> dict[str, Any]:
    """One report row: n, errors, success and calls-match (%), and the means per task of the
    tokens (prompt + completion), model calls, tool calls and seconds."""
    scores = [family.score(r) if not r.get("error") else {} for r in records]
    n = len(records)
    ran = [r for r in records if isinstance(r.get("tokens"), dict)]
    usage = [r["tokens"] for r in ran]
    return {
        "n": n,
        "errors": sum(1 for r in records if r.get("error")),
        "success": round(100 * sum(s.get("success", 0.0) for s in scores) / n, 1),
        "calls_match": round(100 * sum(s.get("calls_match", 0.0) for s in scores) / n, 1),
        "tokens": _mean([float(u.get("prompt", 0) + u.get("completion", 0)) for u in usage]),
        "prompt_tokens": _mean([float(u.get("prompt", 0)) for u in usage]),
        "model_calls": _mean([float(r.get("model_calls") or 0) for r in ran]),
        "tool_calls": _mean([float(r.get("tool_calls") or 0) for r in ran]),
        "seconds": _mean([float(r.get("seconds") or 0) for r in records]),
    }


COLUMNS = ("n", "errors", "success", "calls_match", "tokens", "model_calls", "tool_calls")
HEAD = (
    "agent",
    "tasks",
    "n",
    "errors",
    "success %",
    "calls match %",
    "tokens",
    "model calls",
    "tool calls",
    "seconds",
)


def write_report(out_dir: Path, family: OneStepEval | None = None) -> dict[str, Any]:
    """``report.json`` and ``report.md`` for every ``<agent>.jsonl`` of :data:`AGENTS` in
    ``out_dir``: a row per agent and subset of tasks (:data:`SUBSETS`); also refreshes the
    harness's ``summary.md``. Returns ``{agent: {subset: row}}``."""
    family = family or OneStepEval()
    summarize(out_dir, family)
    report: dict[str, dict[str, Any]] = {}
    for name in AGENTS:
        path = out_dir / f"{name}.jsonl"
        records = list({r["id"]: r for r in load_records(path)}.values()) if path.exists() else []
        for subset, keep in SUBSETS.items():
            chosen = [r for r in records if keep(r)]
            if chosen:
                report.setdefault(name, {})[subset] = agent_row(family, chosen)
    (out_dir / "report.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    lines = ["| " + " | ".join(HEAD) + " |", "|" + "---|" * len(HEAD)]
    for name, rows in report.items():
        for subset, row in rows.items():
            cells = [name, subset, *(row[c] for c in COLUMNS), row["seconds"]]
            lines.append("| " + " | ".join("–" if c is None else str(c) for c in cells) + " |")
    lines += [
        "",
        "success: the answer holds every gold value; calls match: the executed calls cover the "
        "gold calls (tool and key arguments). tokens (prompt + completion), model calls, tool "
        "calls and seconds: means per task. dependent: tasks where a call takes an earlier "
        "call's result.",
    ]
    (out_dir / "report.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return report

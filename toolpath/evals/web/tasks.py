"""Web task families for the eval harness: MiniWoB base tasks and CompWoB pages.

An example is one episode: a task page and a seed. ``run_one`` leases a page from a
:class:`~toolpath.tools.web.browser.WebPool`, resets it to the page with the seed, lets the
agent act and reads the page's own reward (``WOB_RAW_REWARD_GLOBAL``). Success is a raw
reward above zero at the end of the episode; an episode the agent did not finish scores 0.
A page or browser crash marks the episode failed (``crashed: true``, ``status: failed``),
restarts what died, and the run goes on. A record's ``status`` is the agent's
(:data:`toolpath.agents.base.Status`).

- ``miniwob``: base tasks from the ``miniwob`` wheel, ``miniwob/<task>``.
- ``compwob``: every ``*.html`` in a folder in the CompWoB layout (the release's
  ``compositional_rl/compwob/compositional/``, or pages written by
  :func:`toolpath.evals.web.compose.generate` or :func:`toolpath.evals.web.suite.write_suite`),
  served as ``compwob/<name>``. Pages whose name ends in ``-reverse`` are the
  reverse-instruction variant, pages without ``_`` in their name a base task alone
  (``single``); the CLI runs each variant as its own method (``<method>-base``,
  ``<method>-reverse``, ``<method>-single``), so the harness summary reports them
  separately, and :func:`per_task` adds success per task and the failures by kind.

A page that cannot load (a missing script, a JavaScript error, no ``genProblem``) becomes an
error record whose error names the page and the reason (the page's JavaScript errors and
the files it could not load); the run goes on. Every other record carries the failure
analysis of :mod:`toolpath.evals.web.failures` (``failure``, ``failed_subtask``, ...).

The agent is a web agent graph (:func:`toolpath.agents.web.agent.web_agent`) or any async
callable ``policy(env, example) -> dict``, such as :func:`scripted_policy`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from toolpath.agents.base import Status, tokens
from toolpath.errors import BrowserError, ConfigError
from toolpath.evals.harness import Example, Record, load_records
from toolpath.evals.web.failures import REPORT_JS, classify, failure_lines, failure_table

COMPWOB_FOLDER = "compwob"


def miniwob_examples(tasks: Sequence[str], seeds: int = 3, *, first_seed: int = 0) -> list[Example]:
    """``seeds`` episodes of each MiniWoB base task (names as in the wheel)."""
    from toolpath.evals.web.compose import base_tasks

    known = set(base_tasks())
    names = [t.strip() for t in tasks if t.strip()]
    unknown = [t for t in names if t not in known]
    if unknown or not names:
        import difflib

        hints = [
            f"{t} (did you mean {', '.join(difflib.get_close_matches(t, known, 2))}?)"
            for t in unknown
        ]
        raise ConfigError(f"unknown MiniWoB task: {'; '.join(hints) or '(none given)'}")
    return _episodes([(f"miniwob/{t}", t, [t], "base") for t in names], seeds, first_seed)


def compwob_examples(
    tasks_dir: str | Path,
    seeds: int = 3,
    *,
    variant: str | None = None,
    first_seed: int = 0,
    limit: int | None = None,
) -> list[Example]:
    """``seeds`` episodes of every page in ``tasks_dir`` (``variant``: ``base``, ``reverse``
    or ``single``; None: all)."""
    folder = Path(tasks_dir)
    if not folder.is_dir():
        raise ConfigError(f"--tasks-dir {folder} is not a folder; {GET_COMPWOB}")
    pages = sorted(folder.glob("*.html"))
    if not pages:
        raise ConfigError(f"no *.html task pages in {folder}; {GET_COMPWOB}")
    items = []
    for page in pages:
        kind = (
            "reverse"
            if page.stem.endswith("-reverse")
            else "base"
            if "_" in page.stem
            else "single"
        )
        if variant is not None and kind != variant:
            continue
        base = page.stem.removesuffix("-reverse").split("_")
        items.append((f"{COMPWOB_FOLDER}/{page.stem}", page.stem, base, kind))
    return _episodes(items[:limit] if limit else items, seeds, first_seed)


GET_COMPWOB = (
    "get the CompWoB pages from github.com/google-research/google-research "
    "(compositional_rl/compwob/compositional/), or write your own with "
    "`toolpath web generate`"
)


def _episodes(
    items: list[tuple[str, str, list[str], str]], seeds: int, first_seed: int
) -> list[Example]:
    if seeds < 1:
        raise ConfigError(f"--seeds must be at least 1, not {seeds}")
    out = []
    for page, task, base, variant in items:
        for seed in range(first_seed, first_seed + seeds):
            meta = {"page": page, "task": task, "base": base, "variant": variant, "seed": seed}
            out.append(Example(id=f"{task}#{seed}", question=page, gold="1", meta=meta))
    return out


@dataclass
class WebTask:
    """The harness task family for web pages; ``pool`` supplies the pages."""

    name: str
    pool: Any
    max_time_s: float = 900.0

    def load(self, **_: Any) -> list[Example]:
        raise ConfigError("build web examples with miniwob_examples or compwob_examples")

    async def run_one(self, example: Example, agent: Any) -> Record:
        meta = example.meta
        record: Record = {
            "id": example.id,
            "page": meta["page"],
            "task": meta["task"],
            "variant": meta["variant"],
            "seed": meta["seed"],
            "base": meta["base"],
            "gold": example.gold,
        }
        async with self.pool.lease() as env:
            blocked_before = len(env.browser.blocked)
            try:
                obs = await load_page(env, meta["page"], meta["seed"], self.max_time_s)
                record["instruction"] = obs.instruction
                if hasattr(agent, "ainvoke"):
                    state = await agent.ainvoke(
                        {"instruction": obs.instruction}, {"configurable": {"env": env}}
                    )
                else:
                    state = await agent(env, example)
                status = await env.status()
                report = await _report(env)
            except BrowserError as exc:
                record.update(
                    crashed=True,
                    done=False,
                    reward=-1.0,
                    success=False,
                    reason=str(exc),
                    status="failed",
                    failure="other",
                    failed_subtask=None,
                )
                return record
            record["blocked"] = env.browser.blocked[blocked_before:]
        trace = state.get("trace", [])
        actions = [t for t in trace if t.get("node") == "execute"]
        record.update(
            crashed=False,
            done=status.done,
            reward=status.raw_reward if status.done else 0.0,
            success=status.success,
            reason=status.reason,
            status=state.get("status"),
            subtasks=state.get("subtasks"),
            history=state.get("history"),
            steps=state.get("steps"),
            tool_rounds=len(actions),
            step_latency_s=(
                round(sum(a["seconds"] for a in actions) / len(actions), 4) if actions else None
            ),
            tokens=tokens(trace),
        )
        record.update(classify(record, report))
        return record

    def score(self, record: Record) -> dict[str, float]:
        return {"success": float(bool(record.get("success")))}


LOAD_ERROR = "cannot load"
"""In the error of a record whose page did not load: ``page P cannot load: REASON``."""


async def load_page(env: Any, page: str, seed: int, max_time_s: float) -> Any:
    """Reset ``env`` to ``page``; a page that does not load raises a :class:`ConfigError`
    ``page P cannot load: REASON``, with the page's JavaScript errors and the files it
    could not load (a crash of the page or browser stays a :class:`BrowserError`)."""
    problems: list[str] = []
    root = env.site.root.as_uri() + "/"

    def js_error(exc: Any) -> None:
        problems.append(f"JavaScript error: {str(getattr(exc, 'message', exc)).strip()[:200]}")

    def failed(request: Any) -> None:
        url = str(request.url).removeprefix(root)
        problems.append(f"missing {url} ({request.failure or 'failed'})")

    page_obj = env.page
    if page_obj is not None:
        page_obj.on("pageerror", js_error)
        page_obj.on("requestfailed", failed)
    try:
        return await env.reset(page, seed, max_time_s=max_time_s)
    except (ConfigError, BrowserError) as exc:
        if isinstance(exc, BrowserError) and not env.alive:
            raise
        detail = "; ".join(dict.fromkeys(problems))
        why = f"page {page} {LOAD_ERROR}: {exc}" + (f"; {detail}" if detail else "")
        raise ConfigError(why) from exc
    finally:
        if page_obj is not None:
            page_obj.remove_listener("pageerror", js_error)
            page_obj.remove_listener("requestfailed", failed)


async def _report(env: Any) -> dict[str, Any] | None:
    """The composed page's subtask report (None for other pages)."""
    try:
        report = await env.page.evaluate(REPORT_JS)
    except Exception:
        return None
    return report if isinstance(report, dict) else None


def load_errors(records: Sequence[Record]) -> dict[str, str]:
    """``{page: reason}`` for the records whose page did not load."""
    out: dict[str, str] = {}
    for r in records:
        m = re.search(r"page (\S+) " + LOAD_ERROR + r": (.*)", str(r.get("error") or ""), re.S)
        if m:
            out.setdefault(m[1], m[2])
    return out


async def scripted_policy(env: Any, example: Example) -> dict[str, Any]:
    """The deterministic solvers of :mod:`toolpath.evals.web.oracle` as an eval "agent"
    (checks pages and the harness without a model; base tasks it knows only)."""
    from toolpath.evals.web.oracle import SOLVERS, solve_subtask, split_composed

    base = example.meta["base"]
    obs = env.last if env.last is not None else await env.observe()
    history: list[str] = []
    try:
        parts = split_composed(obs.instruction, len(base))
    except ConfigError:
        parts = []
    if not parts or any(b not in SOLVERS for b in base):
        return {"status": "gave_up", "history": history, "trace": []}  # it has no solver
    for i, name in enumerate(base):
        history += await solve_subtask(env, name, parts[i], i if len(base) > 1 else None)
        if (await env.status()).done:
            break
    status: Status = "done" if (await env.status()).done else "step_limit"
    return {"status": status, "history": history, "steps": len(history), "trace": []}


def per_task(out_dir: str | Path, methods: Sequence[str]) -> dict[str, Any]:
    """Success per task page and per variant for ``methods``' results in ``out_dir``, and
    the failed episodes grouped by failure kind (:func:`~toolpath.evals.web.failures.failure_table`)
    and the pages that did not load; writes ``per_task.json`` and ``per_task.md`` there."""
    out_dir = Path(out_dir)
    rows: dict[str, dict[str, Any]] = {}
    totals: dict[str, list[float]] = {}
    records: list[Record] = []
    for method in methods:
        path = out_dir / f"{method}.jsonl"
        for r in {r["id"]: r for r in load_records(path)}.values():
            records.append(r)
            ok = float(bool(r.get("success")) and not r.get("error"))
            task = str(r.get("task") or str(r["id"]).rsplit("#", 1)[0])  # errored: id only
            guess = "reverse" if task.endswith("-reverse") else "base" if "_" in task else "single"
            variant = str(r.get("variant") or guess)
            row = rows.setdefault(task, {"variant": variant, "n": 0, "successes": 0.0})
            row["n"] += 1
            row["successes"] += ok
            totals.setdefault(variant, []).append(ok)
    summary = {
        "tasks": {
            t: {**row, "success": round(100 * row["successes"] / row["n"], 1)}
            for t, row in sorted(rows.items())
        },
        "variants": {
            v: {"n": len(xs), "success": round(100 * sum(xs) / len(xs), 1)}
            for v, xs in sorted(totals.items())
        },
        "failures": failure_table(records),
        "load_errors": load_errors(records),
    }
    (out_dir / "per_task.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    lines = ["| task | variant | n | success % |", "|---|---|---|---|"]
    lines += [
        f"| {t} | {row['variant']} | {row['n']} | {row['success']:.1f} |"
        for t, row in summary["tasks"].items()
    ]
    lines += ["", "| variant | n | success % |", "|---|---|---|"]
    lines += [f"| {v} | {s['n']} | {s['success']:.1f} |" for v, s in summary["variants"].items()]
    lines += failure_lines(summary["failures"])
    if summary["load_errors"]:
        lines += ["", "Pages that did not load (error records; the run went on):", ""]
        lines += [f"- {page}: {why}" for page, why in summary["load_errors"].items()]
    (out_dir / "per_task.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return summary

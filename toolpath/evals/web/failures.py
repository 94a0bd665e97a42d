"""Why a web episode failed: which subtask, and how.

A composed page (:mod:`toolpath.evals.web.compose`) keeps, for the episode it runs, each
subtask's outcome (its base task's reward, or none yet), the order in which subtasks got
their outcomes, and the first time the agent acted (a mouse press or a key) on a subtask's
part of the page while an earlier subtask was not yet done; ``WOB_COMPOSE.report()`` hands
them to the driver (:data:`REPORT_JS`). :func:`classify` turns that and the episode's end
into a failure kind and the subtask that failed:

- ``wrong_element``: a subtask ended with a failure of its own (the wrong button, link,
  value or field; the page ends the episode at once). The failed subtask is that one.
- ``premature_submit``: a later subtask was finished (submitted) before an earlier one,
  which the page punishes. The failed subtask is the earlier, skipped one; ``by`` the later.
- ``order``: the episode did not end, but the agent acted on a later subtask's part before
  an earlier subtask was done. The failed subtask is the earlier one; ``by`` the later.
- ``step_cap``: the episode did not end and the agent stopped at its step cap; the failed
  subtask is the first one without an outcome.
- ``other``: anything else: a crash, a page that did not load, an agent that gave up or
  failed, the page's own time limit, a page without a report (a MiniWoB page or CompWoB's
  released pages) that ended in failure for a reason it does not say.

A MiniWoB base page has one subtask: a failure reward there is ``wrong_element`` of subtask 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

KINDS = ("wrong_element", "premature_submit", "order", "step_cap", "other")

REPORT_JS = "() => typeof WOB_COMPOSE === 'object' ? WOB_COMPOSE.report() : null"
"""The composed page's report: ``{names, outcomes, finished, early}`` (null elsewhere)."""


def _sub(index: int | None, names: Sequence[str]) -> dict[str, Any] | None:
    if index is None or index >= len(names):
        return None
    return {"index": index, "task": names[index]}


def classify(record: dict[str, Any], report: dict[str, Any] | None) -> dict[str, Any]:
    """The failure fields of a finished episode's record: ``failure`` (a kind in
    :data:`KINDS`, None for a success), ``failed_subtask`` (``{"index", "task"}`` or None),
    ``failure_by`` (the later subtask of ``premature_submit``/``order``) and
    ``subtask_outcomes`` (from the page's report)."""
    names = list(report.get("names") or []) if report else list(record.get("base") or [])
    fields: dict[str, Any] = {
        "failure": None,
        "failed_subtask": None,
        "failure_by": None,
        "subtask_outcomes": report.get("outcomes") if report else None,
    }
    if record.get("success"):
        return fields
    kind, failed, by = _kind(record, report, names)
    fields.update(failure=kind, failed_subtask=_sub(failed, names), failure_by=_sub(by, names))
    return fields


def _kind(
    record: dict[str, Any], report: dict[str, Any] | None, names: list[str]
) -> tuple[str, int | None, int | None]:
    if record.get("crashed") or record.get("error"):
        return "other", None, None
    done = bool(record.get("done"))
    capped = record.get("status") == "step_limit"
    if report is None:
        if len(names) == 1 and done and float(record.get("reward") or 0) <= 0:
            return "wrong_element", 0, None
        if not done and capped:
            return "step_cap", 0 if len(names) == 1 else None, None
        return "other", None, None
    outcomes = list(report.get("outcomes") or [])
    succeeded: set[int] = set()
    for i in report.get("finished") or []:
        if not (outcomes[i] is not None and outcomes[i] > 0):
            return "wrong_element", i, None
        pending = next((j for j in range(i) if j not in succeeded), None)
        if pending is not None:
            return "premature_submit", pending, i
        succeeded.add(i)
    first_open = next((j for j in range(len(names)) if j not in succeeded), None)
    early = report.get("early")
    if not done and early:
        return "order", int(early["pending"]), int(early["subtask"])
    if not done and capped:
        return "step_cap", first_open, None
    return "other", first_open, None


def failure_table(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Failed episodes grouped by kind: ``{kind: {"n", "subtasks": {task: n}, "ids"}}``."""
    groups: dict[str, dict[str, Any]] = {}
    for r in records:
        if r.get("success") and not r.get("error"):
            continue
        kind = r.get("failure") or "other"
        group = groups.setdefault(kind, {"n": 0, "subtasks": {}, "ids": []})
        group["n"] += 1
        sub = r.get("failed_subtask")
        task = sub["task"] if isinstance(sub, dict) else "?"
        group["subtasks"][task] = group["subtasks"].get(task, 0) + 1
        group["ids"].append(str(r.get("id")))
    return {k: groups[k] for k in (*KINDS, *sorted(set(groups) - set(KINDS))) if k in groups}


def failure_lines(table: dict[str, Any]) -> list[str]:
    """``per_task.md``'s failure section."""
    if not table:
        return ["", "No failed episodes."]
    lines = ["", "Failures by kind (which base task's subtask failed):", ""]
    lines += ["| kind | n | failed subtasks | episodes |", "|---|---|---|---|"]
    for kind, g in table.items():
        subs = ", ".join(f"{t}: {n}" for t, n in sorted(g["subtasks"].items(), key=lambda x: -x[1]))
        ids = ", ".join(g["ids"][:5]) + (
            f", … {len(g['ids']) - 5} more" if len(g["ids"]) > 5 else ""
        )
        lines.append(f"| {kind} | {g['n']} | {subs} | {ids} |")
    return lines

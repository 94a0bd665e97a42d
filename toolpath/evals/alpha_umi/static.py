"""α-UMi's static step-level evaluation on GLPFT data (``toolpath eval toolbench-static``).

Every step is judged on the *true* history, so one wrong turn never spoils the next. A step is
one turn the agent writes (:func:`make_steps`):

- **multi-LLM mode** (planner, caller and summarizer models): one step per ``assistant`` turn
  (the planner predicts its thought and Next tag), per ``caller`` turn (the caller predicts
  ``Action``/``Action Input``) and per ``conclusion`` turn (the summarizer writes the answer),
  each given the turns before it;
- **single-LLM mode** (one backbone model): one step per ``assistant`` turn. The backbone sees
  the history in its own format (:func:`~toolpath.evals.alpha_umi.glpft.backbone_history`) and writes a
  thought and then an action, ``conclusion: ...`` or ``give up``; its Next tag is inferred from
  that (action → caller, conclusion → conclusion, give up → give up), and the action or the
  answer is judged against the caller or conclusion turn that follows in the data.

Metrics (α-UMi's, as percentages; each averages over the steps it applies to):

``plan_acc``
    planner steps whose predicted Next tag equals the true one (:func:`plan_score`).
``act_em``
    tool-call steps whose predicted action name equals the true one, both sanitized like the
    catalog's tool names (:func:`action_score`).
``hallucination``
    tool-call steps whose predicted action names a tool that is not in the dialogue's tool list
    (:func:`is_hallucination`). A reply with no action is a miss for ``act_em``, not a
    hallucination. *Departure:* α-UMi divides by all steps; here the denominator is the
    tool-call steps in both modes, so the two modes are compared on the same steps.
``arg_f1``
    tool-call steps: 0 when the action name is wrong, else :func:`argument_f1`. Steps whose
    true Action Input is not a JSON object are left out, as α-UMi does.
``rouge_l``
    conclusion steps: ROUGE-L F-measure of the predicted answer against the true one
    (:func:`rouge_l`).

A failed model call is recorded with its ``error`` and counts as a wrong prediction.
Results go to ``out_dir/<method>.jsonl``, one line per step, written and fsync'ed as each step
finishes; running again skips the step ids already there (the harness's durable JSONL). Then
``summary.json`` and ``summary.md`` compare every method in ``out_dir``.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict, Unpack

from toolpath.agents.alpha_umi.constrained import as_text, constrain
from toolpath.agents.alpha_umi.format import parse_action, parse_next, role_messages
from toolpath.errors import ConfigError, DatasetError
from toolpath.evals.alpha_umi.glpft import (
    ROLE_OF_TURN,
    BadRecord,
    Dialogue,
    GLPFTData,
    backbone_history,
    parse_record,
)
from toolpath.evals.harness import (
    Appender,
    Record,
    ensure_threads,
    gather_all,
    load_records,
    rewrite_records,
    scan_records,
)
from toolpath.llm.base import ChatModel
from toolpath.tools.catalog import sanitize_name

TASK = "toolbench-static"
METRICS = ("plan_acc", "act_em", "hallucination", "arg_f1", "rouge_l")
LABELS = {
    "plan_acc": "plan ACC",
    "act_em": "act EM",
    "hallucination": "hallu.",
    "arg_f1": "arg F1",
    "rouge_l": "ROUGE-L",
}
MAX_TOKENS = {"planner": 192, "caller": 128, "summarizer": 256, "backbone": 320}
"""Reply budgets per role: the live agent's (planner, caller, summarizer); backbone: both."""
STOP = ["\nobservation:", "\nuser:"]
"""Stop sequences: a small model that goes on to invent the next turn is cut off there."""
Progress = Callable[[int, int], None]
"""Called with ``(steps done, steps in all)`` once at the start and after every step."""


# -- metrics -----------------------------------------------------------------------------------


def plan_score(predicted: str | None, gold: str) -> float:
    """1.0 when the predicted Next tag (``caller``, ``conclusion``, ``give up``) is the true one."""
    return 1.0 if predicted is not None and predicted == gold else 0.0


def action_score(predicted: str | None, gold: str) -> float:
    """1.0 when the predicted action name equals the true one after :func:`sanitize_name`."""
    return 1.0 if predicted and sanitize_name(predicted) == sanitize_name(gold) else 0.0


def is_hallucination(predicted: str | None, tool_names: Iterable[str]) -> bool:
    """Whether a predicted action names a tool missing from the list (no action: False)."""
    return bool(predicted) and sanitize_name(predicted or "") not in set(tool_names)


def argument_f1(predicted: dict[str, Any] | None, gold: dict[str, Any]) -> float:
    """α-UMi's argument F1 of one call whose action name is right.

    ``predicted`` None (the input was not a JSON object) scores 0. When ``gold`` is empty the
    score is 1 for an empty prediction, else 0. Otherwise each gold key scores 1 when the
    prediction has it with an equal value (JSON equality), 0.5 when it has it with another
    value, 0 when it lacks it; with ``m`` the sum, recall is ``m / len(gold)``, precision
    ``m / len(predicted)``, and the score their harmonic mean (0 when ``m`` is 0).
    """
    if predicted is None:
        return 0.0
    if not gold:
        return 1.0 if not predicted else 0.0
    matched = sum((1.0 if predicted[k] == v else 0.5) for k, v in gold.items() if k in predicted)
    if matched == 0:
        return 0.0
    recall, precision = matched / len(gold), matched / len(predicted)
    return 2 * recall * precision / (recall + precision)


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """The length of the longest common subsequence of two token lists (O(len(a)·len(b)))."""
    if len(a) < len(b):
        a, b = b, a
    row = [0] * (len(b) + 1)
    for x in a:
        diagonal = 0  # row[j - 1] of the previous row
        for j, y in enumerate(b, 1):
            above = row[j]
            row[j] = diagonal + 1 if x == y else max(row[j], row[j - 1])
            diagonal = above
    return row[-1]


def rouge_l(predicted: str, gold: str) -> float:
    """ROUGE-L F-measure on lower-cased whitespace tokens: with ``L`` the LCS length,
    precision ``L / len(predicted)``, recall ``L / len(gold)``, F = 2PR / (P + R); 0 when
    either text is empty or nothing is shared."""
    p, g = predicted.lower().split(), gold.lower().split()
    common = lcs_length(p, g) if p and g else 0
    if common == 0:
        return 0.0
    precision, recall = common / len(p), common / len(g)
    return 2 * precision * recall / (precision + recall)


def aggregate(records: Iterable[Record]) -> dict[str, Any]:
    """Per-metric means (as percentages, 2 decimals) over the steps that have each metric,
    with the number of steps behind each, plus counts, errors, and mean tokens and seconds."""
    records = list(records)
    metrics: dict[str, float | None] = {}
    counts: dict[str, int] = {}
    for key in METRICS:
        values = [float(r["scores"][key]) for r in records if key in (r.get("scores") or {})]
        counts[key] = len(values)
        metrics[key] = round(100 * sum(values) / len(values), 2) if values else None
    tokens = [sum((r.get("tokens") or {}).values()) for r in records]
    seconds = [float(r.get("seconds") or 0.0) for r in records]
    return {
        "dialogues": len({r.get("dialogue") for r in records}),
        "steps": len(records),
        "errors": sum(1 for r in records if r.get("error")),
        "metrics": metrics,
        "counts": counts,
        "tokens": round(sum(tokens) / len(tokens), 1) if tokens else None,
        "seconds": round(sum(seconds) / len(seconds), 3) if seconds else None,
    }


# -- steps -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One turn to predict: the ``role`` that writes it, at ``turns[turn]`` of ``dialogue``."""

    dialogue: Dialogue
    turn: int
    role: str  # planner, caller, summarizer or backbone

    @property
    def id(self) -> str:
        return f"{self.dialogue.id}/{self.turn}"


def make_steps(dialogues: Iterable[Dialogue], mode: str) -> list[Step]:
    """The steps of ``mode`` (``multi`` or ``single``) in order; see the module docstring."""
    steps = []
    for d in dialogues:
        for i, t in enumerate(d.turns):
            role = ROLE_OF_TURN.get(t["from"])
            if mode == "single" and role == "planner":
                steps.append(Step(d, i, "backbone"))
            elif mode == "multi" and role:
                steps.append(Step(d, i, role))
    return steps


def gold_of(step: Step) -> dict[str, Any]:
    """What the data says the step's role should have written, parsed."""
    turns = step.dialogue.turns
    value = turns[step.turn]["value"]
    if step.role == "caller":
        name, args, _ = parse_action(value)
        return {"action": name, "arguments": args}
    if step.role == "summarizer":
        return {"answer": value.strip()}
    gold: dict[str, Any] = {"next": parse_next(value)[1]}
    if step.role == "backbone" and step.turn + 1 < len(turns):
        following = turns[step.turn + 1]
        if following["from"] == "caller":
            name, args, _ = parse_action(following["value"])
            gold.update(action=name, arguments=args)
        elif following["from"] == "conclusion":
            gold["answer"] = following["value"].strip()
    return gold


_CONCLUSION = re.compile(r"(?:conclusion|final\s+answer)\s*:", re.I)
_ACTION_LINE = re.compile(r"action\s*:", re.I)
_GIVE_UP = re.compile(r"give\s*up", re.I)


def parse_backbone(text: str) -> dict[str, Any]:
    """Read a backbone reply: ``next`` (inferred tag, None when the reply has none of the forms),
    ``thought``, and ``action``/``arguments`` or ``answer``. The first of an ``Action:`` line and
    a ``conclusion:`` marker wins; ``give up`` counts only when neither appears."""
    action, conclusion = _ACTION_LINE.search(text), _CONCLUSION.search(text)
    if action and (conclusion is None or action.start() < conclusion.start()):
        name, args, _ = parse_action(text[action.start() :])
        thought = text[: action.start()].strip()
        return {"next": "caller", "thought": thought, "action": name, "arguments": args}
    if conclusion:
        answer = text[conclusion.end() :].strip()
        return {
            "next": "conclusion",
            "thought": text[: conclusion.start()].strip(),
            "answer": answer,
        }
    if _GIVE_UP.search(text):
        return {"next": "give up", "thought": text.strip()}
    return {"next": None, "thought": text.strip()}


def parse_prediction(role: str, text: str) -> dict[str, Any]:
    """A role model's reply, parsed into the fields :func:`score_step` compares."""
    if role == "planner":
        thought, tag = parse_next(text)
        return {"next": tag, "thought": thought}
    if role == "caller":
        name, args, problem = parse_action(text)
        return {"action": name, "arguments": args, "problem": problem}
    if role == "summarizer":
        return {"answer": re.sub(r"^\s*conclusion\s*:\s*", "", text, flags=re.I).strip()}
    return parse_backbone(text)


def score_step(
    role: str, gold: dict[str, Any], pred: dict[str, Any], tool_names: Iterable[str]
) -> dict[str, float]:
    """The metrics that apply to one step (see the module docstring)."""
    scores: dict[str, float] = {}
    if role in ("planner", "backbone"):
        scores["plan_acc"] = plan_score(pred.get("next"), gold["next"])
    if gold.get("action"):
        act = action_score(pred.get("action"), gold["action"])
        scores["act_em"] = act
        scores["hallucination"] = float(is_hallucination(pred.get("action"), tool_names))
        if gold.get("arguments") is not None:
            f1 = argument_f1(pred.get("arguments"), gold["arguments"]) if act else 0.0
            scores["arg_f1"] = f1
    if "answer" in gold:
        scores["rouge_l"] = rouge_l(pred.get("answer") or "", gold["answer"])
    return scores


# -- the driver --------------------------------------------------------------------------------


class StaticEvalOptions(TypedDict, total=False):
    """:func:`arun_static_eval`'s options besides ``out_dir``, for :func:`run_static_eval`."""

    backbone: ChatModel | None
    planner: ChatModel | None
    caller: ChatModel | None
    summarizer: ChatModel | None
    method: str | None
    concurrency: int
    progress: Progress | None
    retry_errors: bool
    constrained: bool
    """Constrain the planner, caller and backbone replies of JSON-mode models with JSON schemas,
    as the live agent's ``planner_json``/``caller_json`` do (default False)."""


def run_static_eval(
    records: GLPFTData | Iterable[Dialogue | dict[str, Any]],
    *,
    out_dir: str | Path,
    **options: Unpack[StaticEvalOptions],
) -> dict[str, Any]:
    """Run the static evaluation and return the summary of every method in ``out_dir``.

    Give ``backbone`` (single-LLM mode) or all of ``planner``, ``caller`` and ``summarizer``
    (multi-LLM mode). ``records`` are loaded dialogues (:func:`~toolpath.evals.alpha_umi.glpft.load_glpft`)
    or raw GLPFT records. Steps go to ``out_dir/<method>.jsonl`` (``method`` defaults to
    ``single`` or ``multi``); ids already there are skipped, and with ``retry_errors`` the steps
    that failed are run again. ``concurrency`` steps run at once, and ``progress(done, total)``
    is called as they finish. The returned summary names this run's method under ``method``.
    """
    return asyncio.run(arun_static_eval(records, out_dir=out_dir, **options))


async def arun_static_eval(
    records: GLPFTData | Iterable[Dialogue | dict[str, Any]],
    *,
    backbone: ChatModel | None = None,
    planner: ChatModel | None = None,
    caller: ChatModel | None = None,
    summarizer: ChatModel | None = None,
    out_dir: str | Path,
    method: str | None = None,
    concurrency: int = 1,
    progress: Progress | None = None,
    retry_errors: bool = False,
    constrained: bool = False,
) -> dict[str, Any]:
    """:func:`run_static_eval` for callers that already run an event loop."""
    mode, models = _mode(backbone, planner, caller, summarizer)
    method = method or mode
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", method):
        raise ConfigError(f"method name {method!r} must be letters, digits, '_', '.' or '-'")
    if concurrency < 1:
        raise ConfigError(f"concurrency must be at least 1, not {concurrency}")
    steps = make_steps(_dialogues(records), mode)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{method}.jsonl"
    saved = {r["id"]: r for r in scan_records(path, repair=True)}
    other = next((r for r in saved.values() if r.get("mode") not in (None, mode)), None)
    if other is not None:
        raise ConfigError(
            f"{path} holds {other['mode']}-LLM steps, not {mode}-LLM ones; "
            "pass another method name or another output folder"
        )
    if retry_errors and any(r.get("error") for r in saved.values()):
        saved = {i: r for i, r in saved.items() if not r.get("error")}
        rewrite_records(path, list(saved.values()))
    todo = [s for s in steps if s.id not in saved]
    done = len(steps) - len(todo)
    if progress:
        progress(done, len(steps))

    ensure_threads(concurrency)  # models without native async calls run in threads
    appender = Appender(path)
    semaphore = asyncio.Semaphore(concurrency)

    async def one(step: Step) -> None:
        nonlocal done
        async with semaphore:
            record = await _run_step(step, models[step.role], method, mode, constrained)
            await appender.append(record)
            done += 1
            if progress:
                progress(done, len(steps))

    try:
        await gather_all([asyncio.create_task(one(s)) for s in todo])
    finally:
        appender.close()
    summary = summarize(out)
    summary["method"] = method
    return summary


def _mode(
    backbone: ChatModel | None,
    planner: ChatModel | None,
    caller: ChatModel | None,
    summarizer: ChatModel | None,
) -> tuple[str, dict[str, ChatModel]]:
    roles = {"planner": planner, "caller": caller, "summarizer": summarizer}
    given = [r for r, m in roles.items() if m is not None]
    if backbone is not None and not given:
        return "single", {"backbone": backbone}
    if backbone is None and len(given) == 3:
        return "multi", {r: m for r, m in roles.items() if m is not None}
    if backbone is not None:
        raise ConfigError("give either a backbone model or planner/caller/summarizer, not both")
    missing = ", ".join(r for r in roles if r not in given)
    raise ConfigError(
        f"multi-LLM mode needs planner, caller and summarizer models; missing {missing}"
    )


def _dialogues(records: GLPFTData | Iterable[Dialogue | dict[str, Any]]) -> list[Dialogue]:
    if isinstance(records, GLPFTData):
        return records.dialogues
    out: list[Dialogue] = []
    for i, raw in enumerate(records):
        if isinstance(raw, Dialogue):
            out.append(raw)
            continue
        try:
            out.append(parse_record(raw, where=f"record #{i}", default_id=str(i)))
        except BadRecord as exc:
            raise DatasetError(f"record #{i}: {exc}") from None
    ids = [d.id for d in out]
    if len(set(ids)) != len(ids):
        repeated = sorted({i for i in ids if ids.count(i) > 1})[:5]
        raise DatasetError(f"dialogue ids must be unique; repeated: {', '.join(repeated)}")
    if not out:
        raise DatasetError("no dialogues to evaluate")
    return out


async def _run_step(
    step: Step, model: ChatModel, method: str, mode: str, constrained: bool = False
) -> Record:
    """Ask the step's model, parse and score; a failed call becomes the record's error. With
    ``constrained`` (and a JSON-mode model), the planner, caller and backbone replies are
    constrained as the live agent's are (:mod:`~toolpath.agents.alpha_umi.constrained`)."""
    d = step.dialogue
    history = d.turns[: step.turn]
    if step.role == "backbone":
        history = backbone_history(history)
    messages = role_messages(step.role, d.tools, history)
    options: dict[str, Any] = {"stop": STOP}
    constrained = constrained and model.tool_mode == "json" and step.role != "summarizer"
    if constrained:
        options = {"response_format": constrain(step.role, messages, d.tools)}
    start = time.perf_counter()
    text, error, tokens = "", None, {"prompt": 0, "completion": 0}
    try:
        completion = await model.acomplete(
            messages, max_tokens=MAX_TOKENS[step.role], temperature=0.0, **options
        )
        text = (
            as_text(step.role, completion.content, d.tools) if constrained else completion.content
        )
        tokens = {
            "prompt": completion.usage.prompt_tokens,
            "completion": completion.usage.completion_tokens,
        }
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
    gold = gold_of(step)
    pred = parse_prediction(step.role, text)
    return {
        "id": step.id,
        "dialogue": d.id,
        "turn": step.turn,
        "role": step.role,
        "method": method,
        "mode": mode,
        "model": model.name,
        "output": text,
        "gold": gold,
        "pred": pred,
        "scores": score_step(step.role, gold, pred, d.tool_names),
        "tokens": tokens,
        "seconds": round(time.perf_counter() - start, 3),
        "error": error,
    }


# -- reports -----------------------------------------------------------------------------------


def summarize(out_dir: str | Path) -> dict[str, Any]:
    """Summarize every ``<method>.jsonl`` in ``out_dir``; write summary.json and summary.md."""
    out = Path(out_dir)
    methods: dict[str, Any] = {}
    for path in sorted(out.glob("*.jsonl")):
        records = list({r["id"]: r for r in load_records(path)}.values())
        records = [r for r in records if "role" in r and isinstance(r.get("scores"), dict)]
        if not records:
            continue
        last = records[-1]
        models = sorted({str(r.get("model")) for r in records})
        methods[path.stem] = {"mode": last.get("mode"), "models": models, **aggregate(records)}
    summary: dict[str, Any] = {"task": TASK, "metric_keys": list(METRICS), "methods": methods}
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    (out / "summary.md").write_text(summary_markdown(summary), encoding="utf-8")
    return summary


def summary_markdown(summary: dict[str, Any]) -> str:
    """The summary as a Markdown table (metric cells: ``percent (steps)``)."""
    head = ["method", "mode", "dialogues", "steps", "errors"]
    head += [f"{LABELS[k]} %" for k in METRICS] + ["tokens/step", "s/step"]
    lines = [f"# {TASK}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, m in summary.get("methods", {}).items():
        cells = [name, m.get("mode"), m["dialogues"], m["steps"], m["errors"]]
        for key in METRICS:
            value = m["metrics"].get(key)
            cells.append("–" if value is None else f"{value:.2f} ({m['counts'][key]})")
        cells += [m.get("tokens"), m.get("seconds")]
        lines.append("| " + " | ".join("–" if c is None else str(c) for c in cells) + " |")
    lines += [
        "",
        "plan ACC: Next tag right, over planner steps. act EM: action name right, over tool-call "
        "steps. hallu.: action names a tool not in the list, over tool-call steps. arg F1: "
        "α-UMi's per-key F1 (0.5 for a key with a wrong value), 0 for a wrong action. ROUGE-L: "
        "LCS F-measure of the answer, over conclusion steps. In brackets: the steps behind each.",
    ]
    return "\n".join(lines) + "\n"

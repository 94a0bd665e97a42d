"""BFCL as a task family: one episode is one question and its functions, answered in one turn.

Two methods run on the same model, side by side:

- ``toolpath``: :func:`~toolpath.agents.toolcall.adecide`, what every toolpath agent asks a
  model with (full tool contracts, constrained ``{"tool_calls": [...]}`` or
  ``{"final_answer"}`` replies, coercion and validation), with the agents' bounded repair of
  an unusable reply and the fit check at :data:`~toolpath.agents.fit.FIT_THRESHOLD`;
- ``raw``: what a user writes by hand: the functions as JSON in the system prompt and a reply
  constrained to ``{"calls": [{"name", "arguments"}]}`` (an empty list when none fits).

Calls are scored with BFCL's AST rules (:mod:`toolpath.evals.bfcl.matcher`): ``accuracy``,
and ``no_call``, the share of questions answered without any call (right on irrelevance, a
false refusal elsewhere).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from toolpath.agents.fit import FIT_THRESHOLD
from toolpath.agents.toolcall import REPAIR_NOTE, adecide
from toolpath.errors import ConfigError
from toolpath.evals.bfcl.data import CATEGORIES, BfclItem, load_items
from toolpath.evals.bfcl.matcher import match
from toolpath.evals.harness import Example, Record
from toolpath.llm.base import ChatModel, Message, assistant, user
from toolpath.tools.base import Tool
from toolpath.tools.catalog.schema import described_only

METHODS = ("toolpath", "raw")
MAX_TOKENS = 400
REPAIRS = 1
"""Unusable replies the ``toolpath`` method shows back to the model, as :func:`tool_agent`
does, before the episode counts as no call."""

Calls = list[dict[str, Any]]
Method = Callable[[BfclItem], Awaitable[tuple[Calls, dict[str, Any]]]]
_TYPES = {"dict": "object", "float": "number", "tuple": "array", "int": "integer"}

RAW_PROMPT = """You are an expert in composing functions. You are given a question and a set of \
possible functions. Based on the question, make one or more function calls to achieve the \
purpose. If none of the functions can be used, reply with an empty list of calls.

Functions:
{functions}"""

RAW_SCHEMA = {
    "type": "object",
    "properties": {
        "calls": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"name": {"type": "string"}, "arguments": {"type": "object"}},
                "required": ["name", "arguments"],
            },
        }
    },
    "required": ["calls"],
}


def bfcl_tool(doc: dict[str, Any]) -> Tool:
    """A BFCL function doc as a described-only Tool, its types made JSON schema
    (``dict`` -> object, ``float`` -> number with ``format: float``, ``tuple`` -> array,
    ``any`` -> untyped)."""
    name = str(doc["name"])
    params = json_schema(doc.get("parameters") or {"type": "dict", "properties": {}})
    params["type"] = "object"
    return Tool(name, str(doc.get("description", "")), params, described_only(name))


def json_schema(s: Any) -> Any:
    """A BFCL parameter schema in JSON schema's words (recursively)."""
    if isinstance(s, list):
        return [json_schema(x) for x in s]
    if not isinstance(s, dict):
        return s
    out = {k: json_schema(v) for k, v in s.items() if k not in ("type", "optional")}
    t = s.get("type")
    if isinstance(t, str) and t != "any":
        out["type"] = _TYPES.get(t, t)
    if t == "float":  # OpenAPI's way of saying so: the values are floats, not just numbers
        out.setdefault("format", "float")
    if isinstance(s.get("properties"), dict):
        out["properties"] = {k: json_schema(v) for k, v in s["properties"].items()}
    return out


def toolpath_method(model: ChatModel) -> Method:
    """toolpath's own way: :func:`adecide` with one repair of an unusable reply."""

    async def run(item: BfclItem) -> tuple[Calls, dict[str, Any]]:
        tools = [bfcl_tool(f) for f in item.functions]
        instructions, messages = _split_system(item.question)
        usage = {"prompt": 0, "completion": 0}
        replies: list[str] = []
        errors: list[str] = []
        for _ in range(1 + REPAIRS):
            decision = await adecide(
                model,
                messages,
                tools,
                max_tokens=MAX_TOKENS,
                instructions=instructions,
                check_fit=FIT_THRESHOLD,
            )
            completion = decision.completion
            for c in [completion, *decision.checks] if completion else decision.checks:
                usage["prompt"] += c.usage.prompt_tokens
                usage["completion"] += c.usage.completion_tokens
            replies.append(completion.content if completion else "")
            if decision.error is None:
                calls = [{c.name: c.arguments} for c in decision.tool_calls]
                return calls, {"replies": replies, "errors": errors, "tokens": usage}
            errors.append(decision.error)
            messages += [assistant(replies[-1]), user(REPAIR_NOTE.format(error=decision.error))]
        return [], {"replies": replies, "errors": errors, "tokens": usage}

    return run


def raw_method(model: ChatModel) -> Method:
    """The hand-written baseline (see the module doc); calls are taken as the model wrote them."""

    async def run(item: BfclItem) -> tuple[Calls, dict[str, Any]]:
        own, question = _split_system(item.question)
        system = RAW_PROMPT.format(functions=json.dumps(item.functions, ensure_ascii=False))
        system = f"{own}\n\n{system}" if own else system
        messages: list[Message] = [{"role": "system", "content": system}, *question]
        fmt = {"type": "json_schema", "json_schema": {"name": "calls", "schema": RAW_SCHEMA}}
        completion = await model.acomplete(
            messages, max_tokens=MAX_TOKENS, temperature=0.0, response_format=fmt
        )
        usage = completion.usage
        tokens = (
            {"prompt": usage.prompt_tokens, "completion": usage.completion_tokens} if usage else {}
        )
        calls: Calls = []
        try:
            for c in json.loads(completion.content)["calls"]:
                calls.append({str(c["name"]): c["arguments"]})
        except (ValueError, KeyError, TypeError):
            calls = []
        return calls, {"replies": [completion.content], "errors": [], "tokens": tokens}

    return run


def method_for(name: str, model: ChatModel) -> Method:
    """The method called ``name`` (``toolpath`` or ``raw``) on ``model``."""
    makers = {"toolpath": toolpath_method, "raw": raw_method}
    if name not in makers:
        raise ConfigError(f"unknown BFCL method {name!r}; use one of: {', '.join(makers)}")
    return makers[name](model)


@dataclass
class BfclTask:
    """One BFCL category (``simple``, ``multiple``, ``parallel``, ``parallel_multiple`` or
    ``irrelevance``) as a task family for :func:`~toolpath.evals.harness.run_eval`."""

    category: str
    name: str = ""

    def __post_init__(self) -> None:
        self.name = self.name or f"bfcl-{self.category}"

    def load(
        self, *, data: str | Path | None = None, limit: int | None = None, skip: int = 0
    ) -> list[Example]:
        items = load_items(self.category, data, limit=limit, skip=skip)
        return [
            Example(
                id=item.id,
                question=question_text(item.question),
                gold=json.dumps(item.answers),
                meta={"item": item},
            )
            for item in items
        ]

    async def run_one(self, example: Example, agent: Method) -> Record:
        item: BfclItem = example.meta["item"]
        calls, info = await agent(item)
        verdict = match(item.functions, calls, item.answers, self.category)
        return {
            "id": example.id,
            "question": example.question,
            "calls": calls,
            "gold": item.answers,
            "valid": verdict.ok,
            "why": verdict.error,
            "kind": verdict.kind,
            **info,
        }

    def score(self, record: Record) -> dict[str, float]:
        return {
            "accuracy": float(bool(record.get("valid"))),
            "no_call": float(not record.get("calls")),
        }


def _split_system(question: list[dict[str, Any]]) -> tuple[str, list[Message]]:
    """A question's system text (joined) and its other messages."""
    system = "\n\n".join(str(m.get("content", "")) for m in question if m["role"] == "system")
    rest: list[Message] = [m for m in question if m["role"] != "system"]
    return system, rest


def question_text(question: list[dict[str, Any]]) -> str:
    return "\n".join(str(m.get("content", "")) for m in question if m.get("role") == "user")


async def run_bfcl(
    model: ChatModel,
    slices: Mapping[str, tuple[int, int | None]],
    methods: list[str],
    *,
    out_dir: Path,
    data: str | Path | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Every method on every category of ``slices`` (``{category: (skip, limit)}``), one after
    the other on ``model``, into ``out_dir/CATEGORY/METHOD.jsonl`` (resumable); then
    ``report.json`` and ``report.md`` with the methods side by side per category, for every
    category and method in ``out_dir`` (earlier runs into the same folder included)."""
    from toolpath.evals.harness import run_eval

    for category, (skip, limit) in slices.items():
        task = BfclTask(category)
        examples = task.load(data=data, limit=limit, skip=skip)
        for name in methods:
            await run_eval(
                task,
                examples,
                method_for(name, model),
                out_dir=out_dir / category,
                method=name,
                progress=progress,
                model=model,
            )
    return write_report(out_dir)


def write_report(out_dir: Path) -> dict[str, Any]:
    """``report.json`` and ``report.md`` for every ``CATEGORY/METHOD.jsonl`` in ``out_dir``:
    each method's accuracy and no-call share (%), mean tokens and seconds; the report."""
    from toolpath.evals.harness import summarize

    report: dict[str, Any] = {}
    for category in CATEGORIES:
        if (out_dir / category).is_dir():
            summary = summarize(out_dir / category, BfclTask(category))
            if summary["methods"]:
                report[category] = summary["methods"]
    (out_dir / "report.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    lines = [
        "| category | method | n | accuracy % | no call % | tokens | seconds |",
        "|---|---|---|---|---|---|---|",
    ]
    for category, methods in report.items():
        for name, row in methods.items():
            scores = row.get("scores", {})
            cells = [category, name, row.get("n"), scores.get("accuracy"), scores.get("no_call")]
            cells += [row.get("tokens"), row.get("seconds")]
            lines.append("| " + " | ".join("–" if c is None else str(c) for c in cells) + " |")
    (out_dir / "report.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return report

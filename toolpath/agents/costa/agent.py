"""CoSTA*: an LLM builds a subtask tree; cost-sensitive A* picks the tools; each step is verified.

    START -> build_tree -> search -> execute
    execute -> execute (step verified, more to do) | search (step failed: re-plan) | END

``build_tree`` asks the model for the subtask tree as JSON constrained to the domain's
subtask types (one repair on a bad reply, then :class:`PlanError`). ``search`` runs A*
(:func:`toolpath.agents.costa.search.astar`) from the steps executed so far. ``execute``
runs the next tool, measures its real cost, and scores the result with the domain's
verifier. A failure, or a tool that crashes, lowers that tool's quality for that subtask
type in the cost table and records the cost; the search then continues from the executed
prefix. The table can persist across runs (``table_path``), so real costs are learned.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.types import interrupt

from toolpath import tracing
from toolpath.agents.approval import (
    Approve,
    PendingCall,
    check_approve,
    needs_approval,
    parse_decision,
    pausable,
)
from toolpath.agents.base import (
    AgentGraph,
    Status,
    TraceRecord,
    as_model,
    finish,
    generate,
    model_record,
    tool_record,
)
from toolpath.agents.budget import Budget
from toolpath.agents.costa.domain import ToolDomain, Verifier, verdict
from toolpath.agents.costa.search import (
    DEFAULT_Q,
    DEFAULT_RULE,
    Search,
    Step,
    Subtask,
    SubtaskTree,
    ToolInfo,
    astar,
    check_alpha,
    exhaustive,
    greedy,
    prune,
    uniform_cost,
)
from toolpath.agents.costa.table import CostTable
from toolpath.errors import ConfigError, PlanError, ToolError
from toolpath.llm.base import ChatModel, ToolCall, assistant, system, user


class Domain(Protocol):
    """What CoSTA* needs from a tool domain (:class:`~toolpath.agents.costa.image.ImageDomain`,
    or any :class:`~toolpath.agents.costa.domain.ToolDomain` built from typed functions).
    ``start_types`` are the data types the working object may start as; ``verify`` returns a
    score, a bool, ``(score, ok)`` or a :class:`~toolpath.agents.costa.domain.Verdict`. A domain
    may also name the classes of its working objects (``context_types``), so that a
    checkpointer which loads only the types it is told of stores them too, and may have
    ``prepare(kind, params, obj) -> params``, which fits a step's parameters to the working
    object before the tool and its verifier see them."""

    subtask_schemas: Mapping[str, Mapping[str, Any]]
    tools: Sequence[ToolInfo]
    start_types: Sequence[str]
    example: str

    def priors(self) -> dict[tuple[str, str], tuple[float, float]]: ...
    def complete_tree(self, subtasks: list[dict[str, Any]]) -> list[dict[str, Any]]: ...
    def run(self, tool: str, kind: str, params: Mapping[str, Any], context: Any) -> Any: ...
    def verify(self, kind: str, before: Any, after: Any, params: Mapping[str, Any]) -> Any: ...


class CostaState(TypedDict, total=False):
    request: str
    context: Any  # the domain's working object, e.g. an ImageState
    tree: list[dict[str, Any]]
    tree_request: str  # the request that ``tree`` was given or built for
    plan: list[Step]
    executed: list[Step]
    attempts: list[dict[str, Any]]
    expanded: int
    replans: int
    status: Status
    reason: str | None
    trace: list[TraceRecord]


PROMPT = """Split the user's request into subtasks for tools. Reply with JSON only:
{{"subtasks": [{{"id": "s1", "type": "<type>", "params": {{...}}, "parents": []}}, ...]}}
A subtask's parents are the subtasks that must happen before it; steps said in order
("then") each depend on the one before. Subtask types and their parameters:
{types}

Example: {example}"""

SEARCHES: dict[str, Search] = {
    "astar": astar,
    "ucs": uniform_cost,
    "exhaustive": exhaustive,
    "greedy": greedy,
}


@dataclass(eq=False)
class CostaSteps:
    """CoSTA*'s nodes and routes, each callable alone on a :class:`CostaState`: the model, the
    domain, the cost table (learned into, and saved to ``table_path`` after every step) and
    the search options. A ``verifier`` replaces the domain's for every subtask type."""

    model: ChatModel
    domain: Domain
    table: CostTable
    find: Search = astar
    alpha: float = 1.0
    q_threshold: float = DEFAULT_Q
    threshold: str = DEFAULT_RULE
    verifier: Verifier | None = None
    max_replans: int = 10
    table_path: str | Path | None = None
    approve: Approve = None

    def build_tree(self, state: CostaState) -> dict[str, Any]:
        request = state["request"]
        fresh = {
            "tree_request": request,
            "executed": [],
            "attempts": [],
            "expanded": 0,
            "replans": 0,
            "status": "running",
            "reason": None,
        }
        given = state.get("tree")  # e.g. built once and shared by an eval's methods
        if given and state.get("tree_request") in (None, request):
            tree = _parse_tree(json.dumps({"subtasks": given}), self.domain)
            return {"tree": tree, "trace": [], **fresh}
        tree, trace = subtask_tree(self.model, request, self.domain)
        return {"tree": tree, "trace": trace, **fresh}

    def search(self, state: CostaState) -> dict[str, Any]:
        tree = _search_tree(state["tree"])
        done = state.get("executed", [])
        starts = tuple(self.domain.start_types)
        try:
            tools = prune(self.domain.tools, tree, starts)
            result = self.find(
                tree, tools, self.table, alpha=self.alpha, q_threshold=self.q_threshold,
                threshold=self.threshold, done=done, start_types=starts,
            )  # fmt: skip
        except PlanError as exc:
            return {"status": "failed", "reason": str(exc)}
        return {"plan": result.path, "expanded": state.get("expanded", 0) + result.expanded}

    def execute(self, state: CostaState) -> dict[str, Any]:
        executed = list(state.get("executed", []))
        step = state["plan"][len(executed)]
        subtask = next(s for s in state["tree"] if s["id"] == step.subtask_id)
        kind, params, before = subtask["type"], subtask.get("params", {}), state["context"]
        prepare = getattr(self.domain, "prepare", None)
        if prepare is not None:  # e.g. a column named as the data names it
            params = prepare(kind, params, before)
        params, refusal = self._reviewed(step, kind, params)
        start = time.perf_counter()
        with tracing.tool_span(step.tool, step.subtask_id, params) as span:
            try:
                if refusal is not None:
                    raise ToolError(refusal)
                after = self.domain.run(step.tool, kind, params, before)
                cost = time.perf_counter() - start
                check = self.verifier or self.domain.verify
                score, ok, why = verdict(check(kind, before, after, params))
                error = None
            except Exception as exc:  # a crashing tool is a failed step, never the end of the run
                after, cost, score, ok, why = before, time.perf_counter() - start, 0.0, False, ""
                error = f"{type(exc).__name__}: {exc}"
            failed = error
            if error is None and not ok:
                failed = f"the {kind} check failed (quality {score:.2f})" + (
                    f": {why}" if why else ""
                )
            tracing.tool_result(span, None, failed)
        attempt = {
            "subtask": step.subtask_id,
            "type": kind,
            "tool": step.tool,
            "cost": cost,
            "quality": score,
            "ok": ok,
            "error": error,
            **({"why": why} if why else {}),
        }
        update: dict[str, Any] = {
            "attempts": [*state.get("attempts", []), attempt],
            "trace": [*state.get("trace", []), tool_record("execute", step.tool, cost, ok, error)],
        }
        if ok:
            self.table.record_success(step.tool, kind, cost, score)
            executed.append(Step(step.subtask_id, step.tool, cost, score))
            update.update(context=after, executed=executed)
            if len(executed) == len(state["tree"]):
                update["status"] = "done"
        else:
            self.table.record_failure(step.tool, kind, cost)
            replans = state.get("replans", 0) + 1
            update["replans"] = replans
            if replans > self.max_replans:
                reason = f"gave up after {self.max_replans} re-plans"
                update.update(status="step_limit", reason=reason)
        if self.table_path:
            self.table.save(self.table_path)
        return update

    def _reviewed(
        self, step: Step, kind: str, params: dict[str, Any]
    ) -> tuple[dict[str, Any], str | None]:
        """The step's parameters after a reviewer's decision (``approve``), and the refusal
        text when it was rejected (a failed step: the search re-plans around the tool)."""
        call = ToolCall(step.tool, dict(params), step.subtask_id)
        if not needs_approval(self.approve, call):
            return params, None
        reason = f"subtask {step.subtask_id} ({kind}) of the plan"
        pending = PendingCall(step.tool, dict(params), reason, step.subtask_id)
        decision = parse_decision(interrupt(asdict(pending)))
        if decision.action == "reject":
            return params, "rejected by the reviewer" + (
                f": {decision.message}" if decision.message else ""
            )
        return (decision.arguments or params), None

    def after_search(self, state: CostaState) -> str:
        return END if state.get("status") != "running" else "execute"

    def after_execute(self, state: CostaState) -> str:
        if state.get("status") != "running":
            return END
        return "execute" if state["attempts"][-1]["ok"] else "search"


def costa_agent(
    model: ChatModel | str | None = None,
    *,
    domain: Domain | None = None,
    alpha: float = 1.0,
    q_threshold: float = DEFAULT_Q,
    threshold: str = DEFAULT_RULE,
    verifier: Verifier | None = None,
    table_path: str | Path | None = None,
    max_replans: int = 10,
    search: str = "astar",
    approve: Approve = "never",
    budget: Budget | None = None,
    checkpointer: Any = None,
) -> AgentGraph:
    """Build the CoSTA* agent. Invoke it with ``{"request": ..., "context": <input>}`` (for the
    image domain the context is an :class:`~toolpath.tools.image.ops.ImageState`); the result
    state has the executed path (``executed``: real cost and quality per step), every
    ``attempts`` entry with its verifier score, ``expanded`` nodes, ``replans`` and ``status``
    (``done``; ``failed`` when no tool path remains, ``step_limit`` after ``max_replans``).
    ``alpha`` in [0, 2] trades quality (0) for cost (2); ``q_threshold`` bounds the planned
    quality by the ``threshold`` rule (``product``, ``step`` or ``normalized``: see
    :data:`~toolpath.agents.costa.search.THRESHOLDS`). ``verifier`` replaces the domain's
    checks (``LLMVerifier``, ``VLMVerifier`` or any callable of their signature). ``search``:
    ``astar`` (CoSTA*), ``ucs``, ``exhaustive`` or ``greedy`` (no search). A ``tree`` in the
    input skips the model (on a ``checkpointer``'s thread, only for the same request).
    ``approve``: which tools' steps wait for a human (an edit replaces the step's parameters,
    a rejection fails the step and re-plans)."""
    check_alpha(alpha, q_threshold, threshold)
    if search not in SEARCHES:
        raise ConfigError(f"unknown search {search!r}; use one of: {', '.join(SEARCHES)}")
    domain = named_domain("image") if domain is None else domain
    priors = domain.priors()
    table = CostTable.load(table_path, priors) if table_path else CostTable(priors)
    steps = CostaSteps(
        as_model(model),
        domain,
        table,
        SEARCHES[search],
        alpha=alpha,
        q_threshold=q_threshold,
        threshold=threshold,
        verifier=verifier,
        max_replans=max_replans,
        table_path=table_path,
        approve=check_approve(approve),
    )
    g = StateGraph(CostaState).add_sequence([steps.build_tree, steps.search])
    g.add_node(steps.execute)
    g.add_edge(START, "build_tree")
    g.add_conditional_edges("search", steps.after_search, ["execute", END])
    g.add_conditional_edges("execute", steps.after_execute, ["execute", "search", END])
    compiled = g.compile(
        checkpointer=_allowing(pausable(approve, checkpointer), domain), name="costa"
    )
    agent = finish(compiled, lambda request: {"request": request}, budget=budget)
    agent.table = table  # type: ignore[attr-defined]
    return agent


def named_domain(spec: str) -> Any:
    """A domain by name (``image``, ``tabular``) or from a YAML/JSON spec file's path."""
    if spec == "image":
        from toolpath.agents.costa.image import ImageDomain

        return ImageDomain()
    if spec == "tabular":
        from toolpath.agents.costa.tabular import tabular_domain

        return tabular_domain()
    if not Path(spec).is_file():
        raise ConfigError(f"unknown domain {spec!r}: use image, tabular, or a spec file's path")
    return ToolDomain.from_spec(spec)


def _allowing(checkpointer: Any, domain: Domain) -> Any:
    """``checkpointer``, allowed to load :class:`Step` and the domain's ``context_types`` where
    its serializer loads only the types it is told of (LangGraph's strict mode)."""
    if not hasattr(checkpointer, "with_allowlist"):
        return checkpointer
    types = (Step, *getattr(domain, "context_types", ()))
    return checkpointer.with_allowlist({(t.__module__, t.__qualname__) for t in types})


def subtask_tree(
    model: ChatModel, request: str, domain: Domain
) -> tuple[list[dict[str, Any]], list[TraceRecord]]:
    """Ask ``model`` for the request's subtask tree (JSON constrained to the domain's types);
    one repair on an unusable reply, then :class:`PlanError`. Returns the tree and the trace."""
    types = "\n".join(
        f"- {k}: {json.dumps(dict(v.get('properties', {})))}"
        for k, v in domain.subtask_schemas.items()
    )
    messages = [system(PROMPT.format(types=types, example=domain.example)), user(request)]
    schema = _tree_schema(list(domain.subtask_schemas))
    trace: list[TraceRecord] = []
    for attempt in range(2):
        c = generate(model, messages, node="build_tree", response_format=schema, max_tokens=768)
        trace.append(model_record("build_tree", c, model.name))
        try:
            return _parse_tree(c.content, domain, request), trace
        except (PlanError, ValueError) as exc:
            if attempt == 1:
                raise PlanError(
                    f"the model's subtask tree is unusable after one repair: {exc}"
                ) from exc
            messages += [
                assistant(c.content),
                user(f"That reply is not usable: {exc}. Reply again."),
            ]
    raise AssertionError("unreachable")


def _tree_schema(kinds: list[str]) -> dict[str, Any]:
    item = {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "type": {"enum": kinds},
            "params": {"type": "object"},
            "parents": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["id", "type", "params", "parents"],
    }
    schema = {
        "type": "object",
        "properties": {"subtasks": {"type": "array", "items": item, "minItems": 1, "maxItems": 16}},
        "required": ["subtasks"],
    }
    return {"type": "json_schema", "json_schema": {"name": "subtask_tree", "schema": schema}}


def _parse_tree(text: str, domain: Domain, request: str | None = None) -> list[dict[str, Any]]:
    """The validated subtask list (with the domain's completions, e.g. a locate step). With
    the ``request``, an optional parameter the request never says, beside one it does, is
    dropped (kept under the subtask's ``"dropped"``), so the tool's default applies: a small
    model adds ``"color": "white"`` to a caption the user gave no colour, and the step's
    verifier, which checks the step against its parameters, cannot catch that."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc.msg} at position {exc.pos})") from None
    raw = data.get("subtasks") if isinstance(data, dict) else None
    if not isinstance(raw, list) or not raw:
        raise ValueError('expected {"subtasks": [...]} with at least one subtask')
    raw = [dict(s) for s in raw if isinstance(s, dict)]
    if request is not None:
        raw = [
            _grounded(s, domain.subtask_schemas.get(str(s.get("type")), {}), request) for s in raw
        ]
    subtasks = domain.complete_tree(raw)
    _search_tree(subtasks)  # ids, parents and cycles
    unknown = sorted({s["type"] for s in subtasks} - set(domain.subtask_schemas))
    if unknown:
        raise PlanError(f"no tool supports subtask type(s) {', '.join(unknown)}")
    return subtasks


def _grounded(subtask: dict[str, Any], schema: Mapping[str, Any], request: str) -> dict[str, Any]:
    """``subtask`` without the optional parameters whose value ``request`` never says (text
    compared in lower case without spaces or punctuation, numbers against the request's
    numbers), when another of its parameters is said: a model's addition beside what the
    user gave, such as ``"scale": 1`` next to the width and height asked for. A parameter
    with an ``enum`` is a coded value ("missing": "zero" for "fill missing values with 0")
    and always stays."""
    params = subtask.get("params")
    if not isinstance(params, dict):
        return subtask
    letters = _letters(request)
    numbers = {float(x) for x in re.findall(r"\d+(?:\.\d+)?", request)}

    def said(value: Any) -> bool | None:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            return None  # not comparable: neither said nor unsaid
        if isinstance(value, str):
            return _letters(value) in letters
        return float(value) in numbers

    required = set(schema.get("required") or ())
    coded = {k for k, v in (schema.get("properties") or {}).items() if "enum" in v or "const" in v}
    unsaid = {
        k: v for k, v in params.items() if k not in required and k not in coded and said(v) is False
    }
    if not unsaid or not any(said(v) for k, v in params.items() if k not in unsaid):
        return subtask
    kept = {k: v for k, v in params.items() if k not in unsaid}
    return {**subtask, "params": kept, "dropped": unsaid}


def _letters(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch.isalnum())


def _search_tree(subtasks: list[dict[str, Any]]) -> SubtaskTree:
    return SubtaskTree(
        Subtask(str(s["id"]), str(s["type"]), tuple(str(p) for p in s.get("parents", [])))
        for s in subtasks
    )

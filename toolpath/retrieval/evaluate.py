"""Retrieval evaluation: recall@k and NDCG@k of tool retrievers on labelled queries.

A *queries file* is JSONL (one object a line) or a JSON list (or ``{"queries": [...]}``) of::

    {"query": "Will it rain in Oslo tomorrow?", "relevant": ["get_weather_forecast"],
     "grades": {"get_weather_forecast": 2}, "id": "optional"}

``relevant`` names the catalog tools that answer the query; ``grades`` (optional) gives some of
them a graded relevance (a positive integer; the others count 1). :func:`load_queries` reads and
checks such a file: a malformed line is a :class:`~toolpath.errors.DatasetError` naming the file
and line. Given the catalog's tool names, relevant names that are not in the catalog are dropped
and counted (:attr:`QuerySet.unknown`), a query left with no relevant tool is skipped, and only a
file where *no* query keeps a relevant tool is an error (a :class:`RetrievalError`: most likely
the wrong catalog).

Metrics, for a ranked list ``d_1, d_2, ...`` and the relevant set ``R`` with gains ``g(d)``
(the grade, 1 without grades, 0 for a tool not in ``R``):

- ``recall@k = |{d_1..d_k} ∩ R| / |R|`` (so recall@k < 1 whenever ``|R| > k``);
- ``DCG@k = Σ_{i=1..k} g(d_i) / log2(i + 1)``: linear gains, the first rank discounted by
  ``log2(2) = 1``; a tool repeated in the ranking earns its gain only the first time;
- ``IDCG@k`` is the DCG@k of the ideal ranking: the gains of ``R`` sorted high to low;
- ``NDCG@k = DCG@k / IDCG@k``, in [0, 1]. With binary gains it is 1 exactly when the top
  ``min(k, |R|)`` places all hold relevant tools.

:func:`evaluate_retrieval` runs several retrievers (anything with ``retrieve(query, k)``, such as
:class:`~toolpath.retrieval.api_retriever.APIRetriever` and the BM25 baseline) over the same
queries and returns their mean metrics, latency percentiles and per-query ranks.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from toolpath.errors import DatasetError, RetrievalError
from toolpath.retrieval.api_retriever import Retriever

log = logging.getLogger(__name__)

DEFAULT_KS = (1, 3, 5, 10)
EvalProgress = Callable[[str, int, int], None]
"""``progress(retriever_name, done, total)``: called after each query a retriever answers."""


@dataclass(frozen=True)
class QueryCase:
    """One labelled query: the text, its relevant tools and their grades (``line`` is where it
    was read: the line of a JSONL file, or the 1-based item of a JSON list)."""

    query: str
    relevant: tuple[str, ...]
    grades: Mapping[str, int] = field(default_factory=dict)
    line: int = 0
    id: str | None = None

    def gains(self) -> dict[str, float]:
        """Each relevant tool's gain: its grade, or 1 when it has none."""
        return {name: float(self.grades.get(name, 1)) for name in self.relevant}


@dataclass
class QuerySet:
    """The queries read by :func:`load_queries`, and what was dropped on the way."""

    cases: list[QueryCase]
    source: str = ""
    unknown: list[tuple[int, str]] = field(default_factory=list)
    """``(line, name)`` of each relevant tool name that is not in the catalog (dropped)."""
    skipped: list[tuple[int, str]] = field(default_factory=list)
    """``(line, query)`` of each query skipped because none of its relevant tools is known."""

    def __len__(self) -> int:
        return len(self.cases)

    def __iter__(self) -> Iterator[QueryCase]:
        return iter(self.cases)


# ---------------------------------------------------------------------------------------------
# Loading


def load_queries(path: str | Path, known: Iterable[str] | None = None) -> QuerySet:
    """Read a queries file (JSONL, a JSON list, or ``{"queries": [...]}``).

    With ``known`` (the catalog's tool names), unknown relevant names are dropped and counted,
    with one logged warning; see the module docstring. Raises :class:`DatasetError` for a
    missing, unreadable or malformed file (naming the line) and :class:`RetrievalError` when no
    query keeps a relevant tool that is in the catalog.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise DatasetError(f"queries file {path} not found")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"cannot read the queries file {path}: {exc}") from None
    entries = _json_entries(text, path)
    if entries is None:
        entries = _jsonl_entries(text, path)
    cases = [parse_case(entry, f"{path} {where}", line) for line, where, entry in entries]
    if not cases:
        raise DatasetError(f"queries file {path} holds no queries")
    queries = QuerySet(cases, source=str(path))
    return queries if known is None else restrict(queries, known)


def _jsonl_entries(text: str, path: Path) -> list[tuple[int, str, Any]]:
    out = []
    for lineno, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            out.append((lineno, f"line {lineno}", json.loads(raw)))
        except json.JSONDecodeError as exc:
            raise DatasetError(
                f"{path} line {lineno}: not valid JSON ({exc.msg} at column {exc.colno}); "
                'each line must be an object like {"query": "...", "relevant": ["tool_name"]}'
            ) from None
    return out


def _json_entries(text: str, path: Path) -> list[tuple[int, str, Any]] | None:
    """The items of a JSON list or of ``{"queries": [...]}``; None for anything else (JSONL)."""
    stripped = text.lstrip()
    if not stripped.startswith(("[", "{")):
        return None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        if stripped.startswith("["):
            raise DatasetError(
                f"{path} line {exc.lineno}: not valid JSON ({exc.msg} at column {exc.colno})"
            ) from None
        return None  # several JSON objects, one a line
    if isinstance(data, dict):
        if "queries" not in data:
            return None  # a JSONL file of one query
        data = data["queries"]
        if not isinstance(data, list):
            raise DatasetError(f'{path}: "queries" must be a list, got {_kind(data)}')
    return [(i, f"item {i}", entry) for i, entry in enumerate(data, start=1)]


def parse_case(entry: Any, where: str, line: int = 0) -> QueryCase:
    """Check one queries-file entry and make a :class:`QueryCase` (``where`` names it in the
    :class:`DatasetError` raised for a bad entry, e.g. ``"queries.jsonl line 4"``)."""
    shape = '{"query": "...", "relevant": ["tool_name", ...], "grades": {"tool_name": 2}}'
    if not isinstance(entry, dict):
        raise DatasetError(f"{where}: expected an object like {shape}, got {_kind(entry)}")
    query = entry.get("query")
    if not isinstance(query, str) or not query.strip():
        raise DatasetError(f'{where}: "query" must be a non-empty string, got {_kind(query)}')
    relevant = entry.get("relevant")
    if not isinstance(relevant, list) or not relevant:
        raise DatasetError(
            f'{where}: "relevant" must be a non-empty list of tool names, got {_kind(relevant)}'
        )
    for name in relevant:
        if not isinstance(name, str) or not name.strip():
            raise DatasetError(f'{where}: "relevant" holds {_kind(name)}, not a tool name')
    names = tuple(dict.fromkeys(r.strip() for r in relevant))  # de-duplicated, order kept
    grades = _grades(entry.get("grades"), names, where)
    ident = entry.get("id")
    return QueryCase(query.strip(), names, grades, line, None if ident is None else str(ident))


def _grades(raw: Any, names: tuple[str, ...], where: str) -> dict[str, int]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise DatasetError(f'{where}: "grades" must be an object {{tool_name: grade}}')
    grades = {}
    for name, grade in raw.items():
        if name not in names:
            raise DatasetError(f'{where}: "grades" names {name!r}, which is not in "relevant"')
        if isinstance(grade, bool) or not isinstance(grade, int) or grade < 1:
            raise DatasetError(
                f"{where}: the grade of {name!r} must be a positive integer, got {grade!r}"
            )
        grades[name] = grade
    return grades


def _kind(value: Any) -> str:
    """A short description of a bad value for an error message."""
    if value is None:
        return "nothing"
    if isinstance(value, list | dict) and not value:
        return f"an empty {type(value).__name__}"
    if isinstance(value, str | int | float):
        text = json.dumps(value)
        return text if len(text) <= 40 else text[:37] + '..."'
    return f"a {type(value).__name__}"


def restrict(queries: QuerySet, known: Iterable[str]) -> QuerySet:
    """``queries`` with only the relevant tools in ``known``; see :func:`load_queries`."""
    names = set(known)
    unknown = list(queries.unknown)
    skipped = list(queries.skipped)
    cases = []
    for case in queries.cases:
        keep = tuple(n for n in case.relevant if n in names)
        unknown.extend((case.line, n) for n in case.relevant if n not in names)
        if not keep:
            skipped.append((case.line, case.query))
            continue
        if len(keep) < len(case.relevant):
            grades = {n: g for n, g in case.grades.items() if n in names}
            case = QueryCase(case.query, keep, grades, case.line, case.id)
        cases.append(case)
    where = queries.source or "the queries"
    if not cases:
        examples = ", ".join(repr(n) for _, n in unknown[:3])
        raise RetrievalError(
            f"none of the relevant tools in {where} is in the catalog (e.g. {examples}): "
            "are the queries for this catalog?"
        )
    if len(unknown) > len(queries.unknown):
        line, name = unknown[len(queries.unknown)]
        log.warning(
            "%s: %d relevant tool name(s) not in the catalog were dropped (first: line %d, %r); "
            "%d quer(ies) left without a relevant tool were skipped",
            where,
            len(unknown) - len(queries.unknown),
            line,
            name,
            len(skipped) - len(queries.skipped),
        )
    return QuerySet(cases, queries.source, unknown, skipped)


# ---------------------------------------------------------------------------------------------
# Metrics (pure functions)


def _check_k(k: int) -> None:
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise RetrievalError(f"k must be a positive integer, got {k!r}")


def recall_at_k(ranked: Sequence[str], relevant: Collection[str], k: int) -> float:
    """``|top-k ∩ relevant| / |relevant|``: the share of the relevant tools found in the top k."""
    _check_k(k)
    wanted = set(relevant)
    if not wanted:
        raise RetrievalError("recall is undefined without relevant tools")
    return len(wanted.intersection(ranked[:k])) / len(wanted)


def dcg_at_k(ranked: Sequence[str], gains: Mapping[str, float], k: int) -> float:
    """``Σ_{i=1..k} gain(d_i) / log2(i + 1)``; a tool's gain counts only at its first rank."""
    _check_k(k)
    seen: set[str] = set()
    total = 0.0
    for i, name in enumerate(ranked[:k], start=1):
        if name not in seen:
            seen.add(name)
            total += gains.get(name, 0.0) / math.log2(i + 1)
    return total


def ideal_dcg_at_k(gains: Mapping[str, float], k: int) -> float:
    """The DCG@k of the best possible ranking: the relevant tools, highest gain first."""
    _check_k(k)
    best = sorted((g for g in gains.values() if g > 0), reverse=True)[:k]
    return sum(g / math.log2(i + 1) for i, g in enumerate(best, start=1))


def ndcg_at_k(ranked: Sequence[str], gains: Mapping[str, float] | Collection[str], k: int) -> float:
    """``DCG@k / IDCG@k``. ``gains`` maps each relevant tool to its gain (graded), or is just
    the relevant tools (binary gains of 1)."""
    table = gains if isinstance(gains, Mapping) else dict.fromkeys(gains, 1.0)
    ideal = ideal_dcg_at_k(table, k)
    if ideal <= 0:
        raise RetrievalError("NDCG is undefined without a relevant tool of positive gain")
    return dcg_at_k(ranked, table, k) / ideal


def ranks_of(ranked: Sequence[str], relevant: Iterable[str]) -> dict[str, int | None]:
    """Each relevant tool's 1-based rank in ``ranked`` (None when it is not there)."""
    first: dict[str, int] = {}
    for i, name in enumerate(ranked, start=1):
        first.setdefault(name, i)
    return {name: first.get(name) for name in relevant}


def percentile(samples: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of ``samples``, linearly interpolated."""
    if not samples:
        raise RetrievalError("no samples to take a percentile of")
    return float(np.percentile(np.asarray(samples, dtype=np.float64), q))


# ---------------------------------------------------------------------------------------------
# Running retrievers


def check_ks(ks: Iterable[int]) -> tuple[int, ...]:
    """The cut-offs, sorted and de-duplicated; a :class:`RetrievalError` if any is not >= 1."""
    values = list(ks)
    for k in values:
        _check_k(k)
    if not values:
        raise RetrievalError("give at least one cut-off k")
    return tuple(sorted(set(values)))


def evaluate_retrieval(
    retrievers: Mapping[str, Retriever],
    queries: QuerySet | Sequence[QueryCase],
    ks: Iterable[int] = DEFAULT_KS,
    *,
    progress: EvalProgress | None = None,
    warmup: bool = True,
) -> dict[str, Any]:
    """Run every retriever on every query (top ``max(ks)``) and score the rankings.

    Returns ``{"queries": n, "ks": [...], "retrievers": {name: summary}, "per_query": [row]}``
    where a summary holds the mean ``recall@k`` and ``ndcg@k`` for each k, ``n`` and
    ``latency_ms`` (``p50``, ``p99``, ``mean`` of the wall-clock time of each ``retrieve``
    call, query embedding included), and a row holds ``retriever``, ``query``, ``line``,
    ``relevant``, ``top`` (the names retrieved, best first), ``ranks`` (each relevant tool's
    rank, None beyond ``max(ks)``), the per-query metrics and ``latency_ms``.

    With ``warmup`` each retriever first answers the first query once, untimed, so that the
    lazy model load does not count as query latency.
    """
    cut = check_ks(ks)
    cases = list(queries.cases if isinstance(queries, QuerySet) else queries)
    if not retrievers:
        raise RetrievalError("no retriever to evaluate")
    if not cases:
        raise RetrievalError("no queries to evaluate on")
    depth = cut[-1]
    summaries: dict[str, Any] = {}
    rows: list[dict[str, Any]] = []
    for name, retriever in retrievers.items():
        if warmup:
            retriever.retrieve(cases[0].query, k=depth)
        seconds: list[float] = []
        sums = dict.fromkeys([f"recall@{k}" for k in cut] + [f"ndcg@{k}" for k in cut], 0.0)
        for done, case in enumerate(cases, start=1):
            start = time.perf_counter()
            results = retriever.retrieve(case.query, k=depth)
            seconds.append(time.perf_counter() - start)
            row = score_case(case, [tool.name for tool, _ in results], cut)
            for key in sums:
                sums[key] += row[key]
            rows.append({"retriever": name, **row, "latency_ms": 1000 * seconds[-1]})
            if progress is not None:
                progress(name, done, len(cases))
        summaries[name] = {
            "n": len(cases),
            **{key: total / len(cases) for key, total in sums.items()},
            "latency_ms": {
                "p50": 1000 * percentile(seconds, 50),
                "p99": 1000 * percentile(seconds, 99),
                "mean": 1000 * sum(seconds) / len(seconds),
            },
        }
    return {"queries": len(cases), "ks": list(cut), "retrievers": summaries, "per_query": rows}


def score_case(case: QueryCase, top: Sequence[str], ks: Sequence[int]) -> dict[str, Any]:
    """One query's row: its ranking, the relevant tools' ranks and recall/NDCG at each k."""
    gains = case.gains()
    row: dict[str, Any] = {
        "query": case.query,
        "line": case.line,
        "id": case.id,
        "relevant": list(case.relevant),
        "top": list(top),
        "ranks": ranks_of(top, case.relevant),
    }
    for k in ks:
        row[f"recall@{k}"] = recall_at_k(top, case.relevant, k)
    for k in ks:
        row[f"ndcg@{k}"] = ndcg_at_k(top, gains, k)
    return row

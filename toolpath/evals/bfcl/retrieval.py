"""A tool-retrieval benchmark made from BFCL's non-live categories.

:func:`derive_benchmark` pools the functions of every question into one catalog (the first
definition of a name wins) and turns each question with ground truth into a
:class:`~toolpath.retrieval.evaluate.QueryCase`: the user's question, and the distinct
functions its ground-truth calls use. Irrelevance questions add their functions as
distractors and no queries. :func:`write_benchmark` writes ``catalog.json`` (read by
:func:`~toolpath.tools.catalog.load_catalog`), ``queries.jsonl`` (read by
:func:`~toolpath.retrieval.evaluate.load_queries`) and ``stats.json``.

Tool names are the names the catalog gives them: :func:`~toolpath.tools.base.sanitize_name`
of the BFCL name (``math.factorial`` -> ``math_factorial``), so that the queries name the
tools ``load_catalog`` loads. Two BFCL names that sanitize alike (``flight.book`` and
``flight_book``) become one tool, the first; :attr:`RetrievalBenchmark.names` maps every BFCL
name to its tool.

BFCL questions often repeat the words of the function's name. :func:`paraphrase_queries` asks
a chat model for harder queries: a realistic request a tool answers, without its name's words.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import random
import re
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from toolpath.errors import ConfigError, DatasetError, ToolSchemaError
from toolpath.evals.bfcl.data import data_dir, load_items
from toolpath.evals.bfcl.tasks import bfcl_tool, question_text
from toolpath.llm.base import ChatModel, Message, assistant, closed_object, json_schema_format, user
from toolpath.retrieval.evaluate import QueryCase, QuerySet
from toolpath.tools.base import Tool, run_blocking, sanitize_name
from toolpath.tools.catalog.formats import write_catalog
from toolpath.tools.catalog.schema import described_only

__all__ = [
    "DEFAULT_CATEGORIES",
    "PARAPHRASE_PROMPT",
    "RetrievalBenchmark",
    "aparaphrase_queries",
    "derive_benchmark",
    "name_words",
    "paraphrase_queries",
    "write_benchmark",
    "write_queries",
]

log = logging.getLogger(__name__)

DEFAULT_CATEGORIES = ("simple", "multiple", "parallel", "parallel_multiple", "irrelevance")
Progress = Callable[[int, int], None]
"""``progress(done, total)``: called after each tool :func:`paraphrase_queries` is done with."""


@dataclass
class RetrievalBenchmark:
    """The catalog, the labelled queries, and counts of how they were made (``stats``)."""

    tools: list[Tool]
    queries: QuerySet
    stats: dict[str, Any]
    names: dict[str, str] = field(default_factory=dict)
    """Each BFCL function name -> the name of the catalog tool it became."""


def derive_benchmark(
    data: str | Path | None = None, categories: Iterable[str] = DEFAULT_CATEGORIES
) -> RetrievalBenchmark:
    """The retrieval benchmark of ``categories`` (keys of
    :data:`~toolpath.evals.bfcl.data.CATEGORIES`) of the BFCL data ``data`` (as for
    :func:`~toolpath.evals.bfcl.data.data_dir`).

    Tools come in the order they are first met (categories in the order given, questions in
    file order); queries in question order, their relevant tools in the order of the
    ground-truth calls. ``stats`` counts the questions and queries of each category, the
    function definitions read, the later definitions of a name (``duplicates``) and those
    that differ from the kept one (``differing_duplicates``), the BFCL names merged into
    another's tool (``name_clashes``), queries with several relevant tools
    (``multi_relevant``), tools relevant to no query (``distractors``), and ground-truth names
    that are not among the question's functions (``unknown_relevant``, dropped).
    """
    root = data_dir(data)
    kept: dict[str, tuple[Tool, dict[str, Any]]] = {}  # tool name -> (tool, its BFCL doc)
    names: dict[str, str] = {}
    per_category: dict[str, dict[str, int]] = {}
    counts = dict.fromkeys(("functions", "duplicates", "differing_duplicates"), 0)
    counts.update(unknown_relevant=0, empty_questions=0)
    cases: list[QueryCase] = []
    seen_ids: set[str] = set()
    for category in categories:
        items = [i for i in load_items(category, root) if i.id not in seen_ids]
        seen_ids.update(i.id for i in items)
        made = 0
        for item in items:
            offered: dict[str, str] = {}  # BFCL name -> tool name, for this question
            for doc in item.functions:
                counts["functions"] += 1
                offered[str(doc.get("name"))] = _pool(doc, item.id, kept, names, counts)
            if not item.answers:
                continue
            relevant: list[str] = []
            for call in item.answers:
                for fn in call:
                    if fn not in offered:
                        counts["unknown_relevant"] += 1
                    elif offered[fn] not in relevant:
                        relevant.append(offered[fn])
            query = question_text(item.question).strip()
            if not query:
                counts["empty_questions"] += 1
            if query and relevant:
                cases.append(QueryCase(query, tuple(relevant), line=len(cases) + 1, id=item.id))
                made += 1
        key = items[0].category if items else category
        per_category[key] = {"questions": len(items), "queries": made}
    tools = [tool for tool, _ in kept.values()]
    used = {name for case in cases for name in case.relevant}
    stats: dict[str, Any] = {
        "categories": per_category,
        "tools": len(tools),
        "queries": len(cases),
        **counts,
        "name_clashes": sum(1 for bfcl, name in names.items() if kept[name][1]["name"] != bfcl),
        "multi_relevant": sum(1 for case in cases if len(case.relevant) > 1),
        "distractors": sum(1 for tool in tools if tool.name not in used),
    }
    return RetrievalBenchmark(tools, QuerySet(cases, source=str(root)), stats, names)


def _pool(
    doc: dict[str, Any],
    item_id: str,
    kept: dict[str, tuple[Tool, dict[str, Any]]],
    names: dict[str, str],
    counts: dict[str, int],
) -> str:
    """Add a function doc to the pool unless its tool name is taken; the tool name."""
    bfcl = doc.get("name")
    if not isinstance(bfcl, str) or not bfcl.strip():
        raise DatasetError(f"BFCL question {item_id} offers a function without a name")
    name = sanitize_name(bfcl)
    names.setdefault(bfcl, name)
    if name in kept:
        counts["duplicates"] += 1
        first = kept[name][1]
        if first["name"] == bfcl and first != doc:
            counts["differing_duplicates"] += 1
        return name
    try:
        tool = bfcl_tool(doc)
    except (ToolSchemaError, ValueError, TypeError, KeyError) as exc:
        raise DatasetError(
            f"BFCL question {item_id}: function {bfcl!r} is unusable ({exc})"
        ) from exc
    tool = dataclasses.replace(
        tool, name=name, description=tool.description.strip(), fn=described_only(name)
    )
    kept[name] = (tool, doc)
    return name


# ---------------------------------------------------------------------------------------------
# Writing


def _write_atomic(path: Path, write: Callable[[Path], object]) -> Path:
    """``write(tmp)`` to a temporary file beside ``path``, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _case_entry(case: QueryCase) -> dict[str, Any]:
    entry: dict[str, Any] = {"query": case.query, "relevant": list(case.relevant)}
    if case.grades:
        entry["grades"] = dict(case.grades)
    if case.id is not None:
        entry["id"] = case.id
    return entry


def write_queries(cases: Iterable[QueryCase], path: str | Path) -> Path:
    """Write queries as the JSONL that :func:`~toolpath.retrieval.evaluate.load_queries`
    reads (atomically); the path."""
    text = "".join(json.dumps(_case_entry(c), ensure_ascii=False) + "\n" for c in cases)
    return _write_atomic(Path(path), lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_benchmark(bench: RetrievalBenchmark, out_dir: str | Path) -> dict[str, Path]:
    """Write ``catalog.json``, ``queries.jsonl`` and ``stats.json`` into ``out_dir``, each
    atomically; their paths by kind (``catalog``, ``queries``, ``stats``)."""
    out = Path(out_dir)
    stats = json.dumps(bench.stats, indent=1, ensure_ascii=False) + "\n"
    return {
        "catalog": _write_atomic(out / "catalog.json", lambda tmp: write_catalog(bench.tools, tmp)),
        "queries": write_queries(bench.queries, out / "queries.jsonl"),
        "stats": _write_atomic(out / "stats.json", lambda tmp: tmp.write_text(stats, "utf-8")),
    }


# ---------------------------------------------------------------------------------------------
# Paraphrased queries

PARAPHRASE_PROMPT = """Here is a tool an assistant can use:

Name: {name}
Description: {description}
Parameters (JSON schema): {parameters}

Write ONE realistic request a user could send to the assistant that this tool answers. Give \
concrete values (names, numbers, places, dates) for what the tool needs. Write it the way a \
person would, in their own words: do not mention the tool, and do not use its name or these \
words from it: {avoid}.

Reply with JSON: {{"request": "..."}}"""

RETRY_NOTE = (
    "That request uses {problem}. Write a new request that does not, and reply with JSON: "
    '{{"request": "..."}}'
)
MAX_TOKENS = 200
TEMPERATURE = 0.7
REQUEST_FORMAT = json_schema_format("request", closed_object({"request": {"type": "string"}}))

GENERIC_VERBS = frozenset(
    {"get", "set", "find", "calculate", "compute", "create", "search", "list", "fetch", "check"}
    | {"update", "delete", "add"}
)
"""Verbs too common in tool names to give a tool away."""
STOP_WORDS = frozenset(
    {"about", "above", "after", "again", "against", "also", "based", "before", "being", "both"}
    | {"between", "doing", "during", "each", "from", "further", "given", "have", "having"}
    | {"here", "into", "more", "most", "only", "other", "over", "same", "some", "such", "than"}
    | {"that", "their", "them", "then", "there", "these", "they", "this", "those", "through"}
    | {"under", "until", "using", "very", "what", "when", "where", "which", "while", "whom"}
    | {"will", "with", "within", "without", "would", "your"}
)
_SPLIT = re.compile(r"[_.\-\s]+")
_CAMEL = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")
_WORD = re.compile(r"[a-z0-9]+")


def name_words(name: str) -> list[str]:
    """The distinctive words of a tool name, lower case: the identifier split on ``_ . -``
    and camelCase, without stop words, words of 3 letters or fewer and generic verbs
    (:data:`GENERIC_VERBS`). ``getWeather_forecast.v2`` -> ``["weather", "forecast"]``."""
    words: list[str] = []
    for part in _SPLIT.split(name):
        for word in _CAMEL.findall(part):
            low = word.lower()
            if len(low) > 3 and low not in STOP_WORDS and low not in GENERIC_VERBS:
                words.append(low)
    return list(dict.fromkeys(words))


def leaked_words(text: str, words: Iterable[str]) -> list[str]:
    """The ``words`` that ``text`` uses: a word of the text that starts with one of them, or
    with its stem without a final ``s`` (``triangles`` leaks ``triangle``, ``book`` leaks
    ``books``; ``separate`` does not leak ``rate``)."""
    found = _WORD.findall(text.lower())
    leaks = []
    for word in words:
        stem = word[:-1] if word.endswith("s") and len(word) > 4 else word
        if any(w.startswith(stem) for w in found):
            leaks.append(word)
    return leaks


def _request(content: str) -> str | None:
    """The request of a ``{"request": ...}`` reply (None if it has none)."""
    try:
        value = json.loads(content).get("request")
    except (ValueError, AttributeError):
        return None
    return value.strip() if isinstance(value, str) and value.strip() else None


async def _paraphrase_one(model: ChatModel, tool: Tool) -> str | None:
    """One request for ``tool`` without its name's words: one retry with a note, else None."""
    words = name_words(tool.name)
    prompt = PARAPHRASE_PROMPT.format(
        name=tool.name,
        description=tool.description or "(none)",
        parameters=json.dumps(tool.parameters, ensure_ascii=False),
        avoid=", ".join(repr(w) for w in words) or "(none)",
    )
    messages: list[Message] = [user(prompt)]
    for attempt in range(2):
        completion = await model.acomplete(
            messages,
            max_tokens=MAX_TOKENS,
            temperature=TEMPERATURE,
            response_format=REQUEST_FORMAT,
        )
        content = completion.content or ""
        request = _request(content)
        leaks = leaked_words(request, words) if request else []
        if request and not leaks:
            return request
        if attempt == 0:
            problem = (
                f"words of the tool's name ({', '.join(repr(w) for w in leaks)})"
                if request
                else 'no usable {"request": "..."} JSON'
            )
            messages += [assistant(content), user(RETRY_NOTE.format(problem=problem))]
    return None


async def aparaphrase_queries(
    tools: Sequence[Tool],
    model: ChatModel,
    *,
    count: int,
    seed: int = 0,
    progress: Progress | None = None,
    concurrency: int = 1,
) -> list[QueryCase]:
    """:func:`paraphrase_queries` in a running event loop."""
    if count < 0 or concurrency < 1:
        raise ConfigError(f"count must be >= 0 and concurrency >= 1, not {count}, {concurrency}")
    unique = list({t.name: t for t in reversed(tools)}.values())[::-1]  # first of each name
    order = list(range(len(unique)))
    random.Random(seed).shuffle(order)
    picked = [unique[i] for i in order[:count]]
    gate = asyncio.Semaphore(concurrency)
    done = 0

    async def one(tool: Tool) -> str | None:
        nonlocal done
        async with gate:
            request = await _paraphrase_one(model, tool)
        done += 1
        if progress is not None:
            progress(done, len(picked))
        return request

    requests = await asyncio.gather(*(one(t) for t in picked))
    cases = [
        QueryCase(request, (tool.name,), line=i, id=f"para-{tool.name}")
        for i, (tool, request) in enumerate(zip(picked, requests, strict=True), start=1)
        if request is not None
    ]
    if skipped := len(picked) - len(cases):
        log.warning(
            "paraphrase: skipped %d of %d tools (name words kept leaking)", skipped, len(picked)
        )
    return cases


def paraphrase_queries(
    tools: Sequence[Tool],
    model: ChatModel,
    *,
    count: int,
    seed: int = 0,
    progress: Progress | None = None,
    concurrency: int = 1,
) -> list[QueryCase]:
    """Harder queries: ``count`` tools picked at random (``random.Random(seed)``; a larger
    ``count`` with the same seed picks the same tools first) and, for each, one realistic
    request written by ``model`` (:data:`PARAPHRASE_PROMPT`, a ``{"request": string}`` JSON
    reply) that does not use the words of the tool's name (:func:`name_words`).

    A reply that uses them, or is not such JSON, is shown back with a note once; a second
    bad reply skips the tool. Each kept request is ``QueryCase(request, (tool.name,),
    id="para-<tool name>")``, in the order the tools were picked. ``progress(done, total)``
    follows the tools; up to ``concurrency`` requests run at once.
    """
    return run_blocking(
        lambda: aparaphrase_queries(
            tools, model, count=count, seed=seed, progress=progress, concurrency=concurrency
        )
    )

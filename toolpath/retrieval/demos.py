"""TPTU-v2's demo selector: few-shot demonstrations that teach the hard-to-distinguish APIs.

With thousands of APIs the retrieved tools often have near-duplicates (``get_stock_quote`` and
``fetch_stock_price``) that the model confuses. TPTU-v2 picks the in-context demonstrations that
involve those APIs, so the prompt shows how each one is really used.

The rule of :meth:`DemoSelector.select`:

1. The *anchor set* is the retrieved tools plus each one's near-duplicates: its nearest
   catalog tools in the retriever's embedding space, at most ``neighbours`` of them and only
   those with cosine similarity at least ``threshold`` (default 5 and 0.8).
2. A demo is *anchored* when one of its calls names a tool of the anchor set.
3. Demos are ranked anchored first, then by the cosine similarity of the query and the demo's
   task (embedded with the retriever's embedder), then by their order in the list; the top
   ``k`` are returned. So unanchored demos only fill the places anchored ones leave free.

A demo is ``{"task": str, "calls": [{"name": tool_name, "arguments": {...}}, ...]}``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypedDict

import numpy as np

from toolpath.errors import RetrievalError
from toolpath.retrieval.api_retriever import APIRetriever
from toolpath.tools.base import Tool


class DemoCall(TypedDict):
    name: str
    arguments: dict[str, Any]


class Demo(TypedDict):
    task: str
    calls: list[DemoCall]


@dataclass(frozen=True)
class RankedDemo:
    """A demo with why it ranked where it did."""

    demo: Demo
    anchored: bool
    """It calls a retrieved tool or a near-duplicate of one."""
    similarity: float
    """Cosine similarity of the query and the demo's task."""
    matched: tuple[str, ...]
    """The anchor-set tools it calls."""


class DemoSelector:
    """Choose ``k`` demonstrations for a query and its retrieved tools (see the module doc)."""

    def __init__(
        self,
        demos: Sequence[Demo],
        retriever: APIRetriever,
        k: int = 2,
        *,
        threshold: float | None = 0.8,
        neighbours: int = 5,
    ) -> None:
        if not isinstance(k, int) or k < 1:
            raise RetrievalError(f"k must be a positive integer, got {k!r}")
        self.demos = [check_demo(d, i) for i, d in enumerate(demos)]
        self.retriever = retriever
        self.k = k
        self.threshold = threshold
        self.neighbours = neighbours
        self._calls = [frozenset(c["name"] for c in d["calls"]) for d in self.demos]
        tasks = [d["task"] for d in self.demos]
        self._tasks = (
            np.asarray(retriever.embedder.encode(tasks), dtype=np.float32)
            if tasks
            else np.zeros((0, 0), dtype=np.float32)
        )

    def anchors(self, retrieved_tools: Iterable[Tool | str | tuple[Tool, float]]) -> set[str]:
        """The retrieved tools' names and those of their near-duplicates."""
        out: set[str] = set()
        for item in retrieved_tools:
            tool = item[0] if isinstance(item, tuple) else item
            name = tool if isinstance(tool, str) else tool.name
            out.add(name)
            near = self.retriever.neighbours(name, m=self.neighbours, threshold=self.threshold)
            out.update(t.name for t, _ in near)
        return out

    def rank(
        self, query: str, retrieved_tools: Iterable[Tool | str | tuple[Tool, float]]
    ) -> list[RankedDemo]:
        """Every demo, best first, with its anchoring and similarity."""
        if not self.demos:
            return []
        anchors = self.anchors(retrieved_tools)
        sims = self._tasks @ self.retriever.embed_query(query)
        ranked = []
        for i in range(len(self.demos)):
            matched = tuple(sorted(self._calls[i] & anchors))
            ranked.append((not matched, -float(sims[i]), i, matched))
        ranked.sort()
        return [
            RankedDemo(self.demos[i], not unanchored, -neg, m) for unanchored, neg, i, m in ranked
        ]

    def select(
        self, query: str, retrieved_tools: Iterable[Tool | str | tuple[Tool, float]]
    ) -> list[Demo]:
        """The ``k`` demos for the prompt: anchored first, then the most similar tasks."""
        return [r.demo for r in self.rank(query, retrieved_tools)[: self.k]]


def check_demo(demo: Any, i: int) -> Demo:
    """``demo`` as a :class:`Demo`, or a RetrievalError naming demo number ``i`` and its fault."""
    where = f"demo #{i}"
    if not isinstance(demo, dict) or not isinstance(demo.get("task"), str) or not demo["task"]:
        raise RetrievalError(f"{where}: expected {{'task': str, 'calls': [...]}}")
    calls = demo.get("calls")
    if not isinstance(calls, list):
        raise RetrievalError(f"{where}: 'calls' must be a list of {{'name', 'arguments'}}")
    for call in calls:
        if not isinstance(call, dict) or not isinstance(call.get("name"), str):
            raise RetrievalError(f"{where}: every call needs a tool 'name'")
        if not isinstance(call.get("arguments", {}), dict):
            raise RetrievalError(f"{where}: a call's 'arguments' must be an object")
    return demo  # type: ignore[return-value]

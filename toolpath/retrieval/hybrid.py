"""Hybrid tool retrieval: reciprocal-rank fusion of retrievers, and an LLM re-ranker.

:func:`rrf_fuse` merges rankings by reciprocal-rank fusion (Cormack et al., 2009): a name at
1-based rank ``r`` of a ranking with weight ``w`` earns ``w / (rrf_k + r)``, summed over the
rankings. Scores need no calibration between retrievers, so dense cosines and BM25 scores fuse
as they are. :class:`HybridRetriever` fuses the top ``depth`` of several retrievers over the same
catalog (:func:`hybrid_retriever` builds the usual pair: the dense
:class:`~toolpath.retrieval.api_retriever.APIRetriever` and
:class:`~toolpath.retrieval.api_retriever.BM25Retriever`).

:class:`LLMReranker` asks a chat model once, listwise, which of a retriever's top candidates a
request needs, and puts those first. It never loses a candidate: the model's picks come first
in its order, then the other candidates in the base order, and a reply that cannot be parsed
leaves the base order as it is. It counts its calls, tokens and seconds so that its cost can be
reported apart from the retrieval's.

All of them have the :class:`~toolpath.retrieval.api_retriever.Retriever` interface
(``tools``, ``k``, ``last_seconds``, ``retrieve(query, k)``), so they can be evaluated with
:func:`~toolpath.retrieval.evaluate.evaluate_retrieval` and put in front of an agent.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from toolpath.errors import RetrievalError
from toolpath.llm.base import ChatModel, Message, closed_object, json_schema_format, system, user
from toolpath.retrieval.api_retriever import DEFAULT_K, APIRetriever, BM25Retriever, Retriever
from toolpath.retrieval.embed import Progress
from toolpath.retrieval.index import TextEncoder
from toolpath.tools.base import Tool
from toolpath.tools.catalog import Catalog

DEFAULT_RRF_K = 60
DEFAULT_DEPTH = 50
DEFAULT_RERANK_DEPTH = 20
DESCRIPTION_CHARS = 200
"""How much of a tool's description the re-ranking prompt shows."""


def rrf_fuse(
    rankings: Sequence[Sequence[str]],
    *,
    k: float = DEFAULT_RRF_K,
    weights: Sequence[float] | None = None,
) -> list[tuple[str, float]]:
    """Reciprocal-rank fusion of ``rankings`` (each a list of names, best first).

    A name's score is ``Σ w_i / (k + rank_i)`` over the rankings it is in, with 1-based ranks
    and ``w_i`` the ranking's weight (1 without ``weights``); a name repeated in one ranking
    counts at its first rank only. Returns every name with its score, best first; equal scores
    keep the order in which the names first appear (the first ranking first).

    Raises :class:`RetrievalError` for ``k <= 0``, or ``weights`` that are not one finite,
    non-negative number per ranking.
    """
    ranked = [[(name, float(rank)) for rank, name in enumerate(r, start=1)] for r in rankings]
    return fuse_ranks(ranked, k=k, weights=weights)


def fuse_ranks(
    rankings: Sequence[Sequence[tuple[str, float]]],
    *,
    k: float = DEFAULT_RRF_K,
    weights: Sequence[float] | None = None,
) -> list[tuple[str, float]]:
    """:func:`rrf_fuse` of rankings given as ``(name, rank)`` pairs, best first, where ranks
    may be shared or fractional (see :func:`shared_ranks`)."""
    _check_rrf_k(k)
    weights = _check_weights(weights, len(rankings))
    scores: dict[str, float] = {}
    for ranking, weight in zip(rankings, weights, strict=True):
        seen: set[str] = set()
        for name, rank in ranking:
            if name in seen:
                continue
            seen.add(name)
            scores[name] = scores.get(name, 0.0) + weight / (k + rank)
    order = {name: i for i, name in enumerate(scores)}  # first appearance
    # Rounded, so that sums of the same terms in another order still tie.
    best = sorted(scores, key=lambda name: (-round(scores[name], 12), order[name]))
    return [(name, scores[name]) for name in best]


def shared_ranks(scores: Sequence[float], *, total: int | None = None) -> list[float]:
    """The 1-based ranks of a best-first list of scores, equal scores sharing the mean of the
    ranks they span: scores ``5, 3, 3, 1`` rank ``1, 2.5, 2.5, 4``.

    ``total`` is how many items the list was cut from (a retriever's top ``depth`` of a larger
    catalog): a tie of two or more at the end of a cut list is taken to go on among the items
    cut off, so it spans the ranks up to ``total``. A BM25 tail of tools that match no query
    word thus ranks in the middle of the catalog, not in the order it happened to come in.
    """
    ranks: list[float] = []
    n = len(scores)
    start = 0
    while start < n:
        end = start + 1
        while end < n and scores[end] == scores[start]:
            end += 1
        last = end  # the 1-based rank of the group's last item
        if end == n and end - start > 1 and total is not None and total > n:
            last = total
        ranks.extend([(start + 1 + last) / 2] * (end - start))
        start = end
    return ranks


def _check_rrf_k(k: float) -> float:
    if isinstance(k, bool) or not isinstance(k, int | float) or not math.isfinite(k) or k <= 0:
        raise RetrievalError(f"the RRF constant k must be a positive number, got {k!r}")
    return k


def _check_weights(weights: Sequence[float] | None, n: int) -> list[float]:
    if weights is None:
        return [1.0] * n
    values = list(weights)
    if len(values) != n:
        raise RetrievalError(f"give one weight per ranking: {len(values)} weights for {n}")
    for w in values:
        if isinstance(w, bool) or not isinstance(w, int | float) or not math.isfinite(w) or w < 0:
            raise RetrievalError(f"weights must be finite non-negative numbers, got {w!r}")
    return [float(w) for w in values]


def _check_positive(value: int, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise RetrievalError(f"{what} must be a positive integer, got {value!r}")
    return value


class HybridRetriever:
    """Reciprocal-rank fusion of several retrievers over the same catalog.

    Each member answers with its top ``depth`` (at least the ``k`` asked for) and the rankings
    are merged by reciprocal-rank fusion (``rrf_k``, ``weights``: one per member); the score of
    a result is its fused RRF score. With ``share_ties`` (the default) results that a member
    scores equally share their rank (:func:`shared_ranks`), so the arbitrary order of tied
    results, such as the BM25 tools that match no word of the query, counts for nothing.

    The members must hold the same tools (the same names in the same order), or a
    :class:`RetrievalError` is raised. ``last_seconds`` is the wall-clock time of the last
    :meth:`retrieve`, every member included; ``last_member_seconds`` is each member's own
    ``last_seconds`` for it.
    """

    def __init__(
        self,
        retrievers: Sequence[Retriever],
        *,
        k: int = DEFAULT_K,
        depth: int = DEFAULT_DEPTH,
        rrf_k: float = DEFAULT_RRF_K,
        weights: Sequence[float] | None = None,
        share_ties: bool = True,
        name: str = "hybrid",
    ) -> None:
        self.retrievers: list[Retriever] = list(retrievers)
        if not self.retrievers:
            raise RetrievalError("a hybrid retriever needs at least one retriever to fuse")
        self.tools: list[Tool] = list(self.retrievers[0].tools)
        names = [t.name for t in self.tools]
        for i, member in enumerate(self.retrievers[1:], start=1):
            other = [t.name for t in member.tools]
            if other != names:
                first = type(self.retrievers[0]).__name__
                raise RetrievalError(
                    f"retriever {i} ({type(member).__name__}) is over other tools than "
                    f"retriever 0 ({first}): {_difference(names, other)}"
                )
        self.k = _check_positive(k, "k")
        self.depth = _check_positive(depth, "depth")
        self.rrf_k = _check_rrf_k(rrf_k)
        self.weights = _check_weights(weights, len(self.retrievers))
        self.share_ties = share_ties
        self.name = name
        self.last_seconds = 0.0
        self.last_member_seconds: list[float] = [0.0] * len(self.retrievers)
        self._by_name: dict[str, Tool] = {}
        for tool in self.tools:
            self._by_name.setdefault(tool.name, tool)

    def retrieve(self, query: str, k: int | None = None) -> list[tuple[Tool, float]]:
        """The ``k`` (default ``self.k``) tools with the highest fused score, best first."""
        k = _check_positive(self.k if k is None else k, "k")
        depth = min(max(self.depth, k), len(self.tools))
        start = time.perf_counter()
        rankings = []
        for i, member in enumerate(self.retrievers):
            results = member.retrieve(query, k=depth)
            self.last_member_seconds[i] = member.last_seconds
            if self.share_ties:
                ranks = shared_ranks([s for _, s in results], total=len(self.tools))
            else:
                ranks = [float(r) for r in range(1, len(results) + 1)]
            rankings.append([(t.name, r) for (t, _), r in zip(results, ranks, strict=True)])
        fused = fuse_ranks(rankings, k=self.rrf_k, weights=self.weights)
        self.last_seconds = time.perf_counter() - start
        return [(self._by_name[name], score) for name, score in fused[:k] if name in self._by_name]

    def tools_for(self, query: str, k: int | None = None) -> list[Tool]:
        """The tools to put in the agent's prompt for ``query``: only the top ``k``."""
        return [t for t, _ in self.retrieve(query, k)]

    def __len__(self) -> int:
        return len(self.tools)

    def __repr__(self) -> str:
        members = ", ".join(type(r).__name__ for r in self.retrievers)
        return f"HybridRetriever({self.name!r}, [{members}], depth={self.depth}, k={self.k})"


def _difference(names: list[str], other: list[str]) -> str:
    """Where two tool-name lists first differ, for an error message."""
    if len(names) != len(other):
        return f"{len(other)} tools instead of {len(names)}"
    i = next(i for i, (a, b) in enumerate(zip(names, other, strict=True)) if a != b)
    return f"tool {i} is {other[i]!r}, not {names[i]!r}"


def hybrid_retriever(
    catalog_or_tools: Catalog | Iterable[Tool],
    *,
    embedder: TextEncoder | None = None,
    cache_dir: str | Path | None = None,
    k: int = DEFAULT_K,
    progress: Progress | None = None,
) -> HybridRetriever:
    """The dense :class:`~toolpath.retrieval.api_retriever.APIRetriever` (``embedder``,
    ``cache_dir`` and ``progress`` go to it) and BM25 over the same tools, fused by RRF."""
    dense = APIRetriever(
        catalog_or_tools, embedder=embedder, cache_dir=cache_dir, k=k, progress=progress
    )
    return HybridRetriever([dense, BM25Retriever(dense.tools, k=k)], k=k)


# ---------------------------------------------------------------------------------------------
# LLM re-ranking

RERANK_SYSTEM = (
    "You choose the tools an assistant needs for a user's request. You are given the request "
    "and numbered candidate tools. Reply with the numbers of the candidates the request needs, "
    'the most useful first, as JSON: {"ranking": [numbers]}. Leave out candidates that do '
    "not help; an empty list means none does."
)


class LLMReranker:
    """Re-ranks the top ``depth`` candidates of ``base`` with one listwise chat-model call.

    The prompt lists the candidates, numbered, with their names and the start of their
    descriptions, and the reply is constrained (``response_format`` JSON schema) to
    ``{"ranking": [candidate numbers]}``. The result is the picked candidates in the model's
    order (repeats and numbers out of range dropped), then every other candidate in the base
    order; a reply that is not such JSON leaves the base order (counted in ``fallbacks``). A
    failing model call (a backend error) is raised, not hidden. A result's score is
    ``1 / rank`` in the final order. With one candidate or none the model is not asked.

    Cost: ``last_seconds`` is the last :meth:`retrieve` as a whole (the base included);
    ``rerank_seconds`` the model's part of it; ``calls``, ``tokens`` (prompt plus completion,
    where the completion reports usage) and ``rerank_seconds_total`` add up over all calls.
    """

    def __init__(
        self,
        base: Retriever,
        model: ChatModel,
        *,
        depth: int = DEFAULT_RERANK_DEPTH,
        k: int = DEFAULT_K,
        max_tokens: int | None = None,
        name: str = "rerank",
    ) -> None:
        self.base = base
        self.model = model
        self.tools: list[Tool] = list(base.tools)
        self.depth = _check_positive(depth, "depth")
        self.k = _check_positive(k, "k")
        self.max_tokens = max_tokens
        self.name = name
        self.last_seconds = 0.0
        self.rerank_seconds = 0.0
        self.rerank_seconds_total = 0.0
        self.calls = 0
        self.tokens = 0
        self.fallbacks = 0
        self.last_reply: str | None = None

    def retrieve(self, query: str, k: int | None = None) -> list[tuple[Tool, float]]:
        """The top ``k`` (default ``self.k``) after re-ranking the base's top ``depth``."""
        k = _check_positive(self.k if k is None else k, "k")
        start = time.perf_counter()
        self.rerank_seconds = 0.0
        self.last_reply = None
        want = min(max(self.depth, k), len(self.tools))
        found = [tool for tool, _ in self.base.retrieve(query, k=want)]
        shown = found[: self.depth]
        order = list(range(len(found)))
        if len(shown) > 1:
            picks = self._ask(query, shown)
            if picks is None:
                self.fallbacks += 1
            else:
                picked = set(picks)
                order = picks + [i for i in order if i not in picked]
        self.last_seconds = time.perf_counter() - start
        return [(found[i], 1.0 / rank) for rank, i in enumerate(order[:k], start=1)]

    def tools_for(self, query: str, k: int | None = None) -> list[Tool]:
        """The tools to put in the agent's prompt for ``query``: only the top ``k``."""
        return [t for t, _ in self.retrieve(query, k)]

    def _ask(self, query: str, candidates: Sequence[Tool]) -> list[int] | None:
        """The model's picks as 0-based candidate indices, or None for a reply it cannot use."""
        n = len(candidates)
        max_tokens = self.max_tokens if self.max_tokens is not None else 24 + 4 * n
        start = time.perf_counter()
        try:
            completion = self.model.complete(
                rerank_messages(query, candidates),
                response_format=ranking_format(n),
                max_tokens=max_tokens,
                temperature=0.0,
            )
        finally:
            self.rerank_seconds = time.perf_counter() - start
            self.rerank_seconds_total += self.rerank_seconds
            self.calls += 1
        if completion.usage is not None:
            self.tokens += completion.usage.prompt_tokens + completion.usage.completion_tokens
        self.last_reply = completion.content
        return parse_ranking(completion.content, n)

    def __repr__(self) -> str:
        return f"LLMReranker({self.name!r}, {type(self.base).__name__}, depth={self.depth})"


def rerank_messages(query: str, candidates: Sequence[Tool]) -> list[Message]:
    """The re-ranking prompt: the request and the numbered candidates (name and description)."""
    lines = [
        f"{i}. {tool.name}: {_short(tool.description)}" for i, tool in enumerate(candidates, 1)
    ]
    prompt = (
        f"Request: {query.strip()}\n\nCandidate tools:\n"
        + "\n".join(lines)
        + f"\n\nWhich of the candidates (1-{len(candidates)}) does the request need? "
        'Reply with JSON {"ranking": [numbers]}, the most useful first.'
    )
    return [system(RERANK_SYSTEM), user(prompt)]


def _short(description: str, limit: int = DESCRIPTION_CHARS) -> str:
    text = " ".join(description.split())
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


def ranking_format(n: int) -> dict[str, Any]:
    """The ``response_format`` that holds a reply to ``{"ranking": [1..n, at most n items]}``."""
    ranking = {
        "type": "array",
        "items": {"type": "integer", "enum": list(range(1, n + 1))},
        "maxItems": n,
    }
    return json_schema_format("ranking", closed_object({"ranking": ranking}))


_OBJECT = re.compile(r"\{.*\}", re.DOTALL)


def parse_ranking(reply: str, n: int) -> list[int] | None:
    """The 0-based candidate indices of a ``{"ranking": [...]}`` reply over ``n`` candidates, in
    order, without repeats or numbers outside 1..n; None when the reply holds no such object.
    The object may come inside a code fence or after some text."""
    data = _json_object(reply or "")
    if data is None or not isinstance(data.get("ranking"), list):
        return None
    picks: list[int] = []
    for item in data["ranking"]:
        if isinstance(item, str) and item.strip().isdecimal():
            item = int(item)
        valid = isinstance(item, int) and not isinstance(item, bool) and 1 <= item <= n
        if valid and item - 1 not in picks:
            picks.append(item - 1)
    return picks


def _json_object(text: str) -> dict[str, Any] | None:
    """The JSON object that ``text`` is, or else the outermost ``{...}`` in it (None: neither)."""
    match = _OBJECT.search(text)
    for candidate in (text, match.group(0) if match else None):
        if candidate is None:
            continue
        try:
            data = json.loads(candidate)
        except json.JSONDecodeError:
            continue
        if isinstance(data, dict):
            return data
    return None

"""TPTU-v2's API retriever: only the top-k tools of a large catalog reach the agent's prompt.

:class:`APIRetriever` embeds every tool (:func:`~toolpath.retrieval.embed.tool_text`) once, keeps
them in a faiss index (cached on disk by content, see :mod:`toolpath.retrieval.index`) and
answers a query with the ``k`` tools of highest cosine similarity. :func:`bm25_baseline` is the
lexical baseline with the same interface (``rank_bm25``).

Importing this module loads neither torch nor sentence-transformers nor faiss; they load when a
retriever is built.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from toolpath.errors import MissingDependencyError, RetrievalError
from toolpath.retrieval.embed import Embedder, Progress, Vectors, split_identifier, tool_text
from toolpath.retrieval.index import HNSW_THRESHOLD, TextEncoder, ToolIndex, build_or_load
from toolpath.tools.base import Tool
from toolpath.tools.catalog import Catalog

DEFAULT_K = 6


class Retriever(Protocol):
    """Anything that ranks tools for a query (the embedding retriever and the BM25 baseline)."""

    tools: list[Tool]
    k: int
    last_seconds: float

    def retrieve(self, query: str, k: int | None = None) -> list[tuple[Tool, float]]: ...


def _tool_list(catalog_or_tools: Catalog | Iterable[Tool]) -> list[Tool]:
    tools = list(
        catalog_or_tools.tools if isinstance(catalog_or_tools, Catalog) else catalog_or_tools
    )
    if not tools:
        raise RetrievalError("the tool catalog is empty: nothing to retrieve from")
    bad = next((t for t in tools if not isinstance(t, Tool)), None)
    if bad is not None:
        raise RetrievalError(f"expected Tool objects, got {type(bad).__name__}")
    return tools


def _check_k(k: int) -> int:
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise RetrievalError(f"k must be a positive integer, got {k!r}")
    return k


class APIRetriever:
    """Dense retrieval over a tool catalog.

    ``embedder`` defaults to a CPU :class:`~toolpath.retrieval.embed.Embedder`
    (all-MiniLM-L6-v2). With a ``cache_dir`` the index is saved under it and reused by any later
    retriever over the same tools and embedder (no embedding at all). ``hnsw_threshold``:
    catalogs larger than this get an HNSW index (see :mod:`toolpath.retrieval.index`).
    ``last_seconds`` is the time of the last :meth:`retrieve`, query embedding included.
    """

    def __init__(
        self,
        catalog_or_tools: Catalog | Iterable[Tool],
        *,
        embedder: TextEncoder | None = None,
        cache_dir: str | Path | None = None,
        k: int = DEFAULT_K,
        hnsw_threshold: int = HNSW_THRESHOLD,
        progress: Progress | None = None,
    ) -> None:
        self.tools = _tool_list(catalog_or_tools)
        self.k = _check_k(k)
        self.embedder: TextEncoder = embedder if embedder is not None else Embedder()
        self.index: ToolIndex = build_or_load(
            self.tools,
            self.embedder,
            cache_dir,
            hnsw_threshold=hnsw_threshold,
            progress=progress,
        )
        self._rows = {name: i for i, name in enumerate(self.index.names)}
        self.last_seconds = 0.0
        self._last_query: tuple[str, Vectors] | None = None

    def __len__(self) -> int:
        return len(self.tools)

    def embed_query(self, query: str) -> Vectors:
        """The query's unit vector (the last query's vector is remembered and reused)."""
        last = self._last_query
        if last is not None and last[0] == query:
            return last[1]
        vector = np.asarray(self.embedder.encode([query]), dtype=np.float32)[0]
        self._last_query = (query, vector)
        return vector

    def retrieve(self, query: str, k: int | None = None) -> list[tuple[Tool, float]]:
        """The ``k`` (default ``self.k``) most similar tools, best first, with their cosine."""
        k = _check_k(self.k if k is None else k)
        start = time.perf_counter()
        vector = np.asarray(self.embedder.encode([query]), dtype=np.float32)[0]
        self._last_query = (query, vector)
        scores, ids = self.index.search(vector, k)
        self.last_seconds = time.perf_counter() - start
        return [(self.tools[i], float(s)) for s, i in zip(scores[0], ids[0], strict=True) if i >= 0]

    def tools_for(self, query: str, k: int | None = None) -> list[Tool]:
        """The tools to put in the agent's prompt for ``query``: only the top ``k``."""
        return [t for t, _ in self.retrieve(query, k)]

    def tool(self, name: str) -> Tool:
        """The catalog tool called ``name`` (a :class:`RetrievalError` if there is none)."""
        row = self._rows.get(name)
        if row is None:
            raise RetrievalError(f"no tool named {name!r} in the retriever's catalog")
        return self.tools[row]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self._rows

    def neighbours(
        self, tool: Tool | str, *, m: int = 5, threshold: float | None = 0.8
    ) -> list[tuple[Tool, float]]:
        """The catalog tools nearest to ``tool`` in embedding space (itself excluded), best
        first: at most ``m``, and only those with cosine at least ``threshold`` (None: any)."""
        name = tool if isinstance(tool, str) else tool.name
        row = self._rows.get(name)
        if row is None:
            return []
        scores, ids = self.index.search(self.index.vector(row), m + 1)
        out = []
        for s, i in zip(scores[0], ids[0], strict=True):
            if i < 0 or i == row or (threshold is not None and s < threshold):
                continue
            out.append((self.tools[i], float(s)))
        return out[:m]

    def texts(self) -> list[str]:
        """The text embedded for each tool, in catalog order."""
        return [tool_text(t) for t in self.tools]


_STOP_TEXT = (
    "a an and are as at be but by for if in into is it no not of on or such that the their "
    "then there these they this to was will with"
)
STOP_WORDS = frozenset(_STOP_TEXT.split())
"""English words BM25 ignores (Lucene's classic English stop words): they match most tools."""


def tokenize(text: str) -> list[str]:
    """BM25's tokens: the lower-case words of :func:`~toolpath.retrieval.embed.split_identifier`
    but :data:`STOP_WORDS`, so identifiers split the same way in tools and queries
    (``getStockQuote`` and ``get_stock_quote`` both give ``get``, ``stock``, ``quote``;
    ``HTTPServerError2`` gives ``http``, ``server``, ``error``, ``2``)."""
    return [w for w in split_identifier(text).split() if w not in STOP_WORDS]


class BM25Retriever:
    """BM25 (Okapi) over the same tool texts as the dense retriever: the lexical baseline.

    Tool texts and queries are split into words by :func:`tokenize` (identifiers split at
    camelCase, digits and punctuation; stop words dropped), so ``"stock quote"`` matches a tool
    ``getStockQuote``.
    """

    def __init__(self, catalog_or_tools: Catalog | Iterable[Tool], *, k: int = DEFAULT_K) -> None:
        try:
            from rank_bm25 import BM25Okapi
        except ImportError:
            raise MissingDependencyError(
                "the BM25 baseline needs rank-bm25: pip install rank-bm25"
            ) from None
        self.tools = _tool_list(catalog_or_tools)
        self.k = _check_k(k)
        self.last_seconds = 0.0
        self._bm25: Any = BM25Okapi([tokenize(tool_text(t)) or ["_"] for t in self.tools])
        self._terms, self._weights = _term_weights(self._bm25)

    def scores(self, query: str) -> np.ndarray:
        """Every tool's BM25 score for ``query`` (rank-bm25's Okapi scores, computed from a
        precomputed sparse term-weight matrix: well under a millisecond at 16k tools, where
        rank-bm25's own per-document loop takes tens)."""
        cols = [self._terms[w] for w in tokenize(query) if w in self._terms]
        if not cols:
            return np.zeros(len(self.tools), dtype=np.float64)
        return np.asarray(self._weights[:, cols].sum(axis=1), dtype=np.float64).ravel()

    def retrieve(self, query: str, k: int | None = None) -> list[tuple[Tool, float]]:
        """The ``k`` tools with the highest BM25 score for ``query``, best first."""
        k = min(_check_k(self.k if k is None else k), len(self.tools))
        start = time.perf_counter()
        scores = self.scores(query)
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        self.last_seconds = time.perf_counter() - start
        return [(self.tools[i], float(scores[i])) for i in top]

    def tools_for(self, query: str, k: int | None = None) -> list[Tool]:
        """The top-``k`` tools for ``query``."""
        return [t for t, _ in self.retrieve(query, k)]


def _term_weights(bm25: Any) -> tuple[dict[str, int], Any]:
    """Column of each term, and the ``(tools, terms)`` CSC matrix of Okapi weights
    ``idf(t) * tf * (k1 + 1) / (tf + k1 * (1 - b + b * len / avglen))`` that rank-bm25's
    ``get_scores`` sums over the query's words (a word repeated in the query counts again)."""
    from scipy.sparse import csc_matrix

    terms: dict[str, int] = {}
    rows: list[int] = []
    cols: list[int] = []
    vals: list[float] = []
    k1, b, avg = bm25.k1, bm25.b, bm25.avgdl
    for row, (freqs, length) in enumerate(zip(bm25.doc_freqs, bm25.doc_len, strict=True)):
        norm = k1 * (1 - b + b * length / avg)
        for term, tf in freqs.items():
            idf = bm25.idf.get(term) or 0.0
            rows.append(row)
            cols.append(terms.setdefault(term, len(terms)))
            vals.append(idf * tf * (k1 + 1) / (tf + norm))
    shape = (len(bm25.doc_freqs), max(1, len(terms)))
    return terms, csc_matrix((vals, (rows, cols)), shape=shape, dtype=np.float64)


def bm25_baseline(
    catalog_or_tools: Catalog | Sequence[Tool], *, k: int = DEFAULT_K
) -> BM25Retriever:
    """A BM25 retriever with :class:`APIRetriever`'s ``retrieve(query, k)`` interface."""
    return BM25Retriever(catalog_or_tools, k=k)

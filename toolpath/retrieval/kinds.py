"""One place that builds a retriever by name, for the CLI and the agents.

=================  =========================================================================
``dense``          all-MiniLM-L6-v2 + faiss (TPTU-v2's API retriever)
``bm25``           BM25 over the same tool texts
``hybrid``         reciprocal-rank fusion of ``dense`` and ``bm25``
``trained``        the bi-encoder trained on this catalog by ``toolpath index train``
``trained-hybrid`` ``trained`` fused with ``bm25``
=================  =========================================================================

With ``use_trained`` (what agents get), ``dense`` and ``hybrid`` quietly use the trained model
when ``cache_dir`` holds one for exactly these tools; evaluations pass ``use_trained=False`` to
keep the off-the-shelf embedder. ``trained`` and ``trained-hybrid`` need that model and say how
to make it when it is missing.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from toolpath.errors import RetrievalError
from toolpath.retrieval.api_retriever import DEFAULT_K, APIRetriever, BM25Retriever, Retriever
from toolpath.retrieval.embed import Embedder, Progress
from toolpath.retrieval.hybrid import HybridRetriever
from toolpath.retrieval.train import trained_embedder
from toolpath.tools.base import Tool

KINDS = ("dense", "bm25", "hybrid", "trained", "trained-hybrid")
DEFAULT_KIND = "hybrid"


def build_retriever(
    kind: str,
    tools: Sequence[Tool],
    *,
    cache_dir: str | Path | None = None,
    k: int = DEFAULT_K,
    threads: int | None = None,
    use_trained: bool = True,
    progress: Progress | None = None,
) -> Retriever:
    """The retriever ``kind`` names (see the module docstring) over ``tools``; dense indexes
    are cached under ``cache_dir`` (None: kept in memory)."""
    if kind not in KINDS:
        raise RetrievalError(f"unknown retriever {kind!r}; use one of: {', '.join(KINDS)}")
    tools = list(tools)
    if kind == "bm25":
        return BM25Retriever(tools, k=k)
    embedder: Embedder = Embedder(threads=threads)
    if kind.startswith("trained") or use_trained:
        trained = trained_embedder(tools, cache_dir)
        if trained is None and kind.startswith("trained"):
            raise RetrievalError(
                f"no retriever trained on this catalog in {cache_dir}: run "
                f"`toolpath index train CATALOG --out {cache_dir or 'DIR'}` first"
            )
        if trained is not None:
            trained.threads = threads
            embedder = trained
    cache = None if cache_dir is None else Path(cache_dir)
    dense = APIRetriever(tools, embedder=embedder, cache_dir=cache, k=k, progress=progress)
    if kind in ("dense", "trained"):
        return dense
    return HybridRetriever([dense, BM25Retriever(dense.tools, k=k)], k=k, name=kind)

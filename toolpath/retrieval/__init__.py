"""TPTU-v2's API retrieval and demo selection (sentence-transformers + faiss, loaded on first use).

:class:`APIRetriever` returns the top-k tools of a catalog for a task over a cached
:class:`ToolIndex` of :class:`Embedder` vectors; :func:`bm25_baseline` is the lexical baseline;
:class:`HybridRetriever` fuses retrievers by reciprocal rank (:func:`hybrid_retriever`: dense plus
BM25) and :class:`LLMReranker` re-ranks a retriever's top candidates with one chat-model call;
:class:`DemoSelector` picks demonstrations near the retrieved tools; :func:`evaluate_retrieval`
scores retrievers (recall@k, NDCG@k) on queries from :func:`load_queries`;
:func:`synthetic_catalog` makes large deterministic catalogs.
"""

from typing import TYPE_CHECKING

from toolpath.lazy import lazy_exports

_WHERE = {
    "APIRetriever": "toolpath.retrieval.api_retriever",
    "BM25Retriever": "toolpath.retrieval.api_retriever",
    "Retriever": "toolpath.retrieval.api_retriever",
    "bm25_baseline": "toolpath.retrieval.api_retriever",
    "Demo": "toolpath.retrieval.demos",
    "DemoSelector": "toolpath.retrieval.demos",
    "Embedder": "toolpath.retrieval.embed",
    "split_identifier": "toolpath.retrieval.embed",
    "tool_text": "toolpath.retrieval.embed",
    "HybridRetriever": "toolpath.retrieval.hybrid",
    "LLMReranker": "toolpath.retrieval.hybrid",
    "hybrid_retriever": "toolpath.retrieval.hybrid",
    "rrf_fuse": "toolpath.retrieval.hybrid",
    "ToolIndex": "toolpath.retrieval.index",
    "build_retriever": "toolpath.retrieval.kinds",
    "TrainConfig": "toolpath.retrieval.train",
    "train_retriever": "toolpath.retrieval.train",
    "trained_embedder": "toolpath.retrieval.train",
    "build_or_load": "toolpath.retrieval.index",
    "QuerySet": "toolpath.retrieval.evaluate",
    "dcg_at_k": "toolpath.retrieval.evaluate",
    "evaluate_retrieval": "toolpath.retrieval.evaluate",
    "load_queries": "toolpath.retrieval.evaluate",
    "ndcg_at_k": "toolpath.retrieval.evaluate",
    "ranks_of": "toolpath.retrieval.evaluate",
    "recall_at_k": "toolpath.retrieval.evaluate",
    "synthetic_catalog": "toolpath.retrieval.synthetic",
}
__all__ = sorted(_WHERE)
__getattr__, __dir__ = lazy_exports(__name__, _WHERE)

if TYPE_CHECKING:
    from toolpath.retrieval.api_retriever import APIRetriever as APIRetriever
    from toolpath.retrieval.api_retriever import BM25Retriever as BM25Retriever
    from toolpath.retrieval.api_retriever import Retriever as Retriever
    from toolpath.retrieval.api_retriever import bm25_baseline as bm25_baseline
    from toolpath.retrieval.demos import Demo as Demo
    from toolpath.retrieval.demos import DemoSelector as DemoSelector
    from toolpath.retrieval.embed import Embedder as Embedder
    from toolpath.retrieval.embed import split_identifier as split_identifier
    from toolpath.retrieval.embed import tool_text as tool_text
    from toolpath.retrieval.evaluate import QuerySet as QuerySet
    from toolpath.retrieval.evaluate import dcg_at_k as dcg_at_k
    from toolpath.retrieval.evaluate import evaluate_retrieval as evaluate_retrieval
    from toolpath.retrieval.evaluate import load_queries as load_queries
    from toolpath.retrieval.evaluate import ndcg_at_k as ndcg_at_k
    from toolpath.retrieval.evaluate import ranks_of as ranks_of
    from toolpath.retrieval.evaluate import recall_at_k as recall_at_k
    from toolpath.retrieval.hybrid import HybridRetriever as HybridRetriever
    from toolpath.retrieval.hybrid import LLMReranker as LLMReranker
    from toolpath.retrieval.hybrid import hybrid_retriever as hybrid_retriever
    from toolpath.retrieval.hybrid import rrf_fuse as rrf_fuse
    from toolpath.retrieval.index import ToolIndex as ToolIndex
    from toolpath.retrieval.index import build_or_load as build_or_load
    from toolpath.retrieval.kinds import build_retriever as build_retriever
    from toolpath.retrieval.synthetic import synthetic_catalog as synthetic_catalog
    from toolpath.retrieval.train import TrainConfig as TrainConfig
    from toolpath.retrieval.train import train_retriever as train_retriever
    from toolpath.retrieval.train import trained_embedder as trained_embedder

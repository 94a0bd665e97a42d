"""TPTU-v2 API retrieval at scale: index build time, query latency and HNSW recall.

    python benchmarks/retrieval.py [--sizes 16000] [--random-sizes 100000] [--queries 200]
                                   [--threads N] [--query-threads N] [--json results.json]

1. Real embeddings (``--sizes``, default 16000): a synthetic catalog of that many tools is
   embedded with all-MiniLM-L6-v2 on the CPU and indexed exactly (``IndexFlatIP``). Printed: the
   embedding and index build times, the query latency p50/p99 of ``APIRetriever.retrieve``
   *including the query's embedding* (goal: p50 <= 20 ms at 16k) on the traced query path
   (``toolpath.retrieval.query_encoder``) and again through sentence-transformers' pipeline,
   the search-only latency, a
   top-5 hit rate (a query names an API kind, e.g. "stock quote"; a hit is a top-5 tool of that
   kind) next to the BM25 baseline's, and the recall@10 of an HNSW index (M=32, efSearch=64)
   over the same vectors against exact search.
2. Random unit vectors (``--random-sizes``, default 100000; 0 to skip): embedding 100k tools
   would take about 7 minutes on two cores, so these rows use random 384-d unit vectors, and
   time only the faiss part: flat and HNSW build, search latency, and HNSW recall@10 against
   exact search. Add the query-embedding time from part 1 for an end-to-end figure. Random
   vectors are a hard case for HNSW (no cluster structure), so their recall is a lower bound.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from typing import Any

import numpy as np

from toolpath.retrieval.api_retriever import APIRetriever, bm25_baseline
from toolpath.retrieval.embed import Embedder, tool_text
from toolpath.retrieval.index import HNSW_THRESHOLD, ToolIndex, build_index
from toolpath.retrieval.synthetic import synthetic_catalog

_ASKS = (
    "Which API gives me the {kind}?",
    "I need the {kind} for my app",
    "How can I get {kind} data",
    "show me {kind} please",
    "Is there an endpoint for {kind}",
    "find an API returning {kind}",
)


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def ms(samples: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(1000 * statistics.median(samples), 3),
        "p99_ms": round(1000 * percentile(samples, 0.99), 3),
    }


def make_queries(tools: list[Any], n: int, seed: int = 0) -> list[tuple[str, str]]:
    """``n`` distinct ``(query, kind)`` pairs; ``kind`` is an API noun like ``stock_quote``."""
    rng = random.Random(seed)
    kinds = sorted({"_".join(t.name.split("_")[1:-1]) for t in tools})
    out = []
    for i in range(n):
        kind = rng.choice(kinds)
        ask = rng.choice(_ASKS).format(kind=kind.replace("_", " "))
        out.append((f"{ask} (request {i})", kind))
    return out


def hit_rate(results: list[list[str]], kinds: list[str]) -> float:
    hits = sum(any(f"_{k}_" in name for name in top) for top, k in zip(results, kinds, strict=True))
    return round(hits / len(kinds), 3)


def recall_at_10(exact_ids: np.ndarray, approx_ids: np.ndarray) -> float:
    found = sum(len(set(a) & set(e)) for a, e in zip(approx_ids, exact_ids, strict=True))
    return round(found / exact_ids.size, 4)


def hnsw_vs_exact(vectors: np.ndarray, queries: np.ndarray) -> dict[str, Any]:
    """Build flat and HNSW indexes over ``vectors`` and compare them on ``queries``."""
    row: dict[str, Any] = {}
    for kind, threshold in (("flat", len(vectors)), ("hnsw", 0)):
        start = time.perf_counter()
        raw, built = build_index(vectors, hnsw_threshold=threshold)
        assert built == kind
        row[f"{kind}_build_s"] = round(time.perf_counter() - start, 3)
        # searched like APIRetriever does (one OpenMP thread for a single query)
        index = ToolIndex(raw, [""] * len(vectors), "", vectors.shape[1], built, "")
        samples, ids = [], []
        for q in queries:
            t0 = time.perf_counter()
            _, found = index.search(q[None, :], 10)
            samples.append(time.perf_counter() - t0)
            ids.append(found[0])
        row[f"{kind}_search"] = ms(samples)
        row[f"_{kind}_ids"] = np.stack(ids)
    row["hnsw_recall_at_10"] = recall_at_10(row.pop("_flat_ids"), row.pop("_hnsw_ids"))
    return row


def real_run(n: int, n_queries: int, embedder: Embedder) -> dict[str, Any]:
    tools = synthetic_catalog(n, seed=0)
    texts = [tool_text(t) for t in tools]
    last = [0.0]

    def progress(done: int, total: int) -> None:
        if time.perf_counter() - last[0] > 10 or done == total:
            last[0] = time.perf_counter()
            print(f"  embedded {done}/{total}", file=sys.stderr, flush=True)

    start = time.perf_counter()
    vectors = embedder.encode(texts, progress=progress)
    embed_s = time.perf_counter() - start

    class Prepared:  # hand the vectors to the retriever without embedding them twice
        name = embedder.name

        def encode(self, batch: Any, *, progress: Any = None) -> np.ndarray:
            return vectors if len(batch) == n else embedder.encode(batch)

    t0 = time.perf_counter()
    retriever = APIRetriever(tools, embedder=Prepared(), hnsw_threshold=HNSW_THRESHOLD)
    index_s = time.perf_counter() - t0
    queries = make_queries(tools, n_queries)
    retriever.retrieve("warm up", k=5)
    samples, tops = [], []
    for query, _ in queries:
        top = retriever.retrieve(query, k=5)  # query embedding + search
        samples.append(retriever.last_seconds)
        tops.append([t.name for t, _ in top])
    pipeline = []  # the same queries embedded through sentence-transformers' own pipeline
    embedder.fast_queries = False
    for query, _ in queries:
        retriever.retrieve(query, k=5)
        pipeline.append(retriever.last_seconds)
    embedder.fast_queries = True
    qvecs = embedder.encode([q for q, _ in queries])
    bm25 = bm25_baseline(tools, k=5)
    bm25_samples, bm25_tops = [], []
    for query, _ in queries:
        top = bm25.retrieve(query)
        bm25_samples.append(bm25.last_seconds)
        bm25_tops.append([t.name for t, _ in top])
    kinds = [k for _, k in queries]
    row: dict[str, Any] = {
        "tools": n,
        "vectors": "real all-MiniLM-L6-v2 embeddings",
        "embed_s": round(embed_s, 2),
        "texts_per_s": round(n / embed_s, 1),
        "index_kind": retriever.index.kind,
        "index_build_s": round(index_s, 3),
        "retrieve_incl_query_embedding": ms(samples),
        "query_path": "traced" if callable(embedder._query) else "pipeline",
        "query_threads": embedder.query_threads,
        "retrieve_with_pipeline_query_embedding": ms(pipeline),
        "top5_hit_rate": hit_rate(tops, kinds),
        "bm25_retrieve": ms(bm25_samples),
        "bm25_top5_hit_rate": hit_rate(bm25_tops, kinds),
    }
    row.update(hnsw_vs_exact(vectors, qvecs))
    return row


def random_run(n: int, n_queries: int, dim: int = 384) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((n, dim), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    queries = rng.standard_normal((n_queries, dim), dtype=np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    row: dict[str, Any] = {"tools": n, "vectors": "random unit vectors (no embedding)"}
    row.update(hnsw_vs_exact(vectors, queries))
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="16000", help="comma-separated real-embedding sizes")
    parser.add_argument("--random-sizes", default="100000", help="random-vector sizes; 0 skips")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--threads", type=int, default=None, help="torch threads for embedding")
    parser.add_argument(
        "--query-threads", type=int, default=1, help="torch threads for one query (default 1)"
    )
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s.strip() and int(s) > 0]
    random_sizes = [int(s) for s in args.random_sizes.split(",") if s.strip() and int(s) > 0]
    embedder = Embedder(threads=args.threads, query_threads=args.query_threads)
    results = []
    for n in sizes:
        print(f"real embeddings, {n} tools ...", file=sys.stderr, flush=True)
        results.append(real_run(n, args.queries, embedder))
        print(json.dumps(results[-1], indent=1), flush=True)
    for n in random_sizes:
        print(f"random unit vectors, {n} vectors ...", file=sys.stderr, flush=True)
        results.append(random_run(n, args.queries))
        print(json.dumps(results[-1], indent=1), flush=True)
    for row in results:
        real = row["vectors"].startswith("real")
        line = f"{row['tools']:>7} tools, {row['vectors']}: "
        if real:
            r = row["retrieve_incl_query_embedding"]
            line += (
                f"embed {row['embed_s']} s ({row['texts_per_s']}/s), {row['index_kind']} build "
                f"{row['index_build_s']} s, retrieve p50 {r['p50_ms']} ms p99 {r['p99_ms']} ms "
                f"(incl. query embedding, {row['query_path']} path; pipeline p50 "
                f"{row['retrieve_with_pipeline_query_embedding']['p50_ms']} ms), top-5 hit {row['top5_hit_rate']} "
                f"(BM25 {row['bm25_top5_hit_rate']}, p50 {row['bm25_retrieve']['p50_ms']} ms), "
            )
        line += (
            f"flat search p50 {row['flat_search']['p50_ms']} ms, HNSW build {row['hnsw_build_s']} s"
            f", search p50 {row['hnsw_search']['p50_ms']} ms, recall@10 {row['hnsw_recall_at_10']}"
        )
        print(line)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()

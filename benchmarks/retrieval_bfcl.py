"""Tool retrieval on the BFCL-derived benchmark: every retriever side by side.

    python benchmarks/retrieval_bfcl.py --data BFCL_WHEEL_OR_DIR --cache runs/retrieval-bfcl \
        --out benchmarks/results/DATE/retrieval

Each step is cached under ``--cache`` (nothing of BFCL's is written under ``--out``), so a
stopped run goes on where it stopped:

1. **Derive** the benchmark (:func:`toolpath.evals.bfcl.retrieval.derive_benchmark`): every
   function of BFCL's non-live categories in one catalog, each question a query. Questions
   split by position: every 5th is *dev* (what the retriever settings were chosen on), the
   rest is *test*.
2. **Paraphrases**: ``--paraphrases`` requests written by ``--paraphrase-model`` for tools drawn
   with ``--seed``, without the words of the tool's name. Nothing was tuned on them.
3. **Train** the retriever on the catalog (``toolpath index train``): ``--train-model`` writes
   the requests. It sees tool documentation only; a request equal to a BFCL question would be
   dropped.
4. **Evaluate** dense (off-the-shelf all-MiniLM-L6-v2), BM25, hybrid, trained and
   trained-hybrid on dev, test and the paraphrases; then the LLM re-ranker over the
   trained hybrid's top 20 on the first ``--rerank-limit`` test queries, beside every other
   retriever on the same queries. The re-ranker's model time and tokens are reported apart.
5. **Latency** over 16k synthetic tools: the trained hybrid, query embedding included.

Writes ``summary.json``, ``report.md`` and ``per_query/SET.jsonl`` (query ids and ranks only).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from toolpath.evals.bfcl.retrieval import derive_benchmark, paraphrase_queries, write_queries
from toolpath.llm.specs import load_model
from toolpath.retrieval.evaluate import QuerySet, evaluate_retrieval, load_queries
from toolpath.retrieval.hybrid import HybridRetriever, LLMReranker
from toolpath.retrieval.kinds import build_retriever
from toolpath.retrieval.train import TrainConfig, train_retriever, trained_embedder

KS = (1, 5, 10)
KINDS = ("dense", "bm25", "hybrid", "trained", "trained-hybrid")


def say(*parts: Any) -> None:
    print(time.strftime("%H:%M:%S"), *parts, flush=True)


def ticker(label: str) -> Any:
    last = [0.0]

    def tick(*args: Any) -> None:
        done, total = args[-2], args[-1]
        if time.monotonic() - last[0] > 30 or done == total:
            last[0] = time.monotonic()
            say(label, *args)

    return tick


def paraphrases(bench: Any, args: argparse.Namespace, cache: Path) -> QuerySet:
    path = cache / f"paraphrases-{args.paraphrases}-seed{args.seed}.jsonl"
    if not path.is_file():
        model = load_model(args.paraphrase_model, n_parallel=2)
        try:
            cases = paraphrase_queries(
                bench.tools,
                model,
                count=args.paraphrases,
                seed=args.seed,
                concurrency=2,
                progress=ticker("paraphrases"),
            )
        finally:
            model.close()
        write_queries(cases, path)
    return load_queries(path, known=[t.name for t in bench.tools])


def train(bench: Any, args: argparse.Namespace, cache: Path) -> dict[str, Any]:
    questions = {" ".join(c.query.lower().split()) for c in bench.queries}
    start = time.perf_counter()  # what `toolpath index train` takes, the model's loading included
    model = load_model(args.train_model, n_parallel=2)
    try:
        result = train_retriever(
            bench.tools,
            model,
            cache,
            config=TrainConfig(),
            progress=ticker("train"),
            exclude=lambda q: " ".join(q.lower().split()) in questions,
        )
    finally:
        model.close()
    manifest = json.loads((result.folder / "manifest.json").read_text(encoding="utf-8"))
    keys = ("tools", "requests", "config", "query_model", "seconds")
    out = {k: manifest[k] for k in keys}
    if not result.reused:
        out["wall_seconds"] = round(time.perf_counter() - start, 1)
    return out


def scores(retrievers: dict[str, Any], queries: QuerySet, name: str, out: Path) -> dict[str, Any]:
    say(f"evaluating {len(retrievers)} retrievers on {name} ({len(queries)} queries)")
    result = evaluate_retrieval(retrievers, queries, KS)
    rows = [
        {"retriever": r["retriever"], "id": r.get("id"), "ranks": r["ranks"]}
        for r in result["per_query"]
    ]
    (out / "per_query").mkdir(parents=True, exist_ok=True)
    with open(out / "per_query" / f"{name}.jsonl", "w", encoding="utf-8") as f:
        f.writelines(json.dumps(row) + "\n" for row in rows)
    return {"queries": len(queries), "retrievers": result["retrievers"]}


def latency(cache: Path, trained_model: Any, n: int = 16_000, queries: int = 200) -> dict:
    from toolpath.retrieval.api_retriever import APIRetriever, BM25Retriever
    from toolpath.retrieval.synthetic import synthetic_catalog

    tools = list(synthetic_catalog(n))
    dense = APIRetriever(
        tools, embedder=trained_model, cache_dir=cache / "synthetic", progress=ticker("embed 16k")
    )
    hybrid = HybridRetriever([dense, BM25Retriever(tools)])
    asks = [f"I need the {t.description.split('.')[0].lower()} for my app" for t in tools[::80]]
    hybrid.retrieve("warm up")
    seconds = []
    for q in asks[:queries]:
        hybrid.retrieve(q, 5)
        seconds.append(hybrid.last_seconds)
    ordered = sorted(seconds)
    return {
        "tools": n,
        "queries": len(seconds),
        "p50_ms": round(1000 * statistics.median(seconds), 2),
        "p99_ms": round(1000 * ordered[min(len(ordered) - 1, round(0.99 * len(ordered)))], 2),
        "embedder": trained_model.name,
    }


def table(block: dict[str, Any]) -> str:
    lines = [
        "| retriever | R@1 | R@5 | R@10 | NDCG@5 | NDCG@10 | p50 ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in block["retrievers"].items():
        lines.append(
            f"| {name} | {r['recall@1']:.3f} | {r['recall@5']:.3f} | {r['recall@10']:.3f} | "
            f"{r['ndcg@5']:.3f} | {r['ndcg@10']:.3f} | {r['latency_ms']['p50']:.1f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=None, help="BFCL folder or bfcl-eval wheel")
    parser.add_argument("--cache", default="runs/retrieval-bfcl", type=Path)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--paraphrases", type=int, default=200)
    parser.add_argument("--paraphrase-model", default="local")
    parser.add_argument("--train-model", default="local:qwen2.5-coder-0.5b")
    parser.add_argument("--rerank-model", default="local")
    parser.add_argument("--rerank-limit", type=int, default=100)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--skip-latency", action="store_true")
    args = parser.parse_args()
    out, cache = args.out, args.cache / "index"
    out.mkdir(parents=True, exist_ok=True)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    summary: dict[str, Any] = {"command": " ".join(["python", *sys.argv]), "commit": commit}
    bench = derive_benchmark(args.data)
    summary["benchmark"] = bench.stats
    cases = bench.queries.cases
    sets = {
        "dev": QuerySet([c for i, c in enumerate(cases) if i % 5 == 0], "bfcl dev"),
        "test": QuerySet([c for i, c in enumerate(cases) if i % 5 != 0], "bfcl test"),
    }
    if args.paraphrases:
        sets["paraphrases"] = paraphrases(bench, args, args.cache)
    summary["training"] = train(bench, args, cache)
    retrievers = {
        kind: build_retriever(kind, bench.tools, cache_dir=cache, use_trained=False)
        for kind in KINDS
    }
    summary["sets"] = {name: scores(retrievers, q, name, out) for name, q in sets.items()}
    if args.rerank_limit:
        model = load_model(args.rerank_model)
        try:
            rerank = LLMReranker(retrievers["trained-hybrid"], model)
            subset = QuerySet(sets["test"].cases[: args.rerank_limit], "bfcl test head")
            block = scores({**retrievers, "rerank": rerank}, subset, "test-rerank", out)
        finally:
            model.close()
        block["rerank_cost"] = {
            "model": args.rerank_model,
            "calls": rerank.calls,
            "tokens": rerank.tokens,
            "model_seconds_per_query": round(rerank.rerank_seconds_total / max(1, rerank.calls), 2),
            "fallbacks": rerank.fallbacks,
        }
        summary["sets"]["test-rerank"] = block
    if not args.skip_latency:
        summary["latency_16k"] = latency(args.cache, trained_embedder(bench.tools, cache))
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    report = [f"# Tool retrieval on BFCL-derived queries\n\n`{summary['command']}` at {commit}\n"]
    for name, block in summary["sets"].items():
        report.append(f"## {name} ({block['queries']} queries)\n\n{table(block)}\n")
    (out / "report.md").write_text("\n".join(report), encoding="utf-8")
    print("\n".join(report))


if __name__ == "__main__":
    main()

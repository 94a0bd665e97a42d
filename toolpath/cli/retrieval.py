"""API retrieval: ``toolpath index build`` (a catalog's embedding index), ``toolpath index train``
(a retriever trained on the catalog) and ``toolpath eval retrieval`` (recall@k and NDCG@k of
every retriever side by side, on a queries file or on the BFCL-derived benchmark).

All three build retrievers through :func:`~toolpath.retrieval.kinds.build_retriever` with one
cache folder, so ``eval retrieval --index-dir`` may be the folder given to ``index build --out``
and ``index train --out``: its indexes and trained model are reused.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from toolpath.cli.common import all_of, err, group, load, out, progress_bar
from toolpath.errors import ConfigError

SUMMARY_FILE = "summary.json"
PER_QUERY_FILE = "per_query.jsonl"


CATALOG_HELP = (
    "A tool catalog: toolpath/OpenAI/ToolBench JSON, JSONL or YAML, a .py file, "
    "module:pkg.tools, an MCP server (mcp:COMMAND ARGS or mcp+http://HOST/PATH) or an OpenAPI "
    "spec (openapi:PATH_OR_URL)."
)
Threads = Annotated[
    int | None, typer.Option(help="Torch threads while embedding (default: one per core).")
]


def register(app: typer.Typer, eval_app: typer.Typer) -> None:
    """Add the ``toolpath index`` group (``index build``) and ``toolpath eval retrieval``."""
    index = group(
        "Index a tool catalog for retrieval, or train a retriever on it.",
        {"build": index_build, "train": index_train},
    )
    app.add_typer(index, name="index")
    eval_app.command("retrieval")(eval_retrieval)


def index_build(
    catalog: Annotated[str, typer.Argument(help=CATALOG_HELP)],
    out_dir: Annotated[
        str, typer.Option("--out", "-o", help="Cache folder; the index goes in OUT/CONTENT_HASH.")
    ],
    hnsw_threshold: Annotated[
        int, typer.Option(help="Use HNSW instead of an exact flat index above this many tools.")
    ] = 50_000,
    trained: Annotated[
        bool,
        typer.Option(
            "--trained/--no-trained",
            help="Embed with the retriever `index train` made for this catalog in OUT, if any.",
        ),
    ] = True,
    threads: Threads = None,
) -> None:
    """Embed every tool of CATALOG into a faiss index saved under OUT.

    The embedder is the model `toolpath index train` trained on this very catalog in OUT when
    there is one (a catalog changed since is not matched), else all-MiniLM-L6-v2, on the CPU.
    Building the same catalog again reuses the saved index without embedding anything. Prints
    the index folder last.
    """
    import time

    from toolpath.retrieval.api_retriever import APIRetriever
    from toolpath.retrieval.embed import Embedder
    from toolpath.retrieval.train import trained_embedder
    from toolpath.tools.catalog import load_catalog

    loaded = load_catalog(catalog)
    embedder = (trained_embedder(loaded.tools, out_dir) if trained else None) or Embedder()
    embedder.threads = threads
    start = time.perf_counter()
    with progress_bar(count=True) as bar:
        index = APIRetriever(
            loaded,
            embedder=embedder,
            cache_dir=Path(out_dir),
            hnsw_threshold=hnsw_threshold,
            progress=lambda done, total: bar("embedding tools", done, total),
        ).index
    seconds = time.perf_counter() - start
    skipped = f", {len(loaded.skipped)} skipped" if loaded.skipped else ""
    out.print(
        f"{len(index)} tools indexed{skipped}; {index.kind} index, dimension {index.dim}, "
        f"embedder {index.embedder_name}",
        markup=False,
    )
    if index.reused:
        out.print(
            f"reused the cached index (same tools and embedder, nothing embedded); "
            f"loaded in {seconds:.2f} s",
            markup=False,
        )
    else:
        out.print(
            f"built in {index.build_seconds:.2f} s (embedding included; {seconds:.2f} s in all)",
            markup=False,
        )
    typer.echo(str(index.folder))


def index_train(
    catalog: Annotated[str, typer.Argument(help=CATALOG_HELP)],
    out_dir: Annotated[
        str,
        typer.Option(
            "--out",
            "-o",
            help="Cache folder; the model goes in OUT/trained/KEY (KEY: the catalog).",
        ),
    ],
    model: Annotated[
        str,
        typer.Option(
            "--model", "-m", help="The model that writes the training requests (a model spec)."
        ),
    ] = "local:qwen2.5-coder-0.5b",
    per_tool: Annotated[int, typer.Option(min=1, help="Requests written per tool.")] = 1,
    epochs: Annotated[int, typer.Option(min=1, help="Passes over the requests.")] = 1,
    concurrency: Annotated[
        int, typer.Option(min=1, help="Tools asked at once (llama.cpp slots for a local model).")
    ] = 2,
    round_trip_k: Annotated[
        int,
        typer.Option(min=1, help="Keep a request when its tool is in the top K for it."),
    ] = 20,
) -> None:
    """Train a retriever on CATALOG: the model writes requests for every tool, the requests
    whose tool comes back from them are kept, and all-MiniLM-L6-v2 is fine-tuned on them with
    in-batch and hard negatives (BM25 hits and catalog neighbours).

    Resumable: run the same command again after a stop and it goes on from the last tool
    asked and the last epoch saved. `toolpath index build --out OUT`, `toolpath run --catalog
    ... --index-dir OUT` and `toolpath eval retrieval --index-dir OUT` then use the trained
    model while the catalog stays the same. Prints the model's folder last.
    """
    from toolpath.llm.specs import load_model
    from toolpath.retrieval.train import TrainConfig, train_retriever
    from toolpath.tools.catalog import load_catalog

    loaded = load_catalog(catalog)
    config = TrainConfig(
        per_tool=per_tool, epochs=epochs, concurrency=concurrency, round_trip_k=round_trip_k
    )
    options: dict[str, Any] = {"n_parallel": concurrency} if model.startswith("local") else {}
    with progress_bar() as bar:
        llm = load_model(model, progress=bar, **options)
    try:
        with progress_bar(count=True, keep=True) as bar:
            result = train_retriever(
                loaded.tools, llm, out_dir, config=config, progress=lambda *a: bar(*a)
            )
    finally:
        llm.close()
    if result.reused:
        out.print(
            "this catalog's retriever is already trained with these settings: nothing to do",
            markup=False,
        )
    else:
        timing = ", ".join(f"{k} {v:.0f} s" for k, v in result.seconds.items())
        out.print(
            f"{result.tools} tools; {result.generated} requests written, {result.kept} kept "
            f"after the round trip; {timing}",
            markup=False,
        )
    typer.echo(str(result.folder))


def eval_retrieval(
    catalog: Annotated[
        str | None, typer.Option(metavar="PATH", help=CATALOG_HELP + " Not with --bfcl.")
    ] = None,
    queries: Annotated[
        str | None,
        typer.Option(
            metavar="PATH",
            help='JSONL, or a JSON list, of {"query": "...", "relevant": [tool names], '
            '"grades": <optional {name: positive int}>}. With --bfcl: extra queries over '
            "BFCL's catalog instead of its questions.",
        ),
    ] = None,
    bfcl: Annotated[
        bool,
        typer.Option(
            "--bfcl",
            help="The benchmark derived from BFCL's non-live categories: every function in one "
            "catalog, each question a query (see --data).",
        ),
    ] = False,
    data: Annotated[
        str | None,
        typer.Option(
            metavar="DIR_OR_WHEEL",
            help="BFCL data for --bfcl (a folder or the bfcl-eval wheel); default: the cache, "
            "downloaded once.",
        ),
    ] = None,
    retrievers: Annotated[
        str,
        typer.Option(
            help="Comma-separated: dense, bm25, hybrid, trained, trained-hybrid, rerank. "
            "Default: dense,bm25,hybrid, and trained,trained-hybrid when --index-dir holds a "
            "model trained on this catalog.",
        ),
    ] = "",
    rerank_model: Annotated[
        str, typer.Option(help="The model that re-ranks the top 20 for `rerank`.")
    ] = "local",
    k: Annotated[str, typer.Option("--k", help="Comma-separated cut-offs.")] = "1,5,10",
    limit: Annotated[
        int | None, typer.Option(min=1, help="Score only the first LIMIT queries.")
    ] = None,
    index_dir: Annotated[
        str | None,
        typer.Option(
            metavar="DIR",
            help="Cache folder (as for `toolpath index build/train --out`): saved indexes and "
            "a trained model of this catalog are used, new indexes saved. Default: in memory.",
        ),
    ] = None,
    out_dir: Annotated[
        str | None,
        typer.Option(
            "--out",
            metavar="DIR",
            help=f"Write {SUMMARY_FILE} and {PER_QUERY_FILE} to this folder.",
        ),
    ] = None,
    threads: Threads = None,
) -> None:
    """Recall@k and NDCG@k of tool retrievers, side by side on the same queries.

    Every retriever answers every query; the table shows mean recall@k and NDCG@k for each k
    and the query latency p50/p99 (query embedding included). `rerank` re-ranks the best
    hybrid's top 20 with one call to --rerank-model per query; its model time and tokens are
    reported on their own.
    """
    from toolpath.retrieval.evaluate import QuerySet, evaluate_retrieval

    ks = parse_ks(k)
    tools, queryset, source = _benchmark(catalog, queries, bfcl, data)
    if limit is not None:
        queryset = QuerySet(queryset.cases[:limit], queryset.source)
    built = _retrievers(retrievers, tools, index_dir, threads, rerank_model)
    try:
        with progress_bar(count=True, keep=True) as bar:
            result = evaluate_retrieval(
                built,
                queryset,
                ks,
                progress=lambda name, done, total: bar(f"querying {name}", done, total),
            )
    finally:
        for r in built.values():
            if (model := getattr(r, "model", None)) is not None:
                model.close()
    result["config"] = {
        **source,
        "tools": len(tools),
        "unknown_relevant": len(queryset.unknown),
        "skipped_queries": len(queryset.skipped),
        "retrievers": {name: _describe(r) for name, r in built.items()},
    }
    out.print(summary_table(result))
    if queryset.unknown:
        out.print(
            f"{len(queryset.unknown)} relevant tool name(s) not in the catalog were dropped; "
            f"{len(queryset.skipped)} quer(ies) left without a relevant tool were skipped",
            markup=False,
        )
    if out_dir is not None:
        folder = write_results(result, Path(out_dir))
        out.print(f"results in {folder}/ ({SUMMARY_FILE}, {PER_QUERY_FILE})", markup=False)


def _benchmark(
    catalog: str | None, queries: str | None, bfcl: bool, data: str | None
) -> tuple[list[Any], Any, dict[str, Any]]:
    """The tools, the queries and a description of where they came from."""
    from toolpath.retrieval.evaluate import load_queries
    from toolpath.tools.catalog import load_catalog

    if bfcl:
        from toolpath.evals.bfcl.retrieval import derive_benchmark

        if catalog is not None:
            raise ConfigError("--bfcl brings its own catalog: leave out --catalog")
        bench = derive_benchmark(data)
        names = [t.name for t in bench.tools]
        queryset = bench.queries if queries is None else load_queries(queries, known=names)
        return bench.tools, queryset, {"benchmark": "bfcl", "queries": queries, **bench.stats}
    if catalog is None or queries is None:
        raise ConfigError("give --catalog and --queries, or --bfcl")
    loaded = load_catalog(catalog)
    if loaded.skipped:
        err.print(f"catalog: {len(loaded.skipped)} entries skipped", markup=False)
    queryset = load_queries(queries, known=[t.name for t in loaded.tools])
    return list(loaded.tools), queryset, {"catalog": catalog, "queries": queries}


def _retrievers(
    names: str, tools: list[Any], index_dir: str | None, threads: int | None, rerank_model: str
) -> dict[str, Any]:
    """The retrievers ``names`` asks for (see ``eval retrieval --retrievers``), built once."""
    from toolpath.retrieval.hybrid import LLMReranker
    from toolpath.retrieval.kinds import KINDS, build_retriever
    from toolpath.retrieval.train import trained_embedder

    wanted = all_of(names, (*KINDS, "rerank"), "--retrievers") if names else []
    if not wanted:
        wanted = ["dense", "bm25", "hybrid"]
        if trained_embedder(tools, index_dir) is not None:
            wanted += ["trained", "trained-hybrid"]
    built: dict[str, Any] = {}
    with progress_bar(count=True) as bar:
        for name in wanted:
            if name == "rerank":
                continue
            built[name] = build_retriever(
                name,
                tools,
                cache_dir=index_dir,
                threads=threads,
                use_trained=False,
                progress=lambda done, total: bar("embedding tools", done, total),
            )
    if "rerank" in wanted:
        base_name = "trained-hybrid" if "trained-hybrid" in built else "hybrid"
        base = built.get(base_name) or build_retriever(
            base_name, tools, cache_dir=index_dir, threads=threads, use_trained=False
        )
        built[f"rerank({base_name})"] = LLMReranker(base, load(rerank_model))
    return built


def _describe(retriever: Any) -> dict[str, Any]:
    """What a retriever was: its class, embedder and index, and a re-ranker's model cost."""
    info: dict[str, Any] = {"class": type(retriever).__name__}
    members = getattr(retriever, "retrievers", None) or [retriever]
    for member in members:
        index = getattr(member, "index", None)
        if index is not None:
            info["embedder"] = index.embedder_name
            folder = None if index.folder is None else str(index.folder)
            info["index"] = {"kind": index.kind, "reused": index.reused, "folder": folder}
    if isinstance(getattr(retriever, "calls", None), int):
        info["rerank_cost"] = {
            "calls": retriever.calls,
            "tokens": retriever.tokens,
            "model_seconds": round(retriever.rerank_seconds_total, 2),
            "fallbacks": retriever.fallbacks,
        }
    return info


def parse_ks(text: str) -> tuple[int, ...]:
    """``"1,3,5,10"`` as sorted unique cut-offs; a :class:`ConfigError` for anything else."""
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ConfigError(f"--k must be comma-separated positive integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise ConfigError(f"--k must be comma-separated positive integers, got {text!r}")
    return tuple(sorted(set(values)))


def summary_table(result: dict[str, Any]) -> Any:
    """A rich table: one row per retriever, recall@k and NDCG@k for each k, latency."""
    from rich.table import Table

    ks = result["ks"]
    table = Table(
        "retriever",
        *(f"R@{k}" for k in ks),
        *(f"NDCG@{k}" for k in ks),
        "p50 ms",
        "p99 ms",
        title=f"tool retrieval on {result['queries']} queries",
    )
    for name, row in result["retrievers"].items():
        table.add_row(
            name,
            *(f"{row[f'recall@{k}']:.3f}" for k in ks),
            *(f"{row[f'ndcg@{k}']:.3f}" for k in ks),
            f"{row['latency_ms']['p50']:.2f}",
            f"{row['latency_ms']['p99']:.2f}",
        )
    return table


def write_results(result: dict[str, Any], folder: Path) -> Path:
    """Write ``summary.json`` (everything but the per-query rows) and ``per_query.jsonl``."""
    folder.mkdir(parents=True, exist_ok=True)
    summary = {key: value for key, value in result.items() if key != "per_query"}
    (folder / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    lines = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in result["per_query"])
    (folder / PER_QUERY_FILE).write_text(lines, encoding="utf-8")
    return folder

"""API retrieval: ``toolpath index build`` (a catalog's embedding index) and ``toolpath eval
retrieval`` (recall@k and NDCG@k of the TPTU-v2 API retriever and BM25).

Both build the dense retriever the same way (:class:`~toolpath.retrieval.api_retriever.APIRetriever`
with an :class:`~toolpath.retrieval.embed.Embedder` and a cache folder), so ``eval retrieval
--index-dir`` may be the folder given to ``index build --out`` and its index is reused without
embedding.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from toolpath.cli.common import err, group, out, progress_bar
from toolpath.errors import ConfigError

if TYPE_CHECKING:
    from toolpath.retrieval.api_retriever import APIRetriever
    from toolpath.tools.catalog import Catalog

SUMMARY_FILE = "summary.json"
PER_QUERY_FILE = "per_query.jsonl"


CATALOG_HELP = (
    "A tool catalog: toolpath/OpenAI/ToolBench JSON, JSONL or YAML, a .py file, or "
    "module:pkg.tools."
)
Threads = Annotated[
    int | None, typer.Option(help="Torch threads while embedding (default: one per core).")
]


def register(app: typer.Typer, eval_app: typer.Typer) -> None:
    """Add the ``toolpath index`` group (``index build``) and ``toolpath eval retrieval``."""
    index = group(
        "Build the embedding index of a tool catalog for API retrieval.", {"build": index_build}
    )
    app.add_typer(index, name="index")
    eval_app.command("retrieval")(eval_retrieval)


def index_build(
    catalog: Annotated[
        str,
        typer.Argument(help=CATALOG_HELP),
    ],
    out_dir: Annotated[
        str, typer.Option("--out", "-o", help="Cache folder; the index goes in OUT/CONTENT_HASH.")
    ],
    hnsw_threshold: Annotated[
        int, typer.Option(help="Use HNSW instead of an exact flat index above this many tools.")
    ] = 50_000,
    threads: Threads = None,
) -> None:
    """Embed every tool of CATALOG into a faiss index saved under OUT.

    The embedder is all-MiniLM-L6-v2 on the CPU. Building the same catalog again reuses the
    saved index without embedding anything. Prints the index folder last.
    """
    import time

    from toolpath.tools.catalog import load_catalog

    loaded = load_catalog(catalog)
    start = time.perf_counter()
    index = _dense(loaded, out_dir, threads, keep=False, hnsw_threshold=hnsw_threshold).index
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


def eval_retrieval(
    catalog: Annotated[
        str,
        typer.Option(metavar="PATH", help=CATALOG_HELP),
    ],
    queries: Annotated[
        str,
        typer.Option(
            metavar="PATH",
            help='JSONL, or a JSON list, of {"query": "...", "relevant": [tool names], '
            '"grades": <optional {name: positive int}>}.',
        ),
    ],
    k: Annotated[str, typer.Option("--k", help="Comma-separated cut-offs.")] = "1,3,5,10",
    index_dir: Annotated[
        str | None,
        typer.Option(
            metavar="DIR",
            help="Index cache folder (as for `toolpath index build --out`): a saved index of "
            "this catalog is reused, a new one is saved there. Default: build it in memory.",
        ),
    ] = None,
    bm25: Annotated[
        bool, typer.Option("--bm25/--no-bm25", help="Also run the BM25 baseline (rank-bm25).")
    ] = True,
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
    """Recall@k and NDCG@k of the dense retriever and BM25.

    Scores the embedding retriever (all-MiniLM-L6-v2 + faiss) and the BM25 baseline on
    labelled queries: mean recall@k and NDCG@k for each k, and the query latency p50/p99.
    """
    from toolpath.retrieval.api_retriever import bm25_baseline
    from toolpath.retrieval.evaluate import evaluate_retrieval, load_queries
    from toolpath.tools.catalog import load_catalog

    ks = parse_ks(k)
    loaded = load_catalog(catalog)
    queryset = load_queries(queries, known=[t.name for t in loaded.tools])
    if loaded.skipped:
        err.print(f"catalog: {len(loaded.skipped)} entries skipped", markup=False)
    retrievers: dict[str, Any] = {"dense": _dense(loaded, index_dir, threads, keep=True)}
    if bm25:
        retrievers["bm25"] = bm25_baseline(loaded)
    with progress_bar(count=True, keep=True) as bar:
        result = evaluate_retrieval(
            retrievers,
            queryset,
            ks,
            progress=lambda name, done, total: bar(f"querying {name}", done, total),
        )
    result["config"] = {
        "catalog": catalog,
        "queries": queries,
        "tools": len(loaded.tools),
        "unknown_relevant": len(queryset.unknown),
        "skipped_queries": len(queryset.skipped),
        "index": _index_info(retrievers["dense"]),
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


def parse_ks(text: str) -> tuple[int, ...]:
    """``"1,3,5,10"`` as sorted unique cut-offs; a :class:`ConfigError` for anything else."""
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ConfigError(f"--k must be comma-separated positive integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise ConfigError(f"--k must be comma-separated positive integers, got {text!r}")
    return tuple(sorted(set(values)))


def _dense(
    catalog: Catalog, index_dir: str | None, threads: int | None, *, keep: bool, **options: Any
) -> APIRetriever:
    """The embedding retriever, its index cached in ``index_dir`` (``None``: in memory only),
    with a progress bar while the tools are embedded (``keep``: it stays when done)."""
    from toolpath.retrieval.api_retriever import APIRetriever
    from toolpath.retrieval.embed import Embedder

    with progress_bar(count=True, keep=keep) as bar:
        return APIRetriever(
            catalog,
            embedder=Embedder(threads=threads),
            cache_dir=None if index_dir is None else Path(index_dir),
            progress=lambda done, total: bar("embedding tools", done, total),
            **options,
        )


def _index_info(retriever: APIRetriever) -> dict[str, Any]:
    index = retriever.index
    return {
        "kind": index.kind,
        "embedder": index.embedder_name,
        "reused": index.reused,
        "folder": None if index.folder is None else str(index.folder),
    }


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

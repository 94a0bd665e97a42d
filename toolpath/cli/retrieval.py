"""``toolpath eval retrieval``: recall@k and NDCG@k of the TPTU-v2 API retriever and BM25.

:func:`register` adds the command to the ``toolpath eval`` group. The dense retriever is built
the way ``toolpath index build`` builds it (:class:`~toolpath.retrieval.api_retriever.APIRetriever`
with an :class:`~toolpath.retrieval.embed.Embedder` and a cache folder), so ``--index-dir`` may be
the folder given to ``toolpath index build --out`` and its index is reused without embedding.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from toolpath.errors import ConfigError

if TYPE_CHECKING:
    from rich.console import Console

    from toolpath.retrieval.api_retriever import APIRetriever
    from toolpath.tools.catalog import Catalog

SUMMARY_FILE = "summary.json"
PER_QUERY_FILE = "per_query.jsonl"


def parse_ks(text: str) -> tuple[int, ...]:
    """``"1,3,5,10"`` as sorted unique cut-offs; a :class:`ConfigError` for anything else."""
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ConfigError(f"--k must be comma-separated positive integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise ConfigError(f"--k must be comma-separated positive integers, got {text!r}")
    return tuple(sorted(set(values)))


def register(app: typer.Typer, eval_app: typer.Typer) -> None:
    """Add ``retrieval`` to the ``toolpath eval`` group ``eval_app`` (``app`` gets nothing)."""
    del app  # the command lives under ``eval`` only
    eval_app.command("retrieval")(eval_retrieval)


def eval_retrieval(
    catalog: Annotated[
        str,
        typer.Option(
            metavar="PATH",
            help="The tool catalog: toolpath/OpenAI/ToolBench JSON, JSONL or YAML, a .py file, "
            "or module:pkg.tools.",
        ),
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
    threads: Annotated[
        int | None, typer.Option(help="Torch threads while embedding (default: one per core).")
    ] = None,
) -> None:
    """Score the embedding retriever (all-MiniLM-L6-v2 + faiss) and the BM25 baseline on
    labelled queries: mean recall@k and NDCG@k for each k, and query latency p50/p99."""
    from rich.console import Console

    from toolpath.retrieval.api_retriever import bm25_baseline
    from toolpath.retrieval.evaluate import evaluate_retrieval, load_queries
    from toolpath.tools.catalog import load_catalog

    ks = parse_ks(k)
    out, err = Console(highlight=False), Console(stderr=True, highlight=False)
    loaded = load_catalog(catalog)
    queryset = load_queries(queries, known=[t.name for t in loaded.tools])
    if loaded.skipped:
        err.print(f"catalog: {len(loaded.skipped)} entries skipped", markup=False)
    retrievers: dict[str, Any] = {"dense": _dense(loaded, index_dir, threads, err)}
    if bm25:
        retrievers["bm25"] = bm25_baseline(loaded)
    with _ProgressBars(err, "querying") as bar:
        result = evaluate_retrieval(retrievers, queryset, ks, progress=bar)
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


def _dense(
    catalog: Catalog, index_dir: str | None, threads: int | None, err: Console
) -> APIRetriever:
    """The embedding retriever, built like ``toolpath index build`` builds it."""
    from toolpath.retrieval.api_retriever import APIRetriever
    from toolpath.retrieval.embed import Embedder

    with _ProgressBars(err, "embedding tools") as bar:
        return APIRetriever(
            catalog,
            embedder=Embedder(threads=threads),
            cache_dir=None if index_dir is None else Path(index_dir),
            progress=lambda done, total: bar("embed", done, total),
        )


def _index_info(retriever: APIRetriever) -> dict[str, Any]:
    index = retriever.index
    return {
        "kind": index.kind,
        "embedder": index.embedder_name,
        "reused": index.reused,
        "folder": None if index.folder is None else str(index.folder),
    }


class _ProgressBars:
    """Rich progress bars on stderr (kept after they finish), one per label; the bar appears
    only once something reports progress."""

    def __init__(self, console: Console, description: str) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        self.description = description
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            console=console,
            transient=False,
        )
        self.tasks: dict[str, Any] = {}

    def __call__(self, label: str, done: int, total: int) -> None:
        if not self.tasks:
            self.progress.start()
        if label not in self.tasks:
            name = self.description if label == "embed" else f"{self.description} {label}"
            self.tasks[label] = self.progress.add_task(name, total=total)
        self.progress.update(self.tasks[label], completed=done, total=total)

    def __enter__(self) -> _ProgressBars:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.tasks:
            self.progress.stop()


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

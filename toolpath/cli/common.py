"""What the command modules share: the consoles, the ``--model`` option and progress bars."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from rich.console import Console

err = Console(stderr=True, highlight=False)
out = Console(highlight=False)

MODEL_HELP = (
    "Model spec: local, local:qwen2.5-coder-0.5b, local:/path/x.gguf, openai:gpt-4o-mini, "
    "openai:MODEL@URL, URL#MODEL or ollama:NAME."
)
ModelOpt = Annotated[str, typer.Option("--model", "-m", help=MODEL_HELP)]


@contextmanager
def progress_bar() -> Iterator[Callable[[str, int, int], None]]:
    """A rich progress bar driven by toolpath's ``(label, done, total)`` callbacks.

    It appears only once something reports progress, so fast paths print nothing.
    """
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

    prog = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
    )
    bars: dict[str, Any] = {}

    def update(label: str, done: int, total: int) -> None:
        if not bars:
            prog.start()
        if label not in bars:
            bars[label] = prog.add_task(label, total=total or None)
        prog.update(bars[label], completed=done, total=total or None)

    try:
        yield update
    finally:
        if bars:
            prog.stop()


def fmt(value: Any) -> str:
    """A table cell: one decimal for numbers, ``-`` for anything missing."""
    return f"{value:.1f}" if isinstance(value, int | float) else "-"

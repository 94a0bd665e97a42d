"""Agents: one module per seed system, each building its LangGraph graph in one function."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def sqlite_checkpointer(path: str | Path) -> Any:
    """A LangGraph SQLite checkpointer on ``path``, so runs resume by thread id."""
    import sqlite3

    from langgraph.checkpoint.sqlite import SqliteSaver

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return SqliteSaver(sqlite3.connect(str(path), check_same_thread=False))

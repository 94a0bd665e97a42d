"""Prompt templates live here as files; this module only reads them."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

__all__ = ["math_demos", "prompt"]

HERE = Path(__file__).parent


@cache
def prompt(name: str) -> str:
    """The text of ``prompts/<name>.md``."""
    return (HERE / f"{name}.md").read_text(encoding="utf-8").strip()


@cache
def math_demos() -> tuple[dict[str, Any], ...]:
    """Worked demonstrations on GSM8K *train* problems (never test), with real outputs."""
    data = json.loads((HERE / "math_demos.json").read_text(encoding="utf-8"))
    return tuple(data["demos"])

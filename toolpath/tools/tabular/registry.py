"""Every tabular tool by name (:data:`TOOLS`), the tools of each subtask type
(:data:`SERVES`), the most robust one of each (:data:`REFERENCE`), and :func:`call`."""

import inspect
from collections.abc import Callable, Mapping
from typing import Any

from toolpath.tools.tabular import ops, sql

SERVES: dict[str, tuple[str, ...]] = {
    "load": ("read_csv_fast", "read_csv_comments", "read_csv_sniff", "read_csv_robust"),
    "clean": ("to_numeric_coerce", "strip_currency", "extract_numbers", "parse_numbers"),
    "join": ("merge_index", "merge_exact", "merge_normalized", "merge_fuzzy", "merge_sql"),
    "filter": ("filter_mask", "filter_loop", "filter_query", "filter_normalized", "filter_sql"),
    "aggregate": (
        "aggregate_bincount", "aggregate_groupby", "aggregate_loop", "aggregate_pivot",
        "aggregate_sql",
    ),
    "sort": ("sort_numpy", "sort_frame", "sort_nlargest", "sort_sql"),
    "plot": ("plot_pillow", "plot_matplotlib"),
}  # fmt: skip
"""The tools of each subtask type, in the order of their prior cost (``domain.yaml``)."""
TOOLS: dict[str, Callable[..., Any]] = {
    name: getattr(ops, name, None) or getattr(sql, name)
    for names in SERVES.values()
    for name in names
}
"""Every tool by name."""
REFERENCE: dict[str, str] = {
    "load": "read_csv_robust", "clean": "parse_numbers", "join": "merge_fuzzy",
    "filter": "filter_normalized", "aggregate": "aggregate_groupby", "sort": "sort_frame",
    "plot": "plot_matplotlib",
}  # fmt: skip
"""The most robust tool of each subtask type (the task generator's reference chain)."""


def call(tool: str | Callable[..., Any], context: Any, params: Mapping[str, Any]) -> Any:
    """Run a tool with only the params it accepts (as the generic domain does)."""
    fn = TOOLS[tool] if isinstance(tool, str) else tool
    names = list(inspect.signature(fn).parameters)[1:]
    return fn(context, **{k: v for k, v in params.items() if k in names})

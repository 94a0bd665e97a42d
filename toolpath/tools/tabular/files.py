"""Reading a task's input and writing its result, for ``toolpath costa --domain tabular``,
short text of a working object for an LLM verifier, and column names fitted to the table
(the spec's ``load_input``, ``save_output``, ``describe`` and ``prepare``)."""

import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from toolpath.errors import ConfigError
from toolpath.tools.tabular.ops import Chart, DataSource


def open_folder(path: str) -> DataSource:
    """A folder of CSV files (or one CSV file, for its folder) as the working object."""
    where = Path(path)
    folder = where.parent if where.is_file() else where
    if not folder.is_dir():
        raise ConfigError(f"{path}: not a folder of CSV files")
    files = tuple(sorted(p.name for p in folder.glob("*.csv")))
    if not files:
        raise ConfigError(f"{folder}: no .csv files in it")
    return DataSource(str(folder), files)


def save_result(result: Any, path: str) -> Path:
    """Write a table as CSV, or copy a chart's PNG; a missing suffix is added. The path."""
    target = Path(path)
    if isinstance(result, Chart):
        target = target if target.suffix else target.with_suffix(".png")
        shutil.copyfile(result.path, target)
    elif isinstance(result, pd.DataFrame):
        target = target if target.suffix else target.with_suffix(".csv")
        result.to_csv(target, index=False)
    else:
        raise ConfigError(f"nothing to write: the result is a {type(result).__name__}")
    return target


def describe(obj: Any, rows: int = 8) -> str:
    """A table's shape, columns and first rows; a chart's bars; a source's files."""
    if isinstance(obj, pd.DataFrame):
        return f"table, {len(obj)} rows x {obj.shape[1]} columns\n{obj.head(rows).to_string()}"
    if isinstance(obj, Chart):
        bars = obj.data.head(rows).to_string(index=False)
        return f"bar chart {obj.path} ({len(obj.data)} bars of {obj.y} by {obj.x})\n{bars}"
    if isinstance(obj, DataSource):
        return f"folder {obj.folder} with files {', '.join(obj.files)}"
    return repr(obj)[:1200]


COLUMN_PARAMS = ("column", "by", "x", "y", "on")
"""The step parameters that name a column of the working table."""


def fit_columns(kind: str, params: Mapping[str, Any], obj: Any) -> dict[str, Any]:
    """``params`` with each column name the table lacks replaced by the one column it names
    up to case, spaces and punctuation (``sale_amount`` for ``sale amount``); an unknown or
    ambiguous name stays, for the tool to report."""
    out = dict(params)
    if not isinstance(obj, pd.DataFrame):
        return out
    columns = [str(c) for c in obj.columns]
    for key in COLUMN_PARAMS:
        name = out.get(key)
        if isinstance(name, str) and name not in columns:
            close = [c for c in columns if _squash(c) == _squash(name)]
            if len(close) == 1:
                out[key] = close[0]
    return out


def _squash(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())

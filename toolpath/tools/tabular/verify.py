"""How to check a tabular step, from the step's input, output and params alone.

Every verifier is ``verify_x(kind, before, after, params) -> float`` with a score in
``[0, 1]``: the share of the result that is right (rows, groups, bars), 0 when the result
has the wrong type or shape. None knows a task's ground truth; each re-derives what the
step must have done with a method of its own (the load check re-reads the file's header
and counts its lines, the clean check reads the digits of every cell, the aggregate check
uses conservation of totals). Data steps are exact, so the domain spec passes them only at
0.99. Anything a check cannot read scores 0.
"""

from __future__ import annotations

import csv
import functools
import math
import re
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from toolpath.errors import ToolError
from toolpath.tools.tabular.ops import (
    OPS,
    Chart,
    DataSource,
    data_lines,
    is_text,
    norm_text,
    read_csv_robust,
    sniff_delimiter,
)

_Check = Callable[[str, Any, Any, Mapping[str, Any]], float]


def _safe(check: _Check) -> _Check:
    """A check that scores 0 instead of raising, and clips to ``[0, 1]``."""

    @functools.wraps(check)
    def wrapper(kind: str, before: Any, after: Any, params: Mapping[str, Any]) -> float:
        try:
            score = float(check(kind, before, after, params))
        except (KeyError, ValueError, TypeError, IndexError, OSError, ToolError):
            return 0.0
        return min(1.0, max(0.0, score)) if math.isfinite(score) else 0.0

    return wrapper


def _frames(before: Any, after: Any) -> bool:
    return isinstance(before, pd.DataFrame) and isinstance(after, pd.DataFrame)


def _close(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-6)


def _digits(value: Any) -> float:
    """The verifier's own reading of a cell: keep digits, ``.`` and ``-``, drop the rest."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return math.nan
    if isinstance(value, int | float | np.number):
        return float(value)
    kept = re.sub(r"[^0-9.\-]", "", str(value))
    try:
        return float(kept)
    except ValueError:
        return math.nan


@_safe
def verify_load(kind: str, before: Any, after: Any, params: Mapping[str, Any]) -> float:
    """The frame has the header's columns (read with the header's own delimiter, comment
    lines skipped) and one row per data line."""
    if not (isinstance(before, DataSource) and isinstance(after, pd.DataFrame)):
        return 0.0
    lines = data_lines((Path(before.folder) / params["file"]).read_text(encoding="utf-8-sig"))
    header = next(csv.reader([lines[0]], delimiter=sniff_delimiter(lines[0])))
    if [str(c) for c in after.columns] != header or not after.index.equals(
        pd.RangeIndex(len(after))
    ):
        return 0.0  # (a row with an extra field first can turn the first column into the index)
    rows = csv.reader(lines[1:], delimiter=sniff_delimiter(lines[0]))
    first = [r[0].strip() if r else "" for r in rows]
    if len(first) != len(after):
        return min(len(first), len(after)) / max(len(first), len(after))
    same = sum(_cell(v) == _cell(f) for v, f in zip(after.iloc[:, 0].tolist(), first, strict=True))
    return same / len(first) if first else 1.0


def _cell(v: Any) -> Any:
    """A cell as a loader may read it: a number, else its stripped text."""
    n = _digits(v) if isinstance(v, int | float | np.number) else math.nan
    if isinstance(v, str):
        try:
            n = float(v)
        except ValueError:
            return v.strip()
    return "" if math.isnan(n) else n


@_safe
def verify_clean(kind: str, before: Any, after: Any, params: Mapping[str, Any]) -> float:
    """The share of rows handled right: a cell with digits holds their number (rows kept,
    by index label), a missing cell is kept missing, dropped, or filled with 0 or with the
    mean of the numbers, as ``missing`` says."""
    if not _frames(before, after):
        return 0.0
    column, missing = params["column"], params.get("missing") or "keep"
    if column not in after.columns or is_text(after[column]):
        return 0.0
    if list(after.columns) != list(before.columns) or after.index.duplicated().any():
        return 0.0
    expect = [_digits(v) for v in before[column].tolist()]
    numbers = [v for v in expect if not math.isnan(v)]
    fill = {"keep": math.nan, "zero": 0.0, "mean": sum(numbers) / max(1, len(numbers))}
    got = dict(zip(after.index.tolist(), after[column].to_numpy(dtype=float), strict=True))
    if missing != "drop" and len(got) != len(before):
        return 0.0
    right = 0
    for label, want in zip(before.index.tolist(), expect, strict=True):
        if math.isnan(want) and missing == "drop":
            right += label not in got
        elif label in got:
            right += _close(got[label], want if not math.isnan(want) else fill[missing])
    extra = len(set(got) - set(before.index.tolist()))
    return right / (len(before) + extra) if len(before) + extra else 1.0


@_safe
def verify_join(kind: str, before: Any, after: Any, params: Mapping[str, Any]) -> float:
    """The share of left rows that came through with the right file's columns filled in
    (an inner join of files whose every key should match), 0 for rows that appeared from
    nowhere or a missing column."""
    if not _frames(before, after):
        return 0.0
    on, folder = params["on"], before.attrs.get("source")
    right = read_csv_robust(DataSource(str(folder)), params["file"])
    added = [c for c in right.columns if c != on]
    if any(c not in after.columns for c in [*before.columns, *added]):
        return 0.0
    left_keys = Counter(str(k) for k in before[on].tolist())
    if Counter(str(k) for k in after[on].tolist()) - left_keys:
        return 0.0  # a key (or more copies of one) that the left table does not have
    filled = int(after[added].notna().all(axis=1).sum()) if added else len(after)
    return filled / len(before) if len(before) else 1.0


def _wanted(before: pd.DataFrame, column: str, op: str, value: Any) -> pd.Series:
    s = before[column]
    if is_text(s):
        keep = [
            v is not None and not pd.isna(v) and OPS[op](v, str(value).strip().casefold())
            for v in norm_text(s).tolist()
        ]
        return pd.Series(keep, index=before.index, dtype=bool)
    return (OPS[op](s.astype(float), float(value)) & s.notna()).astype(bool)


@_safe
def verify_filter(kind: str, before: Any, after: Any, params: Mapping[str, Any]) -> float:
    """Jaccard overlap (by index label) of the rows kept and the rows whose value, stripped
    and case-folded for text, meets the condition; 0 if a row was changed or invented."""
    if not _frames(before, after) or list(after.columns) != list(before.columns):
        return 0.0
    labels = after.index.tolist()
    if after.index.duplicated().any() or not set(labels) <= set(before.index.tolist()):
        return 0.0
    if params["op"] not in OPS:
        return 0.0
    want = set(before.index[_wanted(before, params["column"], params["op"], params["value"])])
    got = set(labels)
    return len(want & got) / len(want | got) if want | got else 1.0


@_safe
def verify_aggregate(kind: str, before: Any, after: Any, params: Mapping[str, Any]) -> float:
    """One row per distinct key; the totals conserved (``sum``: the sums add up to the
    column's total; ``mean``: the means weighted by their groups' counts do; ``count``:
    the counts add up to the rows); a group with numbers has a finite value, a ``mean`` in
    the column's range. The score is the key overlap times the share of sound rows, times 0
    when a total is not conserved."""
    if not _frames(before, after):
        return 0.0
    by, func = params["by"], params["func"]
    name = "count" if func == "count" else params["column"]
    if by not in after.columns or name not in after.columns or len(after.columns) != 2:
        return 0.0
    keys = [str(k) for k in after[by].tolist()]
    raw = [(str(k), v) for k, v in zip(before[by].tolist(), _vals(before, name, func), strict=True)]
    raw = [(k, v) for k, v in raw if k not in ("nan", "<NA>", "None")]
    if len(set(keys)) != len(keys):
        return 0.0
    present = {k for k, _ in raw}
    overlap = len(present & set(keys)) / len(present | set(keys)) if present | set(keys) else 1.0
    got = after[name].to_numpy(dtype=float)
    counted = Counter(k for k, v in raw if not math.isnan(v))
    numbers = [v for _, v in raw if not math.isnan(v)]
    lo, hi = min(numbers, default=0.0), max(numbers, default=0.0)
    sound = 0
    for k, v in zip(keys, got, strict=True):
        if func == "count":
            sound += math.isfinite(v) and v >= 1
        elif func == "mean" and not counted[k]:
            sound += math.isnan(v)
        else:
            inside = func == "sum" or lo - 1e-9 <= v <= hi + 1e-9
            sound += math.isfinite(v) and inside
    weights = [1.0 if func != "mean" else counted[k] for k in keys]
    total = sum(w * v for w, v in zip(weights, got, strict=True) if w and math.isfinite(v))
    want = len(raw) if func == "count" else sum(numbers)
    conserved = math.isclose(total, want, rel_tol=1e-6, abs_tol=1e-6)
    return overlap * sound / max(1, len(keys)) * conserved


def _vals(before: pd.DataFrame, name: str, func: str) -> list[float]:
    if func == "count":
        return [1.0] * len(before)
    if is_text(before[name]):
        raise ValueError(f"{name} holds text")
    return [float(v) for v in before[name].to_numpy(dtype=float)]


@_safe
def verify_sort(kind: str, before: Any, after: Any, params: Mapping[str, Any]) -> float:
    """The same columns, and the column's values in the requested order (missing values
    last), cut to ``n``: the share of positions that hold the value they should."""
    if not _frames(before, after) or list(after.columns) != list(before.columns):
        return 0.0
    column, n = params["column"], params.get("n")
    descending = params.get("descending", True)
    values = before[column].to_numpy(dtype=float)
    present = sorted(values[~np.isnan(values)].tolist(), reverse=bool(descending))
    want = (present + [math.nan] * int(np.isnan(values).sum()))[: None if n is None else int(n)]
    got = after[column].to_numpy(dtype=float).tolist()
    if len(got) != len(want):
        return 0.0
    return sum(_close(a, b) for a, b in zip(got, want, strict=True)) / max(1, len(want))


def _png_ok(path: str) -> bool:
    from PIL import Image

    p = Path(path)
    if not p.is_file() or p.stat().st_size < 500:
        return False
    with Image.open(p) as im:
        if im.format != "PNG" or im.width < 200 or im.height < 150:
            return False
        lo, hi = zip(*im.convert("RGB").getextrema(), strict=True)
        return max(hi) - min(lo) > 50  # not blank


@_safe
def verify_plot(kind: str, before: Any, after: Any, params: Mapping[str, Any]) -> float:
    """A real PNG (at least 200x150, not blank), and one bar per input row with the row's
    label and height: the share of rows (and bars) that match, 0 without a good PNG."""
    if not isinstance(before, pd.DataFrame) or not isinstance(after, Chart):
        return 0.0
    x, y = params["x"], params["y"]
    if not _png_ok(after.path) or x not in after.data.columns or y not in after.data.columns:
        return 0.0

    def bars(df: pd.DataFrame) -> Counter[tuple[str, str]]:
        heights = df[y].to_numpy(dtype=float).tolist()
        return Counter(
            (str(k), "nan" if math.isnan(v) else f"{v:.6g}")
            for k, v in zip(df[x].tolist(), heights, strict=True)
        )

    want, got = bars(before), bars(after.data)
    matched = sum((want & got).values())
    return matched / max(1, len(before), len(after.data))


VERIFIERS: dict[str, _Check] = {
    "load": verify_load, "clean": verify_clean, "join": verify_join, "filter": verify_filter,
    "aggregate": verify_aggregate, "sort": verify_sort, "plot": verify_plot,
}  # fmt: skip
"""The check of each subtask type."""

"""Tabular data-wrangling tools for CoSTA* on pandas: load, clean, join, filter, aggregate,
sort and plot.

Every tool is a plain typed function ``fn(context, **params) -> new context`` that never
mutates its input. Three types flow through a chain: a :class:`DataSource` (a folder of CSV
files, the task's input), a ``pandas.DataFrame`` and a :class:`Chart`. Load tools turn a
``DataSource`` into a ``DataFrame``; clean, join, filter, aggregate and sort tools map a
``DataFrame`` to a ``DataFrame``; plot tools turn a ``DataFrame`` into a ``Chart``. A loaded
frame carries its folder in ``df.attrs["source"]`` (every tool passes it on), so a join can
read the right-hand file and a plot knows where to write its PNG.

The tools serving one subtask type agree whenever they succeed, but differ in cost and in
what input they survive: the cheap ones fail, loudly or silently, on dirty input that the
robust ones handle (each docstring says which). The checks in :mod:`.verify` catch the
silent failures. The annotations are evaluated at import (no ``from __future__ import
annotations``), so a generic domain reads the input and output types from them.
"""

import csv
import difflib
import io
import math
import operator
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from toolpath.errors import ToolArgumentsError, ToolError

SOURCE = "source"
"""The ``DataFrame.attrs`` key that holds the folder a frame was loaded from."""
DELIMITERS = ",;\t|"
"""The delimiters :func:`sniff_delimiter` considers."""
MISSING = ("keep", "drop", "zero", "mean")
"""What a clean step does with missing values: leave them, drop their rows, fill 0, fill
the column's mean."""
OPS: dict[str, Callable[[Any, Any], Any]] = {
    "==": operator.eq, "!=": operator.ne, ">": operator.gt,
    ">=": operator.ge, "<": operator.lt, "<=": operator.le,
}  # fmt: skip
"""Filter operators."""
FUNCS = ("sum", "mean", "count")
"""Aggregations; ``count`` counts the rows of each group."""
NUMBER = r"([-+]?(?:\d[\d,]*(?:\.\d*)?|\.\d+))"
"""A number as written in a cell: sign, digits with thousands commas, decimals."""
MAX_BARS = 10
"""The most bars :func:`plot_pillow` draws."""


@dataclass(frozen=True)
class DataSource:
    """The task's input: a folder and the names of the CSV files in it."""

    folder: str
    files: tuple[str, ...] = ()


@dataclass(frozen=True, eq=False)
class Chart:
    """A bar chart written to ``path`` (PNG), and the data it shows: one row per bar, the
    columns ``x`` (labels) and ``y`` (heights), in the order drawn."""

    path: str
    data: pd.DataFrame
    x: str
    y: str
    title: str = ""


# --- shared helpers --------------------------------------------------------------------------


def column_of(df: pd.DataFrame, column: str) -> pd.Series:
    """``df[column]``, or a :class:`ToolArgumentsError` that lists the columns there are."""
    if not isinstance(df, pd.DataFrame):
        raise ToolArgumentsError(f"expected a DataFrame, got {type(df).__name__}")
    if column not in df.columns:
        raise ToolArgumentsError(f"no column {column!r}; the columns are {list(df.columns)}")
    return df[column]


def carry_attrs(before: pd.DataFrame, after: pd.DataFrame) -> pd.DataFrame:
    """``after`` with ``before``'s attrs (its source folder)."""
    after.attrs = dict(before.attrs)
    return after


def _path(source: DataSource, file: str) -> Path:
    path = Path(source.folder) / file
    if not path.is_file():
        raise ToolError(f"no file {file!r} in {source.folder}")
    return path


def _loaded(df: pd.DataFrame, source: DataSource) -> pd.DataFrame:
    df.attrs = {SOURCE: str(source.folder)}
    return df


def sniff_delimiter(header: str) -> str:
    """The delimiter a header line uses: whichever of :data:`DELIMITERS` it holds most of
    (a comma when it holds none)."""
    counts = [(header.count(d), -i, d) for i, d in enumerate(DELIMITERS)]
    best = max(counts)
    return best[2] if best[0] else ","


def data_lines(text: str) -> list[str]:
    """A CSV file's lines without blank lines and ``#`` comment lines."""
    return [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]


def number(value: Any) -> float:
    """The number written in ``value`` (``"$1,234.50"``, ``"EUR 12"``, ``" 7 "``), or NaN
    when it holds none."""
    if value is None or value is pd.NA:
        return math.nan
    if isinstance(value, int | float | np.number):
        return float(value)
    found = re.search(NUMBER, str(value))
    return float(found.group().replace(",", "")) if found else math.nan


def is_text(s: pd.Series) -> bool:
    """Whether a column holds text rather than numbers."""
    return not pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)


def norm_text(s: pd.Series) -> pd.Series:
    """Text values stripped and case-folded (missing values stay missing)."""
    return s.astype("string").str.strip().str.casefold()


# --- load: DataSource -> DataFrame -----------------------------------------------------------


def read_csv_fast(source: DataSource, file: str) -> pd.DataFrame:
    """pandas' C parser with its defaults. Fast, but a ``;``-delimited file comes back as one
    column, a comment line above the header garbles the frame, and a row with an extra
    trailing delimiter raises."""
    return _loaded(pd.read_csv(_path(source, file)), source)


def read_csv_sniff(source: DataSource, file: str) -> pd.DataFrame:
    """pandas' python parser, sniffing the delimiter from the first line: reads ``;`` files,
    but a comment line above the header still garbles it and a malformed row raises."""
    return _loaded(pd.read_csv(_path(source, file), sep=None, engine="python"), source)


def read_csv_comments(source: DataSource, file: str) -> pd.DataFrame:
    """pandas' C parser with the delimiter taken from the first line that is not a ``#``
    comment, and ``#`` lines skipped: cheap, and it reads ``;`` files and comment lines, but a
    malformed row still breaks it and a ``#`` inside a value cuts the row short."""
    path = _path(source, file)
    with path.open(encoding="utf-8-sig") as f:
        header = next((ln for ln in f if ln.strip() and not ln.lstrip().startswith("#")), "")
    df = pd.read_csv(path, sep=sniff_delimiter(header), comment="#", encoding="utf-8-sig")
    return _loaded(df, source)


def read_csv_robust(source: DataSource, file: str) -> pd.DataFrame:
    """Skip blank and ``#`` lines, take the delimiter from the header, and read with the
    python parser, trimming empty fields past the header's width from a malformed row
    (other malformed rows are skipped). The slowest load, and the one that survives."""
    text = _path(source, file).read_text(encoding="utf-8-sig")
    lines = data_lines(text)
    if not lines:
        raise ToolError(f"{file} has no header line")
    sep = sniff_delimiter(lines[0])
    width = len(next(csv.reader([lines[0]], delimiter=sep)))

    def trim(bad: list[str]) -> list[str] | None:
        return bad[:width] if not any(f.strip() for f in bad[width:]) else None

    body = io.StringIO("\n".join(lines))
    df = pd.read_csv(body, sep=sep, engine="python", on_bad_lines=trim, index_col=False)
    return _loaded(df, source)


# --- clean: DataFrame -> DataFrame -----------------------------------------------------------


def _finish_clean(df: pd.DataFrame, column: str, values: pd.Series, missing: str) -> pd.DataFrame:
    """Put the parsed ``values`` in ``column`` and handle its missing values; the index is
    kept (a dropped row's label is simply gone)."""
    if missing not in MISSING:
        raise ToolArgumentsError(f"missing must be one of {MISSING}, not {missing!r}")
    out = df.copy()
    out[column] = values.astype("float64")
    if missing == "drop":
        out = out[out[column].notna()]
    elif missing == "zero":
        out[column] = out[column].fillna(0.0)
    elif missing == "mean":
        out[column] = out[column].fillna(out[column].mean())
    return carry_attrs(df, out)


def to_numeric_coerce(df: pd.DataFrame, column: str, missing: str = "keep") -> pd.DataFrame:
    """``pd.to_numeric(errors="coerce")``: the cheapest parse. Text such as ``"$1,234.50"``
    silently becomes missing (and is then dropped or filled)."""
    values = pd.to_numeric(column_of(df, column), errors="coerce")
    return _finish_clean(df, column, values, missing)


def strip_currency(df: pd.DataFrame, column: str, missing: str = "keep") -> pd.DataFrame:
    """Remove ``$`` and thousands commas, then coerce: right for dollar amounts, but any
    other currency mark (``€``, ``£``, ``USD``) still becomes missing."""
    s = column_of(df, column)
    if is_text(s):
        s = s.astype("string").str.replace("$", "", regex=False).str.replace(",", "")
        s = s.str.strip()
    return _finish_clean(df, column, pd.to_numeric(s, errors="coerce"), missing)


def parse_numbers(df: pd.DataFrame, column: str, missing: str = "keep") -> pd.DataFrame:
    """Read the number in each cell with a regular expression, value by value (any currency
    mark, thousands commas, padding): slower, and right on everything the tasks hold."""
    s = column_of(df, column)
    values = pd.Series([number(v) for v in s.tolist()], index=s.index, dtype="float64")
    return _finish_clean(df, column, values, missing)


def extract_numbers(df: pd.DataFrame, column: str, missing: str = "keep") -> pd.DataFrame:
    """:func:`parse_numbers`' regular expression run over the column at once
    (``Series.str.extract``): cheaper on long columns, slower on short ones."""
    s = column_of(df, column)
    if is_text(s):
        found = s.astype("string").str.extract(NUMBER, expand=False).str.replace(",", "")
        s = pd.to_numeric(found, errors="coerce")
    return _finish_clean(df, column, s, missing)


# --- join: DataFrame -> DataFrame ------------------------------------------------------------


def right_table(df: pd.DataFrame, file: str, on: str) -> pd.DataFrame:
    """A join's right-hand file, read robustly from the folder ``df`` was loaded from."""
    folder = df.attrs.get(SOURCE) if isinstance(df, pd.DataFrame) else None
    if not folder:
        raise ToolError("the table does not say which folder it came from (attrs['source'])")
    right = read_csv_robust(DataSource(str(folder)), file)
    column_of(right, on)
    return right


def _merge_on(df: pd.DataFrame, right: pd.DataFrame, on: str, left_keys: list[Any]) -> pd.DataFrame:
    """Inner join of ``df`` (its keys rewritten as ``left_keys``) with ``right`` (its keys
    in its ``on`` column, already rewritten): left rows in order, with the right file's
    other columns; the key column keeps the left values."""
    table: dict[Any, int] = {}
    for i, k in enumerate(right[on].tolist()):
        if not pd.isna(k):
            table.setdefault(k, i)
    at = np.fromiter((table.get(k, -1) for k in left_keys), dtype=int, count=len(left_keys))
    return joined(df, right, on, np.flatnonzero(at >= 0), at[at >= 0])


def joined(
    df: pd.DataFrame, right: pd.DataFrame, on: str, left_rows: Any, right_rows: Any
) -> pd.DataFrame:
    """The joined frame from matched row positions: ``df``'s rows ``left_rows`` with the
    right file's other columns from its rows ``right_rows`` (the key keeps the left values)."""
    left = df.iloc[left_rows].reset_index(drop=True)
    extra = right.drop(columns=[on]).iloc[right_rows].reset_index(drop=True)
    return carry_attrs(df, pd.concat([left, extra], axis=1))


def merge_exact(df: pd.DataFrame, file: str, on: str) -> pd.DataFrame:
    """``DataFrame.merge`` on the raw keys: the cheapest join, but a key written
    differently in the right file (``" s01"`` for ``"S01"``) silently loses its rows."""
    right = right_table(df, file, on)
    column_of(df, on)
    out = df.merge(right, on=on, how="inner", suffixes=("", "right_table"))
    return carry_attrs(df, out.reset_index(drop=True))


def merge_normalized(df: pd.DataFrame, file: str, on: str) -> pd.DataFrame:
    """Join on stripped, case-folded keys: survives case and padding, not punctuation
    (``"S-01"`` for ``"S01"``)."""
    right = right_table(df, file, on)
    right[on] = norm_text(right[on])
    return _merge_on(df, right, on, norm_text(column_of(df, on)).tolist())


def merge_fuzzy(df: pd.DataFrame, file: str, on: str) -> pd.DataFrame:
    """Join on keys reduced, row by row in python, to case-folded letters and digits, with
    a ``difflib`` match (similarity >= 0.8) for a key still unmatched: the slowest and the
    most forgiving."""
    right = right_table(df, file, on)

    def squash(v: Any) -> str | None:
        return None if pd.isna(v) else re.sub(r"[\W_]+", "", str(v).casefold())

    right[on] = [squash(v) for v in right[on].tolist()]
    known = [k for k in right[on].tolist() if k is not None]
    close: dict[str, str | None] = {}
    keys = []
    for k in (squash(v) for v in column_of(df, on).tolist()):
        if k is not None and k not in known:
            if k not in close:
                near = difflib.get_close_matches(k, known, n=1, cutoff=0.8)
                close[k] = near[0] if near else None
            k = close[k]
        keys.append(k)
    return _merge_on(df, right, on, keys)


def merge_index(df: pd.DataFrame, file: str, on: str) -> pd.DataFrame:
    """``DataFrame.join`` against the right file indexed by its raw keys: as exact as
    :func:`merge_exact`, and a key repeated in the right file repeats the left row."""
    right = right_table(df, file, on).set_index(on)
    column_of(df, on)
    out = df.join(right, on=on, how="inner", rsuffix="_right")
    return carry_attrs(df, out.reset_index(drop=True))


# --- filter: DataFrame -> DataFrame ----------------------------------------------------------


def op_fn(op: str) -> Callable[[Any, Any], Any]:
    """The filter operator ``op`` stands for, or a :class:`ToolArgumentsError`."""
    if op not in OPS:
        raise ToolArgumentsError(f"op must be one of {list(OPS)}, not {op!r}")
    return OPS[op]


def value_for(s: pd.Series, value: Any) -> Any:
    """A filter's value as the column compares it: text for text, else a number."""
    if is_text(s):
        return str(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ToolArgumentsError(f"{value!r} is not a number to compare {s.name!r} with") from None


def filter_query(df: pd.DataFrame, column: str, op: str, value: Any) -> pd.DataFrame:
    """``DataFrame.query``: cheap, but raises on a column name with a space, and compares
    text exactly (``" Online"`` is not ``"online"``)."""
    op_fn(op)
    column_of(df, column)
    return carry_attrs(df, df.query(f"{column} {op} {value!r}"))


def filter_mask(df: pd.DataFrame, column: str, op: str, value: Any) -> pd.DataFrame:
    """A boolean mask with the raw values: any column name, but text still compares
    exactly. Missing values never pass."""
    s = column_of(df, column)
    mask = op_fn(op)(s, value_for(s, value)) & s.notna()
    return carry_attrs(df, df[mask.to_numpy(dtype=bool)])


def filter_normalized(df: pd.DataFrame, column: str, op: str, value: Any) -> pd.DataFrame:
    """A boolean mask that compares text stripped and case-folded (numbers as numbers):
    the costliest filter, and the one that matches ``" ONLINE "`` to ``"online"``. Missing
    values never pass."""
    s = column_of(df, column)
    if is_text(s):
        left: pd.Series = norm_text(s)
        right: Any = str(value).strip().casefold()
    else:
        left, right = s, value_for(s, value)
    mask = op_fn(op)(left, right).fillna(False) & s.notna()
    return carry_attrs(df, df[mask.to_numpy(dtype=bool)])


def filter_loop(df: pd.DataFrame, column: str, op: str, value: Any) -> pd.DataFrame:
    """A python loop over the values, text stripped and case-folded: exact like
    :func:`filter_normalized`, with no vectorised set-up (cheaper on small frames, dearer
    on long ones)."""
    s = column_of(df, column)
    test, target = op_fn(op), value_for(s, value)
    text = is_text(s)
    if text:
        target = str(target).strip().casefold()
    keep = []
    for v in s.tolist():
        if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
            keep.append(False)
        else:
            keep.append(bool(test(str(v).strip().casefold() if text else float(v), target)))
    return carry_attrs(df, df[np.array(keep, dtype=bool)])


# --- aggregate: DataFrame -> DataFrame -------------------------------------------------------


def agg_input(
    df: pd.DataFrame, by: str, func: str, column: str | None
) -> tuple[pd.Series, pd.Series | None, str]:
    """The key column, the value column (None for count) and the output column's name."""
    keys = column_of(df, by)
    if func not in FUNCS:
        raise ToolArgumentsError(f"func must be one of {FUNCS}, not {func!r}")
    if func == "count":
        return keys, None, "count"
    if not column:
        raise ToolArgumentsError(f"{func} needs the column to aggregate")
    if column == by:
        raise ToolArgumentsError(f"cannot {func} the group column {by!r} itself")
    values = column_of(df, column)
    if is_text(values):
        raise ToolError(f"column {column!r} holds text: clean it into numbers first")
    return keys, values, column


def aggregate_bincount(
    df: pd.DataFrame, by: str, func: str, column: str | None = None
) -> pd.DataFrame:
    """``np.bincount`` over factorised keys: the cheapest, but one missing value makes its
    whole group's sum or mean missing."""
    keys, values, name = agg_input(df, by, func, column)
    codes, uniques = pd.factorize(keys, sort=True)
    ok = codes >= 0
    n = np.bincount(codes[ok], minlength=len(uniques))
    if values is None:
        result: Any = n
    else:
        sums = np.bincount(codes[ok], weights=values.to_numpy(float)[ok], minlength=len(uniques))
        result = sums if func == "sum" else sums / np.maximum(n, 1)
    return carry_attrs(df, pd.DataFrame({by: uniques, name: result}))


def aggregate_groupby(
    df: pd.DataFrame, by: str, func: str, column: str | None = None
) -> pd.DataFrame:
    """``DataFrame.groupby``: sorted groups, missing values skipped (a group with none has
    sum 0 and mean missing), ``count`` counts rows."""
    _, values, name = agg_input(df, by, func, column)
    groups = df.groupby(by, sort=True, dropna=True)
    if values is None:
        out = groups.size().reset_index(name="count")
    else:
        out = groups[name].agg(func).reset_index()
    return carry_attrs(df, out)


def aggregate_loop(df: pd.DataFrame, by: str, func: str, column: str | None = None) -> pd.DataFrame:
    """A pure-python loop over the rows: slow, with groupby's results."""
    keys, values, name = agg_input(df, by, func, column)
    vals = values.tolist() if values is not None else [None] * len(keys)
    rows: dict[Any, list[float]] = {}
    sizes: dict[Any, int] = {}
    for k, v in zip(keys.tolist(), vals, strict=True):
        if pd.isna(k):
            continue
        sizes[k] = sizes.get(k, 0) + 1
        bucket = rows.setdefault(k, [])
        if v is not None and not pd.isna(v):
            bucket.append(float(v))
    order = sorted(rows)
    if func == "count":
        result: list[Any] = [sizes[k] for k in order]
    elif func == "sum":
        result = [sum(rows[k]) for k in order]
    else:
        result = [sum(rows[k]) / len(rows[k]) if rows[k] else math.nan for k in order]
    out = pd.DataFrame({by: pd.Series(order, dtype=keys.dtype), name: result})
    return carry_attrs(df, out)


def aggregate_pivot(
    df: pd.DataFrame, by: str, func: str, column: str | None = None
) -> pd.DataFrame:
    """``DataFrame.pivot_table``: like groupby, except that a ``mean`` leaves out a group
    whose values are all missing."""
    _, values, name = agg_input(df, by, func, column)
    if values is None:
        out = df.pivot_table(index=by, aggfunc="size").rename("count").reset_index()
    else:
        out = df.pivot_table(index=by, values=name, aggfunc=func).reset_index()
    return carry_attrs(df, out[[by, name]])


# --- sort: DataFrame -> DataFrame ------------------------------------------------------------


def sort_numpy(
    df: pd.DataFrame, column: str, descending: bool = True, n: int | None = None
) -> pd.DataFrame:
    """``np.argsort`` reversed for descending order: cheap, but missing values then come
    first and crowd out the top rows."""
    order = np.argsort(column_of(df, column).to_numpy(dtype=float), kind="stable")
    if descending:
        order = order[::-1]
    out = df.iloc[order[: None if n is None else int(n)]]
    return carry_attrs(df, out.reset_index(drop=True))


def sort_frame(
    df: pd.DataFrame, column: str, descending: bool = True, n: int | None = None
) -> pd.DataFrame:
    """``DataFrame.sort_values`` (stable, missing values last), then the first ``n`` rows."""
    column_of(df, column)
    out = df.sort_values(column, ascending=not descending, na_position="last", kind="mergesort")
    out = out if n is None else out.head(int(n))
    return carry_attrs(df, out.reset_index(drop=True))


def sort_nlargest(
    df: pd.DataFrame, column: str, descending: bool = True, n: int | None = None
) -> pd.DataFrame:
    """``nlargest``/``nsmallest`` for a top ``n`` (a partial sort, cheap on long tables),
    ``sort_values`` otherwise: :func:`sort_frame`'s results at another cost."""
    column_of(df, column)
    if n is None:
        return sort_frame(df, column, descending)
    pick = df.nlargest if descending else df.nsmallest
    return carry_attrs(df, pick(int(n), column, keep="first").reset_index(drop=True))


# --- plot: DataFrame -> Chart ----------------------------------------------------------------


def _chart_data(df: pd.DataFrame, x: str, y: str) -> pd.DataFrame:
    column_of(df, x)
    if is_text(column_of(df, y)):
        raise ToolError(f"column {y!r} holds text: a bar chart needs numbers")
    return df[[x, y]].reset_index(drop=True)


def _chart_path(df: pd.DataFrame, x: str, y: str, file: str | None) -> Path:
    folder = Path(str(df.attrs.get(SOURCE) or tempfile.gettempdir()))
    name = file or re.sub(r"[^\w.-]+", "_", f"{y}_by_{x}") + ".png"
    return folder / name


def plot_matplotlib(
    df: pd.DataFrame, x: str, y: str, title: str = "", file: str | None = None
) -> Chart:
    """A matplotlib (Agg) bar chart of ``y`` by ``x``, one bar per row: slower, and it draws
    every row."""
    from matplotlib.figure import Figure

    data = _chart_data(df, x, y)
    path = _chart_path(df, x, y, file)
    fig = Figure(figsize=(8, 4.5), dpi=80)
    ax = fig.subplots()
    ax.bar([str(v) for v in data[x].tolist()], data[y].to_numpy(dtype=float), color="#4477aa")
    ax.set(xlabel=x, ylabel=y, title=title or f"{y} by {x}")
    ax.tick_params(axis="x", labelrotation=45)
    fig.tight_layout()
    fig.savefig(path, format="png")
    return Chart(str(path), data, x, y, title)


def plot_pillow(
    df: pd.DataFrame, x: str, y: str, title: str = "", file: str | None = None
) -> Chart:
    """Bars drawn straight with Pillow: fast, but it shows at most :data:`MAX_BARS` bars and
    skips missing values."""
    from PIL import Image, ImageDraw

    data = _chart_data(df, x, y).head(MAX_BARS)
    data = data[data[y].notna()].reset_index(drop=True)
    path = _chart_path(df, x, y, file)
    w, h, pad = 640, 360, 40
    img = Image.new("RGB", (w, h), "white")
    draw = ImageDraw.Draw(img)
    draw.text((pad, 10), title or f"{y} by {x}", fill="black")
    draw.line([(pad, h - pad), (w - 10, h - pad)], fill="black")
    top = max([abs(float(v)) for v in data[y].tolist()] + [1e-9])
    step = (w - pad - 10) / max(1, len(data))
    for i, (label, v) in enumerate(zip(data[x].tolist(), data[y].tolist(), strict=True)):
        x0 = pad + i * step + step * 0.15
        y0 = h - pad - (h - 2 * pad - 10) * abs(float(v)) / top
        draw.rectangle([x0, y0, x0 + step * 0.7, h - pad], fill=(68, 119, 170))
        draw.text((x0, h - pad + 5), str(label)[:10], fill="black")
    img.save(path, format="PNG")
    return Chart(str(path), data, x, y, title)

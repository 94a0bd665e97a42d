"""The same steps on a second engine: SQLite (the standard library's ``sqlite3``), in memory.

Each tool copies the frame into a fresh in-memory database, runs one statement, and reads
the result back, so it pays for the round trip that a pandas tool does not. What SQL does
differently is the point: ``lower()`` and ``trim()`` fold only ASCII letters and spaces,
``SUM`` over a group with no numbers is NULL where pandas gives 0, and a comparison with
NULL is never true. Row order is kept with a ``_row`` column the statements sort by.
"""

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pandas as pd

from toolpath.tools.tabular.ops import (
    agg_input,
    carry_attrs,
    column_of,
    is_text,
    joined,
    op_fn,
    right_table,
    value_for,
)

ROW = "_row"
"""The column that keeps each frame's row position inside the database."""


def _q(name: Any) -> str:
    """A quoted SQL identifier (column names may hold spaces or quotes)."""
    return '"' + str(name).replace('"', '""') + '"'


@contextmanager
def _db(**tables: pd.DataFrame) -> Iterator[sqlite3.Connection]:
    """An in-memory database holding ``tables``, each with its row positions in ``_row``."""
    con = sqlite3.connect(":memory:")
    try:
        for name, df in tables.items():
            df = df.reset_index(drop=True)
            df.insert(0, ROW, range(len(df)))
            df.to_sql(name, con, index=False)
        yield con
    finally:
        con.close()


def _rows(con: sqlite3.Connection, sql: str, params: tuple[Any, ...] = ()) -> list[int]:
    return [int(r[0]) for r in con.execute(sql, params).fetchall()]


def merge_sql(df: pd.DataFrame, file: str, on: str) -> pd.DataFrame:
    """An inner join in SQLite on ``lower(trim(key))``: survives case and padding, like the
    normalised pandas join, but not punctuation, and folds only ASCII letters. The first row
    of a key repeated in the right file is the one joined."""
    right = right_table(df, file, on)
    column_of(df, on)

    def key(table: str) -> str:
        return f"lower(trim(CAST({table}{_q(on)} AS TEXT)))"

    sql = (
        f"SELECT l.{ROW}, r.{ROW} FROM l JOIN r ON {key('l.')} = {key('r.')} "
        f"WHERE r.{ROW} IN (SELECT MIN({ROW}) FROM r GROUP BY {key('')}) ORDER BY l.{ROW}"
    )
    with _db(l=df[[on]], r=right[[on]]) as con:
        pairs = con.execute(sql).fetchall()
    return joined(df, right, on, [p[0] for p in pairs], [p[1] for p in pairs])


def filter_sql(df: pd.DataFrame, column: str, op: str, value: Any) -> pd.DataFrame:
    """A ``WHERE`` clause in SQLite: text compared trimmed and without ASCII case
    (``COLLATE NOCASE``), numbers as numbers; a missing value never passes."""
    op_fn(op)
    s = column_of(df, column)
    target = value_for(s, value)
    if is_text(s):
        left, target = f"trim({_q(column)}) COLLATE NOCASE", str(target).strip()
    else:
        left = _q(column)
    sql_op = "<>" if op == "!=" else "=" if op == "==" else op
    with _db(t=df[[column]]) as con:
        rows = _rows(con, f"SELECT {ROW} FROM t WHERE {left} {sql_op} ? ORDER BY {ROW}", (target,))
    return carry_attrs(df, df.iloc[rows])


def aggregate_sql(df: pd.DataFrame, by: str, func: str, column: str | None = None) -> pd.DataFrame:
    """``GROUP BY`` in SQLite, groups in key order, missing keys left out. ``count`` counts
    rows; ``sum`` of a group with no numbers is missing (pandas gives 0)."""
    keys, values, name = agg_input(df, by, func, column)
    fn = {"sum": "SUM", "mean": "AVG", "count": "COUNT"}[func]
    arg = "*" if values is None else "v"
    table = pd.DataFrame({"k": keys.to_numpy(), "v": None if values is None else values.to_numpy()})
    sql = f"SELECT k, {fn}({arg}) FROM t WHERE k IS NOT NULL GROUP BY k ORDER BY k"
    with _db(t=table) as con:
        got = con.execute(sql).fetchall()
    out = pd.DataFrame(
        {by: pd.Series([r[0] for r in got], dtype=keys.dtype if len(got) else object),
         name: pd.Series([r[1] for r in got], dtype="int64" if func == "count" else "float64")}
    )  # fmt: skip
    return carry_attrs(df, out)


def sort_sql(
    df: pd.DataFrame, column: str, descending: bool = True, n: int | None = None
) -> pd.DataFrame:
    """``ORDER BY ... NULLS LAST`` in SQLite (ties in row order), then ``LIMIT n``. Text
    sorts by its bytes, as pandas sorts it."""
    column_of(df, column)
    way = "DESC" if descending else "ASC"
    limit = "" if n is None else f" LIMIT {int(n)}"
    sql = f"SELECT {ROW} FROM t ORDER BY {_q(column)} {way} NULLS LAST, {ROW}{limit}"
    with _db(t=df[[column]]) as con:
        rows = _rows(con, sql)
    return carry_attrs(df, df.iloc[rows].reset_index(drop=True))

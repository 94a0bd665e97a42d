"""Synthetic tabular data-wrangling tasks with known ground truth, for CoSTA*'s tabular domain.

A task is a sales table (``sales.csv``, ``orders.csv`` or ``transactions.csv``: order id,
month, store, product, channel, quantity and a money column) and a ``stores.csv`` lookup
(store id, region, city), and an instruction that chains 1-7 steps in a fixed order: load,
clean, join, filter, aggregate, sort, plot ("Load sales.csv, parse the amount column as
numbers, join it with stores.csv on store_id, keep the rows where region is North, total the
amount by month and plot it as a bar chart."). A task is stored as the few numbers that
generate its rows (:class:`TableData`), so it is small JSON; :meth:`TabularTask.materialize`
writes the files, dirty at known rates (see :func:`_dirt`): ``;`` delimiters, a comment
line above the header, rows with a stray trailing delimiter, money written as text with
currency marks and thousands commas, missing values, store keys written differently in
``stores.csv``, column names with spaces, text values with stray case and padding.
:meth:`TabularTask.check` decides success exactly from the clean rows the generator knows.
"""

from __future__ import annotations

import csv
import io
import itertools
import math
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from toolpath.errors import ConfigError
from toolpath.tools.tabular.ops import Chart, DataSource
from toolpath.tools.tabular.registry import REFERENCE, SERVES, call
from toolpath.tools.tabular.verify import VERIFIERS

PRODUCTS = (
    "apples", "bananas", "bread", "butter", "cheese", "coffee", "eggs", "flour", "honey",
    "juice", "milk", "oats", "pasta", "rice", "salt", "sugar", "tea", "yogurt",
)  # fmt: skip
CITIES = ("Leeds", "York", "Bath", "Derby", "Exeter", "Hull", "Oxford", "Wells")
REGIONS = ("North", "South", "East", "West")
CHANNELS = ("online", "retail", "wholesale")
ORDER = ("load", "clean", "join", "filter", "aggregate", "sort", "plot")
"""The order steps come in; a task's chain is a subsequence that starts with load."""
STORES_FILE = "stores.csv"


@dataclass
class TableData:
    """Everything needed to write a task's files: the rows come from ``seed``, the rest
    names the columns and the dirt."""

    seed: int
    file: str
    rows: int
    months: int
    stores: int
    products: int
    value: str  # the money column's name
    channel: str  # "channel", or "sales channel"
    quantity: str  # "quantity", or "units sold"
    delimiter: str = ","
    preamble: bool = False  # a comment line above the header
    trailing: int = 0  # rows written with a stray trailing delimiter
    currency: str = ""  # "", "$" (dollar text) or "mixed" (other currency marks too)
    missing: float = 0.0  # share of money cells left empty
    key_noise: str = ""  # "", "case" (case and padding) or "punct" (punctuation)
    noisy: str = ""  # the text column ("channel" or "region") given stray case and padding
    noisy_value: str = ""  # the value of it that is sure to be written differently

    def names(self) -> dict[str, str]:
        """Canonical field -> column name in the file."""
        return {"order_id": "order_id", "month": "month", "store_id": "store_id",
                "product": "product", "channel": self.channel, "quantity": self.quantity,
                "value": self.value, "region": "region", "city": "city"}  # fmt: skip

    def records(self) -> list[dict[str, Any]]:
        """The clean rows (``value`` is None where missing)."""
        rng, n = np.random.default_rng([self.seed, 0]), self.rows
        value = np.round(rng.uniform(5, 2500, n), 2).tolist()
        missing = (rng.random(n) < self.missing).tolist()
        month = rng.integers(self.months, size=n).tolist()
        store = rng.integers(self.stores, size=n).tolist()
        product = rng.integers(self.products, size=n).tolist()
        channel = rng.integers(len(CHANNELS), size=n).tolist()
        quantity = rng.integers(1, 21, size=n).tolist()
        return [
            {"order_id": 1001 + i, "month": f"2024-{month[i] + 1:02d}",
             "store_id": f"S{store[i] + 1:02d}", "product": PRODUCTS[product[i]],
             "channel": CHANNELS[channel[i]], "quantity": quantity[i],
             "value": None if missing[i] else value[i]}
            for i in range(n)
        ]  # fmt: skip

    def store_table(self) -> dict[str, dict[str, str]]:
        """Store id -> its region and city."""
        rng = np.random.default_rng([self.seed, 1])
        regions = [REGIONS[i % len(REGIONS)] for i in rng.permutation(self.stores)]
        cities = rng.permutation(len(CITIES))[: self.stores]
        return {
            f"S{i + 1:02d}": {"region": regions[i], "city": CITIES[int(cities[i])]}
            for i in range(self.stores)
        }


def _variant(rng: np.random.Generator, v: str, kinds: Sequence[str]) -> str:
    """``v`` written differently (another case, padding, punctuation), never as ``v``."""
    options = {
        "case": [v.lower(), v.upper(), f" {v}", f"{v} ", f" {v.lower()} ", v.title()],
        "punct": [f"{v[0]}-{v[1:]}", f"{v[0]}_{v[1:]}", f"{v[0].lower()}.{v[1:]}", f"{v[0]} {v[1:]}"],
    }  # fmt: skip
    pool = [o for k in kinds for o in options[k] if o != v]
    return pool[int(rng.integers(len(pool)))]


def _money(v: float, u: Sequence[float], currency: str) -> str:
    """A money cell; ``u`` is three uniform draws that pick its form."""
    if not currency or u[0] < 0.4:
        return f"{v:.2f}"
    marks = ["$"] if currency == "$" else ["$", "€", "£", "USD "]
    text = f"{marks[int(u[1] * len(marks))]}{v:,.2f}"
    return f" {text} " if u[2] < 0.1 else text


@dataclass
class TabularTask:
    """One task: the instruction, the ground-truth subtasks and how to write its data."""

    id: str
    instruction: str
    subtasks: list[dict[str, Any]]
    data: TableData

    def to_json(self) -> dict[str, Any]:
        """Plain JSON data; :meth:`from_json` restores the task."""
        return asdict(self)

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> TabularTask:
        return cls(d["id"], d["instruction"], list(d["subtasks"]), TableData(**d["data"]))

    @property
    def types(self) -> list[str]:
        return [s["type"] for s in self.subtasks]

    def materialize(self, folder: str | Path) -> DataSource:
        """Write the task's CSV files (dirty as :attr:`data` says) into ``folder``."""
        d, root = self.data, Path(folder)
        root.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng([d.seed, 2])
        names = d.names()
        cols = ["order_id", "month", "store_id", "product", "channel", "quantity", "value"]
        buf = io.StringIO()
        writer = csv.writer(buf, delimiter=d.delimiter, lineterminator="\n")
        writer.writerow([names[c] for c in cols])
        draws = rng.random((d.rows, 5)).tolist()
        for r, u in zip(d.records(), draws, strict=True):
            v = r["value"]
            cells = {**r, "value": _money(v, u, d.currency) if v is not None else ""}
            if v is None:
                cells["value"] = ["", "N/A", "NA"][int(u[0] * 3)]
            if (
                d.noisy == "channel"
                and (r["channel"] == d.noisy_value or u[3] < 0.3)
                and u[4] < 0.5
            ):
                cells["channel"] = _variant(rng, r["channel"], ["case"])
            writer.writerow([cells[c] for c in cols])
        lines = buf.getvalue().splitlines()
        for i in rng.choice(np.arange(1, len(lines)), size=d.trailing, replace=False):
            lines[int(i)] += d.delimiter
        head = "# Exported from the point-of-sale system on 2024-07-01\n" if d.preamble else ""
        (root / d.file).write_text(head + "\n".join(lines) + "\n", encoding="utf-8")
        self._write_stores(root, rng)
        return DataSource(str(root), (d.file, STORES_FILE))

    def _write_stores(self, root: Path, rng: np.random.Generator) -> None:
        d, table = self.data, self.data.store_table()
        keys = list(table)
        noisy_keys = {keys[int(rng.integers(len(keys)))]} if d.key_noise else set()
        noisy_keys |= {k for k in keys if d.key_noise and rng.random() < 0.5}
        target = [k for k in keys if table[k]["region"] == d.noisy_value]
        noisy_regions = {target[0]} if d.noisy == "region" and target else set()
        noisy_regions |= {k for k in keys if d.noisy == "region" and rng.random() < 0.3}
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(["store_id", "region", "city"])
        for k, row in table.items():
            key = _variant(rng, k, [d.key_noise]) if k in noisy_keys else k
            region = _variant(rng, row["region"], ["case"]) if k in noisy_regions else row["region"]
            writer.writerow([key, region, row["city"]])
        (root / STORES_FILE).write_text(buf.getvalue(), encoding="utf-8")

    # --- ground truth -----------------------------------------------------------------------

    def truth(self) -> dict[str, Any]:
        """What the chain should produce, from the clean rows: ``rows`` (the records, in
        order when sorted), or ``groups`` (key -> value) and ``order`` (the keys in the
        output's order), and the output's column names."""
        d, names = self.data, self.data.names()
        field = {v: k for k, v in names.items()}
        rows = [dict(r) for r in d.records()]
        stores = d.store_table()
        out: dict[str, Any] = {"groups": None, "sorted": False, "cleaned": False}
        for st in self.subtasks:
            t, p = st["type"], st["params"]
            if t == "clean":
                rows = _clean(rows, p.get("missing") or "keep")
                out["cleaned"] = True
            elif t == "join":
                rows = [{**r, **stores[r["store_id"]]} for r in rows]
            elif t == "filter":
                rows = [r for r in rows if _passes(r[field[p["column"]]], p["op"], p["value"])]
            elif t == "aggregate":
                out["by"], out["name"] = p["by"], p.get("column") or "count"
                out["groups"] = _groups(rows, field[p["by"]], p["func"], field.get(p.get("column")))
                out["order"] = sorted(out["groups"])
            elif t == "sort":
                desc, n = p.get("descending", True), p.get("n")
                if out["groups"] is None:
                    key = field[p["column"]]
                    out["pool"] = rows  # ties at the cut: any of them may be kept
                    rows = _ordered(rows, lambda r, key=key: r[key], desc)[:n]
                    out["sort_column"] = p["column"]
                else:
                    out["order"] = _ordered(out["order"], out["groups"].get, desc)[:n]
                out["sorted"] = True
        out["rows"] = rows
        return out

    def check(self, final: Any) -> bool:
        """Whether ``final`` (the last step's DataFrame or Chart) is what the instruction
        asks for."""
        try:
            return self._check(final)
        except (KeyError, ValueError, TypeError, AttributeError, IndexError, OSError):
            return False

    def _check(self, final: Any) -> bool:
        want = self.truth()
        if "plot" in self.types:
            if not isinstance(final, Chart) or not Path(final.path).is_file():
                return False
            frame, (by, name) = final.data, (final.x, final.y)
        elif not isinstance(final, pd.DataFrame):
            return False
        else:
            frame, by, name = final, want.get("by", ""), want.get("name", "")
        if want["groups"] is not None:
            keys = [str(k).strip() for k in frame[by].tolist()]
            values = frame[name].to_numpy(dtype=float).tolist()
            order = want["order"]
            if by != want["by"] or name != want["name"] or len(keys) != len(order):
                return False
            if want["sorted"] and not all(
                _close(v, want["groups"][k]) for v, k in zip(values, order, strict=True)
            ):
                return False
            if not want["sorted"] and keys != order:
                return False
            return all(
                _close(v, want["groups"].get(k, math.inf))
                for k, v in zip(keys, values, strict=True)
            )
        return self._check_rows(frame, want)

    def _check_rows(self, frame: pd.DataFrame, want: dict[str, Any]) -> bool:
        d, names = self.data, self.data.names()
        rows = want["rows"]
        ids = [int(i) for i in frame["order_id"].tolist()]
        by_id = {r["order_id"]: r for r in want.get("pool", rows)}
        if len(ids) != len(rows) or len(set(ids)) != len(ids) or not set(ids) <= set(by_id):
            return False
        if self.types == ["load"]:
            cols = ["order_id", "month", "store_id", "product", "channel", "quantity", "value"]
            return list(frame.columns) == [names[c] for c in cols]
        if want["sorted"]:
            got = frame[want["sort_column"]].to_numpy(dtype=float).tolist()
            key = {v: k for k, v in names.items()}[want["sort_column"]]
            if not all(_close(g, _num(r[key])) for g, r in zip(got, rows, strict=True)):
                return False
        if want["cleaned"]:
            got = frame[d.value].to_numpy(dtype=float).tolist()
            if not all(_close(g, _num(by_id[i]["value"])) for g, i in zip(got, ids, strict=True)):
                return False
        if "join" in self.types:
            regions = [str(v).strip().casefold() for v in frame["region"].tolist()]
            return regions == [by_id[i]["region"].casefold() for i in ids]
        return True


def _num(v: Any) -> float:
    return math.nan if v is None else float(v)


def _close(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-6)


def _clean(rows: list[dict[str, Any]], missing: str) -> list[dict[str, Any]]:
    values = [r["value"] for r in rows if r["value"] is not None]
    if missing == "drop":
        return [r for r in rows if r["value"] is not None]
    fill = {"zero": 0.0, "mean": sum(values) / max(1, len(values))}.get(missing)
    return [{**r, "value": fill} if r["value"] is None else r for r in rows]


def _passes(v: Any, op: str, target: Any) -> bool:
    if v is None:
        return False
    if isinstance(v, str):
        v, target = v.casefold(), str(target).strip().casefold()
    else:
        target = float(target)
    return bool({"==": v == target, "!=": v != target, ">": v > target, ">=": v >= target,
                 "<": v < target, "<=": v <= target}[op])  # fmt: skip


def _groups(rows: list[dict[str, Any]], by: str, func: str, col: str | None) -> dict[str, float]:
    groups: dict[str, list[Any]] = {}
    for r in rows:
        groups.setdefault(str(r[by]), []).append(r[col] if col else 1)
    out = {}
    for k, vs in groups.items():
        nums = [float(v) for v in vs if v is not None]
        if func == "count":
            out[k] = float(len(vs))
        elif func == "sum":
            out[k] = sum(nums)
        else:
            out[k] = sum(nums) / len(nums) if nums else math.nan
    return out


def _ordered(items: list[Any], key: Any, descending: bool) -> list[Any]:
    """Sorted by ``key``, missing (None or NaN) last."""
    present = [x for x in items if not math.isnan(_num(key(x)))]
    missing = [x for x in items if math.isnan(_num(key(x)))]
    return sorted(present, key=key, reverse=bool(descending)) + missing


def solve_reference(
    task: TabularTask, folder: str | Path, tools: Mapping[str, str] | None = None
) -> Any:
    """Write the task's files into ``folder`` and run its ground-truth subtasks with the
    most robust tool of each type (``tools`` overrides some types); the final context."""
    choice = {**REFERENCE, **(tools or {})}
    context: Any = task.materialize(folder)
    for st in task.subtasks:
        context = call(choice[st["type"]], context, st["params"])
    return context


# --- generation ------------------------------------------------------------------------------


def _chain(rng: np.random.Generator, budget: int) -> list[str]:
    """A chain of ``budget`` step types, starting with load; a plot needs an aggregate."""
    valid = [
        c
        for c in itertools.combinations(ORDER[1:], budget - 1)
        if "plot" not in c or "aggregate" in c
    ]
    return ["load", *valid[int(rng.integers(len(valid)))]]


def _pick(rng: np.random.Generator, options: Sequence[Any]) -> Any:
    return options[int(rng.integers(len(options)))]


def _dirt(rng: np.random.Generator, chain: list[str], file: str) -> TableData:
    """The table and its dirt. Rates: ``;`` 25%; comment line 15%; 1-3 rows with a trailing
    delimiter 15%; money as text 75% of tasks with a clean step (of these 60% dollars only,
    40% mixed marks); missing money 40% (always when the clean step fills or drops them);
    store keys in stores.csv 40% case/padding, 20% punctuation (tasks with a join); column
    names with spaces 30%."""
    spaced = rng.random() < 0.3
    value = _pick(rng, ["sale amount", "net revenue", "unit price"] if spaced else
                  ["amount", "revenue", "price"])  # fmt: skip
    currency = ""
    if "clean" in chain and rng.random() < 0.75:
        currency = "$" if rng.random() < 0.6 else "mixed"
    key_noise = str(_pick(rng, ["", "", "case", "case", "punct"])) if "join" in chain else ""
    return TableData(
        seed=int(rng.integers(2**31)), file=file, rows=int(rng.integers(1000, 10001)),
        months=int(rng.integers(3, 13)), stores=int(rng.integers(3, 9)),
        products=int(rng.integers(4, 19)), value=value,
        channel="sales channel" if spaced else "channel",
        quantity="units sold" if spaced else "quantity",
        delimiter=";" if rng.random() < 0.25 else ",", preamble=bool(rng.random() < 0.15),
        trailing=int(rng.integers(1, 4)) if rng.random() < 0.15 else 0, currency=currency,
        missing=float(rng.uniform(0.03, 0.1)) if rng.random() < 0.4 else 0.0,
        key_noise=key_noise,
    )  # fmt: skip


_SAY: dict[str, Any] = {
    "load": ["Load {file}", "Open {file}", "Read {file}"],
    "clean": ["parse the {column} column as numbers{missing}",
              "convert {column} to numbers{missing}", "turn the {column} text into numbers{missing}"],
    "join": ["join it with {file} on {on}", "merge in {file} by {on}",
             "look up each store in {file} (match on {on})"],
    "aggregate": {"sum": ["total the {column} by {by}", "sum {column} per {by}"],
                  "mean": ["compute the average {column} per {by}", "average {column} by {by}"],
                  "count": ["count the rows per {by}", "count the orders by {by}"]},
    "plot": ["plot it as a bar chart", "make a bar chart of it", "draw a bar chart of {y} by {x}"],
}  # fmt: skip
_MISSING = {
    "keep": "", "drop": " and drop the rows where it is missing",
    "zero": " (fill missing values with 0)", "mean": ", filling missing values with the column's mean",
}  # fmt: skip


def _say_filter(p: Mapping[str, Any]) -> str:
    c, op, v = p["column"], p["op"], p["value"]
    if c == "month":
        return f"keep the rows from {v} onwards"
    return {"==": f"keep the rows where {c} is {v}", "!=": f"drop the rows where {c} is {v}",
            ">": f"keep the rows where {c} is above {v}", ">=": f"keep the rows where {c} is at least {v}",
            "<": f"keep the rows where {c} is below {v}"}[op]  # fmt: skip


def _say_sort(p: Mapping[str, Any]) -> str:
    c, n, desc = p["column"], p.get("n"), p.get("descending", True)
    if n is None:
        return f"sort by {c} from {'highest to lowest' if desc else 'lowest to highest'}"
    return f"keep the top {n} by {c}" if desc else f"keep the {n} lowest by {c}"


def _task(rng: np.random.Generator, budget: int, task_id: str) -> TabularTask:
    chain = _chain(rng, budget)
    d = _dirt(rng, chain, str(_pick(rng, ["sales.csv", "orders.csv", "transactions.csv"])))
    names = d.names()
    stores = d.store_table()
    steps: list[tuple[str, dict[str, Any]]] = []
    filtered, by, out = "", "", ""
    for t in chain:
        p: dict[str, Any] = {}
        if t == "load":
            p = {"file": d.file}
        elif t == "clean":
            p = {"column": d.value, "missing": _pick(rng, ["keep", "drop", "zero", "mean"])}
            if p["missing"] != "keep" and not d.missing:
                d.missing = float(rng.uniform(0.03, 0.1))
        elif t == "join":
            p = {"file": STORES_FILE, "on": "store_id"}
        elif t == "filter":
            kinds = ["channel", "channel", "value", "quantity", "month"]
            kinds += ["region", "region"] if "join" in chain else []
            kind = _pick(rng, kinds)
            if kind in ("channel", "region"):
                pool = CHANNELS if kind == "channel" else sorted({s["region"] for s in stores.values()})  # fmt: skip
                op = "==" if kind == "region" or rng.random() < 0.7 else "!="
                p = {"column": names[kind], "op": op, "value": _pick(rng, pool)}
                filtered = kind
                if rng.random() < 0.35:
                    d.noisy, d.noisy_value = kind, p["value"]
            elif kind == "value":
                p = {"column": d.value, "op": _pick(rng, [">", ">=", "<"]),
                     "value": int(rng.integers(5, 21)) * 100}  # fmt: skip
            elif kind == "quantity":
                p = {"column": d.quantity, "op": ">=", "value": int(rng.integers(3, 16))}
            else:
                month = f"2024-{int(rng.integers(2, d.months + 1)):02d}"
                p = {"column": "month", "op": ">=", "value": month}
        elif t == "aggregate":
            keys = ["month", "store_id", "product", "channel"]
            keys += ["region", "city"] if "join" in chain else []
            by = names[_pick(rng, [k for k in keys if k != filtered])]
            func = _pick(rng, ["sum", "sum", "mean", "count"])
            p = {"by": by, "func": func}
            if func != "count":
                p["column"] = d.value if rng.random() < 0.7 else d.quantity
            out = p.get("column", "count")
        elif t == "sort":
            if out:
                p = {"column": out, "descending": bool(rng.random() < 0.8)}
                n = _pick(rng, [3, 5, None])
            else:
                p = {"column": d.value if rng.random() < 0.7 else d.quantity,
                     "descending": bool(rng.random() < 0.8)}  # fmt: skip
                n = _pick(rng, [5, 10])
            if n is not None:
                p["n"] = n
        else:
            p = {"x": by, "y": out}
        steps.append((t, p))
    phrases = []
    for t, p in steps:
        if t == "filter":
            phrases.append(_say_filter(p))
        elif t == "sort":
            phrases.append(_say_sort(p))
        elif t == "aggregate":
            phrases.append(_pick(rng, _SAY[t][p["func"]]).format(**p))
        else:
            fields = {**p, "missing": _MISSING.get(p.get("missing", "keep"), "")}
            phrases.append(str(_pick(rng, _SAY[t])).format(**fields))
    text = phrases[0]
    for i, ph in enumerate(phrases[1:], 1):
        last = i == len(phrases) - 1
        text += (" and " if last and len(phrases) > 2 else ", then " if last else ", ") + ph
    subtasks = [
        {"id": f"s{i + 1}", "type": t, "params": p, "parents": [f"s{i}"] if i else []}
        for i, (t, p) in enumerate(steps)
    ]
    return TabularTask(task_id, text + ".", subtasks, d)


def generate_tabular(n: int, seed: int = 0, max_subtasks: int = 6) -> list[TabularTask]:
    """``n`` tasks of 1..``max_subtasks`` steps (at most 7). Task ``i`` depends only on
    ``seed`` and ``i``. Seeds 0-99 are for testing; tune and measure on 1000 and up."""
    if not 1 <= max_subtasks <= len(ORDER):
        raise ConfigError(f"need 1 <= max_subtasks <= {len(ORDER)}")
    tasks = []
    for i in range(n):
        rng = np.random.default_rng([seed, i])
        budget = int(rng.integers(1, max_subtasks + 1))
        tasks.append(_task(rng, budget, f"tabular-{seed}-{i:04d}"))
    return tasks


def measure_priors(
    tasks: Sequence[TabularTask], folder: str | Path | None = None
) -> dict[str, dict[str, Any]]:
    """For every step of every task, run each tool of the step's type on the reference
    chain's input to that step: each tool's median wall seconds and the share of its steps
    that pass the step's verifier at 0.99 (a raised error fails). The chain then goes on
    from the reference tool's output. Keyed by tool name: ``{"type", "cost", "quality",
    "steps"}``."""
    times: dict[str, list[float]] = {}
    passed: dict[str, list[bool]] = {}
    kinds: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(folder or tmp)
        for task in tasks:
            context: Any = task.materialize(base / task.id)
            for st in task.subtasks:
                kind, params = st["type"], st["params"]
                for tool in SERVES[kind]:
                    kinds[tool] = kind
                    start = time.perf_counter()
                    try:
                        after = call(tool, context, params)
                    except Exception:
                        after = None
                    times.setdefault(tool, []).append(time.perf_counter() - start)
                    ok = after is not None and VERIFIERS[kind](kind, context, after, params) >= 0.99
                    passed.setdefault(tool, []).append(ok)
                context = call(REFERENCE[kind], context, params)
    return {
        t: {"type": kinds[t], "cost": float(np.median(times[t])),
            "quality": float(np.mean(passed[t])), "steps": len(passed[t])}
        for t in times
    }  # fmt: skip

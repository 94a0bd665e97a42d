"""CoSTA*'s tabular domain: the pandas tools, their verifiers, the task generator and
domain.yaml."""

from __future__ import annotations

import importlib
import inspect
import json
import math
import typing
from pathlib import Path
from typing import Any

import pytest

pd = pytest.importorskip("pandas", reason="the tabular domain needs pandas")
yaml = pytest.importorskip("yaml")

from toolpath.errors import ToolError  # noqa: E402
from toolpath.evals.costa.tabular_tasks import (  # noqa: E402
    TabularTask,
    generate_tabular,
    solve_reference,
)
from toolpath.tools.tabular import ops  # noqa: E402
from toolpath.tools.tabular.ops import Chart, DataSource  # noqa: E402
from toolpath.tools.tabular.registry import SERVES, call  # noqa: E402
from toolpath.tools.tabular.verify import VERIFIERS  # noqa: E402

SPEC = Path(ops.__file__).with_name("domain.yaml")
PASS = 0.99


def score(kind: str, before: Any, after: Any, params: dict[str, Any]) -> float:
    return VERIFIERS[kind](kind, before, after, params)


def write(folder: Path, name: str, text: str) -> DataSource:
    (folder / name).write_text(text)
    return DataSource(str(folder), (name,))


def frame(folder: Path, data: dict[str, list[Any]]) -> Any:
    df = pd.DataFrame(data)
    df.attrs["source"] = str(folder)
    return df


# --- load ------------------------------------------------------------------------------------

CLEAN_CSV = "id,region,amount\n1,North,10.5\n2,South,20\n3,North,\n"


def test_loaders_agree_on_a_clean_file(tmp_path: Path) -> None:
    src = write(tmp_path, "t.csv", CLEAN_CSV)
    frames = [call(t, src, {"file": "t.csv"}) for t in SERVES["load"]]
    for df in frames:
        assert list(df.columns) == ["id", "region", "amount"]
        assert df["id"].tolist() == [1, 2, 3] and df.attrs["source"] == str(tmp_path)
        assert df["amount"].tolist()[:2] == [10.5, 20.0] and math.isnan(df["amount"].iloc[2])
        assert score("load", src, df, {"file": "t.csv"}) == 1.0


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        (
            "id;region;amount\n1;North;10.5\n2;South;20\n",
            {"read_csv_comments", "read_csv_sniff", "read_csv_robust"},
        ),
        (
            "# exported today\nid,region,amount\n1,North,10.5\n2,South,20\n",
            {"read_csv_comments", "read_csv_robust"},
        ),
        ("id,region,amount\n1,North,10.5,\n2,South,20\n3,East,1\n", {"read_csv_robust"}),
    ],
    ids=["semicolon", "comment-line", "trailing-delimiter"],
)
def test_only_the_robust_loaders_survive_dirty_files(
    tmp_path: Path, text: str, ok: set[str]
) -> None:
    src = write(tmp_path, "t.csv", text)
    for tool in SERVES["load"]:
        try:
            df = call(tool, src, {"file": "t.csv"})
        except Exception:
            assert tool not in ok
            continue
        passed = score("load", src, df, {"file": "t.csv"}) >= PASS
        assert passed == (tool in ok), tool
        if passed:
            assert list(df.columns) == ["id", "region", "amount"]
            assert df["amount"].tolist()[:2] == [10.5, 20.0]
    with pytest.raises(ToolError, match="no file"):
        ops.read_csv_robust(src, "missing.csv")


# --- clean -----------------------------------------------------------------------------------

MONEY = ["$1,234.50", " 12 ", None, "7.25", "€3.00"]


def test_parse_numbers_reads_every_money_format_and_handles_missing(tmp_path: Path) -> None:
    df = frame(tmp_path, {"k": list("abcde"), "amount": MONEY})
    out = ops.parse_numbers(df, "amount")
    assert out["amount"].tolist()[:2] == [1234.5, 12.0] and math.isnan(out["amount"].iloc[2])
    assert out.attrs["source"] == str(tmp_path) and df["amount"].iloc[0] == "$1,234.50"
    assert ops.parse_numbers(df, "amount", "drop").index.tolist() == [0, 1, 3, 4]
    assert ops.parse_numbers(df, "amount", "zero")["amount"].tolist() == [1234.5, 12, 0, 7.25, 3]
    mean = (1234.5 + 12 + 7.25 + 3) / 4
    assert ops.parse_numbers(df, "amount", "mean")["amount"].iloc[2] == pytest.approx(mean)
    for missing in ("keep", "drop", "zero", "mean"):
        p = {"column": "amount", "missing": missing}
        assert score("clean", df, ops.parse_numbers(df, "amount", missing), p) == 1.0
    with pytest.raises(ToolError, match="missing must be"):
        ops.parse_numbers(df, "amount", "guess")


def test_cheap_cleaners_lose_currency_text_and_the_verifier_sees_it(tmp_path: Path) -> None:
    df = frame(tmp_path, {"amount": MONEY})
    coerced = ops.to_numeric_coerce(df, "amount")
    assert math.isnan(coerced["amount"].iloc[0]) and coerced["amount"].iloc[1] == 12.0
    stripped = ops.strip_currency(df, "amount")
    assert stripped["amount"].iloc[0] == 1234.5 and math.isnan(stripped["amount"].iloc[4])
    for missing in ("keep", "zero", "mean", "drop"):
        p = {"column": "amount", "missing": missing}
        assert score("clean", df, call("to_numeric_coerce", df, p), p) < PASS
        assert score("clean", df, call("strip_currency", df, p), p) < PASS
    dollars = frame(tmp_path, {"amount": ["$1,234.50", " 12 ", None]})
    p = {"column": "amount", "missing": "zero"}
    assert score("clean", dollars, call("strip_currency", dollars, p), p) == 1.0
    assert score("clean", dollars, dollars, p) == 0.0  # still text


# --- join ------------------------------------------------------------------------------------

STORES = "store_id,region\n s01,North\nS-02,South\nS03,East\n"


def test_joins_differ_in_the_key_noise_they_survive(tmp_path: Path) -> None:
    write(tmp_path, "stores.csv", STORES)
    df = frame(tmp_path, {"store_id": ["S01", "S02", "S03", "S01"], "n": [1, 2, 3, 4]})
    p = {"file": "stores.csv", "on": "store_id"}
    index, exact, normal, fuzzy, sql = (call(t, df, p) for t in SERVES["join"])
    pd.testing.assert_frame_equal(index, exact)
    pd.testing.assert_frame_equal(sql, normal)
    assert exact["n"].tolist() == [3] and exact["region"].tolist() == ["East"]
    assert normal["n"].tolist() == [1, 3, 4] and normal["region"].tolist() == [
        "North",
        "East",
        "North",
    ]
    assert fuzzy["n"].tolist() == [1, 2, 3, 4]
    assert fuzzy["store_id"].tolist() == ["S01", "S02", "S03", "S01"]
    assert fuzzy["region"].tolist() == ["North", "South", "East", "North"]
    assert list(fuzzy.columns) == ["store_id", "n", "region"] and fuzzy.attrs == df.attrs
    assert score("join", df, fuzzy, p) == 1.0
    assert score("join", df, normal, p) == 0.75 and score("join", df, exact, p) == 0.25
    doubled = pd.concat([fuzzy, fuzzy.iloc[[0]]], ignore_index=True)
    assert score("join", df, doubled, p) < PASS  # a row from nowhere
    with pytest.raises(ToolError, match="which folder"):
        ops.merge_fuzzy(pd.DataFrame({"store_id": ["S01"]}), "stores.csv", "store_id")


# --- filter ----------------------------------------------------------------------------------


def test_filters_differ_on_spaced_names_and_noisy_text(tmp_path: Path) -> None:
    df = frame(
        tmp_path,
        {"sales channel": ["online", " Online", "retail", "ONLINE "], "qty": [1, 5, 9, None]},
    )
    p = {"column": "sales channel", "op": "==", "value": "online"}
    with pytest.raises(Exception):  # noqa: B017 - pandas raises a SyntaxError or a ValueError
        ops.filter_query(df, **p)
    assert ops.filter_mask(df, **p).index.tolist() == [0]
    for tool in ("filter_normalized", "filter_sql", "filter_loop"):
        assert call(tool, df, p).index.tolist() == [0, 1, 3], tool
    assert score("filter", df, ops.filter_normalized(df, **p), p) == 1.0
    assert score("filter", df, ops.filter_mask(df, **p), p) == pytest.approx(1 / 3)
    ne = {**p, "op": "!="}
    assert ops.filter_normalized(df, **ne).index.tolist() == [2]
    num = {"column": "qty", "op": ">=", "value": 5}
    plain = df.rename(columns={"sales channel": "channel"})
    for tool in SERVES["filter"]:
        out = call(tool, plain, num)
        assert out.index.tolist() == [1, 2] and score("filter", plain, out, num) == 1.0
    assert score("filter", plain, plain.iloc[[1, 2, 2]], num) == 0.0


# --- aggregate -------------------------------------------------------------------------------


def test_aggregates_agree_without_missing_values_and_bincount_breaks_with_them(
    tmp_path: Path,
) -> None:
    full = frame(tmp_path, {"k": ["b", "a", "b", "a", "c"], "v": [1.0, 2.0, 3.0, 4.0, 5.0]})
    holed = frame(tmp_path, {"k": ["b", "a", "b", "a", "c"], "v": [1.0, 2.0, None, 4.0, 5.0]})
    want = {"sum": [6.0, 1.0, 5.0], "mean": [3.0, 1.0, 5.0], "count": [2, 2, 1]}
    for func, values in want.items():
        p = {"by": "k", "func": func, "column": "v"}
        name = "v" if func != "count" else "count"
        for tool in ("aggregate_groupby", "aggregate_loop", "aggregate_sql", "aggregate_pivot"):
            out = call(tool, holed, p)
            assert list(out.columns) == ["k", name] and out["k"].tolist() == ["a", "b", "c"]
            assert out[name].tolist() == values and score("aggregate", holed, out, p) == 1.0
        for tool in SERVES["aggregate"]:
            out = call(tool, full, p)
            assert score("aggregate", full, out, p) == 1.0 and out["k"].tolist() == ["a", "b", "c"]
        broken = ops.aggregate_bincount(holed, **p)
        assert (score("aggregate", holed, broken, p) < PASS) == (func != "count")
    p = {"by": "k", "func": "sum", "column": "v"}
    wrong = pd.DataFrame({"k": ["a", "b", "c"], "v": [6.0, 1.0, 6.0]})
    assert score("aggregate", holed, wrong, p) == 0.0  # the totals do not add up
    assert score("aggregate", holed, wrong.iloc[:2], p) == 0.0
    with pytest.raises(ToolError, match="holds text"):
        ops.aggregate_groupby(frame(tmp_path, {"k": ["a"], "v": ["$1"]}), "k", "sum", "v")


# --- sort ------------------------------------------------------------------------------------


def test_numpy_sort_puts_missing_values_first_when_descending(tmp_path: Path) -> None:
    df = frame(tmp_path, {"id": [1, 2, 3, 4], "v": [3.0, None, 5.0, 1.0]})
    p: dict[str, Any] = {"column": "v", "descending": True, "n": 2}
    good = ops.sort_frame(df, **p)
    assert good["id"].tolist() == [3, 1] and score("sort", df, good, p) == 1.0
    bad = ops.sort_numpy(df, **p)
    assert bad["id"].tolist() == [2, 3] and score("sort", df, bad, p) < PASS
    up = {"column": "v", "descending": False}
    for tool in SERVES["sort"]:
        out = call(tool, df, up)
        assert out["id"].tolist() == [4, 1, 3, 2] and score("sort", df, out, up) == 1.0


# --- plot ------------------------------------------------------------------------------------


def test_plots_write_pngs_and_pillow_caps_the_bars(tmp_path: Path) -> None:
    small = frame(tmp_path, {"m": ["a", "b", "c"], "v": [3.0, 1.0, 2.0]})
    big = frame(
        tmp_path, {"m": [f"k{i:02d}" for i in range(12)], "v": [float(i) for i in range(12)]}
    )
    p = {"x": "m", "y": "v"}
    for tool in SERVES["plot"]:
        chart = call(tool, small, {**p, "file": f"{tool}.png"})
        assert isinstance(chart, Chart) and Path(chart.path) == tmp_path / f"{tool}.png"
        assert chart.data["m"].tolist() == ["a", "b", "c"] and score("plot", small, chart, p) == 1.0
    pillow, mpl = ops.plot_pillow(big, **p), ops.plot_matplotlib(big, **p)
    assert len(pillow.data) == ops.MAX_BARS and len(mpl.data) == 12
    assert score("plot", big, mpl, p) == 1.0 and score("plot", big, pillow, p) < PASS
    Path(mpl.path).write_bytes(b"not a png")
    assert score("plot", big, mpl, p) == 0.0
    assert score("plot", big, big, p) == 0.0


# --- the generator ---------------------------------------------------------------------------


def test_generator_is_deterministic_and_json_round_trips() -> None:
    a, b = generate_tabular(12, seed=3), generate_tabular(12, seed=3)
    assert [t.to_json() for t in a] == [t.to_json() for t in b]
    assert [t.to_json() for t in generate_tabular(5, seed=3)] == [t.to_json() for t in a[:5]]
    assert [t.instruction for t in generate_tabular(12, seed=4)] != [t.instruction for t in a]
    for t in a:
        assert TabularTask.from_json(json.loads(json.dumps(t.to_json()))) == t
        assert t.instruction.split()[0] in ("Load", "Open", "Read") and t.instruction.endswith(".")
        assert t.types[0] == "load" and 1 <= len(t.subtasks) <= 6
        assert [s["parents"] for s in t.subtasks] == [[]] + [
            [f"s{i}"] for i in range(1, len(t.subtasks))
        ]
    assert all(len(t.subtasks) <= 2 for t in generate_tabular(20, seed=5, max_subtasks=2))


def test_materialize_writes_the_same_dirty_files(tmp_path: Path) -> None:
    tasks = generate_tabular(60, seed=7)
    data = [t.data for t in tasks]
    assert any(d.delimiter == ";" for d in data) and any(d.preamble for d in data)
    assert any(d.currency == "mixed" for d in data) and any(d.key_noise == "punct" for d in data)
    task = next(t for t in tasks if t.data.currency and t.data.key_noise)
    src = task.materialize(tmp_path / "a")
    task.materialize(tmp_path / "b")
    for name in src.files:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    text = (tmp_path / "a" / task.data.file).read_text()
    assert "$" in text and task.data.value in text


def test_reference_solutions_pass_their_checks(tmp_path: Path) -> None:
    tasks = generate_tabular(30, seed=0)
    assert len({tuple(t.types) for t in tasks}) > 10
    for task in tasks:
        assert task.check(solve_reference(task, tmp_path / task.id)), task.instruction


def test_check_rejects_wrong_results(tmp_path: Path) -> None:
    tasks = generate_tabular(40, seed=0)
    grouped = next(t for t in tasks if t.types[-1] == "aggregate")
    final = solve_reference(grouped, tmp_path / "g")
    name = final.columns[1]
    assert grouped.check(final) and not grouped.check(final.iloc[1:])
    wrong = final.copy()
    wrong.loc[0, name] = wrong.loc[0, name] + 1
    assert not grouped.check(wrong) and not grouped.check(None)
    plotted = next(t for t in tasks if t.types[-1] == "plot")
    chart = solve_reference(plotted, tmp_path / "p")
    assert plotted.check(chart)
    assert not plotted.check(Chart(chart.path, chart.data.iloc[:-1], chart.x, chart.y))
    rows = next(t for t in tasks if t.types[-1] in ("filter", "join", "clean"))
    out = solve_reference(rows, tmp_path / "r")
    assert rows.check(out) and not rows.check(out.iloc[:-1])
    loaded = next(t for t in tasks if t.types == ["load"] and t.data.delimiter == ";")
    src = loaded.materialize(tmp_path / "l")
    assert not loaded.check(ops.read_csv_fast(src, loaded.data.file))
    assert loaded.check(ops.read_csv_robust(src, loaded.data.file))


# --- domain.yaml -----------------------------------------------------------------------------


def _resolve(path: str) -> Any:
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def test_domain_spec_names_real_functions_with_the_expected_types() -> None:
    spec = yaml.safe_load(SPEC.read_text())
    assert spec["name"] == "tabular" and spec["start_types"] == ["DataSource"]
    assert isinstance(spec["example"], str) and '"subtasks"' in spec["example"]
    kinds = spec["subtasks"]
    assert set(kinds) == set(SERVES)
    for kind, sub in kinds.items():
        assert sub["params"]["type"] == "object" and set(sub["params"]["required"]) <= set(
            sub["params"]["properties"]
        )
        assert _resolve(sub["verifier"]) is VERIFIERS[kind] and 0 < sub["pass_at"] <= 1
    served: dict[str, int] = {}
    io = {"load": ("DataSource", "DataFrame"), "plot": ("DataFrame", "Chart")}
    for tool in spec["tools"]:
        fn = _resolve(tool["function"])
        hints = typing.get_type_hints(fn)
        first = next(iter(inspect.signature(fn).parameters))
        for kind, (cost, quality) in tool["serves"].items():
            served[kind] = served.get(kind, 0) + 1
            assert cost > 0 and 0 <= quality <= 1
            want = io.get(kind, ("DataFrame", "DataFrame"))
            assert (hints[first].__name__, hints["return"].__name__) == want, fn.__name__
            params = set(kinds[kind]["params"]["properties"])
            assert set(inspect.signature(fn).parameters) - {first} <= params, fn.__name__
    assert all(served.get(kind, 0) >= 2 for kind in kinds), served


def test_sql_and_pivot_aggregates_part_from_pandas_on_a_group_with_no_numbers(
    tmp_path: Path,
) -> None:
    df = frame(tmp_path, {"k": ["a", "a", "b"], "v": [1.0, 2.0, None]})
    p = {"by": "k", "func": "sum", "column": "v"}
    assert ops.aggregate_groupby(df, **p)["v"].tolist() == [3.0, 0.0]
    assert ops.aggregate_pivot(df, **p)["v"].tolist() == [3.0, 0.0]
    mean = {**p, "func": "mean"}
    assert ops.aggregate_pivot(df, **mean)["k"].tolist() == ["a"]  # b's group is gone
    assert score("aggregate", df, ops.aggregate_pivot(df, **mean), mean) < PASS
    got = call("aggregate_sql", df, p)
    assert got["k"].tolist() == ["a", "b"] and math.isnan(got["v"].iloc[1])
    with pytest.raises(ToolError, match="group column"):
        ops.aggregate_groupby(df, "k", "sum", "k")  # pandas raised "already exists"


def test_the_vectorised_number_parse_matches_the_loop(tmp_path: Path) -> None:
    df = frame(tmp_path, {"amt": ["$1,234.50", "EUR 12", " 7 ", None, "n/a", "-3.5"]})
    for missing in ("keep", "drop", "zero", "mean"):
        p = {"column": "amt", "missing": missing}
        want, got = ops.parse_numbers(df, **p), ops.extract_numbers(df, **p)
        pd.testing.assert_frame_equal(got, want)
        assert score("clean", df, got, p) == 1.0


def test_partial_and_sql_sorts(tmp_path: Path) -> None:
    df = frame(tmp_path, {"id": [1, 2, 3, 4, 5], "v": [3.0, None, 5.0, 1.0, 5.0]})
    top = {"column": "v", "descending": True, "n": 3}
    for tool in ("sort_nlargest", "sort_sql", "sort_frame"):
        assert call(tool, df, top)["id"].tolist() == [3, 5, 1], tool
    for n in (None, 2, 5):  # missing values last, as sort_values puts them
        for down in (True, False):
            p = {"column": "v", "descending": down, "n": n}
            want = ops.sort_frame(df, **p)
            pd.testing.assert_frame_equal(ops.sort_nlargest(df, **p), want)
            pd.testing.assert_frame_equal(call("sort_sql", df, p), want)

"""The BFCL tool-retrieval benchmark: derivation, files, and paraphrased queries (scripted)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path

import pytest

from toolpath.errors import ConfigError
from toolpath.evals.bfcl import derive_benchmark, paraphrase_queries, write_benchmark
from toolpath.evals.bfcl.retrieval import (
    PARAPHRASE_PROMPT,
    RetrievalBenchmark,
    leaked_words,
    name_words,
    write_queries,
)
from toolpath.llm.base import Message
from toolpath.llm.scripted import ScriptedModel
from toolpath.retrieval.evaluate import QueryCase, load_queries
from toolpath.tools.catalog import load_catalog

FIXTURE = Path(__file__).parent / "fixtures" / "bfcl"
EXTRA = Path(__file__).parent / "fixtures" / "bfcl_retrieval"
"""BFCL files of the multiple and parallel_multiple categories (test_bfcl_data needs
``FIXTURE`` to hold none: they are kept apart)."""
TOOLS = ["math_tools_power", "restaurant_book", "units_convert", "weather_get"]
TOOLS += ["currency_exchange", "adder"]


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """All five categories: the shared BFCL fixtures plus the two of ``EXTRA``."""
    root = tmp_path / "bfcl"
    shutil.copytree(FIXTURE, root)
    shutil.copytree(EXTRA, root, dirs_exist_ok=True)
    return root


@pytest.fixture
def bench(data: Path) -> RetrievalBenchmark:
    return derive_benchmark(data)


def test_derivation_counts_and_order(bench: RetrievalBenchmark) -> None:
    assert [t.name for t in bench.tools] == TOOLS  # first met first
    assert [c.id for c in bench.queries] == [
        "simple_python_0",
        "simple_python_1",
        "simple_python_2",
        "multiple_0",
        "multiple_1",
        "parallel_0",
        "parallel_1",
        "parallel_multiple_0",
        "parallel_multiple_1",
    ]
    stats = bench.stats
    assert stats["categories"] == {
        "simple": {"questions": 3, "queries": 3},
        "multiple": {"questions": 2, "queries": 2},
        "parallel": {"questions": 2, "queries": 2},
        "parallel_multiple": {"questions": 2, "queries": 2},
        "irrelevance": {"questions": 2, "queries": 0},
    }
    assert (stats["tools"], stats["queries"], stats["functions"]) == (6, 9, 15)
    assert (stats["multi_relevant"], stats["distractors"], stats["unknown_relevant"]) == (2, 0, 0)


def test_first_definition_wins_and_later_differing_ones_are_counted(
    bench: RetrievalBenchmark,
) -> None:
    book = next(t for t in bench.tools if t.name == "restaurant_book")
    assert book.description == "Reserve a table at a restaurant."  # simple's, not multiple's
    assert "time" in book.parameters["properties"]
    assert book.parameters["properties"]["party_size"]["type"] == "integer"
    assert bench.stats["duplicates"] == 9
    assert bench.stats["differing_duplicates"] == 1  # multiple_0's restaurant.book
    # BFCL's math_tools_power sanitizes like math_tools.power: merged into the first one
    assert bench.stats["name_clashes"] == 1
    power = bench.tools[0]
    assert power.description.startswith("Raise a whole number")
    assert bench.names["math_tools.power"] == bench.names["math_tools_power"] == power.name
    assert bench.names["weather.get"] == "weather_get"


def test_relevant_names(bench: RetrievalBenchmark) -> None:
    cases = {c.id: c for c in bench.queries}
    assert cases["simple_python_2"].query == "How many miles is 3.5 km?"  # the system text left out
    assert cases["simple_python_2"].relevant == ("units_convert",)
    assert cases["simple_python_1"].query == "Book a table for 4 at Luigi's in Boston, MA."
    assert cases["multiple_1"].relevant == ("currency_exchange",)  # not the other function offered
    assert cases["parallel_0"].relevant == ("weather_get",)  # two calls, one tool
    # several functions: distinct, in the order of the calls
    assert cases["parallel_multiple_0"].relevant == ("restaurant_book", "weather_get")
    assert cases["parallel_multiple_1"].relevant == ("adder", "math_tools_power")
    names = {t.name for t in bench.tools}
    assert all(set(c.relevant) <= names for c in bench.queries)


def test_irrelevance_adds_distractors_and_no_queries() -> None:
    bench = derive_benchmark(FIXTURE, categories=("simple", "irrelevance"))
    assert [t.name for t in bench.tools] == TOOLS[:4]  # weather.get comes from irrelevance
    assert not any(c.id and c.id.startswith("irrelevance") for c in bench.queries)
    assert bench.stats["categories"]["irrelevance"] == {"questions": 2, "queries": 0}
    assert bench.stats["distractors"] == 1
    only = derive_benchmark(FIXTURE, categories=("irrelevance",))
    assert [t.name for t in only.tools] == ["math_tools_power", "weather_get"]
    assert len(only.queries) == 0


def test_category_names_and_repeats(data: Path) -> None:
    bench = derive_benchmark(data, categories=("simple_python", "simple"))
    assert len(bench.queries) == 3  # the same file twice counts once
    with pytest.raises(ConfigError, match="live"):
        derive_benchmark(data, categories=("live_simple",))


def test_write_and_load_round_trip(bench: RetrievalBenchmark, tmp_path: Path) -> None:
    paths = write_benchmark(bench, tmp_path / "out")
    assert set(paths) == {"catalog", "queries", "stats"}
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "catalog.json",
        "queries.jsonl",
        "stats.json",
    ]  # no temporary files left behind
    catalog = load_catalog(paths["catalog"])
    assert not catalog.skipped and not catalog.renamed
    loaded = [(t.name, t.description, t.parameters) for t in catalog.tools]
    assert loaded == [(t.name, t.description, t.parameters) for t in bench.tools]
    queries = load_queries(paths["queries"], known=[t.name for t in catalog.tools])
    assert not queries.unknown and not queries.skipped
    got = [(c.query, c.relevant, c.id) for c in queries]
    assert got == [(c.query, c.relevant, c.id) for c in bench.queries]
    assert json.loads(paths["stats"].read_text()) == bench.stats
    write_benchmark(bench, tmp_path / "out")  # overwrites in place
    assert len(load_catalog(paths["catalog"])) == len(bench.tools)


def test_write_queries(tmp_path: Path) -> None:
    cases = [QueryCase("Rain in Oslo?", ("weather_get",), {"weather_get": 2}, id="q1")]
    cases.append(QueryCase("2 + 2", ("adder", "math_tools_power")))
    path = write_queries(cases, tmp_path / "q" / "queries.jsonl")
    back = load_queries(path)
    assert [(c.query, c.relevant, dict(c.grades), c.id) for c in back] == [
        ("Rain in Oslo?", ("weather_get",), {"weather_get": 2}, "q1"),
        ("2 + 2", ("adder", "math_tools_power"), {}, None),
    ]


# ---------------------------------------------------------------------------------------------
# Paraphrased queries


def test_name_words() -> None:
    assert name_words("getWeather_forecast.v2") == ["weather", "forecast"]
    assert name_words("calculate_triangle_area") == ["triangle", "area"]
    assert name_words("search_HTTPServer-logs") == ["http", "server", "logs"]
    assert name_words("find_the_sum_of_all") == []  # generic verb, short and stop words
    assert name_words("restaurant_book") == ["restaurant", "book"]
    assert leaked_words("Any triangles with area 5?", ["triangle", "area"]) == ["triangle", "area"]
    assert leaked_words("Separate these", ["rate"]) == []
    assert leaked_words("A book, please", ["books"]) == ["books"]


def _prompt_tool(messages: Sequence[Message]) -> str:
    """The tool name in a paraphrase prompt."""
    first = str(messages[0]["content"])
    return first.split("Name: ", 1)[1].split("\n", 1)[0]


SCRIPT = {
    # (first reply, reply after the note)
    "weather_get": ("Will the weather in Oslo be nice tomorrow?", "Do I need an umbrella in Oslo?"),
    "restaurant_book": ("Book a table for 2 at Noma.", "Get me a restaurant spot for 2 at Noma."),
    "currency_exchange": ("How many yen do I get for 250 euros?", "unused"),
    "units_convert": ("not json", "How far is 3 km in miles?"),
}


def _reply(messages: Sequence[Message]) -> str:
    first, second = SCRIPT[_prompt_tool(messages)]
    text = first if len(messages) == 1 else second
    return text if text == "not json" else json.dumps({"request": text})


def test_paraphrase_retries_once_and_skips_repeat_leaks(bench: RetrievalBenchmark) -> None:
    tools = [t for t in bench.tools if t.name in SCRIPT]
    model = ScriptedModel(replies=[_reply] * 8)
    seen: list[tuple[int, int]] = []
    cases = paraphrase_queries(
        tools, model, count=4, seed=3, progress=lambda d, n: seen.append((d, n))
    )
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert len(model.requests) == 7  # weather and units retried once, restaurant twice
    got = {c.id: (c.query, c.relevant) for c in cases}
    assert got == {
        "para-weather_get": ("Do I need an umbrella in Oslo?", ("weather_get",)),
        "para-currency_exchange": ("How many yen do I get for 250 euros?", ("currency_exchange",)),
        "para-units_convert": ("How far is 3 km in miles?", ("units_convert",)),
    }
    weather = [r for r in model.requests if _prompt_tool(r.messages) == "weather_get"]
    prompt = str(weather[0].messages[0]["content"])
    assert "'weather'" in prompt and "The current weather in a city." in prompt
    assert prompt.startswith(PARAPHRASE_PROMPT.split("{name}")[0])
    retry = weather[1].messages
    assert [m["role"] for m in retry] == ["user", "assistant", "user"]
    assert "'weather'" in str(retry[2]["content"])
    fmt = weather[0].response_format
    assert fmt is not None and fmt["type"] == "json_schema"
    schema = fmt["json_schema"]["schema"]
    assert schema["properties"] == {"request": {"type": "string"}}
    assert schema["required"] == ["request"]
    units = [r for r in model.requests if _prompt_tool(r.messages) == "units_convert"]
    assert "JSON" in str(units[1].messages[2]["content"])  # a reply that was not JSON


def test_paraphrase_concurrently_gives_the_same_cases(bench: RetrievalBenchmark) -> None:
    tools = [t for t in bench.tools if t.name in SCRIPT]
    one = paraphrase_queries(tools, ScriptedModel(replies=[_reply] * 8), count=4, seed=3)
    many = paraphrase_queries(
        tools, ScriptedModel(replies=[_reply] * 8), count=4, seed=3, concurrency=4
    )
    assert many == one


def _picked(tools: list, count: int, seed: int) -> list[str]:
    model = ScriptedModel(replies=['{"request": "Please help me with 3 things."}'], cycle=True)
    return [c.relevant[0] for c in paraphrase_queries(tools, model, count=count, seed=seed)]


def test_paraphrase_tool_choice_follows_the_seed(bench: RetrievalBenchmark) -> None:
    tools = bench.tools
    first = _picked(tools, 3, seed=0)
    assert len(first) == len(set(first)) == 3
    assert _picked(tools, 3, seed=0) == first  # the same seed, the same tools, same order
    assert _picked(tools, 5, seed=0)[:3] == first  # a larger count: the same tools first
    assert sorted(_picked(tools, 99, seed=0)) == sorted(TOOLS)  # at most every tool once
    assert any(_picked(tools, 3, seed=s) != first for s in range(1, 6))
    assert _picked(tools, 0, seed=0) == []
    with pytest.raises(ConfigError):
        _picked(tools, -1, seed=0)

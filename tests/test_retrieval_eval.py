"""Retrieval evaluation: the metrics against hand-computed values, the queries-file loader, an
end-to-end run of the real embedding retriever against BM25, and ``toolpath eval retrieval``.

The end-to-end and CLI tests use the real all-MiniLM-L6-v2 embedder and faiss on the 36-tool
fixture catalog (tests/fixtures/retrieval_catalog.json); its 24 queries
(tests/fixtures/retrieval_queries.jsonl) are paraphrases that share few words with the tools.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import math
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from toolpath.cli.retrieval import PER_QUERY_FILE, SUMMARY_FILE, parse_ks, register
from toolpath.errors import ConfigError, DatasetError, RetrievalError
from toolpath.retrieval.api_retriever import bm25_baseline
from toolpath.retrieval.evaluate import (
    QueryCase,
    dcg_at_k,
    evaluate_retrieval,
    ideal_dcg_at_k,
    load_queries,
    ndcg_at_k,
    percentile,
    ranks_of,
    recall_at_k,
)
from toolpath.tools.base import Tool
from toolpath.tools.catalog import described_only, load_catalog

FIXTURES = Path(__file__).parent / "fixtures"
CATALOG = FIXTURES / "retrieval_catalog.json"
QUERIES = FIXTURES / "retrieval_queries.jsonl"
LOG3 = math.log2(3)  # the discount of rank 2: log2(2 + 1) = 1.58496...

needs_embedder = pytest.mark.skipif(
    importlib.util.find_spec("faiss") is None
    or importlib.util.find_spec("sentence_transformers") is None,
    reason="needs toolpath[retrieval] (faiss, sentence-transformers)",
)


def described(name: str, description: str) -> Tool:
    return Tool(name, description, {"type": "object", "properties": {}}, described_only(name))


# --- metrics -------------------------------------------------------------------------------


def test_recall_at_k_by_hand() -> None:
    ranked = ["a", "b", "c", "d", "e"]
    relevant = {"b", "e", "x"}  # x is never retrieved, so recall stays below 1
    assert recall_at_k(ranked, relevant, 1) == 0.0  # {a} ∩ R = {}
    assert recall_at_k(ranked, relevant, 2) == pytest.approx(1 / 3)  # {a,b} ∩ R = {b}
    assert recall_at_k(ranked, relevant, 5) == pytest.approx(2 / 3)  # {b, e} of 3
    assert recall_at_k(ranked, relevant, 10) == pytest.approx(2 / 3)  # k beyond the list
    # more relevant tools than k: 2 of 3 found in the top 2 is recall 2/3, not 1
    assert recall_at_k(["a", "b"], ["a", "b", "c"], 2) == pytest.approx(2 / 3)


def test_binary_ndcg_by_hand() -> None:
    # ranked a, b, c with R = {b, c}: DCG@3 = 0/1 + 1/log2(3) + 1/log2(4) = 0.63093 + 0.5
    # ideal b, c first: IDCG@3 = 1/1 + 1/log2(3) = 1.63093; NDCG@3 = 1.13093 / 1.63093
    assert dcg_at_k(["a", "b", "c"], {"b": 1, "c": 1}, 3) == pytest.approx(1 / LOG3 + 0.5)
    assert ideal_dcg_at_k({"b": 1, "c": 1}, 3) == pytest.approx(1 + 1 / LOG3)
    expected = (1 / LOG3 + 0.5) / (1 + 1 / LOG3)
    assert expected == pytest.approx(0.693426, abs=1e-6)
    assert ndcg_at_k(["a", "b", "c"], {"b", "c"}, 3) == pytest.approx(expected)
    # @1 the only place holds a: DCG 0, NDCG 0
    assert ndcg_at_k(["a", "b", "c"], {"b", "c"}, 1) == 0.0
    # perfect ranking, and R larger than k: IDCG@2 counts only two of the three
    assert ndcg_at_k(["b", "c", "a"], {"b", "c"}, 3) == pytest.approx(1.0)
    assert ndcg_at_k(["a", "b"], ["a", "b", "c"], 2) == pytest.approx(1.0)
    # a repeated tool earns its gain once: a, a, b with R = {a, b}
    # DCG@3 = 1/1 + 0 + 1/log2(4) = 1.5; IDCG@3 = 1 + 1/log2(3) = 1.63093; NDCG = 0.91972
    assert ndcg_at_k(["a", "a", "b"], {"a", "b"}, 3) == pytest.approx(1.5 / (1 + 1 / LOG3))
    assert ndcg_at_k(["a", "a", "b"], {"a", "b"}, 3) == pytest.approx(0.919721, abs=1e-6)


def test_graded_ndcg_by_hand() -> None:
    gains = {"a": 3.0, "b": 1.0, "c": 2.0}
    # ranked b, a, c: DCG@3 = 1/1 + 3/log2(3) + 2/log2(4) = 1 + 1.89279 + 1 = 3.89279
    # ideal a, c, b:  IDCG@3 = 3/1 + 2/log2(3) + 1/log2(4) = 3 + 1.26186 + 0.5 = 4.76186
    assert dcg_at_k(["b", "a", "c"], gains, 3) == pytest.approx(2 + 3 / LOG3)
    assert ideal_dcg_at_k(gains, 3) == pytest.approx(3.5 + 2 / LOG3)
    assert ndcg_at_k(["b", "a", "c"], gains, 3) == pytest.approx(0.817494, abs=1e-6)
    # @1: DCG = gain(b) = 1, IDCG = gain(a) = 3
    assert ndcg_at_k(["b", "a", "c"], gains, 1) == pytest.approx(1 / 3)
    # an unlisted tool gains 0: z, a gives DCG@2 = 3/log2(3), IDCG@2 = 3 + 2/log2(3)
    assert ndcg_at_k(["z", "a"], gains, 2) == pytest.approx((3 / LOG3) / (3 + 2 / LOG3))
    # the grade counts, not just presence: the best tool first beats the worst tool first
    assert ndcg_at_k(["a"], gains, 1) == 1.0 > ndcg_at_k(["b"], gains, 1)


def test_metric_errors_and_helpers() -> None:
    with pytest.raises(RetrievalError, match="k must be a positive integer"):
        recall_at_k(["a"], {"a"}, 0)
    with pytest.raises(RetrievalError, match="k must be a positive integer"):
        ndcg_at_k(["a"], {"a"}, True)  # type: ignore[arg-type]
    with pytest.raises(RetrievalError, match="without relevant"):
        recall_at_k(["a"], set(), 3)
    with pytest.raises(RetrievalError, match="NDCG is undefined"):
        ndcg_at_k(["a"], {}, 3)
    assert ranks_of(["a", "b", "a", "c"], ["c", "a", "x"]) == {"c": 4, "a": 1, "x": None}
    assert percentile([4.0, 1.0, 3.0, 2.0], 50) == 2.5  # between the 2nd and 3rd of 1,2,3,4
    assert percentile([1.0, 2.0, 3.0], 100) == 3.0
    case = QueryCase("q", ("a", "b"), {"a": 3})
    assert case.gains() == {"a": 3.0, "b": 1.0}


# --- loading queries -----------------------------------------------------------------------


def write(tmp_path: Path, text: str, name: str = "q.jsonl") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_load_jsonl_queries(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '{"query": " weather in Oslo ", "relevant": ["get_weather", "get_weather"]}\n'
        "\n"  # blank lines are fine
        '{"query": "yen for euros", "relevant": ["convert", "rate"], "grades": {"convert": 2},'
        ' "id": 7}\n',
    )
    queries = load_queries(path)
    assert len(queries) == 2 and queries.source == str(path)
    first, second = queries.cases
    assert first == QueryCase("weather in Oslo", ("get_weather",), {}, 1)  # trimmed, de-duped
    assert second.line == 3 and second.id == "7"
    assert second.relevant == ("convert", "rate") and dict(second.grades) == {"convert": 2}
    assert second.gains() == {"convert": 2.0, "rate": 1.0}


@pytest.mark.parametrize("wrapped", [False, True])
def test_load_json_list_queries(tmp_path: Path, wrapped: bool) -> None:
    items = [{"query": "a", "relevant": ["x"]}, {"query": "b", "relevant": ["y", "x"]}]
    data: Any = {"queries": items} if wrapped else items
    queries = load_queries(write(tmp_path, json.dumps(data, indent=2), "q.json"))
    assert [(c.query, c.relevant, c.line) for c in queries] == [
        ("a", ("x",), 1),
        ("b", ("y", "x"), 2),
    ]


GOOD = '{"query": "q", "relevant": ["t"]}\n'


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (GOOD + GOOD + '{"query": "q", "relevant": ["t"]\n', r"line 3: not valid JSON"),
        (GOOD + '["q", ["t"]]\n', r"line 2: expected an object like"),
        (
            GOOD + '{"relevant": ["t"]}\n',
            r'line 2: "query" must be a non-empty string, got nothing',
        ),
        ('{"query": "  ", "relevant": ["t"]}\n', r'line 1: "query" must be a non-empty string'),
        ('{"query": "q", "relevant": []}\n', r'line 1: "relevant" must be .* got an empty list'),
        ('{"query": "q", "relevant": "t"}\n', r'line 1: "relevant" must be .* got "t"'),
        ('{"query": "q", "relevant": ["t", 3]}\n', r'line 1: "relevant" holds 3, not a tool'),
        (
            '{"query": "q", "relevant": ["t"], "grades": {"u": 2}}\n',
            r"line 1: \"grades\" names 'u', which is not in \"relevant\"",
        ),
        (
            '{"query": "q", "relevant": ["t"], "grades": {"t": 0}}\n',
            r"line 1: the grade of 't' must be a positive integer, got 0",
        ),
        (
            '{"query": "q", "relevant": ["t"], "grades": {"t": true}}\n',
            r"line 1: the grade of 't' must be a positive integer, got True",
        ),
        ('{"query": "q", "relevant": ["t"], "grades": [1]}\n', r'line 1: "grades" must be'),
        ('[{"query": "q", "relevant": ["t"]}, {"query": 5}]', r'item 2: "query" must be .* got 5'),
        ('[{"query": "q",\n "relevant": ["t"]},,]', r"line 2: not valid JSON"),
        ('{"queries": {"query": "q"}}', r'"queries" must be a list'),
        ("\n\n", r"holds no queries"),
    ],
)
def test_bad_queries_files_name_the_line(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(DatasetError, match=message) as info:
        load_queries(path)
    assert str(path) in str(info.value)
    assert isinstance(info.value, ConfigError) and info.value.exit_code == 2


def test_missing_queries_file(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="not found"):
        load_queries(tmp_path / "absent.jsonl")


def test_unknown_relevant_tools_are_dropped_and_counted(tmp_path: Path, caplog) -> None:
    path = write(
        tmp_path,
        '{"query": "one", "relevant": ["a", "ghost"], "grades": {"ghost": 3, "a": 2}}\n'
        '{"query": "two", "relevant": ["phantom", "spook"]}\n'
        '{"query": "three", "relevant": ["b"]}\n',
    )
    with caplog.at_level(logging.WARNING, logger="toolpath.retrieval.evaluate"):
        queries = load_queries(path, known=["a", "b", "c"])
    assert [c.query for c in queries] == ["one", "three"]
    assert queries.cases[0].relevant == ("a",) and dict(queries.cases[0].grades) == {"a": 2}
    assert queries.unknown == [(1, "ghost"), (2, "phantom"), (2, "spook")]
    assert queries.skipped == [(2, "two")]
    (record,) = caplog.records  # one warning with the counts, not one per name
    assert "3 relevant tool name(s)" in record.getMessage()
    assert "line 1, 'ghost'" in record.getMessage() and "1 quer(ies)" in record.getMessage()
    with pytest.raises(RetrievalError, match=r"none of the relevant tools .* 'ghost'"):
        load_queries(path, known=["c"])  # every relevant name unknown: the wrong catalog
    assert len(load_queries(path, known=["a", "b", "ghost", "phantom", "spook"])) == 3


def test_fixture_queries_match_the_fixture_catalog() -> None:
    catalog = load_catalog(CATALOG)
    assert len(catalog) == 36 and not catalog.skipped
    queries = load_queries(QUERIES, known=[t.name for t in catalog.tools])
    assert len(queries) == 24 and not queries.unknown and not queries.skipped
    assert sum(bool(c.grades) for c in queries) == 2  # two graded queries


# --- evaluate_retrieval (BM25 only: cheap) -------------------------------------------------

TINY = [
    described("zebra_facts", "Facts about zebra stripes and savanna herds."),
    described("volcano_alerts", "Eruption warnings for active volcano craters."),
    described("tide_tables", "High and low tide times for harbours."),
    described("comet_tracker", "Orbit positions of a comet or asteroid."),
]


def test_evaluate_retrieval_with_bm25() -> None:
    cases = [
        QueryCase("zebra stripes", ("zebra_facts",), line=1),  # a lexical hit: rank 1
        # both words match, so both relevant tools lead; graded: tides count double
        QueryCase("tide eruption", ("tide_tables", "volcano_alerts"), {"tide_tables": 2}, 2),
        QueryCase("tide times", ("comet_tracker",), line=3),  # words of another tool: a miss
    ]
    seen: list[tuple[str, int, int]] = []
    result = evaluate_retrieval(
        {"bm25": bm25_baseline(TINY)},
        cases,
        ks=[3, 1, 3],
        progress=lambda name, done, total: seen.append((name, done, total)),
    )
    assert result["queries"] == 3 and result["ks"] == [1, 3]  # sorted, de-duplicated
    assert seen == [("bm25", 1, 3), ("bm25", 2, 3), ("bm25", 3, 3)]
    rows = result["per_query"]
    assert [r["query"] for r in rows] == [c.query for c in cases]
    assert all(len(r["top"]) == 3 for r in rows)  # retrieved to depth max(ks)
    first, second, third = rows
    assert first["top"][0] == "zebra_facts" and first["ranks"] == {"zebra_facts": 1}
    assert first["recall@1"] == 1.0 and first["ndcg@1"] == 1.0
    assert set(second["top"][:2]) == {"tide_tables", "volcano_alerts"}
    assert second["recall@3"] == 1.0 and second["ndcg@3"] == pytest.approx(
        1.0 if second["top"][0] == "tide_tables" else (1 + 2 / LOG3) / (2 + 1 / LOG3)
    )
    # every per-query metric is the metric of its own ranking, and the summary is their mean
    for row, case in zip(rows, cases, strict=True):
        assert row["ranks"] == ranks_of(row["top"], case.relevant)
        for k in (1, 3):
            assert row[f"recall@{k}"] == recall_at_k(row["top"], case.relevant, k)
            assert row[f"ndcg@{k}"] == ndcg_at_k(row["top"], case.gains(), k)
    summary = result["retrievers"]["bm25"]
    for key in ("recall@1", "recall@3", "ndcg@1", "ndcg@3"):
        assert summary[key] == pytest.approx(sum(r[key] for r in rows) / 3)
    assert third["top"][0] == "tide_tables" and third["recall@1"] == third["ndcg@1"] == 0.0
    # recall@1 per query: 1; 1/2 (tide or volcano first, the other second); 0. Mean 1.5/3
    assert summary["recall@1"] == pytest.approx(0.5)
    latency = summary["latency_ms"]
    assert 0 < latency["p50"] <= latency["p99"] and latency["mean"] > 0
    assert all(r["retriever"] == "bm25" and r["latency_ms"] > 0 for r in rows)


def test_evaluate_retrieval_rejects_empty_input() -> None:
    case = QueryCase("q", ("zebra_facts",))
    with pytest.raises(RetrievalError, match="no retriever"):
        evaluate_retrieval({}, [case])
    with pytest.raises(RetrievalError, match="no queries"):
        evaluate_retrieval({"bm25": bm25_baseline(TINY)}, [])
    with pytest.raises(RetrievalError, match="k must be a positive integer"):
        evaluate_retrieval({"bm25": bm25_baseline(TINY)}, [case], ks=[1, 0])


def test_parse_ks() -> None:
    assert parse_ks("10, 1,5,1") == (1, 5, 10)
    for bad in ("", "1,x", "0,3", "-1"):
        with pytest.raises(ConfigError, match="--k must be"):
            parse_ks(bad)


def test_imports_stay_light() -> None:
    code = (
        "import sys, toolpath.retrieval.evaluate, toolpath.cli.retrieval; "
        "print([m for m in ('torch', 'sentence_transformers', 'faiss', 'rank_bm25') "
        "if m in sys.modules])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


# --- the real embedding retriever ----------------------------------------------------------


@pytest.fixture(scope="module")
def embedder() -> Any:
    from toolpath.retrieval.embed import Embedder

    return Embedder(threads=1)  # one torch thread: faster on a busy 2-core machine


@needs_embedder
def test_dense_beats_bm25_on_paraphrased_queries(embedder: Any) -> None:
    from toolpath.retrieval.api_retriever import APIRetriever

    catalog = load_catalog(CATALOG)
    queries = load_queries(QUERIES, known=[t.name for t in catalog.tools])
    retrievers = {
        "dense": APIRetriever(catalog, embedder=embedder),
        "bm25": bm25_baseline(catalog),
    }
    result = evaluate_retrieval(retrievers, queries, ks=(1, 5, 10))
    dense, bm25 = result["retrievers"]["dense"], result["retrievers"]["bm25"]
    # The queries share few words with their tools: embeddings find them, BM25 mostly does
    # not (measured: recall@5 0.96 vs 0.40). Assert the ordering with a wide margin only.
    assert dense["recall@5"] >= bm25["recall@5"] + 0.2
    assert dense["ndcg@10"] >= bm25["ndcg@10"] + 0.2
    assert dense["recall@10"] >= 0.75 and dense["recall@1"] >= 0.5
    for key in ("recall@1", "ndcg@1", "ndcg@5"):
        assert dense[key] >= bm25[key]
    assert len(result["per_query"]) == 2 * len(queries)
    assert dense["latency_ms"]["p50"] > bm25["latency_ms"]["p50"]  # a query is embedded


# --- toolpath eval retrieval ---------------------------------------------------------------


def cli() -> typer.Typer:
    app, eval_app = typer.Typer(), typer.Typer()
    app.add_typer(eval_app, name="eval")
    register(app, eval_app)
    return app


def read_results(folder: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    summary = json.loads((folder / SUMMARY_FILE).read_text())
    rows = [json.loads(line) for line in (folder / PER_QUERY_FILE).read_text().splitlines()]
    return summary, rows


@needs_embedder
def test_cli_eval_retrieval(tmp_path: Path) -> None:
    app = cli()
    index_dir = tmp_path / "index"
    base = ["eval", "retrieval", "--catalog", str(CATALOG), "--index-dir", str(index_dir)]
    base += ["--threads", "1"]
    run1 = ["--queries", str(QUERIES), "--k", "5,1", "--out", str(tmp_path / "run1")]
    run1 += ["--retrievers", "dense,bm25"]
    first = CliRunner().invoke(app, [*base, *run1])
    assert first.exit_code == 0, first.output
    assert "dense" in first.output and "bm25" in first.output and "R@5" in first.output
    summary, rows = read_results(tmp_path / "run1")
    assert summary["ks"] == [1, 5] and summary["queries"] == 24
    assert set(summary["retrievers"]) == {"dense", "bm25"}
    assert summary["retrievers"]["dense"]["recall@5"] > summary["retrievers"]["bm25"]["recall@5"]
    dense = summary["config"]["retrievers"]["dense"]
    assert dense["index"]["reused"] is False and summary["config"]["tools"] == 36
    assert Path(dense["index"]["folder"]).parent == index_dir
    assert dense["embedder"] == "all-MiniLM-L6-v2"
    assert len(rows) == 48 and {r["retriever"] for r in rows} == {"dense", "bm25"}

    # Again, without BM25, on the saved index, with one relevant name the catalog lacks.
    queries = tmp_path / "queries.jsonl"
    queries.write_text(
        QUERIES.read_text() + '{"query": "x", "relevant": ["no_such_tool"]}\n', encoding="utf-8"
    )
    run2 = ["--queries", str(queries), "--k", "1,5", "--retrievers", "dense"]
    run2 += ["--out", str(tmp_path / "run2")]
    second = CliRunner().invoke(app, [*base, *run2])
    assert second.exit_code == 0, second.output
    assert "bm25" not in second.output
    assert "1 relevant tool name(s) not in the catalog were dropped" in second.output
    again, rows2 = read_results(tmp_path / "run2")
    assert set(again["retrievers"]) == {"dense"}
    assert again["config"]["retrievers"]["dense"]["index"]["reused"] is True
    assert again["config"]["unknown_relevant"] == 1 and again["config"]["skipped_queries"] == 1
    for key in ("recall@1", "recall@5", "ndcg@1", "ndcg@5"):  # same index, same rankings
        assert again["retrievers"]["dense"][key] == pytest.approx(
            summary["retrievers"]["dense"][key]
        )
    assert [r["top"] for r in rows2] == [r["top"] for r in rows if r["retriever"] == "dense"]


@needs_embedder
def test_cli_eval_retrieval_on_the_bfcl_benchmark(tmp_path: Path) -> None:
    fixtures = Path(__file__).parent / "fixtures"
    data = tmp_path / "bfcl"
    shutil.copytree(fixtures / "bfcl", data)
    shutil.copytree(fixtures / "bfcl_retrieval", data, dirs_exist_ok=True)
    args = ["eval", "retrieval", "--bfcl", "--data", str(data), "--out", str(tmp_path / "out")]
    result = CliRunner().invoke(cli(), args)
    assert result.exit_code == 0, result.output
    summary, rows = read_results(tmp_path / "out")
    assert summary["ks"] == [1, 5, 10]
    assert list(summary["retrievers"]) == ["dense", "bm25", "hybrid"]  # nothing trained
    assert summary["config"]["benchmark"] == "bfcl" and summary["config"]["tools"] > 5
    assert summary["queries"] > 3 and len(rows) == 3 * summary["queries"]
    assert summary["config"]["retrievers"]["hybrid"]["class"] == "HybridRetriever"
    both = CliRunner().invoke(cli(), [*args, "--catalog", str(CATALOG)])
    assert isinstance(both.exception, ConfigError) and "leave out --catalog" in str(both.exception)
    neither = CliRunner().invoke(cli(), ["eval", "retrieval"])
    assert isinstance(neither.exception, ConfigError) and "--bfcl" in str(neither.exception)
    unknown = CliRunner().invoke(cli(), [*args, "--retrievers", "dense,sparse"])
    assert isinstance(unknown.exception, ConfigError) and "sparse" in str(unknown.exception)
    trained = CliRunner().invoke(cli(), [*args, "--retrievers", "trained"])
    assert "toolpath index train" in str(trained.exception)


def test_cli_bad_input_raises_typed_errors(tmp_path: Path) -> None:
    app = cli()
    args = ["eval", "retrieval", "--catalog", str(CATALOG), "--queries", str(QUERIES)]
    bad_k = CliRunner().invoke(app, [*args, "--k", "1,zero"])
    assert isinstance(bad_k.exception, ConfigError) and "--k must be" in str(bad_k.exception)
    bad_queries = write(tmp_path, GOOD + "not json\n")
    result = CliRunner().invoke(
        app, ["eval", "retrieval", "--catalog", str(CATALOG), "--queries", str(bad_queries)]
    )
    assert isinstance(result.exception, DatasetError)
    assert "line 2: not valid JSON" in str(result.exception)

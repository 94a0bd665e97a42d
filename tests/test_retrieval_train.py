"""The retriever trained on a catalog: request generation (resumable), the round trip, batches
without false negatives, fine-tuning with the embedded 0.5B writing the requests, and the
trained model's cache key."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from toolpath.errors import RetrievalError
from toolpath.retrieval.evaluate import evaluate_retrieval, load_queries
from toolpath.retrieval.kinds import build_retriever
from toolpath.retrieval.train import (
    MANIFEST,
    QUERIES_FILE,
    TrainConfig,
    batches,
    catalog_key,
    generate_queries,
    generation_seconds,
    hard_negatives,
    train_retriever,
    trained_embedder,
)
from toolpath.tools.base import Tool
from toolpath.tools.catalog import load_catalog

FIXTURES = Path(__file__).parent / "fixtures"
CATALOG = FIXTURES / "train_catalog.json"
HELD_OUT = FIXTURES / "train_queries.jsonl"


def tools() -> list[Tool]:
    return list(load_catalog(str(CATALOG)).tools)


def test_batches_never_hold_one_tool_twice() -> None:
    triples = [(f"q{i}-{j}", f"t{i % 7}", "neg") for i in range(40) for j in range(3)]
    out = batches(triples, 8, seed=1)
    assert sorted(t for b in out for t in b) == sorted(triples)  # nothing lost or repeated
    for batch in out:
        assert len(batch) <= 8
        assert len({p for _, p, _ in batch}) == len(batch)
    assert batches(triples, 8, seed=1) == out  # seeded


def test_generation_resumes_from_the_queries_file(scripted: Any, tmp_path: Path) -> None:
    catalog = tools()[:3]
    path = tmp_path / QUERIES_FILE
    path.write_text(
        json.dumps({"tool": catalog[0].name, "queries": ["is it raining in Rome now?"], "s": 100.0})
        + "\n"
        + '{"tool": "hourly_fore',  # a line cut by a crash: asked again
        encoding="utf-8",
    )
    replies = [
        json.dumps({"requests": [f"request number {i}", f"another one {i}"]}) for i in (1, 2)
    ]
    model = scripted(replies)
    seen: list[tuple[str, int, int]] = []
    out = generate_queries(
        catalog, model, path, TrainConfig(per_tool=2, concurrency=1), lambda *a: seen.append(a)
    )
    assert out[catalog[0].name] == ["is it raining in Rome now?"]
    assert out[catalog[1].name] == ["request number 1", "another one 1"]
    assert out[catalog[2].name] == ["request number 2", "another one 2"]
    assert len(model.requests) == 2  # the first tool was not asked again
    prompt = model.requests[0].messages[0]["content"]
    assert "Do not name the API" in prompt and catalog[1].description in prompt
    assert seen[0] == ("queries", 1, 3) and seen[-1] == ("queries", 3, 3)
    # every new line carries the running total, on from the earlier run's 100 s
    totals = [json.loads(line).get("s") for line in path.read_text().splitlines()[-2:]]
    assert all(t >= 100.0 for t in totals) and generation_seconds(path) >= 100.0


def test_one_request_per_tool_is_asked_as_a_bare_json_string(scripted: Any, tmp_path: Path) -> None:
    catalog = tools()[:2]
    model = scripted([json.dumps("  will it snow in Oslo\ntomorrow? "), json.dumps(["list"])])
    out = generate_queries(catalog, model, tmp_path / "q.jsonl", TrainConfig(concurrency=1))
    assert out == {catalog[0].name: ["will it snow in Oslo tomorrow?"], catalog[1].name: []}
    fmt = model.requests[0].response_format
    assert fmt is not None and fmt["json_schema"]["schema"]["type"] == "string"
    assert "Write one request" in model.requests[0].messages[0]["content"]


def test_every_row_has_two_hard_negatives_that_are_other_tools() -> None:
    from toolpath.retrieval.api_retriever import APIRetriever, BM25Retriever

    catalog = tools()
    pairs = [(f"what does {t.name.replace('_', ' ')} do", t.name) for t in catalog[:10]]
    rows = hard_negatives(pairs, BM25Retriever(catalog), APIRetriever(catalog))
    assert len(rows) == 10
    for q, tool, *negatives in rows:
        assert len(negatives) == 2 and tool not in negatives
        assert (q, tool) in pairs


def test_a_reply_that_is_not_json_gives_no_requests_and_is_not_fatal(
    scripted: Any, tmp_path: Path
) -> None:
    catalog = tools()[:1]
    out = generate_queries(catalog, scripted(["not json"]), tmp_path / "q.jsonl", TrainConfig())
    assert out == {catalog[0].name: []}


def test_trained_retriever_needs_a_trained_model(tmp_path: Path) -> None:
    with pytest.raises(RetrievalError, match="toolpath index train"):
        build_retriever("trained", tools(), cache_dir=tmp_path)
    with pytest.raises(RetrievalError, match="unknown retriever"):
        build_retriever("sparse", tools())


@pytest.fixture(scope="module")
def trained(local_model: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    """A retriever trained on the 30-tool fixture, the 0.5B writing the requests (greedy)."""
    cache = tmp_path_factory.mktemp("trained")
    config = TrainConfig(per_tool=3, epochs=3, concurrency=1, temperature=0.0)
    result = train_retriever(tools(), local_model, cache, config=config)
    return cache, result


def test_training_improves_recall_on_held_out_queries(trained: tuple[Path, Any]) -> None:
    cache, result = trained
    assert result.generated >= 60 and 0 < result.kept <= result.generated
    manifest = json.loads((result.folder / MANIFEST).read_text(encoding="utf-8"))
    assert manifest["requests"]["kept"] == result.kept and manifest["tools"] == 30
    catalog = tools()
    queries = load_queries(HELD_OUT, known=[t.name for t in catalog])
    assert len(queries) == 30  # written by hand for this test; no generated request is one
    generated = {
        q
        for line in (result.folder / QUERIES_FILE).read_text().splitlines()
        for q in json.loads(line)["queries"]
    }
    assert not generated & {case.query for case in queries}
    retrievers = {
        "dense": build_retriever("dense", catalog, cache_dir=cache, use_trained=False),
        "trained": build_retriever("trained", catalog, cache_dir=cache),
    }
    scores = evaluate_retrieval(retrievers, queries, (1, 3))["retrievers"]
    # measured: recall@3 0.867 -> 0.900, recall@1 0.767 -> 0.800 (greedy requests, seeded training)
    assert scores["trained"]["recall@3"] > scores["dense"]["recall@3"], scores
    assert scores["trained"]["recall@1"] >= scores["dense"]["recall@1"], scores
    # agents get the trained model under the plain names
    agent_dense = build_retriever("dense", catalog, cache_dir=cache)
    assert agent_dense.index.embedder_name.startswith("trained-")  # type: ignore[attr-defined]


def test_trained_model_is_not_used_once_the_catalog_changes(
    trained: tuple[Path, Any], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cache, result = trained
    catalog = tools()
    assert trained_embedder(catalog, cache) is not None
    changed = list(catalog)
    old = changed[3]
    changed[3] = Tool(old.name, old.description + " Also crypto.", old.parameters, old.fn)
    assert catalog_key(changed) != catalog_key(catalog)
    assert trained_embedder(changed, cache) is None
    assert "trained on another catalog" in caplog.text
    with pytest.raises(RetrievalError, match="no retriever trained"):
        build_retriever("trained", changed, cache_dir=cache)
    plain = build_retriever("dense", changed, cache_dir=cache)
    assert plain.index.embedder_name == "all-MiniLM-L6-v2"  # type: ignore[attr-defined]
    # the same catalog again finds the saved model without training anything
    copy = tmp_path / "copy"
    shutil.copytree(cache, copy)
    manifest = json.loads((result.folder / MANIFEST).read_text(encoding="utf-8"))
    config, name = TrainConfig(**manifest["config"]), manifest["query_model"]
    again = train_retriever(catalog, _no_model(name), copy, config=config)
    assert again.reused and again.folder.name == result.folder.name
    # other settings train again (here: the model would be asked for requests)
    config.per_tool = 1
    with pytest.raises(AssertionError, match="must not ask"):
        train_retriever(catalog, _no_model(name), copy, config=config)


def _no_model(model_name: str) -> Any:
    class Refuses:
        name = model_name

        async def acomplete(self, *a: Any, **k: Any) -> Any:
            raise AssertionError("a trained catalog must not ask the model again")

    return Refuses()

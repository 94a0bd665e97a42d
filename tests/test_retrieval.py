"""TPTU-v2 API retrieval: embedding, the cached faiss index, the retriever, BM25, demo selection.

The 16k-tool catalog is embedded once per session (about a minute on two CPU threads) into a
session cache folder; every other test uses a catalog of a few hundred tools.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("faiss")
pytest.importorskip("sentence_transformers")

from toolpath.errors import RetrievalError
from toolpath.retrieval import embed
from toolpath.retrieval.api_retriever import APIRetriever, bm25_baseline
from toolpath.retrieval.demos import DemoSelector
from toolpath.retrieval.embed import Embedder, tool_text
from toolpath.retrieval.index import INDEX_FILE, MANIFEST_FILE, ToolIndex
from toolpath.retrieval.synthetic import synthetic_catalog
from toolpath.tools.base import Tool
from toolpath.tools.catalog import described_only, write_catalog

SYMBOL = {"symbol": {"type": "string", "description": "Ticker symbol, e.g. 'AAPL'"}}
KELVIN_QUERY = "How do I turn kelvin into rankine?"


def described(name: str, description: str, props: dict[str, Any] | None = None) -> Tool:
    schema = {"type": "object", "properties": props or {}}
    return Tool(name, description, schema, described_only(name))


PLANTED = described(
    "kelvin_to_rankine",
    "Converts a temperature in Kelvin to the Rankine scale.",
    {"kelvin": {"type": "number", "description": "Temperature in kelvin"}},
)
STOCK_QUOTE = described(
    "get_stock_quote", "Returns the latest stock quote for a ticker symbol.", SYMBOL
)
STOCK_PRICE = described(
    "fetch_stock_price", "Fetches the current stock price for a ticker symbol.", SYMBOL
)


class CountingEmbedder:
    """Wraps an embedder and counts the texts and calls it encodes."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.name = inner.name
        self.calls = 0
        self.texts = 0

    def encode(self, texts: Sequence[str], *, progress: Any = None) -> Any:
        self.calls += 1
        self.texts += len(texts)
        return self.inner.encode(texts, progress=progress)


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    # One torch thread: on a busy 2-core machine that is twice as fast as two.
    return Embedder(threads=1)


@pytest.fixture(scope="session")
def small_tools() -> list[Tool]:
    """60 synthetic tools, the stock near-duplicates and the planted tool."""
    return [*synthetic_catalog(60, seed=3), STOCK_QUOTE, STOCK_PRICE, PLANTED]


@pytest.fixture(scope="session")
def small_cache(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder, small_tools):
    """A cache folder holding the small catalog's flat index (copy it before changing it)."""
    cache = tmp_path_factory.mktemp("small-index")
    APIRetriever(small_tools, embedder=embedder, cache_dir=cache)
    return cache


@pytest.fixture
def small_copy(tmp_path: Path, small_cache: Path) -> Path:
    cache = tmp_path / "cache"
    shutil.copytree(small_cache, cache)
    return cache


@pytest.fixture(scope="session")
def big(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder):
    """16k tools (one planted among synthetic ones), their retriever and its cache folder."""
    tools = synthetic_catalog(15_999, seed=11)
    tools.insert(8_000, PLANTED)
    cache = tmp_path_factory.mktemp("index-16k")
    counting = CountingEmbedder(embedder)
    retriever = APIRetriever(tools, embedder=counting, cache_dir=cache)
    assert counting.texts == len(tools)  # it really embedded the catalog
    return tools, cache, retriever


def names(results: list[tuple[Tool, float]]) -> list[str]:
    return [t.name for t, _ in results]


def test_tool_text_has_name_description_and_parameters() -> None:
    text = tool_text(PLANTED)
    assert text.startswith("kelvin to rankine: Converts a temperature in Kelvin")
    assert "kelvin (Temperature in kelvin)" in text


def test_embedder_gives_unit_vectors_and_reports_progress(
    embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(embed, "_CHUNK", 16)
    seen: list[tuple[int, int]] = []
    texts = [f"text number {i}" + " more" * (i % 7) for i in range(40)]
    vectors = embedder.encode(texts, progress=lambda d, t: seen.append((d, t)))
    assert vectors.shape == (40, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    assert seen == [(16, 40), (32, 40), (40, 40)]
    import torch

    before = torch.get_num_threads()
    embedder.encode(["one query"])  # runs on query_threads, then restores torch's setting
    assert torch.get_num_threads() == before
    # order is kept although texts are encoded shortest first
    assert np.allclose(vectors[7], embedder.encode([texts[7]])[0], atol=1e-4)


def test_planted_tool_found_among_16k(big) -> None:
    _, _, retriever = big
    assert len(retriever.index) == 16_000 and retriever.index.kind == "flat"
    results = retriever.retrieve(KELVIN_QUERY, k=5)
    assert len(results) == 5
    assert "kelvin_to_rankine" in names(results)
    scores = [s for _, s in results]
    assert scores == sorted(scores, reverse=True)
    assert retriever.last_seconds > 0  # embedding + search were timed
    assert [t.name for t in retriever.tools_for(KELVIN_QUERY, k=3)] == names(results)[:3]


def test_cache_hit_reloads_without_embedding(big, embedder: Embedder) -> None:
    tools, cache, _ = big
    counting = CountingEmbedder(embedder)
    again = APIRetriever(tools, embedder=counting, cache_dir=cache)
    assert counting.calls == 0
    assert again.index.reused and again.index.kind == "flat"
    assert "kelvin_to_rankine" in names(again.retrieve(KELVIN_QUERY, k=5))
    assert counting.calls == 1 and counting.texts == 1  # only the query


def test_changed_catalog_misses_the_cache(small_copy: Path, embedder: Embedder, small_tools):
    counting = CountingEmbedder(embedder)
    changed = [*small_tools[:-1], described("kelvin_to_rankine", "Converts K to degrees R.")]
    retriever = APIRetriever(changed, embedder=counting, cache_dir=small_copy)
    assert counting.texts == len(changed) and not retriever.index.reused
    assert len(list(small_copy.iterdir())) == 2  # one folder per content hash


def _only_folder(cache: Path) -> Path:
    (folder,) = [p for p in cache.iterdir() if p.is_dir() and not p.name.startswith(".")]
    return folder


def _corrupt(folder: Path, how: str) -> None:
    manifest = folder / MANIFEST_FILE
    if how == "hash":
        data = json.loads(manifest.read_text())
        data["content_hash"] = "0" * 64
        manifest.write_text(json.dumps(data))
    elif how == "names":
        data = json.loads(manifest.read_text())
        data["tools"][0] = "someone_else"
        manifest.write_text(json.dumps(data))
    elif how == "manifest":
        manifest.write_text("{not json")
    elif how == "index":
        (folder / INDEX_FILE).write_bytes(b"garbage" * 10)
    elif how == "missing":
        (folder / INDEX_FILE).unlink()


@pytest.mark.parametrize("how", ["hash", "names", "manifest", "index", "missing"])
def test_stale_or_corrupt_cache_is_rebuilt(
    how: str, small_copy: Path, embedder: Embedder, small_tools, caplog
) -> None:
    folder = _only_folder(small_copy)
    _corrupt(folder, how)
    counting = CountingEmbedder(embedder)
    with caplog.at_level(logging.WARNING, logger="toolpath.retrieval.index"):
        retriever = APIRetriever(small_tools, embedder=counting, cache_dir=small_copy)
    assert counting.texts == len(small_tools) and not retriever.index.reused
    assert any("rebuilding" in r.getMessage() for r in caplog.records), caplog.text
    assert names(retriever.retrieve(KELVIN_QUERY, k=1)) == ["kelvin_to_rankine"]
    # the rebuilt cache is sound again: the next build reuses it
    counting = CountingEmbedder(embedder)
    assert APIRetriever(small_tools, embedder=counting, cache_dir=small_copy).index.reused
    assert counting.calls == 0


def test_missing_cache_is_built_with_a_notice(tmp_path: Path, embedder: Embedder, caplog) -> None:
    tools = [*synthetic_catalog(20, seed=5), PLANTED]
    with caplog.at_level(logging.INFO, logger="toolpath.retrieval.index"):
        retriever = APIRetriever(tools, embedder=embedder, cache_dir=tmp_path / "new")
    assert "no cached tool index" in caplog.text
    loaded = ToolIndex.load(_only_folder(tmp_path / "new"))
    assert loaded.names == [t.name for t in tools] and loaded.dim == 384
    assert loaded.content_hash == retriever.index.content_hash
    with pytest.raises(RetrievalError, match="stale"):
        ToolIndex.load(_only_folder(tmp_path / "new"), expected_hash="f" * 64)


def test_flat_or_hnsw_by_threshold(small_copy: Path, embedder: Embedder, small_tools, caplog):
    flat = APIRetriever(small_tools, embedder=embedder, cache_dir=small_copy)
    assert flat.index.kind == "flat" and type(flat.index.index).__name__ == "IndexFlatIP"
    counting = CountingEmbedder(embedder)
    with caplog.at_level(logging.WARNING, logger="toolpath.retrieval.index"):
        hnsw = APIRetriever(small_tools, embedder=counting, cache_dir=small_copy, hnsw_threshold=50)
    assert hnsw.index.kind == "hnsw" and type(hnsw.index.index).__name__ == "IndexHNSWFlat"
    assert hnsw.index.index.hnsw.efSearch == 64
    assert counting.calls == 0  # rebuilt from the cached vectors, nothing embedded
    assert "rebuilding it from its stored vectors" in caplog.text
    for query in (KELVIN_QUERY, "current stock price of a ticker"):
        a, b = flat.retrieve(query, k=5), hnsw.retrieve(query, k=5)
        assert names(a)[0] == names(b)[0]
        assert len(set(names(a)) & set(names(b))) >= 4
        assert a[0][1] == pytest.approx(b[0][1], abs=1e-4)
    # a saved HNSW index loads back as HNSW
    reloaded = APIRetriever(small_tools, embedder=counting, cache_dir=small_copy, hnsw_threshold=50)
    assert reloaded.index.reused and reloaded.index.kind == "hnsw" and counting.calls == 2


def test_bm25_baseline(small_tools) -> None:
    bm25 = bm25_baseline(small_tools, k=4)
    results = bm25.retrieve("convert a kelvin temperature to rankine")
    assert len(results) == 4 and names(results)[0] == "kelvin_to_rankine"
    scores = [s for _, s in results]
    assert scores == sorted(scores, reverse=True) and scores[0] > scores[1]
    assert names(bm25.retrieve("stock price ticker", k=2))[0] in {
        "fetch_stock_price",
        "get_stock_quote",
    }
    assert bm25.last_seconds > 0


def test_neighbours_find_near_duplicates(small_copy: Path, embedder: Embedder, small_tools):
    retriever = APIRetriever(small_tools, embedder=embedder, cache_dir=small_copy)
    near = retriever.neighbours("get_stock_quote", threshold=0.8)
    assert names(near) == ["fetch_stock_price"]
    assert len(retriever.neighbours("get_stock_quote", m=3, threshold=None)) == 3


def test_demo_selector_prefers_near_duplicate_demos(
    small_copy: Path, embedder: Embedder, small_tools
) -> None:
    retriever = APIRetriever(small_tools, embedder=embedder, cache_dir=small_copy)
    query = "What is Apple's share price right now?"
    unrelated = {  # the most similar task, but it calls an unrelated tool
        "task": "What is Apple's share price right now? Also the weather in Paris.",
        "calls": [{"name": "get_weather_forecast_0", "arguments": {"city": "Paris"}}],
    }
    near_dup = {
        "task": "How much does one Microsoft share cost?",
        "calls": [{"name": "fetch_stock_price", "arguments": {"symbol": "MSFT"}}],
    }
    other = {"task": "Translate hello into French", "calls": [{"name": "x", "arguments": {}}]}
    selector = DemoSelector([unrelated, other, near_dup], retriever, k=1)
    # similarity alone ranks the unrelated demo first ...
    assert selector.select(query, []) == [unrelated]
    # ... but a demo using a near-duplicate of the retrieved get_stock_quote wins
    assert selector.select(query, [STOCK_QUOTE]) == [near_dup]
    assert selector.select(query, retriever.retrieve(STOCK_QUOTE.description, k=1)) == [near_dup]
    ranked = selector.rank(query, [STOCK_QUOTE])
    assert [r.anchored for r in ranked] == [True, False, False]
    assert ranked[0].matched == ("fetch_stock_price",)
    assert ranked[1].demo is unrelated  # the unanchored ones follow by similarity
    # a retrieved tool without close neighbours anchors only its own demos
    assert selector.select(query, [PLANTED]) == [unrelated]
    with pytest.raises(RetrievalError, match="demo #0"):
        DemoSelector([{"task": "x"}], retriever)  # type: ignore[list-item]


def test_cli_index_build_reuses_the_cache(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from toolpath.cli import app

    catalog = write_catalog([*synthetic_catalog(30, seed=2), PLANTED], tmp_path / "tools.json")
    args = ["index", "build", str(catalog), "--out", str(tmp_path / "idx")]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "31 tools indexed" in first.output and "flat index" in first.output
    assert "built in" in first.output and "reused" not in first.output
    second = CliRunner().invoke(app, args)
    assert second.exit_code == 0, second.output
    assert "reused the cached index" in second.output
    assert Path(second.output.strip().splitlines()[-1]).is_dir()


def test_import_loads_no_torch_or_sentence_transformers() -> None:
    code = (
        "import sys, toolpath, toolpath.retrieval.api_retriever, toolpath.retrieval.demos, "
        "toolpath.retrieval.index, toolpath.retrieval.embed; "
        "print([m for m in ('torch', 'sentence_transformers', 'faiss') if m in sys.modules])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_traced_query_path_matches_the_pipeline(embedder: Embedder) -> None:
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.models import Pooling

    from toolpath.retrieval.query_encoder import build_query_encoder

    texts = [
        "",
        "weather",
        "Convert 3 kelvin to rankine, please!",
        "word " * 400,
    ]  # last: truncated
    slow = Embedder(embedder.model_path, fast_queries=False)
    slow._model = embedder.model  # same weights, no second load
    for text in texts:
        fast_vec = embedder.encode([text])[0]
        slow_vec = slow.encode([text])[0]
        assert float(np.dot(fast_vec, slow_vec)) > 0.9999, text[:40]
    assert callable(embedder._query)  # the traced path was really used above
    seen: list[tuple[int, int]] = []
    embedder.encode(["a", "b"], progress=lambda done, total: seen.append((done, total)))
    assert seen == [(2, 2)]  # progress is reported on this path too
    assert slow._query is False  # and never built when switched off
    # a layout it does not know (CLS pooling) keeps the sentence-transformers pipeline
    cls = SentenceTransformer(modules=[embedder.model[0], Pooling(384, pooling_mode="cls")])
    assert build_query_encoder(cls) is None

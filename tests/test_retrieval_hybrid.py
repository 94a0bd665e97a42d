"""Hybrid retrieval: identifier splitting, BM25 over split identifiers, reciprocal-rank fusion,
the hybrid retriever and the LLM re-ranker (scripted model); one test with the real embedder."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest

from toolpath.errors import RetrievalError
from toolpath.retrieval import (
    BM25Retriever,
    HybridRetriever,
    LLMReranker,
    hybrid_retriever,
    rrf_fuse,
    split_identifier,
    tool_text,
)
from toolpath.retrieval.api_retriever import STOP_WORDS, tokenize
from toolpath.retrieval.hybrid import shared_ranks
from toolpath.tools.base import Tool


def make_tool(name: str, description: str, props: dict[str, Any] | None = None) -> Tool:
    schema = {"type": "object", "properties": props or {}}
    return Tool(name, description, schema, lambda **_: "ok")


CATALOG = [
    make_tool(
        "getStockQuote",
        "Latest market data for a listed company.",
        {"tickerSymbol": {"type": "string", "description": "Exchange ticker"}},
    ),
    make_tool("math.factorial", "n! of a non-negative integer.", {"n": {"type": "integer"}}),
    make_tool(
        "get_weather_forecast",
        "Will it rain or shine? Forecast for the coming days.",
        {"city": {"type": "string", "description": "City name"}, "days": {"type": "integer"}},
    ),
    make_tool("send_email", "Sends an email message to a recipient.", {"to": {"type": "string"}}),
    make_tool("translateText", "Translates text into another language.", {"text": {}}),
    make_tool("HTTPRequest", "Makes an HTTP request to a URL and returns the body.", {"url": {}}),
]


def names(results: Sequence[tuple[Tool, float]]) -> list[str]:
    return [t.name for t, _ in results]


class FixedRetriever:
    """A retriever (the protocol only) that always answers with the same ranking."""

    def __init__(self, tools: list[Tool], ranking: Sequence[str], k: int = 6) -> None:
        self.tools = tools
        self.k = k
        self.last_seconds = 0.0
        self.ranking = list(ranking)
        self.asked: list[int] = []

    def retrieve(self, query: str, k: int | None = None) -> list[tuple[Tool, float]]:
        k = self.k if k is None else k
        self.asked.append(k)
        self.last_seconds = 0.001
        by_name = {t.name: t for t in self.tools}
        return [(by_name[n], 1.0 / i) for i, n in enumerate(self.ranking[:k], start=1)]


# --- split_identifier, tool_text, BM25 tokens ----------------------------------------------


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("getStockQuote", "get stock quote"),
        ("math.factorial", "math factorial"),
        ("HTTPServerError2", "http server error 2"),
        ("get_weather-forecast", "get weather forecast"),
        ("Tool_v2/API", "tool v 2 api"),
        ("XMLHttpRequest", "xml http request"),
        ("  What's the weather in Oslo, tomorrow?  ", "what s the weather in oslo tomorrow"),
        ("already plain words", "already plain words"),
        ("café_auLait", "café au lait"),
        ("__--..", ""),
    ],
)
def test_split_identifier(text: str, words: str) -> None:
    assert split_identifier(text) == words


def test_tool_text_splits_the_name_and_parameter_names() -> None:
    forecast = make_tool(
        "getWeatherForecast",
        "Returns the forecast.",
        {"cityName": {"type": "string", "description": "City name"}, "days": {}},
    )
    # The example of tool_text's docstring.
    assert tool_text(forecast) == (
        "get weather forecast: Returns the forecast. Parameters: city name (City name); days"
    )
    assert tool_text(CATALOG[1]) == "math factorial: n! of a non-negative integer. Parameters: n"
    assert tool_text(make_tool("ping", "")) == "ping"


def test_bm25_matches_a_camel_case_name_from_plain_words() -> None:
    bm25 = BM25Retriever(CATALOG, k=3)
    # "stock" and "quote" appear only in the name getStockQuote.
    assert names(bm25.retrieve("stock quote please"))[0] == "getStockQuote"
    assert names(bm25.retrieve("send an http request"))[0] == "HTTPRequest"
    # ... and a query written as an identifier matches too
    assert names(bm25.retrieve("translate_text"))[0] == "translateText"
    assert tokenize("Get the QuoteOf a stock") == ["get", "quote", "stock"]
    assert {"the", "of", "a"} <= STOP_WORDS


# --- rrf_fuse ------------------------------------------------------------------------------


def test_rrf_fuse_hand_computed_scores() -> None:
    fused = rrf_fuse([["a", "b", "c"], ["c", "a"]], k=60)
    scores = dict(fused)
    assert scores["a"] == pytest.approx(1 / 61 + 1 / 62)
    assert scores["b"] == pytest.approx(1 / 62)
    assert scores["c"] == pytest.approx(1 / 63 + 1 / 61)
    assert [n for n, _ in fused] == ["a", "c", "b"]  # 0.032522 > 0.032266 > 0.016129
    assert rrf_fuse([["x", "y"]], k=1) == [("x", 0.5), ("y", pytest.approx(1 / 3))]


def test_rrf_fuse_ties_keep_first_appearance_and_repeats_count_once() -> None:
    assert [n for n, _ in rrf_fuse([["a", "b"], ["b", "a"]])] == ["a", "b"]
    assert [n for n, _ in rrf_fuse([["b", "a"], ["a", "b"]])] == ["b", "a"]
    # three terms summed in different orders still tie
    three = rrf_fuse([["p", "q", "r"], ["q", "r", "p"], ["r", "p", "q"]], k=7)
    assert [n for n, _ in three] == ["p", "q", "r"]
    # disjoint rankings interleave by rank, the first ranking first at each rank
    assert [n for n, _ in rrf_fuse([["a", "b"], ["c", "d"]])] == ["a", "c", "b", "d"]
    # a repeat within one ranking counts at its first rank only
    assert dict(rrf_fuse([["a", "a", "b"]], k=10)) == {"a": 1 / 11, "b": 1 / 13}
    assert rrf_fuse([]) == [] and rrf_fuse([[], []]) == []


def test_rrf_fuse_weights() -> None:
    fused = rrf_fuse([["a", "b"], ["b", "a"]], k=60, weights=[1.0, 2.0])
    assert [n for n, _ in fused] == ["b", "a"]
    assert dict(fused)["b"] == pytest.approx(1 / 62 + 2 / 61)
    # weight zero: the ranking's names are kept, after the others, with score 0
    assert rrf_fuse([["a"], ["z"]], weights=[1, 0]) == [("a", pytest.approx(1 / 61)), ("z", 0.0)]


@pytest.mark.parametrize("k", [0, -1, float("nan"), True, "60"])
def test_rrf_fuse_refuses_a_bad_k(k: Any) -> None:
    with pytest.raises(RetrievalError, match="RRF constant k"):
        rrf_fuse([["a"]], k=k)


@pytest.mark.parametrize("weights", [[1.0], [1.0, 2.0, 3.0], [1.0, -1.0], [1.0, float("inf")]])
def test_rrf_fuse_refuses_bad_weights(weights: list[float]) -> None:
    with pytest.raises(RetrievalError, match="weight"):
        rrf_fuse([["a"], ["b"]], weights=weights)


# --- HybridRetriever -----------------------------------------------------------------------


def test_fusion_recovers_a_tool_one_member_ranks_low() -> None:
    bm25 = BM25Retriever(CATALOG)
    query = "will it rain in Paris this weekend"  # "rain" is in the forecast tool only
    assert [s > 0 for _, s in bm25.retrieve(query)] == [True] + [False] * 5
    assert names(bm25.retrieve(query, k=1)) == ["get_weather_forecast"]
    # A member that ranks the forecast tool 3rd.
    first = ["send_email", "HTTPRequest"]
    fake = FixedRetriever(CATALOG, [*first, "get_weather_forecast", "translateText"])
    hybrid = HybridRetriever([fake, bm25], k=3, depth=6)
    results = hybrid.retrieve(query)
    # BM25's five tools of score 0 share rank (2 + 6) / 2 = 4: the forecast tool has
    # 1/63 + 1/61, send_email 1/61 + 1/64, HTTPRequest 1/62 + 1/64.
    assert names(results) == ["get_weather_forecast", *first]
    assert [s for _, s in results] == pytest.approx(
        [1 / 63 + 1 / 61, 1 / 61 + 1 / 64, 1 / 62 + 1 / 64]
    )
    assert fake.asked[-1] == 6  # each member answered with its top depth
    assert [t.name for t in hybrid.tools_for(query, k=1)] == ["get_weather_forecast"]
    assert hybrid.last_seconds > 0 and hybrid.last_member_seconds[0] == 0.001
    # weights: trusting the fake member alone gives its order back
    alone = HybridRetriever([fake, bm25], weights=[1.0, 0.0])
    assert names(alone.retrieve(query, k=3)) == [*first, "get_weather_forecast"]


def test_tools_a_member_scores_equally_do_not_reorder_the_others() -> None:
    bm25 = BM25Retriever(CATALOG)
    query = "mail my boss"  # no word of any tool: BM25 scores every tool 0
    assert {s for _, s in bm25.retrieve(query)} == {0.0}
    order = ["send_email", "translateText", "HTTPRequest", "getStockQuote", "math.factorial"]
    fake = FixedRetriever(CATALOG, [*order, "get_weather_forecast"])
    assert names(HybridRetriever([fake, bm25]).retrieve(query, k=5)) == order
    # with a cut list, a tie at its end is taken to run on to the end of the catalog
    assert shared_ranks([3.0, 2.0, 0.0, 0.0], total=10) == [1.0, 2.0, 6.5, 6.5]
    assert shared_ranks([3.0, 2.0, 0.0, 0.0]) == [1.0, 2.0, 3.5, 3.5]
    assert shared_ranks([3.0, 2.0, 2.0, 1.0], total=10) == [1.0, 2.5, 2.5, 4.0]
    assert shared_ranks([1.0], total=10) == [1.0] and shared_ranks([]) == []


def test_hybrid_depth_below_k_still_gives_k_tools() -> None:
    fake = FixedRetriever(CATALOG, [t.name for t in CATALOG])
    hybrid = HybridRetriever([fake], depth=2)
    assert len(hybrid.retrieve("anything", k=5)) == 5 and fake.asked[-1] == 5


def test_hybrid_refuses_members_over_other_tools() -> None:
    bm25 = BM25Retriever(CATALOG)
    with pytest.raises(RetrievalError, match="other tools"):
        HybridRetriever([bm25, FixedRetriever(CATALOG[:-1], [])])
    with pytest.raises(RetrievalError, match="tool 0 is"):
        HybridRetriever([bm25, FixedRetriever(CATALOG[::-1], [])])
    with pytest.raises(RetrievalError, match="at least one"):
        HybridRetriever([])
    with pytest.raises(RetrievalError, match="depth"):
        HybridRetriever([bm25], depth=0)
    with pytest.raises(RetrievalError, match="one weight per ranking"):
        HybridRetriever([bm25], weights=[1.0, 1.0])
    with pytest.raises(RetrievalError, match="k must be"):
        HybridRetriever([bm25]).retrieve("x", k=0)


# --- LLMReranker ---------------------------------------------------------------------------


def test_reranker_promotes_the_models_picks(scripted) -> None:
    order = [t.name for t in CATALOG]  # the base ranks getStockQuote first, HTTPRequest last
    base = FixedRetriever(CATALOG, order)
    model = scripted(['{"ranking": [6, 3, 6, 9]}'])  # a repeat and a number out of range
    reranker = LLMReranker(base, model, depth=6, k=4)
    results = reranker.retrieve("fetch https://example.com")
    assert names(results) == [
        "HTTPRequest",
        "get_weather_forecast",
        "getStockQuote",
        "math.factorial",
    ]
    assert [s for _, s in results] == [1.0, 0.5, pytest.approx(1 / 3), 0.25]
    # one call, the prompt numbering the candidates, the reply constrained to their numbers
    (request,) = model.requests
    prompt = request.messages[-1]["content"]
    assert "fetch https://example.com" in prompt
    assert "1. getStockQuote: Latest market data" in prompt and "6. HTTPRequest: " in prompt
    schema = request.response_format["json_schema"]["schema"]
    ranking = schema["properties"]["ranking"]
    assert ranking["items"]["enum"] == [1, 2, 3, 4, 5, 6] and ranking["maxItems"] == 6
    assert schema["required"] == ["ranking"] and schema["additionalProperties"] is False
    # its cost, apart from the base's
    assert reranker.calls == 1 and reranker.fallbacks == 0 and reranker.tokens > 0
    assert 0 < reranker.rerank_seconds <= reranker.last_seconds
    assert reranker.rerank_seconds_total == reranker.rerank_seconds


def test_reranker_shows_only_depth_candidates_and_truncates_descriptions(scripted) -> None:
    long = make_tool("verbose_tool", "word " * 100)
    tools = [long, *CATALOG]
    base = FixedRetriever(tools, [t.name for t in tools])
    model = scripted(['```json\n{"ranking": [2]}\n```'])  # fenced JSON is read too
    reranker = LLMReranker(base, model, depth=3)
    results = reranker.retrieve("stock", k=5)
    # the pick first, then the other shown and unshown candidates in base order
    shown = ["getStockQuote", "verbose_tool", "math.factorial"]
    assert names(results) == [*shown, "get_weather_forecast", "send_email"]
    prompt = model.requests[0].messages[-1]["content"]
    assert "3. math.factorial" in prompt and "get_weather_forecast" not in prompt
    line = next(x for x in prompt.splitlines() if x.startswith("1. verbose_tool"))
    assert line.endswith("...") and len(line) < 230
    assert (
        model.requests[0].response_format["json_schema"]["schema"]["properties"]["ranking"][
            "maxItems"
        ]
        == 3
    )


@pytest.mark.parametrize(
    "reply",
    ["I think tool 3 is best.", "", '{"ranks": [1]}', '{"ranking": "3"}', "[3, 1]", "{bad json"],
)
def test_reranker_falls_back_to_the_base_order_on_a_bad_reply(scripted, reply: str) -> None:
    order = [t.name for t in CATALOG]
    reranker = LLMReranker(FixedRetriever(CATALOG, order), scripted([reply]), depth=6, k=6)
    assert names(reranker.retrieve("anything")) == order  # every candidate, base order
    assert reranker.calls == 1 and reranker.fallbacks == 1 and reranker.last_reply == reply


def test_reranker_keeps_every_candidate_and_skips_a_lone_one(scripted) -> None:
    order = [t.name for t in CATALOG]
    replies = [{"ranking": []}, {"ranking": ["2", True, 1]}, {"ranking": [3]}]
    model = scripted([json.dumps(r) for r in replies])
    reranker = LLMReranker(FixedRetriever(CATALOG, order), model, depth=6)
    assert names(reranker.retrieve("nothing fits")) == order  # no pick: the base order
    assert names(reranker.retrieve("x"))[:3] == [order[1], order[0], order[2]]
    assert names(reranker.retrieve("x", k=1)) == [order[2]]  # the model sees depth, not k
    assert reranker.fallbacks == 0 and reranker.calls == 3
    lone = LLMReranker(FixedRetriever(CATALOG[:1], order[:1]), scripted([]))
    assert names(lone.retrieve("x")) == order[:1] and lone.calls == 0


# --- the real embedder ---------------------------------------------------------------------


def test_hybrid_retriever_over_the_real_embedder(tmp_path) -> None:
    pytest.importorskip("faiss")
    pytest.importorskip("sentence_transformers")
    from toolpath.retrieval.embed import Embedder

    hybrid = hybrid_retriever(CATALOG, embedder=Embedder(threads=1), cache_dir=tmp_path, k=3)
    dense, bm25 = hybrid.retrievers
    assert (
        [t.name for t in dense.tools] == [t.name for t in bm25.tools] == [t.name for t in CATALOG]
    )
    assert names(hybrid.retrieve("Will it rain in Oslo tomorrow?"))[0] == "get_weather_forecast"
    assert names(hybrid.retrieve("what is the share price of ACME"))[0] == "getStockQuote"
    assert names(hybrid.retrieve("compute 5 factorial", k=1)) == ["math.factorial"]
    assert hybrid.last_seconds >= max(hybrid.last_member_seconds) > 0

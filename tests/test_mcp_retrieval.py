"""Retrieval at MCP scale: 500+ tools from one MCP server, the TPTU-v2 retriever over them,
the α-UMi agent showing the model only the top k, and the index cache noticing a changed
tool list."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from toolpath.agents.alpha_umi.agent import alpha_umi_agent
from toolpath.tools.catalog import load_catalog

pytest.importorskip("mcp")

SERVER = Path(__file__).parent / "fixtures" / "mcp_server.py"
BIG = f"mcp:{sys.executable} {SERVER} --synthetic 500"
PLANTED = {
    "How many degrees Rankine is 300 K?": "kelvin_to_rankine",
    "Say 'good morning' in Klingon": "klingon_translate",
    "Which airport uses the code LHR?": "airport_by_iata",
}


@pytest.fixture(scope="module")
def big():
    return load_catalog(BIG)


@pytest.fixture(scope="module")
def embedder():
    from toolpath.retrieval.embed import Embedder

    return Embedder(threads=1)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("mcp-index")


@pytest.fixture(scope="module")
def retriever(big, embedder, cache):
    from toolpath.retrieval.api_retriever import APIRetriever

    return APIRetriever(list(big), embedder=embedder, cache_dir=cache)


def test_the_server_lists_over_500_tools(big):
    assert len(big) == 8 + 3 + 500
    assert len({t.name for t in big}) == len(big)


@pytest.mark.parametrize("query", sorted(PLANTED))
def test_the_right_tool_is_in_the_top_5(retriever, query):
    top = [t.name for t, _ in retriever.retrieve(query, k=5)]
    assert PLANTED[query] in top, top


def test_each_step_shows_only_the_top_k_and_calls_the_server(retriever, scripted):
    planner = scripted(["Convert it. Next: caller", "Done. Next: conclusion"], name="planner")
    caller = scripted(['Action: kelvin_to_rankine\nAction Input: {"kelvin": 300}'], name="caller")
    summarizer = scripted(["300 K is 540 degrees Rankine."], name="summarizer")
    state = alpha_umi_agent(
        tools=[],
        planner=planner,
        caller=caller,
        summarizer=summarizer,
        retriever=retriever,
        k_tools=3,
    ).invoke("How many degrees Rankine is 300 K?")
    assert len(state["tools"]) == 3 and "kelvin_to_rankine" in state["tools"]
    prompt = "\n".join(m["content"] for m in planner.requests[0].messages)
    shown = [line[2:].split(":")[0] for line in prompt.splitlines() if line.startswith("- ")]
    assert shown == state["tools"]
    assert state["conversation"][3]["value"] == "540 degrees Rankine"  # from the MCP server


def test_the_index_cache_follows_the_servers_tool_list(big, retriever, embedder, cache):
    from toolpath.retrieval.api_retriever import APIRetriever

    again = APIRetriever(list(load_catalog(BIG)), embedder=embedder, cache_dir=cache)
    assert again.index.reused
    grown = load_catalog(f"mcp:env TOOLPATH_TEST_MCP_EXTRA=brand_new_tool {BIG[4:]}")
    assert len(grown) == len(big) + 1
    changed = APIRetriever(list(grown), embedder=embedder, cache_dir=cache)
    assert not changed.index.reused
    assert len(changed.index) == len(big) + 1

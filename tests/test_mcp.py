"""MCP tools against real servers started here: the test server written with the SDK's
MCPServer (stdio and Streamable HTTP), and the third-party ``mcp-server-time`` from PyPI."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from localserver import free_port, listening

from toolpath.errors import CatalogError, ToolError
from toolpath.tools.catalog import McpText, load_catalog, load_catalogs, mcp_catalog, mcp_connection

pytest.importorskip("mcp")

SERVER = Path(__file__).parent / "fixtures" / "mcp_server.py"
STDIO = f"mcp:{sys.executable} {SERVER}"


@pytest.fixture(scope="module")
def catalog():
    return load_catalog(STDIO)


def http_command(port: int) -> list[str]:
    return [sys.executable, str(SERVER), "http", str(port)]


@pytest.fixture(scope="module")
def http_server() -> Iterator[str]:
    """The test server on Streamable HTTP, 127.0.0.1; yields its catalog source."""
    with listening(http_command) as port:
        yield f"mcp+http://127.0.0.1:{port}/mcp"


def test_stdio_tools_carry_the_servers_schemas(catalog):
    names = [t.name for t in catalog]
    assert names == ["add", "echo", "fail", "nap", "picture", "weather", "crash", "counter"]
    echo = catalog.by_name("echo").parameters
    assert echo["required"] == ["text"]
    assert echo["properties"]["times"]["default"] == 1
    assert catalog.by_name("add").description.startswith("Add two integers")
    assert catalog.by_name("add").context == "MCP server toolpath-test"


def test_calls_reach_the_server_from_sync_and_async_code(catalog):
    assert catalog.by_name("add").run({"a": 2, "b": 40}) == "42"
    assert catalog.by_name("echo").run({"text": "hi", "times": 3}) == "hi hi hi"
    assert asyncio.run(catalog.by_name("add").arun({"a": "5", "b": 6})) == "11"  # coerced


def test_a_tool_error_is_a_tool_error_with_the_servers_reason(catalog):
    with pytest.raises(ToolError, match="failed on purpose: bad input"):
        catalog.by_name("fail").run({"reason": "bad input"})
    assert catalog.by_name("add").run({"a": 1, "b": 1}) == "2"  # the session goes on


def test_images_and_structured_content_are_kept(catalog):
    picture = catalog.by_name("picture").run({})
    assert isinstance(picture, McpText)
    assert picture.startswith("a red pixel") and "[image attached: image/png]" in picture
    (image,) = picture.attachments
    assert image.kind == "image" and image.raw().startswith(b"\x89PNG")
    weather = catalog.by_name("weather").run({"city": "Oslo"})
    assert weather.structured == {"city": "Oslo", "celsius": 21.5, "sky": "clear"}
    assert json.loads(weather)["sky"] == "clear"


def test_resources_and_prompts_are_readable():
    server = mcp_connection(STDIO)
    (resource,) = server.resources()
    assert str(resource.uri) == "notes://readme"
    assert "the answer is 42" in server.read_resource("notes://readme")
    assert [p.name for p in server.prompts()] == ["review"]
    assert server.get_prompt("review", {"code": "x = 1"}) == [
        {"role": "user", "content": "Please review this code:\nx = 1"}
    ]


def test_a_call_past_the_timeout_fails_and_the_server_keeps_serving():
    source = f"mcp:{sys.executable} {SERVER} --synthetic 0"  # its own connection
    quick = mcp_catalog(source, timeout=1.0)
    start = time.monotonic()
    with pytest.raises(ToolError, match=r"nap timed out after 1s"):
        quick.by_name("nap").run({"seconds": 20})
    assert time.monotonic() - start < 10
    assert quick.by_name("add").run({"a": 3, "b": 4}) == "7"


def test_a_server_that_exits_is_restarted_once_then_fails_clearly():
    source = f"mcp:{sys.executable} {SERVER} --synthetic 1"  # a connection of its own
    tools = load_catalog(source)
    first = tools.by_name("counter").run({})
    assert first.startswith("call 1 in process")
    tools.by_name("counter").run({})
    with pytest.raises(ToolError, match="stopped during the call to crash; it was restarted"):
        tools.by_name("crash").run({})
    again = tools.by_name("counter").run({})  # a fresh process: its count starts over
    assert again.startswith("call 1 in process") and again != first
    with pytest.raises(ToolError, match="unavailable: it stopped again after one restart"):
        tools.by_name("crash").run({})
    with pytest.raises(ToolError, match="unavailable"):
        tools.by_name("add").run({"a": 1, "b": 2})


def test_a_third_party_server_from_pypi():
    pytest.importorskip("mcp_server_time")
    tools = load_catalog(f"mcp:{sys.executable} -m mcp_server_time --local-timezone UTC")
    assert {"get_current_time", "convert_time"} <= {t.name for t in tools}
    now = json.loads(tools.by_name("get_current_time").run({"timezone": "Asia/Tokyo"}))
    assert now["timezone"] == "Asia/Tokyo" and now["datetime"].endswith("+09:00")
    converted = json.loads(
        tools.by_name("convert_time").run(
            {"source_timezone": "UTC", "time": "12:00", "target_timezone": "Asia/Tokyo"}
        )
    )
    assert converted["target"]["datetime"][11:16] == "21:00"
    with pytest.raises(ToolError, match="Invalid timezone"):
        tools.by_name("get_current_time").run({"timezone": "Mars/Olympus"})


def test_streamable_http(http_server):
    tools = load_catalog(http_server)
    assert "add" in tools
    assert tools.by_name("add").run({"a": 20, "b": 22}) == "42"
    assert "the answer is 42" in mcp_connection(http_server).read_resource("notes://readme")


def test_two_servers_with_the_same_tool_names_get_prefixes(http_server):
    pytest.importorskip("mcp_server_time")
    time_server = f"mcp:{sys.executable} -m mcp_server_time"
    renamed = f"mcp:env TOOLPATH_TEST_MCP_NAME=other {sys.executable} {SERVER}"
    both = load_catalogs([STDIO, renamed, time_server])
    names = {t.name for t in both}
    assert {"toolpath-test_add", "other_add", "get_current_time"} <= names
    assert "add" not in names
    assert both.original_name("other_add") == "add"
    assert both.by_name("other_add").run({"a": 1, "b": 2}) == "3"


def test_bad_sources_are_clear_catalog_errors(tmp_path):
    with pytest.raises(CatalogError, match="needs a command"):
        load_catalog("mcp:   ")
    with pytest.raises(CatalogError, match="could not start"):
        load_catalog(f"mcp:{tmp_path}/no-such-server")
    with pytest.raises(CatalogError, match=re.escape("mcp+http://127.0.0.1:9/mcp")):
        mcp_catalog(f"mcp+http://127.0.0.1:{9}/mcp", timeout=10)


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "toolpath.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_tools_list_shows_tools_resources_and_prompts():
    res = cli("tools", "list", "--catalog", STDIO)
    assert res.returncode == 0, res.stderr
    assert "8 tools" in res.stdout
    assert "Add two integers" in res.stdout and "MCP server toolpath-test" in res.stdout
    assert "notes://readme" in res.stdout and "review" in res.stdout


def test_tools_list_json_gives_openai_specs_for_several_sources(tmp_path):
    own = tmp_path / "own.json"
    own.write_text(
        json.dumps([{"name": "add", "description": "Mine.", "parameters": {"type": "object"}}])
    )
    res = cli("tools", "list", "--catalog", STDIO, "--catalog", str(own), "--json")
    assert res.returncode == 0, res.stderr
    specs = {s["function"]["name"]: s for s in json.loads(res.stdout)}
    assert {"toolpath-test_add", "own_add", "echo"} <= set(specs)
    assert specs["own_add"]["function"]["description"] == "Mine."


def test_cli_errors_are_one_clear_line(tmp_path):
    res = cli("tools", "list", "--catalog", f"mcp:{tmp_path}/missing-server")
    assert res.returncode == 2
    assert "could not start" in res.stderr and "Traceback" not in res.stderr
    bad = cli("mcp", "serve", "--http", "nonsense")
    assert bad.returncode == 2 and "HOST:PORT" in bad.stderr


def test_a_server_that_was_down_is_tried_again_later():
    port = free_port()
    source = f"mcp+http://127.0.0.1:{port}/mcp"
    with pytest.raises(CatalogError, match="could not start"):
        mcp_catalog(source, timeout=10)
    with listening(http_command, port):
        assert load_catalog(source).by_name("add").run({"a": 1, "b": 1}) == "2"

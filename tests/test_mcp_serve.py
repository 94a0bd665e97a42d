"""``toolpath mcp serve`` driven by the MCP SDK's own client: in process with the scripted
model, and as a real stdio process with the embedded 0.5B model."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("mcp")

from mcp import Client, StdioServerParameters

from toolpath.cli.mcp import mcp_server


def call(server: Any, tool: str, arguments: dict[str, Any]) -> tuple[Any, list[Any]]:
    """Call ``tool`` through the SDK client; the result and the progress messages."""
    seen: list[Any] = []

    async def progress(done: float, total: float | None, message: str | None) -> None:
        seen.append((done, message))

    async def go() -> Any:
        async with Client(server) as client:
            return await client.call_tool(tool, arguments, progress_callback=progress)

    return asyncio.run(go()), seen


def test_the_server_lists_the_three_agents(scripted):
    async def names() -> list[str]:
        async with Client(mcp_server(scripted([]))) as client:
            return [t.name for t in (await client.list_tools()).tools]

    assert asyncio.run(names()) == ["solve_math", "run_tools", "costa_edit_image"]


def test_solve_math_runs_the_program_and_reports_progress(scripted):
    model = scripted(["```python\nprice = 3 * 14\nprint(price)\n```"])
    result, progress = call(mcp_server(model), "solve_math", {"problem": "3 pens at $14?"})
    assert not result.is_error
    assert result.structured_content["answer"] == "42"
    assert result.structured_content["output"] == "42"
    assert [m for _, m in progress] == ["step 1: write_code", "step 2: run_code"]


def test_run_tools_calls_the_calculator(scripted):
    model = scripted(
        [
            json.dumps({"tool": "calculator", "arguments": {"expression": "1234 * 5678"}}),
            json.dumps({"final_answer": "7006652"}),
        ]
    )
    result, progress = call(mcp_server(model), "run_tools", {"task": "1234 * 5678?"})
    assert result.structured_content == {"answer": "7006652", "status": "done"}
    assert len(progress) >= 3
    assert "Observation from calculator: 7006652" in json.dumps(model.requests[-1].messages)


def test_a_failing_agent_is_an_error_result(scripted):
    result, _ = call(
        mcp_server(scripted([])),
        "costa_edit_image",
        {"image_path": "/no/such.png", "instruction": "blur it", "output_path": "/tmp/x.png"},
    )
    assert result.is_error
    assert "such.png" in result.content[0].text


@pytest.mark.model
def test_a_real_stdio_server_with_the_embedded_model(local_model_path, tmp_path):
    env = {
        "TOOLPATH_CACHE_DIR": str(Path(local_model_path).parent),
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
    }
    if "TOOLPATH_DATA_DIR" in os.environ:
        env["TOOLPATH_DATA_DIR"] = os.environ["TOOLPATH_DATA_DIR"]
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "toolpath.cli", "mcp", "serve", "--model", "local:qwen2.5-coder-0.5b"],
        env=env,
    )
    task = {"task": "What is 1234 * 5678? Use the calculator."}
    result, progress = call(params, "run_tools", task)
    assert not result.is_error, result.content
    assert "7006652" in result.structured_content["answer"].replace(",", "")
    assert result.structured_content["status"] == "done"
    assert progress


def test_serve_over_streamable_http(tmp_path):
    """``toolpath mcp serve --http``: a real process on 127.0.0.1, reached by the SDK client
    (no model is loaded: listing and a failing call need none)."""
    from localserver import listening

    def serve(port: int) -> list[str]:
        return [sys.executable, "-m", "toolpath.cli", "mcp", "serve", "--http", f"127.0.0.1:{port}"]

    with listening(serve) as port:
        url = f"http://127.0.0.1:{port}/mcp"

        async def go() -> tuple[list[str], Any]:
            async with Client(url) as client:
                names = [t.name for t in (await client.list_tools()).tools]
                bad = {"image_path": str(tmp_path / "none.png"), "instruction": "x"}
                result = await client.call_tool(
                    "costa_edit_image", {**bad, "output_path": str(tmp_path / "o.png")}
                )
                return names, result

        names, result = asyncio.run(go())
    assert names == ["solve_math", "run_tools", "costa_edit_image"]
    assert result.is_error and "none.png" in result.content[0].text

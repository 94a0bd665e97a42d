"""OpenAICompatModel against a real fault-injecting HTTP server (tests/faultserver.py)."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
from faultserver import FaultServer

from toolpath.errors import BackendError, ConfigError, EndpointError
from toolpath.llm.base import StreamEvent, user
from toolpath.llm.openai_compat import OpenAICompatModel

HELLO = [user("hi")]
ADD_CALL = {
    "id": "call_add1",
    "type": "function",
    "function": {"name": "add", "arguments": json.dumps({"a": 1, "b": 2})},
}
ADD_TOOL = {
    "type": "function",
    "function": {
        "name": "add",
        "description": "Add two integers.",
        "parameters": {
            "type": "object",
            "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
            "required": ["a", "b"],
        },
    },
}


def make(server: FaultServer, **kwargs: Any) -> OpenAICompatModel:
    options: dict[str, Any] = {"max_retries": 4, "backoff_base": 0.01, "backoff_max": 0.05}
    return OpenAICompatModel("fault-model", base_url=server.url, **{**options, **kwargs})


@pytest.fixture
def free_port() -> int:
    """A port on 127.0.0.1 with nothing listening (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def collect(events: Iterator[StreamEvent]) -> tuple[list[str], Any]:
    events = list(events)
    assert events[-1].completion is not None
    assert all(e.completion is None for e in events[:-1])
    return [e.delta for e in events[:-1]], events[-1].completion


def test_success_returns_content_usage_latency_and_finish_reason() -> None:
    with FaultServer(reply="hello there", latency_s=0.05) as server, make(server) as model:
        completion = model.complete(HELLO)
        assert completion.message == {"role": "assistant", "content": "hello there"}
        assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (7, 3)
        assert 0.05 <= completion.latency_s < 2
        assert completion.finish_reason == "stop"
        assert model.last_attempts == 1
        sent = server.requests[0]
        assert sent["model"] == "fault-model" and sent["messages"] == HELLO
        assert sent["temperature"] == 0.0
        for unset in ("tools", "stop", "max_tokens", "response_format", "stream"):
            assert unset not in sent
        assert server.headers[0]["authorization"] == "Bearer not-needed"


@pytest.mark.parametrize("fault", ["500", "503", "429", "malformed", "empty", "drop", "cut"])
def test_transient_fault_is_retried(fault: str) -> None:
    with FaultServer([fault, fault], reply="recovered") as server, make(server) as model:
        assert model.complete(HELLO).content == "recovered"
        assert model.last_attempts == 3
        assert server.outcomes == [fault, fault, "ok"]


def test_persistent_fault_gives_endpoint_error_after_max_retries_plus_one() -> None:
    with FaultServer(["500"] * 6) as server, make(server, max_retries=3) as model:
        with pytest.raises(EndpointError) as info:
            model.complete(HELLO)
        assert model.last_attempts == 4 and len(server.requests) == 4
        message = str(info.value)
        assert server.url in message and "after 4 tries" in message and "HTTP 500" in message
        assert "\n" not in message


def test_unreachable_server_gives_actionable_endpoint_error(free_port: int) -> None:
    url = f"http://127.0.0.1:{free_port}/v1"
    model = OpenAICompatModel("m", base_url=url, max_retries=2, backoff_base=0.01)
    with model, pytest.raises(EndpointError) as info:
        model.complete(HELLO)
    assert model.last_attempts == 3
    assert str(info.value) == (
        f"{url} did not answer after 3 tries (last error: connection refused); "
        "check that the server is running and the base URL is right"
    )


@pytest.mark.parametrize(
    ("status", "hint"),
    [("400", "bad request"), ("401", "API key"), ("404", "model name")],
)
def test_client_errors_are_not_retried(status: str, hint: str) -> None:
    with FaultServer([status] * 3) as server, make(server) as model:
        with pytest.raises(BackendError) as info:
            model.complete(HELLO)
        assert not isinstance(info.value, EndpointError)
        assert f"HTTP {status}" in str(info.value) and hint in str(info.value)
        assert model.last_attempts == 1 and len(server.requests) == 1


def test_timeout_is_retried_then_bounded() -> None:
    with FaultServer(["timeout"], hang_s=3) as server, make(server, timeout=0.5) as model:
        start = time.monotonic()
        assert model.complete(HELLO).content == "ok"
        assert model.last_attempts == 2 and time.monotonic() - start < 2.5
    server = FaultServer(["timeout"] * 3, hang_s=3)
    with server, make(server, timeout=0.5, max_retries=1) as model:
        start = time.monotonic()
        with pytest.raises(EndpointError, match=r"did not answer after 2 tries .*timed out"):
            model.complete(HELLO)
        assert time.monotonic() - start < 2.5 and len(server.requests) == 2


def test_retry_after_is_honoured_and_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    # With the jitter pinned to its maximum, ignoring Retry-After would wait 3 s per retry.
    monkeypatch.setattr("toolpath.llm.openai_compat.random.uniform", lambda a, b: b)
    for after in ("0", "600"):
        cap = 3.0 if after == "0" else 0.1
        server = FaultServer(["429", "503"], retry_after=after)
        with server, make(server, backoff_base=3.0, backoff_max=cap) as model:
            start = time.monotonic()
            assert model.complete(HELLO).content == "ok"
            assert model.last_attempts == 3 and time.monotonic() - start < 1.5
    model = OpenAICompatModel("m", base_url="http://x/v1", backoff_base=1.0, backoff_max=4.0)
    assert model._backoff(0, 0.0) == 0.0
    assert model._backoff(0, 100.0) == 4.0
    assert model._backoff(5, None) == 4.0  # the pinned jitter, capped at backoff_max


def test_stream_deltas_join_to_final_content() -> None:
    with FaultServer(reply="streams come in pieces") as server, make(server) as model:
        deltas, completion = collect(model.stream(HELLO, max_tokens=20))
        assert len(deltas) >= 3
        assert "".join(deltas) == completion.content == "streams come in pieces"
        assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (7, 3)
        assert completion.finish_reason == "stop" and completion.latency_s > 0
        sent = server.requests[0]
        assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}
        assert sent["max_tokens"] == 20


def test_stream_retries_only_before_the_first_chunk() -> None:
    server = FaultServer(["500", "malformed", "empty", "drop"], reply="a b")
    with server, make(server) as model:
        deltas, completion = collect(model.stream(HELLO))
        assert "".join(deltas) == completion.content == "a b"
        assert model.last_attempts == 5
    with FaultServer(["cut"], reply="one two three") as server, make(server) as model:
        seen: list[str] = []
        with pytest.raises(EndpointError, match="broke off the stream"):
            seen.extend(event.delta for event in model.stream(HELLO))
        assert seen == ["one"] and len(server.requests) == 1


def test_stream_retries_once_without_stream_options_when_rejected() -> None:
    server = FaultServer(reject_stream_options=True, reply="no usage here")
    with server, make(server) as model:
        deltas, completion = collect(model.stream(HELLO))
        assert "".join(deltas) == completion.content == "no usage here"
        assert model.last_attempts == 2
        assert "stream_options" in server.requests[0]
        assert "stream_options" not in server.requests[1]


async def test_acomplete_is_async_and_retries() -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.02)
            ticks += 1

    server = FaultServer(["503", "drop"], reply="async ok", latency_s=0.2)
    with server, make(server) as model:
        task = asyncio.create_task(ticker())
        completion = await model.acomplete(HELLO)
        task.cancel()
        assert completion.content == "async ok" and model.last_attempts == 3
        assert model._client is None  # no sync client (and no thread) was used
        assert ticks >= 10  # the event loop kept running while the request waited
    with FaultServer(["500"] * 5) as server, make(server, max_retries=2) as model:
        with pytest.raises(EndpointError, match="after 3 tries"):
            await model.acomplete(HELLO)
        assert len(server.requests) == 3


async def test_astream_deltas_join_to_final_content() -> None:
    with FaultServer(["429"], reply="async streams too") as server, make(server) as model:
        events = [event async for event in model.astream(HELLO)]
        deltas = [e.delta for e in events if e.completion is None]
        completion = events[-1].completion
        assert completion is not None and len(deltas) >= 3
        assert "".join(deltas) == completion.content == "async streams too"
        assert completion.usage.completion_tokens == 3 and model.last_attempts == 2


def test_async_client_works_across_event_loops() -> None:
    # Pooled keep-alive connections belong to the loop that opened them.
    with FaultServer(keep_alive=True) as server, make(server) as model:
        assert asyncio.run(model.acomplete(HELLO)).content == "ok"
        assert asyncio.run(model.acomplete(HELLO)).content == "ok"


def test_native_tool_calls_are_parsed() -> None:
    with FaultServer(tool_calls=[ADD_CALL]) as server, make(server) as model:
        completion = model.complete(HELLO, tools=[ADD_TOOL])
        assert completion.message["tool_calls"] == [ADD_CALL]
        assert completion.message["content"] is None
        assert completion.finish_reason == "tool_calls"
        (call,) = completion.tool_calls
        assert (call.id, call.name, call.arguments) == ("call_add1", "add", {"a": 1, "b": 2})
        assert server.requests[0]["tools"] == [ADD_TOOL]
        # streamed: the name and the argument pieces arrive in separate deltas
        deltas, streamed = collect(model.stream(HELLO, tools=[ADD_TOOL]))
        assert deltas == [] and streamed.message["tool_calls"] == [ADD_CALL]


def test_requests_carry_extra_body_and_set_options() -> None:
    with FaultServer() as server:
        with make(server, extra_body={"cache_prompt": True, "top_k": 1}) as model:
            fmt = {"type": "json_object"}
            model.complete(HELLO, stop=["\n\n"], max_tokens=5, response_format=fmt)
            model.complete(HELLO, extra_body={"top_k": 40, "seed": 7})
            list(model.stream(HELLO, temperature=0.7))
        first, second, third = server.requests
        assert first["cache_prompt"] is True and first["top_k"] == 1
        assert first["stop"] == ["\n\n"] and first["max_tokens"] == 5
        assert first["response_format"] == fmt
        assert second["cache_prompt"] is True and second["top_k"] == 40 and second["seed"] == 7
        assert third["cache_prompt"] is True and third["temperature"] == 0.7


def test_an_unknown_generation_option_is_refused_before_any_request() -> None:
    from toolpath.llm.replicas import ReplicaPool
    from toolpath.llm.scripted import ScriptedModel

    with FaultServer() as server, make(server) as model:
        with pytest.raises(TypeError, match="max_token"):
            model.complete(HELLO, max_token=5)  # type: ignore[call-arg]
        with pytest.raises(TypeError, match="top_p"):
            asyncio.run(model.acomplete(HELLO, top_p=0.9))  # type: ignore[call-arg]
        with pytest.raises(TypeError, match="seed"):
            list(ReplicaPool([model]).stream(HELLO, seed=1))  # type: ignore[call-arg]
        assert server.requests == []
    with pytest.raises(TypeError, match="extra_body"):  # the HTTP backend's own option
        ScriptedModel(["hi"]).complete(HELLO, extra_body={})  # type: ignore[call-arg]


def test_api_key_resolution(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        OpenAICompatModel("gpt-4o-mini")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    with FaultServer() as server, make(server) as model:
        model.complete(HELLO)
        assert model.name == "fault-model"
        assert server.headers[0]["authorization"] == "Bearer sk-from-env"
    with FaultServer() as server, make(server, api_key="sk-arg", name="mine") as model:
        model.complete(HELLO)
        assert model.name == "mine" and repr(model) == "OpenAICompatModel('mine')"
        assert server.headers[0]["authorization"] == "Bearer sk-arg"


def test_import_does_not_load_openai() -> None:
    code = "import sys, toolpath.llm.openai_compat; print('openai' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_server_without_native_tools_switches_the_agent_to_json_mode(caplog) -> None:
    # like `vllm serve` without --enable-auto-tool-choice --tool-call-parser: tools= is a 400
    from scripted_episodes import calculator_agent, server_policy

    from toolpath.errors import NativeToolsUnsupportedError

    with FaultServer(respond=server_policy, reject_tools=True) as srv:
        model = OpenAICompatModel("fault-model", base_url=srv.url, max_retries=0)
        with pytest.raises(NativeToolsUnsupportedError, match="enable-auto-tool-choice"):
            model.complete(HELLO, tools=[ADD_TOOL])
        assert model.last_attempts == 1  # refused, not retried
        assert model.tool_mode == "native"  # the model alone does not change its mode

        for run in (calculator_agent(model).invoke, calculator_agent(model).ainvoke):
            state = run("Compute 6 * 7 + 1.")
            if asyncio.iscoroutine(state):
                state = asyncio.run(state)
            assert state["answer"] == "43" and state["status"] == "done"
        assert model.tool_mode == "json"  # switched once, for good
        native = [r for r in srv.requests if r.get("tools")]
        assert len(native) == 2  # the direct call above, then the agent's first request only
        assert all("response_format" in r for r in srv.requests[2:])
        model.close()
    warnings = [r for r in caplog.records if "refused native tool calls" in r.getMessage()]
    assert len(warnings) == 1 and "--tool-call-parser" in warnings[0].getMessage()


@pytest.mark.parametrize(
    ("message", "refuses"),
    [
        ('"auto" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set',
         True),  # vllm serve without its tool flags
        ("registry.ollama.ai/library/gemma:2b does not support tools", True),  # Ollama
        ("tools param requires --jinja flag", True),  # llama.cpp's server
        ("This model's maximum context length is 4096 tokens", False),
        ("Invalid value for 'temperature'", False),
    ],
)  # fmt: skip
def test_which_400s_mean_no_native_tools(message: str, refuses: bool) -> None:
    from toolpath.llm.openai_compat import _REFUSES_TOOLS

    assert bool(_REFUSES_TOOLS.search(message)) is refuses


def test_aclose_closes_pooled_keep_alive_connections_inside_the_loop() -> None:
    async def run(server: FaultServer) -> None:
        model = OpenAICompatModel("fault-model", base_url=server.url)
        for _ in range(2):
            await model.acomplete(HELLO)
            events = [e async for e in model.astream(HELLO)]
            assert events[-1].completion is not None
        assert server._conns  # the client keeps its connection for the next request
        await model.aclose()
        for _ in range(100):  # the server's handler sees the close and forgets the socket
            if not server._conns:
                break
            await asyncio.sleep(0.02)
        assert not server._conns
        await model.aclose()  # twice is fine

    with FaultServer(keep_alive=True) as server:
        asyncio.run(run(server))

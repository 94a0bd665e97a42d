"""ReplicaPool over real OpenAI-compatible servers on 127.0.0.1 (tests/faultserver.py):
least-outstanding routing, fail-over when a replica dies mid-eval, all-down, recovery."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from faultserver import FaultServer
from scripted_episodes import (
    ArithmeticTask,
    arithmetic_examples,
    calculator_agent,
    gsm8k_file,
    server_policy,
    sum_policy,
)

from toolpath.errors import BackendError, ConfigError, EndpointError
from toolpath.evals.harness import load_records, run_eval
from toolpath.evals.ray_executor import run_math_eval
from toolpath.llm.base import StreamEvent, user
from toolpath.llm.replicas import ReplicaPool, load_replicas, parse_endpoints
from toolpath.llm.scripted import ScriptedModel

HELLO = [user("hi")]
FAST = {"backoff_base": 0.01, "backoff_max": 0.02, "timeout": 10.0}


def free_port() -> int:
    """A port on 127.0.0.1 with nothing listening (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pool_of(*servers: FaultServer, **kwargs: Any) -> ReplicaPool:
    return load_replicas([s.url for s in servers], "fault-model", **{**FAST, **kwargs})


def hits(server: FaultServer) -> int:
    return len(server.requests)


def test_ties_go_round_robin() -> None:
    with FaultServer(reply="a") as a, FaultServer(reply="b") as b, pool_of(a, b) as pool:
        replies = [pool.complete(HELLO).content for _ in range(10)]
        assert replies == ["a", "b"] * 5  # nothing in flight between calls: every choice ties
        assert (hits(a), hits(b)) == (5, 5)
        stats = {s["replica"]: s for s in pool.stats()}
        assert stats[a.url]["requests"] == stats[a.url]["ok"] == 5
        assert all(s["in_flight"] == 0 and s["healthy"] for s in stats.values())
        assert pool.name == "fault-model" and pool.tool_mode == "native"


async def test_least_outstanding_prefers_the_idle_replica() -> None:
    slow = FaultServer(reply="slow", latency_s=0.6, keep_alive=True)
    fast = FaultServer(reply="fast", latency_s=0.02, keep_alive=True)
    with slow, fast, pool_of(slow, fast) as pool:
        gate = asyncio.Semaphore(4)
        peak: list[int] = []

        async def one() -> str:
            async with gate:
                peak.append(sum(s["in_flight"] for s in pool.stats()))
                return (await pool.acomplete(HELLO)).content

        replies = await asyncio.gather(*(one() for _ in range(40)))
        assert len(replies) == 40
        # round-robin would send 20 to the slow replica; least-outstanding sends it only
        # the requests that find it with fewer in flight than the fast one
        assert hits(slow) + hits(fast) == 40
        assert hits(slow) <= 8, (hits(slow), hits(fast))
        assert replies.count("slow") == hits(slow)
        assert max(peak) <= 3  # the 4th request sees the other 3 in flight
        assert all(s["in_flight"] == 0 for s in pool.stats())


async def test_replica_killed_mid_eval_loses_no_episode(tmp_path: Path) -> None:
    a = FaultServer(respond=server_policy, latency_s=0.05, keep_alive=True)
    b = FaultServer(respond=server_policy, latency_s=0.05, keep_alive=True)
    with a, b:
        pool = pool_of(a, b, tool_mode="json", cooldown_s=60.0)
        killed_after: list[int] = []

        def killer() -> None:
            deadline = time.monotonic() + 20
            while hits(a) < 12 and time.monotonic() < deadline:
                time.sleep(0.005)
            a.kill()
            killed_after.append(hits(a))

        thread = threading.Thread(target=killer)
        thread.start()
        try:
            result = await run_eval(
                ArithmeticTask(),
                arithmetic_examples(40),
                calculator_agent(pool),
                out_dir=tmp_path,
                method="pool",
                concurrency=8,
                progress=False,
            )
        finally:
            thread.join()
            pool.close()

        assert killed_after and 12 <= killed_after[0] < 80, "the replica was not killed mid-run"
        records = load_records(tmp_path / "pool.jsonl")
        assert sorted(r["id"] for r in records) == [f"q-{i:04d}" for i in range(40)]
        assert [r["error"] for r in records] == [None] * 40
        assert result.summary["methods"]["pool"]["scores"] == {"exact": 100.0}
        assert hits(a) == killed_after[0]  # nothing reached it after the kill
        # 2 requests per episode; those a had in flight when it died were sent again to b
        assert hits(a) + hits(b) >= 80 and hits(b) > 40
        stats = {s["replica"]: s for s in pool.stats()}
        assert stats[a.url]["failures"] >= 1 and not stats[a.url]["healthy"]
        assert stats[b.url]["failures"] == 0 and stats[b.url]["healthy"]
        assert "connection" in (stats[a.url]["last_error"] or "").lower()


def test_all_replicas_down_raises_endpoint_error() -> None:
    urls = [f"http://127.0.0.1:{free_port()}/v1", f"http://127.0.0.1:{free_port()}/v1"]
    with load_replicas(urls, "m", **FAST) as pool:
        start = time.monotonic()
        with pytest.raises(EndpointError, match="all 2 replicas") as info:
            pool.complete(HELLO)
        assert time.monotonic() - start < 5
        assert urls[0] in str(info.value) and urls[1] in str(info.value)
        assert [s["failures"] for s in pool.stats()] == [1, 1]
        assert not any(s["healthy"] for s in pool.stats())
        with pytest.raises(EndpointError, match="all 2 replicas"):
            asyncio.run(pool.acomplete(HELLO))
        with pytest.raises(EndpointError):
            list(pool.stream(HELLO))


def test_down_replica_returns_after_its_cooldown() -> None:
    # A fails twice (its own try and one retry): the pool marks it down, B answers
    a, b = FaultServer(["503", "503"], reply="a"), FaultServer(reply="b")
    with a, b, pool_of(a, b, cooldown_s=0.4) as pool:
        assert pool.complete(HELLO).content == "b"
        assert [s["healthy"] for s in pool.stats()] == [False, True]
        assert [pool.complete(HELLO).content for _ in range(3)] == ["b"] * 3
        assert hits(a) == 2
        time.sleep(0.45)
        assert pool.complete(HELLO).content == "a"  # the trial after the cool-off
        assert [s["healthy"] for s in pool.stats()] == [True, True]
        assert {pool.complete(HELLO).content for _ in range(4)} == {"a", "b"}


def test_probe_brings_back_a_restarted_replica() -> None:
    a, b = FaultServer(reply="a").start(), FaultServer(reply="b").start()
    port_a = a.port
    try:
        with pool_of(a, b, cooldown_s=60.0) as pool:
            a.kill()
            assert pool.complete(HELLO).content == "b"
            assert pool.probe() == {a.url: False, b.url: True}
            a = FaultServer(reply="a again", port=port_a).start()
            assert pool.probe() == {a.url: True, b.url: True}
            assert {pool.complete(HELLO).content for _ in range(2)} == {"a again", "b"}

            # on demand: with every replica down, a request probes before giving up
            a.kill()
            b.kill()
            with pytest.raises(EndpointError):
                pool.complete(HELLO)
            a = FaultServer(reply="a third", port=port_a).start()
            assert pool.complete(HELLO).content == "a third"
    finally:
        a.stop()
        b.stop()


def test_stream_fails_over_only_before_the_first_event() -> None:
    a, b = FaultServer(["drop"], reply="a"), FaultServer(reply="b says hi")
    with a, b, pool_of(a, b, max_retries=0) as pool:
        events = list(pool.stream(HELLO))
        assert events[-1].completion is not None
        assert events[-1].completion.content == "b says hi"
        assert (hits(a), hits(b)) == (1, 1)

    a, b = FaultServer(["cut"], reply="one two three"), FaultServer(reply="b")
    with a, b, pool_of(a, b, max_retries=0) as pool:
        got: list[StreamEvent] = []
        with pytest.raises(EndpointError, match="broke off"):
            for event in pool.stream(HELLO):
                got.append(event)
        assert got and got[0].delta  # part of a's reply was delivered...
        assert hits(b) == 0  # ...so it was not sent again to b
        assert [s["in_flight"] for s in pool.stats()] == [0, 0]


async def test_astream_fails_over_before_the_first_event() -> None:
    a, b = FaultServer(["500"], reply="a"), FaultServer(reply="b streams")
    with a, b, pool_of(a, b, max_retries=0) as pool:
        deltas = [e.delta async for e in pool.astream(HELLO) if e.delta]
        assert "".join(deltas) == "b streams"
        assert (hits(a), hits(b)) == (1, 1)


def test_a_rejected_request_is_not_moved_and_keeps_the_replica_healthy() -> None:
    with FaultServer(["400"]) as a, FaultServer() as b, pool_of(a, b) as pool:
        with pytest.raises(BackendError, match="HTTP 400") as info:
            pool.complete(HELLO)
        assert not isinstance(info.value, EndpointError)
        assert (hits(a), hits(b)) == (1, 0)
        assert [s["healthy"] for s in pool.stats()] == [True, True]


def test_load_replicas_asks_a_live_server_for_the_model_name() -> None:
    dead = f"http://127.0.0.1:{free_port()}/v1"
    with FaultServer() as live:
        with load_replicas(f"{dead},{live.url}", **FAST) as pool:
            assert [m.name for m in pool.replicas] == ["fault-model", "fault-model"]
            assert pool.complete(HELLO).content == "ok"
        with load_replicas([f"{live.url}#served-name"], **FAST) as pool:
            assert pool.name == "served-name"
    with pytest.raises(EndpointError, match="none of the endpoints"):
        load_replicas([dead])


def test_bad_input_is_refused() -> None:
    with pytest.raises(ConfigError, match="no endpoints"):
        parse_endpoints(" , ")
    with pytest.raises(ConfigError, match="http"):
        parse_endpoints("local:qwen")
    assert parse_endpoints(["http://a/v1, http://b/v1", "https://c/v1"]) == [
        "http://a/v1",
        "http://b/v1",
        "https://c/v1",
    ]
    with pytest.raises(ConfigError, match="at least one"):
        ReplicaPool([])
    with pytest.raises(ConfigError, match="tool_mode"):
        ReplicaPool([ScriptedModel(tool_mode="json"), ScriptedModel(tool_mode="native")])
    with pytest.raises(ConfigError, match="bad option"):
        load_replicas(["http://127.0.0.1:9/v1"], "m", no_such_option=1)


def test_any_chat_model_can_be_a_replica(scripted: type[ScriptedModel]) -> None:
    pool = ReplicaPool([scripted(["x1", "x2"]), scripted(["y1"])])
    assert [pool.complete(HELLO).content for _ in range(3)] == ["x1", "y1", "x2"]
    # an exhausted scripted model raises BackendError: the request's fault, not moved
    with pytest.raises(BackendError, match="ran out"):
        pool.complete(HELLO)
    assert [s["replica"] for s in pool.stats()] == ["scripted#0", "scripted#1"]


def test_run_math_eval_spreads_a_benchmark_over_endpoints(tmp_path: Path) -> None:
    data = gsm8k_file(tmp_path, 6, wrong_gold=[4])
    a = FaultServer(respond=sum_policy, latency_s=0.05, keep_alive=True)
    b = FaultServer(respond=sum_policy, latency_s=0.05, keep_alive=True)
    with a, b:
        summary = run_math_eval(
            "gsm8k", ["cot"], endpoints=f"{a.url},{b.url}", data=data,
            out_dir=tmp_path / "out", concurrency=3, progress=False,
        )  # fmt: skip
    cot = summary["methods"]["cot"]
    assert (cot["n"], cot["errors"]) == (6, 0)
    assert cot["scores"]["lenient"] == pytest.approx(100 * 5 / 6, abs=0.01)
    assert hits(a) + hits(b) == 6 and hits(a) > 0 and hits(b) > 0
    saved = json.loads((tmp_path / "out" / "replicas.json").read_text())
    assert saved == summary["replicas"]
    assert {s["replica"]: s["requests"] for s in saved["cot"]} == {a.url: hits(a), b.url: hits(b)}
    with pytest.raises(ConfigError, match="unknown method"):
        run_math_eval("gsm8k", ["nope"], endpoints=a.url, data=data)
    with pytest.raises(ConfigError, match="executor"):
        run_math_eval("gsm8k", ["cot"], executor="spark", data=data)  # type: ignore[arg-type]

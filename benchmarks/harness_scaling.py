"""Eval harness throughput against OpenAI-compatible servers with a fixed 200 ms latency.

    python benchmarks/harness_scaling.py [--latency 0.2] [--levels 1,4,16,64] [--ray]

Each server is the tests' fault server (``tests/faultserver.py``, started in its own process
on 127.0.0.1) answering every chat request after exactly ``--latency`` seconds. Its replies
follow the calculator policy of ``tests/scripted_episodes.py``, so an episode is the real
tool agent (json tool mode, streamed replies) with the real calculator tool: two model
requests, one tool call, graded by exact match. The harness runs it with ``ainvoke``, so the
model node takes its async path and a waiting episode holds no thread. Episodes go
through the real harness (``run_eval``: durable fsync'ed JSONL, summary, plot) with
``OpenAICompatModel`` or a ``ReplicaPool``.

Both helpers stay in ``tests/`` (one fault server for tests and benchmarks, not two); this
script, like the others here, runs from a checkout and puts ``tests/`` on its path.

Rows:
1. one server with unbounded parallelism, concurrency 1, 4, 16, 64: what the harness does;
2. servers limited to ``--slots`` requests at once (like an inference server's parallel
   slots; few enough that the server, not the harness, is the bottleneck), concurrency 64,
   1 replica vs ``--replicas`` replicas behind a ``ReplicaPool``;
3. with ``--ray``: the same on the Ray executor (2 local workers, a pool each).

``episodes/s`` is measured from the first episode's start to the last one's end (the
harness's own per-episode work and fsync'ed appends included); ``run/s`` also counts the
summary and plot written once per run. With ``--repeat N`` each row is run N times and the
best is kept (the machine may be shared). The speedup is against concurrency 1; "of ideal"
compares with what the latency alone allows, ``min(concurrency, slots x replicas) /
(2 x latency)`` episodes/s, so a serial run slowed by a busy CPU cannot inflate it.
Goal: at concurrency 16, at least 14x the serial throughput.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import functools
import json
import multiprocessing
import os
import platform
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from faultserver import FaultServer  # noqa: E402
from scripted_episodes import (  # noqa: E402
    ArithmeticTask,
    arithmetic_examples,
    calculator_agent,
    server_policy,
)

from toolpath.evals.harness import Example, Record, run_eval  # noqa: E402


class TimedTask(ArithmeticTask):
    """The arithmetic task, with each episode's start and end time in its record."""

    async def run_one(self, example: Example, agent: Any) -> Record:
        start = time.time()
        record = await super().run_one(example, agent)
        return {**record, "t_start": start, "t_end": time.time()}


def _serve(ready: Any, latency: float, slots: int | None) -> None:
    """A server process: the fault server with a fixed latency, until killed."""
    server = FaultServer(respond=server_policy, latency_s=latency, slots=slots, keep_alive=True)
    server.start()
    ready.put(server.url)
    threading.Event().wait()


class Servers:
    """``n`` fault servers, each in its own process."""

    def __init__(self, n: int, latency: float, slots: int | None) -> None:
        ctx = multiprocessing.get_context("spawn")
        ready = ctx.Queue()
        self.procs = [
            ctx.Process(target=_serve, args=(ready, latency, slots), daemon=True) for _ in range(n)
        ]
        for proc in self.procs:
            proc.start()
        self.urls = [ready.get(timeout=60) for _ in self.procs]

    def close(self) -> None:
        for proc in self.procs:
            proc.kill()
            proc.join()


def make_model(urls: list[str]) -> Any:
    """One endpoint as ``OpenAICompatModel``; several as a ``ReplicaPool``."""
    from toolpath.llm.openai_compat import OpenAICompatModel
    from toolpath.llm.replicas import load_replicas

    if len(urls) == 1:
        return OpenAICompatModel("fault-model", base_url=urls[0], tool_mode="json")
    return load_replicas(urls, "fault-model", tool_mode="json")


def pool_agent(urls: list[str], task: Any = None) -> Any:
    """The agent factory for Ray workers: the tool agent on a model over ``urls``."""
    return calculator_agent(make_model(urls))


def measure(records: list[Record], wall: float) -> dict[str, Any]:
    span = max(r["t_end"] for r in records) - min(r["t_start"] for r in records)
    n = len(records)
    return {
        "episodes": n,
        "episodes_per_s": round(n / span, 2),
        "run_per_s": round(n / wall, 2),
        "errors": sum(1 for r in records if r["error"]),
        "exact": sum(r["scores"].get("exact", 0.0) for r in records) / n,
    }


async def local_row(urls: list[str], concurrency: int, episodes: int) -> dict[str, Any]:
    model = make_model(urls)
    agent = calculator_agent(model)
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        result = await run_eval(
            TimedTask(),
            arithmetic_examples(episodes),
            agent,
            out_dir=Path(out),
            method="bench",
            concurrency=concurrency,
            progress=False,
        )
        wall = time.perf_counter() - start
    row = measure(result.records, wall)
    stats = getattr(model, "stats", None)
    if callable(stats):
        row["replica_requests"] = [s["requests"] for s in stats()]
    await model.aclose()
    return row


def ray_row(urls: list[str], workers: int, concurrency: int, episodes: int) -> dict[str, Any]:
    import ray

    from toolpath.evals.ray_executor import run_eval_ray_sync

    path = os.pathsep.join(p for p in (str(ROOT / "tests"), os.environ.get("PYTHONPATH")) if p)
    ray.init(include_dashboard=False, runtime_env={"env_vars": {"PYTHONPATH": path}})
    try:
        with tempfile.TemporaryDirectory() as out:
            start = time.perf_counter()
            result = run_eval_ray_sync(
                TimedTask(),
                arithmetic_examples(episodes),
                functools.partial(pool_agent, urls),
                out_dir=Path(out),
                method="bench",
                num_workers=workers,
                concurrency=concurrency,
                progress=False,
            )
            wall = time.perf_counter() - start
    finally:
        ray.shutdown()
    row = measure(result.records, wall)
    row["note"] = "run/s includes starting the Ray workers"
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--latency", type=float, default=0.2, help="seconds per request")
    parser.add_argument("--levels", default="1,4,16,64", help="concurrency levels")
    parser.add_argument("--per-slot", type=int, default=4, help="episodes per concurrent slot")
    parser.add_argument("--slots", type=int, default=4, help="parallel slots per server (rows 2-3)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per row; the best is kept")
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--ray", action="store_true", help="also run the Ray executor")
    parser.add_argument("--out", type=Path, default=None, help="JSON file to write")
    args = parser.parse_args()
    levels = [int(x) for x in args.levels.split(",")]
    episodes = {c: max(8, args.per_slot * c) for c in levels}

    rows: list[dict[str, Any]] = []
    load_start = round(os.getloadavg()[0], 2)
    print(f"latency {args.latency * 1000:.0f} ms per request, 2 requests per episode")
    one = Servers(1, args.latency, None)
    try:
        asyncio.run(local_row(one.urls, 1, 4))  # warm-up: imports, first connections
        for c in levels:
            row = best(args.repeat, lambda c=c: asyncio.run(local_row(one.urls, c, episodes[c])))
            rows.append({"setup": "1 server, unbounded", "replicas": 1, "concurrency": c, **row})
            rows[-1]["ideal_per_s"] = round(c / (2 * args.latency), 2)
            print_row(rows[-1], rows[0])
    finally:
        one.close()

    c = max(levels)
    n = max(8, args.per_slot * c)
    bounded = Servers(args.replicas, args.latency, args.slots)
    try:
        for k in (1, args.replicas):
            row = best(args.repeat, lambda k=k: asyncio.run(local_row(bounded.urls[:k], c, n)))
            setup = f"{k} server{'s' if k > 1 else ''}, {args.slots} slots each"
            rows.append({"setup": setup, "replicas": k, "concurrency": c, **row})
            rows[-1]["ideal_per_s"] = round(min(c, args.slots * k) / (2 * args.latency), 2)
            print_row(rows[-1], rows[0])
        if args.ray:
            per_worker = c // 2
            row = ray_row(bounded.urls, 2, per_worker, n)
            setup = f"Ray, 2 workers x {per_worker}, {args.replicas} servers"
            rows.append({"setup": setup, "replicas": args.replicas, "concurrency": c, **row})
            rows[-1]["ideal_per_s"] = round(
                min(c, args.slots * args.replicas) / (2 * args.latency), 2
            )
            print_row(rows[-1], rows[0])
    finally:
        bounded.close()

    serial = rows[0]["episodes_per_s"]
    for row in rows:
        row["speedup"] = round(row["episodes_per_s"] / serial, 2)
        row["of_ideal"] = round(row["episodes_per_s"] / row["ideal_per_s"], 3)
    at16 = next((r["speedup"] for r in rows if r["concurrency"] == 16 and r["replicas"] == 1), None)
    report = {
        "date": datetime.date.today().isoformat(),
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "machine": {
            "cpus": os.cpu_count(),
            "load_avg_1m_start": load_start,
            "load_avg_1m_end": round(os.getloadavg()[0], 2),
            "python": platform.python_version(),
        },
        "latency_s": args.latency,
        "requests_per_episode": 2,
        "slots_per_server": args.slots,
        "rows": rows,
        "goal": {"speedup_at_16": at16, "target": 14.0, "met": bool(at16 and at16 >= 14.0)},
    }
    out = args.out or ROOT / "benchmarks" / "results" / report["date"] / "harness_scaling.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"\nspeedup at concurrency 16: {at16}x (goal 14x: {report['goal']['met']})")
    print(f"wrote {out}")


def best(repeat: int, run: Any) -> dict[str, Any]:
    """The run with the most episodes/s out of ``repeat``."""
    rows = [run() for _ in range(max(1, repeat))]
    return max(rows, key=lambda r: r["episodes_per_s"])


def print_row(row: dict[str, Any], first: dict[str, Any]) -> None:
    if row is first:
        head = f"{'setup':<36} {'conc':>5} {'eps':>5} {'ep/s':>8} {'run/s':>8} {'speedup':>8}"
        print(head + " of ideal errors exact")
    speedup = row["episodes_per_s"] / first["episodes_per_s"]
    of_ideal = row["episodes_per_s"] / row["ideal_per_s"]
    print(
        f"{row['setup']:<36} {row['concurrency']:>5} {row['episodes']:>5} "
        f"{row['episodes_per_s']:>8.2f} {row['run_per_s']:>8.2f} {speedup:>7.1f}x"
        f" {of_ideal:>8.0%} {row['errors']:>6} {row['exact']:.2f}"
    )


if __name__ == "__main__":
    main()

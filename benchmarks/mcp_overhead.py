"""The cost of a tool call through MCP, and of listing and indexing a 500-tool MCP server.

    python benchmarks/mcp_overhead.py [--runs 300] [--tools 500] [--out benchmarks/results/DATE/mcp.json]

(Not ``benchmarks/mcp.py``: run as a script, that name would shadow the ``mcp`` SDK itself.)

1. One call of the same tool (``add``, from ``tests/fixtures/mcp_server.py``) three ways, as
   an agent makes it (``Tool.run``: validation, then the call): a plain Python function, the
   test server over stdio, and the same server over Streamable HTTP on 127.0.0.1. Reports
   p50/p99 in milliseconds, after warm-up calls.
2. Starting that server with ``--tools`` generated tools, listing them (``load_catalog``),
   and building the dense (all-MiniLM-L6-v2 + faiss) index over them, without a cache.

Run it alone: on 2 cores anything else running skews every figure.
"""

from __future__ import annotations

import argparse
import datetime
import json
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from toolpath.tools import tool
from toolpath.tools.catalog import load_catalog
from toolpath.tools.catalog.mcp import close_all

SERVER = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "mcp_server.py"


@tool
def add(a: int, b: int) -> str:
    """Add two integers."""
    return str(a + b)


def percentile(samples: list[float], q: float) -> float:
    """The q-th percentile (0-100) of ``samples``, nearest rank."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def timed_calls(run: Any, runs: int, warmup: int = 20) -> dict[str, float]:
    """p50/p99/mean milliseconds of ``run({"a": i, "b": 1})``, checking every answer."""
    samples = []
    for i in range(warmup + runs):
        start = time.perf_counter()
        out = run({"a": i, "b": 1})
        elapsed = (time.perf_counter() - start) * 1000
        if out != str(i + 1):
            raise SystemExit(f"wrong answer {out!r} for {i} + 1")
        if i >= warmup:
            samples.append(elapsed)
    return {
        "p50_ms": round(statistics.median(samples), 3),
        "p99_ms": round(percentile(samples, 99), 3),
        "mean_ms": round(statistics.fmean(samples), 3),
        "runs": runs,
    }


def http_server() -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, str(SERVER), "http", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, f"mcp+http://127.0.0.1:{port}/mcp"
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("the HTTP MCP server did not start")


def index_figures(n: int) -> dict[str, Any]:
    from toolpath.retrieval.api_retriever import APIRetriever

    start = time.perf_counter()
    catalog = load_catalog(f"mcp:{sys.executable} {SERVER} --synthetic {n}")
    listed = time.perf_counter() - start
    start = time.perf_counter()
    APIRetriever(list(catalog), cache_dir=None)
    indexed = time.perf_counter() - start
    return {
        "tools": len(catalog),
        "start_and_list_s": round(listed, 2),
        "index_s": round(indexed, 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=300, help="timed calls per transport")
    ap.add_argument("--tools", type=int, default=500, help="generated tools to list and index")
    ap.add_argument("--out", type=Path, help="also write the figures, command and commit here")
    args = ap.parse_args()

    calls: dict[str, Any] = {"direct": timed_calls(add.run, args.runs)}
    stdio = load_catalog(f"mcp:{sys.executable} {SERVER}").by_name("add")
    calls["mcp_stdio"] = timed_calls(stdio.run, args.runs)
    proc, source = http_server()
    try:
        calls["mcp_http"] = timed_calls(load_catalog(source).by_name("add").run, args.runs)
    finally:
        close_all()
        proc.terminate()
        proc.wait(timeout=10)
    for name, row in calls.items():
        print(f"{name:10} p50 {row['p50_ms']:8.3f} ms   p99 {row['p99_ms']:8.3f} ms")
    catalog = index_figures(args.tools)
    print(
        f"{catalog['tools']} tools: start + list {catalog['start_and_list_s']} s, "
        f"dense index {catalog['index_s']} s"
    )
    if args.out:
        report = {
            "command": " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
            "commit": subprocess.run(
                ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True
            ).stdout.strip(),
            "date": datetime.date.today().isoformat(),
            "calls": calls,
            "catalog": catalog,
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()

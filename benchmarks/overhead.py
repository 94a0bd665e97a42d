"""Framework overhead per agent step, and embedded-model tokens/s through toolpath.

    python benchmarks/overhead.py [--episodes 100] [--steps 10] [--model qwen2.5-coder-0.5b]
                                  [--out benchmarks/results/DATE/overhead.json]

1. The single-model tool agent runs on the scripted model (which answers in microseconds)
   with the real calculator tool. One step is one model node plus its tool node; the time
   of a step is measured between consecutive model updates in ``agent.stream``. Goal: p50
   at most 2 ms, with tracing off; then again with OpenTelemetry tracing on (JSONL), to show
   what it costs.
2. The embedded model generates the same reply through toolpath's ``LocalModel.complete``
   (HTTP to llama.cpp's server via the openai client) and through raw xllamacpp
   (``Server.handle_chat_completions`` in process, on the same server). Goal: toolpath at
   least 0.9x raw tokens/s.
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from toolpath.agents.react import tool_agent
from toolpath.llm.scripted import ScriptedModel
from toolpath.tools import calculator


def step_overhead(episodes: int, steps: int) -> list[float]:
    """Seconds per agent step (model + tool node), one sample per step after the first."""
    replies: list[str] = []
    for i in range(steps):
        replies.append(
            json.dumps({"tool": "calculator", "arguments": {"expression": f"{i} * 7 + 1"}})
        )
    replies.append(json.dumps({"final_answer": "done"}))
    samples: list[float] = []
    for _ in range(episodes):
        model = ScriptedModel(list(replies))
        agent = tool_agent(model=model, tools=[calculator], max_steps=steps + 2)
        last = None
        for update in agent.stream("benchmark question", stream_mode="updates"):
            if "model" in update:
                now = time.perf_counter()
                if last is not None:
                    samples.append(now - last)
                last = now
    return samples


def traced_steps(episodes: int, steps: int) -> dict[str, float]:
    """The step overhead again with tracing on, into a JSONL file (what ``toolpath eval``
    writes), without and with content (prompts, completions, tool arguments)."""
    from toolpath import tracing

    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, content in (("traced", False), ("traced_content", True)):
            with tracing.tracing(Path(tmp) / f"{label}.jsonl", content=content):
                samples = sorted(step_overhead(episodes, steps))
            p50 = statistics.median(samples) * 1e3
            p99 = samples[int(0.99 * (len(samples) - 1))] * 1e3
            print(
                f"  with tracing on ({'with' if content else 'without'} content, JSONL): "
                f"p50 {p50:.3f} ms, p99 {p99:.3f} ms"
            )
            figures.update({f"{label}_p50_ms": p50, f"{label}_p99_ms": p99})
    return figures


def tokens_per_second(model_name: str, rounds: int, max_tokens: int) -> tuple[float, float]:
    """Median generation tokens/s through toolpath and through raw xllamacpp."""
    from toolpath.llm.local import LocalModel

    llm = LocalModel(model_name, n_ctx=4096)
    messages = [
        {
            "role": "user",
            "content": "Write a long Python module with ten small utility "
            "functions for strings, each with a docstring.",
        }
    ]
    raw_request = {"messages": messages, "max_tokens": max_tokens, "temperature": 0.0}

    def raw() -> float:
        start = time.perf_counter()
        reply = llm.server.handle_chat_completions(dict(raw_request))
        return reply["usage"]["completion_tokens"] / (time.perf_counter() - start)

    def ours() -> float:
        start = time.perf_counter()
        reply = llm.complete(messages, max_tokens=max_tokens, temperature=0.0)
        return reply.usage.completion_tokens / (time.perf_counter() - start)

    raw(), ours()  # warm up both paths (prompt cache, HTTP connection)
    ours_tps, raw_tps = [], []
    for _ in range(rounds):
        raw_tps.append(raw())
        ours_tps.append(ours())
    llm.close()
    return statistics.median(ours_tps), statistics.median(raw_tps)


def import_seconds(runs: int = 7) -> float:
    """Median wall time of a fresh ``python -c "import toolpath"``."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import toolpath"], check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--episodes", type=int, default=100)
    ap.add_argument("--steps", type=int, default=10, help="tool steps per episode")
    ap.add_argument("--model", default="qwen2.5-coder-0.5b", help="registry name or .gguf path")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--skip-model", action="store_true", help="only measure framework overhead")
    ap.add_argument("--out", type=Path, help="also write the figures, command and commit here")
    args = ap.parse_args()

    report: dict[str, Any] = {
        "date": datetime.date.today().isoformat(),
        "commit": _commit(),
        "command": " ".join(["python", *sys.argv]),
    }
    report["import_s"] = import_seconds()
    print(f"python -c 'import toolpath': {report['import_s']:.3f} s median (goal: < 1 s)")
    samples = sorted(step_overhead(args.episodes, args.steps))
    p50 = statistics.median(samples) * 1e3
    p99 = samples[int(0.99 * (len(samples) - 1))] * 1e3
    print(
        f"framework overhead per agent step: p50 {p50:.3f} ms, p99 {p99:.3f} ms "
        f"over {len(samples)} steps (goal: p50 <= 2 ms)"
    )
    report.update(step_p50_ms=p50, step_p99_ms=p99, steps=len(samples))
    report.update(traced_steps(args.episodes, args.steps))
    if not args.skip_model:
        ours, raw = tokens_per_second(args.model, args.rounds, args.max_tokens)
        print(
            f"embedded {args.model} generation: toolpath {ours:.1f} tok/s, "
            f"raw xllamacpp {raw:.1f} tok/s, ratio {ours / raw:.3f} (goal: >= 0.9)"
        )
        report.update(model=args.model, toolpath_tok_s=ours, raw_tok_s=raw, ratio=ours / raw)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")


def _commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        )
    except OSError:
        return "unknown"
    return out.stdout.strip() or "unknown"


if __name__ == "__main__":
    main()

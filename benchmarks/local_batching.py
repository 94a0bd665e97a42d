"""What parallel decoding buys on the embedded model: tokens per second for 1 stream vs N.

    python benchmarks/local_batching.py [--model qwen2.5-coder-1.5b] [--streams 4]
        [--max-tokens 200] [--out FILE.json]

Starts the local llama.cpp server once with one slot and once with ``--streams`` slots, and
sends that many sampled completions at once (temperature 0.7, a different seed each) for one
math prompt. Prints wall seconds, completion tokens and tokens per second for each. On a
CPU that is compute-bound, N streams cost nearly N times one, so sampling N solutions per
problem (self-consistency) multiplies an eval's time by about N over the speedup printed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

from toolpath.llm.base import user
from toolpath.llm.local import LocalModel

PROMPT = (
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips "
    "in May. How many clips did Natalia sell altogether in April and May? Write a Python "
    "program that prints the answer."
)


async def measure(model: str, streams: int, max_tokens: int) -> dict[str, Any]:
    """Time ``streams`` concurrent completions on a server with that many slots."""
    llm = LocalModel(model, n_parallel=streams)
    try:
        await llm.acomplete([user("hi")], max_tokens=4)  # load and warm up
        start = time.perf_counter()
        replies = await asyncio.gather(
            *(
                llm.acomplete(
                    [user(PROMPT)],
                    max_tokens=max_tokens,
                    temperature=0.7,
                    extra_body={"seed": seed},
                )
                for seed in range(streams)
            )
        )
        seconds = time.perf_counter() - start
    finally:
        await llm.aclose()
    tokens = sum(r.usage.completion_tokens for r in replies)
    return {"streams": streams, "seconds": round(seconds, 2), "tokens": tokens,
            "tokens_per_s": round(tokens / seconds, 2)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="qwen2.5-coder-1.5b")
    parser.add_argument("--streams", type=int, default=4)
    parser.add_argument("--max-tokens", type=int, default=200)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    rows = [asyncio.run(measure(args.model, n, args.max_tokens)) for n in (1, args.streams)]
    for row in rows:
        print(
            f"{row['streams']} stream(s): {row['seconds']:.1f} s, {row['tokens']} tokens, "
            f"{row['tokens_per_s']:.1f} tokens/s"
        )
    speedup = rows[1]["tokens_per_s"] / rows[0]["tokens_per_s"]
    print(f"throughput with {args.streams} streams: {speedup:.2f}x one stream")
    if args.out:
        report = {"model": args.model, "cpus": os.cpu_count(), "rows": rows, "speedup": speedup}
        args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()

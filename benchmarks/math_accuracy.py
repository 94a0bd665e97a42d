"""Math accuracy and cost: toolpath's methods beside what a user writes by hand, on one model.

The hand-written baselines are the 40-line scripts the issue measured (kept here, not in the
library):

- ``naive-pot``: one system line asks for one Python block that prints the answer; the first
  ```python block runs in a sandboxed kernel and the last number printed is the answer (a
  reply without one, or a program that prints no number, falls back to the last number in
  the reply: the 1.5B often answers in prose);
- ``naive-cot``: one system line asks to reason step by step and box the answer; the last
  ``\\boxed{}``, else the last number, is the answer.

Slices (``--slice``): ``test`` (the first ``--limit`` problems), ``unseen`` (``--limit``
problems at an offset drawn with ``--seed`` after the first 100, never looked at while
tuning), ``train`` (GSM8K train without the demonstrations' problems, the only split
prompts are tuned on).

    python benchmarks/math_accuracy.py --benchmark gsm8k --slice test --limit 100 \\
        --methods naive-pot,naive-cot,pot-zero,pot-few,cot-zero,cot-few,dotamath,dotamath-k5 \\
        --out benchmarks/results/DATE/math

Every slice goes to OUT/BENCHMARK-SLICE/ (``toolpath eval``'s layout: a JSONL per method,
resumable, ``summary.md``, ``plot.png`` with accuracy against tokens) and ``run.json`` holds
the command, the commit and the offset.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from toolpath.agents.math import extract_answer
from toolpath.evals.harness import run_eval
from toolpath.evals.math.tasks import VOTE_METHOD, is_method, math_agent_for, task
from toolpath.evals.ray_executor import VOTE_PARALLEL
from toolpath.llm.base import system, user
from toolpath.llm.specs import load_model
from toolpath.tools.code.kernel import KernelPool

NAIVE_POT = "Write one Python code block that solves the problem and prints the final answer."
NAIVE_COT = "Solve the problem step by step and put the final answer in \\boxed{}."
NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")
PYTHON = re.compile(r"```python[ \t]*\n(.*?)```", re.DOTALL)


class Naive:
    """A hand-written baseline with the agents' ``ainvoke`` so the harness can run it."""

    def __init__(self, model: Any, program: bool) -> None:
        self.model, self.program = model, program

    async def ainvoke(self, question: str, config: Any = None) -> dict[str, Any]:
        prompt = NAIVE_POT if self.program else NAIVE_COT
        messages = [system(prompt), user(question)]
        reply = await self.model.acomplete(messages, max_tokens=512, temperature=0.0)
        usage = reply.usage
        trace = [{"tokens_in": usage.prompt_tokens, "tokens_out": usage.completion_tokens}]
        text, answer, rounds = reply.content, None, 0
        if self.program:
            block = PYTHON.search(text)
            if block is not None:
                kernel = config["configurable"]["kernel"]
                result = await asyncio.to_thread(kernel.execute, block.group(1), timeout=15.0)
                numbers = NUMBER.findall(result.stdout.replace(",", ""))
                answer, rounds = (numbers[-1] if numbers else None), 1
                text += f"\n```output\n{result.text()}\n```"
            if answer is None:
                numbers = NUMBER.findall(reply.content.replace(",", ""))
                answer = numbers[-1] if numbers else None
        else:
            answer = extract_answer(text)
        messages.append({"role": "assistant", "content": text})
        return {
            "answer": answer,
            "messages": messages,
            "trace": trace,
            "rounds": rounds,
            "status": "done" if answer else "failed",
        }

    def close(self) -> None:
        pass


def agent_for(method: str, model: Any) -> Any:
    if method in ("naive-pot", "naive-cot"):
        return Naive(model, program=method == "naive-pot")
    voting = VOTE_METHOD.fullmatch(method) is not None
    return math_agent_for(method, model, **({"parallel": VOTE_PARALLEL} if voting else {}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--benchmark", choices=("gsm8k", "math500"), default="gsm8k")
    ap.add_argument("--slice", choices=("test", "unseen", "train"), default="test")
    ap.add_argument("--methods", default="naive-pot,naive-cot,pot,cot,dotamath")
    ap.add_argument("--model", default="local")
    ap.add_argument("--limit", type=int, default=100)
    ap.add_argument("--seed", type=int, default=2026, help="draws the unseen slice's offset")
    ap.add_argument("--data", help="the benchmark's data (default: the shared copies)")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    bad = [m for m in methods if not (is_method(m) or m in ("naive-pot", "naive-cot"))]
    if bad:
        sys.exit(f"unknown methods: {', '.join(bad)}")
    name = "gsm8k-train" if args.slice == "train" else args.benchmark
    if args.slice == "train" and args.benchmark != "gsm8k":
        sys.exit("the train slice is GSM8K's")
    family = task(name)
    total = len(family.load(data=args.data))
    skip = 0
    if args.slice == "unseen":
        skip = 100 + random.Random(args.seed).randint(0, max(0, total - 100 - args.limit))
    examples = list(family.load(data=args.data, limit=args.limit, skip=skip))
    out = args.out / f"{args.benchmark}-{args.slice}"
    out.mkdir(parents=True, exist_ok=True)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    run = {
        "command": " ".join(sys.argv),
        "commit": commit,
        "slice": args.slice,
        "skip": skip,
        "limit": args.limit,
        "seed": args.seed,
        "model": args.model,
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    (out / "run.json").write_text(json.dumps(run, indent=1) + "\n", encoding="utf-8")
    parallel = VOTE_PARALLEL if any(VOTE_METHOD.fullmatch(m) for m in methods) else 1
    model = load_model(args.model, **({"n_parallel": parallel} if parallel > 1 else {}))
    family.kernels = KernelPool(size=1)
    try:
        for method in methods:
            print(f"{method}: {len(examples)} problems from {skip}", flush=True)
            agent = agent_for(method, model)
            try:
                result = asyncio.run(run_eval(family, examples, agent, out_dir=out, method=method))
            finally:
                agent.close()
        for m, row in result.summary["methods"].items():
            print(m, row["scores"], "tokens", row["tokens"], "samples", row.get("samples"))
    finally:
        family.kernels.close()
        model.close()


if __name__ == "__main__":
    main()

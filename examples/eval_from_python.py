"""Run a math benchmark from Python: two GSM8K problems, DotaMath vs PoT, with a summary.

python examples/eval_from_python.py [--model local:qwen2.5-coder-0.5b] [--out runs/example]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from toolpath import load_model
from toolpath.evals import run_eval_sync
from toolpath.evals.math import math_agent_for, task
from toolpath.tools.code import KernelPool


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--model", default="local", help="model spec (default: the embedded model)")
    ap.add_argument("--out", default="runs/example", help="run folder (resumes if it exists)")
    ap.add_argument("--limit", type=int, default=2)
    args = ap.parse_args()

    model = load_model(args.model)
    with KernelPool(size=1) as pool:
        gsm8k = task("gsm8k", kernels=pool)
        examples = list(gsm8k.load(limit=args.limit))
        for method in ("dotamath", "pot"):
            agent = math_agent_for(method, model)
            result = run_eval_sync(
                gsm8k, examples, agent, out_dir=Path(args.out), method=method, progress=False
            )
            agent.close()
    for method, row in result.summary["methods"].items():
        print(f"{method}: lenient {row['scores']['lenient']:.0f}% over {row['n']} problems")
    print("results in", args.out)


if __name__ == "__main__":
    main()

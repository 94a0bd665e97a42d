"""DotaMath on one problem: decompose, write Python, run it in a sandboxed kernel, answer.

python examples/math_agent.py [--model local:qwen2.5-coder-0.5b]
"""

from __future__ import annotations

import argparse

import toolpath


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--model", default="local", help="model spec (default: the embedded model)")
    args = ap.parse_args()

    agent = toolpath.math_agent(model=args.model, max_rounds=4)
    try:
        state = agent.invoke(
            "A shop sells pencils at 3 for $1. How many dollars do 27 pencils cost?"
        )
    finally:
        agent.close()  # stop the agent's own kernel
    for message in state["messages"]:
        print(f"[{message['role']}] {message['content']}\n")
    print("answer:", state["answer"], "| program runs:", state["rounds"])


if __name__ == "__main__":
    main()

"""A tool agent with your own typed tools, streaming its steps.

python examples/tool_agent.py [--model local:qwen2.5-coder-0.5b]
"""

from __future__ import annotations

import argparse

import toolpath
from toolpath.tools import calculator


@toolpath.tool
def unit_price(total: float, count: int) -> float:
    """Price of one item.

    Args:
        total: the total price paid
        count: how many items were bought
    """
    if count <= 0:
        raise toolpath.ToolError("count must be positive")
    return round(total / count, 2)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--model", default="local", help="model spec (default: the embedded model)")
    args = ap.parse_args()

    agent = toolpath.tool_agent(model=args.model, tools=[unit_price, calculator])
    question = "I paid 17.50 for 7 pens. What did one pen cost? Use the unit_price tool."
    for mode, chunk in agent.stream(question, stream_mode=["updates", "values"]):
        if mode == "updates" and "tools" in chunk:
            for message in chunk["tools"]["messages"]:
                print("tool:", message["content"].splitlines()[0])
        elif mode == "values":
            final = chunk
    print("answer:", final["answer"])


if __name__ == "__main__":
    main()

"""Embed a toolpath agent as a node of your own LangGraph graph, and resume by thread id.

    python examples/subgraph.py [--model local:qwen2.5-coder-0.5b]

The parent graph shares the ``messages`` and ``answer`` keys with the tool agent, so the
compiled agent can be added as a node directly. A SQLite checkpointer on the parent makes
the whole run resumable and lets a later question continue the same thread.
"""

from __future__ import annotations

import argparse
import operator
import tempfile
from pathlib import Path
from typing import Annotated, Any, TypedDict

from langgraph.graph import END, START, StateGraph

import toolpath
from toolpath.tools import calculator


class Report(TypedDict, total=False):
    messages: Annotated[list[dict[str, Any]], operator.add]
    answer: str | None
    status: str
    report: str


def write_report(state: Report) -> dict[str, Any]:
    tool_calls = sum(len(m.get("tool_calls") or []) for m in state["messages"])
    return {"report": f"answer {state.get('answer')!r} after {tool_calls} tool call(s)"}


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--model", default="local", help="model spec (default: the embedded model)")
    args = ap.parse_args()

    parent = StateGraph(Report)
    parent.add_node("agent", toolpath.tool_agent(model=args.model, tools=[calculator]))
    parent.add_node("report", write_report)
    parent.add_edge(START, "agent")
    parent.add_edge("agent", "report")
    parent.add_edge("report", END)

    with tempfile.TemporaryDirectory() as tmp:
        graph = parent.compile(checkpointer=toolpath.sqlite_checkpointer(Path(tmp) / "runs.db"))
        config = {"configurable": {"thread_id": "example"}}
        question = {"role": "user", "content": "What is 1234 * 5678? Use the calculator."}
        state = graph.invoke({"messages": [question]}, config)
        print(state["report"], "| status:", state.get("status"))
        # the checkpoint holds the thread: its saved state is available by thread id
        saved = graph.get_state(config).values
        print("messages saved in the thread:", len(saved["messages"]))


if __name__ == "__main__":
    main()

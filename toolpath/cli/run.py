"""``toolpath run``: answer one question with a tool agent, showing each step on stderr.

The command chooses the builder: one model runs :func:`~toolpath.agents.react.tool_agent`;
any of ``--planner``, ``--caller``, ``--summarizer`` or ``--catalog`` runs the α-UMi agent,
:func:`~toolpath.agents.alpha_umi.agent.alpha_umi_agent`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from toolpath.cli.common import (
    APPROVE_HELP,
    MaxSecondsOpt,
    MaxTokensOpt,
    MaxUsdOpt,
    ModelOpt,
    PricesOpt,
    RoleOpt,
    approve_setting,
    budget_of,
    catalog_retriever,
    err,
    load,
    load_each,
    out,
    split,
    stream_approving,
)
from toolpath.errors import ConfigError, ToolpathError


def register(app: typer.Typer, eval_app: typer.Typer) -> None:
    """Add ``toolpath run``."""
    app.command("run")(run)


def run(
    question: Annotated[str, typer.Argument(help="The task or question for the agent.")],
    model: ModelOpt = "local",
    planner: RoleOpt = None,
    caller: RoleOpt = None,
    summarizer: RoleOpt = None,
    tools: Annotated[
        str, typer.Option("--tools", "-t", help="Comma-separated built-in tools, e.g. calculator.")
    ] = "calculator",
    catalog: Annotated[
        list[str] | None,
        typer.Option(
            help="A tool catalog, repeatable: toolpath/OpenAI/ToolBench/GLPFT JSON or YAML, a "
            ".py file, module:NAME, an MCP server (mcp:COMMAND ARGS or mcp+http://HOST/PATH) or "
            "an OpenAPI spec (openapi:PATH_OR_URL). Runs the multi-role agent, which sees only "
            "the retrieved top-k tools."
        ),
    ] = None,
    top_k: Annotated[int, typer.Option(help="Tools retrieved per task from --catalog.", min=1)] = 6,
    retriever: Annotated[
        str,
        typer.Option(
            help="hybrid (dense + BM25 by rank fusion), dense (all-MiniLM-L6-v2 + faiss, "
            "TPTU-v2), bm25, trained or trained-hybrid. dense and hybrid use the model "
            "`toolpath index train` made for this catalog in --index-dir when there is one."
        ),
    ] = "hybrid",
    index_dir: Annotated[
        str | None,
        typer.Option(
            help="Cache folder for the catalog's embedding index (reused when unchanged)."
        ),
    ] = None,
    demos: Annotated[
        str | None,
        typer.Option(
            help='A JSON list of demonstrations [{"task", "calls"}] for the demo selector.'
        ),
    ] = None,
    record: Annotated[
        str | None,
        typer.Option(
            help="Multi-role agent: append the run as a GLPFT record to RECORD/trajectories.jsonl "
            "(for toolpath export sft)."
        ),
    ] = None,
    max_steps: Annotated[
        int,
        typer.Option(help="Most model calls (planner turns) before the agent must answer.", min=1),
    ] = 8,
    show_trace: Annotated[
        bool, typer.Option("--trace/--no-trace", help="Print each step to stderr.")
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print the final state as JSON.")] = False,
    approve: Annotated[str, typer.Option(help=APPROVE_HELP)] = "never",
    max_tokens_total: MaxTokensOpt = None,
    max_seconds: MaxSecondsOpt = None,
    max_usd: MaxUsdOpt = None,
    prices: PricesOpt = None,
) -> None:
    """Answer QUESTION with a tool agent and print the answer on stdout.

    One model (--model) runs the single-model agent. Any of --planner, --caller, --summarizer or
    --catalog runs the α-UMi multi-role agent (roles not given use --model); with --catalog, the
    TPTU-v2 retriever puts only the top-k tools for the task in the prompts. Each model call
    (time, tokens) and each tool result is shown on stderr as it happens.
    """
    from toolpath.tools import get_tools

    toolset: list[Any] = get_tools(split(tools))
    gate = approve_setting(approve)
    limits = budget_of(max_tokens_total, max_seconds, max_usd, prices)
    roles = {"planner": planner, "caller": caller, "summarizer": summarizer}
    multi = bool(catalog) or any(roles.values())
    if record is not None and not multi:
        raise ConfigError("--record saves multi-role runs: add --planner, --caller or --catalog")
    if multi:
        from toolpath.agents.alpha_umi.agent import alpha_umi_agent

        pick = None
        if catalog:
            toolset, pick = catalog_retriever(catalog, toolset, retriever, top_k, index_dir)
        chosen_demos = None if demos is None else _read_demos(demos)
        llms = load_each({role: spec or model for role, spec in roles.items()})
        agent = alpha_umi_agent(
            model=None,  # every role is given, so no default model is loaded
            tools=toolset,
            planner=llms["planner"],
            caller=llms["caller"],
            summarizer=llms["summarizer"],
            retriever=pick,
            demos=chosen_demos,
            max_steps=max_steps,
            approve=gate,
            budget=limits,
        )
    else:
        from toolpath.agents.react import tool_agent

        agent = tool_agent(
            model=load(model), tools=toolset, max_steps=max_steps, approve=gate, budget=limits
        )
    final: dict[str, Any] = {}
    config = {"configurable": {"thread_id": "run"}} if gate != "never" else None
    modes = ["updates", "custom", "values"]
    for mode, chunk in stream_approving(agent, question, config, modes):
        if mode == "values":
            final = chunk
        elif mode == "custom" and show_trace and chunk.get("type") == "token":
            err.out(chunk["delta"], end="", style="dim", highlight=False)
        elif mode == "updates" and show_trace:
            print_update(chunk)
    if record is not None:
        _record(record, final, toolset)
    if as_json:
        out.print_json(json.dumps(final, default=str))
    elif final.get("status") == "budget_exhausted":
        raise ToolpathError(f"the run stopped at its budget ({final.get('reason')})")
    elif final.get("answer") is not None:
        typer.echo(final["answer"])
    else:
        raise ToolpathError(f"the agent stopped without an answer (status: {final.get('status')})")


def print_update(update: dict[str, Any]) -> None:
    """One stderr line per model call (node, model, time, tokens, any error), per retrieval
    and per tool result."""
    from rich.markup import escape

    for node, delta in update.items():
        delta = delta or {}
        for rec in delta.get("trace", []):
            if "tokens_in" in rec:
                problem = f"  [red]{escape(str(rec['error']))}[/]" if rec.get("error") else ""
                who = f" {escape(rec['model'])}" if rec.get("model") else ""
                err.print(
                    f"\n[cyan]{rec['node']}[/]{who} {rec['seconds']:.2f}s  "
                    f"{rec['tokens_in']}+{rec['tokens_out']} tokens{problem}"
                )
        if node == "retrieve":
            err.print("[magenta]retrieved[/] " + escape(", ".join(delta.get("tools", []))))
        if node == "tools":
            for msg in delta.get("messages", []):
                err.print("[green]tool[/] " + escape(_gist(msg["content"])))
        if node == "tool":  # the multi-role agent's tool node adds an observation turn
            for t in delta.get("conversation", []):
                err.print("[green]tool[/] " + escape(_gist(t["value"] or "")))


def _gist(text: str, width: int = 160) -> str:
    """A tool result on one line (JSON spread over lines included), cut to ``width``."""
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def _record(folder: str, state: dict[str, Any], tools: list[Any]) -> None:
    """Append the run to FOLDER/trajectories.jsonl with the tools its roles saw."""
    from toolpath.evals.alpha_umi.glpft import trajectory_record

    shown = set(state.get("tools") or [t.name for t in tools])
    line = json.dumps(trajectory_record(state, [t for t in tools if t.name in shown]))
    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    with open(path / "trajectories.jsonl", "a", encoding="utf-8") as f:
        f.write(line + "\n")
    err.print(f"[dim]recorded in {path / 'trajectories.jsonl'}[/]")


def _read_demos(path: str) -> list[Any]:
    """The demonstrations in the JSON file ``path``: a list of ``{"task", "calls"}``."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read the demonstrations in {path}: {exc}") from exc
    if not isinstance(data, list):
        raise ConfigError(f'{path}: expected a JSON list of {{"task", "calls"}} demonstrations')
    return data

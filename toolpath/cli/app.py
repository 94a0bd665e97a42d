"""The ``toolpath`` command. Thin: it parses, calls the library and prints.

Every :class:`~toolpath.errors.ToolpathError` becomes one line on stderr and the error's
exit code (2 for bad input such as an unknown model spec).
"""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer

from toolpath.cli import admin as cli_admin
from toolpath.cli import alpha_umi as cli_alpha_umi
from toolpath.cli import eval as cli_eval
from toolpath.cli import retrieval as cli_retrieval
from toolpath.cli import web as cli_web
from toolpath.cli.common import ModelOpt, err, out, progress_bar
from toolpath.errors import ConfigError, ToolpathError

app = typer.Typer(
    help="toolpath: LLM agents that use tools, on an embedded offline model or any "
    "OpenAI-compatible endpoint.",
    epilog='Examples: toolpath run "What is 1234 * 5678? Use the calculator." --model '
    'local:qwen2.5-coder-0.5b  |  toolpath solve "..."  |  toolpath eval gsm8k --limit 10  |  '
    "toolpath models list. "
    "Errors print one line on stderr; exit codes: 2 bad input, 3 missing model, "
    "4 sha256 mismatch, 5 backend failed after retries, 6 missing extra.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode="markdown",
)
eval_app = typer.Typer(
    help="Run a benchmark (gsm8k, gsm8k-train, math500, math, costa, toolbench-static, "
    "retrieval, miniwob, compwob). Runs resume where they stopped.",
    no_args_is_help=True,
)
app.add_typer(eval_app, name="eval")
for _module in (cli_eval, cli_alpha_umi, cli_retrieval, cli_web, cli_admin):
    _module.register(app, eval_app)


Role = Annotated[
    str | None,
    typer.Option(help="Model spec for this α-UMi role (multi-role agent); default: --model."),
]


@app.command()
def run(
    question: Annotated[str, typer.Argument(help="The task or question for the agent.")],
    model: ModelOpt = "local",
    tools: Annotated[
        str, typer.Option("--tools", "-t", help="Comma-separated built-in tools, e.g. calculator.")
    ] = "calculator",
    planner: Role = None,
    caller: Role = None,
    summarizer: Role = None,
    catalog: Annotated[
        str | None,
        typer.Option(
            help="A tool catalog (toolpath/OpenAI/ToolBench/GLPFT JSON or YAML, a .py file or "
            "module:NAME). Runs the multi-role agent, which sees only the retrieved top-k tools."
        ),
    ] = None,
    top_k: Annotated[int, typer.Option(help="Tools retrieved per task from --catalog.", min=1)] = 6,
    retriever: Annotated[
        str, typer.Option(help="dense (all-MiniLM-L6-v2 + faiss, TPTU-v2) or bm25.")
    ] = "dense",
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
) -> None:
    """Answer QUESTION with a tool agent and print the answer on stdout.

    One model (--model) runs the single-model agent. Any of --planner, --caller, --summarizer or
    --catalog runs the α-UMi multi-role agent (roles not given use --model); with --catalog, the
    TPTU-v2 retriever puts only the top-k tools for the task in the prompts. Each model call
    (time, tokens) and each tool result is shown on stderr as it happens.
    """
    from toolpath.agents.react import tool_agent
    from toolpath.llm.specs import load_model
    from toolpath.tools import get_tools

    toolset: list[Any] = get_tools([t for t in tools.split(",") if t.strip()])
    multi = any(x is not None for x in (planner, caller, summarizer, catalog))
    loaded: dict[str, Any] = {}

    def load(spec: str) -> Any:
        if spec not in loaded:
            with progress_bar() as bar:
                loaded[spec] = load_model(spec, progress=bar)
        return loaded[spec]

    if record is not None and not multi:
        raise ConfigError("--record saves multi-role runs: add --planner, --caller or --catalog")
    if not multi:
        agent = tool_agent(toolset, load(model), max_steps=max_steps)
    else:
        pick, chosen_demos = None, None
        if catalog is not None:
            toolset, pick = _catalog_retriever(catalog, toolset, retriever, top_k, index_dir)
        if demos is not None:
            chosen_demos = _read_demos(demos)
        agent = tool_agent(
            toolset,
            None,  # every role is given below, so no default model is loaded
            planner=load(planner or model),
            caller=load(caller or model),
            summarizer=load(summarizer or model),
            retriever=pick,
            demos=chosen_demos,
            max_steps=max_steps,
        )
    final: dict[str, Any] = {}
    for mode, chunk in agent.stream(question, stream_mode=["updates", "custom", "values"]):
        if mode == "values":
            final = chunk
        elif mode == "custom" and show_trace and chunk.get("type") == "token":
            err.out(chunk["delta"], end="", style="dim", highlight=False)
        elif mode == "updates" and show_trace:
            _print_update(chunk)
    if record is not None and multi:
        _record(record, final, toolset)
    if as_json:
        out.print_json(json.dumps(final, default=str))
    elif final.get("answer") is not None:
        typer.echo(final["answer"])
    else:
        raise ToolpathError(f"the agent stopped without an answer (status: {final.get('status')})")


def _record(folder: str, state: dict[str, Any], tools: list[Any]) -> None:
    """Append the run to FOLDER/trajectories.jsonl with the tools its roles saw."""
    from pathlib import Path

    from toolpath.evals.alpha_umi.glpft import trajectory_record

    shown = set(state.get("tools") or [t.name for t in tools])
    line = json.dumps(trajectory_record(state, [t for t in tools if t.name in shown]))
    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    with open(path / "trajectories.jsonl", "a", encoding="utf-8") as f:
        f.write(line + "\n")
    err.print(f"[dim]recorded in {path / 'trajectories.jsonl'}[/]")


def _catalog_retriever(
    path: str, extra: list[Any], kind: str, k: int, index_dir: str | None
) -> tuple[list[Any], Any]:
    """The catalog's tools (plus the built-in ones asked for) and a retriever over them."""
    from pathlib import Path

    from toolpath.retrieval.api_retriever import APIRetriever, BM25Retriever
    from toolpath.tools.catalog import load_catalog

    if kind not in ("dense", "bm25"):
        raise ConfigError(f"--retriever must be dense or bm25, not {kind!r}")
    tools = list(load_catalog(path))
    names = {t.name for t in tools}
    tools += [t for t in extra if t.name not in names]
    if kind == "bm25":
        return tools, BM25Retriever(tools, k=k)
    cache = Path(index_dir) if index_dir else None
    err.print(f"[dim]indexing {len(tools)} tools (cached after the first run)...[/]")
    return tools, APIRetriever(tools, cache_dir=cache, k=k)


def _read_demos(path: str) -> list[Any]:
    from pathlib import Path

    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read the demonstrations in {path}: {exc}") from exc
    if not isinstance(data, list):
        raise ConfigError(f'{path}: expected a JSON list of {{"task", "calls"}} demonstrations')
    return data


def _print_update(update: dict[str, Any]) -> None:
    """One stderr line per model call (role, time, tokens, any error) and per tool result."""
    from rich.markup import escape

    for node, delta in update.items():
        for rec in (delta or {}).get("trace", []):
            if "latency_s" in rec and "prompt_tokens" in rec:
                problem = f"  [red]{escape(str(rec['error']))}[/]" if rec.get("error") else ""
                who = f" {escape(rec['model'])}" if rec.get("model") else ""
                err.print(
                    f"\n[cyan]{rec['node']}[/]{who} {rec['latency_s']:.2f}s  "
                    f"{rec['prompt_tokens']}+{rec['completion_tokens']} tokens{problem}"
                )
            elif rec["node"] == "retrieve":
                err.print("[magenta]retrieved[/] " + escape(", ".join(rec.get("tools", []))))
        if node == "tools":
            for msg in delta.get("messages", []):
                err.print("[green]tool[/] " + escape(msg["content"].splitlines()[0]))
        if node == "tool":  # the multi-role agent's tool node adds an observation turn
            for t in delta.get("conversation", []):
                err.print("[green]tool[/] " + escape((t["value"] or "").splitlines()[0]))


@app.command()
def solve(
    question: Annotated[str, typer.Argument(help="The math problem, as text.")],
    model: ModelOpt = "local",
    method: Annotated[
        str, typer.Option(help="dotamath (decompose, code, run, correct), pot or cot.")
    ] = "dotamath",
    max_rounds: Annotated[
        int, typer.Option(help="Most program runs for dotamath (ToRA uses 4).", min=1)
    ] = 4,
) -> None:
    """Solve a math problem, streaming the decomposition, the code, the real interpreter
    output and the final \\boxed{} answer. Generated code runs in a sandboxed Jupyter kernel."""
    from toolpath.agents.math.common import initial_state
    from toolpath.evals.math.tasks import math_agent_for
    from toolpath.llm.specs import load_model

    initial_state(question)  # refuse an empty question before loading anything
    with progress_bar() as bar:
        llm = load_model(model, progress=bar)
    options = {"max_rounds": max_rounds} if method == "dotamath" else {}
    agent = math_agent_for(method, llm, **options)
    final: dict[str, Any] = {}
    node, text = None, "\n"

    def section(title: str, style: str) -> None:
        if not text.endswith("\n"):
            typer.echo("")
        out.rule(f"[bold]{title}[/]", align="left", style=style)

    try:
        for mode, chunk in agent.stream(question, stream_mode=["custom", "updates", "values"]):
            if mode == "values":
                final = chunk
            elif mode == "custom" and chunk.get("type") == "token":
                if chunk["node"] != node:
                    section(node := chunk["node"], "cyan")
                text = chunk["delta"]
                sys.stdout.write(text)
                sys.stdout.flush()
            elif mode == "updates" and (run := chunk.get("run_code")):
                section("interpreter output", "green")
                node, text = "run_code", (run.get("output") or "").rstrip() + "\n"
                sys.stdout.write(text)
    finally:
        agent.close()
    if final.get("answer") is None:
        raise ToolpathError(f"no answer was found (status: {final.get('status')})")
    section("answer", "cyan")
    typer.echo(f"\\boxed{{{final['answer']}}}")


@app.command()
def chat(
    agent: Annotated[
        str, typer.Option(help="tools (a conversation that can call tools) or math (DotaMath).")
    ] = "tools",
    model: ModelOpt = "local",
    tools: Annotated[
        str, typer.Option("--tools", "-t", help="Comma-separated built-in tools to enable.")
    ] = "calculator",
    history_file: Annotated[
        str | None,
        typer.Option(help="Input history file (default ~/.cache/toolpath/chat_history)."),
    ] = None,
    sessions: Annotated[
        str | None,
        typer.Option(
            help="SQLite file of conversations (default ~/.cache/toolpath/chat_sessions.db)."
        ),
    ] = None,
) -> None:
    """Talk with an agent in an interactive REPL: answers stream, tool calls and code runs
    show in panels, and the conversation is remembered (/save NAME, /load NAME, also after
    a restart). Enter submits; a line ending with \\ continues, Esc+Enter (Alt+Enter) adds a
    newline; Ctrl-C stops a generation; Ctrl-D exits. /help lists the commands."""
    from toolpath.cli.chat import ChatSession, check_agent, run_repl
    from toolpath.llm.specs import load_model
    from toolpath.tools import get_tools

    check_agent(agent)
    enabled = [t.name for t in get_tools([t for t in tools.split(",") if t.strip()])]

    def load(spec: str) -> Any:
        with progress_bar() as bar:
            return load_model(spec, progress=bar)

    session = ChatSession(
        load(model), agent=agent, enabled=enabled, sessions_db=sessions, loader=load
    )
    run_repl(session, history_file)


@app.command()
def costa(
    request: Annotated[
        str,
        typer.Argument(
            help='The multi-step edit, e.g. "Recolor the red circle blue, then crop to the left half".'
        ),
    ],
    image: Annotated[str, typer.Option("--image", "-i", help="The input image (PNG, JPEG, ...).")],
    out_path: Annotated[
        str, typer.Option("--out", "-o", help="Where to write the edited image.")
    ] = "out.png",
    alpha: Annotated[
        float, typer.Option(help="0 = quality only ... 2 = cost only.", min=0.0, max=2.0)
    ] = 1.0,
    q_threshold: Annotated[
        float, typer.Option(help="Prune paths whose quality falls below this.", min=0.0, max=1.0)
    ] = 0.8,
    table: Annotated[
        str | None, typer.Option(help="A JSON cost table to learn into across runs.")
    ] = None,
    model: ModelOpt = "local",
) -> None:
    """Edit an image with CoSTA*: the model builds a subtask tree, A* picks the tools by cost
    and quality, and every step is verified (a failure updates the table and re-plans).
    Prints the executed path, its costs and the search statistics."""
    from rich.table import Table

    from toolpath.agents.costa.agent import costa_agent
    from toolpath.llm.specs import load_model
    from toolpath.tools.image.ops import ImageState, load_image, save_image

    picture = load_image(image)
    with progress_bar() as bar:
        llm = load_model(model, progress=bar)
    agent = costa_agent(llm, alpha=alpha, q_threshold=q_threshold, table_path=table)
    state = agent.invoke({"request": request, "context": ImageState(picture)})
    steps = Table("subtask", "type", "tool", "cost s", "quality", "ok")
    types = {s["id"]: s["type"] for s in state.get("tree", [])}
    for a in state.get("attempts", []):
        steps.add_row(
            a["subtask"],
            types.get(a["subtask"], ""),
            a["tool"],
            f"{a['cost']:.4f}",
            f"{a['quality']:.2f}",
            "yes" if a["ok"] else f"no {a.get('error') or ''}",
        )
    out.print(steps)
    executed = state.get("executed", [])
    quality = 1.0
    for step in executed:
        quality *= step.quality
    out.print(
        f"total cost {sum(s.cost for s in executed):.4f} s, final quality {quality:.3f}, "
        f"nodes expanded {state.get('expanded', 0)}, re-plans {state.get('replans', 0)}",
        markup=False,
    )
    if state.get("status") != "done":
        raise ToolpathError(f"the edit did not complete: {state.get('reason')}")
    typer.echo(str(save_image(state["context"].image, out_path)))


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the app and map toolpath errors to one line and an exit code."""
    try:
        app(args=argv, standalone_mode=False)
    except ToolpathError as exc:
        message = " ".join(str(exc).split())  # one line, whatever the terminal width
        sys.stderr.write(f"error: {message}\n")
        return exc.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        return 130
    except typer.TyperException as exc:  # usage errors: typer's own (vendored) click
        show = getattr(exc, "show", None)
        if show is None:
            raise
        show()
        return int(getattr(exc, "exit_code", 2))
    return 0


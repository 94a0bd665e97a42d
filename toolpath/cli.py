"""The ``toolpath`` command. Thin: it parses, calls the library and prints.

Every :class:`~toolpath.errors.ToolpathError` becomes one line on stderr and the error's
exit code (2 for bad input such as an unknown model spec).
"""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer

from toolpath import cli_admin, cli_eval, cli_retrieval
from toolpath.cli_common import ModelOpt, err, out, progress_bar
from toolpath.errors import ToolpathError

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
    help="Run a benchmark (gsm8k, math500, math, costa, retrieval). Runs resume where they stopped.",
    no_args_is_help=True,
)
app.add_typer(eval_app, name="eval")
for _module in (cli_eval, cli_retrieval, cli_admin):
    _module.register(app, eval_app)


@app.command()
def run(
    question: Annotated[str, typer.Argument(help="The task or question for the agent.")],
    model: ModelOpt = "local",
    tools: Annotated[
        str, typer.Option("--tools", "-t", help="Comma-separated built-in tools, e.g. calculator.")
    ] = "calculator",
    max_steps: Annotated[
        int, typer.Option(help="Most model calls before the agent must answer.", min=1)
    ] = 8,
    show_trace: Annotated[
        bool, typer.Option("--trace/--no-trace", help="Print each step to stderr.")
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print the final state as JSON.")] = False,
) -> None:
    """Answer QUESTION with the single-model tool agent and print the answer on stdout.

    Each model call (time, tokens) and each tool result is shown on stderr as it happens.
    The first use of a local model joins and verifies its file once, with a progress bar.
    """
    from toolpath.agents.react import tool_agent
    from toolpath.llm.specs import load_model
    from toolpath.tools import get_tools

    toolset = get_tools([t for t in tools.split(",") if t.strip()])
    with progress_bar() as bar:
        llm = load_model(model, progress=bar)
    agent = tool_agent(toolset, llm, max_steps=max_steps)
    final: dict[str, Any] = {}
    for mode, chunk in agent.stream(question, stream_mode=["updates", "custom", "values"]):
        if mode == "values":
            final = chunk
        elif mode == "custom" and show_trace and chunk.get("type") == "token":
            err.out(chunk["delta"], end="", style="dim", highlight=False)
        elif mode == "updates" and show_trace:
            _print_update(chunk)
    if as_json:
        out.print_json(json.dumps(final, default=str))
    elif final.get("answer") is not None:
        typer.echo(final["answer"])
    else:
        raise ToolpathError(f"the agent stopped without an answer (status: {final.get('status')})")


def _print_update(update: dict[str, Any]) -> None:
    """One stderr line per model call (time, tokens, any error) and per tool result."""
    from rich.markup import escape

    for node, delta in update.items():
        for rec in (delta or {}).get("trace", []):
            if rec["node"] == "model":
                problem = f"  [red]{escape(rec['error'])}[/]" if "error" in rec else ""
                err.print(
                    f"\n[cyan]model[/] {rec['latency_s']:.2f}s  "
                    f"{rec['prompt_tokens']}+{rec['completion_tokens']} tokens{problem}"
                )
        if node == "tools":
            for msg in delta.get("messages", []):
                err.print("[green]tool[/] " + escape(msg["content"].splitlines()[0]))


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
    from toolpath.agents.mathbase import initial_state
    from toolpath.evals.math_tasks import math_agent_for
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
    from toolpath.chat import ChatSession, check_agent, run_repl
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

    from toolpath.agents.costa import costa_agent
    from toolpath.llm.specs import load_model
    from toolpath.tools.image import ImageState, load_image, save_image

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


if __name__ == "__main__":
    sys.exit(main())

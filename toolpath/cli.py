"""The ``toolpath`` command. Thin: it parses, calls the library and prints.

Every :class:`~toolpath.errors.ToolpathError` becomes one line on stderr and the error's
exit code (2 for bad input such as an unknown model spec).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from rich.console import Console

from toolpath.errors import ConfigError, ToolpathError

app = typer.Typer(
    help="toolpath: LLM agents that use tools, on an embedded offline model or any "
    "OpenAI-compatible endpoint.",
    epilog='Examples: toolpath run "What is 1234 * 5678? Use the calculator." --model '
    "local:qwen2.5-coder-0.5b  |  toolpath models list  |  toolpath models pull qwen2.5-coder-1.5b. "
    "Errors print one line on stderr; exit codes: 2 bad input, 3 missing model, "
    "4 sha256 mismatch, 5 backend failed after retries, 6 missing extra.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
models_app = typer.Typer(
    help="List, fetch and locate the embedded GGUF models.", no_args_is_help=True
)
app.add_typer(models_app, name="models")
index_app = typer.Typer(
    help="Build the embedding index of a tool catalog for API retrieval.", no_args_is_help=True
)
app.add_typer(index_app, name="index")

err = Console(stderr=True, highlight=False)
out = Console(highlight=False)

ModelOpt = Annotated[
    str,
    typer.Option(
        "--model",
        "-m",
        help="Model spec: local, local:qwen2.5-coder-0.5b, local:/path/x.gguf, openai:gpt-4o-mini, "
        "openai:MODEL@URL, URL#MODEL or ollama:NAME.",
    ),
]


@contextmanager
def progress_bar() -> Iterator[Callable[[str, int, int], None]]:
    """A rich progress bar driven by toolpath's ``(label, done, total)`` callbacks.

    It appears only once something reports progress, so fast paths print nothing.
    """
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

    prog = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
    )
    bars: dict[str, Any] = {}

    def update(label: str, done: int, total: int) -> None:
        if not bars:
            prog.start()
        if label not in bars:
            bars[label] = prog.add_task(label, total=total or None)
        prog.update(bars[label], completed=done, total=total or None)

    try:
        yield update
    finally:
        if bars:
            prog.stop()


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


@app.command("eval")
def eval_cmd(
    benchmark: Annotated[
        str, typer.Argument(help="gsm8k, math500, math (the full MATH test set) or costa.")
    ],
    method: Annotated[
        str, typer.Option(help="Comma-separated methods: dotamath, pot, cot.")
    ] = "dotamath",
    model: ModelOpt = "local",
    limit: Annotated[int | None, typer.Option(help="Only the first N problems.", min=1)] = None,
    out_dir: Annotated[
        str, typer.Option("--out", help="Run folder: JSONL per method, summary, plot.")
    ] = "runs/eval",
    data: Annotated[
        str | None, typer.Option(help="A JSONL file or folder (default: the shared copies).")
    ] = None,
    concurrency: Annotated[
        int, typer.Option(help="Episodes at once (one kernel each).", min=1)
    ] = 1,
    retry_errors: Annotated[
        bool, typer.Option(help="Run again the episodes that ended in an error.")
    ] = False,
    tasks: Annotated[int, typer.Option(help="costa: how many generated tasks.", min=1)] = 50,
    alpha: Annotated[
        str, typer.Option(help="costa: comma-separated alphas in [0, 2].")
    ] = "0,0.5,1,1.5,2",
    search: Annotated[
        str, typer.Option(help="costa: comma-separated searches: astar, ucs, exhaustive, greedy.")
    ] = "astar,ucs,exhaustive,greedy",
    seed: Annotated[int, typer.Option(help="costa: the task generator's seed.")] = 0,
) -> None:
    """Run a math benchmark. Results are appended to OUT/<method>.jsonl as episodes finish;
    running the same command again resumes where it stopped. Writes summary.json,
    summary.md and plot.png comparing the methods in OUT."""
    import asyncio
    from pathlib import Path

    from toolpath.evals.harness import run_eval
    from toolpath.evals.math_tasks import METHODS, math_agent_for, task
    from toolpath.llm.specs import load_model

    if benchmark == "costa":
        _eval_costa(model, Path(out_dir), tasks, alpha, search, seed)
        return
    methods = [m.strip() for m in method.split(",") if m.strip()]
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise ConfigError(
            f"unknown method {', '.join(unknown) or '(none)'}; use: {', '.join(METHODS)}"
        )
    family = task(benchmark)
    examples = list(family.load(data=data, limit=limit))
    with progress_bar() as bar:
        llm = load_model(model, progress=bar)
    summary: dict[str, Any] = {}
    for name in methods:
        pool = None
        if name != "cot":
            from toolpath.tools.python import KernelPool

            pool = KernelPool(size=concurrency)
        family.kernels = pool
        agent = math_agent_for(name, llm)
        try:
            result = asyncio.run(
                run_eval(
                    family,
                    examples,
                    agent,
                    out_dir=Path(out_dir),
                    method=name,
                    concurrency=concurrency,
                    retry_errors=retry_errors,
                )
            )
        finally:
            agent.close()
            if pool is not None:
                pool.close()
        summary = result.summary
    _print_summary(summary, Path(out_dir))


def _eval_costa(model: str, out_dir: Any, n: int, alphas: str, searches: str, seed: int) -> None:
    from toolpath.evals.costa import SEARCHES, run_bench
    from toolpath.llm.specs import load_model

    try:
        alpha_values = [float(a) for a in alphas.split(",") if a.strip()]
    except ValueError:
        raise ConfigError(f"--alpha must be comma-separated numbers, got {alphas!r}") from None
    if not alpha_values or any(not 0 <= a <= 2 for a in alpha_values):
        raise ConfigError(f"every alpha must be in [0, 2], got {alphas!r}")
    names = [s.strip() for s in searches.split(",") if s.strip()]
    if not names or any(s not in SEARCHES for s in names):
        raise ConfigError(f"unknown search in {searches!r}; use: {', '.join(SEARCHES)}")
    with progress_bar() as bar:
        llm = load_model(model, progress=bar)
    summary = run_bench(llm, out_dir, n=n, seed=seed, alphas=alpha_values, searches=names)
    from rich.table import Table

    table = Table("method", "n", "errors", "success %", "cost s", "quality", "expanded", "re-plans")
    for name, row in summary["methods"].items():
        table.add_row(
            name,
            str(row["n"]),
            str(row["errors"]),
            f"{row['success']:.1f}",
            f"{row['cost']:.4f}",
            f"{row['quality']:.3f}",
            f"{row['expanded']:.1f}",
            f"{row['replans']:.2f}",
        )
    out.print(table)
    out.print(f"results in {out_dir}/ (costa_summary.md, plot.png, tradeoff.png)", markup=False)


def _print_summary(summary: dict[str, Any], out_dir: Any) -> None:
    from rich.table import Table

    methods = summary.get("methods", {})
    table = Table("method", "n", "errors", "strict %", "lenient %", "tokens", "seconds", "rounds")
    for name, row in methods.items():
        if not isinstance(row, dict):
            continue
        scores = row.get("scores", {})
        table.add_row(
            name,
            str(row.get("n")),
            str(row.get("errors")),
            _fmt(scores.get("strict")),
            _fmt(scores.get("lenient")),
            _fmt(row.get("tokens")),
            _fmt(row.get("seconds")),
            _fmt(row.get("tool_rounds")),
        )
    out.print(table)
    out.print(f"results in {out_dir}/ (summary.md, summary.json, plot.png)", markup=False)


def _fmt(value: Any) -> str:
    return f"{value:.1f}" if isinstance(value, int | float) else "-"


@models_app.command("list")
def models_list() -> None:
    """Show the registry models, their size and whether they are cached or installed."""
    from rich.table import Table

    from toolpath.llm.models import list_models

    table = Table("name", "size", "status", "path")
    table.columns[3].overflow = "fold"
    for row in list_models():
        name = row["name"] + (" (default)" if row.get("default") else "")
        size = f"{row['size'] / 1e6:,.0f} MB" if row.get("size") else "?"
        table.add_row(name, size, row["status"], str(row.get("path") or ""))
    out.print(table)


@models_app.command("pull")
def models_pull(
    name: Annotated[
        str, typer.Argument(help="Registry name, e.g. qwen2.5-coder-0.5b.")
    ] = "qwen2.5-coder-1.5b",
    force: Annotated[
        bool, typer.Option(help="Fetch again even if a verified copy is cached.")
    ] = False,
) -> None:
    """Put a model in the cache: join the installed parts or download it, then verify its sha256."""
    from toolpath.llm.models import pull

    with progress_bar() as bar:
        path = pull(name, force=force, progress=bar)
    typer.echo(str(path))


@models_app.command("path")
def models_path(
    name: Annotated[str, typer.Argument(help="Registry name or path.")] = "qwen2.5-coder-1.5b",
) -> None:
    """Print the verified local path of a model, preparing it first if needed (no download)."""
    from toolpath.llm.models import resolve

    with progress_bar() as bar:
        path = resolve(name, download=False, progress=bar)
    typer.echo(str(path))


@index_app.command("build")
def index_build(
    catalog: Annotated[
        str,
        typer.Argument(
            help="A tool catalog: toolpath/OpenAI/ToolBench JSON, JSONL or YAML, a .py file, or "
            "module:pkg.tools."
        ),
    ],
    out_dir: Annotated[
        str, typer.Option("--out", "-o", help="Cache folder; the index goes in OUT/<content hash>.")
    ],
    hnsw_threshold: Annotated[
        int, typer.Option(help="Use HNSW instead of an exact flat index above this many tools.")
    ] = 50_000,
    threads: Annotated[
        int | None, typer.Option(help="Torch threads while embedding (default: one per core).")
    ] = None,
) -> None:
    """Embed every tool of CATALOG (all-MiniLM-L6-v2 on the CPU) into a faiss index saved under
    OUT. Building the same catalog again reuses the saved index without embedding anything."""
    import time
    from pathlib import Path

    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    from toolpath.retrieval.api_retriever import APIRetriever
    from toolpath.retrieval.embed import Embedder
    from toolpath.tools.catalog import load_catalog

    loaded = load_catalog(catalog)
    prog = Progress(
        TextColumn("embedding tools"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
    )
    task: list[Any] = []

    def progress(done: int, total: int) -> None:
        if not task:
            prog.start()
            task.append(prog.add_task("embed", total=total))
        prog.update(task[0], completed=done)

    start = time.perf_counter()
    try:
        retriever = APIRetriever(
            loaded,
            embedder=Embedder(threads=threads),
            cache_dir=Path(out_dir),
            hnsw_threshold=hnsw_threshold,
            progress=progress,
        )
    finally:
        if task:
            prog.stop()
    seconds = time.perf_counter() - start
    index = retriever.index
    skipped = f", {len(loaded.skipped)} skipped" if loaded.skipped else ""
    out.print(
        f"{len(index)} tools indexed{skipped}; {index.kind} index, dimension {index.dim}, "
        f"embedder {index.embedder_name}",
        markup=False,
    )
    if index.reused:
        out.print(
            f"reused the cached index (same tools and embedder, nothing embedded); "
            f"loaded in {seconds:.2f} s",
            markup=False,
        )
    else:
        out.print(
            f"built in {index.build_seconds:.2f} s (embedding included; {seconds:.2f} s in all)",
            markup=False,
        )
    typer.echo(str(index.folder))


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
    except Exception as exc:
        import click

        if isinstance(exc, click.exceptions.Exit):
            return exc.exit_code
        if isinstance(exc, click.ClickException):
            exc.show()
            return exc.exit_code
        if isinstance(exc, click.exceptions.Abort):
            return 130
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())

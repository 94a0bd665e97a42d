"""``toolpath solve`` (one math problem, streamed) and ``toolpath eval gsm8k|gsm8k-train|gsm8k-dev|math500|math``.

Every eval run appends one JSONL line per finished episode to its ``--out`` folder; running
the same command again resumes where it stopped.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from toolpath.cli.common import ModelOpt, fmt, load, one_of, out, split
from toolpath.errors import ConfigError, ToolpathError

MixedOpt = Annotated[
    bool, typer.Option(help="With --samples: every second trajectory is chain of thought.")
]

BENCHMARKS = {
    "gsm8k": "GSM8K test (grade-school word problems)",
    "gsm8k-train": "GSM8K train, for tuning (without the few-shot problems)",
    "gsm8k-dev": "GSM8K-dev, for tuning: train problems with new numbers and recomputed answers",
    "math500": "MATH-500 (the 500-problem MATH subset)",
    "math": "The full MATH test set (5,000 problems)",
}


def register(app: typer.Typer, eval_app: typer.Typer) -> None:
    """Add ``toolpath solve`` and one ``toolpath eval`` command per math benchmark."""
    app.command("solve")(solve)
    for name, what in BENCHMARKS.items():
        eval_app.command(name, help=_eval_help(what))(_eval_command(name))


def solve(
    question: Annotated[str, typer.Argument(help="The math problem, as text.")],
    model: ModelOpt = "local",
    method: Annotated[
        str,
        typer.Option(
            help="dotamath (subtasks and reasoning as code comments, run, read, correct), pot or cot."
        ),
    ] = "dotamath",
    max_rounds: Annotated[
        int, typer.Option(help="Most program runs for dotamath (ToRA uses 4).", min=1)
    ] = 4,
    samples: Annotated[
        int,
        typer.Option(
            help="Vote over up to K dotamath trajectories (two at a time), stopping as soon "
            "as the vote is settled; each is shown as it finishes, then the vote.",
            min=1,
            max=99,
        ),
    ] = 1,
    mixed: MixedOpt = False,
    confidence: Annotated[
        float | None,
        typer.Option(
            help="With --samples: stop once the leading answer wins the whole vote with this "
            "probability (1: only when the samples left cannot change the winner). "
            "Default 0.95.",
            min=0.51,
            max=1.0,
        ),
    ] = None,
    recheck: Annotated[
        bool,
        typer.Option(
            help="dotamath: one more turn re-reads the problem against the printed answer."
        ),
    ] = False,
) -> None:
    """Solve a math problem, streaming the steps and the \\boxed{} answer.

    Shows the code (its comments plan the solution), the real interpreter output and the
    answer as they come. Generated code runs in a sandboxed Jupyter kernel.
    """
    from toolpath.agents.math.common import initial_state
    from toolpath.evals.math.tasks import math_agent_for

    initial_state(question)  # refuse an empty question before loading anything
    name = voting_methods(method, samples, mixed)[0]
    if recheck and method != "dotamath":
        raise ConfigError("--recheck applies to --method dotamath")
    if confidence is not None and samples == 1:
        raise ConfigError("--confidence needs --samples K with K > 1")
    dota = {"max_rounds": max_rounds, "recheck": recheck}
    if samples > 1:
        vote_confidence = 0.95 if confidence is None else confidence
        return _solve_by_vote(question, model, name, confidence=vote_confidence, **dota)
    llm = load(model)
    options = dota if method == "dotamath" else {}
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


def _solve_by_vote(question: str, model: str, method: str, **options: Any) -> None:
    """``solve --samples K``: a line per trajectory as it finishes, then the tally."""
    from toolpath.evals.math.tasks import math_agent_for
    from toolpath.evals.ray_executor import VOTE_PARALLEL

    local = model == "local" or model.startswith("local:")
    llm = load(model, **({"n_parallel": VOTE_PARALLEL} if local else {}))
    agent = math_agent_for(method, llm, parallel=VOTE_PARALLEL, **options)
    final: dict[str, Any] = {}
    try:
        for mode, chunk in agent.stream(question, stream_mode=["custom", "values"]):
            if mode == "values":
                final = chunk
            elif chunk.get("type") == "sample":
                answer = chunk["answer"] if chunk["vote"] is not None else "no vote"
                why = "" if chunk["vote"] is not None else f" ({chunk['status']})"
                out.print(
                    f"sample {chunk['index'] + 1} [{chunk['method']}]: {answer}{why}  "
                    f"{chunk['seconds']:.1f} s",
                    markup=False,
                )
            elif chunk.get("type") == "vote":
                counts = ", ".join(f"{k}: {n}" for k, n in chunk["counts"].items()) or "no votes"
                out.rule("[bold]vote[/]", align="left", style="cyan")
                out.print(
                    f"{counts}  ({chunk['used']} of {chunk['budget']} samples used)",
                    markup=False,
                )
    finally:
        agent.close()
        llm.close()
    if final.get("answer") is None:
        raise ToolpathError(f"no sample gave an answer (status: {final.get('status')})")
    typer.echo(f"\\boxed{{{final['answer']}}}")


def _eval_help(what: str) -> str:
    return (
        f"{what}.\n\n"
        "Runs one or more methods on one model: dotamath (subtasks and reasoning as code comments, run, read, correct), pot "
        "(one program) and cot (reasoning in text). Results are appended to OUT/METHOD.jsonl as episodes finish; the same command again "
        "resumes where it stopped. Writes summary.json, summary.md and plot.png comparing "
        "the methods."
    )


def _eval_command(benchmark: str) -> Callable[..., None]:
    """The ``toolpath eval BENCHMARK`` command (its ``--out`` defaults to runs/BENCHMARK)."""

    def command(
        method: Annotated[
            str,
            typer.Option(
                help="Comma-separated methods: dotamath, dotamath-k5 (a vote over up to 5 "
                "trajectories, stopped once settled), dotamath-mixed-k5 (every second one chain "
                "of thought), pot, pot-zero, pot-few, cot, cot-zero, cot-few."
            ),
        ] = "dotamath",
        samples: Annotated[
            int,
            typer.Option(
                help="Vote over up to K DotaMath trajectories: turns dotamath into dotamath-kK.",
                min=1,
                max=99,
            ),
        ] = 1,
        mixed: MixedOpt = False,
        model: ModelOpt = "local",
        limit: Annotated[int | None, typer.Option(help="Only the first N problems.", min=1)] = None,
        skip: Annotated[
            int,
            typer.Option(help="Leave out the first N problems; --limit counts from there.", min=0),
        ] = 0,
        out_dir: Annotated[
            str, typer.Option("--out", help="Run folder: JSONL per method, summary, plot.")
        ] = f"runs/{benchmark}",
        data: Annotated[
            str | None, typer.Option(help="A JSONL file or folder (default: the shared copies).")
        ] = None,
        concurrency: Annotated[
            int, typer.Option(help="Episodes at once (one kernel each).", min=1)
        ] = 1,
        retry_errors: Annotated[
            bool, typer.Option(help="Run again the episodes that ended in an error.")
        ] = False,
        endpoints: Annotated[
            str | None,
            typer.Option(
                help="Comma-separated OpenAI-compatible base URLs (replicas of one model); each "
                "request goes to the replica with the fewest in flight, and a failed one is "
                "retried on another. --model then names the served model."
            ),
        ] = None,
        executor: Annotated[
            str, typer.Option(help="local (this process) or ray (shard episodes over workers).")
        ] = "local",
        ray_address: Annotated[
            str | None, typer.Option(help="Ray cluster address (default: start a local one).")
        ] = None,
        workers: Annotated[int, typer.Option(help="Ray workers.", min=1)] = 2,
    ) -> None:
        from toolpath.evals.ray_executor import run_math_eval

        methods = voting_methods(method, samples, mixed)
        one_of(executor, ("local", "ray"), "--executor")
        if executor == "local" and not endpoints:  # join/verify a local model with a bar
            load(model).close()
        summary = run_math_eval(
            benchmark,
            methods,
            model=model,
            endpoints=endpoints,
            executor=executor,  # type: ignore[arg-type]
            ray_address=ray_address,
            num_workers=workers,
            concurrency=concurrency,
            limit=limit,
            skip=skip,
            data=data,
            out_dir=Path(out_dir),
            retry_errors=retry_errors,
        )
        _print_summary(summary, Path(out_dir))

    command.__name__ = f"eval_{benchmark.replace('-', '_')}"
    return command


def voting_methods(method: str, samples: int, mixed: bool) -> list[str]:
    """The methods named, ``dotamath`` made ``dotamath[-mixed]-kK`` by ``--samples K``."""
    from toolpath.evals.math.tasks import METHODS, is_method

    items = split(method)
    if mixed and samples == 1:
        raise ConfigError("--mixed needs --samples K with K > 1")
    if samples > 1:
        if "dotamath" not in items:
            raise ConfigError("--samples applies to dotamath; add it to --method")
        vote = f"dotamath{'-mixed' if mixed else ''}-k{samples}"
        items = [vote if m == "dotamath" else m for m in items]
    unknown = [m for m in items if not is_method(m)]
    if unknown or not items:
        shown = ", ".join(unknown) or "(none)"
        raise ConfigError(f"unknown method {shown}; use: {', '.join(METHODS)} (K: 1-99)")
    return items


def _print_summary(summary: dict[str, Any], out_dir: Path) -> None:
    from rich.table import Table

    table = Table(
        "method", "n", "errors", "strict %", "lenient %", "tokens", "seconds", "rounds", "samples"
    )
    for name, row in summary.get("methods", {}).items():
        if not isinstance(row, dict):
            continue
        scores = row.get("scores", {})
        table.add_row(
            name,
            str(row.get("n")),
            str(row.get("errors")),
            fmt(scores.get("strict")),
            fmt(scores.get("lenient")),
            fmt(row.get("tokens")),
            fmt(row.get("seconds")),
            fmt(row.get("tool_rounds")),
            fmt(row.get("samples")),
        )
    out.print(table)
    out.print(f"results in {out_dir}/ (summary.md, summary.json, plot.png)", markup=False)

"""``toolpath eval one-step``: TPTU's one-step agent against the sequential tool agent and
α-UMi, on the same executable multi-call tasks."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any

import typer

from toolpath.cli.common import ModelOpt, all_of, fmt, load, out


def register(app: typer.Typer, eval_app: typer.Typer) -> None:
    """Add ``toolpath eval one-step``."""
    eval_app.command("one-step")(eval_one_step)


def eval_one_step(
    agents: Annotated[
        str,
        typer.Option(
            help="Comma-separated agents: one-step (TPTU: every call planned in one reply, then "
            "run), tools (the sequential tool agent: one call at a time, each after the last "
            "result), alpha-umi (planner, caller and summarizer on the one model)."
        ),
    ] = "one-step,tools,alpha-umi",
    model: ModelOpt = "local",
    tasks: Annotated[
        int | None,
        typer.Option(
            help="Only the first N tasks: the fixture's 8 come first, then the generated ones. "
            "Default: all.",
            min=1,
        ),
    ] = None,
    generated: Annotated[
        int, typer.Option(help="How many tasks to generate from the synthetic catalog.", min=0)
    ] = 50,
    fixture_only: Annotated[
        bool, typer.Option("--fixture-only", help="Only the 8 hand-written fixture tasks.")
    ] = False,
    seed: Annotated[int, typer.Option(help="The task generator's seed.")] = 0,
    timeout: Annotated[
        float | None,
        typer.Option(help="Seconds an episode may take before it counts as an error.", min=1),
    ] = 600,
    out_dir: Annotated[
        str,
        typer.Option("--out", help="Run folder: AGENT.jsonl, report.md, summary.md, plot.png."),
    ] = "runs/one-step",
) -> None:
    """Compare one-step and sequential planning (and α-UMi) on the same multi-call tasks.

    The tasks need 2 to 4 tool calls, most of them a call that takes an earlier call's
    result: 8 hand-written ones over a calculator, a unit converter, city and currency tables,
    then tasks generated over executable, deterministic versions of the synthetic catalog's
    APIs (6 to 8 tools shown per task). success: the answer holds every gold value (numbers
    within 0.5%); calls match: the executed calls cover the gold calls. Reports those, mean
    tokens, model calls and seconds per task for each agent. Results are appended to
    OUT/AGENT.jsonl as tasks finish; the same command again resumes where it stopped.
    """
    from toolpath.evals.one_step.compare import AGENTS, run_compare

    names = all_of(agents, AGENTS, "agent")
    chat_model = load(model)
    try:
        report = asyncio.run(
            run_compare(
                chat_model,
                names,
                out_dir=Path(out_dir),
                generated=generated,
                limit=tasks,
                seed=seed,
                fixture_only=fixture_only,
                episode_timeout=timeout,
            )
        )
    finally:
        chat_model.close()
    _print(report, Path(out_dir))


def _print(report: dict[str, Any], out_dir: Path) -> None:
    from rich.table import Table

    table = Table("agent", "tasks", "n", "errors", "success %", "calls match %", "tokens")
    for column in ("model calls", "tool calls", "seconds"):
        table.add_column(column)
    for name, rows in report.items():
        for subset, row in rows.items():
            table.add_row(
                name,
                subset,
                str(row["n"]),
                str(row["errors"]),
                fmt(row["success"]),
                fmt(row["calls_match"]),
                fmt(row["tokens"]),
                fmt(row["model_calls"]),
                fmt(row["tool_calls"]),
                fmt(row["seconds"]),
            )
    out.print(table)
    out.print(f"results in {out_dir}/ (report.md, summary.md, plot.png)", markup=False)

"""``toolpath eval bfcl``: function calling on the Berkeley Function Calling Leaderboard (v4),
toolpath's way against a hand-written prompt, on one model, in one run."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any

import typer

from toolpath.cli.common import ModelOpt, all_of, fmt, load, out, progress_bar


def register(app: typer.Typer, eval_app: typer.Typer) -> None:
    """Add ``toolpath eval bfcl``."""
    eval_app.command("bfcl")(eval_bfcl)


def eval_bfcl(
    category: Annotated[
        str,
        typer.Option(
            help="Comma-separated categories: simple, multiple, parallel, parallel_multiple, "
            "irrelevance."
        ),
    ] = "simple,multiple,parallel,parallel_multiple,irrelevance",
    method: Annotated[
        str,
        typer.Option(
            help="Comma-separated methods: toolpath (toolpath's own tool calling) and raw (the "
            "functions as JSON in a hand-written prompt, reply constrained to a list of calls)."
        ),
    ] = "toolpath,raw",
    model: ModelOpt = "local",
    limit: Annotated[
        int | None, typer.Option(help="Only the first N items of each category.", min=1)
    ] = 100,
    skip: Annotated[
        int, typer.Option(help="Leave out the first N items; --limit counts from there.", min=0)
    ] = 0,
    out_dir: Annotated[
        str, typer.Option("--out", help="Run folder: CATEGORY/METHOD.jsonl and report.md.")
    ] = "runs/bfcl",
    data: Annotated[
        str | None,
        typer.Option(
            help="BFCL's data: a folder with BFCL_v4_*.json and possible_answer/, or the "
            "bfcl-eval wheel (pip download --no-deps bfcl-eval). Default: the cache, downloaded "
            "from PyPI when missing."
        ),
    ] = None,
) -> None:
    """Score tool calls on BFCL v4 with its AST rules, every method side by side.

    Each item is one question and its functions, answered in one turn. accuracy: the calls
    match BFCL's answer (name, required and allowed arguments, values; parallel calls in any
    order). no call: the share answered without a call (right on irrelevance, a false refusal
    elsewhere). Results are appended to OUT/CATEGORY/METHOD.jsonl as items finish; the same
    command again resumes where it stopped.
    """
    from toolpath.evals.bfcl.data import CATEGORIES, data_dir
    from toolpath.evals.bfcl.tasks import METHODS, run_bfcl

    categories = all_of(category, list(CATEGORIES), "category")
    methods = all_of(method, METHODS, "method")
    with progress_bar() as bar:  # fail on missing data before loading a model
        folder = data_dir(data, progress=bar)
    chat_model = load(model)
    try:
        report = asyncio.run(
            run_bfcl(
                chat_model,
                {c: (skip, limit) for c in categories},
                methods,
                out_dir=Path(out_dir),
                data=folder,
            )
        )
    finally:
        chat_model.close()
    _print(report, Path(out_dir))


def _print(report: dict[str, Any], out_dir: Path) -> None:
    from rich.table import Table

    table = Table("category", "method", "n", "accuracy %", "no call %", "tokens", "seconds")
    for category, methods in report.items():
        for name, row in methods.items():
            scores = row.get("scores", {})
            table.add_row(
                category,
                name,
                str(row.get("n")),
                fmt(scores.get("accuracy")),
                fmt(scores.get("no_call")),
                fmt(row.get("tokens")),
                fmt(row.get("seconds")),
            )
    out.print(table)
    out.print(f"results in {out_dir}/ (report.md, report.json)", markup=False)

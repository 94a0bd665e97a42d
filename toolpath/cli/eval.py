"""``toolpath eval BENCHMARK``: one subcommand per benchmark, each with only its own options.

Every run appends one JSONL line per finished episode to its ``--out`` folder; running the same
command again resumes where it stopped.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from toolpath.cli.common import ModelOpt, fmt, out, progress_bar
from toolpath.errors import ConfigError

MATH_BENCHMARKS = {
    "gsm8k": "GSM8K test (grade-school word problems)",
    "gsm8k-train": "GSM8K train, for tuning (the demonstrations' problems are left out)",
    "math500": "MATH-500 (the 500-problem MATH subset)",
    "math": "The full MATH test set (5,000 problems)",
}

Method = Annotated[str, typer.Option(help="Comma-separated methods: dotamath, pot, cot.")]
Limit = Annotated[int | None, typer.Option(help="Only the first N problems.", min=1)]
Skip = Annotated[
    int, typer.Option(help="Leave out the first N problems; --limit counts from there.", min=0)
]
Data = Annotated[
    str | None, typer.Option(help="A JSONL file or folder (default: the shared copies).")
]
Concurrency = Annotated[int, typer.Option(help="Episodes at once (one kernel each).", min=1)]
RetryErrors = Annotated[bool, typer.Option(help="Run again the episodes that ended in an error.")]


def register(app: typer.Typer, eval_app: typer.Typer) -> None:
    """Add the math benchmarks and CoSTA* to the ``eval`` group."""
    for name, what in MATH_BENCHMARKS.items():
        eval_app.command(name, help=_math_help(what), short_help=f"{what}: dotamath, pot, cot.")(
            _math_command(name)
        )
    eval_app.command("costa")(costa)


def _math_help(what: str) -> str:
    return (
        f"Run {what} with one or more methods on one model. Results are appended to "
        "OUT/METHOD.jsonl as episodes finish; the same command again resumes where it "
        "stopped. Writes summary.json, summary.md and plot.png comparing the methods."
    )


def _math_command(benchmark: str) -> Callable[..., None]:
    def command(
        method: Method = "dotamath",
        model: ModelOpt = "local",
        limit: Limit = None,
        skip: Skip = 0,
        out_dir: Annotated[
            str, typer.Option("--out", help="Run folder: JSONL per method, summary, plot.")
        ] = f"runs/{benchmark}",
        data: Data = None,
        concurrency: Concurrency = 1,
        retry_errors: RetryErrors = False,
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
        from toolpath.evals.math.tasks import METHODS
        from toolpath.evals.ray_executor import run_math_eval

        methods = [m.strip() for m in method.split(",") if m.strip()]
        unknown = [m for m in methods if m not in METHODS]
        if unknown or not methods:
            raise ConfigError(
                f"unknown method {', '.join(unknown) or '(none)'}; use: {', '.join(METHODS)}"
            )
        if executor not in ("local", "ray"):
            raise ConfigError(f"--executor must be local or ray, not {executor!r}")
        with progress_bar() as bar:
            if executor == "local" and not endpoints:  # join/verify a local model with a bar
                from toolpath.llm.specs import load_model

                load_model(model, progress=bar).close()
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

    command.__name__ = f"eval_{benchmark}"
    return command


def costa(
    model: ModelOpt = "local",
    out_dir: Annotated[
        str, typer.Option("--out", help="Run folder: results, summary, plots.")
    ] = "runs/costa",
    tasks: Annotated[int, typer.Option(help="How many generated tasks.", min=1)] = 50,
    alpha: Annotated[str, typer.Option(help="Comma-separated alphas in [0, 2].")] = "0,0.5,1,1.5,2",
    search: Annotated[
        str, typer.Option(help="Comma-separated searches: astar, ucs, exhaustive, greedy.")
    ] = "astar,ucs,exhaustive,greedy",
    seed: Annotated[int, typer.Option(help="The task generator's seed.")] = 0,
    q_threshold: Annotated[
        float,
        typer.Option(help="Prune plans whose quality (prod Q) falls below this.", min=0.0, max=1.0),
    ] = 0.8,
) -> None:
    """Run CoSTA* on generated image-editing tasks: the model builds each task's subtask tree
    once, then every search and alpha plans and executes on the real image tools. Reports
    success, cost, quality and search statistics per method, with plots."""
    from rich.table import Table

    from toolpath.evals.costa.benchmark import SEARCHES, run_bench
    from toolpath.llm.specs import load_model

    try:
        alpha_values = [float(a) for a in alpha.split(",") if a.strip()]
    except ValueError:
        raise ConfigError(f"--alpha must be comma-separated numbers, got {alpha!r}") from None
    if not alpha_values or any(not 0 <= a <= 2 for a in alpha_values):
        raise ConfigError(f"every alpha must be in [0, 2], got {alpha!r}")
    names = [s.strip() for s in search.split(",") if s.strip()]
    if not names or any(s not in SEARCHES for s in names):
        raise ConfigError(f"unknown search in {search!r}; use: {', '.join(SEARCHES)}")
    with progress_bar() as bar:
        llm = load_model(model, progress=bar)
    summary = run_bench(
        llm,
        Path(out_dir),
        n=tasks,
        seed=seed,
        alphas=alpha_values,
        searches=names,
        q_threshold=q_threshold,
    )
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


def _print_summary(summary: dict[str, Any], out_dir: Path) -> None:
    from rich.table import Table

    table = Table("method", "n", "errors", "strict %", "lenient %", "tokens", "seconds", "rounds")
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
        )
    out.print(table)
    out.print(f"results in {out_dir}/ (summary.md, summary.json, plot.png)", markup=False)

"""``toolpath costa`` (one image edit with CoSTA*) and ``toolpath eval costa`` (the benchmark)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from toolpath.cli.common import ModelOpt, all_of, load, out
from toolpath.errors import ConfigError, ToolpathError

QThreshold = Annotated[
    float,
    typer.Option(help="Prune plans whose quality (prod Q) falls below this.", min=0.0, max=1.0),
]


def register(app: typer.Typer, eval_app: typer.Typer) -> None:
    """Add ``toolpath costa`` and ``toolpath eval costa``."""
    app.command("costa")(costa)
    eval_app.command("costa")(eval_costa)


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
    q_threshold: QThreshold = 0.8,
    table: Annotated[
        str | None, typer.Option(help="A JSON cost table to learn into across runs.")
    ] = None,
    model: ModelOpt = "local",
) -> None:
    """Edit an image with CoSTA*: a subtask tree, then A* over the tools.

    The model builds a subtask tree, A* picks the tools by cost and quality, and every step
    is verified (a failure updates the table and re-plans). Prints the executed path, its
    costs and the search statistics, and writes the edited image to --out.
    """
    from rich.table import Table

    from toolpath.agents.costa.agent import costa_agent
    from toolpath.tools.image.ops import ImageState, load_image, save_image

    picture = load_image(image)
    agent = costa_agent(model=load(model), alpha=alpha, q_threshold=q_threshold, table_path=table)
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


def eval_costa(
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
    q_threshold: QThreshold = 0.8,
) -> None:
    """CoSTA* on generated image edits, every search and alpha.

    The model builds each task's subtask tree once, then every search and alpha plans and
    executes on the real image tools. Reports success, cost, quality and search statistics
    per method, with plots.
    """
    from rich.table import Table

    from toolpath.evals.costa.benchmark import SEARCHES, run_bench

    try:
        alpha_values = [float(a) for a in alpha.split(",") if a.strip()]
    except ValueError:
        raise ConfigError(f"--alpha must be comma-separated numbers, got {alpha!r}") from None
    if not alpha_values or any(not 0 <= a <= 2 for a in alpha_values):
        raise ConfigError(f"every alpha must be in [0, 2], got {alpha!r}")
    names = all_of(search, SEARCHES, "search")
    summary = run_bench(
        load(model),
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

"""CompWoB's commands: ``toolpath web generate`` (compose pages), ``toolpath eval compwob``
and ``toolpath eval miniwob``.

Heavy imports (playwright, langgraph) stay inside the command functions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from toolpath.cli.common import ModelOpt, err, fmt, group, load, one_of, out, split
from toolpath.errors import ConfigError

AGENTS = ("web", "scripted")

SeedsOpt = Annotated[int, typer.Option("--seeds", help="Episodes (seeds 0..N-1) per task.", min=1)]
AgentOpt = Annotated[
    str,
    typer.Option(
        "--agent",
        help="web: the web agent on --model; scripted: the deterministic solvers "
        "(checks pages and the browser, no model; known base tasks only).",
    ),
]
ConcurrencyOpt = Annotated[
    int, typer.Option(help="Episodes at once (one page each, one shared browser).", min=1)
]
StepsOpt = Annotated[
    int | None, typer.Option(help="Action cap per episode (default: 6 per subtask, at least 10).")
]
RetryOpt = Annotated[bool, typer.Option(help="Run again the episodes that ended in an error.")]


def register(app: typer.Typer, eval_app: typer.Typer) -> None:
    """Add the ``toolpath web`` group (``web generate``), ``toolpath eval compwob`` and
    ``toolpath eval miniwob``."""
    web = group("Compose MiniWoB base tasks into CompWoB-style pages.", {"generate": web_generate})
    app.add_typer(web, name="web")
    eval_app.command("compwob")(eval_compwob)
    eval_app.command("miniwob")(eval_miniwob)


def web_generate(
    out_dir: Annotated[str, typer.Option("--out", help="Folder for the pages.")],
    base: Annotated[
        str | None,
        typer.Option(help="Comma-separated MiniWoB base tasks, in the order to do them."),
    ] = None,
    reverse: Annotated[
        bool, typer.Option(help='Write the reverse wording ("B, after doing A") only.')
    ] = False,
    both: Annotated[bool, typer.Option(help="Write both the base and reverse pages.")] = False,
    random_n: Annotated[
        int | None,
        typer.Option("--random", help="Instead of --base: N random compositions.", min=1),
    ] = None,
    size: Annotated[int, typer.Option(help="--random: base tasks per page.", min=2)] = 2,
    seed: Annotated[int, typer.Option(help="--random: the sampling seed.")] = 0,
) -> None:
    """Compose MiniWoB base tasks into CompWoB-style pages.

    One page per composition: each page shows every sub-UI at once, with the instructions joined with ", and then" (or
    "after" with --reverse); the reward is +1 only when every subtask succeeds in order. The
    pages go in the CompWoB layout: run them with `toolpath eval compwob --tasks-dir OUT`.
    Prints each page's path.
    """
    from toolpath.evals.web.compose import generate, sample_bases

    if (base is None) == (random_n is None):
        raise ConfigError("give either --base a,b,... or --random N")
    combos = (
        [split(base)] if base is not None else sample_bases(random_n or 1, size=size, seed=seed)
    )
    variants = [False, True] if both else [reverse]
    for combo in combos:
        for rev in variants:
            typer.echo(str(generate(combo, out_dir, reverse=rev)))


def eval_compwob(
    tasks_dir: Annotated[
        str, typer.Option("--tasks-dir", help="Folder of CompWoB task pages (*.html).")
    ],
    model: ModelOpt = "local",
    seeds: SeedsOpt = 3,
    out_dir: Annotated[str, typer.Option("--out", help="Run folder.")] = "runs/compwob",
    variant: Annotated[str, typer.Option(help="base, reverse or both.")] = "both",
    limit: Annotated[int | None, typer.Option(help="Only the first N pages.", min=1)] = None,
    agent: AgentOpt = "web",
    concurrency: ConcurrencyOpt = 1,
    max_steps: StepsOpt = None,
    retry_errors: RetryOpt = False,
) -> None:
    """Run CompWoB pages in headless chromium, base and reverse.

    Every page runs for --seeds episodes. Results go to OUT/AGENT-base.jsonl and
    OUT/AGENT-reverse.jsonl as episodes finish (run the same command again to resume); the
    summary reports base and reverse separately and per_task.md the success of each page.
    """
    from toolpath.evals.web.tasks import compwob_examples

    one_of(variant, ("base", "reverse", "both"), "--variant")
    groups = {}
    for v in ("base", "reverse"):
        if variant in (v, "both"):
            examples = compwob_examples(tasks_dir, seeds, variant=v, limit=limit)
            if examples:
                groups[f"{agent}-{v}"] = examples
    if not groups:
        raise ConfigError(f"no {variant} pages in {tasks_dir}")
    folders = {"compwob": tasks_dir}
    _run("compwob", groups, folders, model, agent, out_dir, concurrency, max_steps, retry_errors)


def eval_miniwob(
    tasks: Annotated[
        str, typer.Option(help="Comma-separated MiniWoB tasks, e.g. click-button,login-user.")
    ],
    model: ModelOpt = "local",
    seeds: SeedsOpt = 3,
    out_dir: Annotated[str, typer.Option("--out", help="Run folder.")] = "runs/miniwob",
    agent: AgentOpt = "web",
    concurrency: ConcurrencyOpt = 1,
    max_steps: StepsOpt = None,
    retry_errors: RetryOpt = False,
) -> None:
    """Run MiniWoB++ base tasks for --seeds episodes each.

    The tasks come from the miniwob wheel. Results go to OUT/AGENT.jsonl as episodes finish;
    the same command again resumes.
    """
    from toolpath.evals.web.tasks import miniwob_examples

    groups = {agent: miniwob_examples(tasks.split(","), seeds)}
    _run("miniwob", groups, {}, model, agent, out_dir, concurrency, max_steps, retry_errors)


def _run(
    family: str,
    groups: dict[str, list[Any]],
    folders: dict[str, str],
    model: str,
    agent: str,
    out_dir: str,
    concurrency: int,
    max_steps: int | None,
    retry_errors: bool,
) -> None:
    """Run each group of examples (``{method: examples}``) with the chosen agent in one
    headless chromium serving ``folders``, then print the summary table."""
    import asyncio

    from toolpath.evals.harness import run_eval
    from toolpath.evals.web.tasks import WebTask, per_task, scripted_policy
    from toolpath.tools.web.browser import TaskSite, WebPool

    one_of(agent, AGENTS, "--agent")
    runner: Any = scripted_policy
    if agent == "web":
        from toolpath.agents.web import web_agent

        runner = web_agent(model=load(model), max_steps=max_steps)

    async def main() -> dict[str, Any]:
        summary: dict[str, Any] = {}
        with TaskSite(folders) as site:
            async with WebPool(site, concurrency) as pool:
                task = WebTask(family, pool)
                for method, examples in groups.items():
                    result = await run_eval(
                        task,
                        examples,
                        runner,
                        out_dir=Path(out_dir),
                        method=method,
                        concurrency=concurrency,
                        retry_errors=retry_errors,
                        model=model if agent == "web" else None,
                    )
                    summary = result.summary
                blocked = len(pool.browser.blocked)
        if blocked:
            err.print(f"{blocked} request(s) to non-local addresses were blocked", markup=False)
        return summary

    summary = asyncio.run(main())
    tasks = per_task(out_dir, list(groups))
    from rich.table import Table

    table = Table("method", "n", "errors", "success %", "seconds", "actions")
    for name, row in summary.get("methods", {}).items():
        if name in groups:
            table.add_row(
                name,
                str(row["n"]),
                str(row["errors"]),
                f"{row['scores'].get('success', 0.0):.1f}",
                fmt(row.get("seconds")),
                fmt(row.get("tool_rounds")),
            )
    out.print(table)
    by_variant = ", ".join(
        f"{v} {s['success']:.1f}% (n={s['n']})" for v, s in tasks["variants"].items()
    )
    out.print(f"success by variant: {by_variant}", markup=False)
    out.print(f"results in {out_dir}/ (summary.md, per_task.md, plot.png)", markup=False)

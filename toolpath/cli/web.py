"""CompWoB's commands: ``toolpath web generate`` (compose pages), ``toolpath eval compwob``
and ``toolpath eval miniwob``.

Heavy imports (playwright, langgraph) stay inside the command functions.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated, Any

import typer

from toolpath.cli.common import ModelOpt, err, fmt, group, load, one_of, out, split
from toolpath.errors import ConfigError

AGENTS = ("web", "web-react", "scripted")

SeedsOpt = Annotated[int, typer.Option("--seeds", help="Episodes (seeds 0..N-1) per task.", min=1)]
AgentOpt = Annotated[
    str,
    typer.Option(
        "--agent",
        help="web: the plan-then-act web agent on --model (one subtask at a time, with "
        "guards); web-react: the single-loop agent, its baseline; scripted: the deterministic "
        "solvers (checks pages and the browser, no model; known base tasks only).",
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
    suite: Annotated[
        bool,
        typer.Option(
            "--suite",
            help="Instead of --base: every page of the benchmark suite (39 base tasks, 40 "
            "pairs and their reverse, 10 triples) and its suite.json.",
        ),
    ] = False,
    size: Annotated[int, typer.Option(help="--random: base tasks per page.", min=2)] = 2,
    seed: Annotated[int, typer.Option(help="--random, --suite: the sampling seed.")] = 0,
) -> None:
    """Compose MiniWoB base tasks into CompWoB-style pages.

    One page per composition: each page shows every sub-UI at once, with the instructions
    joined with ", and then" (or "after" with --reverse); the reward is +1 only when every
    subtask succeeds in order. The pages go in the CompWoB layout: run them with
    `toolpath eval compwob --tasks-dir OUT`. `--suite` writes the whole benchmark suite
    (toolpath.evals.web.suite; the same pages for the same --seed). Prints each page's path.
    Generated pages are build output: do not commit them.
    """
    from toolpath.evals.web.compose import generate, sample_bases

    if sum((base is not None, random_n is not None, suite)) != 1:
        raise ConfigError("give one of --base a,b,..., --random N or --suite")
    if suite:
        from toolpath.evals.web.suite import build_suite, write_suite

        for path in write_suite(out_dir, build_suite(seed)):
            typer.echo(str(path))
        return
    combos = (
        [split(base)] if base is not None else sample_bases(random_n or 1, size=size, seed=seed)
    )
    variants = [False, True] if both else [reverse]
    for combo in combos:
        for rev in variants:
            typer.echo(str(generate(combo, out_dir, reverse=rev)))


VARIANTS = ("base", "reverse", "single")


def eval_compwob(
    tasks_dir: Annotated[
        str | None, typer.Option("--tasks-dir", help="Folder of CompWoB task pages (*.html).")
    ] = None,
    suite: Annotated[
        str | None,
        typer.Option(
            "--suite",
            help="Instead of --tasks-dir: the benchmark suite on the seeds of a split, dev "
            "(100-102, for tuning) or test (0-2, for reporting).",
        ),
    ] = None,
    model: ModelOpt = "local",
    seeds: Annotated[
        int | None,
        typer.Option(
            "--seeds", help="Episodes per page (default 3; seeds 0..N-1, or the split's).", min=1
        ),
    ] = None,
    out_dir: Annotated[str, typer.Option("--out", help="Run folder.")] = "runs/compwob",
    variant: Annotated[
        str, typer.Option(help="base, reverse, single (a base task alone), both or all.")
    ] = "all",
    limit: Annotated[int | None, typer.Option(help="Only the first N pages.", min=1)] = None,
    agent: AgentOpt = "web",
    concurrency: ConcurrencyOpt = 1,
    max_steps: StepsOpt = None,
    retry_errors: RetryOpt = False,
) -> None:
    """Run CompWoB pages in headless chromium, base, reverse and single.

    Every page runs for --seeds episodes. Results go to OUT/AGENT-base.jsonl,
    OUT/AGENT-reverse.jsonl and OUT/AGENT-single.jsonl as episodes finish (run the same
    command again to resume); the summary reports the variants separately, per_task.md the
    success of each page and the failed episodes grouped by failure kind (wrong_element,
    premature_submit, order, step_cap, other) with the subtask that failed.

    What a page needs: a MiniWoB task page (HTML) that loads MiniWoB's core scripts by
    relative path, ../core/core.js (required: the episode loop, core.* and the WOB_*
    globals) and, as it uses them, ../core/d3.v3.min.js, ../core/jquery-ui/...,
    ../common/ui_utils.js, ../common/special/...; and that defines a global genProblem().
    The pages are opened as file:// URLs from a temporary folder that links --tasks-dir as
    compwob/ beside the miniwob wheel's html/core/ and html/common/ (TaskSite), so
    ../core/* and ../common/* resolve to the wheel's copies: CompWoB's released
    compositional/ folder and generated pages both work. A page that cannot load (a
    missing script, a JavaScript error at load, a broken file, no genProblem) is reported
    with its name and the reason, recorded as an error for each of its episodes, and the
    run goes on.

    The benchmark suite: toolpath eval compwob --suite dev --model local (tune), then
    toolpath eval compwob --suite test --model local --out runs/compwob-test (report).
    """
    from toolpath.evals.web.tasks import compwob_examples

    one_of(variant, (*VARIANTS, "both", "all"), "--variant")
    if (tasks_dir is None) == (suite is None):
        raise ConfigError("give either --tasks-dir DIR or --suite dev|test")
    wanted = {"both": ("base", "reverse"), "all": VARIANTS}.get(variant, (variant,))
    with contextlib.ExitStack() as stack:
        first, n = 0, seeds or 3
        if suite is not None:
            import tempfile

            from toolpath.evals.web.suite import split_seeds, write_suite

            first, n = split_seeds(suite, seeds)
            tasks_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="toolpath-suite-"))
            write_suite(tasks_dir)  # build output in a temporary folder, never committed
        assert tasks_dir is not None
        groups = {}
        for v in VARIANTS:
            if v in wanted:
                examples = compwob_examples(tasks_dir, n, variant=v, limit=limit, first_seed=first)
                if examples:
                    groups[f"{agent}-{v}"] = examples
        if not groups:
            raise ConfigError(f"no {variant} pages in {tasks_dir}")
        folders = {"compwob": tasks_dir}
        _run(
            "compwob", groups, folders, model, agent, out_dir, concurrency, max_steps, retry_errors
        )


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
    if agent in ("web", "web-react"):
        from toolpath.agents.web import web_agent, web_react_agent

        build = web_agent if agent == "web" else web_react_agent
        runner = build(model=load(model), max_steps=max_steps)

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
                        model=None if agent == "scripted" else model,
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
    failures = ", ".join(f"{k} {g['n']}" for k, g in tasks["failures"].items())
    out.print(f"failures by kind: {failures or 'none'}", markup=False)
    if tasks["load_errors"]:
        err.print(
            f"{len(tasks['load_errors'])} page(s) could not load (error records; the run went on):",
            markup=False,
        )
        for page, why in tasks["load_errors"].items():
            err.print(f"  {page}: {why}", markup=False)
    out.print(f"results in {out_dir}/ (summary.md, per_task.md, plot.png)", markup=False)

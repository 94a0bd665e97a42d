"""α-UMi's commands: ``toolpath export sft`` (per-role training data from recorded runs) and
``toolpath eval toolbench-static`` (the static step-level evaluation).

``toolpath run`` with ``--planner``/``--caller``/``--summarizer`` or ``--catalog`` runs the
α-UMi agent itself (:mod:`toolpath.cli.run`); ``run --record DIR`` records the trajectories
that ``export sft`` reads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from toolpath.cli.common import (
    MODEL_HELP,
    RoleOpt,
    close_all,
    err,
    fmt,
    group,
    load_each,
    one_of,
    out,
    progress_bar,
)
from toolpath.errors import ConfigError


def register(app: typer.Typer, eval_app: typer.Typer) -> None:
    """Add the ``toolpath export`` group (``export sft``) and ``toolpath eval toolbench-static``."""
    export = group("Write fine-tuning data from recorded runs.", {"sft": export_sft})
    app.add_typer(export, name="export")
    eval_app.command("toolbench-static")(toolbench_static)


def toolbench_static(
    data: Annotated[
        str, typer.Option(help="GLPFT data: a .json list of {tools, instruction, conversations}.")
    ],
    model: Annotated[
        str | None,
        typer.Option("--model", "-m", help=MODEL_HELP + " Single-LLM mode (the backbone)."),
    ] = None,
    planner: RoleOpt = None,
    caller: RoleOpt = None,
    summarizer: RoleOpt = None,
    mode: Annotated[
        str | None,
        typer.Option(
            help="single or multi; default: multi when a role model is given. "
            "With --mode multi, roles not given use --model."
        ),
    ] = None,
    method: Annotated[
        str | None, typer.Option(help="Name of this run's results file (default: the mode).")
    ] = None,
    out_dir: Annotated[
        str, typer.Option("--out", help="Run folder: JSONL per method, summary.json/.md.")
    ] = "runs/toolbench-static",
    limit: Annotated[int | None, typer.Option(help="Only the first N dialogues.", min=1)] = None,
    concurrency: Annotated[int, typer.Option(help="Steps at once.", min=1)] = 1,
    retry_errors: Annotated[
        bool, typer.Option(help="Run again the steps that ended in an error.")
    ] = False,
    constrained: Annotated[
        bool,
        typer.Option(
            help="Constrain the planner (a thought, then its Next tag), the caller (one call) "
            "and the backbone with JSON schemas, as the live agent does for JSON-mode models."
        ),
    ] = False,
) -> None:
    """α-UMi's static step-level evaluation on GLPFT data.

    At every step of the true history, the planner predicts its Next tag, the caller its
    action and input, the summarizer the answer (or one backbone model does all three).
    Reports plan ACC, act EM, hallucination rate, argument F1 and ROUGE-L. Steps are appended
    to OUT/METHOD.jsonl as they finish; the same command again resumes. Run single and multi
    into the same OUT to compare them.
    """
    from toolpath.evals.alpha_umi.glpft import load_glpft
    from toolpath.evals.alpha_umi.static import run_static_eval

    specs = _role_specs(model, planner, caller, summarizer, mode)
    dataset = load_glpft(data, limit=limit)
    if dataset.skipped:
        where, why = dataset.skipped[0]
        err.print(
            f"skipped {len(dataset.skipped)} bad record(s); first: {where}: {why}", markup=False
        )
    models = load_each(specs)
    label = f"{method or ('single' if 'backbone' in specs else 'multi')} steps"
    try:
        with progress_bar(count=True, keep=True) as bar:
            summary = run_static_eval(
                dataset,
                **models,
                out_dir=Path(out_dir),
                method=method,
                concurrency=concurrency,
                progress=lambda done, total: bar(label, done, total),
                retry_errors=retry_errors,
                constrained=constrained,
            )
    finally:
        close_all(models)
    _print_static(summary, Path(out_dir))


def _role_specs(
    model: str | None,
    planner: str | None,
    caller: str | None,
    summarizer: str | None,
    mode: str | None,
) -> dict[str, str]:
    """``{"backbone": spec}`` (single-LLM mode) or a spec per role (multi-LLM mode)."""
    roles = {"planner": planner, "caller": caller, "summarizer": summarizer}
    mode = mode or ("multi" if any(roles.values()) else "single")
    if mode == "single":
        if any(roles.values()):
            raise ConfigError("--planner/--caller/--summarizer need --mode multi")
        if not model:
            raise ConfigError("give --model (single-LLM) or --planner, --caller and --summarizer")
        return {"backbone": model}
    one_of(mode, ("single", "multi"), "--mode")
    specs = {role: spec or model for role, spec in roles.items()}
    missing = [f"--{role}" for role, spec in specs.items() if not spec]
    if missing:
        raise ConfigError(f"multi-LLM mode needs {', '.join(missing)} (or --model for all roles)")
    return {role: str(spec) for role, spec in specs.items()}


def _print_static(summary: dict[str, Any], out_dir: Path) -> None:
    from rich.table import Table

    from toolpath.evals.alpha_umi.static import LABELS, METRICS

    table = Table("method", "mode", "dialogues", "steps", "errors", *(LABELS[k] for k in METRICS))
    for name, row in summary.get("methods", {}).items():
        metrics = row.get("metrics", {})
        cells = [fmt(metrics.get(k)) for k in METRICS]
        table.add_row(
            name,
            str(row.get("mode")),
            str(row["dialogues"]),
            str(row["steps"]),
            str(row["errors"]),
            *cells,
        )
    out.print(table)
    out.print(f"results in {out_dir}/ (summary.md, summary.json, <method>.jsonl)", markup=False)


def export_sft(
    runs: Annotated[
        str, typer.Option(help="Recorded trajectories: a GLPFT .json/.jsonl file or a folder.")
    ],
    out_dir: Annotated[
        str, typer.Option("--out", help="Folder for backbone/planner/caller/summarizer.json.")
    ] = "runs/sft",
    include_failed: Annotated[
        bool, typer.Option(help="Also export trajectories that gave up (no conclusion).")
    ] = False,
) -> None:
    """Write per-role fine-tuning data from recorded trajectories.

    One file per role (backbone, planner, caller, summarizer): Alpaca-style {instruction,
    input, output} lists in the GLPFT layout, for α-UMi's two-stage training or TPTU's
    finetuner. Record trajectories with `toolpath run --record DIR`.
    """
    from rich.table import Table

    from toolpath.evals.alpha_umi.sft_export import ROLES
    from toolpath.evals.alpha_umi.sft_export import export_sft as run_export

    counts = run_export(Path(runs), Path(out_dir), include_failed=include_failed)
    table = Table("file", "examples")
    for role in ROLES:
        table.add_row(f"{role}.json", str(counts[role]))
    out.print(table)
    out.print(
        f"{counts['trajectories']} trajectories used, {counts['failed']} without a conclusion "
        f"left out, {counts['skipped']} bad records skipped; files in {out_dir}/",
        markup=False,
    )

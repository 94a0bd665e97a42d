"""``toolpath costa`` (one task with CoSTA*, any domain) and ``toolpath eval costa`` (the
benchmark)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from toolpath.agents.costa.search import DEFAULT_Q, DEFAULT_RULE
from toolpath.cli.common import ModelOpt, all_of, load, out
from toolpath.errors import ConfigError, ToolpathError

QThreshold = Annotated[
    float,
    typer.Option(help="The least plan quality, applied by --threshold.", min=0.0, max=1.0),
]
ThresholdOpt = Annotated[
    str,
    typer.Option(
        help="How --q-threshold bounds a plan: product (the paper's: prod Q >= q), step (each "
        "step's Q >= q) or normalized (the geometric mean of Q >= q)."
    ),
]
DomainOpt = Annotated[
    str, typer.Option(help="The tool domain: image, tabular, or a YAML/JSON spec file.")
]


def register(app: typer.Typer, eval_app: typer.Typer) -> None:
    """Add ``toolpath costa`` and ``toolpath eval costa``."""
    app.command("costa")(costa)
    eval_app.command("costa")(eval_costa)


def costa(
    request: Annotated[
        str,
        typer.Argument(
            help='The multi-step task, e.g. "Recolor the red circle blue, then crop to the left half".'
        ),
    ],
    input_path: Annotated[
        str,
        typer.Option(
            "--input",
            "--image",
            "-i",
            help="The input: an image for the image domain, a folder of CSV files for tabular, "
            "whatever a spec's load_input reads.",
        ),
    ],
    domain: DomainOpt = "image",
    out_path: Annotated[
        str | None,
        typer.Option(
            "--out",
            "-o",
            help="Where to write the result (default out.png for images, costa-out elsewhere; "
            "the domain adds a missing suffix).",
        ),
    ] = None,
    alpha: Annotated[
        float, typer.Option(help="0 = quality only ... 2 = cost only.", min=0.0, max=2.0)
    ] = 1.0,
    q_threshold: QThreshold = DEFAULT_Q,
    threshold: ThresholdOpt = DEFAULT_RULE,
    search: Annotated[
        str, typer.Option(help="astar (CoSTA*), ucs, exhaustive or greedy.")
    ] = "astar",
    verifier: Annotated[
        str,
        typer.Option(
            help="Who checks each step: programmatic (the domain's checks), llm (the "
            "--verifier-model reads both states as text) or vlm (an OpenAI-compatible vision "
            "model, --verifier-model, compares the images).",
        ),
    ] = "programmatic",
    verifier_model: Annotated[
        str | None,
        typer.Option(help="The model for --verifier llm (default: --model) or vlm (required)."),
    ] = None,
    table: Annotated[
        str | None, typer.Option(help="A JSON cost table to learn into across runs.")
    ] = None,
    model: ModelOpt = "local",
) -> None:
    """Do a multi-step task with CoSTA*: subtasks, then A* over tools.

    The model builds a subtask tree, A* picks the tools by cost and quality, and every step
    is verified (a failure updates the table and re-plans). Prints each attempt, its cost
    and verdict, and the search statistics, and writes the result to --out.
    """
    from rich.table import Table

    from toolpath.agents.costa.agent import costa_agent, named_domain

    chosen = named_domain(domain)
    loader, saver = getattr(chosen, "load_input", None), getattr(chosen, "save_output", None)
    if loader is None or saver is None:
        raise ConfigError(
            f"domain {domain!r} cannot read --input or write --out: its spec needs "
            "load_input and save_output"
        )
    context = loader(input_path)  # a bad input fails before any model loads
    llm = load(model)
    agent = costa_agent(
        model=llm,
        domain=chosen,
        alpha=alpha,
        q_threshold=q_threshold,
        threshold=threshold,
        search=search,
        verifier=make_verifier(verifier, verifier_model, llm, chosen),
        table_path=table,
    )
    state = agent.invoke({"request": request, "context": context})
    steps = Table("subtask", "type", "tool", "cost s", "quality", "ok")
    types = {s["id"]: s["type"] for s in state.get("tree", [])}
    for a in state.get("attempts", []):
        steps.add_row(
            a["subtask"],
            types.get(a["subtask"], ""),
            a["tool"],
            f"{a['cost']:.4f}",
            f"{a['quality']:.2f}",
            "yes" if a["ok"] else f"no {a.get('error') or a.get('why') or ''}",
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
        raise ToolpathError(f"the task did not complete: {state.get('reason')}")
    target = out_path or ("out.png" if domain == "image" else "costa-out")
    typer.echo(str(saver(state["context"], target)))


def make_verifier(kind: str, spec: str | None, model: Any, domain: Any) -> Any:
    """The verifier ``--verifier`` names: None for the domain's own checks."""
    if kind == "programmatic":
        return None
    if kind == "llm":
        from toolpath.agents.costa.verifiers import LLMVerifier

        describe = getattr(domain, "describe", None)
        return LLMVerifier(load(spec) if spec else model, describe=describe)
    if kind == "vlm":
        from toolpath.tools.image.verify import VLMVerifier

        if not spec:
            raise ConfigError(
                "--verifier vlm needs --verifier-model: an OpenAI-compatible vision model, "
                "e.g. openai:gpt-4o-mini or http://127.0.0.1:8000/v1:MODEL"
            )
        return VLMVerifier(load(spec))
    raise ConfigError(f"unknown --verifier {kind!r}; use programmatic, llm or vlm")


def parse_rules(text: str) -> list[tuple[str, float]]:
    """``product:0.8,step:0.8`` as ``[("product", 0.8), ("step", 0.8)]``, checked."""
    from toolpath.agents.costa.search import THRESHOLDS

    rules = []
    for item in (x.strip() for x in text.split(",") if x.strip()):
        rule, _, q = item.partition(":")
        try:
            value = float(q)
        except ValueError:
            value = -1.0
        if rule not in THRESHOLDS or not 0 <= value <= 1:
            raise ConfigError(
                f"bad threshold rule {item!r}: use RULE:Q with RULE one of "
                f"{', '.join(THRESHOLDS)} and Q in [0, 1], e.g. step:0.8"
            )
        rules.append((rule, value))
    if not rules:
        raise ConfigError("--rules needs at least one RULE:Q")
    return rules


def eval_costa(
    model: ModelOpt = "local",
    out_dir: Annotated[
        str, typer.Option("--out", help="Run folder: results, summary, plots.")
    ] = "runs/costa",
    domain: Annotated[
        str, typer.Option(help="The task generator's domain: image or tabular.")
    ] = "image",
    tasks: Annotated[int, typer.Option(help="How many generated tasks.", min=1)] = 50,
    alpha: Annotated[str, typer.Option(help="Comma-separated alphas in [0, 2].")] = "0,0.5,1,1.5,2",
    search: Annotated[
        str, typer.Option(help="Comma-separated searches: astar, ucs, exhaustive, greedy.")
    ] = "astar,ucs,exhaustive,greedy",
    seed: Annotated[int, typer.Option(help="The task generator's seed.")] = 0,
    max_subtasks: Annotated[int, typer.Option(help="Most steps in a generated task.", min=1)] = 8,
    rules: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated threshold rules to compare, RULE:Q (product = the paper's "
            "prod Q >= q, step = each step's Q >= q, normalized = the geometric mean of Q "
            ">= q); default: --threshold at --q-threshold."
        ),
    ] = None,
    q_threshold: QThreshold = DEFAULT_Q,
    threshold: ThresholdOpt = DEFAULT_RULE,
    learn_across: Annotated[
        bool,
        typer.Option(
            help="Carry the cost table from task to task (default: every task starts from "
            "the priors, so no method depends on the order of the tasks)."
        ),
    ] = False,
) -> None:
    """CoSTA* on generated tasks: every search, alpha and threshold rule.

    The model builds each task's subtask tree once, then every search, alpha and rule plans
    and executes on the real tools. Reports success, refusals, cost, quality and search
    statistics per method (with A*'s nodes as a share of exhaustive search's), with plots.
    """
    from rich.table import Table

    from toolpath.evals.costa.benchmark import DOMAINS, SEARCHES, run_bench

    try:
        alpha_values = [float(a) for a in alpha.split(",") if a.strip()]
    except ValueError:
        raise ConfigError(f"--alpha must be comma-separated numbers, got {alpha!r}") from None
    if not alpha_values or any(not 0 <= a <= 2 for a in alpha_values):
        raise ConfigError(f"every alpha must be in [0, 2], got {alpha!r}")
    if domain not in DOMAINS:
        raise ConfigError(f"--domain must be one of {', '.join(DOMAINS)}, got {domain!r}")
    names = all_of(search, SEARCHES, "search")
    summary = run_bench(
        load(model),
        Path(out_dir),
        domain=domain,
        n=tasks,
        seed=seed,
        alphas=alpha_values,
        searches=names,
        rules=parse_rules(rules or f"{threshold}:{q_threshold}"),
        max_subtasks=max_subtasks,
        learn_across=learn_across,
    )
    table = Table(
        "method", "n", "errors", "success %", "refused", "cost s", "quality", "expanded",
        "% of exhaustive", "re-plans",
    )  # fmt: skip
    for name, row in summary["methods"].items():
        share = row.get("nodes_vs_exhaustive")
        table.add_row(
            name,
            str(row["n"]),
            str(row["errors"]),
            f"{row['success']:.1f}",
            str(row["refused"]),
            f"{row['cost']:.4f}",
            f"{row['quality']:.3f}",
            f"{row['expanded']:.1f}",
            "" if share is None else f"{share:.2f}",
            f"{row['replans']:.2f}",
        )
    out.print(table)
    out.print(f"results in {out_dir}/ (costa_summary.md, plot.png, tradeoff.png)", markup=False)

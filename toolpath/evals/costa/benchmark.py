"""The CoSTA* benchmark: generated image-editing tasks, CoSTA* vs three baselines across alpha.

The model builds each task's subtask tree once (``OUT/trees/trees.jsonl``, durable and
resumable like every run); every method then reuses that tree, so the methods differ only
in how they choose tools: ``astar`` (CoSTA*), ``ucs`` (uniform-cost search),
``exhaustive`` (every order and tool) and ``greedy`` (no search). Success is the task's
exact check on the final image. Besides the harness's summary and plot, ``tradeoff.png``
shows mean cost against mean quality for each search as alpha goes from 0 to 2.
"""

from __future__ import annotations

import asyncio
import json
import math
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from toolpath.agents.base import tokens
from toolpath.errors import ConfigError
from toolpath.evals.costa.tasks import generate
from toolpath.evals.harness import Example, Record, load_records, run_eval_sync

SEARCHES = ("astar", "ucs", "exhaustive", "greedy")
Rule = tuple[str, float]  # a threshold rule (product, step, normalized) and its q


def method_name(search: str, alpha: float, rule: Rule = ("product", 0.8)) -> str:
    return f"{search}-{rule[0]}{rule[1]:g}-a{alpha:g}"


@dataclass(frozen=True)
class BenchDomain:
    """A CoSTA* domain with a task generator: how to make the domain, its tasks
    (``generate(n, seed, max_subtasks)``), a task's subtask types and first working object
    (written under a scratch folder when it needs files), and its exact final check."""

    make: Callable[[], Any]
    generate: Callable[[int, int, int], list[Any]]
    types: Callable[[Any], list[str]]
    start: Callable[[Any, Path], Any]
    check: Callable[[Any, Any], bool]


def _image() -> BenchDomain:
    from toolpath.agents.costa.image import ImageDomain
    from toolpath.tools.image.ops import ImageState

    return BenchDomain(
        make=ImageDomain,
        generate=lambda n, seed, most: generate(n, seed=seed, max_subtasks=most),
        types=lambda task: [s.type for s in task.subtasks],
        start=lambda task, _: ImageState(task.image),
        check=lambda task, final: bool(task.check(final.image)),
    )


def _tabular() -> BenchDomain:
    from toolpath.agents.costa.tabular import tabular_domain
    from toolpath.evals.costa.tabular_tasks import generate_tabular

    return BenchDomain(
        make=tabular_domain,
        generate=lambda n, seed, most: generate_tabular(n, seed=seed, max_subtasks=min(most, 6)),
        types=lambda task: list(task.types),
        start=lambda task, folder: task.materialize(folder),
        check=lambda task, final: bool(task.check(final)),
    )


DOMAINS: dict[str, Callable[[], BenchDomain]] = {"image": _image, "tabular": _tabular}


@dataclass
class CostaBench:
    """Generated tasks of a ``domain`` (``n`` of them, from ``seed``) and, once built, their
    subtask trees. Each task starts from the domain's prior cost table unless
    ``learn_across``: what one task learns (a tool that failed, often because the model's
    tree asked for the wrong thing) would otherwise change what later tasks may plan, and
    the methods' results would depend on the order of the tasks."""

    n: int = 50
    seed: int = 0
    max_subtasks: int = 8
    domain: str = "image"
    learn_across: bool = False
    name: str = "costa"
    trees: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    _tasks: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.domain not in DOMAINS:
            raise ConfigError(f"unknown domain {self.domain!r}; use one of: {', '.join(DOMAINS)}")
        self.kind = DOMAINS[self.domain]()
        self.tools = self.kind.make()  # the domain: stateless, so one serves every episode
        self.priors = self.tools.priors()

    def load(
        self, *, data: str | Path | None = None, limit: int | None = None
    ) -> Iterable[Example]:
        tasks = self.kind.generate(limit or self.n, self.seed, self.max_subtasks)
        self._tasks = {t.id: t for t in tasks}
        return [Example(t.id, t.instruction, json.dumps(self.kind.types(t))) for t in tasks]

    async def run_one(self, example: Example, agent: Any) -> Record:
        task = self._tasks[example.id]
        tree = self.trees.get(example.id)
        if not tree:
            return {
                "id": example.id,
                "success": False,
                "status": "no tree",
                "cost": 0.0,
                "quality": 0.0,
                "expanded": 0,
                "replans": 0,
            }
        table = getattr(agent, "table", None)
        if table is not None and not self.learn_across:
            for (tool, kind), (cost, quality) in self.priors.items():
                table.set_prior(tool, kind, cost, quality)  # every task starts from the priors
        with tempfile.TemporaryDirectory(prefix="costa-") as scratch:
            context = self.kind.start(task, Path(scratch))
            state = await agent.ainvoke(
                {"request": task.instruction, "context": context, "tree": tree}
            )
            done = state.get("status") == "done"
            success = bool(done and self.kind.check(task, state["context"]))
        executed = state.get("executed", [])
        return {
            "id": example.id,
            "instruction": task.instruction,
            "success": success,
            "status": state.get("status"),
            "reason": state.get("reason"),
            "planned": bool(state.get("attempts")),
            "cost": sum(a["cost"] for a in state.get("attempts", [])),
            "quality": math.prod(s.quality for s in executed) if done else 0.0,
            "expanded": state.get("expanded", 0),
            "replans": state.get("replans", 0),
            "path": [[s.subtask_id, s.tool] for s in executed],
            "failed_steps": [
                [a["subtask"], a["tool"], a.get("error") or a.get("why") or ""]
                for a in state.get("attempts", [])
                if not a["ok"]
            ],
        }

    def score(self, record: Record) -> dict[str, float]:
        return {"success": float(bool(record.get("success")))}


@dataclass
class TreeBuilder:
    """A task family whose episode is one model call: the subtask tree of a task."""

    bench: CostaBench
    name: str = "costa-trees"

    def load(
        self, *, data: str | Path | None = None, limit: int | None = None
    ) -> Iterable[Example]:
        return self.bench.load(limit=limit)

    async def run_one(self, example: Example, agent: Any) -> Record:
        """``agent`` is the chat model here: one call builds the tree."""
        from toolpath.agents.costa.agent import subtask_tree

        domain = self.bench.tools
        tree, trace = await asyncio.to_thread(subtask_tree, agent, example.question, domain)
        types = sorted(s["type"] for s in tree)
        return {
            "id": example.id,
            "tree": tree,
            "types_match": types == sorted(json.loads(example.gold)),
            "tokens": tokens(trace),
        }

    def score(self, record: Record) -> dict[str, float]:
        return {"types_match": float(bool(record.get("types_match")))}


def run_bench(
    model: Any,
    out_dir: Path,
    *,
    domain: str = "image",
    n: int = 50,
    seed: int = 0,
    alphas: Sequence[float] = (0.0, 0.5, 1.0, 1.5, 2.0),
    searches: Sequence[str] = SEARCHES,
    rules: Sequence[Rule] = (("product", 0.8),),
    max_subtasks: int = 8,
    learn_across: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Build the trees with ``model``, then run every search at every alpha under every
    threshold rule; returns the summary."""
    from toolpath.agents.costa.agent import costa_agent

    bench = CostaBench(
        n=n, seed=seed, max_subtasks=max_subtasks, domain=domain, learn_across=learn_across
    )
    examples = list(bench.load())
    run_eval_sync(
        TreeBuilder(bench),
        examples,
        model,
        out_dir=out_dir / "trees",
        method="trees",
        progress=progress,
    )
    bench.trees = {
        r["id"]: r["tree"]
        for r in load_records(out_dir / "trees" / "trees.jsonl")
        if not r.get("error") and r.get("tree")
    }
    methods = []
    for rule in rules:
        for search in searches:
            for alpha in alphas:
                agent = costa_agent(
                    model=model,
                    domain=bench.tools,
                    search=search,
                    alpha=alpha,
                    threshold=rule[0],
                    q_threshold=rule[1],
                )
                methods.append(method_name(search, alpha, rule))
                run_eval_sync(
                    bench,
                    examples,
                    agent,
                    out_dir=out_dir,
                    method=methods[-1],
                    progress=progress,
                    episode_timeout=120,
                )
    tradeoff_plot(out_dir, searches, alphas, out_dir / "tradeoff.png", rules[0])
    return costa_summary(out_dir, methods)


def costa_summary(out_dir: Path, methods: Sequence[str]) -> dict[str, Any]:
    """Per method: success rate (%), tasks refused before any step (no plan within the
    threshold), mean tool cost, quality, nodes expanded and re-plans; and, where a method's
    exhaustive twin (same rule and alpha) ran, its nodes as a share of exhaustive's. Also
    written to ``costa_summary.json`` and ``costa_summary.md``."""
    rows: dict[str, dict[str, float]] = {}
    for method in methods:
        records = load_records(out_dir / f"{method}.jsonl")
        n = len(records) or 1
        rows[method] = {
            "n": len(records),
            "errors": sum(1 for r in records if r.get("error")),
            "success": 100 * sum(bool(r.get("success")) for r in records) / n,
            "refused": sum(1 for r in records if r.get("status") == "failed" and not r.get("path")),
            **{
                k: sum(float(r.get(k) or 0) for r in records) / n
                for k in ("cost", "quality", "expanded", "replans")
            },
        }
    for method, row in rows.items():
        rest = method.split("-", 1)[1]
        twin = rows.get(f"exhaustive-{rest}")
        if twin and twin["expanded"]:
            row["nodes_vs_exhaustive"] = 100 * row["expanded"] / twin["expanded"]
    summary = {"task": "costa", "methods": rows}
    (out_dir / "costa_summary.json").write_text(json.dumps(summary, indent=1))
    lines = [
        "| method | n | errors | success % | refused | mean cost s | mean quality | expanded "
        "| % of exhaustive's nodes | re-plans |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {m} | {r['n']} | {r['errors']} | {r['success']:.1f} | {r['refused']} | "
        f"{r['cost']:.4f} | {r['quality']:.3f} | {r['expanded']:.1f} | "
        + (f"{r['nodes_vs_exhaustive']:.2f}" if "nodes_vs_exhaustive" in r else "")
        + f" | {r['replans']:.2f} |"
        for m, r in rows.items()
    ]
    (out_dir / "costa_summary.md").write_text("\n".join(lines) + "\n")
    return summary


def tradeoff_plot(
    out_dir: Path,
    searches: Sequence[str],
    alphas: Sequence[float],
    path: Path,
    rule: Rule = ("product", 0.8),
) -> None:
    """Mean total cost (x) against mean final quality (y), one line per search over alpha."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for search in searches:
        xs, ys, labels = [], [], []
        for alpha in alphas:
            file = out_dir / f"{method_name(search, alpha, rule)}.jsonl"
            records = [r for r in load_records(file) if not r.get("error")] if file.exists() else []
            if records:
                xs.append(sum(r["cost"] for r in records) / len(records))
                ys.append(sum(r["quality"] for r in records) / len(records))
                labels.append(f"{alpha:g}")
        ax.plot(xs, ys, marker="o", label=search)
        for x, y, label in zip(xs, ys, labels, strict=True):
            ax.annotate(f"α={label}", (x, y), fontsize=7, textcoords="offset points", xytext=(3, 3))
    ax.set_xlabel("mean total tool cost per task (s)")
    ax.set_ylabel("mean final quality")
    ax.set_title(f"CoSTA*: cost-quality trade-off across α ({rule[0]} threshold {rule[1]:g})")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)

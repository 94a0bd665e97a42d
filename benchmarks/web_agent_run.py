"""The web agent on generated compositional tasks: success on base vs composed vs reversed.

    python benchmarks/web_agent_run.py OUT [--model local] [--seeds 3] [--pairs 5]
                                       [--pair-seed 0] [--agent web|scripted] [--dry-run]

Runs these ``toolpath`` commands (each is printed before it runs; ``--dry-run`` only prints
them), writing everything under ``OUT`` (e.g. ``benchmarks/results/<date>/web-agent``):

1. ``toolpath web generate --random PAIRS --size 2 --seed PAIR_SEED --both --out OUT/tasks``:
   PAIRS random pairs of distinct base tasks from
   :data:`toolpath.evals.web.compose.COMPOSABLE`, each written as a composed page
   (``a_b.html``, ", and then" wording) and a reversed one (``a_b-reverse.html``, "...,
   after ..." wording; same order of execution);
2. ``toolpath eval miniwob --tasks <every base task in those pairs> ... --out OUT/miniwob``:
   the base tasks on their own;
3. ``toolpath eval compwob --tasks-dir OUT/tasks --variant both ... --out OUT/compwob``.

Both evals run ``--agent AGENT --model MODEL --seeds SEEDS`` (episodes with seeds
0..SEEDS-1 of every page) at ``--concurrency`` episodes at once. They resume: running the
same command again skips finished episodes. Finally the script prints a markdown table
(base / composed / reversed: episodes, pages, seeds, success %, errors, mean actions) from
the evals' JSONL records, and writes it with the commands to
``OUT/web_summary.md`` and ``OUT/web_summary.json``.

``--agent scripted`` runs the deterministic solvers of :mod:`toolpath.evals.web.oracle`
instead of the model: a check of the pages, browser and harness (it should score 100%),
and a count of the actions an episode needs at least.
"""

from __future__ import annotations

import argparse
import datetime
import json
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from toolpath.evals.harness import load_records
from toolpath.evals.web.compose import sample_bases, task_name

CLI = [sys.executable, "-m", "toolpath.cli"]


def commands(args: argparse.Namespace) -> tuple[list[list[str]], list[list[str]]]:
    """The ``toolpath`` argument lists to run, and the pairs they use."""
    out = Path(args.out)
    pairs = sample_bases(args.pairs, size=2, seed=args.pair_seed)
    bases = sorted({b for pair in pairs for b in pair})
    common = ["--model", args.model, "--seeds", str(args.seeds), "--agent", args.agent]
    common += ["--concurrency", str(args.concurrency)]
    if args.max_steps is not None:
        common += ["--max-steps", str(args.max_steps)]
    generate = ["--random", str(args.pairs), "--size", "2", "--seed", str(args.pair_seed)]
    compwob = ["--tasks-dir", str(out / "tasks"), "--variant", "both"]
    cmds = [
        ["web", "generate", *generate, "--both", "--out", str(out / "tasks")],
        ["eval", "miniwob", "--tasks", ",".join(bases), *common, "--out", str(out / "miniwob")],
        ["eval", "compwob", *compwob, *common, "--out", str(out / "compwob")],
    ]
    return cmds, pairs


def shown(argv: list[str]) -> str:
    return shlex.join(["toolpath", *argv])


def row(label: str, folder: Path, method: str, seeds: int) -> dict[str, Any]:
    """Success of one variant from the method's JSONL records, counted as ``per_task`` does
    (an episode that ended in an error counts as a failure).

    Actions are the agent's tool calls (``tool_rounds``); the scripted solvers record none,
    so for them it is the number of actions in their history."""
    records: dict[str, dict[str, Any]] = {}
    for r in load_records(folder / f"{method}.jsonl"):
        records[r["id"]] = r  # the last record of an id wins, as in per_task
    failed = [r for r in records.values() if r.get("error") or r.get("crashed")]
    wins = sum(1 for r in records.values() if r.get("success") and not r.get("error"))
    actions = [
        r.get("tool_rounds") or len(r.get("history") or [])
        for r in records.values()
        if not (r.get("error") or r.get("crashed"))
    ]
    n = len(records)
    return {
        "variant": label,
        "method": method,
        "n": n,
        "pages": len({str(i).rsplit("#", 1)[0] for i in records}),
        "seeds": f"0..{seeds - 1}",
        "success": round(100 * wins / n, 1) if n else 0.0,
        "errors": len(failed),
        "mean_actions": round(statistics.fmean(actions), 2) if actions else None,
        "max_actions": max(actions) if actions else None,
    }


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| tasks | episodes (N) | pages | seeds | success % | errors | mean actions |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        mean = "-" if r["mean_actions"] is None else f"{r['mean_actions']:.2f}"
        lines.append(
            f"| {r['variant']} | {r['n']} | {r['pages']} | {r['seeds']} | "
            f"{r['success']:.1f} | {r['errors']} | {mean} |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("out", help="results folder, e.g. benchmarks/results/<date>/web-agent")
    ap.add_argument("--model", default="local", help="model spec for --agent web")
    ap.add_argument("--seeds", type=int, default=3, help="episodes (seeds 0..N-1) per page")
    ap.add_argument("--pairs", type=int, default=5, help="composed pairs of base tasks")
    ap.add_argument("--pair-seed", type=int, default=0, help="seed that picks the pairs")
    ap.add_argument("--agent", default="web", choices=["web", "scripted"])
    ap.add_argument("--concurrency", type=int, default=1, help="episodes at once")
    ap.add_argument("--max-steps", type=int, help="action cap (default: the agent's)")
    ap.add_argument("--dry-run", action="store_true", help="print the commands only")
    args = ap.parse_args()
    if args.seeds < 1 or args.pairs < 1:
        raise SystemExit("--seeds and --pairs must be at least 1")

    cmds, pairs = commands(args)
    print("pairs: " + ", ".join("+".join(p) for p in pairs))
    if args.dry_run:
        print("\n".join(shown(c) for c in cmds))
        return
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    seconds: list[float] = []
    for argv in cmds:
        print(f"$ {shown(argv)}", flush=True)
        start = time.perf_counter()
        done = subprocess.run([*CLI, *argv], check=False)
        seconds.append(round(time.perf_counter() - start, 1))
        if done.returncode != 0:
            raise SystemExit(f"`{shown(argv)}` failed with exit status {done.returncode}")
    expected = {task_name(p, reverse=r) for p in pairs for r in (False, True)}
    written = {p.stem for p in (out / "tasks").glob("*.html")}
    if not expected <= written:
        raise SystemExit(f"missing generated pages: {', '.join(sorted(expected - written))}")

    agent = args.agent
    rows = [
        row("base (MiniWoB)", out / "miniwob", agent, args.seeds),
        row("composed", out / "compwob", f"{agent}-base", args.seeds),
        row("reversed", out / "compwob", f"{agent}-reverse", args.seeds),
    ]
    md = table(rows)
    print(md)
    run = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "agent": agent,
        "model": args.model if agent == "web" else None,
        "seeds": args.seeds,
        "pairs": ["+".join(p) for p in pairs],
        "pair_seed": args.pair_seed,
        "commands": [shown(c) for c in cmds],
        "seconds": seconds,
        "rows": rows,
    }
    (out / "web_summary.json").write_text(json.dumps(run, indent=2) + "\n", encoding="utf-8")
    what = f"agent `{agent}`" + (f", model `{args.model}`" if agent == "web" else "")
    notes = [
        f"# Web agent: base vs composed vs reversed ({what})",
        "",
        f"Pairs (seed {args.pair_seed}): {', '.join(run['pairs'])}. "
        f"Seeds 0..{args.seeds - 1} per page.",
        "",
        "```sh",
        *run["commands"],
        "```",
        "",
        md,
        "",
    ]
    (out / "web_summary.md").write_text("\n".join(notes), encoding="utf-8")
    print(f"wrote {out / 'web_summary.md'} and {out / 'web_summary.json'}")


if __name__ == "__main__":
    main()

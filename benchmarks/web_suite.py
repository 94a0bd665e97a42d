"""Web agents side by side on the CompWoB-style suite: single tasks, composed and reversed.

    python benchmarks/web_suite.py OUT [--split dev] [--agents web,web-react] [--model local]
                                       [--limit 8] [--seeds 1] [--dry-run]

For each agent this runs one command (printed before it runs):

    toolpath eval compwob --suite SPLIT --variant all --limit LIMIT --seeds SEEDS
                          --agent AGENT --model MODEL --out OUT

so every agent gets the same pages (the first LIMIT pages of each variant, by name: single
base tasks, composed pages, reversed pages) on the same episode seeds of the split (dev:
100.., for tuning; test: 0.., for reports). The evals resume: running the same command again
skips finished episodes. Then it writes ``OUT/web_suite.md`` and ``OUT/web_suite.json``:
success per agent and variant, next to each other, with the failure kinds, the commands and
the commit.
"""

from __future__ import annotations

import argparse
import collections
import datetime
import json
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

from toolpath.evals.harness import load_records

CLI = [sys.executable, "-m", "toolpath.cli"]
VARIANTS = ("single", "base", "reverse")


def command(args: argparse.Namespace, agent: str) -> list[str]:
    return [
        "eval", "compwob", "--suite", args.split, "--variant", "all",
        "--limit", str(args.limit), "--seeds", str(args.seeds),
        "--agent", agent, "--model", args.model, "--out", str(args.out),
    ]  # fmt: skip


def row(out: Path, agent: str, variant: str) -> dict[str, Any] | None:
    path = out / f"{agent}-{variant}.jsonl"
    if not path.exists():
        return None
    records = list({r["id"]: r for r in load_records(path)}.values())
    wins = sum(1 for r in records if r.get("success") and not r.get("error"))
    kinds = collections.Counter(str(r.get("failure")) for r in records if r.get("failure"))
    steps = [r.get("steps") or 0 for r in records if not r.get("error")]
    return {
        "agent": agent,
        "variant": {"base": "composed"}.get(variant, variant),
        "n": len(records),
        "success": round(100 * wins / len(records), 1) if records else 0.0,
        "errors": sum(1 for r in records if r.get("error")),
        "mean_steps": round(sum(steps) / len(steps), 2) if steps else None,
        "failures": dict(sorted(kinds.items())),
    }


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| agent | tasks | episodes | success % | errors | mean steps | failures |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        failures = ", ".join(f"{k} {v}" for k, v in r["failures"].items()) or "-"
        lines.append(
            f"| {r['agent']} | {r['variant']} | {r['n']} | {r['success']:.1f} | {r['errors']} | "
            f"{r['mean_steps']} | {failures} |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("out", type=Path, help="results folder, e.g. benchmarks/results/DATE/web-dev")
    ap.add_argument("--split", default="dev", choices=["dev", "test"])
    ap.add_argument("--agents", default="web,web-react", help="comma-separated: web, web-react")
    ap.add_argument("--model", default="local")
    ap.add_argument("--limit", type=int, default=8, help="pages of each variant")
    ap.add_argument("--seeds", type=int, default=1, help="episodes per page")
    ap.add_argument("--dry-run", action="store_true", help="print the commands only")
    args = ap.parse_args()
    agents = [a.strip() for a in args.agents.split(",") if a.strip()]
    cmds = [command(args, a) for a in agents]
    for c in cmds:
        print(shlex.join(["toolpath", *c]), flush=True)
        if not args.dry_run:
            subprocess.run([*CLI, *c], check=True)
    if args.dry_run:
        return
    rows = [r for a in agents for v in VARIANTS if (r := row(args.out, a, v)) is not None]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    report = {
        "date": datetime.date.today().isoformat(),
        "commit": commit.stdout.strip(),
        "command": shlex.join(["python", *sys.argv]),
        "commands": [shlex.join(["toolpath", *c]) for c in cmds],
        "rows": rows,
    }
    (args.out / "web_suite.json").write_text(json.dumps(report, indent=1) + "\n")
    text = [f"# Web agents on the suite ({args.split} seeds)", "", table(rows), "", "Commands:"]
    text += [f"    {c}" for c in [report["command"], *report["commands"]]]
    text += ["", f"Commit {report['commit']}, {report['date']}."]
    (args.out / "web_suite.md").write_text("\n".join(text) + "\n")
    print(table(rows))


if __name__ == "__main__":
    main()

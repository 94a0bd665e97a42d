"""BFCL v4, toolpath's tool calling against the hand-written raw prompt, on one model.

Three slices of each category, none of them BFCL's held-back ``live_*`` data:

- ``test``: the first 100 items (or all where fewer), the figures the goals are set on;
- ``unseen``: 50 items at an offset drawn with ``--seed`` from those after the first 100 and
  before the dev slice, never looked at while tuning;
- ``dev``: the last 40 items, the only ones prompts were tuned on.

    python benchmarks/bfcl.py --slice test --out benchmarks/results/DATE/bfcl

Every slice goes to OUT/SLICE/ (``toolpath eval bfcl``'s layout, resumable), with
``run.json`` holding the command, the commit and the offsets.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import subprocess
import sys
from pathlib import Path

from toolpath.evals.bfcl.data import data_dir, load_items
from toolpath.evals.bfcl.tasks import METHODS, run_bfcl
from toolpath.llm.specs import load_model

CATEGORIES = ("simple", "multiple", "parallel", "parallel_multiple", "irrelevance")
TEST, UNSEEN, DEV = 100, 50, 40


def offsets(category: str, folder: Path, slice_: str, seed: int) -> tuple[int, int]:
    """``(skip, limit)`` of ``slice_`` in ``category``."""
    total = len(load_items(category, folder))
    if slice_ == "test":
        return 0, min(TEST, total)
    if slice_ == "dev":
        return total - DEV, DEV
    room = total - DEV - UNSEEN - TEST
    return TEST + random.Random(f"{seed}:{category}").randint(0, max(0, room)), UNSEEN


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--slice", choices=("test", "unseen", "dev"), default="test")
    ap.add_argument("--categories", default=",".join(CATEGORIES))
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--model", default="local:qwen2.5-coder-1.5b")
    ap.add_argument("--data", help="BFCL data folder or wheel (default: the cache)")
    ap.add_argument("--limit", type=int, help="at most this many items per category")
    ap.add_argument("--seed", type=int, default=2026, help="draws the unseen slice's offsets")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    folder = data_dir(args.data)
    out = args.out / args.slice
    out.mkdir(parents=True, exist_ok=True)
    model = load_model(args.model)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    slices = {}
    for category in args.categories.split(","):
        skip, limit = offsets(category, folder, args.slice, args.seed)
        slices[category] = (skip, min(limit, args.limit or limit))
    run = {"command": " ".join(["python", *sys.argv]), "commit": commit, "seed": args.seed}
    run["slices"] = {c: {"skip": s, "limit": n} for c, (s, n) in slices.items()}
    log = out / "runs.jsonl"  # one line per invocation: several may fill one slice's folder
    with log.open("a", encoding="utf-8") as f:
        f.write(json.dumps(run) + "\n")
    asyncio.run(run_bfcl(model, slices, args.methods.split(","), out_dir=out, data=folder))
    print((out / "report.md").read_text())


if __name__ == "__main__":
    main()

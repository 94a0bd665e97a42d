"""The error taxonomy of a math run's misses, from its JSONL (tune on train runs only).

Each missed problem gets the first class that fits, read from its trajectory:

- ``extraction``: the gold answer is on the last program output or in the last reply, but
  another value was taken;
- ``code error``: the last program failed (an error, a timeout, no program, no output);
- ``arithmetic in text``: the program ran, and the boxed answer is none of its printed values
  (the model worked on in prose);
- ``plan``: the program ran and its value was boxed, but it answers the wrong thing (a
  misread question or a wrong plan; telling these apart takes a reader);
- ``no answer``: nothing was boxed or extracted.

    python benchmarks/math_taxonomy.py RUN/dotamath.jsonl [--out taxonomy.md]
"""

from __future__ import annotations

import argparse
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

from toolpath.evals.math.grading import is_equiv

OUTPUT = re.compile(r"```output\n(.*?)\n```", re.DOTALL)
NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")
FAILED = ("Traceback", "Error", "(no program)", "ran longer than", "not run again")


def classify(record: dict[str, Any]) -> str:
    """The class of one missed problem (see the module docstring)."""
    predicted, gold = record.get("predicted"), str(record["gold"])
    turns = record.get("trajectory") or []
    outputs = [m for t in turns if t["role"] == "user" for m in OUTPUT.findall(str(t["content"]))]
    last_reply = next((str(t["content"]) for t in reversed(turns) if t["role"] == "assistant"), "")
    if predicted is None:
        return "no answer"
    last_out = outputs[-1] if outputs else ""
    printed = [n.replace(",", "") for n in NUMBER.findall(last_out)]
    said = [n.replace(",", "") for n in NUMBER.findall(last_reply)]
    if any(is_equiv(n, gold) for n in printed[-1:] + said[-1:]):
        return "extraction"
    if not outputs or not last_out.strip() or any(f in last_out for f in FAILED):
        return "code error"
    if not any(is_equiv(str(predicted), n) for n in printed):
        return "arithmetic in text"
    return "plan"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("jsonl", type=Path)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    records = [json.loads(line) for line in args.jsonl.read_text().splitlines() if line.strip()]
    misses = [r for r in records if not r.get("correct_strict")]
    classes = {r["id"]: classify(r) for r in misses}
    counts = Counter(classes.values())
    lines = [f"# Misses of {args.jsonl} ({len(misses)} of {len(records)})", ""]
    lines += ["| class | misses |", "|---|---|"]
    lines += [f"| {name} | {n} |" for name, n in counts.most_common()]
    lines += ["", "| id | class | predicted | gold |", "|---|---|---|---|"]
    for r in misses:
        lines.append(f"| {r['id']} | {classes[r['id']]} | {r.get('predicted')} | {r['gold']} |")
    text = "\n".join(lines) + "\n"
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()

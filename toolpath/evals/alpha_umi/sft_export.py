"""Per-role fine-tuning data from recorded trajectories (``toolpath export sft``).

This is the data for TPTU's "LLM finetuner" and for α-UMi's two-stage training (first the
backbone on whole trajectories, then a planner, a caller and a summarizer copied from it and
each trained on its own turns).

Input: GLPFT records ``{tools, instruction, conversations}``, as the static evaluation reads
them and as the α-UMi agent records its runs, in a ``.json`` list, a ``.jsonl`` file (one
record a line) or a folder of both (searched recursively; files that hold no list of records,
such as a run's ``summary.json``, are ignored). Bad records are skipped and counted.

Output: four JSON files in ``out``, each a list of ``{"instruction", "input", "output"}``
examples (the Alpaca layout GLPFT trains on), in the order of the trajectories:

``planner.json``
    one example per ``assistant`` turn: the instruction is
    ``role_prompt("planner", tools, turns before it)``, the output the turn's text (thought and
    ``Next:`` tag).
``caller.json``
    one per ``caller`` turn (the history includes the planner's thought): the output is the
    ``Action:``/``Action Input:`` lines.
``summarizer.json``
    one per ``conclusion`` turn: the output is the final answer.
``backbone.json``
    one per ``assistant`` turn, for a single model doing all three jobs: the instruction is
    ``role_prompt("backbone", tools, history)`` with the history merged into that model's own
    format (:func:`~toolpath.evals.alpha_umi.glpft.backbone_history`); the output is the planner's
    thought plus the caller's ``Action`` lines, or plus ``conclusion: <answer>``, or (failed
    trajectories only) plus ``give up.``.

``input`` is always ``""``. A trajectory with no ``conclusion`` turn (it gave up, or stopped)
is left out unless ``include_failed=True``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from toolpath.agents.alpha_umi.format import role_prompt
from toolpath.errors import ConfigError, DatasetError
from toolpath.evals.alpha_umi.glpft import (
    ROLE_OF_TURN,
    BadRecord,
    Dialogue,
    backbone_history,
    backbone_target,
    parse_record,
    read_records,
)

ROLES = ("backbone", "planner", "caller", "summarizer")
Example = dict[str, str]


def export_sft(
    runs: str | Path, out: str | Path, *, include_failed: bool = False
) -> dict[str, int]:
    """Write ``backbone.json``, ``planner.json``, ``caller.json`` and ``summarizer.json`` to
    ``out`` from the trajectories in ``runs`` (a file or a folder).

    Returns the number of examples per role, plus ``trajectories`` (used), ``failed``
    (left out for having no conclusion) and ``skipped`` (bad records). No usable record at all
    raises :class:`~toolpath.errors.DatasetError`.
    """
    runs = Path(runs).expanduser()
    examples: dict[str, list[Example]] = {role: [] for role in ROLES}
    counts = {"trajectories": 0, "failed": 0, "skipped": 0}
    seen = 0
    for where, default_id, raw in read_records(runs):
        if isinstance(raw, BadRecord):
            counts["skipped"] += 1
            continue
        try:
            dialogue = parse_record(raw, where=where, default_id=default_id)
        except BadRecord:
            counts["skipped"] += 1
            continue
        seen += 1
        if not dialogue.finished and not include_failed:
            counts["failed"] += 1
            continue
        counts["trajectories"] += 1
        for role, example in dialogue_examples(dialogue):
            examples[role].append(example)
    if not seen:
        raise DatasetError(
            f"no usable trajectories in {runs} ({counts['skipped']} bad records); expected "
            "GLPFT records {tools, instruction, conversations} in .json or .jsonl files"
        )
    target = Path(out).expanduser()
    target.mkdir(parents=True, exist_ok=True)
    for role in ROLES:
        _write_json(target / f"{role}.json", examples[role])
    return {role: len(examples[role]) for role in ROLES} | counts


def dialogue_examples(dialogue: Dialogue) -> list[tuple[str, Example]]:
    """``(role, example)`` for every training example one trajectory gives, in turn order."""
    tools, turns = dialogue.tools, dialogue.turns
    out: list[tuple[str, Example]] = []
    for i, t in enumerate(turns):
        role = ROLE_OF_TURN.get(t["from"])
        if role is None:
            continue
        out.append((role, _example(role_prompt(role, tools, turns[:i]), t["value"])))
        if role == "planner":
            following = turns[i + 1] if i + 1 < len(turns) else None
            target = backbone_target(t["value"], following)
            if target:
                prompt = role_prompt("backbone", tools, backbone_history(turns[:i]))
                out.append(("backbone", _example(prompt, target)))
    return out


def _example(instruction: str, output: str) -> Example:
    return {"instruction": instruction, "input": "", "output": output.strip()}


def _write_json(path: Path, data: Any) -> None:
    """Write ``data`` as JSON atomically (a temporary file, fsync, rename)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    try:
        with tmp.open("w", encoding="utf-8") as f:
            json.dump(data, f, ensure_ascii=False, indent=1)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc}") from exc

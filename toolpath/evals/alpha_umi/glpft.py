"""GLPFT conversation data: reading, checking, and the per-step views both its users need.

A GLPFT file (the data α-UMi trains and evaluates on) is a JSON list of records
``{"tools": [...], "instruction": "...", "conversations": [{"from": ROLE, "value": TEXT}, ...]}``
with the roles of :mod:`toolpath.agents.alpha_umi.format`. ``tools`` are ToolBench/GLPFT entries
(``Name``/``function``/``input``), parsed by :func:`toolpath.tools.catalog.formats.load_catalog`, which
sanitizes their names.

:func:`load_glpft` reads a ``.json`` list, a ``.jsonl`` file (one record a line) or a folder of
both. A file that cannot be read as either raises :class:`~toolpath.errors.DatasetError`; a bad
record is skipped and reported in :attr:`GLPFTData.skipped` with where it was (``FILE record
#3`` or ``FILE line 4``) and why, unless ``strict=True``, which raises on the first one.

It serves the static evaluation (:mod:`toolpath.evals.alpha_umi.static`) and the fine-tuning
export (:mod:`toolpath.evals.alpha_umi.sft_export`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from toolpath.agents.alpha_umi.format import ROLES, Turn, parse_action, parse_next, turn
from toolpath.errors import DatasetError
from toolpath.tools.base import Tool
from toolpath.tools.catalog import load_catalog

log = logging.getLogger(__name__)

ROLE_OF_TURN = {"assistant": "planner", "caller": "caller", "conclusion": "summarizer"}
"""The role model that writes each kind of turn (the turns a step evaluates)."""
_MAX_WARNINGS = 10


class BadRecord(Exception):
    """A record that cannot be used; the message says why."""


@dataclass
class Dialogue:
    """One GLPFT record, checked: its tools (parsed) and its turns."""

    id: str
    tools: list[Tool]
    turns: list[Turn]
    instruction: str = ""
    where: str = ""
    skipped_tools: list[tuple[str, str]] = field(default_factory=list)

    @property
    def tool_names(self) -> frozenset[str]:
        """The (sanitized) names of the dialogue's tools."""
        return frozenset(t.name for t in self.tools)

    @property
    def finished(self) -> bool:
        """Whether the dialogue ends in a conclusion (not a give-up or a cut-off run)."""
        return any(t["from"] == "conclusion" for t in self.turns)


@dataclass
class GLPFTData:
    """The usable dialogues of a source and the records skipped, as ``(where, why)``."""

    dialogues: list[Dialogue]
    skipped: list[tuple[str, str]] = field(default_factory=list)
    source: str = ""


# -- reading -----------------------------------------------------------------------------------


def load_glpft(path: str | Path, *, limit: int | None = None, strict: bool = False) -> GLPFTData:
    """Read and check GLPFT records from a ``.json``/``.jsonl`` file or a folder of them.

    ``limit`` keeps the first N usable dialogues. Dialogue ids are the record's ``id`` when it
    has one, else its position (``3``; ``sub/file.json:3`` inside a folder). With ``strict``,
    the first bad record raises :class:`~toolpath.errors.DatasetError` instead of being skipped.
    """
    path = Path(path).expanduser()
    data = GLPFTData([], [], str(path))
    seen: set[str] = set()
    for where, default_id, raw in read_records(path):
        if isinstance(raw, BadRecord):
            problem: str = str(raw)
        else:
            try:
                dialogue = parse_record(raw, where=where, default_id=default_id)
                if dialogue.id in seen:
                    raise BadRecord(f"its id {dialogue.id!r} repeats an earlier record's")
            except BadRecord as exc:
                problem = str(exc)
            else:
                seen.add(dialogue.id)
                data.dialogues.append(dialogue)
                if limit is not None and len(data.dialogues) >= limit:
                    break
                continue
        if strict:
            raise DatasetError(f"{where}: {problem}")
        data.skipped.append((where, problem))
        if len(data.skipped) <= _MAX_WARNINGS:
            log.warning("skipped %s: %s", where, problem)
    if not data.dialogues:
        first = "; ".join(f"{w}: {p}" for w, p in data.skipped[:3])
        raise DatasetError(
            f"no usable GLPFT dialogues in {path}"
            + (f" ({len(data.skipped)} skipped; {first})" if first else "")
            + "; expected a JSON list of {tools, instruction, conversations} records"
        )
    return data


def read_records(path: Path) -> list[tuple[str, str, Any]]:
    """``(where, default id, record)`` for every record in a file or a folder of files.

    A JSONL line that is not JSON comes back as a :class:`BadRecord` in place of the record.
    """
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix in (".json", ".jsonl"))
        if not files:
            raise DatasetError(f"no .json or .jsonl files in the folder {path}")
        out: list[tuple[str, str, Any]] = []
        for file in files:
            prefix = f"{file.relative_to(path).as_posix()}:"
            try:
                out += _read_file(file, prefix, folder=True)
            except DatasetError as exc:
                out.append((str(file), prefix, BadRecord(str(exc))))
        return out
    if not path.exists():
        raise DatasetError(f"GLPFT data {path} not found; pass a .json or .jsonl file or a folder")
    return _read_file(path, "", folder=False)


def _read_file(path: Path, prefix: str, *, folder: bool) -> list[tuple[str, str, Any]]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"cannot read {path}: {exc}") from None
    if path.suffix == ".jsonl":
        rows: list[tuple[str, str, Any]] = []
        for lineno, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                rows.append((f"{path} line {lineno}", f"{prefix}{lineno}", json.loads(line)))
            except json.JSONDecodeError as exc:
                problem = BadRecord(f"not valid JSON ({exc.msg} at column {exc.colno})")
                rows.append((f"{path} line {lineno}", f"{prefix}{lineno}", problem))
            except RecursionError:
                problem = BadRecord("not valid JSON (nested too deeply)")
                rows.append((f"{path} line {lineno}", f"{prefix}{lineno}", problem))
        return rows
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DatasetError(
            f"{path} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except RecursionError:
        raise DatasetError(f"{path} is not valid JSON: nested too deeply") from None
    if isinstance(data, dict) and "conversations" in data:
        data = [data]
    if not isinstance(data, list):
        if folder:  # e.g. a run's summary.json next to its trajectories
            return []
        raise DatasetError(
            f"{path}: expected a JSON list of {{tools, instruction, conversations}} records, "
            f"got {type(data).__name__}"
        )
    return [(f"{path} record #{i}", f"{prefix}{i}", raw) for i, raw in enumerate(data)]


def parse_record(raw: Any, *, where: str = "", default_id: str = "") -> Dialogue:
    """Check one record and build its :class:`Dialogue`; raises :class:`BadRecord`."""
    if not isinstance(raw, dict):
        raise BadRecord(f"expected an object, got {type(raw).__name__}")
    convs = raw.get("conversations")
    if not isinstance(convs, list) or not convs:
        raise BadRecord("no 'conversations' list (or it is empty)")
    tools = raw.get("tools")
    if not isinstance(tools, list):
        raise BadRecord("no 'tools' list")
    turns = [_turn(t, i) for i, t in enumerate(convs)]
    if turns[0]["from"] != "user":
        raise BadRecord(f"the first turn is {turns[0]['from']!r}; a dialogue starts with 'user'")
    if not any(t["from"] == "assistant" for t in turns):
        raise BadRecord("no 'assistant' (planner) turn: nothing to evaluate")
    for i, t in enumerate(turns):
        if t["from"] == "caller" and parse_action(t["value"])[0] is None:
            raise BadRecord(f"turn {i} (caller) has no 'Action: NAME' line")
    catalog = load_catalog(tools, format="glpft") if tools else None
    rid = raw.get("id")
    instruction = raw.get("instruction")
    return Dialogue(
        id=str(rid) if isinstance(rid, str | int) and str(rid).strip() else default_id,
        tools=list(catalog.tools) if catalog else [],
        turns=turns,
        instruction=instruction if isinstance(instruction, str) else "",
        where=where,
        skipped_tools=list(catalog.skipped) if catalog else [],
    )


def _turn(raw: Any, index: int) -> Turn:
    if not isinstance(raw, dict) or "from" not in raw or "value" not in raw:
        raise BadRecord(f"turn {index} is not an object with 'from' and 'value'")
    role = str(raw["from"]).strip().lower()
    if role not in ROLES:
        raise BadRecord(
            f"turn {index} has the unknown role {raw['from']!r}; use {', '.join(ROLES)}"
        )
    value = raw["value"]
    if value is None:
        raise BadRecord(f"turn {index} ({role}) has no value")
    if not isinstance(value, str):
        value = (
            json.dumps(value, ensure_ascii=False) if isinstance(value, dict | list) else str(value)
        )
    return turn(role, value)


# -- the single-LLM (backbone) view --------------------------------------------------------------


def backbone_target(plan: str, following: Turn | None) -> str:
    """What one model writes for a planner turn and the turn after it, in the backbone format.

    The planner's thought (without its Next tag), then the caller's ``Action``/``Action Input``
    lines, or ``conclusion: <answer>``, or ``give up.``; ``""`` when the plan asks for the
    caller but no caller turn follows.
    """
    thought, tag = parse_next(plan)
    role = following["from"] if following else None
    if following is not None and role == "caller":
        body = following["value"].strip()
    elif following is not None and role == "conclusion":
        body = "conclusion: " + following["value"].strip()
    elif tag == "give up":
        body = "give up."
    else:
        return ""
    return f"{thought}\n{body}" if thought else body


def backbone_history(turns: Sequence[Turn]) -> list[Turn]:
    """A multi-role history as one model would have written it.

    Each planner turn and the caller (or conclusion) turn after it become one ``assistant``
    turn (:func:`backbone_target`); user and observation turns stay as they are.
    """
    out: list[Turn] = []
    i = 0
    while i < len(turns):
        t = turns[i]
        following = turns[i + 1] if i + 1 < len(turns) else None
        if t["from"] == "assistant":
            pair = following is not None and following["from"] in ("caller", "conclusion")
            text = backbone_target(t["value"], following if pair else None)
            out.append(turn("assistant", text or parse_next(t["value"])[0]))
            i += 2 if pair else 1
            continue
        if t["from"] in ("caller", "conclusion"):  # one without a planner turn before it
            out.append(turn("assistant", backbone_target("", t)))
        else:
            out.append(t)
        i += 1
    return out


def trajectory_record(state: dict[str, Any], tools: Sequence[Any]) -> dict[str, Any]:
    """A finished multi-role agent run as a GLPFT record (``toolpath export sft`` reads it).

    ``tools`` are the :class:`~toolpath.tools.base.Tool` objects the roles saw; they are
    stored as GLPFT tool entries (``Name``, ``function``, ``input`` as a JSON schema).
    """
    return {
        "instruction": state.get("question") or "",
        "tools": [
            {"Name": t.name, "function": t.description, "input": t.parameters} for t in tools
        ],
        "conversations": list(state.get("conversation", [])),
        "status": state.get("status"),
    }

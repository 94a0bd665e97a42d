"""Tools as prompt text that carries their whole contract, within a token budget.

A small model guesses whatever the prompt leaves out. So each tool is rendered with every
parameter's type, required flag, enum, default, format and description, nested objects and
array items included::

    - get_weather: The weather now in a city.
      city (string, required): City name, e.g. "Paris".
      unit (string, one of "c" | "f", default "c"): Temperature unit.

When the whole list would pass ``budget`` tokens, the tools least related to the request are
shortened first: their parameter descriptions go, then all but a one-line signature.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from toolpath.tools.base import Tool

DEFAULT_BUDGET = 2500
"""Tokens the tool list may take by default (about a third of an 8k context)."""

FULL, BRIEF, SIGNATURE = 2, 1, 0
"""Levels of detail: every description; no parameter descriptions; one line per tool."""

_MAX_DEPTH = 4  # nested objects and arrays rendered below the top level
_WORD = re.compile(r"[a-z0-9]+")


def render_tools(
    tools: Sequence[Tool], *, budget: int | None = DEFAULT_BUDGET, query: str = ""
) -> str:
    """Every tool's contract, one block per tool, in the given order.

    With ``budget`` (estimated tokens), tools are shortened one by one, the least related to
    ``query`` first (its parameter descriptions, then all but its signature), until the text
    fits or every tool is down to its signature.
    """
    blocks = [render_tool(t, FULL) for t in tools]
    if budget is None or estimate_tokens("\n".join(blocks)) <= budget:
        return "\n".join(blocks)
    order = sorted(range(len(tools)), key=lambda i: relevance(tools[i], query))
    for i in order:
        for level in (BRIEF, SIGNATURE):
            blocks[i] = render_tool(tools[i], level)
            if estimate_tokens("\n".join(blocks)) <= budget:
                return "\n".join(blocks)
    return "\n".join(blocks)


def render_tool(tool: Tool, detail: int = FULL) -> str:
    """One tool: ``- name: description`` and a line per parameter (see the module doc)."""
    schema = resolve_refs(tool.parameters)
    description = " ".join(tool.description.split())
    if detail == SIGNATURE:
        params = schema.get("properties", {})
        required = set(schema.get("required", []))
        args = ", ".join(k + ("" if k in required else "?") for k in params)
        return f"- {tool.wire_name}({args}): {_first_sentence(description)}"
    lines = [f"- {tool.wire_name}: {description}" if description else f"- {tool.wire_name}"]
    lines += _parameter_lines(schema, "  ", detail == FULL, 0)
    if len(lines) == 1:
        lines.append("  (no arguments)")
    return "\n".join(lines)


def _parameter_lines(schema: dict[str, Any], indent: str, describe: bool, depth: int) -> list[str]:
    props = schema.get("properties")
    if not isinstance(props, dict):
        return []
    required = set(schema.get("required", []))
    lines = []
    for name, sub in props.items():
        sub = sub if isinstance(sub, dict) else {}
        facts = [type_text(sub)]
        facts.append("required" if name in required else "optional")
        facts += _constraints(sub)
        text = " ".join(str(sub.get("description", "")).split()) if describe else ""
        lines.append(f"{indent}{name} ({', '.join(facts)})" + (f": {text}" if text else ""))
        if depth < _MAX_DEPTH:
            lines += _parameter_lines(_inner_object(sub), indent + "  ", describe, depth + 1)
    return lines


def _inner_object(schema: dict[str, Any]) -> dict[str, Any]:
    """The object schema whose properties sit under this parameter: its own, or its items'."""
    if isinstance(schema.get("properties"), dict):
        return schema
    items = schema.get("items")
    if isinstance(items, dict) and isinstance(items.get("properties"), dict):
        return items
    for option in schema.get("anyOf") or schema.get("oneOf") or []:
        if isinstance(option, dict) and option.get("type") != "null":
            return _inner_object(option)
    return {}


def type_text(schema: Any, _depth: int = 0) -> str:
    """A JSON schema's type in a few words: ``integer``, ``array of string``, ``string or null``."""
    if not isinstance(schema, dict) or _depth > _MAX_DEPTH:
        return "any"
    options = schema.get("anyOf") or schema.get("oneOf")
    if isinstance(options, list) and options:
        return " or ".join(dict.fromkeys(type_text(o, _depth + 1) for o in options))
    t = schema.get("type")
    if t is None:
        if "enum" in schema or "const" in schema:
            values = schema.get("enum", [schema.get("const")])
            return "string" if all(isinstance(v, str) for v in values) else "any"
        return "object" if "properties" in schema else "any"
    if isinstance(t, list):
        return " or ".join(str(x) for x in t)
    if t == "array" and isinstance(schema.get("items"), dict):
        inner = type_text(schema["items"], _depth + 1)
        return f"array of {inner}" + ("s" if inner == "object" else "")
    return str(t)


def _constraints(schema: dict[str, Any]) -> list[str]:
    facts = []
    values = schema.get("enum")
    if values is None and "const" in schema:
        values = [schema["const"]]
    if isinstance(values, list) and values:
        facts.append("one of " + " | ".join(_json(v) for v in values[:20]))
    items = schema.get("items")
    if isinstance(items, dict) and isinstance(items.get("enum"), list):
        facts.append("each one of " + " | ".join(_json(v) for v in items["enum"][:20]))
    if "default" in schema:
        facts.append(f"default {_json(schema['default'])}")
    for key, word in (("format", "format"), ("pattern", "pattern")):
        if isinstance(schema.get(key), str):
            facts.append(f"{word} {schema[key]}")
    for key, word in (("minimum", ">="), ("maximum", "<="), ("exclusiveMinimum", ">")):
        if isinstance(schema.get(key), int | float) and not isinstance(schema.get(key), bool):
            facts.append(f"{word} {schema[key]}")
    if isinstance(schema.get("exclusiveMaximum"), int | float):
        facts.append(f"< {schema['exclusiveMaximum']}")
    return facts


def resolve_refs(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with its local ``$ref``s replaced by what they point to (via jsonref).

    A recursive schema becomes a cyclic dict, which every walker here stops by depth; a ref
    that cannot be resolved is left as it is.
    """
    if "$ref" not in json.dumps(schema, default=str):
        return schema
    import jsonref

    try:
        resolved = jsonref.replace_refs(schema, proxies=False, lazy_load=False)
    except (jsonref.JsonRefError, RecursionError, ValueError):
        return schema
    return resolved if isinstance(resolved, dict) else schema


def relevance(tool: Tool, query: str) -> float:
    """How many of the request's words the tool's name and description share (0 without a
    query), with a tie-break that keeps the given order stable."""
    words = set(_WORD.findall(query.lower()))
    if not words:
        return 0.0
    text = f"{tool.name.replace('_', ' ').replace('.', ' ')} {tool.description}".lower()
    mine = set(_WORD.findall(text))
    return len(words & mine) / (1 + len(mine)) ** 0.5


def estimate_tokens(text: str) -> int:
    """A tokenizer-free estimate: about 3.5 characters per token for English and JSON."""
    return int(len(text) / 3.5) + 1


def _first_sentence(text: str) -> str:
    head = re.split(r"(?<=[.!?])\s", text, maxsplit=1)[0]
    return head if len(head) <= 160 else head[:159] + "…"


def _json(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 60 else text[:59] + "…"

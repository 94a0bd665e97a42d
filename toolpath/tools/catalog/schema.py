"""What every catalog format shares: JSON types, tool names, schema checks, described-only tools.

An entry that cannot become a tool raises :class:`SkipEntry`; the loader records it in
``Catalog.skipped`` with the message and goes on.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from toolpath.errors import ToolError
from toolpath.tools.base import sanitize_name as sanitize_name

JSON_TYPES = frozenset({"string", "number", "integer", "boolean", "array", "object", "null"})
TYPE_ALIASES = dict(str="string", text="string", enum="string", date="string", time="string")
TYPE_ALIASES.update(datetime="string", int="integer", long="integer", float="number")
TYPE_ALIASES.update(double="number", bool="boolean", list="array", dict="object", json="object")


MAX_NESTING = 64
"""How deeply an entry may nest objects and lists (a real tool schema stays far below)."""


class SkipEntry(Exception):
    """An entry that cannot become a tool; the message says why."""


def nesting_problem(obj: Any, limit: int = MAX_NESTING) -> str | None:
    """Why ``obj`` cannot be walked safely: dicts and lists nested deeper than ``limit`` (a
    container that holds itself counts as endlessly deep); None if it is fine.

    It recurses at most ``limit`` deep, so it is safe on any input; everything after it may
    then recurse freely.
    """
    if _too_deep(obj, limit):
        return f"the entry nests objects and lists more than {limit} deep (or contains itself)"
    return None


def _too_deep(obj: Any, left: int) -> bool:
    if left == 0:
        return True
    for value in obj.values() if isinstance(obj, dict) else obj:
        if isinstance(value, dict | list) and _too_deep(value, left - 1):
            return True
    return False


def described_only(name: str) -> Callable[..., Any]:
    """The function of a described-only tool: calling it raises a ToolError saying so."""

    def no_implementation(**_: Any) -> Any:
        raise ToolError(
            f"tool {name} has no implementation: it is described only; give its catalog entry "
            "a 'callable' or an 'endpoint' to make it runnable"
        )

    return no_implementation


def check_schema(params: Any) -> dict[str, Any]:
    """An entry's parameters, checked to be a usable object schema (none: no arguments)."""
    if params is None:
        return {"type": "object", "properties": {}}
    if not isinstance(params, dict):
        raise SkipEntry(f"'parameters' must be a JSON schema object, got {type(params).__name__}")
    if "type" not in params and isinstance(params.get("properties"), dict):
        params = {"type": "object", **params}
    if params.get("type") != "object":
        raise SkipEntry(
            f'\'parameters\' must be a schema with "type": "object", got type {params.get("type")!r}'
        )
    problem = schema_problem(params, "parameters", 0)
    if problem:
        raise SkipEntry(problem)
    return params


def _short_json(value: Any) -> str:
    try:
        return json.dumps(value, default=str)[:40]
    except (ValueError, TypeError, RecursionError):  # circular, odd keys
        return type(value).__name__


def schema_problem(s: Any, path: str, depth: int) -> str | None:
    """The first thing wrong with a JSON schema, or None (checks types and structure only)."""
    if depth > 40:
        return f"{path}: the schema is nested too deeply"
    if not isinstance(s, dict):
        return f"{path} must be a schema object, got {_short_json(s)}"
    types = s.get("type", [])
    for t in types if isinstance(types, list) else [types]:
        if not isinstance(t, str) or t not in JSON_TYPES:
            return f"{path}: unknown type {t!r}; use one of {', '.join(sorted(JSON_TYPES))}"
    subs: list[tuple[str, Any]] = []
    for key in ("properties", "$defs", "definitions"):
        if key in s and not isinstance(s[key], dict):
            return f"{path}.{key} must be an object mapping names to schemas"
        subs += [(f"{path}.{key}.{k}", v) for k, v in s.get(key, {}).items()]
    for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
        if key in s and not isinstance(s[key], list):
            return f"{path}.{key} must be a list of schemas"
        subs += [(f"{path}.{key}[{i}]", v) for i, v in enumerate(s.get(key, []))]
    for key in ("items", "additionalProperties", "not"):
        if key in s and not isinstance(s[key], bool):
            subs.append((f"{path}.{key}", s[key]))
    required = s.get("required", [])
    if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
        return f"{path}.required must be a list of property names"
    if not isinstance(s.get("enum", []), list):
        return f"{path}.enum must be a list"
    if not isinstance(s.get("description", ""), str):
        return f"{path}.description must be a string"
    for sub_path, sub in subs:
        if problem := schema_problem(sub, sub_path, depth + 1):
            return problem
    return None

"""ToolBench and GLPFT catalog entries as :class:`~toolpath.tools.base.Tool` objects.

Three shapes are read: a ToolBench tool with an ``api_list`` (one Tool per API, named
``<tool>_<api>``), a single ToolBench API (``api_name`` with ``required_parameters`` /
``optional_parameters``), and a GLPFT entry (``Name``, ``function`` as the description,
``input`` as a JSON schema, a dict of parameter -> description, or a list). Every Tool is
described only: calling it raises a :class:`~toolpath.errors.ToolError`.
"""

from __future__ import annotations

import contextlib
import copy
import json
import re
from typing import Any

from toolpath.tools.base import Tool
from toolpath.tools.catalog.schema import (
    JSON_TYPES,
    TYPE_ALIASES,
    SkipEntry,
    check_schema,
    described_only,
    sanitize_name,
)


def toolbench_entry(entry: dict[str, Any], label: str) -> list[tuple[str, Tool | str, str | None]]:
    """(label, Tool or why it was skipped, original name) for each tool of one entry. The
    original name is a GLPFT ``Name`` that had to be sanitized; a ToolBench API's name is made
    as ``<tool>_<api>`` (sanitized) and has none."""
    if "api_list" not in entry:
        if "api_name" in entry:
            return [(*_toolbench_api(entry, "", "", label), None)]
        return [(label, *_glpft(entry))]
    apis = entry["api_list"]
    if not isinstance(apis, list):
        return [(label, "'api_list' must be a list of APIs", None)]
    tool_name = _text(entry.get("tool_name") or entry.get("name") or entry.get("title"))
    tool_desc = _text(entry.get("tool_description") or entry.get("description"))
    category = _text(entry.get("category_name") or entry.get("category"))
    return [
        (*_toolbench_api(api, tool_name, tool_desc, f"{label} api #{j}", category), None)
        for j, api in enumerate(apis)
    ]


def _toolbench_api(
    api: Any, tool_name: str, tool_desc: str, label: str, category: str = ""
) -> tuple[str, Tool | str]:
    if not isinstance(api, dict):
        return label, f"expected an API object, got {type(api).__name__}"
    tool_name = _text(api.get("tool_name")) or tool_name
    api_name = _text(api.get("api_name") or api.get("name"))
    if not api_name:
        return label, "no name: an API needs an 'api_name' or 'name'"
    label = f"{tool_name}/{api_name}" if tool_name else api_name
    name = sanitize_name(f"{tool_name}_{api_name}" if tool_name else api_name)
    description = _text(api.get("api_description") or api.get("description")) or tool_desc
    properties: dict[str, Any] = {}
    required: list[str] = []
    for key in ("required_parameters", "optional_parameters"):
        params = api.get(key) or []
        if not isinstance(params, list):
            return label, f"'{key}' must be a list of {{name, type, description}}"
        for p in params:
            pname = _text(p.get("name")) if isinstance(p, dict) else ""
            if not pname:
                return label, f"'{key}' holds a parameter without a name"
            properties[pname] = _param(p.get("type"), p.get("description"), p.get("default"))
            if key == "required_parameters":
                required.append(pname)
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    category = _text(api.get("category_name") or api.get("category")) or category
    service = ": ".join(p for p in (tool_name, tool_desc if tool_desc != description else "") if p)
    context = " / ".join(p for p in (category, service) if p)
    return label, Tool(name, description, schema, described_only(name), context=context)


def _glpft(entry: dict[str, Any]) -> tuple[Tool, str]:
    raw = _text(entry.get("Name") or entry.get("name"))
    if not raw:
        raise SkipEntry("no name: expected 'Name' or 'name'")
    name = sanitize_name(raw)
    function = entry.get("function")
    description = _text(function if isinstance(function, str) else entry.get("description"))
    spec = entry.get("input", entry.get("parameters"))
    if isinstance(spec, str) and spec.strip()[:1] == "{":
        with contextlib.suppress(ValueError):
            spec = json.loads(spec)
    if spec in (None, "", {}, [], "None", "none"):
        schema: dict[str, Any] = {"type": "object", "properties": {}}
    elif isinstance(spec, dict) and (
        spec.get("type") == "object" or isinstance(spec.get("properties"), dict)
    ):
        schema = copy.deepcopy(spec)  # safe: the loader checked how deep the entry nests
        props = schema.get("properties")
        for prop in props.values() if isinstance(props, dict) else ():
            if isinstance(prop, dict) and isinstance(prop.get("type"), str):
                prop["type"] = _json_type(prop["type"])
        schema = check_schema(schema)
    elif isinstance(spec, dict):
        schema = {"type": "object", "properties": {}, "required": []}
        for pname, value in spec.items():
            if isinstance(value, dict):
                prop = _param(value.get("type"), value.get("description"), value.get("default"))
                optional = value.get("required") is False or bool(value.get("optional"))
            else:
                prop, optional = _param_text(str(value))
            schema["properties"][str(pname)] = prop
            if not optional:
                schema["required"].append(str(pname))
    elif isinstance(spec, list) and all(isinstance(p, dict) and p.get("name") for p in spec):
        props = {
            str(p["name"]): _param(p.get("type"), p.get("description"), p.get("default"))
            for p in spec
        }
        schema = {"type": "object", "properties": props, "required": list(props)}
    else:
        raise SkipEntry(
            "'input' must be a JSON schema, a dict of parameter -> description, or a list"
        )
    return Tool(name, description, schema, described_only(name)), raw


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _json_type(kind: Any) -> str:
    text = str(kind or "string").strip().lower()
    return text if text in JSON_TYPES else TYPE_ALIASES.get(text, "string")


def _param(kind: Any, description: Any, default: Any = None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": _json_type(kind)}
    if _text(description):
        out["description"] = _text(description)
    if default not in (None, ""):
        out["examples"] = [default]
    return out


def _param_text(text: str) -> tuple[dict[str, Any], bool]:
    """``"integer, how many days (optional)"`` as a property schema, and whether it's optional."""
    m = re.match(r"^\(?([A-Za-z]+)\)?\s*(?:[,:;-]\s*|$)(.*)$", text.strip(), re.S)
    known = m is not None and (m[1].lower() in JSON_TYPES or m[1].lower() in TYPE_ALIASES)
    prop = _param(m[1], m[2]) if m and known else _param("string", text)
    return prop, "optional" in text.lower()

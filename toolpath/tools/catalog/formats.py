"""Tool catalogs: many tools at once, for agents and for tool retrieval over thousands of APIs.

:func:`load_catalog` reads tools from

- toolpath's own JSON/YAML/JSONL: ``{name, description, parameters, callable?, endpoint?}``
  entries. ``callable: "pkg.module:function"`` binds the tool to that function (imported at the
  first call); ``endpoint: {url, method: GET|POST, headers?}`` calls that HTTP endpoint with the
  arguments (``${VAR}`` in header values is expanded from the environment at call time); with
  neither, the tool is *described only*: fine for retrieval and static evaluation, and calling
  it raises a :class:`~toolpath.errors.ToolError`;
- OpenAI tool lists (``{"type": "function", "function": {...}}`` or the bare function objects);
- ToolBench/GLPFT files (``Name``/``function``/``input`` entries, tools with an ``api_list``);
- a Python module (``module:pkg.tools``, or a ``.py`` file): its public typed functions;
- an MCP server (``mcp:COMMAND ARGS...`` or ``mcp+http://HOST/PATH``, :mod:`toolpath.tools.catalog.mcp`)
  or an OpenAPI 3 spec (``openapi:PATH_OR_URL``, :mod:`toolpath.tools.catalog.openapi`).

A name that OpenAI's ``^[a-zA-Z0-9_-]{1,64}$`` rejects (``math.factorial``) is fixed, not
skipped: the tool gets :func:`~toolpath.tools.catalog.schema.sanitize_name`'s name
(``math_factorial``), :attr:`Catalog.renamed` maps it back to the original, and one warning
per catalog lists the renamed tools. Bad entries (no name, a broken schema, a duplicate name,
two names that sanitize alike) are logged, recorded in :attr:`Catalog.skipped` and skipped;
a missing or unparsable file raises
:class:`~toolpath.errors.CatalogError`. :func:`toolpath.retrieval.synthetic.synthetic_catalog` makes large described-only
catalogs for retrieval tests and benchmarks.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import json
import logging
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable
from pathlib import Path
from types import ModuleType
from typing import Any

from toolpath.errors import CatalogError, MissingDependencyError, ToolError, ToolSchemaError
from toolpath.tools.base import Tool, run_blocking, tool
from toolpath.tools.catalog.core import (
    MAX_YAML_VALUES,
    Catalog,
    add_entry,
    expanded_size,
    gc_paused,
    summarize,
    yaml_scalar,
)
from toolpath.tools.catalog.schema import (
    SkipEntry,
    check_schema,
    described_only,
    nesting_problem,
    sanitize_name,
)

log = logging.getLogger(__name__)

FORMATS = ("auto", "toolpath", "openai", "toolbench", "glpft", "python")
"""Values of ``load_catalog(format=...)``; ``glpft`` is read like ``toolbench``."""
HTTP_TIMEOUT = 30.0
"""Seconds an endpoint tool waits for its server when its entry gives no ``timeout``."""

_MODULE = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")
_CALLABLE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")

Parsed = tuple[str, Tool | str, str | None]
"""What one entry gives: (label, the Tool or why it was skipped, the name the entry gave
when the Tool's name is its sanitized form, else None)."""


def load_catalog(
    source: str | Path | list[Any] | dict[str, Any], *, format: str = "auto"
) -> Catalog:
    """Load a tool catalog from a file, a Python module, or already parsed JSON data.

    ``source`` is a ``.json``/``.jsonl``/``.yaml``/``.yml`` file, a ``.py`` file, a module spec
    ``module:pkg.tools`` (or a bare ``pkg.tools`` with ``format="python"``), an MCP server
    (``mcp:COMMAND ARGS...``, ``mcp+http://HOST/PATH``: :mod:`toolpath.tools.catalog.mcp`), an
    OpenAPI 3 spec (``openapi:PATH_OR_URL``: :mod:`toolpath.tools.catalog.openapi`), or a list/dict of
    entries. ``format`` is one of :data:`FORMATS`; ``auto`` tells each entry's shape apart.
    Bad entries are skipped (see :attr:`Catalog.skipped`); a missing, unreadable or invalid
    file or module raises :class:`~toolpath.errors.CatalogError`.
    """
    fmt = format.lower().replace("glpft", "toolbench")
    if fmt not in FORMATS:
        raise CatalogError(f"unknown catalog format {format!r}; use one of {', '.join(FORMATS)}")
    if isinstance(source, list | dict):
        return _from_data(source, fmt, f"<{type(source).__name__}>")
    text = str(source).strip()
    if isinstance(source, str) and text.startswith(("mcp:", "mcp+http://", "mcp+https://")):
        from toolpath.tools.catalog.mcp import mcp_catalog

        return mcp_catalog(text)
    if isinstance(source, str) and text.startswith("openapi:"):
        from toolpath.tools.catalog.openapi import openapi_catalog

        return openapi_catalog(text.removeprefix("openapi:"))
    if isinstance(source, str) and text.startswith("module:"):
        return _from_module(_import_module(text.removeprefix("module:").strip()), text)
    try:
        path = Path(text).expanduser()
    except RuntimeError:  # ~user of a user that does not exist
        raise CatalogError(f"catalog {text} not found: no home folder for its '~user'") from None
    if path.suffix == ".py" or (fmt == "python" and path.exists()):
        return _from_module(_import_file(path), text)
    if fmt == "python" and _MODULE.match(text) and not path.exists():
        return _from_module(_import_module(text), text)
    return _from_data(_read(path), fmt, text)


def write_catalog(tools: Iterable[Tool], path: str | Path) -> Path:
    """Write tools as a described-only catalog in toolpath's format (JSON; JSONL for ``.jsonl``)."""
    path = Path(path)
    entries = [
        {"name": t.name, "description": t.description, "parameters": t.parameters}
        | ({"context": t.context} if t.context else {})
        for t in tools
    ]
    try:
        if path.suffix.lower() == ".jsonl":
            text = "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in entries)
        else:
            text = json.dumps(entries, indent=1, ensure_ascii=False) + "\n"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except (OSError, TypeError, ValueError) as exc:
        raise CatalogError(f"cannot write the catalog {path}: {exc}") from exc
    return path


# -- reading ---------------------------------------------------------------------------------


def _read(path: Path) -> Any:
    where = f"catalog {path}"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CatalogError(
            f"{where} not found; pass a .json, .jsonl, .yaml or .py file, or module:pkg.name"
        ) from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:  # ValueError: a NUL in the path
        raise CatalogError(f"cannot read the {where}: {exc}") from None
    if not text.strip():
        raise CatalogError(f"{where} is empty; expected a list of tool entries")
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        return [
            _json(line, f"{where}, line {i}")
            for i, line in enumerate(text.split("\n"), 1)  # not splitlines: JSON keeps U+2028
            if line.strip()
        ]
    if suffix in (".yaml", ".yml") or (suffix != ".json" and text.lstrip()[0] not in "[{"):
        try:
            import yaml
        except ImportError:
            raise MissingDependencyError(
                f"reading the YAML {where} needs PyYAML: pip install pyyaml"
            ) from None
        try:
            data = yaml.safe_load(text)
        except (yaml.YAMLError, ValueError, TypeError, RecursionError) as exc:
            # ValueError: a bad date such as 2020-13-01; RecursionError: nesting too deep
            raise CatalogError(f"{where} is not valid YAML: {exc}") from None
        if (size := expanded_size(data)) is None or size > MAX_YAML_VALUES:
            raise CatalogError(
                f"{where}: its YAML aliases (*name) expand to a structure that contains itself "
                f"or holds over {MAX_YAML_VALUES:,} values"
            )
        try:  # JSON's data model from here on: dates as ISO text, aliases expanded
            return json.loads(json.dumps(data, default=yaml_scalar))
        except (ValueError, TypeError, RecursionError) as exc:
            raise CatalogError(f"{where} holds YAML that has no JSON form: {exc}") from None
    return _json(text, where)


def _json(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise CatalogError(
            f"{where} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except RecursionError:
        raise CatalogError(f"{where} is not usable JSON: it nests too deeply") from None


def _from_data(data: Any, fmt: str, source: str) -> Catalog:
    if isinstance(data, dict):
        if isinstance(data.get("tools"), list):
            data = data["tools"]
        elif any(k in data for k in ("api_list", "name", "Name", "function", "api_name")):
            data = [data]
    if not isinstance(data, list):
        raise CatalogError(
            f"catalog {source}: expected a list of tool entries or an object with a 'tools' list, "
            f"got {type(data).__name__}"
        )
    catalog = Catalog([], [], source)
    with gc_paused():
        for index, entry in enumerate(data):
            for label, result, original in _parse(entry, index, fmt):
                add_entry(catalog, label, result, original)
    summarize(catalog)
    return catalog


def _label(entry: dict[str, Any], index: int) -> str:
    fn = entry.get("function")
    for value in (entry.get(key) for key in ("name", "Name", "api_name", "tool_name")):
        if isinstance(value, str) and value.strip():
            return value.strip()
    if isinstance(fn, dict) and isinstance(fn.get("name"), str) and fn["name"].strip():
        return str(fn["name"]).strip()
    return f"entry #{index}"


def _parse(entry: Any, index: int, fmt: str) -> list[Parsed]:
    if not isinstance(entry, dict):
        return [(f"entry #{index}", f"expected an object, got {type(entry).__name__}", None)]
    label = _label(entry, index)
    if problem := nesting_problem(entry):
        return [(label, problem, None)]
    kind = _detect(entry) if fmt == "auto" else fmt
    try:
        if kind == "toolbench":
            from toolpath.tools.catalog.toolbench import toolbench_entry

            return toolbench_entry(entry, label)
        if kind == "openai":
            fn = entry["function"] if isinstance(entry.get("function"), dict) else entry
            return [(label, *_own(fn, bind=False))]
        return [(label, *_own(entry, bind=True))]
    except (SkipEntry, ToolSchemaError) as exc:
        return [(label, str(exc), None)]


def _detect(entry: dict[str, Any]) -> str:
    if entry.get("type") == "function" and isinstance(entry.get("function"), dict):
        return "openai"
    if any(k in entry for k in ("api_list", "api_name", "Name", "input")):
        return "toolbench"
    return "toolbench" if isinstance(entry.get("function"), str) else "toolpath"


# -- toolpath's own format and OpenAI's ---------------------------------------------------------


def _own(entry: dict[str, Any], *, bind: bool) -> tuple[Tool, str]:
    """The entry's Tool, under its name sanitized for OpenAI, and the name the entry gave."""
    raw = entry.get("name")
    if not isinstance(raw, str) or not raw.strip():
        raise SkipEntry("no name: every tool entry needs a 'name'")
    original = raw.strip()
    name = sanitize_name(original)
    description = entry.get("description") or ""
    if not isinstance(description, str):
        raise SkipEntry("'description' must be a string")
    parameters = check_schema(entry.get("parameters"))
    context = entry.get("context") or ""
    if not isinstance(context, str):
        raise SkipEntry("'context' must be a string")
    timeout = entry.get("timeout")
    if timeout is not None and (type(timeout) not in (int, float) or timeout <= 0):
        raise SkipEntry(f"'timeout' must be a positive number of seconds, got {timeout!r}")
    target, endpoint = (entry.get("callable"), entry.get("endpoint")) if bind else (None, None)
    fn: Callable[..., Any]
    if target is not None and endpoint is not None:
        raise SkipEntry("give either 'callable' or 'endpoint', not both")
    if target is not None:
        if not isinstance(target, str) or not _CALLABLE.match(target.strip()):
            raise SkipEntry(f"'callable' must look like 'package.module:function', got {target!r}")
        fn = _LazyCallable(name, target.strip())
    elif endpoint is not None:
        fn = _endpoint(name, endpoint, float(timeout or HTTP_TIMEOUT))
    else:
        fn = described_only(name)
    tool = Tool(name, description.strip(), parameters, fn, timeout=timeout, context=context.strip())
    return tool, original


class _LazyCallable:
    """Calls the function a ``module:attr`` spec names, importing it at the first call."""

    def __init__(self, tool_name: str, target: str) -> None:
        self.tool_name, self.target = tool_name, target
        self._fn: Any = None

    def resolve(self) -> Any:
        """The target function (or Tool), imported now if it was not yet."""
        if self._fn is None:
            module_name, _, attr = self.target.partition(":")
            try:
                obj: Any = importlib.import_module(module_name)
                for part in attr.split("."):
                    obj = getattr(obj, part)
            except Exception as exc:
                raise ToolError(
                    f"{self.tool_name}: cannot load its callable {self.target!r} "
                    f"({type(exc).__name__}: {exc}); check the module is importable"
                ) from exc
            if not callable(obj):
                raise ToolError(f"{self.tool_name}: {self.target!r} is not callable")
            self._fn = obj
        return self._fn

    def __call__(self, **kwargs: Any) -> Any:
        fn = self.resolve()
        if isinstance(fn, Tool):
            return fn.run(kwargs)
        result = fn(**kwargs)
        if inspect.isawaitable(result):
            return run_blocking(lambda: _wait(result))
        return result


async def _wait(awaitable: Any) -> Any:
    return await awaitable


def _endpoint(name: str, spec: Any, timeout: float) -> Callable[..., str]:
    if not isinstance(spec, dict) or not isinstance(spec.get("url"), str):
        raise SkipEntry("'endpoint' must be an object with a 'url'")
    url, method = spec["url"].strip(), str(spec.get("method", "GET")).upper()
    headers = spec.get("headers") or {}
    try:
        scheme = urllib.parse.urlsplit(url).scheme
    except ValueError as exc:  # e.g. an unclosed [IPv6 address
        raise SkipEntry(f"endpoint url {url!r} is not a valid URL ({exc})") from None
    if scheme not in ("http", "https"):
        raise SkipEntry(f"endpoint url {url!r} must start with http:// or https://")
    if method not in ("GET", "POST"):
        raise SkipEntry(f"endpoint method must be GET or POST, got {method!r}")
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        raise SkipEntry("endpoint 'headers' must map header names to strings")

    def call_endpoint(**arguments: Any) -> str:
        target, data = url, None
        if method == "GET" and arguments:
            query = urllib.parse.urlencode({k: _query_value(v) for k, v in arguments.items()})
            target += ("&" if urllib.parse.urlsplit(url).query else "?") + query
        elif method == "POST":
            data = json.dumps(arguments, ensure_ascii=False).encode()
        request = urllib.request.Request(target, data=data, method=method)
        for key, value in headers.items():
            request.add_header(str(key), os.path.expandvars(value))
        if data is not None and not request.has_header("Content-type"):
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                charset = response.headers.get_content_charset() or "utf-8"
                return str(response.read().decode(charset, errors="replace"))
        except urllib.error.HTTPError as exc:
            body = exc.read().decode("utf-8", errors="replace").strip()[:300]
            raise ToolError(
                f"{name}: {method} {url} answered HTTP {exc.code} {exc.reason}"
                + (f": {body}" if body else "")
            ) from None
        except (urllib.error.URLError, OSError) as exc:
            raise ToolError(f"{name}: cannot reach {url} ({getattr(exc, 'reason', exc)})") from None

    return call_endpoint


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    return "" if value is None else json.dumps(value, ensure_ascii=False)


# -- Python modules -----------------------------------------------------------------------------


def _import_module(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except Exception as exc:
        raise CatalogError(
            f"cannot import the tool module {name!r} ({type(exc).__name__}: {exc}); "
            "check that it is installed or on sys.path"
        ) from exc


def _import_file(path: Path) -> ModuleType:
    if not path.is_file():
        raise CatalogError(f"Python tool file {path} not found")
    resolved = path.resolve()
    digest = hashlib.sha1(str(resolved).encode()).hexdigest()[:8]
    name = f"_toolpath_catalog_{re.sub(r'[^A-Za-z0-9_]', '_', path.stem)}_{digest}"
    spec = importlib.util.spec_from_file_location(name, resolved)
    if spec is None or spec.loader is None:
        raise CatalogError(f"cannot load {path} as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # so pydantic and dataclasses can resolve the module's types
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(name, None)
        raise CatalogError(f"cannot load tools from {path}: {type(exc).__name__}: {exc}") from exc
    return module


def _from_module(module: ModuleType, source: str) -> Catalog:
    catalog = Catalog([], [], source)
    for attr, obj in list(vars(module).items()):
        if attr.startswith("_"):
            continue
        if isinstance(obj, Tool):
            if getattr(obj.fn, "__module__", None) == module.__name__:
                add_entry(catalog, attr, obj)
            continue
        if not inspect.isfunction(obj) or obj.__module__ != module.__name__:
            continue
        try:
            add_entry(catalog, attr, tool(obj))
        except ToolSchemaError as exc:
            add_entry(catalog, attr, str(exc))
    summarize(catalog)
    return catalog

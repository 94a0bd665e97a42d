"""Tools: a name, a description, a JSON schema for the arguments, and the function to call.

Build one from a typed function with :func:`tool`: the schema comes from the signature (via
pydantic), the descriptions from the docstring. :meth:`Tool.run` / :meth:`Tool.arun` validate the
arguments, call the function (sync or async) under the tool's timeout, and return text. Every
failure is a :class:`~toolpath.errors.ToolError` whose message a model can act on.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import dataclasses
import functools
import hashlib
import inspect
import json
import re
import threading
from collections.abc import Callable, Coroutine, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Annotated, Any, TypeVar, overload

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, create_model

from toolpath.errors import ToolArgumentsError, ToolError, ToolSchemaError
from toolpath.llm.base import ToolSpec

T = TypeVar("T")
Fn = Callable[..., Any]
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_ANY_NAME = re.compile(r"^[^\s]{1,200}$")
_PY_TYPES: dict[str, Any] = dict(string=str, integer=int, number=(int, float), boolean=bool)
_PY_TYPES.update(array=list, object=dict, null=type(None))


@dataclass
class Tool:
    """A callable tool in the OpenAI function-calling shape.

    ``model`` is the pydantic model that validates the arguments; :func:`tool` sets it. A Tool
    built by hand from a raw JSON schema leaves it ``None`` and gets a small built-in check.
    """

    name: str
    """The tool's own name; any text without spaces (``math.factorial``). A name OpenAI's rules
    reject is shown to models as :attr:`wire_name` and mapped back."""
    description: str
    parameters: dict[str, Any]
    fn: Fn
    timeout: float | None = None
    model: type[BaseModel] | None = field(default=None, repr=False, compare=False)
    context: str = ""
    """Where the tool comes from, for retrieval: its service and category in a catalog such as
    ToolBench's (``"Finance / Alpha Vantage: stock market data"``). Models are not shown it."""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _ANY_NAME.match(self.name):
            raise ToolSchemaError(
                f"bad tool name {self.name!r}: use 1-200 characters without spaces "
                "(names outside A-Z a-z 0-9 _ - are shown to models sanitized and mapped back)"
            )
        if self.parameters.get("type") != "object":
            raise ToolSchemaError(f"tool '{self.name}': parameters must be a schema of type object")

    @property
    def wire_name(self) -> str:
        """The name models see: :attr:`name` itself, or :func:`sanitize_name` of it where
        OpenAI's rules (1-64 of ``A-Z a-z 0-9 _ -``) reject it (``math.factorial`` ->
        ``math_factorial``)."""
        return self.name if _NAME.match(self.name) else sanitize_name(self.name)

    def spec(self) -> ToolSpec:
        """The tool in the OpenAI ``tools=`` format (under its :attr:`wire_name`)."""
        fn: dict[str, Any] = {"name": self.wire_name, "description": self.description}
        fn["parameters"] = self.parameters
        return {"type": "function", "function": fn}

    def validate(self, arguments: dict[str, Any]) -> dict[str, Any]:
        """Check and coerce ``arguments``; the result is JSON-compatible (safe to ``json.dumps``).

        Safe mismatches are coerced first (:func:`coerce`): ``"5"`` where an integer is
        required, one value where an array is. Raises :class:`ToolArgumentsError` with a short
        message a model can act on for anything else.
        """
        if isinstance(arguments, dict):
            arguments = coerce(arguments, self.parameters)
        if self.model is None:
            return self._check_raw(arguments)
        return self._validate_model(arguments).model_dump(
            mode="json", by_alias=True, exclude_unset=True
        )

    def run(self, arguments: dict[str, Any]) -> str:
        """Validate, call the function (async ones run to completion), return its result as text."""
        if _is_async(self.fn):
            return run_blocking(lambda: self.arun(arguments))
        kwargs = self._kwargs(arguments)
        with self._failures():
            return stringify(self._call_sync(kwargs))

    async def arun(self, arguments: dict[str, Any]) -> str:
        """Like :meth:`run`, without blocking the event loop (sync functions run in a thread)."""
        kwargs = self._kwargs(arguments)
        with self._failures():
            if not _is_async(self.fn):
                return stringify(await asyncio.to_thread(self._call_sync, kwargs))
            if self.timeout is None:
                return stringify(await self.fn(**kwargs))
            scope = asyncio.timeout(self.timeout)
            try:
                async with scope:
                    return stringify(await self.fn(**kwargs))
            except TimeoutError:
                if scope.expired():  # ours, not a TimeoutError raised by the function
                    raise self._timed_out() from None
                raise

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the underlying function directly, without validation or timeout."""
        return self.fn(*args, **kwargs)

    def _kwargs(self, arguments: dict[str, Any]) -> dict[str, Any]:
        """Validated keyword arguments as Python values (nested models stay models)."""
        if isinstance(arguments, dict):
            arguments = coerce(arguments, self.parameters)
        if self.model is None:
            return self._check_raw(arguments)
        instance = self._validate_model(arguments)
        fields = type(instance).model_fields
        return {info.alias or key: getattr(instance, key) for key, info in fields.items()}

    def _validate_model(self, arguments: dict[str, Any]) -> BaseModel:
        assert self.model is not None
        if not isinstance(arguments, dict):
            raise self._bad_arguments(["arguments must be a JSON object"])
        try:
            return self.model.model_validate(arguments)
        except ValidationError as exc:
            problems = []
            for err in exc.errors():
                loc, top = ".".join(map(str, err["loc"])), len(err["loc"]) == 1
                if err["type"] == "missing" and top:
                    problems.append(f"missing required argument '{loc}'")
                elif err["type"] == "extra_forbidden" and top:
                    problems.append(f"unknown argument '{loc}'")
                else:
                    problems.append(f"argument '{loc}': {err['msg']} (got {_short(err['input'])})")
            raise self._bad_arguments(problems) from None

    def _check_raw(self, arguments: dict[str, Any]) -> dict[str, Any]:
        """Required keys, unknown keys and basic JSON types, for hand-written schemas."""
        if not isinstance(arguments, dict):
            raise self._bad_arguments(["arguments must be a JSON object"])
        props: dict[str, Any] = self.parameters.get("properties", {})
        required = self.parameters.get("required", [])
        problems = [f"missing required argument '{k}'" for k in required if k not in arguments]
        out = dict(arguments)
        for key, value in arguments.items():
            if key not in props:
                if self.parameters.get("additionalProperties") is False:
                    problems.append(f"unknown argument '{key}'")
                continue
            types = props[key].get("type") or []
            types = [types] if isinstance(types, str) else types
            if "integer" in types and isinstance(value, float) and value.is_integer():
                out[key] = value = int(value)
            if types and not any(_is_json_type(value, t) for t in types):
                problems.append(
                    f"argument '{key}' must be {' or '.join(types)} (got {_short(value)})"
                )
        if problems:
            raise self._bad_arguments(problems)
        return out

    def _bad_arguments(self, problems: list[str]) -> ToolArgumentsError:
        text = "; ".join(problems[:3]) + (
            f"; and {len(problems) - 3} more" if len(problems) > 3 else ""
        )
        expected = describe_parameters(self.parameters)
        return ToolArgumentsError(f"{self.name}: {text}. Expected arguments: {expected}")

    @contextlib.contextmanager
    def _failures(self) -> Iterator[None]:
        """Let ToolErrors through; turn any other exception into a ToolError naming it."""
        try:
            yield
        except ToolError:
            raise
        except Exception as exc:
            detail = _short(str(exc).strip(), 500, quote=False)
            kind = type(exc).__name__ + (f": {detail}" if detail else "")
            raise ToolError(f"{self.name} failed: {kind}") from exc

    def _timed_out(self) -> ToolError:
        return ToolError(f"{self.name} timed out after {self.timeout:g}s")

    def _call_sync(self, kwargs: dict[str, Any]) -> Any:
        """Call a sync fn; under a timeout, in a daemon thread that we stop waiting for in time."""
        if self.timeout is None:
            return self.fn(**kwargs)
        box: dict[str, Any] = {}
        context = contextvars.copy_context()

        def target() -> None:
            try:
                box["result"] = context.run(self.fn, **kwargs)
            except BaseException as exc:
                box["error"] = exc

        worker = threading.Thread(target=target, name=f"tool-{self.name}", daemon=True)
        worker.start()
        worker.join(self.timeout)
        if worker.is_alive():
            raise self._timed_out()
        if "error" in box:
            raise box["error"]
        return box["result"]


def sanitize_name(name: str) -> str:
    """A valid tool name (1-64 of ``A-Z a-z 0-9 _ -``) for any text; long ones get a short hash."""
    clean = re.sub(r"[^A-Za-z0-9_-]+", "_", name).strip("_") or "api"
    if len(clean) <= 64:
        return clean
    return f"{clean[:55].rstrip('_')}_{hashlib.sha1(name.encode()).hexdigest()[:8]}"


_INT_TEXT = re.compile(r"^\s*[+-]?\d{1,18}\s*$")
_NUMBER_TEXT = re.compile(r"^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$")


def coerce(value: Any, schema: Any, _depth: int = 0) -> Any:
    """``value`` with the mismatches that cannot change its meaning fixed for ``schema``.

    ``"5"`` -> 5 (integer), ``"2.5"`` -> 2.5 (number), ``5.0`` -> 5 (integer), 5 -> 5.0 (a
    number with OpenAPI's ``format: float`` or ``double``), ``"true"`` -> True (boolean), 5 ->
    ``"5"`` (string), and a single value -> ``[value]`` where an array is required; inside
    objects and arrays too. Anything else is returned as it is, for
    validation to report.
    """
    if not isinstance(schema, dict) or _depth > 32:
        return value
    types = schema.get("type") or []
    types = [types] if isinstance(types, str) else types
    if not types or any(_is_json_type(value, t) for t in types):
        if _wants_float(schema, types) and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, dict) and isinstance(schema.get("properties"), dict):
            props = schema["properties"]
            return {k: coerce(v, props.get(k), _depth + 1) for k, v in value.items()}
        if isinstance(value, list) and isinstance(schema.get("items"), dict):
            return [coerce(v, schema["items"], _depth + 1) for v in value]
        return value
    for t in types:
        fixed = _coerced(value, t, schema, _depth)
        if fixed is not _UNSET:
            return fixed
    return value


_UNSET = object()


def _wants_float(schema: dict[str, Any], types: list[str]) -> bool:
    """A number schema marked float (OpenAPI's ``format: float`` or ``double``)."""
    return "number" in types and "integer" not in types and schema.get("format") in FLOATS


FLOATS = ("float", "double")


def _coerced(value: Any, t: str, schema: dict[str, Any], depth: int) -> Any:
    if t == "integer" and isinstance(value, str) and _INT_TEXT.match(value):
        return int(value)
    if t == "integer" and isinstance(value, float) and value.is_integer():
        return int(value)
    if t == "number" and isinstance(value, str) and _NUMBER_TEXT.match(value):
        return float(value) if any(c in value for c in ".eE") else int(value)
    if t == "boolean" and isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    if t == "string" and isinstance(value, int | float) and not isinstance(value, bool):
        return json.dumps(value)
    if t == "array" and not isinstance(value, list) and value is not None:
        item = coerce(value, schema.get("items"), depth + 1)
        item_types = (schema.get("items") or {}).get("type") or []
        item_types = [item_types] if isinstance(item_types, str) else item_types
        if not item_types or any(_is_json_type(item, it) for it in item_types):
            return [item]
    return _UNSET


def stringify(result: Any) -> str:
    """A tool result as text: a str as is, None as "done", anything else as JSON."""
    if isinstance(result, str):
        return result
    return "done" if result is None else json.dumps(result, default=_jsonable, ensure_ascii=False)


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, BaseModel):
        return obj.model_dump(mode="json")
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    return list(obj) if isinstance(obj, set | frozenset | tuple) else str(obj)


def describe_parameters(schema: dict[str, Any]) -> str:
    """A compact ``{a: integer, b: string (optional)}`` summary of an object schema."""
    required = set(schema.get("required", []))
    props = schema.get("properties", {}).items()
    parts = [f"{k}: {_type_text(v)}" + ("" if k in required else " (optional)") for k, v in props]
    return "{" + ", ".join(parts) + "}"


def _type_text(s: Any) -> str:
    if not isinstance(s, dict):
        return "any"
    if "enum" in s or "const" in s:
        return " | ".join(json.dumps(v) for v in s.get("enum", [s.get("const")]))
    if "$ref" in s:
        return str(s["$ref"]).rsplit("/", 1)[-1]
    if "anyOf" in s or "oneOf" in s:
        return " | ".join(_type_text(x) for x in s.get("anyOf") or s["oneOf"])
    t = s.get("type", "any")
    if t == "array" and "items" in s:
        return f"array[{_type_text(s['items'])}]"
    return " | ".join(t) if isinstance(t, list) else str(t)


def _is_json_type(value: Any, t: str) -> bool:
    if isinstance(value, bool) and t in ("integer", "number"):
        return False
    return t not in _PY_TYPES or isinstance(value, _PY_TYPES[t])


def _short(value: Any, limit: int = 60, *, quote: bool = True) -> str:
    text = json.dumps(value, default=str) if quote else str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _is_async(fn: Any) -> bool:
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(type(fn).__call__)


def run_blocking(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion from sync code, even when this thread runs a loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make())
    with ThreadPoolExecutor(1, thread_name_prefix="tool-async") as pool:
        return pool.submit(lambda: asyncio.run(make())).result()


@overload
def tool(
    fn: Fn, *, name: str | None = ..., description: str | None = ..., timeout: float | None = ...
) -> Tool: ...
@overload
def tool(
    fn: None = None,
    *,
    name: str | None = ...,
    description: str | None = ...,
    timeout: float | None = ...,
) -> Callable[[Fn], Tool]: ...
def tool(
    fn: Fn | None = None,
    *,
    name: str | None = None,
    description: str | None = None,
    timeout: float | None = None,
) -> Tool | Callable[[Fn], Tool]:
    """Make a :class:`Tool` from a typed function: ``@tool``, ``@tool(name=...)`` or ``tool(fn)``.

    The schema comes from the annotations and defaults (pydantic ``Field``/``Annotated``
    descriptions work), the description from the docstring's summary, and each argument's
    description from a Google-style ``Args:`` section or Sphinx ``:param x:`` lines.
    """
    if fn is None:
        return lambda f: _build(f, name, description, timeout)
    return _build(fn, name, description, timeout)


def _build(fn: Fn, name: str | None, description: str | None, timeout: float | None) -> Tool:
    if not callable(fn) or isinstance(fn, Tool):
        raise ToolSchemaError(f"cannot make a tool from {fn!r}: pass a plain function")
    name = name or getattr(fn, "__name__", None)
    if not name or name == "<lambda>":
        raise ToolSchemaError("cannot make a tool from a lambda or unnamed callable; use def")
    where = f"tool '{name}'"
    target = fn.func if isinstance(fn, functools.partial) else fn
    if not (inspect.isfunction(target) or inspect.ismethod(target)):
        target = type(target).__call__  # a callable object: read its __call__'s annotations
    try:
        signature = inspect.signature(fn)
        hints = inspect.get_annotations(target, eval_str=True)
    except Exception as exc:
        raise ToolSchemaError(f"{where}: cannot read its signature or types ({exc})") from None
    fields: dict[str, Any] = {}
    for i, (pname, param) in enumerate(signature.parameters.items()):
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            star = "*" if param.kind is param.VAR_POSITIONAL else "**"
            raise ToolSchemaError(
                f"{where}: {star}{pname} is not supported; declare each argument with a type"
            )
        if param.kind is param.POSITIONAL_ONLY:
            raise ToolSchemaError(
                f"{where}: parameter '{pname}' is positional-only; remove the '/'"
            )
        if pname not in hints:
            raise ToolSchemaError(
                f"{where}: parameter '{pname}' needs a type annotation, e.g. '{pname}: str'"
            )
        default = ... if param.default is param.empty else param.default
        # Internal field names with the real name as alias: any name (json, _x, model_config) works.
        fields[f"p{i}"] = (Annotated[hints[pname], Field(alias=pname)], default)
    try:
        config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)
        model = create_model(f"{name}_arguments", __config__=config, **fields)
        schema = model.model_json_schema()
    except Exception as exc:
        for pname in signature.parameters:  # name the parameter whose type has no schema
            with contextlib.suppress(Exception):
                TypeAdapter(hints[pname]).json_schema()
                continue
            kind = getattr(hints[pname], "__name__", repr(hints[pname]))
            raise ToolSchemaError(
                f"{where}: parameter '{pname}' has type {kind}, which has no JSON schema; use str, int, "
                "float, bool, list[...], dict[str, ...], Literal, Enum, a TypedDict or a pydantic model"
            ) from None
        raise ToolSchemaError(f"{where}: no JSON schema ({type(exc).__name__}: {exc})") from None
    summary, arg_docs = parse_docstring(inspect.getdoc(fn) or "")
    _strip_titles(schema)
    schema["additionalProperties"] = False
    props = schema.setdefault("properties", {})
    for pname, text in arg_docs.items():
        if pname in props and text and "description" not in props[pname]:
            props[pname]["description"] = text
    desc = summary if description is None else description.strip()
    return Tool(name=name, description=desc, parameters=schema, fn=fn, timeout=timeout, model=model)


def _strip_titles(schema: Any) -> None:
    """Drop pydantic's generated ``title`` keys from a schema and its sub-schemas (not from data)."""
    if not isinstance(schema, dict):
        return
    if isinstance(schema.get("title"), str):
        del schema["title"]
    for key, value in schema.items():
        if key in ("properties", "$defs", "patternProperties") and isinstance(value, dict):
            value = list(value.values())
        elif key in ("items", "additionalProperties", "not"):
            value = [value]
        elif key not in ("anyOf", "allOf", "oneOf", "prefixItems") or not isinstance(value, list):
            continue
        for sub in value:
            _strip_titles(sub)


_ARGS = r"args|arguments|parameters|params|keyword args|keyword arguments"
_ARGS_HEADER = re.compile(rf"^({_ARGS})\s*:\s*$", re.I)
_HEADER = re.compile(
    rf"^({_ARGS}|returns?|yields?|raises|examples?|notes?|attributes|see also)\s*:?$", re.I
)
_GOOGLE_ENTRY = re.compile(r"^(\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")
_SPHINX_PARAM = re.compile(
    r"^:(?:param|parameter|arg|argument|key|keyword)\s+(?:[^:]*\s)?(\w+)\s*:\s*(.*)$"
)


def parse_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """Split a docstring into its summary and ``{argument: description}``.

    Google-style ``Args:`` sections (with indented continuation lines) and Sphinx ``:param x:``
    fields are read; the summary is everything before the first section or field.
    """
    lines = inspect.cleandoc(doc).splitlines()
    end = len(lines)
    for i, line in enumerate(lines):
        s = line.strip()
        underlined = i + 1 < len(lines) and set(lines[i + 1].strip()) == {"-"}  # numpy style
        if s.startswith(":") or (_HEADER.match(s) and (s.endswith(":") or underlined)):
            end = i
            break
    args: dict[str, str] = {}
    current: str | None = None
    mode, base, entry = "", -1, -1  # mode: "" outside, "google" in Args:, "sphinx" in fields
    for line in lines:
        s, indent = line.strip(), len(line) - len(line.lstrip())
        if m := _SPHINX_PARAM.match(s):
            mode, current = "sphinx", m[1]
            args[current] = m[2].strip()
        elif _ARGS_HEADER.match(s):
            mode, current, base, entry = "google", None, indent, -1
        elif not s:
            continue
        elif mode == "sphinx" and not s.startswith(":") and current:
            args[current] = f"{args[current]} {s}".strip()
        elif mode == "google" and indent > base:
            m = _GOOGLE_ENTRY.match(s)
            if m and (entry < 0 or indent <= entry):
                current, entry = m[1], indent
                args[current] = m[2].strip()
            elif current:
                args[current] = f"{args[current]} {s}".strip()
        else:
            mode, current = "", None
    return "\n".join(lines[:end]).strip(), args


def as_tools(items: Iterable[Tool | Fn]) -> list[Tool]:
    """Tools from Tools and plain functions (wrapped with :func:`tool`); names must be unique."""
    out: list[Tool] = []
    for item in items:
        t = item if isinstance(item, Tool) else tool(item)
        if any(t.name == other.name for other in out):
            raise ToolSchemaError(f"two tools are named '{t.name}'; rename one: tool(fn, name=...)")
        out.append(t)
    return out

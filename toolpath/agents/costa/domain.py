"""A CoSTA* domain from plain typed functions, or from the same thing written as YAML/JSON.

A domain tool is a function ``fn(obj, **params) -> new_obj``: its first parameter takes the
working object, the rest come from the subtask's parameters (only those it declares, so tools
serving the same subtask type may take a subset). Its data types, which order the search, are
the names of the first parameter's and the return annotation's classes (``DataFrame``), or
what :func:`costa_tool` says. Each tool serves subtask types at a prior cost and quality::

    @costa_tool(serves={"clean": (0.01, 0.7)})
    def dropna(df: pd.DataFrame, column: str) -> pd.DataFrame: ...

    domain = ToolDomain([dropna, impute], subtasks={"clean": {"verifier": check_clean}})

A subtask type has a parameter schema (by default the parameters of the first tool serving
it), a verifier and ``pass_at``. A verifier is any callable
``verifier(kind, before, after, params)`` that returns a score in [0, 1] (passing at
``pass_at``), a bool, or a :class:`Verdict`; :class:`~toolpath.agents.costa.verifiers.LLMVerifier`
and the image domain's ``VLMVerifier`` have the same signature. A subtask type without one
passes every step whose tool runs and returns its declared type.

:meth:`ToolDomain.from_spec` reads the declarative form (see ``docs/costa.md``)::

    name: tabular
    start_types: [DataSource]
    subtasks:
      clean: {params: {type: object, properties: {...}}, verifier: pkg.mod:check_clean}
    tools:
      - {function: pkg.mod:dropna, serves: {clean: [0.01, 0.7]}}
"""

from __future__ import annotations

import importlib
import inspect
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from toolpath.agents.costa.search import ANY, ToolInfo
from toolpath.errors import ConfigError


class Verdict(NamedTuple):
    """A verifier's answer: a score in [0, 1], whether the step passes, and why not."""

    score: float
    ok: bool
    why: str = ""


Verifier = Callable[[str, Any, Any, Mapping[str, Any]], "float | bool | Verdict | tuple[Any, ...]"]


def verdict(result: Any, pass_at: float = 0.5) -> Verdict:
    """A verifier's return value (score, bool, ``(score, ok)`` or :class:`Verdict`) as a
    :class:`Verdict`; a bare score passes at ``pass_at``."""
    if isinstance(result, bool):
        return Verdict(float(result), result)
    if isinstance(result, tuple):
        score, ok, *why = result
        return Verdict(float(score), bool(ok), str(why[0]) if why else "")
    score = float(result)
    return Verdict(score, score >= pass_at)


@dataclass
class DomainTool:
    """One tool of a :class:`ToolDomain`: its function, the subtask types it serves at a prior
    ``(cost, quality)``, its data types and the tools that must run before it."""

    name: str
    fn: Callable[..., Any]
    serves: dict[str, tuple[float, float]]
    input_type: str
    output_type: str
    requires: tuple[str, ...] = ()
    accepts: frozenset[str] | None = None  # parameter names; None: any (**kwargs)

    def __call__(self, obj: Any, params: Mapping[str, Any]) -> Any:
        if self.accepts is not None:
            params = {k: v for k, v in params.items() if k in self.accepts}
        return self.fn(obj, **params)


def costa_tool(
    fn: Callable[..., Any] | None = None,
    *,
    serves: Mapping[str, Sequence[float]],
    input_type: str | None = None,
    output_type: str | None = None,
    requires: Sequence[str] = (),
    name: str | None = None,
) -> Any:
    """Mark a function (or a toolpath ``Tool``) as a CoSTA* tool: the subtask types it
    ``serves`` with their prior ``(cost, quality)``, and optionally its data types (else from
    the annotations), the tools it ``requires`` and its ``name``. Usable bare or as a call."""

    def mark(f: Callable[..., Any]) -> Callable[..., Any]:
        f.__costa__ = {  # type: ignore[attr-defined]
            "serves": {k: tuple(v) for k, v in serves.items()},
            "input_type": input_type,
            "output_type": output_type,
            "requires": tuple(requires),
            "name": name,
        }
        return f

    return mark if fn is None else mark(fn)


def domain_tool(item: Any, **given: Any) -> DomainTool:
    """A :class:`DomainTool` from a function or ``Tool`` marked by :func:`costa_tool`, or from
    one with the same fields passed as ``given`` (the spec form)."""
    meta = {**getattr(item, "__costa__", {}), **{k: v for k, v in given.items() if v is not None}}
    fn = getattr(item, "fn", item)  # a toolpath Tool wraps its function
    name = meta.get("name") or getattr(item, "name", None) or getattr(fn, "__name__", "")
    if not callable(fn) or not name:
        raise ConfigError(f"a CoSTA* tool must be a named function, got {item!r}")
    if not meta.get("serves"):
        raise ConfigError(
            f"tool {name!r}: say which subtask types it serves, with a prior (cost, quality): "
            "@costa_tool(serves={'kind': (cost, quality)})"
        )
    serves: dict[str, tuple[float, float]] = {}
    for kind, prior in meta["serves"].items():
        try:
            cost, quality = (float(x) for x in prior)
        except (TypeError, ValueError):
            raise ConfigError(
                f"tool {name!r}: the prior for {kind!r} must be [cost, quality], got {prior!r}"
            ) from None
        if cost < 0 or not 0 <= quality <= 1:
            raise ConfigError(f"tool {name!r}: prior {prior!r} needs cost >= 0, 0 <= quality <= 1")
        serves[str(kind)] = (cost, quality)
    first, ret, accepts = _signature(fn, name)
    return DomainTool(
        name=str(name),
        fn=fn,
        serves=serves,
        input_type=meta.get("input_type") or first,
        output_type=meta.get("output_type") or ret,
        requires=tuple(meta.get("requires") or ()),
        accepts=accepts,
    )


def _signature(fn: Callable[..., Any], name: str) -> tuple[str, str, frozenset[str] | None]:
    """The type names of ``fn``'s first parameter and return value (:data:`ANY` where not
    annotated), and its other parameters' names (None when it takes ``**kwargs``)."""
    try:
        sig = inspect.signature(fn, eval_str=True)
    except (TypeError, ValueError, NameError) as exc:
        raise ConfigError(f"tool {name!r}: cannot read its signature ({exc})") from None
    params = list(sig.parameters.values())
    if not params or params[0].kind in (params[0].VAR_KEYWORD, params[0].KEYWORD_ONLY):
        raise ConfigError(f"tool {name!r}: its first parameter must take the working object")
    rest = params[1:]
    accepts = (
        None if any(p.kind is p.VAR_KEYWORD for p in rest) else frozenset(p.name for p in rest)
    )
    return _type_name(params[0].annotation), _type_name(sig.return_annotation), accepts


def _type_name(annotation: Any) -> str:
    if annotation is inspect.Parameter.empty or annotation is Any:
        return ANY
    return str(getattr(annotation, "__name__", annotation))


@dataclass
class SubtaskType:
    """A subtask type: its parameters' JSON schema, its verifier and the score it passes at."""

    params: dict[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})
    verifier: Verifier | None = None
    pass_at: float = 0.5
    description: str = ""


class ToolDomain:
    """A CoSTA* domain (the :class:`~toolpath.agents.costa.agent.Domain` protocol) from typed
    functions: see the module docstring. ``start_types`` are the types the input may have
    (default: the input types of the tools serving the subtask types that no tool's output
    feeds); ``example`` is a worked request and tree for the model; ``describe`` turns a
    working object into short text for LLM verifiers; ``load_input``/``save_output`` read a
    path into a working object and write one out, for the CLI; ``prepare(kind, params, obj)``
    fits a step's parameters to the working object before its tool and verifier run."""

    def __init__(
        self,
        tools: Sequence[Any],
        subtasks: Mapping[str, SubtaskType | Mapping[str, Any]] | None = None,
        *,
        start_types: Sequence[str] | None = None,
        example: str = "",
        name: str = "custom",
        describe: Callable[[Any], str] | None = None,
        load_input: Callable[[str], Any] | None = None,
        save_output: Callable[[Any, str], Any] | None = None,
        prepare: Callable[[str, Mapping[str, Any], Any], dict[str, Any]] | None = None,
    ) -> None:
        self.name = name
        self.funcs = {t.name: t for t in map(_as_domain_tool, tools)}
        if len(self.funcs) != len(tools):
            raise ConfigError("two CoSTA* tools share a name")
        self.tools: Sequence[ToolInfo] = [
            ToolInfo(t.name, frozenset(t.serves), t.input_type, t.output_type, t.requires)
            for t in self.funcs.values()
        ]
        given = {k: _subtask_type(k, v) for k, v in (subtasks or {}).items()}
        kinds = sorted({k for t in self.funcs.values() for k in t.serves} | set(given))
        self.subtasks = {k: given.get(k) or self._derived(k) for k in kinds}
        for kind in kinds:
            if not any(kind in t.serves for t in self.funcs.values()):
                raise ConfigError(f"no tool serves subtask type {kind!r}")
        self.subtask_schemas: Mapping[str, Mapping[str, Any]] = {
            k: v.params for k, v in self.subtasks.items()
        }
        outputs = {t.output_type for t in self.funcs.values()}
        self.start_types: Sequence[str] = tuple(
            start_types or sorted({t.input_type for t in self.funcs.values()} - outputs) or [ANY]
        )
        self.example = example or _example(kinds)
        self.describe = describe or describe_object
        self.load_input, self.save_output = load_input, save_output
        if prepare is not None:
            self.prepare = prepare

    def _derived(self, kind: str) -> SubtaskType:
        """A subtask type with the parameter schema of the first tool serving it."""
        tool = next(t for t in self.funcs.values() if kind in t.serves)
        return SubtaskType(params=_params_schema(tool.fn, tool.name))

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any] | str | Path) -> ToolDomain:
        """A domain from its declarative form: a mapping, or a YAML/JSON file's path."""
        if not isinstance(spec, Mapping):
            import yaml

            path = Path(spec)
            try:
                spec = yaml.safe_load(path.read_text(encoding="utf-8"))
            except (OSError, yaml.YAMLError) as exc:
                raise ConfigError(f"cannot read the CoSTA* domain spec {path}: {exc}") from None
            if not isinstance(spec, Mapping):
                raise ConfigError(f"{path}: a domain spec is a mapping with tools and subtasks")
        entries = spec.get("tools") or []
        if not isinstance(entries, list) or not all(isinstance(e, Mapping) for e in entries):
            raise ConfigError("a domain spec's tools must be a list of mappings")
        tools = [
            domain_tool(
                load_object(e.get("function"), "function"),
                serves=e.get("serves"),
                input_type=e.get("input_type"),
                output_type=e.get("output_type"),
                requires=e.get("requires"),
                name=e.get("name"),
            )
            for e in entries
        ]
        subtasks = {
            str(k): {**v, "verifier": load_object(v["verifier"], "verifier")}
            if isinstance(v, Mapping) and v.get("verifier")
            else v
            for k, v in (spec.get("subtasks") or {}).items()
        }
        hooks = {
            k: load_object(spec[k], k)
            for k in ("describe", "load_input", "save_output", "prepare")
            if k in spec
        }
        return cls(
            tools,
            subtasks,
            start_types=spec.get("start_types"),
            example=str(spec.get("example") or ""),
            name=str(spec.get("name") or "custom"),
            **hooks,
        )

    def priors(self) -> dict[tuple[str, str], tuple[float, float]]:
        return {(t.name, k): p for t in self.funcs.values() for k, p in t.serves.items()}

    def complete_tree(self, subtasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Each subtask with string ids and parents and its parameters checked: a required
        parameter missing, or a value outside its ``enum``, is a ``ValueError`` (the model gets
        one repair)."""
        out = []
        for s in subtasks:
            s = {
                **s,
                "id": str(s.get("id")),
                "params": dict(s.get("params") or {}),
                "parents": [str(p) for p in s.get("parents") or []],
            }
            sub = self.subtasks.get(str(s.get("type")))
            if sub is not None:
                missing = [p for p in sub.params.get("required", []) if p not in s["params"]]
                if missing:
                    raise ValueError(
                        f"subtask {s['id']} ({s['type']}) lacks parameter(s) {', '.join(missing)}"
                    )
                for name, value in s["params"].items():
                    allowed = (sub.params.get("properties") or {}).get(name, {}).get("enum")
                    if allowed is not None and value not in allowed:
                        raise ValueError(
                            f"subtask {s['id']} ({s['type']}): {name} must be one of "
                            f"{', '.join(map(str, allowed))}, not {value!r}"
                        )
            out.append(s)
        return out

    def run(self, tool: str, kind: str, params: Mapping[str, Any], context: Any) -> Any:
        return self.funcs[tool](context, params)

    def verify(self, kind: str, before: Any, after: Any, params: Mapping[str, Any]) -> Verdict:
        sub = self.subtasks[kind]
        if sub.verifier is None:
            return Verdict(1.0, True)
        return verdict(sub.verifier(kind, before, after, params), sub.pass_at)


def _as_domain_tool(item: Any) -> DomainTool:
    return item if isinstance(item, DomainTool) else domain_tool(item)


def _subtask_type(kind: str, value: SubtaskType | Mapping[str, Any] | None) -> SubtaskType:
    if isinstance(value, SubtaskType):
        return value
    value = dict(value or {})
    unknown = set(value) - {"params", "verifier", "pass_at", "description"}
    if unknown:
        raise ConfigError(f"subtask type {kind!r}: unknown key(s) {', '.join(sorted(unknown))}")
    params = value.get("params") or {"type": "object", "properties": {}}
    if not isinstance(params, Mapping) or params.get("type", "object") != "object":
        raise ConfigError(f"subtask type {kind!r}: params must be a JSON schema of an object")
    return SubtaskType(
        params=dict(params),
        verifier=value.get("verifier"),
        pass_at=float(value.get("pass_at", 0.5)),
        description=str(value.get("description", "")),
    )


def _params_schema(fn: Callable[..., Any], name: str) -> dict[str, Any]:
    """The JSON schema of ``fn``'s parameters after the working object (pydantic's)."""
    from pydantic import create_model

    sig = inspect.signature(fn, eval_str=True)
    fields = {
        p.name: (
            Any if p.annotation is p.empty else p.annotation,
            ... if p.default is p.empty else p.default,
        )
        for p in list(sig.parameters.values())[1:]
        if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    }
    try:
        schema = create_model(f"{name}_params", **fields).model_json_schema()  # type: ignore[call-overload]
    except Exception as exc:
        raise ConfigError(
            f"tool {name!r}: its parameters have no JSON schema ({exc}); give the subtask "
            "type's params schema explicitly"
        ) from None
    schema.pop("title", None)
    for prop in schema.get("properties", {}).values():
        prop.pop("title", None)
    return schema


def load_object(ref: Any, what: str) -> Any:
    """``module:attribute`` imported (a callable passes through as it is)."""
    if callable(ref):
        return ref
    if not isinstance(ref, str) or ":" not in ref:
        raise ConfigError(f"{what} must be 'module:name', got {ref!r}")
    module, _, attr = ref.partition(":")
    try:
        obj: Any = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"cannot load {what} {ref!r}: {exc}") from None
    return obj


def _example(kinds: Sequence[str]) -> str:
    steps = [
        {"id": f"s{i + 1}", "type": k, "params": {}, "parents": [f"s{i}"] if i else []}
        for i, k in enumerate(kinds[:2])
    ]
    return json.dumps({"subtasks": steps})


def describe_object(obj: Any, limit: int = 1200) -> str:
    """Short text for a working object: a table's shape and first rows, else its repr."""
    if hasattr(obj, "shape") and hasattr(obj, "head") and hasattr(obj, "columns"):
        text = f"table {obj.shape[0]} rows x {obj.shape[1]} columns\n{obj.head(8).to_string()}"
    else:
        text = repr(obj)
    return text if len(text) <= limit else text[: limit - 3] + "..."

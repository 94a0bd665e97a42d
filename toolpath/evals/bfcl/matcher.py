"""BFCL's AST checking rules for Python function calls, written for toolpath.

:func:`match` judges a model's calls (``[{"func.name": {args}}]``) against an item's ground
truth (``[{"func.name": {"param": [allowed values]}}]``, where ``""`` among the allowed values
means the parameter may be left out), as BFCL's checker does for Python:

* ``irrelevance``: right iff there is no call;
* ``simple`` and ``multiple``: exactly one call, checked against the one expected call;
* ``parallel`` and ``parallel_multiple``: as many calls as expected, in any order, each expected
  call matched to a different model call (a full bipartite matching, not a greedy one).

One call is right when its name is the expected one, it has every required parameter, no
parameter outside the function doc or the ground truth, each value has the doc's type (an int
passes for a float; a value of the ground truth's own type passes too: BFCL's leniency for
variables) and is among the allowed values (strings compared after :func:`normalize`, lists
element by element, dicts key by key), and every expected parameter it leaves out allows
``""``. Any model output, however malformed, gives a :class:`Match`; nothing raises.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from toolpath.errors import ConfigError

__all__ = ["MODES", "Match", "match", "normalize"]


@dataclass(frozen=True)
class Match:
    """The verdict on one item: ``ok``, else why not (``error``) and what went wrong (``kind``:
    wrong_count, wrong_name, missing_required, unexpected_param, type, value,
    missing_optional, no_match, malformed, or bad_data for a ground truth or function doc
    that cannot be used)."""

    ok: bool
    error: str | None = None
    kind: str | None = None


OK = Match(True)

MODES = {
    "simple": "simple",
    "simple_python": "simple",
    "multiple": "multiple",
    "parallel": "parallel",
    "parallel_multiple": "parallel",
    "irrelevance": "irrelevance",
}
"""How each category (our name or BFCL's file stem) is judged."""

_TYPES: dict[str, type] = {
    "string": str,
    "integer": int,
    "float": float,
    "boolean": bool,
    "array": list,
    "tuple": list,
    "dict": dict,
    "any": str,  # as in BFCL: an "any" parameter is judged as a string
}
_STRIPPED = re.compile(r"[ ,./\-_*^]")


def normalize(text: str) -> str:
    """BFCL's string normalisation: drop spaces and ``,./-_*^``, lowercase, ``'`` → ``"``."""
    return _STRIPPED.sub("", text).lower().replace("'", '"')


def _show(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _omittable(value: Any) -> bool:
    return isinstance(value, str) and value == ""


def _same(a: Any, b: Any) -> bool:
    """Equality that keeps booleans apart from numbers (Python has ``True == 1 == 1.0``) and
    otherwise needs equal types, except that ints and floats compare by value."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return type(a) is type(b) and bool(a == b)


def _among(value: Any, allowed: list[Any]) -> bool:
    return any(_same(value, option) for option in allowed)


def _answer_type(allowed: list[Any]) -> type | None:
    """The type of the first allowed value that is not ``""`` (None if there is none)."""
    return next((type(a) for a in allowed if not _omittable(a)), None)


def _norm(value: Any) -> Any:
    return normalize(value) if isinstance(value, str) else value


# -- types --------------------------------------------------------------------------------


def _items_typed(value: Any, allowed: list[Any], item_type: type) -> bool:
    """BFCL's one-level check of a list's items: for some allowed option, every item has
    ``item_type`` or the type of that option's items. An option that is not a list (such as
    ``""``) gives nothing to check against and passes, as in BFCL; the values decide then."""
    for option in allowed:
        if not isinstance(option, list):
            return True
        own = _answer_type(option)
        if all(type(v) is item_type or (own is not None and type(v) is own) for v in value):
            return True
    return False


def _type_error(
    value: Any, allowed: list[Any], doc_type: str, expected: type, item_type: type | None
) -> tuple[str | None, bool]:
    """``(error or None, judged_as_variable)``. A ground truth whose type differs from the
    doc's marks a variable: its values are then compared as they are, with no normalising."""
    own = _answer_type(allowed)
    variable = own is not None and own is not expected
    if type(value) is expected:
        if item_type is None or _items_typed(value, allowed, item_type):
            return None, variable
        return f"should be {doc_type} of {item_type.__name__}, got {_show(value)}", variable
    if own is not None and type(value) is own:
        return None, True
    return f"should be {doc_type}, got {type(value).__name__} {_show(value)}", False


# -- values -------------------------------------------------------------------------------


def _dict_error(value: Any, option: Any) -> str | None:
    """Why dict ``value`` does not fit the allowed dict ``option`` (None if it does)."""
    if not isinstance(value, dict):
        return f"{_show(value)} is not a dict"
    if not isinstance(option, dict):
        return f"the allowed value {_show(option)} is not a dict"
    for key, item in value.items():
        if key not in option:
            return f"unexpected key {_show(key)}"
        allowed = option[key] if isinstance(option[key], list) else [option[key]]
        if not _among(_norm(item), [_norm(a) for a in allowed]):
            return f"key {_show(key)} is {_show(item)}, expected one of {_show(allowed)}"
    for key, allowed in option.items():
        if key not in value and not (isinstance(allowed, list) and any(map(_omittable, allowed))):
            return f"missing key {_show(key)}"
    return None


def _value_error(
    value: Any, allowed: list[Any], expected: type, item_type: type | None, variable: bool
) -> str | None:
    """Why ``value`` is not among the ``allowed`` ones (None if it is)."""
    if not variable and expected is dict:
        errors = [_dict_error(value, option) for option in allowed if not _omittable(option)]
        if any(error is None for error in errors):
            return None
        return errors[0] if errors else f"{_show(value)}: no dict is allowed"
    # BFCL reads "" as an empty list for list parameters: passing [] is like leaving it out
    options = [[] if _omittable(o) else o for o in allowed if _omittable(o) or isinstance(o, list)]
    if not variable and expected is list and item_type is dict:
        errors = []
        for option in options:
            if len(option) != len(value):
                errors.append(f"{len(value)} dicts, expected {len(option)}")
                continue
            found = [_dict_error(v, o) for v, o in zip(value, option, strict=True)]
            errors.append(next((e for e in found if e is not None), ""))
            if not errors[-1]:
                return None
        return errors[0] if errors else f"{_show(value)}: no list of dicts is allowed"
    if not variable and expected is str:
        ok = normalize(value) in {normalize(a) for a in allowed if isinstance(a, str)}
    elif not variable and expected is list:
        ok = any(_same([_norm(v) for v in value], [_norm(v) for v in o]) for o in options)
    else:
        ok = _among(value, allowed)
    return None if ok else f"is {_show(value)}, expected one of {_show(allowed, 160)}"


# -- calls --------------------------------------------------------------------------------


def _check_param(param: str, value: Any, spec: Any, allowed: list[Any]) -> Match:
    doc_type = spec.get("type") if isinstance(spec, dict) else None
    expected = _TYPES.get(doc_type) if isinstance(doc_type, str) else None
    if doc_type is None or expected is None:
        return Match(False, f"the doc gives {param!r} an unknown type {doc_type!r}", "bad_data")
    items = spec.get("items") if doc_type in ("array", "tuple") else None
    item_doc_type = items.get("type") if isinstance(items, dict) else None
    item_type = _TYPES.get(item_doc_type) if isinstance(item_doc_type, str) else None
    if doc_type == "tuple" and type(value) is tuple:
        value = list(value)
    if doc_type == "float" and type(value) is int:
        value = float(value)  # Python's own widening: an int passes for a float
    error, variable = _type_error(value, allowed, doc_type, expected, item_type)
    if error is not None:
        return Match(False, f"{param!r} {error}", "type")
    error = _value_error(value, allowed, expected, item_type, variable)
    if error is not None:
        return Match(False, f"{param!r} {error}", "value")
    return OK


def _check_call(doc: Any, call: Any, expected: Any) -> Match:
    """One model call against one expected call, whose function doc is ``doc``."""
    if not (isinstance(expected, dict) and len(expected) == 1):
        return Match(False, f"bad ground truth entry {_show(expected)}", "bad_data")
    name, answer = next(iter(expected.items()))
    if not isinstance(answer, dict) or not all(isinstance(a, list) for a in answer.values()):
        return Match(False, f"bad ground truth for {name!r}: {_show(answer)}", "bad_data")
    if not isinstance(doc, dict) or not isinstance(doc.get("parameters"), dict):
        return Match(False, f"no usable function doc for {name!r}", "bad_data")
    if not (isinstance(call, dict) and len(call) == 1):
        return Match(False, f"a call should be {{name: arguments}}, got {_show(call)}", "malformed")
    called, args = next(iter(call.items()))
    if called != name:
        return Match(False, f"called {_show(called)}, expected {name!r}", "wrong_name")
    if not isinstance(args, dict):
        return Match(False, f"{name}: arguments {_show(args)} are not a dict", "malformed")
    props = doc["parameters"].get("properties")
    props = props if isinstance(props, dict) else {}
    required = doc["parameters"].get("required")
    for param in required if isinstance(required, list) else []:
        if param not in args:
            return Match(False, f"{name}: missing required {param!r}", "missing_required")
    for param, value in args.items():
        if param not in props or param not in answer:
            return Match(False, f"{name}: unexpected {_show(param)}", "unexpected_param")
        result = _check_param(param, value, props[param], answer[param])
        if not result.ok:
            return Match(False, f"{name}: {result.error}", result.kind)
    for param, allowed in answer.items():
        if param not in args and not any(map(_omittable, allowed)):
            return Match(False, f"{name}: {param!r} left out", "missing_optional")
    return OK


def _doc(functions: list[dict[str, Any]], expected: Any) -> Any:
    """The function doc named by the expected call ``{name: ...}`` (None if there is none)."""
    name = next(iter(expected), None) if isinstance(expected, dict) else None
    docs = functions if isinstance(functions, list) else []
    return next((d for d in docs if isinstance(d, dict) and d.get("name") == name), None)


def _match_all(functions: list[dict[str, Any]], calls: list[Any], answers: list[Any]) -> Match:
    """Order-free: a perfect matching of expected calls to model calls (Kuhn's algorithm)."""
    if len(calls) != len(answers):
        return Match(False, f"{len(calls)} calls, expected {len(answers)}", "wrong_count")
    fits = [[_check_call(_doc(functions, a), c, a) for c in calls] for a in answers]
    owner: list[int | None] = [None] * len(calls)  # model call -> expected call

    def place(i: int, seen: set[int]) -> bool:
        for j, verdict in enumerate(fits[i]):
            if verdict.ok and j not in seen:
                seen.add(j)
                held = owner[j]
                if held is None or place(held, seen):
                    owner[j] = i
                    return True
        return False

    for i, expected in enumerate(answers):
        if not place(i, set()):
            closest = [v for v in fits[i] if v.kind != "wrong_name"] or fits[i]
            why = f" (closest: {closest[0].error})" if closest else ""
            return Match(
                False, f"no call matches expected call {i}: {_show(expected)}{why}", "no_match"
            )
    return OK


def match(
    functions: list[dict[str, Any]],
    calls: list[dict[str, dict[str, Any]]],
    answers: list[dict[str, Any]],
    category: str,
) -> Match:
    """Judge the model's ``calls`` on one BFCL item of ``category`` (a key of :data:`MODES`).

    ``functions`` are the item's function docs, ``answers`` its ground truth (``[]`` for
    irrelevance). Raises :class:`ConfigError` only for an unknown category.
    """
    mode = MODES.get(category)
    if mode is None:
        raise ConfigError(f"unknown BFCL category {category!r}; choose one of {', '.join(MODES)}")
    if not isinstance(calls, list):
        return Match(False, f"calls should be a list, got {type(calls).__name__}", "malformed")
    if mode == "irrelevance":
        return (
            OK if not calls else Match(False, f"{len(calls)} calls, expected none", "wrong_count")
        )
    if not isinstance(answers, list):
        return Match(False, "the ground truth is not a list", "bad_data")
    if mode == "parallel":
        return _match_all(functions, calls, answers)
    if len(calls) != 1:
        return Match(False, f"{len(calls)} calls, expected 1", "wrong_count")
    if len(answers) != 1:
        return Match(False, f"{len(answers)} expected calls in the ground truth, not 1", "bad_data")
    return _check_call(_doc(functions, answers[0]), calls[0], answers[0])

"""BFCL's AST rules (toolpath.evals.bfcl.matcher), one hand-made case per rule."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from toolpath.errors import ConfigError
from toolpath.evals.bfcl.matcher import Match, match, normalize


def doc(name: str, required: list[str] | None = None, **params: Any) -> dict[str, Any]:
    """A BFCL function doc; each keyword is a parameter's type or its full schema."""
    props = {k: v if isinstance(v, dict) else {"type": v} for k, v in params.items()}
    return {
        "name": name,
        "description": f"The {name} function.",
        "parameters": {"type": "dict", "properties": props, "required": required or []},
    }


def simple(fn: dict[str, Any], answer: dict[str, list[Any]], args: Any) -> Match:
    """One simple item: ``fn`` is offered, ``answer`` expected, ``fn(**args)`` called."""
    return match([fn], [{fn["name"]: args}], [{fn["name"]: answer}], "simple")


WEATHER = doc("weather.get", ["city"], city="string", unit="string")
WEATHER_GT = {"city": ["New York, NY", "NYC"], "unit": ["celsius", ""]}


def test_right_and_wrong_name() -> None:
    assert simple(WEATHER, WEATHER_GT, {"city": "NYC"}) == Match(True)
    got = match(
        [WEATHER], [{"weather_get": {"city": "NYC"}}], [{"weather.get": WEATHER_GT}], "simple"
    )
    assert (got.ok, got.kind) == (False, "wrong_name")
    assert "weather_get" in (got.error or "")


def test_missing_required_and_unexpected_arguments() -> None:
    assert simple(WEATHER, WEATHER_GT, {"unit": "celsius"}).kind == "missing_required"
    assert simple(WEATHER, WEATHER_GT, {"city": "NYC", "days": 3}).kind == "unexpected_param"
    # in the doc but not in the ground truth: unexpected too
    fn = doc("weather.get", ["city"], city="string", unit="string", lang="string")
    assert simple(fn, WEATHER_GT, {"city": "NYC", "lang": "en"}).kind == "unexpected_param"


def test_optional_parameters() -> None:
    assert simple(WEATHER, WEATHER_GT, {"city": "NYC"}).ok  # unit allows ""
    assert simple(WEATHER, WEATHER_GT, {"city": "NYC", "unit": "Celsius"}).ok
    assert simple(WEATHER, WEATHER_GT, {"city": "NYC", "unit": "kelvin"}).kind == "value"
    must = {"city": ["NYC"], "unit": ["celsius"]}  # not required by the doc, but expected
    got = simple(WEATHER, must, {"city": "NYC"})
    assert (got.ok, got.kind) == (False, "missing_optional")


def test_string_normalisation() -> None:
    assert normalize("New York, NY") == normalize("new york ny") == "newyorkny"
    assert normalize("It's 3.5-4/5_*^") == 'it"s3545'
    assert simple(WEATHER, WEATHER_GT, {"city": "new york ny"}).ok
    assert simple(WEATHER, WEATHER_GT, {"city": "NEW-YORK_NY."}).ok
    assert simple(WEATHER, WEATHER_GT, {"city": "New York City"}).kind == "value"
    quoted = {"city": ["'Paris'"]}
    assert simple(WEATHER, quoted, {"city": '"paris"'}).ok
    assert not simple(WEATHER, WEATHER_GT, {"city": "New\tYork, NY"}).ok  # only spaces go


def test_numbers_and_booleans() -> None:
    fn = doc("f", ["x", "n", "flag"], x="float", n="integer", flag="boolean")
    gt = {"x": [2.0], "n": [3], "flag": [True]}
    assert simple(fn, gt, {"x": 2, "n": 3, "flag": True}).ok  # an int passes for a float
    assert (
        simple(fn, gt, {"x": 2.0, "n": 3.0, "flag": True}).kind == "type"
    )  # not a float for an int
    assert simple(fn, gt, {"x": 2.0, "n": True, "flag": True}).kind == "type"  # nor a bool
    assert simple(fn, {**gt, "n": [1]}, {"x": 2.0, "n": True, "flag": True}).kind == "type"
    assert simple(fn, gt, {"x": 2.0, "n": 3, "flag": 1}).kind == "type"  # 1 is not True
    assert simple(fn, gt, {"x": True, "n": 3, "flag": True}).kind == "type"
    assert simple(fn, gt, {"x": "2.0", "n": 3, "flag": True}).kind == "type"
    assert simple(fn, gt, {"x": 2.5, "n": 3, "flag": True}).kind == "value"
    assert simple(fn, gt, {"x": 2.0, "n": 3, "flag": False}).kind == "value"
    # a float parameter whose ground truth is an int still takes 2 and 2.0
    assert simple(fn, {**gt, "x": [2]}, {"x": 2, "n": 3, "flag": True}).ok
    assert simple(fn, {**gt, "x": [2]}, {"x": 2.0, "n": 3, "flag": True}).ok


def test_a_ground_truth_of_another_type_is_a_variable() -> None:
    fn = doc("train", ["data"], data="integer")
    gt = {"data": ["my_data"]}  # BFCL: a variable name where the doc says integer
    assert simple(fn, gt, {"data": "my_data"}).ok
    assert simple(fn, gt, {"data": "My Data"}).kind == "value"  # compared as is
    assert simple(fn, gt, {"data": 5}).kind == "value"
    assert simple(fn, gt, {"data": 5.0}).kind == "type"


def test_lists() -> None:
    fn = doc("g", ["names"], names={"type": "array", "items": {"type": "string"}})
    gt = {"names": [["New York", "Los Angeles"]]}
    assert simple(fn, gt, {"names": ["new york", "los-angeles"]}).ok
    assert simple(fn, gt, {"names": ["Los Angeles", "New York"]}).kind == "value"  # order counts
    assert simple(fn, gt, {"names": ["New York"]}).kind == "value"
    assert simple(fn, gt, {"names": "New York, Los Angeles"}).kind == "type"
    assert simple(fn, gt, {"names": ["New York", 3]}).kind == "type"  # the items' type

    nums = doc("h", ["xs"], xs={"type": "array", "items": {"type": "float"}})
    assert simple(nums, {"xs": [[1.5, 2.0]]}, {"xs": [1.5, 2.0]}).ok
    assert simple(nums, {"xs": [[1.5, 2.0]]}, {"xs": [1.5, "2.0"]}).kind == "type"
    flags = doc("b", ["fs"], fs={"type": "array", "items": {"type": "boolean"}})
    assert simple(flags, {"fs": [[True, False]]}, {"fs": [True, False]}).ok
    assert simple(flags, {"fs": [[True, False]]}, {"fs": [1, 0]}).kind == "type"

    grid = doc("t", ["rows"], rows={"type": "array", "items": {"type": "array"}})
    assert simple(grid, {"rows": [[[1, 2], [3, 4]]]}, {"rows": [[1, 2], [3, 4]]}).ok
    assert simple(grid, {"rows": [[[1, 2], [3, 4]]]}, {"rows": [1, 2, 3, 4]}).kind == "type"

    optional = {"names": [["a"], ""]}  # "" reads as [] for lists, as in BFCL
    fn = doc("g", [], names={"type": "array", "items": {"type": "string"}})
    assert simple(fn, optional, {}).ok
    assert simple(fn, optional, {"names": []}).ok
    assert simple(fn, optional, {"names": ["A"]}).ok
    assert simple(fn, optional, {"names": ["b"]}).kind == "value"
    pair = doc("p", ["xy"], xy={"type": "tuple", "items": {"type": "integer"}})
    assert simple(pair, {"xy": [[3, 4]]}, {"xy": (3, 4)}).ok


def test_dicts() -> None:
    fn = doc("find", ["budget"], budget={"type": "dict", "properties": {}})
    gt = {"budget": [{"min": [300], "max": [400], "currency": ["US Dollar", ""]}]}
    assert simple(fn, gt, {"budget": {"min": 300, "max": 400}}).ok
    assert simple(fn, gt, {"budget": {"min": 300.0, "max": 400, "currency": "us dollar"}}).ok
    assert simple(fn, gt, {"budget": {"min": 300, "max": 401}}).kind == "value"
    assert simple(fn, gt, {"budget": {"min": 300}}).kind == "value"  # max may not be left out
    assert simple(fn, gt, {"budget": {"min": 300, "max": 400, "tax": 1}}).kind == "value"
    assert simple(fn, gt, {"budget": {"min": True, "max": 400}}).kind == "value"
    assert simple(fn, gt, {"budget": [300, 400]}).kind == "type"


def test_lists_of_dicts() -> None:
    item = {"type": "dict", "properties": {"field": {"type": "string"}}}
    fn = doc("query", ["where"], where={"type": "array", "items": item})
    gt = {"where": [[{"field": ["age"], "op": [">"]}, {"field": ["job"], "op": ["="]}]]}
    where = [{"field": "Age", "op": ">"}, {"field": "job", "op": "="}]
    assert simple(fn, gt, {"where": where}).ok
    assert simple(fn, gt, {"where": where[::-1]}).kind == "value"  # element by element
    assert simple(fn, gt, {"where": where[:1]}).kind == "value"
    assert simple(fn, gt, {"where": [*where[:1], {"field": "job", "op": "<"}]}).kind == "value"
    assert simple(fn, gt, {"where": [where[0], "job = x"]}).kind == "type"


SPOTIFY = doc("spotify.play", ["artist", "minutes"], artist="string", minutes="integer")


def play(artist: str, minutes: int) -> dict[str, dict[str, Any]]:
    return {"spotify.play": {"artist": artist, "minutes": minutes}}


def test_parallel_calls_match_in_any_order() -> None:
    answers = [
        {"spotify.play": {"artist": ["Taylor Swift"], "minutes": [20]}},
        {"spotify.play": {"artist": ["Maroon 5"], "minutes": [15]}},
    ]
    calls = [play("Taylor Swift", 20), play("Maroon 5", 15)]
    assert match([SPOTIFY], calls, answers, "parallel").ok
    assert match([SPOTIFY], calls[::-1], answers, "parallel").ok
    twice = [play("Taylor Swift", 20), play("Taylor Swift", 20)]  # one call, two expectations
    got = match([SPOTIFY], twice, answers, "parallel")
    assert (got.ok, got.kind) == (False, "no_match")
    assert "Maroon 5" in (got.error or "")
    assert match([SPOTIFY], calls[:1], answers, "parallel").kind == "wrong_count"
    assert match([SPOTIFY], [*calls, calls[0]], answers, "parallel").kind == "wrong_count"


def test_parallel_finds_a_matching_that_a_greedy_pass_misses() -> None:
    answers = [
        {"spotify.play": {"artist": ["Adele", "Muse"], "minutes": [10]}},  # fits both calls
        {"spotify.play": {"artist": ["Adele"], "minutes": [10]}},  # fits only the first
    ]
    calls = [play("Adele", 10), play("Muse", 10)]
    assert match([SPOTIFY], calls, answers, "parallel").ok
    assert match([SPOTIFY], calls, answers, "parallel_multiple").ok


def test_parallel_multiple_and_multiple() -> None:
    fns = [SPOTIFY, WEATHER]
    answers = [
        {"weather.get": {"city": ["Oslo"], "unit": [""]}},
        {"spotify.play": {"artist": ["Muse"], "minutes": [5]}},
    ]
    calls = [play("Muse", 5), {"weather.get": {"city": "oslo"}}]
    assert match(fns, calls, answers, "parallel_multiple").ok
    assert match(fns, [{"weather.get": {"city": "Oslo"}}], answers[:1], "multiple").ok
    got = match(fns, [play("Muse", 5)], answers[:1], "multiple")  # the other function
    assert got.kind == "wrong_name"
    assert match(fns, [], answers[:1], "multiple").kind == "wrong_count"


def test_simple_needs_exactly_one_call() -> None:
    gt = [{"weather.get": WEATHER_GT}]
    assert match([WEATHER], [], gt, "simple").kind == "wrong_count"
    two = [{"weather.get": {"city": "NYC"}}] * 2
    assert match([WEATHER], two, gt, "simple_python").kind == "wrong_count"


def test_irrelevance() -> None:
    assert match([WEATHER], [], [], "irrelevance") == Match(True)
    got = match([WEATHER], [{"weather.get": {"city": "NYC"}}], [], "irrelevance")
    assert (got.ok, got.kind) == (False, "wrong_count")


def test_unknown_category() -> None:
    with pytest.raises(ConfigError, match="live_simple"):
        match([WEATHER], [], [], "live_simple")


GARBAGE: list[Any] = [
    None,
    "weather.get(city='NYC')",
    3,
    {"weather.get": {"city": "NYC"}},
    [None],
    [1],
    ["weather.get"],
    [{}],
    [{"weather.get": {"city": "NYC"}, "spotify.play": {}}],
    [{"weather.get": None}],
    [{"weather.get": [["city", "NYC"]]}],
    [{"weather.get": "city=NYC"}],
    [{"weather.get": {"city": None}}],
    [{"weather.get": {"city": ["NYC"]}}],
    [{"weather.get": {"city": {"name": "NYC"}}}],
    [{"weather.get": {"city": "NYC", 7: 1}}],
    [{"weather.get": {"city": "NYC", "unit": float("nan")}}],
    [{7: {"city": "NYC"}}],
    [{("weather", "get"): {"city": "NYC"}}],
]


@pytest.mark.parametrize("category", ["simple", "multiple", "parallel", "irrelevance"])
@pytest.mark.parametrize("calls", GARBAGE)
def test_garbage_never_raises(calls: Any, category: str) -> None:
    answers = [] if category == "irrelevance" else [{"weather.get": WEATHER_GT}]
    got = match([WEATHER], calls, answers, category)
    assert isinstance(got, Match)
    assert not got.ok and got.error and got.kind


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)
_FNS = [
    WEATHER,
    SPOTIFY,
    doc(
        "q",
        ["w"],
        w={"type": "array", "items": {"type": "dict"}},
        d="dict",
        xs="tuple",
        b="boolean",
    ),
]
_ANSWERS = [
    {"weather.get": WEATHER_GT},
    {"spotify.play": {"artist": ["Muse"], "minutes": [5, ""]}},
    {"q": {"w": [[{"a": [1]}], ""], "d": [{"k": ["v", ""]}], "xs": [[1, 2]], "b": [False]}},
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    calls=st.lists(
        st.dictionaries(
            st.sampled_from(["weather.get", "spotify.play", "q", "x"]), _json, max_size=2
        )
        | _json,
        max_size=3,
    )
    | _json,
    category=st.sampled_from(
        ["simple", "multiple", "parallel", "parallel_multiple", "irrelevance"]
    ),
)
def test_any_model_output_gives_a_verdict(calls: Any, category: str) -> None:
    answers = _ANSWERS[:1] if category in ("simple", "multiple") else _ANSWERS
    assert isinstance(match(_FNS, calls, answers, category), Match)

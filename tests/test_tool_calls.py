"""Tool calls as a small model sees them: whole contracts in the prompt, coercion, several
calls in one turn, declining, and names that OpenAI's rules reject."""

from __future__ import annotations

import asyncio
import json
import math
import threading
from typing import Literal

import pytest
from pydantic import BaseModel

from toolpath import tool_agent
from toolpath.agents.fit import DECLINED, FIT_THRESHOLD, fit_of
from toolpath.agents.toolcall import decide, parse_completion, reply_schema, system_prompt
from toolpath.errors import ToolArgumentsError, ToolSchemaError
from toolpath.llm.base import Completion, ToolCall
from toolpath.llm.scripted import ScriptedModel
from toolpath.tools import Tool, tool
from toolpath.tools.base import coerce
from toolpath.tools.render import BRIEF, SIGNATURE, render_tool, render_tools


class Step(BaseModel):
    action: str


BOOKING = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "description": "Where to stay."},
        "nights": {"type": "integer", "minimum": 1, "default": 1},
        "room": {"type": "string", "enum": ["single", "double"], "description": "Room kind."},
        "check_in": {"type": "string", "format": "date"},
        "guests": {
            "type": "array",
            "description": "Who stays.",
            "items": {
                "type": "object",
                "properties": {
                    "name": {"type": "string", "description": "Full name."},
                    "age": {"type": "integer"},
                },
                "required": ["name"],
            },
        },
        "options": {
            "type": "object",
            "properties": {"breakfast": {"type": "boolean", "default": False}},
        },
        "tags": {"type": "array", "items": {"type": "string", "enum": ["quiet", "view"]}},
    },
    "required": ["city", "check_in"],
}


def booking_tool(name: str = "hotel.book") -> Tool:
    return Tool(name, "Book a hotel room.", BOOKING, fn=lambda **kw: kw)


def test_render_carries_the_whole_contract() -> None:
    text = render_tool(booking_tool())
    assert text.splitlines() == [
        "- hotel_book: Book a hotel room.",
        "  city (string, required): Where to stay.",
        "  nights (integer, optional, default 1, >= 1)",
        '  room (string, optional, one of "single" | "double"): Room kind.',
        "  check_in (string, required, format date)",
        "  guests (array of objects, optional): Who stays.",
        "    name (string, required): Full name.",
        "    age (integer, optional)",
        "  options (object, optional)",
        "    breakfast (boolean, optional, default false)",
        '  tags (array of string, optional, each one of "quiet" | "view")',
    ]
    assert "Where to stay" not in render_tool(booking_tool(), BRIEF)
    assert render_tool(booking_tool(), SIGNATURE) == (
        "- hotel_book(city, nights?, room?, check_in, guests?, options?, tags?): Book a hotel room."
    )


def test_render_resolves_refs_and_survives_recursion() -> None:
    @tool
    def plan(steps: list[Step]) -> str:
        """Run a plan."""
        return "ok"

    text = render_tool(plan)
    assert "steps (array of objects, required)" in text
    assert "    action (string, required)" in text
    recursive = {
        "type": "object",
        "properties": {"node": {"$ref": "#/$defs/Node"}},
        "$defs": {"Node": {"type": "object", "properties": {"child": {"$ref": "#/$defs/Node"}}}},
    }
    lines = render_tool(Tool("tree", "A tree.", recursive, fn=lambda **kw: kw)).splitlines()
    assert 3 < len(lines) < 12  # stopped by depth, not by a RecursionError


def test_a_long_list_shortens_the_least_related_tools_first() -> None:
    weather = Tool(
        "weather",
        "The weather forecast for a city.",
        {"type": "object", "properties": {"city": {"type": "string", "description": "x" * 200}}},
        fn=lambda **kw: kw,
    )
    others = [
        Tool(f"tool{i}", f"Unrelated thing {i}.", BOOKING, fn=lambda **kw: kw) for i in range(6)
    ]
    full = render_tools([*others, weather], budget=None)
    short = render_tools([*others, weather], budget=400, query="What is the weather in Paris?")
    assert len(short) < len(full)
    assert "x" * 200 in short  # the related tool keeps its descriptions
    assert short.startswith("- tool0(city, ")  # an unrelated one is down to its signature


def test_coercions_fix_only_what_cannot_change_meaning() -> None:
    schema = {
        "type": "object",
        "properties": {
            "n": {"type": "integer"},
            "x": {"type": "number"},
            "flag": {"type": "boolean"},
            "code": {"type": "string"},
            "ids": {"type": "array", "items": {"type": "integer"}},
            "inner": {"type": "object", "properties": {"k": {"type": "integer"}}},
        },
    }
    got = coerce(
        {"n": "5", "x": "2.5", "flag": "True", "code": 12345, "ids": "7", "inner": {"k": 3.0}},
        schema,
    )
    assert got == {"n": 5, "x": 2.5, "flag": True, "code": "12345", "ids": [7], "inner": {"k": 3}}
    floats = {"type": "array", "items": {"type": "number", "format": "float"}}
    assert coerce([1, 2.5, True], floats) == [1.0, 2.5, True]  # OpenAPI's float: 1 -> 1.0
    assert coerce([1], {"type": "array", "items": {"type": "number"}}) == [1]
    kept = {"n": "five", "x": "2,5", "flag": "yes", "ids": "seven", "inner": {"k": 3.5}}
    assert coerce(kept, schema) == kept  # left for validation to report
    t = Tool("t", "T.", {**schema, "additionalProperties": False}, fn=lambda **kw: kw)
    assert t.validate({"n": "5", "ids": 2}) == {"n": 5, "ids": [2]}
    with pytest.raises(ToolArgumentsError, match="argument 'n' must be integer"):
        t.validate({"n": "five"})

    @tool
    def pick(counts: list[int], level: Literal["low", "high"] = "low") -> str:
        """Typed tools get the same coercions before pydantic."""
        return f"{counts} {level}"

    assert pick.validate({"counts": "4"}) == {"counts": [4]}


def test_one_reply_can_make_several_calls_and_they_run_concurrently() -> None:
    both_running = threading.Barrier(2, timeout=5)

    @tool
    async def fetch(city: str) -> str:
        """Fetch a city's weather."""
        await asyncio.to_thread(both_running.wait)  # passes only if the other call runs too
        return f"sunny in {city}"

    reply = {
        "tool_calls": [
            {"name": "fetch", "arguments": {"city": "Paris"}},
            {"name": "fetch", "arguments": {"city": "Rome"}},
        ]
    }
    model = ScriptedModel([json.dumps(reply), '{"final_answer": "both sunny"}'])
    state = asyncio.run(tool_agent(model, [fetch]).ainvoke("Weather in Paris and Rome?"))
    assert state["answer"] == "both sunny" and state["status"] == "done"
    results = [m["content"] for m in state["messages"] if m["role"] == "tool"]
    assert ["sunny in Paris" in results[0], "sunny in Rome" in results[1]] == [True, True]
    calls = model.requests[0].response_format["json_schema"]["schema"]["anyOf"][0]
    assert "maxItems" not in calls["properties"]["tool_calls"]
    assert "several calls in one reply" in model.requests[0].messages[0]["content"]


def test_declining_is_always_offered_and_ends_without_a_call() -> None:
    weather = Tool("weather", "Weather.", {"type": "object", "properties": {}}, fn=lambda: "sunny")
    schema = reply_schema([weather])["json_schema"]["schema"]
    assert [list(o["properties"]) for o in schema["anyOf"]] == [["tool_calls"], ["final_answer"]]
    prompt = system_prompt([weather], "json")
    assert "none of the tools can do what is asked" in " ".join(prompt.split())
    model = ScriptedModel(['{"final_answer": "None of my tools can book flights."}'])
    state = tool_agent(model, [weather]).invoke("Book me a flight to Oslo.")
    assert state["status"] == "done" and state["answer"].startswith("None of my tools")
    assert not any(m.get("tool_calls") for m in state["messages"])
    assert [t["node"] for t in state["trace"]] == ["model"]


def test_dotted_names_reach_the_model_sanitized_and_come_back() -> None:
    @tool(name="math.factorial")
    def factorial(number: int) -> int:
        """Factorial of a number."""
        out = 1
        for i in range(2, number + 1):
            out *= i
        return out

    assert factorial.wire_name == "math_factorial"
    assert factorial.spec()["function"]["name"] == "math_factorial"
    reply = {"tool_calls": [{"name": "math_factorial", "arguments": {"number": "5"}}]}
    model = ScriptedModel([json.dumps(reply), '{"final_answer": "120"}'])
    state = tool_agent(model, [factorial]).invoke("5!?")
    first = model.requests[0]
    assert "- math_factorial: " in first.messages[0]["content"]
    assert "math.factorial" not in json.dumps(first.response_format)
    call = state["messages"][1]["tool_calls"][0]["function"]
    assert call["name"] == "math.factorial" and json.loads(call["arguments"]) == {"number": 5}
    assert state["trace"][1]["tool"] == "math.factorial" and state["trace"][1]["ok"]
    assert state["messages"][2]["content"].startswith("Observation from math.factorial: 120")
    # the history goes back to the model under the name it knows
    assert '"name": "math_factorial"' in model.requests[1].messages[2]["content"]

    native = ScriptedModel(
        [ToolCall(name="math_factorial", arguments={"number": 3}), "6"],
        tool_mode="native",
    )
    state = tool_agent(native, [factorial]).invoke("3!?")
    assert state["trace"][1]["tool"] == "math.factorial" and state["answer"] == "6"
    sent = native.requests[1]
    assert [t["function"]["name"] for t in sent.tools] == ["math_factorial"]
    history_call = sent.messages[2]["tool_calls"][0]["function"]["name"]
    assert history_call == "math_factorial"


def test_names_that_would_look_alike_to_a_model_are_refused() -> None:
    a = Tool("a.b", "A.", {"type": "object", "properties": {}}, fn=lambda: 1)
    b = Tool("a/b", "B.", {"type": "object", "properties": {}}, fn=lambda: 2)
    with pytest.raises(ToolSchemaError, match="both reach models as 'a_b'"):
        decide(ScriptedModel(["{}"]), [{"role": "user", "content": "hi"}], [a, b])
    with pytest.raises(ToolSchemaError, match="without spaces"):
        Tool("a b", "A.", {"type": "object", "properties": {}}, fn=lambda: 1)


@pytest.mark.parametrize(
    ("reply", "names"),
    [
        ('{"tool_calls": [{"name": "t", "arguments": {}}, {"tool": "t", "arguments": {}}]}', 2),
        ('{"tool": "t", "arguments": {}}', 1),  # the single form older prompts taught
        (
            '<tool_call>{"name": "t", "arguments": {}}</tool_call>\n'
            '<tool_call>{"name": "t", "arguments": {}}</tool_call>',
            2,
        ),
    ],
)
def test_replies_in_every_call_shape_parse(reply: str, names: int) -> None:
    t = Tool("t", "T.", {"type": "object", "properties": {}}, fn=lambda: 1)
    decision = parse_completion(text(reply), [t], mode="json")
    assert decision.error is None and [c.name for c in decision.tool_calls] == ["t"] * names


def test_too_many_calls_and_empty_lists_are_errors_to_repair() -> None:
    t = Tool("t", "T.", {"type": "object", "properties": {}}, fn=lambda: 1)
    two = '{"tool_calls": [{"name": "t", "arguments": {}}, {"name": "t", "arguments": {}}]}'
    decision = parse_completion(text(two), [t], mode="json", max_calls=1)
    assert decision.error == "make at most 1 call(s) in one reply"
    empty = parse_completion(text('{"tool_calls": []}'), [t], mode="json")
    assert empty.error is not None and "empty" in empty.error


def text(content: str) -> Completion:
    return Completion({"role": "assistant", "content": content})


def fit_reply(p_yes: float) -> Completion:
    """A fit check's reply as a server with log-probabilities gives it."""
    top = {"yes": math.log(p_yes), "no": math.log(1 - p_yes), " Yes": math.log(1e-4)}
    return Completion({"role": "assistant", "content": "yes"}, top_logprobs=[top])


def weather_tool() -> Tool:
    return Tool(
        "weather",
        "The weather now in a city.",
        {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        fn=lambda city: f"sunny in {city}",
    )


def test_a_call_to_a_tool_that_does_something_else_is_declined() -> None:
    call = json.dumps({"tool_calls": [{"name": "weather", "arguments": {"city": "Oslo"}}]})
    model = ScriptedModel([call, fit_reply(0.3)], logprobs=True)
    ask = [{"role": "user", "content": "Who wrote Hamlet?"}]
    decision = decide(model, ask, [weather_tool()], check_fit=FIT_THRESHOLD)
    assert decision.final == DECLINED.format(tools="weather") and not decision.tool_calls
    assert len(decision.checks) == 1  # the check's cost is kept
    check = model.requests[1]
    assert check.max_tokens == 1 and check.response_format is None
    assert "Request: Who wrote Hamlet?" in check.messages[0]["content"]
    assert "Tool: weather: The weather now in a city." in check.messages[0]["content"]


def test_the_tool_agent_declines_with_the_check_and_keeps_its_cost() -> None:
    call = json.dumps({"tool_calls": [{"name": "weather", "arguments": {"city": "Oslo"}}]})
    model = ScriptedModel([call, fit_reply(0.3)], logprobs=True)
    agent = tool_agent(model, [weather_tool()], check_fit=FIT_THRESHOLD)
    state = agent.invoke("Who wrote Hamlet?")
    assert state["status"] == "done" and state["answer"] == DECLINED.format(tools="weather")
    assert [t["node"] for t in state["trace"]] == ["model", "check"]


def test_a_call_that_fits_goes_ahead_and_later_steps_are_not_checked() -> None:
    call = json.dumps({"tool_calls": [{"name": "weather", "arguments": {"city": "Oslo"}}]})
    model = ScriptedModel([call, fit_reply(FIT_THRESHOLD + 0.05), call], logprobs=True)
    ask = [{"role": "user", "content": "Weather in Oslo?"}]
    decision = decide(model, ask, [weather_tool()], check_fit=FIT_THRESHOLD)
    assert decision.tool_calls and len(decision.checks) == 1
    later = [*ask, decision.message, {"role": "tool", "tool_call_id": "x", "content": "sunny"}]
    again = decide(model, later, [weather_tool()], check_fit=FIT_THRESHOLD)
    assert again.tool_calls and not again.checks and model.remaining == 0


def test_no_check_without_log_probabilities_or_when_turned_off() -> None:
    call = json.dumps({"tool_calls": [{"name": "weather", "arguments": {"city": "Oslo"}}]})
    hi = [{"role": "user", "content": "hi"}]
    plain = ScriptedModel([call])  # logprobs=False: no check is asked for
    assert decide(plain, hi, [weather_tool()], check_fit=FIT_THRESHOLD).tool_calls
    assert len(plain.requests) == 1
    off = ScriptedModel([call], logprobs=True)  # the default: no check
    decision = decide(off, hi, [weather_tool()])
    assert decision.tool_calls and len(off.requests) == 1
    silent = ScriptedModel([call, "yes"], logprobs=True)  # a server that sent none after all
    decision = decide(silent, hi, [weather_tool()], check_fit=FIT_THRESHOLD)
    assert decision.tool_calls and fit_of(decision.checks[0]) is None

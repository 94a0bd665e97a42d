"""Tool, @tool and as_tools: schemas, validation, sync/async running, timeouts, errors."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
from typing import Annotated, Literal, Optional

import pytest
from pydantic import BaseModel, Field

from toolpath.errors import ToolArgumentsError, ToolError, ToolSchemaError
from toolpath.tools import BUILTIN_TOOLS, Tool, as_tools, calculator, get_tools, tool
from toolpath.tools.base import describe_parameters, parse_docstring, stringify

# -- schema generation -------------------------------------------------------------------------


def search(
    query: str,
    limit: int = 5,
    site: Optional[str] = None,  # noqa: UP045 - Optional on purpose
    tags: list[int] | None = None,
    mode: Literal["fast", "exact"] = "fast",
) -> str:
    """Search the notes for a query.

    Returns the best matches.

    Args:
        query: What to look for,
            over two lines.
        limit (int): How many results to return.
        mode: Fast or exact matching.

    Returns:
        The matches, one a line.
    """
    return f"{query}|{limit}|{site}|{tags}|{mode}"


def test_schema_from_signature_and_google_docstring() -> None:
    t = tool(search)
    assert t.name == "search"
    assert t.description == "Search the notes for a query.\n\nReturns the best matches."
    assert t.parameters == {
        "type": "object",
        "properties": {
            "query": {"type": "string", "description": "What to look for, over two lines."},
            "limit": {
                "type": "integer",
                "default": 5,
                "description": "How many results to return.",
            },
            "site": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None},
            "tags": {
                "anyOf": [{"type": "array", "items": {"type": "integer"}}, {"type": "null"}],
                "default": None,
            },
            "mode": {
                "type": "string",
                "enum": ["fast", "exact"],
                "default": "fast",
                "description": "Fast or exact matching.",
            },
        },
        "required": ["query"],
        "additionalProperties": False,
    }
    assert t.spec() == {
        "type": "function",
        "function": {"name": "search", "description": t.description, "parameters": t.parameters},
    }


def test_sphinx_docstring_and_field_descriptions() -> None:
    @tool
    def scale(
        x: float,
        factor: Annotated[float, Field(description="From Field.")] = 2.0,
        *,
        note: str = Field("n", description="Field default."),
    ) -> float:
        """Scale a number.

        :param x: The number
            to scale.
        :param float factor: Ignored, Field wins.
        :returns: the product
        """
        return x * factor

    props = scale.parameters["properties"]
    assert scale.description == "Scale a number."
    assert props["x"] == {"type": "number", "description": "The number to scale."}
    assert props["factor"] == {"type": "number", "default": 2.0, "description": "From Field."}
    assert props["note"] == {"type": "string", "default": "n", "description": "Field default."}
    assert scale.parameters["required"] == ["x"]


def test_parse_docstring_directly() -> None:
    summary, args = parse_docstring(
        """Do it.

        Args:
            a: first
              continued
            b (list[int]): second

        Raises:
            ValueError: not an argument
        """
    )
    assert summary == "Do it."
    assert args == {"a": "first continued", "b": "second"}
    assert parse_docstring("") == ("", {})
    assert parse_docstring("Only a summary.\nTwo lines.") == ("Only a summary.\nTwo lines.", {})
    numpy = parse_docstring("Sum.\n\nParameters\n----------\nx : int\n")
    assert numpy[0] == "Sum."


class Point(BaseModel):
    """A point."""

    x: int
    y: int = 0


def test_nested_model_keeps_defs_and_reaches_fn_as_model() -> None:
    seen: list[object] = []

    @tool
    def plot(point: Point, title: str = "t") -> str:
        """Plot a point."""
        seen.append(point)
        return f"{point.x},{point.y},{title}"

    params = plot.parameters
    assert params["properties"]["point"] == {"$ref": "#/$defs/Point"}
    assert params["properties"]["title"] == {
        "type": "string",
        "default": "t",
    }  # a property named title stays
    assert params["$defs"]["Point"]["properties"] == {
        "x": {"type": "integer"},
        "y": {"type": "integer", "default": 0},
    }
    assert "title" not in params["$defs"]["Point"]
    assert plot.validate({"point": {"x": "3"}}) == {"point": {"x": 3}}  # only what was given
    assert plot.run({"point": {"x": 3, "y": 4}}) == "3,4,t"
    assert isinstance(seen[0], Point)


def test_awkward_parameter_names_work() -> None:
    @tool
    def f(json: str, model_config: int = 1, _private: bool = False) -> str:
        """Names that clash with pydantic."""
        return f"{json}{model_config}{_private}"

    assert set(f.parameters["properties"]) == {"json", "model_config", "_private"}
    assert f.run({"json": "a", "model_config": 2, "_private": True}) == "a2True"


def test_decorator_forms_and_overrides() -> None:
    @tool()
    def a(x: int) -> int:
        """A."""
        return x

    @tool(name="renamed", description="  Custom.  ", timeout=3)
    def b(x: int) -> int:
        return x + 1

    assert isinstance(a, Tool) and a.name == "a" and a.timeout is None
    assert (b.name, b.description, b.timeout) == ("renamed", "Custom.", 3)
    assert b(41) == 42  # still callable like the function
    assert b(x=1) == 2
    assert tool(search).fn is search


def test_no_parameters_and_no_docstring() -> None:
    def ping() -> str:
        return "pong"

    t = tool(ping)
    assert t.description == ""
    assert t.parameters == {"type": "object", "properties": {}, "additionalProperties": False}
    assert t.run({}) == "pong"


class Opaque:
    pass


def _no_hint(x, y: int) -> int:  # x has no annotation on purpose
    return y


def _star(*args: int) -> int:
    return 0


def _kw(**kwargs: int) -> int:
    return 0


def _posonly(x: int, /) -> int:
    return x


def _opaque(thing: Opaque) -> str:
    return ""


@pytest.mark.parametrize(
    ("fn", "message"),
    [
        (_no_hint, "tool '_no_hint': parameter 'x' needs a type annotation, e.g. 'x: str'"),
        (_star, "tool '_star': *args is not supported"),
        (_kw, "tool '_kw': **kwargs is not supported"),
        (_posonly, "tool '_posonly': parameter 'x' is positional-only; remove the '/'"),
        (_opaque, "tool '_opaque': parameter 'thing' has type Opaque, which has no JSON schema"),
        (lambda x: x, "cannot make a tool from a lambda"),
        (42, "cannot make a tool from 42"),
    ],
)
def test_schema_errors(fn: object, message: str) -> None:
    with pytest.raises(ToolSchemaError) as info:
        tool(fn)  # type: ignore[call-overload]
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


def test_bad_name_and_bad_parameters() -> None:
    with pytest.raises(ToolSchemaError, match="bad tool name 'a b'"):
        tool(search, name="a b")
    with pytest.raises(ToolSchemaError, match="parameters must be a schema of type object"):
        Tool("t", "", {"type": "string"}, fn=str)


# -- validation ----------------------------------------------------------------------------


def test_validation_messages_are_model_readable() -> None:
    with pytest.raises(ToolArgumentsError) as info:
        calculator.validate({})
    assert str(info.value) == (
        "calculator: missing required argument 'expression'. "
        "Expected arguments: {expression: string}"
    )
    t = tool(search)
    with pytest.raises(ToolArgumentsError) as info:
        t.validate({"query": "q", "limit": "many", "color": 1})
    assert str(info.value) == (
        "search: argument 'limit': Input should be a valid integer, unable to parse string as an "
        "integer (got \"many\"); unknown argument 'color'. Expected arguments: {query: string, "
        "limit: integer (optional), site: string | null (optional), tags: array[integer] | null "
        '(optional), mode: "fast" | "exact" (optional)}'
    )
    with pytest.raises(
        ToolArgumentsError, match="argument 'mode': Input should be 'fast' or 'exact'"
    ):
        t.validate({"query": "q", "mode": "slow"})
    with pytest.raises(ToolArgumentsError, match="search: arguments must be a JSON object"):
        t.validate(["q"])  # type: ignore[arg-type]
    assert isinstance(info.value, ToolError)


def test_validation_coerces_and_returns_only_given_arguments() -> None:
    t = tool(search)
    assert t.validate({"query": 12, "limit": "7", "tags": ["1", 2.0]}) == {
        "query": "12",
        "limit": 7,
        "tags": [1, 2],
    }
    assert t.run({"query": "q", "limit": "7"}) == "q|7|None|None|fast"


def test_raw_schema_tool_builtin_checks() -> None:
    schema = {
        "type": "object",
        "properties": {
            "n": {"type": "integer"},
            "s": {"type": ["string", "null"]},
            "flag": {"type": "boolean"},
            "xs": {"type": "array"},
        },
        "required": ["n"],
        "additionalProperties": False,
    }
    raw = Tool("raw", "Raw.", schema, fn=lambda **kw: kw)
    assert raw.validate({"n": 2.0, "s": None}) == {"n": 2, "s": None}
    assert raw.run({"n": 3, "flag": True}) == '{"n": 3, "flag": true}'
    with pytest.raises(ToolArgumentsError) as info:
        raw.validate({"n": True, "s": [1], "xs": None, "zz": 0})
    assert str(info.value) == (
        "raw: argument 'n' must be integer (got true); argument 's' must be string or null "
        "(got [1]); argument 'xs' must be array (got null); and 1 more. Expected arguments: "
        "{n: integer, s: string | null (optional), flag: boolean (optional), xs: array (optional)}"
    )
    with pytest.raises(ToolArgumentsError, match="raw: missing required argument 'n'"):
        raw.run({})
    loose = Tool("loose", "", {"type": "object", "properties": {"n": {"type": "number"}}}, fn=str)
    assert loose.validate({"extra": 1, "n": 1.5}) == {"extra": 1, "n": 1.5}


def test_describe_parameters() -> None:
    assert describe_parameters({"type": "object"}) == "{}"
    schema = {"properties": {"a": {"const": 1}, "b": {}}, "required": ["a"]}
    assert describe_parameters(schema) == "{a: 1, b: any (optional)}"


# -- running -------------------------------------------------------------------------------


@tool
def add(a: int, b: int = 1) -> int:
    """Add two numbers."""
    return a + b


@tool
async def aadd(a: int, b: int = 1) -> int:
    """Add two numbers, asynchronously."""
    await asyncio.sleep(0)
    return a + b


def test_run_sync_and_async_tools() -> None:
    assert add.run({"a": 2, "b": 3}) == "5"
    assert aadd.run({"a": 2}) == "3"


async def test_arun_sync_and_async_tools() -> None:
    assert await add.arun({"a": 2, "b": 3}) == "5"
    assert await aadd.arun({"a": "4"}) == "5"


async def test_run_async_tool_inside_a_running_loop() -> None:
    assert aadd.run({"a": 10}) == "11"  # sync run while this thread runs a loop


def test_run_async_tool_from_a_thread_without_a_loop() -> None:
    out: list[str] = []
    worker = threading.Thread(target=lambda: out.append(aadd.run({"a": 1, "b": 1})))
    worker.start()
    worker.join(5)
    assert out == ["2"]


def _sleepy(seconds: float) -> str:
    time.sleep(seconds)
    return "woke"


async def _asleepy(seconds: float) -> str:
    await asyncio.sleep(seconds)
    return "woke"


@pytest.mark.parametrize("fn", [_sleepy, _asleepy])
def test_timeout_in_run(fn: object) -> None:
    t = tool(fn, name="slow", timeout=0.1)  # type: ignore[call-overload]
    assert t.run({"seconds": 0}) == "woke"
    start = time.monotonic()
    with pytest.raises(ToolError) as info:
        t.run({"seconds": 5})
    assert str(info.value) == "slow timed out after 0.1s"
    assert time.monotonic() - start < 2


@pytest.mark.parametrize("fn", [_sleepy, _asleepy])
async def test_timeout_in_arun(fn: object) -> None:
    t = tool(fn, name="slow", timeout=0.1)  # type: ignore[call-overload]
    assert await t.arun({"seconds": 0}) == "woke"
    start = time.monotonic()
    with pytest.raises(ToolError, match=r"^slow timed out after 0\.1s$"):
        await t.arun({"seconds": 5})
    assert time.monotonic() - start < 2


def test_timeout_error_raised_by_the_function_is_a_failure() -> None:
    def flaky() -> str:
        raise TimeoutError("upstream")

    async def aflaky() -> str:
        raise TimeoutError("upstream")

    for fn in (flaky, aflaky):
        with pytest.raises(ToolError) as info:
            tool(fn, name="flaky", timeout=5).run({})
        assert str(info.value) == "flaky failed: TimeoutError: upstream"


def _boom(x: int) -> int:
    raise ValueError(f"bad x {x}")


async def _aboom(x: int) -> int:
    raise ValueError(f"bad x {x}")


@pytest.mark.parametrize("fn", [_boom, _aboom])
@pytest.mark.parametrize("timeout", [None, 5.0])
async def test_exceptions_become_tool_errors(fn: object, timeout: float | None) -> None:
    t = tool(fn, name="boom", timeout=timeout)  # type: ignore[call-overload]
    for runner in (lambda: asyncio.to_thread(t.run, {"x": 3}), lambda: t.arun({"x": 3})):
        with pytest.raises(ToolError) as info:
            await runner()
        assert str(info.value) == "boom failed: ValueError: bad x 3"
        assert isinstance(info.value.__cause__, ValueError)


def test_tool_errors_pass_through_unchanged() -> None:
    def picky(x: int) -> int:
        raise ToolArgumentsError("picky: x must be even")

    def quiet() -> None:
        raise RuntimeError()

    for timeout in (None, 1.0):
        with pytest.raises(ToolArgumentsError, match=r"^picky: x must be even$"):
            tool(picky, timeout=timeout).run({"x": 1})
    with pytest.raises(ToolError, match=r"^quiet failed: RuntimeError$"):
        tool(quiet).run({})


@dataclasses.dataclass
class Pair:
    a: int
    b: str


class Unserializable:
    def __str__(self) -> str:
        return "<thing>"


def test_stringify() -> None:
    assert stringify("text") == "text"
    assert stringify("") == ""
    assert stringify(None) == "done"
    assert stringify(3) == "3"
    assert stringify(2.5) == "2.5"
    assert stringify(True) == "true"
    assert stringify({"k": [1, "é"]}) == '{"k": [1, "é"]}'
    assert stringify((1, 2)) == "[1, 2]"
    assert stringify(Point(x=1)) == '{"x": 1, "y": 0}'
    assert stringify(Pair(1, "b")) == '{"a": 1, "b": "b"}'
    assert stringify({"o": Unserializable()}) == '{"o": "<thing>"}'


def test_run_stringifies_results() -> None:
    @tool
    def nothing() -> None:
        """Do nothing."""

    @tool
    def listing(n: int) -> list[int]:
        """List."""
        return list(range(n))

    assert nothing.run({}) == "done"
    assert listing.run({"n": 3}) == "[0, 1, 2]"


# -- as_tools / get_tools ------------------------------------------------------------------


def test_as_tools() -> None:
    def helper(x: str) -> str:
        """Echo."""
        return x

    tools = as_tools([calculator, helper, add])
    assert [t.name for t in tools] == ["calculator", "helper", "add"]
    assert tools[0] is calculator
    with pytest.raises(ToolSchemaError, match="two tools are named 'add'"):
        as_tools([add, tool(lambda: 0, name="add")])
    with pytest.raises(ToolSchemaError, match="cannot make a tool from 'nope'"):
        as_tools(["nope"])  # type: ignore[list-item]


def test_get_tools() -> None:
    assert list(BUILTIN_TOOLS) == ["calculator"]
    assert BUILTIN_TOOLS["calculator"] is calculator
    assert get_tools(["calculator", " calculator"]) == [calculator]
    assert get_tools([]) == []
    from toolpath.errors import ConfigError

    with pytest.raises(ConfigError) as info:
        get_tools(["calculator", "browser"])
    assert str(info.value) == "unknown tool 'browser'; available tools: calculator"

"""Tool catalogs: every input format, bound/endpoint/described-only tools, bad input, synthetic."""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from toolpath.errors import CatalogError, ConfigError, ToolError
from toolpath.retrieval.synthetic import synthetic_catalog
from toolpath.tools import Tool, tool
from toolpath.tools.catalog import (
    Catalog,
    load_catalog,
    sanitize_name,
    write_catalog,
)

WEATHER = {
    "name": "get_weather",
    "description": "Current weather for a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string", "description": "City name"}},
        "required": ["city"],
    },
}
DUMPS = {
    "name": "to_json",
    "description": "Serialize a value as JSON.",
    "parameters": {"type": "object", "properties": {"obj": {}}, "required": ["obj"]},
    "callable": "json:dumps",
}
CALC = {
    "name": "calc",
    "description": "Arithmetic.",
    "parameters": {"type": "object", "properties": {"expression": {"type": "string"}}},
    "callable": "toolpath.tools.calculator:calculator",
}


def _write(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


# -- toolpath's own format ---------------------------------------------------------------------


def test_own_json_loads_names_descriptions_schemas_and_binds_callables(tmp_path: Path) -> None:
    catalog = load_catalog(_write(tmp_path / "tools.json", [WEATHER, DUMPS, CALC]))
    assert isinstance(catalog, Catalog) and catalog.skipped == []
    assert [t.name for t in catalog] == ["get_weather", "to_json", "calc"] and len(catalog) == 3
    weather = catalog.by_name("get_weather")
    assert weather.description == "Current weather for a city."
    assert weather.parameters == WEATHER["parameters"]
    assert catalog.by_name("to_json").run({"obj": [1, "a"]}) == '[1, "a"]'
    assert catalog.by_name("calc").run({"expression": "6*7"}) == "42"
    assert catalog.source == str(tmp_path / "tools.json")
    assert "calc" in catalog and "nope" not in catalog
    with pytest.raises(KeyError, match="nope"):
        catalog.by_name("nope")


def test_own_yaml_jsonl_and_tools_key(tmp_path: Path) -> None:
    pytest.importorskip("yaml")
    yaml_text = """
tools:
  - name: get_weather
    description: Current weather for a city.
    parameters:
      type: object
      properties:
        city: {type: string, description: City name}
      required: [city]
"""
    (tmp_path / "t.yaml").write_text(yaml_text)
    from_yaml = load_catalog(tmp_path / "t.yaml")
    (tmp_path / "t.jsonl").write_text(json.dumps(WEATHER) + "\n\n" + json.dumps(DUMPS) + "\n")
    from_jsonl = load_catalog(str(tmp_path / "t.jsonl"))
    from_dict = load_catalog({"tools": [WEATHER]})
    assert [t.spec() for t in from_yaml] == [t.spec() for t in from_dict]
    assert from_yaml.by_name("get_weather").parameters == WEATHER["parameters"]
    assert [t.name for t in from_jsonl] == ["get_weather", "to_json"]


def test_callable_is_imported_lazily_at_first_call(tmp_path: Path, monkeypatch: Any) -> None:
    module = f"lazy_catalog_tools_{time.time_ns()}"
    (tmp_path / f"{module}.py").write_text(
        "async def greet(name):\n    return 'hi ' + name\n\n"
        "def add(a, b):\n    return {'sum': a + b}\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    params = {"type": "object", "properties": {"name": {"type": "string"}}}
    catalog = load_catalog(
        [
            {"name": "greet", "parameters": params, "callable": f"{module}:greet"},
            {"name": "add", "callable": f"{module}:add"},
            {"name": "broken", "callable": "no_such_module_xyz:fn"},
        ]
    )
    assert len(catalog) == 3 and module not in sys.modules  # nothing imported yet
    assert catalog.by_name("greet").run({"name": "Ada"}) == "hi Ada"  # async target works
    assert module in sys.modules
    assert json.loads(catalog.by_name("add").run({"a": 2, "b": 3})) == {"sum": 5}
    with pytest.raises(ToolError, match="no_such_module_xyz"):
        catalog.by_name("broken").run({})


def test_described_only_tool_raises_tool_error() -> None:
    catalog = load_catalog([WEATHER])
    with pytest.raises(ToolError, match="tool get_weather has no implementation"):
        catalog.by_name("get_weather").run({"city": "Oslo"})


# -- HTTP endpoints ----------------------------------------------------------------------------


class _Recorder(BaseHTTPRequestHandler):
    seen: ClassVar[list[dict[str, Any]]] = []

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        self.seen.append(
            dict(method=self.command, path=self.path, body=body, auth=self.headers.get("X-Key"))
        )
        status = 500 if self.path.startswith("/fail") else 200
        payload = (f"server broke on {self.path}" if status == 500 else f"echo {body}").encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = _answer


@pytest.fixture
def server() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    seen: list[dict[str, Any]] = []
    handler = type("Handler", (_Recorder,), {"seen": seen})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", seen
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


def test_endpoint_tools_call_a_real_local_server(server: Any, monkeypatch: Any) -> None:
    url, seen = server
    monkeypatch.setenv("CATALOG_TEST_KEY", "s3cret")
    params = {"type": "object", "properties": {"q": {"type": "string"}, "n": {"type": "integer"}}}
    headers = {"X-Key": "${CATALOG_TEST_KEY}"}
    catalog = load_catalog(
        [
            {"name": "search", "parameters": params, "endpoint": {"url": f"{url}/search?v=1"}},
            {
                "name": "post",
                "parameters": params,
                "endpoint": {"url": f"{url}/post", "method": "post", "headers": headers},
                "timeout": 5,
            },
            {"name": "fail", "endpoint": {"url": f"{url}/fail", "method": "GET"}},
        ]
    )
    assert catalog.skipped == []
    assert catalog.by_name("search").run({"q": "a b", "n": 2}) == "echo "
    assert seen[0]["method"] == "GET" and seen[0]["path"] == "/search?v=1&q=a+b&n=2"
    answer = catalog.by_name("post").run({"q": "x", "n": 3})
    assert json.loads(answer.removeprefix("echo ")) == {"q": "x", "n": 3}
    assert seen[1]["method"] == "POST" and seen[1]["auth"] == "s3cret"
    with pytest.raises(ToolError, match=r"HTTP 500.*server broke on /fail"):
        catalog.by_name("fail").run({})


def test_bad_endpoints_are_skipped() -> None:
    catalog = load_catalog(
        [
            {"name": "a", "endpoint": {"url": "ftp://x/y"}},
            {"name": "b", "endpoint": {"url": "http://x", "method": "DELETE"}},
            {"name": "c", "endpoint": "http://x"},
            {"name": "d", "endpoint": {"url": "http://x"}, "callable": "json:dumps"},
        ]
    )
    assert len(catalog) == 0
    reasons = dict(catalog.skipped)
    assert "http://" in reasons["a"] and "GET or POST" in reasons["b"]
    assert "'url'" in reasons["c"] and "not both" in reasons["d"]


# -- OpenAI, ToolBench and GLPFT -------------------------------------------------------------


def test_openai_tool_lists_wrapped_and_bare() -> None:
    fn = {k: WEATHER[k] for k in ("name", "description", "parameters")}
    wrapped = load_catalog([{"type": "function", "function": fn}])
    bare = load_catalog([fn], format="openai")
    for catalog in (wrapped, bare):
        (only,) = catalog.tools
        assert only.spec() == {"type": "function", "function": fn}
    ignored = load_catalog([{**fn, "callable": "json:dumps"}], format="openai")
    with pytest.raises(ToolError, match="no implementation"):  # OpenAI lists bind nothing
        ignored.by_name("get_weather").run({"city": "x"})


def test_toolbench_api_lists_are_named_tool_api_and_typed(tmp_path: Path) -> None:
    long_api = "Get " + "very " * 20 + "long endpoint"
    data = [
        {
            "tool_name": "Weather API",
            "tool_description": "Weather data.",
            "api_list": [
                {
                    "name": "Current Weather!",
                    "description": "Weather right now.",
                    "required_parameters": [
                        {"name": "city", "type": "STRING", "description": "City", "default": "Oslo"}
                    ],
                    "optional_parameters": [{"name": "days", "type": "NUMBER", "description": ""}],
                },
                {"name": long_api, "required_parameters": [], "optional_parameters": []},
            ],
        },
        {  # query-file style: APIs carry their tool name
            "query": "what's on?",
            "api_list": [
                {"tool_name": "Movies", "api_name": "showtimes", "api_description": "Showtimes."}
            ],
        },
    ]
    catalog = load_catalog(_write(tmp_path / "toolbench.json", data))
    assert catalog.skipped == []
    current, long_tool, showtimes = catalog.tools
    assert current.name == "Weather_API_Current_Weather"
    assert current.description == "Weather right now."
    assert current.parameters == {
        "type": "object",
        "properties": {
            "city": {"type": "string", "description": "City", "examples": ["Oslo"]},
            "days": {"type": "number"},
        },
        "required": ["city"],
    }
    assert len(long_tool.name) <= 64 and long_tool.name.startswith("Weather_API_Get_very")
    assert long_tool.description == "Weather data."  # falls back to the tool's description
    assert showtimes.name == "Movies_showtimes" and showtimes.description == "Showtimes."
    # the service and its description are kept for retrieval (not shown to models)
    assert current.context == "Weather API: Weather data."
    assert long_tool.context == "Weather API"  # its description already is the tool's
    assert showtimes.context == "Movies"


def test_toolbench_category_becomes_context_and_survives_a_round_trip(tmp_path: Path) -> None:
    from toolpath.retrieval.embed import tool_text

    entry = {
        "tool_name": "AlphaVantage",
        "tool_description": "Stock market data.",
        "category_name": "Finance",
        "api_list": [{"name": "quote", "description": "Latest price of a ticker."}],
    }
    (tool,) = load_catalog([entry]).tools
    assert tool.context == "Finance / AlphaVantage: Stock market data."
    assert tool_text(tool) == (
        "alpha vantage quote: Latest price of a ticker. "
        "From Finance / AlphaVantage: Stock market data"
    )
    (again,) = load_catalog(write_catalog([tool], tmp_path / "c.json")).tools
    assert again.context == tool.context and tool_text(again) == tool_text(tool)
    bad = load_catalog([{"name": "x", "description": "", "context": 3}])
    assert not bad.tools and "'context' must be a string" in str(bad.skipped)


def test_glpft_entries_with_input_dicts_and_schemas() -> None:
    catalog = load_catalog(
        [
            {
                "Name": "get weather",
                "function": "Weather for a city.",
                "input": {"city": "string, the city name", "days": "integer: days (optional)"},
            },
            {
                "Name": "convert",
                "function": "Convert currency.",
                "input": {"type": "object", "properties": {"amount": {"type": "float"}}},
            },
            {"Name": "ping", "function": "Check the service.", "input": {}},
        ]
    )
    weather, convert, ping = catalog.tools
    assert weather.name == "get_weather" and weather.description == "Weather for a city."
    assert weather.parameters["properties"] == {
        "city": {"type": "string", "description": "the city name"},
        "days": {"type": "integer", "description": "days (optional)"},
    }
    assert weather.parameters["required"] == ["city"]
    assert convert.parameters["properties"]["amount"] == {"type": "number"}
    assert ping.parameters == {"type": "object", "properties": {}}


# -- Python modules ----------------------------------------------------------------------------

MODULE_SOURCE = '''
from os.path import join  # imported: not this module's tool

from toolpath.tools import tool


def add(a: int, b: int = 1) -> int:
    """Add two numbers.

    Args:
        a: The first number.
    """
    return a + b


def shout(text):
    return text.upper()


def _private(x: int) -> int:
    return x


@tool(name="echo_text")
def echo(text: str) -> str:
    """Echo the text."""
    return text
'''


def test_python_module_file_loads_public_typed_functions(tmp_path: Path, caplog: Any) -> None:
    path = tmp_path / "my_tools.py"
    path.write_text(MODULE_SOURCE)
    with caplog.at_level(logging.WARNING, logger="toolpath.tools.catalog.formats"):
        catalog = load_catalog(path)
    assert [t.name for t in catalog] == ["add", "echo_text"]
    add = catalog.by_name("add")
    assert add.description == "Add two numbers."
    assert add.parameters["properties"]["a"] == {
        "type": "integer",
        "description": "The first number.",
    }
    assert (
        add.run({"a": 2, "b": 5}) == "7" and catalog.by_name("echo_text").run({"text": "x"}) == "x"
    )
    ((label, reason),) = catalog.skipped
    assert label == "shout" and "needs a type annotation" in reason
    assert "shout" in caplog.text


def test_module_spec_imports_by_name(tmp_path: Path, monkeypatch: Any) -> None:
    name = f"catalog_mod_{time.time_ns()}"
    (tmp_path / f"{name}.py").write_text(MODULE_SOURCE)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert [t.name for t in load_catalog(f"module:{name}")] == ["add", "echo_text"]
    assert len(load_catalog(name, format="python")) == 2
    with pytest.raises(CatalogError, match="cannot import"):
        load_catalog("module:no_such_module_xyz")
    bad = tmp_path / "bad.py"
    bad.write_text("def broken(:\n")
    with pytest.raises(CatalogError, match=r"bad\.py.*SyntaxError"):
        load_catalog(bad)


# -- bad input ---------------------------------------------------------------------------------


def test_bad_entries_are_skipped_and_reported_while_the_rest_load(caplog: Any) -> None:
    other = {**WEATHER, "description": "Another weather tool."}
    entries: list[Any] = [
        {"description": "no name here"},
        WEATHER,
        {"name": "s1", "parameters": "city: str"},
        {"name": "s2", "parameters": {"type": "string"}},
        {"name": "s3", "parameters": {"type": "object", "properties": {"x": {"type": "strng"}}}},
        {"name": "s4", "parameters": {"type": "object", "properties": {"x": {"items": 3}}}},
        {"name": "s5", "parameters": {"type": "object", "required": "x"}},
        {"name": "s6", "parameters": {"type": "object", "properties": {"x": {"enum": 1}}}},
        other,
        "not an entry",
        DUMPS,
    ]
    with caplog.at_level(logging.WARNING, logger="toolpath.tools.catalog.formats"):
        catalog = load_catalog(entries)
    assert [t.name for t in catalog] == ["get_weather", "to_json"]
    assert catalog.by_name("get_weather").description == WEATHER["description"]  # first kept
    reasons = dict(catalog.skipped)
    assert len(catalog.skipped) == 9
    assert "no name" in reasons["entry #0"]
    assert "JSON schema object" in reasons["s1"] and '"type": "object"' in reasons["s2"]
    assert "unknown type 'strng'" in reasons["s3"] and "items must be a schema" in reasons["s4"]
    assert "required" in reasons["s5"] and "enum must be a list" in reasons["s6"]
    assert "duplicate tool name 'get_weather'" in reasons["get_weather"]
    assert "expected an object" in reasons["entry #9"]
    assert caplog.text.count("skipped") == 9


def test_bad_names_are_sanitized_and_mapped_back(caplog: Any) -> None:
    """OpenAI rejects ``math.factorial``: the tool is loaded as ``math_factorial``, callable
    under that name, the catalog maps it back, and one warning lists every rename."""
    fact = {
        "type": "function",
        "function": {
            "name": "math.factorial",
            "description": "n!",
            "parameters": {"type": "object", "properties": {"x": {"type": "integer"}}},
        },
    }
    own = {**CALC, "name": "my calc!"}
    with caplog.at_level(logging.WARNING, logger="toolpath.tools.catalog.formats"):
        catalog = load_catalog([fact, own, WEATHER])
    assert catalog.skipped == []
    assert [t.name for t in catalog] == ["math_factorial", "my_calc", "get_weather"]
    assert catalog.renamed == {"math_factorial": "math.factorial", "my_calc": "my calc!"}
    assert catalog.original_name("math_factorial") == "math.factorial"
    assert catalog.original_name("get_weather") == "get_weather"
    assert catalog.by_name("math.factorial") is catalog.by_name("math_factorial")
    assert "math.factorial" in catalog and "math_factorial" in catalog
    assert catalog.specs()[0]["function"]["name"] == "math_factorial"
    assert catalog.by_name("my_calc").run({"expression": "6*7"}) == "42"  # bound, callable
    with pytest.raises(ToolError, match="math_factorial has no implementation"):
        catalog.by_name("math_factorial").run({"x": 3})
    warnings = [r.getMessage() for r in caplog.records if "renamed" in r.getMessage()]
    assert len(warnings) == 1
    assert "'math.factorial' -> 'math_factorial'" in warnings[0] and "'my calc!'" in warnings[0]


def test_names_that_sanitize_alike_are_a_reported_clash(caplog: Any) -> None:
    same = {"description": "n!", "parameters": {"type": "object", "properties": {}}}
    entries = [
        {"name": "math.factorial", **same},
        {"name": "math_factorial", **same},  # identical tool: still not merged silently
        {"name": "math factorial", **same},
        {"name": "math.factorial", **same},  # an exact repeat of the first: dropped quietly
    ]
    with caplog.at_level(logging.WARNING, logger="toolpath.tools.catalog.formats"):
        catalog = load_catalog(entries, format="openai")
    assert [t.name for t in catalog] == ["math_factorial"]
    assert catalog.renamed == {"math_factorial": "math.factorial"}
    reasons = dict(catalog.skipped)
    assert list(reasons) == ["math_factorial", "math factorial"]
    assert "name clash: 'math_factorial' and 'math.factorial'" in reasons["math_factorial"]
    assert "'math factorial' and 'math.factorial' both become" in reasons["math factorial"]
    assert caplog.text.count("name clash") == 2


def test_yaml_anchors_dates_and_bombs(tmp_path: Path) -> None:
    """YAML reads as JSON would: shared anchors expand, dates become ISO text; a file whose
    aliases contain themselves or expand past any sane size is a CatalogError, at once."""
    good = tmp_path / "tools.yaml"
    good.write_text(
        "common: &p {type: object, properties: {day: {type: string, enum: [2024-01-02]}}}\n"
        "tools:\n  - {name: a.b, parameters: *p}\n  - {name: c, parameters: *p}\n"
    )
    catalog = load_catalog(good)
    assert [t.name for t in catalog] == ["a_b", "c"] and catalog.renamed == {"a_b": "a.b"}
    assert catalog.by_name("c").parameters["properties"]["day"]["enum"] == ["2024-01-02"]
    json.dumps(catalog.specs())
    bomb = "a0: &a0 [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]\n" for i in range(1, 9)
    )
    for text in (bomb, "&a [*a]\n", "when: 2020-13-01\n"):
        (tmp_path / "bad.yaml").write_text(text)
        started = time.perf_counter()
        with pytest.raises(CatalogError):
            load_catalog(tmp_path / "bad.yaml")
        assert time.perf_counter() - started < 2


def test_identical_repeats_are_dropped_quietly() -> None:
    api = {"tool_name": "Movies", "api_name": "showtimes", "api_description": "Showtimes."}
    catalog = load_catalog([{"api_list": [api]}, {"api_list": [api]}])
    assert [t.name for t in catalog] == ["Movies_showtimes"] and catalog.skipped == []


def test_missing_unreadable_and_invalid_files_raise_catalog_error(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="not found"):
        load_catalog(tmp_path / "missing.json")
    with pytest.raises(CatalogError, match=r"not valid JSON.*line 2"):
        load_catalog(_text(tmp_path / "bad.json", '[\n{"name": }]'))
    with pytest.raises(CatalogError, match=r"line 2"):
        load_catalog(_text(tmp_path / "bad.jsonl", '{"name": "a"}\n{oops\n'))
    with pytest.raises(CatalogError, match="empty"):
        load_catalog(_text(tmp_path / "empty.json", "  \n"))
    with pytest.raises(CatalogError, match="expected a list"):
        load_catalog(_text(tmp_path / "scalar.json", "42"))
    with pytest.raises(CatalogError, match="cannot read"):
        load_catalog(tmp_path)  # a directory
    with pytest.raises(CatalogError, match="unknown catalog format"):
        load_catalog([], format="csv")
    if __import__("importlib").util.find_spec("yaml"):
        with pytest.raises(CatalogError, match="not valid YAML"):
            load_catalog(_text(tmp_path / "bad.yaml", "tools: [a, b\n"))
    assert issubclass(CatalogError, ConfigError)


def _text(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# -- writing, names, synthetic catalogs ----------------------------------------------------------


def test_write_catalog_round_trips_pydantic_schemas(tmp_path: Path) -> None:
    @tool
    def book(city: str, nights: int = 1, tags: list[str] | None = None) -> str:
        """Book a hotel."""
        return city

    tools = [book, *synthetic_catalog(5, seed=3)]
    for suffix in (".json", ".jsonl"):
        catalog = load_catalog(write_catalog(tools, tmp_path / "sub" / f"out{suffix}"))
        assert catalog.skipped == []
        assert [t.spec() for t in catalog] == [t.spec() for t in tools]
    with pytest.raises(ToolError, match="no implementation"):  # written described-only
        catalog.by_name("book").run({"city": "Rome"})


def test_sanitize_name() -> None:
    assert sanitize_name("Weather API: get/forecast") == "Weather_API_get_forecast"
    assert sanitize_name("天气") == "api"
    a, b = sanitize_name("x" * 80 + "a"), sanitize_name("x" * 80 + "b")
    assert len(a) == len(b) == 64 and a != b
    assert sanitize_name("ok_name-1") == "ok_name-1"


def test_synthetic_catalog_is_deterministic_and_unique() -> None:
    first, again, other = (
        synthetic_catalog(300, 7),
        synthetic_catalog(300, 7),
        synthetic_catalog(300, 8),
    )
    assert [t.spec() for t in first] == [t.spec() for t in again]
    assert [t.spec() for t in first] != [t.spec() for t in other]
    assert all(isinstance(t, Tool) for t in first)
    domains = {t.description.split(" API.")[0].rsplit(" ", 1)[-1] for t in first}
    assert {"weather", "finance", "sports", "movies", "maps"} <= domains
    assert first[123].name.endswith("_123") and first[0].parameters["required"]
    with pytest.raises(ToolError, match="no implementation"):
        first[0]()
    big = synthetic_catalog(16_000, seed=1)  # its build time is in benchmarks/retrieval.py
    assert len(big) == 16_000 and len({t.name for t in big}) == 16_000
    assert len({t.description for t in big}) > 1000  # varied, not one template

"""Property-based tests (hypothesis) for every parser that reads outside input (issue 18,
item 5): tool catalogs in every format, GLPFT dialogues, data set lines, tool-call JSON from
models, model specs, and CompWoB pages and their task metadata.

None of them may raise anything but the typed error it documents. Inputs mix arbitrary
values with ones shaped like the real thing (the keys and fragments each parser looks for),
so that the generated cases get past the first checks and reach the deep paths too.
"""

from __future__ import annotations

import contextlib
import json
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from toolpath.agents.toolcall import Decision, parse_completion
from toolpath.errors import (
    CatalogError,
    ConfigError,
    DatasetError,
    MissingDependencyError,
    ModelNotFoundError,
    ModelSpecError,
)
from toolpath.evals.alpha_umi.glpft import BadRecord, load_glpft, parse_record
from toolpath.evals.math.datasets import gsm8k, math500, read_jsonl
from toolpath.evals.web.compose import load_base, parse_base
from toolpath.evals.web.tasks import compwob_examples
from toolpath.llm import models, specs
from toolpath.llm.base import Completion
from toolpath.tools import Tool
from toolpath.tools.calculator import calculator
from toolpath.tools.catalog import FORMATS, Catalog, load_catalog

FAST = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
DEEP = "[" * 100_000  # nests past the interpreter's recursion limit
BOMB = "a0: &a0 [x, x, x, x, x, x, x, x, x]\n" + "".join(  # "billion laughs": 9**9 values
    f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]\n" for i in range(1, 9)
)


@pytest.fixture(autouse=True)
def _quiet(caplog: pytest.LogCaptureFixture) -> None:
    """The parsers log a warning per skipped entry; keep hypothesis' output readable."""
    caplog.set_level("CRITICAL")


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    """One folder for the whole module (function-scoped tmp_path does not mix with @given)."""
    with tempfile.TemporaryDirectory(prefix="toolpath-prop-") as folder:
        yield Path(folder)


_counter = iter(range(10**9))


def write(folder: Path, suffix: str, content: str | bytes) -> Path:
    path = folder / f"case{next(_counter)}{suffix}"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8", errors="surrogatepass")
    return path


# -- strategies ----------------------------------------------------------------------------------


def obj(base: dict[str, Any], /, **optional: Any) -> st.SearchStrategy[dict[str, Any]]:
    """Dicts with the ``base`` keys and any of the ``optional`` ones."""
    return st.fixed_dictionaries(base, optional=optional)


def words(text: str) -> st.SearchStrategy[str]:
    return st.sampled_from(text.split("|"))


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
J = st.recursive(  # any JSON value
    scalars,
    lambda kids: (
        st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=10), kids, max_size=4)
    ),
    max_leaves=20,
)
texts = st.text(max_size=30) | J
names = words("get_weather|math.factorial|math_factorial|a b|天气|" + "x" * 70) | texts
types = words("object|string|integer|number|boolean|array|null|str|int|strng|date") | J
prop_schemas = obj({"type": types}, description=texts, enum=J, items=J, default=J) | J
object_schemas = (
    obj(
        {"type": st.just("object") | types},
        properties=st.dictionaries(st.text(max_size=8), prop_schemas) | J,
        required=st.lists(st.text(max_size=8)) | J,
        additionalProperties=st.booleans() | J,
    )
    | J
)
params = obj({"name": names}, type=types, description=J, default=J)
param_lists = st.lists(params, max_size=3) | J
urls = words("http://127.0.0.1:9/x|ftp://x|http://[|") | J
entries = st.one_of(
    obj(  # toolpath's own, or an OpenAI function
        {"name": names},
        description=texts,
        parameters=object_schemas,
        timeout=J,
        endpoint=obj({"url": urls}, method=J, headers=J) | J,
    ),
    obj({"type": st.just("function"), "function": obj({"name": names}, parameters=object_schemas)}),
    obj(  # GLPFT
        {"Name": names},
        function=texts,
        input=object_schemas
        | st.dictionaries(st.text(max_size=8), st.text(max_size=30) | prop_schemas)
        | st.lists(params, max_size=3)
        | st.text(max_size=30).map(lambda t: "{" + t),
    ),
    obj(  # ToolBench: a tool with an api_list
        {
            "tool_name": names,
            "api_list": st.lists(
                obj(
                    {"api_name": names},
                    required_parameters=param_lists,
                    optional_parameters=param_lists,
                    api_description=J,
                ),
                max_size=3,
            )
            | J,
        }
    ),
    J,
)
catalog_data = (
    st.lists(entries, max_size=6) | obj({"tools": st.lists(entries, max_size=6)}) | entries
)
formats = st.sampled_from([f for f in FORMATS if f != "python"] + ["glpft"])


# -- tool catalogs -------------------------------------------------------------------------------


def check_catalog(catalog: Catalog) -> None:
    """What every loaded catalog promises, whatever it was fed."""
    assert isinstance(catalog, Catalog)
    seen = [t.name for t in catalog]
    assert len(seen) == len(set(seen))
    for t in catalog:
        assert NAME_RE.match(t.name) and t.parameters.get("type") == "object"
        assert catalog.by_name(t.name) is t
    for new, old in catalog.renamed.items():
        assert new in seen and old != new and catalog.by_name(old).name == new
    assert all(isinstance(a, str) and isinstance(b, str) for a, b in catalog.skipped)


@FAST
@given(data=catalog_data, fmt=formats)
@example(data=[{"Name": "x", "input": {"type": "object", "properties": [1]}}], fmt="auto")
@example(data=[{"name": "x", "endpoint": {"url": "http://["}}], fmt="toolpath")
@example(data=[{"name": "m.f"}, {"name": "m_f"}, {"name": "m f"}], fmt="openai")
def test_catalog_data(data: Any, fmt: str) -> None:
    try:
        catalog = load_catalog(data, format=fmt)
    except CatalogError:
        assert not isinstance(data, list)
        return
    check_catalog(catalog)
    json.dumps(catalog.specs())  # what a backend sends: always JSON


def _nested(depth: int) -> dict[str, Any]:
    """An object schema whose properties nest ``depth`` levels in all."""
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(depth // 2):
        schema = {"type": "object", "properties": {"p": schema}}
    return schema


def test_deeply_nested_entry_is_skipped() -> None:
    deep: Any = {}
    node = deep
    for _ in range(900):
        node["a"] = {}
        node = node["a"]
    cyclic: dict[str, Any] = {"type": "object", "properties": {}}
    cyclic["properties"]["self"] = cyclic
    entries_ = [
        {"Name": "deep", "input": {"type": "object", "properties": {"p": deep}}},
        {"name": "cyclic", "parameters": cyclic},
        {"name": "fine"},
    ]
    catalog = load_catalog(entries_)
    assert [t.name for t in catalog] == ["fine"]
    reasons = dict(catalog.skipped)
    assert "more than 64 deep" in reasons["deep"] and "contains itself" in reasons["cyclic"]
    assert load_catalog([{"name": "ok", "parameters": _nested(60)}]).skipped == []


@FAST
@given(data=catalog_data, suffix=st.sampled_from([".json", ".jsonl", ".yaml", ".yml", ".txt"]))
def test_catalog_files_of_data(scratch: Path, data: Any, suffix: str) -> None:
    if suffix == ".jsonl":
        rows = data if isinstance(data, list) else [data]
        text = "".join(json.dumps(r) + "\n" for r in rows)
    else:
        text = json.dumps(data, indent=1)  # JSON is YAML too
    try:
        catalog = load_catalog(write(scratch, suffix, text))
    except CatalogError:
        return
    check_catalog(catalog)
    json.dumps(catalog.specs())


yaml_bits = words(
    "- name: |  parameters: {type: object, properties: {d: {enum: [2020-01-01]}}}\n|"
    "a: 2020-13-01\n|&a [*a]\n|!!binary aGk=|!!set {a, b}|? [a]\n: b\n|tools:\n|"
    '  - {name: m.f}\n|\u2028|\n|{|[|"|\ufeff|!!python/object:os.system {}'
)


@FAST
@given(
    text=st.one_of(st.text(max_size=200), st.lists(yaml_bits, max_size=8).map("".join)),
    suffix=st.sampled_from([".json", ".jsonl", ".yaml", ".txt"]),
)
@example(text=DEEP, suffix=".json")
@example(text=DEEP, suffix=".jsonl")
@example(text="- " * 5000 + "x", suffix=".yaml")
@example(text="&a [*a]", suffix=".yaml")
@example(text=BOMB, suffix=".yaml")
@example(text="a: 2020-13-01", suffix=".yaml")
@example(text='{"name": "a\u2028b"}\n', suffix=".jsonl")
def test_catalog_files_of_text(scratch: Path, text: str, suffix: str) -> None:
    try:
        catalog = load_catalog(write(scratch, suffix, text))
    except (CatalogError, MissingDependencyError):
        return
    check_catalog(catalog)
    json.dumps(catalog.specs())


@settings(max_examples=40, deadline=None)
@given(source=st.text(max_size=40))
@example(source="~no-such-user-here/tools.json")
@example(source="tools\x00.json")
def test_catalog_source_strings(source: str) -> None:
    if source.strip().startswith("module:") or source.strip().endswith(".py"):
        return  # those import code by design; not a parser of data
    with contextlib.suppress(CatalogError, MissingDependencyError):
        check_catalog(load_catalog(source))


# -- GLPFT dialogues -----------------------------------------------------------------------------

roles = words("user|assistant|caller|observation|conclusion|User ") | J
turn_values = (
    words(
        "Next: caller|Action: get_weather\nAction Input: {}|Action: \nAction Input: [|Next: conclusion"
    )
    | texts
)
turns = obj({"from": roles, "value": turn_values}) | J
good_turns = obj({"from": words("assistant|caller|observation|conclusion"), "value": turn_values})
USER, PLAN = {"from": "user", "value": "q"}, {"from": "assistant", "value": "Next: caller"}
records = (
    obj(
        {
            "conversations": st.lists(good_turns, max_size=5).map(lambda ts: [USER, *ts, PLAN])
            | st.lists(turns, max_size=5)
            | J,
            "tools": st.lists(entries, max_size=3) | J,
        },
        id=J,
        instruction=J,
    )
    | J
)


@FAST
@given(raw=records)
def test_glpft_record(raw: Any) -> None:
    try:
        dialogue = parse_record(raw, where="here", default_id="7")
    except BadRecord:
        return
    assert dialogue.turns and dialogue.turns[0]["from"] == "user"
    assert all(NAME_RE.match(t.name) for t in dialogue.tools)


@FAST
@given(
    rows=st.lists(records, max_size=4),
    suffix=st.sampled_from([".json", ".jsonl"]),
    junk=st.one_of(st.none(), st.text(max_size=40)),
)
def test_glpft_files(scratch: Path, rows: list[Any], suffix: str, junk: str | None) -> None:
    if suffix == ".jsonl":
        text = "".join(json.dumps(r) + "\n" for r in rows) + (junk or "")
    else:
        text = junk if junk is not None else json.dumps(rows)
    try:
        data = load_glpft(write(scratch, suffix, text))
    except DatasetError:
        return
    assert data.dialogues
    assert all(isinstance(w, str) and isinstance(p, str) for w, p in data.skipped)


@pytest.mark.parametrize("suffix", [".json", ".jsonl"])
def test_glpft_deeply_nested_file(scratch: Path, suffix: str) -> None:
    with pytest.raises(DatasetError):
        load_glpft(write(scratch, suffix, DEEP))


# -- data set lines ------------------------------------------------------------------------------

dataset_rows = (
    obj(
        {},
        question=J,
        answer=st.text(max_size=30).map(lambda t: f"{t} #### 1,234") | J,
        problem=J,
        unique_id=J,
        level=st.sampled_from(["Level 3", "Level x", 5]) | J,
        subject=J,
    )
    | J
)
dataset_lines = st.one_of(
    dataset_rows.map(lambda r: json.dumps(r).encode()),
    st.text(max_size=60).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.binary(max_size=40),
)


@FAST
@given(lines=st.lists(dataset_lines, max_size=8))
def test_dataset_lines(scratch: Path, lines: list[bytes]) -> None:
    path = write(scratch, ".jsonl", b"\n".join(lines))
    for load in (gsm8k, math500):
        examples = load(data=path)  # bad lines are skipped, never raised
        assert all(isinstance(e.question, str) and isinstance(e.gold, str) for e in examples)
    rows = list(read_jsonl(path))
    assert all(isinstance(obj, dict) for _, obj in rows)


def test_dataset_deeply_nested_line_is_skipped(scratch: Path) -> None:
    path = write(scratch, ".jsonl", '{"question": "q", "answer": "#### 1"}\n' + DEEP + "\n")
    assert len(gsm8k(data=path)) == 1


# -- tool-call JSON from models ------------------------------------------------------------------


def _raw_tool() -> Tool:
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "days": {"type": ["integer", "null"]}},
        "required": ["city"],
        "additionalProperties": False,
    }
    return Tool("get_weather", "Weather.", schema, lambda **kw: "sunny")


TOOLS = [calculator, _raw_tool()]
tool_names = words("calculator|get_weather||nope") | J
arguments = obj({}, expression=texts, city=texts, days=st.integers() | J) | J
good_calls = st.one_of(  # calls a model might well get right
    obj({"tool": st.just("calculator"), "arguments": obj({"expression": st.text(max_size=20)})}),
    obj(
        {"name": st.just("get_weather"), "arguments": obj({"city": texts}, days=st.integers() | J)}
    ),
)
replies = (
    good_calls | obj({}, tool=tool_names, name=tool_names, arguments=arguments, final_answer=J) | J
)
reply_texts = st.one_of(
    st.text(max_size=80),
    replies.map(json.dumps),
    st.tuples(st.text(max_size=20), replies).map(
        lambda p: f"{p[0]}\n```json\n{json.dumps(p[1])}\n```"
    ),
    st.tuples(st.text(max_size=20), replies).map(
        lambda p: f"{p[0]}<tool_call>{json.dumps(p[1])}</tool_call>"
    ),
)
native_calls = st.lists(
    obj(
        {
            "id": st.text(max_size=10) | st.none(),
            "type": st.just("function"),
            "function": obj(
                {
                    "name": words("calculator|get_weather|x"),
                    "arguments": arguments.map(json.dumps) | st.text(max_size=30) | arguments,
                }
            ),
        }
    )
    | good_calls.map(
        lambda c: {
            "id": "call_1",
            "function": {
                "name": c.get("tool") or c["name"],
                "arguments": json.dumps(c["arguments"]),
            },
        }
    ),
    max_size=3,
)


def check_decision(decision: Decision) -> None:
    assert isinstance(decision, Decision)
    outcomes = [decision.error is not None, decision.final is not None, bool(decision.tool_calls)]
    assert sum(outcomes) == 1, decision
    for call in decision.tool_calls:
        assert call.name in ("calculator", "get_weather")
        json.dumps(call.arguments)


@FAST
@given(
    text=reply_texts,
    calls=st.one_of(st.none(), native_calls),
    mode=st.sampled_from(["native", "json"]),
)
def test_tool_call_replies(text: str, calls: list[Any] | None, mode: Any) -> None:
    message: dict[str, Any] = {"role": "assistant", "content": text}
    if calls:
        message["tool_calls"] = calls
    check_decision(parse_completion(Completion(message=message), TOOLS, mode=mode))


@pytest.mark.parametrize("where", ["content", "native arguments"])
def test_tool_call_deeply_nested_reply(where: str) -> None:
    message: dict[str, Any] = {"role": "assistant", "content": DEEP}
    if where != "content":
        fn = {"name": "calculator", "arguments": DEEP}
        message = {"role": "assistant", "content": "", "tool_calls": [{"id": "1", "function": fn}]}
    decision = parse_completion(Completion(message=message), TOOLS, mode="json")
    assert decision.error


# -- model specs ---------------------------------------------------------------------------------


class _Built:
    """Stands in for a backend: records what the spec asked for, loads nothing."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args, self.kwargs = args, kwargs


spec_texts = st.text(max_size=40) | st.tuples(
    words("local|openai|ollama|vllm|http|https|LOCAL|"),
    words(":|://|: "),
    st.text(max_size=30),
    words("|@http://127.0.0.1:9/v1|#m|@|#"),
).map("".join)


@FAST
@given(spec=spec_texts)
@example(spec="openai:")
@example(spec="openai:@http://x")
@example(spec="http://127.0.0.1:9/v1")
def test_model_specs_parse(spec: str) -> None:
    """load_model with every backend's constructor stubbed: it only parses."""
    with pytest.MonkeyPatch.context() as mp:
        import toolpath.llm.local
        import toolpath.llm.vllm_engine

        mp.setattr(toolpath.llm.local, "LocalModel", _Built)
        mp.setattr(toolpath.llm.vllm_engine, "VLLMModel", _Built)
        mp.setattr(specs, "first_served_model", lambda url: "first")
        mp.setenv("OPENAI_API_KEY", "sk-test")
        try:
            model = specs.load_model(spec)
        except (ModelSpecError, ConfigError):
            return
        assert model is not None


@FAST
@given(spec=st.one_of(st.text(max_size=40), st.text(max_size=20).map(lambda t: f"{t}.gguf")))
@example(spec="~no-such-user-here/model.gguf")
@example(spec="model\x00.gguf")
@example(spec="tests")
@example(spec="pyproject.toml")
def test_model_file_specs_resolve(scratch: Path, spec: str) -> None:
    """A local model spec that is not a registry name: a checked path, or a typed error."""
    if spec.strip().lower() in {*models.REGISTRY, *models.ALIASES}:
        return  # those join or download the real model
    try:
        path = models.resolve(spec, cache=scratch / "models", download=False)
    except (ModelSpecError, ModelNotFoundError):
        return
    assert path.is_file() and path.read_bytes()[:4] == b"GGUF"


# -- CompWoB pages and their task metadata -------------------------------------------------------

page_names = st.text(
    st.characters(exclude_characters="/\x00", exclude_categories=["Cs"]),
    min_size=1,
    max_size=30,
).filter(lambda n: n not in (".", ".."))


@FAST
@given(
    stems=st.lists(page_names, max_size=4, unique=True),
    seeds=st.integers(-2, 4),
    variant=st.one_of(st.none(), st.sampled_from(["base", "reverse", "x"])),
    limit=st.one_of(st.none(), st.integers(-3, 5)),
)
@example(
    stems=["click-button_enter-text-reverse", "-reverse", "_"], seeds=1, variant=None, limit=None
)
def test_compwob_task_metadata(
    scratch: Path, stems: list[str], seeds: int, variant: str | None, limit: int | None
) -> None:
    folder = scratch / f"pages{next(_counter)}"
    folder.mkdir()
    for stem in stems:
        (folder / f"{stem}.html").write_text("<html></html>")
    try:
        examples = compwob_examples(folder, seeds, variant=variant, limit=limit)
    except ConfigError:
        return
    for ex in examples:
        meta = ex.meta
        assert meta["page"] == f"compwob/{meta['task']}"
        single = "_" not in meta["task"].removesuffix("-reverse")
        expected = "reverse" if meta["task"].endswith("-reverse") else "base"
        assert meta["variant"] == ("single" if single and expected == "base" else expected)
        assert isinstance(meta["base"], list) and ex.id == f"{meta['task']}#{meta['seed']}"


html_bits = words(
    "<script>|</script>|<script src='../core/core.js'>|var x = 1;|<body>|</body>|<div id='wrap'>|"
    "<div>|</div>|<title>|&amp;t&#xZZ;|</title>|<style>|#wrap { color: red }|</style>|"
    "<link rel='stylesheet' href='a.css'>|<link href="
)


@FAST
@given(
    name=st.text(max_size=20),
    text=st.one_of(
        st.text(max_size=200),
        st.lists(st.one_of(html_bits, st.text(max_size=10)), max_size=15).map("".join),
    ),
)
def test_compwob_pages(scratch: Path, name: str, text: str) -> None:
    try:
        page = parse_base(name, text)
    except ConfigError:
        pass
    else:
        assert page.inline and isinstance(page.body, str) and isinstance(page.title, str)
    with contextlib.suppress(ConfigError):
        load_base(name, source=scratch)

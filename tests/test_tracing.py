"""OpenTelemetry tracing: the spans of an agent run (their names, parents and GenAI attributes),
content off by default, errors as span status, nothing when off, OTLP to a real receiver
process, and the trace every eval run writes into its folder."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("opentelemetry.sdk")
pytest.importorskip("opentelemetry.exporter.otlp.proto.http")

from localserver import listening

from toolpath import tracing
from toolpath.agents.react import tool_agent
from toolpath.errors import BackendError, ToolError
from toolpath.evals.harness import Example, Record, run_eval
from toolpath.llm.base import ChatModelBase, Completion
from toolpath.llm.scripted import ScriptedModel
from toolpath.tools import calculator, tool

FIXTURES = Path(__file__).parent / "fixtures"


def call(name: str, **args: object) -> str:
    return json.dumps({"tool": name, "arguments": args})


def final(text: str) -> str:
    return json.dumps({"final_answer": text})


def read(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.fixture
def traced(tmp_path: Path) -> Iterator[Path]:
    """JSONL tracing on for the test; its file (read it after ``tracing.disable()``)."""
    path = tmp_path / "spans.jsonl"
    tracing.enable(path)
    yield path
    tracing.disable()


def by_id(spans: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {s["span_id"]: s for s in spans}


def parent_name(spans: list[dict[str, Any]], span: dict[str, Any]) -> str | None:
    parent = by_id(spans).get(span["parent_id"] or "")
    return None if parent is None else parent["name"]


def run(agent: Any, question: str, how: str) -> dict[str, Any]:
    if how == "invoke":
        return agent.invoke(question)
    if how == "ainvoke":
        return asyncio.run(agent.ainvoke(question))
    for _ in agent.stream(question, stream_mode=["custom", "updates"]):  # tokens streamed
        pass
    return {}


@pytest.mark.parametrize("how", ["invoke", "ainvoke", "stream"])
def test_a_run_is_one_trace_of_agent_node_model_and_tool_spans(traced: Path, how: str) -> None:
    model = ScriptedModel([call("calculator", expression="6 * 7"), final("42")])
    state = run(tool_agent(model, [calculator]), "What is 6 * 7?", how)
    tracing.disable()
    spans = read(traced)
    assert len({s["trace_id"] for s in spans}) == 1
    [agent] = [s for s in spans if s["kind"] == "agent"]
    assert agent["name"] == "invoke_agent tool_agent" and agent["parent_id"] is None
    assert agent["attributes"]["gen_ai.agent.name"] == "tool_agent"
    assert agent["attributes"]["toolpath.status"] == "done"
    nodes = sorted((s for s in spans if s["kind"] == "node"), key=lambda s: s["start"])
    assert [n["name"] for n in nodes] == ["node start", "node model", "node tools", "node model"]
    assert {n["parent_id"] for n in nodes} == {agent["span_id"]}
    models = sorted((s for s in spans if s["kind"] == "model"), key=lambda s: s["start"])
    assert len(models) == 2 and len(model.requests) == 2
    assert {parent_name(spans, m) for m in models} == {"node model"}
    for span in models:
        attrs = span["attributes"]
        assert span["name"] == "chat scripted"
        assert attrs["gen_ai.operation.name"] == "chat"
        assert attrs["gen_ai.provider.name"] == "scripted"
        assert attrs["gen_ai.request.model"] == "scripted"
        assert attrs["gen_ai.usage.input_tokens"] > 0 and attrs["gen_ai.usage.output_tokens"] > 0
        assert attrs["gen_ai.response.finish_reasons"] == ["stop"]
        assert "gen_ai.input.messages" not in attrs  # content is off by default
        assert span["start"] <= span["end"]
    [used] = [s for s in spans if s["kind"] == "tool"]
    assert used["name"] == "execute_tool calculator" and parent_name(spans, used) == "node tools"
    assert used["attributes"]["gen_ai.tool.name"] == "calculator"
    assert used["attributes"]["gen_ai.tool.call.id"].startswith("call_")
    assert "gen_ai.tool.call.arguments" not in used["attributes"]
    total_in = sum(m["attributes"]["gen_ai.usage.input_tokens"] for m in models)
    assert agent["attributes"]["gen_ai.usage.input_tokens"] == total_in
    if state:  # the span's tokens are the run's own count
        assert total_in == sum(r.get("tokens_in", 0) for r in state["trace"])


def test_content_is_recorded_when_asked(tmp_path: Path) -> None:
    path = tmp_path / "spans.jsonl"
    with tracing.tracing(path, content=True):
        model = ScriptedModel([call("calculator", expression="6 * 7"), final("42")])
        tool_agent(model, [calculator]).invoke("What is 6 * 7?")
    spans = read(path)
    first = min((s for s in spans if s["kind"] == "model"), key=lambda s: s["start"])
    sent = json.loads(first["attributes"]["gen_ai.input.messages"])
    assert sent[-1] == {"role": "user", "content": "What is 6 * 7?"}
    said = json.loads(first["attributes"]["gen_ai.output.messages"])
    assert "calculator" in said[0]["content"]
    [used] = [s for s in spans if s["kind"] == "tool"]
    assert json.loads(used["attributes"]["gen_ai.tool.call.arguments"]) == {"expression": "6 * 7"}
    assert used["attributes"]["gen_ai.tool.call.result"] == "42"


def test_errors_set_the_span_status(traced: Path) -> None:
    @tool
    def divide(a: float, b: float) -> float:
        """Divide a by b."""
        if b == 0:
            raise ToolError("cannot divide by zero")
        return a / b

    def down(_messages: Any) -> str:
        raise BackendError("the model server is down")

    model = ScriptedModel([call("divide", a=1, b=0), down])
    with pytest.raises(BackendError):
        tool_agent(model, [divide]).invoke("What is 1 / 0?")
    tracing.disable()
    spans = read(traced)
    [failed_tool] = [s for s in spans if s["kind"] == "tool"]
    assert failed_tool["status"] == "error" and "divide by zero" in failed_tool["error"]
    failed_model = [s for s in spans if s["kind"] == "model" and s["status"] == "error"]
    assert len(failed_model) == 1
    assert failed_model[0]["attributes"]["error.type"] == "BackendError"
    assert "server is down" in failed_model[0]["error"]
    [agent] = [s for s in spans if s["kind"] == "agent"]
    assert agent["status"] == "error"
    assert [s["status"] for s in spans if s["name"] == "node start"] == ["unset"]


class Delegating(ChatModelBase):
    """A backend that hands every call to another backend (as the local one does)."""

    provider = "delegating"

    def __init__(self, inner: ScriptedModel) -> None:
        self.inner, self.name = inner, "outer"

    def complete(self, messages: Any, **options: Any) -> Completion:
        return self.inner.complete(messages, **options)


def test_a_delegated_call_is_one_span_and_no_span_when_off(traced: Path) -> None:
    outer = Delegating(ScriptedModel(["hello"], cycle=True))
    outer.complete([{"role": "user", "content": "hi"}])
    asyncio.run(outer.acomplete([{"role": "user", "content": "hi"}]))  # complete, on a thread
    list(outer.stream([{"role": "user", "content": "hi"}]))
    tracing.disable()
    outer.complete([{"role": "user", "content": "hi"}])  # off: no span
    model = ScriptedModel([call("calculator", expression="1 + 1"), final("2")])
    assert tool_agent(model, [calculator]).invoke("1 + 1?")["answer"] == "2"
    spans = read(traced)
    assert [s["name"] for s in spans] == ["chat outer"] * 3
    assert {s["attributes"]["gen_ai.provider.name"] for s in spans} == {"delegating"}
    assert tracing.active() is None


def test_bad_exporter_names_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown trace exporter"):
        tracing.enable("jaeger")
    assert tracing.active() is None


def test_otlp_spans_reach_a_real_receiver(tmp_path: Path) -> None:
    received = tmp_path / "received.jsonl"
    command = [sys.executable, str(FIXTURES / "otlp_receiver.py")]
    with listening(lambda port: [*command, str(port), str(received)]) as port:
        with tracing.tracing(f"otlp:http://127.0.0.1:{port}"):
            model = ScriptedModel([call("calculator", expression="6 * 7"), final("42")])
            tool_agent(model, [calculator]).invoke("What is 6 * 7?")
        deadline = time.monotonic() + 10  # disable() flushed; the receiver writes as it decodes
        while len(read(received)) < 8 and time.monotonic() < deadline:
            time.sleep(0.05)
    spans = read(received)
    names = sorted(s["name"] for s in spans)
    assert names == sorted(
        ["invoke_agent tool_agent", "node start", "node model", "node tools", "node model"]
        + ["chat scripted"] * 2
        + ["execute_tool calculator"]
    )
    assert {s["service"] for s in spans} == {"toolpath"} and {s["scope"] for s in spans} == {
        "toolpath"
    }
    ids = by_id(spans)
    [agent] = [s for s in spans if s["name"].startswith("invoke_agent")]
    assert agent["parent_id"] is None
    for span in spans:
        if span["name"].startswith("node "):
            assert span["parent_id"] == agent["span_id"]
        if span["name"] == "chat scripted":
            assert ids[span["parent_id"]]["name"] == "node model"
            assert span["attributes"]["gen_ai.usage.input_tokens"] > 0
            assert span["attributes"]["gen_ai.usage.output_tokens"] > 0
        if span["name"] == "execute_tool calculator":
            assert ids[span["parent_id"]]["name"] == "node tools"
    tokens = sum(
        s["attributes"].get("gen_ai.usage.input_tokens", 0)
        for s in spans
        if s["name"] == "chat scripted"
    )
    assert agent["attributes"]["gen_ai.usage.input_tokens"] == tokens


class CalculatorTask:
    """Each example: the tool agent on a scripted model that calls the calculator once."""

    name = "calc"

    def load(self, **_: Any) -> list[Example]:
        return [Example(f"q{i}", f"What is {i} * 7?", str(i * 7)) for i in range(3)]

    async def run_one(self, example: Example, agent: Any) -> Record:
        i = int(example.id[1:])
        model = ScriptedModel([call("calculator", expression=f"{i} * 7"), final(str(i * 7))])
        state = await tool_agent(model, [calculator]).ainvoke(example.question)
        trace = state["trace"]
        tokens = {
            "prompt": sum(r.get("tokens_in", 0) for r in trace),
            "completion": sum(r.get("tokens_out", 0) for r in trace),
        }
        return {"id": example.id, "answer": state["answer"], "tokens": tokens}

    def score(self, record: Record) -> dict[str, float]:
        return {"correct": float(record["answer"] == str(int(record["id"][1:]) * 7))}


@pytest.mark.parametrize("model", ["local", "openai:gpt-4o-mini", "instance"])
async def test_an_eval_run_writes_its_trace_and_prices_its_tokens(
    tmp_path: Path, model: Any
) -> None:
    if model == "instance":  # a ChatModel: kept as provider:name, and local costs $0
        model = ScriptedModel([], name="qwen2.5-coder-1.5b")
    task = CalculatorTask()
    result = await run_eval(
        task, task.load(), None, out_dir=tmp_path, method="tools", progress=False, model=model
    )
    spans = read(tmp_path / "trace.jsonl")
    episodes = sorted(s["name"] for s in spans if s["kind"] == "episode")
    assert episodes == ["episode q0", "episode q1", "episode q2"]
    for agent in (s for s in spans if s["kind"] == "agent"):
        [root] = [s for s in spans if s["span_id"] == agent["parent_id"]]
        assert root["kind"] == "episode" and root["trace_id"] == agent["trace_id"]
    assert len({s["trace_id"] for s in spans}) == 3
    summary = result.summary["methods"]
    assert list(summary) == ["tools"]  # trace.jsonl is not a method's results
    tools = summary["tools"]
    assert tools["scores"]["correct"] == 100.0
    total = sum(r["tokens"]["prompt"] + r["tokens"]["completion"] for r in result.records)
    assert tools["tokens_total"] == total
    if model != "openai:gpt-4o-mini":
        assert tools["usd"] == 0.0 and tools["usd_total"] == 0.0
    else:  # gpt-4o-mini: $0.15 / $0.60 per million input / output tokens
        cost = sum(
            (r["tokens"]["prompt"] * 0.15 + r["tokens"]["completion"] * 0.60) / 1e6
            for r in result.records
        )
        assert tools["usd_total"] == pytest.approx(cost, abs=1e-6) and tools["usd_total"] > 0
    assert (tmp_path / "trace.html").exists()
    assert "[trace.html](trace.html)" in (tmp_path / "summary.md").read_text()
    assert tracing.active() is None  # the run's own tracing ended with it


def test_cli_traces_a_command_and_draws_the_trace(tmp_path: Path, capsys: Any) -> None:
    from toolpath.cli import main

    path = tmp_path / "cli.jsonl"
    assert main(["--trace-to", str(path), "models", "list"]) == 0
    assert tracing.active() is None  # main() flushed and closed it
    assert path.exists()
    with tracing.tracing(path):
        model = ScriptedModel([call("calculator", expression="6 * 7"), final("42")])
        tool_agent(model, [calculator]).invoke("What is 6 * 7?")
    capsys.readouterr()
    assert main(["trace", "view", str(path), "--out", str(tmp_path / "page.html")]) == 0
    printed = capsys.readouterr().out.strip()
    assert printed == str(tmp_path / "page.html") and "chat scripted" in Path(printed).read_text()
    assert main(["--trace-to", "jaeger", "models", "list"]) == 2
    assert "unknown trace exporter" in capsys.readouterr().err
    assert main(["trace", "view", str(tmp_path / "missing")]) == 2
    assert tracing.active() is None


def test_an_agent_run_inside_another_agents_node_is_its_child(traced: Path) -> None:
    from typing import TypedDict

    from langgraph.graph import END, START, StateGraph

    from toolpath.agents.base import finish

    inner = tool_agent(
        ScriptedModel([call("calculator", expression="6 * 7"), final("42")]), [calculator]
    )

    class S(TypedDict, total=False):
        question: str
        answer: str

    def ask(state: S) -> S:
        return {"answer": inner.invoke(state["question"])["answer"]}

    g = StateGraph(S)
    g.add_node("ask", ask)
    g.add_edge(START, "ask")
    g.add_edge("ask", END)
    outer = finish(g.compile(name="outer"), lambda q: {"question": q})
    assert outer.invoke("What is 6 * 7?")["answer"] == "42"
    tracing.disable()
    spans = read(traced)
    names = [s["name"] for s in spans]
    assert names.count("node ask") == 1 and names.count("node model") == 2  # no doubles
    inner_run = next(s for s in spans if s["name"] == "invoke_agent tool_agent")
    assert parent_name(spans, inner_run) == "node ask"
    for node in (s for s in spans if s["name"] in ("node model", "node tools", "node start")):
        assert node["parent_id"] == inner_run["span_id"]
    assert {parent_name(spans, s) for s in spans if s["kind"] == "model"} == {"node model"}
    assert {parent_name(spans, s) for s in spans if s["kind"] == "tool"} == {"node tools"}

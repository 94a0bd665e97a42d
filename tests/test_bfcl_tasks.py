"""``toolpath eval bfcl``'s episodes: BFCL functions as tools, both methods on the scripted
model, the side-by-side report, and one real call with the embedded 0.5B model."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from toolpath.cli import app
from toolpath.evals.bfcl.data import load_items
from toolpath.evals.bfcl.matcher import match
from toolpath.evals.bfcl.tasks import bfcl_tool, method_for, run_bfcl
from toolpath.llm.scripted import ScriptedModel

FIXTURES = Path(__file__).parent / "fixtures" / "bfcl"


def test_bfcl_types_become_json_schema() -> None:
    doc = {
        "name": "geo.route",
        "description": "Plan a route.",
        "parameters": {
            "type": "dict",
            "properties": {
                "stops": {"type": "tuple", "items": {"type": "float"}},
                "options": {"type": "dict", "properties": {"avoid": {"type": "any"}}},
            },
            "required": ["stops"],
        },
    }
    t = bfcl_tool(doc)
    assert t.name == "geo.route" and t.wire_name == "geo_route"
    props = t.parameters["properties"]
    assert t.parameters["type"] == "object" and t.parameters["required"] == ["stops"]
    assert props["stops"] == {"type": "array", "items": {"type": "number", "format": "float"}}
    assert props["options"] == {"type": "object", "properties": {"avoid": {}}}


def test_both_methods_side_by_side_on_the_scripted_model(tmp_path: Path) -> None:
    right = {
        "tool_calls": [{"name": "math_tools_power", "arguments": {"base": "12", "exponent": 2}}]
    }
    replies = [
        json.dumps(right),  # toolpath, simple_python_0: the "12" is coerced to 12
        "not json",  # toolpath, simple_python_1: unusable...
        '{"final_answer": "I cannot book tables."}',  # ...and after the repair, a refusal
        json.dumps(
            {"calls": [{"name": "math_tools.power", "arguments": {"base": 12, "exponent": 2}}]}
        ),
        json.dumps({"calls": []}),  # raw declines simple_python_1
    ]
    model = ScriptedModel(replies)
    report = asyncio.run(
        run_bfcl(model, {"simple": (0, 2)}, ["toolpath", "raw"], out_dir=tmp_path, data=FIXTURES)
    )
    assert model.remaining == 0
    tp, raw = report["simple"]["toolpath"], report["simple"]["raw"]
    assert tp["n"] == raw["n"] == 2
    assert tp["scores"] == {"accuracy": 50.0, "no_call": 50.0}
    assert raw["scores"] == {"accuracy": 50.0, "no_call": 50.0}
    records = [
        json.loads(x) for x in (tmp_path / "simple" / "toolpath.jsonl").read_text().splitlines()
    ]
    assert records[0]["calls"] == [{"math_tools.power": {"base": 12, "exponent": 2}}]
    assert records[1]["errors"] and len(records[1]["replies"]) == 2  # one repair was asked for
    repair = model.requests[2].messages
    assert repair[-1]["role"] == "user"
    assert repair[-1]["content"].startswith("Your reply could not be used: ")
    assert "| simple | toolpath | 2 | 50.0 | 50.0 |" in (tmp_path / "report.md").read_text()
    # the same command again resumes: nothing left to run, no model call made
    again = asyncio.run(
        run_bfcl(model, {"simple": (0, 2)}, ["toolpath", "raw"], out_dir=tmp_path, data=FIXTURES)
    )
    assert again["simple"]["toolpath"]["n"] == 2


def test_a_question_s_own_system_text_goes_into_the_one_system_prompt() -> None:
    item = load_items("simple", FIXTURES)[2]
    assert item.question[0]["role"] == "system"
    for name in ("toolpath", "raw"):
        model = ScriptedModel(['{"final_answer": "no"}' if name == "toolpath" else '{"calls": []}'])
        asyncio.run(method_for(name, model)(item))
        sent = model.requests[0].messages
        assert [m["role"] for m in sent] == ["system", "user"]
        assert sent[0]["content"].startswith(item.question[0]["content"])


def test_the_cli_explains_itself_and_refuses_bad_input() -> None:
    runner = CliRunner()
    shown = runner.invoke(app, ["eval", "bfcl", "--help"])
    assert shown.exit_code == 0 and "AST rules" in shown.output and "--method" in shown.output
    bad = subprocess.run(
        [sys.executable, "-m", "toolpath.cli", "eval", "bfcl", "--category", "live_simple"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2 and "unknown category live_simple" in bad.stderr


@pytest.mark.model
def test_a_real_bfcl_style_call_with_the_embedded_model() -> None:
    from toolpath.agents import adecide
    from toolpath.llm.local import LocalModel

    model = LocalModel("qwen2.5-coder-0.5b")
    try:
        item = load_items("simple", FIXTURES)[0]  # "What is 12 squared?", math_tools.power
        tools = [bfcl_tool(f) for f in item.functions]
        decision = asyncio.run(adecide(model, item.question, tools, max_tokens=200))
    finally:
        model.close()
    # the 0.5B's call comes back under the function's own dotted name, validated: 12 squared
    assert decision.error is None and decision.tool_calls, decision
    calls = [{c.name: c.arguments} for c in decision.tool_calls]
    assert list(calls[0]) == ["math_tools.power"]
    assert (calls[0]["math_tools.power"]["base"], calls[0]["math_tools.power"]["exponent"]) == (
        12,
        2,
    )
    verdict = match(item.functions, calls, item.answers, "simple")
    assert verdict.ok or verdict.kind == "value", verdict  # BFCL may still dislike a value

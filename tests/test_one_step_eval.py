"""The one-step comparison (toolpath/evals/one_step): deterministic executable tasks whose
gold calls give their gold answers, exact scoring, each agent run through the harness on the
scripted model, and ``toolpath eval one-step``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from toolpath.errors import ToolError
from toolpath.evals.harness import load_records, run_eval_sync, score_record
from toolpath.evals.one_step.compare import AGENTS, OneStepEval, agent_factory, write_report
from toolpath.evals.one_step.scoring import answer_matches, calls_cover
from toolpath.evals.one_step.tasks import TEMPLATES, all_tasks, generate, run_gold
from toolpath.evals.one_step.world import CATALOG, coords, parse_coords
from toolpath.llm.scripted import ScriptedModel
from toolpath.retrieval.synthetic import synthetic_catalog

TASKS = all_tasks()


def test_the_generator_is_deterministic_and_shaped_as_asked():
    tasks = generate(50, seed=0)
    assert [t.to_dict() for t in tasks] == [t.to_dict() for t in generate(50, seed=0)]
    assert [t.to_dict() for t in generate(12, seed=0)] == [t.to_dict() for t in tasks[:12]]
    assert [t.request for t in generate(50, seed=1)] != [t.request for t in tasks]
    assert len({t.id for t in tasks}) == len({t.request for t in tasks}) == 50
    assert {t.template for t in tasks} == set(TEMPLATES)
    assert sum(t.dependent for t in tasks) >= 25  # a dependency in at least half
    for t in tasks:
        assert 2 <= len(t.calls) <= 4 and 6 <= len(t.tools) <= 8
        assert {c["name"] for c in t.calls} <= set(t.tools) <= set(CATALOG)
    fixture = [t for t in TASKS if t.source == "fixture"]
    assert len(fixture) == 8 and sum(t.dependent for t in fixture) == 6
    assert all(2 <= len(t.calls) <= 4 for t in fixture)


def test_the_executable_tools_are_the_synthetic_catalogs_apis_and_deterministic():
    names = " ".join(t.name for t in synthetic_catalog(2000))
    assert all(f"_{name}_" in names for name in CATALOG)
    geocode, forecast = CATALOG["geocode_address"], CATALOG["weather_forecast"]
    here = geocode.run({"address": "Rua Augusta 100, Lisbon"})
    assert here == geocode.run({"address": "  rua augusta 100,  LISBON"})
    assert parse_coords(here) == coords("Rua Augusta 100, Lisbon")
    spaced = here.replace(",", ", ")
    assert forecast.run({"location": here, "days": 2}) == forecast.run(
        {"location": spaced, "days": 2}
    )
    with pytest.raises(ToolError, match="geocode_address"):
        forecast.run({"location": "Lisbon"})


@pytest.mark.parametrize("task", TASKS, ids=[t.id for t in TASKS])
def test_the_gold_calls_give_the_gold_answer(task):
    results, resolved = run_gold(task)
    assert answer_matches(" ".join(results), task.answer), (results, task.answer)
    assert answer_matches(results[-1], task.answer[-1:])  # the last value: the last call's
    assert calls_cover(resolved, resolved)
    assert not any("$" in json.dumps(c["arguments"]) for c in resolved)


def test_answers_are_checked_exactly():
    assert answer_matches("The difference is 1,288,000 people.", [1288000])
    assert answer_matches("About 42.16 km; 3.5133 hours.", [42.16, 3.51])  # within 0.5%
    assert not answer_matches("About 42.16 km; 3.6 hours.", [42.16, 3.51])  # partly right
    assert not answer_matches("1288", [1288000])
    assert answer_matches("Porto is in PORTUGAL; it uses the euro (EUR).", ["Portugal", "EUR"])
    assert answer_matches("Flight LH400 is on time.", ["on time"])
    assert not answer_matches("Flight LH400 is on time.", ["on", "delayed"])
    assert not answer_matches("Captain: Ana Silvano", ["Ana Silva"])  # whole words only
    assert answer_matches("Temperature: −3.5 °C", [-3.5])
    assert not answer_matches(None, [1]) and not answer_matches("", ["x"])


GOLD = [
    {"name": "geocode_address", "arguments": {"address": "Oslo"}, "key": ["address"]},
    {
        "name": "weather_forecast",
        "arguments": {"location": "48.85,2.35", "days": 3},
        "key": ["location", "days"],
    },
    {"name": "calculator", "arguments": {"expression": "1 + 2"}, "key": []},
]


def ran(name: str, **arguments: Any) -> dict[str, Any]:
    return {"name": name, "arguments": arguments, "ok": True}


def test_calls_are_covered_by_tool_and_key_arguments():
    right = [
        ran("geocode_address", address="oslo "),
        ran("market_news", symbol="IBM"),  # an extra call is allowed
        ran("weather_forecast", location="48.85, 2.35", days=3.0),
        ran("calculator", expression="1+2"),  # no key arguments: the tool is enough
    ]
    assert calls_cover(right, GOLD)
    assert not calls_cover(right[:3], GOLD)  # partly right: a call is missing
    wrong_days = [*right[:2], ran("weather_forecast", location="48.85,2.35", days=4), right[3]]
    assert not calls_cover(wrong_days, GOLD)
    twice = [ran("stock_quote", symbol="IBM")]
    gold = [{"name": "stock_quote", "arguments": {"symbol": "IBM"}, "key": ["symbol"]}] * 2
    assert not calls_cover(twice, gold)  # one executed call covers one gold call


def record(answer: str | None, calls: list[dict[str, Any]]) -> dict[str, Any]:
    return {"id": "x", "answer": answer, "gold": [1.5, "rain"], "gold_calls": GOLD, "calls": calls}


def test_records_are_scored_for_success_and_calls_apart():
    family = OneStepEval()
    calls = [
        ran("geocode_address", address="Oslo"),
        ran("weather_forecast", location="48.85,2.35", days=3),
    ]
    calls.append(ran("calculator", expression="x"))
    assert family.score(record("1.5 °C and rain", calls)) == {"success": 1.0, "calls_match": 1.0}
    assert family.score(record("1.5 °C and sun", calls)) == {"success": 0.0, "calls_match": 1.0}
    guessed = record("1.5 °C, rain", calls[:1])  # right answer without the calls
    assert family.score(guessed) == {"success": 1.0, "calls_match": 0.0}
    failed = {"id": "x", "gold": json.dumps([1.5]), "error": "TimeoutError: too slow"}
    assert score_record(family, failed) == {"success": 0.0, "calls_match": 0.0}


def scripted_replies(agent: str) -> list[str]:
    """Replies that make fixture-04's gold calls, in each agent's own format."""
    steps = [
        ("city_country", {"city": "Osaka"}, {"city": "Osaka"}),
        ("country_currency", {"country": "$1"}, {"country": "Japan"}),
        ("currency_rate", {"base": "USD", "target": "$2"}, {"base": "USD", "target": "JPY"}),
        ("calculator", {"expression": "250 * $3"}, {"expression": "250 * 151.2"}),
    ]
    answer = "250 US dollars buy 37,800 Japanese yen."
    if agent == "one-step":
        plan = [{"name": n, "arguments": planned} for n, planned, _ in steps]
        return [json.dumps({"steps": plan}), answer]
    if agent == "tools":
        calls = [json.dumps({"tool": n, "arguments": args}) for n, _, args in steps]
        return [*calls, json.dumps({"final_answer": answer})]
    replies = []
    for n, _, args in steps:
        replies += [
            f"I call {n} next.\nNext: caller",
            f"Action: {n}\nAction Input: {json.dumps(args)}",
        ]
    return [*replies, "That answers it.\nNext: conclusion", answer]


@pytest.mark.parametrize(
    ("agent", "model_calls"), [("one-step", 2), ("tools", 5), ("alpha-umi", 10)]
)
def test_each_agent_runs_a_task_through_the_harness(agent, model_calls, tmp_path: Path):
    family = OneStepEval(fixture_only=True)
    examples = [e for e in family.load() if e.id == "fixture-04"]
    model = ScriptedModel(scripted_replies(agent))
    result = run_eval_sync(
        family,
        examples,
        agent_factory(agent, model),
        out_dir=tmp_path,
        method=agent,
        progress=False,
        trace=False,
    )
    [rec] = result.records
    assert rec["error"] is None and rec["status"] == "done", rec
    assert rec["scores"] == {"success": 1.0, "calls_match": 1.0}
    assert [c["name"] for c in rec["calls"]] == [
        "city_country",
        "country_currency",
        "currency_rate",
        "calculator",
    ]
    assert rec["calls"][2]["arguments"] == {"base": "USD", "target": "JPY"}
    assert rec["model_calls"] == model_calls == len(model.requests)
    assert rec["tool_calls"] == 4 and rec["tokens"]["prompt"] > 0 and rec["seconds"] >= 0
    assert rec["dependent"] is True and rec["source"] == "fixture"
    assert model.remaining == 0
    report = write_report(tmp_path, family)
    row = report[agent]["all"]
    assert row["success"] == 100.0 and row["model_calls"] == model_calls
    assert (
        "| " + agent + " | dependent | 1 | 0 | 100.0 | 100.0 |"
        in (tmp_path / "report.md").read_text()
    )
    assert (tmp_path / "summary.md").exists()


def gold_plan(messages: list[dict[str, Any]]) -> str:
    """The one-step plan of whichever task is asked (its gold calls), or its gold answer."""
    text = messages[-1]["content"]
    for task in TASKS:
        if text == f"Task: {task.request}":
            steps = [{"name": c["name"], "arguments": c["arguments"]} for c in task.calls]
            return json.dumps({"steps": steps})
        if text.startswith(f"Task: {task.request}\n"):
            return "The answer: " + ", ".join(str(v) for v in task.answer)
    raise AssertionError(f"no task asks {text!r}")


def test_the_gold_plans_succeed_on_every_task_with_the_one_step_agent(tmp_path: Path):
    family = OneStepEval()
    examples = family.load()
    assert len(examples) == 58
    model = ScriptedModel([gold_plan], cycle=True)
    result = run_eval_sync(
        family,
        examples,
        agent_factory("one-step", model),
        out_dir=tmp_path,
        method="one-step",
        progress=False,
        trace=False,
    )
    failed = [
        r["id"] for r in result.records if r["scores"] != {"success": 1.0, "calls_match": 1.0}
    ]
    assert not failed
    assert all(r["model_calls"] == 2 for r in result.records)
    report = write_report(tmp_path, family)["one-step"]
    assert set(report) == {"all", "fixture", "generated", "dependent"}
    assert report["all"]["n"] == 58 and report["generated"]["n"] == 50


def test_a_wrong_plan_is_a_failure_with_its_calls_recorded(tmp_path: Path):
    family = OneStepEval(fixture_only=True)
    [example] = [e for e in family.load() if e.id == "fixture-03"]
    plan = {"steps": [{"name": "city_country", "arguments": {"city": "Lyon"}}]}
    model = ScriptedModel([json.dumps(plan), "France uses EUR."])
    result = run_eval_sync(
        family,
        [example],
        agent_factory("one-step", model),
        out_dir=tmp_path,
        method="one-step",
        progress=False,
        trace=False,
    )
    [rec] = result.records
    assert rec["scores"] == {"success": 0.0, "calls_match": 0.0}
    assert rec["calls"] == [
        {"name": "city_country", "arguments": {"city": "Lyon"}, "ok": True, "result": "France"}
    ]


def test_cli_help_and_a_scripted_run_that_resumes(tmp_path: Path, monkeypatch):
    from typer.testing import CliRunner

    from toolpath.cli import app
    from toolpath.cli import one_step as cli

    res = CliRunner().invoke(app, ["eval", "one-step", "--help"])
    assert res.exit_code == 0, res.output
    for word in ("--agents", "--tasks", "--fixture-only", "--out", "resumes", "one-step"):
        assert word in res.output
    monkeypatch.setattr(cli, "load", lambda spec: ScriptedModel([gold_plan], cycle=True))
    argv = ["eval", "one-step", "--agents", "one-step", "--tasks", "2", "--out", str(tmp_path)]
    for _ in range(2):  # the second run finds both tasks done
        res = CliRunner().invoke(app, argv)
        assert res.exit_code == 0, res.output
    assert len(load_records(tmp_path / "one-step.jsonl")) == 2
    assert "one-step" in res.output and "100.0" in res.output
    assert (tmp_path / "report.md").exists() and (tmp_path / "report.json").exists()
    bad = CliRunner().invoke(app, ["eval", "one-step", "--agents", "react", "--out", str(tmp_path)])
    assert bad.exit_code != 0
    assert set(AGENTS) == {"one-step", "tools", "alpha-umi"}

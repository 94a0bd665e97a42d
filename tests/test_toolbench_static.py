"""α-UMi's static step-level evaluation: the GLPFT loader, the metrics, the driver and the CLI."""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import typer
from faultserver import FaultServer
from typer.testing import CliRunner

from toolpath.agents.alpha_umi.format import role_prompt
from toolpath.cli.alpha_umi import register
from toolpath.errors import BackendError, ConfigError, DatasetError
from toolpath.evals.alpha_umi.glpft import backbone_history, load_glpft
from toolpath.evals.alpha_umi.static import (
    action_score,
    aggregate,
    argument_f1,
    is_hallucination,
    lcs_length,
    make_steps,
    parse_backbone,
    plan_score,
    rouge_l,
    run_static_eval,
)
from toolpath.evals.harness import load_records
from toolpath.llm.base import Message

FIXTURE = Path(__file__).parent / "fixtures" / "glpft_static.json"


@pytest.fixture(scope="module")
def data() -> Any:
    return load_glpft(FIXTURE)


def raw_records() -> list[dict[str, Any]]:
    return list(json.loads(FIXTURE.read_text(encoding="utf-8")))


# -- the loader ----------------------------------------------------------------------------------


def test_fixture_loads_with_parsed_tools_and_ids(data: Any) -> None:
    assert [d.id for d in data.dialogues] == [str(i) for i in range(8)]
    assert data.skipped == []
    weather = data.dialogues[0]
    assert weather.tool_names == {"current_weather_for_skycast", "forecast_for_skycast"}
    (units,) = [t for t in weather.tools if t.name == "current_weather_for_skycast"]
    assert units.parameters["required"] == ["city"]  # "units" is marked (optional)
    assert [d.finished for d in data.dialogues] == [True] * 4 + [False] + [True] * 3
    # one step per assistant/caller/conclusion turn: 28 + 20 + 7 (counted in the fixture)
    multi = make_steps(data.dialogues, "multi")
    roles = [s.role for s in multi]
    assert (roles.count("planner"), roles.count("caller"), roles.count("summarizer")) == (28, 20, 7)
    single = make_steps(data.dialogues, "single")
    assert len(single) == 28 and {s.role for s in single} == {"backbone"}
    assert [s.id for s in multi[:6]] == ["0/1", "0/2", "0/4", "0/5", "0/7", "0/8"]


def test_bad_records_are_skipped_and_named(tmp_path: Path) -> None:
    good = raw_records()[0]
    user = {"from": "user", "value": "hi"}
    plan = {"from": "assistant", "value": "Next: caller."}
    records: list[Any] = [
        good,
        "not a record",
        {"tools": [], "conversations": []},
        {"conversations": [user, plan]},
        {"tools": [], "conversations": [user, {"from": "robot", "value": "beep"}]},
        {"tools": [], "conversations": [plan, user]},
        {"tools": [], "conversations": [user, plan, {"from": "caller", "value": "call it"}]},
        {"tools": [], "conversations": [user]},
    ]
    path = tmp_path / "mixed.json"
    path.write_text(json.dumps(records), encoding="utf-8")
    loaded = load_glpft(path)
    assert [d.id for d in loaded.dialogues] == ["0"]
    reasons = {where.rsplit(" ", 1)[-1]: why for where, why in loaded.skipped}
    assert reasons == {
        "#1": "expected an object, got str",
        "#2": "no 'conversations' list (or it is empty)",
        "#3": "no 'tools' list",
        "#4": "turn 1 has the unknown role 'robot'; use user, assistant, caller, observation, "
        "conclusion",
        "#5": "the first turn is 'assistant'; a dialogue starts with 'user'",
        "#6": "turn 2 (caller) has no 'Action: NAME' line",
        "#7": "no 'assistant' (planner) turn: nothing to evaluate",
    }
    assert all(where.startswith(f"{path} record #") for where, _ in loaded.skipped)
    with pytest.raises(DatasetError, match=r"mixed\.json record #1: expected an object"):
        load_glpft(path, strict=True)


def test_file_errors_are_typed_and_say_where(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="not found"):
        load_glpft(tmp_path / "absent.json")
    broken = tmp_path / "broken.json"
    broken.write_text('[{"tools": []},\n  {oops}]', encoding="utf-8")
    with pytest.raises(DatasetError, match=r"not valid JSON: .* at line 2 column 4"):
        load_glpft(broken)
    obj = tmp_path / "obj.json"
    obj.write_text('{"data": []}', encoding="utf-8")
    with pytest.raises(DatasetError, match=r"expected a JSON list .* got dict"):
        load_glpft(obj)
    useless = tmp_path / "useless.json"
    useless.write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(DatasetError, match=r"no usable GLPFT dialogues .*2 skipped.*record #0"):
        load_glpft(useless)


def test_jsonl_ids_limit_and_repeated_ids(tmp_path: Path) -> None:
    a, b = raw_records()[:2]
    path = tmp_path / "runs.jsonl"
    lines = [json.dumps({**a, "id": "x"}), '{"torn', json.dumps({**b, "id": "x"}), json.dumps(b)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    loaded = load_glpft(path)
    assert [d.id for d in loaded.dialogues] == ["x", "4"]  # no id: the line number
    assert [w.rsplit(" ", 2)[-2:] for w, _ in loaded.skipped] == [["line", "2"], ["line", "3"]]
    assert "not valid JSON" in loaded.skipped[0][1] and "repeats" in loaded.skipped[1][1]
    assert [d.id for d in load_glpft(path, limit=1).dialogues] == ["x"]


# -- the metrics ---------------------------------------------------------------------------------


def test_rouge_l_by_hand() -> None:
    assert lcs_length(["a", "b", "c", "d"], ["a", "c", "d", "b"]) == 3  # a c d
    assert lcs_length([], ["a"]) == 0
    # 6 and 6 tokens; LCS "the cat on the mat" = 5: P = R = 5/6
    assert rouge_l("the cat sat on the mat", "the cat is on the mat") == pytest.approx(5 / 6)
    # 4 and 6 tokens; LCS "is sunny today" = 3: P = 3/4, R = 3/6, F = 2PR/(P+R) = 0.6
    assert rouge_l("Paris is sunny today", "it is sunny in paris today") == pytest.approx(0.6)
    assert rouge_l("", "anything") == 0.0 and rouge_l("x", "") == 0.0
    assert rouge_l("no overlap", "at all") == 0.0
    assert rouge_l("Same Words", "same words") == 1.0  # case-insensitive


def test_argument_f1_by_hand() -> None:
    gold = {"a": 1, "b": 2, "c": 3}
    # a matches (1), b has a wrong value (0.5), c missing, d extra: m = 1.5, R = P = 1.5/3
    assert argument_f1({"a": 1, "b": 5, "d": 0}, gold) == pytest.approx(0.5)
    # m = 1: R = 1/2, P = 1/1, F1 = 2/3
    only_city = argument_f1({"city": "Paris"}, {"city": "Paris", "units": "metric"})
    assert only_city == pytest.approx(2 / 3)
    assert argument_f1({"x": 1}, {"x": 1}) == 1.0
    assert argument_f1({"n": "1"}, {"n": 1}) == pytest.approx(0.5)  # JSON equality: "1" != 1
    assert argument_f1({}, {}) == 1.0 and argument_f1({"x": 1}, {}) == 0.0
    assert argument_f1({}, {"a": 1}) == 0.0 and argument_f1({"z": 1}, {"a": 1}) == 0.0
    assert argument_f1(None, {"a": 1}) == 0.0 and argument_f1(None, {}) == 0.0


def test_plan_action_and_hallucination() -> None:
    assert plan_score("give up", "give up") == 1.0
    assert plan_score("caller", "conclusion") == 0.0 and plan_score(None, "caller") == 0.0
    tools = {"web_search_for_findit", "page_summary_for_findit"}
    assert action_score("web_search_for_findit", "web_search_for_findit") == 1.0
    assert action_score("web search for findit", "web_search_for_findit") == 1.0  # sanitized
    assert action_score("Web_Search_For_Findit", "web_search_for_findit") == 0.0
    assert action_score(None, "web_search_for_findit") == 0.0
    assert not is_hallucination("web search for findit", tools)
    assert is_hallucination("book_train", tools)
    assert not is_hallucination(None, tools)  # no action is a miss, not a hallucination


def test_parse_backbone_forms() -> None:
    call = parse_backbone('Look it up.\nAction: web_search\nAction Input: {"query": "x"}')
    assert call == {
        "next": "caller",
        "thought": "Look it up.",
        "action": "web_search",
        "arguments": {"query": "x"},
    }
    done = parse_backbone("All set.\nconclusion: It is 20 °C.")
    assert done == {"next": "conclusion", "thought": "All set.", "answer": "It is 20 °C."}
    assert parse_backbone("Final Answer: 42")["answer"] == "42"
    assert parse_backbone("These tools cannot do it, I give up.")["next"] == "give up"
    assert parse_backbone("Hmm, let me think.")["next"] is None
    first = parse_backbone('conclusion: no call needed. Action: x\nAction Input: {"a": 1}')
    assert first["next"] == "conclusion"  # the earlier form wins


def test_aggregate_by_hand() -> None:
    records = [
        {"dialogue": "a", "scores": {"plan_acc": 1.0}, "tokens": {"prompt": 10, "completion": 2}},
        {"dialogue": "a", "scores": {"act_em": 1.0, "hallucination": 0.0, "arg_f1": 0.5}},
        {"dialogue": "b", "scores": {"plan_acc": 0.0}, "error": "BackendError: down"},
        {"dialogue": "b", "scores": {"rouge_l": 0.25}, "seconds": 3.0},
    ]
    summary = aggregate(records)
    assert summary["metrics"] == {
        "plan_acc": 50.0,
        "act_em": 100.0,
        "hallucination": 0.0,
        "arg_f1": 50.0,
        "rouge_l": 25.0,
    }
    assert summary["counts"] == {
        "plan_acc": 2,
        "act_em": 1,
        "hallucination": 1,
        "arg_f1": 1,
        "rouge_l": 1,
    }
    assert (summary["dialogues"], summary["steps"], summary["errors"]) == (2, 4, 1)
    assert summary["tokens"] == 3.0 and summary["seconds"] == 0.75  # 12/4 and 3/4
    assert aggregate([])["metrics"]["plan_acc"] is None


# -- the driver ----------------------------------------------------------------------------------


def prompt_of(request: Any) -> str:
    return str(request.messages[-1]["content"])


def test_multi_llm_run_scores_exactly(scripted: Any, data: Any, tmp_path: Path) -> None:
    weather, currency = data.dialogues[:2]
    replies = [
        # weather: planner t1 (true: caller) right
        "I should get the weather.\nNext: caller.",
        # caller t2: right tool, one of two keys: R = 1/2, P = 1/1, arg F1 = 2/3
        'Action: current_weather_for_skycast\nAction Input: {"city": "Lisbon"}',
        # planner t4 (true: caller) wrong
        "I know enough.\nNext: conclusion.",
        # caller t5: a tool not in the list: act 0, hallucination 1, arg F1 0
        'Action: weather_forecast\nAction Input: {"city": "Lisbon", "days": 1}',
        # planner t7 (true: conclusion) right
        "Next: conclusion",
        # summarizer: 10 tokens vs the true 20, LCS "it is 19 °c and in lisbon right" = 8:
        # ROUGE-L = 2 * 8 / (10 + 20) = 8/15
        "It is 19 °C and sunny in Lisbon right now",
        # currency: planner t1 right
        "Convert first.\nNext: caller.",
        # caller t2: amount and from_currency right (2), to_currency wrong (0.5), one extra key:
        # m = 2.5, R = 2.5/3, P = 2.5/4, arg F1 = 2 * 2.5 / 7 = 5/7
        'Action: convert_for_fxrates\nAction Input: {"amount": 250, "from_currency": "USD", '
        '"to_currency": "GBP", "round": 2}',
        # planner t4 (true: caller) wrong
        "Next: give up.",
        # caller t5: no action at all: act 0, not a hallucination, arg F1 0
        "I will call convert for fxrates.",
        # planner t7 right
        "Done.\nNext: conclusion.",
        # summarizer: the true answer after a "conclusion:" prefix: ROUGE-L 1
        "conclusion: 250 US dollars is about 231.75 euros or 37,412.50 Japanese yen at "
        "today's rates.",
    ]
    model = scripted(replies=replies)
    seen: list[tuple[int, int]] = []
    summary = run_static_eval(
        [weather, currency],
        planner=model,
        caller=model,
        summarizer=model,
        out_dir=tmp_path,
        progress=lambda done, total: seen.append((done, total)),
    )
    assert summary["method"] == "multi"
    row = summary["methods"]["multi"]
    assert row["metrics"] == pytest.approx(
        {
            "plan_acc": 66.67,  # 4 of 6 planner steps
            "act_em": 50.0,  # 2 of 4 calls
            "hallucination": 25.0,  # 1 of 4 calls
            "arg_f1": 34.52,  # (2/3 + 0 + 5/7 + 0) / 4 = 0.34524
            "rouge_l": 76.67,  # (8/15 + 1) / 2
        },
        abs=0.005,
    )
    assert row["counts"] == {
        "plan_acc": 6,
        "act_em": 4,
        "hallucination": 4,
        "arg_f1": 4,
        "rouge_l": 2,
    }
    assert (row["dialogues"], row["steps"], row["errors"], row["mode"]) == (2, 12, 0, "multi")
    assert seen[0] == (0, 12) and seen[-1] == (12, 12)
    # each role saw the true history: the caller reads the true thought, not the predicted one
    prompts = [prompt_of(r) for r in model.requests]
    assert prompts[1] == role_prompt("caller", weather.tools, weather.turns[:2])
    assert "You are the caller" in prompts[1]
    assert "current conditions in Lisbon" in prompts[1] and "I should get" not in prompts[1]
    assert prompts[5] == role_prompt("summarizer", weather.tools, weather.turns[:8])
    lines = load_records(tmp_path / "multi.jsonl")
    assert [r["id"] for r in lines[:3]] == ["0/1", "0/2", "0/4"]
    assert lines[3]["pred"]["action"] == "weather_forecast" and lines[3]["scores"]["hallucination"]
    summary_md = (tmp_path / "summary.md").read_text(encoding="utf-8")
    assert "| multi | multi | 2 | 12 | 0 | 66.67 (6) | 50.00 (4) | 25.00 (4) |" in summary_md
    assert json.loads((tmp_path / "summary.json").read_text())["methods"]["multi"] == row


def test_single_llm_run_infers_next_tags(scripted: Any, data: Any, tmp_path: Path) -> None:
    weather, give_up = data.dialogues[0], data.dialogues[4]
    true_answer = weather.turns[8]["value"]
    replies = [
        # weather t1 (true: call current_weather Lisbon/metric): all right, arg F1 1
        'Check the weather.\nAction: current_weather_for_skycast\nAction Input: {"city": '
        '"Lisbon", "units": "metric"}',
        # weather t4 (true: call forecast): answers instead: plan 0, act 0, arg F1 0
        "conclusion: It will rain tomorrow.",
        # weather t7 (true: conclusion): plan 1, ROUGE-L 1
        f"All done.\nconclusion: {true_answer}",
        # give-up t1 (true: call web_search): an invented tool: plan 1, act 0, hallucination 1
        'Action: book_train\nAction Input: {"from": "Oslo", "to": "Bergen"}',
        # give-up t4: the right tool after sanitizing; query differs (0.5), max_results right
        # (1): m = 1.5, arg F1 = 2 * 1.5 / (2 + 2) = 0.75
        'Search again.\nAction: web.search_for_findit\nAction Input: {"query": "Oslo Bergen '
        'seat booking", "max_results": 3}',
        # give-up t7 (true: give up): plan 1
        "I cannot book seats with these tools, so I give up.",
    ]
    model = scripted(replies=replies)
    summary = run_static_eval([weather, give_up], backbone=model, out_dir=tmp_path)
    row = summary["methods"]["single"]
    assert row["metrics"] == pytest.approx(
        {
            "plan_acc": 83.33,  # 5 of 6
            "act_em": 50.0,  # 2 of the 4 steps whose truth is a call
            "hallucination": 25.0,  # 1 of 4
            "arg_f1": 43.75,  # (1 + 0 + 0 + 0.75) / 4
            "rouge_l": 100.0,  # the one conclusion step
        },
        abs=0.005,
    )
    assert row["counts"]["act_em"] == 4 and row["counts"]["rouge_l"] == 1
    # the backbone reads the history in its own format: thought + Action lines in one turn
    second = prompt_of(model.requests[1])
    assert second == role_prompt("backbone", weather.tools, backbone_history(weather.turns[:4]))
    assert "skycast.\nAction: current_weather_for_skycast" in second
    assert "Next: caller" not in second


def test_resume_skips_done_steps_and_reruns_a_torn_line(
    scripted: Any, data: Any, tmp_path: Path
) -> None:
    def by_role(messages: Sequence[Message]) -> str:
        text = str(messages[-1]["content"])
        if "You are the planner" in text:
            return "Next: caller."
        if "You are the caller" in text:
            return 'Action: convert_for_fxrates\nAction Input: {"amount": 250}'
        return "It is done."

    two = data.dialogues[:2]
    fresh_model = scripted(replies=[by_role], cycle=True)
    fresh = run_static_eval(
        two, planner=fresh_model, caller=fresh_model, summarizer=fresh_model, out_dir=tmp_path / "a"
    )

    out = tmp_path / "b"
    first = scripted(replies=[by_role], cycle=True)
    run_static_eval(two[:1], planner=first, caller=first, summarizer=first, out_dir=out)
    path = out / "multi.jsonl"
    assert len(first.requests) == 6 and len(load_records(path)) == 6
    raw = path.read_bytes()
    path.write_bytes(raw[: raw.rstrip(b"\n").rfind(b"\n") + 1] + b'{"id": "0/8", "tor')  # killed
    second = scripted(replies=[by_role], cycle=True)
    resumed = run_static_eval(two, planner=second, caller=second, summarizer=second, out_dir=out)
    assert len(second.requests) == 1 + 6  # the torn step, then the second dialogue
    assert "You are the summarizer" in prompt_of(second.requests[0])
    assert resumed["methods"]["multi"]["metrics"] == fresh["methods"]["multi"]["metrics"]
    assert sorted(r["id"] for r in load_records(path)) == sorted(
        r["id"] for r in load_records(tmp_path / "a" / "multi.jsonl")
    )
    again = scripted(replies=[])
    run_static_eval(two, planner=again, caller=again, summarizer=again, out_dir=out)
    assert again.requests == []  # everything on disk: nothing to ask


def test_concurrent_steps_give_the_same_results(scripted: Any, data: Any, tmp_path: Path) -> None:
    def by_tools(messages: Sequence[Message]) -> str:  # depends on the prompt only
        text = str(messages[-1]["content"])
        name = "convert_for_fxrates" if "fxrates" in text else "current_weather_for_skycast"
        return f'Action: {name}\nAction Input: {{"amount": 100}}'

    results = []
    for workers in (1, 8):
        model = scripted(replies=[by_tools], cycle=True)
        summary = run_static_eval(
            data, backbone=model, out_dir=tmp_path / str(workers), concurrency=workers
        )
        results.append(summary["methods"]["single"])
        assert len(model.requests) == 28
    assert results[0]["metrics"] == results[1]["metrics"]
    assert results[0]["counts"] == results[1]["counts"]
    lines = load_records(tmp_path / "8" / "single.jsonl")
    assert sorted(r["id"] for r in lines) == sorted(
        r["id"] for r in load_records(tmp_path / "1" / "single.jsonl")
    )


def test_failed_calls_are_recorded_and_retried(scripted: Any, data: Any, tmp_path: Path) -> None:
    calls = {"n": 0}

    def flaky(messages: Sequence[Message]) -> str:
        calls["n"] += 1
        if calls["n"] == 2:
            raise BackendError("server went away")
        return "Next: caller."

    weather = data.dialogues[0]
    model = scripted(replies=[flaky], cycle=True)
    summary = run_static_eval([weather], backbone=model, out_dir=tmp_path)
    row = summary["methods"]["single"]
    assert row["errors"] == 1
    failed = [r for r in load_records(tmp_path / "single.jsonl") if r["error"]]
    assert failed[0]["id"] == "0/4" and failed[0]["error"] == "BackendError: server went away"
    assert failed[0]["scores"] == {
        "plan_acc": 0.0,
        "act_em": 0.0,
        "hallucination": 0.0,
        "arg_f1": 0.0,
    }
    # "Next: caller." is no backbone form (no action): plan 0 everywhere; the retry fixes the error
    retried = run_static_eval([weather], backbone=model, out_dir=tmp_path, retry_errors=True)
    assert retried["methods"]["single"]["errors"] == 0 and calls["n"] == 4


def test_bad_arguments_are_config_errors(scripted: Any, data: Any, tmp_path: Path) -> None:
    model = scripted(replies=[])
    with pytest.raises(ConfigError, match="missing caller, summarizer"):
        run_static_eval(data, planner=model, out_dir=tmp_path)
    with pytest.raises(ConfigError, match="not both"):
        run_static_eval(data, backbone=model, planner=model, out_dir=tmp_path)
    with pytest.raises(ConfigError, match="method name"):
        run_static_eval(data, backbone=model, out_dir=tmp_path, method="a/b")
    with pytest.raises(DatasetError, match="record #1: no 'conversations' list"):
        run_static_eval([raw_records()[0], {"conversations": []}], backbone=model, out_dir=tmp_path)
    (tmp_path / "x.jsonl").write_text(
        json.dumps({"id": "0/1", "mode": "single", "role": "backbone", "scores": {}}) + "\n"
    )
    with pytest.raises(ConfigError, match="holds single-LLM steps"):
        run_static_eval(
            data, planner=model, caller=model, summarizer=model, out_dir=tmp_path, method="x"
        )


def test_raw_records_are_accepted(scripted: Any, tmp_path: Path) -> None:
    record = copy.deepcopy(raw_records()[2])
    model = scripted(replies=["give up"], cycle=True)
    summary = run_static_eval([record], backbone=model, out_dir=tmp_path)
    # three planner turns (caller, caller, conclusion), none of them a give-up: plan ACC 0
    assert summary["methods"]["single"]["metrics"]["plan_acc"] == 0.0
    assert summary["methods"]["single"]["steps"] == 3


# -- the CLI -------------------------------------------------------------------------------------


def cli() -> typer.Typer:
    app, eval_app = typer.Typer(), typer.Typer()
    app.add_typer(eval_app, name="eval")
    register(app, eval_app)
    return app


def test_cli_compares_single_and_multi_on_a_real_http_server(tmp_path: Path) -> None:
    reply = (
        'Action: convert_for_fxrates\nAction Input: {"amount": 250, "from_currency": "USD", '
        '"to_currency": "EUR"}'
    )
    out = tmp_path / "run"
    runner = CliRunner()
    with FaultServer(reply=reply) as server:
        spec = f"openai:fault-model@{server.url}"
        args = ["eval", "toolbench-static", "--data", str(FIXTURE), "--out", str(out)]
        single = runner.invoke(cli(), [*args, "--model", spec, "--limit", "2"])
        assert single.exit_code == 0, single.output
        multi = runner.invoke(cli(), [*args, "--mode", "multi", "--model", spec, "--limit", "2"])
        assert multi.exit_code == 0, multi.output
        assert len(server.requests) == 6 + 12
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    # The same reply everywhere, on the weather and currency dialogues:
    # plan: the reply means "caller" (single: an action; multi: no Next tag) -> 4 of 6 right;
    # act: wrong on the 2 weather calls, right on the 2 currency calls -> 50;
    # hallucination: convert_for_fxrates is not a weather tool -> 2 of 4;
    # arg F1: currency t2 exact (1), t5 to_currency wrong (m = 2.5, 2 * 2.5 / 6) -> 45.83;
    # ROUGE-L: no answer (single) / no shared token (multi) -> 0
    expected = {"plan_acc": 66.67, "act_em": 50.0, "hallucination": 50.0, "arg_f1": 45.83}
    for method in ("single", "multi"):
        metrics = summary["methods"][method]["metrics"]
        assert metrics == pytest.approx({**expected, "rouge_l": 0.0}, abs=0.005)
    assert "66.7" in multi.output and "45.8" in multi.output
    assert "single" in multi.output and "multi" in multi.output  # both methods in the table


def test_cli_errors(tmp_path: Path) -> None:
    runner = CliRunner()
    missing = runner.invoke(
        cli(), ["eval", "toolbench-static", "--data", str(tmp_path / "nope.json"), "--model", "x"]
    )
    assert isinstance(missing.exception, DatasetError)
    no_model = runner.invoke(cli(), ["eval", "toolbench-static", "--data", str(FIXTURE)])
    assert isinstance(no_model.exception, ConfigError) and "--model" in str(no_model.exception)
    partial = runner.invoke(
        cli(), ["eval", "toolbench-static", "--data", str(FIXTURE), "--planner", "x"]
    )
    assert "--caller, --summarizer" in str(partial.exception)


# -- the real model ------------------------------------------------------------------------------


@pytest.mark.model
def test_real_model_runs_both_modes_on_one_short_dialogue(local_model: Any, tmp_path: Path) -> None:
    # the weather dialogue cut to one call: plan, call, observation, plan, conclusion
    record = raw_records()[0]
    record["conversations"] = record["conversations"][:4] + record["conversations"][7:]
    run_static_eval([record], backbone=local_model, out_dir=tmp_path)
    summary = run_static_eval(
        [record], planner=local_model, caller=local_model, summarizer=local_model, out_dir=tmp_path
    )
    single, multi = summary["methods"]["single"], summary["methods"]["multi"]
    assert (single["steps"], multi["steps"]) == (2, 4)
    assert single["errors"] == 0 and multi["errors"] == 0
    records = load_records(tmp_path / "single.jsonl") + load_records(tmp_path / "multi.jsonl")
    assert all(r["output"].strip() and r["tokens"]["completion"] > 0 for r in records)
    assert multi["counts"] == {
        "plan_acc": 2,
        "act_em": 1,
        "hallucination": 1,
        "arg_f1": 1,
        "rouge_l": 1,
    }
    for row in (single, multi):
        assert all(v is None or 0.0 <= v <= 100.0 for v in row["metrics"].values())


def test_constrained_roles_are_read_back_as_glpft_text(
    scripted: Any, data: Any, tmp_path: Path
) -> None:
    weather = data.dialogues[0]
    call = {"name": "current_weather_for_skycast", "arguments": {"city": "Lisbon"}}
    replies = [
        json.dumps({"thought": "Get the weather.", "next": "caller"}),  # planner t1: right
        json.dumps({"tool_calls": [call]}),  # caller t2: right tool
        json.dumps({"thought": "Enough.", "next": "conclusion"}),  # planner t4: wrong
        "not json at all",  # caller t5: unreadable, scored as no action
        json.dumps({"thought": "Done.", "next": "conclusion"}),  # planner t7: right
        "It is sunny.",  # the summarizer stays free text
    ]
    model = scripted(replies=replies)
    summary = run_static_eval(
        [weather], planner=model, caller=model, summarizer=model, out_dir=tmp_path, constrained=True
    )
    row = summary["methods"]["multi"]
    assert row["metrics"]["plan_acc"] == pytest.approx(66.67, abs=0.01)
    assert row["metrics"]["act_em"] == 50.0
    kinds = [r.response_format and r.response_format["json_schema"]["name"] for r in model.requests]
    assert kinds == ["plan", "reply", "plan", "reply", "plan", None]
    lines = load_records(tmp_path / "multi.jsonl")
    assert lines[0]["output"] == "Get the weather.\nNext: caller."
    assert lines[1]["pred"]["action"] == "current_weather_for_skycast"

    backbone = scripted(
        replies=[json.dumps({"thought": "Look it up.", "tool_calls": [call]}), *["{}"] * 2]
    )
    summary = run_static_eval(
        [weather], backbone=backbone, out_dir=tmp_path / "single", constrained=True
    )
    first = load_records(tmp_path / "single" / "single.jsonl")[0]
    assert first["pred"]["next"] == "caller" and first["pred"]["action"] == call["name"]
    options = backbone.requests[0].response_format["json_schema"]["schema"]["anyOf"]
    assert [list(o["properties"])[1] for o in options] == ["tool_calls", "conclusion", "give_up"]

"""``toolpath export sft``: per-role GLPFT training files from recorded trajectories."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from toolpath.agents.alpha_umi.format import role_prompt
from toolpath.cli.alpha_umi import register
from toolpath.errors import DatasetError
from toolpath.evals.alpha_umi.glpft import backbone_history, load_glpft
from toolpath.evals.alpha_umi.sft_export import export_sft

FIXTURE = Path(__file__).parent / "fixtures" / "glpft_static.json"


def read(out: Path, role: str) -> list[dict[str, str]]:
    data = json.loads((out / f"{role}.json").read_text(encoding="utf-8"))
    assert isinstance(data, list)
    return data


def test_export_writes_each_role_from_finished_trajectories(tmp_path: Path) -> None:
    counts = export_sft(FIXTURE, tmp_path)
    # the fixture has 28 planner, 20 caller and 7 conclusion turns; the give-up dialogue (3
    # planner and 2 caller turns) is left out; every kept planner turn is followed by a caller
    # or a conclusion turn, so each also gives one backbone example
    assert counts == {
        "backbone": 25,
        "planner": 25,
        "caller": 18,
        "summarizer": 7,
        "trajectories": 7,
        "failed": 1,
        "skipped": 0,
    }
    weather = load_glpft(FIXTURE).dialogues[0]
    tools, turns = weather.tools, weather.turns
    planner, caller, summarizer = (read(tmp_path, r) for r in ("planner", "caller", "summarizer"))
    backbone = read(tmp_path, "backbone")
    assert [len(x) for x in (backbone, planner, caller, summarizer)] == [25, 25, 18, 7]
    assert planner[0] == {
        "instruction": role_prompt("planner", tools, turns[:1]),
        "input": "",
        "output": "First I need the current conditions in Lisbon from "
        "current_weather_for_skycast.\nNext: caller.",
    }
    assert caller[0] == {
        "instruction": role_prompt("caller", tools, turns[:2]),
        "input": "",
        "output": 'Action: current_weather_for_skycast\nAction Input: {"city": "Lisbon", '
        '"units": "metric"}',
    }
    assert summarizer[0]["instruction"] == role_prompt("summarizer", tools, turns[:8])
    assert summarizer[0]["output"] == turns[8]["value"]
    assert backbone[0]["output"] == (
        "First I need the current conditions in Lisbon from current_weather_for_skycast.\n"
        'Action: current_weather_for_skycast\nAction Input: {"city": "Lisbon", "units": "metric"}'
    )
    assert backbone[1]["instruction"] == role_prompt("backbone", tools, backbone_history(turns[:4]))
    assert "skycast.\nAction: current_weather_for_skycast" in backbone[1]["instruction"]
    assert backbone[2]["output"] == (
        f"Both observations answer the question.\nconclusion: {turns[8]['value']}"
    )
    assert all(e["input"] == "" for e in backbone + planner + caller + summarizer)
    assert not any("Oslo" in e["instruction"] for e in planner)  # the give-up dialogue


def test_include_failed_adds_the_give_up_trajectory(tmp_path: Path) -> None:
    counts = export_sft(FIXTURE, tmp_path, include_failed=True)
    assert (counts["backbone"], counts["planner"], counts["caller"], counts["summarizer"]) == (
        28,
        28,
        20,
        7,
    )
    assert counts["failed"] == 0 and counts["trajectories"] == 8
    give_ups = [e for e in read(tmp_path, "backbone") if e["output"].endswith("give up.")]
    assert [e["output"] for e in give_ups] == [
        "None of my tools can book a seat, and the search found no booking service.\ngive up."
    ]
    planner_give_up = [e for e in read(tmp_path, "planner") if "Next: give up" in e["output"]]
    assert len(planner_give_up) == 1


def test_a_folder_of_json_and_jsonl_runs(tmp_path: Path) -> None:
    records: list[Any] = json.loads(FIXTURE.read_text(encoding="utf-8"))
    runs = tmp_path / "runs"
    (runs / "sub").mkdir(parents=True)
    (runs / "a.json").write_text(json.dumps(records[:2]), encoding="utf-8")
    jsonl = [json.dumps(records[2]), '{"tools": [], "conver', json.dumps({"tools": []})]
    (runs / "sub" / "b.jsonl").write_text("\n".join(jsonl) + "\n", encoding="utf-8")
    (runs / "summary.json").write_text('{"methods": {}}', encoding="utf-8")  # not records
    (runs / "notes.txt").write_text("ignored", encoding="utf-8")
    counts = export_sft(runs, tmp_path / "out")
    # three 2-call dialogues: 3 planner + 2 caller + 1 conclusion turns each
    assert counts == {
        "backbone": 9,
        "planner": 9,
        "caller": 6,
        "summarizer": 3,
        "trajectories": 3,
        "failed": 0,
        "skipped": 2,  # the torn line and the record without conversations
    }
    units = read(tmp_path / "out", "caller")[4]["output"]  # a.json comes first, then sub/b.jsonl
    assert units.startswith("Action: convert_length_for_unitkit")


def test_nothing_usable_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="not found"):
        export_sft(tmp_path / "absent", tmp_path / "out")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DatasetError, match=r"no \.json or \.jsonl files"):
        export_sft(empty, tmp_path / "out")
    (empty / "bad.jsonl").write_text('{"x": 1}\n', encoding="utf-8")
    with pytest.raises(DatasetError, match=r"no usable trajectories .*1 bad record"):
        export_sft(empty, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_cli_export(tmp_path: Path) -> None:
    app, eval_app = typer.Typer(), typer.Typer()
    app.add_typer(eval_app, name="eval")
    register(app, eval_app)
    out = tmp_path / "sft"
    args = ["export", "sft", "--runs", str(FIXTURE), "--out", str(out), "--include-failed"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "planner.json" in result.output and "28" in result.output
    assert "8 trajectories used" in result.output
    assert len(read(out, "caller")) == 20
    bad = CliRunner().invoke(app, ["export", "sft", "--runs", str(tmp_path / "nope")])
    assert isinstance(bad.exception, DatasetError)

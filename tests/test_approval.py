"""Approval of tool calls (``approve=``): pause, then approve, edit or reject, on every
tool-calling agent, in one process and across two through SQLite."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
from langgraph.types import Command

from toolpath.agents.alpha_umi.agent import alpha_umi_agent
from toolpath.agents.approval import check_approve, parse_decision
from toolpath.agents.react import tool_agent
from toolpath.errors import ConfigError
from toolpath.tools import calculator, tool


def call(name: str, **args: object) -> str:
    return json.dumps({"tool": name, "arguments": args})


def final(text: str) -> str:
    return json.dumps({"final_answer": text})


@tool
def delete_file(path: str) -> str:
    """Delete a file."""
    return f"deleted {path}"


def thread(name: str) -> dict:
    return {"configurable": {"thread_id": name}}


def test_a_paused_call_shows_the_tool_arguments_and_reason_then_runs_once_approved(scripted):
    model = scripted([call("calculator", expression="2 + 2"), final("4")])
    agent = tool_agent(model, [calculator], approve="always")
    paused = agent.invoke("What is 2 + 2?", thread("a"))
    (pending,) = paused["__interrupt__"]
    assert pending.value["tool"] == "calculator"
    assert pending.value["arguments"] == {"expression": "2 + 2"}
    assert "call_id" in pending.value and "reason" in pending.value
    assert len(model.requests) == 1 and paused.get("answer") is None  # nothing ran yet
    done = agent.invoke(Command(resume=True), thread("a"))
    assert done["answer"] == "4" and done["status"] == "done"
    assert "Observation from calculator: 4" in model.requests[1].messages[-1]["content"]


def test_an_edit_runs_the_edited_arguments(scripted):
    model = scripted([call("calculator", expression="2 + 2"), final("6")])
    agent = tool_agent(model, [calculator], approve={"calculator"})
    agent.invoke("What is 3 + 3?", thread("e"))
    edit = {"action": "edit", "arguments": {"expression": "3 + 3"}}
    done = agent.invoke(Command(resume=edit), thread("e"))
    assert "Observation from calculator: 6" in model.requests[1].messages[-1]["content"]
    ran = done["messages"][1]["tool_calls"][0]["function"]["arguments"]
    assert json.loads(ran) == {"expression": "2 + 2"}  # the model's own call stays as it was
    assert done["answer"] == "6"


def test_a_bad_edit_is_shown_to_the_model_and_nothing_runs(scripted):
    model = scripted([call("calculator", expression="2 + 2"), final("?")])
    agent = tool_agent(model, [calculator], approve="always")
    agent.invoke("What is 2 + 2?", thread("b"))
    agent.invoke(Command(resume={"action": "edit", "arguments": {"expr": 1}}), thread("b"))
    seen = model.requests[1].messages[-1]["content"]
    assert "the reviewer's edit is not valid" in seen and "expression" in seen


def test_a_rejection_reaches_the_model_with_its_message(scripted):
    model = scripted([call("delete_file", path="/etc/passwd"), final("I did not delete it.")])
    agent = tool_agent(model, [delete_file, calculator], approve=lambda c: c.name == "delete_file")
    agent.invoke("Delete /etc/passwd", thread("r"))
    reject = {"action": "reject", "message": "never touch /etc"}
    done = agent.invoke(Command(resume=reject), thread("r"))
    seen = model.requests[1].messages[-1]["content"]
    assert "The user rejected this call: never touch /etc" in seen
    assert "deleted" not in json.dumps(done["messages"])
    assert done["answer"] == "I did not delete it."


def test_calls_not_selected_run_without_a_pause(scripted):
    model = scripted([call("calculator", expression="5 * 5"), final("25")])
    agent = tool_agent(model, [calculator, delete_file], approve={"delete_file"})
    done = agent.invoke("5 * 5?", thread("n"))
    assert "__interrupt__" not in done and done["answer"] == "25"


def test_alpha_umi_waits_too(scripted):
    planner = scripted(["Compute it. Next: caller", "Done. Next: conclusion"], name="p")
    caller = scripted(['Action: calculator\nAction Input: {"expression": "6 * 7"}'], name="c")
    summarizer = scripted(["It is 42."], name="s")
    agent = alpha_umi_agent(
        tools=[calculator], planner=planner, caller=caller, summarizer=summarizer, approve="always"
    )
    paused = agent.invoke("What is 6 * 7?", thread("u"))
    (pending,) = paused["__interrupt__"]
    assert pending.value["tool"] == "calculator" and "Compute it" in pending.value["reason"]
    done = agent.invoke(Command(resume="approve"), thread("u"))
    assert done["answer"] == "It is 42." and done["conversation"][3]["value"] == "42"


def test_pause_in_one_process_and_resume_in_another(tmp_path):
    db = tmp_path / "runs.sqlite"
    script = textwrap.dedent(
        """
        import json, sys
        from langgraph.types import Command
        from toolpath.agents import sqlite_checkpointer
        from toolpath.agents.react import tool_agent
        from toolpath.llm.scripted import ScriptedModel
        from toolpath.tools import calculator

        step, db = sys.argv[1], sys.argv[2]
        replies = {
            "pause": [json.dumps({"tool": "calculator", "arguments": {"expression": "7 * 6"}})],
            "resume": [json.dumps({"final_answer": "42"})],
        }[step]
        agent = tool_agent(ScriptedModel(replies), [calculator], approve="always",
                           checkpointer=sqlite_checkpointer(db))
        config = {"configurable": {"thread_id": "job-1"}}
        if step == "pause":
            state = agent.invoke("What is 7 * 6?", config)
            print(json.dumps(state["__interrupt__"][0].value))
        else:
            state = agent.invoke(Command(resume=True), config)
            print(json.dumps({"answer": state["answer"], "status": state["status"]}))
        """
    )
    first = subprocess.run(
        [sys.executable, "-c", script, "pause", str(db)], capture_output=True, text=True
    )
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["arguments"] == {"expression": "7 * 6"}
    second = subprocess.run(
        [sys.executable, "-c", script, "resume", str(db)], capture_output=True, text=True
    )
    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout) == {"answer": "42", "status": "done"}


def test_bad_settings_and_decisions_are_clear_errors():
    with pytest.raises(ConfigError, match="'never', 'always'"):
        check_approve("sometimes")
    with pytest.raises(ConfigError, match="cannot read the approval decision"):
        parse_decision({"action": "maybe"})
    assert parse_decision(True).action == "approve"
    assert parse_decision({"action": "reject", "message": "no"}).message == "no"


@pytest.fixture
def models(monkeypatch):
    """``load_model(spec)`` returns ``models[spec]`` (scripted models, set by the test)."""
    import toolpath.llm.specs

    table: dict[str, object] = {}
    monkeypatch.setattr(toolpath.llm.specs, "load_model", lambda spec, **kw: table[spec])
    return table


def test_run_approve_asks_in_a_panel_then_edits_and_rejects(models, scripted):
    from typer.testing import CliRunner

    from toolpath.cli import app

    models["m"] = scripted(
        [
            call("calculator", expression="2 + 2"),
            call("calculator", expression="10 / 0"),
            final("It is 6."),
        ]
    )
    answers = "e\n{nope\ne\n" + json.dumps({"expression": "3 + 3"}) + "\nn\ndivides by zero\n"
    res = CliRunner().invoke(
        app, ["run", "What is 3 + 3?", "-m", "m", "--approve", "calculator"], input=answers
    )
    assert res.exit_code == 0, res.output
    assert res.stdout.strip() == "It is 6."
    assert res.stderr.count("approve this tool call?") == 2
    assert '{"expression": "2 + 2"}' in res.stderr and "not JSON" in res.stderr
    assert "tool Observation from calculator: 6" in res.stderr
    assert "The user rejected this call: divides by zero" in json.dumps(
        models["m"].requests[-1].messages
    )


def test_costa_waits_before_a_step_and_a_rejection_replans(scripted):
    from toolpath.agents.costa.agent import costa_agent
    from toolpath.evals.costa.tasks import generate
    from toolpath.tools.image.ops import ImageState

    task = generate(1, seed=5, min_subtasks=1, max_subtasks=1)[0]
    (sub,) = task.subtasks
    tree = [{"id": "s0", "type": sub.type, "params": sub.params, "parents": []}]
    agent = costa_agent(scripted([]), approve="always")
    config = thread("costa")
    state = agent.invoke(
        {"request": task.instruction, "context": ImageState(task.image), "tree": tree}, config
    )
    (pending,) = state["__interrupt__"]
    first_tool = pending.value["tool"]
    assert pending.value["arguments"] == sub.params and "s0" in pending.value["reason"]
    state = agent.invoke(Command(resume={"action": "reject", "message": "not that one"}), config)
    (again,) = state["__interrupt__"]  # the search re-planned and asks about the next tool
    assert state["attempts"][0]["error"].endswith("rejected by the reviewer: not that one")
    assert state["replans"] == 1 and again.value["tool"] != first_tool  # around the rejected one
    state = agent.invoke(Command(resume=True), config)
    assert state["status"] == "done" and task.check(state["context"].image)


def test_alpha_umi_edit_and_reject(scripted):
    planner = scripted(["Compute. Next: caller", "Again. Next: caller", "Next: conclusion"])
    caller = scripted(
        [
            'Action: calculator\nAction Input: {"expression": "6 * 7"}',
            'Action: calculator\nAction Input: {"expression": "1 / 0"}',
        ]
    )
    agent = alpha_umi_agent(
        tools=[calculator],
        planner=planner,
        caller=caller,
        summarizer=scripted(["ok"]),
        approve={"calculator"},
    )
    agent.invoke("What is 6 * 8?", thread("ue"))
    edit = {"action": "edit", "arguments": {"expression": "6 * 8"}}
    agent.invoke(Command(resume=edit), thread("ue"))
    done = agent.invoke(Command(resume=False), thread("ue"))
    observations = [t["value"] for t in done["conversation"] if t["from"] == "observation"]
    assert observations[0] == "48"
    assert observations[1].startswith("Error: The user rejected this call.")
    assert done["answer"] == "ok"


def test_costa_runs_a_step_with_the_reviewers_edit(scripted):
    from toolpath.agents.costa.agent import costa_agent
    from toolpath.evals.costa.tasks import generate
    from toolpath.tools.image.ops import ImageState

    task = generate(1, seed=0, min_subtasks=1, max_subtasks=1)[0]  # resize to 128 x 128
    (sub,) = task.subtasks
    tree = [{"id": "s0", "type": sub.type, "params": sub.params, "parents": []}]
    agent = costa_agent(scripted([]), approve="always")
    state = agent.invoke(
        {"request": task.instruction, "context": ImageState(task.image), "tree": tree},
        thread("costa-edit"),
    )
    assert state["__interrupt__"][0].value["arguments"] == {"width": 128, "height": 128}
    edit = {"action": "edit", "arguments": {"width": 64, "height": 32}}
    state = agent.invoke(Command(resume=edit), thread("costa-edit"))
    assert state["status"] == "done" and state["context"].image.shape[:2] == (32, 64)
    assert not task.check(state["context"].image)  # what ran is the edit, not the plan's step

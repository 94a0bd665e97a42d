"""DotaMath's vote over sampled trajectories (``math_agent(samples=K)``): the tally, ties,
stopping once settled, a crashed trajectory as no vote, mixed voting, the eval record that
keeps every trajectory, and ``toolpath solve --samples``. The scripted model drives the
control flow; programs run in real sandboxed kernels. One test runs the embedded 0.5B."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from toolpath.agents.math.dotamath import math_agent
from toolpath.agents.math.vote import keeps_lead, still_needed, tally
from toolpath.evals.harness import Example, load_records, run_eval
from toolpath.evals.math.tasks import MathTask, math_agent_for

QUESTION = "Tom has 3 bags with 2 apples each. How many apples does he have?"


def scripted_votes(scripted: Any, plan: dict[int, str], cot: str = "6") -> Any:
    """A scripted model whose n-th DotaMath trajectory (in the order they start) writes the
    program ``plan[n]``, tagged with its trajectory in a comment; after a failed run it gives
    up without an answer. A chain of thought trajectory boxes ``cot``."""
    started: list[int] = []

    def reply(messages: list[dict[str, Any]]) -> str:
        last = str(messages[-1]["content"])
        if last.startswith("Problem:") and "Python" not in str(messages[0]["content"]):
            return f"Two times three is six. So \\boxed{{{cot}}}"  # chain of thought
        if last.startswith("Problem:"):
            started.append(len(started))
            n = started[-1]
            return f"```python\n# Trajectory {n}.\n{plan[n]}\n```"
        return "I cannot tell what went wrong."

    return scripted([reply], cycle=True)


def solve(model: Any, **options: Any) -> dict[str, Any]:
    agent = math_agent(model, parallel=1, **options)
    try:
        return agent.invoke(QUESTION)
    finally:
        agent.close()


def sample(index: int, answer: str | None, status: str = "done") -> dict[str, Any]:
    return {"index": index, "answer": answer, "status": status}


def test_tally_groups_answers_by_their_canonical_form_and_breaks_ties_by_order() -> None:
    samples = [sample(0, "\\$6"), sample(1, "6.00"), sample(2, "5"), sample(3, None, "failed")]
    assert tally(samples) == [("6", 2), ("5", 1)]
    assert tally([sample(1, "5"), sample(0, "6")]) == [("6", 1), ("5", 1)]  # index 0 first


def test_the_vote_is_settled_once_no_remaining_samples_could_change_it() -> None:
    same = [sample(i, "7") for i in range(3)]
    assert still_needed(same, 5) == 0  # 3 to 0 with 2 left
    assert still_needed(same[:2], 5) == 1  # one more agreeing sample would settle it
    split = [sample(0, "7"), sample(1, "8")]
    assert still_needed(split, 5) == 2
    assert still_needed(split, 2) == 0  # the budget is spent
    crashed = [sample(0, "7"), sample(1, None, "failed")]
    assert still_needed(crashed, 3) == 1  # no vote is no vote: 1 to 0 with 1 left


def test_a_tie_goes_to_the_answer_voted_first(scripted: Any) -> None:
    model = scripted_votes(scripted, {0: "print(6)", 1: "print(5)"})
    state = solve(model, samples=2)
    assert state["vote"]["counts"] == {"6": 1, "5": 1} or state["vote"]["counts"] == {
        "5": 1,
        "6": 1,
    }
    first = next(s for s in state["samples"] if s["index"] == 0)
    assert state["answer"] == first["answer"]
    assert state["vote"]["used"] == 2 and state["status"] == "done"


def test_keeps_lead_is_the_beta_binomial_chance_of_staying_ahead() -> None:
    assert keeps_lead(2, 0, 3) == pytest.approx(0.95)  # loses only if all 3 go to the rival
    assert keeps_lead(2, 1, 2) == pytest.approx(0.8)
    assert keeps_lead(2, 2, 1) == pytest.approx(0.5)  # the next vote decides; a tie is lost
    assert keeps_lead(3, 1, 1) == 1.0 and keeps_lead(1, 0, 0) == 1.0  # cannot be overturned
    assert keeps_lead(0, 0, 0) == 0.0


def test_a_confident_vote_stops_before_it_is_certain() -> None:
    assert still_needed([], 5, 0.95) == 2  # two that agree settle five at 95%
    assert still_needed([sample(0, "7"), sample(1, "7")], 5, 0.95) == 0
    assert still_needed([sample(0, "7"), sample(1, "7")], 5, 0.99) == 1
    assert still_needed([sample(0, "7"), sample(1, "8")], 5, 0.95) == 2


def test_a_confident_vote_in_the_agent_stops_after_two_agreeing_samples(scripted: Any) -> None:
    model = scripted_votes(scripted, dict.fromkeys(range(5), "print(2 * 3)"))
    state = solve(model, samples=5)  # confidence 0.95, the default
    assert state["answer"] == "6" and state["vote"]["used"] == 2


def test_unanimous_early_samples_stop_the_vote(scripted: Any) -> None:
    model = scripted_votes(scripted, dict.fromkeys(range(5), "print(2 * 3)"))
    state = solve(model, samples=5, confidence=1.0)
    assert state["answer"] == "6"
    assert len(state["samples"]) == 3  # 3 of 5 agree: the other 2 cannot change the winner
    assert state["vote"] == {"counts": {"6": 3}, "winner": "6", "used": 3, "budget": 5}
    programs = [r for r in model.requests if "Problem:" in str(r.messages[-1])]
    assert len(programs) == 3  # the model was never asked for trajectories 4 and 5
    temperatures = sorted(r.temperature for r in programs)
    assert temperatures == [0.0, 0.7, 0.7]  # the first trajectory is the greedy one


def test_a_crashed_program_is_no_vote(scripted: Any) -> None:
    crash = "raise ValueError('boom')"
    model = scripted_votes(scripted, {0: "print(6)", 1: crash, 2: "print(6)"})
    state = solve(model, samples=3, max_rounds=1)
    by_index = {s["index"]: s for s in state["samples"]}
    crashed = [s for s in state["samples"] if s["vote"] is None]
    assert len(crashed) == 1 and crashed[0]["status"] != "done"
    assert len(by_index) == 3  # 1 vote to 0 after two: a third was needed
    assert state["vote"]["counts"] == {"6": 2} and state["answer"] == "6"


def test_mixed_voting_lets_chain_of_thought_vote(scripted: Any) -> None:
    model = scripted_votes(scripted, {0: "print(6)", 1: "print(6)"}, cot="6")
    state = solve(model, samples=3, mixed=True)
    methods = {s["index"]: s["method"] for s in state["samples"]}
    assert methods == {0: "dotamath", 1: "cot"}  # 2 of 3 agree at once: settled
    assert state["vote"]["counts"] == {"6": 2}


def test_the_eval_record_keeps_every_sample_and_the_vote(scripted: Any, tmp_path: Path) -> None:
    model = scripted_votes(scripted, {0: "print(6)", 1: "print(5)", 2: "print(6)"})
    agent = math_agent_for("dotamath-k3", model, parallel=1)
    task = MathTask("gsm8k", lambda **_: [])
    try:
        asyncio.run(
            run_eval(task, [Example("q1", QUESTION, "6")], agent, out_dir=tmp_path, method="m")
        )
    finally:
        agent.close()
    (record,) = load_records(tmp_path / "m.jsonl")
    assert record["correct_strict"] and record["samples_used"] == 3
    assert record["vote"]["counts"] == {"6": 2, "5": 1}
    assert sorted(s["index"] for s in record["samples"]) == [0, 1, 2]
    for s in record["samples"]:  # each trajectory whole, with its cost
        assert s["messages"] and s["tokens"]["completion"] > 0 and s["seconds"] >= 0
    total = sum(s["tokens"]["completion"] for s in record["samples"])
    assert record["tokens"]["completion"] == total
    summary = (tmp_path / "summary.md").read_text()
    assert "samples" in summary


def test_solve_with_samples_shows_each_sample_then_the_vote(scripted: Any, monkeypatch) -> None:
    from typer.testing import CliRunner

    import toolpath.cli.math as cli_math
    from toolpath.cli.app import app

    model = scripted_votes(scripted, dict.fromkeys(range(3), "print(6)"))
    monkeypatch.setattr(cli_math, "load", lambda spec, **options: model)
    result = CliRunner().invoke(app, ["solve", QUESTION, "--samples", "3"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    shown = [ln for ln in lines if ln.startswith("sample ")]
    assert len(shown) == 2 and all(": 6" in ln for ln in shown)  # 2 of 3 agree: settled
    vote = next(i for i, ln in enumerate(lines) if "6: 2" in ln)
    assert vote > max(lines.index(ln) for ln in shown)  # the vote comes after the samples
    assert "(2 of 3 samples used)" in lines[vote] and lines[-1] == "\\boxed{6}"


def test_bad_sampling_options_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    from toolpath.cli.app import main

    assert main(["solve", QUESTION, "--mixed"]) == 2
    assert "--mixed needs --samples" in capsys.readouterr().err
    assert main(["solve", QUESTION, "--method", "pot", "--recheck"]) == 2
    assert "--recheck applies to --method dotamath" in capsys.readouterr().err
    assert main(["solve", QUESTION, "--confidence", "0.9"]) == 2
    assert "--confidence needs --samples" in capsys.readouterr().err
    assert main(["eval", "gsm8k", "--method", "pot", "--samples", "3"]) == 2
    assert "--samples applies to dotamath" in capsys.readouterr().err
    assert main(["eval", "gsm8k", "--method", "dotamath-k0"]) == 2
    assert "unknown method dotamath-k0" in capsys.readouterr().err


@pytest.mark.model
def test_three_samples_with_the_embedded_model(local_model: Any) -> None:
    agent = math_agent(local_model, samples=3, parallel=1, max_tokens=256, max_rounds=2)
    try:
        state = agent.invoke("What is 12 times 7?")
    finally:
        agent.close()
    used = state["samples"]
    assert 2 <= len(used) <= 3 and state["vote"]["used"] == len(used)
    for s in used:
        assert s["messages"] and s["tokens"]["completion"] > 0
    votes = [s["vote"] for s in used if s["vote"] is not None]
    if votes:  # whatever the 0.5B answers, the winner is the most voted answer
        assert state["vote"]["winner"] == max(set(votes), key=votes.count)
        assert state["answer"] is not None

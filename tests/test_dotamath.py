"""The math agents' graphs, driven by the scripted model, with a real sandboxed kernel."""

from __future__ import annotations

import pytest

from toolpath.agents.math.baselines import cot_agent, pot_agent
from toolpath.agents.math.dotamath import math_agent
from toolpath.agents.math.prompts import math_demos
from toolpath.errors import ConfigError
from toolpath.tools.code.kernel import PythonKernel

NATALIA = (
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips "
    "in May. How many clips did Natalia sell altogether in April and May?"
)


@pytest.fixture(scope="module")
def kernel():
    k = PythonKernel()
    k.start()
    yield k
    k.shutdown()


def run(agent, kernel, question=NATALIA):
    try:
        return agent.invoke(question, {"configurable": {"kernel": kernel}})
    finally:
        agent.close()


def code(src: str) -> str:
    return f"```python\n{src}\n```"


def test_happy_path_takes_the_real_output_not_the_imagined_one(scripted, kernel):
    model = scripted(
        [
            code("# 1. Clips sold in May.\n# 2. Total.\nmay = 48 // 2\nprint('total:', 48 + may)")
            + "\nWhen you run it, it prints:\n```\ntotal: 99\n```\nSo \\boxed{99}",
        ]
    )
    state = run(math_agent(model), kernel)
    assert (state["answer"], state["status"], state["rounds"]) == ("72", "done", 1)
    assert [r["node"] for r in state["trace"]] == ["write_code", "run_code"]
    assert state["programs"][0].startswith("# 1. Clips sold in May.")  # not the imagined block
    # the system prompt leads every request; the code turn stops where outputs start
    assert model.requests[0].messages[0]["role"] == "system"
    assert model.requests[0].messages[-1]["content"].startswith("Problem: Natalia")
    assert "```output" in model.requests[0].stop


def test_recheck_shows_the_real_output_and_confirms(scripted, kernel):
    model = scripted(
        [
            code("may = 48 // 2\nprint('may:', may)\nprint('total:', 48 + may)")
            + "\n```output\ntotal: 99\n```",
            "Yes, 72 is the total number of clips. \\boxed{72}",
        ]
    )
    state = run(math_agent(model, recheck=True), kernel)
    assert (state["answer"], state["status"]) == ("72", "done")
    shown = model.requests[1].messages[-1]["content"]
    assert "may: 24\ntotal: 72" in shown and "answer is 72" in shown
    assert "99" not in shown  # never the output the model made up
    assert [r["node"] for r in state["trace"]] == ["write_code", "run_code", "recheck"]


def test_recheck_can_send_a_corrected_program_which_is_not_checked_again(scripted, kernel):
    model = scripted(
        [
            code("print('clips in May:', 48 // 2)"),
            "It asks for both months together.\n" + code("print('total:', 48 + 48 // 2)"),
        ]
    )
    state = run(math_agent(model, recheck=True), kernel)
    assert (state["answer"], state["status"], state["rounds"]) == ("72", "done", 2)
    nodes = [r["node"] for r in state["trace"]]
    assert nodes == ["write_code", "run_code", "recheck", "run_code"]


def test_recheck_without_a_verdict_keeps_the_programs_answer(scripted, kernel):
    model = scripted([code("print(72)"), "The program looks right to me."])
    state = run(math_agent(model, recheck=True), kernel)
    assert (state["answer"], state["status"]) == ("72", "done")


def test_self_correction_after_a_runtime_error(scripted, kernel):
    model = scripted(
        [
            code("print(48 + mya)"),
            "I misspelled the variable.\n" + code("may = 48 / 2\nprint('total:', int(48 + may))"),
        ]
    )
    state = run(math_agent(model), kernel)
    assert state["answer"] == "72"
    assert state["rounds"] == 2
    reflect_turn = model.requests[1].messages[-1]["content"]
    assert "NameError" in reflect_turn and "mya" in reflect_turn
    nodes = [r["node"] for r in state["trace"]]
    assert nodes == ["write_code", "run_code", "reflect", "run_code"]


def test_a_reflection_runs_its_program_even_beside_a_boxed_guess(scripted, kernel):
    model = scripted(
        [code("print(48 + mya)"), "Fixed.\n" + code("print('total:', 48 + 24)") + " \\boxed{99}"]
    )
    state = run(math_agent(model), kernel)
    assert state["answer"] == "72" and state["rounds"] == 2  # the program's, not the guess


def test_state_persists_within_a_problem(scripted, kernel):
    model = scripted(
        [
            code("base = 48\nprint(base + mya)"),
            "Now the rest.\n" + code("print('total:', base + base // 2)"),
        ]
    )
    state = run(math_agent(model), kernel)
    assert state["answer"] == "72"


def test_rounds_are_bounded_and_the_answer_falls_back(scripted, kernel):
    model = scripted(
        [
            code("1/0"),
            "Try again.\n" + code("1/0"),
            "Again.\n" + code("2/0"),
            "I could not finish; it is 7.",
        ]
    )
    state = run(math_agent(model, max_rounds=3), kernel)
    assert state["rounds"] == 3
    last_turn = model.requests[-1].messages[-1]["content"]
    assert "No more runs are left" in last_turn
    assert state["answer"] == "7"  # ToRA fallback: the last number
    assert state["trace"][-1]["node"] == "conclude"


def test_empty_or_implausible_output_triggers_reflection(scripted, kernel):
    model = scripted([code("x = 72"), code("x = 72\nprint(x)")])
    state = run(math_agent(model), kernel)
    assert "printed nothing" in model.requests[1].messages[-1]["content"]
    assert state["answer"] == "72"


def test_a_last_line_without_a_value_triggers_reflection(scripted, kernel):
    model = scripted([code("print('Done computing.')"), code("print('total:', 72)")])
    state = run(math_agent(model), kernel)
    assert "holds no answer" in model.requests[1].messages[-1]["content"]
    assert state["answer"] == "72"


def test_extract_code_prefers_marked_python_blocks():
    from toolpath.agents.math.common import extract_code

    text = "```python\nprint(1)\n```\nIt prints:\n```\n1\n```"
    assert extract_code(text) == "print(1)"
    assert extract_code("```\nprint(2)\n```") == "print(2)"  # unmarked, when that is all
    assert extract_code("```py\na = 1\n```\n```python\nb = 2") == "b = 2"  # the last marked
    assert extract_code("no code here") is None


@pytest.mark.parametrize(
    ("output", "question", "flagged"),
    [
        ("people: 93.33333333333333", "How many people came?", "not a whole"),
        ("eggs left: -160", "How many eggs are left?", "not a whole"),
        ("total: 1,234", "how many marbles in all?", None),
        ("total: 72.0", "How many clips?", None),
        ("ratio: 3/4", "How many of them, as a fraction?", None),  # a fraction is left alone
        ("cost: 12.5", "How much does it cost?", None),  # not a count
        ("x: -2.5", "", None),  # no question: only the basic checks
        ("", "How many?", "printed nothing"),
        ("None", "How many?", "not an answer"),
        ("total: 4.1580021651071744e-88", "How much?", "implausibly small"),
        ("total: 3e20", "How much?", "implausibly large"),
        ("total: 0", "How much?", None),
    ],
)
def test_looks_wrong_flags_counts_that_are_not_whole(output, question, flagged):
    from toolpath.agents.math.common import looks_wrong

    why = looks_wrong(output, question)
    assert (why is None) if flagged is None else (flagged in (why or ""))


def test_an_impossible_count_sends_the_program_back(scripted, kernel):
    model = scripted(
        [
            code("print('total:', 48 + 48 / 3.5)"),
            "May is half of April, not a third and a half.\n"
            + code("print('total:', 48 + 48 // 2)"),
        ]
    )
    state = run(math_agent(model), kernel)
    assert state["answer"] == "72" and state["rounds"] == 2
    assert "not a whole" in model.requests[1].messages[-1]["content"]


def test_empty_question_is_refused(scripted):
    with pytest.raises(ConfigError, match="empty"):
        math_agent(scripted([])).invoke("   ")


def test_pot_answer_is_the_last_printed_line(scripted, kernel):
    model = scripted([code("print('working')\nprint(48 + 48 // 2)")])
    state = run(pot_agent(model), kernel)
    assert state["answer"] == "72"
    assert state["rounds"] == 1


@pytest.mark.parametrize(
    ("line", "answer"),
    [
        ("42", "42"),
        ("72.0", "72"),
        ("72.5", "72.5"),
        ("total: 72.0", "72"),
        ("3/4", "3/4"),
        ("2*sqrt(3)", "2*sqrt(3)"),
        ("Answer: 3/4", "3/4"),
        ("Total cost of all ingredients: $17.5", "$17.5"),
        ("The answer is 18", "18"),
        ("\\boxed{16}", "16"),
        ("\boxed{16}", "16"),  # print("\boxed{16}") turns \b into a backspace
    ],
)
def test_printed_answer_reads_values_labels_and_boxes(line, answer):
    from toolpath.agents.math.baselines import printed_answer

    assert printed_answer(line) == answer


def test_pot_error_gives_no_answer(scripted, kernel):
    state = run(pot_agent(scripted([code("raise ValueError('x')")])), kernel)
    assert state["answer"] is None and state["status"] == "failed"


def test_cot_extracts_the_boxed_answer(scripted):
    model = scripted(["48 / 2 = 24 in May, so 48 + 24 = 72. \\boxed{72}"])
    state = cot_agent(model).invoke(NATALIA)
    assert state["answer"] == "72"
    assert model.requests[0].messages[-1]["content"].startswith("Problem: Natalia")


def test_demonstrations_come_from_train_with_real_outputs(kernel):
    from toolpath.evals.math.datasets import gsm8k

    train = {e.question for e in gsm8k("train")}
    test = {e.question for e in gsm8k("test")}
    for demo in math_demos():
        assert demo["question"] in train and demo["question"] not in test
        kernel.reset()
        assert kernel.execute(demo["code"]).stdout.strip() == demo["output"]
        kernel.reset()
        assert kernel.execute(demo["pot"]).stdout.strip() == demo["pot_output"]


def test_the_answer_is_the_value_of_the_last_labelled_line(scripted, kernel):
    model = scripted([code("print('eggs:', 9)\nprint('total earnings:', 18)")])
    state = run(math_agent(model), kernel)
    assert state["answer"] == "18"


def test_a_dying_kernel_marks_the_episode_as_an_error_and_the_run_goes_on(scripted, tmp_path):
    import json

    from toolpath.evals.harness import Example, run_eval_sync
    from toolpath.evals.math.tasks import MathTask
    from toolpath.tools.code.kernel import KernelPool

    model = scripted([code("import os\nos._exit(3)"), code("print(72)")])
    examples = [Example("a", "Kill the kernel.", "1"), Example("b", NATALIA, "72")]
    pool = KernelPool(size=1)
    task = MathTask("gsm8k", lambda **_: examples, kernels=pool)
    try:
        result = run_eval_sync(
            task, examples, pot_agent(model), out_dir=tmp_path, method="pot", progress=False
        )
    finally:
        pool.close()
    records = {r["id"]: r for r in result.records}
    assert records["a"]["error"].startswith("KernelError: KernelDied")
    assert records["b"]["error"] is None and records["b"]["correct_strict"] is True
    assert records["b"]["status"] == "done" and records["b"]["tokens"]["completion"] > 0
    lines = (tmp_path / "pot.jsonl").read_text().splitlines()
    assert sorted(json.loads(line)["id"] for line in lines) == ["a", "b"]


def test_a_reflection_without_a_program_is_asked_for_the_program(scripted, kernel):
    model = scripted(
        [
            code("print(48 / (2 - 2))"),
            "The divisor is zero, so the program should check it first.",  # no program
            code("print('total:', 48 + 48 // 2)"),
        ]
    )
    state = run(math_agent(model), kernel)
    assert state["answer"] == "72"
    assert state["rounds"] == 2
    assert model.requests[2].messages[-1]["content"] == "Write the corrected program."
    # the follow-up sees the explanation it gave
    assert "divisor is zero" in model.requests[2].messages[-2]["content"]
    nodes = [r["node"] for r in state["trace"]]
    assert nodes == ["write_code", "run_code", "reflect", "reflect", "run_code"]


def test_a_repeated_program_is_not_run_again(scripted, kernel):
    first = "n = 7 / 2\nprint('people:', n)"
    model = scripted(
        [
            code(first),
            "It should be whole.\n" + code("# same again\nn = 7 / 2\n\nprint('people:', n)"),
            "Halve first.\n" + code("print('people:', 7 // 2)"),
        ]
    )
    state = run(math_agent(model), kernel, question="How many people are in half of 7?")
    assert state["answer"] == "3"
    assert state["rounds"] == 3  # the repeat costs a round but never reaches the kernel
    repeat_turn = model.requests[2].messages[-1]["content"]
    assert "same as one that already ran" in repeat_turn and "people: 3.5" in repeat_turn
    runs = [r for r in state["trace"] if r["node"] == "run_code"]
    assert [r["ok"] for r in runs] == [False, False, True]
    assert state["programs"][0] == first and len(state["programs"]) == 3


def test_an_older_repeated_program_does_not_show_the_latest_output(scripted, kernel):
    model = scripted(
        [
            code("print('people:', 7 / 2)"),
            "Try halving.\n" + code("print('people:', -7 // 2)"),
            "Back to the first.\n" + code("print('people:', 7 / 2)"),
            "\\boxed{3}",
        ]
    )
    state = run(math_agent(model), kernel, question="How many people are in half of 7?")
    repeat_turn = model.requests[3].messages[-1]["content"]
    assert "same as one that already ran" in repeat_turn
    assert "(not run again)" in repeat_turn and "-4" not in repeat_turn
    assert state["rounds"] == 3 and state["answer"] == "3"


# --- the agent contract: nodes alone, trace records, statuses, checkpointing ------------------


def test_each_node_runs_alone(scripted, kernel):
    from toolpath.agents.math.baselines import ChainOfThought, ProgramOfThought
    from toolpath.agents.math.dotamath import DotaMath

    config = {"configurable": {"kernel": kernel}}
    dota = DotaMath(scripted([code("print('total:', 72)")]), prefix=[], max_rounds=2)
    update = dota.write_code({"question": NATALIA, "messages": []}, config)
    assert update["code"] == "print('total:', 72)"
    assert update["trace"][0]["node"] == "write_code"
    ran = dota.run_code({"question": NATALIA, "code": update["code"], "programs": []}, config)
    assert ran["output"].strip() == "total: 72" and ran["rounds"] == 1 and not ran["failed"]
    assert (ran["answer"], ran["status"]) == ("72", "done")
    running = {**ran, "status": "running", "failed": True}
    assert dota.after_run(running) == "reflect"
    assert dota.after_run({**running, "rounds": 2}) == "conclude"
    assert dota.after_run({**running, "failed": False}) == "recheck"

    pot = ProgramOfThought(scripted([]), prefix=[])
    state = pot.run_code({"question": NATALIA, "code": "print(3)\nprint(72)"}, config)
    assert state["answer"] == "72" and state["status"] == "done"

    cot = ChainOfThought(scripted(["So 72. \\boxed{72}"]), prefix=[])
    state = cot.reason({"question": NATALIA})
    assert (state["answer"], state["status"]) == ("72", "done")


def test_trace_records_follow_the_contract(scripted, kernel):
    from toolpath.agents.base import tokens

    model = scripted([code("print('total:', 72)")], name="m")
    state = run(math_agent(model), kernel)
    model_calls = [r for r in state["trace"] if r["node"] != "run_code"]
    assert all(r["model"] == "m" and r["tokens_in"] > 0 for r in model_calls)
    (ran,) = [r for r in state["trace"] if r["node"] == "run_code"]
    assert set(ran) == {"node", "tool", "seconds", "ok"} and ran["tool"] == "python"
    assert ran["ok"] and ran["seconds"] > 0
    assert tokens(state["trace"])["completion"] == sum(r["tokens_out"] for r in model_calls)
    failed = run(pot_agent(scripted([code("raise ValueError('x')")])), kernel)["trace"][-1]
    assert failed["tool"] == "python" and not failed["ok"] and "ValueError" in failed["error"]


def test_out_of_rounds_without_an_answer_is_the_step_limit(scripted, kernel):
    model = scripted([code("1/0"), "I cannot tell."])
    state = run(math_agent(model, max_rounds=1), kernel)
    assert state["answer"] is None and state["status"] == "step_limit"
    state = cot_agent(scripted(["I do not know."])).invoke(NATALIA)
    assert state["answer"] is None and state["status"] == "failed"


@pytest.mark.parametrize("method", ["dotamath", "pot", "cot"])
def test_a_checkpointed_thread_keeps_the_run_and_takes_the_next_problem(
    scripted, kernel, tmp_path, method
):
    from toolpath.agents.base import sqlite_checkpointer

    builder = {"dotamath": math_agent, "pot": pot_agent, "cot": cot_agent}[method]
    replies = {
        "dotamath": [code("print('total:', 48 + 24)")],
        "pot": [code("print(48 + 24)")],
        "cot": ["48 + 24 = 72. \\boxed{72}"],
    }[method]
    db = tmp_path / "c.db"
    config = {"configurable": {"thread_id": "t", "kernel": kernel}}
    agent = builder(model=scripted(replies, cycle=True), checkpointer=sqlite_checkpointer(db))
    first = agent.invoke(NATALIA, config)
    strict = strict_checkpointer(db)  # it loads plain data only: the state holds nothing else
    saved = builder(model=scripted([]), checkpointer=strict).get_state(config)
    assert saved.values["answer"] == "72" and saved.values["status"] == "done"
    assert saved.values["messages"] == first["messages"] and not saved.next
    assert saved.values["trace"] == first["trace"]

    again = agent.invoke("What is 48 + 24?", config)
    assert again["status"] == "done" and again["answer"] == "72"
    # the second problem starts afresh: its prompt and state hold nothing of the first
    assert "Natalia" not in str(again["messages"])
    assert len(again["messages"]) == len(first["messages"])
    assert len(again["trace"]) == len(first["trace"])
    agent.close()


def strict_checkpointer(path):
    """A SQLite checkpointer whose serializer loads only LangGraph's safe types and the types
    it is told of (what LangGraph's strict mode, planned as its default, does)."""
    import sqlite3

    from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
    from langgraph.checkpoint.sqlite import SqliteSaver

    serde = JsonPlusSerializer(allowed_msgpack_modules=None)
    return SqliteSaver(sqlite3.connect(str(path), check_same_thread=False), serde=serde)

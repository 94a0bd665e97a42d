"""Control flow of the α-UMi agent (planner, caller, summarizer), driven by the scripted model,
and its TPTU-v2 tool retrieval and demo selection (BM25 and the real small embedder)."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

import pytest

from toolpath.agents import sqlite_checkpointer
from toolpath.agents.alpha_umi.agent import alpha_umi_agent
from toolpath.agents.react import tool_agent
from toolpath.errors import BackendError, ConfigError, ToolError, ToolSchemaError
from toolpath.retrieval.api_retriever import BM25Retriever
from toolpath.retrieval.synthetic import synthetic_catalog
from toolpath.tools import tool

TASK = "What is the secret code of Alice?"


@tool
def secret_code(name: str) -> str:
    """Look up the secret code of a person.

    Args:
        name: the person's first name
    """
    return "SC-" + hashlib.sha256(name.lower().encode()).hexdigest()[:6].upper()


@tool
def flaky(x: int) -> int:
    """Fails on purpose."""
    raise ToolError("service down")


CODE = secret_code.run({"name": "Alice"})
CALL = 'Action: secret_code\nAction Input: {"name": "Alice"}'


def roles(scripted, planner, caller=(), summarizer=()):
    """Three scripted models, one per role, each named after its role."""
    return (
        scripted(list(planner), name="planner-llm"),
        scripted(list(caller), name="caller-llm"),
        scripted(list(summarizer), name="summarizer-llm"),
    )


def agent_for(models, tools=(secret_code,), **kw):
    p, c, s = models
    return alpha_umi_agent(tools=list(tools), planner=p, caller=c, summarizer=s, **kw)


def froms(state) -> list[str]:
    return [t["from"] for t in state["conversation"]]


def prompt_of(request) -> str:
    return "\n".join(m["content"] for m in request.messages)


def test_caller_then_conclusion_runs_the_real_tool(scripted):
    models = roles(
        scripted,
        [
            "I need Alice's code from secret_code.\nNext: caller",
            "The code is known. Next: conclusion",
        ],
        [CALL],
        [f"Alice's secret code is {CODE}."],
    )
    p, c, s = models
    state = agent_for(models).invoke(TASK)
    assert state["status"] == "done"
    assert state["answer"] == f"Alice's secret code is {CODE}."
    assert froms(state) == ["user", "assistant", "caller", "observation", "assistant", "conclusion"]
    assert (
        state["conversation"][1]["value"] == "I need Alice's code from secret_code\nNext: caller."
    )
    assert state["conversation"][2]["value"] == CALL
    assert state["conversation"][3]["value"] == CODE  # the real tool's output
    # each role ran on its own model, with its own prompt, budget and temperature 0
    assert [len(m.requests) for m in models] == [2, 1, 1]
    assert "You are the planner" in prompt_of(p.requests[0])
    assert "You are the caller" in prompt_of(c.requests[0])
    assert "You are the summarizer" in prompt_of(s.requests[0])
    assert [r.max_tokens for r in (p.requests[0], c.requests[0], s.requests[0])] == [192, 128, 256]
    assert all(r.temperature == 0 for m in models for r in m.requests)
    assert f"observation: {CODE}" in prompt_of(p.requests[1])
    # after a real result the planner is reminded that it may conclude
    assert p.requests[1].messages[-1]["content"].startswith("The last observation is what secret")
    assert "The last observation" not in prompt_of(p.requests[0])
    # the trace says which model did what
    trace = [(r["node"], r.get("model")) for r in state["trace"]]
    assert trace == [
        ("retrieve", None),
        ("planner", "planner-llm"),
        ("caller", "caller-llm"),
        ("tool", None),
        ("planner", "planner-llm"),
        ("summarizer", "summarizer-llm"),
    ]
    assert state["trace"][1]["next"] == "caller" and state["trace"][4]["next"] == "conclusion"
    assert state["trace"][3]["ok"] is True and state["trace"][2]["tool"] == "secret_code"


def test_missing_tag_routes_to_the_caller(scripted):
    models = roles(scripted, ["Look the code up", "Next: conclusion"], [CALL], ["done"])
    state = agent_for(models).invoke(TASK)
    assert state["status"] == "done"
    assert state["conversation"][1]["value"] == "Look the code up\nNext: caller."
    assert state["trace"][1]["tagged"] is False and state["trace"][1]["next"] == "caller"
    assert state["trace"][4]["tagged"] is True


def test_direct_conclusion_skips_the_caller(scripted):
    models = roles(scripted, ["No tool is needed. Next: summarizer"], [], ["Hello!"])
    state = agent_for(models).invoke("Say hello")
    assert state["answer"] == "Hello!" and state["status"] == "done"
    assert froms(state) == ["user", "assistant", "conclusion"]
    assert state["trace"][1]["next"] == "conclusion"  # GLPFT's older tag reads as conclusion


def test_empty_planner_reply_is_retried(scripted):
    models = roles(scripted, ["", "  \n", "Next: conclusion"], [], ["ok"])
    p = models[0]
    state = agent_for(models).invoke(TASK)
    assert state["status"] == "done"
    assert len(p.requests) == 3
    assert "Your last reply was empty" not in prompt_of(p.requests[0])
    assert "Your last reply was empty" in prompt_of(p.requests[1])
    assert [r.get("empty", False) for r in state["trace"] if r["node"] == "planner"] == [
        True,
        True,
        False,
    ]
    assert froms(state) == ["user", "assistant", "conclusion"]  # empty replies are not turns
    assert state["steps"] == 1


def test_empty_planner_retries_are_bounded(scripted):
    models = roles(scripted, [""] * 10)
    state = agent_for(models, max_empty=2).invoke(TASK)
    assert state["status"] == "failed" and state["answer"] is None
    assert len(models[0].requests) == 3


def test_give_up_is_an_honest_answer(scripted):
    models = roles(scripted, ["None of these tools can book a flight.\nNext: give up"])
    state = agent_for(models).invoke("Book me a flight to Rome")
    assert state["status"] == "gave_up"
    assert state["answer"] == "Could not complete the task: None of these tools can book a flight"
    assert [len(m.requests) for m in models] == [1, 0, 0]
    assert froms(state) == ["user", "assistant"]


def test_step_cap_goes_to_the_summarizer_with_step_limit(scripted):
    p, c, s = roles(scripted, [], [], ["Alice's code is probably unknown."])
    p.replies, p.cycle = ["Call it again.\nNext: caller"], True
    c.replies, c.cycle = [CALL], True
    state = alpha_umi_agent(
        tools=[secret_code], planner=p, caller=c, summarizer=s, max_steps=3
    ).invoke(TASK)
    assert state["status"] == "step_limit"
    assert state["answer"] == "Alice's code is probably unknown."
    assert (len(p.requests), len(c.requests), len(s.requests)) == (3, 2, 1)
    assert "step limit was reached" in prompt_of(s.requests[0])
    # the second identical call is run and marked as a repeat
    observations = [t["value"] for t in state["conversation"] if t["from"] == "observation"]
    assert observations[0] == CODE
    assert observations[1].startswith(CODE) and "made before" in observations[1]


def test_invented_tool_name_shows_the_closest_real_ones(scripted):
    models = roles(
        scripted,
        ["Next: caller", "Next: caller", "Next: conclusion"],
        ['Action: secret_cod\nAction Input: {"name": "Alice"}', CALL],
        ["ok"],
    )
    state = agent_for(models, tools=[secret_code, flaky]).invoke(TASK)
    first = state["conversation"][3]
    assert first == {
        "from": "observation",
        "value": "Error: there is no tool named 'secret_cod'. Did you mean: secret_code?",
    }
    assert "Did you mean: secret_code?" in prompt_of(models[0].requests[1])
    assert "The last observation" not in prompt_of(models[0].requests[1])  # not after an error
    assert state["trace"][3] == {**state["trace"][3], "tool": "secret_cod", "ok": False}
    assert state["conversation"][6]["value"] == CODE  # the corrected call ran


def test_unreadable_calls_and_tool_failures_become_observations(scripted):
    models = roles(
        scripted,
        ["Next: caller"] * 5 + ["Next: give up"],
        [
            "I will call a tool.",  # no Action line
            "Action: secret_code\nAction Input: {name: Alice}",  # bad JSON
            'Action: secret_code\nAction Input: {"person": "Alice"}',  # bad arguments
            "Action: flaky\nAction Input: {}",  # bad arguments again (x missing)
            'Action: flaky\nAction Input: {"x": 1}',  # the tool raises ToolError
        ],
    )
    state = agent_for(models, tools=[secret_code, flaky]).invoke(TASK)
    obs = [t["value"] for t in state["conversation"] if t["from"] == "observation"]
    assert obs[0] == "Error: the call could not be read: no 'Action: <tool name>' line."
    assert obs[1].startswith("Error: the call could not be read: Action Input is not valid JSON")
    assert "missing required argument 'name'" in obs[2] and "unknown argument 'person'" in obs[2]
    assert "missing required argument 'x'" in obs[3]
    assert obs[4] == "Error: service down"
    assert state["status"] == "gave_up"
    # a caller turn that could not be read is recorded as written
    assert state["conversation"][2]["value"] == "I will call a tool."
    assert [r["ok"] for r in state["trace"] if r["node"] == "tool"] == [False] * 5


def test_role_labels_and_continued_transcripts_are_cut(scripted):
    models = roles(
        scripted,
        ["assistant: I need the code.\nNext: caller.\ncaller: Action: flaky", "Next: conclusion"],
        [f"caller: {CALL}\nobservation: SC-FAKE"],
        [f"conclusion: The code is {CODE}.\nuser: thanks"],
    )
    p, c, _ = models
    state = agent_for(models).invoke(TASK)
    assert state["conversation"][1]["value"] == "I need the code.\nNext: caller."
    assert state["conversation"][3]["value"] == CODE  # not the model's invented observation
    assert state["answer"] == f"The code is {CODE}."
    assert "\nobservation:" in c.requests[0].stop and "\ncaller:" in p.requests[0].stop


def test_one_model_for_all_roles(scripted):
    model = scripted(["Next: caller", CALL, "Next: conclusion", f"It is {CODE}."])
    agent = alpha_umi_agent(model, [secret_code])  # every role runs on model
    assert {"planner", "caller", "tool", "summarizer"} <= set(agent.get_graph().nodes)
    state = agent.invoke(TASK)
    assert state["answer"] == f"It is {CODE}." and state["status"] == "done"
    assert {r.get("model") for r in state["trace"] if "model" in r} == {"scripted"}
    # the single-model builder builds the single-model agent only
    assert "planner" not in tool_agent(model, [secret_code]).get_graph().nodes
    with pytest.raises(TypeError, match="planner"):
        tool_agent(model, [secret_code], planner=model)  # type: ignore[call-arg]


def test_the_old_argument_order_still_works_with_a_warning(scripted):
    model = scripted(["Next: conclusion", "ok"])
    with pytest.warns(DeprecationWarning, match=r"alpha_umi_agent\(model, tools\)"):
        agent = alpha_umi_agent([secret_code], model)
    state = agent.invoke(TASK)
    assert state["answer"] == "ok" and state["tools"] == ["secret_code"]


def test_bm25_retriever_puts_only_the_top_k_tools_in_the_prompt(scripted):
    catalog = [*synthetic_catalog(40, seed=5), secret_code]
    retriever = BM25Retriever(catalog, k=3)
    models = roles(scripted, ["Next: caller", "Next: conclusion"], [CALL], ["ok"])
    p, c, _ = models
    state = alpha_umi_agent(
        tools=[], planner=p, caller=c, summarizer=models[2], retriever=retriever, k_tools=3
    ).invoke("Look up the secret code of a person called Alice")
    assert len(state["tools"]) == 3 and state["tools"][0] == "secret_code"
    assert state["trace"][0]["tools"] == state["tools"]
    shown = [line for line in prompt_of(p.requests[0]).splitlines() if line.startswith("- ")]
    assert [line[2:].split(":")[0] for line in shown] == state["tools"]
    assert state["conversation"][3]["value"] == CODE  # the retriever's catalog is callable


def test_demo_list_prefers_demos_of_shown_tools(scripted):
    demos = [
        {"task": "Count the words in 'a b c'", "calls": [{"name": "word_count", "arguments": {}}]},
        {"task": "Bob's code?", "calls": [{"name": "secret_code", "arguments": {"name": "Bob"}}]},
        {"task": "Something else", "calls": []},
    ]
    models = roles(scripted, ["Next: caller", "Next: conclusion"], [CALL], ["ok"])
    p, c, s = models
    state = agent_for(models, demos=demos, k_demos=1).invoke(TASK)
    assert state["trace"][0]["demos"] == 1
    system = p.requests[0].messages[0]
    assert system["role"] == "system" and "Task: Bob's code?" in system["content"]
    assert "word_count" not in system["content"]
    assert c.requests[0].messages[0] == system  # the caller sees the demos too
    assert all(m["role"] != "system" for m in s.requests[0].messages)  # the summarizer does not
    with pytest.raises(ConfigError, match="k_demos"):
        agent_for(models, demos=demos, k_demos=0)


def test_constrained_caller_is_recorded_as_action_text(scripted):
    models = roles(
        scripted,
        ["Next: caller", "Next: conclusion"],
        [json.dumps({"tool_calls": [{"name": "secret_code", "arguments": {"name": "Alice"}}]})],
        ["ok"],
    )
    state = agent_for(models, tools=[secret_code, flaky], caller_json=True).invoke(TASK)
    request = models[1].requests[0]
    calls = request.response_format["json_schema"]["schema"]["properties"]["tool_calls"]
    assert calls["maxItems"] == 1  # one Action per caller turn
    options = calls["items"]["anyOf"]
    assert [o["properties"]["name"]["const"] for o in options] == ["secret_code", "flaky"]
    assert state["conversation"][2]["value"] == CALL
    assert state["conversation"][3]["value"] == CODE


def test_stream_tokens_name_their_role(scripted):
    models = roles(scripted, ["Next: caller", "Next: conclusion"], [CALL], ["The answer."])
    events = list(agent_for(models).stream(TASK, stream_mode=["custom", "updates"]))
    by_node: dict[str, str] = {}
    for mode, chunk in events:
        if mode == "custom":
            by_node[chunk["node"]] = by_node.get(chunk["node"], "") + chunk["delta"]
    assert by_node == {
        "planner": "Next: callerNext: conclusion",
        "caller": CALL,
        "summarizer": "The answer.",
    }
    nodes = [next(iter(c)) for m, c in events if m == "updates"]
    assert nodes == ["retrieve", "planner", "caller", "tool", "planner", "summarizer"]


async def test_async_invoke(scripted):
    models = roles(scripted, ["Next: conclusion"], [], ["async ok"])
    state = await agent_for(models).ainvoke(TASK)
    assert state["answer"] == "async ok"


def test_checkpointed_thread_resumes_and_continues(scripted, tmp_path: Path):
    def down(_messages):
        raise BackendError("endpoint went away")

    models = roles(
        scripted, ["Next: caller", down, "Next: conclusion", "Next: conclusion"], [CALL], ["a", "b"]
    )
    agent = agent_for(models, checkpointer=sqlite_checkpointer(tmp_path / "cp.db"))
    config = {"configurable": {"thread_id": "t1"}}
    with pytest.raises(BackendError):
        agent.invoke(TASK, config)
    state = agent.invoke(None, config)  # resumes at the planner; the tool is not run again
    assert state["answer"] == "a" and len(models[1].requests) == 1
    state = agent.invoke("And Bob's?", config)
    assert state["answer"] == "b" and state["question"] == "And Bob's?"
    assert froms(state).count("user") == 2 and state["steps"] == 1


def test_bad_input_is_a_config_error(scripted):
    models = roles(scripted, [])
    with pytest.raises(ConfigError, match="task"):
        agent_for(models).invoke({"conversation": []})
    with pytest.raises(ConfigError, match="max_steps"):
        agent_for(models, max_steps=0)
    with pytest.raises(ToolSchemaError, match="two tools are named 'secret_code'"):
        agent_for(models, tools=[secret_code, secret_code])


def test_plain_functions_are_tools(scripted):
    def shout(text: str) -> str:
        """Upper-case a text."""
        return text.upper()

    models = roles(
        scripted,
        ["Next: caller", "Next: conclusion"],
        ['Action: shout\nAction Input: {"text": "hi"}'],
        ["HI"],
    )
    state = agent_for(models, tools=[shout]).invoke("Shout hi")
    assert state["conversation"][3]["value"] == "HI"


@pytest.fixture(scope="module")
def embedder():
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("faiss")
    from toolpath.retrieval.embed import Embedder

    return Embedder(threads=1)


def test_api_retriever_and_demo_selector_feed_the_prompts(scripted, embedder, tmp_path: Path):
    from toolpath.retrieval.api_retriever import APIRetriever

    start = time.perf_counter()
    catalog = [*synthetic_catalog(30, seed=7), secret_code]
    retriever = APIRetriever(catalog, embedder=embedder, cache_dir=tmp_path)
    demos: list[Any] = [
        {"task": "Translate hello", "calls": [{"name": "translate_text_0", "arguments": {}}]},
        {"task": "What is Bob's secret code?", "calls": [{"name": "secret_code", "arguments": {}}]},
    ]
    models = roles(scripted, ["Next: caller", "Next: conclusion"], [CALL], ["ok"])
    p, c, s = models
    agent = alpha_umi_agent(
        tools=catalog,
        planner=p,
        caller=c,
        summarizer=s,
        retriever=retriever,
        demos=demos,
        k_demos=1,
    )
    state = agent.invoke(TASK)
    assert len(state["tools"]) == 6 and state["tools"][0] == "secret_code"  # default k
    assert state["tools"] == [t.name for t in retriever.tools_for(TASK)]
    assert "Task: What is Bob's secret code?" in p.requests[0].messages[0]["content"]
    assert state["conversation"][3]["value"] == CODE
    assert time.perf_counter() - start < 120


def test_a_recorded_run_exports_as_training_data(scripted, tmp_path):
    from toolpath.evals.alpha_umi.glpft import trajectory_record
    from toolpath.evals.alpha_umi.sft_export import export_sft

    models = roles(
        scripted,
        ["I need Alice's code.\nNext: caller", "The code is known. Next: conclusion"],
        [CALL],
        [f"Alice's secret code is {CODE}."],
    )
    state = agent_for(models).invoke(TASK)
    runs = tmp_path / "runs"
    runs.mkdir()
    line = json.dumps(trajectory_record(state, [secret_code]))
    (runs / "trajectories.jsonl").write_text(line + "\n")
    counts = export_sft(runs, tmp_path / "sft")
    assert (counts["planner"], counts["caller"], counts["summarizer"]) == (2, 1, 1)
    caller = json.loads((tmp_path / "sft" / "caller.json").read_text())
    assert caller[0]["output"] == CALL
    assert "secret_code" in caller[0]["instruction"] and TASK in caller[0]["instruction"]


def test_nodes_can_be_called_alone(scripted):
    from toolpath.agents.alpha_umi.agent import AlphaUMiSteps, after_planner

    model = scripted(["Alice's code is needed.\nNext: caller", CALL])
    steps = AlphaUMiSteps({"planner": model, "caller": model, "summarizer": model}, [secret_code])
    state: dict[str, Any] = {"conversation": [{"from": "user", "value": TASK}]}
    state.update(steps.retrieve(state))
    assert state["tools"] == ["secret_code"] and state["status"] == "running"
    update = steps.plan(state)
    assert update["next"] == "caller" and update["trace"][0]["model"] == "scripted"
    assert after_planner({**state, **update}) == "caller"
    state["conversation"] = state["conversation"] + update["conversation"]
    update = steps.call(state)
    assert update["call"] == {
        "name": "secret_code",
        "arguments": {"name": "Alice"},
        "problem": None,
    }
    state["conversation"] = state["conversation"] + update["conversation"]
    update = steps.run_tool({**state, "call": update["call"]})
    assert update["conversation"] == [{"from": "observation", "value": CODE}]
    assert update["observed"] == "secret_code" and update["trace"][0]["ok"] is True
    unknown = {"name": "nope", "arguments": {}, "problem": None}
    update = steps.run_tool({**state, "call": unknown})
    assert update["conversation"][0]["value"].startswith("Error: there is no tool named 'nope'")
    assert update["observed"] is None and update["trace"][0]["ok"] is False


def test_constrained_planner_thinks_then_routes(scripted):
    plan = json.dumps({"thought": "I need Alice's code.", "next": "caller"})
    done = json.dumps({"thought": "The observation answers it.", "next": "conclusion"})
    call = json.dumps({"tool_calls": [{"name": "secret_code", "arguments": {"name": "Alice"}}]})
    models = roles(scripted, [plan, done], [call], ["ok"])
    state = agent_for(models, planner_json=True, caller_json=True).invoke(TASK)
    first = models[0].requests[0]
    schema = first.response_format["json_schema"]["schema"]
    assert list(schema["properties"]) == ["thought", "next"]  # free text first, then the tag
    assert schema["properties"]["next"]["enum"] == ["caller", "conclusion", "give up"]
    assert first.stop is None and '"next": "caller" | "conclusion"' in prompt_of(first)
    assert state["conversation"][1]["value"] == "I need Alice's code.\nNext: caller."
    assert state["conversation"][3]["value"] == CODE and state["status"] == "done"
    # the caller saw every parameter's contract, as toolpath's other prompts show it
    assert "name (string, required): the person's first name" in prompt_of(models[1].requests[0])

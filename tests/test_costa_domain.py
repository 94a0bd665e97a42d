"""CoSTA* on a domain of plain typed functions (not images): built from code and from a spec,
planned with A* (matching exhaustive search), executed, verified, re-planned; the LLM
verifier with the scripted model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from toolpath import tool
from toolpath.agents.costa.agent import costa_agent
from toolpath.agents.costa.domain import ToolDomain, Verdict, costa_tool, verdict
from toolpath.agents.costa.search import Subtask, SubtaskTree, astar, exhaustive, prune
from toolpath.agents.costa.table import CostTable
from toolpath.agents.costa.verifiers import LLMVerifier
from toolpath.errors import ConfigError, PlanError
from toolpath.llm.scripted import ScriptedModel


class Text(str):
    """Raw input: numbers separated by commas or semicolons."""


class Report(dict[str, float]):
    """The final summary."""


@costa_tool(serves={"parse": (0.01, 0.95)})
def parse_fast(text: Text) -> list[float]:
    """Split on commas only: fast, and wrong for semicolon-separated input."""
    return [float(x) for x in text.split(",") if x.strip() and ";" not in x]


@costa_tool(serves={"parse": (0.5, 0.9)})
def parse_any(text: Text) -> list[float]:
    return [float(x) for x in text.replace(";", ",").split(",") if x.strip()]


@costa_tool(serves={"scale": (0.02, 0.9)})
@tool
def scale(xs: list[float], factor: float = 1.0) -> list[float]:
    """Multiply every value.

    Args:
        factor: The multiplier.
    """
    return [x * factor for x in xs]


@costa_tool(serves={"summarize": (0.01, 0.9)})
def total(xs: list[float]) -> Report:
    return Report(total=sum(xs), n=len(xs))


@costa_tool(serves={"summarize": (0.2, 0.99)}, input_type="list", output_type="Report")
def total_checked(xs, **_):  # untyped on purpose: the decorator gives its types
    return Report(total=sum(xs), n=len(xs))


def check_parse(kind: str, before: Text, after: list[float], params: dict[str, Any]) -> bool:
    expected = len([x for x in before.replace(";", ",").split(",") if x.strip()])
    return len(after) == expected


def make_domain() -> ToolDomain:
    return ToolDomain(
        [parse_fast, parse_any, scale, total, total_checked],
        {"parse": {"verifier": check_parse}},
        example="Sum 1,2 -> ...",
    )


TREE: list[dict[str, Any]] = [
    {"id": "p", "type": "parse", "params": {}, "parents": []},
    {"id": "s", "type": "scale", "params": {"factor": 2}, "parents": ["p"]},
    {"id": "t", "type": "summarize", "params": {}, "parents": ["p"]},
]


def test_types_schemas_and_priors_come_from_the_functions() -> None:
    domain = make_domain()
    info = {t.name: (t.input_type, t.output_type) for t in domain.tools}
    assert info == {
        "parse_fast": ("Text", "list"),
        "parse_any": ("Text", "list"),
        "scale": ("list", "list"),
        "total": ("list", "Report"),
        "total_checked": ("list", "Report"),
    }
    assert domain.start_types == ("Text",)  # the input no tool produces
    assert domain.subtask_schemas["scale"]["properties"]["factor"]["type"] == "number"
    assert domain.priors()[("parse_any", "parse")] == (0.5, 0.9)
    with pytest.raises(ValueError, match="lacks parameter"):
        ToolDomain([parse_any], {"parse": {"params": {"type": "object", "required": ["sep"]}}})\
            .complete_tree([{"id": 1, "type": "parse", "params": {}}])  # fmt: skip
    with pytest.raises(ConfigError, match="which subtask types it serves"):
        ToolDomain([lambda t: t])
    with pytest.raises(ConfigError, match="first parameter"):
        ToolDomain([costa_tool(lambda: 1, serves={"x": (1, 1)})])


def test_astar_matches_exhaustive_and_respects_the_types() -> None:
    domain = make_domain()
    tree = SubtaskTree(Subtask(s["id"], s["type"], tuple(s["parents"])) for s in TREE)
    tools = prune(domain.tools, tree, domain.start_types)
    table = CostTable(domain.priors())
    for alpha in (0.0, 1.0, 2.0):
        a = astar(tree, tools, table, alpha=alpha, q_threshold=0.5, start_types=domain.start_types)
        e = exhaustive(tree, tools, table, alpha=alpha, q_threshold=0.5, start_types=("Text",))
        assert a.objective == pytest.approx(e.objective) and a.expanded < e.expanded
        # scale must come before summarize: a Report cannot be scaled
        assert [s.subtask_id for s in a.path] == ["p", "s", "t"]
    with pytest.raises(PlanError, match="cannot run"):
        astar(tree, tools, table, q_threshold=0.5)  # an image cannot be parsed


def test_the_agent_runs_verifies_and_replans() -> None:
    domain = make_domain()
    agent = costa_agent(
        ScriptedModel([]), domain=domain, alpha=2.0, q_threshold=0.5, threshold="product"
    )
    state = agent.invoke({"request": "x", "context": Text("1;2;3"), "tree": TREE})
    assert state["status"] == "done"
    assert state["context"] == {"total": 12.0, "n": 3}
    tried = [(a["tool"], a["ok"]) for a in state["attempts"]]
    # the cheap parser's result fails the check; A* re-plans with the robust one
    assert tried[:2] == [("parse_fast", False), ("parse_any", True)]
    assert state["replans"] == 1
    assert agent.table.get("parse_fast", "parse")[1] < 0.95  # type: ignore[attr-defined]


def test_a_domain_from_its_spec(tmp_path: Path) -> None:
    spec = {
        "name": "numbers",
        "start_types": ["Text"],
        "subtasks": {
            "parse": {
                "params": {"type": "object", "properties": {}},
                "verifier": f"{__name__}:check_parse",
                "pass_at": 0.5,
            }
        },
        "tools": [
            {"function": f"{__name__}:parse_any", "serves": {"parse": [0.5, 0.9]}},
            {"function": f"{__name__}:total", "serves": {"summarize": [0.1, 0.8]}},
        ],
    }
    path = tmp_path / "numbers.json"
    path.write_text(json.dumps(spec))
    domain = ToolDomain.from_spec(path)
    assert domain.name == "numbers" and [t.name for t in domain.tools] == ["parse_any", "total"]
    assert domain.priors()[("total", "summarize")] == (0.1, 0.8)  # the spec's prior wins
    assert domain.verify("parse", Text("1;2"), [1.0], {}) == Verdict(0.0, False)
    bad = {**spec, "tools": [{"function": "nowhere:fn", "serves": {"parse": [1, 1]}}]}
    with pytest.raises(ConfigError, match="cannot load function 'nowhere:fn'"):
        ToolDomain.from_spec(bad)
    (tmp_path / "bad.yaml").write_text("- not a mapping")
    with pytest.raises(ConfigError, match="a mapping"):
        ToolDomain.from_spec(tmp_path / "bad.yaml")


def test_verdicts() -> None:
    assert verdict(0.7) == Verdict(0.7, True) and verdict(0.3, 0.5) == Verdict(0.3, False)
    assert verdict(True) == Verdict(1.0, True) and verdict((0.2, True)) == Verdict(0.2, True)
    assert verdict((0.0, False, "empty")) == Verdict(0.0, False, "empty")


def test_llm_verifier_with_the_scripted_model() -> None:
    model = ScriptedModel(
        [
            '{"ok": true, "why": "all three numbers"}',
            '{"ok": false, "why": "a value was lost"}',
            "not json",
        ]
    )
    check = LLMVerifier(model)
    assert check("parse", Text("1;2;3"), [1.0, 2.0, 3.0], {}) == Verdict(1.0, True)
    assert check("parse", Text("1;2;3"), [1.0, 2.0], {}) == Verdict(0.0, False, "a value was lost")
    assert not check("parse", Text("1"), [1.0], {}).ok  # an unreadable reply fails the step
    request = model.requests[0]
    assert request.response_format["json_schema"]["name"] == "verdict"  # type: ignore[index]
    shown = request.messages[-1]["content"]
    assert "Subtask: parse" in shown and "'1;2;3'" in shown and "[1.0, 2.0, 3.0]" in shown

    # wired into the agent, it replaces the domain's verifiers and its reason is kept
    replies: list[Any] = ['{"ok": false, "why": "looks wrong"}'] + ['{"ok": true, "why": ""}'] * 4
    judge = ScriptedModel(replies)
    agent = costa_agent(
        ScriptedModel([]), domain=make_domain(), verifier=LLMVerifier(judge), q_threshold=0.5
    )
    state = agent.invoke({"request": "x", "context": Text("1,2"), "tree": TREE})
    assert state["status"] == "done" and state["replans"] == 1
    assert state["attempts"][0]["why"] == "looks wrong"
    assert len(judge.requests) == 4


def test_the_tabular_domain_end_to_end(tmp_path: Path) -> None:
    """The shipped spec loads; generated tasks with their true trees are solved by the agent
    (re-planning past the cheap tools' failures) and pass their exact checks; A* finds
    exhaustive search's optimum; the result is written out for the CLI."""
    pytest.importorskip("pandas")
    from toolpath.agents.costa.agent import named_domain
    from toolpath.evals.costa.tabular_tasks import generate_tabular
    from toolpath.tools.tabular.files import describe, open_folder, save_result

    domain = named_domain("tabular")
    assert domain.start_types == ("DataSource",) and domain.load_input is open_folder
    tasks = [t for t in generate_tabular(12, seed=7) if len(t.subtasks) >= 3][:4]
    assert tasks
    for i, task in enumerate(tasks):
        source = task.materialize(tmp_path / task.id)
        agent = costa_agent(
            ScriptedModel([]), domain=domain, alpha=1.0, threshold="step", q_threshold=0.3
        )
        state = agent.invoke(
            {"request": task.instruction, "context": source, "tree": task.subtasks}
        )
        assert state["status"] == "done", state.get("reason")
        assert task.check(state["context"]), task.instruction
        written = save_result(state["context"], str(tmp_path / f"out{i}"))
        assert written.exists() and written.suffix in (".csv", ".png")
        assert describe(state["context"])
    tree = SubtaskTree(Subtask(s["id"], s["type"], tuple(s["parents"])) for s in tasks[0].subtasks)
    table = CostTable(domain.priors())
    for rule in ("product", "step", "normalized"):
        a = astar(
            tree, domain.tools, table, q_threshold=0.5, threshold=rule, start_types=("DataSource",)
        )
        e = exhaustive(
            tree, domain.tools, table, q_threshold=0.5, threshold=rule, start_types=("DataSource",)
        )
        assert a.objective == pytest.approx(e.objective) and a.expanded <= e.expanded
    assert open_folder(str(tmp_path / tasks[0].id)).files
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match=r"no \.csv files"):
        open_folder(str(tmp_path / "empty"))


def test_a_model_tree_loses_text_parameters_the_request_never_said() -> None:
    """A small model adds a colour the user never gave; the step verifier checks the step
    against that colour, so the tree drops it and the tool's default applies."""
    from toolpath.agents.costa.agent import subtask_tree
    from toolpath.agents.costa.image import ImageDomain

    reply = {
        "subtasks": [
            {"id": "s1", "type": "add_text", "parents": [],
             "params": {"text": "Summer", "position": "top-right", "color": "white"}},
            {"id": "s2", "type": "crop", "params": {"region": "left half"}, "parents": ["s1"]},
        ]
    }  # fmt: skip
    request = 'Write "Summer" in the top right corner, then keep the left half.'
    tree, _ = subtask_tree(ScriptedModel([json.dumps(reply)]), request, ImageDomain())
    assert tree[0]["params"] == {"text": "Summer", "position": "top-right"}
    assert tree[0]["dropped"] == {"color": "white"}
    assert tree[1]["params"] == {"region": "left half"} and "dropped" not in tree[1]


def test_an_invented_number_beside_the_ones_asked_for_is_dropped_too() -> None:
    from toolpath.agents.costa.agent import subtask_tree
    from toolpath.agents.costa.image import ImageDomain

    def tree_for(request: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        reply = {"subtasks": [{"id": "s1", "type": "resize", "params": params, "parents": []}]}
        return subtask_tree(ScriptedModel([json.dumps(reply)]), request, ImageDomain())[0]

    (step,) = tree_for("Resize it to 128x96.", {"width": 128, "height": 96, "scale": 1})
    assert step["params"] == {"width": 128, "height": 96} and step["dropped"] == {"scale": 1}
    (step,) = tree_for("Make it half the size.", {"scale": 0.5})  # nothing said: kept
    assert step["params"] == {"scale": 0.5} and "dropped" not in step


def test_coded_values_stay_though_the_request_words_them_otherwise() -> None:
    pytest.importorskip("pandas")
    from toolpath.agents.costa.agent import named_domain, subtask_tree

    reply = {"subtasks": [
        {"id": "s1", "type": "load", "params": {"file": "a.csv"}, "parents": []},
        {"id": "s2", "type": "clean", "params": {"column": "price", "missing": "zero"},
         "parents": ["s1"]},
    ]}  # fmt: skip
    request = "Load a.csv and parse price as numbers (fill missing values with 0)."
    tree, _ = subtask_tree(ScriptedModel([json.dumps(reply)]), request, named_domain("tabular"))
    assert tree[1]["params"] == {"column": "price", "missing": "zero"}


def test_a_value_outside_its_enum_gets_the_model_one_repair() -> None:
    pytest.importorskip("pandas")
    from toolpath.agents.costa.agent import named_domain, subtask_tree

    def reply(func: str) -> str:
        return json.dumps({"subtasks": [
            {"id": "s1", "type": "load", "params": {"file": "a.csv"}, "parents": []},
            {"id": "s2", "type": "aggregate", "params": {"by": "month", "func": func},
             "parents": ["s1"]},
        ]})  # fmt: skip

    model = ScriptedModel([reply("avg"), reply("mean")])
    tree, _ = subtask_tree(model, "Load a.csv, average by month.", named_domain("tabular"))
    assert tree[1]["params"]["func"] == "mean"
    assert "func must be one of sum, mean, count, not 'avg'" in str(model.requests[1].messages)


def test_column_names_are_fitted_to_the_table(tmp_path: Path) -> None:
    """The model writes sale_amount for the column 'sale amount': the domain's prepare step
    fits it, so the tool and its verifier see the real name; an unknown name is left for the
    tool to report."""
    pd = pytest.importorskip("pandas")
    from toolpath.agents.costa.agent import named_domain

    (tmp_path / "s.csv").write_text("month,sale amount\n1,5\n1,7\n2,1\n")
    domain = named_domain("tabular")
    tree = [
        {"id": "s1", "type": "load", "params": {"file": "s.csv"}, "parents": []},
        {"id": "s2", "type": "aggregate", "parents": ["s1"],
         "params": {"by": "Month", "func": "sum", "column": "sale_amount"}},
    ]  # fmt: skip
    agent = costa_agent(ScriptedModel([]), domain=domain, q_threshold=0.5)
    state = agent.invoke(
        {"request": "x", "context": domain.load_input(str(tmp_path)), "tree": tree}
    )
    assert state["status"] == "done", state.get("reason")
    frame = state["context"]
    assert isinstance(frame, pd.DataFrame)
    assert sorted(zip(frame["month"], frame["sale amount"], strict=True)) == [(1, 12), (2, 1)]
    kept = domain.prepare("aggregate", {"by": "weekday"}, frame)
    assert kept == {"by": "weekday"}

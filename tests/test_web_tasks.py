"""MiniWoB base tasks, the compositional task generator, the web task families and their
CLI, on a real chromium (scripted policies: deterministic solvers that read the page)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
import typer
from typer.testing import CliRunner

from toolpath.agents.web.agent import split_instruction
from toolpath.errors import ConfigError
from toolpath.evals.harness import load_records, run_eval
from toolpath.evals.web.compose import (
    COMPOSABLE,
    base_dir,
    generate,
    load_base,
    sample_bases,
    scope_css,
    task_name,
)
from toolpath.evals.web.oracle import run_scripted, solve_subtask, split_composed
from toolpath.evals.web.tasks import (
    WebTask,
    compwob_examples,
    miniwob_examples,
    per_task,
    scripted_policy,
)
from toolpath.tools.web.browser import Browser, TaskSite, WebEnv, WebPool

COMBOS = [
    ["click-button", "enter-text", "login-user"],
    ["click-checkboxes", "choose-list"],
    ["click-dialog", "click-tab", "click-option"],
    ["click-link", "click-widget", "focus-text", "enter-password"],
]


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("compwob")
    for combo in COMBOS:
        generate(combo, out)
        generate(combo, out, reverse=True)
    return out


@pytest.fixture(scope="module")
def site(pages: Path) -> Iterator[TaskSite]:
    with TaskSite({"compwob": pages}) as s:
        yield s


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def env(site: TaskSite) -> AsyncIterator[WebEnv]:
    async with Browser() as browser:
        yield await browser.env(site)


# --------------------------------------------------------------------------- no browser


def test_split_instruction_orders_subtasks() -> None:
    forward = 'Click on the "Ok" button, and then enter "Bob" into the text field and press Submit.'
    assert split_instruction(forward) == [
        'Click on the "Ok" button.',
        'Enter "Bob" into the text field and press Submit.',
    ]
    reverse = (
        'Select X, and enter "Bob" and press login, after clicking on the "a, and then b" button.'
    )
    assert split_instruction(reverse) == [
        'Click on the "a, and then b" button.',
        "Select X.",
        'Enter "Bob" and press login.',
    ]
    assert split_instruction("Click C, after clicking B, after clicking A.") == [
        "Click A.",
        "Click B.",
        "Click C.",
    ]
    assert split_instruction("Click A before clicking B.") == ["Click A.", "Click B."]
    assert split_instruction("Before clicking B, click A.") == ["Click A.", "Click B."]
    assert split_instruction("After closing the dialog, click B.") == [
        "Close the dialog.",
        "Click B.",
    ]
    assert split_instruction("Select ab, go, cd and click Submit.") == [
        "Select ab, go, cd and click Submit."
    ]


def test_generator_validates_and_names_pages(tmp_path: Path) -> None:
    path = generate(["click-button", "enter-text"], tmp_path, reverse=True)
    assert path == tmp_path / "click-button_enter-text-reverse.html"
    text = path.read_text()
    assert '<script src="../core/core.js"></script>' in text
    assert 'data-wob-task="click-button"' in text and 'data-wob-task="enter-text"' in text
    assert task_name(["a", "b"]) == "a_b"
    with pytest.raises(ConfigError, match="did you mean click-button"):
        generate(["click-buton", "enter-text"], tmp_path)
    with pytest.raises(ConfigError, match="at least two"):
        generate(["click-button"], tmp_path)
    combos = sample_bases(5, size=3, seed=1)
    assert len({tuple(c) for c in combos}) == 5
    assert all(len(set(c)) == 3 and set(c) <= set(COMPOSABLE) for c in combos)
    assert sample_bases(5, size=3, seed=1) == combos


def test_css_is_scoped_to_its_section() -> None:
    css = (
        "body { margin: 0 } #wrap, #area input { width: 3px }\n.ui-dialog { top: 0 }"
        "\n#reward-display { left: 1px } @media (min-width: 1px) { p { color: red } }"
    )
    scoped = scope_css(css, "#wob-sub-1")
    assert "#wob-sub-1 {" in scoped
    assert "#wob-sub-1, #wob-sub-1 #area input {" in scoped
    assert ".ui-dialog {" in scoped and "reward-display" not in scoped
    assert "#wob-sub-1 p { color: red }" in scoped
    page = load_base("login-user")
    assert page.scripts[0] == "../core/core.js" and 'id="subbtn"' in page.body


def test_compwob_examples(pages: Path) -> None:
    base = compwob_examples(pages, 2, variant="base")
    assert len(base) == 2 * len(COMBOS)
    assert {e.meta["variant"] for e in base} == {"base"}
    first = base[0]
    assert first.id == f"{first.meta['task']}#0" and first.meta["page"].startswith("compwob/")
    everything = compwob_examples(pages, 1)
    assert {e.meta["variant"] for e in everything} == {"base", "reverse"}
    with pytest.raises(ConfigError, match="google-research"):
        compwob_examples(pages / "missing", 1)
    with pytest.raises(ConfigError, match="did you mean click-button"):
        miniwob_examples(["click-buton"])


# --------------------------------------------------------------------------- browser


BASE_TASKS = [  # the first twelve; tests/test_web_suite.py has the others
    "click-button",
    "enter-text",
    "login-user",
    "click-checkboxes",
    "choose-list",
    "click-option",
    "click-link",
    "enter-password",
    "click-tab",
    "click-dialog",
    "click-widget",
    "focus-text",
]


@pytest.mark.browser
@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize("task", BASE_TASKS)
async def test_scripted_policy_solves_base_task(env: WebEnv, task: str) -> None:
    for seed in (0, 1):
        status = await run_scripted(env, f"miniwob/{task}", [task], seed=seed)
        assert status.done and status.raw_reward == 1.0, (task, seed, status)


@pytest.mark.browser
@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize("combo", COMBOS, ids=lambda c: "+".join(c))
async def test_composed_task_rewards_only_the_full_ordered_solution(
    env: WebEnv, combo: list[str]
) -> None:
    page = f"compwob/{task_name(combo)}"
    n = len(combo)
    for seed in (0, 1):
        for reverse in (False, True):
            status = await run_scripted(
                env, page + ("-reverse" if reverse else ""), combo, seed=seed
            )
            assert status.raw_reward == 1.0 and status.reason == "every subtask done in order"
    wrong = await run_scripted(env, page, combo, seed=2, order=[1, 0, *range(2, n)])
    assert wrong.raw_reward == -1.0 and "was done before subtask 1" in str(wrong.reason)
    skip_first = await run_scripted(env, page, combo, seed=2, order=list(range(1, n)))
    assert skip_first.raw_reward == -1.0
    skip_last = await run_scripted(env, page, combo, seed=2, order=list(range(n - 1)))
    assert not skip_last.done and skip_last.raw_reward == 0  # no reward before the last
    if n > 2:
        skip_middle = await run_scripted(env, page, combo, seed=2, order=[0, *range(2, n)])
        assert skip_middle.raw_reward == -1.0 and "subtask 2" in str(skip_middle.reason)


@pytest.mark.browser
@pytest.mark.asyncio(loop_scope="module")
async def test_composed_subtask_failure_and_instruction_wording(env: WebEnv) -> None:
    combo = COMBOS[0]
    obs = await env.reset(f"compwob/{task_name(combo)}", seed=4)
    parts = await env.page.evaluate(
        "() => Array.from(document.querySelectorAll('.wob-sub > #query'))"
        ".map((q) => q.textContent.replace(/\\s+/g, ' ').trim())"
    )
    assert len(parts) == 3 and parts[0].startswith("Click on the")
    assert (
        obs.instruction
        == parts[0][:-1] + ", and then e" + parts[1][1:-1] + ", and then e" + parts[2][1:]
    )
    assert next(e.section for e in obs.shown if e.section is not None) == 0
    assert "-- part 1 --" in obs.text() and "-- part 3 --" in obs.text()
    want = re.search(r'"(.+?)"', parts[0])
    assert want
    wrong = next(e for e in obs.shown if e.tag == "button" and e.section == 0 and e.text != want[1])
    await env.click(wrong.ref)
    status = await env.status()
    assert status.raw_reward == -1.0 and "subtask 1 (click-button) failed" in str(status.reason)

    rev = await env.reset(f"compwob/{task_name(combo, reverse=True)}", seed=4)
    assert rev.instruction.startswith("Enter ") and ", after clicking on the " in rev.instruction
    assert split_instruction(rev.instruction)[0] == parts[0]


@pytest.mark.browser
@pytest.mark.asyncio(loop_scope="module")
async def test_compwob_family_runs_through_the_harness_and_resumes(
    pages: Path, tmp_path: Path
) -> None:
    with TaskSite({"compwob": pages}) as site:
        async with WebPool(site, 2) as pool:
            task = WebTask("compwob", pool)
            groups = {
                "scripted-base": compwob_examples(pages, 2, variant="base", limit=2),
                "scripted-reverse": compwob_examples(pages, 1, variant="reverse", limit=2),
            }
            for method, examples in groups.items():
                result = await run_eval(
                    task,
                    examples,
                    scripted_policy,
                    out_dir=tmp_path,
                    method=method,
                    concurrency=2,
                    progress=False,
                )
                assert [r["success"] for r in result.records] == [True] * len(examples)
            again = await run_eval(
                task,
                groups["scripted-base"],
                scripted_policy,
                out_dir=tmp_path,
                method="scripted-base",
                progress=False,
            )
    assert len(load_records(tmp_path / "scripted-base.jsonl")) == 4  # nothing re-run
    assert again.summary["methods"]["scripted-base"]["scores"]["success"] == 100.0
    record = again.records[0]
    assert record["reward"] == 1.0 and record["blocked"] == [] and not record["crashed"]
    report = per_task(tmp_path, list(groups))
    assert report["variants"] == {
        "base": {"n": 4, "success": 100.0},
        "reverse": {"n": 2, "success": 100.0},
    }
    assert "| reverse | 2 | 100.0 |" in (tmp_path / "per_task.md").read_text()


@pytest.mark.browser
@pytest.mark.asyncio(loop_scope="module")
async def test_a_crash_marks_the_episode_failed_and_the_next_one_works(tmp_path: Path) -> None:
    async def crashing(env: WebEnv, example: object) -> dict[str, object]:
        session = await env.page.context.new_cdp_session(env.page)
        with contextlib.suppress(Exception):  # never answers: its target is gone
            await asyncio.wait_for(session.send("Page.crash"), 1)
        await env.observe()  # raises BrowserError
        return {}

    examples = miniwob_examples(["click-button"], 2)
    with TaskSite() as site:
        async with WebPool(site, 1) as pool:
            task = WebTask("miniwob", pool)
            crashed = await task.run_one(examples[0], crashing)
            fine = await task.run_one(examples[1], scripted_policy)
    assert crashed["crashed"] and not crashed["success"] and crashed["status"] == "failed"
    assert task.score(crashed) == {"success": 0.0}
    assert fine["success"] and not fine["crashed"]


def test_cli_generate_and_scripted_eval(tmp_path: Path) -> None:
    from toolpath.cli.web import register

    app, eval_app = typer.Typer(), typer.Typer()
    app.add_typer(eval_app, name="eval")
    register(app, eval_app)
    runner = CliRunner()
    out = tmp_path / "pages"
    res = runner.invoke(
        app, ["web", "generate", "--base", "click-button,login-user", "--out", str(out), "--both"]
    )
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in out.iterdir()) == [
        "click-button_login-user-reverse.html",
        "click-button_login-user.html",
    ]
    runs = tmp_path / "runs"
    res = runner.invoke(
        app,
        [
            "eval",
            "compwob",
            "--tasks-dir",
            str(out),
            "--agent",
            "scripted",
            "--seeds",
            "1",
            "--out",
            str(runs),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "base 100.0% (n=1), reverse 100.0% (n=1)" in res.output
    summary = json.loads((runs / "summary.json").read_text())
    assert set(summary["methods"]) == {"scripted-base", "scripted-reverse"}
    res = runner.invoke(
        app,
        [
            "eval",
            "miniwob",
            "--tasks",
            "click-button,enter-text",
            "--agent",
            "scripted",
            "--seeds",
            "1",
            "--out",
            str(tmp_path / "mini"),
        ],
    )
    assert res.exit_code == 0, res.output
    assert len(load_records(tmp_path / "mini" / "scripted.jsonl")) == 2
    res = runner.invoke(app, ["web", "generate", "--out", str(out)])
    assert isinstance(res.exception, ConfigError)


def _app() -> typer.Typer:
    from toolpath.cli.web import register

    app, eval_app = typer.Typer(), typer.Typer()
    app.add_typer(eval_app, name="eval")
    register(app, eval_app)
    return app


def test_cli_writes_and_runs_the_suite(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "suite"
    res = runner.invoke(_app(), ["web", "generate", "--suite", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert len(list(out.glob("*.html"))) == 39 + 40 + 40 + 10
    manifest = json.loads((out / "suite.json").read_text())
    assert manifest["counts"]["triples"] == 10 and manifest["splits"]["dev"] == [100, 101, 102]
    runs = tmp_path / "runs"
    args = ["eval", "compwob", "--suite", "dev", "--agent", "scripted", "--seeds", "1"]
    res = runner.invoke(_app(), [*args, "--limit", "1", "--out", str(runs)])
    assert res.exit_code == 0, res.output
    shown = " ".join(res.output.split())  # as printed, whatever the terminal's width
    assert "base 100.0% (n=1), reverse 100.0% (n=1), single 100.0% (n=1)" in shown
    records = load_records(runs / "scripted-reverse.jsonl")
    assert records[0]["seed"] == 100 and records[0]["failure"] is None
    res = runner.invoke(_app(), ["eval", "compwob", "--agent", "scripted"])
    assert isinstance(res.exception, ConfigError)


BROKEN = {
    "missing-core": lambda page: page.replace("../core/core.js", "../core/no-such-core.js"),
    "error-at-load": lambda page: page.replace("<script>", "<script>\nnoSuchFunction();", 1),
    "not-a-page": lambda page: "this is not a task page",
}


@pytest.mark.browser
def test_a_page_that_cannot_load_is_reported_and_the_run_goes_on(tmp_path: Path) -> None:
    folder = tmp_path / "tasks"
    generate(["click-button", "enter-text"], folder)
    base = (base_dir() / "click-button.html").read_text()
    for name, breaks in BROKEN.items():
        (folder / f"{name}.html").write_text(breaks(base))
    runs = tmp_path / "runs"
    args = ["eval", "compwob", "--tasks-dir", str(folder), "--agent", "scripted", "--seeds", "2"]
    res = CliRunner().invoke(_app(), [*args, "--out", str(runs)])
    assert res.exit_code == 0, res.output
    good = load_records(runs / "scripted-base.jsonl")
    assert [r["success"] for r in good] == [True, True]
    broken = {r["id"]: r["error"] for r in load_records(runs / "scripted-single.jsonl")}
    assert len(broken) == 6 and all(broken.values())
    assert "compwob/missing-core cannot load" in broken["missing-core#0"]
    assert "missing core/no-such-core.js (net::ERR_FILE_NOT_FOUND)" in broken["missing-core#1"]
    assert "noSuchFunction is not defined" in broken["error-at-load#0"]
    assert "not a MiniWoB task page" in broken["not-a-page#0"]
    report = (runs / "per_task.md").read_text()
    assert "Pages that did not load" in report and "- compwob/error-at-load: " in report
    assert "3 page(s) could not load" in res.output and "compwob/not-a-page: " in res.output


async def _submit_first(env: WebEnv, example: object) -> dict[str, object]:
    """Solves the second subtask before the first."""
    parts = split_composed(env.last.instruction, 3)  # type: ignore[union-attr]
    history = await solve_subtask(env, "enter-text", parts[1], 1)
    return {"status": "done", "history": history, "steps": len(history)}


async def _wrong_button(env: WebEnv, example: object) -> dict[str, object]:
    obs = env.last
    assert obs is not None
    want = re.search(r'"(.+?)"', split_composed(obs.instruction, 3)[0])
    assert want
    wrong = next(e for e in obs.shown if e.tag == "button" and e.section == 0 and e.text != want[1])
    await env.click(wrong.ref)
    return {"status": "done", "history": [f"click({wrong.ref})"], "steps": 1}


async def _idle(env: WebEnv, example: object) -> dict[str, object]:
    return {"status": "step_limit", "history": [], "steps": 0}


async def _out_of_order(env: WebEnv, example: object) -> dict[str, object]:
    """Types into the third subtask's form, then stops."""
    obs = env.last
    assert obs is not None
    field = next(e for e in obs.shown if e.id == "username" and e.section == 2)
    await env.type(field.ref, "someone")
    return {"status": "step_limit", "history": [f"type({field.ref})"], "steps": 1}


@pytest.mark.browser
@pytest.mark.asyncio(loop_scope="module")
async def test_failure_kinds_are_recorded_and_grouped(pages: Path, tmp_path: Path) -> None:
    page = task_name(COMBOS[0])
    examples = [e for e in compwob_examples(pages, 1, variant="base") if e.meta["task"] == page]
    policies = {
        "submit-first": _submit_first,
        "wrong": _wrong_button,
        "idle": _idle,
        "out-of-order": _out_of_order,
    }
    with TaskSite({"compwob": pages}) as site:
        async with WebPool(site, 1) as pool:
            task = WebTask("compwob", pool)
            got = {}
            for method, policy in policies.items():
                result = await run_eval(
                    task, examples, policy, out_dir=tmp_path, method=method, progress=False
                )
                got[method] = result.records[0]
    first = {"index": 0, "task": "click-button"}
    assert got["submit-first"]["failure"] == "premature_submit"
    assert got["submit-first"]["failed_subtask"] == first
    assert got["submit-first"]["failure_by"] == {"index": 1, "task": "enter-text"}
    assert got["wrong"]["failure"] == "wrong_element" and got["wrong"]["failed_subtask"] == first
    assert got["wrong"]["subtask_outcomes"] == [-1.0, None, None]
    assert got["idle"]["failure"] == "step_cap" and got["idle"]["failed_subtask"] == first
    assert got["out-of-order"]["failure"] == "order"
    assert got["out-of-order"]["failure_by"] == {"index": 2, "task": "login-user"}
    assert got["submit-first"]["history"] and got["submit-first"]["steps"] == 2
    report = per_task(tmp_path, list(policies))
    assert {k: g["n"] for k, g in report["failures"].items()} == {
        "wrong_element": 1,
        "premature_submit": 1,
        "order": 1,
        "step_cap": 1,
    }
    text = (tmp_path / "per_task.md").read_text()
    assert "| premature_submit | 1 | click-button: 1 |" in text

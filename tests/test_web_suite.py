"""The CompWoB-style benchmark suite: its draw, the solvers of its added base tasks and
their compositions on a real chromium, the instruction splitter and the failure kinds."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from toolpath.errors import ConfigError
from toolpath.evals.web.compose import COMPOSABLE, generate, task_name
from toolpath.evals.web.failures import classify
from toolpath.evals.web.oracle import SOLVERS, run_scripted, split_composed
from toolpath.evals.web.suite import (
    BASE_SUITE,
    CATEGORIES,
    SPLITS,
    build_suite,
    split_seeds,
    write_suite,
)
from toolpath.tools.web.browser import Browser, TaskSite, WebEnv

ADDED = sorted(
    set(BASE_SUITE)
    - {
        "click-button",
        "click-checkboxes",
        "click-dialog",
        "click-link",
        "click-option",
        "click-tab",
        "click-widget",
        "choose-list",
        "enter-password",
        "enter-text",
        "focus-text",
        "login-user",
    }
)
"""The base tasks added to the first twelve."""

EXTRA = sorted(set(SOLVERS) - set(BASE_SUITE))
"""Solved base tasks left out of the suite as near duplicates of suite tasks."""

COMBOS = [  # every added base task, and the pairs that share ids, widgets or radio names
    ["click-dialog", "click-dialog-2", "choose-date-easy"],
    ["login-user-popup", "login-user", "click-test-2"],
    ["click-collapsible-2", "click-collapsible", "search-engine"],
    ["use-autocomplete", "phone-book", "click-button-sequence"],
    ["click-tab-2-medium", "navigate-tree", "text-transform"],
    ["enter-text-2", "read-table", "read-table-2"],
    ["multi-layouts", "form-sequence-2", "click-option"],
    ["guess-number", "use-spinner", "focus-text-2"],
    ["find-word", "odd-or-even", "simple-arithmetic"],
    ["click-checkboxes-large", "unicode-test", "click-test"],
]


# --------------------------------------------------------------------------- no browser


def test_the_suite_is_deterministic_and_has_the_promised_counts(tmp_path: Path) -> None:
    suite = build_suite()
    assert suite == build_suite() and build_suite(1) != suite
    counts = suite.counts()
    assert counts["base_tasks"] == len(BASE_SUITE) >= 30
    assert counts["pairs"] == counts["reversed_pairs"] == 40 and counts["triples"] == 10
    assert counts["pages"] == len(BASE_SUITE) + 40 + 40 + 10
    assert counts["min_uses"] >= 2  # every base task is in several compositions
    combos = [frozenset(c) for c in (*suite.pairs, *suite.triples)]
    assert len(set(combos)) == len(combos) and all(len(c) in (2, 3) for c in combos)
    assert sorted(t for ts in CATEGORIES.values() for t in ts) == sorted(BASE_SUITE)
    assert set(BASE_SUITE) == set(COMPOSABLE) and set(BASE_SUITE) <= set(SOLVERS)
    assert SPLITS == {"dev": (100, 101, 102), "test": (0, 1, 2)}
    assert split_seeds("dev") == (100, 3) and split_seeds("test", 1) == (0, 1)
    with pytest.raises(ConfigError, match="dev, test"):
        split_seeds("train")
    pages = write_suite(tmp_path, suite)
    assert len(pages) == counts["pages"] == len(list(tmp_path.glob("*.html")))
    assert (tmp_path / "click-button.html").is_file() and (tmp_path / "suite.json").is_file()
    pair = task_name(suite.pairs[0], reverse=True)
    assert (tmp_path / f"{pair}.html").is_file()


def test_split_composed_reads_the_composer_wording() -> None:
    parts = [
        "Click button ONE, then click button TWO.",
        'Enter an item that starts with "An" and ends with "ica".',
        "Select 12/02/2016 as the date and hit submit.",
    ]
    forward = 'Click button ONE, then click button TWO, and then enter an item that starts with "An" and ends with "ica", and then select 12/02/2016 as the date and hit submit.'
    assert split_composed(forward, 3) == parts
    reverse = 'Enter an item that starts with "An" and ends with "ica", and then select 12/02/2016 as the date and hit submit, after clicking button ONE, then click button TWO.'
    assert split_composed(reverse, 3) == parts
    closing = 'Select Bob and click Submit, after closing the dialog box by clicking the "x".'
    assert split_composed(closing, 2) == [
        'Close the dialog box by clicking the "x".',
        "Select Bob and click Submit.",
    ]
    with pytest.raises(ConfigError, match="not 3"):
        split_composed("Click A.", 3)


def test_classify_names_the_failed_subtask_and_how() -> None:
    names = ["click-button", "enter-text", "login-user"]

    def report(outcomes: list[float | None], finished: list[int], early: object = None) -> dict:
        return {"names": names, "outcomes": outcomes, "finished": finished, "early": early}

    ended = {"done": True, "success": False, "status": "done"}
    wrong = classify(ended, report([1.0, -1.0, None], [0, 1]))
    assert wrong["failure"] == "wrong_element"
    assert wrong["failed_subtask"] == {"index": 1, "task": "enter-text"}
    early = classify(ended, report([None, 1.0, None], [1]))
    assert early["failure"] == "premature_submit" and early["failed_subtask"]["index"] == 0
    assert early["failure_by"] == {"index": 1, "task": "enter-text"}
    capped = {"done": False, "success": False, "status": "step_limit"}
    assert classify(capped, report([1.0, None, None], [0]))["failed_subtask"]["index"] == 1
    assert classify(capped, report([1.0, None, None], [0]))["failure"] == "step_cap"
    order = classify(capped, report([None, None, None], [], {"subtask": 2, "pending": 0}))
    assert order["failure"] == "order" and order["failure_by"]["task"] == "login-user"
    assert classify({**ended, "success": True}, report([1.0] * 3, [0, 1, 2]))["failure"] is None
    crashed = classify({"crashed": True, "base": names}, None)
    assert crashed["failure"] == "other"
    one = classify({"done": True, "reward": -1.0, "base": ["click-button"]}, None)
    assert one["failure"] == "wrong_element" and one["failed_subtask"]["task"] == "click-button"


# --------------------------------------------------------------------------- browser


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("suite")
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


def test_the_compositions_cover_every_added_base_task() -> None:
    assert set(ADDED) <= {t for c in COMBOS for t in c}
    assert len(ADDED) == len(BASE_SUITE) - 12
    assert EXTRA == [
        "click-checkboxes-transfer",
        "click-tab-2-easy",
        "copy-paste",
        "enter-text-dynamic",
        "multi-orderings",
    ]


@pytest.mark.browser
@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize("task", ADDED + EXTRA)
async def test_the_oracle_solves_each_added_base_task(env: WebEnv, task: str) -> None:
    for seed in (0, 1):
        status = await run_scripted(env, f"miniwob/{task}", [task], seed=seed)
        assert status.done and status.raw_reward == 1.0, (task, seed, status)


@pytest.mark.browser
@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize("combo", COMBOS, ids="+".join)
async def test_the_oracle_solves_compositions_of_them(env: WebEnv, combo: list[str]) -> None:
    for seed, reverse in ((3, False), (4, True)):
        page = f"compwob/{task_name(combo, reverse=reverse)}"
        status = await run_scripted(env, page, combo, seed=seed)
        assert status.raw_reward == 1.0, (page, seed, status)
        assert status.reason == "every subtask done in order"

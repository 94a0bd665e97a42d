"""The benchmark harness: durable JSONL, concurrency, resume after a kill, errors, reports."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from toolpath.errors import ConfigError
from toolpath.evals.harness import (
    Example,
    Record,
    load_records,
    plot,
    run_eval,
    run_eval_sync,
    summarize,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class FakeTask:
    """A deterministic task: the "model" answers yes when len(question) % 3 == 0."""

    name = "fake"

    def __init__(
        self, delay: float = 0.0, fail: set[str] | None = None, slow: set[str] | None = None
    ):
        self.delay = delay
        self.fail = set(fail or ())
        self.slow = set(slow or ())
        self.calls: list[str] = []
        self.active = 0
        self.max_active = 0

    def load(self, *, data: str | Path | None = None, limit: int | None = None) -> list[Example]:
        return examples(limit or 10)

    async def run_one(self, example: Example, agent: Any) -> Record:
        self.calls.append(example.id)
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            await asyncio.sleep(5.0 if example.id in self.slow else self.delay)
            if example.id in self.fail:
                raise RuntimeError(f"boom {example.id}")
            answer = "yes" if len(example.question) % 3 == 0 else "no"
            return {
                "id": example.id,
                "answer": answer,
                "gold": example.gold,
                "pid": os.getpid(),
                "tokens": {"prompt": 10, "completion": 5},
                "tool_rounds": 2,
            }
        finally:
            self.active -= 1

    def score(self, record: Record) -> dict[str, float]:
        right = float(record["answer"] == record["gold"])
        return {"strict": right, "lenient": 1.0 if record["answer"] else 0.0}


def examples(n: int) -> list[Example]:
    """n examples whose questions have varied lengths; gold is always "yes"."""
    return [Example(id=f"ex-{i:04d}", question="q" * (i + 1), gold="yes") for i in range(n)]


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


async def test_durable_jsonl_and_reports(tmp_path: Path) -> None:
    task = FakeTask()
    result = await run_eval(task, examples(9), None, out_dir=tmp_path, method="m1", progress=False)
    rows = lines(tmp_path / "m1.jsonl")
    assert sorted(r["id"] for r in rows) == [f"ex-{i:04d}" for i in range(9)]
    for r in rows:
        assert r["method"] == "m1" and r["error"] is None and r["seconds"] >= 0
        assert set(r["scores"]) == {"strict", "lenient"}
    assert [r["id"] for r in result.records] == [f"ex-{i:04d}" for i in range(9)]
    m = result.summary["methods"]["m1"]
    # question lengths 1..9: 3, 6 and 9 are divisible by 3
    assert m["n"] == 9 and m["errors"] == 0
    assert m["scores"] == {"strict": pytest.approx(100 * 3 / 9, abs=0.01), "lenient": 100.0}
    assert m["tokens"] == 15 and m["tool_rounds"] == 2
    assert json.loads((tmp_path / "summary.json").read_text()) == result.summary
    assert "| m1 | 9 | 0 | 33.33 | 100.00 |" in (tmp_path / "summary.md").read_text()
    assert (tmp_path / "plot.png").read_bytes()[:8] == PNG_MAGIC


def test_summary_covers_every_method(tmp_path: Path) -> None:
    task = FakeTask()
    run_eval_sync(task, examples(4), None, out_dir=tmp_path, method="a", progress=False)
    result = run_eval_sync(task, examples(6), None, out_dir=tmp_path, method="b", progress=True)
    assert set(result.summary["methods"]) == {"a", "b"}
    assert result.summary["methods"]["a"]["n"] == 4
    md = (tmp_path / "summary.md").read_text()
    assert "| a | 4 |" in md and "| b | 6 |" in md
    assert (tmp_path / "plot.png").read_bytes()[:8] == PNG_MAGIC
    # summarize and plot also work on their own, and with nothing to show
    assert summarize(tmp_path, task) == result.summary
    empty = tmp_path / "empty"
    empty.mkdir()
    plot(summarize(empty, task), empty / "p.png")
    assert (empty / "p.png").read_bytes()[:8] == PNG_MAGIC


@pytest.mark.parametrize(("concurrency", "n"), [(1, 5), (10, 20)])
async def test_concurrency_is_bounded(tmp_path: Path, concurrency: int, n: int) -> None:
    task = FakeTask(delay=0.1)
    await run_eval(
        task,
        examples(n),
        None,
        out_dir=tmp_path,
        method="m",
        concurrency=concurrency,
        progress=False,
    )
    assert task.max_active == concurrency  # never more at once, and the slots are all used
    assert len(lines(tmp_path / "m.jsonl")) == n


async def test_errors_are_recorded_and_retried(tmp_path: Path) -> None:
    failing = {"ex-0002", "ex-0005"}
    task = FakeTask(fail=failing)
    result = await run_eval(task, examples(8), None, out_dir=tmp_path, method="m", progress=False)
    by_id = {r["id"]: r for r in lines(tmp_path / "m.jsonl")}
    assert len(by_id) == 8
    assert by_id["ex-0002"]["error"] == "RuntimeError: boom ex-0002"
    assert by_id["ex-0002"]["scores"] == {}  # no successful record yet had set the keys
    assert result.summary["methods"]["m"]["errors"] == 2
    # ex-0005 errored, so it counts as zero: strict hits are lengths 3 and 6 -> ex-0002, ex-0005
    assert result.summary["methods"]["m"]["scores"]["strict"] == 0.0

    # a plain resume treats errored ids as done
    again = FakeTask()
    await run_eval(again, examples(8), None, out_dir=tmp_path, method="m", progress=False)
    assert again.calls == []

    # retry_errors re-runs exactly the errored ids, leaving one line per id
    retry = FakeTask()
    result = await run_eval(
        retry, examples(8), None, out_dir=tmp_path, method="m", progress=False, retry_errors=True
    )
    assert sorted(retry.calls) == sorted(failing)
    rows = lines(tmp_path / "m.jsonl")
    assert len(rows) == 8 and len({r["id"] for r in rows}) == 8
    assert all(r["error"] is None for r in rows)
    assert result.summary["methods"]["m"]["errors"] == 0
    assert result.summary["methods"]["m"]["scores"]["strict"] == pytest.approx(25.0)


async def test_episode_timeout(tmp_path: Path) -> None:
    task = FakeTask(slow={"ex-0001"})
    start = time.monotonic()
    result = await run_eval(
        task, examples(3), None, out_dir=tmp_path, method="m", progress=False, episode_timeout=0.2
    )
    assert time.monotonic() - start < 3
    errors = {r["id"]: r["error"] for r in result.records}
    assert errors["ex-0001"].startswith("TimeoutError: episode took longer than 0.2s")
    assert errors["ex-0000"] is None and errors["ex-0002"] is None


async def test_torn_last_line_is_dropped_and_rerun(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    await run_eval(FakeTask(), examples(5), None, out_dir=tmp_path, method="m", progress=False)
    before = path.read_bytes()
    with path.open("ab") as f:
        f.write(b'{"id": "ex-0005", "answer": "ye')  # killed mid-write
    assert [r["id"] for r in load_records(path)] == [f"ex-{i:04d}" for i in range(5)]
    assert path.read_bytes().endswith(b'"ye')  # load_records leaves the file alone

    task = FakeTask()
    await run_eval(task, examples(10), None, out_dir=tmp_path, method="m", progress=False)
    assert sorted(task.calls) == [f"ex-{i:04d}" for i in range(5, 10)]
    data = path.read_bytes()
    assert data.startswith(before) and data.endswith(b"\n")
    ids = [r["id"] for r in lines(path)]
    assert sorted(ids) == [f"ex-{i:04d}" for i in range(10)]


async def test_unterminated_complete_line_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    await run_eval(FakeTask(), examples(3), None, out_dir=tmp_path, method="m", progress=False)
    path.write_bytes(path.read_bytes().rstrip(b"\n"))
    task = FakeTask()
    await run_eval(task, examples(4), None, out_dir=tmp_path, method="m", progress=False)
    assert task.calls == ["ex-0003"]
    assert [r["id"] for r in lines(path)] == ["ex-0000", "ex-0001", "ex-0002", "ex-0003"]


async def test_cancellation_keeps_finished_records(tmp_path: Path) -> None:
    task = FakeTask(delay=0.05)
    job = asyncio.create_task(
        run_eval(
            task, examples(40), None, out_dir=tmp_path, method="m", concurrency=2, progress=False
        )
    )
    await asyncio.sleep(0.3)
    job.cancel()
    with pytest.raises(asyncio.CancelledError):
        await job
    data = (tmp_path / "m.jsonl").read_bytes()
    assert data.endswith(b"\n")
    done = [json.loads(line)["id"] for line in data.splitlines()]
    assert 0 < len(done) < 40 and len(set(done)) == len(done)


async def test_duplicate_example_ids_are_refused(tmp_path: Path) -> None:
    dup = [*examples(2), Example(id="ex-0000", question="again", gold="yes")]
    with pytest.raises(ConfigError, match="ex-0000"):
        await run_eval(FakeTask(), dup, None, out_dir=tmp_path, method="m", progress=False)


CHILD = """
import asyncio, sys
sys.path.insert(0, {tests!r})
from test_harness import FakeTask, examples
from toolpath.evals.harness import run_eval
asyncio.run(run_eval(FakeTask(delay=0.2), examples(30), None, out_dir={out!r}, method="m",
                     concurrency=2, progress=False))
"""


def test_resume_after_sigkill(tmp_path: Path) -> None:
    out = tmp_path / "out"
    script = tmp_path / "child.py"
    script.write_text(textwrap.dedent(CHILD.format(tests=str(Path(__file__).parent), out=str(out))))
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    child = subprocess.Popen([sys.executable, str(script)], env=env)
    path = out / "m.jsonl"
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if path.exists() and path.read_bytes().count(b"\n") >= 6:
                break
            assert child.poll() is None, "the child run ended before it was killed"
            time.sleep(0.02)
        else:
            pytest.fail("the child run wrote no results")
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert child.returncode == -signal.SIGKILL

    before = load_records(path)
    assert 6 <= len(before) < 30
    task = FakeTask()
    result = run_eval_sync(task, examples(30), None, out_dir=out, method="m", progress=False)

    after = load_records(path)
    ids = [r["id"] for r in after]
    assert sorted(ids) == [f"ex-{i:04d}" for i in range(30)]  # each exactly once
    assert after[: len(before)] == before  # records from before the kill are unchanged
    assert {r["pid"] for r in before} == {child.pid}
    assert set(task.calls) == {f"ex-{i:04d}" for i in range(30)} - {r["id"] for r in before}
    assert result.summary["methods"]["m"]["n"] == 30

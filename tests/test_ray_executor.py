"""The Ray executor on a local Ray instance: same results as the local executor, resume,
a killed worker's episode run again, a worker that cannot start."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from toolpath.errors import BackendError, ConfigError
from toolpath.evals.harness import Example, Record, load_records, run_eval_sync

ray = pytest.importorskip("ray", reason="the Ray executor needs ray: pip install 'toolpath[ray]'")

from faultserver import FaultServer  # noqa: E402
from scripted_episodes import (  # noqa: E402
    ArithmeticTask,
    arithmetic_examples,
    gsm8k_file,
    scripted_agent,
    sum_policy,
)

from toolpath.evals.ray_executor import run_eval_ray_sync, run_math_eval  # noqa: E402

pytestmark = pytest.mark.ray
TESTS = str(Path(__file__).parent)


@pytest.fixture(scope="module")
def local_ray() -> Iterator[Any]:
    """A local Ray instance with 2 CPUs; its workers can import the tests' helpers."""
    path = os.pathsep.join(p for p in (TESTS, os.environ.get("PYTHONPATH")) if p)
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        runtime_env={"env_vars": {"PYTHONPATH": path}},
    )
    yield ray
    ray.shutdown()


class TracedTask(ArithmeticTask):
    """The arithmetic task, logging ``<id> <pid>`` for every attempt to ``trace``. With
    ``stall``, the first attempt at that id stops and waits to be killed; ``stall.pid`` then
    holds its worker's pid."""

    def __init__(self, trace: Path, stall: str | None = None) -> None:
        super().__init__()
        self.trace, self.stall = trace, stall

    async def run_one(self, example: Example, agent: Any) -> Record:
        with self.trace.open("a") as f:
            f.write(f"{example.id} {os.getpid()}\n")
        marker = self.trace.with_name("stall.pid")
        if example.id == self.stall and not marker.exists():
            marker.write_text(str(os.getpid()))
            time.sleep(120)  # blocks this worker until the test kills it
        return await super().run_one(example, agent)

    def attempts(self) -> list[tuple[str, int]]:
        rows = [line.split() for line in self.trace.read_text().splitlines()]
        return [(i, int(pid)) for i, pid in rows]


def comparable(records: list[Record]) -> list[Record]:
    """Records without what differs between runs: wall time and the method name."""
    return [{k: v for k, v in r.items() if k not in ("seconds", "method")} for r in records]


def test_ray_results_equal_the_local_executor(local_ray: Any, tmp_path: Path) -> None:
    examples = arithmetic_examples(12, wrong_gold=[2, 7])
    local = run_eval_sync(
        ArithmeticTask(), examples, scripted_agent(), out_dir=tmp_path, method="local",
        progress=False,
    )  # fmt: skip
    task = TracedTask(tmp_path / "trace.log")
    remote = run_eval_ray_sync(
        task, examples, scripted_agent, out_dir=tmp_path, method="ray", num_workers=2,
        concurrency=2, progress=False,
    )  # fmt: skip

    assert comparable(remote.records) == comparable(local.records)
    assert [r["method"] for r in remote.records] == ["ray"] * 12
    on_disk = {name: load_records(tmp_path / f"{name}.jsonl") for name in ("local", "ray")}
    by_id = {name: sorted(rows, key=lambda r: r["id"]) for name, rows in on_disk.items()}
    assert comparable(by_id["ray"]) == comparable(by_id["local"])  # lines in finishing order
    methods = remote.summary["methods"]
    assert methods["ray"] == {**methods["local"], "seconds": methods["ray"]["seconds"]}
    assert methods["ray"]["scores"] == {"exact": pytest.approx(100 * 10 / 12, abs=0.01)}
    pids = {pid for _, pid in task.attempts()}
    assert len(pids) >= 2 and os.getpid() not in pids  # run by 2 workers, not the driver
    assert sorted(i for i, _ in task.attempts()) == [e.id for e in examples]  # each once


def test_ray_run_resumes_what_is_on_disk(local_ray: Any, tmp_path: Path) -> None:
    examples = arithmetic_examples(10)
    run_eval_sync(
        ArithmeticTask(), examples[:4], scripted_agent(), out_dir=tmp_path, method="m",
        progress=False,
    )  # fmt: skip
    task = TracedTask(tmp_path / "trace.log")
    result = run_eval_ray_sync(
        task, examples, scripted_agent, out_dir=tmp_path, method="m", num_workers=2,
        progress=False,
    )  # fmt: skip
    assert sorted(i for i, _ in task.attempts()) == [e.id for e in examples[4:]]
    rows = load_records(tmp_path / "m.jsonl")
    assert sorted(r["id"] for r in rows) == [e.id for e in examples]  # one line per id
    assert result.summary["methods"]["m"]["n"] == 10
    assert (tmp_path / "summary.md").exists() and (tmp_path / "plot.png").exists()

    again = TracedTask(tmp_path / "trace2.log")
    again.trace.touch()
    run_eval_ray_sync(again, examples, scripted_agent, out_dir=tmp_path, method="m", progress=False)
    assert again.attempts() == []  # nothing left to run: no episode, no duplicate line
    assert len(load_records(tmp_path / "m.jsonl")) == 10


def test_a_killed_worker_has_its_episode_run_again(local_ray: Any, tmp_path: Path) -> None:
    examples = arithmetic_examples(8)
    task = TracedTask(tmp_path / "trace.log", stall="q-0001")
    marker = tmp_path / "stall.pid"
    killed: list[int] = []

    def killer() -> None:
        deadline = time.monotonic() + 120
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.2)
        pid = int(marker.read_text())
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    result = run_eval_ray_sync(
        task, examples, scripted_agent, out_dir=tmp_path, method="m", num_workers=2,
        progress=False, max_retries=2,
    )  # fmt: skip
    thread.join(timeout=5)

    assert killed, "the stalled episode never started"
    tries = [pid for i, pid in task.attempts() if i == "q-0001"]
    assert len(tries) == 2 and tries[0] == killed[0] and tries[1] != killed[0]
    rows = load_records(tmp_path / "m.jsonl")
    assert sorted(r["id"] for r in rows) == [e.id for e in examples]  # none lost, no dupes
    assert all(r["error"] is None for r in rows)
    assert result.summary["methods"]["m"]["scores"] == {"exact": 100.0}


class PoisonTask(TracedTask):
    """Every attempt at ``poison`` ends its worker process at once."""

    def __init__(self, trace: Path, poison: str) -> None:
        super().__init__(trace)
        self.poison = poison

    async def run_one(self, example: Example, agent: Any) -> Record:
        if example.id == self.poison:
            with self.trace.open("a") as f:
                f.write(f"{example.id} {os.getpid()}\n")
            os._exit(1)
        return await super().run_one(example, agent)


def test_an_episode_that_kills_its_worker_is_recorded_as_an_error(
    local_ray: Any, tmp_path: Path
) -> None:
    examples = arithmetic_examples(8)
    task = PoisonTask(tmp_path / "trace.log", poison="q-0002")
    result = run_eval_ray_sync(
        task, examples, scripted_agent, out_dir=tmp_path, method="m", num_workers=2,
        progress=False, max_retries=0,
    )  # fmt: skip
    by_id = {r["id"]: r for r in load_records(tmp_path / "m.jsonl")}
    assert sorted(by_id) == [e.id for e in examples]  # the dead worker's share ran elsewhere
    assert by_id["q-0002"]["error"].startswith("WorkerCrashedError: ")
    assert all(r["error"] is None for i, r in by_id.items() if i != "q-0002")
    assert [i for i, _ in task.attempts()].count("q-0002") == 1  # max_retries=0: no retry
    assert result.summary["methods"]["m"]["errors"] == 1


def broken_factory(task: Any) -> Any:
    raise ConfigError("no such model: nope")


def test_a_worker_that_cannot_start_is_a_clear_error(local_ray: Any, tmp_path: Path) -> None:
    start = time.monotonic()
    with pytest.raises(BackendError, match=r"could not start: .*no such model: nope"):
        run_eval_ray_sync(
            ArithmeticTask(), arithmetic_examples(3), broken_factory, out_dir=tmp_path,
            method="m", progress=False,
        )  # fmt: skip
    assert time.monotonic() - start < 60
    assert load_records(tmp_path / "m.jsonl") == []


def test_bad_settings_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="num_workers"):
        run_eval_ray_sync(
            ArithmeticTask(), arithmetic_examples(1), scripted_agent, out_dir=tmp_path,
            method="m", num_workers=0,
        )  # fmt: skip


def test_run_math_eval_on_ray_with_endpoints(local_ray: Any, tmp_path: Path) -> None:
    data = gsm8k_file(tmp_path, 6, wrong_gold=[1])
    a = FaultServer(respond=sum_policy, latency_s=0.02, keep_alive=True)
    b = FaultServer(respond=sum_policy, latency_s=0.02, keep_alive=True)
    with a, b:
        urls = [a.url, b.url]
        local = run_math_eval(
            "gsm8k", ["cot"], endpoints=urls, data=data, out_dir=tmp_path / "local",
            progress=False,
        )  # fmt: skip
        remote = run_math_eval(
            "gsm8k", ["cot"], endpoints=urls, data=data, out_dir=tmp_path / "ray",
            executor="ray", num_workers=2, concurrency=2, progress=False,
        )  # fmt: skip
    assert remote["methods"]["cot"]["scores"] == local["methods"]["cot"]["scores"]
    assert remote["methods"]["cot"]["scores"]["lenient"] == pytest.approx(100 * 5 / 6, abs=0.01)
    rows = {
        name: sorted(load_records(tmp_path / name / "cot.jsonl"), key=lambda r: r["id"])
        for name in ("local", "ray")
    }
    assert comparable(rows["ray"]) == comparable(rows["local"])
    assert len(a.requests) + len(b.requests) == 12  # 6 episodes, twice

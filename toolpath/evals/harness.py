"""The benchmark harness every task family runs through.

A task family (:class:`TaskFamily`) only knows how to load its examples, run one episode
and score one record. This module owns everything else: concurrency, durable JSONL
results (one fsync'ed line per finished episode), resume after a crash or a kill, a
progress bar, and the summary table and plot that compare methods.

Results live in ``out_dir/<method>.jsonl``. A line is written only once an episode is
finished, so a killed run loses at most the episodes that were in flight; running the same
command again skips every id already on disk and re-runs the rest.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypedDict, Unpack

from toolpath import tracing
from toolpath.errors import ConfigError, MissingDependencyError
from toolpath.evals.records import (
    Appender,
    Record,
    load_records,
    rewrite_records,
    scan_records,
)
from toolpath.evals.traces import TRACE_FILE, VIEW_FILE, traced_run

log = logging.getLogger(__name__)


@dataclass
class Example:
    """One benchmark item: a stable ``id``, the ``question`` and the ``gold`` answer."""

    id: str
    question: str
    gold: str
    meta: dict[str, Any] = field(default_factory=dict)


class TaskFamily(Protocol):
    """What a benchmark provides; the harness does the rest."""

    name: str

    def load(
        self, *, data: str | Path | None = None, limit: int | None = None
    ) -> Iterable[Example]:
        """The examples, from ``data`` (a file or folder) or the default location."""
        ...

    async def run_one(self, example: Example, agent: Any) -> Record:
        """Run one episode with ``agent`` (whatever the caller built) and return its record."""
        ...

    def score(self, record: Record) -> dict[str, float]:
        """Scores in [0, 1] for one successful record, e.g. ``{"strict": 1.0, "lenient": 1.0}``."""
        ...


class RunOptions(TypedDict, total=False):
    """How :func:`run_eval` runs, for the functions that pass its options on (see there)."""

    concurrency: int
    progress: bool
    episode_timeout: float | None
    retry_errors: bool
    trace: bool
    model: Any


@dataclass
class RunResult:
    """What :func:`run_eval` returns: the records of the requested examples and the summary."""

    out_dir: Path
    records: list[Record]
    summary: dict[str, Any]


# --------------------------------------------------------------------------- running


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def score_record(task: TaskFamily, record: Record) -> dict[str, float]:
    """The task's scores for a record; all zeros for an errored record."""
    try:
        scores = {k: float(v) for k, v in task.score(record).items()}
    except Exception as exc:
        if not record.get("error"):
            log.warning("scoring %s failed: %s", record.get("id"), _error_text(exc))
        return {}
    return {k: 0.0 for k in scores} if record.get("error") else scores


async def run_episode(
    task: TaskFamily, example: Example, agent: Any, method: str, timeout: float | None
) -> Record:
    """Run one example; any exception (or a timeout) becomes an error record."""
    start = time.perf_counter()
    error: str | None = None
    deadline = asyncio.timeout(timeout)
    try:
        async with deadline:
            with tracing.episode(example.id, method):
                result = await task.run_one(example, agent)
        if not isinstance(result, dict):
            raise TypeError(f"run_one returned {type(result).__name__}, not a dict")
        record: Record = dict(result)
    except Exception as exc:
        expired = isinstance(exc, TimeoutError) and deadline.expired()
        error = (
            f"TimeoutError: episode took longer than {timeout}s" if expired else _error_text(exc)
        )
        record = {"gold": example.gold}
    if record.get("id", example.id) != example.id:
        log.warning("run_one returned id %r for example %r", record["id"], example.id)
    record["id"] = example.id
    record["method"] = method
    record["seconds"] = round(time.perf_counter() - start, 3)
    record["error"] = error
    record["scores"] = score_record(task, record)
    return record


class ProgressBar:
    """A rich progress bar (or nothing) that shows the running accuracy."""

    def __init__(self, method: str, total: int, done: list[Record], enabled: bool) -> None:
        self._sums: dict[str, float] = {}
        self._n = 0
        for record in done:
            self._add(record)
        self._progress: Any = None
        if not enabled:
            return
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[acc]}"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=Console(stderr=True),
        )
        self._task = self._progress.add_task(
            method, total=total, completed=len(done), acc=self._acc()
        )
        self._progress.start()

    def _add(self, record: Record) -> None:
        self._n += 1
        for key, value in (record.get("scores") or {}).items():
            self._sums[key] = self._sums.get(key, 0.0) + float(value)

    def _acc(self) -> str:
        """Running accuracy on "lenient" (else the first score key); errors count as 0."""
        key = "lenient" if "lenient" in self._sums else next(iter(self._sums), None)
        return f"{key} {100 * self._sums[key] / self._n:.1f}%" if key else ""

    def advance(self, record: Record) -> None:
        self._add(record)
        if self._progress is not None:
            self._progress.update(self._task, advance=1, acc=self._acc())

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()


@dataclass
class PendingRun:
    """What a run has left to do once the results on disk are taken into account."""

    out_dir: Path
    path: Path
    """``out_dir/<method>.jsonl``."""
    ids: list[str]
    """Every requested id, in order."""
    saved: dict[str, Record]
    """The records already on disk, by id."""
    todo: list[Example]
    """The examples still to run."""

    @property
    def done(self) -> list[Record]:
        return [self.saved[i] for i in self.ids if i in self.saved]


def plan_run(
    examples: Iterable[Example], *, out_dir: Path, method: str, retry_errors: bool = False
) -> PendingRun:
    """Check the examples and read what ``out_dir/<method>.jsonl`` already holds.

    A torn last line is dropped; with ``retry_errors`` the errored records are removed from
    the file so their ids run again. Shared by every executor, so resume works the same way.
    """
    examples = list(examples)
    ids = [ex.id for ex in examples]
    if len(set(ids)) != len(ids):
        dupes = sorted({i for i in ids if ids.count(i) > 1})[:5]
        raise ConfigError(f"example ids must be unique; repeated: {', '.join(dupes)}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{method}.jsonl"

    saved = {r["id"]: r for r in scan_records(path, repair=True)}  # last line wins
    if retry_errors and any(r.get("error") for r in saved.values()):
        saved = {i: r for i, r in saved.items() if not r.get("error")}
        rewrite_records(path, list(saved.values()))
    todo = [ex for ex in examples if ex.id not in saved]
    if len(todo) < len(examples):
        log.info("%s: resuming, %d of %d already done", method, len(ids) - len(todo), len(ids))
    return PendingRun(out_dir=out_dir, path=path, ids=ids, saved=saved, todo=todo)


class Recorder:
    """Where a run's finished records go: each id once, appended durably to the results
    file and counted in the progress bar. ``new`` holds them by id."""

    def __init__(self, run: PendingRun, method: str, progress: bool) -> None:
        self.new: dict[str, Record] = {}
        self._bar = ProgressBar(method, len(run.ids), run.done, progress)
        self._appender = Appender(run.path)

    async def save(self, record: Record) -> None:
        """Keep a finished record; another for the same id (an episode that was retried and
        finished twice) is dropped."""
        if record["id"] in self.new:
            return
        self.new[record["id"]] = record
        await self._appender.append(record)
        self._bar.advance(record)

    def close(self) -> None:
        self._bar.stop()
        self._appender.close()


def finish_run(task: TaskFamily, run: PendingRun, new: dict[str, Record]) -> RunResult:
    """Write the summary and plot of ``run.out_dir``; return the requested ids' records."""
    summary = summarize(run.out_dir, task)
    try:
        plot(summary, run.out_dir / "plot.png")
    except MissingDependencyError as exc:
        log.warning("no plot: %s", exc)
    records = [new.get(i) or run.saved[i] for i in run.ids]
    return RunResult(out_dir=run.out_dir, records=records, summary=summary)


def ensure_threads(n: int) -> None:
    """Give the running loop's default executor at least ``n`` threads.

    LangGraph runs an agent's sync nodes (and ``asyncio.to_thread`` its calls) there, and
    by default it has only ``min(32, cpus + 4)`` threads: on a small machine that, not
    ``concurrency``, would bound how many episodes wait on a model at once.
    """
    loop = asyncio.get_running_loop()
    current = getattr(loop, "_default_executor", None)
    size = getattr(current, "_max_workers", min(32, (os.cpu_count() or 1) + 4))
    if size >= n:
        return
    loop.set_default_executor(ThreadPoolExecutor(n, thread_name_prefix="toolpath-eval"))
    if current is not None:
        current.shutdown(wait=False)  # what it is running finishes; its threads then exit


async def run_eval(
    task: TaskFamily,
    examples: Iterable[Example],
    agent: Any,
    *,
    out_dir: Path,
    method: str,
    concurrency: int = 1,
    progress: bool = True,
    episode_timeout: float | None = None,
    retry_errors: bool = False,
    trace: bool = True,
    model: Any = None,
) -> RunResult:
    """Run ``task`` on ``examples`` with ``agent``, durably, resuming what is on disk.

    Each finished episode is appended to ``out_dir/<method>.jsonl`` and fsync'ed. Ids
    already there are skipped (a torn last line is dropped and re-run); with
    ``retry_errors`` the ids whose saved record has an error are run again. An exception or
    a timeout in one episode is recorded as its ``error`` (scores zero) and the run goes on.
    Afterwards ``summary.json``, ``summary.md`` and ``plot.png`` are written for every
    method in ``out_dir``. On interruption the finished records are already on disk and the
    exception propagates. ``model`` (the spec the agent runs on, or its ChatModel) is kept in
    each record, so the summary can price its tokens. With ``trace`` (and OpenTelemetry installed) the episodes are also
    traced into ``out_dir/trace.jsonl``, drawn as ``trace.html`` (:mod:`toolpath.evals.traces`).
    """
    if concurrency < 1:
        raise ConfigError(f"concurrency must be at least 1, not {concurrency}")
    run = plan_run(examples, out_dir=out_dir, method=method, retry_errors=retry_errors)
    ensure_threads(concurrency + 4)
    if model is not None and not isinstance(model, str):  # a ChatModel: "provider:name"
        model = f"{getattr(model, 'provider', '') or 'model'}:{getattr(model, 'name', '')}"
    recorder = Recorder(run, method, progress)
    semaphore = asyncio.Semaphore(concurrency)

    async def one(example: Example) -> None:
        async with semaphore:
            record = await run_episode(task, example, agent, method, episode_timeout)
            await recorder.save({**record, "model": model} if model else record)

    try:
        with traced_run(run.out_dir, trace and bool(run.todo)):
            await gather_all([asyncio.create_task(one(ex)) for ex in run.todo])
    finally:
        recorder.close()
    return finish_run(task, run, recorder.new)


async def gather_all(jobs: list[asyncio.Task[Any]]) -> None:
    """Wait for every job; on the first failure (or a cancel) cancel the rest, then re-raise."""
    try:
        await asyncio.gather(*jobs)
    except BaseException:
        for job in jobs:
            job.cancel()
        await asyncio.gather(*jobs, return_exceptions=True)
        raise


def run_eval_sync(
    task: TaskFamily,
    examples: Iterable[Example],
    agent: Any,
    *,
    out_dir: Path,
    method: str,
    **options: Unpack[RunOptions],
) -> RunResult:
    """:func:`run_eval` for synchronous callers (runs its own event loop)."""
    return asyncio.run(run_eval(task, examples, agent, out_dir=out_dir, method=method, **options))


# --------------------------------------------------------------------------- reports


_USAGE_KEYS = (
    "prompt",
    "completion",
    "prompt_tokens",
    "completion_tokens",
    "input_tokens",
    "output_tokens",
)


def _tokens(value: Any) -> float | None:
    """Total tokens from an int or a usage dict (prompt + completion, or its total)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, dict):
        for key in ("total", "total_tokens"):
            if isinstance(value.get(key), int | float):
                return float(value[key])
        parts = [value[k] for k in _USAGE_KEYS if isinstance(value.get(k), int | float)]
        return float(sum(parts)) if parts else None
    return None


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 3) if values else None


def _method_summary(task: TaskFamily, records: list[Record]) -> dict[str, Any]:
    per_record = [score_record(task, r) for r in records]
    keys: list[str] = []
    for s in per_record:
        keys.extend(k for k in s if k not in keys)
    n = len(records)
    scores = {k: round(100 * sum(s.get(k, 0.0) for s in per_record) / n, 2) for k in keys}
    tokens = [t for t in (_tokens(r.get("tokens")) for r in records) if t is not None]
    rounds = [
        float(r["tool_rounds"]) for r in records if isinstance(r.get("tool_rounds"), int | float)
    ]
    seconds = [float(r["seconds"]) for r in records if isinstance(r.get("seconds"), int | float)]
    used = [float(r["samples_used"]) for r in records if isinstance(r.get("samples_used"), int)]
    costs = [_usd(r) for r in records]
    priced = [c for c in costs if c is not None]
    return {
        "n": n,
        "errors": sum(1 for r in records if r.get("error")),
        "scores": scores,
        "tokens": _mean(tokens),
        "tokens_total": int(sum(tokens)),
        "usd": round(sum(priced) / len(priced), 6) if len(priced) == n else None,
        "usd_total": round(sum(priced), 6) if len(priced) == n else None,
        "seconds": _mean(seconds),
        "tool_rounds": _mean(rounds),
        **({"samples": _mean(used)} if used else {}),
    }


def _usd(record: Record) -> float | None:
    """What a record's tokens cost on its ``model`` (``None``: no model or no price known)."""
    usage, model = record.get("tokens"), record.get("model")
    if not isinstance(usage, dict) or not isinstance(model, str):
        return None
    from toolpath.agents.budget import Prices

    split = [usage.get(k) for k in ("prompt", "completion")]
    if not all(isinstance(v, int | float) for v in split):
        return None
    try:
        return Prices().usd(model, int(split[0]), int(split[1]))  # type: ignore[arg-type]
    except ConfigError:
        return None


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def summarize(out_dir: Path, task: TaskFamily) -> dict[str, Any]:
    """Summarize every ``<method>.jsonl`` in ``out_dir``; write summary.json and summary.md.

    Per method: ``n``, ``errors``, each score key's mean as a percentage (errored records
    count as zero), and the mean ``tokens``, ``seconds`` and ``tool_rounds`` where present.
    Records are re-scored with ``task.score``, so a fixed scorer applies to old runs.
    """
    out_dir = Path(out_dir)
    methods: dict[str, Any] = {}
    for path in sorted(out_dir.glob("*.jsonl")):
        if path.name == TRACE_FILE:
            continue
        records = list({r["id"]: r for r in load_records(path)}.values())
        if records:
            methods[path.stem] = _method_summary(task, records)
    keys: list[str] = []
    for m in methods.values():
        keys.extend(k for k in m["scores"] if k not in keys)
    summary = {"task": task.name, "score_keys": keys, "methods": methods}
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")

    head = ["method", "n", "errors", *(f"{k} %" for k in keys), "tokens", "tokens total"]
    head += ["USD", "USD total", "seconds", "tool rounds"]
    voted = any("samples" in m for m in methods.values())
    head += ["samples"] if voted else []
    lines = [f"# {task.name}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, m in methods.items():
        cells = [name, m["n"], m["errors"], *(m["scores"].get(k) for k in keys)]
        cells += [m["tokens"], m.get("tokens_total"), m.get("usd"), m.get("usd_total")]
        cells += [m["seconds"], m["tool_rounds"]]
        cells += [m.get("samples")] if voted else []
        lines.append("| " + " | ".join(_fmt(c) for c in cells) + " |")
    lines += ["", "tokens, USD: per episode (USD total: all episodes; –: no price known)."]
    if (out_dir / VIEW_FILE).exists():
        lines += [f"Every episode's trace: [{VIEW_FILE}]({VIEW_FILE})."]
    (out_dir / "summary.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return summary


def plot(summary: dict[str, Any], path: Path) -> None:
    """Write a PNG: a bar chart comparing the methods of ``summary`` on each score key and,
    beside it, the first score against mean tokens per episode (what each point costs)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise MissingDependencyError("plotting needs matplotlib: pip install matplotlib") from exc
    methods: dict[str, Any] = summary.get("methods", {})
    keys: list[str] = list(summary.get("score_keys", []))
    costed = {n: m for n, m in methods.items() if m.get("tokens") is not None}
    width_in = min(16.0, 4.0 + 0.8 * len(keys) * max(1, len(methods)))
    fig = Figure(figsize=(width_in + (4.5 if costed and keys else 0.0), 3.6))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 2 if costed and keys else 1, 1)
    if not methods or not keys:
        ax.text(0.5, 0.5, "no results", ha="center", va="center")
        ax.set_axis_off()
    else:
        width = 0.8 / len(methods)
        for i, (name, m) in enumerate(methods.items()):
            xs = [k + (i - (len(methods) - 1) / 2) * width for k in range(len(keys))]
            ys = [m["scores"].get(key, 0.0) for key in keys]
            bars = ax.bar(xs, ys, width, label=f"{name} (n={m['n']})")
            ax.bar_label(bars, fmt="%.1f", fontsize=7)
        ax.set_xticks(range(len(keys)), keys)
        ax.set_ylabel("score (%)")
        ax.set_ylim(0, max(100.0, math.ceil(max(ax.get_ylim()))))
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.set_title(str(summary.get("task", "")))
    if costed and keys:
        cost = fig.add_subplot(1, 2, 2)
        for name, m in costed.items():
            x, y = m["tokens"], m["scores"].get(keys[0], 0.0)
            cost.scatter([x], [y])
            cost.annotate(name, (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
        cost.set_xlabel("mean tokens per episode")
        cost.set_ylabel(f"{keys[0]} (%)")
        cost.set_title("accuracy against cost")
    fig.tight_layout()
    fig.savefig(str(path), format="png", dpi=120)

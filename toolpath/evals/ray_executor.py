"""Run an eval across a Ray cluster, with the same results file and summary as ``run_eval``.

:func:`run_eval_ray` shards the examples still to run (resume skips the ids on disk, exactly
as :func:`~toolpath.evals.harness.run_eval` does) over ``num_workers`` Ray actors. Each
worker builds its own agent from a picklable factory (``factory(task) -> agent``: a model
spec for its own engine, or the endpoints of a served model) and runs episodes through the
harness's own episode function, so a record is the same as the local executor's. Records
stream back to the driver, which appends each one durably to ``out_dir/<method>.jsonl``
(fsync'ed, once per id) and writes the same ``summary.json``/``summary.md``/``plot.png``.

A worker that is killed is restarted by Ray and its episodes in flight are run again
(``max_retries`` restarts and retries); a worker that stays dead hands its episodes to the
others. An episode whose worker died ``max_retries + 1`` times is recorded as an error
instead of taking down every worker.

:func:`run_math_eval` is the library entry point behind ``toolpath eval gsm8k|math500|math``
with ``--endpoints`` and ``--executor local|ray``. Ray is imported only when used
(``pip install 'toolpath[ray]'``).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import os
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Unpack

from toolpath.errors import BackendError, ConfigError, MissingDependencyError
from toolpath.evals import harness
from toolpath.evals.harness import Example, Record, RunOptions, RunResult, TaskFamily
from toolpath.llm.base import ChatModel

log = logging.getLogger(__name__)

AgentFactory = Callable[[Any], Any]
"""``factory(task) -> agent``, called once in each worker with the worker's copy of the task
(it may attach per-worker resources to it, e.g. a kernel pool). It must be picklable: a
module-level function, a ``functools.partial`` of one, or a dataclass like
:class:`MathAgentFactory`."""


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise MissingDependencyError(
            "the Ray executor needs ray: pip install 'toolpath[ray]'"
        ) from exc
    return ray


@contextlib.contextmanager
def _session(ray: Any, address: str | None) -> Iterator[None]:
    """Ray connected: already, or now to ``address`` (a local instance started for the
    block and stopped after it when there is none)."""
    if ray.is_initialized():
        yield
        return
    ray.init(address=address, include_dashboard=False, logging_level=logging.WARNING)
    try:
        yield
    finally:
        ray.shutdown()


# --------------------------------------------------------------------------- the worker


class EvalWorker:
    """One Ray actor: builds its agent once, then runs episodes (``concurrency`` at once)."""

    def __init__(
        self,
        task: TaskFamily,
        factory: AgentFactory,
        method: str,
        episode_timeout: float | None,
        concurrency: int,
    ) -> None:
        self.task, self.method = task, method
        self.episode_timeout, self.concurrency = episode_timeout, concurrency
        self.agent = factory(task)

    async def run(self, example: Example) -> Record:
        harness.ensure_threads(self.concurrency + 4)
        return await harness.run_episode(
            self.task, example, self.agent, self.method, self.episode_timeout
        )

    def pid(self) -> int:
        return os.getpid()

    def close(self) -> None:
        close = getattr(self.agent, "close", None)
        if callable(close):
            close()


def _crash_record(example: Example, method: str, task: TaskFamily, error: str) -> Record:
    """The record of an episode whose workers kept dying (scored like any errored one)."""
    record: Record = {"gold": example.gold, "id": example.id, "method": method}
    record.update(seconds=0.0, error=f"WorkerCrashedError: {error}")
    record["scores"] = harness.score_record(task, record)
    return record


# --------------------------------------------------------------------------- the driver


async def run_eval_ray(
    task: TaskFamily,
    examples: Iterable[Example],
    agent_factory: AgentFactory,
    *,
    out_dir: Path,
    method: str,
    num_workers: int = 2,
    concurrency: int = 1,
    progress: bool = True,
    episode_timeout: float | None = None,
    retry_errors: bool = False,
    address: str | None = None,
    max_retries: int = 3,
    worker_options: dict[str, Any] | None = None,
    trace: bool = False,
    model: str | None = None,
) -> RunResult:
    """:func:`~toolpath.evals.harness.run_eval` on ``num_workers`` Ray workers.

    ``concurrency`` is the episodes each worker runs at once. ``task`` and ``agent_factory``
    are pickled to the workers. ``address`` connects to a running cluster (``"auto"``, or
    ``ray://host:10001``); without it, and when Ray is not initialized yet, a local instance
    is started for the run and stopped after it. ``worker_options`` go to the actors'
    ``.options()`` (e.g. ``{"num_gpus": 1}``, or ``{"runtime_env": {...}}``). ``model`` is kept
    in each record as there; ``trace`` is not supported yet (the workers are other processes).
    """
    if num_workers < 1 or concurrency < 1 or max_retries < 0:
        raise ConfigError("num_workers and concurrency must be >= 1, max_retries >= 0")
    ray = _import_ray()
    run = harness.plan_run(examples, out_dir=out_dir, method=method, retry_errors=retry_errors)
    with _session(ray, address):
        workers: list[Any] = []
        recorder = harness.Recorder(run, method, progress)
        try:
            actor = ray.remote(EvalWorker).options(
                max_restarts=max_retries,
                max_task_retries=max_retries,
                max_concurrency=concurrency,
                **(worker_options or {}),
            )
            if run.todo:
                workers = [
                    actor.remote(task, agent_factory, method, episode_timeout, concurrency)
                    for _ in range(num_workers)
                ]
                await _started(workers)

            async def save(record: Any) -> None:
                await recorder.save({**record, "model": model} if model else record)

            left = await _drive(
                ray, workers, run.todo, concurrency, max_retries, task, method, save
            )
            if left:
                raise BackendError(
                    f"every Ray worker died; {left} episodes were not run. The finished ones "
                    f"are in {run.path}: run the same command again to resume"
                )
        finally:
            recorder.close()
            await _close_workers(ray, workers)
    return harness.finish_run(task, run, recorder.new)


def _cause(exc: BaseException) -> str:
    """The last line of a Ray error that names an exception (Ray's own text is long)."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    named = [ln for ln in lines if "Error" in ln.split(":", 1)[0]]
    return (named or lines or [type(exc).__name__])[-1][:500]


async def _started(workers: list[Any]) -> None:
    """Wait until every worker has built its agent. One that cannot (a bad model spec, a
    missing dependency, a task the workers cannot import) is a setup error, not a crash."""

    async def ping(worker: Any) -> None:
        await worker.pid.remote()

    results = await asyncio.gather(*(ping(w) for w in workers), return_exceptions=True)
    for result in results:
        if isinstance(result, Exception):
            raise BackendError(
                f"a Ray worker could not start: {_cause(result)}. Check that the workers can "
                "import the task and build the agent (same Python environment, toolpath "
                "installed, e.g. through runtime_env)"
            ) from result


async def _drive(
    ray: Any,
    workers: list[Any],
    todo: list[Example],
    concurrency: int,
    max_retries: int,
    task: TaskFamily,
    method: str,
    save: Callable[[Record], Awaitable[None]],
) -> int:
    """Feed the examples to the workers' lanes, handing each record to ``save``; return how
    many examples could not be run."""
    queue = collections.deque(todo)
    crashes: collections.Counter[str] = collections.Counter()
    state = {"in_flight": 0}
    cond = asyncio.Condition()

    async def take() -> Example | None:
        async with cond:
            await cond.wait_for(lambda: bool(queue) or state["in_flight"] == 0)
            if not queue:
                return None
            state["in_flight"] += 1
            return queue.popleft()

    async def settle(again: Example | None = None) -> None:
        async with cond:
            state["in_flight"] -= 1
            if again is not None:
                queue.appendleft(again)
            cond.notify_all()

    async def lane(worker: Any) -> None:
        while (example := await take()) is not None:
            again: Example | None = None
            dead, pause = False, 0.0
            try:
                record = await worker.run.remote(example)
            except ray.exceptions.RayError as exc:
                # died for good (its restarts used up), or unreachable for now (Ray's own
                # retries used up): either way the episode goes back in the queue
                dead = isinstance(exc, ray.exceptions.ActorDiedError)
                pause = 1.0 if isinstance(exc, ray.exceptions.ActorUnavailableError) else 0.0
                crashes[example.id] += 1
                text = _cause(exc)
                log.warning("%s: worker failed (%s); %s", example.id, type(exc).__name__, text)
                if crashes[example.id] > max_retries:
                    await save(_crash_record(example, method, task, text))
                else:
                    again = example
            else:
                await save(record)
            finally:
                await settle(again)
            if dead:
                return  # this worker is gone for good; the others take its episodes
            await asyncio.sleep(pause)

    await harness.gather_all(
        [asyncio.create_task(lane(w)) for w in workers for _ in range(concurrency)]
    )
    return len(queue)


async def _close_workers(ray: Any, workers: list[Any], timeout: float = 30.0) -> None:
    """Let each worker release its agent (kernels, servers), then end the actors."""
    if not workers:
        return

    async def close(worker: Any) -> None:
        await worker.close.remote()

    try:
        await asyncio.wait_for(
            asyncio.gather(*(close(w) for w in workers), return_exceptions=True), timeout
        )
    except TimeoutError:
        log.warning("Ray workers did not close within %ss; killing them", timeout)
    for worker in workers:
        ray.kill(worker, no_restart=True)


class RayRunOptions(RunOptions, total=False):
    """How :func:`run_eval_ray` runs: :class:`~toolpath.evals.harness.RunOptions` and its own
    options (see there)."""

    num_workers: int
    address: str | None
    max_retries: int
    worker_options: dict[str, Any] | None


def run_eval_ray_sync(
    task: TaskFamily,
    examples: Iterable[Example],
    agent_factory: AgentFactory,
    *,
    out_dir: Path,
    method: str,
    **options: Unpack[RayRunOptions],
) -> RunResult:
    """:func:`run_eval_ray` for synchronous callers (runs its own event loop)."""
    return asyncio.run(
        run_eval_ray(task, examples, agent_factory, out_dir=out_dir, method=method, **options)
    )


# --------------------------------------------------------------------------- math benchmarks


def served_model(model: str | None) -> str | None:
    """The model name to ask endpoints for: ``None`` (whatever the first server lists) for
    the default ``local`` specs, else the name itself (``openai:NAME`` gives ``NAME``)."""
    if not model or model == "local" or model.startswith("local:"):
        return None
    return model.removeprefix("openai:").partition("@")[0] or None


def build_model(
    model: str = "local", endpoints: Sequence[str] | str | None = None, slots: int = 1
) -> ChatModel:
    """A pool over ``endpoints`` when given (``model`` names what they serve), else the
    model spec ``model`` (e.g. ``local`` for the embedded engine, with ``slots`` parallel
    sequences)."""
    if endpoints:
        from toolpath.llm.replicas import load_replicas

        return load_replicas(endpoints, served_model(model))
    from toolpath.llm.specs import load_model

    options: dict[str, Any] = {}
    if (model == "local" or model.startswith("local:")) and slots > 1:
        options["n_parallel"] = slots
    return load_model(model, **options)


VOTE_PARALLEL = 2
"""Trajectories of one problem's vote that run at once (2 cores: two llama.cpp slots)."""


@dataclass(frozen=True)
class MathAgentFactory:
    """What a worker builds for a math benchmark: its model (its own engine from the spec
    ``model``, or a replica pool over ``endpoints``), ``kernels`` sandboxed kernels (one
    per episode at once; none for ``cot``) and the ``method``'s agent. Closing the agent
    closes all three."""

    method: str
    model: str = "local"
    endpoints: tuple[str, ...] = ()
    kernels: int = 1

    def build(self, task: Any) -> tuple[Any, ChatModel]:
        """The agent and its model; ``task.kernels`` is set to the new kernel pool (a voting
        method brings its own kernels, one per trajectory running, and model slots to match)."""
        from toolpath.evals.math.tasks import VOTE_METHOD, math_agent_for

        voting = VOTE_METHOD.fullmatch(self.method) is not None
        slots = self.kernels * (VOTE_PARALLEL if voting else 1)
        llm = build_model(self.model, self.endpoints, slots=slots)
        pool = None
        if not voting and not self.method.startswith("cot"):
            from toolpath.tools.code.kernel import KernelPool

            pool = KernelPool(size=self.kernels)
        task.kernels = pool
        agent = math_agent_for(self.method, llm, **({"parallel": VOTE_PARALLEL} if voting else {}))
        own_close = agent.on_close

        def close() -> None:
            if own_close is not None:
                own_close()
            if pool is not None:
                pool.close()
            llm.close()

        agent.on_close = close
        return agent, llm

    def __call__(self, task: Any) -> Any:
        return self.build(task)[0]


def run_math_eval(
    benchmark: str,
    methods: Sequence[str],
    *,
    model: str = "local",
    endpoints: Sequence[str] | str | None = None,
    executor: Literal["local", "ray"] = "local",
    ray_address: str | None = None,
    num_workers: int = 2,
    concurrency: int = 1,
    limit: int | None = None,
    skip: int = 0,
    data: str | Path | None = None,
    out_dir: Path = Path("runs/eval"),
    retry_errors: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Run ``methods`` (dotamath, pot, cot) on a math benchmark; return the last summary.

    ``endpoints`` (a list or ``"URL1,URL2"``) balances requests over OpenAI-compatible
    replicas; ``model`` then names the served model (the default ``local`` asks the
    servers). ``executor="ray"`` runs ``num_workers`` Ray workers (at ``ray_address``, or a
    local instance), each with ``concurrency`` episodes at once and its own model or pool;
    ``"local"`` runs ``concurrency`` episodes in this process. With endpoints and the local
    executor, each method's per-replica counts go to ``out_dir/replicas.json`` and the
    summary's ``"replicas"``.
    """
    from toolpath.evals.math.tasks import task

    methods = _checked_methods(methods)
    if executor not in ("local", "ray"):
        raise ConfigError(f"unknown executor {executor!r}; use local or ray")
    urls: tuple[str, ...] = ()
    if endpoints:
        from toolpath.llm.replicas import parse_endpoints

        urls = tuple(parse_endpoints(endpoints))
    examples = list(task(benchmark).load(data=data, limit=limit, skip=skip))
    out = Path(out_dir)
    options: RunOptions = {
        "concurrency": concurrency,
        "progress": progress,
        "retry_errors": retry_errors,
        "model": model,
    }
    factories = [MathAgentFactory(name, model, urls, kernels=concurrency) for name in methods]
    if executor == "ray":
        return _math_on_ray(benchmark, examples, factories, out, options, ray_address, num_workers)

    summary: dict[str, Any] = {}
    for factory in factories:
        family = task(benchmark)
        agent, llm = factory.build(family)
        try:
            result = harness.run_eval_sync(
                family, examples, agent, out_dir=out, method=factory.method, **options
            )
            stats = getattr(llm, "stats", None)
            replicas = stats() if urls and callable(stats) else None
        finally:
            agent.close()
        summary = result.summary
        if replicas is not None:
            summary["replicas"] = _save_replica_stats(out, factory.method, replicas)
    return summary


def _checked_methods(methods: str | Sequence[str]) -> list[str]:
    """The math methods named in ``methods`` (a list, or ``"dotamath,pot"``), checked."""
    from toolpath.evals.math.tasks import METHODS, is_method

    items = methods.split(",") if isinstance(methods, str) else methods
    names = [m.strip() for m in items if m.strip()]
    unknown = [m for m in names if not is_method(m)]
    if unknown or not names:
        raise ConfigError(
            f"unknown method {', '.join(unknown) or '(none)'}; use: {', '.join(METHODS)}"
        )
    return names


def _save_replica_stats(out: Path, method: str, stats: list[dict[str, Any]]) -> dict[str, Any]:
    """Merge one method's replica counts into ``out/replicas.json``; return the whole."""
    path = out / "replicas.json"
    try:
        saved = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    except ValueError:
        saved = {}
    saved = saved if isinstance(saved, dict) else {}
    saved[method] = stats
    path.write_text(json.dumps(saved, indent=2) + "\n", encoding="utf-8")
    return saved


def _math_on_ray(
    benchmark: str,
    examples: list[Example],
    factories: list[MathAgentFactory],
    out: Path,
    options: RunOptions,
    address: str | None,
    num_workers: int,
) -> dict[str, Any]:
    """Each method on one Ray cluster (started once for all of them when not running)."""
    from toolpath.evals.math.tasks import task

    summary: dict[str, Any] = {}
    with _session(_import_ray(), address):
        for factory in factories:
            result = run_eval_ray_sync(
                task(benchmark),
                examples,
                factory,
                out_dir=out,
                method=factory.method,
                num_workers=num_workers,
                **options,
            )
            summary = result.summary
    return summary

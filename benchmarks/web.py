"""Web environment latency: episode reset, agent step and observation build on MiniWoB pages.

    python benchmarks/web.py [--episodes 50] [--tasks click-button,enter-text,...]
                             [--interleave] [--no-js] [--json PATH]

Every episode is a real one: one headless chromium (:class:`toolpath.tools.web.browser.Browser`)
shows a MiniWoB base task from the ``miniwob`` wheel, and the real web agent
(:func:`toolpath.agents.web.agent.web_agent`) plays it. Its model is the shared
:class:`~toolpath.llm.scripted.ScriptedModel`, loaded after each reset with the actions of
the deterministic solver in :mod:`toolpath.evals.web.oracle` for that page, so the model
costs microseconds and what is timed is the browser and the agent around it. Every episode
must end with the page's reward +1; the solved count is printed.

Episodes run in blocks of one task (as ``toolpath eval miniwob`` runs them: the page stays
loaded between episodes of a task) or, with ``--interleave``, alternating tasks so every
reset loads a page. One untimed episode of each task warms up each mode first.

Rows (milliseconds, p50/p99 by nearest rank):

- ``reset (same page)`` / ``reset (page load)``: :meth:`WebEnv.reset`, i.e. seeding and
  starting the episode through the page's own ``core`` (after loading the page when the
  task changed) and building the first observation;
- ``step``: the agent's ``execute`` node as it times itself (the number in each eval
  record's ``step_latency_s``): one action tool call, i.e. the Playwright action plus the
  read of the page's reward/done flags that every action reports; also split by tool
  (``step: click``, ``step: type``). Goal: p50 at most 60 ms with real mouse clicks;
- ``observe``: the agent's ``observe`` node: ``core.getDOMInfo()`` through
  :data:`~toolpath.tools.web.observation.OBSERVE_JS`, the :class:`Observation` and its text;
- ``agent loop``: wall time from one ``observe`` update of ``agent.astream`` to the next,
  i.e. a whole act -> execute -> observe cycle with a model that costs nothing.

Modes: ``mouse`` is the driver as the agent uses it (``click`` = Playwright's real mouse
click after its actionability checks; ``type`` = click, clear, then key-by-key typing).
``js`` is a reference only, for comparison: the driver has no JS-click mode, so this
script subclasses :class:`WebEnv` to click with ``HTMLElement.click()`` in the page and to
type with ``fill`` (the value at once, no key events). Skip it with ``--no-js``.

The machine's load average is printed and saved: the numbers are only as quiet as the CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import platform
import statistics
import time
from collections import defaultdict
from itertools import pairwise
from pathlib import Path
from typing import Any

from toolpath.agents.web.agent import web_agent
from toolpath.evals.web.oracle import SOLVERS
from toolpath.llm.scripted import ScriptedModel
from toolpath.tools.web.browser import Browser, TaskSite, WebEnv

TASKS = ("click-button", "click-checkboxes", "click-option", "enter-text", "login-user")
GOAL_STEP_P50_MS = 60.0


class JsClickEnv(WebEnv):
    """The page with JS actions instead of input events (benchmark reference only)."""

    async def click(self, ref: int) -> str:
        loc = self._locator(ref)
        return await self._act("clicked", ref, loc.evaluate("el => el.click()"))

    async def type(self, ref: int, text: str) -> str:
        loc = self._locator(ref)
        fill = loc.fill(text, timeout=self.action_timeout_s * 1000)
        return await self._act(f"typed {text!r} into", ref, fill)


def percentile(samples: list[float], q: float) -> float:
    """The q-th percentile (0-100) of ``samples``, nearest rank."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def stats(samples_s: list[float]) -> dict[str, float | int]:
    """n, p50, p99 and mean in milliseconds."""
    ms = [s * 1000 for s in samples_s]
    if not ms:
        return {"n": 0}
    return {
        "n": len(ms),
        "p50_ms": round(statistics.median(ms), 2),
        "p99_ms": round(percentile(ms, 99), 2),
        "mean_ms": round(statistics.fmean(ms), 2),
    }


def schedule(tasks: list[str], episodes: int, interleave: bool) -> list[tuple[str, int]]:
    """``(task, seed)`` for each timed episode: blocks of one task, or alternating tasks."""
    if interleave:
        return [(tasks[i % len(tasks)], i) for i in range(episodes)]
    return [(tasks[i * len(tasks) // episodes], i) for i in range(episodes)]


async def episode(env: WebEnv, task: str, seed: int, samples: dict[str, list[float]]) -> bool:
    """Play one episode with the agent; add its timings to ``samples``; True if solved."""
    page = f"miniwob/{task}"
    loads = env.page.url != env.site.url(page)
    start = time.perf_counter()
    obs = await env.reset(page, seed)
    samples["reset (page load)" if loads else "reset (same page)"].append(
        time.perf_counter() - start
    )
    actions = SOLVERS[task](obs.instruction, obs.shown)
    model = ScriptedModel([json.dumps({"tool": n, "arguments": a}) for n, a in actions])
    agent = web_agent(model=model, max_steps=len(actions) + 1)
    seen: list[float] = []
    config: Any = {"configurable": {"env": env}}
    async for update in agent.astream(
        {"instruction": obs.instruction}, config, stream_mode="updates"
    ):
        now = time.perf_counter()
        for node, change in update.items():
            if node == "observe":
                seen.append(now)
            for record in (change or {}).get("trace", []):
                if record.get("node") == "execute":
                    samples["step"].append(record["seconds"])
                    samples[f"step: {record['tool']}"].append(record["seconds"])
                elif record.get("node") == "observe":
                    samples["observe"].append(record["seconds"])
    samples["agent loop"].extend(b - a for a, b in pairwise(seen))
    return (await env.status()).success


ROWS = ("reset (same page)", "reset (page load)", "step", "observe", "agent loop")


async def run_mode(
    browser: Browser, site: TaskSite, js: bool, tasks: list[str], plan: list[tuple[str, int]]
) -> tuple[dict[str, list[float]], int, str]:
    """Warm up, then play ``plan``: the samples per row, the solved count, chromium's version."""
    env: WebEnv = JsClickEnv(browser, site) if js else WebEnv(browser, site)
    await env.open()
    try:
        scratch: dict[str, list[float]] = defaultdict(list)
        for i, task in enumerate(tasks):
            await episode(env, task, 10_000 + i, scratch)
        samples: dict[str, list[float]] = defaultdict(list)
        solved = 0
        for task, seed in plan:
            solved += await episode(env, task, seed, samples)
        version = env.page.context.browser.version
    finally:
        await env.close()
    order = [*ROWS, *sorted(k for k in samples if k not in ROWS)]
    return {k: samples[k] for k in order if samples[k]}, solved, version


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    unknown = [t for t in tasks if t not in SOLVERS]
    if unknown:
        raise SystemExit(
            f"no scripted solver for {', '.join(unknown)}; known: {', '.join(SOLVERS)}"
        )
    plan = schedule(tasks, args.episodes, args.interleave)
    load_start = os.getloadavg()
    modes = ["mouse"] if args.no_js else ["mouse", "js"]
    result: dict[str, Any] = {"metrics": {}, "solved": {}}
    with TaskSite() as site:
        async with Browser() as browser:
            for mode in modes:
                samples, solved, version = await run_mode(browser, site, mode == "js", tasks, plan)
                result["metrics"][mode] = {k: stats(v) for k, v in samples.items()}
                result["solved"][mode] = {"solved": solved, "episodes": len(plan)}
    step = result["metrics"]["mouse"]["step"]
    result.update(
        date=datetime.datetime.now().isoformat(timespec="seconds"),
        machine={
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "chromium": version,
            "loadavg_start": [round(x, 2) for x in load_start],
            "loadavg_end": [round(x, 2) for x in os.getloadavg()],
        },
        config={
            "episodes": args.episodes,
            "tasks": tasks,
            "order": "interleave" if args.interleave else "block",
            "seeds": f"0..{args.episodes - 1}",
        },
        goal={
            "metric": "step p50 with real mouse clicks",
            "max_ms": GOAL_STEP_P50_MS,
            "value_ms": step["p50_ms"],
            "met": step["p50_ms"] <= GOAL_STEP_P50_MS,
        },
    )
    return result


def report(result: dict[str, Any]) -> None:
    """Print the table, the solved counts and the goal."""
    m = result["machine"]
    print(
        f"chromium {m['chromium']}, {m['cpus']} CPUs, load average "
        f"{' '.join(map(str, m['loadavg_start']))} (start) -> "
        f"{' '.join(map(str, m['loadavg_end']))} (end)"
    )
    c = result["config"]
    print(
        f"{c['episodes']} episodes per mode ({c['order']} order, seeds {c['seeds']}) on "
        f"{', '.join(c['tasks'])}"
    )
    print(f"{'row':20} {'mode':6} {'n':>5} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8}")
    for mode, rows in result["metrics"].items():
        for name, s in rows.items():
            print(
                f"{name:20} {mode:6} {s['n']:5d} {s['p50_ms']:8.1f} {s['p99_ms']:8.1f} "
                f"{s['mean_ms']:8.1f}"
            )
    for mode, s in result["solved"].items():
        print(f"{mode}: {s['solved']}/{s['episodes']} episodes solved (reward +1)")
    g = result["goal"]
    verdict = "met" if g["met"] else "missed"
    print(f"goal: {g['metric']} <= {g['max_ms']:.0f} ms: {verdict} ({g['value_ms']:.1f} ms)")


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--episodes", type=int, default=50, help="timed episodes per mode")
    ap.add_argument("--tasks", default=",".join(TASKS), help="comma-separated MiniWoB tasks")
    ap.add_argument("--interleave", action="store_true", help="alternate tasks every episode")
    ap.add_argument("--no-js", action="store_true", help="skip the JS-click reference mode")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()
    if args.episodes < 1:
        raise SystemExit("--episodes must be at least 1")
    result = asyncio.run(bench(args))
    report(result)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()

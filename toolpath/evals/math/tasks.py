"""Math task families: GSM8K and MATH-500 (and the full MATH test set).

They share everything but the data: an episode is one problem solved by a math agent
(DotaMath, PoT or CoT), graded with the ToRA protocol, strict and lenient.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from toolpath.agents.base import tokens
from toolpath.evals.harness import Example, Record
from toolpath.evals.math import datasets
from toolpath.evals.math.grading import is_equiv, is_strict


def math_agent_for(method: str, model: Any, **options: Any) -> Any:
    """Build the agent for a method name (see :data:`METHODS`)."""
    from toolpath.agents.math.baselines import cot_agent, pot_agent
    from toolpath.agents.math.dotamath import math_agent

    vote = VOTE_METHOD.fullmatch(method)
    if vote:
        return math_agent(model=model, samples=int(vote[2]), mixed=bool(vote[1]), **options)
    builders: dict[str, tuple[Callable[..., Any], dict[str, Any]]] = {
        "dotamath": (math_agent, {}),
        "dotamath-recheck": (math_agent, {"recheck": True}),
        "pot": (pot_agent, {}),
        "pot-zero": (pot_agent, {"demos": 0}),
        "pot-few": (pot_agent, {"demos": 3}),
        "cot": (cot_agent, {}),
        "cot-zero": (cot_agent, {"demos": 0}),
        "cot-few": (cot_agent, {"demos": 3}),
    }
    if method not in builders:
        from toolpath.errors import ConfigError

        raise ConfigError(f"unknown method {method!r}; use one of: {', '.join(METHODS)}")
    builder, defaults = builders[method]
    return builder(model=model, **{**defaults, **options})


METHODS: tuple[str, ...] = ("dotamath", "dotamath-recheck", "dotamath-kK", "dotamath-mixed-kK")
METHODS += ("pot", "pot-zero", "pot-few", "cot", "cot-zero", "cot-few")
"""Method names: ``dotamath``; ``dotamath-recheck`` re-reads the problem against the printed
answer; ``dotamath-k5`` votes over up to 5 trajectories, stopping once
settled, ``dotamath-mixed-k5`` with every second one chain of thought; ``pot`` and ``cot``
are each baseline's default variant, ``-zero`` and ``-few`` name the variant."""
VOTE_METHOD = re.compile(r"dotamath(-mixed)?-k([1-9]\d?)")


def is_method(name: str) -> bool:
    return (name in METHODS and "kK" not in name) or VOTE_METHOD.fullmatch(name) is not None


@dataclass
class MathTask:
    """One math benchmark. ``kernels`` (a :class:`~toolpath.tools.code.kernel.KernelPool`)
    gives each episode its own sandboxed kernel; without it, agents use their own."""

    name: str
    loader: Callable[..., list[Example]]
    kernels: Any = None

    def load(
        self, *, data: str | Path | None = None, limit: int | None = None, skip: int = 0
    ) -> Iterable[Example]:
        """The problems in file order, leaving out the first ``skip``, at most ``limit``."""
        if skip < 0:
            from toolpath.errors import ConfigError

            raise ConfigError(f"skip must be >= 0, not {skip}")
        examples = self.loader(data=data, limit=None if limit is None else skip + limit)
        return examples[skip:]

    async def run_one(self, example: Example, agent: Any) -> Record:
        async with self._kernel() as kernel:
            config = {"configurable": {"kernel": kernel}} if kernel is not None else None
            state = await agent.ainvoke(example.question, config)
        predicted = state.get("answer")
        lenient = await asyncio.to_thread(is_equiv, predicted, example.gold)
        record: Record = {
            "id": example.id,
            "question": example.question,
            "trajectory": state.get("messages", []),
            "predicted": predicted,
            "gold": example.gold,
            "correct_strict": is_strict(predicted, example.gold),
            "correct_lenient": lenient,
            "tokens": tokens(state.get("trace", [])),
            "tool_rounds": state.get("rounds", 0),
            "status": state.get("status"),
        }
        if "samples" in state:  # a vote: every trajectory and the tally are kept
            record["samples_used"] = len(state["samples"])
            record["vote"] = state.get("vote")
            record["samples"] = state["samples"]
        return record

    def score(self, record: Record) -> dict[str, float]:
        return {
            "strict": float(bool(record.get("correct_strict"))),
            "lenient": float(bool(record.get("correct_lenient"))),
        }

    @contextlib.asynccontextmanager
    async def _kernel(self) -> Any:
        if self.kernels is None:
            yield None
            return
        async with self.kernels.akernel() as kernel:
            yield kernel


def _gsm8k_train(*, data: str | Path | None = None, limit: int | None = None) -> list[Example]:
    """GSM8K train, for tuning: the problems of the few-shot demonstrations are left out."""
    from toolpath.agents.math.prompts import math_demos

    shown = {d["question"].strip() for d in math_demos()}
    examples = datasets.gsm8k(
        "train", data=data, limit=None if limit is None else limit + len(shown)
    )
    return [e for e in examples if e.question.strip() not in shown][:limit]


def _gsm8k_dev(*, data: str | Path | None = None, limit: int | None = None) -> list[Example]:
    """GSM8K-dev, for tuning without the train answers a model may remember: train problems
    (no few-shot ones) with their numbers changed and their answers recomputed
    (:mod:`toolpath.evals.math.perturb`; the same problems and numbers every time)."""
    import random

    from toolpath.evals.math.perturb import perturb

    out: list[Example] = []
    for example in _gsm8k_train(data=data):
        index = int(example.id.rsplit("-", 1)[1])
        variant = perturb(example.question, example.meta["solution"], random.Random(index))
        if variant is not None:
            meta = {"source": example.id, "changed": variant.changed}
            out.append(Example(f"gsm8k-dev-{index:04d}", variant.question, variant.answer, meta))
        if limit is not None and len(out) >= limit:
            break
    return out


def task(name: str, kernels: Any = None) -> MathTask:
    """The task family for ``gsm8k``, ``gsm8k-train``, ``gsm8k-dev``, ``math500`` or ``math``."""
    loaders: dict[str, Callable[..., list[Example]]] = {
        "gsm8k": datasets.gsm8k,
        "gsm8k-train": _gsm8k_train,
        "gsm8k-dev": _gsm8k_dev,
        "math500": datasets.math500,
        "math": datasets.math_full,
    }
    if name not in loaders:
        from toolpath.errors import ConfigError

        raise ConfigError(f"unknown math benchmark {name!r}; use one of: {', '.join(loaders)}")
    return MathTask(name, loaders[name], kernels)

"""Run budgets: hard limits on a run's tokens, seconds, tool calls and money.

Every agent builder takes ``budget=Budget(...)``. The run is metered from its ``trace`` (model
calls with their tokens, tool calls) and its wall time after each step; once a limit is
reached it stops at that node boundary with ``status`` ``budget_exhausted`` and ``reason``
naming the limit (``"tokens: 1,204 used of 1,000"``). Money comes from a :class:`Prices`
table (US dollars per million input and output tokens, per model): local models cost $0.

The limits apply to one ``invoke``/``stream`` (a resumed run starts a fresh count), and the
stop is what the caller receives: a checkpointed thread keeps the state of the last step.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from toolpath.errors import ConfigError

PRICES_DATE = "2025-04"
"""When :data:`DEFAULT_PRICES` were OpenAI's list prices; check them before relying on them."""
DEFAULT_PRICES: dict[str, tuple[float, float]] = {
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4o": (2.50, 10.00),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1": (2.00, 8.00),
    "o4-mini": (1.10, 4.40),
}
"""USD per million (input, output) tokens, as OpenAI listed them in :data:`PRICES_DATE`."""
LOCAL = ("local", "scripted", "vllm", "ollama", "llama.cpp")
"""Model name prefixes that run on the user's own machine: they cost $0."""


@dataclass(frozen=True)
class Prices:
    """USD per million (input, output) tokens by model name; names match by longest prefix
    after any ``provider:`` part and before any ``@url`` (``openai:gpt-4o-mini@http://...``)."""

    table: Mapping[str, tuple[float, float]] = field(default_factory=lambda: dict(DEFAULT_PRICES))

    @classmethod
    def load(cls, path: str | Path) -> Prices:
        """The defaults updated from a JSON or TOML file of
        ``{"model": {"input": USD_PER_M, "output": USD_PER_M}}``."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
            if path.suffix.lower() == ".toml":
                import tomllib

                data = tomllib.loads(text)
            else:
                data = json.loads(text)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read the price table {path}: {exc}") from None
        table = dict(DEFAULT_PRICES)
        for name, row in data.items() if isinstance(data, dict) else ():
            try:
                table[str(name)] = (float(row["input"]), float(row["output"]))
            except (TypeError, KeyError, ValueError):
                raise ConfigError(
                    f"{path}: {name!r} needs numbers 'input' and 'output' (USD per million tokens)"
                ) from None
        return cls(table)

    def usd(self, model: str | None, tokens_in: int, tokens_out: int) -> float:
        """What the tokens cost on ``model`` (a :class:`ConfigError` for an unpriced remote
        model: a money limit must not count it as free)."""
        name = (model or "local").strip()
        if name.startswith(LOCAL) or name.endswith(".gguf"):
            return 0.0
        bare = name.split(":", 1)[-1].split("@", 1)[0]
        keys = [k for k in self.table if bare.startswith(k)]
        if not keys:
            raise ConfigError(
                f"no price for the model {name!r}: add it to a price table "
                '({"MODEL": {"input": USD_PER_M, "output": USD_PER_M}}, --prices FILE)'
            )
        price_in, price_out = self.table[max(keys, key=len)]
        return (tokens_in * price_in + tokens_out * price_out) / 1e6


@dataclass(frozen=True)
class Budget:
    """Limits for one run; ``None`` means no limit of that kind."""

    tokens: int | None = None
    """Prompt plus completion tokens over every model call."""
    seconds: float | None = None
    """Wall-clock seconds."""
    tool_calls: int | None = None
    usd: float | None = None
    prices: Prices = field(default_factory=Prices)

    def __post_init__(self) -> None:
        for name in ("tokens", "seconds", "tool_calls", "usd"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ConfigError(f"Budget({name}={value!r}): a limit must be positive")


class Meter:
    """One run's spending against a :class:`Budget`, read from the state after each step."""

    def __init__(self, budget: Budget) -> None:
        self.budget = budget
        self.start = time.perf_counter()
        self.base: int | None = None
        self.used: dict[str, float] = {"tokens": 0, "seconds": 0.0, "tool_calls": 0, "usd": 0.0}

    def over(self, state: Any) -> str | None:
        """The limit ``state`` (the run's values after a step) has reached, as a reason; None
        while every limit holds."""
        trace: Sequence[Mapping[str, Any]] = (
            state.get("trace") or [] if isinstance(state, Mapping) else []
        )
        if self.base is None:
            self.base = len(trace)  # the thread's earlier runs are not this run's
        run = trace[self.base :]
        model_calls = [r for r in run if "tokens_in" in r]
        self.used = {
            "tokens": sum(r.get("tokens_in", 0) + r.get("tokens_out", 0) for r in model_calls),
            "seconds": time.perf_counter() - self.start,
            "tool_calls": sum(1 for r in run if r.get("tool") and "tokens_in" not in r),
            "usd": sum(
                self.budget.prices.usd(r.get("model"), r["tokens_in"], r.get("tokens_out", 0))
                for r in model_calls
            )
            if self.budget.usd is not None
            else 0.0,
        }
        for name in ("tokens", "tool_calls", "seconds", "usd"):
            limit = getattr(self.budget, name)
            if limit is not None and self.used[name] >= limit:
                return f"{name}: {_show(name, self.used[name])} used of {_show(name, limit)}"
        return None


def _show(name: str, value: float) -> str:
    if name == "usd":
        return f"${value:.4f}"
    if name == "seconds":
        return f"{value:.1f}s"
    return f"{int(value):,}"

"""The cost and quality table behind CoSTA* search, learned from real runs.

Each entry is one (tool, subtask type) pair with an estimated cost ``C`` (seconds, money: any
non-negative unit, the same for the whole table) and quality ``Q`` in [0, 1]. Entries start
from priors (a tool catalog's published or guessed figures) and are updated from executions:

* **cost**: a running mean in which the prior counts as ``prior_weight`` pseudo-observations,
  ``C <- (n*C + observed) / (n + 1)``, ``n <- n + 1``. Successes and failures both record
  cost, since a failed run still spent it.
* **quality on failure**: multiplied by ``failure_factor`` (default 0.5), so one failure halves
  the tool's quality for that subtask type and a repeatedly failing tool quickly drops below
  any quality threshold.
* **quality on success**: unchanged when the verifier gives no score; otherwise a running mean
  (again with ``prior_weight`` pseudo-observations) toward the verifier's score, which also
  lets a tool recover from an earlier failure.

The table persists as JSON (:meth:`CostTable.save`, written atomically). :meth:`CostTable.load`
merges a saved table with the current priors: pairs that have been run keep their learned
values, pairs never run take the (possibly revised) prior, and new priors are added.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from toolpath.errors import ConfigError, PlanError

TABLE_FORMAT = "toolpath.costa-table"
TABLE_VERSION = 1


@dataclass(frozen=True)
class Estimate:
    """One (tool, subtask type) entry: the current estimates and how much evidence is behind them."""

    cost: float
    quality: float
    n_cost: float = 1.0  # weight behind ``cost``: prior pseudo-count plus observations
    n_quality: float = 1.0  # weight behind ``quality``: prior pseudo-count plus verifier scores
    runs: int = 0  # recorded executions (successes and failures)
    failures: int = 0


def _check(cost: float, quality: float, where: str) -> None:
    if not (math.isfinite(cost) and cost >= 0):
        raise ConfigError(f"{where}: cost must be a finite number >= 0, got {cost!r}")
    if not (0.0 <= quality <= 1.0):
        raise ConfigError(f"{where}: quality must be in [0, 1], got {quality!r}")


class CostTable:
    """Cost ``C`` and quality ``Q`` per (tool, subtask type): priors merged with learned values."""

    def __init__(
        self,
        priors: Mapping[tuple[str, str], tuple[float, float]] | None = None,
        *,
        failure_factor: float = 0.5,
        prior_weight: float = 1.0,
    ) -> None:
        if not 0.0 <= failure_factor < 1.0:
            raise ConfigError(f"failure_factor must be in [0, 1), got {failure_factor!r}")
        if prior_weight <= 0:
            raise ConfigError(f"prior_weight must be > 0, got {prior_weight!r}")
        self.failure_factor = failure_factor
        self.prior_weight = prior_weight
        self._entries: dict[tuple[str, str], Estimate] = {}
        for (tool, kind), (cost, quality) in (priors or {}).items():
            self.set_prior(tool, kind, cost, quality)

    def set_prior(self, tool: str, kind: str, cost: float, quality: float) -> None:
        """Set the prior for ``(tool, kind)``, replacing any entry (learned values included)."""
        _check(cost, quality, f"prior for ({tool!r}, {kind!r})")
        w = self.prior_weight
        self._entries[(tool, kind)] = Estimate(float(cost), float(quality), w, w)

    def __contains__(self, pair: object) -> bool:
        return pair in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def entry(self, tool: str, kind: str) -> Estimate:
        """The full entry for ``(tool, kind)``; :class:`ConfigError` when there is none."""
        try:
            return self._entries[(tool, kind)]
        except KeyError:
            raise ConfigError(
                f"the cost table has no entry for tool {tool!r} on subtask type {kind!r}: "
                "add a prior for it"
            ) from None

    def get(self, tool: str, kind: str) -> tuple[float, float]:
        """The current ``(cost, quality)`` estimate for ``tool`` on subtasks of type ``kind``."""
        e = self.entry(tool, kind)
        return e.cost, e.quality

    def _over(self, kind: str, tools: Iterable[str]) -> list[Estimate]:
        found = [self._entries[(t, kind)] for t in tools if (t, kind) in self._entries]
        if not found:
            raise PlanError(f"no tool in the cost table serves subtask type {kind!r}")
        return found

    def best_cost(self, kind: str, tools: Iterable[str]) -> float:
        """The lowest estimated cost for subtask type ``kind`` over the named tools."""
        return min(e.cost for e in self._over(kind, tools))

    def best_quality(self, kind: str, tools: Iterable[str]) -> float:
        """The highest estimated quality for subtask type ``kind`` over the named tools."""
        return max(e.quality for e in self._over(kind, tools))

    def _observe_cost(self, e: Estimate, cost: float) -> Estimate:
        n = e.n_cost
        return replace(e, cost=(n * e.cost + cost) / (n + 1), n_cost=n + 1, runs=e.runs + 1)

    def record_success(
        self, tool: str, kind: str, cost: float, quality: float | None = None
    ) -> None:
        """Record a successful run: the cost mean moves toward ``cost``; a verifier ``quality``
        moves the quality mean toward it (no score leaves the quality as it is)."""
        e = self.entry(tool, kind)
        _check(cost, 0.0 if quality is None else quality, f"observation for ({tool!r}, {kind!r})")
        e = self._observe_cost(e, cost)
        if quality is not None:
            n = e.n_quality
            e = replace(e, quality=(n * e.quality + quality) / (n + 1), n_quality=n + 1)
        self._entries[(tool, kind)] = e

    def record_failure(self, tool: str, kind: str, cost: float) -> None:
        """Record a failed run: its real cost enters the cost mean, and the quality is
        multiplied by ``failure_factor``."""
        e = self.entry(tool, kind)
        _check(cost, 0.0, f"observation for ({tool!r}, {kind!r})")
        e = self._observe_cost(e, cost)
        self._entries[(tool, kind)] = replace(
            e, quality=e.quality * self.failure_factor, failures=e.failures + 1
        )

    def to_json(self) -> dict[str, Any]:
        """The table as a JSON-ready dict (see :meth:`from_json`)."""
        entries = [
            {"tool": tool, "type": kind, **asdict(e)}
            for (tool, kind), e in sorted(self._entries.items())
        ]
        return {
            "format": TABLE_FORMAT,
            "version": TABLE_VERSION,
            "failure_factor": self.failure_factor,
            "prior_weight": self.prior_weight,
            "entries": entries,
        }

    @classmethod
    def from_json(
        cls,
        obj: Mapping[str, Any],
        priors: Mapping[tuple[str, str], tuple[float, float]] | None = None,
    ) -> CostTable:
        """A table from :meth:`to_json`'s dict, merged with ``priors``: a saved entry that has
        been run keeps its learned values, any other pair takes its prior when there is one."""
        if obj.get("format") != TABLE_FORMAT or obj.get("version") != TABLE_VERSION:
            raise ConfigError(
                f"not a cost table (format {TABLE_FORMAT!r}, version {TABLE_VERSION} expected)"
            )
        try:
            table = cls(
                priors,
                failure_factor=float(obj.get("failure_factor", 0.5)),
                prior_weight=float(obj.get("prior_weight", 1.0)),
            )
            for raw in obj["entries"]:
                pair = (str(raw["tool"]), str(raw["type"]))
                e = Estimate(
                    cost=float(raw["cost"]),
                    quality=float(raw["quality"]),
                    n_cost=float(raw["n_cost"]),
                    n_quality=float(raw["n_quality"]),
                    runs=int(raw["runs"]),
                    failures=int(raw["failures"]),
                )
                _check(e.cost, e.quality, f"saved entry for {pair!r}")
                if e.runs > 0 or pair not in table._entries:
                    table._entries[pair] = e
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"malformed cost table entry: {exc!r}") from None
        return table

    def save(self, path: str | Path) -> None:
        """Write the table as JSON to ``path`` atomically (a temporary file, then a rename)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(self.to_json(), f, indent=1)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @classmethod
    def load(
        cls,
        path: str | Path,
        priors: Mapping[tuple[str, str], tuple[float, float]] | None = None,
    ) -> CostTable:
        """The table saved at ``path`` merged with ``priors`` (see :meth:`from_json`); just the
        priors when the file does not exist yet (a first run)."""
        path = Path(path)
        if not path.exists():
            return cls(priors)
        try:
            obj = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read cost table {path}: {exc}") from None
        if not isinstance(obj, dict):
            raise ConfigError(f"cost table {path} is not a JSON object")
        return cls.from_json(obj, priors)

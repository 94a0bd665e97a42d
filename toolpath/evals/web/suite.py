"""The local CompWoB-style benchmark: base tasks, pairs, reversed pairs and triples.

:func:`build_suite` draws, deterministically for its ``seed`` (default :data:`SUITE_SEED`):

- the :data:`BASE_SUITE` base tasks themselves (39 MiniWoB tasks: clicks, forms, lists,
  tabs, checkboxes, dates, dialogs, search; each has a scripted solver and composes
  correctly, which the tests check in chromium);
- :data:`N_PAIRS` pairs of different base tasks, each also in the reverse wording;
- :data:`N_TRIPLES` triples (normal wording).

The draw is balanced: each composition takes the base tasks used least so far (ties broken
at random), so every base task appears in two or three compositions, and no two
compositions hold the same set of tasks.

Episodes are seeded by the generator seeds of a split (:data:`SPLITS`): ``dev``
(100, 101, 102) is for tuning an agent, ``test`` (0, 1, 2) for the numbers you report. Both
splits run the same pages; a seed fixes what MiniWoB's ``genProblem`` draws (names, texts,
positions), so dev and test episodes differ.

:func:`write_suite` writes every page into a folder in the CompWoB layout (the base pages
are copied from the miniwob wheel, the compositions generated) with a ``suite.json``
manifest; the pages are build output, never committed. Run them with
``toolpath eval compwob --suite test`` (writes them to a temporary folder itself) or
``toolpath eval compwob --tasks-dir FOLDER``.
"""

from __future__ import annotations

import json
import random
import shutil
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from toolpath.errors import ConfigError
from toolpath.evals.web.compose import COMPOSABLE, base_dir, generate, task_name

BASE_SUITE = COMPOSABLE
"""The suite's base tasks."""

CATEGORIES = {
    "clicks": ("click-button", "click-button-sequence", "click-link", "click-test",
               "click-test-2", "click-widget", "unicode-test", "odd-or-even"),
    "forms": ("enter-password", "enter-text", "enter-text-2", "find-word", "focus-text",
              "focus-text-2", "form-sequence-2", "login-user", "login-user-popup",
              "multi-layouts", "read-table", "read-table-2", "simple-arithmetic",
              "text-transform", "use-spinner", "guess-number"),
    "lists": ("choose-list", "navigate-tree", "phone-book"),
    "tabs": ("click-tab", "click-tab-2-medium", "click-collapsible", "click-collapsible-2"),
    "checkboxes": ("click-checkboxes", "click-checkboxes-large", "click-option"),
    "dates": ("choose-date-easy",),
    "dialogs": ("click-dialog", "click-dialog-2"),
    "search": ("search-engine", "use-autocomplete"),
}  # fmt: skip
"""What each base task exercises (every base task is in exactly one category)."""

SPLITS = {"dev": (100, 101, 102), "test": (0, 1, 2)}
"""The generator (episode) seeds of each split: tune on ``dev``, report on ``test``."""

SUITE_SEED = 0
N_PAIRS = 40
N_TRIPLES = 10


@dataclass(frozen=True)
class Suite:
    """The compositions of one draw (see the module docstring)."""

    seed: int
    base: tuple[str, ...]
    pairs: tuple[tuple[str, ...], ...]
    triples: tuple[tuple[str, ...], ...]

    def pages(self) -> list[tuple[str, list[str], str]]:
        """Every page as ``(name, base tasks, variant)``; variant ``single`` (a base task
        alone), ``base`` (normal wording) or ``reverse``."""
        out = [(t, [t], "single") for t in self.base]
        for combo in (*self.pairs, *self.triples):
            out.append((task_name(combo), list(combo), "base"))
        out += [(task_name(p, reverse=True), list(p), "reverse") for p in self.pairs]
        return out

    def counts(self) -> dict[str, int]:
        uses = Counter(t for c in (*self.pairs, *self.triples) for t in c)
        return {
            "base_tasks": len(self.base),
            "pairs": len(self.pairs),
            "reversed_pairs": len(self.pairs),
            "triples": len(self.triples),
            "pages": len(self.pages()),
            "min_uses": min(uses[t] for t in self.base),
            "max_uses": max(uses[t] for t in self.base),
        }

    def manifest(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "splits": {k: list(v) for k, v in SPLITS.items()},
            "counts": self.counts(),
            "base": list(self.base),
            "pairs": [list(p) for p in self.pairs],
            "triples": [list(t) for t in self.triples],
        }


def _draw(
    rng: random.Random, pool: Sequence[str], n: int, size: int, used: Counter[str], seen: set[Any]
) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = []
    for _ in range(n):
        for attempt in range(500):
            ranked = sorted(pool, key=lambda t: (used[t], rng.random()))
            combo = tuple(rng.sample(ranked[: size + 1 + attempt // 20], size))
            if frozenset(combo) not in seen:
                break
        else:  # pragma: no cover - only for a tiny pool
            raise ConfigError(f"cannot draw {n} distinct compositions of {size} from {len(pool)}")
        seen.add(frozenset(combo))
        used.update(combo)
        out.append(combo)
    return out


def build_suite(
    seed: int = SUITE_SEED,
    *,
    base: Sequence[str] = BASE_SUITE,
    pairs: int = N_PAIRS,
    triples: int = N_TRIPLES,
) -> Suite:
    """The suite for ``seed`` (the same seed always gives the same suite)."""
    pool = list(dict.fromkeys(base))
    if len(pool) < 3:
        raise ConfigError("the suite needs at least three base tasks")
    rng = random.Random(seed)
    used: Counter[str] = Counter()
    seen: set[Any] = set()
    two = _draw(rng, pool, pairs, 2, used, seen)
    three = _draw(rng, pool, triples, 3, used, seen)
    return Suite(seed, tuple(pool), tuple(two), tuple(three))


def write_suite(out: str | Path, suite: Suite | None = None) -> list[Path]:
    """Write every page of ``suite`` (default: :func:`build_suite`) and ``suite.json`` into
    ``out``; returns the pages. Base pages are copied from the miniwob wheel."""
    suite = suite or build_suite()
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, base, variant in suite.pages():
        if variant == "single":
            written.append(
                Path(shutil.copyfile(base_dir() / f"{name}.html", folder / f"{name}.html"))
            )
        else:
            written.append(generate(base, folder, reverse=variant == "reverse"))
    (folder / "suite.json").write_text(json.dumps(suite.manifest(), indent=2) + "\n", "utf-8")
    return written


def split_seeds(split: str, n: int | None = None) -> tuple[int, int]:
    """``(first seed, number of seeds)`` of ``split`` (``n``: only the first n)."""
    if split not in SPLITS:
        raise ConfigError(f"--suite must be one of {', '.join(SPLITS)}, not {split!r}")
    seeds = SPLITS[split]
    return seeds[0], min(n, len(seeds)) if n else len(seeds)
